//! `POST /v1/me/payout-account` and `GET /v1/me/payout-account`: the calling host's Stripe
//! Connect Express account, where their payouts go (docs/payments.md, "Payouts"); hosts only.
//!
//! POST creates the account once (Stripe `Idempotency-Key` `payout-account-<user id>`, then a
//! conditional Put of `USER#<id>` / `PAYOUT_ACCOUNT`: two first calls at once agree on the one
//! account) and answers an onboarding link (Stripe's hosted onboarding, single use, minutes
//! long) while the account cannot receive payouts yet; called again it answers the same account
//! and a fresh link. Its state comes only from Stripe's `account.updated` events (payment-events),
//! never from the browser's return to `return_url`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::extract::Json;
use shared::payout::{AccountStatus, PayoutAccountItem};
use shared::{ApiError, Caller, FieldError};

use crate::AppState;
use crate::connect::AccountLink;
use crate::handlers::payment::provider_error;
use crate::store;

/// Longest URL accepted for `return_url` and `refresh_url`.
pub const MAX_URL_LENGTH: usize = 2_000;

/// `POST /v1/me/payout-account`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutAccountBody {
    /// The account's country, ISO 3166-1 alpha-2 (where the host's bank is). Used when the
    /// account is created; an existing account keeps its own.
    #[schema(examples("PT"))]
    pub country: String,
    /// Where Stripe sends the host once onboarding is done (an `https` URL of your app; `http`
    /// only for `localhost`).
    #[schema(examples("https://app.example.com/host/payouts/done"))]
    pub return_url: String,
    /// Where Stripe sends the host when the link expired or was used: ask for a new one there.
    #[schema(examples("https://app.example.com/host/payouts/retry"))]
    pub refresh_url: String,
}

/// The caller's payout account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = PayoutAccount)]
pub struct PayoutAccountView {
    /// Stripe's connected account (`acct_...`).
    pub account_id: String,
    /// `onboarding` (not finished), `enabled` (payouts are made to it), `restricted` (Stripe
    /// needs more: see `requirements_due`).
    pub status: AccountStatus,
    pub country: String,
    pub payouts_enabled: bool,
    /// What Stripe still needs (Stripe's `requirements.currently_due`).
    pub requirements_due: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub disabled_reason: Option<String>,
    /// Stripe's hosted onboarding (single use; POST again for a new one). Absent once enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub onboarding_url: Option<String>,
    /// When `onboarding_url` stops working, RFC 3339 UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, nullable = false)]
    pub onboarding_url_expires_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl PayoutAccountView {
    fn of(a: &PayoutAccountItem, link: Option<AccountLink>) -> Self {
        let expires_at =
            link.as_ref().and_then(|l| jiff::Timestamp::from_second(l.expires_at).ok()).map(|t| t.to_string());
        Self {
            account_id: a.account_id.clone(),
            status: a.status(),
            country: a.country.clone(),
            payouts_enabled: a.payouts_enabled,
            requirements_due: a.requirements_due.clone(),
            disabled_reason: a.disabled_reason.clone(),
            onboarding_url: link.map(|l| l.url),
            onboarding_url_expires_at: expires_at,
            created_at: a.created_at.clone(),
            updated_at: a.updated_at.clone(),
        }
    }
}

/// The body's rules: a two-letter country, and URLs a browser can be sent to.
pub fn check_body(body: &PayoutAccountBody) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if body.country.len() != 2 || !body.country.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(FieldError::new("country", "must be an ISO 3166-1 alpha-2 code such as PT"));
    }
    for (field, value) in [("return_url", &body.return_url), ("refresh_url", &body.refresh_url)] {
        if let Err(why) = check_url(value) {
            errors.push(FieldError::new(field, why));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
}

fn check_url(value: &str) -> Result<(), &'static str> {
    if value.len() > MAX_URL_LENGTH {
        return Err("must be at most 2000 characters");
    }
    let url = url::Url::parse(value).map_err(|_| "must be an absolute URL")?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if local => Ok(()),
        _ => Err("must be an https URL (http only for localhost)"),
    }
}

/// POST /v1/me/payout-account (idem).
#[utoipa::path(post, path = "/v1/me/payout-account", tag = "payments", operation_id = "connect_payout_account",
    summary = "Create the caller's payout account (once) and get a Stripe onboarding link",
    request_body = PayoutAccountBody,
    responses(
        (status = 201, description = "The account was created: onboard at `onboarding_url`.", body = PayoutAccountView),
        (status = 200, description = "The caller's account (a new onboarding link unless it is enabled).", body = PayoutAccountView),
        (status = 400, description = "validation_failed, malformed_request"),
        (status = 403, description = "host_required"),
        (status = 502, description = "payment_provider_error"),
        (status = 503, description = "payment_provider_unavailable"),
    ),
    security(("cognito" = [])))]
pub async fn connect_payout_account(
    State(st): State<AppState>,
    caller: Caller,
    Json(body): Json<PayoutAccountBody>,
) -> Result<Response, ApiError> {
    caller.require_host()?;
    check_body(&body)?;
    let now = st.clock.now();
    let (account, created) = match store::payout_account(&st.table, &caller.user_id).await? {
        Some(existing) => (existing, false),
        None => {
            let key = format!("payout-account-{}", caller.user_id);
            let at_stripe =
                st.connect.create_account(&caller.user_id, &body.country, &key).await.map_err(provider_error)?;
            let new = PayoutAccountItem::new(&caller.user_id, &at_stripe.id, &body.country, now);
            match store::create_payout_account(&st.table, &new).await {
                Ok(()) => (new, true),
                // The other first call recorded it (the same account: the same key).
                Err(e) if e.is_condition_failure() => {
                    let kept = store::payout_account(&st.table, &caller.user_id).await?;
                    (kept.ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("payout account vanished")))?, false)
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let link = if account.status() == AccountStatus::Enabled {
        None
    } else {
        let link = st.connect.onboarding_link(&account.account_id, &body.return_url, &body.refresh_url).await;
        Some(link.map_err(provider_error)?)
    };
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(PayoutAccountView::of(&account, link))).into_response())
}

/// GET /v1/me/payout-account.
#[utoipa::path(get, path = "/v1/me/payout-account", tag = "payments", operation_id = "get_payout_account",
    summary = "The caller's payout account and its state",
    responses(
        (status = 200, description = "The caller's payout account.", body = PayoutAccountView),
        (status = 403, description = "host_required"),
        (status = 404, description = "payout_account_not_found"),
    ),
    security(("cognito" = [])))]
pub async fn get_payout_account(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<PayoutAccountView>, ApiError> {
    caller.require_host()?;
    let account = store::payout_account(&st.table, &caller.user_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "payout_account_not_found",
            "You have no payout account yet: POST /v1/me/payout-account creates it.",
        )
    })?;
    Ok(Json(PayoutAccountView::of(&account, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(country: &str, url: &str) -> PayoutAccountBody {
        PayoutAccountBody { country: country.into(), return_url: url.into(), refresh_url: url.into() }
    }

    #[test]
    fn the_body_needs_a_country_and_urls_a_browser_can_follow() {
        assert!(check_body(&body("PT", "https://app.example.com/done")).is_ok());
        assert!(check_body(&body("US", "http://localhost:3000/done")).is_ok());
        for bad in [body("pt", "https://a.example/x"), body("PRT", "https://a.example/x")] {
            assert_eq!(check_body(&bad).unwrap_err().status(), StatusCode::BAD_REQUEST);
        }
        for url in ["http://app.example.com/x", "javascript:alert(1)", "/relative", "ftp://a.example/x", ""] {
            assert!(check_body(&body("PT", url)).is_err(), "{url}");
        }
        assert!(check_body(&body("PT", &format!("https://a.example/{}", "x".repeat(2_000)))).is_err());
    }
}
