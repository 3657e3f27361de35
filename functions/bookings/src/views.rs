//! What the bookings routes answer: the quote, the booking and the cancellation preview, as
//! API.md shows them (a page of bookings is `shared::page::ListBody`).

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use shared::booking::{BookingItem, BookingStatus, Cancellation, Decline, Party, Payment, Price, RefundSummary};
use shared::listing::{Address, BookingMode, CancellationPolicy};
use shared::money::Money;
use shared::payout::PayoutView;

use crate::cancellation::RefundDecision;

/// `POST /v1/quotes`: the price of a stay and whether its nights are free. Nothing is held.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Quote)]
pub struct QuoteView {
    /// The listing (`lst_...`).
    pub listing_id: String,
    /// The first night, `YYYY-MM-DD` in the listing's time zone.
    #[schema(value_type = String, format = Date, examples("2026-03-01"))]
    pub check_in: Date,
    /// The day the stay ends (not a night of it), `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date, examples("2026-03-03"))]
    pub check_out: Date,
    /// Nights of the stay.
    pub nights: u32,
    pub guests: u32,
    /// Computed by the server from the listing's current prices.
    pub price: Price,
    /// False only when some night is taken (blocked, booked, or held by an unexpired hold).
    pub available: bool,
    /// The taken nights (`YYYY-MM-DD`), present only when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>, format = Date)]
    pub unavailable_dates: Vec<Date>,
}

/// City, region and country: where the stay is, without the exact address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = BookingLocation)]
pub struct Location {
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// A booking as its guest and its host see it (the host sees `payment.status` only, and no
/// refund `failure_reason`). What it was sold under is snapshotted: later listing edits never
/// change it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Booking)]
pub struct BookingView {
    /// `bkg_` + a lowercase ULID.
    #[schema(examples("bkg_01jh8x3k2m4n5p6q7r8s9t0vwx"))]
    pub booking_id: String,
    /// `lst_` + a lowercase ULID.
    pub listing_id: String,
    pub listing_title: String,
    pub guest: Party,
    pub host: Party,
    /// The first night, `YYYY-MM-DD` in the listing's time zone.
    #[schema(value_type = String, format = Date, examples("2026-03-01"))]
    pub check_in: Date,
    /// The day the stay ends (not a night of it), `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date, examples("2026-03-03"))]
    pub check_out: Date,
    pub guests: u32,
    pub nights: u32,
    pub price: Price,
    /// The policy the booking was sold under (it decides the guest's refund).
    pub cancellation_policy: CancellationPolicy,
    /// The effective status at read time (`shared::booking::effective_status`).
    pub status: BookingStatus,
    /// `instant`, or `request`: the host accepts or declines it (`requested` until then).
    pub booking_mode: BookingMode,
    /// While the booking waits for payment or for the host's answer (and once that wait
    /// lapsed): when the hold on its nights lapses, RFC 3339 UTC. A request's host must answer
    /// before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, nullable = false)]
    pub hold_expires_at: Option<String>,
    /// The exact address, once the booking is confirmed (and after the stay).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub address: Option<Address>,
    pub location: Location,
    /// The listing's IANA time zone: the dates and times of the stay are local to it.
    #[schema(examples("Europe/Lisbon"))]
    pub timezone: String,
    /// `HH:MM`, local.
    #[schema(examples("15:00"))]
    pub check_in_time: String,
    /// `HH:MM`, local.
    #[schema(examples("11:00"))]
    pub check_out_time: String,
    pub payment: Payment,
    /// Once the host declined the request: when, and the host's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub decline: Option<Decline>,
    /// Once cancelled: by whom, when, why and the refund due.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub cancellation: Option<Cancellation>,
    /// Once a cancellation (or a payment that came too late) owes money back.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub refund: Option<RefundSummary>,
    /// The host's payout (its host only, on `GET /v1/bookings/{id}`): the platform fee, what
    /// the host gets, when, and what was transferred and reversed (docs/payments.md, "Payouts").
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub payout: Option<PayoutView>,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// The refund as `viewer` sees it: payment-events' record once it exists, else what the
/// cancellation owes (`pending`), or `none` when nothing was paid back. Stripe's reason for a
/// failed refund (`lost_or_stolen_card`, `expired_or_canceled_card`, ...) describes the guest's
/// card: the host sees that the refund failed, not why.
fn refund(b: &BookingItem, viewer: Viewer) -> Option<RefundSummary> {
    let refund = b.refund.clone().map(|r| match viewer {
        Viewer::Guest => r,
        Viewer::Host => RefundSummary { failure_reason: None, ..r },
    });
    refund.or_else(|| {
        b.cancellation.as_ref().map(|c| RefundSummary {
            amount: c.refund_due.amount,
            currency: c.refund_due.currency,
            status: if c.refund_due.amount > 0 { "pending" } else { "none" }.to_owned(),
            failure_reason: None,
        })
    })
}

/// Who reads a booking: they see different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Its guest: everything about their own payment (intent, failure code, amount paid).
    Guest,
    /// Its host: the payment's `status` only, never the guest's card details or why a card was
    /// declined (`payment.failure` is the guest's business).
    Host,
}

impl Viewer {
    /// `caller`'s role on `b` (that the caller is a party is checked before).
    pub fn of(b: &BookingItem, caller: &str) -> Self {
        if b.guest.user_id == caller { Self::Guest } else { Self::Host }
    }
}

/// The payment as `viewer` may see it.
fn payment(p: &Payment, viewer: Viewer) -> Payment {
    match viewer {
        Viewer::Guest => p.clone(),
        Viewer::Host => Payment { status: p.status, payment_intent_id: None, failure: None, amount_paid: None },
    }
}

/// The view of `b` for `viewer` at `now`.
pub fn booking(b: &BookingItem, viewer: Viewer, now: Timestamp) -> BookingView {
    let status = b.effective_status(now);
    let waiting = matches!(status, BookingStatus::PendingPayment | BookingStatus::Requested | BookingStatus::Expired);
    BookingView {
        booking_id: b.booking_id.clone(),
        listing_id: b.listing_id.clone(),
        listing_title: b.listing_title.clone(),
        guest: b.guest.clone(),
        host: b.host.clone(),
        check_in: b.check_in,
        check_out: b.check_out,
        guests: b.guests,
        nights: b.nights,
        price: b.price.clone(),
        cancellation_policy: b.cancellation_policy,
        status,
        booking_mode: b.booking_mode,
        hold_expires_at: b.hold_expires_at.clone().filter(|_| waiting),
        address: status.reveals_address().then(|| b.address.clone()),
        location: Location {
            city: b.address.city.clone(),
            region: b.address.region.clone(),
            country: b.address.country.clone(),
        },
        timezone: b.timezone.clone(),
        check_in_time: b.check_in_time.clone(),
        check_out_time: b.check_out_time.clone(),
        payment: payment(&b.payment, viewer),
        decline: b.decline.clone(),
        cancellation: b.cancellation.clone(),
        refund: refund(b, viewer),
        payout: None,
        created_at: b.created_at.clone(),
        updated_at: b.updated_at.clone(),
    }
}

/// `GET /v1/bookings/{id}/cancellation`: what cancelling now would refund.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CancellationPreview)]
pub struct PreviewView {
    /// The refund a cancellation by the caller would give now (0 when nothing was paid).
    pub refund: Money,
    /// The policy the booking was sold under.
    pub policy: CancellationPolicy,
    /// Why that amount, in words.
    #[schema(examples("strict policy, cancelled 10 days before check-in: 50 % of the amount paid"))]
    pub reason: String,
}

pub fn preview(b: &BookingItem, decision: &RefundDecision) -> PreviewView {
    PreviewView { refund: decision.refund, policy: b.cancellation_policy, reason: decision.reason.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::booking::{BookingStatus, PaymentStatus};

    fn item() -> BookingItem {
        crate::rules::tests_support::booking_item_fixture()
    }

    #[test]
    fn the_address_shows_only_once_confirmed() {
        let mut b = item();
        let now: Timestamp = "2026-02-01T09:01:00Z".parse().unwrap();
        let v = serde_json::to_value(booking(&b, Viewer::Guest, now)).unwrap();
        assert_eq!(v["status"], "pending_payment");
        assert_eq!(v["hold_expires_at"], "2026-02-01T09:15:00Z");
        assert!(v.get("address").is_none());
        assert_eq!(v["location"], serde_json::json!({"city": "Lisboa", "country": "PT"}));
        assert_eq!(v["guest"], serde_json::json!({"user_id": "guest-1", "name": "Gil"}));
        assert_eq!(v["host"]["name"], "Helena");
        assert_eq!(v["price"]["nightly"][1], serde_json::json!({"date": "2026-03-02", "amount": 12_345}));
        assert_eq!(v["price"]["currency"], "EUR");
        assert_eq!(v["payment"], serde_json::json!({"status": "unpaid"}));
        assert_eq!(v["cancellation_policy"], "strict");

        // The hold lapsed: expired, and still no address.
        let v = serde_json::to_value(booking(&b, Viewer::Guest, "2026-02-01T09:15:00Z".parse().unwrap())).unwrap();
        assert_eq!(v["status"], "expired");
        assert!(v.get("address").is_none());

        b.status = BookingStatus::Confirmed;
        let v = serde_json::to_value(booking(&b, Viewer::Guest, now)).unwrap();
        assert_eq!(v["status"], "confirmed");
        assert_eq!(v["address"]["line1"], "Rua A 1");
        assert!(v.get("hold_expires_at").is_none());
        // After the check-out instant: completed, address kept.
        let v = serde_json::to_value(booking(&b, Viewer::Guest, "2026-03-03T11:00:00Z".parse().unwrap())).unwrap();
        assert_eq!(v["status"], "completed");
        assert!(v.get("address").is_some());

        b.status = BookingStatus::Cancelled;
        assert!(serde_json::to_value(booking(&b, Viewer::Guest, now)).unwrap().get("address").is_none());
    }

    #[test]
    fn a_host_sees_the_payment_status_only() {
        let mut b = item();
        let now: Timestamp = "2026-02-01T09:01:00Z".parse().unwrap();
        assert_eq!(Viewer::of(&b, "guest-1"), Viewer::Guest);
        assert_eq!(Viewer::of(&b, "host-1"), Viewer::Host);
        // A declined card: the guest sees why, the host only that it failed.
        b.payment = Payment {
            status: PaymentStatus::Failed,
            payment_intent_id: Some("pi_1".into()),
            failure: Some("insufficient_funds".into()),
            amount_paid: None,
        };
        let guest = serde_json::to_value(booking(&b, Viewer::Guest, now)).unwrap();
        assert_eq!(
            guest["payment"],
            serde_json::json!({"status": "failed", "payment_intent_id": "pi_1", "failure": "insufficient_funds"})
        );
        let host = serde_json::to_value(booking(&b, Viewer::Host, now)).unwrap();
        assert_eq!(host["payment"], serde_json::json!({"status": "failed"}));
        assert!(!host.to_string().contains("insufficient_funds") && !host.to_string().contains("pi_1"), "{host}");
        // Paid: the host sees `succeeded`, not the intent or the amount the card paid.
        b.status = BookingStatus::Confirmed;
        b.payment = Payment {
            status: PaymentStatus::Succeeded,
            payment_intent_id: Some("pi_1".into()),
            failure: None,
            amount_paid: Some(b.price.total_money()),
        };
        let host = serde_json::to_value(booking(&b, Viewer::Host, now)).unwrap();
        assert_eq!(host["payment"], serde_json::json!({"status": "succeeded"}));
        let guest = serde_json::to_value(booking(&b, Viewer::Guest, now)).unwrap();
        assert_eq!(guest["payment"]["amount_paid"]["amount"], b.price.total);
        // Everything else is the same for both.
        let (mut g, mut h) = (guest, host);
        g.as_object_mut().unwrap().remove("payment");
        h.as_object_mut().unwrap().remove("payment");
        assert_eq!(g, h);
        // A refund Stripe refused: the guest sees Stripe's reason, the host only that it failed.
        b.refund = Some(RefundSummary {
            amount: b.price.total,
            currency: b.price.currency,
            status: "failed".into(),
            failure_reason: Some("lost_or_stolen_card".into()),
        });
        let guest = serde_json::to_value(booking(&b, Viewer::Guest, now)).unwrap();
        assert_eq!(guest["refund"]["failure_reason"], "lost_or_stolen_card");
        let host = serde_json::to_value(booking(&b, Viewer::Host, now)).unwrap();
        assert_eq!(host["refund"]["status"], "failed");
        assert!(!host.to_string().contains("lost_or_stolen_card"), "{host}");
        let mut guest_refund = guest["refund"].clone();
        guest_refund.as_object_mut().unwrap().remove("failure_reason");
        assert_eq!(host["refund"], guest_refund);
    }

    /// The keys of `view` against its schema: every required one present, none undocumented.
    fn matches_schema<T: Serialize + utoipa::PartialSchema>(view: &T) {
        let value = serde_json::to_value(view).unwrap();
        let schema = serde_json::to_value(T::schema()).unwrap();
        let keys: std::collections::BTreeSet<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let documented: std::collections::BTreeSet<&str> =
            schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let required = schema["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap());
        for r in required {
            assert!(keys.contains(r), "required `{r}` missing from {value}");
        }
        assert!(keys.is_subset(&documented), "undocumented keys: {:?}", keys.difference(&documented));
    }

    #[test]
    fn the_views_match_their_schemas() {
        let mut b = item();
        let now: Timestamp = "2026-02-01T09:01:00Z".parse().unwrap();
        matches_schema(&booking(&b, Viewer::Guest, now));
        b.status = BookingStatus::Cancelled;
        b.cancellation = Some(Cancellation {
            by: shared::events::CancelledBy::Host,
            at: "2026-02-01T09:00:30Z".into(),
            reason: Some("Flooded".into()),
            refund_due: b.price.total_money(),
        });
        let host = booking(&b, Viewer::Host, now);
        assert!(host.refund.is_some() && host.cancellation.is_some());
        matches_schema(&host);
        b.status = BookingStatus::Confirmed;
        b.cancellation = None;
        matches_schema(&booking(&b, Viewer::Guest, now));
        let decision = RefundDecision { refund: b.price.total_money(), percent: 100, reason: "host".into() };
        matches_schema(&preview(&b, &decision));
        let mut quote = QuoteView {
            listing_id: b.listing_id.clone(),
            check_in: b.check_in,
            check_out: b.check_out,
            nights: b.nights,
            guests: b.guests,
            price: b.price.clone(),
            available: true,
            unavailable_dates: vec![],
        };
        matches_schema(&quote);
        quote.available = false;
        quote.unavailable_dates = vec![b.check_in];
        matches_schema(&quote);
    }
}
