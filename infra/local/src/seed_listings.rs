//! Demo listings for `cargo roost up`, made through the public API as a host's client would:
//! listings in several cities and currencies, each with a photo uploaded to its pre-signed URL
//! and completed, and a few blocked nights, so search, photos and the calendar have something
//! to show (and are exercised at every start).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A valid 1x1 PNG.
const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

struct Demo {
    title: &'static str,
    property_type: &'static str,
    line1: &'static str,
    city: &'static str,
    region: &'static str,
    country: &'static str,
    timezone: &'static str,
    max_guests: u32,
    bedrooms: u32,
    price: i64,
    cleaning_fee: Option<i64>,
    currency: &'static str,
    policy: &'static str,
    amenities: &'static [&'static str],
    /// Nights blocked, as days from today in the listing's time zone.
    blocked: &'static [i64],
}

const DEMOS: &[Demo] = &[
    Demo {
        title: "Alfama loft with river view",
        property_type: "loft",
        line1: "Rua de São Miguel 12",
        city: "Lisboa",
        region: "Lisboa",
        country: "PT",
        timezone: "Europe/Lisbon",
        max_guests: 2,
        bedrooms: 1,
        price: 9_500,
        cleaning_fee: Some(2_500),
        currency: "EUR",
        policy: "moderate",
        amenities: &["wifi", "kitchen", "washer"],
        blocked: &[3, 4, 5],
    },
    Demo {
        title: "Family house near Belém",
        property_type: "house",
        line1: "Rua de Belém 40",
        city: "Lisboa",
        region: "Lisboa",
        country: "PT",
        timezone: "Europe/Lisbon",
        max_guests: 6,
        bedrooms: 3,
        price: 21_000,
        cleaning_fee: Some(6_000),
        currency: "EUR",
        policy: "strict",
        amenities: &["wifi", "kitchen", "garden", "parking"],
        blocked: &[],
    },
    Demo {
        title: "Studio on Avenida Paulista",
        property_type: "studio",
        line1: "Avenida Paulista 1000",
        city: "São Paulo",
        region: "SP",
        country: "BR",
        timezone: "America/Sao_Paulo",
        max_guests: 2,
        bedrooms: 0,
        price: 28_000,
        cleaning_fee: None,
        currency: "BRL",
        policy: "flexible",
        amenities: &["wifi", "air conditioning"],
        blocked: &[7, 8],
    },
    Demo {
        title: "Machiya townhouse in Higashiyama",
        property_type: "townhouse",
        line1: "Higashiyama-ku 5-2",
        city: "Kyoto",
        region: "Kyoto",
        country: "JP",
        timezone: "Asia/Tokyo",
        max_guests: 4,
        bedrooms: 2,
        price: 32_000,
        cleaning_fee: Some(5_000),
        currency: "JPY",
        policy: "moderate",
        amenities: &["wifi", "tatami", "bath"],
        blocked: &[1, 2],
    },
    Demo {
        title: "Brooklyn brownstone apartment",
        property_type: "apartment",
        line1: "120 Park Place",
        city: "New York",
        region: "NY",
        country: "US",
        timezone: "America/New_York",
        max_guests: 3,
        bedrooms: 1,
        price: 18_900,
        cleaning_fee: Some(4_000),
        currency: "USD",
        policy: "strict",
        amenities: &["wifi", "heating"],
        blocked: &[10],
    },
];

/// Creates the demo listings as the host whose access token is given (it must carry the
/// `hosts` group); returns how many were made.
pub async fn seed_listings(api_url: &str, host_access_token: &str) -> Result<usize> {
    let http = reqwest::Client::new();
    let mut made = 0;
    for demo in DEMOS {
        seed_one(&http, api_url, host_access_token, demo)
            .await
            .with_context(|| format!("demo listing {:?}", demo.title))?;
        made += 1;
    }
    Ok(made)
}

async fn seed_one(http: &reqwest::Client, api: &str, token: &str, d: &Demo) -> Result<()> {
    let mut body = json!({
        "title": d.title,
        "description": format!("{} in {}. A demo listing seeded by `cargo roost up`.", d.title, d.city),
        "property_type": d.property_type,
        "address": {"line1": d.line1, "city": d.city, "region": d.region, "country": d.country},
        "timezone": d.timezone,
        "max_guests": d.max_guests,
        "bedrooms": d.bedrooms,
        "beds": d.bedrooms.max(1),
        "bathrooms": 1,
        "amenities": d.amenities,
        "nightly_price": {"amount": d.price, "currency": d.currency},
        "cancellation_policy": d.policy,
    });
    if let Some(fee) = d.cleaning_fee {
        body["cleaning_fee"] = json!({"amount": fee, "currency": d.currency});
    }
    let listing = send(http.post(format!("{api}/v1/listings")).bearer_auth(token).json(&body), "create").await?;
    let id = listing["listing_id"].as_str().context("listing_id")?.to_owned();

    let upload = send(
        http.post(format!("{api}/v1/listings/{id}/photos")).bearer_auth(token).json(&json!({
            "content_type": "image/png",
            "content_length": TINY_PNG.len(),
            "caption": d.title,
        })),
        "photo upload URL",
    )
    .await?;
    let url = upload["upload_url"].as_str().context("upload_url")?;
    let put = http.put(url).header("content-type", "image/png").body(TINY_PNG.to_vec()).send().await?;
    if !put.status().is_success() {
        bail!("photo PUT answered {}", put.status());
    }
    let photo_id = upload["photo_id"].as_str().context("photo_id")?;
    send(http.post(format!("{api}/v1/listings/{id}/photos/{photo_id}/complete")).bearer_auth(token), "photo complete")
        .await?;

    if !d.blocked.is_empty() {
        let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get(d.timezone)?).date();
        let dates = d
            .blocked
            .iter()
            .map(|n| today.checked_add(jiff::Span::new().days(*n)).map(|x| x.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        send(
            http.put(format!("{api}/v1/listings/{id}/blocked-dates")).bearer_auth(token).json(&json!({"block": dates})),
            "block nights",
        )
        .await?;
    }
    Ok(())
}

async fn send(request: reqwest::RequestBuilder, what: &str) -> Result<Value> {
    let response = request.send().await.with_context(|| format!("{what}: API unreachable"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}
