//! The `bookings` context: quotes computed on the server, bookings that hold their nights in one
//! transaction, `Idempotency-Key` on booking, and the views (one booking, a guest's trips, a
//! host's reservations). `router` builds the HTTP surface from an explicit `AppState`.
//!
//! The invariants live in DynamoDB, not here: a booking is ONE `TransactWriteItems` (see
//! `store::create`) whose conditions make a double booking, a booking of a changed or archived
//! listing, and a duplicate of an idempotent request impossible; this code only maps which item
//! failed to the answer.

pub mod cancellation;
pub mod domain;
pub mod lifecycle;
pub mod store;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use shared::booking::{BookingStatus, HoldSlot, MAX_OPEN_HOLDS, Party};
use shared::cursor::{CursorKey, CursorScope};
use shared::extract::{Json, Path, Query};
use shared::idempotency::{self, IdempotencyKey, Idempotent, Lookup, StoredResponse};
use shared::listing::MAX_STAY_NIGHTS;
use shared::table::Item;
use shared::{ApiError, Caller, FieldError, SharedClock, Table};

use crate::domain::{NewBooking, SlotClaim, Slots, Stay, StayBody};
use crate::store::CreateFailure;
use crate::views::{BookingView, QuoteView, Viewer};

/// The route an `Idempotency-Key` on a booking is scoped to.
pub const BOOKINGS_ROUTE: &str = "POST /v1/bookings";
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
/// Used when a guest has no profile item (it is created at sign-up; this is a repair fallback).
const UNKNOWN_GUEST_NAME: &str = "Guest";

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub cursors: Arc<CursorKey>,
    /// How long a new booking holds its nights waiting for payment (`HOLD_MINUTES`).
    pub hold: SignedDuration,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/quotes", post(quote))
        .route("/v1/bookings", post(create_booking))
        .route("/v1/bookings/{id}", get(get_booking))
        .route("/v1/bookings/{id}/cancellation", get(cancellation_preview))
        .route("/v1/bookings/{id}/cancel", post(cancel_booking))
        .route("/v1/me/trips", get(trips))
        .route("/v1/me/reservations", get(reservations))
        .with_state(state)
}

type Result<T> = std::result::Result<T, ApiError>;

fn unexpected(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Unexpected(e.into())
}

/// POST /v1/quotes: anyone. GetItem (listing) and one Query (the stay's NIGHT range), sent
/// concurrently: 2 requests, one round trip.
async fn quote(State(st): State<AppState>, Json(body): Json<StayBody>) -> Result<Json<QuoteView>> {
    let stay = Stay::parse(&body)?;
    let now = st.clock.now();
    let span = stay.nights();
    // A span no listing can allow breaks a rule whatever the nights are: skip their query.
    let plausible = (1..=MAX_STAY_NIGHTS as usize).contains(&span.len());
    let (listing, taken) = if plausible {
        let (l, t) = tokio::join!(
            store::listing(&st.table, &stay.listing_id),
            store::taken_nights(&st.table, &stay.listing_id, &span, now)
        );
        (l?, Some(t?))
    } else {
        (store::listing(&st.table, &stay.listing_id).await?, None)
    };
    let listing = listing.ok_or_else(ApiError::not_found)?;
    let today = domain::today_in(&domain::listing_tz(&listing)?, now);
    let nights = domain::check_stay(&listing, &stay, None, today)?;
    let taken = match taken {
        Some(t) => t,
        None => store::taken_nights(&st.table, &listing.listing_id, &nights, now).await?,
    };
    let price =
        domain::price(listing.fields.nightly_price, listing.fields.cleaning_fee, &nights).map_err(unexpected)?;
    // A total Stripe cannot charge (under its minimum, over its maximum) is refused here.
    shared::currencies::check_charge(price.total_money())?;
    Ok(Json(QuoteView {
        listing_id: listing.listing_id,
        check_in: stay.check_in,
        check_out: stay.check_out,
        nights: u32::try_from(nights.len()).map_err(unexpected)?,
        guests: stay.guests,
        price,
        available: taken.is_empty(),
        unavailable_dates: taken,
    }))
}

/// POST /v1/bookings (idem): a user. One BatchGetItem (listing, guest profile, the guest's hold
/// slots, idempotency record) + one TransactWriteItems (`store::create`, which takes a hold
/// slot): 2 requests. A duplicate found by the read answers after 1; a concurrent duplicate
/// (cancelled on the idempotency record) or a listing that changed costs one GetItem more; a
/// guest whose three slots all look taken costs one BatchGetItem more (their bookings); a slot
/// lost to the guest's own concurrent booking, one more round; a guest at the cap with an
/// `Idempotency-Key`, one GetItem more (its record, before the 409).
async fn create_booking(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<StayBody>,
) -> Result<Response> {
    let key = IdempotencyKey::from_headers(&headers)?;
    let stay = Stay::parse(&body)?;
    let idem = match &key {
        Some(k) => {
            let canonical = serde_json::to_vec(&body).map_err(unexpected)?;
            Some(Idempotent::new(&caller.user_id, BOOKINGS_ROUTE, k, &canonical))
        }
        None => None,
    };
    // Losing the race for a hold slot means another booking of this guest took it: read and
    // judge again. Each lost race is one more slot taken by a booking that waits for payment, so
    // `MAX_OPEN_HOLDS + 1` attempts end in a booking or `hold_limit_reached`, unless the guest's
    // other bookings keep changing meanwhile.
    for attempt in 0..=MAX_OPEN_HOLDS as usize {
        let now = st.clock.now();
        let reads =
            store::booking_reads(&st.table, &stay.listing_id, &caller.user_id, idem.as_ref().map(|i| i.record_key()))
                .await?;
        if let Some(i) = &idem
            && let Some(stored) = i.decide(reads.idempotency.as_ref(), now).into_response()?
        {
            return Ok(stored);
        }
        let listing = reads.listing.ok_or_else(ApiError::not_found)?;
        let today = domain::today_in(&domain::listing_tz(&listing)?, now);
        let nights = domain::check_stay(&listing, &stay, Some(&caller.user_id), today)?;
        let price =
            domain::price(listing.fields.nightly_price, listing.fields.cleaning_fee, &nights).map_err(unexpected)?;
        // Before any night is held: a total Stripe cannot charge would leave a hold nobody can pay.
        shared::currencies::check_charge(price.total_money())?;
        let booking_id = shared::ids::new_id_at(shared::booking::ID_PREFIX, now);
        let free = match free_hold_slots(&st, &reads.hold_slots, now).await? {
            Ok(free) => free,
            Err(until) => return hold_limit_unless_replayed(&st, idem.as_ref(), until, now).await,
        };
        let slot = domain::pick_slot(&free, &booking_id, attempt)
            .ok_or_else(|| unexpected(anyhow::anyhow!("no free hold slot to pick")))?;
        let guest = Party {
            user_id: caller.user_id.clone(),
            name: reads.guest_name.unwrap_or_else(|| UNKNOWN_GUEST_NAME.to_owned()),
        };
        let item = domain::booking_item(
            &listing,
            NewBooking { booking_id: &booking_id, stay: &stay, guest, price, now, hold: st.hold },
        )?;
        let response = StoredResponse::json(StatusCode::CREATED, &views::booking(&item, Viewer::Guest, now))?;
        let outcome =
            store::create(&st.table, &item, &nights, slot, now, idem.as_ref().map(|i| (i, response.clone()))).await?;
        return match outcome {
            Ok(()) => {
                let mut res = response.to_response(false);
                if let Ok(location) = HeaderValue::from_str(&format!("/v1/bookings/{booking_id}")) {
                    res.headers_mut().insert(header::LOCATION, location);
                }
                Ok(res)
            }
            Err(CreateFailure::Duplicate) => {
                let Some(i) = &idem else { return Err(unexpected(anyhow::anyhow!("duplicate without a key"))) };
                // The request that won committed its record with its booking: read it (consistent).
                match i.lookup(&st.table, now).await? {
                    Lookup::Replay(stored) => Ok(stored.to_response(true)),
                    Lookup::KeyReused => Err(idempotency::key_reused()),
                    Lookup::New | Lookup::InProgress => Err(ApiError::conflict(
                        "conflict",
                        "A request with this Idempotency-Key was just processed; retry to get its response.",
                    )),
                }
            }
            Err(CreateFailure::ListingChanged) => {
                // Archived (or gone) since it was read, or edited: re-read to tell which.
                match store::listing(&st.table, &listing.listing_id).await? {
                    Some(l) if l.is_active() => Err(ApiError::conflict(
                        "listing_changed",
                        "The listing changed while you were booking; get a new quote and book again.",
                    )
                    .with_field("listing_id", "changed since it was priced")),
                    _ => Err(domain::Rule::ListingUnavailable.into()),
                }
            }
            Err(CreateFailure::NightsTaken(dates)) => Err(dates_unavailable(&dates)),
            Err(CreateFailure::HoldSlotTaken) => continue,
        };
    }
    Err(ApiError::conflict("conflict", "Your other bookings are changing right now; try again."))
}

/// The guest's hold slots a new booking may take (`domain::judge_slots`), or `Err(until)` when
/// all of them hold a booking waiting for payment (the first of those holds lapses at `until`).
/// The slots' bookings are read (1 BatchGetItem) only when every slot holds a live hold: one of
/// them may have been paid or cancelled.
async fn free_hold_slots(
    st: &AppState,
    slots: &[HoldSlot],
    now: jiff::Timestamp,
) -> Result<std::result::Result<Vec<SlotClaim>, Option<jiff::Timestamp>>> {
    let ids = match domain::judge_slots(slots, None, now) {
        Slots::Free(free) => return Ok(Ok(free)),
        Slots::Full { until } => return Ok(Err(until)),
        Slots::ReadBookings(ids) => ids,
    };
    let statuses = store::booking_statuses(&st.table, &ids, now).await?;
    match domain::judge_slots(slots, Some(&statuses), now) {
        Slots::Free(free) => Ok(Ok(free)),
        Slots::Full { until } => Ok(Err(until)),
        Slots::ReadBookings(_) => Err(unexpected(anyhow::anyhow!("hold slots judged without their bookings"))),
    }
}

/// 409 `hold_limit_reached`, unless this very request already made its booking. The
/// BatchGetItem that read the key's record and the slots is not a snapshot: a retry whose read
/// overlaps its original's commit can see the slot the original took but not yet its record,
/// and would judge the guest full. So with a key, the record is read again (1 consistent
/// GetItem) before answering 409: a stored response is replayed, as it would have been.
async fn hold_limit_unless_replayed(
    st: &AppState,
    idem: Option<&Idempotent>,
    until: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Result<Response> {
    if let Some(i) = idem {
        match i.lookup(&st.table, now).await? {
            Lookup::Replay(stored) => return Ok(stored.to_response(true)),
            Lookup::KeyReused => return Err(idempotency::key_reused()),
            Lookup::New | Lookup::InProgress => {}
        }
    }
    Err(domain::hold_limit_reached(until))
}

/// 409 `dates_unavailable`, naming each taken night.
fn dates_unavailable(dates: &[jiff::civil::Date]) -> ApiError {
    let list: Vec<String> = dates.iter().map(ToString::to_string).collect();
    ApiError::conflict("dates_unavailable", format!("These nights are no longer available: {}.", list.join(", ")))
        .with_errors(list.into_iter().map(|d| FieldError::new("nights", format!("{d} is not available"))).collect())
}

/// GET /v1/bookings/{id}: its guest or its host; 404 to anyone else. One GetItem.
async fn get_booking(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<BookingView>> {
    let id = shared::ids::parse_id(shared::booking::ID_PREFIX, &id).ok_or_else(ApiError::not_found)?;
    let b =
        store::booking(&st.table, id).await?.filter(|b| b.is_party(&caller.user_id)).ok_or_else(ApiError::not_found)?;
    Ok(Json(views::booking(&b, Viewer::of(&b, &caller.user_id), st.clock.now())))
}

/// The booking `id` if the caller is its guest or its host; 404 for anyone else.
async fn party_booking(st: &AppState, caller: &Caller, id: &str) -> Result<shared::booking::BookingItem> {
    let id = shared::ids::parse_id(shared::booking::ID_PREFIX, id).ok_or_else(ApiError::not_found)?;
    store::booking(&st.table, id).await?.filter(|b| b.is_party(&caller.user_id)).ok_or_else(ApiError::not_found)
}

/// GET /v1/bookings/{id}/cancellation: what cancelling now would refund (1 GetItem).
async fn cancellation_preview(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<lifecycle::PreviewView>> {
    let b = party_booking(&st, &caller, &id).await?;
    let (_, decision) = lifecycle::decide(&b, &caller.user_id, st.clock.now())?;
    Ok(Json(lifecycle::preview(&b, &decision)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: Option<String>,
}

const CANCEL_REASON_MAX: usize = 500;

/// POST /v1/bookings/{id}/cancel: by its guest (per the policy it was sold under) or its host
/// (100 %). The body (`{reason?}`) is optional. 1 GetItem + 1 Query + 1 TransactWriteItems;
/// if the booking changed in between (paid, swept, cancelled by the other party) it is read and
/// judged again.
async fn cancel_booking(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<BookingView>> {
    let body: CancelBody = if body.iter().all(u8::is_ascii_whitespace) {
        CancelBody::default()
    } else {
        shared::extract::from_json_slice(&body)?
    };
    let reason = body.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > CANCEL_REASON_MAX) {
        return Err(ApiError::invalid_field("reason", format!("must be at most {CANCEL_REASON_MAX} characters")));
    }
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let b = party_booking(&st, &caller, &id).await?;
        let now = st.clock.now();
        let (by, decision) = lifecycle::decide(&b, &caller.user_id, now)?;
        if let lifecycle::Cancelled::Done(done) =
            lifecycle::cancel(&st.table, &b, by, &decision, reason.clone(), now).await?
        {
            return Ok(Json(views::booking(&done, Viewer::of(&done, &caller.user_id), now)));
        }
    }
    Err(ApiError::conflict("conflict", "The booking is changing right now; try again."))
}

#[derive(Serialize)]
struct ListBody<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TripsParams {
    status: Option<BookingStatus>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// GET /v1/me/trips: the caller's bookings as guest, newest first; `status` filters on the
/// effective status. One Query on GSI1 per page.
async fn trips(State(st): State<AppState>, caller: Caller, Query(p): Query<TripsParams>) -> Result<impl IntoResponse> {
    let limit = parse_limit(p.limit)?;
    let filters = [("status", p.status.map(|s| s.as_str().to_owned()).unwrap_or_default())];
    let scope = CursorScope { route: "/v1/me/trips", caller: Some(&caller.user_id), filters: &filters };
    let partition = shared::booking::guest_partition(&caller.user_id);
    let start = open_cursor(&st, p.cursor.as_deref(), &scope, ("GSI1PK", "GSI1SK"), &partition)?;
    let now = st.clock.now();
    let page = store::trips_page(&st.table, &caller.user_id, p.status, limit, start, now).await?;
    let items = page
        .items
        .iter()
        .filter(|b| p.status.is_none_or(|s| b.effective_status(now) == s))
        .map(|b| views::booking(b, Viewer::Guest, now))
        .collect();
    Ok(Json(ListBody { items, next_cursor: st.cursors.seal_key(&scope, page.last_key.as_ref())? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReservationsParams {
    listing_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// GET /v1/me/reservations: bookings on the caller's listings (all, or one listing), newest
/// first. Hosts only. One Query on GSI2 per page.
async fn reservations(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<ReservationsParams>,
) -> Result<impl IntoResponse> {
    caller.require_host()?;
    let limit = parse_limit(p.limit)?;
    let listing_id = match p.listing_id.as_deref() {
        Some(raw) => Some(
            shared::ids::parse_id("lst", raw)
                .ok_or_else(|| ApiError::invalid_field("listing_id", "must be a listing id such as lst_01jh..."))?,
        ),
        None => None,
    };
    let filters = [("listing_id", listing_id.unwrap_or_default().to_owned())];
    let scope = CursorScope { route: "/v1/me/reservations", caller: Some(&caller.user_id), filters: &filters };
    let partition = shared::booking::host_partition(&caller.user_id);
    let start = open_cursor(&st, p.cursor.as_deref(), &scope, ("GSI2PK", "GSI2SK"), &partition)?;
    let page = store::reservations_page(&st.table, &caller.user_id, listing_id, limit, start).await?;
    let now = st.clock.now();
    let items: Vec<BookingView> = page.items.iter().map(|b| views::booking(b, Viewer::Host, now)).collect();
    Ok(Json(ListBody { items, next_cursor: st.cursors.seal_key(&scope, page.last_key.as_ref())? }))
}

fn parse_limit(limit: Option<u32>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid_field("limit", format!("must be 1 to {MAX_LIMIT}"))),
    }
}

/// The start key a cursor carries, checked to be a position in `partition` of the index.
fn open_cursor(
    st: &AppState,
    cursor: Option<&str>,
    scope: &CursorScope,
    (index_pk, index_sk): (&str, &str),
    partition: &str,
) -> Result<Option<Item>> {
    let Some(c) = cursor else { return Ok(None) };
    let key = st.cursors.open_key(c, scope)?;
    if store::is_position_in(&key, index_pk, index_sk, partition) {
        Ok(Some(key))
    } else {
        Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "The cursor is invalid for this request.")
            .with_field("cursor", "invalid cursor"))
    }
}
