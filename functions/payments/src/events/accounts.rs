//! `account.updated`: a host's payout account as Stripe sees it (onboarding finished, payouts
//! enabled or disabled, requirements due), recorded on the host's `PAYOUT_ACCOUNT` item.
//!
//! Idempotent without a receipt: the event carries the account's whole state, and an event older
//! than the last one applied is ignored (`store::update_payout_account`), so duplicates and
//! reordering leave the newest state.

use crate::connect::Account;
use crate::events::EventsState;
use crate::store::{self, AccountState};

pub async fn on_account_updated(st: &EventsState, event_created: i64, account: Account) -> anyhow::Result<()> {
    let Some(user_id) = account.user_id().map(str::to_owned) else {
        tracing::warn!(account_id = %account.id, "account without a Roost user: acknowledged");
        return Ok(());
    };
    let requirements = account.requirements.unwrap_or_default();
    let state = AccountState {
        details_submitted: account.details_submitted,
        payouts_enabled: account.payouts_enabled,
        requirements_due: requirements.currently_due,
        disabled_reason: requirements.disabled_reason.filter(|r| !r.is_empty()),
        event_created,
    };
    match store::update_payout_account(&st.table, &user_id, &account.id, &state, st.clock.now()).await {
        Ok(()) => {
            tracing::info!(account_id = %account.id, payouts_enabled = state.payouts_enabled, "payout account updated");
            Ok(())
        }
        Err(e) if e.is_condition_failure() => {
            tracing::info!(account_id = %account.id, "older event, or an account Roost does not hold: acknowledged");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
