//! The payouts function (`src/bin/payouts.rs`, template `PayoutsFunction`, every 30 minutes):
//! moves each due booking payout one step at a time to what its host is owed
//! (docs/payments.md, "Payouts").
//!
//! A payout is due 24 hours after its check-in (and again whenever a refund lands after its
//! transfer). For each, read fresh (payout, booking, host's account), decide (`rules::next_step`)
//! and act: transfer what is owed (claimed on the item first, Stripe `Idempotency-Key` per
//! attempt), reverse what a refund took back, wait for the host's account, or settle and leave
//! the index. Every write is conditioned on the version read (`store`), so overlapping runs and
//! retries move money once. A failed attempt is recorded (`failed`, its Stripe code), retried
//! with backoff and logged with `"alert": "payout_failed"` (alarmed).

pub mod rules;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use shared::money::Money;
use shared::payout::PayoutItem;
use shared::table::TableError;
use shared::{SharedClock, Table};
use tokio::time::Instant;
use tracing::Instrument;

use crate::connect::{Connect, NewReversal, NewTransfer};
use crate::events::ALERT_FIELD;
use crate::payouts::rules::Step;
use crate::stripe::StripeFailure;

/// Payouts looked at per run (the rest wait for the next run, oldest first).
pub const BATCH: u32 = 50;
/// Steps per payout per run: claim, transfer, reverse, settle.
pub const MAX_STEPS: usize = 5;
/// Time kept back from the invocation's deadline: no payout is started after it.
pub const RESERVE: Duration = Duration::from_secs(15);

/// Everything a run needs, built once per process.
#[derive(Clone)]
pub struct PayoutsState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub connect: Arc<dyn Connect>,
}

/// What a run did (its answer and log line).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub due: u32,
    pub transferred: u32,
    pub reversed: u32,
    pub settled: u32,
    pub waiting_for_account: u32,
    pub failed: u32,
    /// Changed by someone else meanwhile, or a read failed: looked at again next run.
    pub skipped: u32,
}

/// One run: the due payouts, oldest first, until `deadline` (less [`RESERVE`]).
pub async fn run(st: &PayoutsState, deadline: Option<Instant>) -> Result<RunReport, TableError> {
    let due = store::due(&st.table, st.clock.now(), BATCH).await?;
    let mut report = RunReport { due: u32::try_from(due.len()).unwrap_or(u32::MAX), ..RunReport::default() };
    for p in due {
        if deadline.is_some_and(|d| Instant::now() + RESERVE >= d) {
            tracing::warn!("the invocation's deadline is near: the other payouts wait for the next run");
            break;
        }
        let span = tracing::info_span!("payout", booking_id = %p.booking_id);
        match advance(st, &p.booking_id, &mut report).instrument(span).await {
            Ok(()) => {}
            Err(e) if e.is_condition_failure() => report.skipped += 1,
            Err(e) => {
                tracing::warn!(error = %e, "payout not advanced: looked at again next run");
                report.skipped += 1;
            }
        }
    }
    Ok(report)
}

/// Moves one payout step by step until it settles, waits or fails.
async fn advance(st: &PayoutsState, booking_id: &str, report: &mut RunReport) -> Result<(), TableError> {
    // The version this run's own claim wrote, if it claimed.
    let mut claimed = None;
    for _ in 0..MAX_STEPS {
        let now = st.clock.now();
        let Some(p) = store::payout(&st.table, booking_id).await? else { return Ok(()) };
        // The index is eventually consistent: an entry just moved on (a retry rescheduled, a
        // payout settled) may still be listed as due. The item itself decides.
        if !rules::is_due(&p, now) {
            return Ok(());
        }
        let Some(b) = crate::store::read_booking(&st.table, booking_id).await? else {
            tracing::error!("a payout without its booking: left as it is");
            return Ok(());
        };
        let account = crate::store::payout_account(&st.table, &p.host_id).await?;
        match rules::next_step(&p, &b.item, account.as_ref()) {
            Step::Settle(status) => {
                store::settle(&st.table, &p, status, now).await?;
                tracing::info!(status = status.as_str(), net = p.net(), "payout settled");
                report.settled += 1;
                return Ok(());
            }
            Step::Transfer { destination_ready: false, .. } => {
                let retry = now.checked_add(rules::ACCOUNT_RETRY).unwrap_or(now);
                store::wait_for_account(&st.table, &p, retry, now).await?;
                tracing::info!("payout due, the host's payout account cannot receive yet");
                report.waiting_for_account += 1;
                return Ok(());
            }
            Step::Transfer { .. } if rules::claimed_by_another_run(&p, claimed, now) => {
                tracing::info!("another run is transferring this payout: left to it");
                report.skipped += 1;
                return Ok(());
            }
            Step::Transfer { amount, .. } if claimed != Some(p.version) => {
                // A new attempt, or one left by a run that stopped: claimed (again) by this run.
                claimed = Some(store::claim_transfer(&st.table, &p, amount, now).await?);
            }
            Step::Transfer { amount, .. } => {
                let destination = account.map(|a| a.account_id).unwrap_or_default();
                let new = NewTransfer {
                    amount: Money::new(amount, p.currency),
                    destination,
                    booking_id: booking_id.to_owned(),
                    idempotency_key: rules::transfer_key(&p),
                };
                match st.connect.create_transfer(&new).await {
                    Ok(t) => {
                        store::record_transfer(&st.table, &p, &t.id, t.amount, now).await?;
                        tracing::info!(transfer_id = %t.id, amount = t.amount, "payout transferred");
                        report.transferred += 1;
                    }
                    Err(e) => return failed(st, &p, "transfer", e, report).await,
                }
            }
            Step::Reverse { amount } => {
                let new = NewReversal {
                    transfer_id: p.transfer_id.clone().unwrap_or_default(),
                    amount: Money::new(amount, p.currency),
                    booking_id: booking_id.to_owned(),
                    idempotency_key: rules::reversal_key(&p, amount),
                };
                match st.connect.reverse_transfer(&new).await {
                    Ok(reversal_id) => {
                        store::record_reversal(&st.table, &p, amount, now).await?;
                        tracing::info!(reversal_id = %reversal_id, amount, "payout partly reversed (a refund)");
                        report.reversed += 1;
                    }
                    Err(e) => return failed(st, &p, "reversal", e, report).await,
                }
            }
        }
    }
    Ok(())
}

/// A refusal moves to the next idempotency key (Stripe keeps a refused request's answer under
/// its key); an unknown outcome (network, 5xx, 429, 409 in progress) keeps the key and amount.
fn refused(e: &StripeFailure) -> bool {
    matches!(e, StripeFailure::Api { status, .. } if (400..500).contains(status) && *status != 409 && *status != 429)
}

async fn failed(
    st: &PayoutsState,
    p: &PayoutItem,
    what: &str,
    e: StripeFailure,
    report: &mut RunReport,
) -> Result<(), TableError> {
    let now = st.clock.now();
    let code = match &e {
        StripeFailure::Api { status, code, .. } => code.clone().unwrap_or_else(|| format!("http_{status}")),
        StripeFailure::Transport(_) => "provider_unavailable".to_owned(),
    };
    let failures = p.failed_attempts + 1;
    let retry = rules::retry_at(now, failures);
    store::record_failure(&st.table, p, &code, refused(&e), retry, now).await?;
    tracing::error!(
        { ALERT_FIELD } = "payout_failed",
        booking_id = %p.booking_id,
        step = what,
        stripe_code = %code,
        failed_attempts = failures,
        retry_at = %retry,
        "PAYOUT FAILED: retried later"
    );
    report.failed += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_moves_to_the_next_key() {
        let api = |status| StripeFailure::Api { status, code: None, decline_code: None, message: None };
        assert!(refused(&api(400)));
        assert!(refused(&api(402)));
        assert!(!refused(&api(409)));
        assert!(!refused(&api(429)));
        assert!(!refused(&api(500)));
        assert!(!refused(&StripeFailure::Transport(anyhow::anyhow!("timeout"))));
    }
}
