//! Search: a Query on GSI2 (`GSI2PK = CITY#<normalised city>`, newest first), every other
//! filter a FilterExpression on the search item, including availability (`NOT contains(
//! unavailable, :night)` for each night of the stay). Nothing is read per listing.
//!
//! The bound: a page makes at most `MAX_QUERIES_PER_PAGE` Query calls, each evaluating at most
//! `evaluated_per_query(limit)` items, whatever the number of listings in the city. A page stops
//! early once it has `limit` matches; one that ran out of queries returns what it found (maybe
//! nothing) with a cursor, as API.md allows.

use shared::Table;
use shared::listing::{self, SearchItem};
use shared::table::{Expr, Item, Page, Query, TableError};

use crate::rules::Search;

pub const MAX_QUERIES_PER_PAGE: usize = 3;
/// Items each Query evaluates (DynamoDB `Limit`, applied before the filter).
pub const MIN_EVALUATED_PER_QUERY: u32 = 50;

pub fn evaluated_per_query(limit: u32) -> u32 {
    limit.max(MIN_EVALUATED_PER_QUERY)
}

/// The FilterExpression for everything but the city (which is the key condition).
pub fn filter(s: &Search) -> Option<Expr> {
    let mut clauses: Vec<String> = Vec::new();
    let mut e = Expr::new("");
    if let Some(c) = &s.country {
        clauses.push("#country = :country".into());
        e = e.name("#country", "country").s(":country", c.clone());
    }
    if let Some(g) = s.guests {
        clauses.push("#max_guests >= :guests".into());
        e = e.name("#max_guests", "max_guests").n(":guests", i64::from(g));
    }
    if let Some(c) = s.currency {
        clauses.push("#currency = :currency".into());
        e = e.name("#currency", "currency").s(":currency", c.code());
    }
    if s.min_price.is_some() || s.max_price.is_some() {
        e = e.name("#price", "price");
    }
    if let Some(p) = s.min_price {
        clauses.push("#price >= :min_price".into());
        e = e.n(":min_price", p);
    }
    if let Some(p) = s.max_price {
        clauses.push("#price <= :max_price".into());
        e = e.n(":max_price", p);
    }
    if let Some(stay) = &s.stay {
        let n = i64::try_from(stay.nights.len()).unwrap_or(i64::MAX);
        clauses.push("#min_nights <= :nights AND #max_nights >= :nights".into());
        e = e.name("#min_nights", "min_nights").name("#max_nights", "max_nights").n(":nights", n);
        e = e.name("#unavailable", listing::UNAVAILABLE_ATTR);
        for (i, night) in stay.nights.iter().enumerate() {
            clauses.push(format!("NOT contains(#unavailable, :d{i})"));
            e = e.s(&format!(":d{i}"), night.to_string());
        }
    }
    if clauses.is_empty() {
        return None;
    }
    e.expression = clauses.join(" AND ");
    Some(e)
}

/// The position of `item` in GSI2, to resume right after it.
pub fn position_of(item: &SearchItem) -> Option<Item> {
    Some(super::index_position(
        &item.pk,
        &item.sk,
        ("GSI2PK", item.gsi2pk.as_deref()?),
        ("GSI2SK", item.gsi2sk.as_deref()?),
    ))
}

#[derive(Debug)]
pub struct SearchPage {
    pub items: Vec<SearchItem>,
    /// Where the next page starts; `None` when the city has no more.
    pub next: Option<Item>,
    pub queries: usize,
}

/// One page: at most `MAX_QUERIES_PER_PAGE` Queries, stopping at `limit` matches.
pub async fn page(table: &Table, s: &Search, start: Option<Item>) -> Result<SearchPage, TableError> {
    let limit = usize::try_from(s.limit).unwrap_or(usize::MAX);
    let filter = filter(s);
    let mut start = start;
    let mut items = Vec::new();
    for queries in 1..=MAX_QUERIES_PER_PAGE {
        let mut q = Query::partition("GSI2PK", listing::city_partition(&s.city_key))
            .index(listing::SEARCH_INDEX)
            .descending()
            .limit(evaluated_per_query(s.limit))
            .start(start.take());
        if let Some(f) = &filter {
            q = q.filter(f.clone());
        }
        let page: Page<SearchItem> = table.query(q).await?;
        let returned = page.items.len();
        for (i, item) in page.items.into_iter().enumerate() {
            items.push(item);
            if items.len() == limit {
                let next = if i + 1 < returned { items.last().and_then(position_of) } else { page.last_key };
                return Ok(SearchPage { items, next, queries });
            }
        }
        match page.last_key {
            None => return Ok(SearchPage { items, next: None, queries }),
            Some(k) if queries == MAX_QUERIES_PER_PAGE => return Ok(SearchPage { items, next: Some(k), queries }),
            Some(k) => start = Some(k),
        }
    }
    Ok(SearchPage { items, next: start, queries: MAX_QUERIES_PER_PAGE })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::SearchParams;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn search(q: &str) -> Search {
        let p: SearchParams = serde_urlencoded::from_str(q).unwrap();
        Search::parse(&p, "2026-03-01".parse().unwrap()).unwrap()
    }

    #[test]
    fn city_only_has_no_filter() {
        assert!(filter(&search("city=Lisboa")).is_none());
    }

    #[test]
    fn every_filter_is_a_clause() {
        let f = filter(&search(
            "city=x&country=PT&guests=3&min_price=100&max_price=900&currency=EUR&check_in=2026-03-10&check_out=2026-03-12",
        ))
        .unwrap();
        assert_eq!(
            f.expression,
            "#country = :country AND #max_guests >= :guests AND #currency = :currency AND #price >= :min_price \
             AND #price <= :max_price AND #min_nights <= :nights AND #max_nights >= :nights \
             AND NOT contains(#unavailable, :d0) AND NOT contains(#unavailable, :d1)"
        );
        assert_eq!(f.values[":country"], AttributeValue::S("PT".into()));
        assert_eq!(f.values[":guests"], AttributeValue::N("3".into()));
        assert_eq!(f.values[":currency"], AttributeValue::S("EUR".into()));
        assert_eq!(f.values[":nights"], AttributeValue::N("2".into()));
        assert_eq!(f.values[":d1"], AttributeValue::S("2026-03-11".into()));
        assert_eq!(f.names["#unavailable"], "unavailable");
        let only_max = filter(&search("city=x&max_price=5")).unwrap();
        assert_eq!(only_max.expression, "#currency = :currency AND #price <= :max_price");
        assert_eq!(only_max.values[":currency"], AttributeValue::S("USD".into()));
    }

    #[test]
    fn the_longest_stay_fits_dynamodbs_expression_limit() {
        let f = filter(&search(
            "city=x&country=PT&guests=3&min_price=1&max_price=2&currency=EUR&check_in=2026-03-10&check_out=2026-06-08",
        ))
        .unwrap();
        assert_eq!(f.values.len(), 6 + 90);
        assert!(f.expression.len() < 4096, "{}", f.expression.len());
    }

    #[test]
    fn evaluation_is_bounded() {
        assert_eq!(evaluated_per_query(1), 50);
        assert_eq!(evaluated_per_query(100), 100);
        assert!(MAX_QUERIES_PER_PAGE as u32 * evaluated_per_query(100) <= 300);
    }
}
