//! Event source mappings, locally: SQS (batches, partial batch failures, redrive by moto's own
//! `maxReceiveCount` handling), DynamoDB Streams (with the mapping's filter criteria) and schedules.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use serde_json::{Value, json};

use crate::aws::Moto;
use crate::lambda::{Lambda, Outcome, new_request_id};
use crate::template::{ACCOUNT_ID, REGION};

pub struct SqsSource {
    pub function: String,
    pub queue_arn: String,
    pub queue_url: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_failures: bool,
    pub concurrency: usize,
    pub filters: Vec<Value>,
}

pub struct StreamSource {
    pub function: String,
    pub stream_arn: String,
    pub starting_position: String,
    pub batch_size: usize,
    pub report_failures: bool,
    pub filters: Vec<Value>,
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

/// `{"batchItemFailures":[{"itemIdentifier": id}]}`; anything else fails the whole batch, as on Lambda.
fn failed_ids(body: &[u8]) -> Option<Vec<String>> {
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

pub fn spawn_stream(lambda: Arc<Lambda>, moto: Moto, source: StreamSource) {
    tokio::spawn(async move {
        poll_until_stopped(&lambda, &source.function, "stream poller", || run_stream(&lambda, &moto, &source)).await
    });
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

async fn run_stream(lambda: &Arc<Lambda>, moto: &Moto, source: &StreamSource) -> Result<()> {
    let description = moto.streams("DescribeStream", json!({"StreamArn": source.stream_arn})).await?;
    let shards =
        description.pointer("/StreamDescription/Shards").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut pollers = Vec::new();
    for shard in shards {
        let shard_id = shard["ShardId"].as_str().context("ShardId")?.to_string();
        let iterator = moto
            .streams(
                "GetShardIterator",
                json!({"StreamArn": source.stream_arn, "ShardId": shard_id, "ShardIteratorType": source.starting_position}),
            )
            .await?;
        let iterator = iterator["ShardIterator"].as_str().context("ShardIterator")?.to_string();
        pollers.push(poll_shard(lambda, moto, source, iterator));
    }
    for result in futures_join(pollers).await {
        result?;
    }
    Ok(())
}

async fn futures_join<F: std::future::Future<Output = Result<()>>>(futures: Vec<F>) -> Vec<Result<()>> {
    let mut out = Vec::new();
    // One shard per table in moto; poll them in turn rather than pull in a futures crate.
    for f in futures {
        out.push(f.await);
    }
    out
}

async fn poll_shard(lambda: &Arc<Lambda>, moto: &Moto, source: &StreamSource, mut iterator: String) -> Result<()> {
    loop {
        let page = moto.streams("GetRecords", json!({"ShardIterator": iterator, "Limit": source.batch_size})).await?;
        if let Some(next) = page.get("NextShardIterator").and_then(Value::as_str) {
            iterator = next.to_string();
        }
        let records: Vec<Value> = page
            .get("Records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| passes(&source.filters, r))
            .map(|r| {
                let mut r = r.clone();
                r["eventSourceARN"] = Value::String(source.stream_arn.clone());
                r
            })
            .collect();
        if records.is_empty() {
            // moto keeps every shard iterator it hands out: poll an idle stream gently.
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        deliver_in_order(lambda, source, records).await;
    }
}

/// A stream shard is processed in order: a failing batch is retried (from the first reported
/// failure when the function reports batch item failures) before anything after it.
async fn deliver_in_order(lambda: &Arc<Lambda>, source: &StreamSource, mut records: Vec<Value>) {
    let mut delay = Duration::from_millis(200);
    while !records.is_empty() {
        let event = json!({ "Records": records });
        let outcome = lambda.invoke(&source.function, Bytes::from(event.to_string())).await;
        let retry_from = match outcome {
            Ok(Outcome::Response(body)) if source.report_failures => stream_retry_from(&records, failed_ids(&body)),
            Ok(Outcome::Response(_)) => None,
            _ => Some(0),
        };
        match retry_from {
            None => return,
            Some(i) => {
                records.drain(..i);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Where a stream batch resumes after a `ReportBatchItemFailures` answer: at the lowest reported
/// sequence number, nowhere when none is reported, and at the start when the answer is malformed
/// or names a record that is not in the batch (an empty or unknown identifier fails the whole
/// batch, as on Lambda: it must never pass for a success).
fn stream_retry_from(records: &[Value], failed: Option<Vec<String>>) -> Option<usize> {
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
    fn batch_item_failures_parse() {
        assert_eq!(failed_ids(br#"{"batchItemFailures":[{"itemIdentifier":"m1"}]}"#), Some(vec!["m1".to_string()]));
        assert_eq!(failed_ids(br#"{"batchItemFailures":[]}"#), Some(vec![]));
        assert_eq!(failed_ids(b"null"), Some(vec![]));
        assert_eq!(failed_ids(br#"{}"#), Some(vec![]));
        assert_eq!(failed_ids(br#"{"batchItemFailures":[{"itemIdentifier":null}]}"#), None);
    }
}
