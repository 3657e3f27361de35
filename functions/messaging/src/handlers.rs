//! One function per route of the messaging context: extract, check the rules, read and write
//! through `store`, answer with `views`. A conversation the caller does not take part in is
//! answered 404 `not_found`, exactly as one that does not exist.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use shared::cursor::CursorScope;
use shared::extract::{Json, Path, Query};
use shared::idempotency::{IdempotencyKey, Idempotent, StoredResponse};
use shared::listing::ListingStatus;
use shared::openapi::{IdempotencyKeyHeader, PageParams};
use shared::page::{self, ListBody};
use shared::{ApiError, Caller};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::rules::{self, InquiryBody, MessageBody};
use crate::store::{self, ConversationItem, ListingRef, MessageItem, PostError, Posting};
use crate::views::{ConversationView, MessageView, PostedView};

const CONVERSATIONS_ROUTE: &str = "/v1/me/conversations";
const MESSAGES_ROUTE: &str = "/v1/conversations/{id}/messages";
const INQUIRY_ROUTE: &str = "POST /v1/conversations";

type Result<T> = std::result::Result<T, ApiError>;

fn unexpected(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Unexpected(e.into())
}

/// The routes of this context, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_conversation))
        .routes(routes!(list_conversations))
        .routes(routes!(list_messages))
        .routes(routes!(post_message))
        .routes(routes!(mark_read))
}

/// The caller's conversation `id`: 404 for a malformed id, an unknown one and someone else's.
async fn own_conversation(st: &AppState, caller: &Caller, id: &str) -> Result<ConversationItem> {
    let id = shared::ids::parse_id(store::ID_PREFIX, id).ok_or_else(ApiError::not_found)?;
    store::conversation(&st.table, id)
        .await?
        .filter(|c| c.has_participant(&caller.user_id))
        .ok_or_else(ApiError::not_found)
}

/// The `Idempotency-Key` request, scoped to the caller and `route`, hashing `body`.
fn idempotent<B: serde::Serialize>(
    headers: &HeaderMap,
    caller: &Caller,
    route: &str,
    body: &B,
) -> Result<Option<Idempotent>> {
    let Some(key) = IdempotencyKey::from_headers(headers)? else { return Ok(None) };
    let canonical = serde_json::to_vec(body).map_err(unexpected)?;
    Ok(Some(Idempotent::new(&caller.user_id, route, &key, &canonical)))
}

/// A stored answer for a sequential duplicate (one GetItem), `None` for new work.
async fn earlier_answer(st: &AppState, idem: Option<&Idempotent>, now: Timestamp) -> Result<Option<Response>> {
    match idem {
        Some(i) => i.lookup(&st.table, now).await?.into_response(),
        None => Ok(None),
    }
}

/// 429 `too_many_requests` with `Retry-After` when the caller sent their messages of this
/// minute already (1 UpdateItem).
async fn rate_limited(st: &AppState, caller: &Caller, now: Timestamp) -> Result<Option<Response>> {
    let (minute, expires_at, retry_after) = rules::send_window(now);
    if store::count_send(&st.table, &caller.user_id, &minute, expires_at, rules::MAX_PER_MINUTE).await? {
        return Ok(None);
    }
    let mut res = ApiError::too_many_requests(format!(
        "At most {} messages a minute; retry in {retry_after} s.",
        rules::MAX_PER_MINUTE
    ))
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(Some(res))
}

/// The message as stored: masked unless the guest has a confirmed booking of the listing.
async fn compose(
    st: &AppState,
    c: &ConversationItem,
    caller: &Caller,
    text: &str,
    now: Timestamp,
) -> Result<MessageItem> {
    let booked = store::has_confirmed_booking(&st.table, &c.guest.user_id, &c.listing.listing_id).await?;
    let (text, masked) = if booked { (text.to_owned(), false) } else { rules::mask_contacts(text) };
    let message_id = shared::ids::new_id_at(store::MESSAGE_ID_PREFIX, now);
    Ok(MessageItem::new(&c.conversation_id, &message_id, &caller.user_id, text, masked, now))
}

/// After a transaction cancelled on the idempotency record: the winner's stored answer.
async fn replay(st: &AppState, idem: Option<&Idempotent>, now: Timestamp) -> Result<Response> {
    let Some(i) = idem else { return Err(unexpected(anyhow::anyhow!("duplicate without a key"))) };
    i.replay_duplicate(&st.table, now).await
}

/// POST /v1/conversations (idem): a guest asks a listing's host, before or after booking. The
/// first inquiry opens the conversation (201, one TransactWriteItems: `store::start`); a later
/// one carries it on (200, `store::post`). Reads: 1 BatchGetItem (listing, profile, pair), the
/// guest's bookings of the listing (masking), the send counter.
#[utoipa::path(post, path = "/v1/conversations", tag = "messaging",
    summary = "Ask a listing's host a question: opens (or carries on) the guest's conversation about it",
    params(IdempotencyKeyHeader),
    request_body = InquiryBody,
    responses(
        (status = 201, description = "The conversation was opened with this message.", body = PostedView,
            headers(("Location" = String, description = "`/v1/conversations/{conversation_id}/messages`"))),
        (status = 200, description = "The guest's conversation about this listing existed: the message was added to it.", body = PostedView),
        (status = 404, description = "not_found"),
        (status = 409, description = "conflict, idempotency_in_progress"),
        (status = 422, description = "own_listing, listing_unavailable, idempotency_key_reused"),
        (status = 429, description = "too_many_requests"),
    ),
    security(("cognito" = [])))]
pub async fn start_conversation(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<InquiryBody>,
) -> Result<Response> {
    let listing_id = rules::check_listing_id(&body.listing_id)?.to_owned();
    let text = rules::check_text(&body.text)?;
    let idem = idempotent(&headers, &caller, INQUIRY_ROUTE, &body)?;
    let now = st.clock.now();
    if let Some(answer) = earlier_answer(&st, idem.as_ref(), now).await? {
        return Ok(answer);
    }
    let reads = store::inquiry_reads(&st.table, &listing_id, &caller.user_id).await?;
    let listing = reads.listing.ok_or_else(ApiError::not_found)?;
    if listing.host_id == caller.user_id {
        return Err(ApiError::unprocessable("own_listing", "You cannot message yourself about your own listing."));
    }
    if let Some(pair) = reads.pair {
        return carry_on(&st, &caller, &pair.conversation_id, &text, idem.as_ref(), now).await;
    }
    if listing.status != ListingStatus::Active {
        return Err(ApiError::unprocessable("listing_unavailable", "This listing is no longer available."));
    }
    if let Some(limited) = rate_limited(&st, &caller, now).await? {
        return Ok(limited);
    }
    let conversation_id = shared::ids::new_id_at(store::ID_PREFIX, now);
    let guest = shared::booking::Party {
        user_id: caller.user_id.clone(),
        name: reads.guest_name.unwrap_or_else(|| "Guest".to_owned()),
    };
    let host = shared::booking::Party { user_id: listing.host_id.clone(), name: listing.host_name.clone() };
    let conversation = ConversationItem {
        key: store::key(&conversation_id),
        item_type: store::CONVERSATION_TYPE.to_owned(),
        conversation_id: conversation_id.clone(),
        listing: ListingRef { listing_id: listing.listing_id.clone(), title: listing.fields.title.clone() },
        guest,
        host,
        created_at: shared::night::instant(now),
        last_message_at: shared::night::instant(now),
    };
    let message = compose(&st, &conversation, &caller, &text, now).await?;
    let response = StoredResponse::json(StatusCode::CREATED, &PostedView::new(&conversation, message.clone()))?;
    let posting = Posting {
        conversation: &conversation,
        message: &message,
        idempotency: idem.as_ref().map(|i| (i, response.clone())),
        now,
    };
    match store::start(&st.table, &posting).await {
        Ok(()) => {
            let mut res = response.to_response(false);
            if let Ok(location) = HeaderValue::from_str(&format!("/v1/conversations/{conversation_id}/messages")) {
                res.headers_mut().insert(header::LOCATION, location);
            }
            Ok(res)
        }
        Err(PostError::Duplicate) => replay(&st, idem.as_ref(), now).await,
        // A concurrent first inquiry opened it: this message goes into that conversation.
        Err(PostError::ConversationExists) => {
            let pair = store::pair(&st.table, &listing_id, &caller.user_id)
                .await?
                .ok_or_else(|| unexpected(anyhow::anyhow!("the pair that cancelled the inquiry is gone")))?;
            carry_on(&st, &caller, &pair.conversation_id, &text, idem.as_ref(), now).await
        }
        Err(PostError::Table(e)) => Err(e.into()),
    }
}

/// An inquiry into the guest's existing conversation about the listing: a message of it (200).
async fn carry_on(
    st: &AppState,
    caller: &Caller,
    conversation_id: &str,
    text: &str,
    idem: Option<&Idempotent>,
    now: Timestamp,
) -> Result<Response> {
    let conversation = own_conversation(st, caller, conversation_id).await?;
    add_message(st, caller, &conversation, text, idem, StatusCode::OK, now).await
}

/// The send limit, the message and its transaction; answers `status` with the posted view.
async fn add_message(
    st: &AppState,
    caller: &Caller,
    conversation: &ConversationItem,
    text: &str,
    idem: Option<&Idempotent>,
    status: StatusCode,
    now: Timestamp,
) -> Result<Response> {
    if let Some(limited) = rate_limited(st, caller, now).await? {
        return Ok(limited);
    }
    let message = compose(st, conversation, caller, text, now).await?;
    let response = StoredResponse::json(status, &PostedView::new(conversation, message.clone()))?;
    let posting = Posting { conversation, message: &message, idempotency: idem.map(|i| (i, response.clone())), now };
    match store::post(&st.table, &posting).await {
        Ok(()) => Ok(response.to_response(false)),
        Err(PostError::Duplicate) => replay(st, idem, now).await,
        Err(PostError::ConversationExists) => {
            Err(unexpected(anyhow::anyhow!("no pair item in a message's transaction")))
        }
        Err(PostError::Table(e)) => Err(e.into()),
    }
}

/// POST /v1/conversations/{id}/messages (idem): a participant. GetItem (conversation), Query
/// (the guest's bookings of the listing: masking), UpdateItem (send counter),
/// TransactWriteItems (`store::post`): 4 requests; a sequential duplicate answers after 1 more
/// GetItem (the record) and nothing else.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "messaging",
    summary = "Send a message in a conversation (its guest or host)",
    params(("id" = String, Path, description = "The conversation's id (`cnv_...`)."), IdempotencyKeyHeader),
    request_body = MessageBody,
    responses(
        (status = 201, description = "The message, as stored (`masked` when contact details were hidden, with a `note`).", body = PostedView),
        (status = 404, description = "not_found"),
        (status = 409, description = "conflict, idempotency_in_progress"),
        (status = 422, description = "idempotency_key_reused"),
        (status = 429, description = "too_many_requests"),
    ),
    security(("cognito" = [])))]
pub async fn post_message(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<MessageBody>,
) -> Result<Response> {
    let conversation = own_conversation(&st, &caller, &id).await?;
    let text = rules::check_text(&body.text)?;
    let route = format!("POST /v1/conversations/{}/messages", conversation.conversation_id);
    let idem = idempotent(&headers, &caller, &route, &body)?;
    let now = st.clock.now();
    if let Some(answer) = earlier_answer(&st, idem.as_ref(), now).await? {
        return Ok(answer);
    }
    add_message(&st, &caller, &conversation, &text, idem.as_ref(), StatusCode::CREATED, now).await
}

/// The page of `GET /v1/me/conversations` (`shared::openapi::PageParams` documents it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// GET /v1/me/conversations: the caller's conversations, newest activity first, with their
/// unread counts. ONE Query on GSI1 per page (`store::member_page`).
#[utoipa::path(get, path = "/v1/me/conversations", tag = "messaging",
    summary = "My conversations, newest activity first, with unread counts",
    params(PageParams),
    responses(
        (status = 200, description = "One page of conversations.", body = ListBody<ConversationView>),
        (status = 400, description = "invalid_cursor"),
    ),
    security(("cognito" = [])))]
pub async fn list_conversations(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> Result<Json<ListBody<ConversationView>>> {
    let limit = page::parse_limit(p.limit)?;
    let scope = CursorScope { route: CONVERSATIONS_ROUTE, caller: Some(&caller.user_id), filters: &[] };
    let partition = store::member_partition(&caller.user_id);
    let start = page::open_cursor(&st.cursors, p.cursor.as_deref(), &scope, &store::member_positions(&partition))?;
    let found = store::member_page(&st.table, &caller.user_id, limit, start).await?;
    let items = found.items.into_iter().map(ConversationView::from).collect();
    Ok(Json(ListBody::sealed(items, &st.cursors, &scope, found.last_key.as_ref())?))
}

/// Which end of a conversation a page starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Newest,
    Oldest,
}

/// The page of `GET /v1/conversations/{id}/messages`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageParams {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, unchanged (with the same `order`).
    cursor: Option<String>,
    /// `newest` first (the default) or `oldest` first.
    #[param(inline)]
    order: Option<Order>,
}

/// GET /v1/conversations/{id}/messages: a participant. GetItem (conversation) + one Query per
/// page; the cursor is sealed over the route, the caller, the conversation and the order.
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "messaging",
    summary = "A conversation's messages, newest first (or `order=oldest`)",
    params(("id" = String, Path, description = "The conversation's id (`cnv_...`)."), MessageParams),
    responses(
        (status = 200, description = "One page of messages.", body = ListBody<MessageView>),
        (status = 400, description = "invalid_cursor"),
        (status = 404, description = "not_found"),
    ),
    security(("cognito" = [])))]
pub async fn list_messages(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<MessageParams>,
) -> Result<Json<ListBody<MessageView>>> {
    let limit = page::parse_limit(p.limit)?;
    let conversation = own_conversation(&st, &caller, &id).await?;
    let order = p.order.unwrap_or_default();
    let filters = [
        ("conversation_id", conversation.conversation_id.clone()),
        ("order", if order == Order::Oldest { "oldest" } else { "newest" }.to_owned()),
    ];
    let scope = CursorScope { route: MESSAGES_ROUTE, caller: Some(&caller.user_id), filters: &filters };
    let partition = store::pk(&conversation.conversation_id);
    let start = page::open_cursor(&st.cursors, p.cursor.as_deref(), &scope, &store::message_positions(&partition))?;
    let found =
        store::message_page(&st.table, &conversation.conversation_id, order == Order::Oldest, limit, start).await?;
    let items = found.items.into_iter().map(MessageView::from).collect();
    Ok(Json(ListBody::sealed(items, &st.cursors, &scope, found.last_key.as_ref())?))
}

/// POST /v1/conversations/{id}/read: a participant marks it read (their unread count goes to
/// 0). GetItem (conversation) + UpdateItem (their member item). Idempotent by nature.
#[utoipa::path(post, path = "/v1/conversations/{id}/read", tag = "messaging",
    summary = "Mark a conversation read (its guest or host)",
    params(("id" = String, Path, description = "The conversation's id (`cnv_...`).")),
    responses(
        (status = 204, description = "Read: its unread count is 0."),
        (status = 404, description = "not_found"),
    ),
    security(("cognito" = [])))]
pub async fn mark_read(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode> {
    let conversation = own_conversation(&st, &caller, &id).await?;
    store::mark_read(&st.table, &conversation.conversation_id, &caller.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
