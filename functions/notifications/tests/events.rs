//! Every sample batch in `events/notifications/` replayed through the real handler. DynamoDB is
//! a stub that serves the booking and the profiles and refuses a second put of the same key (as
//! `attribute_not_exists` does); SES is a fake that records every e-mail.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use notifications::{BoxFuture, Email, Mailer, State, handle_batch};
use serde_json::{Value, json};
use shared::Table;
use shared::clock::FixedClock;

const GUEST: &str = "3f1e2d4c-5b6a-4789-8abc-def012345678";
const HOST: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

#[derive(Default)]
struct Db {
    puts: Vec<Value>,
    keys: HashSet<(String, String)>,
}

fn s(v: &str) -> Value {
    json!({ "S": v })
}

fn profile(id: &str, email: &str, name: &str) -> Value {
    json!({"PK": s(&format!("USER#{id}")), "SK": s("PROFILE"), "user_id": s(id), "email": s(email), "name": s(name)})
}

async fn dynamodb_stub(title: &str) -> (String, Arc<Mutex<Db>>) {
    let db: Arc<Mutex<Db>> = Arc::default();
    let state = db.clone();
    let booking = json!({
        "PK": s("BOOKING#bkg_01kaxb3c4d5e6f7g8h9jkmnpqr"), "SK": s("BOOKING"),
        "listing_title": s(title), "check_in": s("2026-12-04"), "check_out": s("2026-12-07"),
    });
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let (db, booking) = (state.clone(), booking.clone());
        async move {
            let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let ok = |v: Value| (axum::http::StatusCode::OK, [("content-type", "application/x-amz-json-1.0")], v.to_string());
            match target.as_str() {
                "DynamoDB_20120810.GetItem" => ok(json!({ "Item": booking })),
                "DynamoDB_20120810.BatchGetItem" => ok(json!({"Responses": {"t": [
                    profile(GUEST, "guest@example.com", "Gus"), profile(HOST, "host@example.com", "Hana")
                ]}})),
                "DynamoDB_20120810.PutItem" => {
                    let item = &req["Item"];
                    let key = (item["PK"]["S"].as_str().unwrap_or("").to_owned(), item["SK"]["S"].as_str().unwrap_or("").to_owned());
                    let mut db = db.lock().unwrap();
                    if !db.keys.insert(key) {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            [("content-type", "application/x-amz-json-1.0")],
                            json!({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "The conditional request failed"}).to_string(),
                        );
                    }
                    db.puts.push(item.clone());
                    ok(json!({}))
                }
                "DynamoDB_20120810.DeleteItem" => {
                    let k = &req["Key"];
                    let key = (k["PK"]["S"].as_str().unwrap_or("").to_owned(), k["SK"]["S"].as_str().unwrap_or("").to_owned());
                    let mut db = db.lock().unwrap();
                    db.keys.remove(&key);
                    db.puts.retain(|i| i["PK"]["S"].as_str() != Some(key.0.as_str()) || i["SK"]["S"].as_str() != Some(key.1.as_str()));
                    ok(json!({}))
                }
                _ => ok(json!({})),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, db)
}

#[derive(Default)]
struct FakeMail {
    sent: Mutex<Vec<Email>>,
    /// Sends to this address fail.
    failing: Mutex<Option<String>>,
}

impl Mailer for FakeMail {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, anyhow::Result<()>> {
        if self.failing.lock().unwrap().as_deref() == Some(email.to.as_str()) {
            return Box::pin(async { Err(anyhow::anyhow!("SES is down")) });
        }
        self.sent.lock().unwrap().push(email.clone());
        Box::pin(async { Ok(()) })
    }
}

async fn state(title: &str) -> (State, Arc<Mutex<Db>>, Arc<FakeMail>) {
    let (url, db) = dynamodb_stub(title).await;
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(url);
    let mail = Arc::new(FakeMail::default());
    let st = State {
        table: Arc::new(Table::from_conf(conf, "t")),
        clock: Arc::new(FixedClock::at("2026-11-26T10:00:02Z").unwrap()),
        mailer: mail.clone(),
    };
    (st, db, mail)
}

fn batch(name: &str) -> SqsEvent {
    let path = format!("{}/../../events/notifications/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn each_event_reaches_the_right_people_once() {
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("booking-confirmed", &[(GUEST, "guest@example.com"), (HOST, "host@example.com")]),
        ("booking-cancelled", &[(GUEST, "guest@example.com"), (HOST, "host@example.com")]),
        ("booking-expired", &[(GUEST, "guest@example.com")]),
        ("payment-failed", &[(GUEST, "guest@example.com")]),
        ("refund-issued", &[(GUEST, "guest@example.com")]),
        ("review-posted", &[(HOST, "host@example.com")]),
    ];
    for (name, expected) in cases {
        let (st, db, mail) = state("Loft <script>alert(1)</script>").await;
        let response = handle_batch(&st, batch(name)).await.unwrap();
        assert!(response.batch_item_failures.is_empty(), "{name}");
        let sent = mail.sent.lock().unwrap().clone();
        let to: Vec<&str> = sent.iter().map(|e| e.to.as_str()).collect();
        assert_eq!(to, expected.iter().map(|(_, e)| *e).collect::<Vec<_>>(), "{name}");
        for e in &sent {
            assert!(!e.html.contains("<script>") && e.html.contains("&lt;script&gt;"), "{name}");
        }
        {
            let db = db.lock().unwrap();
            let pks: Vec<&str> = db.puts.iter().map(|i| i["PK"]["S"].as_str().unwrap()).collect();
            assert_eq!(pks, expected.iter().map(|(u, _)| format!("INBOX#{u}")).collect::<Vec<_>>(), "{name}");
            for item in &db.puts {
                assert!(item["SK"]["S"].as_str().unwrap().starts_with("NOTIFICATION#ntf_"));
                assert_eq!(item["read"], json!({"BOOL": false}));
                assert_eq!(item["booking_id"]["S"], "bkg_01kaxb3c4d5e6f7g8h9jkmnpqr");
            }
        }
        // A second delivery: nothing new.
        let response = handle_batch(&st, batch(name)).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(mail.sent.lock().unwrap().len(), expected.len(), "{name}: duplicate sent mail");
        assert_eq!(db.lock().unwrap().puts.len(), expected.len());
    }
}

#[tokio::test]
async fn unknown_types_are_acknowledged_without_effect() {
    let (st, db, mail) = state("Loft").await;
    let response = handle_batch(&st, batch("unknown-type")).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert!(mail.sent.lock().unwrap().is_empty());
    assert!(db.lock().unwrap().puts.is_empty());
}

#[test]
fn notification_ids_derive_from_the_event() {
    assert_eq!(notifications::notification_id("evt_01kaxb3c4d5e6f7g8h9jkmnp01"), "ntf_01kaxb3c4d5e6f7g8h9jkmnp01");
}

#[tokio::test]
async fn a_failed_send_fails_the_message_and_the_retry_sends_it() {
    let (st, db, mail) = state("Loft").await;
    *mail.failing.lock().unwrap() = Some("host@example.com".into());
    let response = handle_batch(&st, batch("booking-confirmed")).await.unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(mail.sent.lock().unwrap().len(), 1, "the guest's e-mail went");
    assert_eq!(db.lock().unwrap().puts.len(), 1, "the host's inbox item was removed again");

    *mail.failing.lock().unwrap() = None;
    let response = handle_batch(&st, batch("booking-confirmed")).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let sent = mail.sent.lock().unwrap().clone();
    assert_eq!(sent.iter().map(|e| e.to.as_str()).collect::<Vec<_>>(), ["guest@example.com", "host@example.com"]);
    assert_eq!(db.lock().unwrap().puts.len(), 2);
}
