//! The payment call's answer: the booking's intent, as the guest's browser needs it to confirm
//! the card (Stripe.js).

use serde::Serialize;
use shared::ApiError;

use crate::store::BookingRecord;
use crate::stripe::Intent;

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentView {
    pub payment_intent_id: String,
    pub client_secret: String,
    pub amount: i64,
    /// ISO 4217, upper case, as everywhere in Roost's API.
    pub currency: String,
    /// Stripe's intent status (`requires_payment_method`, ..., `succeeded`).
    pub status: String,
}

impl PaymentView {
    /// The view of the booking's intent; an intent that does not charge the booking's price is
    /// an error (never shown).
    pub fn of(b: &BookingRecord, intent: Intent) -> Result<Self, ApiError> {
        let total = b.total();
        if intent.amount != total.amount || !intent.currency.eq_ignore_ascii_case(total.currency.code()) {
            return Err(anyhow::anyhow!(
                "intent {} is for {} {}, booking {} costs {total}",
                intent.id,
                intent.amount,
                intent.currency,
                b.id()
            )
            .into());
        }
        let client_secret = intent
            .client_secret
            .ok_or_else(|| anyhow::anyhow!("intent {} came back without a client secret", intent.id))?;
        Ok(Self {
            payment_intent_id: intent.id,
            client_secret,
            amount: total.amount,
            currency: total.currency.code().to_owned(),
            status: intent.status,
        })
    }
}
