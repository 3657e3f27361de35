//! The caller's inbox: the items the `notifications` function writes (`INBOX#<sub>` /
//! `NOTIFICATION#ntf_<event ulid>`, shared::keys::inbox_item), newest first, and marking one read.

use aws_sdk_dynamodb::types::AttributeValue;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use shared::cursor::CursorScope;
use shared::extract::{Json, Path, Query};
use shared::keys::Key;
use shared::table::{self, Expr, Item, TableError};
use shared::{ApiError, Caller};

use crate::AppState;

pub const SK_PREFIX: &str = shared::keys::INBOX_SK_PREFIX;
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
const ROUTE: &str = "/v1/me/notifications";

fn partition(user_id: &str) -> String {
    shared::keys::inbox_partition(user_id)
}

/// The inbox item as stored (fields the API shows).
#[derive(Debug, Deserialize)]
struct Stored {
    notification_id: String,
    notification_type: String,
    title: String,
    body: String,
    #[serde(default)]
    booking_id: Option<String>,
    created_at: String,
    #[serde(default)]
    read: bool,
}

#[derive(Debug, Serialize)]
pub struct NotificationView {
    notification_id: String,
    #[serde(rename = "type")]
    notification_type: String,
    title: String,
    body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    booking_id: Option<String>,
    created_at: String,
    read: bool,
}

impl From<Stored> for NotificationView {
    fn from(s: Stored) -> Self {
        Self {
            notification_id: s.notification_id,
            notification_type: s.notification_type,
            title: s.title,
            body: s.body,
            booking_id: s.booking_id,
            created_at: s.created_at,
            read: s.read,
        }
    }
}

#[derive(Serialize)]
struct ListBody {
    items: Vec<NotificationView>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    unread: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// GET /v1/me/notifications: newest first; `?unread=true` only the unread ones (a filter, so
/// a page may hold fewer than `limit`: follow `next_cursor`). One Query per page.
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = match p.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid_field("limit", format!("must be 1 to {MAX_LIMIT}"))),
    };
    let unread = p.unread.unwrap_or(false);
    let filters = [("unread", unread.to_string())];
    let scope = CursorScope { route: ROUTE, caller: Some(&caller.user_id), filters: &filters };
    let cursors = &st.cursors;
    let pk = partition(&caller.user_id);
    let start = match p.cursor.as_deref() {
        None => None,
        Some(c) => {
            let key = cursors.open_key(c, &scope)?;
            if !is_position_in(&key, &pk) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_cursor",
                    "The cursor is invalid for this request.",
                )
                .with_field("cursor", "invalid cursor"));
            }
            Some(key)
        }
    };
    let mut query = table::Query::begins_with("PK", pk, "SK", SK_PREFIX).descending().limit(limit).start(start);
    if unread {
        query = query
            .filter(Expr::new("#read = :false").name("#read", "read").value(":false", AttributeValue::Bool(false)));
    }
    let page = st.table.query::<Stored>(query).await?;
    let items = page.items.into_iter().map(NotificationView::from).collect();
    Ok(Json(ListBody { items, next_cursor: cursors.seal_key(&scope, page.last_key.as_ref())? }))
}

fn is_position_in(key: &Item, pk: &str) -> bool {
    key.len() == 2
        && key.get("PK") == Some(&AttributeValue::S(pk.to_owned()))
        && matches!(key.get("SK"), Some(AttributeValue::S(sk)) if sk.starts_with(SK_PREFIX))
}

/// A notification id as the API shows it: `ntf_` + 26 lowercase base32 characters.
fn parse_notification_id(raw: &str) -> Option<&str> {
    let rest = raw.strip_prefix("ntf_")?;
    (rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())).then_some(raw)
}

/// POST /v1/me/notifications/{id}/read -> 204; idempotent; someone else's or unknown -> 404.
pub async fn mark_read(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_notification_id(&id).ok_or_else(ApiError::not_found)?;
    let key = Key::new(partition(&caller.user_id), format!("{SK_PREFIX}{id}"));
    let update = Expr::new("SET #read = :true").name("#read", "read").value(":true", AttributeValue::Bool(true));
    match st.table.update(&key, &update, Some(&Expr::exists())).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(TableError::ConditionFailed) => Err(ApiError::not_found()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_are_checked() {
        assert!(parse_notification_id("ntf_01kaxb3c4d5e6f7g8h9jkmnp01").is_some());
        assert!(parse_notification_id("ntf_01KAXB3C4D5E6F7G8H9JKMNP01").is_none());
        assert!(parse_notification_id("evt_01kaxb3c4d5e6f7g8h9jkmnp01").is_none());
        assert!(parse_notification_id("ntf_x#y").is_none());
    }

    #[test]
    fn cursor_positions_stay_in_the_callers_inbox() {
        let key = |pk: &str, sk: &str| {
            Item::from([
                ("PK".to_owned(), AttributeValue::S(pk.into())),
                ("SK".to_owned(), AttributeValue::S(sk.into())),
            ])
        };
        assert!(is_position_in(&key("INBOX#a", "NOTIFICATION#ntf_1"), "INBOX#a"));
        assert!(!is_position_in(&key("INBOX#b", "NOTIFICATION#ntf_1"), "INBOX#a"));
        assert!(!is_position_in(&key("INBOX#a", "PROFILE"), "INBOX#a"));
    }
}
