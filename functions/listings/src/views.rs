//! Response bodies. The public view (listing page, search) shows the address as city, region and
//! country only; the host's view adds the exact address and the `version`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use shared::listing::{
    Address, ListingFields, ListingItem, ListingStatus, Nullable, Photo, Rating, SearchItem, StayPrice,
};
use shared::night::Night;
use shared::{ApiError, Money};

use crate::photos::{PhotoStore, UploadUrl};

#[derive(Debug, Serialize)]
pub struct RatingView {
    pub average: Option<f64>,
    pub count: u64,
}

impl From<Rating> for RatingView {
    fn from(r: Rating) -> Self {
        Self { average: r.average(), count: r.count }
    }
}

#[derive(Debug, Serialize)]
pub struct PublicAddress {
    pub city: String,
    pub region: Option<String>,
    pub country: String,
}

/// The exact address (host view): absent optional parts are `null`, as in the public view.
#[derive(Debug, Serialize)]
pub struct FullAddress {
    pub line1: String,
    pub city: String,
    pub region: Option<String>,
    pub country: String,
    pub postal_code: Option<String>,
}

impl From<&Address> for FullAddress {
    fn from(a: &Address) -> Self {
        Self {
            line1: a.line1.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            country: a.country.clone(),
            postal_code: a.postal_code.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AddressView {
    Full(FullAddress),
    Public(PublicAddress),
}

#[derive(Debug, Serialize)]
pub struct PhotoView {
    pub photo_id: String,
    pub url: String,
    pub caption: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ListingView {
    pub listing_id: String,
    pub host_id: String,
    pub host_name: String,
    pub status: ListingStatus,
    /// The host-editable fields as stored, but the address in the audience's shape and an
    /// absent cleaning fee as `null`.
    #[serde(flatten)]
    pub fields: ListingFields<AddressView, Nullable<Money>>,
    pub photos: Vec<PhotoView>,
    pub rating: RatingView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
}

/// Who is looking: the host sees the exact address and the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Host,
}

pub async fn listing(
    photos: &PhotoStore,
    l: &ListingItem,
    audience: Audience,
    now: Timestamp,
) -> Result<ListingView, ApiError> {
    let mut photo_views = Vec::with_capacity(l.photos.len());
    for p in l.photos_in_order() {
        photo_views.push(PhotoView {
            photo_id: p.photo_id.clone(),
            url: photos.download_url(&p.object_key, now).await?,
            caption: p.caption.clone(),
        });
    }
    let address = match audience {
        Audience::Host => AddressView::Full((&l.fields.address).into()),
        Audience::Public => AddressView::Public(PublicAddress {
            city: l.fields.address.city.clone(),
            region: l.fields.address.region.clone(),
            country: l.fields.address.country.clone(),
        }),
    };
    let cleaning_fee = Nullable(l.fields.cleaning_fee);
    Ok(ListingView {
        listing_id: l.listing_id.clone(),
        host_id: l.host_id.clone(),
        host_name: l.host_name.clone(),
        status: l.status,
        fields: l.fields.clone().reshaped(address, cleaning_fee),
        photos: photo_views,
        rating: l.rating().into(),
        version: (audience == Audience::Host).then_some(l.version),
        created_at: l.created_at.clone(),
        updated_at: l.updated_at.clone(),
    })
}

/// A search result: the public summary, plus the stay's price when dates were given.
#[derive(Debug, Serialize)]
pub struct SummaryView {
    pub listing_id: String,
    pub title: String,
    pub property_type: String,
    pub address: PublicAddress,
    pub max_guests: u32,
    pub bedrooms: u32,
    pub beds: u32,
    pub bathrooms: u32,
    pub nightly_price: Money,
    pub cleaning_fee: Option<Money>,
    pub min_nights: u32,
    pub max_nights: u32,
    pub rating: RatingView,
    pub photo_url: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nights: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
}

pub async fn summary(
    photos: &PhotoStore,
    s: &SearchItem,
    stay: Option<&StayPrice>,
    now: Timestamp,
) -> Result<SummaryView, ApiError> {
    let photo_url = match &s.cover_photo {
        Some(k) => Some(photos.download_url(k, now).await?),
        None => None,
    };
    Ok(SummaryView {
        listing_id: s.listing_id.clone(),
        title: s.title.clone(),
        property_type: s.property_type.clone(),
        address: PublicAddress { city: s.city.clone(), region: s.region.clone(), country: s.country.clone() },
        max_guests: s.max_guests,
        bedrooms: s.bedrooms,
        beds: s.beds,
        bathrooms: s.bathrooms,
        nightly_price: s.nightly_price(),
        cleaning_fee: s.cleaning_fee(),
        min_nights: s.min_nights,
        max_nights: s.max_nights,
        rating: s.rating().into(),
        photo_url,
        created_at: s.created_at.clone(),
        nights: stay.map(|p| p.nights),
        total: stay.map(|p| p.total),
    })
}

#[derive(Debug, Serialize, PartialEq)]
pub struct NightView {
    pub date: String,
    pub available: bool,
    /// Set for a blocked night (so the host's calendar can tell blocks from bookings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    pub price: Money,
}

#[derive(Debug, Serialize)]
pub struct AvailabilityView {
    pub listing_id: String,
    pub from: String,
    pub to: String,
    pub nights: Vec<NightView>,
}

/// The calendar `[from, to)` from the NIGHT items found in it. A night is available when it has
/// no item or only a hold that expired before `now`. `show_blocks` marks host blocks.
pub fn availability(
    l: &ListingItem,
    dates: &[jiff::civil::Date],
    taken: &[Night],
    now: Timestamp,
    show_blocks: bool,
) -> Vec<NightView> {
    dates
        .iter()
        .map(|d| {
            let date = d.to_string();
            let night = taken.iter().find(|n| n.date == date);
            let available = night.is_none_or(|n| !n.is_taken_at(now)) && l.is_active();
            let blocked = show_blocks.then(|| night.is_some_and(|n| n.kind == shared::night::NightKind::Blocked));
            NightView { date, available, blocked, price: l.fields.nightly_price }
        })
        .collect()
}

/// The answer to `POST /v1/listings/{id}/photos`.
#[derive(Debug, Serialize)]
pub struct UploadBody {
    pub photo_id: String,
    pub upload_url: String,
    /// Headers the PUT must carry (they are part of the signature).
    pub upload_headers: BTreeMap<String, String>,
    pub expires_at: String,
}

impl UploadBody {
    pub fn new(photo_id: String, url: UploadUrl) -> Self {
        Self {
            photo_id,
            upload_url: url.url,
            upload_headers: url.headers.into_iter().collect(),
            expires_at: url.expires_at.to_string(),
        }
    }
}

/// A completed photo upload, as `POST .../photos/{photo_id}/complete` answers it.
#[derive(Debug, Serialize)]
pub struct CompletedPhotoView {
    pub photo_id: String,
    pub url: String,
    pub caption: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub created_at: String,
}

pub async fn photo(photos: &PhotoStore, p: &Photo, now: Timestamp) -> Result<CompletedPhotoView, ApiError> {
    Ok(CompletedPhotoView {
        photo_id: p.photo_id.clone(),
        url: photos.download_url(&p.object_key, now).await?,
        caption: p.caption.clone(),
        content_type: p.content_type.clone(),
        size: p.size,
        created_at: p.created_at.clone(),
    })
}
