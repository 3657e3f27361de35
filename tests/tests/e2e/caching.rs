//! HTTP caching end to end (issue 22): every public read sends a strong `ETag` that stays the
//! same while nothing it depends on changes, answers its own tag in `If-None-Match` with a 304
//! and no body, and gets a new tag when the host edits the listing, a booking takes nights, or
//! a review is posted; a search page's tag follows its listings. Every answer of a private
//! route is `private, no-store` (the template's routes walked with a signed-in caller). What a
//! 304 costs in DynamoDB requests is in request_counts.rs.

use reqwest::Method;
use reqwest::header::{CACHE_CONTROL, ETAG};
use roost_e2e::fixtures::{day_in, minutes_ago, q};
use roost_e2e::{NewListing, Stay, User, anonymous, eventually, json_of, s, unique, until_indexed};
use serde_json::{Value, json};
use shared::caching::{AVAILABILITY, DOCUMENT, NO_STORE, PRIVATE, PUBLIC_ITEM, SEARCH};

use crate::auth::{concrete, routes};

const TZ: &str = "Europe/Lisbon";

/// One anonymous GET: status, ETag, Cache-Control and body text.
struct Answer {
    status: u16,
    etag: Option<String>,
    cache_control: Option<String>,
    body: String,
}

async fn get(path: &str, if_none_match: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = if_none_match.map(|t| ("if-none-match", t)).into_iter().collect();
    let response = anonymous().call(Method::GET, path, None::<&Value>, &headers).await;
    let header = |name: reqwest::header::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let (status, etag, cache_control) = (response.status().as_u16(), header(ETAG), header(CACHE_CONTROL));
    Answer { status, etag, cache_control, body: response.text().await.expect("body") }
}

/// A 200 with a strong tag and `policy`: the tag.
async fn tagged(path: &str, policy: &str) -> String {
    let a = get(path, None).await;
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    assert_eq!(a.cache_control.as_deref(), Some(policy), "{path}");
    let etag = a.etag.unwrap_or_else(|| panic!("{path}: no ETag"));
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{path}: a strong tag, got {etag}");
    etag
}

/// `etag` is still current: a 304 without a body, with the tag and the policy again.
async fn assert_not_modified(path: &str, etag: &str, policy: &str) {
    assert_revalidated(path, etag, etag, policy).await;
}

/// `If-None-Match: sent` names the current version `etag` (itself, a list, a weak tag, `*`).
async fn assert_revalidated(path: &str, sent: &str, etag: &str, policy: &str) {
    let a = get(path, Some(sent)).await;
    assert_eq!(a.status, 304, "{path} with If-None-Match {sent}: {}", a.body);
    assert!(a.body.is_empty(), "{path}: a 304 has no body, got {}", a.body);
    assert_eq!(a.etag.as_deref(), Some(etag), "{path}: the 304 names the current tag");
    assert_eq!(a.cache_control.as_deref(), Some(policy), "{path}");
}

/// `etag` is stale: a 200 with the body and a new tag, which it returns.
async fn assert_changed(path: &str, etag: &str) -> String {
    let a = get(path, Some(etag)).await;
    assert_eq!(a.status, 200, "{path} changed, yet: {}", a.body);
    let new = a.etag.unwrap_or_else(|| panic!("{path}: no ETag"));
    assert_ne!(new, etag, "{path}: the tag must change with the body");
    new
}

#[tokio::test]
async fn a_listing_its_calendar_and_reviews_are_revalidated_and_retagged_when_they_change() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Cara Cache"), User::guest("Gil Cache"));
    let body = NewListing { min_nights: Some(1), max_nights: Some(7), ..NewListing::in_city(&unique("Cacheville")) };
    let listing_id = host.api().new_listing(&body).await;
    let listing = format!("/v1/listings/{listing_id}");
    let calendar = format!("/v1/listings/{listing_id}/availability?from={}&to={}", day_in(TZ, 3), day_in(TZ, 10));
    let reviews = format!("/v1/listings/{listing_id}/reviews");

    // Stable while nothing changes, and revalidated with a 304 in every form a client sends.
    let first = tagged(&listing, PUBLIC_ITEM).await;
    assert_eq!(tagged(&listing, PUBLIC_ITEM).await, first, "the same listing, the same tag");
    assert_not_modified(&listing, &first, PUBLIC_ITEM).await;
    assert_revalidated(&listing, &format!("W/{first}"), &first, PUBLIC_ITEM).await;
    assert_revalidated(&listing, &format!("\"stale\", {first}"), &first, PUBLIC_ITEM).await;
    assert_eq!(get(&listing, Some("\"stale\"")).await.status, 200);
    let free = tagged(&calendar, AVAILABILITY).await;
    assert_not_modified(&calendar, &free, AVAILABILITY).await;
    let no_reviews = tagged(&reviews, PUBLIC_ITEM).await;
    assert_not_modified(&reviews, &no_reviews, PUBLIC_ITEM).await;

    // The host edits the listing: a new tag, and the body says what changed.
    let edit = json!({"description": "Two rooms, freshly painted."});
    json_of(host.api().call(Method::PATCH, &listing, Some(&edit), &[]).await, 200).await;
    let edited = assert_changed(&listing, &first).await;
    assert!(get(&listing, None).await.body.contains("freshly painted"));

    // A booking takes a night of the calendar: its tag changes, the listing's does not.
    let stay = Stay::new(&listing_id, day_in(TZ, 4), day_in(TZ, 5), 1);
    let booking_id = s(&guest.api().booked(&stay).await, "booking_id").to_owned();
    assert_changed(&calendar, &free).await;
    assert_not_modified(&listing, &edited, PUBLIC_ITEM).await;

    // A review changes the listing's rating and the reviews page.
    crate::reviews::finish_stay(&booking_id, &minutes_ago(60).to_string()).await;
    let review = json!({"rating": 5, "comment": "Spotless."});
    json_of(guest.api().review(&booking_id, &review).await, 201).await;
    assert_changed(&listing, &edited).await;
    let page = until_indexed(|| get(&reviews, Some(&no_reviews)), |a| a.status == 200).await;
    assert_eq!(page.status, 200, "the new review changes the page: {}", page.body);
    assert_ne!(page.etag.as_deref(), Some(no_reviews.as_str()));
    assert!(page.body.contains("Spotless."), "{}", page.body);
}

#[tokio::test]
async fn a_search_pages_tag_follows_its_listings() {
    roost_e2e::needs_stack!();
    let host = User::host("Sol Cache").await;
    let city = unique("Cachetown");
    let listing_id = host.api().new_listing(&NewListing::in_city(&city)).await;
    let search = format!("/v1/search?city={}", q(&city));
    until_indexed(|| get(&search, None), |a| a.body.contains(&listing_id)).await;
    let page = tagged(&search, SEARCH).await;
    assert_eq!(tagged(&search, SEARCH).await, page);
    assert_not_modified(&search, &page, SEARCH).await;

    // A listing of the page changes (its search item is rewritten; GSI2 catches up).
    let edit = json!({"title": "Quiet loft, with a view"});
    json_of(host.api().call(Method::PATCH, &format!("/v1/listings/{listing_id}"), Some(&edit), &[]).await, 200).await;
    let (search, page) = (&search, &page);
    let changed = eventually("the search page to show the new title", || async move {
        let a = get(search, Some(page)).await;
        (a.status == 200 && a.body.contains("with a view")).then_some(a)
    })
    .await;
    assert_ne!(changed.etag.as_deref(), Some(page.as_str()), "a new page, a new tag");
}

#[tokio::test]
async fn a_profile_and_the_document_are_revalidated() {
    roost_e2e::needs_stack!();
    let user = User::guest("Pia Cache").await;
    let profile = format!("/v1/users/{}", user.user_id);
    let tag = tagged(&profile, PUBLIC_ITEM).await;
    assert_not_modified(&profile, &tag, PUBLIC_ITEM).await;
    let document = tagged("/v1/openapi.json", DOCUMENT).await;
    assert_not_modified("/v1/openapi.json", &document, DOCUMENT).await;
    assert_revalidated("/v1/openapi.json", "*", &document, DOCUMENT).await;
}

/// Every private route of the template, called by a signed-in host with made-up ids and an
/// empty body: whatever the function answers (200, 400, 404, ...), it is `private, no-store`.
/// Every public route answers a policy too, never `private`. Signing out comes last.
#[tokio::test]
async fn every_private_answer_is_private_no_store_and_public_ones_say_what_they_allow() {
    roost_e2e::needs_stack!();
    let host = User::host("Nora Nostore").await;
    // A private read that succeeds is no exception.
    let mine = host.api().get("/v1/me/listings").await;
    assert_eq!((mine.status().as_u16(), mine.headers()[CACHE_CONTROL].to_str().expect("ascii")), (200, PRIVATE));
    let mut all = routes();
    all.sort_by_key(|r| r.path == "/v1/auth/logout");
    let mut checked = 0;
    for route in &all {
        if route.path.starts_with("/v1/webhooks/") {
            continue;
        }
        let method = Method::from_bytes(route.method.as_bytes()).expect("method");
        let body = matches!(route.method.as_str(), "POST" | "PUT" | "PATCH").then(|| json!({}));
        let api = if route.public { anonymous() } else { host.api() };
        let response = api.call(method, &concrete(&route.path), body.as_ref(), &[]).await;
        let what = format!("{} {} answered {}", route.method, route.path, response.status());
        assert!(response.headers().contains_key("x-request-id"), "{what}: the function answered");
        let policy = response.headers().get(CACHE_CONTROL).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        if route.public {
            assert!(policy == NO_STORE || policy.starts_with("public,"), "{what}: Cache-Control {policy:?}");
        } else {
            assert_eq!(policy, PRIVATE, "{what}");
            checked += 1;
        }
    }
    assert!(checked >= 18, "the private routes were walked: {checked}");
}
