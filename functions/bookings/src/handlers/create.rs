//! `POST /v1/bookings`: the booking, its nights held in one transaction (`store::create`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;
use shared::booking::{HoldSlot, MAX_OPEN_HOLDS, Party};
use shared::extract::Json;
use shared::idempotency::{self, IdempotencyKey, Idempotent, Lookup, StoredResponse};
use shared::metrics::Business;
use shared::openapi::IdempotencyKeyHeader;
use shared::payout::PayoutItem;
use shared::{ApiError, Caller};

use super::{Result, unexpected};
use crate::rules::{self, NewBooking, SlotClaim, Slots, Stay, StayBody};
use crate::store::{self, CreateError};
use crate::views::{self, BookingView, Viewer};
use crate::{AppState, BOOKINGS_ROUTE};

/// Used when a guest has no profile item (it is created at sign-up; this is a repair fallback).
const UNKNOWN_GUEST_NAME: &str = "Guest";

/// POST /v1/bookings (idem): a user. One BatchGetItem (listing, guest profile, the guest's hold
/// slots, idempotency record) + one TransactWriteItems (`store::create`, which takes a hold
/// slot): 2 requests. A duplicate found by the read answers after 1; a concurrent duplicate
/// (cancelled on the idempotency record) or a listing that changed costs one GetItem more; a
/// guest whose three slots all look taken costs one BatchGetItem more (their bookings); a slot
/// lost to the guest's own concurrent booking, one more round; a guest at the cap with an
/// `Idempotency-Key`, one GetItem more (its record, before the 409).
#[utoipa::path(post, path = "/v1/bookings", tag = "bookings",
    summary = "Book a stay: its nights are held while the guest pays (15 minutes)",
    params(IdempotencyKeyHeader),
    request_body = StayBody,
    responses(
        (status = 201, description = "The booking, `pending_payment` with `hold_expires_at`; pay it with `POST /v1/bookings/{id}/payment`.",
            body = BookingView,
            headers(
                ("Location" = String, description = "`/v1/bookings/{booking_id}`"),
                ("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key` (then without `Location`)."),
            )),
        (status = 404, description = "not_found"),
        (status = 409, description = "dates_unavailable, hold_limit_reached, listing_changed, conflict, idempotency_in_progress"),
        (status = 422, description = "listing_unavailable, own_listing, check_out_not_after_check_in, check_in_in_past, check_in_too_far_ahead, stay_too_short, stay_too_long, too_few_guests, too_many_guests, total_below_minimum_charge, total_above_maximum_charge, total_not_chargeable, unsupported_currency, idempotency_key_reused"),
    ),
    security(("cognito" = [])))]
pub async fn create_booking(
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
        if let Some(answer) = attempt_booking(&st, &caller, &stay, idem.as_ref(), attempt).await? {
            return Ok(answer);
        }
    }
    Err(ApiError::conflict("conflict", "Your other bookings are changing right now; try again."))
}

/// One read, judge and write of the booking: the answer, or `None` when the hold slot it took
/// was lost to another booking of the guest (judge the slots again).
async fn attempt_booking(
    st: &AppState,
    caller: &Caller,
    stay: &Stay,
    idem: Option<&Idempotent>,
    attempt: usize,
) -> Result<Option<Response>> {
    let now = st.clock.now();
    let reads =
        store::booking_reads(&st.table, &stay.listing_id, &caller.user_id, idem.map(|i| i.record_key())).await?;
    if let Some(i) = idem
        && let Some(stored) = i.decide(reads.idempotency.as_ref(), now).into_response()?
    {
        return Ok(Some(stored));
    }
    let listing = reads.listing.ok_or_else(ApiError::not_found)?;
    let today = rules::today_in(&rules::listing_tz(&listing)?, now);
    let nights = rules::check_stay(&listing, stay, Some(&caller.user_id), today)?;
    let price = rules::price(listing.fields.nightly_price, listing.fields.cleaning_fee, &nights).map_err(unexpected)?;
    // Before any night is held: a total Stripe cannot charge would leave a hold nobody can pay.
    shared::currencies::check_charge(price.total_money())?;
    let booking_id = shared::ids::new_id_at(shared::booking::ID_PREFIX, now);
    let free = match free_hold_slots(st, &reads.hold_slots, now).await? {
        Ok(free) => free,
        Err(until) => return hold_limit_unless_replayed(st, idem, until, now).await.map(Some),
    };
    let slot = rules::pick_slot(&free, &booking_id, attempt)
        .ok_or_else(|| unexpected(anyhow::anyhow!("no free hold slot to pick")))?;
    let guest = Party {
        user_id: caller.user_id.clone(),
        name: reads.guest_name.unwrap_or_else(|| UNKNOWN_GUEST_NAME.to_owned()),
    };
    let item =
        rules::booking_item(&listing, NewBooking { booking_id: &booking_id, stay, guest, price, now, hold: st.hold })?;
    let payout = PayoutItem::scheduled(&item, st.platform_fee_basis_points, now).map_err(unexpected)?;
    let response = StoredResponse::json(StatusCode::CREATED, &views::booking(&item, Viewer::Guest, now))?;
    let new = store::NewBookingItems { booking: &item, payout: &payout, nights: &nights, slot };
    let outcome = store::create(&st.table, new, now, idem.map(|i| (i, response.clone()))).await;
    match outcome {
        Ok(()) => {
            shared::metrics::count(Business::BookingsCreated);
            let mut res = response.to_response(false);
            if let Ok(location) = HeaderValue::from_str(&format!("/v1/bookings/{booking_id}")) {
                res.headers_mut().insert(header::LOCATION, location);
            }
            Ok(Some(res))
        }
        Err(CreateError::Duplicate) => replay_duplicate(st, idem, now).await.map(Some),
        Err(CreateError::ListingChanged) => Err(listing_changed(st, &listing.listing_id).await),
        Err(CreateError::NightsTaken(dates)) => Err(rules::dates_unavailable(&dates)),
        Err(CreateError::HoldSlotTaken) => Ok(None),
        Err(CreateError::Table(e)) => Err(e.into()),
    }
}

/// The transaction was cancelled on the idempotency record: the request that won committed its
/// record with its booking; read it (consistent) and replay it.
async fn replay_duplicate(st: &AppState, idem: Option<&Idempotent>, now: Timestamp) -> Result<Response> {
    let Some(i) = idem else { return Err(unexpected(anyhow::anyhow!("duplicate without a key"))) };
    i.replay_duplicate(&st.table, now).await
}

/// The transaction was cancelled on the listing: archived (or gone) since it was read, or
/// edited. Re-read to tell which.
async fn listing_changed(st: &AppState, listing_id: &str) -> ApiError {
    match store::listing(&st.table, listing_id).await {
        Ok(Some(l)) if l.is_active() => ApiError::conflict(
            "listing_changed",
            "The listing changed while you were booking; get a new quote and book again.",
        )
        .with_field("listing_id", "changed since it was priced"),
        Ok(_) => rules::Rule::ListingUnavailable.into(),
        Err(e) => e.into(),
    }
}

/// The guest's hold slots a new booking may take (`rules::judge_slots`), or `Err(until)` when
/// all of them hold a booking waiting for payment (the first of those holds lapses at `until`).
/// The slots' bookings are read (1 BatchGetItem) only when every slot holds a live hold: one of
/// them may have been paid or cancelled.
async fn free_hold_slots(
    st: &AppState,
    slots: &[HoldSlot],
    now: Timestamp,
) -> Result<std::result::Result<Vec<SlotClaim>, Option<Timestamp>>> {
    let ids = match rules::judge_slots(slots, None, now) {
        Slots::Free(free) => return Ok(Ok(free)),
        Slots::Full { until } => return Ok(Err(until)),
        Slots::ReadBookings(ids) => ids,
    };
    let statuses = store::booking_statuses(&st.table, &ids, now).await?;
    match rules::judge_slots(slots, Some(&statuses), now) {
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
    until: Option<Timestamp>,
    now: Timestamp,
) -> Result<Response> {
    if let Some(i) = idem {
        match i.lookup(&st.table, now).await? {
            Lookup::Replay(stored) => return Ok(stored.to_response(true)),
            Lookup::KeyReused => return Err(idempotency::key_reused()),
            Lookup::New | Lookup::InProgress => {}
        }
    }
    Err(rules::hold_limit_reached(until))
}
