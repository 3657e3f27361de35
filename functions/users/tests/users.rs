//! Every sample event in `events/users/` replayed through the real router, as Lambda would
//! deliver it (lambda_http's own parser), with the answer each one must get.

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};
use shared::Table;
use shared::clock::FixedClock;
use users::cognito::Cognito;
use users::{AppState, router};

/// AWS clients on an unroutable endpoint: the replayed events must be answered without them
/// (any call would fail loudly as a 500).
fn state() -> AppState {
    let dynamodb = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .endpoint_url("http://127.0.0.1:9");
    let cognito = aws_sdk_cognitoidentityprovider::config::Builder::new()
        .behavior_version(aws_sdk_cognitoidentityprovider::config::BehaviorVersion::latest())
        .region(aws_sdk_cognitoidentityprovider::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cognitoidentityprovider::config::Credentials::for_tests())
        .endpoint_url("http://127.0.0.1:9")
        .build();
    AppState {
        table: Arc::new(Table::from_conf(dynamodb, "replay")),
        cognito: Arc::new(Cognito {
            client: aws_sdk_cognitoidentityprovider::Client::from_conf(cognito),
            pool_id: "us-east-1_replay".into(),
            client_id: "replay".into(),
        }),
        clock: Arc::new(FixedClock::at("2026-11-26T10:00:00Z").expect("timestamp")),
        cursors: Arc::new(
            shared::cursor::CursorKey::new(&secrecy::SecretString::from("replay-cursor-key-of-at-least-32-bytes!"))
                .expect("cursor key"),
        ),
        unconfirmed_grace: users::rules::DEFAULT_UNCONFIRMED_GRACE,
    }
}

async fn replay(file: &str) -> (u16, axum::http::HeaderMap, Value) {
    shared::testing::replay(router(state()), &shared::testing::sample("users", file)).await
}

#[tokio::test]
async fn every_sample_event_is_replayed() {
    let problem = |code: &str| json!({"code": code});
    let expected: &[(&str, u16, Value)] = &[
        ("health.json", 200, json!({"status": "ok"})),
        ("login-malformed-json.json", 400, problem("malformed_request")),
        ("me-without-claims.json", 401, problem("unauthorized")),
        ("public-profile-unknown-id.json", 404, problem("not_found")),
        ("signup-weak-password.json", 400, problem("validation_failed")),
        ("update-me-unknown-field.json", 400, problem("validation_failed")),
    ];
    let files = shared::testing::sample_files("users");
    let mut listed: Vec<String> = expected.iter().map(|(f, _, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "every file in events/users has an expectation here");

    for (file, status, body) in expected {
        let (got_status, headers, got_body) = replay(file).await;
        assert_eq!(got_status, *status, "{file}: {got_body}");
        match body.get("code") {
            // A problem: the stable code is the contract; the rest is prose.
            Some(code) => assert_eq!(&got_body["code"], code, "{file}: {got_body}"),
            None => assert_eq!(&got_body, body, "{file}"),
        }
        let sent = if *file == "health.json" { "health-check-1" } else { file.trim_end_matches(".json") };
        assert_eq!(headers["x-request-id"], sent, "{file}: the caller's request id is echoed");
    }
}
