//! The caller's inbox: newest first, and marking one read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use shared::cursor::CursorScope;
use shared::extract::{Json, Path, Query};
use shared::page::{self, ListBody, Partition};
use shared::{ApiError, Caller, keys};

use super::Result;
use crate::views::NotificationView;
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
    let limit = page::parse_limit(p.limit)?;
    let unread = p.unread.unwrap_or(false);
    let filters = [("unread", unread.to_string())];
    let scope = CursorScope { route: ROUTE, caller: Some(&caller.user_id), filters: &filters };
    let inbox = keys::inbox_partition(&caller.user_id);
    let position = Partition::table(&inbox, keys::INBOX_SK_PREFIX);
    let start = page::open_cursor(&st.cursors, p.cursor.as_deref(), &scope, &position)?;
    let page = store::inbox_page(&st.table, &caller.user_id, unread, limit, start).await?;
    let items = page.items.into_iter().map(NotificationView::from).collect();
    Ok(Json(ListBody::sealed(items, &st.cursors, &scope, page.last_key.as_ref())?))
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
