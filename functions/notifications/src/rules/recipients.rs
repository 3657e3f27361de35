//! Who gets what for one event, and the recipient's profile among those read.

use serde::Deserialize;
use serde_json::Value;
use shared::events::{
    BookingAccepted, BookingCancelled, BookingConfirmed, BookingDeclined, BookingExpired, BookingRequested,
    CalendarConflict, Envelope, EventData, EventType, PaymentFailed, RefundIssued, ReviewPosted,
};
use shared::money::Money;

use crate::templates::Kind;

/// Who gets what for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub booking_id: String,
    pub recipients: Vec<(String, Kind)>,
    pub amount: Option<Money>,
    pub rating: Option<u8>,
}

impl Plan {
    fn new(booking_id: String, recipients: Vec<(String, Kind)>) -> Self {
        Self { booking_id, recipients, amount: None, rating: None }
    }

    fn with_amount(self, amount: Money) -> Self {
        Self { amount: Some(amount), ..self }
    }
}

/// The plan for an envelope; `None` for types this consumer does not handle.
pub fn plan(envelope: &Envelope) -> anyhow::Result<Option<Plan>> {
    let p = match envelope.event_type {
        EventType::BookingConfirmed => {
            let d: BookingConfirmed = data(envelope)?;
            let to = vec![(d.guest_id, Kind::ConfirmedGuest), (d.host_id, Kind::ConfirmedHost)];
            Plan::new(d.booking_id, to).with_amount(d.amount_paid)
        }
        EventType::BookingCancelled => {
            let d: BookingCancelled = data(envelope)?;
            let to = vec![(d.guest_id, Kind::CancelledGuest), (d.host_id, Kind::CancelledHost)];
            Plan::new(d.booking_id, to).with_amount(d.refund_due)
        }
        EventType::BookingExpired => {
            let d: BookingExpired = data(envelope)?;
            Plan::new(d.booking_id, vec![(d.guest_id, Kind::ExpiredGuest)])
        }
        EventType::BookingRequested => {
            let d: BookingRequested = data(envelope)?;
            Plan::new(d.booking_id, vec![(d.host_id, Kind::RequestedHost)]).with_amount(d.total)
        }
        EventType::BookingAccepted => {
            let d: BookingAccepted = data(envelope)?;
            Plan::new(d.booking_id, vec![(d.guest_id, Kind::AcceptedGuest)]).with_amount(d.amount)
        }
        EventType::BookingDeclined => {
            let d: BookingDeclined = data(envelope)?;
            Plan::new(d.booking_id, vec![(d.guest_id, Kind::DeclinedGuest)])
        }
        EventType::CalendarConflict => {
            let d: CalendarConflict = data(envelope)?;
            Plan::new(d.booking_id, vec![(d.host_id, Kind::CalendarConflictHost)])
        }
        EventType::PaymentFailed => {
            let d: PaymentFailed = data(envelope)?;
            Plan::new(d.booking_id, vec![(d.guest_id, Kind::PaymentFailedGuest)])
        }
        EventType::RefundIssued => {
            let d: RefundIssued = data(envelope)?;
            Plan::new(d.booking_id, vec![(d.guest_id, Kind::RefundIssuedGuest)]).with_amount(d.amount)
        }
        EventType::ReviewPosted => {
            let d: ReviewPosted = data(envelope)?;
            Plan { rating: Some(d.rating), ..Plan::new(d.booking_id, vec![(d.host_id, Kind::ReviewPostedHost)]) }
        }
        _ => return Ok(None),
    };
    Ok(Some(p))
}

/// The envelope's data as the event type `T`.
fn data<T: EventData>(envelope: &Envelope) -> anyhow::Result<T> {
    Ok(envelope.clone().decode::<T>()?.data)
}

/// The profile fields the texts need.
#[derive(Debug, Deserialize)]
pub struct ProfileView {
    pub email: String,
    #[serde(default)]
    pub name: String,
}

/// A profile that is there but does not decode (e.g. its `email` is not a string). The serde
/// error is not kept: its text may quote the value (an address).
#[derive(Debug, thiserror::Error)]
#[error("the recipient's profile is unreadable")]
pub struct ProfileUnreadable;

/// The profile of `user_id` among those read: `None` when they have none (no e-mail is due),
/// an error when theirs does not decode (the e-mail is due but cannot be built).
pub fn profile_of(profiles: &[Value], user_id: &str) -> Result<Option<ProfileView>, ProfileUnreadable> {
    let Some(found) = profiles.iter().find(|v| v.get("user_id").and_then(Value::as_str) == Some(user_id)) else {
        return Ok(None);
    };
    serde_json::from_value(found.clone()).map(Some).map_err(|_| ProfileUnreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review finding 6: a profile that does not decode is not "no address" (which would record
    /// the e-mail `skipped` for good).
    #[test]
    fn an_unreadable_profile_is_an_error_not_an_absent_one() {
        let profiles = vec![
            serde_json::json!({"user_id": "u-1", "email": "ann@example.com", "name": "Ann"}),
            serde_json::json!({"user_id": "u-2", "email": 42}),
        ];
        assert_eq!(profile_of(&profiles, "u-1").unwrap().map(|p| p.email), Some("ann@example.com".to_owned()));
        assert!(profile_of(&profiles, "u-2").is_err(), "unreadable");
        assert!(profile_of(&profiles, "u-3").unwrap().is_none(), "absent");
    }
}
