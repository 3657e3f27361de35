//! Domain events: the envelope every event travels in, the catalogue of event types and their
//! payloads, and the outbox that makes an event exist exactly when its state change committed.
//!
//! A producer builds an [`Envelope`] from a payload and adds [`outbox_put`] to the SAME
//! `TransactWriteItems` as the change it announces. The `events-relay` function reads outbox
//! inserts from the table's stream and publishes each envelope, verbatim, to the `domain-events`
//! SNS topic with a `type` message attribute; each consumer's SQS queue is subscribed with a
//! filter policy on `type` and raw delivery, so a message body is exactly the envelope JSON.
//! Delivery is at least once: consumers dedupe with `shared::sqs::apply_once` (docs/events.md).
//!
//! ```ignore
//! let event = Envelope::new(BookingCancelled { .. }, now);
//! let mut tx = Transaction::new(&table);
//! tx.update(CancelItem::Booking, &booking_key, &cancel, Some(&is_confirmed))?;
//! tx.push(CancelItem::Event, events::outbox_put(&table, &event)?);
//! tx.commit().await?;
//! ```
//!
//! Payloads carry ids (user, booking, listing), never e-mail addresses or other personal data:
//! consumers read what they need from the table. Readers are tolerant (unknown fields are
//! ignored); a change that would break a reader bumps the type's `version`.

use std::fmt;

use aws_sdk_dynamodb::types::TransactWriteItem;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::ids;
use crate::keys::Key;
use crate::money::Money;
use crate::table::{Table, TableError};

/// Event ids are `evt_` + a lowercase ULID (time-sortable), made by `shared::ids`.
pub const ID_PREFIX: &str = "evt";
/// The outbox item's `type`: the stream filter of the relay matches INSERTs of this type only.
pub const OUTBOX_ITEM_TYPE: &str = "outbox";
pub const OUTBOX_PK_PREFIX: &str = "OUTBOX#";
pub const OUTBOX_SK: &str = "OUTBOX";
/// How long an outbox item stays in the table after its event (TTL, clean-up only). The stream
/// keeps records for 24 hours; the item outlives that so an operator can replay an event whose
/// publication failed for good (delete and re-put the item: the relay publishes INSERTs) even
/// after a weekend.
pub const OUTBOX_RETENTION: SignedDuration = SignedDuration::from_hours(7 * 24);
/// SNS takes messages of at most 256 KiB, message attributes included; 1 KiB is left for those.
pub const MAX_ENVELOPE_BYTES: usize = 255 * 1024;

/// Declares the catalogue once: for each event type its wire name, version and payload struct.
/// It makes the [`EventType`] enum (a variant per type, plus `Unknown`), [`EventType::KNOWN`]
/// in catalogue order, [`EventType::as_str`], and per type the payload struct (named like its
/// variant) with its [`EventData`] impl.
macro_rules! event_catalogue {
    ($(
        $(#[$doc:meta])*
        $name:ident = $wire:literal, version $version:literal {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {
        /// The event types Roost knows. An event of a type this build does not know (emitted by a newer
        /// producer during a deployment) decodes as `Unknown` so the relay can still pass it on;
        /// producers only ever emit known types, through [`EventData::TYPE`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum EventType {
            $($name,)*
            Unknown(String),
        }

        impl EventType {
            /// Every known type, in catalogue order.
            pub const KNOWN: [EventType; [$(stringify!($name)),*].len()] = [$(Self::$name),*];

            /// The wire name, e.g. `booking.cancelled` (also the SNS `type` message attribute).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$name => $wire,)*
                    Self::Unknown(name) => name,
                }
            }
        }

        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
            pub struct $name {
                $( $(#[$field_meta])* pub $field: $ty, )*
            }

            impl EventData for $name {
                const TYPE: EventType = EventType::$name;
                const VERSION: u32 = $version;
            }
        )*
    };
}

impl EventType {
    pub fn parse(name: &str) -> Self {
        Self::KNOWN.into_iter().find(|t| t.as_str() == name).unwrap_or_else(|| Self::Unknown(name.to_owned()))
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Unknown(_))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        if name.is_empty() {
            return Err(serde::de::Error::custom("event type must not be empty"));
        }
        Ok(Self::parse(&name))
    }
}

/// A payload of one event type at one version.
pub trait EventData: Serialize + DeserializeOwned {
    const TYPE: EventType;
    /// Bumped only for a change that would break a reader (a field removed, renamed or retyped).
    const VERSION: u32;
}

/// `{id, type, version, occurred_at, data}`: what is published and what consumers receive.
/// `Envelope<Value>` is an envelope whose payload has not been typed yet (see [`Envelope::decode`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T = Value> {
    /// `evt_<ulid>`: unique per event, the consumers' dedupe key.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub version: u32,
    /// RFC 3339 UTC, truncated to the millisecond: when the state change happened.
    pub occurred_at: Timestamp,
    pub data: T,
}

impl<T: EventData> Envelope<T> {
    /// A new event with a fresh id; `occurred_at` comes from the caller's clock.
    pub fn new(data: T, occurred_at: Timestamp) -> Self {
        let occurred_at = Timestamp::from_millisecond(occurred_at.as_millisecond()).unwrap_or(occurred_at);
        Self { id: ids::new_id_at(ID_PREFIX, occurred_at), event_type: T::TYPE, version: T::VERSION, occurred_at, data }
    }
}

impl<T: Serialize> Envelope<T> {
    pub fn to_json(&self) -> Result<String, EventError> {
        serde_json::to_string(self).map_err(EventError::Encode)
    }
}

impl Envelope<Value> {
    /// Parses an envelope (an SQS message body, an outbox item's `envelope`); the error names
    /// the field that did not fit.
    pub fn from_json(json: &str) -> Result<Self, EventError> {
        let mut de = serde_json::Deserializer::from_str(json);
        let envelope: Self = serde_path_to_error::deserialize(&mut de).map_err(EventError::decode)?;
        de.end().map_err(|e| EventError::Decode(e.to_string()))?;
        if envelope.id.is_empty() {
            return Err(EventError::Invalid("event id must not be empty".to_owned()));
        }
        Ok(envelope)
    }

    /// Types the payload: the type must be `T`'s and the version the one this build reads.
    pub fn decode<T: EventData>(self) -> Result<Envelope<T>, EventError> {
        if self.event_type != T::TYPE {
            return Err(EventError::WrongType { id: self.id, expected: T::TYPE, found: self.event_type });
        }
        if self.version != T::VERSION {
            return Err(EventError::UnsupportedVersion {
                id: self.id,
                event_type: self.event_type,
                found: self.version,
                supported: T::VERSION,
            });
        }
        let data = serde_path_to_error::deserialize(self.data).map_err(EventError::decode)?;
        Ok(Envelope {
            id: self.id,
            event_type: self.event_type,
            version: self.version,
            occurred_at: self.occurred_at,
            data,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event could not be encoded")]
    Encode(#[source] serde_json::Error),
    /// Not JSON of the envelope's (or payload's) shape; the text names the field.
    #[error("event could not be decoded: {0}")]
    Decode(String),
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("event {id} is {size} bytes as JSON; SNS takes at most {MAX_ENVELOPE_BYTES}")]
    TooLarge { id: String, size: usize },
    #[error("event {id} is a {found}, not a {expected}")]
    WrongType { id: String, expected: EventType, found: EventType },
    #[error("event {id} ({event_type}) has version {found}; this build reads version {supported}")]
    UnsupportedVersion { id: String, event_type: EventType, found: u32, supported: u32 },
    #[error(transparent)]
    Table(#[from] TableError),
}

impl EventError {
    fn decode(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        match path.as_str() {
            "." => Self::Decode(e.into_inner().to_string()),
            _ => Self::Decode(format!("{path}: {}", e.into_inner())),
        }
    }
}

/// `OUTBOX#<event id>` / `OUTBOX`.
pub fn outbox_key(event_id: &str) -> Key {
    Key::new(format!("{OUTBOX_PK_PREFIX}{event_id}"), OUTBOX_SK)
}

/// The outbox item: one per event, written in the transaction of the change it announces and
/// never updated (the relay reads INSERTs only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    #[serde(flatten)]
    pub key: Key,
    /// Always `outbox`.
    #[serde(rename = "type")]
    pub item_type: String,
    pub event_id: String,
    pub event_type: String,
    pub occurred_at: Timestamp,
    /// The envelope as JSON, published byte for byte: what the producer wrote is what consumers
    /// read (no detour through DynamoDB's number and empty-value rules).
    pub envelope: String,
    /// TTL, epoch seconds: clean-up only.
    pub expires_at: i64,
}

impl OutboxItem {
    pub fn new<T: Serialize>(envelope: &Envelope<T>) -> Result<Self, EventError> {
        if envelope.id.is_empty() {
            return Err(EventError::Invalid("event id must not be empty".to_owned()));
        }
        let json = envelope.to_json()?;
        if json.len() > MAX_ENVELOPE_BYTES {
            return Err(EventError::TooLarge { id: envelope.id.clone(), size: json.len() });
        }
        let expires_at = envelope.occurred_at.checked_add(OUTBOX_RETENTION).unwrap_or(envelope.occurred_at);
        Ok(Self {
            key: outbox_key(&envelope.id),
            item_type: OUTBOX_ITEM_TYPE.to_owned(),
            event_id: envelope.id.clone(),
            event_type: envelope.event_type.as_str().to_owned(),
            occurred_at: envelope.occurred_at,
            envelope: json,
            expires_at: expires_at.as_second(),
        })
    }

    /// The stored envelope, parsed; it must be the one this item is keyed by.
    pub fn parse_envelope(&self) -> Result<Envelope<Value>, EventError> {
        let envelope = Envelope::from_json(&self.envelope)?;
        if envelope.id != self.event_id || self.key != outbox_key(&self.event_id) {
            return Err(EventError::Invalid(format!(
                "outbox item {}/{} holds event {}",
                self.key.pk, self.key.sk, envelope.id
            )));
        }
        Ok(envelope)
    }
}

/// The `Put` of `envelope`'s outbox item, to add to the transaction of the state change it
/// announces: the event exists if and only if that transaction commits. The put is conditional
/// on the key being new, so an event id can never be overwritten.
pub fn outbox_put<T: Serialize>(table: &Table, envelope: &Envelope<T>) -> Result<TransactWriteItem, EventError> {
    Ok(table.tx_put_new(&OutboxItem::new(envelope)?)?)
}

// ---------------------------------------------------------------------------------------------
// The catalogue (docs/events.md): one payload struct per type, version 1.
// ---------------------------------------------------------------------------------------------

/// Who cancelled a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    Guest,
    Host,
}

event_catalogue! {
    /// A guest's booking holds its nights, waiting for payment until `hold_expires_at`.
    BookingCreated = "booking.created", version 1 {
        pub booking_id: String,
        pub listing_id: String,
        pub guest_id: String,
        pub host_id: String,
        pub check_in: Date,
        pub check_out: Date,
        pub total: Money,
        pub hold_expires_at: Timestamp,
    }

    /// A booking was cancelled and its nights released. `refund_due` is what the guest gets back
    /// under the policy snapshotted on the booking (the whole amount paid when the host cancels; zero
    /// when nothing was paid or nothing is due).
    BookingCancelled = "booking.cancelled", version 1 {
        pub booking_id: String,
        pub listing_id: String,
        pub guest_id: String,
        pub host_id: String,
        pub cancelled_by: CancelledBy,
        pub refund_due: Money,
    }

    /// An unpaid hold lapsed: the booking is `expired` and its nights are free again.
    BookingExpired = "booking.expired", version 1 {
        pub booking_id: String,
        pub listing_id: String,
        pub guest_id: String,
        pub host_id: String,
    }

    /// A request's card was authorised: the host has until `answer_by` to accept or decline.
    BookingRequested = "booking.requested", version 1 {
        pub booking_id: String,
        pub listing_id: String,
        pub guest_id: String,
        pub host_id: String,
        pub check_in: Date,
        pub check_out: Date,
        pub total: Money,
        pub answer_by: Timestamp,
    }

    /// The host accepted a request: the booking is `confirmed` and its nights `booked`; the
    /// authorised payment is captured next (payment-events), `amount` of it.
    BookingAccepted = "booking.accepted", version 1 {
        pub booking_id: String,
        pub listing_id: String,
        pub guest_id: String,
        pub host_id: String,
        pub check_in: Date,
        pub check_out: Date,
        pub amount: Money,
        pub payment_intent_id: String,
    }

    /// The host declined a request: its nights are free; the card's authorisation is cancelled
    /// (payment-events). The host's message stays on the booking (the notifier reads it there).
    BookingDeclined = "booking.declined", version 1 {
        pub booking_id: String,
        pub listing_id: String,
        pub guest_id: String,
        pub host_id: String,
    }

    /// Payment succeeded and every night turned from `held` to `booked`.
    BookingConfirmed = "booking.confirmed", version 1 {
        pub booking_id: String,
        pub listing_id: String,
        pub guest_id: String,
        pub host_id: String,
        pub check_in: Date,
        pub check_out: Date,
        pub amount_paid: Money,
        pub payment_intent_id: String,
    }

    /// A charge for a booking was declined; the booking keeps waiting for payment until its hold lapses.
    PaymentFailed = "payment.failed", version 1 {
        pub booking_id: String,
        pub guest_id: String,
        pub payment_intent_id: String,
        /// Stripe's `decline_code` or `code` (`card_declined`, ...), when it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failure_code: Option<String>,
    }

    /// Stripe confirmed a refund for a booking.
    RefundIssued = "refund.issued", version 1 {
        pub booking_id: String,
        pub guest_id: String,
        pub refund_id: String,
        pub amount: Money,
    }

    /// A guest reviewed a completed stay.
    ReviewPosted = "review.posted", version 1 {
        pub review_id: String,
        pub booking_id: String,
        pub listing_id: String,
        pub author_id: String,
        pub host_id: String,
        /// 1 to 5.
        pub rating: u8,
    }

    /// A host's imported calendar (calendar sync) marks nights that a Roost booking holds: the
    /// booking keeps them; the host is told once per booking and import (the import records the
    /// conflict, and a later sync that finds it again emits nothing).
    CalendarConflict = "calendar.conflict", version 1 {
        pub listing_id: String,
        pub import_id: String,
        pub host_id: String,
        pub booking_id: String,
        /// The booking's nights the imported feed marks, in date order.
        pub dates: Vec<Date>,
    }

    /// A message was posted into a conversation between a listing's host and a guest. Ids only:
    /// the text stays in the conversation (the notifier reads it there).
    MessagePosted = "message.posted", version 1 {
        pub conversation_id: String,
        pub message_id: String,
        pub listing_id: String,
        pub sender_id: String,
        pub recipient_id: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{AwsStub, dynamodb_client};
    use serde_json::json;

    fn usd(amount: i64) -> Money {
        Money::parse(amount, "USD").unwrap()
    }

    fn cancelled() -> BookingCancelled {
        BookingCancelled {
            booking_id: "bkg_01jh000000000000000000000a".into(),
            listing_id: "lst_01jh000000000000000000000b".into(),
            guest_id: "3f1e2d4c-5b6a-4789-8abc-def012345678".into(),
            host_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d".into(),
            cancelled_by: CancelledBy::Guest,
            refund_due: usd(12_300),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn type_names_round_trip_and_unknown_types_survive() {
        let names: Vec<&str> = EventType::KNOWN.iter().map(EventType::as_str).collect();
        assert_eq!(
            names,
            [
                "booking.created",
                "booking.cancelled",
                "booking.expired",
                "booking.requested",
                "booking.accepted",
                "booking.declined",
                "booking.confirmed",
                "payment.failed",
                "refund.issued",
                "review.posted",
                "calendar.conflict",
                "message.posted"
            ]
        );
        for t in EventType::KNOWN {
            assert_eq!(EventType::parse(t.as_str()), t);
            assert!(t.is_known());
            assert_eq!(serde_json::to_value(&t).unwrap(), json!(t.as_str()));
        }
        let future: EventType = serde_json::from_value(json!("listing.archived")).unwrap();
        assert_eq!(future, EventType::Unknown("listing.archived".into()));
        assert!(!future.is_known());
        assert_eq!(future.to_string(), "listing.archived");
        assert!(serde_json::from_value::<EventType>(json!("")).is_err());
        assert!(serde_json::from_value::<EventType>(json!(3)).is_err());
    }

    #[test]
    fn every_payload_is_registered_under_its_own_type() {
        assert_eq!(BookingCreated::TYPE, EventType::BookingCreated);
        assert_eq!(BookingCancelled::TYPE, EventType::BookingCancelled);
        assert_eq!(BookingExpired::TYPE, EventType::BookingExpired);
        assert_eq!(BookingConfirmed::TYPE, EventType::BookingConfirmed);
        assert_eq!(PaymentFailed::TYPE, EventType::PaymentFailed);
        assert_eq!(RefundIssued::TYPE, EventType::RefundIssued);
        assert_eq!(ReviewPosted::TYPE, EventType::ReviewPosted);
        assert_eq!(MessagePosted::TYPE, EventType::MessagePosted);
    }

    #[test]
    fn the_envelope_has_the_documented_shape() {
        let event = Envelope::new(cancelled(), at("2026-11-26T10:00:00.123456789Z"));
        assert!(ids::parse_id(ID_PREFIX, &event.id).is_some(), "{}", event.id);
        let other = Envelope::new(cancelled(), at("2026-11-26T10:00:00.123Z"));
        assert_ne!(event.id, other.id, "ids are unique");
        let value: Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
        assert_eq!(
            value,
            json!({
                "id": event.id,
                "type": "booking.cancelled",
                "version": 1,
                "occurred_at": "2026-11-26T10:00:00.123Z",
                "data": {
                    "booking_id": "bkg_01jh000000000000000000000a",
                    "listing_id": "lst_01jh000000000000000000000b",
                    "guest_id": "3f1e2d4c-5b6a-4789-8abc-def012345678",
                    "host_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "cancelled_by": "guest",
                    "refund_due": {"amount": 12300, "currency": "USD"}
                }
            })
        );
        let whole = Envelope::new(cancelled(), at("2026-11-26T10:00:00Z")).to_json().unwrap();
        assert!(whole.contains(r#""occurred_at":"2026-11-26T10:00:00Z""#), "{whole}");
    }

    #[test]
    fn ids_sort_with_the_clock() {
        let early = Envelope::new(cancelled(), at("2026-01-01T00:00:00Z"));
        let late = Envelope::new(cancelled(), at("2026-01-01T00:00:01Z"));
        assert!(early.id < late.id);
    }

    #[test]
    fn decoding_checks_type_version_and_fields() {
        let event = Envelope::new(cancelled(), at("2026-11-26T10:00:00Z"));
        let json = event.to_json().unwrap();
        let raw = Envelope::from_json(&json).unwrap();
        assert_eq!(raw.clone().decode::<BookingCancelled>().unwrap(), event);

        match raw.clone().decode::<BookingExpired>() {
            Err(EventError::WrongType { expected, found, .. }) => {
                assert_eq!((expected, found), (EventType::BookingExpired, EventType::BookingCancelled))
            }
            other => panic!("{other:?}"),
        }
        let mut v2 = raw.clone();
        v2.version = 2;
        let e = v2.decode::<BookingCancelled>().unwrap_err();
        assert!(matches!(e, EventError::UnsupportedVersion { found: 2, supported: 1, .. }), "{e}");

        let mut broken = raw;
        broken.data["refund_due"] = json!({"amount": -1, "currency": "USD"});
        let e = broken.decode::<BookingCancelled>().unwrap_err();
        assert!(e.to_string().contains("refund_due"), "{e}");

        // Readers are tolerant: a field added by a newer producer is ignored.
        let mut extra: Value = serde_json::from_str(&json).unwrap();
        extra["data"]["new_field"] = json!(true);
        extra["trace"] = json!("x");
        assert!(Envelope::from_json(&extra.to_string()).unwrap().decode::<BookingCancelled>().is_ok());
    }

    #[test]
    fn malformed_envelopes_are_errors_naming_the_field() {
        let e = Envelope::from_json("not json").unwrap_err();
        assert!(matches!(e, EventError::Decode(_)), "{e}");
        let e = Envelope::from_json(r#"{"id":"evt_1","type":"booking.created","version":-1}"#).unwrap_err();
        assert!(e.to_string().contains("version: invalid value"), "{e}");
        let e = Envelope::from_json(r#"{"id":"evt_1","type":"booking.created","version":1,"data":{}}"#).unwrap_err();
        assert!(e.to_string().contains("occurred_at"), "{e}");
        let e = Envelope::from_json(
            r#"{"id":"evt_1","type":"booking.created","version":"1","occurred_at":"2026-01-01T00:00:00Z","data":{}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
        let e = Envelope::from_json(
            r#"{"id":"","type":"booking.created","version":1,"occurred_at":"2026-01-01T00:00:00Z","data":{}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, EventError::Invalid(_)), "{e}");
        let ok = r#"{"id":"evt_1","type":"booking.created","version":1,"occurred_at":"2026-01-01T00:00:00+00:00","data":{}}"#;
        assert_eq!(Envelope::from_json(ok).unwrap().occurred_at, at("2026-01-01T00:00:00Z"));
        assert!(Envelope::from_json(&format!("{ok} trailing")).is_err());
    }

    #[test]
    fn the_outbox_item_holds_the_envelope_verbatim() {
        let event = Envelope::new(cancelled(), at("2026-11-26T10:00:00Z"));
        let item = OutboxItem::new(&event).unwrap();
        assert_eq!(item.key, Key::new(format!("OUTBOX#{}", event.id), "OUTBOX"));
        assert_eq!(item.item_type, "outbox");
        assert_eq!(item.event_type, "booking.cancelled");
        assert_eq!(item.envelope, event.to_json().unwrap());
        assert_eq!(item.expires_at, at("2026-12-03T10:00:00Z").as_second(), "seven days out");
        assert_eq!(item.parse_envelope().unwrap().decode::<BookingCancelled>().unwrap(), event);

        let stored = crate::table::to_item(&item).unwrap();
        use aws_sdk_dynamodb::types::AttributeValue as A;
        assert_eq!(stored["type"], A::S("outbox".into()));
        assert_eq!(stored["PK"], A::S(format!("OUTBOX#{}", event.id)));
        assert_eq!(stored["expires_at"], A::N(item.expires_at.to_string()));
        assert_eq!(stored["occurred_at"], A::S("2026-11-26T10:00:00Z".into()));
        let back: OutboxItem = crate::table::from_item(stored).unwrap();
        assert_eq!(back, item);

        let mut swapped = item.clone();
        swapped.event_id = "evt_other".into();
        assert!(matches!(swapped.parse_envelope(), Err(EventError::Invalid(_))));
    }

    #[test]
    fn oversized_or_anonymous_events_never_reach_the_outbox() {
        #[derive(Serialize, Deserialize)]
        struct Huge {
            blob: String,
        }
        impl EventData for Huge {
            const TYPE: EventType = EventType::ReviewPosted;
            const VERSION: u32 = 1;
        }
        let event = Envelope::new(Huge { blob: "x".repeat(MAX_ENVELOPE_BYTES) }, Timestamp::now());
        assert!(matches!(OutboxItem::new(&event), Err(EventError::TooLarge { .. })));
        let mut anonymous = Envelope::new(cancelled(), Timestamp::now());
        anonymous.id.clear();
        assert!(matches!(OutboxItem::new(&anonymous), Err(EventError::Invalid(_))));
    }

    #[tokio::test]
    async fn outbox_put_joins_the_transaction_as_a_conditional_put() {
        let event = Envelope::new(cancelled(), at("2026-11-26T10:00:00Z"));
        let expected_envelope = event.to_json().unwrap();
        let expected_pk = format!("OUTBOX#{}", event.id);
        let stub = AwsStub::start(move |target, body| {
            assert_eq!(target, "DynamoDB_20120810.TransactWriteItems");
            let req: Value = serde_json::from_slice(body).unwrap();
            let items = req["TransactItems"].as_array().unwrap();
            assert_eq!(items.len(), 2);
            let put = &items[1]["Put"];
            assert_eq!(put["TableName"], "roost");
            assert_eq!(put["Item"]["PK"]["S"], expected_pk.as_str());
            assert_eq!(put["Item"]["SK"]["S"], "OUTBOX");
            assert_eq!(put["Item"]["type"]["S"], "outbox");
            assert_eq!(put["Item"]["envelope"]["S"], expected_envelope.as_str());
            assert_eq!(put["ConditionExpression"], "attribute_not_exists(#pk)");
            (200, "{}".to_owned())
        })
        .await;
        let table = Table::from_conf(dynamodb_client(&stub.url()), "roost");
        let change = table.tx_put_new(&crate::keys::user_profile("u-1")).unwrap();
        table.transact(vec![change, outbox_put(&table, &event).unwrap()]).await.unwrap();
        assert_eq!(stub.hits(), 1, "one request: the event rides in the change's own transaction");
    }

    #[test]
    fn every_payload_round_trips() {
        let now = at("2026-11-26T10:00:00Z");
        let date = |s: &str| -> Date { s.parse().unwrap() };
        fn check<T: EventData + PartialEq + fmt::Debug + Clone>(data: T, now: Timestamp) {
            let event = Envelope::new(data, now);
            let back = Envelope::from_json(&event.to_json().unwrap()).unwrap().decode::<T>().unwrap();
            assert_eq!(back, event);
        }
        check(
            BookingCreated {
                booking_id: "bkg_1".into(),
                listing_id: "lst_1".into(),
                guest_id: "g".into(),
                host_id: "h".into(),
                check_in: date("2026-12-01"),
                check_out: date("2026-12-04"),
                total: usd(30_000),
                hold_expires_at: at("2026-11-26T10:15:00Z"),
            },
            now,
        );
        check(cancelled(), now);
        check(
            BookingExpired {
                booking_id: "b".into(),
                listing_id: "l".into(),
                guest_id: "g".into(),
                host_id: "h".into(),
            },
            now,
        );
        check(
            BookingConfirmed {
                booking_id: "b".into(),
                listing_id: "l".into(),
                guest_id: "g".into(),
                host_id: "h".into(),
                check_in: date("2026-12-01"),
                check_out: date("2026-12-04"),
                amount_paid: usd(30_000),
                payment_intent_id: "pi_1".into(),
            },
            now,
        );
        check(
            PaymentFailed {
                booking_id: "b".into(),
                guest_id: "g".into(),
                payment_intent_id: "pi_1".into(),
                failure_code: None,
            },
            now,
        );
        check(
            RefundIssued { booking_id: "b".into(), guest_id: "g".into(), refund_id: "re_1".into(), amount: usd(1) },
            now,
        );
        check(
            ReviewPosted {
                review_id: "rev_1".into(),
                booking_id: "b".into(),
                listing_id: "l".into(),
                author_id: "g".into(),
                host_id: "h".into(),
                rating: 5,
            },
            now,
        );
    }
}
