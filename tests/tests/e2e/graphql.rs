//! The GraphQL read API (issue 19) through HTTP: a listing page in one query with exactly the
//! values of the REST routes it replaces and a constant number of DynamoDB requests whatever the
//! number of reviews shown; a trips page with each trip's listing (batched); private fields for
//! their owners only (anonymous, stranger, guest, host, a bad token); the limits (depth,
//! complexity, aliases, batch size, query size); persisted queries over GET with their cache
//! headers.

use reqwest::Method;
use roost_e2e::fixtures::{day_in, wait_for_inbox};
use roost_e2e::requests::{Measured, fewest, measured_call};
use roost_e2e::{Api, NewListing, NewReview, Stay, User, anonymous, assert_problem, json_of, s, unique, until_indexed};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::reviews::finish_stay;

const GRAPHQL: &str = "GraphqlFunction";
const LISTING_PAGE: &str = include_str!("../../../functions/graphql/queries/listing-page.graphql");
const TRIPS_PAGE: &str = include_str!("../../../functions/graphql/queries/trips-page.graphql");
const SEARCH: &str = include_str!("../../../functions/graphql/queries/search.graphql");
const TZ: &str = "Europe/Lisbon";

/// A listing page's DynamoDB requests: GetItem (the listing), BatchGetItem (its host's
/// profile), Query (the nights of the range), Query (a page of reviews). The same for 1 review
/// shown or 5.
const LISTING_PAGE_REQUESTS: u64 = 4;
/// A trips page's: Query (the caller's trips), BatchGetItem (every trip's listing), GetItem (the
/// caller's profile for `me`).
const TRIPS_PAGE_REQUESTS: u64 = 3;

async fn post(api: Api<'_>, query: &str, variables: Value) -> Value {
    let body = json!({"query": query, "variables": variables});
    json_of(api.call(Method::POST, "/v1/graphql", Some(&body), &[]).await, 200).await
}

/// The error codes of an answer, in order.
fn codes(answer: &Value) -> Vec<&str> {
    answer["errors"]
        .as_array()
        .map_or_else(Vec::new, |e| e.iter().filter_map(|e| e["extensions"]["code"].as_str()).collect())
}

/// `name=value&...`, form-encoded.
fn query_string(params: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params("http://localhost/", params).expect("url");
    url.query().unwrap_or_default().to_owned()
}

fn day(days: i64) -> String {
    day_in(TZ, days)
}

/// A listing with two finished, reviewed stays (each by its own guest): its host, its id, the
/// bookings.
async fn reviewed_listing() -> (User, String, Vec<String>) {
    let host = User::host("Graphql Host").await;
    let city = unique("Graphqlville");
    let listing = NewListing { timezone: TZ.into(), ..NewListing::in_city(&city) };
    let listing_id = host.api().new_listing(&listing).await;
    let mut bookings = Vec::new();
    for (i, stars) in [(0_i64, 5_u8), (1, 3)] {
        let guest = User::guest(&format!("Graphql Guest {i}")).await;
        let booked = guest.api().booked(&Stay::new(&listing_id, day(20 + 2 * i), day(21 + 2 * i), 1)).await;
        let booking_id = s(&booked, "booking_id");
        finish_stay(booking_id, &roost_e2e::fixtures::minutes_ago(60).to_string()).await;
        let review = NewReview { rating: stars, comment: format!("Stay {i} was fine.") };
        json_of(guest.api().review(booking_id, &review).await, 201).await;
        bookings.push(booking_id.to_owned());
    }
    // Reviews are listed from an index, which the strict stack lets lag: both, before any read.
    until_indexed(
        || async { json_of(anonymous().reviews(&listing_id, "?limit=5").await, 200).await },
        |page: &Value| page["items"].as_array().is_some_and(|items| items.len() == 2),
    )
    .await;
    (host, listing_id, bookings)
}

#[tokio::test]
async fn a_listing_page_is_one_query_with_the_values_of_the_rest_routes() {
    roost_e2e::needs_stack!();
    let (host, listing_id, bookings) = reviewed_listing().await;
    let (from, to) = (day(10), day(70));
    let vars = json!({"id": listing_id, "from": from, "to": to, "reviews": 5});
    let answer = post(anonymous(), LISTING_PAGE, vars).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let page = &answer["data"]["listing"];

    let rest = json_of(anonymous().listing(&listing_id).await, 200).await;
    assert_eq!(page["id"], rest["listing_id"]);
    for (gql, rest_field) in [
        ("title", "title"),
        ("description", "description"),
        ("propertyType", "property_type"),
        ("timezone", "timezone"),
        ("maxGuests", "max_guests"),
        ("bedrooms", "bedrooms"),
        ("beds", "beds"),
        ("bathrooms", "bathrooms"),
        ("amenities", "amenities"),
        ("nightlyPrice", "nightly_price"),
        ("cleaningFee", "cleaning_fee"),
        ("minNights", "min_nights"),
        ("maxNights", "max_nights"),
        ("cancellationPolicy", "cancellation_policy"),
        ("checkInTime", "check_in_time"),
        ("checkOutTime", "check_out_time"),
        ("rating", "rating"),
    ] {
        assert_eq!(page[gql], rest[rest_field], "{gql} differs from REST's {rest_field}");
    }
    assert_eq!(page["location"], rest["address"], "the public address");
    assert_eq!(page["photos"].as_array().map(Vec::len), rest["photos"].as_array().map(Vec::len));
    assert_eq!(page["rating"]["count"], 2);

    let profile = json_of(anonymous().get(&format!("/v1/users/{}", host.user_id)).await, 200).await;
    assert_eq!(page["host"]["id"], profile["user_id"]);
    for field in ["name", "bio", "createdAt"] {
        let rest_field = if field == "createdAt" { "created_at" } else { field };
        assert_eq!(page["host"][field], profile[rest_field], "host {field}");
    }
    assert_eq!(page["host"]["isHost"], profile["is_host"]);

    let calendar =
        json_of(anonymous().get(&format!("/v1/listings/{listing_id}/availability?from={from}&to={to}")).await, 200)
            .await;
    let nights = page["availability"].as_array().expect("nights");
    let rest_nights = calendar["nights"].as_array().expect("nights");
    assert_eq!(nights.len(), 60);
    assert_eq!(nights.len(), rest_nights.len());
    for (g, r) in nights.iter().zip(rest_nights) {
        assert_eq!((&g["date"], &g["available"], &g["price"]), (&r["date"], &r["available"], &r["price"]));
    }
    assert!(nights.iter().any(|n| n["available"] == false), "the booked nights show taken: {nights:?}");

    let reviews = json_of(anonymous().reviews(&listing_id, "?limit=5").await, 200).await;
    let edges = page["reviews"]["edges"].as_array().expect("edges");
    let items = reviews["items"].as_array().expect("items");
    assert_eq!(edges.len(), 2);
    assert_eq!(edges.len(), items.len());
    for (e, r) in edges.iter().zip(items) {
        let n = &e["node"];
        assert_eq!((&n["id"], &n["rating"], &n["comment"]), (&r["review_id"], &r["rating"], &r["comment"]));
        assert_eq!((&n["author"]["userId"], &n["author"]["name"]), (&r["author"]["user_id"], &r["author"]["name"]));
    }
    assert_eq!(page["reviews"]["pageInfo"]["hasNextPage"], false);

    // The host's inbox (the reviews told them): `me.notifications` is `GET /v1/me/notifications`.
    let told = wait_for_inbox(&host, "review.posted", &bookings[0]).await;
    let query =
        "{ me { notifications(first: 100) { edges { node { id type title body bookingId read createdAt } } } } }";
    let answer = post(host.api(), query, json!({})).await;
    let edges = answer["data"]["me"]["notifications"]["edges"].as_array().expect("edges");
    let node = edges.iter().map(|e| &e["node"]).find(|n| n["id"] == told["notification_id"]).expect("in the inbox");
    for (gql, rest) in [
        ("type", "type"),
        ("title", "title"),
        ("body", "body"),
        ("bookingId", "booking_id"),
        ("read", "read"),
        ("createdAt", "created_at"),
    ] {
        assert_eq!(node[gql], told[rest], "notification {gql}");
    }
}

#[tokio::test]
async fn a_listing_page_costs_the_same_few_requests_whatever_the_reviews_shown() {
    roost_e2e::needs_stack!();
    let (_, listing_id, _) = reviewed_listing().await;
    let mut costs = Vec::new();
    for shown in [1, 5] {
        let body = json!({"query": LISTING_PAGE, "variables": {"id": listing_id, "reviews": shown}});
        let measured = fewest(5, LISTING_PAGE_REQUESTS, |_| async {
            let m: Measured = measured_call(GRAPHQL, anonymous(), Method::POST, "/v1/graphql", Some(&body)).await;
            let cost = m.route();
            (m, cost)
        })
        .await;
        let m = &measured.value;
        assert_eq!(m.status, 200, "{}", m.body);
        assert!(m.body.get("errors").is_none(), "{}", m.body);
        let edges = m.body["data"]["listing"]["reviews"]["edges"].as_array().map_or(0, Vec::len);
        assert_eq!(edges, shown.min(2));
        assert_eq!(
            measured.requests, LISTING_PAGE_REQUESTS,
            "{shown} reviews shown: tries {:?}, the function counted {}",
            measured.tries, m.logged
        );
        costs.push(measured.requests);
    }
    assert_eq!(costs[0], costs[1]);
}

#[tokio::test]
async fn private_fields_answer_their_owners_only() {
    roost_e2e::needs_stack!();
    let host = User::host("Graphql Owner Host").await;
    let listing_id = host.api().new_listing(&NewListing::in_city(&unique("Privateville"))).await;
    let guest = User::guest("Graphql Owner Guest").await;
    let stranger = User::guest("Graphql Stranger").await;
    let booked = guest.api().booked(&Stay::new(&listing_id, day(30), day(33), 2)).await;
    let booking_id = s(&booked, "booking_id").to_owned();
    let query = "query($id: String!) { booking(id: $id) { id status guest { userId } price { total currency } payment { status } listing { id title } } me { id email } }";

    // Anonymous: both private fields null, each with REST's code; nothing else leaks.
    // (A failed field is null or, as async-graphql answers, absent: both read as null.)
    let answer = post(anonymous(), query, json!({"id": booking_id})).await;
    assert_eq!((&answer["data"]["booking"], &answer["data"]["me"]), (&Value::Null, &Value::Null), "{answer}");
    assert_eq!(codes(&answer), vec!["unauthorized", "unauthorized"], "{answer}");

    // A stranger: their own `me`, and the booking exactly as an id that does not exist.
    let answer = post(stranger.api(), query, json!({"id": booking_id})).await;
    assert_eq!(answer["data"]["booking"], Value::Null);
    assert_eq!(answer["data"]["me"]["id"], stranger.user_id);
    assert_eq!(answer["data"]["me"]["email"], stranger.email);
    let unknown = post(stranger.api(), query, json!({"id": "bkg_01jh8x3k2m4n5p6q7r8s9t0vwx"})).await;
    assert_eq!(codes(&answer), vec!["not_found"]);
    assert_eq!(answer["errors"][0]["message"], unknown["errors"][0]["message"], "not yours = does not exist");

    // The guest and the host: the booking as REST shows it to each.
    for (who, user) in [("guest", &guest), ("host", &host)] {
        let answer = post(user.api(), query, json!({"id": booking_id})).await;
        assert!(answer.get("errors").is_none(), "{who}: {answer}");
        let rest = json_of(user.api().booking(&booking_id).await, 200).await;
        let b = &answer["data"]["booking"];
        assert_eq!(b["id"], rest["booking_id"]);
        assert_eq!(b["status"], rest["status"]);
        assert_eq!(b["price"]["total"], rest["price"]["total"]);
        assert_eq!(b["payment"]["status"], rest["payment"]["status"]);
        assert_eq!(b["listing"]["id"], json!(listing_id));
        assert_eq!(answer["data"]["me"]["id"], user.user_id);
    }

    // Reservations are the host's: a guest's `me.reservations` is `host_required`.
    let answer = post(guest.api(), "{ me { reservations { edges { node { id } } } } }", json!({})).await;
    assert_eq!(answer["data"]["me"]["reservations"], Value::Null);
    assert_eq!(codes(&answer), vec!["host_required"]);
    // (Reservations are listed from an index the strict stack lets lag.)
    let reservations = "{ me { reservations { edges { node { id guest { userId } } } } } }";
    let answer = until_indexed(
        || async { post(host.api(), reservations, json!({})).await },
        |a: &Value| a["data"]["me"]["reservations"]["edges"].as_array().is_some_and(|e| !e.is_empty()),
    )
    .await;
    let ids: Vec<&Value> = answer["data"]["me"]["reservations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["id"])
        .collect();
    assert_eq!(ids, vec![&json!(booking_id)], "{answer}");

    // A token that is not valid is refused as the REST routes refuse it (401), never read as
    // anonymous.
    let forged = anonymous()
        .call(
            Method::POST,
            "/v1/graphql",
            Some(&json!({"query": "{ me { id } }"})),
            &[("authorization", "Bearer not.a.token")],
        )
        .await;
    assert_problem(forged, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_trips_page_is_one_query_with_each_trips_listing_in_a_batched_read() {
    roost_e2e::needs_stack!();
    let host = User::host("Graphql Trips Host").await;
    let guest = User::guest("Graphql Traveller").await;
    let mut listings = Vec::new();
    for _ in 0..3 {
        listings.push(host.api().new_listing(&NewListing::in_city(&unique("Tripville"))).await);
    }
    for (i, listing_id) in listings.iter().enumerate() {
        let i = i64::try_from(i).expect("small");
        guest.api().booked(&Stay::new(listing_id, day(40 + 3 * i), day(41 + 3 * i), 1)).await;
    }
    // Trips are listed from an index, which the strict stack lets lag: all three, first.
    until_indexed(
        || async { json_of(guest.api().trips("?limit=10").await, 200).await },
        |page: &Value| page["items"].as_array().is_some_and(|items| items.len() == 3),
    )
    .await;
    let body = json!({"query": TRIPS_PAGE, "variables": {"first": 10}});
    let measured = fewest(5, TRIPS_PAGE_REQUESTS, |_| async {
        let m = measured_call(GRAPHQL, guest.api(), Method::POST, "/v1/graphql", Some(&body)).await;
        let cost = m.route();
        (m, cost)
    })
    .await;
    let m = &measured.value;
    assert!(m.body.get("errors").is_none(), "{}", m.body);
    let trips = m.body["data"]["me"]["trips"]["edges"].as_array().expect("edges");
    assert_eq!(trips.len(), 3);
    let rest = json_of(guest.api().trips("?limit=10").await, 200).await;
    for (t, r) in trips.iter().zip(rest["items"].as_array().expect("items")) {
        let n = &t["node"];
        assert_eq!(
            (&n["id"], &n["status"], &n["payment"]["status"]),
            (&r["booking_id"], &r["status"], &r["payment"]["status"])
        );
        assert_eq!(n["listing"]["id"], r["listing_id"]);
        assert_eq!(n["listing"]["title"], r["listing_title"]);
    }
    assert_eq!(
        measured.requests, TRIPS_PAGE_REQUESTS,
        "3 trips with their listings: tries {:?}, the function counted {}",
        measured.tries, m.logged
    );
}

#[tokio::test]
async fn abusive_queries_are_refused_before_they_read() {
    roost_e2e::needs_stack!();
    // Depth: 9 levels of selection.
    let deep = "{ me { trips(first: 1) { edges { node { listing { reviews(first: 1) { edges { node { author { name } } } } } } } } } }";
    let answer = post(anonymous(), deep, json!({})).await;
    assert_eq!(answer["data"], Value::Null, "{answer}");
    assert!(answer["errors"][0]["message"].as_str().is_some_and(|m| m.contains("nested too deep")), "{answer}");
    // (Refused before any resolver: not even `me`'s "sign in" error.)
    assert_eq!(answer["errors"].as_array().map(Vec::len), Some(1), "{answer}");

    // Complexity: a page of 100 listings' 100 reviews each.
    let wide = "{ search(city: \"Lisbon\", first: 100) { edges { node { id title rating { average count } location { city region country } nightlyPrice { amount currency } total { amount currency } } } } }";
    let answer = post(anonymous(), wide, json!({})).await;
    assert!(answer["errors"][0]["message"].as_str().is_some_and(|m| m.contains("too complex")), "{answer}");

    // Aliases: 16 names for one field.
    let aliased: String = (0..16).map(|i| format!("a{i}: user(id: \"x\") {{ id }} ")).collect();
    let answer = post(anonymous(), &format!("{{ {aliased} }}"), json!({})).await;
    assert!(answer["errors"][0]["message"].as_str().is_some_and(|m| m.contains("too many aliases")), "{answer}");

    // Page size: REST's limit, with REST's field error.
    let answer =
        post(anonymous(), "{ search(city: \"Lisbon\", first: 101) { pageInfo { hasNextPage } } }", json!({})).await;
    assert_eq!(codes(&answer), vec!["validation_failed"], "{answer}");

    // A batch of 6 and a query over 8192 characters are not GraphQL requests we run: 400.
    let batch: Vec<Value> = (0..6).map(|_| json!({"query": "{ __typename }"})).collect();
    let response = anonymous().call(Method::POST, "/v1/graphql", Some(&batch), &[]).await;
    assert_problem(response, 400, "validation_failed").await;
    let long = format!("{{ __typename }} #{}", "x".repeat(8200));
    let response = anonymous().call(Method::POST, "/v1/graphql", Some(&json!({"query": long})), &[]).await;
    assert_problem(response, 400, "validation_failed").await;

    // A batch within the bound answers each request, in order.
    let batch = json!([{"query": "{ __typename }"}, {"query": "{ me { id } }"}]);
    let answers = json_of(anonymous().call(Method::POST, "/v1/graphql", Some(&batch), &[]).await, 200).await;
    assert_eq!(answers[0]["data"]["__typename"], "Query");
    assert_eq!(codes(&answers[1]), vec!["unauthorized"]);

    // Introspection is on in this stage (dev): the explorer and code generators use it.
    let answer = post(anonymous(), "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "Query", "{answer}");
}

#[tokio::test]
async fn persisted_queries_run_over_get_and_anonymous_answers_may_be_cached() {
    roost_e2e::needs_stack!();
    let hash: String = Sha256::digest(SEARCH.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let extensions = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}}).to_string();
    let variables = json!({"city": "Nowhere At All", "first": 5}).to_string();
    let query = query_string(&[("extensions", extensions.as_str()), ("variables", variables.as_str())]);
    let response = anonymous().get(&format!("/v1/graphql?{query}")).await;
    assert_eq!(response.headers()["cache-control"], "public, max-age=30");
    let answer = json_of(response, 200).await;
    assert_eq!(answer["data"]["search"]["edges"], json!([]), "{answer}");

    // With a token the same answer is private.
    let guest = User::guest("Graphql Persisted").await;
    let response = guest.api().get(&format!("/v1/graphql?{query}")).await;
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    json_of(response, 200).await;

    // An unknown hash, and a GET without one.
    let unknown = json!({"persistedQuery": {"version": 1, "sha256Hash": "0".repeat(64)}}).to_string();
    let q = query_string(&[("extensions", unknown.as_str())]);
    assert_problem(anonymous().get(&format!("/v1/graphql?{q}")).await, 400, "persisted_query_not_found").await;
    assert_problem(anonymous().get("/v1/graphql").await, 400, "validation_failed").await;

    // POST answers are never kept: `no-store` anonymous, `private, no-store` with a token.
    let response = anonymous().call(Method::POST, "/v1/graphql", Some(&json!({"query": "{ __typename }"})), &[]).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let response = guest.api().call(Method::POST, "/v1/graphql", Some(&json!({"query": "{ __typename }"})), &[]).await;
    assert_eq!(response.headers()["cache-control"], "private, no-store");
}
