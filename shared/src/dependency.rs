//! Failures of a dependency that a retry may cure, told apart from bugs.
//!
//! A request that fails because DynamoDB throttled, an AWS endpoint answered 5xx, a call timed
//! out or a connection failed is not the client's fault and not a defect: it answers
//! `503 service_unavailable` with `Retry-After` instead of `500 internal_error`, so clients (and
//! their SDKs) retry it. Handlers need not know: every AWS client carries [`WatchDependency`],
//! which marks the request when an SDK call finally fails for such a reason (after the SDK's own
//! retries), and the request layer (`crate::http`) turns a 500 of a marked request into the 503.
//! Code that talks to a dependency without the SDK (Stripe) calls [`mark_unavailable`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

tokio::task_local! {
    static UNAVAILABLE: AtomicBool;
}

/// Error codes AWS services answer when they are throttling or briefly unable to serve, as they
/// appear in error bodies (JSON `__type`, XML `<Code>`). A 5xx or 429 needs no code.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "Throttling",
    "TooManyRequestsException",
    "SlowDown",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// Runs `future` with its own mark, and says whether a dependency failed transiently in it.
pub async fn watch<F: Future>(future: F) -> (F::Output, bool) {
    UNAVAILABLE
        .scope(AtomicBool::new(false), async move {
            let output = future.await;
            (output, UNAVAILABLE.with(|marked| marked.load(Ordering::Relaxed)))
        })
        .await
}

/// Marks the current request as failed by an unavailable dependency (no effect outside
/// [`watch`]).
pub fn mark_unavailable() {
    let _ = UNAVAILABLE.try_with(|marked| marked.store(true, Ordering::Relaxed));
}

/// Whether an SDK call's final failure is one a later retry may cure: it timed out or never
/// reached the service, or the service answered 5xx, 429, or 400 with a throttling code.
pub fn is_transient(timed_out_or_unreachable: bool, status: Option<u16>, code: Option<&str>) -> bool {
    timed_out_or_unreachable
        || match status {
            Some(s) if s >= 500 || s == 429 => true,
            Some(400) => code.is_some_and(|c| TRANSIENT_CODES.contains(&c)),
            _ => false,
        }
}

/// The error code of an AWS error response, in any of the protocols' places: the
/// `x-amzn-query-error` header (SQS JSON: `AWS.SimpleQueueService.RequestThrottled;Sender`),
/// `x-amzn-ErrorType` (REST JSON), a JSON body's `__type` (`com.amazonaws...#ThrottlingException`)
/// or `code`, an XML body's `<Code>`.
pub fn error_code(query_error: Option<&str>, error_type: Option<&str>, body: Option<&[u8]>) -> Option<String> {
    let bare = |raw: &str| {
        let raw = raw.split([';', ':']).next().unwrap_or(raw);
        raw.rsplit(['#', '.']).next().unwrap_or(raw).trim().to_owned()
    };
    if let Some(raw) = query_error.or(error_type) {
        return Some(bare(raw));
    }
    let body = body?;
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        return ["__type", "code", "Code"].iter().find_map(|k| json.get(k)?.as_str()).map(bare);
    }
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(bare(&text[start..end]))
}

/// The interceptor every AWS client of a request path carries (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct WatchDependency;

impl Intercept for WatchDependency {
    fn name(&self) -> &'static str {
        "RoostWatchDependency"
    }

    // Runs once per operation, after the SDK's retries: only the final outcome counts.
    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Err(error)) = context.output_or_error() {
            let response = context.response();
            let code = response.and_then(|r| {
                error_code(r.headers().get("x-amzn-query-error"), r.headers().get("x-amzn-errortype"), r.body().bytes())
            });
            if is_transient(
                error.is_timeout_error() || error.is_connector_error(),
                response.map(|r| r.status().as_u16()),
                code.as_deref(),
            ) {
                mark_unavailable();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_unreachable_5xx_and_429_are_transient() {
        assert!(is_transient(true, None, None));
        assert!(is_transient(false, Some(500), None));
        assert!(is_transient(false, Some(503), None));
        assert!(is_transient(false, Some(429), None));
    }

    #[test]
    fn a_400_is_transient_only_with_a_throttling_code() {
        assert!(is_transient(false, Some(400), Some("ThrottlingException")));
        assert!(is_transient(false, Some(400), Some("Throttling")));
        assert!(!is_transient(false, Some(400), Some("ConditionalCheckFailedException")));
        assert!(!is_transient(false, Some(400), None));
        assert!(!is_transient(false, Some(404), Some("ThrottlingException")));
        assert!(!is_transient(false, None, None));
    }

    #[test]
    fn error_codes_are_read_from_every_protocol() {
        let ddb = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Throttling here"}"#;
        assert_eq!(error_code(None, None, Some(ddb)).as_deref(), Some("ThrottlingException"));
        let sns = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code></Error></ErrorResponse>";
        assert_eq!(error_code(None, None, Some(sns)).as_deref(), Some("Throttling"));
        let sqs = Some("AWS.SimpleQueueService.RequestThrottled;Sender");
        assert_eq!(error_code(sqs, None, Some(b"{}")).as_deref(), Some("RequestThrottled"));
        let rest = Some("TooManyRequestsException:http://internal.amazon.com/coral/com.amazon.coral.service/");
        assert_eq!(error_code(None, rest, None).as_deref(), Some("TooManyRequestsException"));
        let message_only = br#"{"message":"ThrottlingException is only mentioned"}"#;
        assert_eq!(error_code(None, None, Some(message_only)), None, "a code is read from its field, not from prose");
    }

    #[tokio::test]
    async fn marks_are_scoped_to_their_request() {
        mark_unavailable(); // outside any scope: no effect, no panic
        let ((), marked) = watch(async { mark_unavailable() }).await;
        assert!(marked);
        let ((), marked) = watch(async {}).await;
        assert!(!marked);
    }
}
