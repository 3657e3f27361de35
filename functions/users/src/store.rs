//! The users context's DynamoDB access.
//!
//! - The profile item (`USER#<sub>` / `PROFILE`): what Roost knows of a person beyond Cognito,
//!   including the e-mail, which access tokens do not carry.
//! - The caller's inbox: the items the `notifications` function writes (`INBOX#<sub>` /
//!   `NOTIFICATION#ntf_<event ulid>`, shared::keys::inbox_item), read newest first and marked read.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use shared::Table;
use shared::keys::{self, Key};
use shared::table::{self, Expr, Item, Page, TableError};

pub const ITEM_TYPE: &str = "profile";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    #[serde(default)]
    pub bio: String,
    #[serde(default)]
    pub is_host: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Tokens issued (`iat`, epoch seconds) at or before this second are refused: set by logout
    /// and by a password reset, since API Gateway's authorizer cannot revoke access tokens. The
    /// second itself is included: a token minted in the same second may predate the logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_revoked_at: Option<i64>,
}

impl Profile {
    pub fn new(user_id: &str, email: &str, name: &str, now: jiff::Timestamp) -> Self {
        let key = keys::user_profile(user_id);
        Self {
            pk: key.pk,
            sk: key.sk,
            kind: ITEM_TYPE.into(),
            user_id: user_id.into(),
            email: email.into(),
            name: name.into(),
            bio: String::new(),
            is_host: false,
            created_at: now.to_string(),
            updated_at: now.to_string(),
            tokens_revoked_at: None,
        }
    }

    pub fn roles(&self) -> Vec<&'static str> {
        if self.is_host { vec!["guest", "host"] } else { vec!["guest"] }
    }

    /// Whether a token issued at `issued_at` (epoch seconds) may predate a logout or reset
    /// (the one rule every context applies: `shared::sessions::revokes`).
    pub fn revokes(&self, issued_at: Option<i64>) -> bool {
        shared::sessions::revokes(self.tokens_revoked_at, issued_at)
    }
}

/// The attributes a sign-up writes (`Profile::new`); a profile with any other attribute, a bio,
/// the host flag, a revocation or a change since it was made holds more than a sign-up.
const SIGN_UP_ATTRIBUTES: &[&str] =
    &["PK", "SK", "type", "user_id", "email", "name", "bio", "is_host", "created_at", "updated_at"];

/// Whether a stored profile holds nothing but what its sign-up wrote.
pub fn holds_only_sign_up(item: &serde_json::Map<String, serde_json::Value>) -> bool {
    use serde_json::Value;
    item.keys().all(|k| SIGN_UP_ATTRIBUTES.contains(&k.as_str()))
        && item.get("bio").is_none_or(|b| b == &Value::String(String::new()))
        && item.get("is_host").is_none_or(|h| h == &Value::Bool(false))
        && item.get("updated_at").is_some()
        && item.get("updated_at") == item.get("created_at")
}

#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    Removed,
    Absent,
    /// Kept: the profile holds more than its sign-up (or changed while we looked).
    Kept,
}

/// Deletes the profile only if it holds nothing but its sign-up's fields, conditionally on it
/// being unchanged since it was read (every profile write moves `updated_at`).
pub async fn delete_if_only_sign_up(table: &Table, user_id: &str) -> Result<Removal, TableError> {
    let Some(item) = table.get::<serde_json::Map<String, serde_json::Value>>(&key(user_id)).await? else {
        return Ok(Removal::Absent);
    };
    if !holds_only_sign_up(&item) {
        return Ok(Removal::Kept);
    }
    let seen = item.get("updated_at").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let unchanged = Expr::new(
        "updated_at = :seen AND created_at = :seen AND attribute_not_exists(tokens_revoked_at) \
         AND (attribute_not_exists(bio) OR bio = :empty) AND (attribute_not_exists(is_host) OR is_host = :no)",
    )
    .s(":seen", seen)
    .s(":empty", "")
    .value(":no", aws_sdk_dynamodb::types::AttributeValue::Bool(false));
    match table.delete(&key(user_id), Some(&unchanged)).await {
        Ok(()) => Ok(Removal::Removed),
        Err(e) if e.is_condition_failure() => Ok(Removal::Kept),
        Err(e) => Err(e),
    }
}

fn key(user_id: &str) -> Key {
    keys::user_profile(user_id)
}

pub async fn get(table: &Table, user_id: &str) -> Result<Option<Profile>, TableError> {
    table.get(&key(user_id)).await
}

/// Creates the profile unless it exists: sign-up, confirm and login all call this, so a profile
/// lost between Cognito and DynamoDB (they cannot be written atomically) is repaired by the next
/// step. Returns the stored profile either way.
pub async fn ensure(table: &Table, profile: Profile) -> Result<Profile, TableError> {
    match table.put_new(&profile).await {
        Ok(()) => Ok(profile),
        Err(e) if e.is_condition_failure() => get(table, &profile.user_id).await?.ok_or_else(|| {
            TableError::Unexpected(anyhow::anyhow!("profile {} vanished while being created", profile.user_id))
        }),
        Err(e) => Err(e),
    }
}

pub async fn delete(table: &Table, user_id: &str) -> Result<(), TableError> {
    table.delete(&key(user_id), None).await
}

/// Applies the allow-listed changes to an existing profile and returns the result.
pub async fn update(
    table: &Table,
    user_id: &str,
    name: Option<&str>,
    bio: Option<&str>,
    now: jiff::Timestamp,
) -> Result<(), TableError> {
    let mut sets = vec!["updated_at = :now"];
    let mut update = Expr::new("").s(":now", now.to_string());
    if let Some(name) = name {
        sets.push("#name = :name");
        update = update.name("#name", "name").s(":name", name);
    }
    if let Some(bio) = bio {
        sets.push("bio = :bio");
        update = update.s(":bio", bio);
    }
    update.expression = format!("SET {}", sets.join(", "));
    table.update(&key(user_id), &update, Some(&Expr::exists())).await
}

pub async fn mark_host(table: &Table, user_id: &str, now: jiff::Timestamp) -> Result<(), TableError> {
    let update = Expr::new("SET is_host = :yes, updated_at = :now")
        .value(":yes", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
        .s(":now", now.to_string());
    table.update(&key(user_id), &update, Some(&Expr::exists())).await
}

pub async fn revoke_tokens(table: &Table, user_id: &str, now: jiff::Timestamp) -> Result<(), TableError> {
    let update =
        Expr::new("SET tokens_revoked_at = :t, updated_at = :now").n(":t", now.as_second()).s(":now", now.to_string());
    table.update(&key(user_id), &update, Some(&Expr::exists())).await
}

/// The inbox item as stored (fields the API shows).
#[derive(Debug, Deserialize)]
pub struct InboxItem {
    pub notification_id: String,
    pub notification_type: String,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub booking_id: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub read: bool,
}

/// One page of the user's inbox, newest first (one Query); `unread_only` is a filter, so a page
/// may hold fewer than `limit`.
pub async fn inbox_page(
    table: &Table,
    user_id: &str,
    unread_only: bool,
    limit: u32,
    start: Option<Item>,
) -> Result<Page<InboxItem>, TableError> {
    let mut query = table::Query::begins_with("PK", keys::inbox_partition(user_id), "SK", keys::INBOX_SK_PREFIX)
        .descending()
        .limit(limit)
        .start(start);
    if unread_only {
        query = query
            .filter(Expr::new("#read = :false").name("#read", "read").value(":false", AttributeValue::Bool(false)));
    }
    table.query::<InboxItem>(query).await
}

/// Marks the notification read (UpdateItem, idempotent); `false` when the user has no such
/// notification.
pub async fn mark_read(table: &Table, user_id: &str, notification_id: &str) -> Result<bool, TableError> {
    let key = keys::inbox_item(user_id, notification_id);
    let update = Expr::new("SET #read = :true").name("#read", "read").value(":true", AttributeValue::Bool(true));
    match table.update(&key, &update, Some(&Expr::exists())).await {
        Ok(()) => Ok(true),
        Err(TableError::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_compares_issue_time() {
        let mut p = Profile::new("u", "a@b.co", "A", jiff::Timestamp::UNIX_EPOCH);
        assert!(!p.revokes(Some(5)));
        p.tokens_revoked_at = Some(100);
        assert!(p.revokes(Some(99)));
        assert!(p.revokes(Some(100)));
        assert!(!p.revokes(Some(101)));
        assert!(p.revokes(None));
    }

    #[test]
    fn only_a_profile_as_sign_up_left_it_may_go_with_its_account() {
        let fresh = Profile::new("u", "a@b.co", "A", jiff::Timestamp::UNIX_EPOCH);
        let as_map = |p: &Profile| match serde_json::to_value(p).unwrap() {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        assert!(holds_only_sign_up(&as_map(&fresh)));
        let mut bio = fresh.clone();
        bio.bio = "Loves the sea".into();
        let mut host = fresh.clone();
        host.is_host = true;
        let mut revoked = fresh.clone();
        revoked.tokens_revoked_at = Some(1);
        let mut edited = fresh.clone();
        edited.updated_at = "2026-01-01T00:00:00Z".into();
        for p in [bio, host, revoked, edited] {
            assert!(!holds_only_sign_up(&as_map(&p)), "{p:?}");
        }
        let mut extra = as_map(&fresh);
        extra.insert("migrated_from".into(), "legacy".into());
        assert!(!holds_only_sign_up(&extra));
    }

    #[test]
    fn roles_follow_the_host_flag() {
        let mut p = Profile::new("u", "a@b.co", "A", jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(p.roles(), ["guest"]);
        p.is_host = true;
        assert_eq!(p.roles(), ["guest", "host"]);
    }
}
