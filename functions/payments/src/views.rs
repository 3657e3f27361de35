//! The payment call's answer: the booking's intent, as the guest's browser needs it to confirm
//! the card (Stripe.js).

use serde::Serialize;
use shared::ApiError;

use crate::store::BookingRecord;
use crate::stripe::Intent;

/// The booking's Stripe PaymentIntent: confirm it with Stripe.js (`client_secret`); the booking
/// reads `confirmed` once Stripe tells Roost the payment succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = PaymentIntent)]
pub struct PaymentView {
    /// Stripe's id of the intent (`pi_...`), the same on every call for a booking.
    #[schema(examples("pi_3PqRsT2eZvKYlo2C1a2b3c4d"))]
    pub payment_intent_id: String,
    /// For Stripe.js in the guest's browser only; never log or store it.
    #[schema(examples("pi_3PqRsT2eZvKYlo2C1a2b3c4d_secret_XyZ"))]
    pub client_secret: String,
    /// The booking's total in ISO minor units of `currency` (whatever Stripe's own units are).
    #[schema(minimum = 0, examples(30653))]
    pub amount: i64,
    /// ISO 4217, upper case, as everywhere in Roost's API.
    #[schema(pattern = "^[A-Z]{3}$", examples("EUR"))]
    pub currency: String,
    /// Stripe's intent status (`requires_payment_method`, `requires_action`, `processing`, ...,
    /// `succeeded`).
    #[schema(examples("requires_payment_method"))]
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
