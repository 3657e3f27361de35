//! `cargo roost replay-stream-failures`: the replay procedure of docs/operations.md ("Replay the
//! relay's failure records") against a running local stack, step for step what an operator does
//! with the AWS CLI:
//!
//! 1. receive the failure records from the relay's failure queue;
//! 2. for each, read its shard from `startSequenceNumber` (`GetShardIterator
//!    AT_SEQUENCE_NUMBER`) to `endSequenceNumber`;
//! 3. for each outbox INSERT in that range, re-insert the item as it is now in the table (after
//!    the fix-up): delete it and put it back, so the stream carries a new INSERT and the relay
//!    publishes it (consumers dedupe on the event id);
//! 4. delete the failure record.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::aws::Moto;
use crate::cli::{Args, project_root};

const DEFAULT_QUEUE: &str = "roost-EventsRelayFailuresQueue";

pub async fn run(args: &Args) -> Result<ExitCode> {
    let path = args.stack.clone().unwrap_or_else(|| project_root().join("target/roost/stack.json"));
    let stack: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {} (is the stack up?)", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    let moto = Moto::new(stack["moto_url"].as_str().context("moto_url in stack.json")?.to_string());
    let table = stack["table_name"].as_str().context("table_name in stack.json")?.to_string();
    let queue_name = args.queue.clone().unwrap_or_else(|| DEFAULT_QUEUE.to_string());
    let queue_url = stack["queues"][&queue_name]
        .as_str()
        .with_context(|| format!("no queue {queue_name} in {}", path.display()))?
        .to_string();
    let report = replay_queue(&moto, &table, &queue_url, args.start_sequence.as_deref()).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    let failed = report["replayed"].as_array().is_some_and(|r| r.iter().any(|r| r["error"].is_string()));
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Replays every failure record in the queue (or only those starting at `only_start`); the
/// others are left in the queue, visible again.
async fn replay_queue(moto: &Moto, table: &str, queue_url: &str, only_start: Option<&str>) -> Result<Value> {
    let mut replayed = Vec::new();
    let mut skipped = Vec::new();
    loop {
        let received = moto
            .sqs(
                "ReceiveMessage",
                json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0, "VisibilityTimeout": 60}),
            )
            .await?;
        let messages = received.get("Messages").and_then(Value::as_array).cloned().unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let handle = message["ReceiptHandle"].clone();
            let body: Value = serde_json::from_str(message["Body"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
            let info = &body["DDBStreamBatchInfo"];
            if only_start.is_some_and(|start| info["startSequenceNumber"].as_str() != Some(start)) {
                skipped.push(handle);
                continue;
            }
            match replay_batch(moto, table, info).await {
                Ok(outcome) => {
                    moto.sqs("DeleteMessage", json!({"QueueUrl": queue_url, "ReceiptHandle": handle})).await?;
                    replayed.push(outcome);
                }
                Err(e) => {
                    // Left in the queue (visible again) for another try after the cause is fixed.
                    skipped.push(handle);
                    replayed.push(json!({"batch": info, "error": format!("{e:#}")}));
                }
            }
        }
    }
    for handle in &skipped {
        moto.sqs(
            "ChangeMessageVisibility",
            json!({"QueueUrl": queue_url, "ReceiptHandle": handle, "VisibilityTimeout": 0}),
        )
        .await?;
    }
    Ok(json!({"replayed": replayed, "left_in_queue": skipped.len()}))
}

/// Reads one failure record's range from its shard and re-inserts its outbox items.
async fn replay_batch(moto: &Moto, table: &str, info: &Value) -> Result<Value> {
    let field = |name: &str| info[name].as_str().with_context(|| format!("DDBStreamBatchInfo.{name}"));
    let (stream_arn, shard_id) = (field("streamArn")?, field("shardId")?);
    let (start, end) = (field("startSequenceNumber")?, field("endSequenceNumber")?);
    let end_number: u128 = end.parse().context("endSequenceNumber")?;
    let iterator = moto
        .streams(
            "GetShardIterator",
            json!({"StreamArn": stream_arn, "ShardId": shard_id, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": start}),
        )
        .await?;
    let mut iterator = iterator["ShardIterator"].as_str().context("ShardIterator")?.to_string();
    let mut in_range = Vec::new();
    'read: loop {
        let page = moto.streams("GetRecords", json!({"ShardIterator": iterator, "Limit": 100})).await?;
        let records = page.get("Records").and_then(Value::as_array).cloned().unwrap_or_default();
        if records.is_empty() {
            break;
        }
        for record in records {
            let seq: u128 =
                record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).unwrap_or("0").parse()?;
            if seq > end_number {
                break 'read;
            }
            in_range.push(record);
        }
        match page.get("NextShardIterator").and_then(Value::as_str) {
            Some(next) => iterator = next.to_string(),
            None => break,
        }
    }
    if in_range.is_empty() {
        bail!(
            "no stream records from {start} to {end}: past the stream's 24 hours? Find the outbox items by occurred_at instead"
        );
    }
    let (mut events, mut missing) = (Vec::new(), Vec::new());
    for record in in_range.iter().filter(|r| is_outbox_insert(r)) {
        let keys = record.pointer("/dynamodb/Keys").context("record without Keys")?;
        match reinsert(moto, table, keys).await? {
            Some(event_id) => events.push(event_id),
            None => missing.push(keys.clone()),
        }
    }
    Ok(json!({"batch": info, "records_read": in_range.len(), "events": events, "missing": missing}))
}

/// What the relay's mapping lets through (its FilterCriteria): outbox INSERTs.
fn is_outbox_insert(record: &Value) -> bool {
    record["eventName"] == "INSERT"
        && record.pointer("/dynamodb/NewImage/type/S").and_then(Value::as_str) == Some("outbox")
}

/// Deletes the item at `keys` and puts it back as it is now; its event id, or `None` when the
/// item is gone (expired after 7 days, or already replayed and removed).
async fn reinsert(moto: &Moto, table: &str, keys: &Value) -> Result<Option<String>> {
    let current = moto.dynamodb("GetItem", json!({"TableName": table, "Key": keys, "ConsistentRead": true})).await?;
    let Some(item) = current.get("Item").filter(|i| i.is_object()) else { return Ok(None) };
    moto.dynamodb("DeleteItem", json!({"TableName": table, "Key": keys})).await?;
    // A put conditional on absence, as producers write outbox items: never overwrite one that
    // something else wrote meanwhile.
    let partition = keys.as_object().and_then(|k| k.keys().next()).context("empty Keys")?;
    moto.dynamodb(
        "PutItem",
        json!({
            "TableName": table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": partition},
        }),
    )
    .await?;
    // Give the relay's poller a beat between items, so a long range does not arrive as one burst.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(item.pointer("/event_id/S").and_then(Value::as_str).map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_outbox_inserts_are_replayed() {
        let record =
            |event: &str, kind: &str| json!({"eventName": event, "dynamodb": {"NewImage": {"type": {"S": kind}}}});
        assert!(is_outbox_insert(&record("INSERT", "outbox")));
        assert!(!is_outbox_insert(&record("MODIFY", "outbox")));
        assert!(!is_outbox_insert(&record("INSERT", "booking")));
        assert!(!is_outbox_insert(&json!({"eventName": "REMOVE"})));
    }
}
