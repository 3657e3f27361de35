//! The currencies Roost sells in, and how each one is charged at Stripe.
//!
//! Money is ISO 4217 minor units everywhere in Roost (`shared::money`). Stripe's `amount` is
//! not always that (docs/currencies.md has the sources):
//! - zero-decimal currencies (JPY, KRW, VND): Stripe's amount is the whole unit, as in ISO;
//! - ISK and UGX: zero-decimal in ISO, but Stripe keeps them two-decimal for backwards
//!   compatibility: 5 ISK is `amount=500`, and the last two digits must be `00`;
//! - HUF and TWD: two-decimal charges as in ISO (they are zero-decimal only for payouts, which
//!   Roost does not make);
//! - three-decimal currencies (BHD, JOD, KWD, OMR, TND): ISO minor units, but the last digit
//!   must be 0 (amounts are multiples of 10);
//! - every currency has a minimum charge and a maximum (eight digits of Stripe's amount).
//!
//! [`ACCEPTED`] is the one table: a listing in any other currency is refused
//! (`unsupported_currency`). [`to_stripe`] and [`from_stripe`] are the one conversion, used on
//! every path money crosses to and from Stripe; both refuse what they cannot convert exactly
//! (never a rounding that loses or invents money). [`check_charge`] is the rule a quote and a
//! booking pass before any night is held.

use std::fmt;

use axum::http::StatusCode;

use MinimumSource::{Roost, Stripe};
use StripeUnits::{Hundredfold, Iso};

use crate::error::ApiError;
use crate::money::{Currency, Money};

/// How Roost's ISO minor units become Stripe's `amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeUnits {
    /// Stripe's amount is the ISO minor-unit amount.
    Iso,
    /// Stripe's amount is the ISO amount times 100 (ISK, UGX: ISO zero-decimal, Stripe
    /// two-decimal with `00` decimals).
    Hundredfold,
}

/// Where a minimum charge comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinimumSource {
    /// Stripe's table of minimum charge amounts.
    Stripe,
    /// Stripe documents none for this currency ("USD 0.50 or equivalent"): Roost's own, about
    /// USD 1, twice Stripe's floor so that a move of the exchange rate does not cross it.
    Roost,
}

/// One currency Roost accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedCurrency {
    pub code: &'static str,
    pub units: StripeUnits,
    /// Stripe's amount must be a multiple of this (10 for three-decimal currencies, 100 for
    /// ISK and UGX, else 1).
    pub stripe_multiple: i64,
    /// The smallest charge, in ISO minor units.
    pub min: i64,
    pub min_source: MinimumSource,
}

/// Stripe's amount has at most eight digits (99999999, i.e. 999,999.99 USD).
pub const STRIPE_MAX_AMOUNT: i64 = 99_999_999;

const fn row(
    code: &'static str,
    units: StripeUnits,
    stripe_multiple: i64,
    min: i64,
    src: MinimumSource,
) -> AcceptedCurrency {
    AcceptedCurrency { code, units, stripe_multiple, min, min_source: src }
}

/// The currencies Roost accepts, sorted by code (a unit test keeps it sorted and checks every
/// code is an active ISO 4217 currency). Minimums are ISO minor units.
#[rustfmt::skip]
pub const ACCEPTED: &[AcceptedCurrency] = &[
    row("AED", Iso, 1, 200, Stripe),          // 2.00 AED
    row("AUD", Iso, 1, 50, Stripe),           // 0.50 AUD
    row("BHD", Iso, 10, 400, Roost),          // 0.400 BHD, three-decimal
    row("BRL", Iso, 1, 50, Stripe),           // 0.50 BRL
    row("CAD", Iso, 1, 50, Stripe),           // 0.50 CAD
    row("CHF", Iso, 1, 50, Stripe),           // 0.50 CHF
    row("CZK", Iso, 1, 1_500, Stripe),        // 15.00 CZK
    row("DKK", Iso, 1, 250, Stripe),          // 2.50 DKK
    row("EUR", Iso, 1, 50, Stripe),           // 0.50 EUR
    row("GBP", Iso, 1, 30, Stripe),           // 0.30 GBP
    row("HKD", Iso, 1, 400, Stripe),          // 4.00 HKD
    row("HUF", Iso, 1, 17_500, Stripe),       // 175.00 HUF (zero-decimal for payouts only)
    row("INR", Iso, 1, 50, Stripe),           // 0.50 INR
    row("ISK", Hundredfold, 100, 150, Roost), // 150 ISK = amount 15000
    row("JOD", Iso, 10, 700, Roost),          // 0.700 JOD, three-decimal
    row("JPY", Iso, 1, 50, Stripe),           // 50 JPY, zero-decimal
    row("KRW", Iso, 1, 1_500, Roost),         // 1500 KRW, zero-decimal
    row("KWD", Iso, 10, 300, Roost),          // 0.300 KWD, three-decimal
    row("MXN", Iso, 1, 1_000, Stripe),        // 10.00 MXN
    row("MYR", Iso, 1, 200, Stripe),          // 2.00 MYR
    row("NOK", Iso, 1, 300, Stripe),          // 3.00 NOK
    row("NZD", Iso, 1, 50, Stripe),           // 0.50 NZD
    row("OMR", Iso, 10, 400, Roost),          // 0.400 OMR, three-decimal
    row("PLN", Iso, 1, 200, Stripe),          // 2.00 PLN
    row("RON", Iso, 1, 200, Stripe),          // 2.00 RON
    row("SEK", Iso, 1, 300, Stripe),          // 3.00 SEK
    row("SGD", Iso, 1, 50, Stripe),           // 0.50 SGD
    row("THB", Iso, 1, 1_000, Stripe),        // 10.00 THB
    row("TND", Iso, 10, 3_000, Roost),        // 3.000 TND, three-decimal
    row("TWD", Iso, 1, 3_000, Roost),         // 30.00 TWD (zero-decimal for payouts only)
    row("UGX", Hundredfold, 100, 4_000, Roost), // 4000 UGX = amount 400000
    row("USD", Iso, 1, 50, Stripe),           // 0.50 USD
    row("VND", Iso, 1, 26_000, Roost),        // 26000 VND, zero-decimal
];

/// The row of `currency`, if Roost accepts it.
pub fn accepted(currency: Currency) -> Option<&'static AcceptedCurrency> {
    ACCEPTED.binary_search_by(|r| r.code.cmp(currency.code())).ok().and_then(|i| ACCEPTED.get(i))
}

/// Why an amount cannot cross to or from Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StripeAmountError {
    #[error("Roost does not charge in {0}")]
    Unsupported(Currency),
    #[error("{currency} amounts at Stripe must be multiples of {multiple}; {amount} is not")]
    NotAMultiple { currency: Currency, amount: i64, multiple: i64 },
    #[error("amount must not be negative")]
    Negative,
    #[error("amount out of range")]
    Overflow,
    #[error("Stripe named a currency that is not an ISO 4217 code")]
    UnknownCurrency,
}

impl AcceptedCurrency {
    /// The smallest step a price in this currency can take, in ISO minor units, so that every
    /// sum of prices is an amount Stripe can charge: 10 for three-decimal currencies, else 1.
    pub fn iso_step(&self) -> i64 {
        match self.units {
            StripeUnits::Iso => self.stripe_multiple,
            // One ISO unit is 100 Stripe units: any whole ISO amount is a multiple of 100.
            StripeUnits::Hundredfold => 1,
        }
    }

    /// The step a listing's nightly price takes, in ISO minor units: 100 x [`Self::iso_step`]
    /// where that is more than 1 (whole units of a three-decimal currency), so that any whole
    /// percent of any number of nights (the service fee) is again a multiple of `iso_step`.
    pub fn nightly_step(&self) -> i64 {
        match self.iso_step() {
            1 => 1,
            step => step * 100,
        }
    }

    /// The largest charge, in ISO minor units: Stripe's eight digits, down to a multiple.
    pub fn max(&self) -> i64 {
        let stripe = STRIPE_MAX_AMOUNT - STRIPE_MAX_AMOUNT % self.stripe_multiple;
        match self.units {
            StripeUnits::Iso => stripe,
            StripeUnits::Hundredfold => stripe / 100,
        }
    }
}

/// Roost's `money` as Stripe's `amount` (for `currency`, lower case, alongside).
pub fn to_stripe(money: Money) -> Result<i64, StripeAmountError> {
    let row = accepted(money.currency).ok_or(StripeAmountError::Unsupported(money.currency))?;
    if money.amount < 0 {
        return Err(StripeAmountError::Negative);
    }
    let amount = match row.units {
        StripeUnits::Iso => money.amount,
        StripeUnits::Hundredfold => money.amount.checked_mul(100).ok_or(StripeAmountError::Overflow)?,
    };
    if amount % row.stripe_multiple != 0 {
        return Err(StripeAmountError::NotAMultiple {
            currency: money.currency,
            amount: money.amount,
            multiple: row.iso_step(),
        });
    }
    Ok(amount)
}

/// Stripe's `amount` in `currency` as Roost's money; an amount that is not a whole ISO amount
/// (a fractional ISK charge made before Stripe's change) is refused, never rounded.
pub fn from_stripe(amount: i64, currency: Currency) -> Result<Money, StripeAmountError> {
    let row = accepted(currency).ok_or(StripeAmountError::Unsupported(currency))?;
    if amount < 0 {
        return Err(StripeAmountError::Negative);
    }
    let iso = match row.units {
        StripeUnits::Iso => amount,
        StripeUnits::Hundredfold if amount % 100 == 0 => amount / 100,
        StripeUnits::Hundredfold => {
            return Err(StripeAmountError::NotAMultiple { currency, amount, multiple: 100 });
        }
    };
    Ok(Money::new(iso, currency))
}

/// Parses Stripe's lower-case currency code and converts its amount.
pub fn from_stripe_code(amount: i64, currency: &str) -> Result<Money, StripeAmountError> {
    let currency = Currency::parse(&currency.to_ascii_uppercase()).map_err(|_| StripeAmountError::UnknownCurrency)?;
    from_stripe(amount, currency)
}

/// Why a total cannot be charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    #[error("Roost does not charge in {0}")]
    Unsupported(Currency),
    #[error("the total {total} is under the smallest charge in {}, {min}", min.currency)]
    BelowMinimum { total: Money, min: Money },
    #[error("the total {total} is over the largest charge in {}, {max}", max.currency)]
    AboveMaximum { total: Money, max: Money },
    #[error("the total {total} is not an amount Stripe can charge: {0}", .source)]
    NotChargeable { total: Money, source: StripeAmountError },
}

/// Whether `total` can be charged in one payment: an accepted currency, at least the minimum,
/// at most the maximum, and exactly convertible.
pub fn check_charge(total: Money) -> Result<(), ChargeError> {
    let row = accepted(total.currency).ok_or(ChargeError::Unsupported(total.currency))?;
    if total.amount < row.min {
        return Err(ChargeError::BelowMinimum { total, min: Money::new(row.min, total.currency) });
    }
    if total.amount > row.max() {
        return Err(ChargeError::AboveMaximum { total, max: Money::new(row.max(), total.currency) });
    }
    to_stripe(total).map_err(|source| ChargeError::NotChargeable { total, source })?;
    Ok(())
}

/// 422 `unsupported_currency`.
pub fn unsupported_currency(currency: Currency) -> ApiError {
    ApiError::unprocessable(
        "unsupported_currency",
        format!("Roost does not take payments in {currency}; see the list of accepted currencies."),
    )
}

/// The one mapping of a refused charge to its problem: 422 with a stable code per rule.
impl From<ChargeError> for ApiError {
    fn from(e: ChargeError) -> Self {
        match e {
            ChargeError::Unsupported(c) => unsupported_currency(c),
            ChargeError::BelowMinimum { min, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "total_below_minimum_charge",
                format!("The total is under the smallest payment accepted in {}, {min}.", min.currency),
            )
            .with_field("price.total", format!("must be at least {min}")),
            ChargeError::AboveMaximum { max, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "total_above_maximum_charge",
                format!("The total is over the largest single payment accepted in {}, {max}.", max.currency),
            )
            .with_field("price.total", format!("must be at most {max}")),
            ChargeError::NotChargeable { source, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "total_not_chargeable",
                format!("The total cannot be charged exactly: {source}."),
            ),
        }
    }
}

impl fmt::Display for AcceptedCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn the_table_is_sorted_and_every_code_is_iso() {
        assert!(ACCEPTED.windows(2).all(|w| w[0].code < w[1].code));
        for r in ACCEPTED {
            let iso = c(r.code);
            assert!(r.min > 0 && r.min < r.max(), "{}", r.code);
            assert_eq!(r.min % r.iso_step(), 0, "{}: the minimum must be chargeable", r.code);
            assert!(to_stripe(Money::new(r.min, iso)).is_ok(), "{}", r.code);
            assert!(to_stripe(Money::new(r.max(), iso)).unwrap() <= STRIPE_MAX_AMOUNT, "{}", r.code);
            // Hundredfold only for ISO zero-decimal currencies; three-decimal rows are ISO 3.
            match (r.units, iso.exponent()) {
                (StripeUnits::Hundredfold, 0) => assert_eq!(r.stripe_multiple, 100),
                (StripeUnits::Iso, 3) => assert_eq!(r.stripe_multiple, 10),
                (StripeUnits::Iso, 0 | 2) => assert_eq!(r.stripe_multiple, 1),
                other => panic!("{}: unexpected {other:?}", r.code),
            }
        }
        // The demo listings' currencies.
        for code in ["EUR", "BRL", "JPY", "USD"] {
            assert!(accepted(c(code)).is_some(), "{code}");
        }
        // Active ISO currencies Roost does not take.
        for code in ["XAF", "IRR", "ARS", "CLF", "IDR", "BIF"] {
            assert!(accepted(c(code)).is_none(), "{code}");
        }
    }

    /// Every row: the expected Stripe amount for one ISO amount, the round trip, and the
    /// amounts each side refuses.
    #[test]
    fn every_row_converts_exactly_both_ways() {
        #[rustfmt::skip]
        let cases: &[(&str, i64, i64)] = &[
            // (currency, ISO minor units, Stripe amount)
            ("AED", 12_345, 12_345), ("AUD", 12_345, 12_345), ("BHD", 12_340, 12_340),
            ("BRL", 12_345, 12_345), ("CAD", 12_345, 12_345), ("CHF", 12_345, 12_345),
            ("CZK", 12_345, 12_345), ("DKK", 12_345, 12_345), ("EUR", 12_345, 12_345),
            ("GBP", 12_345, 12_345), ("HKD", 12_345, 12_345), ("HUF", 12_345, 12_345),
            ("INR", 12_345, 12_345), ("ISK", 12_345, 1_234_500), ("JOD", 12_340, 12_340),
            ("JPY", 12_345, 12_345), ("KRW", 12_345, 12_345), ("KWD", 12_340, 12_340),
            ("MXN", 12_345, 12_345), ("MYR", 12_345, 12_345), ("NOK", 12_345, 12_345),
            ("NZD", 12_345, 12_345), ("OMR", 12_340, 12_340), ("PLN", 12_345, 12_345),
            ("RON", 12_345, 12_345), ("SEK", 12_345, 12_345), ("SGD", 12_345, 12_345),
            ("THB", 12_345, 12_345), ("TND", 12_340, 12_340), ("TWD", 12_345, 12_345),
            ("UGX", 12_345, 1_234_500), ("USD", 12_345, 12_345), ("VND", 12_345, 12_345),
        ];
        assert_eq!(cases.len(), ACCEPTED.len(), "one case per accepted currency");
        for &(code, iso, stripe) in cases {
            let money = Money::new(iso, c(code));
            assert_eq!(to_stripe(money), Ok(stripe), "{code} to Stripe");
            assert_eq!(from_stripe(stripe, c(code)), Ok(money), "{code} from Stripe");
            assert_eq!(from_stripe_code(stripe, &code.to_ascii_lowercase()), Ok(money), "{code} lower case");
            assert_eq!(to_stripe(Money::new(0, c(code))), Ok(0), "{code} zero");
            assert_eq!(to_stripe(Money::new(-1, c(code))), Err(StripeAmountError::Negative), "{code}");
            assert_eq!(from_stripe(-1, c(code)), Err(StripeAmountError::Negative), "{code}");
        }
    }

    #[test]
    fn three_decimal_amounts_must_end_in_zero() {
        for code in ["BHD", "JOD", "KWD", "OMR", "TND"] {
            let cur = c(code);
            assert_eq!(cur.exponent(), 3);
            for odd in [1, 5, 12_345, 99_999_999] {
                assert_eq!(
                    to_stripe(Money::new(odd, cur)),
                    Err(StripeAmountError::NotAMultiple { currency: cur, amount: odd, multiple: 10 }),
                    "{code} {odd}"
                );
            }
            assert_eq!(to_stripe(Money::new(5_120, cur)), Ok(5_120));
            assert_eq!(accepted(cur).unwrap().iso_step(), 10);
            assert_eq!(accepted(cur).unwrap().max(), 99_999_990);
        }
    }

    #[test]
    fn isk_and_ugx_are_hundredfold_and_refuse_fractions_from_stripe() {
        for code in ["ISK", "UGX"] {
            let cur = c(code);
            assert_eq!(cur.exponent(), 0);
            assert_eq!(to_stripe(Money::new(5, cur)), Ok(500));
            assert_eq!(from_stripe(500, cur), Ok(Money::new(5, cur)));
            // A fractional amount (40.10 ISK) is not rounded either way.
            assert_eq!(
                from_stripe(4_010, cur),
                Err(StripeAmountError::NotAMultiple { currency: cur, amount: 4_010, multiple: 100 })
            );
            assert_eq!(to_stripe(Money::new(i64::MAX / 10, cur)), Err(StripeAmountError::Overflow));
            assert_eq!(accepted(cur).unwrap().max(), 999_999);
            assert_eq!(accepted(cur).unwrap().iso_step(), 1);
        }
    }

    #[test]
    fn unsupported_currencies_never_cross() {
        let xaf = c("XAF");
        assert_eq!(to_stripe(Money::new(100, xaf)), Err(StripeAmountError::Unsupported(xaf)));
        assert_eq!(from_stripe(100, xaf), Err(StripeAmountError::Unsupported(xaf)));
        assert_eq!(from_stripe_code(100, "zzz"), Err(StripeAmountError::UnknownCurrency));
        assert_eq!(check_charge(Money::new(100_000, xaf)), Err(ChargeError::Unsupported(xaf)));
    }

    #[test]
    fn charge_limits_per_currency() {
        let eur = Currency::EUR;
        assert_eq!(check_charge(Money::new(50, eur)), Ok(()));
        assert_eq!(
            check_charge(Money::new(49, eur)),
            Err(ChargeError::BelowMinimum { total: Money::new(49, eur), min: Money::new(50, eur) })
        );
        assert_eq!(check_charge(Money::new(99_999_999, eur)), Ok(()));
        assert_eq!(
            check_charge(Money::new(100_000_000, eur)),
            Err(ChargeError::AboveMaximum { total: Money::new(100_000_000, eur), max: Money::new(99_999_999, eur) })
        );
        assert!(matches!(check_charge(Money::new(29, Currency::GBP)), Err(ChargeError::BelowMinimum { .. })));
        assert_eq!(check_charge(Money::new(30, Currency::GBP)), Ok(()));
        assert!(matches!(check_charge(Money::new(49, Currency::JPY)), Err(ChargeError::BelowMinimum { .. })));
        assert_eq!(check_charge(Money::new(50, Currency::JPY)), Ok(()));
        let isk = c("ISK");
        assert_eq!(check_charge(Money::new(999_999, isk)), Ok(()));
        assert!(matches!(check_charge(Money::new(1_000_000, isk)), Err(ChargeError::AboveMaximum { .. })));
        let kwd = c("KWD");
        assert!(matches!(
            check_charge(Money::new(11_206, kwd)),
            Err(ChargeError::NotChargeable { source: StripeAmountError::NotAMultiple { .. }, .. })
        ));
        assert_eq!(check_charge(Money::new(11_210, kwd)), Ok(()));
        for r in ACCEPTED {
            let cur = c(r.code);
            assert_eq!(check_charge(Money::new(r.min, cur)), Ok(()), "{}", r.code);
            assert!(check_charge(Money::new(r.min - 1, cur)).is_err(), "{}", r.code);
            assert_eq!(check_charge(Money::new(r.max(), cur)), Ok(()), "{}", r.code);
            assert!(check_charge(Money::new(r.max() + 1, cur)).is_err(), "{}", r.code);
        }
    }

    /// Property: with a nightly price in `nightly_step` and a cleaning fee in `iso_step`, every
    /// stay's total (`shared::listing::stay_price`, fee included) converts to Stripe exactly.
    #[test]
    fn listing_steps_make_every_total_chargeable() {
        use rand::Rng;
        let mut rng = rand::rng();
        for r in ACCEPTED {
            let cur = c(r.code);
            for _ in 0..300 {
                let nightly = rng.random_range(1..=100_000) * r.nightly_step();
                let cleaning = rng.random_range(0..=100_000) * r.iso_step();
                let nights = rng.random_range(1..=90);
                let p = crate::listing::stay_price(Money::new(nightly, cur), nights, Some(Money::new(cleaning, cur)))
                    .unwrap();
                assert!(to_stripe(p.total).is_ok(), "{} {nightly} x {nights} + {cleaning}: {:?}", r.code, p);
            }
        }
        assert_eq!(accepted(c("KWD")).unwrap().nightly_step(), 1_000);
        assert_eq!(accepted(c("ISK")).unwrap().nightly_step(), 1);
        assert_eq!(accepted(Currency::EUR).unwrap().nightly_step(), 1);
    }

    #[test]
    fn refusals_are_distinct_422s() {
        let eur = Currency::EUR;
        let codes: Vec<(u16, &str)> = [
            check_charge(Money::new(1, eur)),
            check_charge(Money::new(i64::MAX, eur)),
            check_charge(Money::new(11_205, c("KWD"))),
            check_charge(Money::new(100, c("XAF"))),
        ]
        .into_iter()
        .map(|r| {
            let e = ApiError::from(r.unwrap_err());
            (e.status().as_u16(), e.code())
        })
        .collect();
        assert_eq!(
            codes,
            vec![
                (422, "total_below_minimum_charge"),
                (422, "total_above_maximum_charge"),
                (422, "total_not_chargeable"),
                (422, "unsupported_currency"),
            ]
        );
    }
}
