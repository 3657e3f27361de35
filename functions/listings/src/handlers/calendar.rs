//! A listing's calendar: availability for anyone, blocking and unblocking nights for its host.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use shared::ApiError;
use shared::caching::{self, IfNoneMatch};
use shared::extract::{Json, Path, Query};
use shared::listing::ListingItem;
use shared::openapi::IfNoneMatchHeader;

use super::{Host, Result, own_listing};
use crate::AppState;
use crate::rules::{self, CalendarBody, CalendarChange, RangeParams};
use crate::store::{self, CalendarError};
use crate::views::{self, AvailabilityView};

/// GET /v1/listings/{id}/availability: GetItem + one Query on the NIGHT range.
#[utoipa::path(get, path = "/v1/listings/{id}/availability", operation_id = "get_availability", tag = "listings",
    summary = "A listing's calendar: which nights are bookable, at what price (anyone)",
    params(("id" = String, Path, description = "The listing's id (`lst_...`)."), RangeParams, IfNoneMatchHeader),
    responses(
        (status = 200, description = "The nights `[from, to)`.", body = AvailabilityView),
        (status = 404, description = "not_found"),
    ))]
pub async fn availability(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<RangeParams>,
    conditions: IfNoneMatch,
) -> Result<Response> {
    let l = super::listings::active_listing(&st, &id).await?;
    let calendar = public_calendar(&st, &l, params.from.as_deref(), params.to.as_deref()).await?;
    // Tagged by the calendar itself: a booking, a hold lapsing, a block or a price change
    // changes some night, hence the tag.
    caching::json(&conditions, caching::AVAILABILITY, &calendar)
}

/// What anyone sees of an active listing's calendar `[from, to)` (defaults and limits of
/// `rules::parse_availability_range`): one Query. GraphQL's `Listing.availability` too.
pub async fn public_calendar(
    st: &AppState,
    l: &ListingItem,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<AvailabilityView> {
    let now = st.clock.now();
    let today = rules::today_in(&l.fields.timezone, now);
    let (from, to) = rules::parse_availability_range(from, to, today)?;
    calendar(st, l, from, to, now, false).await
}

/// The calendar `[from, to)`: one Query on the NIGHT range.
async fn calendar(
    st: &AppState,
    l: &ListingItem,
    from: Date,
    to: Date,
    now: Timestamp,
    show_blocks: bool,
) -> Result<AvailabilityView> {
    let dates = rules::nights(from, to);
    let last = dates.last().copied().unwrap_or(from);
    let taken = store::nights(&st.table, &l.listing_id, from, last).await?;
    Ok(AvailabilityView {
        listing_id: l.listing_id.clone(),
        from: from.to_string(),
        to: to.to_string(),
        nights: views::availability(l, &dates, &taken, now, show_blocks),
    })
}

/// PUT /v1/listings/{id}/blocked-dates: at most 90 dates. GetItem + one TransactWriteItems per
/// non-empty list (nights + search item + listing check) + one Query for the answer. Blocks go
/// first: DynamoDB cannot ADD to and DELETE from the unavailable set in one update, so a call
/// with both lists is two transactions; each is all-or-nothing, and a held or booked night
/// fails its transaction with 409 `dates_unavailable` naming it.
#[utoipa::path(put, path = "/v1/listings/{id}/blocked-dates", operation_id = "change_blocked_dates", tag = "listings",
    summary = "Block and unblock nights of a listing's calendar (its host)",
    description = "Blocks are applied first, then unblocks, each all-or-nothing: a night held or booked by a guest fails its list with 409 `dates_unavailable` naming it (`block[i]` or `unblock[i]`).",
    params(("id" = String, Path, description = "The listing's id (`lst_...`).")),
    request_body = CalendarBody,
    responses(
        (status = 200, description = "The calendar from the first to the last date named, with `blocked` on every night.", body = AvailabilityView),
        (status = 403, description = "host_required"),
        (status = 404, description = "not_found"),
        (status = 409, description = "listing_archived, dates_unavailable, conflict"),
    ),
    security(("cognito" = [])))]
pub async fn change(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
    Json(body): Json<CalendarBody>,
) -> Result<impl IntoResponse> {
    let l = own_listing(&st, &host, &id).await?;
    rules::require_active(&l)?;
    let now = st.clock.now();
    let change = CalendarChange::parse(&body, rules::today_in(&l.fields.timezone, now))?;
    let blocked = store::block(&st.table, &l.listing_id, &host.user_id, &change.block, now).await;
    blocked.map_err(|e| calendar_error(e, "block", false))?;
    let unblocked = store::unblock(&st.table, &l.listing_id, &host.user_id, &change.unblock).await;
    unblocked.map_err(|e| calendar_error(e, "unblock", !change.block.is_empty()))?;
    let (first, last) = change.span().ok_or_else(|| anyhow::anyhow!("validated change names no date"))?;
    let to = last.tomorrow().map_err(anyhow::Error::from)?;
    Ok(Json(calendar(&st, &l, first, to, now, true).await?))
}

/// The answer to a failed calendar transaction on the dates of `list`.
fn calendar_error(e: CalendarError, list: &str, blocks_applied: bool) -> ApiError {
    match e {
        CalendarError::ListingInactive => rules::archived(),
        CalendarError::Taken(indices) => {
            let applied = if blocks_applied { " The dates to block were blocked; nothing was unblocked." } else { "" };
            ApiError::conflict(
                "dates_unavailable",
                format!("A booking holds some of these nights; nothing in `{list}` was changed.{applied}"),
            )
            .with_errors(
                indices
                    .into_iter()
                    .map(|i| {
                        shared::FieldError::new(
                            format!("{list}[{i}]"),
                            "held or booked by a guest, or imported from another calendar",
                        )
                    })
                    .collect(),
            )
        }
        CalendarError::Table(e) => e.into(),
    }
}
