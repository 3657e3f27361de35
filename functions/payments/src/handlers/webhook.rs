//! `POST /v1/webhooks/stripe`: verify, enqueue, answer. Nothing else, so a slow database can
//! never make Stripe retry (Stripe retries a webhook that is not answered 2xx within seconds).
//!
//! The signature is checked on the exact bytes of the body (`signature::verify`); a verified
//! body is put, verbatim, on the payment-events queue with the message attribute
//! `source = stripe`, and `payment-events` applies it. Every refusal is the same 400 problem,
//! whatever the reason (the reason goes to the log, never the signature or the body).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::extract::Json;
use shared::metrics::{self, Business};

use crate::AppState;
use crate::signature::{self, SignatureError};

pub const SIGNATURE_HEADER: &str = "stripe-signature";
/// SQS takes 256 KiB per message, attributes included.
pub const MAX_EVENT_BYTES: usize = 250 * 1024;

/// The one answer to anything that does not verify.
pub fn refused() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_signature", "The request could not be verified.")
}

/// A Stripe event as Stripe posts it (its fields that Roost reads; Stripe sends more). The
/// events acted on: `payment_intent.succeeded`, `payment_intent.payment_failed` and
/// `payment_intent.amount_capturable_updated` (a request's card authorised) (`data.object` a
/// PaymentIntent), `charge.refunded` (a Charge); others are acknowledged and ignored.
#[derive(utoipa::ToSchema)]
#[schema(as = StripeEvent, examples(json!({
    "id": "evt_1PqRsT2eZvKYlo2C", "object": "event", "type": "payment_intent.succeeded",
    "data": {"object": {"id": "pi_3PqRsT2eZvKYlo2C1a2b3c4d", "object": "payment_intent", "amount": 30653,
        "currency": "eur", "status": "succeeded", "metadata": {"booking_id": "bkg_01jh8x3k2m4n5p6q7r8s9t0vwx"}}}
})))]
pub struct StripeEventDoc {
    /// Stripe's event id (`evt_...`).
    pub id: String,
    /// Always `event`.
    pub object: String,
    /// The event type, such as `payment_intent.succeeded`.
    #[schema(rename = "type")]
    pub event_type: String,
    pub data: StripeEventDataDoc,
}

/// What the event is about.
#[derive(utoipa::ToSchema)]
#[schema(as = StripeEventData)]
pub struct StripeEventDataDoc {
    /// The Stripe object (a PaymentIntent or a Charge), as Stripe's API shows it.
    #[schema(value_type = Object)]
    pub object: serde_json::Value,
}

/// The answer to a verified event: it is queued, and applied by `payment-events`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookReceived)]
pub struct Received {
    /// Always `true`.
    pub received: bool,
}

/// The ids worth logging of a verified event (never its data).
#[derive(Deserialize)]
struct EventIds {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    event_type: Option<String>,
}

/// POST /v1/webhooks/stripe: Stripe only (public; the signature is the authentication).
#[utoipa::path(post, path = "/v1/webhooks/stripe", tag = "payments",
    summary = "Stripe's webhook: a signed event, verified and queued (Stripe only)",
    params(("Stripe-Signature" = String, Header,
        description = "Stripe's signature of the exact body: `t=<unix time>,v1=<hex HMAC-SHA256>` (one or more `v1`), within 5 minutes of now.")),
    request_body(content = StripeEventDoc, description = "The event exactly as Stripe sent it (at most 250 KiB); the signature covers these bytes.", content_type = "application/json"),
    responses(
        (status = 200, description = "Verified and queued.", body = Received),
        (status = 400, description = "invalid_signature"),
    ))]
pub async fn stripe_webhook(State(st): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = read_body(body).await?;
    let header = signature_header(&parts.headers);
    let secrets: Vec<&SecretString> = st.webhook_secrets.0.iter().collect();
    if let Err(reason) = signature::verify(header, &body, &secrets, st.clock.now(), signature::TOLERANCE_SECONDS) {
        if reason == SignatureError::NoSecret {
            return Err(ApiError::Unexpected(anyhow::anyhow!("no webhook secret configured")));
        }
        metrics::count(Business::WebhooksRejected);
        tracing::warn!(reason = %reason, body_bytes = body.len(), "stripe webhook refused");
        return Err(refused());
    }
    // Stripe sends UTF-8 JSON; a verified body that is not text cannot be a message body.
    let Ok(text) = std::str::from_utf8(&body) else {
        metrics::count(Business::WebhooksRejected);
        tracing::warn!(body_bytes = body.len(), "stripe webhook refused: verified body is not UTF-8");
        return Err(refused());
    };
    let ids: Option<EventIds> = serde_json::from_str(text).ok();
    let (event_id, event_type) = ids.map(|i| (i.id, i.event_type)).unwrap_or_default();
    let message_id = st.queue.send(text).await.map_err(ApiError::Unexpected)?;
    metrics::count(Business::WebhooksAccepted);
    tracing::info!(
        event_id = event_id.as_deref().unwrap_or("?"),
        event_type = event_type.as_deref().unwrap_or("?"),
        sqs_message_id = %message_id,
        "stripe event queued"
    );
    Ok((StatusCode::OK, Json(Received { received: true })).into_response())
}

fn signature_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok())
}

async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    match Limited::new(body, MAX_EVENT_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            tracing::error!(limit = MAX_EVENT_BYTES, "stripe webhook body over the queue's limit");
            Err(ApiError::payload_too_large())
        }
        Err(_) => Err(refused()),
    }
}
