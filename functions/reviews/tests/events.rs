//! Every sample event in `events/reviews/` replayed through the real router, as Lambda would
//! deliver it (lambda_http's own parser), with the answer each one must get.

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use reviews::{AppState, router};
use secrecy::SecretString;
use serde_json::Value;
use shared::Table;
use shared::clock::FixedClock;
use shared::cursor::CursorKey;

/// DynamoDB on an unroutable endpoint: the replayed events must be answered without it (any
/// call would fail loudly as a 500).
fn state() -> AppState {
    let dynamodb = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .endpoint_url("http://127.0.0.1:9");
    AppState {
        table: Arc::new(Table::from_conf(dynamodb, "replay")),
        clock: Arc::new(FixedClock::at("2026-11-26T10:00:00Z").expect("timestamp")),
        cursors: Arc::new(CursorKey::new(&SecretString::from("k".repeat(48))).expect("cursor key")),
    }
}

async fn replay(file: &str) -> (u16, axum::http::HeaderMap, Value) {
    shared::testing::replay(router(state()), &shared::testing::sample("reviews", file)).await
}

#[tokio::test]
async fn every_sample_event_is_replayed() {
    // (file, status, problem code, field named in `errors`)
    let expected: &[(&str, u16, &str, Option<&str>)] = &[
        ("response-empty-comment.json", 400, "validation_failed", Some("comment")),
        ("review-malformed-json.json", 400, "malformed_request", None),
        ("review-rating-out-of-range.json", 400, "validation_failed", Some("rating")),
        ("review-unknown-booking.json", 404, "not_found", None),
        ("review-without-claims.json", 401, "unauthorized", None),
        ("reviews-forged-cursor.json", 400, "invalid_cursor", Some("cursor")),
        ("reviews-limit-too-large.json", 400, "validation_failed", Some("limit")),
    ];
    let files = shared::testing::sample_files("reviews");
    let listed: Vec<String> = expected.iter().map(|(f, ..)| f.to_string()).collect();
    assert_eq!(files, listed, "every file in events/reviews has an expectation here");

    for (file, status, code, field) in expected {
        let (got_status, headers, body) = replay(file).await;
        assert_eq!(got_status, *status, "{file}: {body}");
        assert_eq!(body["code"], *code, "{file}: {body}");
        assert_eq!(headers["content-type"], "application/problem+json", "{file}");
        if let Some(field) = field {
            assert_eq!(body["errors"][0]["field"], *field, "{file}: {body}");
        }
        assert_eq!(
            headers["x-request-id"],
            file.trim_end_matches(".json"),
            "{file}: the caller's request id is echoed"
        );
    }
}
