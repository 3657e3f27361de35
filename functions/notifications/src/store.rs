//! Where inbox items live: DynamoDB in production, memory in tests. Storage decides nothing
//! about e-mails: it writes a new item once, reads one, and swaps an item's e-mail state only
//! if nobody changed it since it was read (its `rev`); the rules are in `rules/email.rs`.
//! Also the reads of what the texts need: the booking and the recipients' profiles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::Table;
use shared::keys::{self, Key};
use shared::table::{Expr, TableError};

use crate::BoxFuture;
use crate::rules::email::EmailState;

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
    /// The e-mail's state; absent on items written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailState>,
}

/// The booking fields the texts need (the booking snapshots the listing title).
#[derive(Debug, Deserialize)]
pub struct BookingView {
    pub listing_title: String,
    pub check_in: Date,
    pub check_out: Date,
    /// A declined request's answer: the host's message goes to the guest.
    #[serde(default)]
    pub decline: Option<shared::booking::Decline>,
    /// `request`: an expiry is a request its host did not answer, not an unpaid hold.
    #[serde(default)]
    pub booking_mode: shared::listing::BookingMode,
}

/// The booking `booking_id`, `None` when there is none.
pub async fn read_booking(table: &Table, booking_id: &str) -> Result<Option<BookingView>, TableError> {
    table.get::<BookingView>(&shared::booking::key(booking_id)).await
}

/// The conversation fields a message's texts need.
#[derive(Debug, Deserialize)]
pub struct ConversationView {
    pub listing: ConversationListing,
    pub guest: shared::booking::Party,
    pub host: shared::booking::Party,
}

#[derive(Debug, Deserialize)]
pub struct ConversationListing {
    pub title: String,
}

/// The message fields its texts need.
#[derive(Debug, Deserialize)]
pub struct MessageView {
    pub text: String,
}

/// The conversation and the message of a `message.posted` (one BatchGetItem); `None` when
/// either is missing.
pub async fn read_message(
    table: &Table,
    conversation_id: &str,
    message_id: &str,
) -> Result<Option<(ConversationView, MessageView)>, TableError> {
    let conversation_key = keys::conversation(conversation_id);
    let message_key = keys::conversation_message(conversation_id, message_id);
    let found = table.batch_get::<Value>(&[conversation_key.clone(), message_key.clone()]).await?;
    let (mut conversation, mut message) = (None, None);
    for item in found {
        let sk = item.get(keys::SK).and_then(Value::as_str).unwrap_or_default().to_owned();
        let decode = |e: serde_json::Error| TableError::from(anyhow::Error::from(e).context("decode a message read"));
        if sk == conversation_key.sk {
            conversation = Some(serde_json::from_value::<ConversationView>(item).map_err(decode)?);
        } else if sk == message_key.sk {
            message = Some(serde_json::from_value::<MessageView>(item).map_err(decode)?);
        }
    }
    Ok(conversation.zip(message))
}

/// Whether this event may e-mail `user_id` about the conversation now: 1 UpdateItem of the
/// throttle item (`INBOX#<sub>` / `MESSAGE_EMAIL#<cnv>`) `SET last_emailed_at = now, event_id`,
/// on condition that none was sent since `cutoff` or that this very event set it (a
/// redelivery: its inbox item's e-mail state then says whether the e-mail went). `false`: held
/// back by a recent e-mail.
pub async fn claim_message_email(
    table: &Table,
    user_id: &str,
    conversation_id: &str,
    event_id: &str,
    now: &str,
    cutoff: &str,
) -> Result<bool, TableError> {
    let update = Expr::new("SET #t_type = :t_type, #t_last = :t_now, #t_event = :t_event")
        .name("#t_type", "type")
        .name("#t_last", "last_emailed_at")
        .name("#t_event", "event_id")
        .s(":t_type", "message_email_throttle")
        .s(":t_now", now)
        .s(":t_event", event_id);
    let condition = Expr::new("attribute_not_exists(#t_last) OR #t_last <= :t_cutoff OR #t_event = :t_event")
        .name("#t_last", "last_emailed_at")
        .name("#t_event", "event_id")
        .s(":t_cutoff", cutoff)
        .s(":t_event", event_id);
    match table.update(&keys::message_email_throttle(user_id, conversation_id), &update, Some(&condition)).await {
        Ok(()) => Ok(true),
        Err(TableError::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The profiles of `user_ids` that exist, undecoded (one that does not decode must not fail
/// the others: `rules::recipients::profile_of` tells them apart).
pub async fn read_profiles<'a>(
    table: &Table,
    user_ids: impl Iterator<Item = &'a str>,
) -> Result<Vec<Value>, TableError> {
    let profile_keys: Vec<Key> = user_ids.map(keys::user_profile).collect();
    table.batch_get::<Value>(&profile_keys).await
}

/// What an [`InboxStore`] call answers, later.
pub type InboxFuture<'a, T> = BoxFuture<'a, anyhow::Result<T>>;

pub trait InboxStore: Send + Sync {
    /// Writes `item` if no item has its key; `false` if one has (a redelivery of the event).
    fn put_new<'a>(&'a self, item: &'a InboxItem) -> InboxFuture<'a, bool>;

    /// The item as stored now (strongly consistent), `None` if there is none.
    fn get<'a>(&'a self, key: &'a Key) -> InboxFuture<'a, Option<InboxItem>>;

    /// Replaces the item's e-mail state with `new` if its `rev` is still `expected_rev`;
    /// `false` if another delivery changed it first (or the item is gone).
    fn swap_email<'a>(&'a self, key: &'a Key, expected_rev: u32, new: &'a EmailState) -> InboxFuture<'a, bool>;
}

/// The table: `PutItem` with `attribute_not_exists(PK)`, a consistent `GetItem`, and
/// `UpdateItem SET email = :new` with the condition `email.rev = :expected` (which also fails on
/// a missing item, so a swap never creates one).
pub struct DynamoInbox {
    pub table: Arc<Table>,
}

impl InboxStore for DynamoInbox {
    fn put_new<'a>(&'a self, item: &'a InboxItem) -> InboxFuture<'a, bool> {
        Box::pin(async move {
            match self.table.put_new(item).await {
                Ok(()) => Ok(true),
                Err(TableError::ConditionFailed) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn get<'a>(&'a self, key: &'a Key) -> InboxFuture<'a, Option<InboxItem>> {
        Box::pin(async move { Ok(self.table.get::<InboxItem>(key).await?) })
    }

    fn swap_email<'a>(&'a self, key: &'a Key, expected_rev: u32, new: &'a EmailState) -> InboxFuture<'a, bool> {
        Box::pin(async move {
            let update = Expr::new("SET #email = :email").name("#email", "email").ser(":email", new)?;
            let condition = Expr::new("#email.#rev = :rev")
                .name("#email", "email")
                .name("#rev", "rev")
                .n(":rev", i64::from(expected_rev));
            match self.table.update(key, &update, Some(&condition)).await {
                Ok(()) => Ok(true),
                Err(TableError::ConditionFailed) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }
}

/// In memory, with the same conditions (for tests).
#[derive(Default)]
pub struct MemoryInbox {
    items: Mutex<HashMap<(String, String), InboxItem>>,
}

impl MemoryInbox {
    /// Every item, in key order.
    pub fn items(&self) -> Vec<InboxItem> {
        let mut items: Vec<InboxItem> = self.lock().values().cloned().collect();
        items.sort_by(|a, b| (&a.key.pk, &a.key.sk).cmp(&(&b.key.pk, &b.key.sk)));
        items
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), InboxItem>> {
        self.items.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn id(key: &Key) -> (String, String) {
    (key.pk.clone(), key.sk.clone())
}

impl InboxStore for MemoryInbox {
    fn put_new<'a>(&'a self, item: &'a InboxItem) -> InboxFuture<'a, bool> {
        Box::pin(async move {
            let mut items = self.lock();
            if items.contains_key(&id(&item.key)) {
                return Ok(false);
            }
            items.insert(id(&item.key), item.clone());
            Ok(true)
        })
    }

    fn get<'a>(&'a self, key: &'a Key) -> InboxFuture<'a, Option<InboxItem>> {
        Box::pin(async move { Ok(self.lock().get(&id(key)).cloned()) })
    }

    fn swap_email<'a>(&'a self, key: &'a Key, expected_rev: u32, new: &'a EmailState) -> InboxFuture<'a, bool> {
        Box::pin(async move {
            let mut items = self.lock();
            match items.get_mut(&id(key)) {
                Some(item) if item.email.as_ref().is_some_and(|e| e.rev == expected_rev) => {
                    item.email = Some(new.clone());
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }
}
