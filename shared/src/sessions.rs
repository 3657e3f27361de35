//! Ended sessions: an access token issued at or before the user's last sign-out (or password
//! reset) is refused on every private route of every context.
//!
//! API Gateway's JWT authorizer checks signature, issuer, expiry and client, never revocation.
//! So `users` records `tokens_revoked_at` (epoch seconds) on the profile, and the `Caller`
//! extractor compares the token's `iat` with it, read through a small per-process cache: one
//! strongly consistent GetItem of that one attribute per user per `CACHE_TTL` per warm instance.
//! The rule's bound: a token is refused everywhere at most `CACHE_TTL` after the revocation was
//! written (a cached value was read before the write, and is at most `CACHE_TTL` old).
//! docs/decisions.md, "Access tokens after sign-out", has the measured cost and the alternatives.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::ApiError;
use crate::identity::Caller;
use crate::keys;
use crate::table::{Table, count_ddb_requests};

/// The profile attribute `users` sets at sign-out and password reset.
pub const REVOKED_AT_ATTRIBUTE: &str = "tokens_revoked_at";
/// How long a process trusts what it read: the bound on how late a sign-out takes effect.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Users remembered per process at most (a few hundred KB); beyond it the cache starts over.
pub const CACHE_CAPACITY: usize = 10_000;

/// Whether a token issued at `issued_at` (epoch seconds) may predate the revocation at
/// `revoked_at`. The revocation's own second is included: a token minted in that second may
/// have been minted before it. A token without `iat` is refused once anything was revoked.
pub fn revokes(revoked_at: Option<i64>, issued_at: Option<i64>) -> bool {
    match (revoked_at, issued_at) {
        (Some(revoked), Some(iat)) => iat <= revoked,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

tokio::task_local! {
    static SESSION_READS: Arc<AtomicU32>;
}

/// Runs `f` and returns how many DynamoDB requests the sign-out check sent inside it. They are
/// counted here and not in `count_ddb_requests`, whose count is the route's own work (the per
/// route numbers of docs/data-model.md); the request log line shows both.
pub async fn count_session_reads<F: Future>(f: F) -> (F::Output, u32) {
    let counter = Arc::new(AtomicU32::new(0));
    let out = SESSION_READS.scope(counter.clone(), f).await;
    (out, counter.load(Ordering::Relaxed))
}

/// 401 `token_revoked`.
pub fn revoked() -> ApiError {
    ApiError::unauthorized("token_revoked", "This session has ended; sign in again.")
}

/// The revocation instants of recent callers, read from their profiles.
#[derive(Debug)]
pub struct Revocations {
    table: Table,
    ttl: Duration,
    capacity: usize,
    cache: Mutex<HashMap<String, (Instant, Option<i64>)>>,
}

impl Revocations {
    pub fn new(table: Table) -> Self {
        Self::with_limits(table, CACHE_TTL, CACHE_CAPACITY)
    }

    pub fn with_limits(table: Table, ttl: Duration, capacity: usize) -> Self {
        Self { table, ttl, capacity: capacity.max(1), cache: Mutex::new(HashMap::new()) }
    }

    /// 401 `token_revoked` when the caller's token was issued at or before the user's last
    /// sign-out or password reset; a failed read is a 500 (never let a token through unchecked).
    pub async fn check(&self, caller: &Caller) -> Result<(), ApiError> {
        let revoked_at = self.revoked_at(&caller.user_id).await?;
        if revokes(revoked_at, caller.issued_at) { Err(revoked()) } else { Ok(()) }
    }

    async fn revoked_at(&self, user_id: &str) -> Result<Option<i64>, ApiError> {
        if let Some(known) = self.cached(user_id, Instant::now()) {
            return Ok(known);
        }
        let (read, requests) = count_ddb_requests(self.read(user_id)).await;
        let _ = SESSION_READS.try_with(|c| c.fetch_add(requests, Ordering::Relaxed));
        let read = read?;
        self.remember(user_id, read, Instant::now());
        Ok(read)
    }

    fn cached(&self, user_id: &str, now: Instant) -> Option<Option<i64>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(user_id).filter(|(read_at, _)| now.duration_since(*read_at) < self.ttl).map(|(_, v)| *v)
    }

    fn remember(&self, user_id: &str, revoked_at: Option<i64>, now: Instant) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.capacity && !cache.contains_key(user_id) {
            cache.retain(|_, (read_at, _)| now.duration_since(*read_at) < self.ttl);
            if cache.len() >= self.capacity {
                // Every entry is fresh: forgetting them all only costs re-reads.
                cache.clear();
            }
        }
        cache.insert(user_id.to_owned(), (now, revoked_at));
    }

    /// One strongly consistent GetItem of the profile, projected to the one attribute (the IAM
    /// policy of every HTTP function allows exactly that: infra/template.yaml).
    async fn read(&self, user_id: &str) -> Result<Option<i64>, ApiError> {
        let key = keys::user_profile(user_id);
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(key.to_item()))
            .projection_expression(REVOKED_AT_ATTRIBUTE)
            .consistent_read(true)
            .send()
            .await
            .context("GetItem profile revocation")?;
        match out.item.as_ref().and_then(|item| item.get(REVOKED_AT_ATTRIBUTE)) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => {
                Ok(Some(n.parse().with_context(|| format!("{REVOKED_AT_ATTRIBUTE} is not an integer: {n}"))?))
            }
            Some(other) => Err(anyhow::anyhow!("{REVOKED_AT_ATTRIBUTE} is not a number: {other:?}").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{AwsStub, dynamodb_client};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn caller(iat: Option<i64>) -> Caller {
        Caller { user_id: "u-1".into(), username: "u-1".into(), groups: vec![], issued_at: iat }
    }

    /// A table whose profile holds `revoked` (0: no attribute); asserts the request's shape.
    async fn stub(revoked: Arc<AtomicI64>) -> (Table, AwsStub) {
        let stub = AwsStub::start(move |target, body| {
            assert_eq!(target, "DynamoDB_20120810.GetItem");
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(req["ProjectionExpression"], REVOKED_AT_ATTRIBUTE);
            assert_eq!(req["ConsistentRead"], true);
            assert_eq!(req["Key"]["SK"]["S"], "PROFILE");
            let pk = req["Key"]["PK"]["S"].as_str().unwrap().to_owned();
            match revoked.load(Ordering::SeqCst) {
                0 => (200, "{}".to_owned()),
                t if pk == "USER#u-1" => (200, format!(r#"{{"Item":{{"{REVOKED_AT_ATTRIBUTE}":{{"N":"{t}"}}}}}}"#)),
                _ => (200, "{}".to_owned()),
            }
        })
        .await;
        (Table::from_conf(dynamodb_client(&stub.url()), "roost"), stub)
    }

    #[test]
    fn the_revocation_second_is_included() {
        assert!(!revokes(None, Some(5)));
        assert!(!revokes(None, None));
        assert!(revokes(Some(100), Some(99)));
        assert!(revokes(Some(100), Some(100)));
        assert!(!revokes(Some(100), Some(101)));
        assert!(revokes(Some(100), None));
    }

    #[tokio::test]
    async fn refuses_tokens_issued_before_the_revocation_and_reads_once_per_ttl() {
        let revoked = Arc::new(AtomicI64::new(1_000));
        let (table, stub) = stub(revoked.clone()).await;
        let revocations = Revocations::with_limits(table, Duration::from_millis(200), 10);
        // The read is the check's, reported apart from the route's own requests.
        let ((checked, route), session) =
            count_session_reads(count_ddb_requests(revocations.check(&caller(Some(1_000))))).await;
        assert_eq!(checked.unwrap_err().code(), "token_revoked");
        assert_eq!((route, session), (0, 1));
        let ((checked, route), session) =
            count_session_reads(count_ddb_requests(revocations.check(&caller(Some(1_001))))).await;
        assert!(checked.is_ok());
        assert_eq!((route, session), (0, 0), "the second check is served from the cache");
        assert_eq!(stub.hits(), 1);

        // A later revocation is seen once the cached value is older than the TTL.
        revoked.store(2_000, Ordering::SeqCst);
        assert!(revocations.check(&caller(Some(1_001))).await.is_ok(), "within the TTL: cached");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(revocations.check(&caller(Some(1_001))).await.unwrap_err().code(), "token_revoked");
        assert_eq!(stub.hits(), 2);
    }

    #[tokio::test]
    async fn a_profile_without_revocation_lets_tokens_through() {
        let (table, _stub) = stub(Arc::new(AtomicI64::new(0))).await;
        let revocations = Revocations::new(table);
        assert!(revocations.check(&caller(Some(1))).await.is_ok());
        assert!(revocations.check(&caller(None)).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_read_refuses_with_500() {
        let stub = AwsStub::start(|_, _| {
            (400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#AccessDeniedException","message":"no"}"#.into())
        })
        .await;
        let revocations = Revocations::new(Table::from_conf(dynamodb_client(&stub.url()), "roost"));
        let err = revocations.check(&caller(Some(1))).await.unwrap_err();
        assert!(matches!(err, ApiError::Unexpected(_)), "{err:?}");
    }

    #[test]
    fn the_cache_is_bounded() {
        let conf = dynamodb_client("http://127.0.0.1:9");
        let revocations = Revocations::with_limits(Table::from_conf(conf, "roost"), Duration::from_secs(60), 3);
        let now = Instant::now();
        for i in 0..10 {
            revocations.remember(&format!("u-{i}"), Some(i), now);
            assert!(revocations.cache.lock().unwrap().len() <= 3);
        }
        assert_eq!(revocations.cached("u-9", now), Some(Some(9)));
        assert_eq!(revocations.cached("u-9", now + Duration::from_secs(61)), None, "expired");
        // Expired entries go first when the cache is full.
        revocations.remember("u-a", None, now);
        revocations.remember("u-b", None, now);
        assert_eq!(revocations.cache.lock().unwrap().len(), 3);
        let later = now + Duration::from_secs(120);
        revocations.remember("fresh", None, later);
        assert_eq!(revocations.cache.lock().unwrap().len(), 1);
    }
}
