//! Proof that the stack's moto (started through `infra/local/moto_launcher.py`) makes DynamoDB
//! transactions atomic and isolated: guests racing for the same nights end with exactly one intact
//! winner, and a cancelled transaction leaves nothing in the table's stream. Plain `moto_server`
//! fails both (see EMULATORS.md, "DynamoDB under concurrency"). And that its strictness switches
//! (on in `cargo roost test`) happen: transactions meet TransactionConflict, GSIs lag.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, Put, ScalarAttributeType, StreamSpecification, StreamViewType, TransactWriteItem, Update,
};
use serde_json::{Value, json};
use tokio::sync::Barrier;

const ROUNDS: usize = 5;
const RACERS: usize = 20;
const NIGHTS: [&str; 5] = ["2026-07-01", "2026-07-02", "2026-07-03", "2026-07-04", "2026-07-05"];

/// A DynamoDB client on the stack's moto, with retries off so a server error shows.
fn dynamodb(url: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        // No retries: a lost or failed request must show up here, not be papered over.
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(30)).build())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

/// One conditional put of a guest's item, as the bookings context writes nights and bookings.
fn put(table: &str, pk: &str, sk: &str, booking: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .item("PK", s(pk))
        .item("SK", s(sk))
        .item("booking", s(booking))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .expect("put");
    TransactWriteItem::builder().put(put).build()
}

async fn streams(action: &str, body: Value) -> Value {
    roost_e2e::moto_json("dynamodb", &format!("DynamoDBStreams_20120810.{action}"), &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_transactions_have_one_intact_winner_and_cancelled_ones_leave_no_stream_record() {
    roost_e2e::needs_stack!();
    let url = roost_e2e::Stack::get().moto_url.clone();
    let db = dynamodb(&url);
    let run = format!("{}{:x}", std::process::id(), jiff::Timestamp::now().as_millisecond());
    let table = format!("launcher-proof-{run}");
    db.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("PK").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("SK").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("PK").key_type(KeyType::Hash).build().unwrap())
        .key_schema(KeySchemaElement::builder().attribute_name("SK").key_type(KeyType::Range).build().unwrap())
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");

    // What the winners wrote, (PK, SK) -> booking id: the only INSERTs the stream may hold.
    let mut expected: BTreeMap<(String, String), String> = BTreeMap::new();
    for round in 0..ROUNDS {
        let listing = format!("LISTING#{run}-{round}");
        let barrier = Arc::new(Barrier::new(RACERS));
        let mut racers = Vec::new();
        for racer in 0..RACERS {
            let (db, table, listing, barrier) = (db.clone(), table.clone(), listing.clone(), barrier.clone());
            racers.push(tokio::spawn(async move {
                let booking = format!("B{round}-{racer}");
                let mut items: Vec<_> =
                    NIGHTS.iter().map(|night| put(&table, &listing, &format!("NIGHT#{night}"), &booking)).collect();
                items.push(put(&table, &format!("BOOKING#{booking}"), "META", &booking));
                barrier.wait().await;
                (booking, db.transact_write_items().set_transact_items(Some(items)).send().await)
            }));
        }
        let mut winners = Vec::new();
        for racer in racers {
            let (booking, outcome) = racer.await.expect("racer task");
            let Err(error) = outcome else {
                winners.push(booking);
                continue;
            };
            match error.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let codes: Vec<_> =
                        cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("")).collect();
                    // Every night was taken (a condition failure each), or, as AWS also answers a
                    // transaction racing a fresh write, in conflict (the launcher's conflict switch,
                    // on in `cargo roost test`): then only the nights written within the conflict
                    // window say so and the others `None`, as AWS names only the items in
                    // conflict (a night written just before the window's edge is one of those).
                    // Its own booking item was neither.
                    let (nights, own) = codes.split_at(NIGHTS.len());
                    let conflicted = nights.iter().all(|c| ["TransactionConflict", "None"].contains(c))
                        && nights.contains(&"TransactionConflict");
                    assert!(
                        own == ["None"] && (nights.iter().all(|c| *c == "ConditionalCheckFailed") || conflicted),
                        "{booking}: cancellation reasons {codes:?}"
                    );
                }
                other => panic!("{booking}: expected TransactionCanceledException, got {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one guest wins, got {winners:?}");
        let winner = winners.pop().unwrap();

        let nights = db
            .query()
            .table_name(&table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(&listing))
            .consistent_read(true)
            .send()
            .await
            .expect("query nights");
        let owners: Vec<_> = nights.items().iter().map(|item| item["booking"].as_s().unwrap().as_str()).collect();
        assert_eq!(owners, vec![winner.as_str(); NIGHTS.len()], "round {round}: every night is the winner's");

        for night in NIGHTS {
            expected.insert((listing.clone(), format!("NIGHT#{night}")), winner.clone());
        }
        expected.insert((format!("BOOKING#{winner}"), "META".to_string()), winner);
    }

    // The stream: exactly the winners' INSERTs (5 nights + 1 booking per round), nothing from the
    // 19 cancelled transactions per round.
    let described = db.describe_table().table_name(&table).send().await.expect("describe table");
    let stream_arn = described.table().and_then(|t| t.latest_stream_arn()).expect("stream arn").to_string();
    let stream = streams("DescribeStream", json!({"StreamArn": stream_arn})).await;
    let shards = stream["StreamDescription"]["Shards"].as_array().expect("shards").clone();
    let mut records = Vec::new();
    for shard in shards {
        let body = json!({"StreamArn": stream_arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"});
        let mut iterator = streams("GetShardIterator", body).await["ShardIterator"].clone();
        loop {
            let page = streams("GetRecords", json!({"ShardIterator": iterator, "Limit": 1000})).await;
            let batch = page["Records"].as_array().expect("records").clone();
            if batch.is_empty() {
                break;
            }
            records.extend(batch);
            iterator = page["NextShardIterator"].clone();
        }
    }
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    for record in &records {
        assert_eq!(record["eventName"], "INSERT", "only inserts were committed: {record}");
        let image = &record["dynamodb"]["NewImage"];
        let key = (image["PK"]["S"].as_str().unwrap().to_string(), image["SK"]["S"].as_str().unwrap().to_string());
        let previous = seen.insert(key, image["booking"]["S"].as_str().unwrap().to_string());
        assert!(previous.is_none(), "one record per committed item: {record}");
    }
    assert_eq!(records.len(), ROUNDS * (NIGHTS.len() + 1), "the winners wrote 6 items per round");
    assert_eq!(seen, expected, "the stream holds exactly the winners' items, nothing from cancelled transactions");

    db.delete_table().table_name(&table).send().await.expect("delete table");
}

/// Patch (6): a password reset for an e-mail with no account is AWS's UserNotFoundException,
/// which users answers as a wrong code; plain moto's ResourceNotFoundException made it a 500 (the
/// API fuzzer found it).
#[tokio::test]
async fn a_password_reset_for_an_unknown_email_is_an_invalid_code_not_a_500() {
    roost_e2e::needs_stack!();
    let email = format!("{}@test.roost.dev", roost_e2e::unique("nobody"));
    let response = roost_e2e::client()
        .post(roost_e2e::Stack::get().url("/v1/auth/password/reset"))
        .json(&json!({"email": email, "code": "123456", "new_password": "Sunny-days-12"}))
        .send()
        .await
        .expect("api");
    roost_e2e::assert_problem(response, 400, "invalid_code").await;
}

/// As on AWS: a transaction's `ClientRequestToken` makes a retry after a lost answer succeed
/// without applying it twice (the SDK fills the token and keeps it across its retries), and the
/// same token with other items is refused.
#[tokio::test]
async fn a_transaction_retried_with_its_client_token_succeeds_once_and_other_items_are_refused() {
    roost_e2e::needs_stack!();
    let stack = roost_e2e::Stack::get();
    let db = dynamodb(&stack.moto_url);
    let table = stack.table_name.clone().expect("table_name in stack.json");
    let pk = format!("LAUNCHER#token-{}", roost_e2e::unique(""));
    let token = roost_e2e::unique("token");
    let send = |booking: &'static str| {
        db.transact_write_items().transact_items(put(&table, &pk, "A", booking)).client_request_token(&token).send()
    };
    send("first").await.expect("the first attempt applies");
    // Past the strict stack's conflict window (a write this recent may be cancelled as AWS does).
    tokio::time::sleep(Duration::from_millis(200)).await;
    send("first").await.expect("a retry with the same token and items succeeds (AWS: idempotent for 10 minutes)");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mismatch = send("other").await.expect_err("the same token with other items");
    let code = mismatch.as_service_error().and_then(|e| aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e));
    assert_eq!(code, Some("IdempotentParameterMismatchException"), "{mismatch:?}");
    let item =
        roost_e2e::dynamodb("GetItem", json!({"Key": {"PK": {"S": pk}, "SK": {"S": "A"}}, "ConsistentRead": true}))
            .await;
    assert_eq!(item["Item"]["booking"]["S"], "first", "{item}");
    let other = db
        .transact_write_items()
        .transact_items(put(&table, &pk, "A", "again"))
        .client_request_token(roost_e2e::unique("token"))
        .send()
        .await;
    assert!(other.is_err(), "a new token is a new transaction: its condition fails");
}

/// moto's strictness settings and counters (`POST|GET /moto-api/roost/strictness`).
async fn strictness() -> Value {
    let url = format!("{}/moto-api/roost/strictness", roost_e2e::Stack::get().moto_url);
    roost_e2e::json_of(roost_e2e::client().get(url).send().await.expect("moto"), 200).await
}

/// A table of its own (PK, SK) with a GSI `byCity` on `city`, for the switches' proofs.
async fn table_with_gsi(db: &aws_sdk_dynamodb::Client, name: &str) {
    let attribute = |n: &str| {
        AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let key = |n: &str, kind| KeySchemaElement::builder().attribute_name(n).key_type(kind).build().unwrap();
    let gsi = GlobalSecondaryIndex::builder()
        .index_name("byCity")
        .key_schema(key("city", KeyType::Hash))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .unwrap();
    db.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![attribute("PK"), attribute("SK"), attribute("city")]))
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .global_secondary_indexes(gsi)
        .send()
        .await
        .expect("create table");
}

/// Patch (7): a transaction touching an item written a moment ago is, at the configured rate,
/// cancelled as AWS cancels it: TransactionConflict for that item, None for the others, and
/// nothing of it applied.
#[tokio::test]
async fn a_transaction_racing_a_fresh_write_is_cancelled_with_transaction_conflict() {
    roost_e2e::needs_stack!();
    let settings = strictness().await;
    assert!(
        settings["transaction_conflict"]["rate"].as_f64() > Some(0.0),
        "cargo roost test switches it on: {settings}"
    );
    let db = dynamodb(&roost_e2e::Stack::get().moto_url);
    let table = format!("conflict-proof-{}", roost_e2e::unique("t"));
    table_with_gsi(&db, &table).await;
    let mut conflict = None;
    for attempt in 0..200 {
        let pk = format!("LISTING#{attempt}");
        db.put_item().table_name(&table).item("PK", s(&pk)).item("SK", s("META")).send().await.expect("put");
        let bump = Update::builder()
            .table_name(&table)
            .key("PK", s(&pk))
            .key("SK", s("META"))
            .update_expression("SET edited = :t")
            .expression_attribute_values(":t", s("yes"))
            .build()
            .unwrap();
        let fresh = Put::builder().table_name(&table).item("PK", s(&format!("NEW#{attempt}"))).item("SK", s("META"));
        let items = vec![
            TransactWriteItem::builder().put(fresh.build().unwrap()).build(),
            TransactWriteItem::builder().update(bump).build(),
        ];
        match db.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => continue,
            Err(e) => match e.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let codes: Vec<_> =
                        cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("").to_string()).collect();
                    conflict = Some((attempt, codes));
                    break;
                }
                other => panic!("expected TransactionCanceledException, got {other:?}"),
            },
        }
    }
    let (attempt, codes) = conflict.expect("200 transactions on fresh writes met no TransactionConflict");
    assert_eq!(codes, ["None", "TransactionConflict"], "AWS's reasons: the fresh item conflicts, the new one not");
    let new = db.get_item().table_name(&table).key("PK", s(&format!("NEW#{attempt}"))).key("SK", s("META"));
    assert!(new.send().await.expect("get").item().is_none(), "nothing of a cancelled transaction applies");
    let bumped = db.get_item().table_name(&table).key("PK", s(&format!("LISTING#{attempt}"))).key("SK", s("META"));
    assert!(!bumped.send().await.expect("get").item().unwrap().contains_key("edited"), "nor its update");
    db.delete_table().table_name(&table).send().await.expect("delete table");
}

/// Patch (7): a GSI query right after a write answers from the lagging view (the write is not
/// there yet), and the same query sees it once the lag has passed.
#[tokio::test]
async fn a_gsi_query_misses_a_fresh_write_and_sees_it_after_the_lag() {
    roost_e2e::needs_stack!();
    let settings = strictness().await;
    let lag_ms = settings["gsi_lag_ms"].as_u64().unwrap_or(0);
    assert!(lag_ms > 0, "cargo roost test switches the GSI lag on: {settings}");
    let db = dynamodb(&roost_e2e::Stack::get().moto_url);
    let table = format!("gsi-lag-proof-{}", roost_e2e::unique("t"));
    table_with_gsi(&db, &table).await;
    let in_city = |city: String| {
        let db = db.clone();
        let table = table.clone();
        async move {
            let query = db
                .query()
                .table_name(&table)
                .index_name("byCity")
                .key_condition_expression("city = :c")
                .expression_attribute_values(":c", s(&city));
            query.send().await.expect("query").items().len()
        }
    };
    // Under a loaded machine the query may come after the lag; a few tries find a fresh one.
    let mut missed = None;
    for attempt in 0..20 {
        let city = format!("Lagtown-{attempt}");
        let put = db.put_item().table_name(&table).item("PK", s(&format!("L#{attempt}"))).item("SK", s("META"));
        put.item("city", s(&city)).send().await.expect("put");
        if in_city(city.clone()).await == 0 {
            missed = Some(city);
            break;
        }
    }
    let city = missed.expect("20 GSI queries right after their write all saw it: the index does not lag");
    tokio::time::sleep(Duration::from_millis(lag_ms + 50)).await;
    assert_eq!(in_city(city).await, 1, "after the lag the index has the item");
    let table_read = db.query().table_name(&table).key_condition_expression("PK = :p");
    let read = table_read.expression_attribute_values(":p", s("L#0")).send().await.expect("query table");
    assert_eq!(read.items().len(), 1, "the table itself never lags");
    let counters = strictness().await["counters"].clone();
    assert!(counters["gsi_reads_from_lagged_view"].as_u64() >= Some(1), "{counters}");
    db.delete_table().table_name(&table).send().await.expect("delete table");
}
