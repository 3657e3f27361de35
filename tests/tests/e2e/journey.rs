//! The guest journey (issue 9), one test, all through HTTP: a host and a guest sign up and
//! confirm; the host becomes a host and lists a home with a photo; the guest searches the city
//! and dates, quotes, books and pays with a test card in localstripe; localstripe's webhook
//! confirms the booking; both get the e-mail and the inbox item; the stay ends; the guest
//! reviews; the listing's rating changes and the host's inbox says so; the host answers and the
//! answer shows on the listing's reviews.
//!
//! Time is never waited for. The end of the stay is the **stay-ends fixture** (`fixtures::end_stay`, one
//! `UpdateItem` moving the booking's `check_out_at` into the past); everything else goes through
//! the API, and the asynchronous paths (webhook -> SQS -> payment-events; outbox -> SNS ->
//! notifications -> SES) are waited for with bounded polls.

use reqwest::Method;
use roost_e2e::api::money;
use roost_e2e::fixtures::{
    TINY_PNG, confirm_with, day_in, end_stay, put_upload, q, sent_mail, sent_to, wait_for_inbox,
};
use roost_e2e::{NewListing, User, eventually, json_of, s, unique, until_indexed};
use serde_json::{Value, json};

const TZ: &str = "Europe/Lisbon";

fn listing_body(city: &str) -> NewListing {
    NewListing {
        title: "Journey loft".into(),
        timezone: TZ.into(),
        cleaning_fee: Some(money(2000, "EUR")),
        min_nights: Some(1),
        max_nights: Some(7),
        ..NewListing::in_city(city)
    }
}

/// The date `days` after today in the listing's time zone.
fn day(days: i64) -> String {
    day_in(TZ, days)
}

async fn anonymous(method: Method, path: &str, body: Option<&Value>) -> reqwest::Response {
    roost_e2e::anonymous().call(method, path, body, &[]).await
}

/// Waits for an e-mail to `email` with this subject; returns it.
async fn wait_for_mail(email: &str, subject: &str) -> Value {
    eventually(&format!("{subject:?} to {email}"), || async {
        sent_mail().await.into_iter().find(|m| sent_to(m, email) && m["subject"] == subject)
    })
    .await
}

#[tokio::test]
async fn the_guest_journey_from_sign_up_to_the_hosts_answer() {
    roost_e2e::needs_stack!();
    // Sign up and confirm both; the host becomes a host (tokens refreshed to carry `hosts`).
    let (host, guest) = tokio::join!(User::host("Jo Host"), User::guest("Gina Guest"));

    // The host lists a home with a photo: upload URL -> PUT the bytes -> complete.
    let city = unique("Journeyville");
    let created = host.api().listing_created(&listing_body(&city)).await;
    let listing_id = s(&created, "listing_id").to_owned();
    let photos = format!("/v1/listings/{listing_id}/photos");
    let announce = json!({"content_type": "image/png", "content_length": TINY_PNG.len(), "caption": "The front"});
    let upload = json_of(host.post(&photos, Some(&announce)).await, 201).await;
    let photo_id = s(&upload, "photo_id").to_owned();
    assert!(put_upload(&upload, TINY_PNG).await.status().is_success());
    let done = json_of(host.post(&format!("{photos}/{photo_id}/complete"), None).await, 200).await;
    assert_eq!(done["photo_id"], photo_id.as_str());

    // The guest searches the city and the dates (three days ahead, two nights) and finds it.
    let (check_in, check_out) = (day(3), day(5));
    let search = format!("/v1/search?city={}&check_in={check_in}&check_out={check_out}&guests=2", q(&city));
    // Search reads an index: the photo shows there once the index has the listing's new cover.
    let found = until_indexed(
        || async { json_of(anonymous(Method::GET, &search, None).await, 200).await },
        |page: &Value| page["items"][0]["photo_url"].as_str().is_some_and(|u| u.contains(&photo_id)),
    )
    .await;
    let items = found["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["listing_id"], listing_id.as_str());
    assert!(items[0]["photo_url"].as_str().is_some_and(|u| u.contains(&photo_id)), "{found}");
    let listing = json_of(anonymous(Method::GET, &format!("/v1/listings/{listing_id}"), None).await, 200).await;
    assert_eq!(listing["rating"], json!({"average": null, "count": 0}), "not rated yet");
    assert_eq!(listing["photos"][0]["photo_id"], photo_id.as_str());

    // Quotes, then books at the quoted price.
    let stay = json!({"listing_id": listing_id, "check_in": check_in, "check_out": check_out, "guests": 2});
    let quote = json_of(anonymous(Method::POST, "/v1/quotes", Some(&stay)).await, 200).await;
    assert_eq!((&quote["available"], &quote["nights"]), (&json!(true), &json!(2)), "{quote}");
    let booking = json_of(guest.post("/v1/bookings", Some(&stay)).await, 201).await;
    let booking_id = s(&booking, "booking_id").to_owned();
    assert_eq!(booking["status"], "pending_payment");
    assert_eq!(booking["price"], quote["price"], "booked at the quoted price");

    // Pays with a test card in localstripe, as the browser would with the client secret.
    let intent = json_of(guest.post(&format!("/v1/bookings/{booking_id}/payment"), None).await, 200).await;
    assert_eq!(intent["amount"], quote["price"]["total"], "{intent}");
    let intent_id = s(&intent, "payment_intent_id");
    let (status, confirmed) = confirm_with(intent_id, "pm_card_visa").await;
    assert_eq!((status, &confirmed["status"]), (200, &json!("succeeded")), "{confirmed}");

    // localstripe's webhook -> payment-events: the booking is confirmed.
    let booking_path = format!("/v1/bookings/{booking_id}");
    let confirmed = eventually("the booking confirmed", || async {
        let b = json_of(guest.get(&booking_path).await, 200).await;
        (b["status"] == "confirmed").then_some(b)
    })
    .await;
    assert_eq!(confirmed["payment"]["status"], "succeeded", "{confirmed}");

    // Both get the e-mail and the inbox item.
    let (guest_mail, host_mail, guest_item, host_item) = tokio::join!(
        wait_for_mail(&guest.email, "Your booking is confirmed"),
        wait_for_mail(&host.email, "New confirmed booking"),
        wait_for_inbox(&guest, "booking.confirmed", &booking_id),
        wait_for_inbox(&host, "booking.confirmed", &booking_id),
    );
    for m in [&guest_mail, &host_mail] {
        assert!(m["body"].as_str().is_some_and(|b| b.contains("Journey loft")), "{m}");
    }
    for item in [&guest_item, &host_item] {
        assert_eq!(item["read"], false, "{item}");
    }

    // The stay ends; the guest reviews it.
    end_stay(&booking_id).await;
    assert_eq!(json_of(guest.get(&booking_path).await, 200).await["status"], "completed");
    let review = json!({"rating": 4, "comment": "Lovely light, a little noisy."});
    let posted = json_of(guest.post(&format!("/v1/bookings/{booking_id}/review"), Some(&review)).await, 201).await;
    let review_id = s(&posted, "review_id").to_owned();
    assert_eq!(posted["author"], json!({"user_id": guest.user_id, "name": "Gina Guest"}));

    // The listing's rating changes, and the host's inbox says so.
    let listing = json_of(anonymous(Method::GET, &format!("/v1/listings/{listing_id}"), None).await, 200).await;
    assert_eq!(listing["rating"], json!({"average": 4.0, "count": 1}));
    let review_item = wait_for_inbox(&host, "review.posted", &booking_id).await;
    assert_eq!(review_item["read"], false, "{review_item}");

    // The host answers; the answer shows on the listing's reviews.
    let answer = json!({"comment": "Thank you, Gina! Earplugs are now by the bed."});
    let answered = json_of(host.post(&format!("/v1/reviews/{review_id}/response"), Some(&answer)).await, 200).await;
    assert_eq!(answered["response"]["comment"], answer["comment"]);
    // The listing's reviews read an index: the answer shows there once the index has caught up.
    let reviews = until_indexed(
        || async {
            json_of(anonymous(Method::GET, &format!("/v1/listings/{listing_id}/reviews"), None).await, 200).await
        },
        |page: &Value| page["items"][0]["response"] == answered["response"],
    )
    .await;
    let listed = reviews["items"].as_array().expect("items");
    assert_eq!(listed.len(), 1, "{reviews}");
    assert_eq!(listed[0]["review_id"], review_id.as_str());
    assert_eq!(listed[0]["rating"], 4);
    assert_eq!(listed[0]["comment"], review["comment"]);
    assert_eq!(listed[0]["response"], answered["response"], "the answer shows on the listing's reviews");
    assert!(!reviews.to_string().contains(&guest.email), "never the e-mail: {reviews}");
}
