//! `GET <runtime_url>/metrics`: the local stack's signals in the Prometheus text format
//! (docs/metrics.md), what CloudWatch shows in the cloud: per function invocations, errors,
//! durations, init durations and max memory (the numbers each REPORT line carries), the SQS
//! queues' depths (asked of moto at scrape time), and the business metrics the functions emit as
//! CloudWatch EMF lines on stdout, summed per metric name and stage.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use serde_json::Value;

use crate::aws::Moto;

/// The EMF namespace whose metrics are business metrics (shared::metrics::NAMESPACE), and the
/// dimension that becomes the `stage` label.
const BUSINESS_NAMESPACE: &str = "Roost";
const STAGE_DIMENSION: &str = "Stage";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BusinessLabels {
    metric: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

/// What the event sources did to delivery (docs/local-runtime.md, "Delivery"): counted so tests
/// can see that duplicates, reordering, retries and discards really happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryEvent {
    /// An SQS message delivered a second time (chaotic delivery).
    SqsDuplicate,
    /// An SQS batch handed to the function in another order than received (chaotic delivery).
    SqsReordered,
    /// A stream record handed to the function after one with a higher sequence number.
    StreamOutOfOrder,
    /// A failed stream batch retried (one attempt more).
    StreamRetry,
    /// A failed stream batch split (`BisectBatchOnFunctionError`; no attempt counted).
    StreamBisect,
    /// A stream batch given up on after `MaximumRetryAttempts` (sent to the on-failure destination).
    StreamDiscard,
}

type Histograms = Family<FunctionLabels, Histogram, fn() -> Histogram>;

/// 1 ms to about 33 s, doubling: a warm API call to a function's timeout.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// What one REPORT line says about an invocation that ended with an answer.
pub struct Report<'a> {
    pub function: &'a str,
    pub duration: Duration,
    pub init: Option<Duration>,
    pub max_memory_mb: Option<u64>,
    pub failed: bool,
}

pub struct RuntimeMetrics {
    registry: Registry,
    invocations: Family<FunctionLabels, Counter>,
    errors: Family<FunctionLabels, Counter>,
    duration: Histograms,
    init_duration: Histograms,
    max_memory: Family<FunctionLabels, Gauge>,
    business: Family<BusinessLabels, Counter>,
    visible: Family<QueueLabels, Gauge>,
    in_flight: Family<QueueLabels, Gauge>,
    delivery: [Family<FunctionLabels, Counter>; 6],
    /// moto and the queues (name -> URL), known once provisioning is done.
    queues: OnceLock<(Moto, BTreeMap<String, String>)>,
}

impl Default for RuntimeMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("roost");
        let invocations = Family::default();
        let errors = Family::default();
        let duration: Histograms = Family::new_with_constructor(seconds_histogram);
        let init_duration: Histograms = Family::new_with_constructor(seconds_histogram);
        let max_memory = Family::default();
        let business = Family::default();
        let (visible, in_flight) = (Family::default(), Family::default());
        let lambda = registry.sub_registry_with_prefix("lambda");
        lambda.register("invocations", "Invocations that ended (answer, error, crash or timeout)", invocations.clone());
        lambda.register("errors", "Invocations that ended in a function error, crash or timeout", errors.clone());
        lambda.register_with_unit("duration", "Invocation duration (REPORT Duration)", Unit::Seconds, duration.clone());
        lambda.register_with_unit(
            "init_duration",
            "Cold start: process spawn to its first /next (REPORT Init Duration)",
            Unit::Seconds,
            init_duration.clone(),
        );
        lambda.register_with_unit(
            "max_memory_used",
            "Peak RSS of the process of the last invocation (REPORT Max Memory Used)",
            Unit::Bytes,
            max_memory.clone(),
        );
        let sqs = registry.sub_registry_with_prefix("sqs");
        sqs.register("messages_visible", "ApproximateNumberOfMessages, at scrape time", visible.clone());
        sqs.register("messages_in_flight", "ApproximateNumberOfMessagesNotVisible, at scrape time", in_flight.clone());
        let delivery: [Family<FunctionLabels, Counter>; 6] = Default::default();
        let sub = registry.sub_registry_with_prefix("delivery");
        for (event, help) in [
            (DeliveryEvent::SqsDuplicate, "SQS messages delivered a second time (chaotic delivery)"),
            (DeliveryEvent::SqsReordered, "SQS batches delivered in another order than received (chaotic delivery)"),
            (DeliveryEvent::StreamOutOfOrder, "Stream records delivered after one with a higher sequence number"),
            (DeliveryEvent::StreamRetry, "Failed stream batches retried"),
            (DeliveryEvent::StreamBisect, "Failed stream batches split (BisectBatchOnFunctionError)"),
            (DeliveryEvent::StreamDiscard, "Stream batches discarded after MaximumRetryAttempts"),
        ] {
            sub.register(delivery_name(event), help, delivery[event as usize].clone());
        }
        registry.register(
            "business_events",
            "Business metrics from the functions' EMF lines (namespace Roost), by metric name and stage",
            business.clone(),
        );
        Self {
            registry,
            invocations,
            errors,
            duration,
            init_duration,
            max_memory,
            business,
            visible,
            in_flight,
            delivery,
            queues: OnceLock::new(),
        }
    }
}

impl RuntimeMetrics {
    /// The queues to report the depth of; their depths are read from moto at each scrape.
    pub fn watch_queues(&self, moto: Moto, queues: BTreeMap<String, String>) {
        let _ = self.queues.set((moto, queues));
    }

    /// An invocation answered (or failed) through the Runtime API: what its REPORT line says.
    pub fn report(&self, report: &Report<'_>) {
        let labels = FunctionLabels { function: report.function.to_owned() };
        self.invocations.get_or_create(&labels).inc();
        if report.failed {
            self.errors.get_or_create(&labels).inc();
        }
        self.duration.get_or_create(&labels).observe(report.duration.as_secs_f64());
        if let Some(init) = report.init {
            self.init_duration.get_or_create(&labels).observe(init.as_secs_f64());
        }
        if let Some(mb) = report.max_memory_mb {
            self.max_memory.get_or_create(&labels).set(i64::try_from(mb * 1024 * 1024).unwrap_or(i64::MAX));
        }
    }

    /// One delivery event of `function`'s event source.
    pub fn delivery(&self, event: DeliveryEvent, function: &str) {
        self.delivery[event as usize].get_or_create(&FunctionLabels { function: function.to_owned() }).inc();
    }

    /// An invocation that ended without an answer: its process crashed or timed out.
    pub fn crashed(&self, function: &str) {
        let labels = FunctionLabels { function: function.to_owned() };
        self.invocations.get_or_create(&labels).inc();
        self.errors.get_or_create(&labels).inc();
    }

    /// One line of a function's output: an EMF document of the business namespace adds its
    /// counts; anything else is ignored.
    pub fn observe_output(&self, line: &str) {
        for (metric, stage, count) in business_counts(line) {
            self.business.get_or_create(&BusinessLabels { metric, stage }).inc_by(count);
        }
    }

    /// The text a scrape gets: the queues' depths asked of moto now, then every series.
    pub async fn scrape(&self) -> String {
        if let Some((moto, queues)) = self.queues.get() {
            for (name, url) in queues {
                self.read_depth(moto, name, url).await;
            }
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry) {
            text = format!("# encoding failed: {e}\n");
        }
        text
    }

    /// A queue moto cannot answer for is left out of this scrape rather than reported stale.
    async fn read_depth(&self, moto: &Moto, name: &str, url: &str) {
        let labels = QueueLabels { queue: name.to_owned() };
        let body = serde_json::json!({
            "QueueUrl": url,
            "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        });
        let attribute = |answer: &Value, name: &str| answer["Attributes"][name].as_str().and_then(|n| n.parse().ok());
        match moto.sqs("GetQueueAttributes", body).await {
            Ok(answer) => {
                if let (Some(visible), Some(in_flight)) = (
                    attribute(&answer, "ApproximateNumberOfMessages"),
                    attribute(&answer, "ApproximateNumberOfMessagesNotVisible"),
                ) {
                    self.visible.get_or_create(&labels).set(visible);
                    self.in_flight.get_or_create(&labels).set(in_flight);
                    return;
                }
                self.forget_queue(&labels);
            }
            Err(_) => self.forget_queue(&labels),
        }
    }

    fn forget_queue(&self, labels: &QueueLabels) {
        self.visible.remove(labels);
        self.in_flight.remove(labels);
    }
}

/// The series' names under `roost_delivery_` (the exporter adds `_total`).
fn delivery_name(event: DeliveryEvent) -> &'static str {
    match event {
        DeliveryEvent::SqsDuplicate => "sqs_duplicates",
        DeliveryEvent::SqsReordered => "sqs_reordered_batches",
        DeliveryEvent::StreamOutOfOrder => "stream_out_of_order_records",
        DeliveryEvent::StreamRetry => "stream_retries",
        DeliveryEvent::StreamBisect => "stream_bisections",
        DeliveryEvent::StreamDiscard => "stream_discarded_batches",
    }
}

/// The business counts in one output line: `(metric, stage, count)` for each metric of an EMF
/// document in the `Roost` namespace whose unit is `Count` (or unset). Not EMF: nothing.
fn business_counts(line: &str) -> Vec<(String, String, u64)> {
    // Cheap test first: most lines are logs.
    if !line.starts_with('{') || !line.contains("\"_aws\"") {
        return Vec::new();
    }
    let Ok(document) = serde_json::from_str::<Value>(line) else { return Vec::new() };
    let Some(directives) = document["_aws"]["CloudWatchMetrics"].as_array() else { return Vec::new() };
    let mut counts = Vec::new();
    for directive in directives.iter().filter(|d| d["Namespace"] == BUSINESS_NAMESPACE) {
        let has_stage = directive["Dimensions"].as_array().is_some_and(|sets| {
            sets.iter().any(|set| set.as_array().is_some_and(|s| s.iter().any(|d| d == STAGE_DIMENSION)))
        });
        let stage = if has_stage { document[STAGE_DIMENSION].as_str().unwrap_or_default() } else { "" };
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let Some(name) = metric["Name"].as_str() else { continue };
            if !matches!(metric.get("Unit").and_then(Value::as_str), None | Some("Count")) {
                continue;
            }
            counts.push((name.to_owned(), stage.to_owned(), count_of(&document[name])));
        }
    }
    counts
}

/// A count's value: a whole number, or EMF's array of values (summed). Fractions and negatives
/// are not counts: 0.
fn count_of(value: &Value) -> u64 {
    match value {
        Value::Array(values) => values.iter().map(count_of).sum(),
        other => other.as_u64().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMF: &str = r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"Roost","Dimensions":[["Stage"]],"Metrics":[{"Name":"BookingsCreated","Unit":"Count"},{"Name":"WebhooksRejected","Unit":"Count"}]}]},"Stage":"dev","BookingsCreated":2,"WebhooksRejected":1}"#;

    #[test]
    fn emf_lines_give_their_counts_and_other_lines_nothing() {
        assert_eq!(
            business_counts(EMF),
            [("BookingsCreated".to_owned(), "dev".to_owned(), 2), ("WebhooksRejected".to_owned(), "dev".to_owned(), 1)]
        );
        for not_business in [
            r#"{"level":"INFO","message":"request","status":200}"#,
            r#"{"level":"INFO","message":"mentions \"_aws\" but is a log"}"#,
            r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"Other","Dimensions":[[]],"Metrics":[{"Name":"X"}]}]},"X":1}"#,
            r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"Roost","Dimensions":[["Stage"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"}]}]},"Stage":"dev","Latency":12}"#,
            "REPORT RequestId: x\tDuration: 1.00 ms",
            "{not json \"_aws\"",
        ] {
            assert_eq!(business_counts(not_business), [], "{not_business}");
        }
        let values = r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"Roost","Dimensions":[["Stage"]],"Metrics":[{"Name":"RefundsIssued"}]}]},"Stage":"prod","RefundsIssued":[1,2]}"#;
        assert_eq!(business_counts(values), [("RefundsIssued".to_owned(), "prod".to_owned(), 3)]);
    }

    #[tokio::test]
    async fn a_scrape_shows_reports_crashes_and_business_counts() {
        let metrics = RuntimeMetrics::default();
        let report = |failed, init| Report {
            function: "BookingsFunction",
            duration: Duration::from_millis(3),
            init,
            max_memory_mb: Some(12),
            failed,
        };
        metrics.report(&report(false, Some(Duration::from_millis(40))));
        metrics.report(&report(true, None));
        metrics.crashed("BookingsFunction");
        metrics.observe_output(EMF);
        metrics.observe_output(EMF);
        metrics.delivery(DeliveryEvent::SqsDuplicate, "NotificationsFunction");
        metrics.delivery(DeliveryEvent::StreamDiscard, "EventsRelayFunction");
        metrics.delivery(DeliveryEvent::StreamDiscard, "EventsRelayFunction");
        let text = metrics.scrape().await;
        for line in [
            r#"roost_lambda_invocations_total{function="BookingsFunction"} 3"#,
            r#"roost_lambda_errors_total{function="BookingsFunction"} 2"#,
            r#"roost_lambda_duration_seconds_count{function="BookingsFunction"} 2"#,
            r#"roost_lambda_duration_seconds_bucket{function="BookingsFunction",le="0.004"} 2"#,
            r#"roost_lambda_duration_seconds_bucket{function="BookingsFunction",le="0.002"} 0"#,
            r#"roost_lambda_init_duration_seconds_count{function="BookingsFunction"} 1"#,
            r#"roost_lambda_max_memory_used_bytes{function="BookingsFunction"} 12582912"#,
            r#"roost_business_events_total{metric="BookingsCreated",stage="dev"} 4"#,
            r#"roost_business_events_total{metric="WebhooksRejected",stage="dev"} 2"#,
            "# TYPE roost_lambda_duration_seconds histogram",
            r#"roost_delivery_sqs_duplicates_total{function="NotificationsFunction"} 1"#,
            r#"roost_delivery_stream_discarded_batches_total{function="EventsRelayFunction"} 2"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
    }
}
