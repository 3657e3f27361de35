//! The leaf types: money, addresses, photos, nights, prices, parties, payments. Each is built
//! from the REST view it mirrors (`From`), so a GraphQL field and its REST field are one value.
//! Enumerated values (statuses, policies) are strings with the REST spelling (`confirmed`,
//! `flexible`): one vocabulary for both APIs, and a new value never breaks an old client's
//! schema.

use async_graphql::SimpleObject;
use serde::Serialize;
use shared::booking::{Cancellation, NightlyPrice, Party, Payment, Price, RefundSummary};
use shared::listing::Address;
use shared::money::Money;
use shared::payout::PayoutView;

/// The wire name of an enumerated value, as REST writes it.
pub fn wire<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// An amount in integer minor units of `currency` (cents for EUR and USD, yen for JPY).
#[derive(SimpleObject, Debug, Clone, PartialEq)]
#[graphql(name = "Money")]
pub struct MoneyValue {
    pub amount: i64,
    /// ISO 4217, upper case.
    pub currency: String,
}

impl From<Money> for MoneyValue {
    fn from(m: Money) -> Self {
        Self { amount: m.amount, currency: m.currency.code().to_owned() }
    }
}

/// Where a listing is: city, region and country for everyone; the street and postal code only
/// for the booking's guest once confirmed.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Location {
    pub city: String,
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// The exact address (a confirmed booking's guest and host).
#[derive(SimpleObject, Debug, Clone, PartialEq)]
#[graphql(name = "Address")]
pub struct FullAddress {
    pub line1: String,
    pub city: String,
    pub region: Option<String>,
    pub country: String,
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

/// A listing's reviews in two numbers.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Rating {
    /// Mean stars (1 to 5) rounded to two decimals; null before the first review.
    pub average: Option<f64>,
    pub count: u64,
}

impl From<&listings::views::RatingView> for Rating {
    fn from(r: &listings::views::RatingView) -> Self {
        Self { average: r.average, count: r.count }
    }
}

/// A photo of a listing.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Photo {
    pub id: String,
    /// A pre-signed GET of the image, valid for at least an hour.
    pub url: String,
    pub caption: Option<String>,
}

/// One night of a listing's calendar.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Night {
    /// `YYYY-MM-DD` in the listing's time zone.
    pub date: String,
    /// Bookable: not blocked, held or booked, and the listing is active.
    pub available: bool,
    pub price: MoneyValue,
}

impl From<listings::views::NightView> for Night {
    fn from(n: listings::views::NightView) -> Self {
        Self { date: n.date, available: n.available, price: n.price.into() }
    }
}

/// A person as a booking names them (the name at booking time).
#[derive(SimpleObject, Debug, Clone, PartialEq)]
#[graphql(name = "Party")]
pub struct PartyValue {
    pub user_id: String,
    pub name: String,
}

impl From<Party> for PartyValue {
    fn from(p: Party) -> Self {
        Self { user_id: p.user_id, name: p.name }
    }
}

/// One night's price line.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct NightlyPriceLine {
    pub date: String,
    pub amount: i64,
}

/// The price of a stay, in minor units of `currency`.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
#[graphql(name = "Price")]
pub struct PriceValue {
    pub nightly: Vec<NightlyPriceLine>,
    pub subtotal: i64,
    pub cleaning_fee: i64,
    pub service_fee: i64,
    /// What the guest pays.
    pub total: i64,
    pub currency: String,
}

impl From<Price> for PriceValue {
    fn from(p: Price) -> Self {
        let line = |n: NightlyPrice| NightlyPriceLine { date: n.date.to_string(), amount: n.amount };
        Self {
            nightly: p.nightly.into_iter().map(line).collect(),
            subtotal: p.subtotal,
            cleaning_fee: p.cleaning_fee,
            service_fee: p.service_fee,
            total: p.total,
            currency: p.currency.code().to_owned(),
        }
    }
}

/// Where the booking's payment stands.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
#[graphql(name = "Payment")]
pub struct PaymentValue {
    /// `unpaid`, `processing`, `succeeded`, `failed`, ... (REST's values).
    pub status: String,
    /// Why the last attempt failed (the guest's view only).
    pub failure: Option<String>,
    pub amount_paid: Option<MoneyValue>,
}

impl From<Payment> for PaymentValue {
    fn from(p: Payment) -> Self {
        Self { status: wire(&p.status), failure: p.failure, amount_paid: p.amount_paid.map(Into::into) }
    }
}

/// Who cancelled, when, why, and the refund due.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
#[graphql(name = "Cancellation")]
pub struct CancellationValue {
    /// `guest` or `host`.
    pub by: String,
    pub at: String,
    pub reason: Option<String>,
    pub refund_due: MoneyValue,
}

impl From<Cancellation> for CancellationValue {
    fn from(c: Cancellation) -> Self {
        Self { by: wire(&c.by), at: c.at, reason: c.reason, refund_due: c.refund_due.into() }
    }
}

/// The host's payout of a booking (its host only; docs/payments.md, "Payouts"): amounts in
/// minor units of `currency`.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Payout {
    /// `scheduled`, `waiting_for_account`, `failed`, `paid`, `reversed` or `not_due`.
    pub status: String,
    pub currency: String,
    /// The platform fee's rate in basis points of nights + cleaning (300 = 3 %).
    pub fee_basis_points: u32,
    pub platform_fee: i64,
    /// What the host gets if nothing is refunded.
    pub host_amount: i64,
    /// RFC 3339 UTC: 24 hours after check-in.
    pub due_at: String,
    pub transferred: i64,
    pub reversed: i64,
    pub paid_at: Option<String>,
    pub failed_attempts: u32,
    pub last_error: Option<String>,
}

impl From<PayoutView> for Payout {
    fn from(p: PayoutView) -> Self {
        Self {
            status: wire(&p.status),
            currency: p.currency.code().to_owned(),
            fee_basis_points: p.fee_basis_points,
            platform_fee: p.platform_fee,
            host_amount: p.host_amount,
            due_at: p.due_at,
            transferred: p.transferred,
            reversed: p.reversed,
            paid_at: p.paid_at,
            failed_attempts: p.failed_attempts,
            last_error: p.last_error,
        }
    }
}

/// The refund owed to the guest and where it stands.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct Refund {
    pub amount: i64,
    pub currency: String,
    /// `none`, `pending`, `succeeded` or `failed`.
    pub status: String,
    pub failure_reason: Option<String>,
}

impl From<RefundSummary> for Refund {
    fn from(r: RefundSummary) -> Self {
        Self {
            amount: r.amount,
            currency: r.currency.code().to_owned(),
            status: r.status,
            failure_reason: r.failure_reason,
        }
    }
}
