//! `POST /v1/quotes`.

use axum::extract::State;
use shared::ApiError;
use shared::extract::Json;
use shared::listing::MAX_STAY_NIGHTS;

use super::{Result, unexpected};
use crate::rules::{self, Stay, StayBody};
use crate::views::QuoteView;
use crate::{AppState, store};

/// POST /v1/quotes: anyone. GetItem (listing) and one Query (the stay's NIGHT range), sent
/// concurrently: 2 requests, one round trip.
#[utoipa::path(post, path = "/v1/quotes", tag = "bookings", operation_id = "create_quote",
    summary = "Price a stay and check its nights are free (anyone; nothing is held)",
    request_body = StayBody,
    responses(
        (status = 200, description = "The quote; `available` is false when some night is taken.", body = QuoteView),
        (status = 404, description = "not_found"),
        (status = 422, description = "listing_unavailable, check_out_not_after_check_in, check_in_in_past, check_in_too_far_ahead, stay_too_short, stay_too_long, too_few_guests, too_many_guests, total_below_minimum_charge, total_above_maximum_charge, total_not_chargeable, unsupported_currency"),
    ))]
pub async fn quote(State(st): State<AppState>, Json(body): Json<StayBody>) -> Result<Json<QuoteView>> {
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
    let today = rules::today_in(&rules::listing_tz(&listing)?, now);
    let nights = rules::check_stay(&listing, &stay, None, today)?;
    let taken = match taken {
        Some(t) => t,
        None => store::taken_nights(&st.table, &listing.listing_id, &nights, now).await?,
    };
    let price = rules::price(listing.fields.nightly_price, listing.fields.cleaning_fee, &nights).map_err(unexpected)?;
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
