//! How the invocation's time is spent: every Stripe call runs within the budget left before the
//! invocation's deadline, so the batch answer always reaches Lambda in time.

use std::time::Duration;

use tokio::time::Instant;

use crate::events::EventsState;
use crate::stripe::StripeFailure;

/// How the invocation's time is spent (item 2 of issue 13): a Stripe call is started only
/// when `stripe_call` is left before the cutoff (deadline minus `reserve`), and nothing runs
/// past the cutoff, so the batch answer, with the failed messages named, always reaches Lambda
/// before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// One Stripe call at its client timeout and the write that records its answer.
    pub stripe_call: Duration,
    /// Kept free at the end of the invocation to answer.
    pub reserve: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            stripe_call: crate::stripe::REQUEST_TIMEOUT + Duration::from_secs(1),
            reserve: Duration::from_millis(500),
        }
    }
}

/// One delivery of a message: how often SQS handed it out, and when its invocation's time is up.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// `ApproximateReceiveCount` (1 on the first delivery).
    pub receive_count: u32,
    /// The deadline minus the reserve; `None` outside Lambda (no deadline known).
    pub cutoff: Option<Instant>,
}

impl Delivery {
    /// The queue's last receive of this message: failing now moves it to the DLQ.
    pub fn is_last(&self, st: &EventsState) -> bool {
        self.receive_count >= st.max_receive_count
    }
}

/// Why a Stripe call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum StripeStep {
    #[error(
        "{left_ms} ms left before the invocation's deadline, not enough for a Stripe call: the message returns to the queue"
    )]
    OutOfTime { left_ms: u128 },
    #[error(transparent)]
    Stripe(#[from] StripeFailure),
}

impl StripeStep {
    /// What a failed refund records: Stripe's error code and message (never card data), else
    /// what went wrong on the way.
    pub fn reason(&self) -> String {
        let reason = match self {
            Self::OutOfTime { .. } => "no_time_left: Stripe was too slow before the invocation's deadline".to_owned(),
            Self::Stripe(StripeFailure::Api { status, code, message, .. }) => match (code, message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => format!("stripe_http_{status}"),
            },
            Self::Stripe(StripeFailure::Transport(_)) => "stripe_unreachable".to_owned(),
        };
        reason.chars().take(500).collect()
    }
}

/// A Stripe call within the budget: refused when less than `budget.stripe_call` is left before
/// the cutoff, abandoned at the cutoff. Abandoning is safe: every Stripe effect is adopted by
/// the next delivery (refunds by their metadata, cancellations by the intent's status).
pub async fn at_stripe<'a, T>(
    st: &EventsState,
    d: Delivery,
    call: impl FnOnce() -> futures::future::BoxFuture<'a, Result<T, StripeFailure>>,
) -> Result<T, StripeStep> {
    let Some(cutoff) = d.cutoff else { return Ok(call().await?) };
    let left = cutoff.saturating_duration_since(Instant::now());
    if left < st.budget.stripe_call {
        return Err(StripeStep::OutOfTime { left_ms: left.as_millis() });
    }
    match tokio::time::timeout_at(cutoff, call()).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(StripeStep::OutOfTime { left_ms: 0 }),
    }
}
