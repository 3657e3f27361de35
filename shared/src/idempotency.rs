//! `Idempotency-Key` (API.md, Conventions): the same key with the same body returns the first
//! response again (same ids) without doing the work twice; the same key with another body is 422
//! `idempotency_key_reused`. Keys are scoped to the caller and the route and kept 24 h.
//!
//! One record per (caller, route, key): `IDEMPOTENCY#<caller>` / `KEY#<sha256(route, key)>`,
//! holding the SHA-256 of the request body and, once the work is done, the response (status and
//! JSON body). Two ways to use it:
//!
//! - **The work is one DynamoDB transaction** (a booking): [`Idempotent::lookup`] (or reading
//!   [`Idempotent::record_key`] in a batch the handler makes anyway) answers a sequential
//!   duplicate; otherwise add [`Idempotent::tx_put_completed`] to the transaction. The record then
//!   exists if and only if the work committed, and a concurrent duplicate's transaction is
//!   cancelled on that item: it reads the winner's record ([`Idempotent::lookup`], a consistent
//!   GetItem) and answers with the stored response.
//! - **The work calls another service** (a payment): [`Idempotent::reserve`] writes an
//!   `in_progress` record with a lease (a concurrent duplicate gets 409 `idempotency_in_progress`),
//!   then [`Idempotent::complete`] stores the response, or [`Idempotent::release`] drops the
//!   reservation when the work failed so the client may retry. A lease that lapsed (the process
//!   died) may be taken over.
//!
//! Records are trusted only until `expires_at` (also the TTL attribute, clean-up only): an expired
//! record is treated as absent and may be overwritten, whatever TTL has or has not deleted.
//! Only successful work is recorded: a request that failed wrote nothing, so a retry runs again.

use aws_sdk_dynamodb::types::TransactWriteItem;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::keys::{Key, PK};
use crate::table::{Expr, Table, TableError};

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a response that is a stored one, as Stripe does.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");
pub const ITEM_TYPE: &str = "idempotency";
/// How long a key is remembered.
pub const RETENTION: SignedDuration = SignedDuration::from_hours(24);
/// Longest key accepted (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;
const STATE_ATTR: &str = "state";
const HASH_ATTR: &str = "request_hash";
const EXPIRES_ATTR: &str = "expires_at";
const LOCK_ATTR: &str = "locked_until";

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let ok = (1..=MAX_KEY_LEN).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok { Ok(Self(raw.to_owned())) } else { Err(invalid_key()) }
    }

    /// The header's key, `None` without the header; a second header or a bad value is a 400.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else { return Ok(None) };
        if values.next().is_some() {
            return Err(ApiError::invalid_field("Idempotency-Key", "must be sent once"));
        }
        Self::parse(value.to_str().map_err(|_| invalid_key())?).map(Some)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid_key() -> ApiError {
    ApiError::invalid_field(
        "Idempotency-Key",
        format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters (a UUID is a good choice)"),
    )
}

/// `IDEMPOTENCY#<caller>` / `KEY#<hex sha256(route NUL key)>`: fixed size whatever the key, and
/// the route and key cannot be confused with each other.
pub fn record_key(caller: &str, route: &str, key: &IdempotencyKey) -> Key {
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update([0u8]);
    h.update(key.as_str().as_bytes());
    Key::new(format!("IDEMPOTENCY#{caller}"), format!("KEY#{}", hex(&h.finalize())))
}

/// SHA-256 of a request body, hex. Callers hash a canonical form (the parsed body re-serialised)
/// so that whitespace and key order do not make the same request "another body".
pub fn request_hash(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    InProgress,
    Completed,
}

/// The stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub caller: String,
    pub route: String,
    pub request_hash: String,
    pub state: RecordState,
    /// `completed` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<StoredResponse>,
    /// `in_progress` only: RFC 3339 UTC (whole seconds); past it the reservation may be taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
    /// `in_progress` only: which request holds the reservation. A reservation whose PutItem
    /// applied but whose answer was lost (a timeout, then the SDK's retry fails its condition)
    /// is recognised as the request's own, instead of answering that request 409 for the whole
    /// lease (found by the fault suite, docs/reliability.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<String>,
    pub created_at: String,
    /// Epoch seconds; the record is void from then on (and TTL cleans it up some time later).
    pub expires_at: i64,
}

/// A response to give again: its status and its JSON body, verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

impl StoredResponse {
    /// Stores `body` as JSON.
    pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_string(body)
            .map_err(|e| ApiError::Unexpected(anyhow::Error::new(e).context("encode idempotent response")))?;
        Ok(Self { status: status.as_u16(), body })
    }

    /// The response as first given (`replayed`: marked with `Idempotent-Replayed: true`).
    pub fn to_response(&self, replayed: bool) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut res =
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], self.body.clone())
                .into_response();
        if replayed {
            res.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        res
    }
}

/// What a record says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No (live) record: do the work.
    New,
    /// The work was done for this very request: answer this.
    Replay(StoredResponse),
    /// The key was used with another body.
    KeyReused,
    /// The same request is being worked on right now.
    InProgress,
}

impl Lookup {
    /// `New` -> `Ok(None)`, `Replay` -> the stored response, the others -> their problem.
    pub fn into_response(self) -> Result<Option<Response>, ApiError> {
        match self {
            Self::New => Ok(None),
            Self::Replay(stored) => Ok(Some(stored.to_response(true))),
            Self::KeyReused => Err(key_reused()),
            Self::InProgress => Err(in_progress()),
        }
    }
}

/// 422 `idempotency_key_reused`.
pub fn key_reused() -> ApiError {
    ApiError::unprocessable(
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request body; use a new key for a new request.",
    )
    .with_field("Idempotency-Key", "already used with another body")
}

/// 409 `idempotency_in_progress`.
pub fn in_progress() -> ApiError {
    ApiError::conflict(
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still being processed; retry in a moment.",
    )
}

/// A request carrying an `Idempotency-Key`, scoped to its caller and route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotent {
    caller: String,
    route: String,
    key: Key,
    request_hash: String,
    /// This request's own reservation id (see [`IdempotencyRecord::claim_id`]).
    claim: String,
}

impl Idempotent {
    /// `route` names the operation and what it acts on (`POST /v1/bookings`, or
    /// `POST /v1/bookings/bkg_1/payment`); `canonical_body` is what `request_hash` hashes.
    pub fn new(caller: &str, route: &str, key: &IdempotencyKey, canonical_body: &[u8]) -> Self {
        Self {
            caller: caller.to_owned(),
            route: route.to_owned(),
            key: record_key(caller, route, key),
            request_hash: request_hash(canonical_body),
            claim: crate::ids::new_id("clm"),
        }
    }

    /// Whether `record` is the reservation this very request made.
    pub fn is_own_reservation(&self, record: Option<&IdempotencyRecord>) -> bool {
        record.is_some_and(|r| r.state == RecordState::InProgress && r.claim_id.as_deref() == Some(self.claim.as_str()))
    }

    pub fn record_key(&self) -> &Key {
        &self.key
    }

    /// What `record` (the item at `record_key`, if any) means for this request at `now`.
    pub fn decide(&self, record: Option<&IdempotencyRecord>, now: Timestamp) -> Lookup {
        let Some(r) = record.filter(|r| r.expires_at > now.as_second()) else { return Lookup::New };
        if r.request_hash != self.request_hash {
            return Lookup::KeyReused;
        }
        match (r.state, &r.response) {
            (RecordState::Completed, Some(stored)) => Lookup::Replay(stored.clone()),
            (RecordState::Completed, None) => Lookup::InProgress,
            (RecordState::InProgress, _) => {
                let lapsed = r
                    .locked_until
                    .as_deref()
                    .and_then(|t| t.parse::<Timestamp>().ok())
                    .is_some_and(|until| until <= now);
                if lapsed { Lookup::New } else { Lookup::InProgress }
            }
        }
    }

    /// One consistent GetItem of the record, decided.
    pub async fn lookup(&self, table: &Table, now: Timestamp) -> Result<Lookup, TableError> {
        let record: Option<IdempotencyRecord> = table.get(&self.key).await?;
        Ok(self.decide(record.as_ref(), now))
    }

    /// The answer to a write whose transaction failed on this key's record (a request with the
    /// same key completed meanwhile): its stored answer, replayed; 422 when the key was used for
    /// another body; 409 `conflict` when the record is not there or not complete yet.
    pub async fn replay_duplicate(&self, table: &Table, now: Timestamp) -> Result<Response, ApiError> {
        match self.lookup(table, now).await? {
            Lookup::Replay(stored) => Ok(stored.to_response(true)),
            Lookup::KeyReused => Err(key_reused()),
            Lookup::New | Lookup::InProgress => Err(ApiError::conflict(
                "conflict",
                "A request with this Idempotency-Key was just processed; retry to get its response.",
            )),
        }
    }

    fn record(&self, state: RecordState, response: Option<StoredResponse>, now: Timestamp) -> IdempotencyRecord {
        let expires = now.checked_add(RETENTION).unwrap_or(now);
        IdempotencyRecord {
            key: self.key.clone(),
            item_type: ITEM_TYPE.to_owned(),
            caller: self.caller.clone(),
            route: self.route.clone(),
            request_hash: self.request_hash.clone(),
            state,
            response,
            locked_until: None,
            claim_id: None,
            created_at: crate::night::instant(now),
            expires_at: expires.as_second(),
        }
    }

    /// The `Put` of the completed record, for the transaction that does the work: it fails the
    /// transaction (`ConditionalCheckFailed` on this item) when a live record exists.
    pub fn tx_put_completed(
        &self,
        table: &Table,
        response: StoredResponse,
        now: Timestamp,
    ) -> Result<TransactWriteItem, TableError> {
        table.tx_put(&self.record(RecordState::Completed, Some(response), now), Some(&condition_absent_or_expired(now)))
    }

    /// Reserves the key for work that calls another service: `Ok(Lookup::New)` when this request
    /// now holds it until `now + lease`; otherwise what the existing record says (`Replay`,
    /// `KeyReused` or `InProgress`). One conditional PutItem, plus a GetItem when it is taken.
    pub async fn reserve(&self, table: &Table, now: Timestamp, lease: SignedDuration) -> Result<Lookup, TableError> {
        let mut record = self.record(RecordState::InProgress, None, now);
        record.locked_until = Some(crate::night::instant(now.checked_add(lease).unwrap_or(now)));
        record.claim_id = Some(self.claim.clone());
        let now_s = crate::night::instant(now);
        let lapsed = Expr::new("#i_state = :i_in_progress AND #i_lock <= :i_now_s")
            .name("#i_state", STATE_ATTR)
            .name("#i_lock", LOCK_ATTR)
            .s(":i_in_progress", "in_progress")
            .s(":i_now_s", now_s);
        let condition = or(condition_absent_or_expired(now), lapsed);
        match table.put_if(&record, &condition).await {
            Ok(()) => Ok(Lookup::New),
            Err(TableError::ConditionFailed) => {
                let existing: Option<IdempotencyRecord> = table.get(&self.key).await?;
                // Our own put applied and only its answer was lost: the reservation is ours.
                if self.is_own_reservation(existing.as_ref()) {
                    return Ok(Lookup::New);
                }
                match self.decide(existing.as_ref(), now) {
                    // Released or expired between the two calls: the client may simply retry.
                    Lookup::New => Ok(Lookup::InProgress),
                    other => Ok(other),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Stores the response of reserved work. Fails with `ConditionFailed` if the reservation is
    /// no longer this request's (it lapsed and another request took it over).
    pub async fn complete(&self, table: &Table, response: &StoredResponse) -> Result<(), TableError> {
        let update = Expr::new("SET #i_state = :i_completed, #i_response = :i_response REMOVE #i_lock")
            .name("#i_state", STATE_ATTR)
            .name("#i_response", "response")
            .name("#i_lock", LOCK_ATTR)
            .s(":i_completed", "completed")
            .ser(":i_response", response)?;
        table.update(&self.key, &update, Some(&self.condition_mine_in_progress())).await
    }

    /// Drops this request's reservation after the work failed, so a retry runs the work again.
    pub async fn release(&self, table: &Table) -> Result<(), TableError> {
        match table.delete(&self.key, Some(&self.condition_mine_in_progress())).await {
            Err(TableError::ConditionFailed) => Ok(()),
            other => other,
        }
    }

    fn condition_mine_in_progress(&self) -> Expr {
        Expr::new("#i_state = :i_in_progress AND #i_hash = :i_hash")
            .name("#i_state", STATE_ATTR)
            .name("#i_hash", HASH_ATTR)
            .s(":i_in_progress", "in_progress")
            .s(":i_hash", self.request_hash.clone())
    }
}

/// No record, or one whose 24 h are over.
fn condition_absent_or_expired(now: Timestamp) -> Expr {
    Expr::new("attribute_not_exists(#i_pk) OR #i_expires <= :i_now")
        .name("#i_pk", PK)
        .name("#i_expires", EXPIRES_ATTR)
        .n(":i_now", now.as_second())
}

/// `(a) OR (b)`, placeholders merged (`Expr` only has `and`).
fn or(mut a: Expr, b: Expr) -> Expr {
    a.expression = format!("({}) OR ({})", a.expression, b.expression);
    a.names.extend(b.names);
    a.values.extend(b.values);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{AwsStub, dynamodb_client};
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn now() -> Timestamp {
        "2026-01-01T10:00:00Z".parse().unwrap()
    }

    fn key(s: &str) -> IdempotencyKey {
        IdempotencyKey::parse(s).unwrap()
    }

    fn request() -> Idempotent {
        Idempotent::new("u-1", "POST /v1/bookings", &key("k-1"), br#"{"a":1}"#)
    }

    fn stored() -> StoredResponse {
        StoredResponse { status: 201, body: r#"{"booking_id":"bkg_1"}"#.to_owned() }
    }

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("3f1e2d4c-5b6a-4789-8abc-def012345678").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in [String::new(), "k".repeat(256), "has space".to_owned(), "tab\t".to_owned(), "é".to_owned()] {
            let e = IdempotencyKey::parse(&bad).unwrap_err();
            assert_eq!(e.code(), "validation_failed", "{bad:?}");
            assert_eq!(e.problem().unwrap().errors[0].field, "Idempotency-Key");
        }
    }

    #[test]
    fn header_is_optional_single_and_valid() {
        let mut h = HeaderMap::new();
        assert_eq!(IdempotencyKey::from_headers(&h).unwrap(), None);
        h.insert(HEADER, HeaderValue::from_static("abc"));
        assert_eq!(IdempotencyKey::from_headers(&h).unwrap(), Some(key("abc")));
        h.append(HEADER, HeaderValue::from_static("def"));
        assert_eq!(IdempotencyKey::from_headers(&h).unwrap_err().code(), "validation_failed");
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        assert_eq!(IdempotencyKey::from_headers(&h).unwrap_err().code(), "validation_failed");
    }

    #[test]
    fn records_are_scoped_to_caller_route_and_key() {
        let k = record_key("u-1", "POST /v1/bookings", &key("k-1"));
        assert_eq!(k.pk, "IDEMPOTENCY#u-1");
        assert!(k.sk.starts_with("KEY#") && k.sk.len() == 4 + 64, "{}", k.sk);
        assert_eq!(k, record_key("u-1", "POST /v1/bookings", &key("k-1")));
        assert_ne!(k, record_key("u-2", "POST /v1/bookings", &key("k-1")));
        assert_ne!(k, record_key("u-1", "POST /v1/bookings/bkg_1/payment", &key("k-1")));
        assert_ne!(k, record_key("u-1", "POST /v1/bookings", &key("k-2")));
        // The separator keeps (route, key) pairs apart.
        assert_ne!(record_key("u", "ab", &key("c")), record_key("u", "a", &key("bc")));
        assert_eq!(
            request_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "SHA-256 test vector"
        );
    }

    fn record(state: RecordState, hash_of: &[u8]) -> IdempotencyRecord {
        let mut r = request().record(state, (state == RecordState::Completed).then(stored), now());
        r.request_hash = request_hash(hash_of);
        r
    }

    #[test]
    fn a_reservation_is_recognised_as_its_own_requests_only() {
        let mine = request();
        let mut reserved = mine.record(RecordState::InProgress, None, now());
        reserved.claim_id = Some(mine.claim.clone());
        assert!(mine.is_own_reservation(Some(&reserved)), "the put applied, its answer lost: ours");
        let duplicate = request();
        assert_eq!(duplicate.record_key(), mine.record_key(), "same caller, route and key");
        assert!(!duplicate.is_own_reservation(Some(&reserved)), "a concurrent duplicate is not the holder");
        assert!(!mine.is_own_reservation(None));
        let completed = mine.record(RecordState::Completed, Some(stored()), now());
        assert!(!mine.is_own_reservation(Some(&completed)));
    }

    #[test]
    fn decisions() {
        let req = request();
        let t = now();
        assert_eq!(req.decide(None, t), Lookup::New);
        let done = record(RecordState::Completed, br#"{"a":1}"#);
        assert_eq!(done.expires_at, t.as_second() + 24 * 3600);
        assert_eq!(req.decide(Some(&done), t), Lookup::Replay(stored()));
        // Another body: reused, even concurrently.
        assert_eq!(req.decide(Some(&record(RecordState::Completed, br#"{"a":2}"#)), t), Lookup::KeyReused);
        // 24 h later the record is void, whatever TTL did.
        let later = t.checked_add(RETENTION).unwrap();
        assert_eq!(req.decide(Some(&done), later), Lookup::New);
        assert_eq!(
            req.decide(Some(&done), later.checked_sub(SignedDuration::from_secs(1)).unwrap()),
            Lookup::Replay(stored())
        );
        // In progress: 409 until the lease lapses.
        let mut busy = record(RecordState::InProgress, br#"{"a":1}"#);
        busy.locked_until = Some("2026-01-01T10:01:00Z".to_owned());
        assert_eq!(req.decide(Some(&busy), t), Lookup::InProgress);
        assert_eq!(req.decide(Some(&busy), "2026-01-01T10:01:00Z".parse().unwrap()), Lookup::New);
        busy.locked_until = None;
        assert_eq!(
            req.decide(Some(&busy), later.checked_sub(SignedDuration::from_secs(1)).unwrap()),
            Lookup::InProgress
        );
    }

    #[test]
    fn lookups_map_to_responses() {
        assert!(Lookup::New.into_response().unwrap().is_none());
        let res = Lookup::Replay(stored()).into_response().unwrap().unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()[REPLAYED_HEADER], "true");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let e = Lookup::KeyReused.into_response().unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (422, "idempotency_key_reused"));
        let e = Lookup::InProgress.into_response().unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (409, "idempotency_in_progress"));
        let fresh = StoredResponse::json(StatusCode::CREATED, &serde_json::json!({"id": 1})).unwrap();
        assert!(fresh.to_response(false).headers().get(REPLAYED_HEADER).is_none());
    }

    async fn table_with(handler: impl Fn(&str, &[u8]) -> (u16, String) + Send + Sync + 'static) -> (Table, AwsStub) {
        let stub = AwsStub::start(handler).await;
        (Table::from_conf(dynamodb_client(&stub.url()), "roost"), stub)
    }

    #[tokio::test]
    async fn the_completed_record_commits_with_the_work() {
        let (table, _stub) = table_with(|_, _| (200, "{}".to_owned())).await;
        let item = request().tx_put_completed(&table, stored(), now()).unwrap();
        let put = item.put().unwrap();
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(#i_pk) OR #i_expires <= :i_now"));
        assert_eq!(
            put.expression_attribute_values().unwrap()[":i_now"],
            AttributeValue::N(now().as_second().to_string())
        );
        let it = put.item();
        assert_eq!(it["PK"], AttributeValue::S("IDEMPOTENCY#u-1".into()));
        assert_eq!(it["type"], AttributeValue::S("idempotency".into()));
        assert_eq!(it["state"], AttributeValue::S("completed".into()));
        assert_eq!(it["request_hash"], AttributeValue::S(request_hash(br#"{"a":1}"#)));
        assert_eq!(it["expires_at"], AttributeValue::N((now().as_second() + 86_400).to_string()));
        let response = it["response"].as_m().unwrap();
        assert_eq!(response["status"], AttributeValue::N("201".into()));
        // It decodes back into a record that replays.
        let back: IdempotencyRecord = crate::table::from_item(it.clone()).unwrap();
        assert_eq!(request().decide(Some(&back), now()), Lookup::Replay(stored()));
    }

    #[tokio::test]
    async fn reserve_then_complete_or_release() {
        let (table, stub) = table_with(|target, body| {
            let req: serde_json::Value = serde_json::from_slice(body).unwrap();
            match target {
                "DynamoDB_20120810.PutItem" => {
                    assert_eq!(req["Item"]["state"]["S"], "in_progress");
                    assert_eq!(req["Item"]["locked_until"]["S"], "2026-01-01T10:00:30Z");
                    let cond = req["ConditionExpression"].as_str().unwrap();
                    assert!(
                        cond.contains("attribute_not_exists(#i_pk)") && cond.contains("#i_lock <= :i_now_s"),
                        "{cond}"
                    );
                    (200, "{}".to_owned())
                }
                "DynamoDB_20120810.UpdateItem" => {
                    assert_eq!(req["ConditionExpression"], "#i_state = :i_in_progress AND #i_hash = :i_hash");
                    assert_eq!(req["ExpressionAttributeValues"][":i_response"]["M"]["status"]["N"], "201");
                    (200, "{}".to_owned())
                }
                "DynamoDB_20120810.DeleteItem" => (
                    400,
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"x"}"#
                        .to_owned(),
                ),
                other => panic!("{other}"),
            }
        })
        .await;
        let req = request();
        assert_eq!(req.reserve(&table, now(), SignedDuration::from_secs(30)).await.unwrap(), Lookup::New);
        req.complete(&table, &stored()).await.unwrap();
        // Releasing what is no longer ours is not an error.
        req.release(&table).await.unwrap();
        assert_eq!(stub.hits(), 3);
    }

    #[tokio::test]
    async fn a_taken_reservation_answers_with_the_record() {
        let gets = Arc::new(AtomicUsize::new(0));
        let g = gets.clone();
        let (table, _stub) = table_with(move |target, _| match target {
            "DynamoDB_20120810.PutItem" => (
                400,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"x"}"#
                    .to_owned(),
            ),
            "DynamoDB_20120810.GetItem" => {
                let mut r = request().record(RecordState::InProgress, None, now());
                r.locked_until = Some("2026-01-01T10:00:30Z".to_owned());
                if g.fetch_add(1, Ordering::SeqCst) > 0 {
                    r.request_hash = request_hash(b"other");
                }
                let item = crate::table::to_item(&r).unwrap();
                let json = serde_json::json!({ "Item": item_json(&item) });
                (200, json.to_string())
            }
            other => panic!("{other}"),
        })
        .await;
        let lease = SignedDuration::from_secs(30);
        assert_eq!(request().reserve(&table, now(), lease).await.unwrap(), Lookup::InProgress);
        assert_eq!(request().reserve(&table, now(), lease).await.unwrap(), Lookup::KeyReused);
    }

    /// DynamoDB JSON of an item with string, number and map attributes.
    fn item_json(item: &crate::table::Item) -> serde_json::Value {
        fn one(v: &AttributeValue) -> serde_json::Value {
            match v {
                AttributeValue::S(s) => serde_json::json!({ "S": s }),
                AttributeValue::N(n) => serde_json::json!({ "N": n }),
                AttributeValue::M(m) => serde_json::json!({ "M": item_json(m) }),
                other => panic!("{other:?}"),
            }
        }
        serde_json::Value::Object(item.iter().map(|(k, v)| (k.clone(), one(v))).collect())
    }
}
