//! The caller's inbox: newest first, and marking one read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use shared::cursor::CursorScope;
use shared::extract::{Json, Path, Query};
use shared::{ApiError, Caller};

use super::Result;
use crate::views::{ListBody, NotificationView};
use crate::{AppState, rules, store};

const ROUTE: &str = "/v1/me/notifications";

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
) -> Result<impl IntoResponse> {
    let limit = rules::parse_inbox_limit(p.limit)?;
    let unread = p.unread.unwrap_or(false);
    let filters = [("unread", unread.to_string())];
    let scope = CursorScope { route: ROUTE, caller: Some(&caller.user_id), filters: &filters };
    let start = match p.cursor.as_deref() {
        None => None,
        Some(c) => {
            let key = st.cursors.open_key(c, &scope)?;
            if !store::is_inbox_position(&key, &caller.user_id) {
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
    let page = store::inbox_page(&st.table, &caller.user_id, unread, limit, start).await?;
    let items = page.items.into_iter().map(NotificationView::from).collect();
    Ok(Json(ListBody { items, next_cursor: st.cursors.seal_key(&scope, page.last_key.as_ref())? }))
}

/// POST /v1/me/notifications/{id}/read -> 204; idempotent; someone else's or unknown -> 404.
pub async fn mark_read(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode> {
    let id = rules::parse_notification_id(&id).ok_or_else(ApiError::not_found)?;
    if store::mark_read(&st.table, &caller.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
