//! The listing's two stored items and their keys: the contract between listings (which owns and
//! writes them), bookings (which read the listing, `ConditionCheck` its `status` and `version`,
//! and add or remove dates in the search item's unavailable set in their own transactions) and
//! reviews (which update the rating counters on both items).
//!
//! - **Listing item** `LISTING#<id>` / `LISTING`: everything about the listing. On GSI1 under
//!   `HOST#<host_id>` / `LISTING#<id>` (the host's own list, archived ones included).
//! - **Search item** `LISTING#<id>` / `SEARCH`: the small, flat projection search filters on,
//!   plus `unavailable`, the string set of every night that has a NIGHT item (blocked, held or
//!   booked). On GSI2 under `CITY#<normalised city>` / `<listing id>` while the listing is
//!   active; archiving removes the GSI2 keys (a sparse index), so archived listings are never
//!   read by search at all.
//!
//! Rules for writers outside listings:
//! - Every NIGHT put or delete changes `unavailable` in the SAME transaction
//!   (`add_unavailable` / `remove_unavailable` on `search_key`).
//! - A booking `ConditionCheck`s `condition_bookable(version)` on `key(id)`: the listing is
//!   active and unchanged since it was priced. listings increments `version` on every change a
//!   booking depends on (`VERSIONED_FIELDS`) and on archive.
//! - A review adds to `rating_count` / `rating_total` on BOTH items (`add_rating`), so search
//!   shows the same rating as the listing.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::keys::{Key, PK};
use crate::money::{Currency, Money, MoneyError};
use crate::table::Expr;

pub const LISTING_ITEM_TYPE: &str = "listing";
pub const SEARCH_ITEM_TYPE: &str = "listing_search";
pub const LISTING_SK: &str = "LISTING";
pub const SEARCH_SK: &str = "SEARCH";
pub const HOST_INDEX: &str = "GSI1";
pub const SEARCH_INDEX: &str = "GSI2";
pub const STATUS_ATTR: &str = "status";
pub const VERSION_ATTR: &str = "version";
pub const UNAVAILABLE_ATTR: &str = "unavailable";
pub const RATING_COUNT_ATTR: &str = "rating_count";
pub const RATING_TOTAL_ATTR: &str = "rating_total";
/// Service fee on the subtotal of a stay, rounded half-up to the minor unit.
pub const SERVICE_FEE_PERCENT: u32 = 12;
/// The longest stay any listing may allow (`max_nights <= 90`): a booking's nights plus its other
/// items fit one transaction.
pub const MAX_STAY_NIGHTS: u32 = 90;

/// Fields whose change bumps `version` (a booking priced before the change must fail its check).
pub const VERSIONED_FIELDS: &[&str] = &[
    "title",
    "address",
    "timezone",
    "max_guests",
    "nightly_price",
    "cleaning_fee",
    "min_nights",
    "max_nights",
    "cancellation_policy",
    "check_in_time",
    "check_out_time",
    "status",
];

/// `LISTING#<id>`: the partition of the listing, its search item and its nights.
pub fn pk(listing_id: &str) -> String {
    format!("LISTING#{listing_id}")
}

/// `LISTING#<id>` / `LISTING`.
pub fn key(listing_id: &str) -> Key {
    Key::new(pk(listing_id), LISTING_SK)
}

/// `LISTING#<id>` / `SEARCH`.
pub fn search_key(listing_id: &str) -> Key {
    Key::new(pk(listing_id), SEARCH_SK)
}

/// GSI1 partition of a host's listings: `HOST#<user id>`.
pub fn host_partition(host_id: &str) -> String {
    format!("HOST#{host_id}")
}

/// GSI1 sort key of a listing under its host: `LISTING#<id>` (ids sort by creation time).
pub fn host_sort_key(listing_id: &str) -> String {
    format!("LISTING#{listing_id}")
}

pub const HOST_SORT_PREFIX: &str = "LISTING#";

/// GSI2 partition of a city: `CITY#<normalised city>`; the caller normalises (case and accents
/// folded, whitespace collapsed), so "São Paulo" and "sao paulo" share one partition.
pub fn city_partition(normalised_city: &str) -> String {
    format!("CITY#{normalised_city}")
}

/// `active` (bookable, found by search) or `archived` (hidden; kept for its bookings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    Active,
    Archived,
}

impl ListingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }
}

/// How a stay on the listing is booked (docs/api.md "Request to book").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingMode {
    /// Booked as soon as the guest pays (the default).
    #[default]
    Instant,
    /// The guest requests, the card is authorised without being charged, and the host accepts
    /// (charged, booked) or declines (the authorisation cancelled) within 24 hours.
    Request,
}

impl BookingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Instant => "instant",
            Self::Request => "request",
        }
    }
}

/// How much of a stay a guest gets back on cancelling (docs/api.md "Cancellation policies").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancellationPolicy {
    Flexible,
    Moderate,
    Strict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Address {
    pub line1: String,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

/// A photo shown on the listing: its S3 object was checked (HEAD) when the upload completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub photo_id: String,
    /// S3 object key in the photos bucket.
    pub object_key: String,
    pub content_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    pub created_at: String,
}

/// An upload URL was issued; the photo shows only once `complete` has checked the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPhoto {
    pub photo_id: String,
    pub object_key: String,
    pub content_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// When the upload URL expires (RFC 3339); a later `complete` still works if the object is
    /// there, and expired entries are pruned on the next upload request.
    pub expires_at: String,
}

/// `rating {average, count}` kept as two counters that reviews can `ADD` to atomically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub count: u64,
    pub total: u64,
}

impl Rating {
    /// Mean stars rounded to two decimals; `None` before the first review.
    pub fn average(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.total as f64 / self.count as f64 * 100.0).round() / 100.0)
    }
}

/// How an absent optional value is written: left out (`Option`, in stored items, whose updates
/// REMOVE the attribute rather than store NULL) or as `null` (`Nullable`, in API bodies).
pub trait Optional {
    fn is_left_out(&self) -> bool;
}

impl<T> Optional for Option<T> {
    fn is_left_out(&self) -> bool {
        self.is_none()
    }
}

/// An optional value an API body writes as `null` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Nullable<T>(pub Option<T>);

impl<T> Optional for Nullable<T> {
    fn is_left_out(&self) -> bool {
        false
    }
}

/// Every host-editable field of a listing, written once: flattened (`#[serde(flatten)]`) into
/// the listing item and into listings' views, validated by listings' rules. `A` is the shape of
/// the address (the item stores the whole `Address`; the public view shows city, region and
/// country only), `Fee` the shape of the optional cleaning fee (the item leaves it out when
/// absent; API bodies write `null`).
///
/// In the OpenAPI document (listings' views only, where `Fee` is `Nullable`): every field is
/// always sent, hence `required` on the fields serde may default or leave out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(description = "The fields the host edits.")]
#[serde(bound(
    serialize = "A: Serialize, Fee: Serialize + Optional",
    deserialize = "A: Deserialize<'de>, Fee: Deserialize<'de> + Default"
))]
pub struct ListingFields<A = Address, Fee = Option<Money>> {
    /// 1 to 120 characters.
    #[schema(examples("Sunny loft by the river"))]
    pub title: String,
    /// Up to 5000 characters, line breaks allowed; `""` when the host wrote none.
    #[serde(default)]
    #[schema(required = true)]
    pub description: String,
    /// `apartment`, `house`, `room`, `studio`, `loft`, `cabin`, `cottage`, `villa`, `townhouse`,
    /// `guesthouse`, `bungalow`, `boat` or `other`.
    #[schema(examples("loft"))]
    pub property_type: String,
    pub address: A,
    /// IANA time zone: nights and check-in/out times are local to it.
    #[schema(examples("Europe/Lisbon"))]
    pub timezone: String,
    /// 1 to 50.
    pub max_guests: u32,
    /// 0 to 50.
    pub bedrooms: u32,
    /// 0 to 100.
    pub beds: u32,
    /// 0 to 50.
    pub bathrooms: u32,
    /// Up to 50 distinct entries (compared without case), each 1 to 50 characters.
    #[serde(default)]
    #[schema(required = true)]
    pub amenities: Vec<String>,
    /// The price of one night.
    pub nightly_price: Money,
    /// Added once per stay, in the nightly price's currency; `null` when there is none.
    #[serde(default, skip_serializing_if = "Optional::is_left_out")]
    #[schema(required = true, value_type = Option<Money>)]
    pub cleaning_fee: Fee,
    /// The shortest stay, 1 to 90 nights, not above `max_nights`.
    pub min_nights: u32,
    /// The longest stay, 1 to 90 nights.
    pub max_nights: u32,
    pub cancellation_policy: CancellationPolicy,
    /// `HH:MM`, local time.
    #[schema(examples("15:00"))]
    pub check_in_time: String,
    /// `HH:MM`, local time.
    #[schema(examples("11:00"))]
    pub check_out_time: String,
    /// `instant` or `request` (absent on listings made before the setting: `instant`).
    #[serde(default)]
    #[schema(required = true)]
    pub booking_mode: BookingMode,
}

impl<A, Fee> ListingFields<A, Fee> {
    /// The same fields with the address and the cleaning fee in another shape (a view's).
    pub fn reshaped<A2, Fee2>(self, address: A2, cleaning_fee: Fee2) -> ListingFields<A2, Fee2> {
        ListingFields {
            title: self.title,
            description: self.description,
            property_type: self.property_type,
            address,
            timezone: self.timezone,
            max_guests: self.max_guests,
            bedrooms: self.bedrooms,
            beds: self.beds,
            bathrooms: self.bathrooms,
            amenities: self.amenities,
            nightly_price: self.nightly_price,
            cleaning_fee,
            min_nights: self.min_nights,
            max_nights: self.max_nights,
            cancellation_policy: self.cancellation_policy,
            check_in_time: self.check_in_time,
            check_out_time: self.check_out_time,
            booking_mode: self.booking_mode,
        }
    }
}

/// The listing item (`key(id)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "type")]
    pub item_type: String,
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    pub listing_id: String,
    pub host_id: String,
    pub host_name: String,
    pub status: ListingStatus,
    /// Bumped by every change a booking depends on (`VERSIONED_FIELDS`), and by archiving.
    pub version: u64,
    /// Bumped by every write listings makes to this item: its optimistic lock.
    pub revision: u64,
    #[serde(flatten)]
    pub fields: ListingFields,
    /// Always present (possibly empty) so `SET photos.#id` works.
    #[serde(default)]
    pub photos: BTreeMap<String, Photo>,
    #[serde(default)]
    pub pending_photos: BTreeMap<String, PendingPhoto>,
    #[serde(default)]
    pub rating_count: u64,
    #[serde(default)]
    pub rating_total: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl ListingItem {
    pub fn rating(&self) -> Rating {
        Rating { count: self.rating_count, total: self.rating_total }
    }

    pub fn is_active(&self) -> bool {
        self.status == ListingStatus::Active
    }

    /// Photos in upload order (photo ids are time-sortable).
    pub fn photos_in_order(&self) -> impl Iterator<Item = &Photo> {
        self.photos.values()
    }
}

/// The search item (`search_key(id)`): what a search page filters and shows, flat so that
/// filter expressions can name each attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "type")]
    pub item_type: String,
    /// `CITY#<normalised city>` while active; absent once archived (sparse index).
    #[serde(rename = "GSI2PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    /// The listing id: newest first is a descending query.
    #[serde(rename = "GSI2SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    pub listing_id: String,
    pub status: ListingStatus,
    pub title: String,
    pub property_type: String,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub country: String,
    pub max_guests: u32,
    pub bedrooms: u32,
    pub beds: u32,
    pub bathrooms: u32,
    /// Nightly price in minor units of `currency`.
    pub price: i64,
    pub currency: Currency,
    /// Minor units of `currency`; absent when the listing has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleaning_fee: Option<i64>,
    pub min_nights: u32,
    pub max_nights: u32,
    /// S3 object key of the first photo, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_photo: Option<String>,
    #[serde(default)]
    pub rating_count: u64,
    #[serde(default)]
    pub rating_total: u64,
    /// Every night with a NIGHT item (`YYYY-MM-DD`), as a DynamoDB string set. DynamoDB has no
    /// empty sets: absent means none.
    #[serde(with = "serde_dynamo::string_set", default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<String>,
    pub created_at: String,
}

impl SearchItem {
    pub fn rating(&self) -> Rating {
        Rating { count: self.rating_count, total: self.rating_total }
    }

    pub fn nightly_price(&self) -> Money {
        Money::new(self.price, self.currency)
    }

    pub fn cleaning_fee(&self) -> Option<Money> {
        self.cleaning_fee.map(|a| Money::new(a, self.currency))
    }

    /// Whether no night of `[check_in, check_out)` is unavailable.
    pub fn is_free(&self, nights: &[Date]) -> bool {
        nights.iter().all(|n| !self.unavailable.iter().any(|u| *u == n.to_string()))
    }
}

/// Update for the search item when nights get NIGHT items: `ADD unavailable :dates`.
/// `None` for no dates (DynamoDB refuses empty sets).
pub fn add_unavailable(dates: &[Date]) -> Option<Expr> {
    set_of(dates)
        .map(|set| Expr::new("ADD #s_unavailable :s_add").name("#s_unavailable", UNAVAILABLE_ATTR).value(":s_add", set))
}

/// Update for the search item when nights lose their NIGHT items: `DELETE unavailable :dates`.
/// DynamoDB rejects ADD and DELETE of one attribute in one update: a write that does both
/// needs two transactions.
pub fn remove_unavailable(dates: &[Date]) -> Option<Expr> {
    set_of(dates).map(|set| {
        Expr::new("DELETE #s_unavailable :s_del").name("#s_unavailable", UNAVAILABLE_ATTR).value(":s_del", set)
    })
}

/// The condition to put on every search-item update: it exists (never create a stray one).
pub fn condition_search_item_exists() -> Expr {
    Expr::new("attribute_exists(#s_pk)").name("#s_pk", PK)
}

fn set_of(dates: &[Date]) -> Option<aws_sdk_dynamodb::types::AttributeValue> {
    let mut set: Vec<String> = dates.iter().map(ToString::to_string).collect();
    set.sort();
    set.dedup();
    (!set.is_empty()).then_some(aws_sdk_dynamodb::types::AttributeValue::Ss(set))
}

/// A booking's `ConditionCheck` on the listing item: active, and the version it was priced at.
pub fn condition_bookable(version: u64) -> Expr {
    Expr::new("#l_status = :l_active AND #l_version = :l_version")
        .name("#l_status", STATUS_ATTR)
        .name("#l_version", VERSION_ATTR)
        .s(":l_active", ListingStatus::Active.as_str())
        .value(":l_version", aws_sdk_dynamodb::types::AttributeValue::N(version.to_string()))
}

/// A review's update of the listing item and of the search item: one more rating of `stars`.
pub fn add_rating(stars: u8) -> Expr {
    Expr::new("ADD #r_count :r_one, #r_total :r_stars")
        .name("#r_count", RATING_COUNT_ATTR)
        .name("#r_total", RATING_TOTAL_ATTR)
        .n(":r_one", 1)
        .n(":r_stars", i64::from(stars))
}

/// The price of a stay, as API.md's quote defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StayPrice {
    pub nights: u32,
    pub subtotal: Money,
    pub cleaning_fee: Money,
    pub service_fee: Money,
    pub total: Money,
}

/// subtotal = nightly x nights; service fee = 12 % of the subtotal, half-up to the minor unit;
/// total = subtotal + cleaning fee + service fee. The cleaning fee must be in the nightly
/// price's currency.
pub fn stay_price(nightly: Money, nights: u32, cleaning_fee: Option<Money>) -> Result<StayPrice, MoneyError> {
    let currency = nightly.currency;
    let subtotal = nightly.checked_mul(i64::from(nights))?;
    let cleaning_fee = cleaning_fee.unwrap_or(Money::zero(currency));
    let service_fee = subtotal.percent_half_up(SERVICE_FEE_PERCENT)?;
    let total = Money::sum(currency, [subtotal, cleaning_fee, service_fee])?;
    Ok(StayPrice { nights, subtotal, cleaning_fee, service_fee, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    pub(crate) fn listing() -> ListingItem {
        let k = key("lst_1");
        ListingItem {
            pk: k.pk,
            sk: k.sk,
            item_type: LISTING_ITEM_TYPE.into(),
            gsi1pk: host_partition("u-1"),
            gsi1sk: host_sort_key("lst_1"),
            listing_id: "lst_1".into(),
            host_id: "u-1".into(),
            host_name: "Helena".into(),
            status: ListingStatus::Active,
            version: 1,
            revision: 1,
            fields: ListingFields {
                title: "Loft".into(),
                description: String::new(),
                property_type: "apartment".into(),
                address: Address {
                    line1: "Rua A 1".into(),
                    city: "Lisboa".into(),
                    region: None,
                    country: "PT".into(),
                    postal_code: Some("1100-001".into()),
                },
                timezone: "Europe/Lisbon".into(),
                max_guests: 2,
                bedrooms: 1,
                beds: 1,
                bathrooms: 1,
                amenities: vec!["wifi".into()],
                nightly_price: Money::new(10_000, Currency::EUR),
                cleaning_fee: None,
                min_nights: 1,
                max_nights: 30,
                cancellation_policy: CancellationPolicy::Moderate,
                check_in_time: "15:00".into(),
                check_out_time: "11:00".into(),
                booking_mode: Default::default(),
            },
            photos: BTreeMap::new(),
            pending_photos: BTreeMap::new(),
            rating_count: 0,
            rating_total: 0,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn keys() {
        assert_eq!(key("lst_1"), Key::new("LISTING#lst_1", "LISTING"));
        assert_eq!(search_key("lst_1"), Key::new("LISTING#lst_1", "SEARCH"));
        assert_eq!(host_partition("u-1"), "HOST#u-1");
        assert_eq!(host_sort_key("lst_1"), "LISTING#lst_1");
        assert!(host_sort_key("lst_1").starts_with(HOST_SORT_PREFIX));
        assert_eq!(city_partition("sao paulo"), "CITY#sao paulo");
        // The listing, its search item and its nights share one partition but never a sort key.
        let night = crate::night::key("lst_1", d("2026-01-01"));
        assert_eq!(night.pk, key("lst_1").pk);
        assert_ne!(night.sk, LISTING_SK);
        assert_ne!(night.sk, SEARCH_SK);
    }

    #[test]
    fn listing_item_round_trips_with_empty_photo_maps() {
        let l = listing();
        let item = crate::table::to_item(&l).unwrap();
        assert_eq!(item["photos"], AttributeValue::M(Default::default()));
        assert_eq!(item["pending_photos"], AttributeValue::M(Default::default()));
        assert_eq!(item["status"], AttributeValue::S("active".into()));
        assert_eq!(item["version"], AttributeValue::N("1".into()));
        assert_eq!(item["GSI1PK"], AttributeValue::S("HOST#u-1".into()));
        assert!(!item.contains_key("cleaning_fee"));
        let back: ListingItem = crate::table::from_item(item).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn listing_fields_are_flat_attributes_of_the_item() {
        let mut l = listing();
        l.fields.cleaning_fee = Some(Money::new(2_500, Currency::EUR));
        let item = crate::table::to_item(&l).unwrap();
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "GSI1PK",
                "GSI1SK",
                "PK",
                "SK",
                "address",
                "amenities",
                "bathrooms",
                "bedrooms",
                "beds",
                "booking_mode",
                "cancellation_policy",
                "check_in_time",
                "check_out_time",
                "cleaning_fee",
                "created_at",
                "description",
                "host_id",
                "host_name",
                "listing_id",
                "max_guests",
                "max_nights",
                "min_nights",
                "nightly_price",
                "pending_photos",
                "photos",
                "property_type",
                "rating_count",
                "rating_total",
                "revision",
                "status",
                "timezone",
                "title",
                "type",
                "updated_at",
                "version",
            ]
        );
        assert_eq!(item["max_guests"], AttributeValue::N("2".into()));
        let back: ListingItem = crate::table::from_item(item).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn an_absent_fee_is_left_out_of_items_and_null_in_bodies() {
        let stored = listing().fields;
        assert!(!serde_json::to_value(&stored).unwrap().as_object().unwrap().contains_key("cleaning_fee"));
        let fee = Nullable(stored.cleaning_fee);
        let shown = stored.clone().reshaped(stored.address.clone(), fee);
        assert_eq!(serde_json::to_value(&shown).unwrap()["cleaning_fee"], serde_json::Value::Null);
        assert!(serde_json::to_value(&shown).unwrap().as_object().unwrap().contains_key("cleaning_fee"));
    }

    fn search() -> SearchItem {
        let k = search_key("lst_1");
        SearchItem {
            pk: k.pk,
            sk: k.sk,
            item_type: SEARCH_ITEM_TYPE.into(),
            gsi2pk: Some(city_partition("lisboa")),
            gsi2sk: Some("lst_1".into()),
            listing_id: "lst_1".into(),
            status: ListingStatus::Active,
            title: "Loft".into(),
            property_type: "apartment".into(),
            city: "Lisboa".into(),
            region: None,
            country: "PT".into(),
            max_guests: 2,
            bedrooms: 1,
            beds: 1,
            bathrooms: 1,
            price: 10_000,
            currency: Currency::EUR,
            cleaning_fee: Some(2_500),
            min_nights: 1,
            max_nights: 30,
            cover_photo: None,
            rating_count: 2,
            rating_total: 9,
            unavailable: vec![],
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn search_item_keeps_unavailable_as_a_string_set_and_drops_it_when_empty() {
        let mut s = search();
        let item = crate::table::to_item(&s).unwrap();
        assert!(!item.contains_key("unavailable"), "DynamoDB has no empty sets");
        assert_eq!(item["price"], AttributeValue::N("10000".into()));
        assert_eq!(item["currency"], AttributeValue::S("EUR".into()));
        s.unavailable = vec!["2026-02-01".into(), "2026-02-02".into()];
        let item = crate::table::to_item(&s).unwrap();
        assert_eq!(item["unavailable"], AttributeValue::Ss(vec!["2026-02-01".into(), "2026-02-02".into()]));
        let back: SearchItem = crate::table::from_item(item).unwrap();
        assert_eq!(back, s);
        assert!(!back.is_free(&[d("2026-01-31"), d("2026-02-01")]));
        assert!(back.is_free(&[d("2026-01-30"), d("2026-01-31")]));
        assert_eq!(back.rating().average(), Some(4.5));
        assert_eq!(back.cleaning_fee(), Some(Money::new(2_500, Currency::EUR)));

        let mut archived = search();
        archived.gsi2pk = None;
        archived.gsi2sk = None;
        let item = crate::table::to_item(&archived).unwrap();
        assert!(!item.contains_key("GSI2PK") && !item.contains_key("GSI2SK"), "sparse index");
    }

    #[test]
    fn unavailable_updates_are_sets_and_never_empty() {
        assert!(add_unavailable(&[]).is_none());
        assert!(remove_unavailable(&[]).is_none());
        let add = add_unavailable(&[d("2026-02-02"), d("2026-02-01"), d("2026-02-02")]).unwrap();
        assert_eq!(add.expression, "ADD #s_unavailable :s_add");
        assert_eq!(add.values[":s_add"], AttributeValue::Ss(vec!["2026-02-01".into(), "2026-02-02".into()]));
        let del = remove_unavailable(&[d("2026-02-01")]).unwrap();
        assert_eq!(del.expression, "DELETE #s_unavailable :s_del");
        assert_eq!(del.names["#s_unavailable"], UNAVAILABLE_ATTR);
    }

    #[test]
    fn contract_conditions() {
        let c = condition_bookable(7);
        assert_eq!(c.values[":l_version"], AttributeValue::N("7".into()));
        assert_eq!(c.values[":l_active"], AttributeValue::S("active".into()));
        let r = add_rating(4);
        assert_eq!(r.expression, "ADD #r_count :r_one, #r_total :r_stars");
        assert_eq!(r.values[":r_stars"], AttributeValue::N("4".into()));
        assert_eq!(condition_search_item_exists().names["#s_pk"], "PK");
    }

    #[test]
    fn ratings_average_to_two_decimals() {
        assert_eq!(Rating::default().average(), None);
        assert_eq!(Rating { count: 3, total: 14 }.average(), Some(4.67));
        assert_eq!(Rating { count: 1, total: 5 }.average(), Some(5.0));
    }

    #[test]
    fn stay_price_follows_the_quote_rules() {
        // 3 nights of 100.50 EUR: subtotal 301.50, fee 12 % = 36.18, cleaning 25.00.
        let p = stay_price(Money::new(10_050, Currency::EUR), 3, Some(Money::new(2_500, Currency::EUR))).unwrap();
        assert_eq!(p.subtotal.amount, 30_150);
        assert_eq!(p.service_fee.amount, 3_618);
        assert_eq!(p.cleaning_fee.amount, 2_500);
        assert_eq!(p.total.amount, 30_150 + 3_618 + 2_500);
        // Half-up: 12 % of 10_054 = 1206.48 -> 1206; of 10_055 = 1206.6 -> 1207; of 125 = 15.
        assert_eq!(stay_price(Money::new(10_054, Currency::USD), 1, None).unwrap().service_fee.amount, 1_206);
        assert_eq!(stay_price(Money::new(10_055, Currency::USD), 1, None).unwrap().service_fee.amount, 1_207);
        // JPY has no minor unit: 12 % of 4_321 = 518.52 -> 519.
        let jpy = stay_price(Money::new(4_321, Currency::JPY), 1, None).unwrap();
        assert_eq!((jpy.service_fee.amount, jpy.total.amount), (519, 4_840));
        assert_eq!(jpy.cleaning_fee, Money::zero(Currency::JPY));
        assert!(stay_price(Money::new(100, Currency::USD), 1, Some(Money::new(1, Currency::EUR))).is_err());
        assert!(stay_price(Money::new(i64::MAX, Currency::USD), 2, None).is_err());
    }
}
