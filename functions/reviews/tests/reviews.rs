//! Every sample event in `events/reviews/` replayed through the real router, as Lambda would
//! deliver it (lambda_http's own parser), with the answer each one must get.

use std::sync::Arc;

use reviews::{AppState, router};
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
        ("response-empty-comment.json", 400, "validation_failed", Some("comment")),
        ("review-malformed-json.json", 400, "malformed_request", None),
        ("review-rating-out-of-range.json", 400, "validation_failed", Some("rating")),
        ("review-unknown-booking.json", 404, "not_found", None),
        ("review-without-claims.json", 401, "unauthorized", None),
        ("reviews-forged-cursor.json", 400, "invalid_cursor", Some("cursor")),
        ("reviews-limit-too-large.json", 400, "validation_failed", Some("limit")),
    ];
    testing::assert_problem_answers("reviews", || router(state()), expected).await;
}
