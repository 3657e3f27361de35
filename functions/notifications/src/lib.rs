//! The `notifications` function: turns the domain events of its queue into, for each person
//! concerned, an inbox item and an e-mail (SES).
//!
//! | event | to |
//! |---|---|
//! | `booking.confirmed`, `booking.cancelled` | guest and host |
//! | `booking.expired`, `payment.failed`, `refund.issued` | guest |
//! | `review.posted` | host |
//!
//! Exactly one inbox item per (event, person): its key is derived from the event id
//! (`INBOX#<sub>` / `NOTIFICATION#ntf_<event ULID>`) and written with `attribute_not_exists`, so a
//! second delivery hits the same key and sends nothing. The item is written first, then the
//! e-mail sent; when the send fails the item is deleted again and the message fails, so the
//! retry does both (at-least-once e-mail, never a silent loss). E-mail addresses come from the
//! profiles (events carry ids only) and are never logged.

pub mod templates;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::events::{
    BookingCancelled, BookingConfirmed, BookingExpired, Envelope, EventType, PaymentFailed, RefundIssued, ReviewPosted,
};
use shared::keys::{self, Key};
use shared::money::Money;
use shared::sqs::{self, Received};
use shared::table::TableError;
use shared::{SharedClock, Table};
use tracing::Instrument;

use crate::templates::{Context, Kind, Rendered};

/// Messages of a batch applied at once.
pub const CONCURRENCY: usize = sqs::DEFAULT_CONCURRENCY;
/// The inbox item's `type` attribute.
pub const ITEM_TYPE: &str = "notification";
pub const SK_PREFIX: &str = keys::INBOX_SK_PREFIX;
pub const ID_PREFIX: &str = "ntf_";

/// The inbox item of `user_id` for the event `event_id` (`evt_<ulid>` -> `ntf_<ulid>`).
pub fn notification_id(event_id: &str) -> String {
    format!(
        "{ID_PREFIX}{}",
        event_id.strip_prefix(shared::events::ID_PREFIX).unwrap_or(event_id).trim_start_matches('_')
    )
}

/// `INBOX#<sub>` / `NOTIFICATION#<notification id>`: a user's inbox is one partition, newest last.
pub fn inbox_key(user_id: &str, notification_id: &str) -> Key {
    keys::inbox_item(user_id, notification_id)
}

/// One inbox item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub notification_id: String,
    pub user_id: String,
    pub event_id: String,
    /// The event type (`booking.confirmed`, ...).
    pub notification_type: String,
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<String>,
    pub created_at: String,
    pub read: bool,
}

/// An e-mail ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends e-mail (SES in production, a fake in tests).
pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// SES v2 from `from` (a sender in a verified identity's domain).
pub struct Ses {
    pub client: aws_sdk_sesv2::Client,
    pub from: String,
}

impl Mailer for Ses {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, anyhow::Result<()>> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        Box::pin(async move {
            let content = |s: &str| Content::builder().data(s).charset("UTF-8").build();
            let message = Message::builder()
                .subject(content(&email.subject)?)
                .body(Body::builder().text(content(&email.text)?).html(content(&email.html)?).build())
                .build();
            self.client
                .send_email()
                .from_email_address(&self.from)
                .destination(Destination::builder().to_addresses(&email.to).build())
                .content(EmailContent::builder().simple(message).build())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("SES SendEmail: {}", aws_sdk_sesv2::error::DisplayErrorContext(e)))?;
            Ok(())
        })
    }
}

/// Built once per process in `main`.
#[derive(Clone)]
pub struct State {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub mailer: Arc<dyn Mailer>,
}

pub async fn handle_batch(st: &State, event: SqsEvent) -> Result<SqsBatchResponse, sqs::BatchError> {
    sqs::run_batch(event, CONCURRENCY, |msg: Received<Value>| async move { apply(st, msg.body).await }).await
}

/// Who gets what for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub booking_id: String,
    pub recipients: Vec<(String, Kind)>,
    pub amount: Option<Money>,
    pub rating: Option<u8>,
}

/// The plan for an envelope; `None` for types this consumer does not handle.
pub fn plan(envelope: &Envelope) -> anyhow::Result<Option<Plan>> {
    let e = envelope.clone();
    let p = match envelope.event_type {
        EventType::BookingConfirmed => {
            let d: BookingConfirmed = e.decode()?.data;
            Plan {
                booking_id: d.booking_id,
                recipients: vec![(d.guest_id, Kind::ConfirmedGuest), (d.host_id, Kind::ConfirmedHost)],
                amount: Some(d.amount_paid),
                rating: None,
            }
        }
        EventType::BookingCancelled => {
            let d: BookingCancelled = e.decode()?.data;
            Plan {
                booking_id: d.booking_id,
                recipients: vec![(d.guest_id, Kind::CancelledGuest), (d.host_id, Kind::CancelledHost)],
                amount: Some(d.refund_due),
                rating: None,
            }
        }
        EventType::BookingExpired => {
            let d: BookingExpired = e.decode()?.data;
            Plan {
                booking_id: d.booking_id,
                recipients: vec![(d.guest_id, Kind::ExpiredGuest)],
                amount: None,
                rating: None,
            }
        }
        EventType::PaymentFailed => {
            let d: PaymentFailed = e.decode()?.data;
            Plan {
                booking_id: d.booking_id,
                recipients: vec![(d.guest_id, Kind::PaymentFailedGuest)],
                amount: None,
                rating: None,
            }
        }
        EventType::RefundIssued => {
            let d: RefundIssued = e.decode()?.data;
            Plan {
                booking_id: d.booking_id,
                recipients: vec![(d.guest_id, Kind::RefundIssuedGuest)],
                amount: Some(d.amount),
                rating: None,
            }
        }
        EventType::ReviewPosted => {
            let d: ReviewPosted = e.decode()?.data;
            Plan {
                booking_id: d.booking_id,
                recipients: vec![(d.host_id, Kind::ReviewPostedHost)],
                amount: None,
                rating: Some(d.rating),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(p))
}

/// The booking fields the texts need (the booking snapshots the listing title).
#[derive(Debug, Deserialize)]
struct BookingView {
    listing_title: String,
    check_in: Date,
    check_out: Date,
}

#[derive(Debug, Deserialize)]
struct ProfileView {
    email: String,
    #[serde(default)]
    name: String,
}

/// Applies one message.
pub async fn apply(st: &State, body: Value) -> anyhow::Result<()> {
    let envelope = Envelope::from_json(&body.to_string())?;
    let span = tracing::info_span!("domain_event", event_id = %envelope.id, event_type = %envelope.event_type);
    apply_envelope(st, envelope).instrument(span).await
}

async fn apply_envelope(st: &State, envelope: Envelope) -> anyhow::Result<()> {
    let Some(plan) = plan(&envelope)? else {
        tracing::warn!("event type not handled (filter policy drift?): acknowledged");
        return Ok(());
    };
    let Some(booking) = st.table.get::<BookingView>(&shared::booking::key(&plan.booking_id)).await? else {
        tracing::warn!(booking_id = %plan.booking_id, "event for an unknown booking: acknowledged");
        return Ok(());
    };
    let profile_keys: Vec<Key> = plan.recipients.iter().map(|(u, _)| keys::user_profile(u)).collect();
    let profiles: Vec<(String, ProfileView)> = st
        .table
        .batch_get::<Value>(&profile_keys)
        .await?
        .into_iter()
        .filter_map(|v| {
            let id = v.get("user_id")?.as_str()?.to_owned();
            serde_json::from_value::<ProfileView>(v).ok().map(|p| (id, p))
        })
        .collect();
    let id = notification_id(&envelope.id);
    let now = st.clock.now();
    for (user_id, kind) in &plan.recipients {
        let profile = profiles.iter().find(|(u, _)| u == user_id).map(|(_, p)| p);
        let ctx = Context {
            recipient_name: profile.map(|p| p.name.clone()).unwrap_or_default(),
            listing_title: booking.listing_title.clone(),
            booking_id: plan.booking_id.clone(),
            check_in: Some(booking.check_in),
            check_out: Some(booking.check_out),
            amount: plan.amount,
            rating: plan.rating,
        };
        let rendered = templates::render(*kind, &ctx);
        let item = InboxItem {
            key: inbox_key(user_id, &id),
            item_type: ITEM_TYPE.to_owned(),
            notification_id: id.clone(),
            user_id: user_id.clone(),
            event_id: envelope.id.clone(),
            notification_type: envelope.event_type.as_str().to_owned(),
            title: rendered.title.clone(),
            body: rendered.inbox_body.clone(),
            booking_id: Some(plan.booking_id.clone()),
            created_at: now.to_string(),
            read: false,
        };
        notify(st, &item, profile.map(|p| p.email.as_str()), rendered).await?;
    }
    Ok(())
}

/// Writes the inbox item, then sends the e-mail; a duplicate sends nothing.
async fn notify(st: &State, item: &InboxItem, email: Option<&str>, rendered: Rendered) -> anyhow::Result<()> {
    match st.table.put_new(item).await {
        Ok(()) => {}
        Err(TableError::ConditionFailed) => {
            tracing::info!(user_id = %item.user_id, "already notified (duplicate delivery): nothing sent");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    let Some(to) = email.filter(|e| !e.is_empty()) else {
        tracing::warn!(user_id = %item.user_id, "no profile e-mail: inbox item only");
        return Ok(());
    };
    let email = Email { to: to.to_owned(), subject: rendered.title, text: rendered.text, html: rendered.html };
    if let Err(e) = st.mailer.send(&email).await {
        // Undo the dedupe record so the retry sends; if this fails too the e-mail is lost (logged).
        if let Err(d) = st.table.delete(&item.key, None).await {
            tracing::error!(user_id = %item.user_id, error = %d, "e-mail failed and the inbox item could not be removed: no retry will send it");
        }
        return Err(e.context(format!("sending the e-mail to user {}", item.user_id)));
    }
    tracing::info!(user_id = %item.user_id, "notified");
    Ok(())
}
