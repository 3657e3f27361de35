//! Calendar sync: the listing's iCalendar export (a secret URL, no sign-in: calendar apps cannot
//! send one) and its host's imports of other platforms' feeds.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rand::RngCore as _;
use serde::Deserialize;
use shared::ApiError;
use shared::caching::{self, ETag, IfNoneMatch};
use shared::extract::{Json, Path, Query};
use shared::openapi::IfNoneMatchHeader;
use subtle::ConstantTimeEq as _;
use utoipa::IntoParams;

use super::{Host, Result, listing_id, own_listing};
use crate::AppState;
use crate::ical;
use crate::rules::{self, CalendarImportBody};
use crate::store::{self, calendar_sync as cs};
use crate::views::{CalendarFeedView, CalendarImportView, CalendarImportsView};

/// The export's secret.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// The listing's feed token (from `POST /v1/listings/{id}/calendar-token`).
    pub token: Option<String>,
}

/// GET /v1/listings/{id}/calendar.ics?token=: GetItem (token) + GetItem (listing) + one Query
/// (nights). A wrong or missing token and an unknown listing are the same 404.
#[utoipa::path(get, path = "/v1/listings/{id}/calendar.ics", operation_id = "get_calendar_feed", tag = "listings",
    summary = "A listing's calendar as an iCalendar feed (RFC 5545) for other platforms and calendar apps",
    description = "One all-day VEVENT per Roost stay (`Reserved`) and per run of host-blocked nights (`Not available`), dates in the listing's time zone, `DTEND` exclusive, stable UIDs; no guest data. Nights imported from other calendars are not exported. No sign-in: the `token` is the secret (rotate it with `POST /v1/listings/{id}/calendar-token`).",
    params(("id" = String, Path, description = "The listing's id (`lst_...`)."), FeedParams, IfNoneMatchHeader),
    responses(
        (status = 200, description = "The feed.", content_type = "text/calendar", body = String),
        (status = 404, description = "not_found"),
    ))]
pub async fn feed(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<FeedParams>,
    conditions: IfNoneMatch,
) -> Result<Response> {
    let id = listing_id(&id)?;
    let sent = params.token.unwrap_or_default();
    let stored = cs::feed_token(&st.table, id).await?;
    let Some(stored) = stored.filter(|t| bool::from(t.token.as_bytes().ct_eq(sent.as_bytes()))) else {
        return Err(ApiError::not_found());
    };
    let Some(l) = store::get(&st.table, &stored.listing_id).await? else { return Err(ApiError::not_found()) };
    let now = st.clock.now();
    let today = rules::today_in(&l.fields.timezone, now);
    let span = |days: i32| jiff::Span::new().days(days);
    let first = today.checked_sub(span(ical::EXPORT_PAST_DAYS)).map_err(anyhow::Error::from)?;
    let end = today.checked_add(span(ical::EXPORT_AHEAD_DAYS)).map_err(anyhow::Error::from)?;
    let nights = cs::nights(&st.table, id, first, end).await?;
    let body = ical::write_feed(&l.fields.title, &ical::feed_events(id, &nights, now));
    let etag = ETag::of_bytes(body.as_bytes());
    Ok(caching::tagged(&conditions, caching::CALENDAR_FEED, etag, "text/calendar; charset=utf-8", body))
}

/// The feed's address as the caller reached the API (the gateway or the CDN).
fn feed_view(headers: &HeaderMap, listing_id: &str, token: String) -> CalendarFeedView {
    let path = format!("/v1/listings/{listing_id}/calendar.ics?token={token}");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let proto = header("x-forwarded-proto").unwrap_or_else(|| "https".into());
    let url = header("host").map(|host| format!("{proto}://{host}{path}")).unwrap_or_else(|| path.clone());
    CalendarFeedView { url, path, token }
}

/// POST /v1/listings/{id}/calendar-token: a new secret (the old URL is a 404 at once). GetItem +
/// PutItem.
#[utoipa::path(post, path = "/v1/listings/{id}/calendar-token", operation_id = "rotate_calendar_token", tag = "listings",
    summary = "Create or rotate the secret URL of a listing's calendar feed (its host)",
    description = "The previous URL stops working at once: give the new one to the other platforms.",
    params(("id" = String, Path, description = "The listing's id (`lst_...`).")),
    responses(
        (status = 200, description = "The feed's new URL.", body = CalendarFeedView),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
    ),
    security(("cognito" = [])))]
pub async fn rotate_token(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<CalendarFeedView>> {
    let l = own_listing(&st, &host, &id).await?;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    cs::put_feed_token(&st.table, &l.listing_id, &token, st.clock.now()).await?;
    Ok(Json(feed_view(&headers, &l.listing_id, token)))
}

/// GET /v1/listings/{id}/calendar-token: the current feed URL. GetItem + GetItem.
#[utoipa::path(get, path = "/v1/listings/{id}/calendar-token", operation_id = "get_calendar_token", tag = "listings",
    summary = "The secret URL of a listing's calendar feed (its host)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`).")),
    responses(
        (status = 200, description = "The feed's URL.", body = CalendarFeedView),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found, no_calendar_token"),
    ),
    security(("cognito" = [])))]
pub async fn get_token(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<CalendarFeedView>> {
    let l = own_listing(&st, &host, &id).await?;
    let Some(t) = cs::feed_token(&st.table, &l.listing_id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_calendar_token",
            "This listing has no feed URL yet: create one with POST .../calendar-token.",
        ));
    };
    Ok(Json(feed_view(&headers, &l.listing_id, t.token)))
}

/// POST /v1/listings/{id}/calendar-imports: GetItem + Query (the listing's imports) +
/// TransactWriteItems (import, count, listing check). The next sync run fetches it.
#[utoipa::path(post, path = "/v1/listings/{id}/calendar-imports", operation_id = "create_calendar_import", tag = "listings",
    summary = "Import another platform's calendar feed into a listing (its host)",
    description = "The feed is fetched within 30 minutes and then every 30 minutes: the nights it covers become unavailable, and are freed when it drops them. Nights a Roost booking holds are never touched: the import reports them as `conflicts`. At most 5 imports per listing.",
    params(("id" = String, Path, description = "The listing's id (`lst_...`).")),
    request_body = CalendarImportBody,
    responses(
        (status = 201, description = "The import, not fetched yet.", body = CalendarImportView),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
        (status = 409, description = "listing_archived, import_exists, too_many_imports"),
    ),
    security(("cognito" = [])))]
pub async fn create_import(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
    Json(body): Json<CalendarImportBody>,
) -> Result<impl IntoResponse> {
    let (url, name) = rules::parse_calendar_import(&body, st.allow_loopback_feeds)?;
    let l = own_listing(&st, &host, &id).await?;
    rules::require_active(&l)?;
    if cs::imports(&st.table, &l.listing_id).await?.iter().any(|i| i.url == url) {
        return Err(ApiError::conflict("import_exists", "This listing already imports this feed."));
    }
    let import = cs::CalendarImport::new(&l.listing_id, &host.user_id, url, name, st.clock.now());
    cs::create_import(&st.table, &import).await.map_err(import_error)?;
    Ok((StatusCode::CREATED, Json(CalendarImportView::from(&import))))
}

/// GET /v1/listings/{id}/calendar-imports: GetItem + one Query.
#[utoipa::path(get, path = "/v1/listings/{id}/calendar-imports", operation_id = "list_calendar_imports", tag = "listings",
    summary = "A listing's calendar imports with their state (its host)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`).")),
    responses(
        (status = 200, description = "Every import, oldest first.", body = CalendarImportsView),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
    ),
    security(("cognito" = [])))]
pub async fn list_imports(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
) -> Result<Json<CalendarImportsView>> {
    let l = own_listing(&st, &host, &id).await?;
    let items = cs::imports(&st.table, &l.listing_id).await?;
    Ok(Json(CalendarImportsView { items: items.iter().map(CalendarImportView::from).collect() }))
}

/// DELETE /v1/listings/{id}/calendar-imports/{import_id}: GetItem + TransactWriteItems (import,
/// count) + Query and transactions freeing its nights.
#[utoipa::path(delete, path = "/v1/listings/{id}/calendar-imports/{import_id}", operation_id = "delete_calendar_import", tag = "listings",
    summary = "Stop importing a feed; the nights it made unavailable are freed (its host)",
    params(
        ("id" = String, Path, description = "The listing's id (`lst_...`)."),
        ("import_id" = String, Path, description = "The import's id (`cim_...`)."),
    ),
    responses(
        (status = 204, description = "Deleted; its nights are free again."),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
    ),
    security(("cognito" = [])))]
pub async fn delete_import(
    State(st): State<AppState>,
    Host(host): Host,
    Path((id, import_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let l = own_listing(&st, &host, &id).await?;
    let import_id = shared::ids::parse_id("cim", &import_id).ok_or_else(ApiError::not_found)?;
    cs::delete_import(&st.table, &l.listing_id, import_id).await.map_err(import_error)?;
    crate::sync::free_nights(&st.table, &l.listing_id, import_id, st.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn import_error(e: cs::ImportError) -> ApiError {
    match e {
        cs::ImportError::TooMany => ApiError::conflict(
            "too_many_imports",
            format!("A listing imports at most {} calendars; delete one first.", cs::MAX_IMPORTS),
        ),
        cs::ImportError::ListingInactive => rules::archived(),
        cs::ImportError::NotFound => ApiError::not_found(),
        cs::ImportError::Table(e) => e.into(),
    }
}
