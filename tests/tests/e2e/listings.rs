//! Listings end to end through the HTTP API: CRUD and authorization, validation, photos through
//! pre-signed S3 URLs, the calendar, search (filters, accents, pagination, cursors) and the
//! DynamoDB request bound of a search page. Every test makes its own users and cities.

use std::collections::HashSet;

use reqwest::Method;
use roost_e2e::api::money;
use roost_e2e::fixtures::{TINY_PNG, day_in, put_upload, q};
use roost_e2e::seed::seed_listings;
use roost_e2e::{NewListing, Stack, User, assert_problem, client, ddb_requests, json_of, unique, until_indexed};
use serde_json::{Value, json};

/// The bound docs/data-model.md promises for one search page.
const MAX_QUERIES_PER_PAGE: u32 = 3;

/// The canonical listing body, as JSON: the validation tests break it field by field.
fn listing_body(city: &str) -> Value {
    NewListing::in_city(city).json()
}

async fn create(host: &User, body: &Value) -> Value {
    host.api().listing_created(body).await
}

fn id(v: &Value) -> String {
    v["listing_id"].as_str().expect("listing_id").to_owned()
}

async fn anonymous(path: &str) -> reqwest::Response {
    roost_e2e::anonymous().get(path).await
}

async fn search(query: &str) -> Value {
    json_of(roost_e2e::anonymous().search(query).await, 200).await
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(id).collect()
}

/// A date `days` from today (UTC), as `YYYY-MM-DD`.
fn day(days: i64) -> String {
    day_in("UTC", days)
}

#[tokio::test]
async fn hosts_create_edit_and_archive_and_nobody_else_can() {
    roost_e2e::needs_stack!();
    let host = User::host("Lina Host").await;
    let other = User::host("Omar Other").await;
    let guest = User::guest("Gia Guest").await;
    let city = unique("Crudville");
    let body = listing_body(&city);

    // Not signed in: the gateway's authorizer; a guest: 403 before anything is read.
    let response = client().post(Stack::get().url("/v1/listings")).json(&body).send().await.expect("api");
    assert_eq!(response.status(), 401);
    assert_problem(guest.post("/v1/listings", Some(&body)).await, 403, "host_required").await;

    let created = create(&host, &body).await;
    let lid = id(&created);
    assert!(lid.starts_with("lst_"));
    assert_eq!(created["host_id"], host.user_id.as_str());
    assert_eq!(created["host_name"], "Lina Host");
    assert_eq!(created["status"], "active");
    assert_eq!(created["address"]["line1"], "Rua Augusta 1");
    assert_eq!(created["min_nights"], 1);
    assert_eq!(created["max_nights"], 30);
    assert_eq!(created["check_in_time"], "15:00");
    assert_eq!(created["check_out_time"], "11:00");
    assert_eq!(created["rating"], json!({"average": null, "count": 0}));
    let version = created["version"].as_u64().expect("version");

    // The public view has city, region and country only.
    let public = json_of(anonymous(&format!("/v1/listings/{lid}")).await, 200).await;
    assert_eq!(public["address"], json!({"city": city, "region": "Lisboa", "country": "PT"}));
    assert!(public.get("version").is_none());
    assert_eq!(public["title"], "Quiet loft");
    // The host's view has the exact address; another host's and a guest's requests do not get it.
    let mine = json_of(host.get(&format!("/v1/me/listings/{lid}")).await, 200).await;
    assert_eq!(mine["address"]["postal_code"], "1100-001");
    assert_problem(other.get(&format!("/v1/me/listings/{lid}")).await, 404, "not_found").await;
    assert_problem(guest.get(&format!("/v1/me/listings/{lid}")).await, 403, "host_required").await;
    assert_problem(guest.get("/v1/me/listings").await, 403, "host_required").await;

    // Edits: only the host; a price change bumps the version, a description change does not.
    let path = format!("/v1/listings/{lid}");
    let patch = json!({"title": "Quiet loft, renovated"});
    assert_problem(other.send(Method::PATCH, &path, Some(&patch)).await, 404, "not_found").await;
    assert_problem(guest.send(Method::PATCH, &path, Some(&patch)).await, 403, "host_required").await;
    assert_problem(other.send(Method::DELETE, &path, None).await, 404, "not_found").await;
    assert_problem(guest.send(Method::DELETE, &path, None).await, 403, "host_required").await;
    let edited = json_of(host.send(Method::PATCH, &path, Some(&patch)).await, 200).await;
    assert_eq!(edited["title"], "Quiet loft, renovated");
    let v2 = edited["version"].as_u64().expect("version");
    assert!(v2 > version);
    let edited =
        json_of(host.send(Method::PATCH, &path, Some(&json!({"description": "Now with a balcony."}))).await, 200).await;
    assert_eq!(edited["version"].as_u64(), Some(v2), "description is not something a booking depends on");
    let edited = json_of(
        host.send(
            Method::PATCH,
            &path,
            Some(&json!({"nightly_price": {"amount": 11000, "currency": "EUR"}, "cleaning_fee": null})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(edited["nightly_price"]["amount"], 11000);
    assert_eq!(edited["cleaning_fee"], Value::Null);
    assert!(edited["version"].as_u64().expect("version") > v2);
    assert_eq!(json_of(anonymous(&path).await, 200).await["title"], "Quiet loft, renovated");
    let query = format!("city={}", q(&city));
    let searched = until_indexed(|| search(&query), |p| ids(p) == [lid.clone()]).await;
    assert_eq!(ids(&searched), vec![lid.clone()]);

    // Archive: gone from the public read and search, still in the host's own list.
    let response = host.send(Method::DELETE, &path, None).await;
    assert_eq!(response.status(), 204);
    assert_problem(anonymous(&path).await, 404, "not_found").await;
    assert_problem(anonymous(&format!("{path}/availability")).await, 404, "not_found").await;
    let query = format!("city={}", q(&city));
    assert!(ids(&until_indexed(|| search(&query), |p| ids(p).is_empty()).await).is_empty());
    let archived = json_of(host.get(&format!("/v1/me/listings/{lid}")).await, 200).await;
    assert_eq!(archived["status"], "archived");
    let all = json_of(host.get("/v1/me/listings").await, 200).await;
    assert_eq!(ids(&all), vec![lid.clone()]);
    assert_eq!(all["items"][0]["status"], "archived");
    assert!(ids(&json_of(host.get("/v1/me/listings?status=active").await, 200).await).is_empty());
    assert_eq!(ids(&json_of(host.get("/v1/me/listings?status=archived").await, 200).await), vec![lid.clone()]);
    assert_problem(host.send(Method::PATCH, &path, Some(&patch)).await, 409, "listing_archived").await;
    assert_eq!(host.send(Method::DELETE, &path, None).await.status(), 204, "archiving again is a no-op");
    // Other hosts' lists never show it.
    assert!(ids(&json_of(other.get("/v1/me/listings").await, 200).await).is_empty());
    assert_problem(other.send(Method::DELETE, &path, None).await, 404, "not_found").await;
}

#[tokio::test]
async fn every_invalid_field_is_a_400_naming_it_and_bad_bodies_are_problems() {
    roost_e2e::needs_stack!();
    let host = User::host("Vera Valid").await;
    let city = unique("Validville");
    let cases: Vec<(&str, Value)> = vec![
        ("title", json!("")),
        ("title", json!("x".repeat(121))),
        ("description", json!("x".repeat(5001))),
        ("property_type", json!("castle")),
        ("timezone", json!("Mars/Olympus")),
        ("max_guests", json!(0)),
        ("max_guests", json!(51)),
        ("max_guests", json!("two")),
        ("bedrooms", json!(-1)),
        ("beds", json!(101)),
        ("bathrooms", json!(1.5)),
        ("amenities", json!("wifi")),
        ("amenities[0]", json!([""])),
        ("nightly_price.amount", json!({"amount": 0, "currency": "EUR"})),
        ("nightly_price", json!({"amount": -5, "currency": "EUR"})),
        ("nightly_price.currency", json!({"amount": 100, "currency": "eur"})),
        ("nightly_price.currency", json!({"amount": 100, "currency": "XYZ"})),
        ("cleaning_fee.currency", json!({"amount": 100, "currency": "USD"})),
        ("min_nights", json!(0)),
        ("max_nights", json!(91)),
        ("cancellation_policy", json!("lenient")),
        ("check_in_time", json!("3pm")),
        ("check_out_time", json!("25:00")),
        ("host_id", json!("someone-else")),
        ("status", json!("archived")),
    ];
    for (field, value) in cases {
        let mut body = listing_body(&city);
        let top = field.split(['.', '[']).next().expect("field");
        body[top] = value.clone();
        let problem = assert_problem(host.post("/v1/listings", Some(&body)).await, 400, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{field} = {value}: {problem}");
    }
    for (field, value) in [
        ("address.line1", json!("")),
        ("address.city", json!("  ")),
        ("address.country", json!("pt")),
        ("address.country", json!("XX")),
        ("address.postal_code", json!("9".repeat(21))),
        ("address.street", json!("extra")),
    ] {
        let mut body = listing_body(&city);
        body["address"][field.trim_start_matches("address.")] = value.clone();
        let problem = assert_problem(host.post("/v1/listings", Some(&body)).await, 400, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{field} = {value}: {problem}");
    }
    let mut body = listing_body(&city);
    body.as_object_mut().expect("object").remove("title");
    let problem = assert_problem(host.post("/v1/listings", Some(&body)).await, 400, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "title");
    let mut body = listing_body(&city);
    body["min_nights"] = json!(10);
    body["max_nights"] = json!(5);
    let problem = assert_problem(host.post("/v1/listings", Some(&body)).await, 400, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "min_nights");

    // Bodies that are not JSON, not an object, or too big.
    let raw = |body: Vec<u8>, content_type: &'static str| {
        client()
            .post(Stack::get().url("/v1/listings"))
            .header("authorization", host.bearer())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_problem(raw(b"{\"title\": ".to_vec(), "application/json").await.expect("api"), 400, "malformed_request")
        .await;
    assert_problem(raw(b"[1, 2]".to_vec(), "application/json").await.expect("api"), 400, "malformed_request").await;
    assert_problem(
        raw(listing_body(&city).to_string().into_bytes(), "text/plain").await.expect("api"),
        400,
        "malformed_request",
    )
    .await;
    let mut huge = listing_body(&city);
    huge["description"] = json!("x".repeat(1024 * 1024));
    assert_problem(
        raw(huge.to_string().into_bytes(), "application/json").await.expect("api"),
        413,
        "payload_too_large",
    )
    .await;

    // PATCH is allow-listed the same way; nothing was created by any of the above.
    let lid = id(&create(&host, &listing_body(&city)).await);
    let path = format!("/v1/listings/{lid}");
    for (field, patch) in [
        ("host_id", json!({"host_id": "x"})),
        ("version", json!({"version": 9})),
        ("max_guests", json!({"max_guests": 0})),
        ("max_nights", json!({"max_nights": 0})),
        ("timezone", json!({"timezone": "Europe/Nowhere"})),
    ] {
        let problem =
            assert_problem(host.send(Method::PATCH, &path, Some(&patch)).await, 400, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{patch}: {problem}");
    }
    let mine =
        until_indexed(|| async { json_of(host.get("/v1/me/listings").await, 200).await }, |p| ids(p) == [lid.clone()]);
    assert_eq!(ids(&mine.await), vec![lid]);
}

#[tokio::test]
async fn photos_upload_through_presigned_urls_and_show_once_completed() {
    roost_e2e::needs_stack!();
    let host = User::host("Pia Photo").await;
    let other = User::host("Oto Other").await;
    let city = unique("Photoville");
    let lid = id(&create(&host, &listing_body(&city)).await);
    let photos = format!("/v1/listings/{lid}/photos");

    // Refused before any URL is issued: not an image, too big (50 MB), other host.
    let problem = assert_problem(
        host.post(&photos, Some(&json!({"content_type": "application/pdf", "content_length": 1000}))).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "content_type");
    let problem = assert_problem(
        host.post(&photos, Some(&json!({"content_type": "image/png", "content_length": 50 * 1024 * 1024}))).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "content_length");
    let announce = json!({"content_type": "image/png", "content_length": TINY_PNG.len(), "caption": "The front"});
    assert_problem(other.post(&photos, Some(&announce)).await, 404, "not_found").await;

    let response = host.post(&photos, Some(&announce)).await;
    assert_eq!(response.status(), 201);
    let upload: Value = response.json().await.expect("json");
    let pid = upload["photo_id"].as_str().expect("photo_id").to_owned();
    assert!(pid.starts_with("pho_"));
    assert_eq!(upload["upload_headers"]["content-type"], "image/png");
    assert_eq!(upload["upload_headers"]["content-length"], TINY_PNG.len().to_string());
    assert!(upload["expires_at"].as_str().is_some());
    let complete = format!("{photos}/{pid}/complete");

    // Complete before the upload: 409, and the photo does not show.
    assert_problem(host.post(&complete, None).await, 409, "upload_missing").await;
    assert_eq!(json_of(anonymous(&format!("/v1/listings/{lid}")).await, 200).await["photos"], json!([]));

    // The wrong bytes (not the announced length) are refused at completion.
    assert!(put_upload(&upload, b"not a png").await.status().is_success());
    assert_problem(host.post(&complete, None).await, 409, "upload_mismatch").await;

    // The right bytes: complete shows the photo, with a URL anyone can fetch.
    assert!(put_upload(&upload, TINY_PNG).await.status().is_success());
    assert_problem(other.post(&complete, None).await, 404, "not_found").await;
    let done = json_of(host.post(&complete, None).await, 200).await;
    assert_eq!(done["photo_id"], pid.as_str());
    assert_eq!(done["caption"], "The front");
    let again = json_of(host.post(&complete, None).await, 200).await;
    assert_eq!(again["photo_id"], pid.as_str(), "completing twice is harmless");
    let public = json_of(anonymous(&format!("/v1/listings/{lid}")).await, 200).await;
    let shown = public["photos"].as_array().expect("photos");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["photo_id"], pid.as_str());
    let fetched = client().get(shown[0]["url"].as_str().expect("url")).send().await.expect("s3");
    assert_eq!(fetched.status(), 200);
    assert_eq!(&fetched.bytes().await.expect("bytes")[..], TINY_PNG);
    let with_photo = |p: &Value| p["items"][0]["photo_url"].as_str().is_some_and(|u| u.contains(&pid));
    let query = format!("city={}", q(&city));
    let found = until_indexed(|| search(&query), with_photo).await;
    assert!(found["items"][0]["photo_url"].as_str().is_some_and(|u| u.contains(&pid)), "{found}");

    // Delete: gone from the listing and from search; deleting again is 404.
    let one = format!("{photos}/{pid}");
    assert_problem(other.send(Method::DELETE, &one, None).await, 404, "not_found").await;
    assert_eq!(host.send(Method::DELETE, &one, None).await.status(), 204);
    assert_eq!(json_of(anonymous(&format!("/v1/listings/{lid}")).await, 200).await["photos"], json!([]));
    let query = format!("city={}", q(&city));
    let without_photo = until_indexed(|| search(&query), |p| p["items"][0]["photo_url"].is_null()).await;
    assert_eq!(without_photo["items"][0]["photo_url"], Value::Null);
    assert_problem(host.send(Method::DELETE, &one, None).await, 404, "not_found").await;
    assert_problem(host.post(&complete, None).await, 404, "not_found").await;
}

/// Puts a held NIGHT on the listing as bookings will (the night item and the search item's
/// unavailable date in one transaction): the fixture for "a booking holds this night".
async fn hold_night(listing_id: &str, date: &str) {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
    let stack = Stack::get();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&stack.moto_url)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "e2e"))
        .load()
        .await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let table = stack.table_name.clone().expect("table_name in stack.json");
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let until = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_mins(15)).expect("time");
    let night = Put::builder()
        .table_name(&table)
        .item("PK", s(&format!("LISTING#{listing_id}")))
        .item("SK", s(&format!("NIGHT#{date}")))
        .item("type", s("night"))
        .item("listing_id", s(listing_id))
        .item("date", s(date))
        .item("kind", s("held"))
        .item("booking_id", s("bkg_01jh000000000000000000000"))
        .item("hold_expires_at", s(&jiff::Timestamp::from_second(until.as_second()).expect("time").to_string()))
        .item("updated_at", s(&jiff::Timestamp::now().to_string()))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .expect("put");
    let search = Update::builder()
        .table_name(&table)
        .key("PK", s(&format!("LISTING#{listing_id}")))
        .key("SK", s("SEARCH"))
        .update_expression("ADD unavailable :d")
        .expression_attribute_values(":d", AttributeValue::Ss(vec![date.to_owned()]))
        .build()
        .expect("update");
    ddb.transact_write_items()
        .transact_items(TransactWriteItem::builder().put(night).build())
        .transact_items(TransactWriteItem::builder().update(search).build())
        .send()
        .await
        .expect("hold a night");
}

fn night<'a>(calendar: &'a Value, date: &str) -> &'a Value {
    calendar["nights"].as_array().expect("nights").iter().find(|n| n["date"] == date).expect("night in range")
}

#[tokio::test]
async fn calendar_blocks_hide_listings_from_searches_for_those_dates() {
    roost_e2e::needs_stack!();
    let host = User::host("Cal Host").await;
    let other = User::host("Cal Other").await;
    let city = unique("Calendaria");
    let lid = id(&create(&host, &listing_body(&city)).await);
    let blocked = format!("/v1/listings/{lid}/blocked-dates");
    let (d10, d11, d12, d13, d14) = (day(10), day(11), day(12), day(13), day(14));
    let stay = |a: &str, b: &str| format!("city={}&check_in={a}&check_out={b}", q(&city));

    // Free: found for the stay, with its total (2 nights of 100.00 + 25.00 cleaning + 12 % fee).
    let query = stay(&d10, &d12);
    let found = until_indexed(|| search(&query), |p| ids(p) == [lid.clone()]).await;
    assert_eq!(ids(&found), vec![lid.clone()]);
    assert_eq!(found["items"][0]["nights"], 2);
    assert_eq!(found["items"][0]["total"], json!({"amount": 20000 + 2500 + 2400, "currency": "EUR"}));

    let change = json!({"block": [d11.clone(), d12.clone()]});
    assert_problem(other.send(Method::PUT, &blocked, Some(&change)).await, 404, "not_found").await;
    let calendar = json_of(host.send(Method::PUT, &blocked, Some(&change)).await, 200).await;
    assert_eq!(night(&calendar, &d11)["available"], false);
    assert_eq!(night(&calendar, &d11)["blocked"], true);
    assert_eq!(night(&calendar, &d12)["available"], false);
    assert_eq!(night(&calendar, &d12)["price"], json!({"amount": 10000, "currency": "EUR"}));

    // Read back through the public calendar.
    let read = json_of(anonymous(&format!("/v1/listings/{lid}/availability?from={d10}&to={d14}")).await, 200).await;
    let states: Vec<(String, bool)> = read["nights"]
        .as_array()
        .expect("nights")
        .iter()
        .map(|n| (n["date"].as_str().expect("date").to_owned(), n["available"].as_bool().expect("available")))
        .collect();
    assert_eq!(states, vec![(d10.clone(), true), (d11.clone(), false), (d12.clone(), false), (d13.clone(), true)]);

    // Hidden from a search that needs a blocked night; found for nights around them. The search
    // item's unavailable set reaches GSI2 after the index's lag: poll, as a client must.
    let blocked_stay = stay(&d10, &d12);
    assert!(ids(&until_indexed(|| search(&blocked_stay), |p| ids(p).is_empty()).await).is_empty());
    assert!(ids(&search(&stay(&d12, &d14)).await).is_empty());
    assert_eq!(ids(&search(&stay(&d13, &d14)).await), vec![lid.clone()]);
    assert_eq!(ids(&search(&format!("city={}", q(&city))).await), vec![lid.clone()], "no dates: shown");

    // Unblocking brings it back.
    let calendar = json_of(host.send(Method::PUT, &blocked, Some(&json!({"unblock": [d11.clone()]}))).await, 200).await;
    assert_eq!(night(&calendar, &d11)["available"], true);
    let query = stay(&d10, &d12);
    assert_eq!(ids(&until_indexed(|| search(&query), |p| ids(p) == [lid.clone()]).await), vec![lid.clone()]);
    assert!(ids(&search(&stay(&d11, &d13)).await).is_empty(), "the 12th is still blocked");
    // Both lists in one call.
    json_of(
        host.send(Method::PUT, &blocked, Some(&json!({"block": [d13.clone()], "unblock": [d12.clone()]}))).await,
        200,
    )
    .await;
    let query = stay(&d11, &d13);
    assert_eq!(ids(&until_indexed(|| search(&query), |p| ids(p) == [lid.clone()]).await), vec![lid.clone()]);
    let query = stay(&d12, &d14);
    assert!(ids(&until_indexed(|| search(&query), |p| ids(p).is_empty()).await).is_empty());

    // 91 dates in one call, past dates, duplicates, malformed dates: 400 naming the field.
    let many: Vec<String> = (20..111).map(day).collect();
    let problem =
        assert_problem(host.send(Method::PUT, &blocked, Some(&json!({"block": many}))).await, 400, "validation_failed")
            .await;
    assert_eq!(problem["errors"][0]["field"], "block");
    let ninety: Vec<String> = (20..110).map(day).collect();
    json_of(host.send(Method::PUT, &blocked, Some(&json!({"block": ninety}))).await, 200).await;
    let problem = assert_problem(
        host.send(Method::PUT, &blocked, Some(&json!({"block": [day(-3)]}))).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "block[0]");
    let problem = assert_problem(
        host.send(Method::PUT, &blocked, Some(&json!({"block": [d13.clone()], "unblock": [d13.clone()]}))).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "unblock[0]");
    let problem = assert_problem(
        host.send(Method::PUT, &blocked, Some(&json!({"block": ["tomorrow"]}))).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "block[0]");
    let problem = assert_problem(
        anonymous(&format!("/v1/listings/{lid}/availability?from={}&to={}", day(0), day(367))).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "to");
    let year =
        json_of(anonymous(&format!("/v1/listings/{lid}/availability?from={}&to={}", day(0), day(366))).await, 200)
            .await;
    assert_eq!(year["nights"].as_array().expect("nights").len(), 366);

    // A night a booking holds: blocking (or unblocking) it is 409, decided by the night's
    // condition, and nothing else in that call is applied.
    let d15 = day(15);
    hold_night(&lid, &d15).await;
    let problem = assert_problem(
        host.send(Method::PUT, &blocked, Some(&json!({"block": [day(16), d15.clone()]}))).await,
        409,
        "dates_unavailable",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "block[1]", "{problem}");
    let read =
        json_of(anonymous(&format!("/v1/listings/{lid}/availability?from={d15}&to={}", day(17))).await, 200).await;
    assert_eq!(night(&read, &d15)["available"], false);
    assert_eq!(night(&read, &day(16))["available"], true, "the transaction applied nothing");
    assert_problem(
        host.send(Method::PUT, &blocked, Some(&json!({"unblock": [d15.clone()]}))).await,
        409,
        "dates_unavailable",
    )
    .await;
    assert!(ids(&search(&stay(&d15, &day(16))).await).is_empty(), "held nights are unavailable in search");
}

async fn create_in(host: &User, city: &str, country: &str, guests: u32, price: i64, currency: &str) -> String {
    let mut body = NewListing::in_city(city);
    body.address.country = country.into();
    body.max_guests = guests;
    body.nightly_price = money(price, currency);
    body.cleaning_fee = None;
    host.api().new_listing(&body).await
}

#[tokio::test]
async fn search_matches_accents_case_and_every_filter() {
    roost_e2e::needs_stack!();
    let host = User::host("Sofia Search").await;
    let tag = unique("");
    let city = format!("São Paulo {tag}");
    let a = create_in(&host, &city, "BR", 2, 10_000, "USD").await;
    let b = create_in(&host, &city, "BR", 6, 30_000, "USD").await;
    let c = create_in(&host, &city, "US", 4, 20_000, "USD").await;
    let d = create_in(&host, &city, "BR", 4, 90_000, "BRL").await;
    let set = |page: &Value| ids(page).into_iter().collect::<HashSet<_>>();
    let all: HashSet<String> = [&a, &b, &c, &d].into_iter().cloned().collect();
    let query = format!("city={}", q(&city));
    until_indexed(|| search(&query), |p| set(p) == all).await;

    // Newest first, and the city matched however it is typed.
    for spelling in [city.clone(), format!("sao paulo {tag}"), format!("SÃO   PAULO {tag}"), format!("Sao Paulo {tag}")]
    {
        let page = search(&format!("city={}", q(&spelling))).await;
        assert_eq!(ids(&page), vec![d.clone(), c.clone(), b.clone(), a.clone()], "{spelling}");
        assert_eq!(page["next_cursor"], Value::Null);
        assert_eq!(page["items"][0]["address"], json!({"city": city, "region": "Lisboa", "country": "BR"}));
        assert!(page["items"][0]["address"].get("line1").is_none());
    }
    assert!(ids(&search(&format!("city={}", q(&format!("Sao Paulo {tag}x")))).await).is_empty());

    let city_q = format!("city={}", q(&format!("sao paulo {tag}")));
    let found = |filters: &str| {
        let query = format!("{city_q}&{filters}");
        async move { set(&search(&query).await) }
    };
    assert_eq!(found("country=BR").await, [&a, &b, &d].into_iter().cloned().collect());
    assert_eq!(found("country=US").await, [&c].into_iter().cloned().collect());
    assert_eq!(found("guests=4").await, [&b, &c, &d].into_iter().cloned().collect());
    assert_eq!(found("guests=5").await, [&b].into_iter().cloned().collect());
    assert_eq!(found("min_price=15000").await, [&b, &c].into_iter().cloned().collect(), "USD by default");
    assert_eq!(found("max_price=20000").await, [&a, &c].into_iter().cloned().collect());
    assert_eq!(found("min_price=15000&max_price=25000&currency=USD").await, [&c].into_iter().cloned().collect());
    assert_eq!(found("min_price=50000&currency=BRL").await, [&d].into_iter().cloned().collect());
    assert_eq!(found("currency=BRL").await, [&d].into_iter().cloned().collect());
    assert_eq!(found("guests=4&country=BR&currency=USD").await, [&b].into_iter().cloned().collect());
    assert_eq!(found(&format!("check_in={}&check_out={}", day(30), day(33))).await, all);
    let with_dates = search(&format!("{city_q}&check_in={}&check_out={}&currency=BRL", day(30), day(33))).await;
    assert_eq!(with_dates["items"][0]["total"], json!({"amount": 270_000 + 32_400, "currency": "BRL"}));
    assert_eq!(with_dates["items"][0]["nights"], 3);
    let without = search(&format!("{city_q}&currency=BRL")).await;
    assert!(without["items"][0].get("total").is_none());

    // A stay outside a listing's min/max nights does not match it.
    let lid = a.clone();
    json_of(host.send(Method::PATCH, &format!("/v1/listings/{lid}"), Some(&json!({"min_nights": 5}))).await, 200).await;
    let (stay_3_nights, long_stays) =
        (format!("check_in={}&check_out={}", day(30), day(33)), [&b, &c, &d].into_iter().cloned().collect());
    assert_eq!(until_indexed(|| found(&stay_3_nights), |s| *s == long_stays).await, long_stays);

    for (query, field) in [
        ("", "city"),
        ("guests=2", "city"),
        ("city=x&country=br", "country"),
        ("city=x&guests=0", "guests"),
        ("city=x&currency=usd", "currency"),
        ("city=x&min_price=10&max_price=5", "max_price"),
        ("city=x&check_in=2020-01-01&check_out=2020-01-03", "check_in"),
        ("city=x&limit=101", "limit"),
        ("city=x&sort=price", "sort"),
    ] {
        let problem = assert_problem(anonymous(&format!("/v1/search?{query}")).await, 400, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
}

#[tokio::test]
async fn search_pages_have_no_duplicates_or_gaps_and_cursors_are_bound() {
    roost_e2e::needs_stack!();
    let host = User::host("Paula Pages").await;
    let city = unique("Pagetown");
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(create_in(&host, &city, "PT", if i % 2 == 0 { 2 } else { 4 }, 10_000, "EUR").await);
    }
    created.reverse(); // newest first
    // The index is eventually consistent: wait until the last listing is searchable.
    let query = format!("city={}&limit=1", q(&city));
    until_indexed(|| search(&query), |p| ids(p) == created[..1]).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = format!("city={}&limit=5", q(&city));
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let page = search(&query).await;
        pages += 1;
        assert!(ids(&page).len() <= 5);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    assert_eq!(seen, created, "every listing once, in order");
    assert_eq!(pages, 5);

    // A filtered walk sees exactly the matching ones.
    let mut filtered = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = format!("city={}&limit=4&guests=3", q(&city));
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let page = search(&query).await;
        filtered.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // created[] is newest first; the 4-guest ones have odd creation indexes.
    let expected_by_guests: Vec<String> =
        created.iter().rev().enumerate().filter(|(i, _)| i % 2 == 1).map(|(_, l)| l.clone()).rev().collect();
    assert_eq!(filtered, expected_by_guests);

    // Cursors: forged, or from another filter set, another city or another route: 400.
    let first = search(&format!("city={}&limit=5", q(&city))).await;
    let token = first["next_cursor"].as_str().expect("cursor").to_owned();
    assert_problem(
        anonymous(&format!("/v1/search?city={}&limit=5&cursor=abc.def", q(&city))).await,
        400,
        "invalid_cursor",
    )
    .await;
    let (payload, tag) = token.split_once('.').expect("cursor shape");
    let mut tampered = payload.to_owned();
    tampered.replace_range(..1, if payload.starts_with('e') { "f" } else { "e" });
    assert_problem(
        anonymous(&format!("/v1/search?city={}&limit=5&cursor={tampered}.{tag}", q(&city))).await,
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(
        anonymous(&format!("/v1/search?city={}&limit=5&guests=3&cursor={token}", q(&city))).await,
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(
        anonymous(&format!("/v1/search?city=elsewhere&limit=5&cursor={token}")).await,
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(host.get(&format!("/v1/me/listings?cursor={token}")).await, 400, "invalid_cursor").await;
    // Same filters, another page size: the cursor still works (limit is not a filter).
    let next = search(&format!("city={}&limit=2&cursor={token}", q(&city))).await;
    assert_eq!(ids(&next), created[5..7].to_vec());

    // The host's own list pages the same way, and its cursor is bound to the host.
    let mine = json_of(host.get("/v1/me/listings?limit=10").await, 200).await;
    assert_eq!(ids(&mine), created[..10].to_vec());
    let host_cursor = mine["next_cursor"].as_str().expect("cursor").to_owned();
    let other = User::host("Pedro Other").await;
    assert_problem(other.get(&format!("/v1/me/listings?limit=10&cursor={host_cursor}")).await, 400, "invalid_cursor")
        .await;
    assert_problem(
        host.get(&format!("/v1/me/listings?limit=10&status=active&cursor={host_cursor}")).await,
        400,
        "invalid_cursor",
    )
    .await;
    let rest = json_of(host.get(&format!("/v1/me/listings?limit=10&cursor={host_cursor}")).await, 200).await;
    assert_eq!(ids(&rest), created[10..20].to_vec());
}

/// Searches with an `X-Request-Id` and returns (page, DynamoDB requests it cost).
async fn measured_search(query: &str) -> (Value, u32) {
    let request_id = unique("search-");
    let response = roost_e2e::anonymous()
        .call(Method::GET, &format!("/v1/search?{query}"), None::<&Value>, &[("x-request-id", &request_id)])
        .await;
    let page = json_of(response, 200).await;
    (page, ddb_requests("ListingsFunction", &request_id).await)
}

#[tokio::test]
async fn a_search_page_costs_a_bounded_number_of_requests_whatever_the_city_size() {
    roost_e2e::needs_stack!();
    let host = User::host("Bruno Bound").await;
    let small = unique("Smallville");
    let big = unique("Bigtown");
    seed_listings(&host, &small, 10).await;
    seed_listings(&host, &big, 300).await;

    let mut report = Vec::new();
    for (city, size) in [(&small, 10), (&big, 300)] {
        let c = q(city);
        let cases = [
            ("plain", format!("city={c}")),
            ("dates", format!("city={c}&check_in={}&check_out={}", day(40), day(43))),
            ("guests=4", format!("city={c}&guests=4&limit=20")),
            ("no match", format!("city={c}&guests=50")),
            ("limit=100", format!("city={c}&limit=100&currency=EUR&min_price=1")),
        ];
        for (name, query) in cases {
            let (page, requests) = measured_search(&query).await;
            assert!((1..=MAX_QUERIES_PER_PAGE).contains(&requests), "{size} listings, {name}: {requests} requests");
            report.push(format!("{size} listings, {name}: {requests} DynamoDB requests, {} items", ids(&page).len()));
            if size == 10 {
                assert_eq!(page["next_cursor"], Value::Null, "{name}: the small city fits one page");
            }
            if size == 300 && name == "no match" {
                assert_eq!(requests, MAX_QUERIES_PER_PAGE, "a page that finds nothing stops at the bound");
                assert!(ids(&page).is_empty());
                assert!(page["next_cursor"].is_string(), "an empty filtered page still has a cursor");
            }
            if size == 300 && name == "plain" {
                assert_eq!(requests, 1);
                assert_eq!(ids(&page).len(), 20);
            }
        }
        // Walking the whole city: every page is within the bound.
        let mut cursor: Option<String> = None;
        let mut total = 0;
        let mut pages = 0;
        loop {
            let mut query = format!("city={c}&limit=100");
            if let Some(t) = &cursor {
                query.push_str(&format!("&cursor={t}"));
            }
            let (page, requests) = measured_search(&query).await;
            assert!(requests <= MAX_QUERIES_PER_PAGE);
            total += ids(&page).len();
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(t) => cursor = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(total, size);
        report.push(format!("{size} listings: walked in {pages} pages of 100"));
    }
    eprintln!("search request bound (at most {MAX_QUERIES_PER_PAGE} per page):\n  {}", report.join("\n  "));
}

/// The demo data of `cargo roost up` (wired into the runtime's seed step), run here against a
/// fresh host so the seed can never rot: it goes through the same API.
#[path = "../../../infra/local/src/seed_listings.rs"]
mod seed_listings;

#[tokio::test]
async fn demo_listings_are_seeded_through_the_api() {
    roost_e2e::needs_stack!();
    let host = User::host("Demo Seeder").await;
    let made = seed_listings::seed_listings(&Stack::get().api_url, &host.access_token).await.expect("seed");
    // The host's list is an index the strict stack lets lag: it may still show a listing as it
    // was before its photo was completed. Read it once every listing shows its photo.
    let mine = roost_e2e::until_indexed(
        || async { json_of(host.get("/v1/me/listings?limit=100").await, 200).await },
        |page: &Value| {
            page["items"].as_array().is_some_and(|items| {
                items.len() == made && items.iter().all(|l| l["photos"].as_array().map(Vec::len) == Some(1))
            })
        },
    )
    .await;
    let items = mine["items"].as_array().expect("items");
    assert_eq!(items.len(), made);
    let cities: HashSet<&str> = items.iter().filter_map(|l| l["address"]["city"].as_str()).collect();
    let currencies: HashSet<&str> = items.iter().filter_map(|l| l["nightly_price"]["currency"].as_str()).collect();
    assert!(cities.len() >= 3 && currencies.len() >= 3, "{cities:?} {currencies:?}");
    for l in items {
        assert_eq!(l["photos"].as_array().map(Vec::len), Some(1), "{l}");
    }
    let mut blocked = 0;
    for l in items {
        let calendar = json_of(anonymous(&format!("/v1/listings/{}/availability", id(l))).await, 200).await;
        blocked += calendar["nights"].as_array().expect("nights").iter().filter(|n| n["available"] == false).count();
    }
    assert!(blocked > 0, "some nights are blocked");
}

#[tokio::test]
async fn concurrent_edits_of_one_listing_lose_nothing() {
    roost_e2e::needs_stack!();
    let host = User::host("Rita Race").await;
    let lid = id(&create(&host, &listing_body(&unique("Raceville"))).await);
    let path = format!("/v1/listings/{lid}");
    // Every save rewrites all host-owned attributes from what it read: only the revision lock
    // keeps a concurrent edit from silently undoing another. Three rounds of three racers.
    for round in 1..=3u64 {
        let patches = [
            json!({"title": format!("Raced title {round}")}),
            json!({"description": format!("Raced description {round}")}),
            json!({"max_guests": 2 + round}),
        ];
        let mut tasks = tokio::task::JoinSet::new();
        for patch in patches {
            let (host, path) = (host.clone(), path.clone());
            tasks.spawn(async move { host.send(Method::PATCH, &path, Some(&patch)).await.status().as_u16() });
        }
        while let Some(status) = tasks.join_next().await {
            assert_eq!(status.expect("task"), 200);
        }
        let l = json_of(host.get(&format!("/v1/me/listings/{lid}")).await, 200).await;
        let title = format!("Raced title {round}");
        let description = format!("Raced description {round}");
        assert_eq!(
            (l["title"].as_str(), l["description"].as_str(), l["max_guests"].as_u64()),
            (Some(title.as_str()), Some(description.as_str()), Some(2 + round)),
            "round {round}: every concurrent edit survives"
        );
        let city = q(l["address"]["city"].as_str().expect("city"));
        let query = format!("city={city}&guests={}", 2 + round);
        let found = until_indexed(|| search(&query), |p| p["items"][0]["title"] == title.as_str()).await;
        assert_eq!(found["items"][0]["title"], title.as_str(), "the search item follows the listing");
    }
}
