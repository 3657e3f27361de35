//! The listing itself: create, read (public and the host's view), edit, archive, the host's list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared::ApiError;
use shared::caching::{self, IfNoneMatch};
use shared::cursor::CursorScope;
use shared::extract::{Json, Path, Query};
use shared::listing::{self, ListingItem, ListingStatus};
use shared::openapi::IfNoneMatchHeader;
use shared::page::{self, ListBody, Partition};

use super::{Host, Result, listing_id, modify, own_listing};
use crate::rules::{self, ListingBody, ListingPatch, MyListingsParams};
use crate::views::{self, Audience, ListingView};
use crate::{AppState, store};

/// POST /v1/listings: GetItem (host's name) + TransactWriteItems (listing + search item).
#[utoipa::path(post, path = "/v1/listings", operation_id = "create_listing", tag = "listings",
    summary = "Publish a listing (hosts)",
    request_body = ListingBody,
    responses(
        (status = 201, description = "The new listing, as its host sees it.", body = ListingView),
        (status = 403, description = "host_required"),
        (status = 409, description = "conflict, payout_account_required"),
        (status = 422, description = "unsupported_currency"),
    ),
    security(("cognito" = [])))]
pub async fn create(
    State(st): State<AppState>,
    Host(host): Host,
    Json(body): Json<ListingBody>,
) -> Result<impl IntoResponse> {
    let fields = rules::parse_listing(&body)?;
    if st.payout_account_required && !store::can_receive_payouts(&st.table, &host.user_id).await? {
        return Err(rules::payout_account_required());
    }
    let now = st.clock.now();
    let host_name = store::host_name(&st.table, &host.user_id).await?.unwrap_or_else(|| "Host".to_owned());
    let item = store::new_listing(shared::ids::new_id_at("lst", now), &host.user_id, host_name, fields, now);
    store::create(&st.table, &item).await?;
    let view = views::listing(&st.photos, &item, Audience::Host, now).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// GET /v1/listings/{id}: anyone; archived listings are 404. One GetItem; with `If-None-Match`
/// one projected GetItem (the stamp) first, and nothing more when the client has this version.
#[utoipa::path(get, path = "/v1/listings/{id}", operation_id = "get_listing", tag = "listings",
    summary = "A listing, as anyone sees it (archived ones are 404)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`)."), IfNoneMatchHeader),
    responses(
        (status = 200, description = "The listing; the address is city, region and country only.", body = ListingView),
        (status = 404, description = "not_found"),
    ))]
pub async fn public(State(st): State<AppState>, Path(id): Path<String>, conditions: IfNoneMatch) -> Result<Response> {
    let id = listing_id(&id)?;
    let now = st.clock.now();
    if conditions.is_present()
        && let Some(stamp) = store::stamp(&st.table, id).await?.filter(|s| s.status == ListingStatus::Active)
    {
        let etag = views::listing_etag(id, &stamp, now);
        if conditions.matches(&etag) {
            return Ok(caching::not_modified(&etag, caching::PUBLIC_ITEM));
        }
    }
    let l = active_listing(&st, id).await?;
    let etag = views::listing_etag(id, &(&l).into(), now);
    let view = views::listing(&st.photos, &l, Audience::Public, now).await?;
    caching::json_tagged(&conditions, caching::PUBLIC_ITEM, etag, &view)
}

/// The listing anyone may see: 404 for a malformed id, an unknown or an archived listing alike.
/// One GetItem. The GraphQL `listing` field reads it here too.
pub async fn active_listing(st: &AppState, id: &str) -> Result<ListingItem> {
    let id = listing_id(id)?;
    store::get(&st.table, id).await?.filter(ListingItem::is_active).ok_or_else(ApiError::not_found)
}

/// GET /v1/me/listings/{id}: the host's full view, archived too. One GetItem.
#[utoipa::path(get, path = "/v1/me/listings/{id}", operation_id = "get_my_listing", tag = "listings",
    summary = "One of the caller's listings, archived ones too (its host)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`).")),
    responses(
        (status = 200, description = "The listing with its exact address and `version`.", body = ListingView),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
    ),
    security(("cognito" = [])))]
pub async fn mine(State(st): State<AppState>, Host(host): Host, Path(id): Path<String>) -> Result<impl IntoResponse> {
    let l = own_listing(&st, &host, &id).await?;
    Ok(Json(views::listing(&st.photos, &l, Audience::Host, st.clock.now()).await?))
}

/// PATCH /v1/listings/{id}: allow-listed fields. GetItem + TransactWriteItems (2 items).
#[utoipa::path(patch, path = "/v1/listings/{id}", operation_id = "update_listing", tag = "listings",
    summary = "Change some of a listing's fields (its host)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`).")),
    request_body = ListingPatch,
    responses(
        (status = 200, description = "The listing after the change, as its host sees it.", body = ListingView),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
        (status = 409, description = "listing_archived, conflict"),
        (status = 422, description = "unsupported_currency"),
    ),
    security(("cognito" = [])))]
pub async fn update(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
    Json(patch): Json<ListingPatch>,
) -> Result<impl IntoResponse> {
    let l = modify(&st, &host, &id, |old| {
        rules::require_active(old)?;
        let fields = rules::patched(&old.fields, &patch)?;
        Ok(Some(ListingItem { fields, ..old.clone() }))
    })
    .await?;
    Ok(Json(views::listing(&st.photos, &l, Audience::Host, st.clock.now()).await?))
}

/// DELETE /v1/listings/{id}: archive (idempotent). GetItem + TransactWriteItems (2 items); the
/// search item loses its GSI2 keys, so search never reads it again.
#[utoipa::path(delete, path = "/v1/listings/{id}", operation_id = "archive_listing", tag = "listings",
    summary = "Archive a listing: gone from search, no new bookings (its host; idempotent)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`).")),
    responses(
        (status = 204, description = "Archived (or already archived); bookings already made are honoured."),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
        (status = 409, description = "conflict"),
    ),
    security(("cognito" = [])))]
pub async fn archive(State(st): State<AppState>, Host(host): Host, Path(id): Path<String>) -> Result<StatusCode> {
    modify(&st, &host, &id, |old| {
        Ok(old.is_active().then(|| ListingItem { status: ListingStatus::Archived, ..old.clone() }))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET /v1/me/listings: one Query on GSI1 per page, newest first; `status` filters.
#[utoipa::path(get, path = "/v1/me/listings", operation_id = "list_my_listings", tag = "listings",
    summary = "The caller's listings, newest first, archived ones too (hosts)",
    params(MyListingsParams),
    responses(
        (status = 200, description = "One page of listings, as their host sees them.", body = ListBody<ListingView>),
        (status = 400, description = "invalid_cursor"),
        (status = 403, description = "host_required"),
    ),
    security(("cognito" = [])))]
pub async fn my_list(
    State(st): State<AppState>,
    Host(host): Host,
    Query(params): Query<MyListingsParams>,
) -> Result<impl IntoResponse> {
    let limit = page::parse_limit(params.limit)?;
    let filters = [("status", params.status.map(|s| s.as_str().to_owned()).unwrap_or_default())];
    let scope = CursorScope { route: "/v1/me/listings", caller: Some(&host.user_id), filters: &filters };
    let partition = listing::host_partition(&host.user_id);
    let position = Partition::index(listing::HOST_INDEX, &partition, listing::HOST_SORT_PREFIX);
    let start = page::open_cursor(&st.cursors, params.cursor.as_deref(), &scope, &position)?;
    let page = store::host_page(&st.table, &host.user_id, params.status, limit, start).await?;
    let now = st.clock.now();
    let mut items = Vec::with_capacity(page.items.len());
    for l in &page.items {
        items.push(views::listing(&st.photos, l, Audience::Host, now).await?);
    }
    Ok(Json(ListBody::sealed(items, &st.cursors, &scope, page.last_key.as_ref())?))
}
