//! Reviews end to end (issue 9, reviews part): a guest reviews a finished stay once, within 14
//! days of its check-out instant; the host answers once; a listing's reviews read newest first,
//! page by page; the listing's `rating {average, count}` is exact after sequential and 8
//! concurrent reviews, checked through the API and on the stored counters.
//!
//! Time is never waited for. A stay is finished with the **finished-stay fixture** below, which
//! moves the stored booking to where a paid stay whose check-out passed would be; everything
//! else (booking, reviewing, answering, reading) goes through the HTTP API.

use std::collections::BTreeSet;

use roost_e2e::api::{Address, money};
use roost_e2e::fixtures::{self, booking_key, day_in};
use roost_e2e::{
    NewListing, NewReview, Stack, Stay, User, anonymous, assert_problem, client, ddb_requests, dynamodb, join_all,
    json_of, s, unique,
};

const FUNCTION: &str = "ReviewsFunction";
use serde_json::{Value, json};

/// Check-out at 11:00 in Auckland: the window is computed from the stored `check_out_at`.
const TZ: &str = "Pacific/Auckland";

fn listing_body(city: &str) -> NewListing {
    NewListing {
        title: "Review cottage".into(),
        description: "Reviewed.".into(),
        property_type: "cabin".into(),
        address: Address {
            line1: "2 Bay Road".into(),
            city: city.into(),
            region: Some("Auckland".into()),
            country: "NZ".into(),
            postal_code: None,
        },
        timezone: TZ.into(),
        nightly_price: money(10_000, "NZD"),
        cleaning_fee: None,
        min_nights: Some(1),
        max_nights: Some(7),
        cancellation_policy: "flexible".into(),
        ..NewListing::in_city(city)
    }
}

async fn new_listing(host: &User) -> String {
    host.api().new_listing(&listing_body(&unique("Reviewville"))).await
}

/// The date `days` after today in the listing's time zone.
fn day(days: i64) -> String {
    day_in(TZ, days)
}

/// Books the one night `from` days from today: returns the booking id.
async fn book(guest: &User, listing_id: &str, from: i64) -> String {
    let b = guest.api().booked(&Stay::new(listing_id, day(from), day(from + 1), 1)).await;
    s(&b, "booking_id").to_owned()
}

/// A whole-second RFC 3339 UTC instant `minutes` ago, the stored form of `check_out_at`.
fn minutes_ago(minutes: i64) -> String {
    fixtures::minutes_ago(minutes).to_string()
}

const DAY_MINUTES: i64 = 24 * 60;

/// **Finished-stay fixture**: the booking item (`BOOKING#<id>` / `BOOKING`) as a paid stay whose
/// check-out instant was `check_out_at` (in the past) leaves it: `status = confirmed`,
/// `payment.status = succeeded`, `check_out_at` moved, with one `UpdateItem` (conditioned on the
/// item existing). Nothing else changes: `reviews` reads the effective status (`completed`,
/// since `check_out_at` passed) exactly as it would after a real payment and a real stay.
pub(crate) async fn finish_stay(booking_id: &str, check_out_at: &str) {
    dynamodb(
        "UpdateItem",
        json!({
            "Key": booking_key(booking_id),
            "UpdateExpression": "SET #s = :confirmed, check_out_at = :out, #p.#s = :succeeded",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": {"#s": "status", "#p": "payment"},
            "ExpressionAttributeValues": {":confirmed": {"S": "confirmed"}, ":out": {"S": check_out_at},
                                          ":succeeded": {"S": "succeeded"}}
        }),
    )
    .await;
}

/// **Paid-stay fixture**: as `finish_stay` but `check_out_at` left where booking put it (the
/// future): a confirmed stay not yet over.
pub(crate) async fn pay(booking_id: &str) {
    dynamodb(
        "UpdateItem",
        json!({
            "Key": booking_key(booking_id),
            "UpdateExpression": "SET #s = :confirmed, #p.#s = :succeeded",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": {"#s": "status", "#p": "payment"},
            "ExpressionAttributeValues": {":confirmed": {"S": "confirmed"}, ":succeeded": {"S": "succeeded"}}
        }),
    )
    .await;
}

async fn review(user: &User, booking_id: &str, rating: u8, comment: &str) -> reqwest::Response {
    user.api().review(booking_id, &NewReview { rating, comment: comment.into() }).await
}

async fn respond(user: &User, review_id: &str, comment: &str) -> reqwest::Response {
    user.post(&format!("/v1/reviews/{review_id}/response"), Some(&json!({"comment": comment}))).await
}

async fn reviews_page(listing_id: &str, query: &str) -> reqwest::Response {
    anonymous().reviews(listing_id, query).await
}

/// Every review of the listing, walking the pages (`limit` each), newest first.
async fn all_reviews(listing_id: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut query = format!("?limit={limit}");
    loop {
        let page = json_of(reviews_page(listing_id, &query).await, 200).await;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= limit as usize);
        out.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("?limit={limit}&cursor={c}"),
            None => return out,
        }
    }
}

async fn listing_rating(listing_id: &str) -> Value {
    let l = json_of(anonymous().listing(listing_id).await, 200).await;
    l["rating"].clone()
}

/// The rating counters as stored on the listing item and on its search item.
async fn stored_counters(listing_id: &str) -> [(u64, u64); 2] {
    let read = |sk: &'static str| {
        let listing_id = listing_id.to_owned();
        async move {
            let key = json!({"PK": {"S": format!("LISTING#{listing_id}")}, "SK": {"S": sk}});
            let item = dynamodb("GetItem", json!({"Key": key, "ConsistentRead": true})).await["Item"].clone();
            let n = |a: &str| item[a]["N"].as_str().map_or(0, |n| n.parse().expect("number"));
            (n("rating_count"), n("rating_total"))
        }
    };
    [read("LISTING").await, read("SEARCH").await]
}

#[tokio::test]
async fn a_guest_reviews_a_finished_stay_once_and_the_host_answers_once() {
    roost_e2e::needs_stack!();
    let (host, guest, stranger) = tokio::join!(User::host("Rhea Host"), User::guest("Gus Guest"), User::guest("Stan"));
    let listing_id = new_listing(&host).await;
    let booking_id = book(&guest, &listing_id, 3).await;

    // Unpaid, then paid but before check-out: not completed.
    assert_problem(review(&guest, &booking_id, 5, "Too early").await, 422, "stay_not_completed").await;
    pay(&booking_id).await;
    assert_problem(review(&guest, &booking_id, 5, "Too early").await, 422, "stay_not_completed").await;

    finish_stay(&booking_id, &minutes_ago(60)).await;
    // Anyone but its guest: 404, the host of the listing included.
    assert_problem(review(&stranger, &booking_id, 1, "Never stayed").await, 404, "not_found").await;
    assert_problem(review(&host, &booking_id, 5, "My own place").await, 404, "not_found").await;
    let bad =
        guest.post(&format!("/v1/bookings/{booking_id}/review"), Some(&json!({"rating": 6, "comment": ""}))).await;
    let bad = assert_problem(bad, 400, "validation_failed").await;
    let fields: BTreeSet<&str> =
        bad["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, BTreeSet::from(["rating", "comment"]));
    assert_eq!(listing_rating(&listing_id).await, json!({"average": null, "count": 0}), "nothing written");

    let response = review(&guest, &booking_id, 4, "Lovely view, thin walls.").await;
    let text_location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let r = json_of(response, 201).await;
    let review_id = s(&r, "review_id").to_owned();
    assert!(review_id.starts_with("rev_"), "{r}");
    assert_eq!(text_location.as_deref(), Some(format!("/v1/reviews/{review_id}").as_str()));
    assert_eq!(r["booking_id"], booking_id.as_str());
    assert_eq!(r["listing_id"], listing_id.as_str());
    assert_eq!(r["author"], json!({"user_id": guest.user_id, "name": "Gus Guest"}));
    assert_eq!(r["rating"], 4);
    assert_eq!(r["comment"], "Lovely view, thin walls.");
    assert!(r.get("response").is_none(), "{r}");
    assert!(!r.to_string().contains(&guest.email), "never the e-mail: {r}");

    // Once: a second review, even with another rating, is refused and counts nothing.
    assert_problem(review(&guest, &booking_id, 1, "Again").await, 409, "already_reviewed").await;
    assert_eq!(listing_rating(&listing_id).await, json!({"average": 4.0, "count": 1}));
    assert_eq!(stored_counters(&listing_id).await, [(1, 4), (1, 4)]);

    let listed = roost_e2e::until_indexed(|| all_reviews(&listing_id, 20), |l| !l.is_empty()).await;
    assert_eq!(listed, vec![r.clone()], "the public list shows the review as posted");
    assert!(!serde_json::to_string(&listed).expect("json").contains(&guest.email));

    // Only the host answers, once; to anyone else the review does not exist.
    assert_problem(respond(&stranger, &review_id, "Hi").await, 404, "not_found").await;
    assert_problem(respond(&guest, &review_id, "Me too").await, 404, "not_found").await;
    assert_problem(respond(&host, "rev_01jq3zr8x0m5k2d9w7v4t6y1ab", "Who?").await, 404, "not_found").await;
    assert_problem(respond(&host, &review_id, "  ").await, 400, "validation_failed").await;
    let answered = json_of(respond(&host, &review_id, "Thanks, we fixed the walls!").await, 200).await;
    assert_eq!(answered["response"]["comment"], "Thanks, we fixed the walls!");
    assert!(answered["response"]["created_at"].is_string());
    assert_eq!(answered["rating"], 4);
    assert_problem(respond(&host, &review_id, "Twice").await, 409, "already_responded").await;
    let listed = roost_e2e::until_indexed(
        || all_reviews(&listing_id, 20),
        |listed| listed.first().is_some_and(|r| r["response"] == answered["response"]),
    )
    .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["response"], answered["response"], "the answer shows on the listing's reviews");

    // Two racing reviews of one booking: one review, one count.
    let other = book(&guest, &listing_id, 5).await;
    finish_stay(&other, &minutes_ago(30)).await;
    let guest = std::sync::Arc::new(guest);
    let racers = (0..2).map(|i| {
        let (guest, other) = (guest.clone(), other.clone());
        async move { review(&guest, &other, 2 + i, "Race").await.status().as_u16() }
    });
    let mut statuses = join_all(racers).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    let [listing, search] = stored_counters(&listing_id).await;
    assert_eq!(listing.0, 2);
    assert_eq!(listing, search);
}

#[tokio::test]
async fn the_window_closes_fourteen_days_after_check_out() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Win Host"), User::guest("Wendy"));
    let listing_id = new_listing(&host).await;
    let late = book(&guest, &listing_id, 2).await;
    let in_time = book(&guest, &listing_id, 4).await;
    finish_stay(&late, &minutes_ago(14 * DAY_MINUTES + 1)).await;
    finish_stay(&in_time, &minutes_ago(14 * DAY_MINUTES - 5)).await;
    assert_problem(review(&guest, &late, 5, "Late").await, 422, "review_window_closed").await;
    // Past the strict stack's conflict window: the fixture's write must not cancel the counted
    // review's transaction (its retry would add a request that is not the review's cost).
    let window = Stack::get().rest["strictness"]["transaction_conflict"]["window_ms"].as_u64().unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(window + 100)).await;
    let request_id = unique("review-in-time");
    let posted = client()
        .post(Stack::get().url(&format!("/v1/bookings/{in_time}/review")))
        .header("authorization", guest.bearer())
        .header("x-request-id", &request_id)
        .json(&json!({"rating": 5, "comment": "Just in time"}))
        .send()
        .await
        .expect("api");
    let r = json_of(posted, 201).await;
    assert_eq!(
        (&r["booking_id"], &r["rating"], &r["comment"]),
        (&json!(in_time), &json!(5), &json!("Just in time")),
        "{r}"
    );
    assert!(s(&r, "review_id").starts_with("rev_"), "{r}");
    assert_eq!(ddb_requests(FUNCTION, &request_id).await, 2, "GetItem (booking) + TransactWriteItems");
    assert_eq!(listing_rating(&listing_id).await, json!({"average": 5.0, "count": 1}));
}

#[tokio::test]
async fn average_and_count_stay_exact_under_concurrent_reviews() {
    roost_e2e::needs_stack!();
    let (host, a, b) = tokio::join!(User::host("Cora Host"), User::guest("Ana"), User::guest("Ben"));
    let listing_id = new_listing(&host).await;
    let guests = [std::sync::Arc::new(a), std::sync::Arc::new(b)];
    // 3 sequential reviews, then 8 at once: 11 one-night stays on distinct nights.
    let mut bookings = Vec::new();
    for n in 0..11i64 {
        let guest = guests[(n % 2) as usize].clone();
        let id = book(&guest, &listing_id, 2 + n).await;
        finish_stay(&id, &minutes_ago(60 + n)).await;
        bookings.push((guest, id));
    }
    let ratings: Vec<u8> = vec![5, 3, 4, 1, 2, 5, 5, 4, 3, 2, 4];
    for ((guest, id), rating) in bookings.iter().zip(&ratings).take(3) {
        json_of(review(guest, id, *rating, "Sequential").await, 201).await;
    }
    let concurrent = bookings.iter().zip(&ratings).skip(3).map(|((guest, id), rating)| {
        let (guest, id, rating) = (guest.clone(), id.clone(), *rating);
        async move { review(&guest, &id, rating, "Concurrent").await.status().as_u16() }
    });
    let statuses = join_all(concurrent).await;
    assert_eq!(statuses, vec![201; 8]);

    // Worked by hand: 5+3+4+1+2+5+5+4+3+2+4 = 38 over 11 reviews, 3.4545... shown as 3.45.
    let (total, count) = (38u64, 11u64);
    assert_eq!(ratings.iter().map(|r| u64::from(*r)).sum::<u64>(), total, "the ratings above");
    assert_eq!(stored_counters(&listing_id).await, [(count, total), (count, total)], "no count lost");
    assert_eq!(listing_rating(&listing_id).await, json!({"average": 3.45, "count": count}));

    // Newest first, paged 4 at a time, each review once (GSI1 may lag the writes a moment).
    let listed = roost_e2e::until_indexed(|| all_reviews(&listing_id, 4), |l| l.len() >= 11).await;
    assert_eq!(listed.len(), 11);
    let ids: Vec<&str> = listed.iter().map(|r| s(r, "review_id")).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|x, y| y.cmp(x));
    sorted.dedup();
    assert_eq!(ids, sorted, "newest first, no duplicates");
    let listed_total: u64 = listed.iter().map(|r| r["rating"].as_u64().expect("rating")).sum();
    assert_eq!(listed_total, total);

    // One Query per page.
    let request_id = unique("reviews-page");
    let page = client()
        .get(Stack::get().url(&format!("/v1/listings/{listing_id}/reviews?limit=5")))
        .header("x-request-id", &request_id)
        .send()
        .await
        .expect("api");
    assert_eq!(json_of(page, 200).await["items"].as_array().map(Vec::len), Some(5));
    assert_eq!(ddb_requests(FUNCTION, &request_id).await, 1, "one Query");

    // A cursor is bound to its listing.
    let page = json_of(reviews_page(&listing_id, "?limit=2").await, 200).await;
    let cursor = s(&page, "next_cursor");
    let other = new_listing(&host).await;
    assert_problem(reviews_page(&other, &format!("?cursor={cursor}")).await, 400, "invalid_cursor").await;
    assert_eq!(json_of(reviews_page(&other, "").await, 200).await, json!({"items": [], "next_cursor": null}));
}
