//! The listings context's rules as plain functions over values: what a valid listing, patch,
//! photo upload, calendar change and search are. Handlers receive these parsed values, never
//! raw strings; every error names its field.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Deserializer};
use shared::currencies;
use shared::listing::{
    Address, BookingMode, CancellationPolicy, ListingFields, ListingItem, ListingStatus, MAX_STAY_NIGHTS, PendingPhoto,
    Photo,
};
use shared::night::parse_date;
use shared::{ApiError, Currency, FieldError, Money};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};
use utoipa::{IntoParams, ToSchema};

pub const TITLE_MAX: usize = 120;
pub const DESCRIPTION_MAX: usize = 5000;
pub const LINE1_MAX: usize = 200;
pub const CITY_MAX: usize = 100;
pub const REGION_MAX: usize = 100;
pub const POSTAL_CODE_MAX: usize = 20;
pub const MAX_GUESTS: u32 = 50;
pub const MAX_ROOMS: u32 = 50;
pub const MAX_BEDS: u32 = 100;
pub const AMENITIES_MAX: usize = 50;
pub const AMENITY_MAX: usize = 50;
/// A nightly price or fee above this many minor units is a typo (10 million USD), and keeps every
/// stay total far from overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000;
pub const DEFAULT_MIN_NIGHTS: u32 = 1;
pub const DEFAULT_MAX_NIGHTS: u32 = 30;
pub const DEFAULT_CHECK_IN: &str = "15:00";
pub const DEFAULT_CHECK_OUT: &str = "11:00";
/// Dates per `PUT /blocked-dates` call: with the search item, 91 items per transaction (< 100).
pub const MAX_CALENDAR_DATES: usize = 90;
/// How far ahead a host may block (days after today in the listing's time zone).
pub const CALENDAR_HORIZON_DAYS: i32 = 730;
/// Nights per availability read (one Query).
pub const MAX_AVAILABILITY_NIGHTS: i32 = 366;
pub const DEFAULT_AVAILABILITY_NIGHTS: i32 = 30;
pub const MAX_PHOTO_BYTES: u64 = 10 * 1024 * 1024;
pub const PHOTO_CONTENT_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp"];
pub const CAPTION_MAX: usize = 200;

/// Kinds of home. Unknown values are a 400 naming `property_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PropertyType {
    Apartment,
    House,
    Room,
    Studio,
    Loft,
    Cabin,
    Cottage,
    Villa,
    Townhouse,
    Guesthouse,
    Bungalow,
    Boat,
    Other,
}

impl PropertyType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apartment => "apartment",
            Self::House => "house",
            Self::Room => "room",
            Self::Studio => "studio",
            Self::Loft => "loft",
            Self::Cabin => "cabin",
            Self::Cottage => "cottage",
            Self::Villa => "villa",
            Self::Townhouse => "townhouse",
            Self::Guesthouse => "guesthouse",
            Self::Bungalow => "bungalow",
            Self::Boat => "boat",
            Self::Other => "other",
        }
    }
}

/// Collects every field error of a request before answering, so the client fixes them at once.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(ApiError::validation(self.0)),
        }
    }
}

fn err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

/// Trimmed text of at least `min` characters, at most `max` as sent (the schema's `maxLength`
/// counts the string as sent, so a padded one over it is refused too), without control
/// characters (`multiline` allows line breaks and tabs).
pub fn parse_text(field: &str, raw: &str, min: usize, max: usize, multiline: bool) -> Result<String, FieldError> {
    let text = raw.trim();
    let len = text.chars().count();
    if len < min {
        return Err(err(
            field,
            if min == 1 { "must not be empty".to_owned() } else { format!("must be at least {min} characters") },
        ));
    }
    if raw.chars().count() > max {
        return Err(err(field, format!("must be at most {max} characters")));
    }
    if text.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))) {
        return Err(err(field, "must not contain control characters"));
    }
    Ok(text.to_owned())
}

/// Optional text: absent or blank is `None`.
fn parse_optional_text(field: &str, raw: Option<&str>, max: usize) -> Result<Option<String>, FieldError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => parse_text(field, t, 1, max, false).map(Some),
    }
}

/// ISO 3166-1 alpha-2 codes (officially assigned). Sorted for binary search; a test keeps it so.
#[rustfmt::skip]
const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The OpenAPI schema of a country: exactly the codes [`parse_country`] accepts.
fn country_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(COUNTRIES.iter().copied()))
        .description(Some("ISO 3166-1 alpha-2 country code, upper case."))
        .examples(["PT"])
        .build()
}

/// An ISO 3166-1 alpha-2 code in upper case (`pt` is refused, not normalised: one spelling on
/// the wire, as for currencies).
pub fn parse_country(field: &str, raw: &str) -> Result<String, FieldError> {
    if COUNTRIES.binary_search(&raw).is_ok() {
        Ok(raw.to_owned())
    } else {
        Err(err(field, "must be an ISO 3166-1 alpha-2 country code in upper case, such as PT"))
    }
}

/// An IANA time zone name from the bundled tz database, in its canonical spelling.
pub fn parse_timezone(field: &str, raw: &str) -> Result<String, FieldError> {
    let invalid = || err(field, "must be an IANA time zone such as Europe/Lisbon");
    let name = raw.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(invalid());
    }
    let tz = jiff::tz::TimeZone::get(name).map_err(|_| invalid())?;
    tz.iana_name().map(str::to_owned).ok_or_else(invalid)
}

/// `HH:MM`, 24-hour local time.
pub fn parse_time(field: &str, raw: &str) -> Result<String, FieldError> {
    let b = raw.as_bytes();
    let ok = b.len() == 5
        && b[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit())
        && (b[0] - b'0') * 10 + (b[1] - b'0') < 24
        && (b[3] - b'0') * 10 + (b[4] - b'0') < 60;
    if ok { Ok(raw.to_owned()) } else { Err(err(field, "must be a local time HH:MM, such as 15:00")) }
}

fn parse_range(field: &str, n: u32, min: u32, max: u32) -> Result<u32, FieldError> {
    if (min..=max).contains(&n) { Ok(n) } else { Err(err(field, format!("must be {min} to {max}"))) }
}

/// Money for a price or fee: more than zero, at most `MAX_AMOUNT` minor units.
///
/// In a currency Stripe charges in steps (three-decimal currencies: multiples of 10), the
/// nightly price is a multiple of [`currencies::AcceptedCurrency::nightly_step`] and a fee of
/// [`currencies::AcceptedCurrency::iso_step`], so every stay's total can be charged exactly
/// (`shared::currencies`). A currency Roost does not accept is checked before, by
/// [`check_currencies`].
pub fn parse_price(field: &str, money: Money) -> Result<Money, FieldError> {
    if money.amount <= 0 {
        return Err(err(&format!("{field}.amount"), "must be more than 0"));
    }
    if money.amount > MAX_AMOUNT {
        return Err(err(&format!("{field}.amount"), format!("must be at most {MAX_AMOUNT}")));
    }
    if let Some(row) = currencies::accepted(money.currency) {
        let step = if field == "nightly_price" { row.nightly_step() } else { row.iso_step() };
        if money.amount % step != 0 {
            return Err(err(
                &format!("{field}.amount"),
                format!(
                    "must be a multiple of {step} in {} ({}): payments in {} are taken in steps of {}",
                    money.currency,
                    Money::new(step, money.currency),
                    money.currency,
                    Money::new(row.iso_step(), money.currency),
                ),
            ));
        }
    }
    Ok(money)
}

/// 422 `unsupported_currency` when a price names a currency Roost does not take payments in
/// (an unknown or malformed code is a 400 field error of the body instead).
/// 409 `payout_account_required`: the stage lets only hosts who can be paid publish.
pub fn payout_account_required() -> ApiError {
    ApiError::conflict(
        "payout_account_required",
        "Connect a payout account first (POST /v1/me/payout-account, then Stripe's onboarding): \
         listings are published once their host can be paid.",
    )
}

pub fn check_currencies(prices: &[(&str, Option<Money>)]) -> Result<(), ApiError> {
    for (field, money) in prices {
        if let Some(m) = money
            && currencies::accepted(m.currency).is_none()
        {
            return Err(currencies::unsupported_currency(m.currency)
                .with_field(format!("{field}.currency"), "is not a currency Roost accepts"));
        }
    }
    Ok(())
}

/// Amenities: trimmed, 1 to 50 characters each, at most 50, duplicates dropped (order kept).
pub fn parse_amenities(field: &str, raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.len() > AMENITIES_MAX {
        return Err(err(field, format!("must have at most {AMENITIES_MAX} entries")));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, a) in raw.iter().enumerate() {
        let a = parse_text(&format!("{field}[{i}]"), a, 1, AMENITY_MAX, false)?;
        if seen.insert(a.to_lowercase()) {
            out.push(a);
        }
    }
    Ok(out)
}

/// `address` as sent by a client (text is trimmed; lengths count characters after trimming).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AddressInput)]
pub struct AddressBody {
    /// Street and number: 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S", examples("Rua Augusta 1"))]
    pub line1: String,
    /// 1 to 100 characters, with at least one letter or digit; searched without case or accents.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S", examples("Lisbon"))]
    pub city: String,
    /// Up to 100 characters; blank or `null` is none.
    #[serde(default)]
    #[schema(max_length = 100, examples("Lisboa"))]
    pub region: Option<String>,
    #[schema(schema_with = country_schema)]
    pub country: String,
    /// Up to 20 characters; blank or `null` is none.
    #[serde(default)]
    #[schema(max_length = 20, examples("1100-053"))]
    pub postal_code: Option<String>,
}

pub fn parse_address(fields: &mut Fields, body: &AddressBody) -> Option<Address> {
    let line1 = fields.check(parse_text("address.line1", &body.line1, 1, LINE1_MAX, false));
    let city = fields.check(parse_city("address.city", &body.city));
    let region = fields.check(parse_optional_text("address.region", body.region.as_deref(), REGION_MAX));
    let country = fields.check(parse_country("address.country", &body.country));
    let postal_code =
        fields.check(parse_optional_text("address.postal_code", body.postal_code.as_deref(), POSTAL_CODE_MAX));
    Some(Address { line1: line1?, city: city?, region: region?, country: country?, postal_code: postal_code? })
}

/// A city as the host writes it (shown as is); it must have something to search by.
pub fn parse_city(field: &str, raw: &str) -> Result<String, FieldError> {
    let city = parse_text(field, raw, 1, CITY_MAX, false)?;
    if !normalise_city(&city).chars().any(char::is_alphanumeric) {
        return Err(err(field, "must contain letters"));
    }
    Ok(city)
}

/// The search key of a city: Unicode NFKD, combining marks stripped, a few letters that do not
/// decompose folded (ø, ł, ß, ...), lower case, whitespace collapsed. "São  Paulo" and
/// "SAO PAULO" both give "sao paulo".
pub fn normalise_city(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let folded = raw.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase);
    let mut pending_space = false;
    for c in folded {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if c.is_control() {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        match c {
            'ø' => out.push('o'),
            'ł' => out.push('l'),
            'đ' | 'ð' => out.push('d'),
            'ħ' => out.push('h'),
            'ı' => out.push('i'),
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'þ' => out.push_str("th"),
            other => out.push(other),
        }
    }
    out
}

/// Double option for PATCH: absent -> `None`, `null` -> `Some(None)`, value -> `Some(Some(v))`.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /v1/listings` body: unknown fields are refused. Text is trimmed; lengths count
/// characters after trimming.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewListing, examples(json!({
    "title": "Sunny loft by the river",
    "description": "Two rooms.\nNear the river.",
    "property_type": "loft",
    "address": {"line1": "Rua Augusta 1", "city": "Lisbon", "country": "PT", "postal_code": "1100-053"},
    "timezone": "Europe/Lisbon",
    "max_guests": 4, "bedrooms": 2, "beds": 2, "bathrooms": 1,
    "amenities": ["wifi", "kitchen"],
    "nightly_price": {"amount": 12000, "currency": "EUR"},
    "cleaning_fee": {"amount": 3000, "currency": "EUR"},
    "min_nights": 2,
    "cancellation_policy": "moderate"
})))]
pub struct ListingBody {
    /// 1 to 120 characters.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S", examples("Sunny loft by the river"))]
    pub title: String,
    /// Up to 5000 characters, line breaks allowed (default `""`).
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    pub property_type: PropertyType,
    pub address: AddressBody,
    /// An IANA time zone, such as `Europe/Lisbon`: nights and check-in/out times are local to it.
    #[schema(min_length = 1, examples("Europe/Lisbon"))]
    pub timezone: String,
    /// 1 to 50.
    #[schema(minimum = 1, maximum = 50)]
    pub max_guests: u32,
    #[schema(minimum = 0, maximum = 50)]
    pub bedrooms: u32,
    #[schema(minimum = 0, maximum = 100)]
    pub beds: u32,
    #[schema(minimum = 0, maximum = 50)]
    pub bathrooms: u32,
    /// At most 50, each 1 to 50 characters; duplicates (without case) are dropped.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub amenities: Vec<String>,
    /// More than 0 and at most 1000000000 minor units, in a currency Roost accepts
    /// (docs/currencies.md; another ISO currency is 422 `unsupported_currency`). In a
    /// three-decimal currency, whole units (a multiple of 1000).
    pub nightly_price: Money,
    /// In the nightly price's currency, more than 0 (a multiple of 10 in a three-decimal
    /// currency); absent or `null`: none.
    #[serde(default)]
    pub cleaning_fee: Option<Money>,
    /// 1 to 90, not above `max_nights` (default 1).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 90)]
    pub min_nights: Option<u32>,
    /// 1 to 90 (default 30).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 90)]
    pub max_nights: Option<u32>,
    pub cancellation_policy: CancellationPolicy,
    /// `HH:MM`, local time (default `15:00`).
    #[serde(default)]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", examples("15:00"))]
    pub check_in_time: Option<String>,
    /// `HH:MM`, local time (default `11:00`).
    #[serde(default)]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", examples("11:00"))]
    pub check_out_time: Option<String>,
    /// `instant` (the default) or `request`: the host accepts or declines each stay.
    #[serde(default)]
    pub booking_mode: Option<BookingMode>,
}

/// `PATCH /v1/listings/{id}` body: the same fields, each optional (the allow-list: anything
/// else, such as `host_id`, `status` or `version`, is an unknown field). `address` is replaced
/// whole; `cleaning_fee: null` removes the fee.
///
/// In the OpenAPI document: every field may be absent, and `null` is the same as absent (no
/// change) but for `cleaning_fee`, where `null` removes the fee.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ListingPatch, examples(json!({"title": "Sunny loft, river view", "nightly_price": {"amount": 13500, "currency": "EUR"}, "cleaning_fee": null})))]
pub struct ListingPatch {
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    pub title: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    pub property_type: Option<PropertyType>,
    /// Replaces the whole address.
    pub address: Option<AddressBody>,
    #[schema(min_length = 1, examples("Europe/Lisbon"))]
    pub timezone: Option<String>,
    #[schema(minimum = 1, maximum = 50)]
    pub max_guests: Option<u32>,
    #[schema(minimum = 0, maximum = 50)]
    pub bedrooms: Option<u32>,
    #[schema(minimum = 0, maximum = 100)]
    pub beds: Option<u32>,
    #[schema(minimum = 0, maximum = 50)]
    pub bathrooms: Option<u32>,
    /// Replaces the whole list.
    #[schema(max_items = 50)]
    pub amenities: Option<Vec<String>>,
    pub nightly_price: Option<Money>,
    /// `null` removes the fee.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Money>)]
    pub cleaning_fee: Option<Option<Money>>,
    #[schema(minimum = 1, maximum = 90)]
    pub min_nights: Option<u32>,
    #[schema(minimum = 1, maximum = 90)]
    pub max_nights: Option<u32>,
    pub cancellation_policy: Option<CancellationPolicy>,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub check_in_time: Option<String>,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub check_out_time: Option<String>,
    /// Applies to bookings made after the change; requests waiting for an answer stay requests.
    pub booking_mode: Option<BookingMode>,
}

/// A new listing's fields, with API.md's defaults; every bad field is reported.
pub fn parse_listing(body: &ListingBody) -> Result<ListingFields, ApiError> {
    check_currencies(&[("nightly_price", Some(body.nightly_price)), ("cleaning_fee", body.cleaning_fee)])?;
    let mut f = Fields::default();
    let title = f.check(parse_text("title", &body.title, 1, TITLE_MAX, false));
    let description =
        f.check(parse_text("description", body.description.as_deref().unwrap_or(""), 0, DESCRIPTION_MAX, true));
    let address = parse_address(&mut f, &body.address);
    let timezone = f.check(parse_timezone("timezone", &body.timezone));
    let max_guests = f.check(parse_range("max_guests", body.max_guests, 1, MAX_GUESTS));
    let bedrooms = f.check(parse_range("bedrooms", body.bedrooms, 0, MAX_ROOMS));
    let beds = f.check(parse_range("beds", body.beds, 0, MAX_BEDS));
    let bathrooms = f.check(parse_range("bathrooms", body.bathrooms, 0, MAX_ROOMS));
    let amenities = f.check(parse_amenities("amenities", &body.amenities));
    let nightly_price = f.check(parse_price("nightly_price", body.nightly_price));
    let cleaning_fee = f.check(body.cleaning_fee.map(|m| parse_price("cleaning_fee", m)).transpose());
    let min_nights =
        f.check(parse_range("min_nights", body.min_nights.unwrap_or(DEFAULT_MIN_NIGHTS), 1, MAX_STAY_NIGHTS));
    let max_nights =
        f.check(parse_range("max_nights", body.max_nights.unwrap_or(DEFAULT_MAX_NIGHTS), 1, MAX_STAY_NIGHTS));
    let check_in_time = f.check(parse_time("check_in_time", body.check_in_time.as_deref().unwrap_or(DEFAULT_CHECK_IN)));
    let check_out_time =
        f.check(parse_time("check_out_time", body.check_out_time.as_deref().unwrap_or(DEFAULT_CHECK_OUT)));
    let parsed = (|| {
        Some(ListingFields {
            title: title?,
            description: description?,
            property_type: body.property_type.as_str().to_owned(),
            address: address?,
            timezone: timezone?,
            max_guests: max_guests?,
            bedrooms: bedrooms?,
            beds: beds?,
            bathrooms: bathrooms?,
            amenities: amenities?,
            nightly_price: nightly_price?,
            cleaning_fee: cleaning_fee?,
            min_nights: min_nights?,
            max_nights: max_nights?,
            cancellation_policy: body.cancellation_policy,
            check_in_time: check_in_time?,
            check_out_time: check_out_time?,
            booking_mode: body.booking_mode.unwrap_or_default(),
        })
    })();
    if let Some(p) = &parsed {
        check_together(p, &mut f, true, true, true);
    }
    f.finish(parsed)
}

/// `current` with `patch` applied; fields the patch names are validated, then the rules between
/// fields are checked on the result (naming the field the patch sent).
pub fn patched(current: &ListingFields, patch: &ListingPatch) -> Result<ListingFields, ApiError> {
    check_currencies(&[("nightly_price", patch.nightly_price), ("cleaning_fee", patch.cleaning_fee.flatten())])?;
    let mut f = Fields::default();
    let mut next = current.clone();
    if let Some(v) = &patch.title {
        next.title = f.check(parse_text("title", v, 1, TITLE_MAX, false)).unwrap_or_default();
    }
    if let Some(v) = &patch.description {
        next.description = f.check(parse_text("description", v, 0, DESCRIPTION_MAX, true)).unwrap_or_default();
    }
    if let Some(v) = patch.property_type {
        next.property_type = v.as_str().to_owned();
    }
    if let Some(v) = &patch.address
        && let Some(a) = parse_address(&mut f, v)
    {
        next.address = a;
    }
    if let Some(v) = &patch.timezone {
        next.timezone = f.check(parse_timezone("timezone", v)).unwrap_or_default();
    }
    let range = |f: &mut Fields, name: &str, v: Option<u32>, min: u32, max: u32, current: u32| match v {
        Some(n) => f.check(parse_range(name, n, min, max)).unwrap_or(current),
        None => current,
    };
    next.max_guests = range(&mut f, "max_guests", patch.max_guests, 1, MAX_GUESTS, next.max_guests);
    next.bedrooms = range(&mut f, "bedrooms", patch.bedrooms, 0, MAX_ROOMS, next.bedrooms);
    next.beds = range(&mut f, "beds", patch.beds, 0, MAX_BEDS, next.beds);
    next.bathrooms = range(&mut f, "bathrooms", patch.bathrooms, 0, MAX_ROOMS, next.bathrooms);
    next.min_nights = range(&mut f, "min_nights", patch.min_nights, 1, MAX_STAY_NIGHTS, next.min_nights);
    next.max_nights = range(&mut f, "max_nights", patch.max_nights, 1, MAX_STAY_NIGHTS, next.max_nights);
    if let Some(v) = &patch.amenities {
        next.amenities = f.check(parse_amenities("amenities", v)).unwrap_or_default();
    }
    if let Some(v) = patch.nightly_price {
        next.nightly_price = f.check(parse_price("nightly_price", v)).unwrap_or(next.nightly_price);
    }
    if let Some(v) = patch.cleaning_fee {
        next.cleaning_fee = f.check(v.map(|m| parse_price("cleaning_fee", m)).transpose()).unwrap_or(None);
    }
    if let Some(v) = patch.cancellation_policy {
        next.cancellation_policy = v;
    }
    if let Some(v) = &patch.check_in_time {
        next.check_in_time = f.check(parse_time("check_in_time", v)).unwrap_or_default();
    }
    if let Some(v) = &patch.check_out_time {
        next.check_out_time = f.check(parse_time("check_out_time", v)).unwrap_or_default();
    }
    if let Some(v) = patch.booking_mode {
        next.booking_mode = v;
    }
    if f.is_empty() {
        check_together(
            &next,
            &mut f,
            patch.min_nights.is_some() || patch.max_nights.is_none(),
            patch.max_nights.is_some(),
            patch.cleaning_fee.is_some() || patch.nightly_price.is_none(),
        );
    }
    f.finish(Some(next))
}

/// Rules between fields. When a rule breaks, the error names the field the client sent
/// (`blame_*` say which side to name).
fn check_together(l: &ListingFields, f: &mut Fields, blame_min: bool, blame_max: bool, blame_fee: bool) {
    if l.min_nights > l.max_nights {
        let message = "min_nights must not exceed max_nights";
        if blame_min || !blame_max {
            f.push("min_nights", message);
        } else {
            f.push("max_nights", message);
        }
    }
    if let Some(fee) = l.cleaning_fee
        && fee.currency != l.nightly_price.currency
    {
        let message = format!("must be in the nightly price's currency ({})", l.nightly_price.currency);
        if blame_fee {
            f.push("cleaning_fee.currency", message);
        } else {
            f.push("nightly_price.currency", message);
        }
    }
}

/// Today's date in `timezone` (an IANA name stored on the listing); UTC if it is unknown.
pub fn today_in(timezone: &str, now: Timestamp) -> Date {
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    now.to_zoned(tz).date()
}

fn days_between(from: Date, to: Date) -> i64 {
    from.until(to).map(|s| i64::from(s.get_days())).unwrap_or(i64::MAX)
}

/// The nights `[from, to)`, for a calendar read: `from` defaults to today in the listing's time
/// zone, `to` to 30 nights later; at most 366 nights.
pub fn parse_availability_range(from: Option<&str>, to: Option<&str>, today: Date) -> Result<(Date, Date), ApiError> {
    let mut f = Fields::default();
    let from = match from {
        Some(s) => f.check(parse_date(s).ok_or_else(|| err("from", "must be a date YYYY-MM-DD"))),
        None => Some(today),
    };
    let to = match (to, from) {
        (Some(s), _) => f.check(parse_date(s).ok_or_else(|| err("to", "must be a date YYYY-MM-DD"))),
        // Near the calendar's end there is no default `to`: say so, or the 400 names nothing.
        (None, Some(from)) => f.check(from.checked_add(DEFAULT_AVAILABILITY_NIGHTS.days()).map_err(|_| {
            err("to", format!("required: {DEFAULT_AVAILABILITY_NIGHTS} nights after from is past 9999-12-31"))
        })),
        (None, None) => None,
    };
    if let (Some(a), Some(b)) = (from, to) {
        let n = days_between(a, b);
        if n < 1 {
            f.push("to", "must be after from");
        } else if n > i64::from(MAX_AVAILABILITY_NIGHTS) {
            f.push("to", format!("at most {MAX_AVAILABILITY_NIGHTS} nights from from"));
        }
    }
    f.finish(from.zip(to))
}

/// The nights of `[from, to)` in order.
pub fn nights(from: Date, to: Date) -> Vec<Date> {
    let mut out = Vec::new();
    let mut d = from;
    while d < to {
        out.push(d);
        match d.tomorrow() {
            Ok(next) => d = next,
            Err(_) => break,
        }
    }
    out
}

/// `PUT /blocked-dates` body: nights (`YYYY-MM-DD`, in the listing's time zone, from today to
/// 730 days ahead) to block and to unblock; 1 to 90 dates in both lists together, none twice.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CalendarChange, examples(json!({"block": ["2026-08-01", "2026-08-02"], "unblock": ["2026-07-20"]})))]
pub struct CalendarBody {
    /// Nights to block (default none).
    #[serde(default)]
    #[schema(schema_with = calendar_dates_schema)]
    pub block: Vec<String>,
    /// Nights to unblock (default none); a held or booked night cannot be unblocked.
    #[serde(default)]
    #[schema(schema_with = calendar_dates_schema)]
    pub unblock: Vec<String>,
}

/// The OpenAPI schema of `block` and `unblock`: at most 90 dates `YYYY-MM-DD`.
fn calendar_dates_schema() -> utoipa::openapi::schema::Array {
    let date =
        ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)));
    ArrayBuilder::new()
        .items(date)
        .max_items(Some(MAX_CALENDAR_DATES))
        .examples([serde_json::json!(["2026-08-01"])])
        .build()
}

/// A validated calendar change: dates unique across both lists, from today to the horizon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarChange {
    pub block: Vec<Date>,
    pub unblock: Vec<Date>,
}

impl CalendarChange {
    pub fn parse(body: &CalendarBody, today: Date) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let total = body.block.len() + body.unblock.len();
        if total == 0 {
            return Err(ApiError::invalid_field("block", "give at least one date to block or unblock"));
        }
        if total > MAX_CALENDAR_DATES {
            let field = if body.block.len() >= body.unblock.len() { "block" } else { "unblock" };
            return Err(ApiError::invalid_field(
                field,
                format!("at most {MAX_CALENDAR_DATES} dates per call (block and unblock together); got {total}"),
            ));
        }
        let horizon = today.checked_add(CALENDAR_HORIZON_DAYS.days()).unwrap_or(today);
        let mut seen = BTreeSet::new();
        let mut parse_list = |f: &mut Fields, name: &str, list: &[String]| -> Vec<Date> {
            let mut out = Vec::with_capacity(list.len());
            for (i, raw) in list.iter().enumerate() {
                let field = format!("{name}[{i}]");
                let Some(date) = parse_date(raw) else {
                    f.push(field, "must be a date YYYY-MM-DD");
                    continue;
                };
                if date < today {
                    f.push(field, format!("must not be in the past (today is {today} in the listing's time zone)"));
                } else if date > horizon {
                    f.push(field, format!("must be at most {CALENDAR_HORIZON_DAYS} days ahead"));
                } else if !seen.insert(date) {
                    f.push(field, "is listed twice");
                } else {
                    out.push(date);
                }
            }
            out
        };
        let block = parse_list(&mut f, "block", &body.block);
        let unblock = parse_list(&mut f, "unblock", &body.unblock);
        f.finish(Some(Self { block, unblock }))
    }

    /// First and last date named (the calendar range answered after the change).
    pub fn span(&self) -> Option<(Date, Date)> {
        let all = self.block.iter().chain(&self.unblock);
        Some((*all.clone().min()?, *all.max()?))
    }
}

/// `POST /photos` body: the image about to be uploaded.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PhotoUploadRequest, examples(json!({"content_type": "image/jpeg", "content_length": 482133, "caption": "The living room"})))]
pub struct PhotoBody {
    /// The image's type (case is ignored); the upload must be sent with it.
    #[schema(value_type = PhotoContentType)]
    pub content_type: String,
    /// The image's exact size in bytes, 1 to 10485760 (10 MB); the upload must be this long.
    #[schema(minimum = 1, maximum = 10485760)]
    pub content_length: u64,
    /// Up to 200 characters; blank or `null` is none.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub caption: Option<String>,
}

/// `POST /v1/listings/{id}/calendar-imports` body: another platform's calendar feed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CalendarImportRequest, examples(json!({"url": "https://www.airbnb.com/calendar/ical/123456.ics?s=abc", "name": "Airbnb"})))]
pub struct CalendarImportBody {
    /// The feed's `https` URL (the other platform's export link), at most 2000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    /// What the host calls it (`Airbnb`, `Booking.com`), up to 100 characters; blank or `null` is none.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: Option<String>,
}

pub const IMPORT_URL_MAX: usize = 2000;
pub const IMPORT_NAME_MAX: usize = 100;

/// The import's URL (checked by the feed rules: `https`, no credentials, no private address
/// literal) and name.
pub fn parse_calendar_import(
    body: &CalendarImportBody,
    allow_loopback: bool,
) -> Result<(String, Option<String>), ApiError> {
    let mut f = Fields::default();
    let url = f.check(parse_text("url", &body.url, 1, IMPORT_URL_MAX, false)).and_then(|raw| {
        let checked = url::Url::parse(&raw)
            .map_err(|_| err("url", "must be an absolute URL"))
            .and_then(|u| crate::feeds::check_url(&u, allow_loopback).map(|()| u).map_err(|e| err("url", e)));
        f.check(checked).map(|u| u.to_string())
    });
    let name = f.check(parse_optional_text("name", body.name.as_deref(), IMPORT_NAME_MAX));
    f.finish(url.zip(name))
}

/// The image types a photo may have (the schema of `content_type`; the handler reads a string).
#[derive(ToSchema)]
pub enum PhotoContentType {
    #[schema(rename = "image/jpeg")]
    Jpeg,
    #[schema(rename = "image/png")]
    Png,
    #[schema(rename = "image/webp")]
    Webp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoUpload {
    pub content_type: &'static str,
    pub content_length: u64,
    pub caption: Option<String>,
}

impl PhotoUpload {
    pub fn parse(body: &PhotoBody) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let wanted = body.content_type.trim().to_ascii_lowercase();
        let content_type = f.check(
            PHOTO_CONTENT_TYPES
                .iter()
                .find(|t| **t == wanted)
                .copied()
                .ok_or_else(|| err("content_type", format!("must be one of {}", PHOTO_CONTENT_TYPES.join(", ")))),
        );
        let content_length = f.check(if (1..=MAX_PHOTO_BYTES).contains(&body.content_length) {
            Ok(body.content_length)
        } else {
            Err(err("content_length", format!("must be 1 to {MAX_PHOTO_BYTES} bytes (10 MB)")))
        });
        let caption = f.check(parse_optional_text("caption", body.caption.as_deref(), CAPTION_MAX));
        let parsed =
            (|| Some(Self { content_type: content_type?, content_length: content_length?, caption: caption? }))();
        f.finish(parsed)
    }
}

/// `GET /v1/search` query string (unknown parameters are refused).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The city, as written on listings; case, accents and spacing are ignored (`sao paulo`
    /// finds `São Paulo`). At most 100 characters once so folded.
    #[param(required = true, min_length = 1, pattern = r"\S", example = "Lisbon")]
    pub city: Option<String>,
    /// Only listings in this country.
    #[param(schema_with = country_schema)]
    pub country: Option<String>,
    /// The stay's first night (`YYYY-MM-DD`), with `check_out`: only listings free on every
    /// night, each with `nights` and `total`. Not before yesterday (UTC).
    #[param(format = Date, example = "2026-08-01")]
    pub check_in: Option<String>,
    /// The day the stay ends (`YYYY-MM-DD`), with `check_in`: 1 to 90 nights after it.
    #[param(format = Date, example = "2026-08-04")]
    pub check_out: Option<String>,
    /// Only listings for at least this many guests, 1 to 50.
    #[param(minimum = 1, maximum = 50)]
    pub guests: Option<u32>,
    /// Lowest nightly price, in minor units of `currency`, 0 to 1000000000.
    #[param(minimum = 0, maximum = 1_000_000_000)]
    pub min_price: Option<i64>,
    /// Highest nightly price, in minor units of `currency`, 0 to 1000000000, not below
    /// `min_price`.
    #[param(minimum = 0, maximum = 1_000_000_000)]
    pub max_price: Option<i64>,
    /// Only listings priced in this ISO 4217 currency (upper case); `USD` when a price bound is
    /// given without it.
    #[param(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, unchanged (with the same filters).
    pub cursor: Option<String>,
}

/// A stay `[check_in, check_out)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stay {
    pub check_in: Date,
    pub check_out: Date,
    pub nights: Vec<Date>,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub city_key: String,
    pub country: Option<String>,
    pub stay: Option<Stay>,
    pub guests: Option<u32>,
    /// Set when a price bound or `currency` is given: only listings priced in it match.
    pub currency: Option<Currency>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Search {
    /// `today_utc` bounds check-in: no time zone is more than a day behind UTC, so a check-in
    /// before yesterday (UTC) is in the past everywhere.
    pub fn parse(p: &SearchParams, today_utc: Date) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let city_key = parse_city_key(&mut f, p.city.as_deref());
        let country = p.country.as_deref().and_then(|c| f.check(parse_country("country", c)));
        let stay = parse_stay(&mut f, p.check_in.as_deref(), p.check_out.as_deref(), today_utc);
        let guests = p.guests.and_then(|g| f.check(parse_range("guests", g, 1, MAX_GUESTS)));
        let (min_price, max_price) = parse_price_bounds(&mut f, p.min_price, p.max_price);
        let currency = match p.currency.as_deref() {
            Some(c) => f.check(Currency::parse(c).map_err(|e| err("currency", e.to_string()))),
            None if min_price.is_some() || max_price.is_some() => Some(Currency::USD),
            None => None,
        };
        let limit = f.check(shared::page::check_limit(p.limit));
        let parsed = (|| {
            Some(Self {
                city_key: city_key?,
                country,
                stay,
                guests,
                currency,
                min_price,
                max_price,
                limit: limit?,
                cursor: p.cursor.clone(),
            })
        })();
        f.finish(parsed)
    }

    /// What a cursor is bound to: every filter as parsed (normalised), absent ones included.
    pub fn cursor_filters(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<String>| v.unwrap_or_default();
        vec![
            ("city", self.city_key.clone()),
            ("country", opt(self.country.clone())),
            ("check_in", opt(self.stay.as_ref().map(|s| s.check_in.to_string()))),
            ("check_out", opt(self.stay.as_ref().map(|s| s.check_out.to_string()))),
            ("guests", opt(self.guests.map(|g| g.to_string()))),
            ("min_price", opt(self.min_price.map(|g| g.to_string()))),
            ("max_price", opt(self.max_price.map(|g| g.to_string()))),
            ("currency", opt(self.currency.map(|c| c.to_string()))),
        ]
    }
}

/// The search key of the required `city` (normalised, at most `CITY_MAX` characters).
fn parse_city_key(f: &mut Fields, city: Option<&str>) -> Option<String> {
    match city.map(normalise_city) {
        Some(k) if !k.is_empty() && k.chars().count() <= CITY_MAX => Some(k),
        Some(k) if !k.is_empty() => {
            f.push("city", format!("must be at most {CITY_MAX} characters"));
            None
        }
        _ => {
            f.push("city", "is required");
            None
        }
    }
}

/// The stay of a search: both dates or neither; see `Search::parse` for `today_utc`.
fn parse_stay(f: &mut Fields, check_in: Option<&str>, check_out: Option<&str>, today_utc: Date) -> Option<Stay> {
    let (a, b) = match (check_in, check_out) {
        (None, None) => return None,
        (Some(_), None) => {
            f.push("check_out", "is required with check_in");
            return None;
        }
        (None, Some(_)) => {
            f.push("check_in", "is required with check_out");
            return None;
        }
        (Some(a), Some(b)) => (a, b),
    };
    let a = f.check(parse_date(a).ok_or_else(|| err("check_in", "must be a date YYYY-MM-DD")));
    let b = f.check(parse_date(b).ok_or_else(|| err("check_out", "must be a date YYYY-MM-DD")));
    let (a, b) = a.zip(b)?;
    let n = days_between(a, b);
    let yesterday = today_utc.yesterday().unwrap_or(today_utc);
    if a < yesterday {
        f.push("check_in", "must not be in the past");
        None
    } else if n < 1 {
        f.push("check_out", "must be after check_in");
        None
    } else if n > i64::from(MAX_STAY_NIGHTS) {
        f.push("check_out", format!("a stay is at most {MAX_STAY_NIGHTS} nights"));
        None
    } else {
        Some(Stay { check_in: a, check_out: b, nights: nights(a, b) })
    }
}

/// `min_price` and `max_price` in minor units: each 0 to `MAX_AMOUNT`, min not above max.
fn parse_price_bounds(f: &mut Fields, min: Option<i64>, max: Option<i64>) -> (Option<i64>, Option<i64>) {
    let bound = |f: &mut Fields, name: &str, v: Option<i64>| match v {
        Some(n) if !(0..=MAX_AMOUNT).contains(&n) => {
            f.push(name, format!("must be 0 to {MAX_AMOUNT} (minor units)"));
            None
        }
        other => other,
    };
    let min_price = bound(f, "min_price", min);
    let max_price = bound(f, "max_price", max);
    if let (Some(a), Some(b)) = (min_price, max_price)
        && a > b
    {
        f.push("max_price", "must not be below min_price");
    }
    (min_price, max_price)
}

/// `GET /v1/me/listings` query string.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyListingsParams {
    /// Only listings with this status (default: both).
    pub status: Option<ListingStatus>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, unchanged (with the same `status`).
    pub cursor: Option<String>,
}

/// `GET /v1/listings/{id}/availability` query string.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// The first night, `YYYY-MM-DD` (default: today in the listing's time zone).
    #[param(format = Date, example = "2026-08-01")]
    pub from: Option<String>,
    /// The day after the last night, `YYYY-MM-DD`: 1 to 366 nights after `from` (default: 30
    /// nights after `from`).
    #[param(format = Date, example = "2026-08-31")]
    pub to: Option<String>,
}

/// Photos shown on a listing, at most.
pub const MAX_PHOTOS: usize = 30;
/// Upload URLs not yet completed (and not expired), at most.
pub const MAX_PENDING_PHOTOS: usize = 10;

/// 409 `listing_archived`: an archived listing can no longer be changed.
pub fn archived() -> ApiError {
    ApiError::conflict("listing_archived", "The listing is archived; it can no longer be changed.")
}

pub fn require_active(l: &ListingItem) -> Result<(), ApiError> {
    if l.is_active() { Ok(()) } else { Err(archived()) }
}

/// `l` with `photo` awaiting its upload: pending uploads expired before `now` are dropped first,
/// then the limits on photos and on uploads in progress are checked.
pub fn with_pending_photo(l: &ListingItem, photo: PendingPhoto, now: Timestamp) -> Result<ListingItem, ApiError> {
    let mut new = l.clone();
    new.pending_photos.retain(|_, p| p.expires_at.parse::<Timestamp>().is_ok_and(|t| t > now));
    if new.photos.len() + new.pending_photos.len() >= MAX_PHOTOS {
        return Err(ApiError::unprocessable("too_many_photos", format!("A listing has at most {MAX_PHOTOS} photos.")));
    }
    if new.pending_photos.len() >= MAX_PENDING_PHOTOS {
        return Err(ApiError::unprocessable(
            "too_many_photos",
            format!("At most {MAX_PENDING_PHOTOS} uploads may be in progress; complete or wait for them."),
        ));
    }
    new.pending_photos.insert(photo.photo_id.clone(), photo);
    Ok(new)
}

/// `l` showing `photo` in place of its pending upload; `None` when it is shown already (a
/// completion is idempotent), 404 when there is no such upload.
pub fn with_completed_photo(l: &ListingItem, photo: &Photo) -> Result<Option<ListingItem>, ApiError> {
    if l.photos.contains_key(&photo.photo_id) {
        return Ok(None);
    }
    if !l.pending_photos.contains_key(&photo.photo_id) {
        return Err(ApiError::not_found());
    }
    let mut new = l.clone();
    new.pending_photos.remove(&photo.photo_id);
    new.photos.insert(photo.photo_id.clone(), photo.clone());
    Ok(Some(new))
}

/// `l` without the photo `photo_id` (shown or pending), and the photo's object key; 404 when `l`
/// has neither.
pub fn without_photo(l: &ListingItem, photo_id: &str) -> Result<(ListingItem, String), ApiError> {
    let mut new = l.clone();
    let removed = new
        .photos
        .remove(photo_id)
        .map(|p| p.object_key)
        .or_else(|| new.pending_photos.remove(photo_id).map(|p| p.object_key));
    match removed {
        Some(object_key) => Ok((new, object_key)),
        None => Err(ApiError::not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> serde_json::Value {
        json!({
            "title": "  Sunny loft  ",
            "description": "Two rooms.\nNear the river.",
            "property_type": "loft",
            "address": {"line1": "Rua Augusta 1", "city": "São Paulo", "region": "SP", "country": "BR", "postal_code": "01305-000"},
            "timezone": "America/Sao_Paulo",
            "max_guests": 4, "bedrooms": 2, "beds": 2, "bathrooms": 1,
            "amenities": ["wifi", "Wifi", " kitchen "],
            "nightly_price": {"amount": 25000, "currency": "BRL"},
            "cleaning_fee": {"amount": 5000, "currency": "BRL"},
            "cancellation_policy": "moderate"
        })
    }

    fn parse(v: serde_json::Value) -> Result<ListingFields, ApiError> {
        let body: ListingBody = serde_json::from_value(v).expect("shape");
        parse_listing(&body)
    }

    fn fields_of(e: ApiError) -> Vec<String> {
        e.problem().expect("problem").errors.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn a_valid_listing_gets_defaults_and_normalised_text() {
        let l = parse(body()).unwrap();
        assert_eq!(l.title, "Sunny loft");
        assert_eq!(l.amenities, vec!["wifi", "kitchen"]);
        assert_eq!((l.min_nights, l.max_nights), (1, 30));
        assert_eq!((l.check_in_time.as_str(), l.check_out_time.as_str()), ("15:00", "11:00"));
        assert_eq!(l.property_type, "loft");
        assert_eq!(l.address.region.as_deref(), Some("SP"));
        assert_eq!(l.nightly_price, Money::new(25000, Currency::parse("BRL").unwrap()));
    }

    #[test]
    fn every_invalid_field_is_named() {
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("title", json!("")),
            ("title", json!("x".repeat(121))),
            ("title", json!("a\u{0007}b")),
            ("description", json!("x".repeat(5001))),
            ("timezone", json!("Mars/Olympus")),
            ("timezone", json!("")),
            ("max_guests", json!(0)),
            ("max_guests", json!(51)),
            ("bedrooms", json!(51)),
            ("beds", json!(101)),
            ("bathrooms", json!(51)),
            ("amenities", json!(vec!["x"; 51])),
            ("amenities[1]", json!(["wifi", ""])),
            ("nightly_price.amount", json!({"amount": 0, "currency": "USD"})),
            ("nightly_price.amount", json!({"amount": MAX_AMOUNT + 1, "currency": "USD"})),
            ("cleaning_fee.amount", json!({"amount": 0, "currency": "BRL"})),
            ("cleaning_fee.currency", json!({"amount": 100, "currency": "USD"})),
            ("min_nights", json!(0)),
            ("min_nights", json!(91)),
            ("max_nights", json!(91)),
            ("check_in_time", json!("3pm")),
            ("check_in_time", json!("24:00")),
            ("check_out_time", json!("11:60")),
        ];
        for (field, value) in cases {
            let mut v = body();
            let top = field.split(['.', '[']).next().unwrap();
            v[top] = value.clone();
            let e = parse(v).expect_err(field);
            assert_eq!(e.code(), "validation_failed");
            assert_eq!(fields_of(e), vec![field.to_owned()], "{field} = {value}");
        }
        for (field, value) in [
            ("address.line1", json!("")),
            ("address.city", json!(" ")),
            ("address.city", json!("!!! ")),
            ("address.country", json!("pt")),
            ("address.country", json!("XX")),
            ("address.country", json!("PRT")),
            ("address.region", json!("r".repeat(101))),
            ("address.postal_code", json!("9".repeat(21))),
        ] {
            let mut v = body();
            v["address"][field.trim_start_matches("address.")] = value.clone();
            assert_eq!(fields_of(parse(v).unwrap_err()), vec![field.to_owned()], "{field} = {value}");
        }
        let mut v = body();
        v["min_nights"] = json!(10);
        v["max_nights"] = json!(5);
        assert_eq!(fields_of(parse(v).unwrap_err()), vec!["min_nights"]);
    }

    #[test]
    fn all_errors_are_reported_together() {
        let mut v = body();
        v["title"] = json!("");
        v["max_guests"] = json!(0);
        v["timezone"] = json!("nope");
        assert_eq!(fields_of(parse(v).unwrap_err()), vec!["title", "timezone", "max_guests"]);
    }

    #[test]
    fn unknown_fields_and_values_are_refused_by_the_shape() {
        let mut v = body();
        v["host_id"] = json!("me");
        assert!(serde_json::from_value::<ListingBody>(v).is_err());
        let mut v = body();
        v["property_type"] = json!("castle");
        assert!(serde_json::from_value::<ListingBody>(v).is_err());
        let mut v = body();
        v["cancellation_policy"] = json!("lenient");
        assert!(serde_json::from_value::<ListingBody>(v).is_err());
        let mut v = body();
        v["address"]["street"] = json!("x");
        assert!(serde_json::from_value::<ListingBody>(v).is_err());
        assert!(serde_json::from_value::<ListingPatch>(json!({"status": "active"})).is_err());
        assert!(serde_json::from_value::<ListingPatch>(json!({"version": 3})).is_err());
    }

    #[test]
    fn timezones_are_canonical_iana_names() {
        assert_eq!(parse_timezone("tz", "Europe/Lisbon").unwrap(), "Europe/Lisbon");
        assert_eq!(parse_timezone("tz", "europe/lisbon").unwrap(), "Europe/Lisbon");
        assert_eq!(parse_timezone("tz", "UTC").unwrap(), "UTC");
        for bad in ["", "Europe", "Europe/Atlantis", "+01:00", "EST5EDT,M3.2.0,M11.1.0", &"A".repeat(65)] {
            assert!(parse_timezone("tz", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn countries_are_iso_alpha2() {
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(COUNTRIES.len(), 249);
        for ok in ["PT", "BR", "US", "JP", "AX"] {
            assert!(parse_country("c", ok).is_ok(), "{ok}");
        }
        for bad in ["pt", "", "P", "XX", "UK", "EU"] {
            assert!(parse_country("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_hh_mm() {
        for ok in ["00:00", "15:00", "23:59", "09:05"] {
            assert_eq!(parse_time("t", ok).unwrap(), ok);
        }
        for bad in ["9:00", "24:00", "12:60", "12-00", "12:00:00", "", "ab:cd"] {
            assert!(parse_time("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cities_fold_case_accents_and_spacing() {
        assert_eq!(normalise_city("São Paulo"), "sao paulo");
        assert_eq!(normalise_city("  SAO   paulo "), "sao paulo");
        assert_eq!(normalise_city("Zürich"), "zurich");
        assert_eq!(normalise_city("ZU\u{308}RICH"), "zurich");
        assert_eq!(normalise_city("Kraków"), "krakow");
        assert_eq!(normalise_city("Łódź"), "lodz");
        assert_eq!(normalise_city("Tromsø"), "tromso");
        assert_eq!(normalise_city("Gießen"), "giessen");
        assert_eq!(normalise_city("Ｔｏｋｙｏ"), "tokyo");
        assert_eq!(normalise_city("Reykjavík"), normalise_city("reykjavik"));
        assert_eq!(normalise_city("東京"), "東京");
        assert_eq!(normalise_city(" \t "), "");
    }

    #[test]
    fn only_accepted_currencies_and_chargeable_steps() {
        let with = |nightly: serde_json::Value, fee: serde_json::Value| {
            let mut b = body();
            b["nightly_price"] = nightly;
            b["cleaning_fee"] = fee;
            parse(b)
        };
        // The demo listings' currencies, and the special ones.
        for code in ["EUR", "BRL", "JPY", "USD", "ISK", "HUF", "TWD", "UGX", "KRW"] {
            let l = with(json!({"amount": 5000, "currency": code}), json!({"amount": 1001, "currency": code}));
            assert!(l.is_ok(), "{code}: {l:?}");
        }
        // An ISO currency Roost does not take: 422, naming the field, for either price.
        let e = with(json!({"amount": 5000, "currency": "XAF"}), json!(null)).unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (422, "unsupported_currency"));
        assert_eq!(fields_of(e), vec!["nightly_price.currency"]);
        let e =
            with(json!({"amount": 5000, "currency": "EUR"}), json!({"amount": 100, "currency": "IRR"})).unwrap_err();
        assert_eq!(e.code(), "unsupported_currency");
        assert_eq!(fields_of(e), vec!["cleaning_fee.currency"]);
        // Three-decimal: nightly in whole units, fee in steps of 10.
        assert!(
            with(json!({"amount": 25_000, "currency": "KWD"}), json!({"amount": 1_230, "currency": "KWD"})).is_ok()
        );
        let e = with(json!({"amount": 25_500, "currency": "KWD"}), json!(null)).unwrap_err();
        assert_eq!(e.code(), "validation_failed");
        assert_eq!(fields_of(e), vec!["nightly_price.amount"]);
        let e = with(json!({"amount": 25_000, "currency": "BHD"}), json!({"amount": 1_235, "currency": "BHD"}))
            .unwrap_err();
        assert_eq!(fields_of(e), vec!["cleaning_fee.amount"]);
        // Patches: the same rules.
        let base = parse(body()).unwrap();
        let p = |v: serde_json::Value| patched(&base, &serde_json::from_value(v).unwrap());
        let e = p(json!({"nightly_price": {"amount": 100, "currency": "XAF"}, "cleaning_fee": null})).unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (422, "unsupported_currency"));
        let e = p(json!({"cleaning_fee": {"amount": 100, "currency": "XOF"}})).unwrap_err();
        assert_eq!(e.code(), "unsupported_currency");
        let e = p(json!({"nightly_price": {"amount": 1_005, "currency": "OMR"}, "cleaning_fee": null})).unwrap_err();
        assert_eq!(fields_of(e), vec!["nightly_price.amount"]);
    }

    #[test]
    fn patches_validate_what_they_send_and_the_rules_between_fields() {
        let base = parse(body()).unwrap();
        let p = |v: serde_json::Value| patched(&base, &serde_json::from_value(v).unwrap());
        let next = p(json!({"title": "New", "max_nights": 60})).unwrap();
        assert_eq!((next.title.as_str(), next.max_nights), ("New", 60));
        assert_eq!(next.nightly_price, base.nightly_price);
        assert_eq!(p(json!({"cleaning_fee": null})).unwrap().cleaning_fee, None);
        assert_eq!(p(json!({})).unwrap(), base);
        assert_eq!(fields_of(p(json!({"max_nights": 0})).unwrap_err()), vec!["max_nights"]);
        assert_eq!(fields_of(p(json!({"min_nights": 31})).unwrap_err()), vec!["min_nights"]);
        assert_eq!(fields_of(p(json!({"max_nights": 0, "title": ""})).unwrap_err()), vec!["title", "max_nights"]);
        // The patched side of a broken rule is named.
        let short = p(json!({"max_nights": 3})).unwrap();
        let e = patched(&short, &serde_json::from_value(json!({"min_nights": 5})).unwrap()).unwrap_err();
        assert_eq!(fields_of(e), vec!["min_nights"]);
        assert_eq!(
            fields_of(p(json!({"nightly_price": {"amount": 100, "currency": "USD"}})).unwrap_err()),
            vec!["nightly_price.currency"]
        );
        assert_eq!(
            fields_of(p(json!({"cleaning_fee": {"amount": 100, "currency": "USD"}})).unwrap_err()),
            vec!["cleaning_fee.currency"]
        );
        let usd = p(json!({"nightly_price": {"amount": 100, "currency": "USD"}, "cleaning_fee": null})).unwrap();
        assert_eq!(usd.nightly_price.currency, Currency::USD);
        assert_eq!(
            fields_of(p(json!({"address": {"line1": "x", "city": "y", "country": "zz"}})).unwrap_err()),
            vec!["address.country"]
        );
    }

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn availability_ranges() {
        let today = d("2026-03-01");
        assert_eq!(parse_availability_range(None, None, today).unwrap(), (today, d("2026-03-31")));
        assert_eq!(
            parse_availability_range(Some("2026-04-01"), Some("2027-04-02"), today).unwrap(),
            (d("2026-04-01"), d("2027-04-02"))
        );
        let e = parse_availability_range(Some("2026-04-01"), Some("2027-04-03"), today).unwrap_err();
        assert_eq!(fields_of(e), vec!["to"]);
        assert_eq!(
            fields_of(parse_availability_range(Some("2026-04-01"), Some("2026-04-01"), today).unwrap_err()),
            vec!["to"]
        );
        assert_eq!(fields_of(parse_availability_range(Some("04/01/2026"), None, today).unwrap_err()), vec!["from"]);
        // No default `to` past the calendar's end: the 400 names `to` (its errors were empty).
        for from in ["9999-12-31", "9999-12-02"] {
            assert_eq!(fields_of(parse_availability_range(Some(from), None, today).unwrap_err()), vec!["to"], "{from}");
        }
        assert_eq!(
            parse_availability_range(Some("9999-12-01"), None, today).unwrap(),
            (d("9999-12-01"), d("9999-12-31"))
        );
        assert_eq!(nights(d("2026-02-27"), d("2026-03-02")), vec![d("2026-02-27"), d("2026-02-28"), d("2026-03-01")]);
        assert!(nights(d("2026-03-02"), d("2026-03-02")).is_empty());
    }

    #[test]
    fn calendar_changes() {
        let today = d("2026-03-01");
        let body = |b: &[&str], u: &[&str]| CalendarBody {
            block: b.iter().map(|s| s.to_string()).collect(),
            unblock: u.iter().map(|s| s.to_string()).collect(),
        };
        let c = CalendarChange::parse(&body(&["2026-03-05", "2026-03-01"], &["2026-04-01"]), today).unwrap();
        assert_eq!(c.block, vec![d("2026-03-05"), d("2026-03-01")]);
        assert_eq!(c.span(), Some((d("2026-03-01"), d("2026-04-01"))));
        let e = |b: &[&str], u: &[&str]| fields_of(CalendarChange::parse(&body(b, u), today).unwrap_err());
        assert_eq!(e(&[], &[]), vec!["block"]);
        assert_eq!(e(&["2026-02-28"], &[]), vec!["block[0]"]);
        assert_eq!(e(&["2026-03-02", "2026-3-3"], &[]), vec!["block[1]"]);
        assert_eq!(e(&["2026-03-02"], &["2026-03-02"]), vec!["unblock[0]"]);
        assert_eq!(e(&["2026-03-02", "2026-03-02"], &[]), vec!["block[1]"]);
        assert_eq!(e(&["2028-03-02"], &[]), vec!["block[0]"]);
        let many: Vec<String> = nights(d("2026-03-02"), d("2026-06-01")).iter().map(|d| d.to_string()).collect();
        assert_eq!(many.len(), 91);
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(e(&refs, &[]), vec!["block"]);
        assert_eq!(e(&refs[..45], &refs[45..]), vec!["unblock"]);
        assert!(CalendarChange::parse(&body(&refs[..90], &[]), today).is_ok());
    }

    #[test]
    fn photo_uploads() {
        let p = |ct: &str, len: u64| {
            PhotoUpload::parse(&PhotoBody { content_type: ct.into(), content_length: len, caption: None })
        };
        assert_eq!(p("image/png", 10).unwrap().content_type, "image/png");
        assert_eq!(p("Image/JPEG", MAX_PHOTO_BYTES).unwrap().content_type, "image/jpeg");
        assert_eq!(fields_of(p("image/gif", 10).unwrap_err()), vec!["content_type"]);
        assert_eq!(fields_of(p("application/pdf", 10).unwrap_err()), vec!["content_type"]);
        assert_eq!(fields_of(p("image/webp", MAX_PHOTO_BYTES + 1).unwrap_err()), vec!["content_length"]);
        assert_eq!(fields_of(p("image/webp", 50 * 1024 * 1024).unwrap_err()), vec!["content_length"]);
        assert_eq!(fields_of(p("text/html", 0).unwrap_err()), vec!["content_type", "content_length"]);
        let long = PhotoUpload::parse(&PhotoBody {
            content_type: "image/png".into(),
            content_length: 1,
            caption: Some("c".repeat(201)),
        });
        assert_eq!(fields_of(long.unwrap_err()), vec!["caption"]);
    }

    fn search(q: &str) -> Result<Search, ApiError> {
        let p: SearchParams = serde_urlencoded::from_str(q).unwrap();
        Search::parse(&p, d("2026-03-01"))
    }

    #[test]
    fn searches() {
        let s = search("city=S%C3%A3o%20Paulo").unwrap();
        assert_eq!(s.city_key, "sao paulo");
        assert_eq!((s.limit, s.currency, s.stay.clone()), (20, None, None));
        let s = search("city=x&check_in=2026-03-10&check_out=2026-03-13&guests=2&min_price=100&max_price=900").unwrap();
        assert_eq!(s.stay.as_ref().unwrap().nights.len(), 3);
        assert_eq!(s.currency, Some(Currency::USD), "price filters default to USD");
        assert_eq!(search("city=x&currency=EUR").unwrap().currency, Some(Currency::EUR));
        assert!(search("city=x&check_in=2026-02-28&check_out=2026-03-02").is_ok(), "yesterday may be today somewhere");
        let e = |q: &str| fields_of(search(q).unwrap_err());
        assert_eq!(e(""), vec!["city"]);
        assert_eq!(e("city=%20"), vec!["city"]);
        assert_eq!(e("city=x&country=pt"), vec!["country"]);
        assert_eq!(e("city=x&check_in=2026-03-10"), vec!["check_out"]);
        assert_eq!(e("city=x&check_out=2026-03-10"), vec!["check_in"]);
        assert_eq!(e("city=x&check_in=2026-03-10&check_out=2026-03-10"), vec!["check_out"]);
        assert_eq!(e("city=x&check_in=2026-02-20&check_out=2026-03-10"), vec!["check_in"]);
        assert_eq!(e("city=x&check_in=2026-03-10&check_out=2026-06-09"), vec!["check_out"]);
        assert!(search("city=x&check_in=2026-03-10&check_out=2026-06-08").is_ok());
        assert_eq!(e("city=x&guests=0"), vec!["guests"]);
        assert_eq!(e("city=x&min_price=-1"), vec!["min_price"]);
        assert_eq!(e("city=x&min_price=10&max_price=5"), vec!["max_price"]);
        assert_eq!(e("city=x&currency=usd"), vec!["currency"]);
        assert_eq!(e("city=x&limit=0"), vec!["limit"]);
        assert_eq!(e("city=x&limit=101"), vec!["limit"]);
    }

    #[test]
    fn cursor_filters_cover_every_filter() {
        let a = search("city=S%C3%A3o%20Paulo&guests=2").unwrap().cursor_filters();
        let b = search("city=sao%20paulo&guests=2&limit=5").unwrap().cursor_filters();
        assert_eq!(a, b, "same normalised filters, any limit");
        let c = search("city=sao%20paulo&guests=3").unwrap().cursor_filters();
        assert_ne!(a, c);
        assert_eq!(a.len(), 8);
    }

    #[test]
    fn today_follows_the_time_zone() {
        let now: Timestamp = "2026-03-01T23:30:00Z".parse().unwrap();
        assert_eq!(today_in("UTC", now), d("2026-03-01"));
        assert_eq!(today_in("Asia/Tokyo", now), d("2026-03-02"));
        assert_eq!(today_in("America/Los_Angeles", now), d("2026-03-01"));
        assert_eq!(today_in("Not/AZone", now), d("2026-03-01"));
    }
}
