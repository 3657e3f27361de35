//! The `listings` context: hosts publish homes with photos and calendars; anyone reads them and
//! searches by city, dates, guests and price. `router` builds the HTTP surface from an explicit
//! `AppState`.
//!
//! Authorization, one rule everywhere: routes for hosts first require the `hosts` group (403
//! `host_required`, before any request to DynamoDB); a listing that is not the caller's is then
//! answered exactly like one that does not exist (404 `not_found`), for reads of the host's view
//! and for every write alike, so a host learns nothing about other hosts' listings (archived ones
//! included) beyond the public read.

pub mod domain;
pub mod photos;
pub mod search;
pub mod store;
pub mod views;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use shared::cursor::{CursorKey, CursorScope};
use shared::extract::{Json, Path, Query};
use shared::listing::{self, ListingItem, ListingStatus, PendingPhoto, Photo};
use shared::{ApiError, Caller, SharedClock, Table};

use crate::domain::{
    CalendarBody, CalendarChange, ListingBody, ListingFields, ListingPatch, PhotoBody, PhotoUpload, Search,
    SearchParams,
};
use crate::photos::PhotoStore;
use crate::store::CalendarFailure;
use crate::views::Audience;

/// Photos shown on a listing, at most.
pub const MAX_PHOTOS: usize = 30;
/// Upload URLs not yet completed (and not expired), at most.
pub const MAX_PENDING_PHOTOS: usize = 10;
/// Attempts of a read-modify-write that lost its optimistic lock to a concurrent write.
const SAVE_ATTEMPTS: usize = 4;

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub photos: Arc<PhotoStore>,
    pub clock: SharedClock,
    pub cursors: Arc<CursorKey>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/listings", post(create_listing))
        .route("/v1/listings/{id}", get(public_listing).patch(update_listing).delete(archive_listing))
        .route("/v1/me/listings", get(my_listings))
        .route("/v1/me/listings/{id}", get(my_listing))
        .route("/v1/listings/{id}/photos", post(start_photo_upload))
        .route("/v1/listings/{id}/photos/{photo_id}/complete", post(complete_photo_upload))
        .route("/v1/listings/{id}/photos/{photo_id}", axum::routing::delete(delete_photo))
        .route("/v1/listings/{id}/availability", get(availability))
        .route("/v1/listings/{id}/blocked-dates", put(change_calendar))
        .route("/v1/search", get(search_listings))
        .with_state(state)
}

type Result<T> = std::result::Result<T, ApiError>;

/// A caller in the `hosts` group; rejected with 403 before the body is read.
pub struct Host(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Host {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_host()?;
        Ok(Host(caller))
    }
}

fn listing_id(raw: &str) -> Result<&str> {
    shared::ids::parse_id("lst", raw).ok_or_else(ApiError::not_found)
}

fn photo_id(raw: &str) -> Result<&str> {
    shared::ids::parse_id("pho", raw).ok_or_else(ApiError::not_found)
}

fn archived() -> ApiError {
    ApiError::conflict("listing_archived", "The listing is archived; it can no longer be changed.")
}

/// The caller's listing (archived ones included), or 404 for any other.
async fn own_listing(st: &AppState, host: &Caller, raw_id: &str) -> Result<ListingItem> {
    let id = listing_id(raw_id)?;
    match store::get(&st.table, id).await? {
        Some(l) if l.host_id == host.user_id => Ok(l),
        _ => Err(ApiError::not_found()),
    }
}

/// Read-modify-write of the caller's listing under its `revision` lock: `change` computes the new
/// state from the current one (`None`: nothing to change), the write bumps `revision` (and
/// `version` when a field bookings depend on changed) and rewrites the search item in the same
/// transaction. Retried when a concurrent write came first.
async fn modify<F>(st: &AppState, host: &Caller, raw_id: &str, change: F) -> Result<ListingItem>
where
    F: FnMut(&ListingItem) -> Result<Option<ListingItem>>,
{
    modify_from(st, host, raw_id, None, change).await
}

/// `modify`, starting from a copy of the listing the handler already read (saves a GetItem;
/// a stale copy only costs a retry).
async fn modify_from<F>(
    st: &AppState,
    host: &Caller,
    raw_id: &str,
    mut read: Option<ListingItem>,
    mut change: F,
) -> Result<ListingItem>
where
    F: FnMut(&ListingItem) -> Result<Option<ListingItem>>,
{
    for _ in 0..SAVE_ATTEMPTS {
        let old = match read.take() {
            Some(l) => l,
            None => own_listing(st, host, raw_id).await?,
        };
        let Some(mut new) = change(&old)? else { return Ok(old) };
        if new == old {
            return Ok(old);
        }
        let now = st.clock.now();
        new.revision = old.revision + 1;
        new.updated_at = now.to_string();
        if store::changes_versioned_fields(&old, &new)? {
            new.version = old.version + 1;
        }
        match store::save(&st.table, &old, &new).await {
            Ok(()) => return Ok(new),
            Err(e) if e.failed_items().contains(&0) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The listing was changed by another request; try again."))
}

fn new_listing(listing_id: String, host: &Caller, host_name: String, f: ListingFields, now: Timestamp) -> ListingItem {
    let key = listing::key(&listing_id);
    ListingItem {
        pk: key.pk,
        sk: key.sk,
        item_type: listing::LISTING_ITEM_TYPE.to_owned(),
        gsi1pk: listing::host_partition(&host.user_id),
        gsi1sk: listing::host_sort_key(&listing_id),
        listing_id,
        host_id: host.user_id.clone(),
        host_name,
        status: ListingStatus::Active,
        version: 1,
        revision: 1,
        title: f.title,
        description: f.description,
        property_type: f.property_type,
        address: f.address,
        timezone: f.timezone,
        max_guests: f.max_guests,
        bedrooms: f.bedrooms,
        beds: f.beds,
        bathrooms: f.bathrooms,
        amenities: f.amenities,
        nightly_price: f.nightly_price,
        cleaning_fee: f.cleaning_fee,
        min_nights: f.min_nights,
        max_nights: f.max_nights,
        cancellation_policy: f.cancellation_policy,
        check_in_time: f.check_in_time,
        check_out_time: f.check_out_time,
        photos: BTreeMap::new(),
        pending_photos: BTreeMap::new(),
        rating_count: 0,
        rating_total: 0,
        created_at: now.to_string(),
        updated_at: now.to_string(),
    }
}

fn fields_of(l: &ListingItem) -> ListingFields {
    ListingFields {
        title: l.title.clone(),
        description: l.description.clone(),
        property_type: l.property_type.clone(),
        address: l.address.clone(),
        timezone: l.timezone.clone(),
        max_guests: l.max_guests,
        bedrooms: l.bedrooms,
        beds: l.beds,
        bathrooms: l.bathrooms,
        amenities: l.amenities.clone(),
        nightly_price: l.nightly_price,
        cleaning_fee: l.cleaning_fee,
        min_nights: l.min_nights,
        max_nights: l.max_nights,
        cancellation_policy: l.cancellation_policy,
        check_in_time: l.check_in_time.clone(),
        check_out_time: l.check_out_time.clone(),
    }
}

fn with_fields(l: &ListingItem, f: ListingFields) -> ListingItem {
    ListingItem {
        title: f.title,
        description: f.description,
        property_type: f.property_type,
        address: f.address,
        timezone: f.timezone,
        max_guests: f.max_guests,
        bedrooms: f.bedrooms,
        beds: f.beds,
        bathrooms: f.bathrooms,
        amenities: f.amenities,
        nightly_price: f.nightly_price,
        cleaning_fee: f.cleaning_fee,
        min_nights: f.min_nights,
        max_nights: f.max_nights,
        cancellation_policy: f.cancellation_policy,
        check_in_time: f.check_in_time,
        check_out_time: f.check_out_time,
        ..l.clone()
    }
}

/// POST /v1/listings: GetItem (host's name) + TransactWriteItems (listing + search item).
async fn create_listing(
    State(st): State<AppState>,
    Host(host): Host,
    Json(body): Json<ListingBody>,
) -> Result<impl IntoResponse> {
    let fields = ListingFields::parse(&body)?;
    let now = st.clock.now();
    let host_name = store::host_name(&st.table, &host.user_id).await?.unwrap_or_else(|| "Host".to_owned());
    let item = new_listing(shared::ids::new_id_at("lst", now), &host, host_name, fields, now);
    store::create(&st.table, &item).await?;
    let view = views::listing(&st.photos, &item, Audience::Host, now).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// GET /v1/listings/{id}: anyone; archived listings are 404. One GetItem.
async fn public_listing(State(st): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse> {
    let id = listing_id(&id)?;
    let l = store::get(&st.table, id).await?.filter(ListingItem::is_active).ok_or_else(ApiError::not_found)?;
    Ok(Json(views::listing(&st.photos, &l, Audience::Public, st.clock.now()).await?))
}

/// GET /v1/me/listings/{id}: the host's full view, archived too. One GetItem.
async fn my_listing(State(st): State<AppState>, Host(host): Host, Path(id): Path<String>) -> Result<impl IntoResponse> {
    let l = own_listing(&st, &host, &id).await?;
    Ok(Json(views::listing(&st.photos, &l, Audience::Host, st.clock.now()).await?))
}

/// PATCH /v1/listings/{id}: allow-listed fields. GetItem + TransactWriteItems (2 items).
async fn update_listing(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
    Json(patch): Json<ListingPatch>,
) -> Result<impl IntoResponse> {
    let l = modify(&st, &host, &id, |old| {
        if !old.is_active() {
            return Err(archived());
        }
        let fields = fields_of(old).patched(&patch)?;
        Ok(Some(with_fields(old, fields)))
    })
    .await?;
    Ok(Json(views::listing(&st.photos, &l, Audience::Host, st.clock.now()).await?))
}

/// DELETE /v1/listings/{id}: archive (idempotent). GetItem + TransactWriteItems (2 items); the
/// search item loses its GSI2 keys, so search never reads it again.
async fn archive_listing(State(st): State<AppState>, Host(host): Host, Path(id): Path<String>) -> Result<StatusCode> {
    modify(&st, &host, &id, |old| {
        Ok(old.is_active().then(|| ListingItem { status: ListingStatus::Archived, ..old.clone() }))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MyListingsParams {
    status: Option<ListingStatus>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct ListBody<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// GET /v1/me/listings: one Query on GSI1 per page, newest first; `status` filters.
async fn my_listings(
    State(st): State<AppState>,
    Host(host): Host,
    Query(params): Query<MyListingsParams>,
) -> Result<impl IntoResponse> {
    let limit = domain::parse_limit(params.limit)?;
    let filters = [("status", params.status.map(|s| s.as_str().to_owned()).unwrap_or_default())];
    let scope = CursorScope { route: "/v1/me/listings", caller: Some(&host.user_id), filters: &filters };
    let partition = listing::host_partition(&host.user_id);
    let start = match &params.cursor {
        Some(c) => {
            let key = st.cursors.open_key(c, &scope)?;
            if !store::is_position_in(&key, "GSI1PK", "GSI1SK", &partition) {
                return Err(invalid_cursor());
            }
            Some(key)
        }
        None => None,
    };
    let page = store::host_page(&st.table, &host.user_id, params.status, limit, start).await?;
    let now = st.clock.now();
    let mut items = Vec::with_capacity(page.items.len());
    for l in &page.items {
        items.push(views::listing(&st.photos, l, Audience::Host, now).await?);
    }
    let next_cursor = st.cursors.seal_key(&scope, page.last_key.as_ref())?;
    Ok(Json(ListBody { items, next_cursor }))
}

fn invalid_cursor() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
        "The cursor is invalid for this request; start again without it.",
    )
    .with_field("cursor", "invalid cursor")
}

#[derive(Serialize)]
struct UploadBody {
    photo_id: String,
    upload_url: String,
    /// Headers the PUT must carry (they are part of the signature).
    upload_headers: BTreeMap<String, String>,
    expires_at: String,
}

/// POST /v1/listings/{id}/photos: a pre-signed PUT bound to the type and length. GetItem +
/// TransactWriteItems (2 items: the pending photo is recorded on the listing).
async fn start_photo_upload(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
    Json(body): Json<PhotoBody>,
) -> Result<impl IntoResponse> {
    let upload = PhotoUpload::parse(&body)?;
    let now = st.clock.now();
    let photo_id = shared::ids::new_id_at("pho", now);
    let expires_at = now.checked_add(photos::UPLOAD_URL_TTL).map_err(anyhow::Error::from)?;
    let mut object_key = String::new();
    modify(&st, &host, &id, |old| {
        if !old.is_active() {
            return Err(archived());
        }
        let mut new = old.clone();
        new.pending_photos.retain(|_, p| p.expires_at.parse::<Timestamp>().is_ok_and(|t| t > now));
        if new.photos.len() + new.pending_photos.len() >= MAX_PHOTOS {
            return Err(ApiError::unprocessable(
                "too_many_photos",
                format!("A listing has at most {MAX_PHOTOS} photos."),
            ));
        }
        if new.pending_photos.len() >= MAX_PENDING_PHOTOS {
            return Err(ApiError::unprocessable(
                "too_many_photos",
                format!("At most {MAX_PENDING_PHOTOS} uploads may be in progress; complete or wait for them."),
            ));
        }
        object_key = photos::object_key(&old.listing_id, &photo_id);
        new.pending_photos.insert(
            photo_id.clone(),
            PendingPhoto {
                photo_id: photo_id.clone(),
                object_key: object_key.clone(),
                content_type: upload.content_type.to_owned(),
                size: upload.content_length,
                caption: upload.caption.clone(),
                expires_at: expires_at.to_string(),
            },
        );
        Ok(Some(new))
    })
    .await?;
    let url = st.photos.upload_url(&object_key, upload.content_type, upload.content_length, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadBody {
            photo_id,
            upload_url: url.url,
            upload_headers: url.headers.into_iter().collect(),
            expires_at: url.expires_at.to_string(),
        }),
    ))
}

#[derive(Serialize)]
struct PhotoBodyOut {
    photo_id: String,
    url: String,
    caption: Option<String>,
    content_type: String,
    size: u64,
    created_at: String,
}

async fn photo_out(st: &AppState, p: &Photo) -> Result<PhotoBodyOut> {
    Ok(PhotoBodyOut {
        photo_id: p.photo_id.clone(),
        url: st.photos.download_url(&p.object_key, st.clock.now()).await?,
        caption: p.caption.clone(),
        content_type: p.content_type.clone(),
        size: p.size,
        created_at: p.created_at.clone(),
    })
}

/// POST .../photos/{photo_id}/complete: HEAD the object (exists, announced type and size), then
/// show the photo. GetItem + (S3 HEAD) + TransactWriteItems (2 items). Idempotent.
async fn complete_photo_upload(
    State(st): State<AppState>,
    Host(host): Host,
    Path((id, pid)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    let pid = photo_id(&pid)?.to_owned();
    let current = own_listing(&st, &host, &id).await?;
    if let Some(done) = current.photos.get(&pid) {
        return Ok(Json(photo_out(&st, done).await?));
    }
    if !current.is_active() {
        return Err(archived());
    }
    let pending = current.pending_photos.get(&pid).cloned().ok_or_else(ApiError::not_found)?;
    let Some(info) = st.photos.head(&pending.object_key).await? else {
        return Err(ApiError::conflict(
            "upload_missing",
            "Nothing was uploaded to the upload URL yet; PUT the image first.",
        ));
    };
    if !photos::matches_announcement(&info, &pending.content_type, pending.size) {
        return Err(ApiError::conflict(
            "upload_mismatch",
            format!(
                "The uploaded object is not the announced {} of {} bytes; upload it again to the same URL.",
                pending.content_type, pending.size
            ),
        ));
    }
    let now = st.clock.now();
    let photo = Photo {
        photo_id: pid.clone(),
        object_key: pending.object_key.clone(),
        content_type: pending.content_type.clone(),
        size: pending.size,
        caption: pending.caption.clone(),
        created_at: now.to_string(),
    };
    let saved = modify_from(&st, &host, &id, Some(current), |old| {
        if old.photos.contains_key(&pid) {
            return Ok(None);
        }
        if !old.pending_photos.contains_key(&pid) {
            return Err(ApiError::not_found());
        }
        let mut new = old.clone();
        new.pending_photos.remove(&pid);
        new.photos.insert(pid.clone(), photo.clone());
        Ok(Some(new))
    })
    .await?;
    let shown = saved.photos.get(&pid).ok_or_else(|| anyhow::anyhow!("completed photo {pid} not on the listing"))?;
    Ok(Json(photo_out(&st, shown).await?))
}

/// DELETE .../photos/{photo_id}: off the listing (GetItem + TransactWriteItems), then the object.
async fn delete_photo(
    State(st): State<AppState>,
    Host(host): Host,
    Path((id, pid)): Path<(String, String)>,
) -> Result<StatusCode> {
    let pid = photo_id(&pid)?.to_owned();
    let mut object_key = None;
    modify(&st, &host, &id, |old| {
        let mut new = old.clone();
        let removed = new
            .photos
            .remove(&pid)
            .map(|p| p.object_key)
            .or_else(|| new.pending_photos.remove(&pid).map(|p| p.object_key));
        match removed {
            Some(k) => {
                object_key = Some(k);
                Ok(Some(new))
            }
            None => Err(ApiError::not_found()),
        }
    })
    .await?;
    if let Some(k) = object_key {
        // The photo is already off the listing; a leftover object is only storage.
        if let Err(e) = st.photos.delete(&k).await {
            tracing::warn!(error.cause_chain = ?e, "photo object not deleted");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeParams {
    from: Option<String>,
    to: Option<String>,
}

/// GET /v1/listings/{id}/availability: GetItem + one Query on the NIGHT range.
async fn availability(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<RangeParams>,
) -> Result<impl IntoResponse> {
    let id = listing_id(&id)?;
    let now = st.clock.now();
    let l = store::get(&st.table, id).await?.filter(ListingItem::is_active).ok_or_else(ApiError::not_found)?;
    let today = domain::today_in(&l.timezone, now);
    let (from, to) = domain::parse_availability_range(params.from.as_deref(), params.to.as_deref(), today)?;
    Ok(Json(calendar(&st, &l, from, to, now, false).await?))
}

async fn calendar(
    st: &AppState,
    l: &ListingItem,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
    now: Timestamp,
    show_blocks: bool,
) -> Result<views::AvailabilityView> {
    let dates = domain::nights(from, to);
    let last = dates.last().copied().unwrap_or(from);
    let taken = store::nights(&st.table, &l.listing_id, from, last).await?;
    Ok(views::AvailabilityView {
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
async fn change_calendar(
    State(st): State<AppState>,
    Host(host): Host,
    Path(id): Path<String>,
    Json(body): Json<CalendarBody>,
) -> Result<impl IntoResponse> {
    let l = own_listing(&st, &host, &id).await?;
    if !l.is_active() {
        return Err(archived());
    }
    let now = st.clock.now();
    let change = CalendarChange::parse(&body, domain::today_in(&l.timezone, now))?;
    let outcome = store::block(&st.table, &l.listing_id, &host.user_id, &change.block, now).await?;
    calendar_failure(outcome, "block", false)?;
    let outcome = store::unblock(&st.table, &l.listing_id, &host.user_id, &change.unblock).await?;
    calendar_failure(outcome, "unblock", !change.block.is_empty())?;
    let (first, last) = change.span().ok_or_else(|| anyhow::anyhow!("validated change names no date"))?;
    let to = last.tomorrow().map_err(anyhow::Error::from)?;
    Ok(Json(calendar(&st, &l, first, to, now, true).await?))
}

fn calendar_failure(outcome: std::result::Result<(), CalendarFailure>, list: &str, blocks_applied: bool) -> Result<()> {
    match outcome {
        Ok(()) => Ok(()),
        Err(CalendarFailure::ListingInactive) => Err(archived()),
        Err(CalendarFailure::Taken(indices)) => {
            let applied = if blocks_applied { " The dates to block were blocked; nothing was unblocked." } else { "" };
            Err(ApiError::conflict(
                "dates_unavailable",
                format!("A booking holds some of these nights; nothing in `{list}` was changed.{applied}"),
            )
            .with_errors(
                indices
                    .into_iter()
                    .map(|i| shared::FieldError::new(format!("{list}[{i}]"), "held or booked by a guest"))
                    .collect(),
            ))
        }
    }
}

/// GET /v1/search: at most `search::MAX_QUERIES_PER_PAGE` Queries on GSI2 per page.
async fn search_listings(State(st): State<AppState>, Query(params): Query<SearchParams>) -> Result<impl IntoResponse> {
    let now = st.clock.now();
    let s = Search::parse(&params, now.to_zoned(jiff::tz::TimeZone::UTC).date())?;
    let filters = s.cursor_filters();
    let scope = CursorScope { route: "/v1/search", caller: None, filters: &filters };
    let start = match &s.cursor {
        Some(c) => {
            let key = st.cursors.open_key(c, &scope)?;
            if !store::is_position_in(&key, "GSI2PK", "GSI2SK", &listing::city_partition(&s.city_key)) {
                return Err(invalid_cursor());
            }
            Some(key)
        }
        None => None,
    };
    let page = search::page(&st.table, &s, start).await?;
    let nights = s.stay.as_ref().map(|stay| u32::try_from(stay.nights.len()).unwrap_or(u32::MAX));
    let mut items = Vec::with_capacity(page.items.len());
    for item in &page.items {
        let price = match nights {
            Some(n) => {
                Some(listing::stay_price(item.nightly_price(), n, item.cleaning_fee()).map_err(anyhow::Error::from)?)
            }
            None => None,
        };
        items.push(views::summary(&st.photos, item, price.as_ref(), now).await?);
    }
    let next_cursor = st.cursors.seal_key(&scope, page.next.as_ref())?;
    Ok(Json(ListBody { items, next_cursor }))
}
