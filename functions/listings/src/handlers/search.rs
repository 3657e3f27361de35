//! Search by city, dates, guests and price.

use axum::extract::State;
use axum::response::Response;
use shared::caching::{self, IfNoneMatch};
use shared::cursor::CursorScope;
use shared::extract::Query;
use shared::listing;
use shared::openapi::IfNoneMatchHeader;
use shared::page::{self, ListBody, Partition};

use super::Result;
use crate::AppState;
use crate::rules::{Search, SearchParams};
use crate::store;
use crate::views::{self, SummaryView};

/// GET /v1/search: at most `search::MAX_QUERIES_PER_PAGE` Queries on GSI2 per page.
#[utoipa::path(get, path = "/v1/search", operation_id = "search_listings", tag = "listings",
    summary = "Search active listings by city, dates, guests and price, newest first (anyone)",
    description = "A page may hold fewer than `limit` listings while `next_cursor` is not null.",
    params(SearchParams, IfNoneMatchHeader),
    responses(
        (status = 200, description = "One page of listing summaries.", body = ListBody<SummaryView>),
        (status = 400, description = "invalid_cursor"),
    ))]
pub async fn search(
    State(st): State<AppState>,
    Query(params): Query<SearchParams>,
    conditions: IfNoneMatch,
) -> Result<Response> {
    // Tagged by the page itself: any listing of it changing (a price, a rating, a photo) or
    // another listing entering it changes the tag.
    caching::json(&conditions, caching::SEARCH, &search_page(&st, &params).await?)
}

/// One page of search results for `params` (GraphQL's `search` too: same parameters, same
/// signed cursors).
pub async fn search_page(st: &AppState, params: &SearchParams) -> Result<ListBody<SummaryView>> {
    let now = st.clock.now();
    let s = Search::parse(params, now.to_zoned(jiff::tz::TimeZone::UTC).date())?;
    let filters = s.cursor_filters();
    let scope = CursorScope { route: "/v1/search", caller: None, filters: &filters };
    // Search positions sort by listing id: no common prefix.
    let city = listing::city_partition(&s.city_key);
    let start = page::open_cursor(
        &st.cursors,
        s.cursor.as_deref(),
        &scope,
        &Partition::index(listing::SEARCH_INDEX, &city, ""),
    )?;
    let page = store::search::page(&st.table, &s, start).await?;
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
    ListBody::sealed(items, &st.cursors, &scope, page.next.as_ref())
}
