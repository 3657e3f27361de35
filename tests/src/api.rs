//! A typed client for the routes the end-to-end tests call most: request bodies are serde
//! structs (one shape per route, filled per test with struct update syntax; a call also takes
//! any JSON, for the malformed bodies tests send on purpose), and each call returns the
//! `reqwest::Response` so a test checks it with [`crate::json_of`] or [`crate::assert_problem`]. Calls that a test only needs as a fixture (it must succeed) have an
//! asserting twin (`listing_created`, `booked`).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Stack, User, client, json_of, s};

/// An amount in minor units and an ISO currency code (any string: tests send invalid ones too).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

pub fn money(amount: i64, currency: &str) -> Money {
    Money { amount, currency: currency.to_owned() }
}

#[derive(Debug, Clone, Serialize)]
pub struct Address {
    pub line1: String,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

/// The body of `POST /v1/listings`.
#[derive(Debug, Clone, Serialize)]
pub struct NewListing {
    pub title: String,
    pub description: String,
    pub property_type: String,
    pub address: Address,
    pub timezone: String,
    pub max_guests: u32,
    pub bedrooms: u32,
    pub beds: u32,
    pub bathrooms: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amenities: Vec<String>,
    pub nightly_price: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleaning_fee: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_nights: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_nights: Option<u32>,
    pub cancellation_policy: String,
    /// `HH:MM`, local; the API's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_in_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_out_time: Option<String>,
    /// `instant` or `request`; the API's default (`instant`) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_mode: Option<String>,
}

impl NewListing {
    /// A two-guest loft in Lisbon at 100.00 EUR a night (25.00 cleaning), moderate policy, the
    /// nights bounds left to the API's defaults; tests change what they are about.
    pub fn in_city(city: &str) -> NewListing {
        NewListing {
            title: "Quiet loft".into(),
            description: "Two rooms.\nNear the river.".into(),
            property_type: "loft".into(),
            address: Address {
                line1: "Rua Augusta 1".into(),
                city: city.into(),
                region: Some("Lisboa".into()),
                country: "PT".into(),
                postal_code: Some("1100-001".into()),
            },
            timezone: "Europe/Lisbon".into(),
            max_guests: 2,
            bedrooms: 1,
            beds: 1,
            bathrooms: 1,
            amenities: vec!["wifi".into()],
            nightly_price: money(10_000, "EUR"),
            cleaning_fee: Some(money(2_500, "EUR")),
            min_nights: None,
            max_nights: None,
            cancellation_policy: "moderate".into(),
            check_in_time: None,
            check_out_time: None,
            booking_mode: None,
        }
    }

    /// As JSON, for tests that change it into something the typed body cannot say.
    pub fn json(&self) -> Value {
        serde_json::to_value(self).expect("a listing body is JSON")
    }
}

/// The body of `POST /v1/quotes` and `POST /v1/bookings`.
#[derive(Debug, Clone, Serialize)]
pub struct Stay {
    pub listing_id: String,
    pub check_in: String,
    pub check_out: String,
    pub guests: u32,
}

impl Stay {
    pub fn new(listing_id: &str, check_in: String, check_out: String, guests: u32) -> Stay {
        Stay { listing_id: listing_id.to_owned(), check_in, check_out, guests }
    }
}

/// The body of `POST /v1/bookings/{id}/cancel` (`{}` without a reason).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cancel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of `POST /v1/bookings/{id}/review`.
#[derive(Debug, Clone, Serialize)]
pub struct NewReview {
    pub rating: u8,
    pub comment: String,
}

/// The API as one caller sees it: anonymous, or with a user's access token.
#[derive(Debug, Clone, Copy)]
pub struct Api<'a> {
    user: Option<&'a User>,
}

/// The API without a token.
pub fn anonymous() -> Api<'static> {
    Api { user: None }
}

impl User {
    /// The API with this user's access token.
    pub fn api(&self) -> Api<'_> {
        Api { user: Some(self) }
    }
}

impl Api<'_> {
    /// Any call: `body` as JSON, `headers` added (e.g. `idempotency-key`, `x-request-id`).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = client().request(method, Stack::get().url(path));
        if let Some(user) = self.user {
            request = request.header("authorization", user.bearer());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("api")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.call(Method::GET, path, None::<&Value>, &[]).await
    }

    /// `POST /v1/listings`.
    pub async fn create_listing(&self, listing: &(impl Serialize + ?Sized)) -> reqwest::Response {
        self.call(Method::POST, "/v1/listings", Some(listing), &[]).await
    }

    /// `POST /v1/listings`, asserting 201; returns the created listing.
    pub async fn listing_created(&self, listing: &(impl Serialize + ?Sized)) -> Value {
        json_of(self.create_listing(listing).await, 201).await
    }

    /// `POST /v1/listings`, asserting 201; returns the listing id.
    pub async fn new_listing(&self, listing: &(impl Serialize + ?Sized)) -> String {
        s(&self.listing_created(listing).await, "listing_id").to_owned()
    }

    /// `GET /v1/listings/{id}` (the public view).
    pub async fn listing(&self, listing_id: &str) -> reqwest::Response {
        self.get(&format!("/v1/listings/{listing_id}")).await
    }

    /// `GET /v1/search?{query}`.
    pub async fn search(&self, query: &str) -> reqwest::Response {
        self.get(&format!("/v1/search?{query}")).await
    }

    /// `POST /v1/quotes`.
    pub async fn quote(&self, stay: &(impl Serialize + ?Sized)) -> reqwest::Response {
        self.call(Method::POST, "/v1/quotes", Some(stay), &[]).await
    }

    /// `POST /v1/bookings`, with an `Idempotency-Key` when given.
    pub async fn book(&self, stay: &(impl Serialize + ?Sized), key: Option<&str>) -> reqwest::Response {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.call(Method::POST, "/v1/bookings", Some(stay), &headers).await
    }

    /// `POST /v1/bookings`, asserting 201; returns the booking.
    pub async fn booked(&self, stay: &(impl Serialize + ?Sized)) -> Value {
        json_of(self.book(stay, None).await, 201).await
    }

    /// `GET /v1/bookings/{id}`.
    pub async fn booking(&self, booking_id: &str) -> reqwest::Response {
        self.get(&format!("/v1/bookings/{booking_id}")).await
    }

    /// `POST /v1/bookings/{id}/payment`, with an `Idempotency-Key` when given.
    pub async fn pay(&self, booking_id: &str, key: Option<&str>) -> reqwest::Response {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.call(Method::POST, &format!("/v1/bookings/{booking_id}/payment"), None::<&Value>, &headers).await
    }

    /// `GET /v1/bookings/{id}/cancellation` (the refund preview).
    pub async fn cancellation(&self, booking_id: &str) -> reqwest::Response {
        self.get(&format!("/v1/bookings/{booking_id}/cancellation")).await
    }

    /// `POST /v1/bookings/{id}/cancel`.
    pub async fn cancel(&self, booking_id: &str, cancel: &(impl Serialize + ?Sized)) -> reqwest::Response {
        self.call(Method::POST, &format!("/v1/bookings/{booking_id}/cancel"), Some(cancel), &[]).await
    }

    /// `GET /v1/me/trips{query}` (`query` empty or starting with `?`).
    pub async fn trips(&self, query: &str) -> reqwest::Response {
        self.get(&format!("/v1/me/trips{query}")).await
    }

    /// `GET /v1/me/reservations{query}` (`query` empty or starting with `?`).
    pub async fn reservations(&self, query: &str) -> reqwest::Response {
        self.get(&format!("/v1/me/reservations{query}")).await
    }

    /// `POST /v1/bookings/{id}/review`.
    pub async fn review(&self, booking_id: &str, review: &(impl Serialize + ?Sized)) -> reqwest::Response {
        self.call(Method::POST, &format!("/v1/bookings/{booking_id}/review"), Some(review), &[]).await
    }

    /// `GET /v1/listings/{id}/reviews{query}` (`query` empty or starting with `?`).
    pub async fn reviews(&self, listing_id: &str, query: &str) -> reqwest::Response {
        self.get(&format!("/v1/listings/{listing_id}/reviews{query}")).await
    }

    /// `GET /v1/me/notifications{query}` (`query` empty or starting with `?`).
    pub async fn notifications(&self, query: &str) -> reqwest::Response {
        self.get(&format!("/v1/me/notifications{query}")).await
    }
}
