//! The caller's inbox: newest first, and marking one read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use shared::cursor::CursorKey;
use shared::cursor::CursorScope;
use shared::extract::{Json, Path, Query};
use shared::page::{self, ListBody, Partition};
use shared::{ApiError, Caller, Table, keys};

use super::Result;
use crate::views::NotificationView;
use crate::{AppState, rules, store};

const ROUTE: &str = "/v1/me/notifications";

/// The query of `GET /v1/me/notifications`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `true`: only the unread ones. `false` or absent: all.
    pub unread: Option<bool>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, unchanged (with the same `unread`).
    pub cursor: Option<String>,
}

/// GET /v1/me/notifications: newest first; `?unread=true` only the unread ones (a filter, so
/// a page may hold fewer than `limit`: follow `next_cursor`). One Query per page.
#[utoipa::path(get, path = "/v1/me/notifications", tag = "users", operation_id = "list_notifications",
    summary = "The caller's inbox, newest first; `unread=true` for the unread ones only",
    description = "A page of notifications, newest first. With `unread=true` a page may hold \
        fewer than `limit` items while `next_cursor` is not null: follow it.",
    params(ListParams),
    responses(
        (status = 200, description = "One page of notifications.", body = ListBody<NotificationView>),
        (status = 400, description = "invalid_cursor"),
    ),
    security(("cognito" = [])))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse> {
    Ok(Json(inbox_page(&st.table, &st.cursors, &caller, &p).await?))
}

/// One page of the caller's inbox (GraphQL's `me.notifications` too: the same signed cursors).
pub async fn inbox_page(
    table: &Table,
    cursors: &CursorKey,
    caller: &Caller,
    p: &ListParams,
) -> Result<ListBody<NotificationView>> {
    let limit = page::parse_limit(p.limit)?;
    let unread = p.unread.unwrap_or(false);
    let filters = [("unread", unread.to_string())];
    let scope = CursorScope { route: ROUTE, caller: Some(&caller.user_id), filters: &filters };
    let inbox = keys::inbox_partition(&caller.user_id);
    let position = Partition::table(&inbox, keys::INBOX_SK_PREFIX);
    let start = page::open_cursor(cursors, p.cursor.as_deref(), &scope, &position)?;
    let page = store::inbox_page(table, &caller.user_id, unread, limit, start).await?;
    let items = page.items.into_iter().map(NotificationView::from).collect();
    ListBody::sealed(items, cursors, &scope, page.last_key.as_ref())
}

/// POST /v1/me/notifications/{id}/read -> 204; idempotent; someone else's or unknown -> 404.
#[utoipa::path(post, path = "/v1/me/notifications/{id}/read", tag = "users",
    operation_id = "mark_notification_read",
    summary = "Mark one of the caller's notifications read (idempotent)",
    params(("id" = String, Path, description = "The notification's id: `ntf_` and 26 lower-case base32 characters.",
        pattern = "^ntf_[0-9a-z]{26}$", example = "ntf_01kaxb3c4d5e6f7g8h9jkmnp01")),
    responses(
        (status = 204, description = "It is read (also when it already was)."),
        (status = 404, description = "not_found"),
    ),
    security(("cognito" = [])))]
pub async fn mark_read(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode> {
    let id = rules::parse_notification_id(&id).ok_or_else(ApiError::not_found)?;
    if store::mark_read(&st.table, &caller.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
