//! Event source mappings, locally: SQS (batches, partial batch failures, redrive by moto's own
//! `maxReceiveCount` handling; in chaotic delivery shuffled batches and duplicate deliveries) and
//! schedules. DynamoDB Streams are in crate::streams; the filter rules here serve both.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use serde_json::{Value, json};

use crate::aws::Moto;
use crate::lambda::{Lambda, Outcome, new_request_id};
use crate::metrics::DeliveryEvent;
use crate::template::{ACCOUNT_ID, REGION};

pub struct SqsSource {
    pub function: String,
    pub queue_arn: String,
    pub queue_url: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_failures: bool,
    /// Pollers, as Lambda starts them: 5, or fewer under `ScalingConfig.MaximumConcurrency`.
    pub concurrency: usize,
    pub filters: Vec<Value>,
    /// `--delivery chaotic`: shuffle each batch and deliver some messages twice.
    pub chaos: Option<SqsChaos>,
}

/// At-least-once, unordered delivery as a standard queue gives it on AWS.
#[derive(Clone, Copy, Debug)]
pub struct SqsChaos {
    /// The share of messages also delivered a second time, in an invocation of their own.
    pub duplicate_rate: f64,
}

/// How many pollers Lambda starts for an SQS event source: five, and no more than the
/// mapping's `MaximumConcurrency` (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html>).
pub fn sqs_pollers(maximum_concurrency: Option<usize>) -> usize {
    const LAMBDA_INITIAL_POLLERS: usize = 5;
    maximum_concurrency.map_or(LAMBDA_INITIAL_POLLERS, |max| max.clamp(1, LAMBDA_INITIAL_POLLERS))
}

/// Shuffles `records` in place (true when the order changed) and picks the ones to deliver a
/// second time, each with probability `duplicate_rate`.
pub fn scramble<R: rand::Rng>(records: &mut [Value], duplicate_rate: f64, rng: &mut R) -> (bool, Vec<Value>) {
    use rand::seq::SliceRandom;
    let before: Vec<Value> = records.iter().map(|r| r["messageId"].clone()).collect();
    records.shuffle(rng);
    let reordered = records.iter().map(|r| &r["messageId"]).ne(before.iter());
    let duplicates = records.iter().filter(|_| rng.random::<f64>() < duplicate_rate).cloned().collect();
    (reordered, duplicates)
}

pub struct Schedule {
    pub function: String,
    pub name: String,
    pub every: Duration,
}

/// `rate(5 minutes)`; cron expressions are not run locally (see docs/local-runtime.md).
pub fn parse_rate(expression: &str) -> Result<Duration> {
    let inner =
        expression.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')).context("only rate(...) runs locally")?;
    let (n, unit) = inner.split_once(' ').context("rate(N unit)")?;
    let n: u64 = n.parse()?;
    let seconds = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86400,
        other => bail!("unknown rate unit {other}"),
    };
    Ok(Duration::from_secs(n * seconds))
}

/// Parses `FilterCriteria.Filters[].Pattern` (each a JSON string).
pub fn filters(properties: &Value) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for filter in properties.pointer("/FilterCriteria/Filters").and_then(Value::as_array).into_iter().flatten() {
        let pattern = filter.get("Pattern").context("filter without Pattern")?;
        out.push(match pattern {
            Value::String(s) => serde_json::from_str(s).with_context(|| format!("filter pattern {s}"))?,
            other => other.clone(),
        });
    }
    Ok(out)
}

/// Lambda's event filtering: a record passes if any pattern matches (no patterns: all pass).
pub fn passes(filters: &[Value], record: &Value) -> bool {
    filters.is_empty() || filters.iter().any(|p| pattern_matches(p, Some(record)))
}

fn pattern_matches(pattern: &Value, value: Option<&Value>) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, sub)| pattern_matches(sub, value.and_then(|v| v.get(key)))),
        Value::Array(matchers) => matchers.iter().any(|m| matcher_matches(m, value)),
        _ => false,
    }
}

fn matcher_matches(matcher: &Value, value: Option<&Value>) -> bool {
    if let Some(Value::Array(items)) = value {
        return items.iter().any(|v| matcher_matches(matcher, Some(v)));
    }
    match matcher {
        Value::Object(rule) => {
            if let Some(exists) = rule.get("exists").and_then(Value::as_bool) {
                return value.is_some() == exists;
            }
            let Some(value) = value else { return false };
            if let Some(prefix) = rule.get("prefix").and_then(Value::as_str) {
                return value.as_str().is_some_and(|s| s.starts_with(prefix));
            }
            if let Some(excluded) = rule.get("anything-but") {
                let excluded = excluded.as_array().cloned().unwrap_or_else(|| vec![excluded.clone()]);
                return !excluded.contains(value);
            }
            false
        }
        literal => value == Some(literal),
    }
}

pub fn spawn_sqs(lambda: Arc<Lambda>, moto: Moto, source: SqsSource) {
    let source = Arc::new(source);
    for _ in 0..source.concurrency.max(1) {
        let (lambda, moto, source) = (lambda.clone(), moto.clone(), source.clone());
        tokio::spawn(async move {
            poll_until_stopped(&lambda, &source.function, "SQS poller", || poll_sqs_once(&lambda, &moto, &source)).await
        });
    }
}

async fn poll_sqs_once(lambda: &Arc<Lambda>, moto: &Moto, source: &SqsSource) -> Result<()> {
    let mut messages: Vec<Value> = Vec::new();
    let window_ends = tokio::time::Instant::now() + source.batching_window;
    loop {
        let wanted = (source.batch_size - messages.len()).min(10);
        let wait = if messages.is_empty() { 2 } else { 0 };
        let received = moto
            .sqs(
                "ReceiveMessage",
                json!({
                    "QueueUrl": source.queue_url,
                    "MaxNumberOfMessages": wanted,
                    "WaitTimeSeconds": wait,
                    "AttributeNames": ["All"],
                    "MessageSystemAttributeNames": ["All"],
                    "MessageAttributeNames": ["All"],
                }),
            )
            .await?;
        let got = received.get("Messages").and_then(Value::as_array).cloned().unwrap_or_default();
        let empty = got.is_empty();
        messages.extend(got);
        if messages.len() >= source.batch_size
            || tokio::time::Instant::now() >= window_ends
            || (empty && !messages.is_empty())
        {
            break;
        }
        if empty {
            return Ok(());
        }
    }
    if messages.is_empty() {
        return Ok(());
    }
    let records: Vec<Value> = messages.iter().map(|m| sqs_record(m, &source.queue_arn)).collect();
    // Filtered-out messages are deleted, as Lambda does.
    let (records, dropped): (Vec<Value>, Vec<Value>) = records.into_iter().partition(|r| {
        let body = r["body"].as_str().and_then(|b| serde_json::from_str::<Value>(b).ok());
        let view = json!({"body": body, "attributes": r["attributes"], "messageAttributes": r["messageAttributes"]});
        passes(&source.filters, &view)
    });
    delete(moto, &source.queue_url, &dropped).await?;
    if records.is_empty() {
        return Ok(());
    }
    let mut records = records;
    if let Some(chaos) = source.chaos {
        deliver_chaotically(lambda, source, chaos.duplicate_rate, &mut records);
    }
    let event = json!({ "Records": records });
    let outcome = lambda.invoke(&source.function, Bytes::from(event.to_string())).await?;
    let succeeded: Vec<Value> = match outcome {
        Outcome::Response(body) if source.report_failures => {
            let known = |id: &String| records.iter().any(|r| r["messageId"].as_str() == Some(id.as_str()));
            // An unknown or missing identifier fails the whole batch, as on Lambda.
            let Some(failed) = failed_ids(&body).filter(|ids| ids.iter().all(known)) else { return Ok(()) };
            records
                .into_iter()
                .filter(|r| !failed.iter().any(|id| Some(id.as_str()) == r["messageId"].as_str()))
                .collect()
        }
        Outcome::Response(_) => records,
        // The whole batch returns to the queue when its visibility timeout ends.
        Outcome::Error(_) | Outcome::Crashed(_) => Vec::new(),
    };
    delete(moto, &source.queue_url, &succeeded).await
}

/// Chaotic delivery: shuffles the batch and sends a share of its messages a second time.
fn deliver_chaotically(lambda: &Arc<Lambda>, source: &SqsSource, duplicate_rate: f64, records: &mut [Value]) {
    let (reordered, duplicates) = scramble(records, duplicate_rate, &mut rand::rng());
    if reordered {
        lambda.metrics.delivery(DeliveryEvent::SqsReordered, &source.function);
    }
    for duplicate in duplicates {
        // A second delivery racing the first, as when a message is received again by
        // another poller: its outcome deletes nothing (the first delivery's decides).
        lambda.metrics.delivery(DeliveryEvent::SqsDuplicate, &source.function);
        let (lambda, function) = (lambda.clone(), source.function.clone());
        tokio::spawn(async move {
            let event = json!({ "Records": [duplicate] });
            if let Err(e) = lambda.invoke(&function, Bytes::from(event.to_string())).await {
                eprintln!("[{function}] SQS duplicate delivery: {e:#}");
            }
        });
    }
}

/// `{"batchItemFailures":[{"itemIdentifier": id}]}`; anything else fails the whole batch, as on Lambda.
pub fn failed_ids(body: &[u8]) -> Option<Vec<String>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    if value.is_null() {
        return Some(Vec::new());
    }
    let failures = match value.get("batchItemFailures") {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(failures) => failures,
    };
    failures.as_array()?.iter().map(|f| f.get("itemIdentifier")?.as_str().map(str::to_string)).collect()
}

async fn delete(moto: &Moto, queue_url: &str, records: &[Value]) -> Result<()> {
    for chunk in records.chunks(10) {
        let entries: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"Id": i.to_string(), "ReceiptHandle": r["receiptHandle"]}))
            .collect();
        moto.sqs("DeleteMessageBatch", json!({"QueueUrl": queue_url, "Entries": entries})).await?;
    }
    Ok(())
}

fn sqs_record(message: &Value, queue_arn: &str) -> Value {
    let attributes = message.get("MessageAttributes").and_then(Value::as_object).map(|attrs| {
        attrs
            .iter()
            .map(|(name, a)| {
                let mut v = json!({"dataType": a["DataType"], "stringListValues": [], "binaryListValues": []});
                if let Some(s) = a.get("StringValue") {
                    v["stringValue"] = s.clone();
                }
                if let Some(b) = a.get("BinaryValue") {
                    v["binaryValue"] = b.clone();
                }
                (name.clone(), v)
            })
            .collect::<serde_json::Map<_, _>>()
    });
    json!({
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes").cloned().unwrap_or(json!({})),
        "messageAttributes": attributes.unwrap_or_default(),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    })
}

/// Runs `poll` again and again; after an error it logs it and waits a second before the next
/// round, unless the stack is stopping (then the error is the shutdown's and the poller ends).
async fn poll_until_stopped<F: std::future::Future<Output = Result<()>>>(
    lambda: &Lambda,
    function: &str,
    poller: &str,
    mut poll: impl FnMut() -> F,
) {
    loop {
        if let Err(e) = poll().await {
            if lambda.is_stopping() {
                return;
            }
            eprintln!("[{function}] {poller}: {e:#}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Where a stream batch resumes after a `ReportBatchItemFailures` answer: at the lowest reported
/// sequence number, nowhere when none is reported, and at the start when the answer is malformed
/// or names a record that is not in the batch (an empty or unknown identifier fails the whole
/// batch, as on Lambda: it must never pass for a success).
pub fn stream_retry_from(records: &[Value], failed: Option<Vec<String>>) -> Option<usize> {
    let Some(failed) = failed else { return Some(0) };
    let positions: Option<Vec<usize>> = failed
        .iter()
        .map(|id| {
            records.iter().position(|r| r.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str) == Some(id))
        })
        .collect();
    match positions {
        Some(positions) => positions.into_iter().min(),
        None => Some(0),
    }
}

pub fn spawn_schedule(lambda: Arc<Lambda>, schedule: Schedule) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(schedule.every);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let event = scheduled_event(&schedule.function, &schedule.name);
            if let Err(e) = lambda.invoke(&schedule.function, Bytes::from(event.to_string())).await {
                eprintln!("[{}] schedule {}: {e:#}", schedule.function, schedule.name);
            }
        }
    });
}

/// The EventBridge "Scheduled Event" a schedule delivers.
pub fn scheduled_event(function: &str, name: &str) -> Value {
    json!({
        "version": "0",
        "id": new_request_id(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": jiff::Timestamp::now().to_string(),
        "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{function}-{name}")],
        "detail": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("rate(1 minute)").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_rate("rate(5 minutes)").unwrap(), Duration::from_secs(300));
        assert!(parse_rate("cron(0 * * * ? *)").is_err());
    }

    #[test]
    fn stream_filters_match_as_lambda_does() {
        let filters = vec![json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["outbox"]}}}})];
        let record =
            |event: &str, kind: &str| json!({"eventName": event, "dynamodb": {"NewImage": {"type": {"S": kind}}}});
        assert!(passes(&filters, &record("INSERT", "outbox")));
        assert!(!passes(&filters, &record("MODIFY", "outbox")));
        assert!(!passes(&filters, &record("INSERT", "booking")));
        assert!(!passes(&filters, &json!({"eventName": "REMOVE"})));
        assert!(passes(&[], &json!({})));
    }

    #[test]
    fn prefix_exists_and_anything_but() {
        let value = json!({"a": "booking.created", "b": 3});
        assert!(passes(&[json!({"a": [{"prefix": "booking."}]})], &value));
        assert!(passes(&[json!({"c": [{"exists": false}]})], &value));
        assert!(!passes(&[json!({"b": [{"exists": false}]})], &value));
        assert!(passes(&[json!({"a": [{"anything-but": ["x"]}]})], &value));
        assert!(!passes(&[json!({"b": [{"anything-but": [3]}]})], &value));
    }

    #[test]
    fn stream_batches_resume_from_the_first_reported_record() {
        let records: Vec<Value> =
            ["10", "11", "12"].iter().map(|s| json!({"dynamodb": {"SequenceNumber": s}})).collect();
        let ids = |ids: &[&str]| Some(ids.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(stream_retry_from(&records, ids(&[])), None);
        assert_eq!(stream_retry_from(&records, ids(&["12", "11"])), Some(1));
        assert_eq!(stream_retry_from(&records, None), Some(0));
        assert_eq!(stream_retry_from(&records, ids(&[""])), Some(0), "an empty identifier fails the batch");
        assert_eq!(stream_retry_from(&records, ids(&["12", "99"])), Some(0), "an unknown identifier fails the batch");
    }

    #[test]
    fn lambda_starts_five_pollers_bounded_by_maximum_concurrency() {
        assert_eq!(sqs_pollers(None), 5);
        assert_eq!(sqs_pollers(Some(2)), 2);
        assert_eq!(sqs_pollers(Some(1000)), 5);
    }

    #[test]
    fn scrambled_batches_keep_every_message_and_duplicate_some() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let batch: Vec<Value> = (0..10).map(|i| json!({"messageId": format!("m{i}")})).collect();
        let (mut reordered, mut duplicated) = (0, 0);
        for _ in 0..200 {
            let mut records = batch.clone();
            let (changed, duplicates) = scramble(&mut records, 0.05, &mut rng);
            let mut ids: Vec<&str> = records.iter().filter_map(|r| r["messageId"].as_str()).collect();
            ids.sort();
            let mut expected: Vec<&str> = batch.iter().filter_map(|r| r["messageId"].as_str()).collect();
            expected.sort();
            assert_eq!(ids, expected, "a shuffle loses or adds nothing");
            assert_eq!(changed, records != batch);
            assert!(duplicates.iter().all(|d| batch.contains(d)));
            reordered += usize::from(changed);
            duplicated += duplicates.len();
        }
        assert!(reordered > 190, "{reordered} of 200 batches of 10 reordered");
        // 2,000 messages at 5 %: about 100.
        assert!((50..200).contains(&duplicated), "{duplicated} duplicates");
        let mut records = batch.clone();
        assert_eq!(scramble(&mut records, 0.0, &mut rng).1, Vec::<Value>::new());
    }

    #[test]
    fn batch_item_failures_parse() {
        assert_eq!(failed_ids(br#"{"batchItemFailures":[{"itemIdentifier":"m1"}]}"#), Some(vec!["m1".to_string()]));
        assert_eq!(failed_ids(br#"{"batchItemFailures":[]}"#), Some(vec![]));
        assert_eq!(failed_ids(b"null"), Some(vec![]));
        assert_eq!(failed_ids(br#"{}"#), Some(vec![]));
        assert_eq!(failed_ids(br#"{"batchItemFailures":[{"itemIdentifier":null}]}"#), None);
    }
}
