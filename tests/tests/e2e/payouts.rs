//! Host payouts through Stripe Connect end to end (docs/payments.md, "Payouts"): a host connects
//! a payout account (`POST /v1/me/payout-account`, Stripe's hosted onboarding through the local
//! Connect emulation, `account.updated` through the verified webhook and the queue); a paid
//! stay's payout is transferred once 24 hours after check-in (the payouts function, invoked as its
//! schedule does, here twice at once), a cancellation after it reverses the host's part, and a
//! transfer Stripe refuses is recorded, alarmed and retried.

use reqwest::Method;
use roost_e2e::fixtures::{confirm_with, day_in, minutes_ago, stripe, wait_for_status};
use roost_e2e::{NewListing, Stack, Stay, User, assert_problem, dynamodb, eventually, json_of, s, unique};
use serde_json::{Value, json};

const TZ: &str = "Europe/Lisbon";
/// The template's default `PlatformFeeBasisPoints`.
const FEE_BASIS_POINTS: i64 = 300;

fn onboarding_body() -> Value {
    json!({
        "country": "PT",
        "return_url": "https://app.example.com/host/payouts/done",
        "refresh_url": "https://app.example.com/host/payouts/retry"
    })
}

/// `host` connects a payout account and finishes Stripe's onboarding; returns the account id
/// once `account.updated` made it `enabled`.
async fn onboard(host: &User) -> String {
    let created = json_of(host.post("/v1/me/payout-account", Some(&onboarding_body())).await, 201).await;
    assert_eq!(created["status"], "onboarding", "{created}");
    assert_eq!(created["payouts_enabled"], false);
    let account_id = s(&created, "account_id").to_owned();
    let link = s(&created, "onboarding_url").to_owned();
    assert!(created["onboarding_url_expires_at"].is_string(), "{created}");
    // The host's browser at Stripe's hosted onboarding: done, Stripe sends it back to the app.
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let finished = no_redirects.get(&link).send().await.expect("onboarding page");
    assert_eq!(finished.status().as_u16(), 302);
    assert_eq!(finished.headers()["location"], "https://app.example.com/host/payouts/done");
    // The state comes from Stripe's account.updated (webhook -> queue -> payment-events).
    let enabled = eventually("payout account enabled", || async {
        let a = json_of(host.get("/v1/me/payout-account").await, 200).await;
        (a["status"] == "enabled").then_some(a)
    })
    .await;
    assert_eq!(enabled["account_id"], account_id.as_str());
    assert_eq!(enabled["payouts_enabled"], true);
    account_id
}

async fn listing_of(host: &User) -> String {
    let listing = NewListing {
        title: "Payout loft".into(),
        timezone: TZ.into(),
        max_nights: Some(7),
        cancellation_policy: "moderate".into(),
        ..NewListing::in_city(&unique("Payoutville"))
    };
    host.api().new_listing(&listing).await
}

/// `guest` books nights `[from, to)` days from today and pays; returns the confirmed booking.
async fn paid_stay(guest: &User, listing_id: &str, from: i64, to: i64) -> Value {
    let b = guest.api().booked(&Stay::new(listing_id, day_in(TZ, from), day_in(TZ, to), 1)).await;
    let booking_id = s(&b, "booking_id").to_owned();
    let intent = json_of(guest.api().pay(&booking_id, None).await, 200).await;
    let (status, confirmed) = confirm_with(s(&intent, "payment_intent_id"), "pm_card_visa").await;
    assert_eq!(status, 200, "{confirmed}");
    wait_for_status(guest, &booking_id, "confirmed").await
}

/// What the host gets of a booking: nights and cleaning less the platform fee (half-up).
fn host_amount(b: &Value) -> i64 {
    let base = b["price"]["subtotal"].as_i64().expect("subtotal") + b["price"]["cleaning_fee"].as_i64().expect("fee");
    base - (base * FEE_BASIS_POINTS + 5_000) / 10_000
}

async fn payout_of(host: &User, booking_id: &str) -> Value {
    let b = json_of(host.api().booking(booking_id).await, 200).await;
    b["payout"].clone()
}

/// **Time-passes fixture**: the payout's due instant (check-in + 24 h) moves a minute into the
/// past (its GSI3 sort key; the item must still be indexed).
async fn make_due(booking_id: &str) {
    dynamodb(
        "UpdateItem",
        json!({
            "Key": {"PK": {"S": format!("BOOKING#{booking_id}")}, "SK": {"S": "PAYOUT"}},
            "UpdateExpression": "SET GSI3SK = :sk",
            "ConditionExpression": "attribute_exists(GSI3PK)",
            "ExpressionAttributeValues": {":sk": {"S": format!("{}#{booking_id}", minutes_ago(1))}}
        }),
    )
    .await;
}

/// Runs the payouts function as its schedule does, until the booking's payout shows `status`
/// (the index may lag a write by a moment); returns the payout.
async fn run_payouts_until(host: &User, booking_id: &str, status: &str) -> Value {
    let mut seen = Vec::new();
    for _ in 0..40 {
        let (outcome, report) = Stack::get().invoke("PayoutsFunction", &json!({})).await;
        assert_eq!(outcome, "response", "{report}");
        let p = payout_of(host, booking_id).await;
        if p["status"] == status {
            return p;
        }
        seen.push(format!("{report} -> {p}"));
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("payout of {booking_id} never {status}; runs and payouts seen:\n{}", seen.join("\n"))
}

async fn transfers_to(account_id: &str) -> Vec<Value> {
    let (status, list) = stripe(Method::GET, "/v1/transfers", &[("destination", account_id)]).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_host_onboards_and_a_paid_stay_is_paid_out_once_after_check_in() {
    let (host, guest) = tokio::join!(User::host("Paula Host"), User::guest("Pedro Guest"));
    assert_problem(host.get("/v1/me/payout-account").await, 404, "payout_account_not_found").await;
    let bad = json!({"country": "portugal", "return_url": "http://app.example.com/x", "refresh_url": "/x"});
    let refused = assert_problem(host.post("/v1/me/payout-account", Some(&bad)).await, 400, "validation_failed").await;
    assert_eq!(refused["errors"].as_array().map(Vec::len), Some(3), "{refused}");

    let account_id = onboard(&host).await;
    // Asked again: the same account, no link (it is enabled).
    let again = json_of(host.post("/v1/me/payout-account", Some(&onboarding_body())).await, 200).await;
    assert_eq!(again["account_id"], account_id.as_str());
    assert!(again["onboarding_url"].is_null(), "{again}");

    let listing_id = listing_of(&host).await;
    let b = paid_stay(&guest, &listing_id, 10, 12).await;
    let booking_id = s(&b, "booking_id").to_owned();
    assert!(b["payout"].is_null(), "the guest never sees the host's payout: {b}");
    let expected = host_amount(&b);
    let p = payout_of(&host, &booking_id).await;
    assert_eq!(p["status"], "scheduled", "{p}");
    assert_eq!(p["host_amount"], expected, "{p}");
    assert_eq!(p["fee_basis_points"], FEE_BASIS_POINTS);
    assert_eq!(p["transferred"], 0);

    // Before its date nothing moves.
    let (outcome, _) = Stack::get().invoke("PayoutsFunction", &json!({})).await;
    assert_eq!(outcome, "response");
    assert_eq!(payout_of(&host, &booking_id).await["status"], "scheduled");
    assert!(transfers_to(&account_id).await.is_empty());

    // 24 hours after check-in: two runs at once pay it once.
    make_due(&booking_id).await;
    let schedule = json!({});
    let (first, second) = tokio::join!(
        Stack::get().invoke("PayoutsFunction", &schedule),
        Stack::get().invoke("PayoutsFunction", &schedule)
    );
    assert_eq!((first.0.as_str(), second.0.as_str()), ("response", "response"), "{first:?} {second:?}");
    let paid = run_payouts_until(&host, &booking_id, "paid").await;
    assert_eq!(paid["transferred"], expected, "{paid}");
    assert_eq!(paid["reversed"], 0);
    assert!(paid["paid_at"].is_string());
    let transfers = transfers_to(&account_id).await;
    assert_eq!(transfers.len(), 1, "one transfer: {transfers:?}");
    assert_eq!(transfers[0]["amount"], expected);
    assert_eq!(transfers[0]["currency"], "eur");
    assert_eq!(transfers[0]["metadata"]["booking_id"], booking_id.as_str());
    // Runs after it change nothing.
    let (outcome, _) = Stack::get().invoke("PayoutsFunction", &json!({})).await;
    assert_eq!(outcome, "response");
    assert_eq!(transfers_to(&account_id).await.len(), 1);
    // GraphQL reads the same payout for the host, none for the guest.
    let query = json!({"query": format!("{{ booking(id: \"{booking_id}\") {{ payout {{ status transferred hostAmount feeBasisPoints }} }} }}")});
    let read = json_of(host.post("/v1/graphql", Some(&query)).await, 200).await;
    assert_eq!(
        read["data"]["booking"]["payout"],
        json!({"status": "paid", "transferred": expected, "hostAmount": expected, "feeBasisPoints": FEE_BASIS_POINTS}),
        "{read}"
    );
    let read = json_of(guest.post("/v1/graphql", Some(&query)).await, 200).await;
    assert!(read["data"]["booking"]["payout"].is_null(), "{read}");
}

#[tokio::test]
async fn a_cancellation_after_the_payout_reverses_the_hosts_part_of_it() {
    let (host, guest) = tokio::join!(User::host("Carla Host"), User::guest("Caio Guest"));
    let account_id = onboard(&host).await;
    let listing_id = listing_of(&host).await;
    // Moderate policy, 3 days before check-in: the guest gets 50 % back.
    let b = paid_stay(&guest, &listing_id, 3, 5).await;
    let booking_id = s(&b, "booking_id").to_owned();
    let total = b["price"]["total"].as_i64().expect("total");
    let expected = host_amount(&b);
    make_due(&booking_id).await;
    run_payouts_until(&host, &booking_id, "paid").await;

    let cancelled = json_of(guest.post(&format!("/v1/bookings/{booking_id}/cancel"), None).await, 200).await;
    let refund = cancelled["cancellation"]["refund_due"]["amount"].as_i64().expect("refund due");
    assert_eq!(refund, (total * 50 + 50) / 100, "{cancelled}");
    // The refund recorded at Stripe makes the payout due again; the run reverses the host's part.
    eventually("refund succeeded", || async {
        let b = json_of(guest.api().booking(&booking_id).await, 200).await;
        (b["refund"]["status"] == "succeeded").then_some(())
    })
    .await;
    let keeps = expected * (total - refund) / total;
    let p = eventually("payout partly reversed", || async {
        let (outcome, report) = Stack::get().invoke("PayoutsFunction", &json!({})).await;
        assert_eq!(outcome, "response", "{report}");
        let p = payout_of(&host, &booking_id).await;
        (p["reversed"].as_i64() > Some(0)).then_some(p)
    })
    .await;
    assert_eq!(p["status"], "paid", "{p}");
    assert_eq!(p["transferred"], expected);
    assert_eq!(p["reversed"], expected - keeps, "{p}");
    let transfers = transfers_to(&account_id).await;
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0]["amount_reversed"], expected - keeps, "{transfers:?}");
    // Again: nothing more is reversed.
    let (outcome, _) = Stack::get().invoke("PayoutsFunction", &json!({})).await;
    assert_eq!(outcome, "response");
    assert_eq!(transfers_to(&account_id).await[0]["amount_reversed"], expected - keeps);
}

#[tokio::test]
async fn a_due_payout_waits_for_the_account_and_a_refused_transfer_is_alarmed_and_retried_once() {
    let (host, guest) = tokio::join!(User::host("Fausto Host"), User::guest("Flora Guest"));
    let listing_id = listing_of(&host).await;
    let b = paid_stay(&guest, &listing_id, 6, 8).await;
    let booking_id = s(&b, "booking_id").to_owned();
    let expected = host_amount(&b);

    // Due, and the host has no payout account: it waits.
    make_due(&booking_id).await;
    let waiting = run_payouts_until(&host, &booking_id, "waiting_for_account").await;
    assert_eq!(waiting["transferred"], 0, "{waiting}");

    // Onboarded; Stripe then refuses the first transfer (the platform's balance is short).
    let account_id = onboard(&host).await;
    let (status, switched) = stripe(
        Method::POST,
        "/_config/connect/transfer_failures",
        &[("destination", account_id.as_str()), ("count", "1")],
    )
    .await;
    assert_eq!(status, 200, "{switched}");
    make_due(&booking_id).await;
    let failed = run_payouts_until(&host, &booking_id, "failed").await;
    assert_eq!(failed["last_error"], "balance_insufficient", "{failed}");
    assert_eq!(failed["failed_attempts"], 1);
    assert!(transfers_to(&account_id).await.is_empty());
    let log = Stack::get().function_log("PayoutsFunction");
    assert!(
        log.lines().any(|l| l.contains(r#""alert":"payout_failed""#) && l.contains(&booking_id)),
        "the failure is logged for the PayoutsFailed alarm"
    );

    // Its retry (due again after the backoff) goes through, once.
    make_due(&booking_id).await;
    let paid = run_payouts_until(&host, &booking_id, "paid").await;
    assert_eq!(paid["transferred"], expected, "{paid}");
    assert_eq!(paid["failed_attempts"], 1);
    assert!(paid["last_error"].is_null(), "{paid}");
    let transfers = transfers_to(&account_id).await;
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0]["amount"], expected);
}

/// The local Connect emulation's own contract (infra/local/tests/stripe_connect_test.py): every
/// emulated route, error, idempotent replay, signed event and switch, against a launcher of its
/// own, so the emulation the tests above rely on cannot drift from what it promises.
#[tokio::test]
async fn the_local_connect_emulation_keeps_its_contract() {
    tokio::task::spawn_blocking(|| {
        let root = roost_e2e::tools::root();
        let mut test = std::process::Command::new(root.join(".venv/bin/python"));
        test.arg(root.join("infra/local/tests/stripe_connect_test.py")).current_dir(&root);
        roost_e2e::tools::run_ok("the Connect emulation's self-test", &mut test);
    })
    .await
    .expect("the self-test ran");
}
