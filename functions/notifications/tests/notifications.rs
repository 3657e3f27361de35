//! Every sample batch in `events/notifications/` replayed through the real handler. DynamoDB is
//! a stub that serves the booking and the profiles; the inbox is the in-memory store (the same
//! conditions as the table's); SES is a fake that records every e-mail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use notifications::{AppState, BoxFuture, Email, EmailStatus, Mailer, MemoryInbox, handle_batch};
use serde_json::{Value, json};
use shared::Table;
use shared::clock::FixedClock;

const GUEST: &str = "3f1e2d4c-5b6a-4789-8abc-def012345678";
const HOST: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

fn s(v: &str) -> Value {
    json!({ "S": v })
}

fn profile(id: &str, email: &str, name: &str) -> Value {
    json!({"PK": s(&format!("USER#{id}")), "SK": s("PROFILE"), "user_id": s(id), "email": s(email), "name": s(name)})
}

async fn dynamodb_stub(title: &str) -> String {
    let booking = json!({
        "PK": s("BOOKING#bkg_01kaxb3c4d5e6f7g8h9jkmnpqr"), "SK": s("BOOKING"),
        "listing_title": s(title), "check_in": s("2026-12-04"), "check_out": s("2026-12-07"),
    });
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let booking = booking.clone();
        async move {
            let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let ok = |v: Value| (axum::http::StatusCode::OK, [("content-type", "application/x-amz-json-1.0")], v.to_string());
            match target.as_str() {
                "DynamoDB_20120810.GetItem" => ok(json!({ "Item": booking })),
                "DynamoDB_20120810.BatchGetItem" => ok(json!({"Responses": {"t": [
                    profile(GUEST, "guest@example.com", "Gus"), profile(HOST, "host@example.com", "Hana")
                ]}})),
                other => (
                    axum::http::StatusCode::BAD_REQUEST,
                    [("content-type", "application/x-amz-json-1.0")],
                    json!({"__type": "com.amazonaws.dynamodb.v20120810#ValidationException", "message": format!("the stub serves no {other}")}).to_string(),
                ),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[derive(Default)]
struct FakeMail {
    sent: Mutex<Vec<Email>>,
    /// Sends to this address fail.
    failing: Mutex<Option<String>>,
}

impl Mailer for FakeMail {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, anyhow::Result<String>> {
        if self.failing.lock().unwrap().as_deref() == Some(email.to.as_str()) {
            return Box::pin(async { Err(anyhow::anyhow!("SES is down")) });
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push(email.clone());
        let id = format!("ses-{}", sent.len());
        Box::pin(async move { Ok(id) })
    }
}

async fn state(title: &str) -> (AppState, Arc<MemoryInbox>, Arc<FakeMail>, Arc<FixedClock>) {
    let url = dynamodb_stub(title).await;
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(url);
    let mail = Arc::new(FakeMail::default());
    let inbox = Arc::new(MemoryInbox::default());
    let clock = Arc::new(FixedClock::at("2026-11-26T10:00:02Z").unwrap());
    let st = AppState {
        table: Arc::new(Table::from_conf(conf, "t")),
        inbox: inbox.clone(),
        clock: clock.clone(),
        mailer: mail.clone(),
    };
    (st, inbox, mail, clock)
}

/// One delivery of the batch, by an invocation with ten seconds left.
async fn deliver(st: &AppState, batch: SqsEvent) -> SqsBatchResponse {
    handle_batch(st, batch, Duration::from_secs(10)).await.unwrap()
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
        let (st, inbox, mail, _) = state("Loft <script>alert(1)</script>").await;
        let response = deliver(&st, batch(name)).await;
        assert!(response.batch_item_failures.is_empty(), "{name}");
        let sent = mail.sent.lock().unwrap().clone();
        let to: Vec<&str> = sent.iter().map(|e| e.to.as_str()).collect();
        assert_eq!(to, expected.iter().map(|(_, e)| *e).collect::<Vec<_>>(), "{name}");
        for e in &sent {
            assert!(!e.html.contains("<script>") && e.html.contains("&lt;script&gt;"), "{name}");
        }
        let items = inbox.items();
        let mut pks: Vec<String> = items.iter().map(|i| i.key.pk.clone()).collect();
        let mut want: Vec<String> = expected.iter().map(|(u, _)| format!("INBOX#{u}")).collect();
        pks.sort();
        want.sort();
        assert_eq!(pks, want, "{name}");
        for item in &items {
            assert!(item.key.sk.starts_with("NOTIFICATION#ntf_"));
            assert!(!item.read);
            assert_eq!(item.booking_id.as_deref(), Some("bkg_01kaxb3c4d5e6f7g8h9jkmnpqr"));
            let email = item.email.as_ref().expect("e-mail state");
            assert_eq!(email.status, EmailStatus::Sent, "{name}");
            assert!(email.message_id.as_deref().is_some_and(|m| m.starts_with("ses-")), "{name}");
        }
        // A second delivery: nothing new.
        let response = deliver(&st, batch(name)).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(mail.sent.lock().unwrap().len(), expected.len(), "{name}: duplicate sent mail");
        assert_eq!(inbox.items(), items, "{name}: the items did not change");
    }
}

#[tokio::test]
async fn unknown_types_are_acknowledged_without_effect() {
    let (st, inbox, mail, _) = state("Loft").await;
    let response = deliver(&st, batch("unknown-type")).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(mail.sent.lock().unwrap().is_empty());
    assert!(inbox.items().is_empty());
}

#[test]
fn notification_ids_derive_from_the_event() {
    assert_eq!(notifications::notification_id("evt_01kaxb3c4d5e6f7g8h9jkmnp01"), "ntf_01kaxb3c4d5e6f7g8h9jkmnp01");
}

/// SES refuses the host's e-mail: the guest's goes, the host's item stays with its e-mail
/// `pending` and the message fails; the redelivery sends the host's e-mail and only that.
#[tokio::test]
async fn a_refused_e_mail_fails_the_message_and_the_redelivery_sends_only_it() {
    let (st, inbox, mail, clock) = state("Loft").await;
    *mail.failing.lock().unwrap() = Some("host@example.com".into());
    let response = deliver(&st, batch("booking-confirmed")).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(mail.sent.lock().unwrap().len(), 1, "the guest's e-mail went");
    let status_of = |user: &str| {
        let items = inbox.items();
        let item = items.iter().find(|i| i.key.pk == format!("INBOX#{user}")).expect("an inbox item");
        item.email.as_ref().expect("e-mail state").status
    };
    assert_eq!(inbox.items().len(), 2, "both inbox items stay");
    assert_eq!((status_of(GUEST), status_of(HOST)), (EmailStatus::Sent, EmailStatus::Pending));

    *mail.failing.lock().unwrap() = None;
    clock.advance(jiff::SignedDuration::from_secs(60));
    let response = deliver(&st, batch("booking-confirmed")).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = mail.sent.lock().unwrap().clone();
    assert_eq!(sent.iter().map(|e| e.to.as_str()).collect::<Vec<_>>(), ["guest@example.com", "host@example.com"]);
    assert_eq!((status_of(GUEST), status_of(HOST)), (EmailStatus::Sent, EmailStatus::Sent));

    // Later deliveries send nothing.
    let response = deliver(&st, batch("booking-confirmed")).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(mail.sent.lock().unwrap().len(), 2);
}
