//! One function per route of the reviews context: extract, check the rules, read and write
//! through `store`, answer with `views`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::caching::{self, IfNoneMatch};
use shared::cursor::CursorScope;
use shared::extract::{Json, Path, Query};
use shared::openapi::{IfNoneMatchHeader, PageParams};
use shared::page::{self, ListBody};
use shared::{ApiError, Caller};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::rules::{self, ResponseRequest, ReviewRequest};
use crate::store::{self, HostResponse, PostError, RespondError, ReviewItem};
use crate::views::ReviewView;

const LIST_ROUTE: &str = "/v1/listings/{id}/reviews";

type Result<T> = std::result::Result<T, ApiError>;

impl From<PostError> for ApiError {
    fn from(e: PostError) -> Self {
        match e {
            PostError::AlreadyReviewed => {
                ApiError::conflict("already_reviewed", "This stay has already been reviewed.")
            }
            PostError::NotReviewable => rules::Closed::NotCompleted.into(),
            PostError::Table(e) => e.into(),
        }
    }
}

impl From<RespondError> for ApiError {
    fn from(e: RespondError) -> Self {
        match e {
            RespondError::AlreadyResponded => already_responded(),
            RespondError::Table(e) => e.into(),
        }
    }
}

fn already_responded() -> ApiError {
    ApiError::conflict("already_responded", "The host has already responded to this review.")
}

/// The routes of this context, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_review)).routes(routes!(list_reviews)).routes(routes!(post_response))
}

/// POST /v1/bookings/{id}/review: its guest only (404 to anyone else). 1 GetItem (booking) +
/// 1 TransactWriteItems of 6 (`store::post`).
#[utoipa::path(post, path = "/v1/bookings/{id}/review", tag = "reviews",
    summary = "Review a completed stay (its guest, once, within 14 days of check-out)",
    params(("id" = String, Path, description = "The booking's id (`bkg_...`).")),
    request_body = ReviewRequest,
    responses(
        (status = 201, description = "The review.", body = ReviewView,
            headers(("Location" = String, description = "`/v1/reviews/{review_id}`"))),
        (status = 404, description = "not_found"),
        (status = 409, description = "already_reviewed, conflict"),
        (status = 422, description = "stay_not_completed, review_window_closed"),
    ),
    security(("cognito" = [])))]
pub async fn post_review(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ReviewRequest>,
) -> Result<Response> {
    let id = shared::ids::parse_id(shared::booking::ID_PREFIX, &id).ok_or_else(ApiError::not_found)?;
    let body = body.check()?;
    let booking = store::booking(&st.table, id)
        .await?
        .filter(|b| b.guest.user_id == caller.user_id)
        .ok_or_else(ApiError::not_found)?;
    let now = st.clock.now();
    rules::review_window(&booking, now)?;
    let review_id = shared::ids::new_id_at(store::ID_PREFIX, now);
    let item = ReviewItem::new(&review_id, &booking, &body, now);
    store::post(&st.table, &item, &booking, now).await?;
    let mut res = (StatusCode::CREATED, Json(ReviewView::from(item))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/reviews/{review_id}")) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// POST /v1/reviews/{id}/response: the host of the reviewed listing, once. 1 GetItem (review)
/// and 1 UpdateItem (`store::respond`): 2 requests. 404 `not_found` for an unknown review and
/// for anyone but its host alike (a 403 for a real id would tell a stranger which review ids
/// exist: the authorization matrix, docs/authorization.md), 409 `already_responded`.
#[utoipa::path(post, path = "/v1/reviews/{id}/response", tag = "reviews",
    summary = "Answer a review of one's listing (its host, once)",
    params(("id" = String, Path, description = "The review's id (`rev_...`).")),
    request_body = ResponseRequest,
    responses(
        (status = 200, description = "The review with its response.", body = ReviewView),
        (status = 404, description = "not_found"),
        (status = 409, description = "already_responded"),
    ),
    security(("cognito" = [])))]
pub async fn post_response(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ResponseRequest>,
) -> Result<Json<ReviewView>> {
    let id = shared::ids::parse_id(store::ID_PREFIX, &id).ok_or_else(ApiError::not_found)?;
    let comment = body.check()?;
    // Someone else's review is answered as one that does not exist.
    let mut review =
        store::review(&st.table, id).await?.filter(|r| r.host_id == caller.user_id).ok_or_else(ApiError::not_found)?;
    if review.response.is_some() {
        return Err(already_responded());
    }
    let response = HostResponse { comment, created_at: shared::night::instant(st.clock.now()) };
    store::respond(&st.table, id, &response, &caller.user_id).await?;
    review.response = Some(response);
    Ok(Json(review.into()))
}

/// The page of `GET /v1/listings/{id}/reviews` (`shared::openapi::PageParams` documents it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// GET /v1/listings/{id}/reviews: anyone; newest first. One Query on GSI1 per page
/// (`store::listing_page`); the cursor is sealed over the route and the listing. An unknown
/// listing has no reviews.
#[utoipa::path(get, path = "/v1/listings/{id}/reviews", tag = "reviews",
    summary = "A listing's reviews, newest first (anyone)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`)."), PageParams, IfNoneMatchHeader),
    responses(
        (status = 200, description = "One page of reviews.", body = ListBody<ReviewView>),
        (status = 400, description = "invalid_cursor"),
        (status = 404, description = "not_found"),
    ))]
pub async fn list_reviews(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<ListParams>,
    conditions: IfNoneMatch,
) -> Result<Response> {
    let page = listing_reviews(&st, &id, p.limit, p.cursor.as_deref()).await?;
    // Tagged by the page itself: a new review (the newest comes first) or a host's answer
    // changes it.
    caching::json(&conditions, caching::PUBLIC_ITEM, &page)
}

/// One page of a listing's reviews, newest first (GraphQL's `Listing.reviews` too: the same
/// signed cursors).
pub async fn listing_reviews(
    st: &AppState,
    id: &str,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<ListBody<ReviewView>> {
    let listing_id = shared::ids::parse_id("lst", id).ok_or_else(ApiError::not_found)?;
    let limit = page::parse_limit(limit)?;
    let filters = [("listing_id", listing_id.to_owned())];
    let scope = CursorScope { route: LIST_ROUTE, caller: None, filters: &filters };
    let partition = store::listing_partition(listing_id);
    let start = page::open_cursor(&st.cursors, cursor, &scope, &store::listing_positions(&partition))?;
    let found = store::listing_page(&st.table, listing_id, limit, start).await?;
    let items: Vec<ReviewView> = found.items.into_iter().map(ReviewView::from).collect();
    ListBody::sealed(items, &st.cursors, &scope, found.last_key.as_ref())
}
