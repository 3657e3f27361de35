//! The DynamoDB Streams event source, locally: shards read from `StartingPosition`, the
//! mapping's filter, and its failure settings applied as Lambda applies them
//! (`BisectBatchOnFunctionError`, `MaximumRetryAttempts`, `DestinationConfig.OnFailure`).
//!
//! In `--delivery chaotic` the one shard moto has is spread over several simulated shards by
//! partition key (records of one key stay in order, as on AWS, where a partition's records are in
//! one shard), and the simulated shards run in parallel, so the function sees records of
//! different keys out of sequence order, as it does on AWS with a table of several shards.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::aws::Moto;
use crate::lambda::{Lambda, Outcome, new_request_id, physical_name};
use crate::metrics::DeliveryEvent;
use crate::sources::{failed_ids, passes};
use crate::template::{ACCOUNT_ID, REGION};

pub struct StreamSource {
    pub function: String,
    pub stream_arn: String,
    pub starting_position: String,
    pub batch_size: usize,
    pub report_failures: bool,
    pub filters: Vec<Value>,
    pub policy: FailurePolicy,
    /// `DestinationConfig.OnFailure` (an SQS queue): where a discarded batch's coordinates go.
    pub on_failure: Option<FailureQueue>,
    /// Simulated shards per real shard: 1 in ordered delivery.
    pub shards: usize,
    pub retry_delay: RetryDelay,
}

/// The mapping's settings for a batch the function fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailurePolicy {
    /// `BisectBatchOnFunctionError`.
    pub bisect: bool,
    /// `MaximumRetryAttempts`; `None` (absent or -1): retried until the record expires.
    pub max_retries: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct FailureQueue {
    pub arn: String,
    pub url: String,
}

/// How long a shard waits before retrying a failed batch.
#[derive(Clone, Copy, Debug)]
pub enum RetryDelay {
    /// Test mode: a short fixed delay, so 100 retries fit in seconds.
    Fixed(Duration),
    /// `roost up`: from `first`, doubling per retry of the same records, at most `max`.
    Backoff { first: Duration, max: Duration },
}

impl RetryDelay {
    fn after(self, retries: u32) -> Duration {
        match self {
            RetryDelay::Fixed(d) => d,
            RetryDelay::Backoff { first, max } => first.saturating_mul(1 << retries.min(16)).min(max),
        }
    }
}

/// Consecutive records of one shard delivered in one invocation, and how many times these
/// records have been retried so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub records: Vec<Value>,
    pub retries: u32,
}

/// How an invocation of a batch ended, as the event source mapping sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    /// The records from index `from` on failed: a function error or unusable answer (`from` 0),
    /// or `ReportBatchItemFailures` naming the record at `from` as the lowest failure.
    Failed {
        from: usize,
    },
    /// Lambda could not invoke the function (throttled): retried, not counted as an attempt.
    Throttled,
}

/// What the shard does next with a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    Done,
    /// Deliver these batches next, in this order, before anything later in the shard.
    Retry(Vec<Batch>),
    /// Retries are used up: send the batch's coordinates to the on-failure destination and move on.
    Discard(Batch),
}

/// Lambda's rules for a failed stream batch
/// (<https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html>,
/// <https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>):
/// - records before the reported failure are checkpointed; only the rest are retried;
/// - with `BisectBatchOnFunctionError`, a failed batch is split in two (at the reported record
///   when there is partial success, else in halves); "splitting a batch does not count towards
///   the retry quota", so the halves keep the count the batch had;
/// - otherwise the failed records are retried, one attempt more, until `MaximumRetryAttempts`
///   retries have failed: then they are discarded.
pub fn after(batch: Batch, verdict: Verdict, policy: FailurePolicy) -> Next {
    let from = match verdict {
        Verdict::Succeeded => return Next::Done,
        Verdict::Throttled => return Next::Retry(vec![batch]),
        Verdict::Failed { from } => from.min(batch.records.len().saturating_sub(1)),
    };
    if from > 0 && policy.bisect {
        // Partial success with bisect on: split at the returned sequence number.
        return Next::Retry(vec![Batch { records: batch.records[from..].to_vec(), retries: batch.retries }]);
    }
    if from == 0 && policy.bisect && batch.records.len() > 1 {
        let mid = batch.records.len().div_ceil(2);
        let (left, right) = batch.records.split_at(mid);
        return Next::Retry(vec![
            Batch { records: left.to_vec(), retries: batch.retries },
            Batch { records: right.to_vec(), retries: batch.retries },
        ]);
    }
    let remaining = Batch { records: batch.records[from..].to_vec(), retries: batch.retries };
    if policy.max_retries.is_some_and(|max| remaining.retries >= max) {
        return Next::Discard(remaining);
    }
    Next::Retry(vec![Batch { retries: remaining.retries + 1, ..remaining }])
}

/// Which simulated shard a record goes to: by its partition key's value, so records of one key
/// stay in one shard, in order.
pub fn shard_of(record: &Value, partition_key: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let key = record.pointer(&format!("/dynamodb/Keys/{partition_key}")).map(Value::to_string).unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

fn sequence_of(record: &Value) -> Option<&str> {
    record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str)
}

/// The JSON Lambda sends to a stream mapping's on-failure destination (an "invocation record"),
/// <https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html>.
pub fn failure_record(
    function: &str,
    stream_arn: &str,
    shard_id: &str,
    batch: &Batch,
    request_id: &str,
    function_error: Option<&str>,
) -> Value {
    let first = batch.records.first();
    let last = batch.records.last();
    let arrival = |r: Option<&Value>| {
        r.and_then(|r| r.pointer("/dynamodb/ApproximateCreationDateTime"))
            .and_then(Value::as_f64)
            .and_then(|s| jiff::Timestamp::from_second(s as i64).ok())
            .unwrap_or_else(jiff::Timestamp::now)
            .to_string()
    };
    let mut response_context = json!({"statusCode": 200, "executedVersion": "$LATEST"});
    if let Some(error) = function_error {
        response_context["functionError"] = json!(error);
    }
    json!({
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{}", physical_name(function)),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": batch.retries + 1,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": jiff::Timestamp::now().to_string(),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first.and_then(sequence_of),
            "endSequenceNumber": last.and_then(sequence_of),
            "approximateArrivalOfFirstRecord": arrival(first),
            "approximateArrivalOfLastRecord": arrival(last),
            "batchSize": batch.records.len(),
            "streamArn": stream_arn,
        }
    })
}

/// Reads every shard of the stream and runs its (simulated) shards, until the stack stops.
pub fn spawn_stream(lambda: Arc<Lambda>, moto: Moto, source: StreamSource) {
    let source = Arc::new(source);
    tokio::spawn(async move {
        loop {
            match start_shards(&lambda, &moto, &source).await {
                Ok(()) => return,
                Err(e) => {
                    if lambda.is_stopping() {
                        return;
                    }
                    eprintln!("[{}] stream poller: {e:#}", source.function);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

async fn start_shards(lambda: &Arc<Lambda>, moto: &Moto, source: &Arc<StreamSource>) -> Result<()> {
    let description = moto.streams("DescribeStream", json!({"StreamArn": source.stream_arn})).await?;
    let partition_key = description
        .pointer("/StreamDescription/KeySchema")
        .and_then(Value::as_array)
        .and_then(|keys| keys.iter().find(|k| k["KeyType"] == "HASH"))
        .and_then(|k| k["AttributeName"].as_str())
        .context("the stream's KeySchema has no HASH key")?
        .to_string();
    let shards =
        description.pointer("/StreamDescription/Shards").and_then(Value::as_array).cloned().unwrap_or_default();
    // Last sequence number handed to the function, across its shards: out-of-order counting.
    let highest = Arc::new(Mutex::new(0u128));
    for shard in shards {
        let shard_id = shard["ShardId"].as_str().context("ShardId")?.to_string();
        let iterator = moto
            .streams(
                "GetShardIterator",
                json!({"StreamArn": source.stream_arn, "ShardId": shard_id, "ShardIteratorType": source.starting_position}),
            )
            .await?;
        let iterator = iterator["ShardIterator"].as_str().context("ShardIterator")?.to_string();
        let mut senders = Vec::new();
        for _ in 0..source.shards.max(1) {
            let (send, receive) = mpsc::unbounded_channel();
            senders.push(send);
            let worker = ShardWorker {
                lambda: lambda.clone(),
                moto: moto.clone(),
                source: source.clone(),
                shard_id: shard_id.clone(),
                highest: highest.clone(),
            };
            tokio::spawn(worker.run(receive));
        }
        tokio::spawn(read_shard(
            lambda.clone(),
            moto.clone(),
            source.clone(),
            iterator,
            partition_key.clone(),
            senders,
        ));
    }
    Ok(())
}

/// Reads one shard for good, handing each record that passes the filter to its simulated shard.
/// A failed read is retried with the same iterator (never from the start again: that would
/// deliver the whole stream a second time).
async fn read_shard(
    lambda: Arc<Lambda>,
    moto: Moto,
    source: Arc<StreamSource>,
    mut iterator: String,
    partition_key: String,
    senders: Vec<mpsc::UnboundedSender<Value>>,
) {
    loop {
        let page = match moto.streams("GetRecords", json!({"ShardIterator": iterator, "Limit": 1000})).await {
            Ok(page) => page,
            Err(e) => {
                if lambda.is_stopping() {
                    return;
                }
                eprintln!("[{}] stream poller: {e:#}", source.function);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Some(next) = page.get("NextShardIterator").and_then(Value::as_str) {
            iterator = next.to_string();
        }
        let records = page.get("Records").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut handed = 0;
        for mut record in records.into_iter().filter(|r| passes(&source.filters, r)) {
            record["eventSourceARN"] = Value::String(source.stream_arn.clone());
            let shard = shard_of(&record, &partition_key, senders.len());
            if senders[shard].send(record).is_err() {
                return;
            }
            handed += 1;
        }
        if handed == 0 {
            // moto keeps every shard iterator it hands out: poll an idle stream gently.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

struct ShardWorker {
    lambda: Arc<Lambda>,
    moto: Moto,
    source: Arc<StreamSource>,
    shard_id: String,
    highest: Arc<Mutex<u128>>,
}

impl ShardWorker {
    /// Delivers this (simulated) shard's records in order: a batch and whatever its failure
    /// leads to (its halves, its remaining records) before anything later.
    async fn run(self, mut incoming: mpsc::UnboundedReceiver<Value>) {
        let mut pending: VecDeque<Value> = VecDeque::new();
        let mut work: VecDeque<Batch> = VecDeque::new();
        loop {
            if work.is_empty() {
                if pending.is_empty() {
                    match incoming.recv().await {
                        Some(record) => pending.push_back(record),
                        None => return,
                    }
                }
                while let Ok(record) = incoming.try_recv() {
                    pending.push_back(record);
                }
                let n = pending.len().min(self.source.batch_size.max(1));
                let batch = Batch { records: pending.drain(..n).collect(), retries: 0 };
                self.count_out_of_order(&batch);
                work.push_back(batch);
            }
            let Some(batch) = work.pop_front() else { continue };
            let (verdict, request_id, function_error) = self.invoke(&batch).await;
            let retries = batch.retries;
            let size = batch.records.len();
            match after(batch, verdict, self.source.policy) {
                Next::Done => {}
                Next::Retry(batches) => {
                    let event = if batches.len() == 2 || batches.first().is_some_and(|b| b.retries == retries) {
                        DeliveryEvent::StreamBisect
                    } else {
                        DeliveryEvent::StreamRetry
                    };
                    if verdict != Verdict::Throttled {
                        self.lambda.metrics.delivery(event, &self.source.function);
                    }
                    for b in batches.into_iter().rev() {
                        work.push_front(b);
                    }
                    tokio::time::sleep(self.source.retry_delay.after(retries)).await;
                }
                Next::Discard(batch) => {
                    self.lambda.metrics.delivery(DeliveryEvent::StreamDiscard, &self.source.function);
                    eprintln!(
                        "[{}] stream: {} of {size} records discarded after {} retries (MaximumRetryAttempts)",
                        self.source.function,
                        batch.records.len(),
                        batch.retries
                    );
                    self.send_failure(&batch, &request_id, function_error.as_deref()).await;
                }
            }
        }
    }

    /// Counts the records of a new batch whose sequence number is below one already handed to
    /// the function (from another simulated shard): what out-of-order delivery is.
    fn count_out_of_order(&self, batch: &Batch) {
        let mut highest = self.highest.lock().unwrap_or_else(|e| e.into_inner());
        for seq in batch.records.iter().filter_map(sequence_of).filter_map(|s| s.parse::<u128>().ok()) {
            if seq < *highest {
                self.lambda.metrics.delivery(DeliveryEvent::StreamOutOfOrder, &self.source.function);
            } else {
                *highest = seq;
            }
        }
    }

    /// One invocation: the verdict, its request id and the function error type (if any).
    async fn invoke(&self, batch: &Batch) -> (Verdict, String, Option<String>) {
        let event = json!({ "Records": batch.records });
        let request_id = new_request_id();
        match self.lambda.invoke(&self.source.function, Bytes::from(event.to_string())).await {
            Ok(Outcome::Response(body)) if self.source.report_failures => {
                let verdict = match crate::sources::stream_retry_from(&batch.records, failed_ids(&body)) {
                    None => Verdict::Succeeded,
                    Some(from) => Verdict::Failed { from },
                };
                (verdict, request_id, None)
            }
            Ok(Outcome::Response(_)) => (Verdict::Succeeded, request_id, None),
            Ok(Outcome::Error(error)) if error["errorType"] == "TooManyRequestsException" => {
                (Verdict::Throttled, request_id, None)
            }
            Ok(Outcome::Error(_)) | Ok(Outcome::Crashed(_)) => {
                (Verdict::Failed { from: 0 }, request_id, Some("Unhandled".into()))
            }
            Err(e) => {
                eprintln!("[{}] stream: invoking failed: {e:#}", self.source.function);
                (Verdict::Throttled, request_id, None)
            }
        }
    }

    /// Sends the discarded batch's coordinates to the on-failure queue; without one, Lambda
    /// drops them (and so does this, after the log line above).
    async fn send_failure(&self, batch: &Batch, request_id: &str, function_error: Option<&str>) {
        let Some(queue) = &self.source.on_failure else { return };
        let record = failure_record(
            &self.source.function,
            &self.source.stream_arn,
            &self.shard_id,
            batch,
            request_id,
            function_error,
        );
        // Lambda keeps trying to reach the destination; so does this, unless the stack stops.
        loop {
            let sent =
                self.moto.sqs("SendMessage", json!({"QueueUrl": queue.url, "MessageBody": record.to_string()})).await;
            match sent {
                Ok(_) => return,
                Err(e) if !self.lambda.is_stopping() => {
                    eprintln!("[{}] stream: sending to {}: {e:#}", self.source.function, queue.arn);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(seqs: std::ops::Range<u32>) -> Vec<Value> {
        seqs.map(|s| json!({"dynamodb": {"SequenceNumber": s.to_string(), "Keys": {"PK": {"S": format!("K{s}")}}}}))
            .collect()
    }

    fn seqs(batch: &Batch) -> Vec<String> {
        batch.records.iter().filter_map(sequence_of).map(str::to_string).collect()
    }

    const TEMPLATE: FailurePolicy = FailurePolicy { bisect: true, max_retries: Some(100) };

    #[test]
    fn a_whole_failure_is_split_in_halves_that_keep_their_retry_count() {
        let batch = Batch { records: records(0..5), retries: 3 };
        let Next::Retry(halves) = after(batch, Verdict::Failed { from: 0 }, TEMPLATE) else { panic!("retry") };
        assert_eq!(halves.iter().map(seqs).collect::<Vec<_>>(), [vec!["0", "1", "2"], vec!["3", "4"]]);
        assert!(halves.iter().all(|h| h.retries == 3), "a split does not count towards the quota");
    }

    #[test]
    fn a_partial_failure_retries_from_the_reported_record() {
        let batch = Batch { records: records(0..5), retries: 0 };
        let Next::Retry(rest) = after(batch.clone(), Verdict::Failed { from: 2 }, TEMPLATE) else { panic!() };
        assert_eq!(rest.iter().map(seqs).collect::<Vec<_>>(), [vec!["2", "3", "4"]]);
        assert_eq!(rest[0].retries, 0, "bisected at the returned sequence number: not a retry");

        let no_bisect = FailurePolicy { bisect: false, max_retries: Some(100) };
        let Next::Retry(rest) = after(batch, Verdict::Failed { from: 2 }, no_bisect) else { panic!() };
        assert_eq!(rest.iter().map(seqs).collect::<Vec<_>>(), [vec!["2", "3", "4"]]);
        assert_eq!(rest[0].retries, 1);
    }

    #[test]
    fn a_lone_record_is_retried_max_times_then_discarded() {
        let mut batch = Batch { records: records(7..8), retries: 0 };
        let mut invocations = 0;
        loop {
            invocations += 1;
            match after(batch, Verdict::Failed { from: 0 }, TEMPLATE) {
                Next::Retry(mut next) => batch = next.remove(0),
                Next::Discard(discarded) => {
                    assert_eq!(seqs(&discarded), ["7"]);
                    assert_eq!(discarded.retries, 100);
                    break;
                }
                Next::Done => panic!("a failure is never done"),
            }
        }
        assert_eq!(invocations, 101, "the first attempt and 100 retries");
        let never = FailurePolicy { bisect: false, max_retries: Some(0) };
        assert!(
            matches!(after(Batch { records: records(0..2), retries: 0 }, Verdict::Failed { from: 0 }, never), Next::Discard(b) if b.records.len() == 2)
        );
    }

    /// The relay's shape: a poison record in a batch of 50 ends alone in the failure record and
    /// every other record is delivered, whatever its position.
    #[test]
    fn bisecting_isolates_a_poison_record_and_delivers_the_rest() {
        for poison in [0u32, 17, 49] {
            let mut work = VecDeque::from([Batch { records: records(0..50), retries: 0 }]);
            let (mut delivered, mut discarded) = (Vec::new(), Vec::new());
            let mut invocations = 0;
            while let Some(batch) = work.pop_front() {
                invocations += 1;
                // The relay reports the poison record and everything after it.
                let position = batch.records.iter().position(|r| sequence_of(r) == Some(&poison.to_string()));
                let verdict = match position {
                    None => Verdict::Succeeded,
                    Some(from) => {
                        delivered.extend(batch.records[..from].iter().filter_map(sequence_of).map(str::to_string));
                        Verdict::Failed { from }
                    }
                };
                if verdict == Verdict::Succeeded {
                    delivered.extend(seqs(&batch));
                }
                match after(batch, verdict, TEMPLATE) {
                    Next::Done => {}
                    Next::Retry(next) => next.into_iter().rev().for_each(|b| work.push_front(b)),
                    Next::Discard(b) => discarded.push(b),
                }
            }
            assert_eq!(discarded.len(), 1);
            assert_eq!(seqs(&discarded[0]), [poison.to_string()]);
            let mut expected: Vec<String> = (0..50).filter(|s| *s != poison).map(|s| s.to_string()).collect();
            delivered.sort_by_key(|s| s.parse::<u32>().unwrap());
            expected.sort_by_key(|s| s.parse::<u32>().unwrap());
            assert_eq!(delivered, expected, "poison {poison}");
            assert!(invocations < 120, "{invocations} invocations");
        }
    }

    #[test]
    fn no_maximum_retries_forever_and_throttles_are_not_attempts() {
        let forever = FailurePolicy { bisect: false, max_retries: None };
        let batch = Batch { records: records(0..1), retries: 10_000 };
        assert!(
            matches!(after(batch.clone(), Verdict::Failed { from: 0 }, forever), Next::Retry(b) if b[0].retries == 10_001)
        );
        assert_eq!(after(batch.clone(), Verdict::Throttled, TEMPLATE), Next::Retry(vec![batch.clone()]));
        assert_eq!(after(batch, Verdict::Succeeded, TEMPLATE), Next::Done);
    }

    #[test]
    fn records_of_one_key_share_a_shard_and_keys_spread() {
        let record = |pk: &str, seq: u32| json!({"dynamodb": {"SequenceNumber": seq.to_string(), "Keys": {"PK": {"S": pk}, "SK": {"S": seq.to_string()}}}});
        assert_eq!(shard_of(&record("A", 1), "PK", 4), shard_of(&record("A", 2), "PK", 4));
        let used: std::collections::BTreeSet<usize> =
            (0..64).map(|n| shard_of(&record(&format!("OUTBOX#{n}"), 1), "PK", 4)).collect();
        assert!(used.len() > 1, "64 keys all landed in one of 4 shards");
        assert_eq!(shard_of(&record("A", 1), "PK", 1), 0);
    }

    #[test]
    fn the_failure_record_has_lambdas_shape() {
        let mut batch = Batch { records: records(41..43), retries: 100 };
        batch.records[0]["dynamodb"]["ApproximateCreationDateTime"] = json!(1_764_151_200.0);
        let record = failure_record("EventsRelayFunction", "arn:stream", "shardId-1", &batch, "req-1", None);
        assert_eq!(record["version"], "1.0");
        assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 101);
        assert_eq!(
            record["requestContext"]["functionArn"],
            format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:roost-EventsRelayFunction")
        );
        let info = &record["DDBStreamBatchInfo"];
        assert_eq!(info["shardId"], "shardId-1");
        assert_eq!(info["startSequenceNumber"], "41");
        assert_eq!(info["endSequenceNumber"], "42");
        assert_eq!(info["batchSize"], 2);
        assert_eq!(info["streamArn"], "arn:stream");
        assert_eq!(info["approximateArrivalOfFirstRecord"], "2025-11-26T10:00:00Z");
        assert!(record["responseContext"].get("functionError").is_none());
        let errored = failure_record("F", "s", "sh", &batch, "r", Some("Unhandled"));
        assert_eq!(errored["responseContext"]["functionError"], "Unhandled");
    }

    #[test]
    fn test_mode_retries_fast_and_up_backs_off() {
        assert_eq!(RetryDelay::Fixed(Duration::from_millis(10)).after(99), Duration::from_millis(10));
        let backoff = RetryDelay::Backoff { first: Duration::from_millis(200), max: Duration::from_secs(5) };
        assert_eq!(backoff.after(0), Duration::from_millis(200));
        assert_eq!(backoff.after(2), Duration::from_millis(800));
        assert_eq!(backoff.after(60), Duration::from_secs(5));
    }
}
