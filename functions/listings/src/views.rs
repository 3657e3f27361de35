//! Response bodies. The public view (listing page, search) shows the address as city, region and
//! country only; the host's view adds the exact address and the `version`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use shared::caching::ETag;
use shared::listing::{
    Address, ListingFields, ListingItem, ListingStatus, Nullable, Photo, Rating, SearchItem, StayPrice,
};
use shared::night::Night;
use shared::{ApiError, Money};
use utoipa::ToSchema;

use crate::photos::{PhotoStore, UploadUrl};
use crate::rules::PropertyType;
use crate::store::ListingStamp;

/// The listing's reviews in two numbers.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Rating)]
pub struct RatingView {
    /// Mean stars (1 to 5) rounded to two decimals; `null` before the first review.
    #[schema(required = true, minimum = 1, maximum = 5, examples(4.67))]
    pub average: Option<f64>,
    /// How many reviews.
    pub count: u64,
}

impl From<Rating> for RatingView {
    fn from(r: Rating) -> Self {
        Self { average: r.average(), count: r.count }
    }
}

/// The address as anyone sees it: city, region and country only.
// `deny_unknown_fields` (never deserialised) makes the schema refuse `line1`, so a client tells
// this shape from `FullAddress` in `AddressView`'s `oneOf`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicAddress {
    #[schema(examples("Lisbon"))]
    pub city: String,
    /// `null` when the host gave none.
    #[schema(required = true)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    #[schema(examples("PT"))]
    pub country: String,
}

/// The exact address (host view): absent optional parts are `null`, as in the public view.
#[derive(Debug, Serialize, ToSchema)]
pub struct FullAddress {
    #[schema(examples("Rua Augusta 1"))]
    pub line1: String,
    #[schema(examples("Lisbon"))]
    pub city: String,
    /// `null` when the host gave none.
    #[schema(required = true)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    #[schema(examples("PT"))]
    pub country: String,
    /// `null` when the host gave none.
    #[schema(required = true)]
    pub postal_code: Option<String>,
}

impl From<&Address> for FullAddress {
    fn from(a: &Address) -> Self {
        Self {
            line1: a.line1.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            country: a.country.clone(),
            postal_code: a.postal_code.clone(),
        }
    }
}

/// The exact address for the listing's host (`/v1/me/...` and the host's writes), city, region
/// and country for anyone else (`GET /v1/listings/{id}`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AddressView {
    Full(FullAddress),
    Public(PublicAddress),
}

/// A photo shown on a listing.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ListingPhoto)]
pub struct PhotoView {
    /// `pho_...`
    #[schema(examples("pho_01jq7z4c2m9xh0k3v8n6t5r2b1"))]
    pub photo_id: String,
    /// A pre-signed GET of the image, valid for at least an hour (stable within the hour).
    pub url: String,
    #[schema(required = true)]
    pub caption: Option<String>,
}

/// A listing: the host's fields, its photos and rating.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Listing)]
pub struct ListingView {
    /// `lst_...`
    #[schema(examples("lst_01jq7z2w5d8k4n1p0r3s6t9v2x"))]
    pub listing_id: String,
    /// The host's user id (a Cognito `sub`).
    pub host_id: String,
    pub host_name: String,
    pub status: ListingStatus,
    // The host-editable fields as stored, but the address in the audience's shape and an
    // absent cleaning fee as `null`.
    #[serde(flatten)]
    #[schema(inline)]
    pub fields: ListingFields<AddressView, Nullable<Money>>,
    /// In upload order.
    pub photos: Vec<PhotoView>,
    pub rating: RatingView,
    /// The host's views only: bumped by every change a booking depends on (price, dates rules,
    /// address, archiving...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub version: Option<u64>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

/// Who is looking: the host sees the exact address and the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Host,
}

pub async fn listing(
    photos: &PhotoStore,
    l: &ListingItem,
    audience: Audience,
    now: Timestamp,
) -> Result<ListingView, ApiError> {
    let mut photo_views = Vec::with_capacity(l.photos.len());
    for p in l.photos_in_order() {
        photo_views.push(PhotoView {
            photo_id: p.photo_id.clone(),
            url: photos.download_url(&p.object_key, now).await?,
            caption: p.caption.clone(),
        });
    }
    let address = match audience {
        Audience::Host => AddressView::Full((&l.fields.address).into()),
        Audience::Public => AddressView::Public(PublicAddress {
            city: l.fields.address.city.clone(),
            region: l.fields.address.region.clone(),
            country: l.fields.address.country.clone(),
        }),
    };
    let cleaning_fee = Nullable(l.fields.cleaning_fee);
    Ok(ListingView {
        listing_id: l.listing_id.clone(),
        host_id: l.host_id.clone(),
        host_name: l.host_name.clone(),
        status: l.status,
        fields: l.fields.clone().reshaped(address, cleaning_fee),
        photos: photo_views,
        rating: l.rating().into(),
        version: (audience == Audience::Host).then_some(l.version),
        created_at: l.created_at.clone(),
        updated_at: l.updated_at.clone(),
    })
}

/// The public listing's tag: its stamp and the hour its photo URLs are signed for, so a 304
/// needs only the stamp (`store::stamp`), never the whole item.
pub fn listing_etag(listing_id: &str, stamp: &ListingStamp, now: Timestamp) -> ETag {
    ETag::of_parts(&[
        "listing",
        listing_id,
        &stamp.revision.to_string(),
        &stamp.rating_count.to_string(),
        &stamp.rating_total.to_string(),
        &crate::photos::download_window(now).to_string(),
    ])
}

/// A search result: the public summary, plus the stay's price when dates were given.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ListingSummary)]
pub struct SummaryView {
    /// `lst_...`
    pub listing_id: String,
    pub title: String,
    #[schema(value_type = PropertyType)]
    pub property_type: String,
    pub address: PublicAddress,
    pub max_guests: u32,
    pub bedrooms: u32,
    pub beds: u32,
    pub bathrooms: u32,
    pub nightly_price: Money,
    /// `null` when the listing has none.
    #[schema(required = true)]
    pub cleaning_fee: Option<Money>,
    pub min_nights: u32,
    pub max_nights: u32,
    pub rating: RatingView,
    /// A pre-signed GET of the first photo; `null` without photos.
    #[schema(required = true)]
    pub photo_url: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Searches with dates only: the stay's nights.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1, maximum = 90)]
    pub nights: Option<u32>,
    /// Searches with dates only: nights times the nightly price plus the cleaning fee (before
    /// the service fee, which the booking adds).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub total: Option<Money>,
}

pub async fn summary(
    photos: &PhotoStore,
    s: &SearchItem,
    stay: Option<&StayPrice>,
    now: Timestamp,
) -> Result<SummaryView, ApiError> {
    let photo_url = match &s.cover_photo {
        Some(k) => Some(photos.download_url(k, now).await?),
        None => None,
    };
    Ok(SummaryView {
        listing_id: s.listing_id.clone(),
        title: s.title.clone(),
        property_type: s.property_type.clone(),
        address: PublicAddress { city: s.city.clone(), region: s.region.clone(), country: s.country.clone() },
        max_guests: s.max_guests,
        bedrooms: s.bedrooms,
        beds: s.beds,
        bathrooms: s.bathrooms,
        nightly_price: s.nightly_price(),
        cleaning_fee: s.cleaning_fee(),
        min_nights: s.min_nights,
        max_nights: s.max_nights,
        rating: s.rating().into(),
        photo_url,
        created_at: s.created_at.clone(),
        nights: stay.map(|p| p.nights),
        total: stay.map(|p| p.total),
    })
}

/// One night of a listing's calendar.
#[derive(Debug, Serialize, PartialEq, ToSchema)]
#[schema(as = Night)]
pub struct NightView {
    /// `YYYY-MM-DD`, in the listing's time zone.
    #[schema(format = Date, examples("2026-07-10"))]
    pub date: String,
    /// Bookable: not blocked, held or booked, and the listing is active.
    pub available: bool,
    /// Set for a blocked night (so the host's calendar can tell blocks from bookings).
    /// Only in the answer to `PUT .../blocked-dates` (the host's), on every night there.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub blocked: Option<bool>,
    /// The nightly price.
    pub price: Money,
}

/// A listing's calendar: the nights `[from, to)`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Availability)]
pub struct AvailabilityView {
    pub listing_id: String,
    /// The first night, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub from: String,
    /// The day after the last night, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub to: String,
    /// One per night, in date order.
    pub nights: Vec<NightView>,
}

/// The calendar `[from, to)` from the NIGHT items found in it. A night is available when it has
/// no item or only a hold that expired before `now`. `show_blocks` marks host blocks.
pub fn availability(
    l: &ListingItem,
    dates: &[jiff::civil::Date],
    taken: &[Night],
    now: Timestamp,
    show_blocks: bool,
) -> Vec<NightView> {
    dates
        .iter()
        .map(|d| {
            let date = d.to_string();
            let night = taken.iter().find(|n| n.date == date);
            let available = night.is_none_or(|n| !n.is_taken_at(now)) && l.is_active();
            let blocked = show_blocks.then(|| night.is_some_and(|n| n.kind == shared::night::NightKind::Blocked));
            NightView { date, available, blocked, price: l.fields.nightly_price }
        })
        .collect()
}

/// A listing's calendar feed URL (a secret: whoever has it reads the listing's calendar).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CalendarFeed)]
pub struct CalendarFeedView {
    /// The feed's full URL, to paste into another platform or a calendar app.
    pub url: String,
    /// The same, from the API's root.
    pub path: String,
    pub token: String,
}

/// One night of an import's feed over a Roost booking: the night stays the booking's.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CalendarImportConflict)]
pub struct ConflictView {
    #[schema(format = Date)]
    pub date: String,
    pub booking_id: String,
}

/// A calendar import and the state of its last fetch.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CalendarImport)]
pub struct CalendarImportView {
    /// `cim_...`.
    pub import_id: String,
    pub listing_id: String,
    pub url: String,
    pub name: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The last fetch, successful or not (`null`: not fetched yet).
    #[schema(format = DateTime)]
    pub last_fetched_at: Option<String>,
    /// The last fetch whose feed was applied.
    #[schema(format = DateTime)]
    pub last_synced_at: Option<String>,
    /// Why the last fetch was not applied (the nights stay as the last good feed left them).
    pub last_error: Option<String>,
    /// Nights this import makes unavailable now.
    pub night_count: u32,
    /// Nights of the feed that a Roost booking holds (untouched; the host should sort them out
    /// on the other platform).
    pub conflicts: Vec<ConflictView>,
}

impl From<&crate::store::calendar_sync::CalendarImport> for CalendarImportView {
    fn from(i: &crate::store::calendar_sync::CalendarImport) -> Self {
        Self {
            import_id: i.import_id.clone(),
            listing_id: i.listing_id.clone(),
            url: i.url.clone(),
            name: i.name.clone(),
            created_at: i.created_at.clone(),
            last_fetched_at: i.last_fetched_at.clone(),
            last_synced_at: i.last_synced_at.clone(),
            last_error: i.last_error.clone(),
            night_count: i.night_count,
            conflicts: i
                .conflicts
                .iter()
                .map(|c| ConflictView { date: c.date.clone(), booking_id: c.booking_id.clone() })
                .collect(),
        }
    }
}

/// A listing's calendar imports.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CalendarImports)]
pub struct CalendarImportsView {
    pub items: Vec<CalendarImportView>,
}

/// The answer to `POST /v1/listings/{id}/photos`: where to PUT the image, then call
/// `POST .../photos/{photo_id}/complete`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PhotoUpload)]
pub struct UploadBody {
    /// `pho_...`: the photo's id once completed.
    pub photo_id: String,
    /// A pre-signed S3 `PUT` of the image, bound to the announced type and length; valid for
    /// 15 minutes.
    pub upload_url: String,
    /// Headers the PUT must carry exactly as given (they are part of the signature), by
    /// lower-case name: `content-length` and `content-type`.
    pub upload_headers: BTreeMap<String, String>,
    /// When `upload_url` stops working (RFC 3339, UTC).
    pub expires_at: String,
}

impl UploadBody {
    pub fn new(photo_id: String, url: UploadUrl) -> Self {
        Self {
            photo_id,
            upload_url: url.url,
            upload_headers: url.headers.into_iter().collect(),
            expires_at: url.expires_at.to_string(),
        }
    }
}

/// A completed photo upload, as `POST .../photos/{photo_id}/complete` answers it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CompletedPhoto)]
pub struct CompletedPhotoView {
    /// `pho_...`
    pub photo_id: String,
    /// A pre-signed GET of the image, valid for at least an hour.
    pub url: String,
    #[schema(required = true)]
    pub caption: Option<String>,
    /// `image/jpeg`, `image/png` or `image/webp`.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// When the upload was completed (RFC 3339, UTC).
    pub created_at: String,
}

pub async fn photo(photos: &PhotoStore, p: &Photo, now: Timestamp) -> Result<CompletedPhotoView, ApiError> {
    Ok(CompletedPhotoView {
        photo_id: p.photo_id.clone(),
        url: photos.download_url(&p.object_key, now).await?,
        caption: p.caption.clone(),
        content_type: p.content_type.clone(),
        size: p.size,
        created_at: p.created_at.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{ListingBody, parse_listing};
    use serde_json::{Value, json};
    use shared::listing::SearchItem;

    /// This context's document (its schemas, to resolve `$ref`s).
    fn doc() -> Value {
        serde_json::to_value(crate::openapi()).unwrap()
    }

    fn resolve<'a>(schema: &'a Value, doc: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => resolve(&doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")], doc),
            None => schema,
        }
    }

    /// Every property an object schema names, through `allOf`.
    fn property_names(schema: &Value, doc: &Value) -> Vec<String> {
        let schema = resolve(schema, doc);
        let mut names: Vec<String> =
            schema["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
        for part in schema["allOf"].as_array().into_iter().flatten() {
            names.extend(property_names(part, doc));
        }
        names
    }

    /// Whether `v` conforms to `schema` as far as the views go: types, `null`, required
    /// properties, unknown ones where `additionalProperties` is false, `oneOf` (exactly one), `allOf`, arrays, enums.
    fn conforms(v: &Value, schema: &Value, doc: &Value) -> Result<(), String> {
        let schema = resolve(schema, doc);
        for part in schema["allOf"].as_array().into_iter().flatten() {
            conforms(v, part, doc)?;
        }
        if let Some(variants) = schema["oneOf"].as_array() {
            let matching = variants.iter().filter(|s| conforms(v, s, doc).is_ok()).count();
            return if matching == 1 { Ok(()) } else { Err(format!("{v} matches {matching} of {variants:?}")) };
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "number",
            Value::Number(_) => "integer",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let typed = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
        if !types.is_empty() && !typed {
            return Err(format!("{v} is not {types:?}"));
        }
        if let Some(values) = schema["enum"].as_array().filter(|e| !e.contains(v)) {
            return Err(format!("{v} is not one of {values:?}"));
        }
        if let Value::Array(items) = v {
            items.iter().try_for_each(|i| conforms(i, &schema["items"], doc))?;
        }
        let Value::Object(fields) = v else { return Ok(()) };
        for r in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            fields.get(r).ok_or_else(|| format!("{v} lacks required `{r}`"))?;
        }
        for (k, field) in fields {
            match schema["properties"].get(k) {
                Some(s) => conforms(field, s, doc).map_err(|e| format!("{k}: {e}"))?,
                None if schema["additionalProperties"] == json!(false) => {
                    return Err(format!("`{k}` is not in the schema"));
                }
                None => {}
            }
        }
        Ok(())
    }

    fn check<T: Serialize>(name: &str, value: &T) {
        let doc = doc();
        let v = serde_json::to_value(value).unwrap();
        let schema = json!({"$ref": format!("#/components/schemas/{name}")});
        assert!(!resolve(&schema, &doc).is_null(), "no schema {name}");
        if let Err(e) = conforms(&v, &schema, &doc) {
            panic!("{name}: {e}\n{v:#}");
        }
        // The allOf of `Listing` hides unknown keys from `conforms`: check them here.
        let known = property_names(&schema, &doc);
        let unknown: Vec<&String> = v.as_object().unwrap().keys().filter(|k| !known.contains(k)).collect();
        assert!(unknown.is_empty(), "{name}: {unknown:?} not in the schema");
    }

    fn photos() -> PhotoStore {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::for_tests())
            .endpoint_url("http://127.0.0.1:9")
            .build();
        PhotoStore { client: aws_sdk_s3::Client::from_conf(conf), bucket: "photos".into() }
    }

    fn item(extra: Value) -> ListingItem {
        let mut body = json!({
            "title": "Loft", "property_type": "loft",
            "address": {"line1": "Rua Augusta 1", "city": "Lisbon", "country": "PT"},
            "timezone": "Europe/Lisbon", "max_guests": 2, "bedrooms": 1, "beds": 1, "bathrooms": 1,
            "nightly_price": {"amount": 10000, "currency": "EUR"}, "cancellation_policy": "strict"
        });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let fields = parse_listing(&serde_json::from_value::<ListingBody>(body).unwrap()).unwrap();
        let now = "2026-03-01T10:00:00Z".parse().unwrap();
        let mut l = crate::store::new_listing("lst_1".into(), "u-1", "Hana".into(), fields, now);
        l.photos.insert(
            "pho_1".into(),
            Photo {
                photo_id: "pho_1".into(),
                object_key: "listings/lst_1/pho_1".into(),
                content_type: "image/png".into(),
                size: 10,
                caption: None,
                created_at: "2026-03-01T10:00:00Z".into(),
            },
        );
        l
    }

    #[tokio::test]
    async fn every_view_matches_its_schema() {
        let now: Timestamp = "2026-03-01T10:00:00Z".parse().unwrap();
        let bare = item(json!({}));
        let full = item(json!({
            "address": {"line1": "x", "city": "Lisbon", "region": "Lisboa", "country": "PT", "postal_code": "1100"},
            "cleaning_fee": {"amount": 2000, "currency": "EUR"}
        }));
        for l in [&bare, &full] {
            for audience in [Audience::Public, Audience::Host] {
                check("Listing", &listing(&photos(), l, audience, now).await.unwrap());
            }
            let shown = l.photos.values().next().unwrap();
            check("CompletedPhoto", &photo(&photos(), shown, now).await.unwrap());
            let search = crate::store::search_item_for(l);
            let price = shared::listing::stay_price(search.nightly_price(), 3, search.cleaning_fee()).unwrap();
            check("ListingSummary", &summary(&photos(), &search, None, now).await.unwrap());
            check("ListingSummary", &summary(&photos(), &search, Some(&price), now).await.unwrap());
            let no_photo = SearchItem { cover_photo: None, ..search };
            check("ListingSummary", &summary(&photos(), &no_photo, None, now).await.unwrap());
        }
        let dates = crate::rules::nights("2026-03-01".parse().unwrap(), "2026-03-03".parse().unwrap());
        for show_blocks in [false, true] {
            let nights = availability(&bare, &dates, &[], now, show_blocks);
            let view = AvailabilityView {
                listing_id: "lst_1".into(),
                from: "2026-03-01".into(),
                to: "2026-03-03".into(),
                nights,
            };
            check("Availability", &view);
        }
        let up = photos().upload_url("listings/lst_1/pho_2", "image/png", 10, now).await.unwrap();
        check("PhotoUpload", &UploadBody::new("pho_2".into(), up));
    }

    #[tokio::test]
    async fn the_public_address_is_not_the_host_address() {
        let now: Timestamp = "2026-03-01T10:00:00Z".parse().unwrap();
        let doc = doc();
        let l = item(json!({}));
        let public = serde_json::to_value(listing(&photos(), &l, Audience::Public, now).await.unwrap()).unwrap();
        let host = serde_json::to_value(listing(&photos(), &l, Audience::Host, now).await.unwrap()).unwrap();
        let public_schema = json!({"$ref": "#/components/schemas/PublicAddress"});
        assert!(conforms(&public["address"], &public_schema, &doc).is_ok());
        assert!(conforms(&host["address"], &public_schema, &doc).is_err());
        assert!(public.get("version").is_none() && host["version"] == json!(1));
    }
}
