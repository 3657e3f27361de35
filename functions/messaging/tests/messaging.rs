//! Every sample event in `events/messaging/` replayed through the real router, as Lambda would
//! deliver it (lambda_http's own parser), with the answer each one must get.

use std::sync::Arc;

use messaging::{AppState, router};
use shared::clock::FixedClock;
use shared::testing::{self, ProblemAnswer};

/// DynamoDB unreachable: the replayed events must be answered without it.
fn state() -> AppState {
    AppState {
        table: Arc::new(testing::offline_table()),
        clock: Arc::new(FixedClock::at("2026-11-26T10:00:00Z").expect("timestamp")),
        cursors: Arc::new(testing::replay_cursor_key()),
    }
}

#[tokio::test]
async fn every_sample_event_is_replayed() {
    let expected: &[ProblemAnswer] = &[
        ("conversations-forged-cursor.json", 400, "invalid_cursor", Some("cursor")),
        ("conversations-limit-too-large.json", 400, "validation_failed", Some("limit")),
        ("inquiry-empty-text.json", 400, "validation_failed", Some("text")),
        ("inquiry-malformed-json.json", 400, "malformed_request", None),
        ("inquiry-unknown-listing-id.json", 404, "not_found", None),
        ("inquiry-without-claims.json", 401, "unauthorized", None),
        ("message-unknown-conversation.json", 404, "not_found", None),
        ("messages-unknown-conversation.json", 404, "not_found", None),
    ];
    testing::assert_problem_answers("messaging", || router(state()), expected).await;
}
