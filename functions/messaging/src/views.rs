//! What the messaging routes answer: a conversation as its participants see it, a message, and
//! the answer to a new message (a page of them is `shared::page::ListBody`).

use serde::Serialize;
use shared::booking::Party;

use crate::rules::MASKED_NOTE;
use crate::store::{ConversationItem, LastMessage, ListingRef, MemberItem, MessageItem};

/// A conversation, as one of its two participants sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Conversation)]
pub struct ConversationView {
    pub conversation_id: String,
    pub listing: ListingRef,
    /// The other participant (the host for the guest, the guest for the host).
    pub with: Party,
    pub last_message: LastMessage,
    /// Messages of the other participant since the caller last marked the conversation read.
    pub unread_count: u32,
}

impl From<MemberItem> for ConversationView {
    fn from(m: MemberItem) -> Self {
        Self {
            conversation_id: m.conversation_id,
            listing: m.listing,
            with: m.with,
            last_message: m.last_message,
            unread_count: m.unread_count,
        }
    }
}

/// A message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Message)]
pub struct MessageView {
    pub message_id: String,
    pub conversation_id: String,
    pub sender_id: String,
    /// Plain text, as typed (never HTML): escape it where it is shown.
    pub text: String,
    /// Contact details in it were hidden (no booking between them was confirmed yet).
    pub masked: bool,
    pub created_at: String,
}

impl From<MessageItem> for MessageView {
    fn from(m: MessageItem) -> Self {
        Self {
            message_id: m.message_id,
            conversation_id: m.conversation_id,
            sender_id: m.sender_id,
            text: m.text,
            masked: m.masked,
            created_at: m.created_at,
        }
    }
}

/// The answer to a new message (and to an inquiry): the message as stored, and why it differs
/// from what was sent when it does.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = PostedMessage)]
pub struct PostedView {
    pub conversation_id: String,
    pub message: MessageView,
    /// Why the message was masked (only when it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub note: Option<String>,
}

impl PostedView {
    pub fn new(conversation: &ConversationItem, message: MessageItem) -> Self {
        let note = message.masked.then(|| MASKED_NOTE.to_owned());
        Self { conversation_id: conversation.conversation_id.clone(), message: message.into(), note }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, MessageItem};

    #[test]
    fn a_masked_message_tells_its_sender() {
        let c = store::tests::conversation();
        let now = "2026-07-10T10:00:00Z".parse().unwrap();
        let m = MessageItem::new("cnv_1", "msg_1", "g", "[email hidden]".to_owned(), true, now);
        let v = serde_json::to_value(PostedView::new(&c, m.clone())).unwrap();
        assert_eq!(v["message"]["masked"], true);
        assert_eq!(v["note"], MASKED_NOTE);
        let plain = MessageItem { masked: false, ..m };
        assert!(serde_json::to_value(PostedView::new(&c, plain)).unwrap().get("note").is_none());
    }
}
