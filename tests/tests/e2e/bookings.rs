//! Bookings end to end through the HTTP API: quote -> book -> read -> trips -> reservations with
//! exact prices, every stay rule as a 422 that writes nothing, `Idempotency-Key`, a lapsed hold
//! taken over, and races between several function processes, each repeated on fresh listings.
//!
//! What a test checks beyond the answers it reads from the table itself (`roost_e2e::dynamodb`):
//! the NIGHT items (`LISTING#<id>` / `NIGHT#<date>`) and the search item's `unavailable` set,
//! so "writes nothing" and "no night held by a loser" are facts about the data, not the API.

use std::collections::{BTreeSet, HashSet};

use reqwest::Method;
use roost_e2e::api::{Address, money};
use roost_e2e::fixtures::{day_in, days_in, hold_slot_key_of, lapse_hold, minutes_ago, stored_unavailable};
use roost_e2e::{
    Cancel, NewListing, Stack, User, anonymous, assert_problem, client, ddb_requests, dynamodb, join_all, json_of,
    night_items, s, unique,
};
use serde_json::{Value, json};

const FUNCTION: &str = "BookingsFunction";
const TZ: &str = "Europe/Lisbon";
/// How many times each race runs, each time on a fresh listing.
const ROUNDS: usize = 5;

fn listing_body(city: &str) -> NewListing {
    NewListing {
        title: "Harbour loft".into(),
        description: "Bright.".into(),
        property_type: "apartment".into(),
        address: Address {
            line1: "Rua das Flores 12".into(),
            postal_code: Some("1200-195".into()),
            ..NewListing::in_city(city).address
        },
        timezone: TZ.into(),
        max_guests: 3,
        beds: 2,
        nightly_price: money(12345, "EUR"),
        min_nights: Some(2),
        max_nights: Some(7),
        ..NewListing::in_city(city)
    }
}

async fn new_listing(host: &User) -> String {
    host.api().new_listing(&listing_body(&unique("Bookville"))).await
}

/// The date `days` after today in the listings' time zone, `YYYY-MM-DD`.
fn day(days: i64) -> String {
    day_in(TZ, days)
}

fn days(from: i64, to: i64) -> Vec<String> {
    days_in(TZ, from, to)
}

fn stay(lid: &str, check_in: i64, check_out: i64, guests: u32) -> Value {
    json!({"listing_id": lid, "check_in": day(check_in), "check_out": day(check_out), "guests": guests})
}

async fn quote(body: &Value) -> reqwest::Response {
    anonymous().quote(body).await
}

async fn book(guest: &User, body: &Value, key: Option<&str>) -> reqwest::Response {
    guest.api().book(body, key).await
}

/// Books and asserts 201; returns the booking.
async fn booked(guest: &User, body: &Value) -> Value {
    guest.api().booked(body).await
}

/// Cancels `booking_id` as `user` (its guest or host), 200: frees the guest's hold slot for the
/// next round (a guest has at most three bookings waiting for payment).
async fn cancel(user: &User, booking_id: &str) -> Value {
    let cancelled = json_of(user.api().cancel(booking_id, &Cancel::default()).await, 200).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    cancelled
}

/// Asserts the listing's nights `dates` are held by `booking_id` and no other night has an item.
async fn assert_held_by(lid: &str, booking_id: &str, dates: &[String]) {
    let nights = night_items(lid).await;
    let got: BTreeSet<&str> = nights.iter().map(|(d, _, _)| d.as_str()).collect();
    let want: BTreeSet<&str> = dates.iter().map(String::as_str).collect();
    assert_eq!(got, want, "night items of {lid}");
    for (date, kind, holder) in &nights {
        assert_eq!(kind, "held", "{date}");
        assert_eq!(holder.as_deref(), Some(booking_id), "{date} is held by the winner");
    }
    let unavailable = stored_unavailable(lid).await;
    assert_eq!(unavailable, dates.iter().cloned().collect::<BTreeSet<_>>(), "search item of {lid}");
}

/// The host's reservations on one listing.
async fn reservations_of(host: &User, lid: &str) -> Vec<Value> {
    let page = json_of(host.get(&format!("/v1/me/reservations?listing_id={lid}&limit=100")).await, 200).await;
    page["items"].as_array().expect("items").clone()
}

/// Waits out the strict stack's TransactionConflict window: a fixture's writes just before a
/// counted booking must not cancel its transaction (the retry would add requests that are not
/// the booking's cost).
async fn past_conflict_window() {
    let window = Stack::get().rest["strictness"]["transaction_conflict"]["window_ms"].as_u64().unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(window + 100)).await;
}

/// Fixture for time passing without waiting: the booking's hold lapsed `minutes` ago (the
/// booking item, its NIGHT items and the guest's hold slot that names it: `lapse_hold`).
async fn rewind_hold(booking_id: &str, lid: &str, nights: &[String], minutes: i64) {
    lapse_hold(booking_id, lid, nights, &minutes_ago(minutes).to_string()).await;
}

/// The key (`GUEST#<guest id>`, `HOLD_SLOT#<n>`) of the one hold slot item that names
/// `booking_id`, straight from the table.
async fn hold_slot_of(booking_id: &str) -> (String, String) {
    let key = hold_slot_key_of(booking_id).await;
    (s(&key["PK"], "S").to_owned(), s(&key["SK"], "S").to_owned())
}

/// POST /v1/bookings with an `X-Request-Id`, for `ddb_requests`: (request id, response).
async fn book_counted(guest: &User, body: &Value) -> (String, reqwest::Response) {
    let id = unique("count-book-");
    let response = guest.api().call(Method::POST, "/v1/bookings", Some(body), &[("x-request-id", &id)]).await;
    (id, response)
}

#[tokio::test]
async fn quote_book_read_trips_and_reservations_with_exact_prices() {
    roost_e2e::needs_stack!();
    let (host, guest, stranger) =
        tokio::join!(User::host("Helena Host"), User::guest("Gil Guest"), User::guest("Sam Stranger"));
    let lid = new_listing(&host).await;
    let body = stay(&lid, 40, 43, 2);

    // Anyone may quote (no token). 3 nights of 123.45 EUR: 370.35; 12 % = 44.4420 -> 44.44; cleaning 25.00.
    let q = json_of(quote(&body).await, 200).await;
    let expected_price = json!({
        "nightly": [
            {"date": day(40), "amount": 12345}, {"date": day(41), "amount": 12345}, {"date": day(42), "amount": 12345}
        ],
        "subtotal": 37035, "cleaning_fee": 2500, "service_fee": 4444, "total": 43979, "currency": "EUR"
    });
    assert_eq!(q["price"], expected_price);
    assert_eq!(q["nights"], 3);
    assert_eq!(q["available"], true);
    assert_eq!((&q["listing_id"], &q["check_in"], &q["check_out"]), (&json!(lid), &json!(day(40)), &json!(day(43))));
    assert!(q.get("unavailable_dates").is_none());

    // Booking needs a token (the gateway's authorizer answers).
    let anonymous = client().post(Stack::get().url("/v1/bookings")).json(&body).send().await.expect("api");
    assert_eq!(anonymous.status(), 401);

    let before = jiff::Timestamp::now();
    let response = book(&guest, &body, None).await;
    let after = jiff::Timestamp::now();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let b = json_of(response, 201).await;
    let bid = s(&b, "booking_id").to_owned();
    assert!(bid.starts_with("bkg_"), "{bid}");
    assert_eq!(location.as_deref(), Some(format!("/v1/bookings/{bid}").as_str()));
    assert_eq!(b["status"], "pending_payment");
    assert_eq!(b["price"], expected_price, "the booking has the quoted price");
    assert_eq!(b["guest"], json!({"user_id": guest.user_id, "name": "Gil Guest"}));
    assert_eq!(b["host"], json!({"user_id": host.user_id, "name": "Helena Host"}));
    assert_eq!((&b["listing_id"], &b["listing_title"]), (&json!(lid), &json!("Harbour loft")));
    assert_eq!(
        (&b["check_in"], &b["check_out"], &b["nights"], &b["guests"]),
        (&json!(day(40)), &json!(day(43)), &json!(3), &json!(2))
    );
    assert_eq!((&b["cancellation_policy"], &b["timezone"]), (&json!("moderate"), &json!(TZ)));
    assert_eq!((&b["check_in_time"], &b["check_out_time"]), (&json!("15:00"), &json!("11:00")));
    assert_eq!(b["payment"], json!({"status": "unpaid"}));
    assert!(b.get("address").is_none(), "no exact address before confirmation: {b}");
    assert_eq!(b["location"]["country"], "PT");
    // The hold: 15 minutes (HOLD_MINUTES in the template) from the moment the function ran,
    // which lies between the times taken around the request: bounded by those, not by a
    // guess at how long a loaded machine takes (1 s either side: the instant may be whole seconds).
    let hold: jiff::Timestamp = s(&b, "hold_expires_at").parse().expect("hold_expires_at");
    let fifteen = jiff::SignedDuration::from_mins(15);
    let (earliest, latest) =
        (before + fifteen - jiff::SignedDuration::from_secs(1), after + fifteen + jiff::SignedDuration::from_secs(1));
    assert!(
        earliest <= hold && hold <= latest,
        "hold until {hold}, not 15 minutes after the request ({before} .. {after})"
    );

    // Stored: 3 nights held by it, and the search item knows them.
    assert_held_by(&lid, &bid, &days(40, 43)).await;

    // Read: its guest and its host; anyone else (even with a token) gets 404.
    let path = format!("/v1/bookings/{bid}");
    assert_eq!(json_of(guest.get(&path).await, 200).await, b);
    // The host reads the same booking and its payout (the guest never sees it): the platform fee
    // fixed now, 3 % of nights + cleaning, and the transfer 24 hours after check-in.
    let mut host_view = json_of(host.get(&path).await, 200).await;
    let payout = host_view.as_object_mut().expect("object").remove("payout").expect("the host sees the payout");
    assert_eq!(host_view, b);
    let base = b["price"]["subtotal"].as_i64().expect("subtotal") + b["price"]["cleaning_fee"].as_i64().expect("fee");
    let fee = (base * 300 + 5_000) / 10_000;
    let check_in: jiff::civil::DateTime = format!("{}T15:00", s(&b, "check_in")).parse().expect("check-in");
    let lisbon = jiff::tz::TimeZone::get(s(&b, "timezone")).expect("zone");
    let due = check_in.to_zoned(lisbon).expect("local").timestamp() + jiff::SignedDuration::from_hours(24);
    assert_eq!(
        payout,
        json!({"status": "scheduled", "currency": b["price"]["currency"], "fee_basis_points": 300,
               "platform_fee": fee, "host_amount": base - fee, "due_at": due.to_string(),
               "transferred": 0, "reversed": 0, "failed_attempts": 0}),
        "{payout}"
    );
    assert_problem(stranger.get(&path).await, 404, "not_found").await;
    assert_problem(stranger.get("/v1/bookings/bkg_nope").await, 404, "not_found").await;
    let anonymous = client().get(Stack::get().url(&path)).send().await.expect("api");
    assert_eq!(anonymous.status(), 401);

    // The nights are taken now: the quote says so (and names them), the calendar and search too.
    let q = json_of(quote(&body).await, 200).await;
    assert_eq!(q["available"], false);
    assert_eq!(q["unavailable_dates"], json!(days(40, 43)));
    let overlapping = json_of(quote(&stay(&lid, 42, 45, 2)).await, 200).await;
    assert_eq!((&overlapping["available"], &overlapping["unavailable_dates"]), (&json!(false), &json!([day(42)])));
    let after = json_of(quote(&stay(&lid, 43, 45, 2)).await, 200).await;
    assert_eq!(after["available"], true, "check-out day is free: {after}");
    let calendar = json_of(
        client()
            .get(Stack::get().url(&format!("/v1/listings/{lid}/availability?from={}&to={}", day(39), day(44))))
            .send()
            .await
            .expect("api"),
        200,
    )
    .await;
    let free: Vec<bool> = calendar["nights"]
        .as_array()
        .expect("nights")
        .iter()
        .map(|n| n["available"].as_bool().expect("available"))
        .collect();
    assert_eq!(free, [true, false, false, false, true]);

    // Trips: the guest's, newest first; a stranger has none.
    let second = booked(&guest, &stay(&lid, 50, 52, 1)).await;
    let trips = roost_e2e::until_indexed(
        || async { json_of(guest.get("/v1/me/trips").await, 200).await },
        |trips| trips["items"].as_array().is_some_and(|items| items.len() >= 2),
    )
    .await;
    let ids: Vec<&str> = trips["items"].as_array().expect("items").iter().map(|t| s(t, "booking_id")).collect();
    assert_eq!(ids, [s(&second, "booking_id"), bid.as_str()]);
    assert_eq!(trips["items"][1], b);
    assert_eq!(trips["next_cursor"], Value::Null);
    let pending = json_of(guest.get("/v1/me/trips?status=pending_payment").await, 200).await;
    assert_eq!(pending["items"].as_array().expect("items").len(), 2);
    for status in ["confirmed", "expired", "cancelled", "completed"] {
        let none = json_of(guest.get(&format!("/v1/me/trips?status={status}")).await, 200).await;
        assert_eq!(none["items"], json!([]), "{status}");
    }
    assert_problem(guest.get("/v1/me/trips?status=paid").await, 400, "validation_failed").await;
    assert_problem(guest.get("/v1/me/trips?limit=0").await, 400, "validation_failed").await;
    assert_eq!(json_of(stranger.get("/v1/me/trips").await, 200).await["items"], json!([]));

    // Pagination: one per page, cursors bound to route, caller and filters.
    let page1 = json_of(guest.get("/v1/me/trips?limit=1").await, 200).await;
    assert_eq!(page1["items"][0]["booking_id"], second["booking_id"]);
    let cursor = s(&page1, "next_cursor").to_owned();
    let page2 = json_of(guest.get(&format!("/v1/me/trips?limit=1&cursor={cursor}")).await, 200).await;
    assert_eq!(page2["items"][0]["booking_id"], json!(bid));
    // A full last page may still carry a cursor (DynamoDB cannot tell there is no more): then
    // the page after it is empty and the last. Either way the walk ends here.
    match &page2["next_cursor"] {
        Value::Null => {}
        Value::String(c) => {
            let page3 = json_of(guest.get(&format!("/v1/me/trips?limit=1&cursor={c}")).await, 200).await;
            assert_eq!(page3, json!({"items": [], "next_cursor": null}));
        }
        other => panic!("next_cursor is null or a string: {other}"),
    }
    assert_problem(stranger.get(&format!("/v1/me/trips?limit=1&cursor={cursor}")).await, 400, "invalid_cursor").await;
    assert_problem(
        guest.get(&format!("/v1/me/trips?status=pending_payment&cursor={cursor}")).await,
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(host.get(&format!("/v1/me/reservations?cursor={cursor}")).await, 400, "invalid_cursor").await;
    assert_problem(guest.get("/v1/me/trips?cursor=forged.cursor").await, 400, "invalid_cursor").await;

    // Reservations: the host's, all or one listing; hosts only.
    let other_lid = new_listing(&host).await;
    let third = booked(&stranger, &stay(&other_lid, 40, 42, 3)).await;
    let all = roost_e2e::until_indexed(
        || async { json_of(host.get("/v1/me/reservations").await, 200).await },
        |all| all["items"].as_array().is_some_and(|items| items.len() >= 3),
    )
    .await;
    let ids: Vec<&str> = all["items"].as_array().expect("items").iter().map(|t| s(t, "booking_id")).collect();
    assert_eq!(ids, [s(&third, "booking_id"), s(&second, "booking_id"), bid.as_str()]);
    let one: Vec<String> = reservations_of(&host, &lid).await.iter().map(|t| s(t, "booking_id").to_owned()).collect();
    assert_eq!(one, [s(&second, "booking_id"), bid.as_str()]);
    assert_eq!(reservations_of(&host, &other_lid).await[0]["price"]["total"], 2 * 12345 + 2963 + 2500);
    assert_problem(guest.get("/v1/me/reservations").await, 403, "host_required").await;
    assert_problem(host.get("/v1/me/reservations?listing_id=nope").await, 400, "validation_failed").await;
    let other_host = User::host("Otto Other").await;
    assert_eq!(json_of(other_host.get("/v1/me/reservations").await, 200).await["items"], json!([]));
    assert!(reservations_of(&other_host, &lid).await.is_empty(), "another host's listing id filters to nothing");
}

#[tokio::test]
async fn every_broken_rule_is_a_422_that_writes_nothing() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Rita Rules"), User::guest("Bea Breaker"));
    let lid = new_listing(&host).await;
    // (body, code, field) with min 2 / max 7 nights and at most 3 guests.
    let cases = [
        (stay(&lid, -1, 2, 2), "check_in_in_past", "check_in"),
        (stay(&lid, 40, 40, 2), "check_out_not_after_check_in", "check_out"),
        (stay(&lid, 41, 40, 2), "check_out_not_after_check_in", "check_out"),
        (stay(&lid, 40, 41, 2), "stay_too_short", "check_out"),
        (stay(&lid, 40, 48, 2), "stay_too_long", "check_out"),
        (stay(&lid, 40, 400, 2), "stay_too_long", "check_out"),
        (stay(&lid, 40, 42, 0), "too_few_guests", "guests"),
        (stay(&lid, 40, 42, 4), "too_many_guests", "guests"),
    ];
    for (body, code, field) in &cases {
        let problem = assert_problem(book(&guest, body, Some(&unique("k"))).await, 422, code).await;
        assert_eq!(problem["errors"][0]["field"], *field, "{problem}");
        let problem = assert_problem(quote(body).await, 422, code).await;
        assert_eq!(problem["errors"][0]["field"], *field, "quote: {problem}");
    }
    // The edges are fine for a quote: exactly min and max nights, exactly max guests, today.
    for body in [stay(&lid, 40, 42, 3), stay(&lid, 40, 47, 1), stay(&lid, 0, 2, 1)] {
        assert_eq!(json_of(quote(&body).await, 200).await["available"], true);
    }
    // Own listing: the host may quote it (anyone may) but not book it.
    let problem = assert_problem(book(&host, &stay(&lid, 40, 42, 2), None).await, 422, "own_listing").await;
    assert_eq!(problem["errors"][0]["field"], "listing_id");
    // Malformed requests are 400s, unknown listings 404s.
    let mut bad_date = stay(&lid, 40, 42, 2);
    bad_date["check_in"] = json!("2027-02-30");
    assert_problem(book(&guest, &bad_date, None).await, 400, "validation_failed").await;
    assert_problem(quote(&bad_date).await, 400, "validation_failed").await;
    let mut extra = stay(&lid, 40, 42, 2);
    extra["price"] = json!(1);
    assert_problem(book(&guest, &extra, None).await, 400, "validation_failed").await;
    let mut negative = stay(&lid, 40, 42, 2);
    negative["guests"] = json!(-1);
    assert_problem(quote(&negative).await, 400, "validation_failed").await;
    let unknown = stay("lst_01jh3k0000000000000000000a", 40, 42, 2);
    assert_problem(book(&guest, &unknown, None).await, 404, "not_found").await;
    assert_problem(quote(&unknown).await, 404, "not_found").await;
    let malformed = client()
        .post(Stack::get().url("/v1/quotes"))
        .header("content-type", "application/json")
        .body("{\"listing_id\":")
        .send()
        .await
        .expect("api");
    assert_problem(malformed, 400, "malformed_request").await;
    assert_problem(book(&guest, &stay(&lid, 40, 42, 2), Some("has spaces")).await, 400, "validation_failed").await;

    // An archived listing takes no bookings (and no quotes).
    let archived = new_listing(&host).await;
    assert_eq!(host.send(Method::DELETE, &format!("/v1/listings/{archived}"), None).await.status(), 204);
    assert_problem(book(&guest, &stay(&archived, 40, 42, 2), None).await, 422, "listing_unavailable").await;
    assert_problem(quote(&stay(&archived, 40, 42, 2)).await, 422, "listing_unavailable").await;

    // Nothing was written anywhere: no night, no unavailable date, no trip, no reservation.
    for l in [&lid, &archived] {
        assert!(night_items(l).await.is_empty(), "{l} has night items");
        assert!(stored_unavailable(l).await.is_empty(), "{l} has unavailable dates");
        assert!(reservations_of(&host, l).await.is_empty());
    }
    assert_eq!(json_of(guest.get("/v1/me/trips").await, 200).await["items"], json!([]));
}

#[tokio::test]
async fn the_same_idempotency_key_gives_the_same_booking() {
    roost_e2e::needs_stack!();
    let (host, guest, other) = tokio::join!(User::host("Ida Host"), User::guest("Ike Guest"), User::guest("Ola Other"));
    let lid = new_listing(&host).await;
    let key = unique("idem-");
    let body = stay(&lid, 60, 62, 2);
    let first = book(&guest, &body, Some(&key)).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json_of(first, 201).await;
    // Again, with the same body spelled differently (key order, spacing): the stored response.
    let respelled = format!(
        "{{ \"guests\": 2, \"check_out\": \"{}\", \"check_in\": \"{}\",  \"listing_id\": \"{lid}\" }}",
        day(62),
        day(60)
    );
    let again = client()
        .post(Stack::get().url("/v1/bookings"))
        .header("authorization", guest.bearer())
        .header("idempotency-key", &key)
        .header("content-type", "application/json")
        .body(respelled)
        .send()
        .await
        .expect("api");
    assert_eq!(again.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(json_of(again, 201).await, first, "the first response, byte for byte in JSON");
    // Another body with the same key: 422, and nothing booked.
    let problem =
        assert_problem(book(&guest, &stay(&lid, 70, 72, 2), Some(&key)).await, 422, "idempotency_key_reused").await;
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(json_of(quote(&stay(&lid, 70, 72, 2)).await, 200).await["available"], true);
    // The key is the caller's: another user with the same key and dates makes their own attempt.
    assert_problem(book(&other, &body, Some(&key)).await, 409, "dates_unavailable").await;
    let listed = roost_e2e::until_indexed(|| reservations_of(&host, &lid), |r: &Vec<Value>| !r.is_empty()).await;
    assert_eq!(listed.len(), 1);
    assert_held_by(&lid, s(&first, "booking_id"), &days(60, 62)).await;
}

/// A retry of the booking that filled the guest's last hold slot is answered with its stored 201,
/// not 409 `hold_limit_reached`: the booking being retried is not another open hold. (Run one
/// after the other, the retry's first read finds the key's record; the fix is for a retry whose
/// read overlaps its original's commit, sees the slot taken but not yet the record, and so judges
/// the guest full: with a key, the record is read again before any 409.)
#[tokio::test]
async fn a_retried_third_booking_gets_its_201_not_hold_limit_reached() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Rita Retry"), User::guest("Rui Retry"));
    let lid = new_listing(&host).await;
    booked(&guest, &stay(&lid, 50, 52, 2)).await;
    booked(&guest, &stay(&lid, 52, 54, 2)).await;
    let key = unique("third-");
    let third = stay(&lid, 54, 56, 2);
    let first = book(&guest, &third, Some(&key)).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json_of(first, 201).await;
    // The guest is at the cap: a new booking is refused...
    let fourth = stay(&lid, 56, 58, 2);
    assert_problem(book(&guest, &fourth, Some(&unique("fourth-"))).await, 409, "hold_limit_reached").await;
    // ...but the third one again, alone and five times at once, is its first answer.
    let again = book(&guest, &third, Some(&key)).await;
    assert_eq!(again.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(json_of(again, 201).await, first);
    let retries = join_all((0..5).map(|_| {
        let (guest, third, key) = (guest.clone(), third.clone(), key.clone());
        async move {
            let r = book(&guest, &third, Some(&key)).await;
            let replayed = r.headers().get("idempotent-replayed").is_some();
            (r.status().as_u16(), replayed, r.json::<Value>().await.expect("json"))
        }
    }))
    .await;
    for (status, replayed, body) in &retries {
        assert_eq!((*status, *replayed, body), (201, true, &first), "{retries:?}");
    }
    // Still three open holds, the retried one among them, and three bookings.
    let slots = hold_slots(&guest.user_id).await;
    assert_eq!(slots.len(), 3, "{slots:?}");
    assert!(slots.contains(s(&first, "booking_id")), "{slots:?}");
    assert_eq!(reservations_of(&host, &lid).await.len(), 3);
}

#[tokio::test]
async fn a_lapsed_hold_is_taken_over_by_the_next_guest() {
    roost_e2e::needs_stack!();
    let (host, first, second, third) = tokio::join!(
        User::host("Lia Host"),
        User::guest("Fay First"),
        User::guest("Sol Second"),
        User::guest("Tom Third")
    );
    let lid = new_listing(&host).await;
    let body = stay(&lid, 30, 33, 2);
    let a = booked(&first, &body).await;
    let a_id = s(&a, "booking_id").to_owned();
    assert_problem(book(&second, &body, None).await, 409, "dates_unavailable").await;

    // Fixture: the hold lapsed a minute ago (booking and nights), no waiting.
    rewind_hold(&a_id, &lid, &days(30, 33), 1).await;
    let a_now = json_of(first.get(&format!("/v1/bookings/{a_id}")).await, 200).await;
    assert_eq!(a_now["status"], "expired", "a lapsed hold reads as expired: {a_now}");
    let expired = roost_e2e::until_indexed(
        || async { json_of(first.get("/v1/me/trips?status=expired").await, 200).await },
        |page: &Value| page["items"][0]["booking_id"] == json!(a_id),
    )
    .await;
    assert_eq!(expired["items"][0]["booking_id"], json!(a_id));
    assert_eq!(json_of(first.get("/v1/me/trips?status=pending_payment").await, 200).await["items"], json!([]));
    // A lapsed hold does not make the nights unavailable to a quote.
    assert_eq!(json_of(quote(&body).await, 200).await["available"], true);

    // The next guest takes the nights over (one overlapping night is enough to need it).
    let b = booked(&second, &stay(&lid, 32, 34, 2)).await;
    let b_id = s(&b, "booking_id").to_owned();
    let nights = night_items(&lid).await;
    for (date, kind, holder) in &nights {
        let want = if *date == day(32) || *date == day(33) { &b_id } else { &a_id };
        assert_eq!((kind.as_str(), holder.as_ref()), ("held", Some(want)), "{date}");
    }
    assert_eq!(stored_unavailable(&lid).await, days(30, 34).into_iter().collect());
    // The taken-over night is not free for a third guest; the lapsed ones are.
    assert_problem(book(&third, &stay(&lid, 31, 33, 2), None).await, 409, "dates_unavailable").await;
    booked(&third, &stay(&lid, 30, 32, 2)).await;
    // The first booking stays expired: it lost its nights.
    assert_eq!(json_of(first.get(&format!("/v1/bookings/{a_id}")).await, 200).await["status"], "expired");
}

#[tokio::test]
async fn thirty_guests_race_for_the_same_nights_and_exactly_one_wins() {
    roost_e2e::needs_stack!();
    let host = User::host("Rae Race").await;
    let guests: Vec<User> = join_all((0..30).map(|i| async move { User::guest(&format!("Racer {i}")).await })).await;
    for round in 0..ROUNDS {
        let lid = new_listing(&host).await;
        let body = stay(&lid, 20, 23, 2);
        let attempts = guests.iter().cloned().enumerate().map(|(i, g)| {
            let body = body.clone();
            async move {
                let r = book(&g, &body, None).await;
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.expect("json"), i)
            }
        });
        let results = join_all(attempts).await;
        let winners: Vec<(&Value, usize)> =
            results.iter().filter(|(s, _, _)| *s == 201).map(|(_, b, i)| (b, *i)).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for (status, problem, _) in results.iter().filter(|(s, _, _)| *s != 201) {
            assert_eq!((*status, &problem["code"]), (409, &json!("dates_unavailable")), "round {round}: {problem}");
        }
        let winner = s(winners[0].0, "booking_id");
        // No night is held by a loser, and the listing has exactly one booking.
        assert_held_by(&lid, winner, &days(20, 23)).await;
        let reservations =
            roost_e2e::until_indexed(|| reservations_of(&host, &lid), |r: &Vec<Value>| !r.is_empty()).await;
        assert_eq!(reservations.len(), 1, "round {round}");
        assert_eq!(reservations[0]["booking_id"], json!(winner));
        // The winner lets go, so no racer reaches the cap on open holds over the rounds.
        cancel(&guests[winners[0].1], winner).await;
    }
}

#[tokio::test]
async fn overlapping_stays_never_both_succeed_and_adjacent_ones_do() {
    roost_e2e::needs_stack!();
    let (host, a, b) = tokio::join!(User::host("Ova Host"), User::guest("Ann Overlap"), User::guest("Ben Overlap"));
    for round in 0..2 * ROUNDS {
        let lid = new_listing(&host).await;
        // [1,4) and [3,6) share night 3.
        let (first, second) = (stay(&lid, 31, 34, 2), stay(&lid, 33, 36, 2));
        let (x, y) = tokio::join!(book(&a, &first, None), book(&b, &second, None));
        let (sx, sy) = (x.status().as_u16(), y.status().as_u16());
        let (bx, by): (Value, Value) = (x.json().await.expect("json"), y.json().await.expect("json"));
        let mut statuses = [sx, sy];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}: {bx} {by}");
        let (winner, nights, loser, who) =
            if sx == 201 { (&bx, days(31, 34), &by, &a) } else { (&by, days(33, 36), &bx, &b) };
        assert_eq!(loser["code"], "dates_unavailable");
        assert_eq!(loser["errors"], json!([{"field": "nights", "message": format!("{} is not available", day(33))}]));
        assert_held_by(&lid, s(winner, "booking_id"), &nights).await;
        cancel(who, s(winner, "booking_id")).await;

        // [1,3) and [3,5) touch but share no night: both succeed, concurrently.
        let lid = new_listing(&host).await;
        let (first, second) = (stay(&lid, 31, 33, 2), stay(&lid, 33, 35, 2));
        let (x, y) = tokio::join!(book(&a, &first, None), book(&b, &second, None));
        let (bx, by) = (json_of(x, 201).await, json_of(y, 201).await);
        let nights = night_items(&lid).await;
        assert_eq!(nights.len(), 4, "round {round}");
        for (date, _, holder) in nights {
            let want = if date < day(33) { &bx } else { &by };
            assert_eq!(holder.as_deref(), Some(s(want, "booking_id")), "{date}");
        }
        assert_eq!(stored_unavailable(&lid).await, days(31, 35).into_iter().collect());
        // Both let go: at most three open holds per guest.
        cancel(&a, s(&bx, "booking_id")).await;
        cancel(&b, s(&by, "booking_id")).await;
    }
}

#[tokio::test]
async fn a_host_blocking_a_night_while_a_guest_books_it_exactly_one_wins() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Bo Blocker"), User::guest("Gus Booker"));
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..2 * ROUNDS {
        let lid = new_listing(&host).await;
        let block = json!({"block": [day(26)]});
        let path = format!("/v1/listings/{lid}/blocked-dates");
        let body = stay(&lid, 25, 28, 2);
        let (blocked, booking) = tokio::join!(host.send(Method::PUT, &path, Some(&block)), book(&guest, &body, None));
        let (sb, sg) = (blocked.status().as_u16(), booking.status().as_u16());
        let (block_body, booking_body): (Value, Value) =
            (blocked.json().await.expect("json"), booking.json().await.expect("json"));
        let nights = night_items(&lid).await;
        match (sb, sg) {
            (200, 409) => {
                assert_eq!(booking_body["code"], "dates_unavailable", "{booking_body}");
                assert_eq!(nights, [(day(26), "blocked".to_owned(), None)], "round {round}");
                assert_eq!(stored_unavailable(&lid).await, [day(26)].into_iter().collect());
                *outcomes.entry("host").or_insert(0usize) += 1;
            }
            (409, 201) => {
                assert_eq!(block_body["code"], "dates_unavailable", "{block_body}");
                assert_held_by(&lid, s(&booking_body, "booking_id"), &days(25, 28)).await;
                cancel(&guest, s(&booking_body, "booking_id")).await;
                *outcomes.entry("guest").or_insert(0usize) += 1;
            }
            other => panic!("round {round}: exactly one must win, got {other:?}: {block_body} {booking_body}"),
        }
    }
    // Every round ended with exactly one winner (which one is up to the race).
    assert_eq!(outcomes.values().sum::<usize>(), 2 * ROUNDS, "{outcomes:?}");
}

#[tokio::test]
async fn a_listing_edited_while_being_booked_never_gives_a_mixed_price() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Eda Editor"), User::guest("Pia Price"));
    let (old, new) = (12345i64, 15000i64);
    // Worked by hand for 3 nights, 25.00 cleaning, 12 % service fee rounded half-up:
    // 370.35 + 25.00 + 44.44 (44.442) = 439.79; 450.00 + 25.00 + 54.00 = 529.00.
    let total = |nightly: i64| match nightly {
        12345 => 43979,
        15000 => 52900,
        other => panic!("a nightly price of {other} was never set"),
    };
    let mut seen = std::collections::BTreeMap::new();
    for round in 0..2 * ROUNDS {
        let lid = new_listing(&host).await;
        let patch = json!({"nightly_price": {"amount": new, "currency": "EUR"}});
        let body = stay(&lid, 45, 48, 2);
        let path = format!("/v1/listings/{lid}");
        let (edited, booking) = tokio::join!(host.send(Method::PATCH, &path, Some(&patch)), book(&guest, &body, None));
        assert_eq!(edited.status(), 200, "round {round}: the edit never fails");
        let status = booking.status().as_u16();
        let b: Value = booking.json().await.expect("json");
        let first_price = b["price"]["nightly"][0]["amount"].as_i64();
        *seen.entry((status, first_price)).or_insert(0usize) += 1;
        let b = match status {
            201 => b,
            409 => {
                // Priced before the edit, checked after it: re-quote and book again.
                assert_eq!(b["code"], "listing_changed", "round {round}: {b}");
                assert!(night_items(&lid).await.is_empty(), "a cancelled booking holds nothing");
                let q = json_of(quote(&body).await, 200).await;
                assert_eq!(q["price"]["total"], total(new));
                booked(&guest, &body).await
            }
            other => panic!("round {round}: {other} {b}"),
        };
        let nightly: HashSet<i64> = b["price"]["nightly"]
            .as_array()
            .expect("nightly")
            .iter()
            .map(|n| n["amount"].as_i64().expect("amount"))
            .collect();
        assert_eq!(nightly.len(), 1, "round {round}: one price for every night: {b}");
        let price = *nightly.iter().next().expect("price");
        assert!(price == old || price == new, "round {round}: {price}");
        assert_eq!(b["price"]["total"], total(price), "round {round}: totals from the same price");
        // Snapshotted: a later edit changes nothing on the booking.
        let again = json!({"nightly_price": {"amount": 99900, "currency": "EUR"}});
        assert_eq!(host.send(Method::PATCH, &path, Some(&again)).await.status(), 200);
        let read = json_of(guest.get(&format!("/v1/bookings/{}", s(&b, "booking_id"))).await, 200).await;
        assert_eq!(read["price"], b["price"]);
        cancel(&guest, s(&b, "booking_id")).await;
    }
    // What each round can show: booked at the old or the new price, or refused (a problem
    // has no price) and booked again after a re-quote; never anything else.
    let possible = [(201, Some(old)), (201, Some(new)), (409, None)];
    assert!(seen.keys().all(|k| possible.contains(k)), "edit vs book outcomes (status, first nightly price): {seen:?}");
    assert_eq!(seen.values().sum::<usize>(), 2 * ROUNDS, "{seen:?}");
}

#[tokio::test]
async fn five_concurrent_requests_with_one_key_make_one_booking() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Kai Keys"), User::guest("Kim Keys"));
    for round in 0..ROUNDS {
        let lid = new_listing(&host).await;
        let key = unique("race-key-");
        let body = stay(&lid, 35, 38, 2);
        let attempts = (0..5).map(|_| {
            let (guest, body, key) = (guest.clone(), body.clone(), key.clone());
            async move {
                let r = book(&guest, &body, Some(&key)).await;
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.expect("json"))
            }
        });
        let results = join_all(attempts).await;
        let ids: HashSet<&str> = results
            .iter()
            .map(|(status, body)| {
                assert!((200..300).contains(status), "round {round}: every answer is the booking: {status} {body}");
                s(body, "booking_id")
            })
            .collect();
        assert_eq!(ids.len(), 1, "round {round}: one booking id in every answer: {results:?}");
        let id = ids.into_iter().next().expect("id");
        // Reservations are listed from an index the strict stack lets lag: give it time to show
        // the booking (a second one would show by then too).
        let reservations =
            roost_e2e::until_indexed(|| reservations_of(&host, &lid), |r: &Vec<Value>| !r.is_empty()).await;
        assert_eq!(reservations.len(), 1, "round {round}: one booking");
        assert_eq!(reservations[0]["booking_id"], json!(id));
        assert_held_by(&lid, id, &days(35, 38)).await;
        cancel(&guest, id).await;
    }
}

#[tokio::test]
async fn reads_cost_one_request_and_booking_two() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Cy Count"), User::guest("Cal Count"));
    let lid = new_listing(&host).await;
    // (who, method, path, body, request id)
    let call = |user: Option<&User>, method: Method, path: &str, body: Option<Value>| {
        let id = unique("count-");
        let mut request = client().request(method, Stack::get().url(path)).header("x-request-id", &id);
        if let Some(u) = user {
            request = request.header("authorization", u.bearer());
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        async move {
            let response = request.send().await.expect("api");
            (id, json_of(response, 200).await.is_object())
        }
    };
    let book_id = unique("count-book-");
    // Past the strict stack's conflict window (docs/local-runtime.md): a transaction touching an
    // item written a moment ago may be cancelled with TransactionConflict, as on AWS, and its
    // retry would be a legitimate third request. The count is about the booking's own shape.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let response = client()
        .post(Stack::get().url("/v1/bookings"))
        .header("authorization", guest.bearer())
        .header("x-request-id", &book_id)
        .json(&stay(&lid, 80, 82, 2))
        .send()
        .await
        .expect("api");
    let bid = s(&json_of(response, 201).await, "booking_id").to_owned();
    assert_eq!(ddb_requests(FUNCTION, &book_id).await, 2, "BatchGetItem + TransactWriteItems");
    let (quote_id, _) = call(None, Method::POST, "/v1/quotes", Some(stay(&lid, 90, 92, 2))).await;
    assert_eq!(ddb_requests(FUNCTION, &quote_id).await, 2, "GetItem + Query, sent concurrently");
    for (user, path) in [
        (&guest, format!("/v1/bookings/{bid}")),
        (&host, format!("/v1/bookings/{bid}")),
        (&guest, "/v1/me/trips?status=pending_payment".to_owned()),
        (&host, "/v1/me/reservations".to_owned()),
        (&host, format!("/v1/me/reservations?listing_id={lid}")),
    ] {
        let (id, _) = call(Some(user), Method::GET, &path, None).await;
        assert_eq!(ddb_requests(FUNCTION, &id).await, 1, "{path}");
    }
}

#[tokio::test]
async fn a_ninety_night_stay_is_one_booking_and_ninety_one_is_refused() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Len Long"), User::guest("Lou Long"));
    let body = NewListing { min_nights: Some(1), max_nights: Some(90), ..listing_body(&unique("Longville")) };
    let lid = host.api().new_listing(&body).await;
    let key = unique("long-");
    let long = stay(&lid, 100, 190, 1);
    // 90 nights + booking + listing check + search item + idempotency record: one transaction.
    let b = json_of(book(&guest, &long, Some(&key)).await, 201).await;
    assert_eq!(b["nights"], 90);
    assert_eq!(b["price"]["nightly"].as_array().expect("nightly").len(), 90);
    // 90 x 123.45 = 11110.50; 12 % = 1333.26; + 25.00 cleaning.
    assert_eq!((&b["price"]["subtotal"], &b["price"]["service_fee"]), (&json!(1_111_050), &json!(133_326)));
    assert_eq!(b["price"]["total"], 1_111_050 + 133_326 + 2_500);
    assert_held_by(&lid, s(&b, "booking_id"), &days(100, 190)).await;
    // Its stored response (all 90 lines) comes back for the same key.
    assert_eq!(json_of(book(&guest, &long, Some(&key)).await, 201).await, b);
    let problem = assert_problem(book(&guest, &stay(&lid, 200, 291, 1), None).await, 422, "stay_too_long").await;
    assert_eq!(problem["errors"][0]["field"], "check_out");
}

/// The guest's hold slot items (`GUEST#<id>` / `HOLD_SLOT#<n>`), straight from the table: the
/// booking each names.
async fn hold_slots(guest_id: &str) -> BTreeSet<String> {
    let out = dynamodb(
        "Query",
        json!({
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :slot)",
            "ExpressionAttributeValues": {":pk": {"S": format!("GUEST#{guest_id}")}, ":slot": {"S": "HOLD_SLOT#"}},
            "ConsistentRead": true
        }),
    )
    .await;
    out["Items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["booking_id"]["S"].as_str().expect("booking_id").to_owned())
        .collect()
}

#[tokio::test]
async fn six_concurrent_bookings_by_one_guest_leave_exactly_three_open_holds() {
    roost_e2e::needs_stack!();
    let host = User::host("Cap Host").await;
    for round in 0..ROUNDS {
        let guest = User::guest(&format!("Cap Guest {round}")).await;
        let (l1, l2) = tokio::join!(new_listing(&host), new_listing(&host));
        // Six stays that share no night: only the cap can refuse any of them.
        let stays: Vec<Value> = [(&l1, 20), (&l1, 22), (&l1, 24), (&l2, 20), (&l2, 22), (&l2, 24)]
            .into_iter()
            .map(|(lid, from)| stay(lid, from, from + 2, 2))
            .collect();
        let results = join_all(stays.iter().cloned().map(|body| {
            let guest = guest.clone();
            async move {
                let r = book(&guest, &body, None).await;
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.expect("json"))
            }
        }))
        .await;
        let winners: BTreeSet<String> =
            results.iter().filter(|(s, _)| *s == 201).map(|(_, b)| s(b, "booking_id").to_owned()).collect();
        assert_eq!(winners.len(), 3, "round {round}: exactly three succeed: {results:?}");
        for (status, problem) in results.iter().filter(|(s, _)| *s != 201) {
            assert_eq!((*status, &problem["code"]), (409, &json!("hold_limit_reached")), "round {round}: {problem}");
        }
        // The table agrees: three slots, one per winner; the losers hold no night.
        assert_eq!(hold_slots(&guest.user_id).await, winners, "round {round}");
        let mut held = 0;
        for lid in [&l1, &l2] {
            for (date, kind, holder) in night_items(lid).await {
                assert_eq!(kind, "held", "{date}");
                assert!(
                    holder.as_ref().is_some_and(|h| winners.contains(h)),
                    "round {round}: {date} held by {holder:?}"
                );
                held += 1;
            }
        }
        assert_eq!(held, 6, "round {round}: two nights for each of three winners");
        let pending = json_of(guest.get("/v1/me/trips?status=pending_payment").await, 200).await;
        assert_eq!(pending["items"].as_array().expect("items").len(), 3, "round {round}");
        // A quote takes no slot: the guest may still quote a stay they cannot book now.
        let loser = results.iter().position(|(s, _)| *s != 201).expect("a loser");
        assert_eq!(json_of(quote(&stays[loser]).await, 200).await["available"], true);
        let again = assert_problem(book(&guest, &stays[loser], None).await, 409, "hold_limit_reached").await;
        assert!(s(&again, "detail").contains("waiting for payment"), "{again}");
        // Cancelling one frees its slot for the next booking, and only one. Every slot still
        // names a live hold, so the booking reads the slots' bookings to find the cancelled one:
        // BatchGetItem (slots) + BatchGetItem (their bookings) + TransactWriteItems.
        let first = winners.iter().next().expect("winner").clone();
        cancel(&guest, &first).await;
        past_conflict_window().await;
        let (request_id, response) = book_counted(&guest, &stays[loser]).await;
        let replaced = json_of(response, 201).await;
        assert_eq!(ddb_requests(FUNCTION, &request_id).await, 3, "round {round}: freed by its booking's status");
        let next = results.iter().rposition(|(s, _)| *s != 201).expect("another loser");
        assert_ne!(next, loser);
        assert_problem(book(&guest, &stays[next], None).await, 409, "hold_limit_reached").await;
        let mut now_open = winners.clone();
        now_open.remove(&first);
        now_open.insert(s(&replaced, "booking_id").to_owned());
        assert_eq!(hold_slots(&guest.user_id).await, now_open, "round {round}: the cancelled booking's slot was taken");
        if round == 0 {
            // A hold that lapsed frees its slot even before the sweep stores `expired`: the
            // slot's own `hold_expires_at` says so (rewound with the booking and its nights), so
            // no booking is read: BatchGetItem + TransactWriteItems.
            let lapsed = now_open.iter().next().expect("open").clone();
            let b = json_of(guest.get(&format!("/v1/bookings/{lapsed}")).await, 200).await;
            let (lid, from) = (s(&b, "listing_id"), s(&b, "check_in"));
            let first_night: jiff::civil::Date = from.parse().expect("date");
            let nights = [first_night.to_string(), first_night.tomorrow().expect("date").to_string()];
            let (_, lapsed_slot) = hold_slot_of(&lapsed).await;
            rewind_hold(&lapsed, lid, &nights, 1).await;
            past_conflict_window().await;
            let (request_id, response) = book_counted(&guest, &stays[next]).await;
            let taker = json_of(response, 201).await;
            assert_eq!(ddb_requests(FUNCTION, &request_id).await, 2, "freed by the slot's lapsed hold");
            assert_eq!(hold_slot_of(s(&taker, "booking_id")).await.1, lapsed_slot, "the lapsed hold's slot");
        }
    }
}

/// The calendar's edges through HTTP: every answer is a 4xx naming the problem or the right
/// answer, on the quote, the booking, the availability calendar and the cancellation preview;
/// never a 500 (a check-in of 9999-12-30 answered 500: its check-out instant does not exist).
#[tokio::test]
async fn dates_at_the_edges_of_the_calendar_are_4xx_or_right_answers_never_500() {
    roost_e2e::needs_stack!();
    // Two guests: each books at most two stays here, below the cap of three open holds, so a
    // case added later cannot meet `hold_limit_reached`.
    let (host, guest, dst_guest) =
        tokio::join!(User::host("Edna Edge"), User::guest("Ed Edge"), User::guest("Dora Daylight"));
    let body = NewListing {
        min_nights: Some(1),
        max_nights: Some(90),
        // 01:30 does not exist on the spring-forward day in Lisbon and happens twice in autumn.
        check_out_time: Some("01:30".into()),
        ..listing_body(&unique("Edgeville"))
    };
    let lid = host.api().new_listing(&body).await;
    let tz = jiff::tz::TimeZone::get(TZ).expect("tz");
    let today = roost_e2e::fixtures::today_in(TZ);
    let now = jiff::Timestamp::now();
    let plus = |d: jiff::civil::Date, n: i64| d.checked_add(jiff::Span::new().days(n)).expect("date");
    let last = today.checked_add(jiff::Span::new().months(18)).expect("horizon");
    let at = |a: &str, b: &str| json!({"listing_id": lid, "check_in": a, "check_out": b, "guests": 1});
    let (today_s, last_1, last_3) = (today.to_string(), plus(last, 1).to_string(), plus(last, 3).to_string());
    let refused = [
        ("0000-01-01", "0000-01-02", 422, "check_in_in_past"),
        ("0000-02-29", "0000-03-01", 422, "check_in_in_past"),
        ("-9999-01-01", "-9999-01-02", 400, "validation_failed"),
        ("-009999-01-01", "-009999-01-02", 400, "validation_failed"),
        ("9999-12-30", "9999-12-31", 422, "check_in_too_far_ahead"),
        ("9999-12-31", "9999-12-31", 422, "check_out_not_after_check_in"),
        ("9999-12-31", "10000-01-01", 400, "validation_failed"),
        ("2027-02-29", "2027-03-02", 400, "validation_failed"),
        (today_s.as_str(), "9999-12-31", 422, "stay_too_long"),
        (last_1.as_str(), last_3.as_str(), 422, "check_in_too_far_ahead"),
    ];
    for (a, b, status, code) in refused {
        let problem = assert_problem(quote(&at(a, b)).await, status, code).await;
        if status == 422 {
            let field = if code.starts_with("check_in") { "check_in" } else { "check_out" };
            assert_eq!(problem["errors"][0]["field"], field, "{a}..{b}: {problem}");
        }
        assert_problem(book(&guest, &at(a, b), Some(&unique("edge-"))).await, status, code).await;
    }
    assert!(night_items(&lid).await.is_empty(), "no refused request wrote a night");
    assert!(hold_slots(&guest.user_id).await.is_empty(), "no refused request took a hold slot");
    // The horizon's last day is open.
    let q = json_of(quote(&at(&last.to_string(), &plus(last, 1).to_string())).await, 200).await;
    assert_eq!((&q["nights"], &q["available"]), (&json!(1), &json!(true)));

    // The availability calendar (listings) at the same edges: an answer or a 400, never a 500.
    let calendar = |from: &str, to: Option<&str>| {
        let path = match to {
            Some(to) => format!("/v1/listings/{lid}/availability?from={from}&to={to}"),
            None => format!("/v1/listings/{lid}/availability?from={from}"),
        };
        async move { client().get(Stack::get().url(&path)).send().await.expect("api") }
    };
    let edge = json_of(calendar("9999-12-30", Some("9999-12-31")).await, 200).await;
    assert_eq!(edge["nights"][0]["date"], "9999-12-30");
    let ancient = json_of(calendar("0000-01-01", Some("0000-01-02")).await, 200).await;
    assert_eq!(ancient["nights"][0]["date"], "0000-01-01");
    let no_default_to = assert_problem(calendar("9999-12-31", None).await, 400, "validation_failed").await;
    assert_eq!(no_default_to["errors"][0]["field"], "to", "{no_default_to}");
    assert_problem(calendar("2027-02-29", Some("2027-03-02")).await, 400, "validation_failed").await;
    assert_problem(calendar("-9999-01-01", Some("-9999-01-02")).await, 400, "validation_failed").await;

    // The next leap day: an ordinary night, if the horizon reaches it.
    let leap = (today.year()..=today.year() + 4)
        .filter_map(|y| jiff::civil::Date::new(y, 2, 29).ok())
        .find(|d| *d > today)
        .expect("a leap day within four years");
    let (a, b) = (plus(leap, -1).to_string(), plus(leap, 1).to_string());
    let mut booked_ids = Vec::new();
    if leap <= last {
        let q = json_of(quote(&at(&a, &b)).await, 200).await;
        assert_eq!(q["nights"], 2);
        assert_eq!(q["price"]["nightly"][1]["date"], json!(leap.to_string()));
        let booking = json_of(book(&guest, &at(&a, &b), None).await, 201).await;
        assert_eq!(booking["nights"], 2);
        booked_ids.push((s(&booking, "booking_id").to_owned(), &guest));
        let cal = json_of(calendar(&a, Some(&b)).await, 200).await;
        let dates: Vec<&str> = cal["nights"].as_array().expect("nights").iter().map(|n| s(n, "date")).collect();
        assert_eq!(dates, [a.as_str(), leap.to_string().as_str()]);
    } else {
        assert_problem(quote(&at(&a, &b)).await, 422, "check_in_too_far_ahead").await;
        assert_problem(book(&guest, &at(&a, &b), None).await, 422, "check_in_too_far_ahead").await;
    }

    // The next two DST changes in the listing's zone: a stay whose check-out day is the change
    // day, checking out at 01:30 local. Lisbon changes at 01:00 UTC: in spring 01:30 does not
    // exist (it is 02:30 WEST, 01:30 UTC); in autumn it happens twice (the first, 00:30 UTC).
    // On a change day before 01:00 UTC the next change is today, and a stay checking out today
    // checked in yesterday (422 `check_in_in_past`): only changes from tomorrow on.
    let changes = tz.following(now).map(|c| {
        let day = c.timestamp().to_zoned(tz.clone()).date();
        (c, day)
    });
    for (change, day_of_change) in changes.filter(|(_, d)| plus(*d, -1) >= today).take(2) {
        let spring = change.dst().is_dst();
        let (a, b) = (plus(day_of_change, -1).to_string(), day_of_change.to_string());
        let q = json_of(quote(&at(&a, &b)).await, 200).await;
        assert_eq!(q["nights"], 1, "{b}");
        let booking = json_of(book(&dst_guest, &at(&a, &b), None).await, 201).await;
        let id = s(&booking, "booking_id").to_owned();
        let stored = dynamodb(
            "GetItem",
            json!({"Key": {"PK": {"S": format!("BOOKING#{id}")}, "SK": {"S": "BOOKING"}}, "ConsistentRead": true}),
        )
        .await;
        let expected = format!("{b}T{}:30:00Z", if spring { "01" } else { "00" });
        assert_eq!(stored["Item"]["check_out_at"]["S"], json!(expected), "spring: {spring}");
        let cal = json_of(calendar(&a, Some(&plus(day_of_change, 1).to_string())).await, 200).await;
        assert_eq!(cal["nights"].as_array().expect("nights").len(), 2);
        booked_ids.push((id, &dst_guest));
    }

    // The cancellation preview of each of them (unpaid: nothing back), for guest and host.
    for (id, its_guest) in &booked_ids {
        for user in [*its_guest, &host] {
            let p = json_of(user.get(&format!("/v1/bookings/{id}/cancellation")).await, 200).await;
            assert_eq!(p["refund"]["amount"], 0, "{p}");
        }
    }
}

/// A host sees that a guest's card was declined, never why: `payment` is `{status}` on the
/// host's booking and reservations; the guest still sees their own failure code.
#[tokio::test]
async fn a_host_sees_the_payment_status_but_not_the_decline_reason() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Hal Host"), User::guest("Gwen Guest"));
    let lid = new_listing(&host).await;
    let b = booked(&guest, &stay(&lid, 40, 42, 2)).await;
    let bid = s(&b, "booking_id").to_owned();
    // The failure as payment-events records it from `payment_intent.payment_failed` (the real
    // card path is in tests/tests/e2e/lifecycle.rs): a decline code on the booking.
    dynamodb(
        "UpdateItem",
        json!({
            "Key": {"PK": {"S": format!("BOOKING#{bid}")}, "SK": {"S": "BOOKING"}},
            "UpdateExpression": "SET payment = :p",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeValues": {":p": {"M": {
                "status": {"S": "failed"}, "payment_intent_id": {"S": "pi_edge_1"}, "failure": {"S": "stolen_card"}
            }}}
        }),
    )
    .await;
    let path = format!("/v1/bookings/{bid}");
    let mine = json_of(guest.get(&path).await, 200).await;
    assert_eq!(
        mine["payment"],
        json!({"status": "failed", "payment_intent_id": "pi_edge_1", "failure": "stolen_card"})
    );
    let trips = roost_e2e::until_indexed(
        || async { json_of(guest.get("/v1/me/trips").await, 200).await },
        |trips| trips["items"][0]["payment"] == mine["payment"],
    )
    .await;
    assert_eq!(trips["items"][0]["payment"], mine["payment"]);
    let theirs = json_of(host.get(&path).await, 200).await;
    let listed = reservations_of(&host, &lid).await;
    for view in [&theirs, &listed[0]] {
        assert_eq!(view["payment"], json!({"status": "failed"}), "{view}");
        assert!(!view.to_string().contains("stolen_card") && !view.to_string().contains("pi_edge_1"), "{view}");
    }
    // The host's cancellation preview: the amount the guest would get back (the host's payout
    // shrinks by it; nothing was paid here), never the card's details.
    let preview = json_of(host.get(&format!("{path}/cancellation")).await, 200).await;
    assert_eq!(preview["refund"], json!({"amount": 0, "currency": "EUR"}), "{preview}");
    let fields: BTreeSet<&str> = preview.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(fields, BTreeSet::from(["policy", "reason", "refund"]), "{preview}");
    assert!(!preview.to_string().contains("stolen_card") && !preview.to_string().contains("pi_edge_1"), "{preview}");
    // A host's cancel answers with the host's view too: the refund due, not the card's details.
    let cancelled = cancel(&host, &bid).await;
    assert_eq!(cancelled["payment"], json!({"status": "failed"}));
    assert_eq!(cancelled["refund"], json!({"amount": 0, "currency": "EUR", "status": "none"}), "{cancelled}");
    let text = cancelled.to_string();
    assert!(!text.contains("stolen_card") && !text.contains("pi_edge_1"), "{text}");
    assert_eq!(json_of(guest.get(&path).await, 200).await["payment"]["failure"], "stolen_card");
}
