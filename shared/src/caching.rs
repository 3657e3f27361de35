//! HTTP caching, in one place: the `Cache-Control` policy of every kind of route (named
//! constants, docs/api.md "Caching" says why each), strong `ETag`s, `If-None-Match` and the
//! `304 Not Modified` answer, and the rule the request layer (`crate::http`) applies to every
//! answer: `private, no-store` on anything a signed-in caller's route answers, `no-store` on any
//! other answer that chose no policy (errors, tokens, writes).
//!
//! Browsers, mobile HTTP stacks and the CDN in front of the API (the template's optional
//! CloudFront distribution) then keep the public reads, and revalidate them with one cheap
//! request: nothing is ever purged, tags change with what the body depends on.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// A listing, its reviews, a public profile: a minute fresh, then served stale for five more
/// while one request revalidates (a host's edit shows within a minute; a 304 costs one small read).
pub const PUBLIC_ITEM: &str = "public, max-age=60, stale-while-revalidate=300";
/// A search page: thirty seconds, no stale serving (new listings and prices show quickly; the
/// booking flow re-checks everything anyway).
pub const SEARCH: &str = "public, max-age=30";
/// A listing's calendar: a booking changes it, so ten seconds and revalidate; a night shown free
/// that was just booked is refused by the booking itself (409 `dates_unavailable`).
pub const AVAILABILITY: &str = "public, max-age=10, must-revalidate";
/// A listing's calendar feed (`calendar.ics?token=`): its URL is a secret, so no shared cache
/// keeps it (a rotated token is a 404 at once); calendar apps poll it, five minutes is plenty.
pub const CALENDAR_FEED: &str = "private, max-age=300, must-revalidate";
/// The OpenAPI document and its page's assets: they change only with a deploy.
pub const DOCUMENT: &str = "public, max-age=300, must-revalidate";
/// Every answer of a route behind the authorizer: one person's data, never kept by anyone.
pub const PRIVATE: &str = "private, no-store";
/// Any other answer that chose no policy (errors, sign-in tokens, writes).
pub const NO_STORE: &str = "no-store";

/// A strong entity tag, quoted as it goes on the wire (`"3f1c..."`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ETag(String);

impl ETag {
    /// The tag of these bytes (a body): 128 bits of their SHA-256.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self::from_digest(Sha256::digest(bytes).as_slice())
    }

    /// The tag of what a body is built from (a kind, an id, a version, ...): each part is
    /// length-prefixed, so `["ab", "c"]` and `["a", "bc"]` differ.
    pub fn of_parts(parts: &[&str]) -> Self {
        let mut hash = Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        Self::from_digest(hash.finalize().as_slice())
    }

    fn from_digest(digest: &[u8]) -> Self {
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Self(format!("\"{hex}\""))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether one `If-None-Match` value names this tag: `*`, or a comma-separated list holding
    /// it, weak (`W/"..."`) or strong (RFC 9110 13.1.2 compares weakly for GET).
    pub fn matched_by(&self, if_none_match: &str) -> bool {
        if_none_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.0)
    }
}

/// The request's `If-None-Match` values (every header line); empty without one. An extractor
/// that never refuses: a garbled value simply matches nothing.
#[derive(Debug, Clone, Default)]
pub struct IfNoneMatch(Vec<String>);

impl IfNoneMatch {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self(headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect())
    }

    /// Whether the client sent any validator (worth a cheap check before the full read).
    pub fn is_present(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether the client already holds the version tagged `etag`.
    pub fn matches(&self, etag: &ETag) -> bool {
        self.0.iter().any(|v| etag.matched_by(v))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// `304 Not Modified`: no body, the tag and the policy (RFC 9110 15.4.5: the headers a 200
/// would have carried for caching).
pub fn not_modified(etag: &ETag, policy: &'static str) -> Response {
    let mut res = StatusCode::NOT_MODIFIED.into_response();
    set_validators(res.headers_mut(), etag, policy);
    res
}

/// `body` with `content_type`, its tag and `policy`; a 304 when the client has that tag.
pub fn tagged(
    conditions: &IfNoneMatch,
    policy: &'static str,
    etag: ETag,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    if conditions.matches(&etag) {
        return not_modified(&etag, policy);
    }
    let mut res = ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body.into()).into_response();
    set_validators(res.headers_mut(), &etag, policy);
    res
}

/// A JSON body tagged by its own bytes, with `policy`; a 304 when the client has it. For
/// bodies that depend on more than one item's version (a page, a calendar).
pub fn json<T: Serialize>(conditions: &IfNoneMatch, policy: &'static str, body: &T) -> Result<Response, ApiError> {
    let bytes = to_json(body)?;
    let etag = ETag::of_bytes(&bytes);
    Ok(tagged(conditions, policy, etag, "application/json", bytes))
}

/// A JSON body with a tag known beforehand (from the item's version): the same tag a
/// cheap read gave for the 304.
pub fn json_tagged<T: Serialize>(
    conditions: &IfNoneMatch,
    policy: &'static str,
    etag: ETag,
    body: &T,
) -> Result<Response, ApiError> {
    Ok(tagged(conditions, policy, etag, "application/json", to_json(body)?))
}

fn to_json<T: Serialize>(body: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(body).map_err(|e| ApiError::Unexpected(anyhow::Error::new(e).context("serialise response body")))
}

fn set_validators(headers: &mut HeaderMap, etag: &ETag, policy: &'static str) {
    if let Ok(v) = HeaderValue::from_str(etag.as_str()) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
}

/// The rule for every answer (`crate::http`'s request layer): a route behind the authorizer
/// (`authorized`: the request carries JWT claims) answers `private, no-store` whatever the
/// handler said; any other answer without a policy gets `no-store`.
pub fn apply_default_policy(headers: &mut HeaderMap, authorized: bool) {
    if authorized {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(PRIVATE));
    } else if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(values: &[&str]) -> IfNoneMatch {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        IfNoneMatch::from_headers(&headers)
    }

    #[test]
    fn tags_are_strong_quoted_and_stable() {
        let a = ETag::of_bytes(b"{\"a\":1}");
        assert_eq!(a, ETag::of_bytes(b"{\"a\":1}"));
        assert_ne!(a, ETag::of_bytes(b"{\"a\":2}"));
        assert!(a.as_str().starts_with('"') && a.as_str().ends_with('"') && a.as_str().len() == 34, "{a:?}");
        assert!(!a.as_str().starts_with("W/"));
        assert_ne!(ETag::of_parts(&["ab", "c"]), ETag::of_parts(&["a", "bc"]));
        assert_eq!(ETag::of_parts(&["listing", "7"]), ETag::of_parts(&["listing", "7"]));
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_star_and_several_lines() {
        let tag = ETag::of_bytes(b"x");
        let t = tag.as_str();
        assert!(conditions(&[t]).matches(&tag));
        assert!(conditions(&[&format!("W/{t}")]).matches(&tag));
        assert!(conditions(&[&format!("\"other\", {t}")]).matches(&tag));
        assert!(conditions(&["\"other\"", t]).matches(&tag));
        assert!(conditions(&["*"]).matches(&tag));
        assert!(!conditions(&["\"other\""]).matches(&tag));
        assert!(!conditions(&[t.trim_matches('"')]).matches(&tag), "an unquoted tag is not the tag");
        assert!(!conditions(&[]).matches(&tag));
        assert!(!conditions(&[]).is_present() && conditions(&["*"]).is_present());
    }

    #[tokio::test]
    async fn a_match_is_a_304_without_a_body_but_with_the_tag_and_policy() {
        let body = serde_json::json!({"title": "Loft"});
        let first = json(&IfNoneMatch::default(), PUBLIC_ITEM, &body).unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CACHE_CONTROL], PUBLIC_ITEM);
        assert_eq!(first.headers()[header::CONTENT_TYPE], "application/json");
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();

        let again = json(&conditions(&[&etag]), PUBLIC_ITEM, &body).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        assert_eq!(again.headers()[header::CACHE_CONTROL], PUBLIC_ITEM);
        assert!(!again.headers().contains_key(header::CONTENT_TYPE));
        let bytes = axum::body::to_bytes(again.into_body(), 1024).await.unwrap();
        assert!(bytes.is_empty());

        let changed = json(&conditions(&[&etag]), PUBLIC_ITEM, &serde_json::json!({"title": "Barn"})).unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(changed.headers()[header::ETAG], etag.as_str());
    }

    #[test]
    fn a_tag_known_beforehand_is_the_one_sent() {
        let tag = ETag::of_parts(&["listing", "lst_1", "3"]);
        let res = json_tagged(&conditions(&[tag.as_str()]), PUBLIC_ITEM, tag.clone(), &1).unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        let res = json_tagged(&IfNoneMatch::default(), SEARCH, tag.clone(), &1).unwrap();
        assert_eq!((res.status(), res.headers()[header::ETAG].to_str().unwrap()), (StatusCode::OK, tag.as_str()));
    }

    #[test]
    fn private_answers_are_never_stored_and_others_default_to_no_store() {
        let mut public = HeaderMap::new();
        public.insert(header::CACHE_CONTROL, HeaderValue::from_static(PUBLIC_ITEM));
        let mut private = public.clone();
        apply_default_policy(&mut private, true);
        assert_eq!(private[header::CACHE_CONTROL], PRIVATE);
        apply_default_policy(&mut public, false);
        assert_eq!(public[header::CACHE_CONTROL], PUBLIC_ITEM, "a public read keeps its policy");
        let mut bare = HeaderMap::new();
        apply_default_policy(&mut bare, false);
        assert_eq!(bare[header::CACHE_CONTROL], NO_STORE);
    }
}
