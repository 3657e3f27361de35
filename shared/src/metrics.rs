//! Business metrics: how the business is doing (bookings, payments, refunds, webhooks, e-mails),
//! as CloudWatch Embedded Metric Format (EMF) lines on stdout, which CloudWatch Logs turns into
//! metrics without an API call (docs/metrics.md).
//!
//! The contract the template's alarms and dashboard rely on: namespace `Roost`, one dimension
//! `Stage` (the `STAGE` variable), the names of [`Business`], unit `Count`. Nothing unbounded is
//! ever a dimension (no ids), so the number of metric series cannot grow with traffic.
//!
//! A context calls [`count`] once where the event really happened (after its write succeeded, not
//! on a retried duplicate); the function flushes after each invocation ([`flush`]: the HTTP
//! request layer does it for the API functions, [`flushed`] wraps the event handlers), one JSON
//! object per line.

use std::future::Future;
use std::io::Write;
use std::sync::OnceLock;

use metrics_cloudwatch_embedded::{Builder, Collector};

use crate::config;

pub const NAMESPACE: &str = "Roost";
pub const STAGE_DIMENSION: &str = "Stage";

/// The business metrics, each a count of events (`Count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Business {
    /// A booking was created (a hold on the nights).
    BookingsCreated,
    /// A booking's payment succeeded and its nights were booked.
    BookingsConfirmed,
    /// A guest or host cancelled a booking.
    BookingsCancelled,
    /// An unpaid hold lapsed (written by the sweep).
    BookingsExpired,
    /// A payment succeeded (Stripe's `payment_intent.succeeded`, applied).
    PaymentsSucceeded,
    /// A payment failed (Stripe's `payment_intent.payment_failed`, applied).
    PaymentsFailed,
    /// Stripe confirmed a refund.
    RefundsIssued,
    /// A refund failed for good and waits for an operator.
    RefundsFailed,
    /// A Stripe webhook verified and queued.
    WebhooksAccepted,
    /// A Stripe webhook refused (signature, or a verified body that is not text).
    WebhooksRejected,
    /// An e-mail handed to SES.
    NotificationsSent,
}

impl Business {
    pub const ALL: [Business; 11] = [
        Business::BookingsCreated,
        Business::BookingsConfirmed,
        Business::BookingsCancelled,
        Business::BookingsExpired,
        Business::PaymentsSucceeded,
        Business::PaymentsFailed,
        Business::RefundsIssued,
        Business::RefundsFailed,
        Business::WebhooksAccepted,
        Business::WebhooksRejected,
        Business::NotificationsSent,
    ];

    /// The metric's name in CloudWatch (and in the local runtime's `/metrics`).
    pub const fn name(self) -> &'static str {
        match self {
            Business::BookingsCreated => "BookingsCreated",
            Business::BookingsConfirmed => "BookingsConfirmed",
            Business::BookingsCancelled => "BookingsCancelled",
            Business::BookingsExpired => "BookingsExpired",
            Business::PaymentsSucceeded => "PaymentsSucceeded",
            Business::PaymentsFailed => "PaymentsFailed",
            Business::RefundsIssued => "RefundsIssued",
            Business::RefundsFailed => "RefundsFailed",
            Business::WebhooksAccepted => "WebhooksAccepted",
            Business::WebhooksRejected => "WebhooksRejected",
            Business::NotificationsSent => "NotificationsSent",
        }
    }
}

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the EMF recorder for this process, the `Stage` dimension read from `STAGE` (a
/// missing stage fails the cold start). Call it once in `main`, after `telemetry::init`.
pub fn init() -> anyhow::Result<()> {
    let stage = config::required("STAGE")?;
    let collector = install(&stage, None)?;
    let _ = COLLECTOR.set(collector);
    Ok(())
}

/// The recorder, installed globally; `timestamp` fixed for tests.
fn install(stage: &str, timestamp: Option<u64>) -> anyhow::Result<&'static Collector> {
    let mut builder = Builder::new().cloudwatch_namespace(NAMESPACE).with_dimension(STAGE_DIMENSION, stage.to_owned());
    if let Some(timestamp) = timestamp {
        builder = builder.with_timestamp(timestamp);
    }
    let collector = builder.init().map_err(|e| anyhow::anyhow!("installing the EMF metrics recorder: {e}"))?;
    for metric in Business::ALL {
        ::metrics::describe_counter!(metric.name(), ::metrics::Unit::Count, "");
    }
    Ok(collector)
}

/// Counts one occurrence of `metric`. Without [`init`] (unit tests, tools) it goes nowhere.
pub fn count(metric: Business) {
    ::metrics::counter!(metric.name()).increment(1);
}

/// Writes what was counted since the last flush as EMF lines to stdout. Holds stdout's lock for
/// the whole write, so a log line from another task cannot land inside an EMF object.
pub fn flush() {
    let Some(collector) = COLLECTOR.get() else { return };
    let written = {
        let mut out = std::io::stdout().lock();
        collector.flush(&mut out).and_then(|()| out.flush())
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, "business metrics could not be written");
    }
}

/// Runs `invocation` (one event handler's work), then [`flush`]es, whatever it returned.
pub async fn flushed<T>(invocation: impl Future<Output = T>) -> T {
    let out = invocation.await;
    flush();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_contract() {
        let names: Vec<&str> = Business::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(
            names,
            [
                "BookingsCreated",
                "BookingsConfirmed",
                "BookingsCancelled",
                "BookingsExpired",
                "PaymentsSucceeded",
                "PaymentsFailed",
                "RefundsIssued",
                "RefundsFailed",
                "WebhooksAccepted",
                "WebhooksRejected",
                "NotificationsSent"
            ]
        );
        // Each variant's name is its own spelling, so `ALL` misses none and repeats none.
        for metric in Business::ALL {
            assert_eq!(format!("{metric:?}"), metric.name());
        }
    }

    /// The only test in this crate that installs the global recorder (once per process).
    #[test]
    fn emf_lines_carry_namespace_stage_and_counts_only() {
        let collector = install("staging", Some(1_700_000_000_000)).unwrap();
        count(Business::BookingsCreated);
        count(Business::BookingsCreated);
        count(Business::WebhooksRejected);
        let mut out = Vec::new();
        collector.flush(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Roost",
                        "Dimensions": [["Stage"]],
                        "Metrics": [
                            {"Name": "BookingsCreated", "Unit": "Count"},
                            {"Name": "WebhooksRejected", "Unit": "Count"}
                        ]
                    }]
                },
                "Stage": "staging",
                "BookingsCreated": 2,
                "WebhooksRejected": 1
            })
        );
        // Counters are deltas: nothing new since the last flush writes nothing.
        let mut again = Vec::new();
        collector.flush(&mut again).unwrap();
        assert!(again.is_empty(), "{}", String::from_utf8_lossy(&again));
    }
}
