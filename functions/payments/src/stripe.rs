//! Stripe, as Roost uses it: four calls on PaymentIntents and Refunds.
//!
//! Requests are built with async-stripe's typed request builders and sent through its client
//! (auth, `Idempotency-Key`, `Stripe-Version`, error mapping). Responses are decoded into Roost's
//! own minimal structs, a tolerant reader: the typed responses do not decode from localstripe
//! (EMULATORS.md), and Stripe adds fields to its objects all the time.
//!
//! [`Gateway`] is the port the handlers use; [`StripeApi`] is the one real implementation.
//! Nothing here logs a client secret, a key or anything about a card.
//!
//! Amounts: the gateway speaks Roost's ISO 4217 minor units on both sides. [`StripeApi`]
//! converts to Stripe's `amount` on the way out and back on the way in
//! (`shared::currencies::{to_stripe, from_stripe}`: ISK and UGX are hundredfold at Stripe,
//! three-decimal currencies multiples of 10), and refuses what it cannot convert exactly.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use shared::config;
use shared::currencies::{self, StripeAmountError};
use shared::money::{Currency, Money};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub id: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`,
    /// `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    /// ISO 4217 minor units (converted from Stripe's amount).
    pub amount: i64,
    /// Lower case, as Stripe sends it.
    pub currency: String,
    pub client_secret: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// A Refund: only the fields Roost reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: Option<String>,
    /// ISO 4217 minor units (converted from Stripe's amount).
    pub amount: i64,
    pub currency: String,
    pub payment_intent: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// An intent as Stripe sends it: `amount` in Stripe's units.
#[derive(Debug, Deserialize)]
struct WireIntent {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

/// A refund as Stripe sends it: `amount` in Stripe's units.
#[derive(Debug, Deserialize)]
struct WireRefund {
    id: String,
    #[serde(default)]
    status: Option<String>,
    amount: i64,
    currency: String,
    #[serde(default)]
    payment_intent: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

/// Stripe's amount in `currency` (as Stripe spells it) as ISO minor units, exactly or not at all.
pub(crate) fn iso_amount(amount: i64, currency: &str, what: &str, id: &str) -> Result<i64, StripeFailure> {
    currencies::from_stripe_code(amount, currency)
        .map(|m| m.amount)
        .map_err(|e| StripeFailure::Transport(anyhow::anyhow!("{what} {id}: amount {amount} {currency}: {e}")))
}

impl TryFrom<WireIntent> for Intent {
    type Error = StripeFailure;
    fn try_from(w: WireIntent) -> Result<Self, StripeFailure> {
        Ok(Self {
            amount: iso_amount(w.amount, &w.currency, "intent", &w.id)?,
            id: w.id,
            status: w.status,
            currency: w.currency,
            client_secret: w.client_secret,
            metadata: w.metadata,
        })
    }
}

impl TryFrom<WireRefund> for Refund {
    type Error = StripeFailure;
    fn try_from(w: WireRefund) -> Result<Self, StripeFailure> {
        Ok(Self {
            amount: iso_amount(w.amount, &w.currency, "refund", &w.id)?,
            id: w.id,
            status: w.status,
            currency: w.currency,
            payment_intent: w.payment_intent,
            metadata: w.metadata,
        })
    }
}

impl Refund {
    pub fn succeeded(&self) -> bool {
        self.status.as_deref() == Some("succeeded")
    }
}

/// A page of a list or search answer.
#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    #[serde(default)]
    has_more: bool,
}

/// Pages of `GET /v1/payment_intents` read when search is not available: 1,000 intents.
pub const MAX_LIST_PAGES: usize = 10;

/// What a new intent is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIntent {
    /// In ISO minor units; converted to Stripe's amount when sent.
    pub amount: Money,
    pub booking_id: String,
    pub guest_id: String,
    /// Stripe's `Idempotency-Key`.
    pub idempotency_key: String,
    /// A request to book: the card is authorised now and charged when the host accepts
    /// (`capture_method=manual`; Stripe keeps the authorisation 7 days, a request waits 24 hours).
    pub capture_manually: bool,
}

/// A refund of (part of) an intent's charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub payment_intent: String,
    /// ISO minor units of `currency` (the intent's); converted to Stripe's amount when sent.
    pub amount: i64,
    pub currency: Currency,
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
    /// Captures an authorised intent in full (an accepted request), with `key` as Stripe's
    /// `Idempotency-Key`.
    fn capture_intent<'a>(&'a self, id: &'a str, key: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        let _ = (id, key);
        Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("this gateway cannot capture"))) })
    }
    fn create_refund<'a>(&'a self, new: &'a NewRefund) -> BoxFuture<'a, Result<Refund, StripeFailure>>;
    /// The refunds of an intent's charge, newest first.
    fn refunds_of<'a>(&'a self, payment_intent: &'a str) -> BoxFuture<'a, Result<Vec<Refund>, StripeFailure>>;
    /// The intents whose metadata names `booking_id` (an intent a call created and could not
    /// record on the booking is found here and adopted). A gateway that cannot look intents up
    /// says so with an error: never "none", which would let a second intent be created.
    fn intents_of_booking<'a>(&'a self, booking_id: &'a str) -> BoxFuture<'a, Result<Vec<Intent>, StripeFailure>> {
        let _ = booking_id;
        Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("this gateway cannot look intents up"))) })
    }
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

    /// The client both payments Lambdas build once at start: the secret key is the SSM
    /// SecureString the template names (`STRIPE_SECRET_KEY_PARAMETER`); `STRIPE_API_BASE` is set
    /// only by the local runtime (localstripe), never by the template.
    pub async fn from_config(ssm: &aws_sdk_ssm::Client) -> anyhow::Result<Self> {
        let secret_key = config::secure_parameter(ssm, &config::required("STRIPE_SECRET_KEY_PARAMETER")?).await?;
        let api_base = config::optional("STRIPE_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        Ok(Self::new(&secret_key, &api_base)?)
    }

    /// Sends `request` (with `key` as Stripe's `Idempotency-Key`) and decodes the answer as `T`.
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        key: Option<&str>,
    ) -> Result<T, StripeFailure> {
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
///
/// The amount is converted to Stripe's units; one that cannot be converted exactly is refused
/// before anything is sent.
pub fn create_intent_request(new: &NewIntent) -> Result<RequestBuilder, StripeAmountError> {
    let amount = currencies::to_stripe(new.amount)?;
    let currency = stripe_currency(new.amount.currency);
    let metadata = HashMap::from([
        (META_BOOKING_ID.to_owned(), new.booking_id.clone()),
        (META_GUEST_ID.to_owned(), new.guest_id.clone()),
    ]);
    let mut create = stripe_core::payment_intent::CreatePaymentIntent::new(amount, currency).metadata(metadata);
    if new.capture_manually {
        create = create.capture_method(stripe_core::PaymentIntentCaptureMethod::Manual);
    }
    let mut request = create.build();
    let card = "payment_method_types[0]=card";
    request.body = Some(match request.body.take() {
        Some(body) if !body.is_empty() => format!("{body}&{card}"),
        _ => card.to_owned(),
    });
    Ok(request)
}

pub(crate) fn stripe_currency(currency: Currency) -> stripe_types::Currency {
    currency.code().to_ascii_lowercase().parse().unwrap_or_else(|never: std::convert::Infallible| match never {})
}

/// The refund request: the intent, the amount (in Stripe's units), and the booking in metadata.
pub fn create_refund_request(new: &NewRefund) -> Result<RequestBuilder, StripeAmountError> {
    let amount = currencies::to_stripe(Money::new(new.amount, new.currency))?;
    let metadata = HashMap::from([(META_BOOKING_ID.to_owned(), new.booking_id.clone())]);
    Ok(stripe_core::refund::CreateRefund::new()
        .payment_intent(new.payment_intent.clone())
        .amount(amount)
        .metadata(metadata)
        .build())
}

/// Stripe's search query for the intents of a booking (`booking_id` is a Roost id: letters,
/// digits and `_`, nothing to escape; anything else is refused).
pub fn booking_search_query(booking_id: &str) -> Option<String> {
    booking_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        .then(|| format!("metadata['{META_BOOKING_ID}']:'{booking_id}'"))
}

pub(crate) fn amount_refused(e: StripeAmountError) -> StripeFailure {
    StripeFailure::Transport(anyhow::anyhow!("amount not sent to Stripe: {e}"))
}

impl StripeApi {
    async fn intent(&self, request: RequestBuilder, key: Option<&str>) -> Result<Intent, StripeFailure> {
        Intent::try_from(self.send::<WireIntent>(request, key).await?)
    }

    /// `GET /v1/payment_intents/search` (Stripe): eventually consistent (an intent created
    /// seconds ago may be missing: the `Idempotency-Key` covers that window). `None` when the
    /// endpoint is not there (localstripe answers 404; Stripe has no search in some regions).
    async fn search_intents(&self, booking_id: &str) -> Result<Option<Vec<WireIntent>>, StripeFailure> {
        let query = booking_search_query(booking_id)
            .ok_or_else(|| StripeFailure::Transport(anyhow::anyhow!("booking id not searchable")))?;
        let request = stripe_core::payment_intent::SearchPaymentIntent::new(query).limit(100).build();
        match self.send::<Page<WireIntent>>(request, None).await {
            Ok(page) => Ok(Some(page.data)),
            Err(StripeFailure::Api { status: 400 | 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/payment_intents`, page by page (newest first at Stripe, oldest first at
    /// localstripe), at most [`MAX_LIST_PAGES`]: the fallback where search is missing.
    async fn list_intents(&self, booking_id: &str) -> Result<Vec<WireIntent>, StripeFailure> {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut list = stripe_core::payment_intent::ListPaymentIntent::new().limit(100);
            if let Some(a) = &after {
                list = list.starting_after(a.clone());
            }
            let page: Page<WireIntent> = self.send(list.build(), None).await?;
            after = page.data.last().map(|i| i.id.clone());
            let more = page.has_more && after.is_some();
            found.extend(
                page.data
                    .into_iter()
                    .filter(|i| i.metadata.get(META_BOOKING_ID).map(String::as_str) == Some(booking_id)),
            );
            if !more {
                return Ok(found);
            }
        }
        tracing::warn!(booking_id, pages = MAX_LIST_PAGES, "intent lookup stopped after the page limit");
        Ok(found)
    }
}

impl Gateway for StripeApi {
    fn create_intent<'a>(&'a self, new: &'a NewIntent) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async move {
            let request = create_intent_request(new).map_err(amount_refused)?;
            self.intent(request, Some(&new.idempotency_key)).await
        })
    }

    fn retrieve_intent<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(
            async move { self.intent(stripe_core::payment_intent::RetrievePaymentIntent::new(id).build(), None).await },
        )
    }

    fn cancel_intent<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(
            async move { self.intent(stripe_core::payment_intent::CancelPaymentIntent::new(id).build(), None).await },
        )
    }

    fn capture_intent<'a>(&'a self, id: &'a str, key: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async move {
            self.intent(stripe_core::payment_intent::CapturePaymentIntent::new(id).build(), Some(key)).await
        })
    }

    fn create_refund<'a>(&'a self, new: &'a NewRefund) -> BoxFuture<'a, Result<Refund, StripeFailure>> {
        Box::pin(async move {
            let request = create_refund_request(new).map_err(amount_refused)?;
            Refund::try_from(self.send::<WireRefund>(request, Some(&new.idempotency_key)).await?)
        })
    }

    fn refunds_of<'a>(&'a self, payment_intent: &'a str) -> BoxFuture<'a, Result<Vec<Refund>, StripeFailure>> {
        Box::pin(async move {
            let list: Page<WireRefund> = self
                .send(stripe_core::refund::ListRefund::new().payment_intent(payment_intent).limit(100).build(), None)
                .await?;
            list.data.into_iter().map(Refund::try_from).collect()
        })
    }

    /// Search where Stripe has it, else the list (see `search_intents`, `list_intents`).
    fn intents_of_booking<'a>(&'a self, booking_id: &'a str) -> BoxFuture<'a, Result<Vec<Intent>, StripeFailure>> {
        Box::pin(async move {
            let found = match self.search_intents(booking_id).await? {
                Some(found) => found,
                None => self.list_intents(booking_id).await?,
            };
            found
                .into_iter()
                .filter(|i| i.metadata.get(META_BOOKING_ID).map(String::as_str) == Some(booking_id))
                .map(Intent::try_from)
                .collect()
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
            amount: Money::new(43_979, Currency::EUR),
            booking_id: "bkg_1".into(),
            guest_id: "g-1".into(),
            idempotency_key: "payment-intent-bkg_1".into(),
            capture_manually: false,
        };
        let request = create_intent_request(&new).unwrap();
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
        // A request to book: authorised now, captured when its host accepts.
        let request = create_intent_request(&NewIntent { capture_manually: true, ..new }).unwrap();
        let fields = form(request.body.as_deref().unwrap());
        assert!(fields.contains(&("capture_method".to_owned(), "manual".to_owned())), "{fields:?}");
    }

    #[test]
    fn the_refund_request_names_the_intent_and_the_amount() {
        let new = NewRefund {
            payment_intent: "pi_1".into(),
            amount: 500,
            currency: Currency::EUR,
            booking_id: "bkg_1".into(),
            idempotency_key: "refund-bkg_1".into(),
        };
        let request = create_refund_request(&new).unwrap();
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

    fn field(request: &RequestBuilder, name: &str) -> String {
        form(request.body.as_deref().unwrap()).into_iter().find(|(k, _)| k == name).unwrap().1
    }

    #[test]
    fn amounts_cross_to_stripe_in_stripe_units() {
        let isk = Currency::parse("ISK").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        let intent = |amount: Money| NewIntent {
            amount,
            booking_id: "bkg_1".into(),
            guest_id: "g-1".into(),
            idempotency_key: "k".into(),
            capture_manually: false,
        };
        // 5 ISK is amount=500 at Stripe; 12.340 KWD is 12340; 500 JPY is 500.
        let r = create_intent_request(&intent(Money::new(5, isk))).unwrap();
        assert_eq!((field(&r, "amount"), field(&r, "currency")), ("500".into(), "isk".into()));
        let r = create_intent_request(&intent(Money::new(12_340, kwd))).unwrap();
        assert_eq!((field(&r, "amount"), field(&r, "currency")), ("12340".into(), "kwd".into()));
        let r = create_intent_request(&intent(Money::new(500, Currency::JPY))).unwrap();
        assert_eq!(field(&r, "amount"), "500");
        // What Stripe would refuse or misread is never sent.
        assert!(create_intent_request(&intent(Money::new(12_345, kwd))).is_err());
        assert!(create_intent_request(&intent(Money::new(5_000, Currency::parse("XAF").unwrap()))).is_err());
        let refund = |amount: i64, currency: Currency| NewRefund {
            payment_intent: "pi_1".into(),
            amount,
            currency,
            booking_id: "bkg_1".into(),
            idempotency_key: "k".into(),
        };
        assert_eq!(field(&create_refund_request(&refund(3, isk)).unwrap(), "amount"), "300");
        assert!(create_refund_request(&refund(1_235, kwd)).is_err());
    }

    #[test]
    fn amounts_come_back_in_iso_units_or_not_at_all() {
        let wire = |amount: i64, currency: &str| WireIntent {
            id: "pi_1".into(),
            status: "requires_payment_method".into(),
            amount,
            currency: currency.into(),
            client_secret: None,
            metadata: HashMap::new(),
        };
        assert_eq!(Intent::try_from(wire(500, "isk")).unwrap().amount, 5);
        assert_eq!(Intent::try_from(wire(12_340, "kwd")).unwrap().amount, 12_340);
        assert_eq!(Intent::try_from(wire(43_979, "eur")).unwrap().amount, 43_979);
        // A fractional ISK amount (made before Stripe's change) is not rounded.
        assert!(matches!(Intent::try_from(wire(4_010, "isk")), Err(StripeFailure::Transport(_))));
        let refund = WireRefund {
            id: "re_1".into(),
            status: None,
            amount: 400_000,
            currency: "ugx".into(),
            payment_intent: None,
            metadata: HashMap::new(),
        };
        assert_eq!(Refund::try_from(refund).unwrap().amount, 4_000);
        assert_eq!(booking_search_query("bkg_01abc").unwrap(), "metadata['booking_id']:'bkg_01abc'");
        assert_eq!(booking_search_query("bkg_1' OR status:'x"), None);
    }

    #[test]
    fn answers_decode_tolerantly() {
        // What localstripe answers (trimmed): fields the typed structs need are missing, extra ones present.
        let intent: WireIntent = serde_json::from_str(
            r#"{"id":"pi_1","object":"payment_intent","amount":100,"currency":"eur","status":"requires_payment_method",
                "client_secret":"pi_1_secret_x","metadata":{"booking_id":"bkg_1"},"latest_charge":null,"next_action":null}"#,
        )
        .unwrap();
        assert_eq!(intent.metadata[META_BOOKING_ID], "bkg_1");
        let refund: WireRefund = serde_json::from_str(
            r#"{"id":"re_1","object":"refund","amount":100,"currency":"eur","status":"succeeded","charge":"ch_1","payment_intent":"pi_1","metadata":{}}"#,
        )
        .unwrap();
        assert!(Refund::try_from(refund).unwrap().succeeded());
        let page: Page<WireIntent> = serde_json::from_str(
            r#"{"object":"search_result","data":[{"id":"pi_1","amount":100,"currency":"eur","status":"canceled"}],"has_more":false,"next_page":null}"#,
        )
        .unwrap();
        assert_eq!((page.data.len(), page.has_more), (1, false));
    }
}
