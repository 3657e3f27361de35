//! The messaging context's DynamoDB access: the keys and items it owns, and one function per
//! access pattern with its request count.
//!
//! - **Conversation** `CONVERSATION#<cnv id>` / `CONVERSATION`: listing, guest, host, activity.
//!   One GetItem tells whether the caller takes part.
//! - **Member** `CONVERSATION#<cnv id>` / `MEMBER#<user sub>`, one per participant, on GSI1 under
//!   `CONVERSATIONS#<user sub>` / `ACTIVITY#<last message id>`: a person's conversations, newest
//!   activity first, in ONE Query per page (message ids are ULIDs of their time). Carries what
//!   the list shows: the other person, the listing, the last message's preview and the
//!   member's `unread_count` (`ADD` by each message to them, `SET 0` on read).
//! - **Message** `CONVERSATION#<cnv id>` / `MESSAGE#<msg id>`: a conversation's messages in
//!   order on the table (one Query per page, either direction).
//! - **Pair** `INQUIRY#<listing id>#<guest sub>` / `CONVERSATION`: put with
//!   `attribute_not_exists` with the first message: one conversation per (listing, guest).
//! - **Send counter** `MESSAGE_RATE#<user sub>` / `MINUTE#<yyyy-mm-ddThh:mm>`: `ADD sent 1` on
//!   condition `sent < max`, TTL `expires_at`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::Table;
use shared::booking::{self, BookingStatus, Party};
use shared::events::{Envelope, MessagePosted, outbox_put};
use shared::idempotency::{Idempotent, StoredResponse};
use shared::keys::Key;
use shared::page::Partition;
use shared::table::{Expr, Item, Page, Query, TableError, TransactError, Transaction};

use crate::rules;

pub const ID_PREFIX: &str = "cnv";
pub const MESSAGE_ID_PREFIX: &str = "msg";
pub const CONVERSATION_TYPE: &str = "conversation";
pub const MEMBER_TYPE: &str = "conversation_member";
pub const MESSAGE_TYPE: &str = "message";
pub const PAIR_TYPE: &str = "conversation_pair";
pub const RATE_TYPE: &str = "message_rate";
pub const SK: &str = "CONVERSATION";
pub const MEMBER_SK_PREFIX: &str = "MEMBER#";
pub const MESSAGE_SK_PREFIX: &str = "MESSAGE#";
/// The index of a person's conversations (shared with other item kinds under other partitions).
pub const MEMBER_INDEX: &str = "GSI1";
pub const ACTIVITY_PREFIX: &str = "ACTIVITY#";
const UNREAD_ATTR: &str = "unread_count";

pub fn pk(conversation_id: &str) -> String {
    format!("CONVERSATION#{conversation_id}")
}

/// `CONVERSATION#<id>` / `CONVERSATION`.
pub fn key(conversation_id: &str) -> Key {
    shared::keys::conversation(conversation_id)
}

/// `CONVERSATION#<id>` / `MEMBER#<user>`.
pub fn member_key(conversation_id: &str, user_id: &str) -> Key {
    Key::new(pk(conversation_id), format!("{MEMBER_SK_PREFIX}{user_id}"))
}

/// `CONVERSATION#<id>` / `MESSAGE#<msg id>`.
pub fn message_key(conversation_id: &str, message_id: &str) -> Key {
    shared::keys::conversation_message(conversation_id, message_id)
}

/// `INQUIRY#<listing>#<guest>` / `CONVERSATION`.
pub fn pair_key(listing_id: &str, guest_id: &str) -> Key {
    Key::new(format!("INQUIRY#{listing_id}#{guest_id}"), SK)
}

/// `MESSAGE_RATE#<user>` / `MINUTE#<minute>`.
pub fn rate_key(user_id: &str, minute: &str) -> Key {
    Key::new(format!("MESSAGE_RATE#{user_id}"), format!("MINUTE#{minute}"))
}

/// GSI1 partition of a person's conversations.
pub fn member_partition(user_id: &str) -> String {
    format!("CONVERSATIONS#{user_id}")
}

/// The listing a conversation is about, as shown to both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ConversationListing)]
pub struct ListingRef {
    pub listing_id: String,
    pub title: String,
}

/// The conversation item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationItem {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub conversation_id: String,
    pub listing: ListingRef,
    pub guest: Party,
    pub host: Party,
    pub created_at: String,
    pub last_message_at: String,
}

impl ConversationItem {
    /// The other participant than `user_id` (who must be one).
    pub fn other(&self, user_id: &str) -> &Party {
        if self.guest.user_id == user_id { &self.host } else { &self.guest }
    }

    pub fn has_participant(&self, user_id: &str) -> bool {
        self.guest.user_id == user_id || self.host.user_id == user_id
    }
}

/// The last message as a conversation list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastMessage {
    pub message_id: String,
    pub sender_id: String,
    /// The first 100 characters (as stored: masked when the message was).
    pub preview: String,
    pub created_at: String,
}

/// A participant's member item (on GSI1 of their conversations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberItem {
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
    pub conversation_id: String,
    pub user_id: String,
    pub listing: ListingRef,
    /// The other participant.
    pub with: Party,
    pub last_message: LastMessage,
    pub unread_count: u32,
}

/// A message item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageItem {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub message_id: String,
    pub conversation_id: String,
    pub sender_id: String,
    /// As stored and shown: masked when `masked`.
    pub text: String,
    pub masked: bool,
    pub created_at: String,
}

impl MessageItem {
    pub fn new(
        conversation_id: &str,
        message_id: &str,
        sender_id: &str,
        text: String,
        masked: bool,
        now: Timestamp,
    ) -> Self {
        Self {
            key: message_key(conversation_id, message_id),
            item_type: MESSAGE_TYPE.to_owned(),
            message_id: message_id.to_owned(),
            conversation_id: conversation_id.to_owned(),
            sender_id: sender_id.to_owned(),
            text,
            masked,
            created_at: shared::night::instant(now),
        }
    }

    fn last(&self) -> LastMessage {
        LastMessage {
            message_id: self.message_id.clone(),
            sender_id: self.sender_id.clone(),
            preview: rules::preview(&self.text),
            created_at: self.created_at.clone(),
        }
    }
}

/// The (listing, guest) pair item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairItem {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub conversation_id: String,
}

/// What an inquiry reads first: the listing, the guest's profile name and the pair item.
pub struct InquiryReads {
    pub listing: Option<shared::listing::ListingItem>,
    pub guest_name: Option<String>,
    pub pair: Option<PairItem>,
}

/// One BatchGetItem (listing, guest profile, pair): 1 request, strongly consistent.
pub async fn inquiry_reads(table: &Table, listing_id: &str, guest_id: &str) -> Result<InquiryReads, TableError> {
    #[derive(Deserialize)]
    struct ProfileName {
        name: String,
    }
    let listing = shared::listing::key(listing_id);
    let profile = shared::keys::user_profile(guest_id);
    let pair = pair_key(listing_id, guest_id);
    let found: Vec<Value> = table.batch_get(&[listing.clone(), profile.clone(), pair.clone()]).await?;
    let mut reads = InquiryReads { listing: None, guest_name: None, pair: None };
    for item in found {
        let text = |attr: &str| item.get(attr).and_then(Value::as_str).unwrap_or_default().to_owned();
        let found_key = Key::new(text(shared::keys::PK), text(shared::keys::SK));
        let decode = |e: serde_json::Error| TableError::from(anyhow::Error::from(e).context("decode an inquiry read"));
        if found_key == listing {
            reads.listing = Some(serde_json::from_value(item).map_err(decode)?);
        } else if found_key == profile {
            reads.guest_name = Some(serde_json::from_value::<ProfileName>(item).map_err(decode)?.name);
        } else if found_key == pair {
            reads.pair = Some(serde_json::from_value(item).map_err(decode)?);
        }
    }
    Ok(reads)
}

/// GetItem of a conversation (1 request, strongly consistent).
pub async fn conversation(table: &Table, conversation_id: &str) -> Result<Option<ConversationItem>, TableError> {
    table.get(&key(conversation_id)).await
}

/// GetItem of the pair item (1 request, strongly consistent).
pub async fn pair(table: &Table, listing_id: &str, guest_id: &str) -> Result<Option<PairItem>, TableError> {
    table.get(&pair_key(listing_id, guest_id)).await
}

/// Whether the guest has a confirmed (or completed) booking of the listing: Query of the guest's
/// bookings on GSI1 filtered on the listing and the status, until one matches (1 request for
/// most guests: a page holds up to 1 MB of bookings).
pub async fn has_confirmed_booking(table: &Table, guest_id: &str, listing_id: &str) -> Result<bool, TableError> {
    let mut start = None;
    loop {
        let filter = Expr::new("#m_listing = :m_listing AND #m_status IN (:m_confirmed, :m_completed)")
            .name("#m_listing", booking::LISTING_ID_ATTR)
            .name("#m_status", booking::STATUS_ATTR)
            .s(":m_listing", listing_id)
            .s(":m_confirmed", BookingStatus::Confirmed.as_str())
            .s(":m_completed", BookingStatus::Completed.as_str());
        let query =
            Query::begins_with("GSI1PK", booking::guest_partition(guest_id), "GSI1SK", booking::INDEX_SORT_PREFIX)
                .index(booking::GUEST_INDEX)
                .filter(filter)
                .start(start);
        let page: Page<Value> = table.query(query).await?;
        if !page.items.is_empty() {
            return Ok(true);
        }
        match page.last_key {
            Some(last) => start = Some(last),
            None => return Ok(false),
        }
    }
}

/// Counts one message of `user_id` in the minute `minute`: 1 UpdateItem, `ADD sent 1` on
/// condition that fewer than `max` were sent. `Ok(false)`: the limit is reached.
pub async fn count_send(
    table: &Table,
    user_id: &str,
    minute: &str,
    expires_at: i64,
    max: i64,
) -> Result<bool, TableError> {
    let update = Expr::new("SET #r_type = :r_type, #r_expires = :r_expires ADD #r_sent :r_one")
        .name("#r_type", "type")
        .name("#r_expires", "expires_at")
        .name("#r_sent", "sent")
        .s(":r_type", RATE_TYPE)
        .n(":r_expires", expires_at)
        .n(":r_one", 1);
    let condition =
        Expr::new("attribute_not_exists(#r_sent) OR #r_sent < :r_max").name("#r_sent", "sent").n(":r_max", max);
    match table.update(&rate_key(user_id, minute), &update, Some(&condition)).await {
        Ok(()) => Ok(true),
        Err(TableError::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Why a message's transaction was cancelled.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The idempotency record exists: a request with this key committed first.
    #[error("duplicate request")]
    Duplicate,
    /// The (listing, guest) pair exists: another inquiry opened the conversation first.
    #[error("the conversation exists")]
    ConversationExists,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The items of a message's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostItem {
    Idempotency,
    Pair,
    Conversation,
    SenderMember,
    RecipientMember,
    Message,
    Event,
}

/// What a message is posted into.
pub struct Posting<'a> {
    pub conversation: &'a ConversationItem,
    pub message: &'a MessageItem,
    pub idempotency: Option<(&'a Idempotent, StoredResponse)>,
    pub now: Timestamp,
}

fn member(c: &ConversationItem, user_id: &str, message: &MessageItem, unread: u32) -> MemberItem {
    MemberItem {
        pk: pk(&c.conversation_id),
        sk: format!("{MEMBER_SK_PREFIX}{user_id}"),
        item_type: MEMBER_TYPE.to_owned(),
        gsi1pk: member_partition(user_id),
        gsi1sk: format!("{ACTIVITY_PREFIX}{}", message.message_id),
        conversation_id: c.conversation_id.clone(),
        user_id: user_id.to_owned(),
        listing: c.listing.clone(),
        with: c.other(user_id).clone(),
        last_message: message.last(),
        unread_count: unread,
    }
}

fn event(p: &Posting) -> Envelope<MessagePosted> {
    let c = p.conversation;
    Envelope::new(
        MessagePosted {
            conversation_id: c.conversation_id.clone(),
            message_id: p.message.message_id.clone(),
            listing_id: c.listing.listing_id.clone(),
            sender_id: p.message.sender_id.clone(),
            recipient_id: c.other(&p.message.sender_id).user_id.clone(),
        },
        p.now,
    )
}

fn push_common(tx: &mut Transaction<'_, PostItem>, table: &Table, p: &Posting) -> Result<(), TableError> {
    if let Some((request, response)) = &p.idempotency {
        tx.push(PostItem::Idempotency, request.tx_put_completed(table, response.clone(), p.now)?);
    }
    tx.put_new(PostItem::Message, p.message)?;
    tx.push(PostItem::Event, outbox_put(table, &event(p)).map_err(|e| TableError::from(anyhow::Error::from(e)))?);
    Ok(())
}

fn outcome(result: Result<(), TransactError<PostItem>>) -> Result<(), PostError> {
    match result {
        Ok(()) => Ok(()),
        Err(TransactError::Conditions(failed)) if failed.contains(&PostItem::Idempotency) => Err(PostError::Duplicate),
        Err(TransactError::Conditions(failed)) if failed.contains(&PostItem::Pair) => {
            Err(PostError::ConversationExists)
        }
        Err(e) => Err(TableError::from(e).into()),
    }
}

/// Opens a conversation with its first message: ONE TransactWriteItems of 6 (7 with an
/// `Idempotency-Key`): the pair (Put, `attribute_not_exists`), the conversation, both member
/// items (the host's with 1 unread), the message and the `message.posted` outbox item.
pub async fn start(table: &Table, p: &Posting<'_>) -> Result<(), PostError> {
    let c = p.conversation;
    let pair = PairItem {
        key: pair_key(&c.listing.listing_id, &c.guest.user_id),
        item_type: PAIR_TYPE.to_owned(),
        conversation_id: c.conversation_id.clone(),
    };
    let mut tx = Transaction::new(table);
    tx.put_new(PostItem::Pair, &pair)?;
    tx.put_new(PostItem::Conversation, c)?;
    tx.put_new(PostItem::SenderMember, &member(c, &p.message.sender_id, p.message, 0))?;
    tx.put_new(PostItem::RecipientMember, &member(c, &c.other(&p.message.sender_id).user_id, p.message, 1))?;
    push_common(&mut tx, table, p)?;
    outcome(tx.commit().await)
}

/// Posts a message into an existing conversation: ONE TransactWriteItems of 5 (6 with an
/// `Idempotency-Key`): the message, the conversation's activity, the sender's member item
/// (activity, last message), the recipient's (the same and `ADD unread_count 1`), the outbox item.
pub async fn post(table: &Table, p: &Posting<'_>) -> Result<(), PostError> {
    let c = p.conversation;
    let m = p.message;
    let recipient = c.other(&m.sender_id).user_id.clone();
    let exists = Expr::exists();
    let activity =
        Expr::new("SET #c_last = :c_last").name("#c_last", "last_message_at").s(":c_last", m.created_at.clone());
    let touch = |unread: bool| -> Result<Expr, TableError> {
        let set = "SET #m_sk = :m_sk, #m_last = :m_last";
        let expr = if unread { format!("{set} ADD #m_unread :m_one") } else { set.to_owned() };
        let mut e = Expr::new(expr)
            .name("#m_sk", "GSI1SK")
            .name("#m_last", "last_message")
            .s(":m_sk", format!("{ACTIVITY_PREFIX}{}", m.message_id))
            .ser(":m_last", &m.last())?;
        if unread {
            e = e.name("#m_unread", UNREAD_ATTR).n(":m_one", 1);
        }
        Ok(e)
    };
    let mut tx = Transaction::new(table);
    tx.update(PostItem::Conversation, &key(&c.conversation_id), &activity, Some(&exists))?;
    tx.update(PostItem::SenderMember, &member_key(&c.conversation_id, &m.sender_id), &touch(false)?, Some(&exists))?;
    tx.update(PostItem::RecipientMember, &member_key(&c.conversation_id, &recipient), &touch(true)?, Some(&exists))?;
    push_common(&mut tx, table, p)?;
    outcome(tx.commit().await)
}

/// Marks a conversation read for `user_id`: 1 UpdateItem (`SET unread_count = 0`) on their
/// member item.
pub async fn mark_read(table: &Table, conversation_id: &str, user_id: &str) -> Result<(), TableError> {
    let update = Expr::new("SET #m_unread = :m_zero").name("#m_unread", UNREAD_ATTR).n(":m_zero", 0);
    table.update(&member_key(conversation_id, user_id), &update, Some(&Expr::exists())).await
}

/// One page of a person's conversations, newest activity first: one Query on GSI1
/// (`GSI1PK = CONVERSATIONS#<sub> AND begins_with(GSI1SK, "ACTIVITY#")`, descending).
pub async fn member_page(
    table: &Table,
    user_id: &str,
    limit: u32,
    start: Option<Item>,
) -> Result<Page<MemberItem>, TableError> {
    let query = Query::begins_with("GSI1PK", member_partition(user_id), "GSI1SK", ACTIVITY_PREFIX)
        .index(MEMBER_INDEX)
        .descending()
        .limit(limit)
        .start(start);
    table.query(query).await
}

/// Where a cursor of a person's conversations may point.
pub fn member_positions(partition: &str) -> Partition<'_> {
    Partition::index(MEMBER_INDEX, partition, ACTIVITY_PREFIX)
}

/// One page of a conversation's messages: one Query on the table
/// (`PK = CONVERSATION#<id> AND begins_with(SK, "MESSAGE#")`), newest first unless `oldest_first`.
pub async fn message_page(
    table: &Table,
    conversation_id: &str,
    oldest_first: bool,
    limit: u32,
    start: Option<Item>,
) -> Result<Page<MessageItem>, TableError> {
    let mut query = Query::begins_with("PK", pk(conversation_id), "SK", MESSAGE_SK_PREFIX).limit(limit).start(start);
    if !oldest_first {
        query = query.descending();
    }
    table.query(query).await
}

/// Where a cursor of a conversation's messages may point.
pub fn message_positions(partition: &str) -> Partition<'_> {
    Partition::table(partition, MESSAGE_SK_PREFIX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn keys_of_every_item_are_distinct() {
        assert_eq!(key("cnv_1"), Key::new("CONVERSATION#cnv_1", "CONVERSATION"));
        assert_eq!(member_key("cnv_1", "u"), Key::new("CONVERSATION#cnv_1", "MEMBER#u"));
        assert_eq!(message_key("cnv_1", "msg_1"), Key::new("CONVERSATION#cnv_1", "MESSAGE#msg_1"));
        assert_eq!(pair_key("lst_1", "g"), Key::new("INQUIRY#lst_1#g", "CONVERSATION"));
        assert_eq!(rate_key("u", "2026-07-10T10:04"), Key::new("MESSAGE_RATE#u", "MINUTE#2026-07-10T10:04"));
        assert_eq!(member_partition("u"), "CONVERSATIONS#u");
    }

    /// A conversation of guest `g` (Gina) and host `h` (Helena) about `lst_1`.
    pub(crate) fn conversation() -> ConversationItem {
        ConversationItem {
            key: key("cnv_1"),
            item_type: CONVERSATION_TYPE.to_owned(),
            conversation_id: "cnv_1".to_owned(),
            listing: ListingRef { listing_id: "lst_1".to_owned(), title: "Loft".to_owned() },
            guest: Party { user_id: "g".to_owned(), name: "Gina".to_owned() },
            host: Party { user_id: "h".to_owned(), name: "Helena".to_owned() },
            created_at: "2026-07-10T10:00:00Z".to_owned(),
            last_message_at: "2026-07-10T10:00:00Z".to_owned(),
        }
    }

    #[test]
    fn members_see_the_other_person_and_sort_by_the_last_message() {
        let c = conversation();
        let now = "2026-07-10T10:00:00Z".parse().unwrap();
        let m = MessageItem::new("cnv_1", "msg_1", "g", "Hi".to_owned(), false, now);
        let host = member(&c, "h", &m, 1);
        assert_eq!(host.with.name, "Gina");
        assert_eq!((host.gsi1pk.as_str(), host.gsi1sk.as_str()), ("CONVERSATIONS#h", "ACTIVITY#msg_1"));
        assert_eq!(member(&c, "g", &m, 0).with.name, "Helena");
        assert!(c.has_participant("g") && c.has_participant("h") && !c.has_participant("x"));
    }
}
