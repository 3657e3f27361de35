//! The authorization matrix (issue 17): every route of the template against every kind of caller
//! (`tests/authorization.yaml`, rendered as `docs/authorization.md`). On one listing of a host,
//! booked, paid, stayed and reviewed by a guest, every cell is run against the stack; the test
//! fails on any status but the cell's, on any private value of another fixture person in any
//! answer (ids, e-mails, names, booking ids, the amount), and wherever a real id of someone else
//! gets another answer than a random id (both must be the same 404: no enumeration).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use roost_e2e::authorization::{self, Answer, Expect, RouteCells};
use roost_e2e::fixtures::{TINY_PNG, confirm_with, day_in, end_stay, put_upload, wait_for_inbox, wait_for_status};
use roost_e2e::tokens::{claims_of, sign, signing_keys};
use roost_e2e::{NewListing, NewReview, Stack, Stay, User, client, json_of, login, s, unique};
use serde_json::{Value, json};
use shared::sessions::CACHE_TTL;

use crate::auth::routes;

const TZ: &str = "Europe/Lisbon";

/// The nightly price of the fixture's listing: odd, so its booking's total (2 nights, 25.00
/// cleaning, 12 % fee) is a number no other answer carries by chance.
const NIGHTLY: i64 = 12_345;

#[test]
fn the_matrix_names_every_route_of_the_template_and_no_other() {
    let matrix = authorization::load().unwrap_or_else(|e| panic!("{e}"));
    let declared: BTreeSet<String> = routes().into_iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    let listed: BTreeSet<String> = matrix.routes.iter().map(|r| r.route.clone()).collect();
    let missing: Vec<_> = declared.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&declared).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes of the template missing from tests/authorization.yaml: {missing:?}\n\
         routes of tests/authorization.yaml the template does not declare: {extra:?}"
    );
    // A public route cannot refuse a token it never checks, and a private one always does.
    let public: BTreeSet<String> =
        routes().into_iter().filter(|r| r.public).map(|r| format!("{} {}", r.method, r.path)).collect();
    for route in &matrix.routes {
        let anonymous = route.expect("anonymous").unwrap_or_else(|e| panic!("{e}"));
        let refused_by_gateway = anonymous.status == 401 && anonymous.answer == Answer::Gateway;
        assert_eq!(!public.contains(&route.route), refused_by_gateway, "{}: anonymous {anonymous:?}", route.route);
    }
}

#[test]
fn the_committed_page_is_what_the_matrix_renders() {
    let matrix = authorization::load().unwrap_or_else(|e| panic!("{e}"));
    let rendered = authorization::render(&matrix).unwrap_or_else(|e| panic!("{e}"));
    let committed = std::fs::read_to_string(authorization::doc_path()).unwrap_or_default();
    assert!(
        committed == rendered,
        "docs/authorization.md differs from what tests/authorization.yaml renders to: run `cargo roost authorization` and commit it"
    );
}

/// A fixture person: the values of theirs no one else may see (the e-mail), or only where the
/// matrix says a body may carry them (the id and the name).
struct Person {
    user_id: String,
    name: String,
    email: String,
}

impl Person {
    fn of(user: &User) -> Person {
        Person { user_id: user.user_id.clone(), name: user.name.clone(), email: user.email.clone() }
    }
}

/// One caller as the requests present it: the `Authorization` headers to try (the forged caller
/// has two), and which fixture person it is (none for the tokens that must not work).
struct Caller {
    name: &'static str,
    authorizations: Vec<Option<String>>,
    person: Option<&'static str>,
}

struct Fixture {
    people: BTreeMap<&'static str, Person>,
    callers: Vec<Caller>,
    /// The users the cells act as (live tokens).
    users: BTreeMap<&'static str, User>,
    /// Placeholder -> value, the same for every caller.
    values: BTreeMap<&'static str, String>,
    /// The booking values: ids and the amount.
    booking_ids: Vec<String>,
    amount: i64,
    listing: String,
}

/// The placeholders that name a resource in a path, with the random id of their kind.
fn random_id(placeholder: &str) -> Option<String> {
    let prefix = match placeholder {
        "listing" | "listing_to_archive" => "lst",
        "photo" | "photo_to_delete" => "pho",
        "booking" | "pending_booking" | "fresh_booking" => "bkg",
        "review" => "rev",
        "notification" => "ntf",
        "conversation" => "cnv",
        "calendar_import" => "cim",
        "host_id" => {
            let n = jiff::Timestamp::now().as_nanosecond().unsigned_abs();
            let hex = format!("{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
            return Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]));
        }
        _ => return None,
    };
    Some(shared::ids::new_id_at(prefix, jiff::Timestamp::now()))
}

/// `{name}` placeholders of `text` (`name` in lower case and `_`: a JSON body's own braces are
/// not placeholders).
fn placeholders(text: &str) -> Vec<String> {
    text.split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

fn fill(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// An answer as received.
#[derive(Debug)]
struct Got {
    status: u16,
    content_type: String,
    text: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// What tells two refusals apart: the status, the content type, and the problem's fields
    /// but none that differ per request.
    fn shape(&self) -> (u16, String, Value) {
        let mut body = self.json();
        if let Some(map) = body.as_object_mut() {
            map.remove("request_id");
            map.remove("instance");
        }
        (self.status, self.content_type.clone(), body)
    }
}

/// Sends one request; a 429 (the routes' throttling, shared with every other test on the stack)
/// is sent again with backoff, as a client should.
async fn send(method: &Method, path: &str, authorization: Option<&str>, body: Option<&str>) -> Got {
    let mut wait = Duration::from_millis(200);
    for attempt in 0.. {
        let mut request = client().request(method.clone(), Stack::get().url(path));
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        if let Some(b) = body {
            request = request.header("content-type", "application/json").body(b.to_owned());
        }
        let response = request.send().await.expect("api");
        let status = response.status().as_u16();
        if status == 429 && attempt < 12 {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            continue;
        }
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let text = response.text().await.unwrap_or_default();
        return Got { status, content_type, text };
    }
    unreachable!("the loop returns")
}

/// Every string and number of a JSON body (or the text itself when it is not JSON).
fn leaves(text: &str) -> (Vec<String>, Vec<i64>) {
    fn walk(v: &Value, strings: &mut Vec<String>, numbers: &mut Vec<i64>) {
        match v {
            Value::String(s) => strings.push(s.clone()),
            Value::Number(n) => numbers.extend(n.as_i64()),
            Value::Array(items) => items.iter().for_each(|i| walk(i, strings, numbers)),
            Value::Object(map) => map.iter().for_each(|(k, i)| {
                strings.push(k.clone());
                walk(i, strings, numbers);
            }),
            _ => {}
        }
    }
    let (mut strings, mut numbers) = (Vec::new(), Vec::new());
    match serde_json::from_str::<Value>(text) {
        Ok(v) => walk(&v, &mut strings, &mut numbers),
        Err(_) => strings.push(text.to_owned()),
    }
    (strings, numbers)
}

impl Fixture {
    /// The private values an answer to `caller` must not carry, given the cell, leaving out what
    /// the request itself sent.
    fn forbidden(&self, caller: &Caller, expect: &Expect, request: &str) -> (Vec<(String, String)>, Option<i64>) {
        let mut strings = Vec::new();
        for (who, p) in &self.people {
            let own = caller.person == Some(*who);
            if !own {
                strings.push((format!("{who}'s e-mail"), p.email.clone()));
            }
            if !own && !expect.may_carry(who) {
                strings.push((format!("{who}'s user id"), p.user_id.clone()));
                strings.push((format!("{who}'s name"), p.name.clone()));
            }
        }
        let booking_party = matches!(caller.person, Some("guest" | "host"));
        let mut amount = None;
        if !expect.may_carry("booking") || !booking_party {
            if !expect.may_carry("booking_id") {
                strings.extend(self.booking_ids.iter().map(|id| ("a booking id".to_owned(), id.clone())));
            }
            amount = Some(self.amount);
        }
        strings.retain(|(_, v)| !request.contains(v.as_str()));
        (strings, amount)
    }

    /// Runs one cell (every token of the caller); the failures, each saying what and why.
    async fn run_cell(&self, route: &RouteCells, caller: &Caller, extra: &BTreeMap<String, String>) -> Vec<String> {
        let mut failures = Vec::new();
        let expect = match route.expect(caller.name) {
            Ok(e) => e,
            Err(e) => return vec![e.to_string()],
        };
        let values: BTreeMap<String, String> = self
            .values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .chain(extra.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect();
        let method = Method::from_bytes(route.method().as_bytes()).expect("a method");
        let path = fill(route.path(), &values);
        let body = route.body.as_ref().map(|b| fill(&b.to_string(), &values));
        let request = format!("{path} {}", body.as_deref().unwrap_or(""));
        for (n, authorization) in caller.authorizations.iter().enumerate() {
            let what = format!(
                "{} as {}{}",
                route.route,
                caller.name,
                if n > 0 { format!(" (#{})", n + 1) } else { String::new() }
            );
            // A caller with two tokens signs up twice: the second needs its own new e-mail.
            let body = match (n, values.get("unique_email")) {
                (1.., Some(email)) => body.as_deref().map(|b| b.replace(email.as_str(), &format!("{n}.{email}"))),
                _ => body.clone(),
            };
            let got = send(&method, &path, authorization.as_deref(), body.as_deref()).await;
            let excerpt: String = got.text.chars().take(300).collect();
            if got.status != expect.status {
                let denied =
                    if !expect.is_success() && (200..300).contains(&got.status) { " (ACCESS GRANTED)" } else { "" };
                failures.push(format!("{what}: {} wanted, got {}{denied}: {excerpt}", expect.status, got.status));
                continue;
            }
            let body_json = got.json();
            match &expect.answer {
                Answer::Any => {}
                Answer::Gateway => {
                    if body_json.get("message").is_none() || body_json.get("code").is_some() {
                        failures.push(format!("{what}: API Gateway's own answer wanted: {excerpt}"));
                    }
                }
                Answer::Problem(code) => {
                    if got.content_type != "application/problem+json" || body_json["code"] != code.as_str() {
                        failures.push(format!("{what}: problem `{code}` wanted ({}): {excerpt}", got.content_type));
                    }
                }
            }
            let (strings, amount) = self.forbidden(caller, &expect, &request);
            let (found_strings, found_numbers) = leaves(&got.text);
            for (label, value) in &strings {
                if found_strings.iter().any(|s| s.contains(value.as_str())) {
                    failures.push(format!("{what}: the answer carries {label} ({value}): {excerpt}"));
                }
            }
            if let Some(amount) = amount.filter(|a| found_numbers.contains(a)) {
                failures.push(format!("{what}: the answer carries the booking's amount ({amount}): {excerpt}"));
            }
            // Someone else's real id and a random one must be answered alike.
            let compare = !expect.is_success()
                && caller.person.is_some()
                && (expect.status == 404 || matches!(caller.name, "stranger" | "other_host"));
            let ids: Vec<String> = placeholders(route.path()).into_iter().filter(|p| random_id(p).is_some()).collect();
            if compare && !ids.is_empty() {
                let random: BTreeMap<String, String> =
                    ids.iter().filter_map(|p| random_id(p).map(|id| (p.clone(), id))).collect();
                let random_path = fill(&fill(route.path(), &random), &values);
                let other = send(&method, &random_path, authorization.as_deref(), body.as_deref()).await;
                if other.shape() != got.shape() {
                    failures.push(format!(
                        "{what}: a real id of someone else and a random id are answered differently: {} {} vs {} {}",
                        got.status, got.text, other.status, other.text
                    ));
                }
            }
        }
        failures
    }
}

/// `alg: none`: the claims, unsigned.
fn unsigned(claims: &serde_json::Map<String, Value>) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": "dummy"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
    format!("{header}.{payload}.")
}

/// `iat` has one-second resolution and the revocation's own second is refused.
async fn next_second() {
    let into = jiff::Timestamp::now().subsec_nanosecond();
    let into = Duration::from_nanos(u64::try_from(into).unwrap_or(0));
    tokio::time::sleep(Duration::from_secs(1) - into + Duration::from_millis(50)).await;
}

/// A pending booking of `guest` on the listing, `from` days ahead for two nights.
async fn pending(guest: &User, listing: &str, from: i64) -> Value {
    guest.api().booked(&Stay::new(listing, day_in(TZ, from), day_in(TZ, from + 2), 1)).await
}

/// Cancels the guest's pending bookings other than the fixture's, so a new one stays within the
/// limit of pending holds (bookings the cells made, or one a denied cancel left). Reads the trips
/// index, which may lag a moment: the booking a cell just made is cancelled by id instead.
async fn make_room(guest: &User, keep: &[String], also: Option<&str>) {
    let trips = json_of(guest.api().trips("?status=pending_payment").await, 200).await;
    let listed = trips["items"].as_array().into_iter().flatten().filter_map(|t| t["booking_id"].as_str());
    for id in listed.chain(also).filter(|id| !keep.iter().any(|k| k == id)) {
        // 200, or 409 when a cell already cancelled it: either way it no longer holds a slot.
        let _ = guest.api().cancel(id, &roost_e2e::Cancel::default()).await;
    }
}

/// A completed photo of the listing.
async fn photo(host: &User, listing: &str) -> String {
    let photos = format!("/v1/listings/{listing}/photos");
    let announce = json!({"content_type": "image/png", "content_length": TINY_PNG.len()});
    let upload = json_of(host.post(&photos, Some(&announce)).await, 201).await;
    let id = s(&upload, "photo_id").to_owned();
    assert!(put_upload(&upload, TINY_PNG).await.status().is_success());
    json_of(host.post(&format!("{photos}/{id}/complete"), None).await, 200).await;
    id
}

async fn fixture() -> Fixture {
    // Names unique to this run, so that finding one in an answer means what it says.
    let tag = unique("");
    let names = [
        format!("Hana Host {tag}"),
        format!("Otto Otherhost {tag}"),
        format!("Stella Stranger {tag}"),
        format!("Gil Guest {tag}"),
    ];
    let (host, other_host, stranger, guest) =
        tokio::join!(User::host(&names[0]), User::host(&names[1]), User::guest(&names[2]), User::guest(&names[3]),);
    // The guest signs out: that token is the signed-out caller's; a sign-in in a later second is
    // the guest's live one.
    let signed_out_token = guest.access_token.clone();
    let signed_out_at = Instant::now();
    assert_eq!(guest.post("/v1/auth/logout", None).await.status(), 204, "sign-out");
    next_second().await;
    let tokens = login(&guest.email, &guest.password).await;
    let guest = User {
        access_token: s(&tokens, "access_token").to_owned(),
        id_token: s(&tokens, "id_token").to_owned(),
        refresh_token: s(&tokens, "refresh_token").to_owned(),
        ..guest
    };

    let city = unique("Authzville");
    let listing_body = NewListing {
        nightly_price: roost_e2e::api::money(NIGHTLY, "EUR"),
        min_nights: Some(1),
        ..NewListing::in_city(&city)
    };
    let listing = host.api().new_listing(&listing_body).await;
    let to_archive = host.api().new_listing(&listing_body).await;
    let photo_id = photo(&host, &listing).await;
    let photo_to_delete = photo(&host, &listing).await;
    let feed = json_of(host.post(&format!("/v1/listings/{listing}/calendar-token"), None).await, 200).await;
    let feed_token = s(&feed, "token").to_owned();
    let import = json!({"url": "https://calendar.example.com/authorization-fixture.ics"});
    let import =
        json_of(host.post(&format!("/v1/listings/{listing}/calendar-imports"), Some(&import)).await, 201).await;
    let calendar_import = s(&import, "import_id").to_owned();

    // The booking: paid, stayed, reviewed; its inbox item.
    let booked = pending(&guest, &listing, 10).await;
    let booking = s(&booked, "booking_id").to_owned();
    let amount = booked["price"]["total"]["amount"]
        .as_i64()
        .or_else(|| booked["price"]["total"].as_i64())
        .unwrap_or_else(|| panic!("the booking's total: {booked}"));
    let intent = json_of(guest.api().pay(&booking, None).await, 200).await;
    let (status, confirmed) = confirm_with(s(&intent, "payment_intent_id"), "pm_card_visa").await;
    assert_eq!(status, 200, "{confirmed}");
    wait_for_status(&guest, &booking, "confirmed").await;
    let notification = s(&wait_for_inbox(&guest, "booking.confirmed", &booking).await, "notification_id").to_owned();
    end_stay(&booking).await;
    let review = NewReview { rating: 5, comment: "Quiet and bright.".into() };
    let review = s(&json_of(guest.api().review(&booking, &review).await, 201).await, "review_id").to_owned();
    let pending_booking = s(&pending(&guest, &listing, 20).await, "booking_id").to_owned();
    let inquiry = json!({"listing_id": listing, "text": "Is it quiet?"});
    let conversation =
        s(&json_of(guest.post("/v1/conversations", Some(&inquiry)).await, 201).await, "conversation_id").to_owned();

    // The tokens that must not work.
    let (moto_key, other_key) = signing_keys();
    let now = jiff::Timestamp::now().as_second();
    let mut expired = claims_of(&host.access_token);
    expired.insert("iat".into(), json!(now - 7200));
    expired.insert("exp".into(), json!(now - 3600));
    let live = claims_of(&guest.access_token);
    let bearer = |t: String| Some(format!("Bearer {t}"));
    let callers = vec![
        Caller { name: "anonymous", authorizations: vec![None], person: None },
        Caller {
            name: "stranger",
            authorizations: vec![bearer(stranger.access_token.clone())],
            person: Some("stranger"),
        },
        Caller { name: "guest", authorizations: vec![bearer(guest.access_token.clone())], person: Some("guest") },
        Caller { name: "host", authorizations: vec![bearer(host.access_token.clone())], person: Some("host") },
        Caller {
            name: "other_host",
            authorizations: vec![bearer(other_host.access_token.clone())],
            person: Some("other_host"),
        },
        Caller { name: "signed_out", authorizations: vec![bearer(signed_out_token)], person: None },
        Caller { name: "expired", authorizations: vec![bearer(sign(&expired, &moto_key))], person: None },
        Caller {
            name: "forged",
            authorizations: vec![bearer(sign(&live, &other_key)), bearer(unsigned(&live))],
            person: None,
        },
    ];

    let values = BTreeMap::from([
        ("listing", listing.clone()),
        ("listing_to_archive", to_archive),
        ("photo", photo_id),
        ("photo_to_delete", photo_to_delete),
        ("booking", booking.clone()),
        ("pending_booking", pending_booking.clone()),
        ("review", review),
        ("notification", notification),
        ("conversation", conversation),
        ("host_id", host.user_id.clone()),
        ("guest_email", guest.email.clone()),
        ("unknown_email", format!("{}@nobody.roost.dev", unique("nobody"))),
        ("block_day", day_in(TZ, 120)),
        ("city", roost_e2e::fixtures::q(&city)),
        ("feed_token", feed_token),
        ("calendar_import", calendar_import),
    ]);
    let people = BTreeMap::from([
        ("stranger", Person::of(&stranger)),
        ("guest", Person::of(&guest)),
        ("host", Person::of(&host)),
        ("other_host", Person::of(&other_host)),
    ]);
    let users = BTreeMap::from([("stranger", stranger), ("guest", guest), ("host", host), ("other_host", other_host)]);
    // Every process that could have cached the guest's session as live has let it go.
    tokio::time::sleep(
        (signed_out_at + CACHE_TTL + Duration::from_millis(200)).saturating_duration_since(Instant::now()),
    )
    .await;
    Fixture { people, callers, users, values, booking_ids: vec![booking, pending_booking], amount, listing }
}

/// The placeholders that differ per caller: a three-night stay (each caller its own nights) and
/// a new e-mail.
fn per_caller(index: usize) -> BTreeMap<String, String> {
    let from = 40 + 4 * i64::try_from(index).unwrap_or(0);
    BTreeMap::from([
        ("stay_in".to_owned(), day_in(TZ, from)),
        ("stay_out".to_owned(), day_in(TZ, from + 3)),
        ("unique_email".to_owned(), format!("{}@test.roost.dev", unique("matrix-signup-"))),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_caller_gets_what_the_matrix_says_on_every_route() {
    roost_e2e::needs_stack!();
    let matrix = authorization::load().unwrap_or_else(|e| panic!("{e}"));
    for route in &matrix.routes {
        let mut texts = vec![route.path().to_owned()];
        texts.extend(route.body.as_ref().map(Value::to_string));
        for p in texts.iter().flat_map(|t| placeholders(t)) {
            let known = [
                "listing",
                "listing_to_archive",
                "photo",
                "photo_to_delete",
                "booking",
                "pending_booking",
                "fresh_booking",
                "review",
                "notification",
                "conversation",
                "host_id",
                "guest_email",
                "unknown_email",
                "unique_email",
                "stay_in",
                "stay_out",
                "block_day",
                "city",
                "feed_token",
                "calendar_import",
            ];
            assert!(known.contains(&p.as_str()), "{}: unknown placeholder {{{p}}}", route.route);
        }
    }
    let fixture = Arc::new(fixture().await);
    let matrix = Arc::new(matrix);

    // Phase 1: every cell at once, bounded (the stack runs 8 processes a function).
    let permits = Arc::new(tokio::sync::Semaphore::new(6));
    let mut tasks = Vec::new();
    for (r, route) in matrix.routes.iter().enumerate().filter(|(_, r)| r.phase == 1) {
        let _ = route;
        for c in 0..fixture.callers.len() {
            let (fixture, matrix, permits) = (fixture.clone(), matrix.clone(), permits.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.expect("semaphore");
                fixture.run_cell(&matrix.routes[r], &fixture.callers[c], &per_caller(c)).await
            }));
        }
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.expect("a cell panicked"));
    }

    // Phases 2 and 3, one cell at a time: cancellations (the guest and the host each cancel a
    // booking made for them), then sign-outs.
    let guest = &fixture.users["guest"];
    for phase in [2, 3] {
        for route in matrix.routes.iter().filter(|r| r.phase == phase) {
            for (c, caller) in fixture.callers.iter().enumerate() {
                let mut extra = per_caller(c);
                let made = phase == 2 && matches!(caller.person, Some("guest" | "host"));
                if made {
                    make_room(guest, &fixture.booking_ids, None).await;
                }
                let fresh = if made {
                    s(
                        &pending(&fixture.users["guest"], &fixture.listing, 60 + 3 * i64::try_from(c).unwrap_or(0))
                            .await,
                        "booking_id",
                    )
                    .to_owned()
                } else {
                    fixture.values["pending_booking"].clone()
                };
                extra.insert("fresh_booking".into(), fresh.clone());
                failures.extend(fixture.run_cell(route, caller, &extra).await);
                if made {
                    make_room(guest, &fixture.booking_ids, Some(&fresh)).await;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells of tests/authorization.yaml failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
