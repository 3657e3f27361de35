//! Persisted queries: the screens' queries (`functions/graphql/queries/*.graphql`) compiled in,
//! each known by the SHA-256 of its text (hex), as Apollo's persisted-query extension sends it.
//! `GET /v1/graphql` runs only these, so a GET is short, cacheable by its URL, and never
//! carries an arbitrary query. The list is fixed at build time: there is no registration of new
//! queries by clients (which would let anyone fill the registry).

use sha2::{Digest, Sha256};
use shared::ApiError;

pub struct Persisted {
    pub name: &'static str,
    pub text: &'static str,
    /// Variables to try it with (the explorer's examples), JSON.
    pub example_variables: &'static str,
}

pub const QUERIES: &[Persisted] = &[
    Persisted {
        name: "listing-page",
        text: include_str!("../queries/listing-page.graphql"),
        example_variables: r#"{"id": "lst_01jq7z2w5d8k4n1p0r3s6t9v2x", "reviews": 5}"#,
    },
    Persisted {
        name: "trips-page",
        text: include_str!("../queries/trips-page.graphql"),
        example_variables: r#"{"first": 10}"#,
    },
    Persisted {
        name: "search",
        text: include_str!("../queries/search.graphql"),
        example_variables: r#"{"city": "Lisbon", "first": 5}"#,
    },
];

/// The persisted queries with their hashes and example variables, as the explorer lists them.
pub fn catalogue() -> serde_json::Value {
    let entry = |q: &Persisted| {
        serde_json::json!({
            "name": q.name,
            "sha256Hash": hash(q.text),
            "query": q.text,
            "variables": serde_json::from_str::<serde_json::Value>(q.example_variables).unwrap_or_default(),
        })
    };
    serde_json::Value::Array(QUERIES.iter().map(entry).collect())
}

/// The hash clients send for `text`: lowercase hex SHA-256 of its bytes.
pub fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The persisted query with this hash.
pub fn find(sha256: &str) -> Option<&'static Persisted> {
    QUERIES.iter().find(|q| hash(q.text).eq_ignore_ascii_case(sha256))
}

/// `extensions.persistedQuery` of a request.
pub struct PersistedQuery;

impl PersistedQuery {
    /// The hash a request names (`{"persistedQuery":{"version":1,"sha256Hash":"..."}}`), if any.
    pub fn named_in(extensions: Option<&serde_json::Value>) -> Result<Option<String>, ApiError> {
        let Some(pq) = extensions.and_then(|e| e.get("persistedQuery")) else { return Ok(None) };
        if pq.get("version").and_then(serde_json::Value::as_u64) != Some(1) {
            return Err(ApiError::invalid_field("extensions", "persistedQuery.version must be 1"));
        }
        match pq.get("sha256Hash").and_then(serde_json::Value::as_str) {
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Some(h.to_owned())),
            _ => Err(ApiError::invalid_field("extensions", "persistedQuery.sha256Hash must be 64 hex digits")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_are_found_by_their_hash() {
        for q in QUERIES {
            assert_eq!(find(&hash(q.text)).map(|f| f.name), Some(q.name));
            assert_eq!(find(&hash(q.text).to_uppercase()).map(|f| f.name), Some(q.name));
        }
        assert!(find(&hash("{ me { id } }")).is_none());
        assert_eq!(hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        for q in QUERIES {
            assert!(serde_json::from_str::<serde_json::Value>(q.example_variables).unwrap().is_object(), "{}", q.name);
        }
    }

    #[test]
    fn the_extension_is_read_strictly() {
        let h = "a".repeat(64);
        let ok = json!({"persistedQuery": {"version": 1, "sha256Hash": h}});
        assert_eq!(PersistedQuery::named_in(Some(&ok)).unwrap(), Some(h));
        assert_eq!(PersistedQuery::named_in(None).unwrap(), None);
        assert_eq!(PersistedQuery::named_in(Some(&json!({}))).unwrap(), None);
        let v2 = json!({"persistedQuery": {"version": 2, "sha256Hash": "a".repeat(64)}});
        assert!(PersistedQuery::named_in(Some(&v2)).is_err());
        let short = json!({"persistedQuery": {"version": 1, "sha256Hash": "abc"}});
        assert!(PersistedQuery::named_in(Some(&short)).is_err());
    }
}
