//! Stripe, as Roost uses it: four calls on PaymentIntents and Refunds.
//!
//! Requests are built with async-stripe's typed request builders and sent through its client
//! (auth, `Idempotency-Key`, `Stripe-Version`, error mapping). Responses are decoded into Roost's
//! own minimal structs, a tolerant reader: the typed responses do not decode from localstripe
//! (EMULATORS.md), and Stripe adds fields to its objects all the time.
//!
//! [`Gateway`] is the port the handlers use; [`StripeApi`] is the one real implementation.
//! Nothing here logs a client secret, a key or anything about a card.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use stripe::{IdempotencyKey, RequestStrategy, StripeError};
use stripe_client_core::{RequestBuilder, StripeRequest};

/// Stripe's production API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com/";
/// One attempt's budget: the functions run with a 10 s timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// Metadata keys Roost puts on intents and refunds.
pub const META_BOOKING_ID: &str = "booking_id";
pub const META_GUEST_ID: &str = "guest_id";

/// A PaymentIntent: only the fields Roost reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Intent {
    pub id: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`,
    /// `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    pub amount: i64,
    /// Lower case, as Stripe sends it.
    pub currency: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// A Refund: only the fields Roost reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Refund {
    pub id: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

impl Refund {
    pub fn succeeded(&self) -> bool {
        self.status.as_deref() == Some("succeeded")
    }
}

#[derive(Debug, Deserialize)]
struct RefundList {
    #[serde(default)]
    data: Vec<Refund>,
}

/// What a new intent is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIntent {
    pub amount: i64,
    /// ISO 4217, any case (sent lower case).
    pub currency: String,
    pub booking_id: String,
    pub guest_id: String,
    /// Stripe's `Idempotency-Key`.
    pub idempotency_key: String,
}

/// A refund of (part of) an intent's charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub payment_intent: String,
    pub amount: i64,
    pub booking_id: String,
    pub idempotency_key: String,
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum StripeFailure {
    /// Stripe answered with an error object (a decline, a bad state, a bad request).
    /// `message` is Stripe's human-readable explanation (no card data); it is kept only where
    /// an operator needs it (a refund that failed), never in the `Display` form that is logged.
    #[error("Stripe answered {status} ({})", code.as_deref().unwrap_or("no code"))]
    Api { status: u16, code: Option<String>, decline_code: Option<String>, message: Option<String> },
    /// No usable answer: network, timeout, or a body that is not what was asked for.
    #[error("Stripe call failed: {0:#}")]
    Transport(anyhow::Error),
}

impl StripeFailure {
    /// A 4xx from Stripe: the request itself cannot succeed as it is.
    pub fn is_client_error(&self) -> bool {
        matches!(self, Self::Api { status, .. } if (400..500).contains(status))
    }
}

impl From<StripeError> for StripeFailure {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Stripe(err, status) => Self::Api {
                status,
                code: err.code.as_ref().map(|c| c.as_str().to_owned()),
                decline_code: err.decline_code.clone(),
                message: err.message.clone(),
            },
            other => Self::Transport(anyhow::anyhow!("{other}")),
        }
    }
}

/// The Stripe calls the handlers make (a fake in unit tests).
pub trait Gateway: Send + Sync {
    fn create_intent<'a>(&'a self, new: &'a NewIntent) -> BoxFuture<'a, Result<Intent, StripeFailure>>;
    fn retrieve_intent<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>>;
    fn cancel_intent<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>>;
    fn create_refund<'a>(&'a self, new: &'a NewRefund) -> BoxFuture<'a, Result<Refund, StripeFailure>>;
    /// The refunds of an intent's charge, newest first.
    fn refunds_of<'a>(&'a self, payment_intent: &'a str) -> BoxFuture<'a, Result<Vec<Refund>, StripeFailure>>;
}

/// Stripe through async-stripe's client.
#[derive(Clone)]
pub struct StripeApi {
    client: stripe::Client,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeApi").finish_non_exhaustive()
    }
}

impl StripeApi {
    /// `api_base` is `https://api.stripe.com/` in the cloud, localstripe locally (a trailing
    /// slash is added when missing).
    pub fn new(secret_key: &SecretString, api_base: &str) -> Result<Self, StripeFailure> {
        // rustls picks its crypto provider from its crate features, and panics when a build
        // enables two (workspace builds unify features). Choose aws-lc-rs, as the AWS SDK does;
        // a provider installed before is kept.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut base = api_base.trim().to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        let client = stripe::ClientBuilder::new(secret_key.expose_secret())
            .url(base)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(StripeFailure::from)?;
        Ok(Self { client })
    }

    /// Sends `request` (with `key` as Stripe's `Idempotency-Key`) and decodes the answer as `T`.
    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder, key: Option<&str>) -> Result<T, StripeFailure> {
        let mut call = request.customize::<miniserde::json::Value>();
        if let Some(key) = key {
            let key = IdempotencyKey::new(key)
                .map_err(|e| StripeFailure::Transport(anyhow::anyhow!("idempotency key: {e}")))?;
            call = call.request_strategy(RequestStrategy::Idempotent(key));
        }
        let value = call.send(&self.client).await?;
        let text = miniserde::json::to_string(&value);
        serde_json::from_str(&text)
            .map_err(|e| StripeFailure::Transport(anyhow::anyhow!("unexpected Stripe answer: {e}")))
    }
}

/// The create-intent request: amount, currency (lower case), metadata linking booking and guest,
/// and `payment_method_types[]=card`. Those are the parameters localstripe knows; it refuses
/// any other. async-stripe's builder (API version 2026-09-30) offers only the newer
/// `allowed_payment_method_types`, which Stripe also accepts but localstripe does not, so the
/// one classic parameter is appended to the builder's form body.
pub fn create_intent_request(new: &NewIntent) -> RequestBuilder {
    let currency: stripe_types::Currency =
        new.currency.to_ascii_lowercase().parse().unwrap_or_else(|never: std::convert::Infallible| match never {});
    let metadata = HashMap::from([
        (META_BOOKING_ID.to_owned(), new.booking_id.clone()),
        (META_GUEST_ID.to_owned(), new.guest_id.clone()),
    ]);
    let mut request =
        stripe_core::payment_intent::CreatePaymentIntent::new(new.amount, currency).metadata(metadata).build();
    let card = "payment_method_types[0]=card";
    request.body = Some(match request.body.take() {
        Some(body) if !body.is_empty() => format!("{body}&{card}"),
        _ => card.to_owned(),
    });
    request
}

/// The refund request: the intent, the amount, and the booking in metadata.
pub fn create_refund_request(new: &NewRefund) -> RequestBuilder {
    let metadata = HashMap::from([(META_BOOKING_ID.to_owned(), new.booking_id.clone())]);
    stripe_core::refund::CreateRefund::new()
        .payment_intent(new.payment_intent.clone())
        .amount(new.amount)
        .metadata(metadata)
        .build()
}

impl Gateway for StripeApi {
    fn create_intent<'a>(&'a self, new: &'a NewIntent) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async move { self.send(create_intent_request(new), Some(&new.idempotency_key)).await })
    }

    fn retrieve_intent<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(
            async move { self.send(stripe_core::payment_intent::RetrievePaymentIntent::new(id).build(), None).await },
        )
    }

    fn cancel_intent<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(
            async move { self.send(stripe_core::payment_intent::CancelPaymentIntent::new(id).build(), None).await },
        )
    }

    fn create_refund<'a>(&'a self, new: &'a NewRefund) -> BoxFuture<'a, Result<Refund, StripeFailure>> {
        Box::pin(async move { self.send(create_refund_request(new), Some(&new.idempotency_key)).await })
    }

    fn refunds_of<'a>(&'a self, payment_intent: &'a str) -> BoxFuture<'a, Result<Vec<Refund>, StripeFailure>> {
        Box::pin(async move {
            let list: RefundList = self
                .send(stripe_core::refund::ListRefund::new().payment_intent(payment_intent).limit(100).build(), None)
                .await?;
            Ok(list.data)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(body).unwrap()
    }

    #[test]
    fn the_intent_request_carries_only_what_localstripe_knows() {
        let new = NewIntent {
            amount: 43_979,
            currency: "EUR".into(),
            booking_id: "bkg_1".into(),
            guest_id: "g-1".into(),
            idempotency_key: "payment-intent-bkg_1".into(),
        };
        let request = create_intent_request(&new);
        assert_eq!(request.path, "/payment_intents");
        let mut fields = form(request.body.as_deref().unwrap());
        fields.sort();
        assert_eq!(
            fields,
            vec![
                ("amount".to_owned(), "43979".to_owned()),
                ("currency".to_owned(), "eur".to_owned()),
                ("metadata[booking_id]".to_owned(), "bkg_1".to_owned()),
                ("metadata[guest_id]".to_owned(), "g-1".to_owned()),
                ("payment_method_types[0]".to_owned(), "card".to_owned()),
            ]
        );
    }

    #[test]
    fn the_refund_request_names_the_intent_and_the_amount() {
        let new = NewRefund {
            payment_intent: "pi_1".into(),
            amount: 500,
            booking_id: "bkg_1".into(),
            idempotency_key: "refund-bkg_1".into(),
        };
        let request = create_refund_request(&new);
        assert_eq!(request.path, "/refunds");
        let mut fields = form(request.body.as_deref().unwrap());
        fields.sort();
        assert_eq!(
            fields,
            vec![
                ("amount".to_owned(), "500".to_owned()),
                ("metadata[booking_id]".to_owned(), "bkg_1".to_owned()),
                ("payment_intent".to_owned(), "pi_1".to_owned()),
            ]
        );
    }

    #[test]
    fn answers_decode_tolerantly() {
        // What localstripe answers (trimmed): fields the typed structs need are missing, extra ones present.
        let intent: Intent = serde_json::from_str(
            r#"{"id":"pi_1","object":"payment_intent","amount":100,"currency":"eur","status":"requires_payment_method",
                "client_secret":"pi_1_secret_x","metadata":{"booking_id":"bkg_1"},"latest_charge":null,"next_action":null}"#,
        )
        .unwrap();
        assert_eq!(intent.metadata[META_BOOKING_ID], "bkg_1");
        let refund: Refund = serde_json::from_str(
            r#"{"id":"re_1","object":"refund","amount":100,"currency":"eur","status":"succeeded","charge":"ch_1","payment_intent":"pi_1","metadata":{}}"#,
        )
        .unwrap();
        assert!(refund.succeeded());
    }
}
