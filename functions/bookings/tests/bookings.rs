//! Every sample event in `events/bookings/` replayed through the real router, as Lambda would
//! deliver it (lambda_http's own parser), with the answer each one must get.

use std::sync::Arc;

use bookings::{AppState, router};
use jiff::SignedDuration;
use shared::clock::FixedClock;
use shared::testing::{self, ProblemAnswer};

/// DynamoDB unreachable: the replayed events must be answered without it.
fn state() -> AppState {
    AppState {
        table: Arc::new(testing::offline_table()),
        clock: Arc::new(FixedClock::at("2026-11-26T10:00:00Z").expect("timestamp")),
        cursors: Arc::new(testing::replay_cursor_key()),
        hold: SignedDuration::from_mins(15),
        platform_fee_basis_points: 300,
    }
}

#[tokio::test]
async fn every_sample_event_is_replayed() {
    let expected: &[ProblemAnswer] = &[
        ("book-bad-idempotency-key.json", 400, "validation_failed", Some("Idempotency-Key")),
        ("book-without-claims.json", 401, "unauthorized", None),
        ("booking-unknown-id.json", 404, "not_found", None),
        ("quote-invalid-date.json", 400, "validation_failed", Some("check_in")),
        ("quote-malformed-json.json", 400, "malformed_request", None),
        ("reservations-as-guest.json", 403, "host_required", None),
        ("trips-forged-cursor.json", 400, "invalid_cursor", Some("cursor")),
        ("trips-unknown-status.json", 400, "validation_failed", Some("status")),
    ];
    testing::assert_problem_answers("bookings", || router(state()), expected).await;
}
