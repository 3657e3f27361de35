//! What a stretch of the run used, for the cost (issue 18, part 6): per function the REPORT
//! lines' invocations and billed durations and the log bytes written, and the DynamoDB
//! capacity, SQS, SNS and SES calls the fault proxy counted (docs/local-runtime.md).

use std::collections::BTreeMap;

use serde_json::Value;

use super::cost::{FunctionUsage, Usage};
use super::measure::log_path;
use super::reports::Tail;
use crate::faults;

/// Where each function's log and the proxy's counters were when the stretch began.
pub struct Mark {
    tails: BTreeMap<String, (Tail, u64)>,
    proxy: Value,
}

fn log_len(function: &str) -> u64 {
    std::fs::metadata(log_path(function)).map(|m| m.len()).unwrap_or(0)
}

/// Marks the start of a stretch over `functions`.
pub async fn mark(functions: &[String]) -> Mark {
    let tails = functions.iter().map(|f| (f.clone(), (Tail::at_end(&log_path(f)), log_len(f)))).collect();
    Mark { tails, proxy: faults::state().await }
}

fn grew(before: &Value, after: &Value, pointer: &str) -> f64 {
    let at = |v: &Value| v.pointer(pointer).and_then(Value::as_f64).unwrap_or(0.0);
    (at(after) - at(before)).max(0.0)
}

/// What the functions used since `mark`; `bookings` and `api_requests` are the caller's counts.
/// SQS requests: each message the functions sent is also received and deleted by its consumer's
/// event source mapping (two more requests), and each SNS publish reaches the subscribed queues,
/// whose messages are received and deleted the same way (`sns_subscribed_queues` per publish).
pub async fn since(mark: &Mark, bookings: u64, api_requests: u64, sns_subscribed_queues: u64) -> Usage {
    let now = faults::state().await;
    let mut usage = Usage { bookings, api_requests, ..Usage::default() };
    for (function, (tail, length)) in &mark.tails {
        let reports = tail.reports();
        usage.functions.insert(
            function.clone(),
            FunctionUsage {
                invocations: reports.len() as u64,
                billed_ms: reports.iter().map(|r| r.billed_ms).sum(),
                memory_mb: reports.first().map_or(0, |r| r.memory_mb),
            },
        );
        usage.log_bytes += log_len(function).saturating_sub(*length);
        usage.ddb_read_units += grew(&mark.proxy, &now, &format!("/dynamodb_by_function/{function}/read_units"));
        usage.ddb_write_units += grew(&mark.proxy, &now, &format!("/dynamodb_by_function/{function}/write_units"));
        let calls =
            |service: &str| grew(&mark.proxy, &now, &format!("/forwarded_by_function/{function}/{service}")) as u64;
        usage.sqs_requests += 3 * calls("sqs");
        usage.sns_publishes += calls("sns");
        usage.sqs_requests += 2 * calls("sns") * sns_subscribed_queues;
        usage.ses_emails += calls("ses");
    }
    usage
}
