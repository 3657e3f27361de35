//! DynamoDB requests per operation, counted on the wire: every function reaches DynamoDB through
//! its own fault proxy in the local runtime, which counts what it forwards per function
//! (`GET <runtime_url>/_roost/faults`, `forwarded_by_function`; docs/local-runtime.md "Injected
//! faults"). The difference of that counter around an operation is what the operation cost,
//! whatever client sent it: the function's own per-request count (`ddb_requests` in its request
//! log line, kept by an interceptor of `shared::Table`) is reported beside it, never trusted
//! instead of it.
//!
//! **Sharing the stack.** The e2e tests run in parallel on one stack, so another test may call
//! the same function while an operation is measured, and the strict stack cancels some
//! transactions (`TransactionConflict`) that the code then retries. Both only ever ADD requests
//! to a measurement, never remove any, so the fewest requests over a few tries ([`fewest`]) is
//! an upper bound of the operation's own cost that is exact as soon as one try ran undisturbed;
//! and a try that meets the target ends the series. A target is therefore never loosened: an
//! operation that really costs more than its target costs more in every try.
//!
//! **The sign-out check.** Every authenticated route first checks the caller's token against
//! their last sign-out: one GetItem per user per warm process per `shared::sessions::CACHE_TTL`
//! (5 s). Which process takes a request is the runtime's choice, so whether that read happens is
//! chance, not the route's cost; the function logs it apart (`session_ddb_requests`) and
//! [`Measured::route`] subtracts it. It is bounded on its own by tests/tests/e2e/sessions.rs.

use std::future::Future;

use reqwest::Method;
use serde_json::Value;

use crate::faults::{count, state};
use crate::{Api, request_line, unique};

/// DynamoDB requests `function` had forwarded by its proxy in a `GET /_roost/faults` answer.
pub fn forwarded(state: &Value, function: &str) -> u64 {
    count(state, &format!("/forwarded_by_function/{function}/dynamodb"))
}

/// DynamoDB requests `function` sent between two `GET /_roost/faults` answers.
pub fn sent_between(before: &Value, after: &Value, function: &str) -> u64 {
    // The counters only grow while the stack runs; a smaller one would be another stack's.
    forwarded(after, function).checked_sub(forwarded(before, function)).expect("the proxy's counters only grow")
}

/// Runs `op` and returns its output with the DynamoDB requests `function` sent meanwhile
/// (its own and those of anything else calling it at the same time: see [`fewest`]).
pub async fn ddb_requests<F, Fut, T>(function: &str, op: F) -> (T, u64)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let before = state().await;
    let out = op().await;
    let after = state().await;
    (out, sent_between(&before, &after, function))
}

/// The try of a series that cost the fewest requests.
#[derive(Debug)]
pub struct Fewest<T> {
    /// The output of that try.
    pub value: T,
    /// Its requests.
    pub requests: u64,
    /// Every try's requests, in order (for failure messages and reports).
    pub tries: Vec<u64>,
}

/// Runs `attempt(0)`, `attempt(1)`, ... (each returns its output and its request count) until
/// one costs at most `enough` requests or `tries` have run, and keeps the cheapest. Interference
/// only adds requests (module doc), so this is the operation's own cost once one try ran alone.
pub async fn fewest<T, F, Fut>(tries: usize, enough: u64, mut attempt: F) -> Fewest<T>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = (T, u64)>,
{
    assert!(tries > 0, "at least one try");
    let mut best: Option<(T, u64)> = None;
    let mut seen = Vec::with_capacity(tries);
    for i in 0..tries {
        let (value, requests) = attempt(i).await;
        seen.push(requests);
        if best.as_ref().is_none_or(|(_, fewest)| requests < *fewest) {
            best = Some((value, requests));
        }
        if requests <= enough {
            break;
        }
    }
    let (value, requests) = best.expect("one try ran");
    Fewest { value, requests, tries: seen }
}

/// One API call, measured on `function`'s proxy and in its request log line.
#[derive(Debug, Clone)]
pub struct Measured {
    pub status: u16,
    /// The answer's body (JSON; a body that is not JSON as a string).
    pub body: Value,
    /// DynamoDB requests on the wire while the call ran.
    pub wire: u64,
    /// The sign-out check's reads in this request (`session_ddb_requests` of its log line).
    pub session: u64,
    /// The route's requests as the function counted them (`ddb_requests` of its log line).
    pub logged: u64,
}

impl Measured {
    /// The route's own cost on the wire: what was sent less the sign-out check (module doc).
    pub fn route(&self) -> u64 {
        self.wire.saturating_sub(self.session)
    }
}

/// Sends one call through `api` with a fresh `X-Request-Id` and measures it ([`Measured`]).
pub async fn measured_call(function: &str, api: Api<'_>, method: Method, path: &str, body: Option<&Value>) -> Measured {
    measured_call_with(function, api, method, path, body, &[]).await
}

/// [`measured_call`] with more request headers (e.g. `if-none-match`).
pub async fn measured_call_with(
    function: &str,
    api: Api<'_>,
    method: Method,
    path: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Measured {
    let request_id = unique("ddb-count-");
    let mut headers = vec![("x-request-id", request_id.as_str())];
    headers.extend_from_slice(extra);
    let (response, wire) = ddb_requests(function, || api.call(method, path, body, &headers)).await;
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    let line = request_line(function, &request_id).await;
    let logged = |field: &str| line[field].as_u64().unwrap_or_else(|| panic!("{field} in {line}"));
    Measured { status, body, wire, session: logged("session_ddb_requests"), logged: logged("ddb_requests") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    fn faults_state(listings: u64, bookings: u64) -> Value {
        json!({"forwarded_by_function": {
            "ListingsFunction": {"dynamodb": listings, "stripe": 7},
            "BookingsFunction": {"dynamodb": bookings},
        }})
    }

    #[test]
    fn requests_are_the_growth_of_one_functions_dynamodb_counter() {
        let (before, after) = (faults_state(10, 4), faults_state(13, 9));
        assert_eq!(sent_between(&before, &after, "ListingsFunction"), 3);
        assert_eq!(sent_between(&before, &after, "BookingsFunction"), 5);
        // A function that has not called DynamoDB yet has no counter: zero.
        assert_eq!(sent_between(&before, &after, "ReviewsFunction"), 0);
        assert_eq!(forwarded(&json!({}), "ListingsFunction"), 0);
    }

    #[test]
    #[should_panic(expected = "only grow")]
    fn a_counter_that_went_down_is_not_a_measurement() {
        sent_between(&faults_state(13, 0), &faults_state(10, 0), "ListingsFunction");
    }

    /// Runs `fewest` over a scripted series of counts; returns it and how many tries ran.
    fn run(series: &[u64], tries: usize, enough: u64) -> (Fewest<usize>, usize) {
        let ran = RefCell::new(0);
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let got = runtime.block_on(fewest(tries, enough, |i| {
            *ran.borrow_mut() += 1;
            let requests = series[i];
            async move { (i, requests) }
        }));
        (got, ran.into_inner())
    }

    #[test]
    fn the_cheapest_try_is_kept_and_a_try_at_the_target_ends_the_series() {
        let (got, ran) = run(&[4, 2, 3, 1, 1], 5, 1);
        assert_eq!((got.value, got.requests, ran), (3, 1, 4), "stopped at the first try costing 1");
        assert_eq!(got.tries, vec![4, 2, 3, 1]);
    }

    #[test]
    fn a_target_never_met_runs_every_try_and_reports_the_fewest() {
        let (got, ran) = run(&[3, 2, 5], 3, 1);
        assert_eq!((got.value, got.requests, ran), (1, 2, 3));
        // Ties keep the earlier try.
        let (tie, _) = run(&[2, 2], 2, 0);
        assert_eq!(tie.value, 0);
    }

    #[test]
    fn the_route_is_what_was_sent_less_the_sign_out_check() {
        let m = Measured { status: 200, body: Value::Null, wire: 2, session: 1, logged: 1 };
        assert_eq!(m.route(), 1);
    }
}
