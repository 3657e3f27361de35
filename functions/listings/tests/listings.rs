//! Every sample event in `events/listings/` replayed through the real router, as Lambda would
//! deliver it (lambda_http's own parser), with the answer each one must get.

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use listings::photos::PhotoStore;
use listings::{AppState, router};
use secrecy::SecretString;
use serde_json::Value;
use shared::Table;
use shared::clock::FixedClock;
use shared::cursor::CursorKey;

/// AWS clients on an unroutable endpoint: the replayed events must be answered without them
/// (any DynamoDB or S3 call would fail loudly as a 500).
fn state() -> AppState {
    let dynamodb = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .endpoint_url("http://127.0.0.1:9");
    let s3 = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::for_tests())
        .endpoint_url("http://127.0.0.1:9")
        .force_path_style(true)
        .build();
    AppState {
        table: Arc::new(Table::from_conf(dynamodb, "replay")),
        photos: Arc::new(PhotoStore { client: aws_sdk_s3::Client::from_conf(s3), bucket: "replay".into() }),
        clock: Arc::new(FixedClock::at("2026-11-26T10:00:00Z").expect("timestamp")),
        cursors: Arc::new(CursorKey::new(&SecretString::from("k".repeat(48))).expect("cursor key")),
        allow_loopback_feeds: false,
        payout_account_required: false,
    }
}

async fn replay(file: &str) -> (u16, axum::http::HeaderMap, Value) {
    shared::testing::replay(router(state()), &shared::testing::sample("listings", file)).await
}

fn fields(body: &Value) -> Vec<&str> {
    body["errors"].as_array().map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn every_sample_event_is_replayed() {
    // (file, status, code, fields named, request id)
    let expected: &[(&str, u16, &str, &[&str], &str)] = &[
        ("create-listing-as-guest.json", 403, "host_required", &[], "listings-create-1"),
        ("create-listing-invalid.json", 400, "validation_failed", &["timezone", "max_guests"], "listings-create-2"),
        ("get-listing-unknown-id.json", 404, "not_found", &[], "listings-get-1"),
        (
            "photo-upload-not-an-image.json",
            400,
            "validation_failed",
            &["content_type", "content_length"],
            "listings-photo-1",
        ),
        ("search-forged-cursor.json", 400, "invalid_cursor", &["cursor"], "listings-search-2"),
        ("search-without-city.json", 400, "validation_failed", &["city", "check_out"], "listings-search-1"),
    ];
    let files = shared::testing::sample_files("listings");
    let listed: Vec<String> = expected.iter().map(|(f, ..)| f.to_string()).collect();
    assert_eq!(files, listed, "every file in events/listings has an expectation here");

    for (file, status, code, named, request_id) in expected {
        let (got_status, headers, body) = replay(file).await;
        assert_eq!(got_status, *status, "{file}: {body}");
        assert_eq!(headers["content-type"], "application/problem+json", "{file}");
        assert_eq!(body["code"], *code, "{file}: {body}");
        assert_eq!(fields(&body), *named, "{file}: {body}");
        assert_eq!(headers["x-request-id"], *request_id, "{file}: the caller's request id is echoed");
    }
}
