//! List endpoints: the `limit` parameter, the cursor opened into a start key that is checked to
//! be a position in the partition the list reads, and the `{ items, next_cursor }` body.
//!
//! The position check matters because a cursor is only tamper-proof, not meaningless: a cursor
//! sealed for this route and caller still carries whatever key it was sealed with, and a start
//! key outside the queried partition makes DynamoDB answer 400 ValidationException (a 500 here)
//! instead of the client's 400 `invalid_cursor`.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::cursor::{CursorKey, CursorScope};
use crate::error::{ApiError, FieldError};
use crate::keys::{PK, SK};
use crate::table::Item;

/// Items per page when the request gives no `limit`.
pub const DEFAULT_LIMIT: u32 = 20;
/// The largest `limit` a list accepts.
pub const MAX_LIMIT: u32 = 100;

/// `limit`: absent -> [`DEFAULT_LIMIT`]; 1 to [`MAX_LIMIT`]; otherwise 400 `validation_failed`
/// on field `limit`.
pub fn parse_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    check_limit(limit).map_err(|e| ApiError::validation(vec![e]))
}

/// [`parse_limit`] as a field error, for a parser that reports every bad field at once.
pub fn check_limit(limit: Option<u32>) -> Result<u32, FieldError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(FieldError::new("limit", format!("must be 1 to {MAX_LIMIT}"))),
    }
}

/// The 400 `invalid_cursor` answer, for a cursor that is forged, replayed elsewhere, or not a
/// position in the list's partition.
pub fn invalid_cursor() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_cursor",
        "The cursor is invalid for this request; start again without it.",
    )
    .with_field("cursor", "invalid cursor")
}

/// The partition a list reads: on the table (`PK = pk AND begins_with(SK, sk_prefix)`) or on
/// an index (`<index>PK = pk AND begins_with(<index>SK, sk_prefix)`). `sk_prefix` may be `""`
/// when the list's sort keys have no common prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition<'a> {
    Table { pk: &'a str, sk_prefix: &'a str },
    Index { index: &'a str, pk: &'a str, sk_prefix: &'a str },
}

impl<'a> Partition<'a> {
    pub fn table(pk: &'a str, sk_prefix: &'a str) -> Self {
        Self::Table { pk, sk_prefix }
    }

    /// `index` is the index name (`GSI1`); its key attributes are `GSI1PK` and `GSI1SK`.
    pub fn index(index: &'a str, pk: &'a str, sk_prefix: &'a str) -> Self {
        Self::Index { index, pk, sk_prefix }
    }
}

/// Whether `key` (an opened cursor) is a position in `partition`: exactly the key attributes
/// of a query there (`{PK, SK}` on the table, `{PK, SK, <index>PK, <index>SK}` on an index),
/// all strings, the partition key equal to the partition's, the sort key starting with its
/// prefix.
pub fn is_position_in(key: &Item, partition: &Partition) -> bool {
    let string = |attr: &str| match key.get(attr) {
        Some(AttributeValue::S(s)) => Some(s.as_str()),
        _ => None,
    };
    let in_partition = |pk_attr: &str, sk_attr: &str, pk: &str, sk_prefix: &str| {
        string(pk_attr) == Some(pk) && string(sk_attr).is_some_and(|sk| sk.starts_with(sk_prefix))
    };
    match *partition {
        Partition::Table { pk, sk_prefix } => key.len() == 2 && in_partition(PK, SK, pk, sk_prefix),
        Partition::Index { index, pk, sk_prefix } => {
            key.len() == 4
                && string(PK).is_some()
                && string(SK).is_some()
                && in_partition(&format!("{index}PK"), &format!("{index}SK"), pk, sk_prefix)
        }
    }
}

/// The start key a request's `cursor` carries (`None` without one), checked to be a position
/// in `partition`; otherwise 400 `invalid_cursor`.
pub fn open_cursor(
    cursors: &CursorKey,
    cursor: Option<&str>,
    scope: &CursorScope,
    partition: &Partition,
) -> Result<Option<Item>, ApiError> {
    let Some(token) = cursor else { return Ok(None) };
    let key = cursors.open_key(token, scope)?;
    if is_position_in(&key, partition) { Ok(Some(key)) } else { Err(invalid_cursor()) }
}

/// A list response: one page of items and the cursor of the next page (`null` on the last).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ListBody<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page. Opaque and signed: a
    /// cursor from another list, caller or filter is refused with 400 `invalid_cursor`.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> ListBody<T> {
    /// `items` and the cursor sealed over `scope` from the page's `last_key`.
    pub fn sealed(
        items: Vec<T>,
        cursors: &CursorKey,
        scope: &CursorScope,
        last_key: Option<&Item>,
    ) -> Result<Self, ApiError> {
        Ok(Self { items, next_cursor: cursors.seal_key(scope, last_key)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn item(attrs: &[(&str, &str)]) -> Item {
        attrs.iter().map(|(a, v)| ((*a).to_owned(), AttributeValue::S((*v).to_owned()))).collect()
    }

    fn cursors() -> CursorKey {
        CursorKey::new(&SecretString::from("k".repeat(32))).unwrap()
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(parse_limit(Some(1)).unwrap(), 1);
        assert_eq!(parse_limit(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        for bad in [0, MAX_LIMIT + 1, u32::MAX] {
            let e = parse_limit(Some(bad)).unwrap_err();
            assert_eq!((e.status().as_u16(), e.code()), (400, "validation_failed"));
            let p = e.problem().unwrap();
            assert_eq!(p.errors, vec![crate::FieldError::new("limit", "must be 1 to 100")]);
        }
    }

    #[test]
    fn table_positions() {
        let inbox = Partition::table("INBOX#a", "NOTIFICATION#");
        assert!(is_position_in(&item(&[("PK", "INBOX#a"), ("SK", "NOTIFICATION#ntf_1")]), &inbox));
        assert!(!is_position_in(&item(&[("PK", "INBOX#b"), ("SK", "NOTIFICATION#ntf_1")]), &inbox));
        assert!(!is_position_in(&item(&[("PK", "INBOX#a"), ("SK", "PROFILE")]), &inbox));
        assert!(!is_position_in(&item(&[("PK", "INBOX#a")]), &inbox));
        assert!(!is_position_in(&item(&[("PK", "INBOX#a"), ("SK", "NOTIFICATION#1"), ("x", "y")]), &inbox));
        let mut number = item(&[("PK", "INBOX#a")]);
        number.insert("SK".to_owned(), AttributeValue::N("1".to_owned()));
        assert!(!is_position_in(&number, &Partition::table("INBOX#a", "")));
    }

    #[test]
    fn index_positions() {
        let reviews = Partition::index("GSI1", "LISTING#lst_1", "REVIEW#");
        let good = item(&[("PK", "REVIEW#r"), ("SK", "REVIEW"), ("GSI1PK", "LISTING#lst_1"), ("GSI1SK", "REVIEW#r")]);
        assert!(is_position_in(&good, &reviews));
        assert!(!is_position_in(&good, &Partition::index("GSI1", "LISTING#lst_2", "REVIEW#")));
        assert!(!is_position_in(&good, &Partition::index("GSI2", "LISTING#lst_1", "REVIEW#")));
        assert!(!is_position_in(&good, &Partition::index("GSI1", "LISTING#lst_1", "BOOKING#")));
        assert!(!is_position_in(&good, &Partition::table("REVIEW#r", "")), "an index position is not a table one");
        let mut extra = good.clone();
        extra.insert("x".to_owned(), AttributeValue::S("y".to_owned()));
        assert!(!is_position_in(&extra, &reviews));
        let mut numeric_pk = good.clone();
        numeric_pk.insert("PK".to_owned(), AttributeValue::N("1".to_owned()));
        assert!(!is_position_in(&numeric_pk, &reviews));
        let no_sk = item(&[("PK", "REVIEW#r"), ("x", "y"), ("GSI1PK", "LISTING#lst_1"), ("GSI1SK", "REVIEW#r")]);
        assert!(!is_position_in(&no_sk, &reviews));
        assert!(is_position_in(&good, &Partition::index("GSI1", "LISTING#lst_1", "")));
    }

    #[test]
    fn cursors_open_to_positions_in_the_partition_only() {
        let scope = CursorScope { route: "/v1/me/trips", caller: Some("u-1"), filters: &[] };
        let trips = Partition::index("GSI1", "GUEST#u-1", "BOOKING#");
        assert_eq!(open_cursor(&cursors(), None, &scope, &trips).unwrap(), None);

        let mine = item(&[("PK", "BOOKING#b"), ("SK", "BOOKING"), ("GSI1PK", "GUEST#u-1"), ("GSI1SK", "BOOKING#b")]);
        let token = cursors().seal_key(&scope, Some(&mine)).unwrap().unwrap();
        assert_eq!(open_cursor(&cursors(), Some(&token), &scope, &trips).unwrap(), Some(mine));

        let theirs = item(&[("PK", "BOOKING#c"), ("SK", "BOOKING"), ("GSI1PK", "GUEST#u-2"), ("GSI1SK", "BOOKING#c")]);
        let token = cursors().seal_key(&scope, Some(&theirs)).unwrap().unwrap();
        for bad in [token.as_str(), "garbage"] {
            let e = open_cursor(&cursors(), Some(bad), &scope, &trips).unwrap_err();
            assert_eq!((e.status().as_u16(), e.code()), (400, "invalid_cursor"));
            assert_eq!(e.problem().unwrap().errors, vec![crate::FieldError::new("cursor", "invalid cursor")]);
        }
    }

    #[test]
    fn list_body_seals_the_next_cursor() {
        let scope = CursorScope { route: "/v1/me/notifications", caller: Some("u-1"), filters: &[] };
        let last = item(&[("PK", "INBOX#u-1"), ("SK", "NOTIFICATION#ntf_1")]);
        let body = ListBody::sealed(vec![1, 2], &cursors(), &scope, Some(&last)).unwrap();
        let token = body.next_cursor.clone().unwrap();
        assert_eq!(cursors().open_key(&token, &scope).unwrap(), last);
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["items"], serde_json::json!([1, 2]));
        let end = ListBody::sealed(Vec::<u8>::new(), &cursors(), &scope, None).unwrap();
        assert_eq!(serde_json::to_value(&end).unwrap(), serde_json::json!({"items": [], "next_cursor": null}));
    }
}
