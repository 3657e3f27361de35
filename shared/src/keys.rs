//! Key builders for the one table. Every key shape lives here so two contexts writing the same
//! item (e.g. a night) cannot drift; contexts add their builders as they need them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

pub const PK: &str = "PK";
pub const SK: &str = "SK";

/// A primary key (`PK`, `SK`). Serialises as `{"PK": .., "SK": ..}`, so an item struct can
/// `#[serde(flatten)]` it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }

    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

impl From<Key> for HashMap<String, AttributeValue> {
    fn from(key: Key) -> Self {
        HashMap::from([(PK.to_owned(), AttributeValue::S(key.pk)), (SK.to_owned(), AttributeValue::S(key.sk))])
    }
}

/// `USER#<sub>` / `PROFILE`: the user's profile, created idempotently at sign-up.
pub fn user_profile(user_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), "PROFILE")
}

/// The sort key prefix of inbox items.
pub const INBOX_SK_PREFIX: &str = "NOTIFICATION#";

/// `INBOX#<sub>`: a user's inbox, a partition apart from the profile's `USER#<sub>` because IAM
/// tells items apart by partition only (`dynamodb:LeadingKeys`): `notifications` may write
/// inbox items and never a profile.
pub fn inbox_partition(user_id: &str) -> String {
    format!("INBOX#{user_id}")
}

/// `INBOX#<sub>` / `NOTIFICATION#<notification id>`: one inbox item (written by `notifications`,
/// read and marked read by `users`).
pub fn inbox_item(user_id: &str, notification_id: &str) -> Key {
    Key::new(inbox_partition(user_id), format!("{INBOX_SK_PREFIX}{notification_id}"))
}

/// `CONVERSATION#<cnv id>` / `CONVERSATION`: a conversation (written by `messaging`, read by
/// `notifications` for the texts of a new message).
pub fn conversation(conversation_id: &str) -> Key {
    Key::new(format!("CONVERSATION#{conversation_id}"), "CONVERSATION")
}

/// `CONVERSATION#<cnv id>` / `MESSAGE#<msg id>`: one message of a conversation.
pub fn conversation_message(conversation_id: &str, message_id: &str) -> Key {
    Key::new(format!("CONVERSATION#{conversation_id}"), format!("MESSAGE#{message_id}"))
}

/// `INBOX#<sub>` / `MESSAGE_EMAIL#<cnv id>`: when `notifications` last e-mailed this person about
/// this conversation (the 15-minute e-mail throttle), in their inbox partition.
pub fn message_email_throttle(user_id: &str, conversation_id: &str) -> Key {
    Key::new(inbox_partition(user_id), format!("MESSAGE_EMAIL#{conversation_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_profile_key() {
        let key = user_profile("u-1");
        assert_eq!(key, Key::new("USER#u-1", "PROFILE"));
        let item: HashMap<String, AttributeValue> = key.clone().into();
        assert_eq!(item, key.to_item());
        assert_eq!(item["PK"], AttributeValue::S("USER#u-1".to_owned()));
        assert_eq!(item["SK"], AttributeValue::S("PROFILE".to_owned()));
    }

    #[test]
    fn inbox_items_live_apart_from_profiles() {
        let item = inbox_item("u-1", "ntf_1");
        assert_eq!(item, Key::new("INBOX#u-1", "NOTIFICATION#ntf_1"));
        assert_ne!(item.pk, user_profile("u-1").pk);
        assert!(!item.pk.starts_with("USER#"));
    }

    #[test]
    fn key_flattens_into_items() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Profile {
            #[serde(flatten)]
            key: Key,
            name: String,
        }
        let p = Profile { key: user_profile("u-1"), name: "Ana".to_owned() };
        let item: HashMap<String, AttributeValue> = serde_dynamo::aws_sdk_dynamodb_1::to_item(&p).unwrap();
        assert_eq!(item["PK"], AttributeValue::S("USER#u-1".to_owned()));
        let back: Profile = serde_dynamo::aws_sdk_dynamodb_1::from_item(item).unwrap();
        assert_eq!(back, p);
    }
}
