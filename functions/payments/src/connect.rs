//! Stripe Connect, as Roost uses it for host payouts: an Express account per host, its
//! onboarding link, a transfer per booking and its reversals (docs/payments.md, "Payouts").
//!
//! As in `stripe`: async-stripe's request builders and client, Roost's own minimal response
//! structs; amounts in ISO minor units on Roost's side. [`Connect`] is the port (a fake in unit
//! tests), implemented by [`StripeApi`].

use std::collections::HashMap;

use futures::future::BoxFuture;
use serde::Deserialize;
use shared::currencies;
use shared::money::Money;
use stripe_client_core::{RequestBuilder, StripeRequest};
use stripe_connect::account::{
    CreateAccount, CreateAccountCapabilities, CreateAccountCapabilitiesTransfers, CreateAccountType,
};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::transfer::CreateTransfer;
use stripe_connect::transfer_reversal::CreateIdTransferReversal;

use crate::stripe::{META_BOOKING_ID, StripeApi, StripeFailure, amount_refused, iso_amount, stripe_currency};

/// Metadata key naming the Roost user an account belongs to (read back from `account.updated`).
pub const META_USER_ID: &str = "user_id";

/// A connected account: the fields Roost reads (also `data.object` of `account.updated`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub details_submitted: bool,
    #[serde(default)]
    pub payouts_enabled: bool,
    #[serde(default)]
    pub requirements: Option<Requirements>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Requirements {
    #[serde(default)]
    pub currently_due: Vec<String>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

impl Account {
    pub fn user_id(&self) -> Option<&str> {
        self.metadata.get(META_USER_ID).map(String::as_str)
    }
}

/// An onboarding link: single use, minutes long.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountLink {
    pub url: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A transfer to a connected account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    /// ISO minor units.
    pub amount: i64,
    /// ISO minor units reversed so far.
    pub amount_reversed: i64,
}

#[derive(Debug, Deserialize)]
struct WireTransfer {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    amount_reversed: i64,
}

#[derive(Debug, Deserialize)]
struct WireReversal {
    id: String,
}

/// A transfer of `amount` to `destination` for a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub amount: Money,
    pub destination: String,
    pub booking_id: String,
    pub idempotency_key: String,
}

/// A reversal of `amount` (in the transfer's currency) of a booking's transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReversal {
    pub transfer_id: String,
    pub amount: Money,
    pub booking_id: String,
    pub idempotency_key: String,
}

/// The Connect calls Roost makes.
pub trait Connect: Send + Sync {
    /// An Express account for `user_id` in `country` asking for transfers; `key` is Stripe's
    /// `Idempotency-Key` (one account per user however often it is asked for).
    fn create_account<'a>(
        &'a self,
        user_id: &'a str,
        country: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Account, StripeFailure>>;
    fn onboarding_link<'a>(
        &'a self,
        account_id: &'a str,
        return_url: &'a str,
        refresh_url: &'a str,
    ) -> BoxFuture<'a, Result<AccountLink, StripeFailure>>;
    fn create_transfer<'a>(&'a self, new: &'a NewTransfer) -> BoxFuture<'a, Result<Transfer, StripeFailure>>;
    /// Reverses part of a transfer; answers the reversal's id.
    fn reverse_transfer<'a>(&'a self, new: &'a NewReversal) -> BoxFuture<'a, Result<String, StripeFailure>>;
}

/// A Connect that answers every call with an error: for states whose requests never reach
/// Connect (tests of the other routes).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoConnect;

fn unavailable<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, StripeFailure>> {
    Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("no Stripe Connect here"))) })
}

impl Connect for NoConnect {
    fn create_account<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Account, StripeFailure>> {
        unavailable()
    }
    fn onboarding_link<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<AccountLink, StripeFailure>> {
        unavailable()
    }
    fn create_transfer<'a>(&'a self, _: &'a NewTransfer) -> BoxFuture<'a, Result<Transfer, StripeFailure>> {
        unavailable()
    }
    fn reverse_transfer<'a>(&'a self, _: &'a NewReversal) -> BoxFuture<'a, Result<String, StripeFailure>> {
        unavailable()
    }
}

pub fn create_account_request(user_id: &str, country: &str) -> RequestBuilder {
    let mut transfers = CreateAccountCapabilitiesTransfers::new();
    transfers.requested = Some(true);
    let mut capabilities = CreateAccountCapabilities::new();
    capabilities.transfers = Some(transfers);
    CreateAccount::new()
        .type_(CreateAccountType::Express)
        .country(country)
        .capabilities(capabilities)
        .metadata(HashMap::from([(META_USER_ID.to_owned(), user_id.to_owned())]))
        .build()
}

pub fn transfer_request(new: &NewTransfer) -> Result<RequestBuilder, StripeFailure> {
    let amount = currencies::to_stripe(new.amount).map_err(amount_refused)?;
    Ok(CreateTransfer::new(stripe_currency(new.amount.currency), new.destination.clone())
        .amount(amount)
        .transfer_group(format!("booking_{}", new.booking_id))
        .metadata(HashMap::from([(META_BOOKING_ID.to_owned(), new.booking_id.clone())]))
        .build())
}

pub fn reversal_request(new: &NewReversal) -> Result<RequestBuilder, StripeFailure> {
    let amount = currencies::to_stripe(new.amount).map_err(amount_refused)?;
    Ok(CreateIdTransferReversal::new(new.transfer_id.as_str())
        .amount(amount)
        .metadata(HashMap::from([(META_BOOKING_ID.to_owned(), new.booking_id.clone())]))
        .build())
}

impl Connect for StripeApi {
    fn create_account<'a>(
        &'a self,
        user_id: &'a str,
        country: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Account, StripeFailure>> {
        Box::pin(async move { self.send(create_account_request(user_id, country), Some(key)).await })
    }

    fn onboarding_link<'a>(
        &'a self,
        account_id: &'a str,
        return_url: &'a str,
        refresh_url: &'a str,
    ) -> BoxFuture<'a, Result<AccountLink, StripeFailure>> {
        Box::pin(async move {
            let request = CreateAccountLink::new(account_id, CreateAccountLinkType::AccountOnboarding)
                .return_url(return_url)
                .refresh_url(refresh_url)
                .build();
            self.send(request, None).await
        })
    }

    fn create_transfer<'a>(&'a self, new: &'a NewTransfer) -> BoxFuture<'a, Result<Transfer, StripeFailure>> {
        Box::pin(async move {
            let w: WireTransfer = self.send(transfer_request(new)?, Some(&new.idempotency_key)).await?;
            Ok(Transfer {
                amount: iso_amount(w.amount, &w.currency, "transfer", &w.id)?,
                amount_reversed: iso_amount(w.amount_reversed, &w.currency, "transfer", &w.id)?,
                id: w.id,
            })
        })
    }

    fn reverse_transfer<'a>(&'a self, new: &'a NewReversal) -> BoxFuture<'a, Result<String, StripeFailure>> {
        Box::pin(async move {
            let w: WireReversal = self.send(reversal_request(new)?, Some(&new.idempotency_key)).await?;
            Ok(w.id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::money::Currency;

    fn form(request: &RequestBuilder) -> Vec<(String, String)> {
        let body = request.body.clone().unwrap_or_default();
        serde_urlencoded::from_str(&body).unwrap()
    }

    fn has(request: &RequestBuilder, name: &str, value: &str) -> bool {
        form(request).iter().any(|(k, v)| k == name && v == value)
    }

    #[test]
    fn an_account_is_express_asks_for_transfers_and_names_its_user() {
        let r = create_account_request("u-1", "PT");
        assert!(has(&r, "type", "express"), "{:?}", form(&r));
        assert!(has(&r, "country", "PT"));
        assert!(has(&r, "capabilities[transfers][requested]", "true"));
        assert!(has(&r, "metadata[user_id]", "u-1"));
    }

    #[test]
    fn transfers_and_reversals_carry_stripe_units_and_the_booking() {
        let eur = Currency::parse("EUR").unwrap();
        let t = transfer_request(&NewTransfer {
            amount: Money::new(28_799, eur),
            destination: "acct_1".into(),
            booking_id: "bkg_1".into(),
            idempotency_key: "k".into(),
        })
        .unwrap();
        assert!(has(&t, "amount", "28799") && has(&t, "currency", "eur") && has(&t, "destination", "acct_1"));
        assert!(has(&t, "transfer_group", "booking_bkg_1") && has(&t, "metadata[booking_id]", "bkg_1"));
        // ISK is hundredfold at Stripe.
        let isk = Currency::parse("ISK").unwrap();
        let r = reversal_request(&NewReversal {
            transfer_id: "tr_1".into(),
            amount: Money::new(150, isk),
            booking_id: "bkg_1".into(),
            idempotency_key: "k".into(),
        })
        .unwrap();
        assert!(has(&r, "amount", "15000"), "{:?}", form(&r));
    }

    #[test]
    fn an_account_update_decodes_tolerantly() {
        let a: Account = serde_json::from_value(serde_json::json!({
            "id": "acct_1", "object": "account", "payouts_enabled": true, "details_submitted": true,
            "requirements": {"currently_due": [], "disabled_reason": null, "eventually_due": ["x"]},
            "metadata": {"user_id": "u-1"}, "settings": {"whatever": 1}
        }))
        .unwrap();
        assert_eq!(a.user_id(), Some("u-1"));
        assert!(a.payouts_enabled && a.details_submitted);
    }
}
