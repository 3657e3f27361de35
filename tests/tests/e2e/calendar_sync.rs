//! Calendar sync end to end: the export feed (secret token, rotation, ETag/304, no personal
//! data) and imports of a feed this test serves on loopback (the local stack allows `http` on
//! loopback only: `ROOST_CALENDAR_FEEDS_ALLOW_LOOPBACK`), applied by `CalendarSyncFunction`
//! invoked as its schedule does: imported nights unavailable, freed when the feed drops them,
//! a Roost booking never touched but reported, a broken feed an error on the import.

use std::sync::{Arc, Mutex};

use jiff::civil::Date;
use reqwest::Method;
use roost_e2e::fixtures::{day_in, q};
use roost_e2e::{
    NewListing, Stack, User, anonymous, assert_problem, client, dynamodb, json_of, s, unique, until_indexed,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TZ: &str = "Europe/Lisbon";

fn day(days: i64) -> String {
    day_in(TZ, days)
}

fn basic(days: i64) -> String {
    day(days).replace('-', "")
}

async fn new_listing(host: &User, city: &str) -> String {
    let body = NewListing { timezone: TZ.into(), min_nights: Some(1), ..NewListing::in_city(city) };
    host.api().new_listing(&body).await
}

/// An HTTP server on loopback answering every request with the current body.
struct Feed {
    body: Arc<Mutex<String>>,
    url: String,
}

impl Feed {
    async fn serve(body: &str) -> Feed {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/feed.ics", listener.local_addr().expect("addr"));
        let shared = Arc::new(Mutex::new(body.to_owned()));
        let served = shared.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let body = served.lock().expect("body").clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut read = 0;
                    while let Ok(n) = socket.read(&mut buf[read..]).await {
                        read += n;
                        if n == 0 || buf[..read].windows(4).any(|w| w == b"\r\n\r\n") || read == buf.len() {
                            break;
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Feed { body: shared, url }
    }

    fn set(&self, body: &str) {
        *self.body.lock().expect("body") = body.to_owned();
    }
}

/// An Airbnb-shaped feed (CRLF, folded line) with all-day events `[from, to)` in days from today.
fn airbnb_feed(events: &[(i64, i64)]) -> String {
    let mut out = String::from(
        "BEGIN:VCALENDAR\r\nPRODID;X-RICAL-TZSOURCE=TZINFO:-//Airbnb Inc//Hosting Calendar 1.0//EN\r\nCALSCALE:GREGORIAN\r\nVERSION:2.0\r\n",
    );
    for (i, (from, to)) in events.iter().enumerate() {
        out.push_str(&format!(
            "BEGIN:VEVENT\r\nDTEND;VALUE=DATE:{}\r\nDTSTART;VALUE=DATE:{}\r\nUID:e2e-{i}-{}@airbnb.com\r\nDESCRIPTION:Reservation URL: https://www.airbnb.com/hosting/reservations/de\r\n tails/HM{i}\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n",
            basic(*to),
            basic(*from),
            unique("u")
        ));
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// Makes the import due now and runs the sync as its schedule does (once the due index shows it).
async fn sync(listing: &str, import_id: &str) -> Value {
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(1);
    let due = format!("{}#{import_id}", shared::night::instant(past));
    dynamodb(
        "UpdateItem",
        json!({
            "Key": {"PK": {"S": format!("LISTING#{listing}")}, "SK": {"S": format!("CALIMPORT#{import_id}")}},
            "UpdateExpression": "SET GSI3SK = :sk",
            "ExpressionAttributeValues": {":sk": {"S": due}},
        }),
    )
    .await;
    let query = json!({
        "IndexName": "GSI3",
        "KeyConditionExpression": "GSI3PK = :pk AND GSI3SK = :sk",
        "ExpressionAttributeValues": {":pk": {"S": "CALSYNC"}, ":sk": {"S": due}},
    });
    until_indexed(|| dynamodb("Query", query.clone()), |page| page["Count"] == 1).await;
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let (outcome, summary) = Stack::get().invoke("CalendarSyncFunction", &event).await;
    assert_eq!(outcome, "response", "{summary}");
    summary
}

async fn import_of(host: &User, listing: &str, import_id: &str) -> Value {
    let list = json_of(host.get(&format!("/v1/listings/{listing}/calendar-imports")).await, 200).await;
    list["items"].as_array().expect("items").iter().find(|i| i["import_id"] == import_id).cloned().expect("the import")
}

async fn availability(listing: &str, from: i64, to: i64) -> Vec<(String, bool)> {
    let path = format!("/v1/listings/{listing}/availability?from={}&to={}", day(from), day(to));
    let cal = json_of(anonymous().get(&path).await, 200).await;
    cal["nights"]
        .as_array()
        .expect("nights")
        .iter()
        .map(|n| (n["date"].as_str().expect("date").to_owned(), n["available"] == true))
        .collect()
}

fn unavailable(nights: &[(String, bool)]) -> Vec<String> {
    nights.iter().filter(|(_, free)| !free).map(|(d, _)| d.clone()).collect()
}

fn days(from: i64, to: i64) -> Vec<String> {
    (from..to).map(day).collect()
}

async fn search_ids(city: &str, check_in: i64, check_out: i64) -> Vec<String> {
    let query = format!("city={}&check_in={}&check_out={}", q(city), day(check_in), day(check_out));
    let page = json_of(anonymous().search(&query).await, 200).await;
    page["items"].as_array().expect("items").iter().map(|i| s(i, "listing_id").to_owned()).collect()
}

#[tokio::test]
async fn the_export_feed_has_stays_and_blocks_no_personal_data_and_a_rotatable_secret() {
    roost_e2e::needs_stack!();
    let host = User::host("Cal Export Host").await;
    let guest = User::guest("Gwen Calendarguest").await;
    let listing = new_listing(&host, &unique("Icaltown")).await;
    let no_token = format!("/v1/listings/{listing}/calendar.ics");
    assert_problem(anonymous().get(&no_token).await, 404, "not_found").await;
    assert_problem(host.get(&format!("/v1/listings/{listing}/calendar-token")).await, 404, "no_calendar_token").await;

    // A stay and a block.
    let stay = json!({"listing_id": listing, "check_in": day(20), "check_out": day(23), "guests": 1});
    let booking = guest.api().booked(&stay).await;
    let booking_id = s(&booking, "booking_id").to_owned();
    let blocked = json!({"block": [day(30), day(31)]});
    json_of(host.send(Method::PUT, &format!("/v1/listings/{listing}/blocked-dates"), Some(&blocked)).await, 200).await;

    let feed = json_of(host.post(&format!("/v1/listings/{listing}/calendar-token"), None).await, 200).await;
    let path = s(&feed, "path").to_owned();
    assert!(s(&feed, "url").ends_with(&path), "{feed}");
    assert_eq!(json_of(host.get(&format!("/v1/listings/{listing}/calendar-token")).await, 200).await["path"], path);
    let response = anonymous().get(&path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/calendar; charset=utf-8");
    let cache = response.headers()["cache-control"].to_str().expect("cache-control").to_owned();
    assert!(cache.starts_with("private, max-age="), "{cache}");
    let etag = response.headers()["etag"].to_str().expect("etag").to_owned();
    let text = response.text().await.expect("feed");
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.contains("\r\nEND:VCALENDAR"), "{text}");
    // Parses back (the listings context's own reader): the stay's and the block's nights.
    let zone = jiff::tz::TimeZone::get(TZ).expect("zone");
    let today: Date = day(0).parse().expect("today");
    let nights =
        listings::ical::parse_feed(&text, &zone, today, today.checked_add(jiff::Span::new().days(60)).expect("date"))
            .expect("the export parses");
    let nights: Vec<String> = nights.iter().map(ToString::to_string).collect();
    assert_eq!(nights, [days(20, 23), days(30, 32)].concat());
    assert!(
        text.contains(&format!("DTSTART;VALUE=DATE:{}\r\nDTEND;VALUE=DATE:{}", basic(20), basic(23)))
            || text.contains(&format!("DTEND;VALUE=DATE:{}", basic(23))),
        "{text}"
    );
    assert!(text.contains("SUMMARY:Reserved") && text.contains("SUMMARY:Not available"), "{text}");
    assert!(text.contains(&format!("UID:{}", listings::ical::stay_uid(&booking_id))), "{text}");
    for private in [guest.name.as_str(), guest.email.as_str(), booking_id.as_str(), "amount", "EUR", &guest.user_id] {
        assert!(!text.contains(private), "the feed carries {private}: {text}");
    }

    // ETag: 304 with the same tag; a wrong token, a missing one and an unknown listing are one 404.
    let again = client().get(Stack::get().url(&path)).header("if-none-match", &etag).send().await.expect("api");
    assert_eq!(again.status(), 304);
    let wrong = path.replace("token=", "token=x");
    assert_problem(anonymous().get(&wrong).await, 404, "not_found").await;
    let unknown = path.replace(&listing, &shared::ids::new_id("lst"));
    assert_problem(anonymous().get(&unknown).await, 404, "not_found").await;

    // Rotation: the old URL is a 404 at once, the new one serves the same feed.
    let rotated = json_of(host.post(&format!("/v1/listings/{listing}/calendar-token"), None).await, 200).await;
    assert_ne!(s(&rotated, "path"), path);
    assert_problem(anonymous().get(&path).await, 404, "not_found").await;
    let fresh = anonymous().get(s(&rotated, "path")).await;
    assert_eq!(fresh.status(), 200);
    assert_eq!(fresh.headers()["etag"].to_str().expect("etag"), etag, "same nights, same tag");

    // Someone else's listing: 404 for another host, 403 for a guest.
    let other = User::host("Cal Other Host").await;
    assert_problem(other.post(&format!("/v1/listings/{listing}/calendar-token"), None).await, 404, "not_found").await;
    assert_problem(guest.post(&format!("/v1/listings/{listing}/calendar-token"), None).await, 403, "host_required")
        .await;
}

#[tokio::test]
async fn imported_nights_are_unavailable_freed_when_dropped_and_never_over_a_booking() {
    roost_e2e::needs_stack!();
    let host = User::host("Cal Import Host").await;
    let guest = User::guest("Gus Importguest").await;
    let city = unique("Importville");
    let listing = new_listing(&host, &city).await;
    let imports = format!("/v1/listings/{listing}/calendar-imports");

    // A guest's booking on days 14-16, then a feed over 10-12 and 15-17.
    let stay = json!({"listing_id": listing, "check_in": day(14), "check_out": day(16), "guests": 1});
    let booking_id = s(&guest.api().booked(&stay).await, "booking_id").to_owned();
    let feed = Feed::serve(&airbnb_feed(&[(10, 12), (15, 17)])).await;

    // Validation: https only (http on loopback is the local stack's exception), no private hosts.
    for bad in ["ftp://example.com/x.ics", "http://10.0.0.7/x.ics", "https://169.254.169.254/latest", "not a url"] {
        assert_problem(host.post(&imports, Some(&json!({"url": bad}))).await, 400, "validation_failed").await;
    }
    let created = json_of(host.post(&imports, Some(&json!({"url": feed.url, "name": "Airbnb"}))).await, 201).await;
    let import_id = s(&created, "import_id").to_owned();
    assert_eq!(created["last_fetched_at"], Value::Null);
    assert_problem(host.post(&imports, Some(&json!({"url": feed.url}))).await, 409, "import_exists").await;
    let other = User::host("Cal Import Other").await;
    assert_problem(other.get(&imports).await, 404, "not_found").await;
    assert_problem(other.send(Method::DELETE, &format!("{imports}/{import_id}"), None).await, 404, "not_found").await;

    sync(&listing, &import_id).await;
    let state = import_of(&host, &listing, &import_id).await;
    assert_eq!(state["last_error"], Value::Null, "{state}");
    assert!(state["last_synced_at"].is_string(), "{state}");
    assert_eq!(state["night_count"], 3, "10, 11 and 16: 15 is the booking's: {state}");
    assert_eq!(state["conflicts"], json!([{"date": day(15), "booking_id": booking_id}]), "{state}");
    // The host is told, in the inbox (and by e-mail), once.
    let told = roost_e2e::fixtures::wait_for_inbox(&host, "calendar.conflict", &booking_id).await;
    assert!(told.to_string().contains("clashes with a booking"), "{told}");
    let taken = unavailable(&availability(&listing, 8, 20).await);
    assert_eq!(taken, [days(10, 12), days(14, 17)].concat());
    // The booking still holds its nights.
    let nights = roost_e2e::night_items(&listing).await;
    for d in days(14, 16) {
        assert!(
            nights
                .iter()
                .any(|(date, kind, b)| *date == d && kind == "held" && b.as_deref() == Some(booking_id.as_str())),
            "{d}: {nights:?}"
        );
    }
    // Quote and booking refuse an imported night; search leaves the listing out for those dates.
    let over = json!({"listing_id": listing, "check_in": day(10), "check_out": day(12), "guests": 1});
    let quote = json_of(anonymous().quote(&over).await, 200).await;
    assert_eq!(quote["available"], false, "{quote}");
    assert_eq!(quote["unavailable_dates"], json!(days(10, 12)), "{quote}");
    assert_problem(guest.api().book(&over, None).await, 409, "dates_unavailable").await;
    assert!(until_indexed(|| search_ids(&city, 10, 12), |ids| ids.is_empty()).await.is_empty());
    assert_eq!(until_indexed(|| search_ids(&city, 5, 7), |ids| !ids.is_empty()).await, vec![listing.clone()]);

    // The feed drops 10-12: freed at the next sync; the conflict is still the one conflict.
    feed.set(&airbnb_feed(&[(15, 17)]));
    sync(&listing, &import_id).await;
    assert_eq!(unavailable(&availability(&listing, 8, 20).await), days(14, 17));
    let state = import_of(&host, &listing, &import_id).await;
    assert_eq!(state["night_count"], 1, "{state}");
    assert_eq!(state["conflicts"].as_array().map(Vec::len), Some(1), "{state}");
    let inbox = json_of(host.api().notifications("?limit=100").await, 200).await;
    let conflicts = inbox["items"].as_array().into_iter().flatten().filter(|i| i["type"] == "calendar.conflict");
    assert_eq!(conflicts.count(), 1, "told once, not at every sync: {inbox}");

    // A broken feed: an error on the import, the nights as the last good feed left them.
    feed.set("<html><body>Please sign in</body></html>");
    sync(&listing, &import_id).await;
    let state = import_of(&host, &listing, &import_id).await;
    assert!(state["last_error"].as_str().is_some_and(|e| e.contains("not an iCalendar file")), "{state}");
    assert_eq!(state["night_count"], 1, "{state}");
    assert_eq!(unavailable(&availability(&listing, 8, 20).await), days(14, 17));

    // Deleting the import frees its nights, never the booking's.
    let response = host.send(Method::DELETE, &format!("{imports}/{import_id}"), None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(unavailable(&availability(&listing, 8, 20).await), days(14, 16));
    assert_problem(host.send(Method::DELETE, &format!("{imports}/{import_id}"), None).await, 404, "not_found").await;
    let list = json_of(host.get(&imports).await, 200).await;
    assert_eq!(list["items"], json!([]));
}
