//! Currencies end to end (issue 13, items 3 and 6): only the currencies Roost accepts
//! (`shared::currencies`), totals Stripe cannot charge refused before a night is held, the
//! special currencies reaching Stripe in Stripe's units and paid through the real webhook path,
//! and a retry of the payment call adopting the intent a failed call left at Stripe.

use reqwest::Method;
use roost_e2e::api::Address;
use roost_e2e::fixtures::{confirm_with, day_in, stripe, wait_for_status};
use roost_e2e::{NewListing, Stack, User, assert_problem, client, json_of, night_items, s, unique};
use serde_json::{Value, json};

const TZ: &str = "Atlantic/Reykjavik";

/// A cabin in Reykjavik priced `nightly` with `cleaning_fee` (JSON money, or `Null` for none).
fn listing_body(city: &str, nightly: Value, cleaning_fee: Value) -> NewListing {
    NewListing {
        title: "Currency cabin".into(),
        description: "Priced in many ways.".into(),
        property_type: "cabin".into(),
        address: Address {
            line1: "Laugavegur 1".into(),
            city: city.into(),
            region: None,
            country: "IS".into(),
            postal_code: None,
        },
        timezone: TZ.into(),
        amenities: Vec::new(),
        nightly_price: serde_json::from_value(nightly).expect("money"),
        cleaning_fee: serde_json::from_value(cleaning_fee).expect("money or null"),
        min_nights: Some(1),
        max_nights: Some(7),
        cancellation_policy: "flexible".into(),
        ..NewListing::in_city(city)
    }
}

fn money(amount: i64, currency: &str) -> Value {
    json!({"amount": amount, "currency": currency})
}

/// The date `days` after today in the listing's time zone.
fn day(days: i64) -> String {
    day_in(TZ, days)
}

async fn create_listing(host: &User, nightly: Value, cleaning_fee: Value) -> String {
    host.api().new_listing(&listing_body(&unique("Moneyvik"), nightly, cleaning_fee)).await
}

fn stay(listing_id: &str, from: i64, to: i64) -> Value {
    json!({"listing_id": listing_id, "check_in": day(from), "check_out": day(to), "guests": 1})
}

async fn pay(user: &User, booking_id: &str) -> reqwest::Response {
    user.api().pay(booking_id, None).await
}

/// What the guest's browser does with the client secret, with a card that pays.
pub(super) async fn confirm_with_visa(intent_id: &str) {
    let (status, body) = confirm_with(intent_id, "pm_card_visa").await;
    assert_eq!((status, &body["status"]), (200, &json!("succeeded")), "confirm: {body}");
}

/// Every intent localstripe holds whose metadata names `booking_id` (its list, page by page).
pub(super) async fn intents_at_stripe(booking_id: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "100".to_owned())];
        if let Some(a) = &after {
            query.push(("starting_after", a.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, page) = stripe(Method::GET, "/v1/payment_intents", &query).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().expect("data").clone();
        after = data.last().and_then(|i| i["id"].as_str()).map(str::to_owned);
        found.extend(data.into_iter().filter(|i| i["metadata"]["booking_id"] == booking_id));
        if page["has_more"] != true || after.is_none() {
            return found;
        }
    }
}

#[tokio::test]
async fn a_listing_in_a_currency_roost_does_not_accept_is_422() {
    roost_e2e::needs_stack!();
    let host = User::host("Una Host").await;
    // Create: an ISO currency Stripe has no rules in Roost's table for.
    let body = listing_body(&unique("Nocash"), money(5000, "XAF"), Value::Null);
    let problem = assert_problem(host.api().create_listing(&body).await, 422, "unsupported_currency").await;
    assert_eq!(problem["errors"][0]["field"], "nightly_price.currency", "{problem}");
    let body = listing_body(&unique("Nocash"), money(5000, "EUR"), money(500, "IRR"));
    let problem = assert_problem(host.api().create_listing(&body).await, 422, "unsupported_currency").await;
    assert_eq!(problem["errors"][0]["field"], "cleaning_fee.currency", "{problem}");
    // A code that is no currency at all stays a 400 naming the field.
    let body = listing_body(&unique("Nocash"), money(5000, "XYZ"), Value::Null);
    assert_problem(host.api().create_listing(&body).await, 400, "validation_failed").await;

    // Patch: refused, and the listing keeps its price.
    let id = create_listing(&host, money(5000, "EUR"), Value::Null).await;
    let patch = json!({"nightly_price": money(5000, "XOF")});
    assert_problem(
        host.send(Method::PATCH, &format!("/v1/listings/{id}"), Some(&patch)).await,
        422,
        "unsupported_currency",
    )
    .await;
    let patch = json!({"cleaning_fee": money(100, "XAF")});
    assert_problem(
        host.send(Method::PATCH, &format!("/v1/listings/{id}"), Some(&patch)).await,
        422,
        "unsupported_currency",
    )
    .await;
    let listing =
        json_of(client().get(Stack::get().url(&format!("/v1/listings/{id}"))).send().await.expect("api"), 200).await;
    assert_eq!(listing["nightly_price"], money(5000, "EUR"), "{listing}");
    assert_eq!(listing["cleaning_fee"], Value::Null, "{listing}");

    // The demo listings' currencies and the special ones are accepted.
    for (nightly, fee) in [
        (money(10_000, "EUR"), money(2_000, "EUR")),
        (money(25_000, "BRL"), Value::Null),
        (money(12_000, "JPY"), money(3_000, "JPY")),
        (money(10_001, "USD"), money(2_000, "USD")),
        (money(15_000, "ISK"), money(2_000, "ISK")),
        (money(2_000_000, "HUF"), Value::Null),
        (money(25_000, "KWD"), money(1_230, "KWD")),
    ] {
        create_listing(&host, nightly, fee).await;
    }
    // Three-decimal currencies: a nightly price in whole units, so every total ends in 0.
    let body = listing_body(&unique("Nocash"), money(25_005, "KWD"), Value::Null);
    let problem = assert_problem(host.api().create_listing(&body).await, 400, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "nightly_price.amount", "{problem}");
}

#[tokio::test]
async fn totals_stripe_cannot_charge_are_refused_before_any_hold() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Mina Host"), User::guest("Max Guest"));
    // 0.10 EUR a night: one night costs 0.10 + 0.01 fee, under Stripe's 0.50 EUR.
    let cheap = create_listing(&host, money(10, "EUR"), Value::Null).await;
    let problem =
        assert_problem(guest.post("/v1/quotes", Some(&stay(&cheap, 20, 21))).await, 422, "total_below_minimum_charge")
            .await;
    assert_eq!(problem["errors"][0]["field"], "price.total", "{problem}");
    assert_problem(guest.post("/v1/bookings", Some(&stay(&cheap, 20, 21))).await, 422, "total_below_minimum_charge")
        .await;
    // Five nights are 0.56 EUR: chargeable.
    let quote = json_of(guest.post("/v1/quotes", Some(&stay(&cheap, 20, 25))).await, 200).await;
    assert_eq!(quote["price"]["total"], 56, "{quote}");

    // 10,000,000 EUR a night: over Stripe's eight digits (999,999.99 EUR) at once.
    let dear = create_listing(&host, money(1_000_000_000, "EUR"), Value::Null).await;
    assert_problem(guest.post("/v1/quotes", Some(&stay(&dear, 20, 21))).await, 422, "total_above_maximum_charge").await;
    assert_problem(guest.post("/v1/bookings", Some(&stay(&dear, 20, 21))).await, 422, "total_above_maximum_charge")
        .await;

    // Same in a zero-decimal currency: Stripe's minimum is 50 JPY.
    let yen = create_listing(&host, money(40, "JPY"), Value::Null).await;
    assert_problem(guest.post("/v1/quotes", Some(&stay(&yen, 20, 21))).await, 422, "total_below_minimum_charge").await;

    // Refused before any hold: no night of these listings is held.
    for listing in [&cheap, &dear, &yen] {
        let held = night_items(listing).await;
        assert!(held.is_empty(), "{listing}: {held:?}");
    }
}

/// Book two nights, pay through the API, check what localstripe holds, pay with a card and
/// wait for the webhook to confirm the booking.
async fn pay_in(currency: &str, nightly: i64, cleaning: i64, total: i64, stripe_amount: i64) {
    let (host, guest) = tokio::join!(User::host("Ari Host"), User::guest("Bea Guest"));
    let listing = create_listing(&host, money(nightly, currency), money(cleaning, currency)).await;
    let b = json_of(guest.post("/v1/bookings", Some(&stay(&listing, 40, 42))).await, 201).await;
    assert_eq!((&b["price"]["total"], &b["price"]["currency"]), (&json!(total), &json!(currency)), "{b}");
    let bid = s(&b, "booking_id").to_owned();

    // Roost's API speaks ISO minor units; Stripe's intent carries Stripe's amount.
    let view = json_of(pay(&guest, &bid).await, 200).await;
    assert_eq!((&view["amount"], &view["currency"]), (&json!(total), &json!(currency)), "{view}");
    let pi = s(&view, "payment_intent_id").to_owned();
    let (status, intent) = stripe(Method::GET, &format!("/v1/payment_intents/{pi}"), &[]).await;
    assert_eq!(status, 200, "{intent}");
    assert_eq!(
        (&intent["amount"], &intent["currency"]),
        (&json!(stripe_amount), &json!(currency.to_ascii_lowercase())),
        "{intent}"
    );
    // A second call reads the intent back (converted again) and answers the same.
    let again = json_of(pay(&guest, &bid).await, 200).await;
    assert_eq!((&again["payment_intent_id"], &again["amount"]), (&json!(pi), &json!(total)), "{again}");

    // The webhook's amount is Stripe's: the booking confirms only if it is compared as such.
    confirm_with_visa(&pi).await;
    let confirmed = wait_for_status(&guest, &bid, "confirmed").await;
    assert_eq!(confirmed["payment"]["status"], "succeeded", "{confirmed}");
}

#[tokio::test]
async fn isk_reaches_stripe_hundredfold_and_confirms() {
    roost_e2e::needs_stack!();
    // 2 x 15,000 + 2,000 cleaning + 12 % of 30,000 = 35,600 ISK = amount 3,560,000 at Stripe.
    pay_in("ISK", 15_000, 2_000, 35_600, 3_560_000).await;
}

#[tokio::test]
async fn kwd_reaches_stripe_in_multiples_of_ten_and_confirms() {
    roost_e2e::needs_stack!();
    // 2 x 25.000 + 1.230 + 6.000 = 57.230 KWD: 57,230 fils, a multiple of 10 as Stripe needs.
    pay_in("KWD", 25_000, 1_230, 57_230, 57_230).await;
}

/// Item 6: the first payment call created the intent at Stripe, then failed to record it on
/// the booking (a transient DynamoDB error). What it leaves behind is made here directly at
/// localstripe: an intent with the booking's metadata, amount and currency. The retry must
/// adopt it: same id, one intent for the booking at Stripe, and paying it confirms the booking.
#[tokio::test]
async fn a_retry_adopts_the_intent_a_failed_call_left_at_stripe() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Ola Host"), User::guest("Pia Guest"));
    let listing = create_listing(&host, money(10_000, "EUR"), money(2_000, "EUR")).await;
    let b = json_of(guest.post("/v1/bookings", Some(&stay(&listing, 50, 52))).await, 201).await;
    let bid = s(&b, "booking_id").to_owned();
    let total = b["price"]["total"].as_i64().expect("total").to_string();
    let (status, left) = stripe(
        Method::POST,
        "/v1/payment_intents",
        &[
            ("amount", &total),
            ("currency", "eur"),
            ("metadata[booking_id]", &bid),
            ("metadata[guest_id]", &guest.user_id),
            ("payment_method_types[0]", "card"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{left}");
    let left_id = s(&left, "id").to_owned();

    let view = json_of(pay(&guest, &bid).await, 200).await;
    assert_eq!(view["payment_intent_id"], left_id, "the retry adopts the intent already at Stripe: {view}");
    assert_eq!(view["client_secret"], left["client_secret"], "{view}");
    let at_stripe = intents_at_stripe(&bid).await;
    assert_eq!(at_stripe.len(), 1, "exactly one intent for the booking: {at_stripe:?}");
    // Recorded now: a third call answers it from the booking.
    let again = json_of(pay(&guest, &bid).await, 200).await;
    assert_eq!(again["payment_intent_id"], left_id, "{again}");

    confirm_with_visa(&left_id).await;
    wait_for_status(&guest, &bid, "confirmed").await;
    assert_eq!(intents_at_stripe(&bid).await.len(), 1);
}

/// An intent for the booking that cannot be paid (cancelled) or is not for its price is never
/// adopted: a new one is created.
#[tokio::test]
async fn cancelled_or_other_price_intents_are_not_adopted() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Rui Host"), User::guest("Sol Guest"));
    let listing = create_listing(&host, money(10_000, "EUR"), Value::Null).await;
    let b = json_of(guest.post("/v1/bookings", Some(&stay(&listing, 60, 61))).await, 201).await;
    let bid = s(&b, "booking_id").to_owned();
    let meta = |amount: &'static str| {
        vec![
            ("amount", amount.to_owned()),
            ("currency", "eur".to_owned()),
            ("metadata[booking_id]", bid.clone()),
            ("payment_method_types[0]", "card".to_owned()),
        ]
    };
    let create = |form: Vec<(&'static str, String)>| async move {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, intent) = stripe(Method::POST, "/v1/payment_intents", &form).await;
        assert_eq!(status, 200, "{intent}");
        s(&intent, "id").to_owned()
    };
    let cancelled = create(meta("11200")).await;
    let (status, body) = stripe(Method::POST, &format!("/v1/payment_intents/{cancelled}/cancel"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let other_price = create(meta("999")).await;

    let view = json_of(pay(&guest, &bid).await, 200).await;
    let pi = s(&view, "payment_intent_id");
    assert!(pi != cancelled && pi != other_price, "{view}");
    assert_eq!(view["amount"], 11_200, "{view}");
}
