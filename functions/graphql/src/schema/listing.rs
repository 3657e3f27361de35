//! Listings as anyone sees them, with their host, calendar and reviews; search results; reviews.

use async_graphql::{Context, Object, SimpleObject};
use listings::views::{Audience, ListingView, SummaryView};
use reviews::views::ReviewView;
use shared::listing::ListingItem;

use super::connection::{self, ReviewConnection};
use super::me::User;
use super::values::{Location, MoneyValue, PartyValue, Photo, Rating, wire};
use super::{FieldResult, Gql, loaders, reads};
use crate::Reads;

/// A listing as anyone sees it: the address is city, region and country only.
pub struct Listing {
    item: ListingItem,
    view: ListingView,
}

impl Listing {
    /// The public view of an active listing (`listings::views::listing`, as REST renders it).
    pub async fn public(reads: &Reads, item: ListingItem) -> FieldResult<Self> {
        let now = reads.listings.clock.now();
        let view = listings::views::listing(&reads.listings.photos, &item, Audience::Public, now).await.gql()?;
        Ok(Self { item, view })
    }
}

#[Object]
impl Listing {
    /// `lst_...`
    async fn id(&self) -> &str {
        &self.view.listing_id
    }

    async fn host_id(&self) -> &str {
        &self.view.host_id
    }

    async fn host_name(&self) -> &str {
        &self.view.host_name
    }

    /// The host's public profile (batched: one read for every host on the page).
    async fn host(&self, ctx: &Context<'_>) -> FieldResult<Option<User>> {
        loaders(ctx).profile(&self.view.host_id).await
    }

    /// `active` (archived listings are never served).
    async fn status(&self) -> String {
        wire(&self.view.status)
    }

    async fn title(&self) -> &str {
        &self.item.fields.title
    }

    async fn description(&self) -> &str {
        &self.item.fields.description
    }

    /// `apartment`, `house`, ...
    async fn property_type(&self) -> &str {
        &self.item.fields.property_type
    }

    async fn location(&self) -> Location {
        let a = &self.item.fields.address;
        Location { city: a.city.clone(), region: a.region.clone(), country: a.country.clone() }
    }

    /// IANA time zone: the listing's dates are local to it.
    async fn timezone(&self) -> &str {
        &self.item.fields.timezone
    }

    async fn max_guests(&self) -> u32 {
        self.item.fields.max_guests
    }

    async fn bedrooms(&self) -> u32 {
        self.item.fields.bedrooms
    }

    async fn beds(&self) -> u32 {
        self.item.fields.beds
    }

    async fn bathrooms(&self) -> u32 {
        self.item.fields.bathrooms
    }

    async fn amenities(&self) -> &[String] {
        &self.item.fields.amenities
    }

    async fn nightly_price(&self) -> MoneyValue {
        self.item.fields.nightly_price.into()
    }

    async fn cleaning_fee(&self) -> Option<MoneyValue> {
        self.item.fields.cleaning_fee.map(Into::into)
    }

    async fn min_nights(&self) -> u32 {
        self.item.fields.min_nights
    }

    async fn max_nights(&self) -> u32 {
        self.item.fields.max_nights
    }

    /// `flexible`, `moderate` or `strict`.
    async fn cancellation_policy(&self) -> String {
        wire(&self.item.fields.cancellation_policy)
    }

    /// `HH:MM`, local.
    async fn check_in_time(&self) -> &str {
        &self.item.fields.check_in_time
    }

    /// `HH:MM`, local.
    async fn check_out_time(&self) -> &str {
        &self.item.fields.check_out_time
    }

    /// In upload order.
    async fn photos(&self) -> Vec<Photo> {
        let photo = |p: &listings::views::PhotoView| Photo {
            id: p.photo_id.clone(),
            url: p.url.clone(),
            caption: p.caption.clone(),
        };
        self.view.photos.iter().map(photo).collect()
    }

    async fn rating(&self) -> Rating {
        (&self.view.rating).into()
    }

    /// RFC 3339, UTC.
    async fn created_at(&self) -> &str {
        &self.view.created_at
    }

    /// RFC 3339, UTC.
    async fn updated_at(&self) -> &str {
        &self.view.updated_at
    }

    /// The nights `[from, to)` (`YYYY-MM-DD`; default: today in the listing's zone and 30
    /// nights), as `GET /v1/listings/{id}/availability` answers: one read.
    async fn availability(
        &self,
        ctx: &Context<'_>,
        from: Option<String>,
        to: Option<String>,
    ) -> FieldResult<Option<Vec<super::values::Night>>> {
        let reads = reads(ctx);
        let calendar =
            listings::handlers::calendar::public_calendar(&reads.listings, &self.item, from.as_deref(), to.as_deref())
                .await
                .gql()?;
        Ok(Some(calendar.nights.into_iter().map(Into::into).collect()))
    }

    /// Reviews, newest first (`GET /v1/listings/{id}/reviews`: the same cursors): one read a
    /// page, whatever its size.
    #[graphql(complexity = "connection::page_complexity(first, child_complexity)")]
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Option<ReviewConnection>> {
        let reads = reads(ctx);
        let page = reviews::handlers::listing_reviews(
            &reads.reviews,
            &self.item.listing_id,
            connection::limit(first),
            after.as_deref(),
        )
        .await
        .gql()?;
        Ok(Some(ReviewConnection::from_page(page, Review)))
    }
}

/// A search result: the public summary, with the stay's price when dates were given.
#[derive(SimpleObject)]
pub struct ListingSummary {
    pub id: String,
    pub title: String,
    pub property_type: String,
    pub location: Location,
    pub max_guests: u32,
    pub bedrooms: u32,
    pub beds: u32,
    pub bathrooms: u32,
    pub nightly_price: MoneyValue,
    pub cleaning_fee: Option<MoneyValue>,
    pub min_nights: u32,
    pub max_nights: u32,
    pub rating: Rating,
    /// A pre-signed GET of the first photo.
    pub photo_url: Option<String>,
    pub created_at: String,
    /// Searches with dates only: the stay's nights.
    pub nights: Option<u32>,
    /// Searches with dates only: nights times the nightly price plus the cleaning fee.
    pub total: Option<MoneyValue>,
}

impl From<SummaryView> for ListingSummary {
    fn from(s: SummaryView) -> Self {
        Self {
            id: s.listing_id,
            title: s.title,
            property_type: s.property_type,
            location: Location { city: s.address.city, region: s.address.region, country: s.address.country },
            max_guests: s.max_guests,
            bedrooms: s.bedrooms,
            beds: s.beds,
            bathrooms: s.bathrooms,
            nightly_price: s.nightly_price.into(),
            cleaning_fee: s.cleaning_fee.map(Into::into),
            min_nights: s.min_nights,
            max_nights: s.max_nights,
            rating: (&s.rating).into(),
            photo_url: s.photo_url,
            created_at: s.created_at,
            nights: s.nights,
            total: s.total.map(Into::into),
        }
    }
}

/// A review of a completed stay.
pub struct Review(pub ReviewView);

/// The host's answer to a review.
#[derive(SimpleObject)]
pub struct ReviewResponse {
    pub comment: String,
    pub created_at: String,
}

#[Object]
impl Review {
    /// `rev_...`
    async fn id(&self) -> &str {
        &self.0.review_id
    }

    async fn listing_id(&self) -> &str {
        &self.0.listing_id
    }

    /// The guest who wrote it, by the name they had then.
    async fn author(&self) -> PartyValue {
        self.0.author.clone().into()
    }

    /// Stars, 1 to 5.
    async fn rating(&self) -> u8 {
        self.0.rating
    }

    async fn comment(&self) -> &str {
        &self.0.comment
    }

    async fn response(&self) -> Option<ReviewResponse> {
        self.0
            .response
            .as_ref()
            .map(|r| ReviewResponse { comment: r.comment.clone(), created_at: r.created_at.clone() })
    }

    /// RFC 3339, UTC.
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
}
