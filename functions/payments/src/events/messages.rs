//! What a message of the payment-events queue is: a Stripe event the webhook verified, or a
//! domain event envelope from the topic; and the Stripe objects the events carry.

use serde::Deserialize;
use serde_json::Value;
use shared::events::Envelope;

use crate::connect::Account;
use crate::events::rules::{ChargeObject, IntentObject};

/// A Stripe event: the envelope fields Roost reads.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    pub data: StripeEventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeEventData {
    pub object: Value,
}

/// One message of the queue.
#[derive(Debug, Clone)]
pub enum Incoming {
    Stripe(StripeEvent),
    Domain(Envelope),
}

/// Stripe events say `"object": "event"`; everything else must be a domain envelope.
pub fn classify(body: Value) -> anyhow::Result<Incoming> {
    if body.get("object").and_then(Value::as_str) == Some("event") {
        let event: StripeEvent =
            serde_json::from_value(body).map_err(|e| anyhow::anyhow!("not a Stripe event: {e}"))?;
        if event.id.is_empty() {
            anyhow::bail!("a Stripe event without an id");
        }
        return Ok(Incoming::Stripe(event));
    }
    Ok(Incoming::Domain(Envelope::from_json(&body.to_string())?))
}

pub fn intent(event: &StripeEvent) -> anyhow::Result<IntentObject> {
    serde_json::from_value(event.data.object.clone())
        .map_err(|e| anyhow::anyhow!("{}: data.object is not a payment intent: {e}", event.id))
}

pub fn account(event: &StripeEvent) -> anyhow::Result<Account> {
    serde_json::from_value(event.data.object.clone())
        .map_err(|e| anyhow::anyhow!("{}: data.object is not an account: {e}", event.id))
}

pub fn charge(event: &StripeEvent) -> anyhow::Result<ChargeObject> {
    serde_json::from_value(event.data.object.clone())
        .map_err(|e| anyhow::anyhow!("{}: data.object is not a charge: {e}", event.id))
}
