//! One function per route, thin: extract, apply the rules, store, answer with a view.
//!
//! Authorization, one rule everywhere: routes for hosts first require the `hosts` group (403
//! `host_required`, before any request to DynamoDB); a listing that is not the caller's is then
//! answered exactly like one that does not exist (404 `not_found`), for reads of the host's view
//! and for every write alike, so a host learns nothing about other hosts' listings (archived ones
//! included) beyond the public read.

pub mod calendar;
pub mod calendar_sync;
pub mod listings;
pub mod photos;
pub mod search;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use shared::listing::ListingItem;
use shared::{ApiError, Caller};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::store::{self, SaveError};

type Result<T> = std::result::Result<T, ApiError>;

/// The routes of this context, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<crate::AppState> {
    OpenApiRouter::new()
        .routes(routes!(listings::create))
        .routes(routes!(listings::public, listings::update, listings::archive))
        .routes(routes!(listings::my_list))
        .routes(routes!(listings::mine))
        .routes(routes!(photos::start_upload))
        .routes(routes!(photos::complete_upload))
        .routes(routes!(photos::delete))
        .routes(routes!(calendar::availability))
        .routes(routes!(calendar::change))
        .routes(routes!(search::search))
        .routes(routes!(calendar_sync::feed))
        .routes(routes!(calendar_sync::rotate_token, calendar_sync::get_token))
        .routes(routes!(calendar_sync::create_import, calendar_sync::list_imports))
        .routes(routes!(calendar_sync::delete_import))
}

/// Attempts of a read-modify-write that lost its optimistic lock to a concurrent write.
const SAVE_ATTEMPTS: usize = 4;

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
            Err(SaveError::Stale) => continue,
            Err(SaveError::Table(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The listing was changed by another request; try again."))
}
