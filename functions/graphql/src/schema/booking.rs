//! A booking as its guest or its host sees it (`bookings::views::booking`: the host sees no
//! payment failure and no refund failure reason), with its listing.

use async_graphql::{Context, Object};
use bookings::views::BookingView;

use super::listing::Listing;
use super::values::{
    CancellationValue, FullAddress, Location, PartyValue, PaymentValue, Payout, PriceValue, Refund, wire,
};
use super::{FieldResult, loaders, reads};

/// A trip (the guest's view) or a reservation (the host's view) of one booking.
pub struct Booking(pub BookingView);

#[Object]
impl Booking {
    /// `bkg_...`
    async fn id(&self) -> &str {
        &self.0.booking_id
    }

    async fn listing_id(&self) -> &str {
        &self.0.listing_id
    }

    /// The listing's title when the booking was made.
    async fn listing_title(&self) -> &str {
        &self.0.listing_title
    }

    /// The listing as anyone sees it now; null once archived (the booking keeps what it was
    /// sold under). Batched: one read for every booking on the page.
    async fn listing(&self, ctx: &Context<'_>) -> FieldResult<Option<Listing>> {
        match loaders(ctx).listing(&self.0.listing_id).await? {
            Some(item) if item.is_active() => Ok(Some(Listing::public(reads(ctx), item).await?)),
            _ => Ok(None),
        }
    }

    async fn guest(&self) -> PartyValue {
        self.0.guest.clone().into()
    }

    async fn host(&self) -> PartyValue {
        self.0.host.clone().into()
    }

    /// The first night, `YYYY-MM-DD` in the listing's time zone.
    async fn check_in(&self) -> String {
        self.0.check_in.to_string()
    }

    /// The day the stay ends (not a night of it).
    async fn check_out(&self) -> String {
        self.0.check_out.to_string()
    }

    async fn guests(&self) -> u32 {
        self.0.guests
    }

    async fn nights(&self) -> u32 {
        self.0.nights
    }

    async fn price(&self) -> PriceValue {
        self.0.price.clone().into()
    }

    /// The policy it was sold under: `flexible`, `moderate` or `strict`.
    async fn cancellation_policy(&self) -> String {
        wire(&self.0.cancellation_policy)
    }

    /// The effective status now: `pending_payment`, `requested`, `confirmed`, `declined`, `cancelled`, `expired`,
    /// `completed`, ... (REST's values).
    async fn status(&self) -> String {
        wire(&self.0.status)
    }

    /// `instant`, or `request`: its host accepts or declines it (`requested` until then).
    async fn booking_mode(&self) -> String {
        wire(&self.0.booking_mode)
    }

    /// While the booking waits for payment or for its host's answer: when the hold on its
    /// nights lapses.
    async fn hold_expires_at(&self) -> Option<&str> {
        self.0.hold_expires_at.as_deref()
    }

    /// A declined request's message from its host, if the host wrote one.
    async fn decline_message(&self) -> Option<&str> {
        self.0.decline.as_ref().and_then(|d| d.message.as_deref())
    }

    /// The exact address, once the booking is confirmed.
    async fn address(&self) -> Option<FullAddress> {
        self.0.address.as_ref().map(Into::into)
    }

    async fn location(&self) -> Location {
        let l = &self.0.location;
        Location { city: l.city.clone(), region: l.region.clone(), country: l.country.clone() }
    }

    async fn timezone(&self) -> &str {
        &self.0.timezone
    }

    async fn check_in_time(&self) -> &str {
        &self.0.check_in_time
    }

    async fn check_out_time(&self) -> &str {
        &self.0.check_out_time
    }

    async fn payment(&self) -> PaymentValue {
        self.0.payment.clone().into()
    }

    async fn cancellation(&self) -> Option<CancellationValue> {
        self.0.cancellation.clone().map(Into::into)
    }

    async fn refund(&self) -> Option<Refund> {
        self.0.refund.clone().map(Into::into)
    }

    /// The host's payout: on `booking(id:)` read by its host; null for its guest and in lists.
    async fn payout(&self) -> Option<Payout> {
        self.0.payout.clone().map(Into::into)
    }

    async fn created_at(&self) -> &str {
        &self.0.created_at
    }

    async fn updated_at(&self) -> &str {
        &self.0.updated_at
    }
}
