//! Request to book end to end: a `request` listing's booking is `requested` and holds its
//! nights; the guest's card is authorised without capture (localstripe through our launcher
//! sends Stripe's `payment_intent.amount_capturable_updated`); the host is asked; accept books
//! the nights and captures once; decline, withdrawal and a lapsed request free the nights and
//! cancel the authorisation; answers racing on one request end in one outcome.

use roost_e2e::api::money;
use roost_e2e::fixtures::{confirm_with, day_in, lapse_hold, stripe, wait_for_inbox};
use roost_e2e::{NewListing, Stay, User, assert_problem, eventually, join_all, json_of, night_items, s, unique};
use serde_json::{Value, json};

const TZ: &str = "Europe/Lisbon";

struct Fixture {
    host: User,
    guest: User,
    listing_id: String,
}

async fn fixture() -> Fixture {
    let (host, guest) = tokio::join!(User::host("Rita Host"), User::guest("Raul Guest"));
    let listing = NewListing {
        title: "Request loft".into(),
        timezone: TZ.into(),
        max_nights: Some(7),
        cleaning_fee: Some(money(2000, "EUR")),
        booking_mode: Some("request".into()),
        ..NewListing::in_city(&unique("Requestville"))
    };
    let listing_id = host.api().new_listing(&listing).await;
    Fixture { host, guest, listing_id }
}

impl Fixture {
    /// A request for nights `[from, to)` days from today: 201, `requested`, its nights held.
    async fn request(&self, from: i64, to: i64) -> Value {
        self.request_by(&self.guest, from, to).await
    }

    /// `guest`'s request for nights `[from, to)` days from today.
    async fn request_by(&self, guest: &User, from: i64, to: i64) -> Value {
        let b = guest.api().booked(&Stay::new(&self.listing_id, day_in(TZ, from), day_in(TZ, to), 1)).await;
        assert_eq!(b["status"], "requested", "{b}");
        assert_eq!(b["booking_mode"], "request", "{b}");
        b
    }

    /// The guest pays: the intent is manual-capture, the card authorised (`requires_capture`),
    /// and the booking records the authorisation from Stripe's webhook. Returns the intent id.
    async fn authorise(&self, booking_id: &str) -> String {
        self.authorise_by(&self.guest, booking_id).await
    }

    /// `guest` authorises their request's card (see `authorise`).
    async fn authorise_by(&self, guest: &User, booking_id: &str) -> String {
        let intent = json_of(guest.api().pay(booking_id, None).await, 200).await;
        let intent_id = s(&intent, "payment_intent_id").to_owned();
        let (status, confirmed) = confirm_with(&intent_id, "pm_card_visa").await;
        assert_eq!(status, 200, "{confirmed}");
        assert_eq!(confirmed["status"], "requires_capture", "authorised, not charged: {confirmed}");
        assert_eq!(confirmed["capture_method"], "manual");
        eventually(&format!("{booking_id} authorised"), || async {
            let b = self.booking(guest, booking_id).await;
            (b["payment"]["status"] == "authorized").then_some(())
        })
        .await;
        intent_id
    }

    async fn booking(&self, user: &User, booking_id: &str) -> Value {
        json_of(user.api().booking(booking_id).await, 200).await
    }

    async fn accept(&self, user: &User, booking_id: &str) -> reqwest::Response {
        user.post(&format!("/v1/bookings/{booking_id}/accept"), None).await
    }

    async fn decline(&self, user: &User, booking_id: &str, body: Option<&Value>) -> reqwest::Response {
        user.post(&format!("/v1/bookings/{booking_id}/decline"), body).await
    }

    /// The listing's nights held or booked by `booking_id`: (date, kind).
    async fn nights_of(&self, booking_id: &str) -> Vec<(String, String)> {
        night_items(&self.listing_id)
            .await
            .into_iter()
            .filter(|(_, _, b)| b.as_deref() == Some(booking_id))
            .map(|(d, k, _)| (d, k))
            .collect()
    }
}

async fn intent_status(intent_id: &str) -> String {
    let (status, intent) = stripe(reqwest::Method::GET, &format!("/v1/payment_intents/{intent_id}"), &[]).await;
    assert_eq!(status, 200, "{intent}");
    s(&intent, "status").to_owned()
}

/// Waits until localstripe shows the intent in `status`.
async fn intent_becomes(intent_id: &str, status: &str) {
    eventually(&format!("{intent_id} {status}"), || async { (intent_status(intent_id).await == status).then_some(()) })
        .await;
}

#[tokio::test]
async fn a_request_is_authorised_then_accepted_its_nights_booked_and_its_payment_captured_once() {
    roost_e2e::needs_stack!();
    let f = fixture().await;
    let listing = json_of(roost_e2e::api::anonymous().listing(&f.listing_id).await, 200).await;
    assert_eq!(listing["booking_mode"], "request", "{listing}");
    let b = f.request(20, 23).await;
    let id = s(&b, "booking_id").to_owned();
    assert!(b["hold_expires_at"].is_string(), "a request says when its host must answer: {b}");
    assert_eq!(f.nights_of(&id).await.iter().filter(|(_, k)| k == "held").count(), 3);
    // Not authorised yet: the host cannot accept.
    assert_problem(f.accept(&f.host, &id).await, 409, "payment_not_authorized").await;

    let intent_id = f.authorise(&id).await;
    wait_for_inbox(&f.host, "booking.requested", &id).await;
    let requested = eventually("the host's requested reservations", || async {
        let page = json_of(f.host.api().reservations("?status=requested").await, 200).await;
        page["items"].as_array().into_iter().flatten().any(|i| i["booking_id"] == id.as_str()).then_some(page)
    })
    .await;
    assert!(requested["items"].as_array().unwrap().iter().all(|i| i["status"] == "requested"), "{requested}");

    // Only the host answers; the guest is told so (they may see the booking).
    assert_problem(f.accept(&f.guest, &id).await, 403, "not_booking_host").await;
    let accepted = json_of(f.accept(&f.host, &id).await, 200).await;
    assert_eq!(accepted["status"], "confirmed", "{accepted}");
    // The same answer again changes nothing; the other answer is refused.
    let again = json_of(f.accept(&f.host, &id).await, 200).await;
    assert_eq!(again["status"], "confirmed");
    assert_problem(f.decline(&f.host, &id, None).await, 409, "request_already_answered").await;
    assert_eq!(
        f.nights_of(&id).await,
        vec![
            (day_in(TZ, 20), "booked".to_owned()),
            (day_in(TZ, 21), "booked".to_owned()),
            (day_in(TZ, 22), "booked".to_owned()),
        ]
    );

    // payment-events captures; payment_intent.succeeded records the amount paid.
    let paid = eventually("the captured payment recorded", || async {
        let b = f.booking(&f.guest, &id).await;
        (b["payment"]["status"] == "succeeded").then_some(b)
    })
    .await;
    assert_eq!(
        paid["payment"]["amount_paid"],
        json!({"amount": b["price"]["total"], "currency": b["price"]["currency"]})
    );
    assert_eq!(intent_status(&intent_id).await, "succeeded");
    let (_, intent) = stripe(reqwest::Method::GET, &format!("/v1/payment_intents/{intent_id}"), &[]).await;
    assert_eq!(intent["amount"], b["price"]["total"], "captured in full, once: {intent}");
    wait_for_inbox(&f.guest, "booking.accepted", &id).await;
    // Once paid, the guest may cancel under the policy it was sold under, as any booking.
    let preview = json_of(f.guest.api().cancellation(&id).await, 200).await;
    assert!(preview["refund"]["amount"].as_i64().is_some(), "{preview}");
}

#[tokio::test]
async fn a_declined_request_frees_its_nights_and_cancels_the_authorisation_and_the_guest_is_told_why() {
    roost_e2e::needs_stack!();
    let f = fixture().await;
    let b = f.request(30, 32).await;
    let id = s(&b, "booking_id").to_owned();
    let intent_id = f.authorise(&id).await;
    let too_long = json!({"message": "x".repeat(1001)});
    assert_problem(f.decline(&f.host, &id, Some(&too_long)).await, 400, "validation_failed").await;
    let message = json!({"message": "Sorry, <b>family</b> visiting that week."});
    let declined = json_of(f.decline(&f.host, &id, Some(&message)).await, 200).await;
    assert_eq!(declined["status"], "declined", "{declined}");
    assert_eq!(declined["decline"]["message"], "Sorry, <b>family</b> visiting that week.");
    assert!(f.nights_of(&id).await.is_empty(), "the nights are free again");
    let again = json_of(f.decline(&f.host, &id, None).await, 200).await;
    assert_eq!(again["status"], "declined");
    assert_problem(f.accept(&f.host, &id).await, 409, "request_already_answered").await;
    // GraphQL reads the same booking: its mode, status and the host's message.
    let query = json!({"query": format!("{{ booking(id: \"{id}\") {{ bookingMode status declineMessage }} }}")});
    let read = json_of(f.guest.post("/v1/graphql", Some(&query)).await, 200).await;
    assert_eq!(
        read["data"]["booking"],
        json!({"bookingMode": "request", "status": "declined", "declineMessage": "Sorry, <b>family</b> visiting that week."}),
        "{read}"
    );
    intent_becomes(&intent_id, "canceled").await;
    let told = wait_for_inbox(&f.guest, "booking.declined", &id).await;
    assert!(told.to_string().contains("The host wrote: Sorry, <b>family</b>"), "{told}");
    // The nights can be booked by someone else at once.
    let other = User::guest("Olga Other").await;
    let rebooked = other.api().booked(&Stay::new(&f.listing_id, day_in(TZ, 30), day_in(TZ, 32), 1)).await;
    assert_eq!(rebooked["status"], "requested");
}

#[tokio::test]
async fn a_withdrawn_or_lapsed_request_frees_its_nights_and_its_authorisation() {
    roost_e2e::needs_stack!();
    let f = fixture().await;
    // Withdrawn by the guest: cancelled, nothing refunded (nothing was charged).
    let withdrawn = f.request(40, 41).await;
    let id = s(&withdrawn, "booking_id").to_owned();
    let intent_id = f.authorise(&id).await;
    let b = json_of(f.guest.api().cancel(&id, &json!({})).await, 200).await;
    assert_eq!(b["status"], "cancelled", "{b}");
    assert_eq!(b["cancellation"]["refund_due"]["amount"], 0);
    assert!(f.nights_of(&id).await.is_empty());
    assert_problem(f.accept(&f.host, &id).await, 409, "request_withdrawn").await;
    intent_becomes(&intent_id, "canceled").await;

    // Unanswered for 24 hours: it reads expired and cannot be accepted any more.
    let lapsing = f.request(44, 45).await;
    let lapsing_id = s(&lapsing, "booking_id").to_owned();
    f.authorise(&lapsing_id).await;
    let past = roost_e2e::fixtures::minutes_ago(1).to_string();
    lapse_hold(&lapsing_id, &f.listing_id, &[day_in(TZ, 44)], &past).await;
    assert_eq!(f.booking(&f.host, &lapsing_id).await["status"], "expired");
    assert_problem(f.accept(&f.host, &lapsing_id).await, 409, "request_expired").await;
    // The host cannot cancel a request either: it is answered (or left to lapse).
    let open = f.request(47, 48).await;
    assert_problem(f.host.api().cancel(s(&open, "booking_id"), &json!({})).await, 409, "booking_not_cancellable").await;
}

/// Accept, decline and the guest's withdrawal fired at once at one authorised request, 20
/// times: each request ends in exactly one answer, and money and nights agree with it.
#[tokio::test]
async fn answers_racing_on_one_request_end_in_one_outcome_with_money_and_nights_to_match() {
    roost_e2e::needs_stack!();
    let f = std::sync::Arc::new(fixture().await);
    const TRIALS: i64 = 20;
    // A guest has at most 3 requests or unpaid bookings open at once: 3 trials per guest. The
    // guests sign up one after another (sign-up is throttled per route, as in the template, and
    // other tests sign up meanwhile).
    let mut guests = Vec::new();
    for n in 0..(TRIALS + 2) / 3 {
        guests.push(std::sync::Arc::new(User::guest(&format!("Racer {n}")).await));
    }
    let trials = join_all((0..TRIALS).map(|i| {
        let (f, guest) = (f.clone(), guests[(i / 3) as usize].clone());
        async move {
            let b = f.request_by(&guest, 60 + 2 * i, 61 + 2 * i).await;
            let id = s(&b, "booking_id").to_owned();
            let intent_id = f.authorise_by(&guest, &id).await;
            (guest, id, intent_id)
        }
    }))
    .await;
    let trials = std::sync::Arc::new(trials);
    let outcomes = join_all((0..trials.len()).map(|n| {
        let (f, trials) = (f.clone(), trials.clone());
        async move {
            let (guest, id, _) = &trials[n];
            let withdrawal = json!({});
            let guest = guest.api();
            let (accept, decline, withdraw) =
                tokio::join!(f.accept(&f.host, id), f.decline(&f.host, id, None), guest.cancel(id, &withdrawal),);
            [accept.status().as_u16(), decline.status().as_u16(), withdraw.status().as_u16()]
        }
    }))
    .await;
    for ((guest, id, intent_id), statuses) in trials.iter().zip(&outcomes) {
        let b = f.booking(&f.host, id).await;
        let status = s(&b, "status").to_owned();
        let winners = statuses.iter().filter(|s| **s == 200).count();
        // One answer won; accept and decline never both.
        assert!(winners >= 1, "{id}: no answer won: {statuses:?}");
        assert!(!(statuses[0] == 200 && statuses[1] == 200), "{id}: accepted and declined: {statuses:?}");
        match status.as_str() {
            "confirmed" => {
                assert_eq!(statuses[0], 200, "{id}: confirmed but accept lost: {statuses:?}");
                assert_ne!(statuses[1], 200, "{id}: declined and accepted: {statuses:?}");
                assert_eq!(f.nights_of(id).await, vec![(day_in(TZ, night_of(&b)), "booked".to_owned())]);
                intent_becomes(intent_id, "succeeded").await;
                eventually(&format!("{id} paid"), || async {
                    (f.booking(guest, id).await["payment"]["status"] == "succeeded").then_some(())
                })
                .await;
            }
            // Accepted, its payment captured and recorded, and only then the guest's
            // cancellation (retried once the booking changed under it): an ordinary cancellation
            // of a paid stay, refunded by the policy and never above what was paid.
            "cancelled" if statuses[0] == 200 => {
                assert_ne!(statuses[1], 200, "{id}: declined and accepted: {statuses:?}");
                assert_eq!(intent_status(intent_id).await, "succeeded");
                let b = f.booking(guest, id).await;
                assert_eq!(b["payment"]["status"], "succeeded", "{b}");
                assert_eq!(b["cancellation"]["by"], "guest", "{b}");
                let due = b["cancellation"]["refund_due"]["amount"].as_i64().expect("refund_due");
                assert!(due <= b["payment"]["amount_paid"]["amount"].as_i64().expect("paid"), "{b}");
                assert!(f.nights_of(id).await.is_empty(), "{id}: cancelled holds nights");
            }
            "declined" | "cancelled" => {
                assert_ne!(statuses[0], 200, "{id}: {status} but accepted: {statuses:?}");
                assert!(f.nights_of(id).await.is_empty(), "{id}: {status} holds nights");
                intent_becomes(intent_id, "canceled").await;
            }
            other => panic!("{id}: ended {other}: {statuses:?}"),
        }
    }
}

/// How many days from today the booking's one night is.
fn night_of(b: &Value) -> i64 {
    let check_in: jiff::civil::Date = s(b, "check_in").parse().expect("check_in");
    (check_in - roost_e2e::fixtures::today_in(TZ)).get_days().into()
}
