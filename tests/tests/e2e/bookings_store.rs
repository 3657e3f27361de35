//! The bookings transaction itself (`bookings::store::create`) against the stack's DynamoDB:
//! each of its conditions decides alone, deterministically, which the HTTP races can only
//! show by chance. Listings are made through the HTTP API; the store is called directly with
//! what a booking request would have computed, possibly from a stale read.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use bookings::rules::{self, NewBooking, SlotClaim, Stay};
use bookings::store::{self, CreateError};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use roost_e2e::{Stack, User, night_items, unique};
use serde_json::json;
use shared::Table;
use shared::booking::{BookingItem, Party};
use shared::idempotency::{IdempotencyKey, Idempotent, StoredResponse};
use shared::listing::ListingItem;
use shared::payout::PayoutItem;

fn table() -> Table {
    let stack = Stack::get();
    let conf = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .endpoint_url(&stack.moto_url);
    Table::from_conf(conf, stack.table_name.clone().expect("table_name"))
}

fn day(days: i64) -> Date {
    let today = roost_e2e::fixtures::today_in("Europe/Lisbon");
    today.checked_add(jiff::Span::new().days(days)).expect("date")
}

async fn listing(host: &User, max_nights: u32) -> String {
    let body = json!({
        "title": "Store loft", "property_type": "apartment",
        "address": {"line1": "Rua 1", "city": unique("Storeville"), "country": "PT"},
        "timezone": "Europe/Lisbon", "max_guests": 2, "bedrooms": 1, "beds": 1, "bathrooms": 1,
        "nightly_price": {"amount": 10000, "currency": "EUR"}, "min_nights": 1, "max_nights": max_nights,
        "cancellation_policy": "flexible"
    });
    let response = host.post("/v1/listings", Some(&body)).await;
    assert_eq!(response.status(), 201);
    response.json::<serde_json::Value>().await.expect("json")["listing_id"].as_str().expect("id").to_owned()
}

async fn read(table: &Table, lid: &str) -> ListingItem {
    store::listing(table, lid).await.expect("read").expect("listing")
}

/// A guest id of its own (`guest-1-<unique>`): tests run in parallel, and each guest has only
/// three hold slots.
fn guest_id(name: &str) -> String {
    unique(&format!("{name}-"))
}

/// A hold slot judged free with no item: what a guest's first booking takes.
fn empty_slot(n: u32) -> SlotClaim {
    SlotClaim { slot: n, seen_booking: None }
}

/// The booking item a request would write for `[from, to)` on `l` as it was read, by `guest`
/// (a user id).
fn booking(l: &ListingItem, guest: &str, from: i64, to: i64, now: Timestamp) -> (BookingItem, Vec<Date>) {
    let stay = Stay { listing_id: l.listing_id.clone(), check_in: day(from), check_out: day(to), guests: 1 };
    let nights = stay.nights();
    let price = rules::price(l.fields.nightly_price, l.fields.cleaning_fee, &nights).expect("price");
    let id = shared::ids::new_id_at("bkg", now);
    let item = rules::booking_item(
        l,
        NewBooking {
            booking_id: &id,
            stay: &stay,
            guest: Party { user_id: guest.to_owned(), name: "G".to_owned() },
            price,
            now,
            hold: SignedDuration::from_mins(15),
        },
    )
    .expect("item");
    (item, nights)
}

/// Why `store::create` refused a booking, comparable in assertions.
#[derive(Debug, PartialEq)]
enum CreateFailure {
    Duplicate,
    ListingChanged,
    NightsTaken(Vec<Date>),
    HoldSlotTaken,
}

/// `store::create`, its refusals as `CreateFailure`; a table error fails the test.
async fn create(
    table: &Table,
    b: &BookingItem,
    nights: &[Date],
    slot: &SlotClaim,
    now: Timestamp,
    idempotency: Option<(&Idempotent, StoredResponse)>,
) -> Result<(), CreateFailure> {
    let payout = PayoutItem::scheduled(b, 300, now).expect("payout terms");
    let new = store::NewBookingItems { booking: b, payout: &payout, nights, slot };
    match store::create(table, new, now, idempotency).await {
        Ok(()) => Ok(()),
        Err(CreateError::Duplicate) => Err(CreateFailure::Duplicate),
        Err(CreateError::ListingChanged) => Err(CreateFailure::ListingChanged),
        Err(CreateError::NightsTaken(dates)) => Err(CreateFailure::NightsTaken(dates)),
        Err(CreateError::HoldSlotTaken) => Err(CreateFailure::HoldSlotTaken),
        Err(CreateError::Table(e)) => panic!("transaction: {e}"),
    }
}

async fn nights_stored(lid: &str) -> usize {
    night_items(lid).await.len()
}

async fn exists(table: &Table, booking_id: &str) -> bool {
    store::booking(table, booking_id).await.expect("read").is_some()
}

#[tokio::test]
async fn a_booking_priced_at_an_older_version_or_on_an_archived_listing_is_refused() {
    roost_e2e::needs_stack!();
    let table = table();
    let host = User::host("Vic Version").await;
    let lid = listing(&host, 30).await;
    let stale = read(&table, &lid).await;
    let now = Timestamp::now();
    let (item, nights) = booking(&stale, &guest_id("guest-1"), 10, 12, now);

    // The price changes after the read: the version moves on, the stale booking is refused.
    let patch = json!({"nightly_price": {"amount": 11000, "currency": "EUR"}});
    assert_eq!(host.send(Method::PATCH, &format!("/v1/listings/{lid}"), Some(&patch)).await.status(), 200);
    let outcome = create(&table, &item, &nights, &empty_slot(1), now, None).await;
    assert_eq!(outcome, Err(CreateFailure::ListingChanged));
    assert!(!exists(&table, &item.booking_id).await);
    assert_eq!(nights_stored(&lid).await, 0, "a cancelled transaction writes no night");

    // Priced at the current version: accepted, at the new price.
    let fresh = read(&table, &lid).await;
    assert!(fresh.version > stale.version);
    let (item, nights) = booking(&fresh, &guest_id("guest-1"), 10, 12, now);
    assert_eq!(item.price.nightly[0].amount, 11000);
    assert_eq!(create(&table, &item, &nights, &empty_slot(1), now, None).await, Ok(()));
    assert_eq!(nights_stored(&lid).await, 2);

    // A description edit does not change the version: a booking priced before it still goes.
    let before = read(&table, &lid).await;
    let patch = json!({"description": "Now with plants."});
    assert_eq!(host.send(Method::PATCH, &format!("/v1/listings/{lid}"), Some(&patch)).await.status(), 200);
    let (item, nights) = booking(&before, &guest_id("guest-2"), 20, 21, now);
    assert_eq!(create(&table, &item, &nights, &empty_slot(1), now, None).await, Ok(()));

    // Archived after the read: refused too.
    let (item, nights) = booking(&read(&table, &lid).await, &guest_id("guest-3"), 25, 27, now);
    assert_eq!(host.send(Method::DELETE, &format!("/v1/listings/{lid}"), None).await.status(), 204);
    let outcome = create(&table, &item, &nights, &empty_slot(1), now, None).await;
    assert_eq!(outcome, Err(CreateFailure::ListingChanged));
    assert_eq!(nights_stored(&lid).await, 3);
}

#[tokio::test]
async fn taken_nights_are_named_and_a_duplicate_is_told_apart() {
    roost_e2e::needs_stack!();
    let table = table();
    let host = User::host("Nia Nights").await;
    let lid = listing(&host, 30).await;
    let l = read(&table, &lid).await;
    let now = Timestamp::now();
    let key = IdempotencyKey::parse(&unique("k")).expect("key");
    let request = Idempotent::new("guest-1", "POST /v1/bookings", &key, b"{}");
    let (first, nights) = booking(&l, &guest_id("guest-1"), 10, 13, now);
    let response = StoredResponse { status: 201, body: format!("{{\"booking_id\":\"{}\"}}", first.booking_id) };
    let outcome = create(&table, &first, &nights, &empty_slot(1), now, Some((&request, response.clone()))).await;
    assert_eq!(outcome, Ok(()));

    // Other bookings over some of its nights: exactly those are named.
    let (second, nights) = booking(&l, &guest_id("guest-2"), 12, 15, now);
    let outcome = create(&table, &second, &nights, &empty_slot(1), now, None).await;
    assert_eq!(outcome, Err(CreateFailure::NightsTaken(vec![day(12)])));
    let (third, nights) = booking(&l, &guest_id("guest-2"), 8, 12, now);
    let outcome = create(&table, &third, &nights, &empty_slot(1), now, None).await;
    assert_eq!(outcome, Err(CreateFailure::NightsTaken(vec![day(10), day(11)])));

    // The same key again (its nights are taken too): the record's failure is the one reported.
    let (again, nights) = booking(&l, &guest_id("guest-1"), 10, 13, now);
    let outcome = create(&table, &again, &nights, &empty_slot(1), now, Some((&request, response))).await;
    assert_eq!(outcome, Err(CreateFailure::Duplicate));
    let replay = request.lookup(&table, now).await.expect("lookup");
    assert!(matches!(replay, shared::idempotency::Lookup::Replay(r) if r.body.contains(&first.booking_id)));
    for b in [&second, &third, &again] {
        assert!(!exists(&table, &b.booking_id).await);
    }
    assert_eq!(nights_stored(&lid).await, 3);
}

#[tokio::test]
async fn a_ninety_night_stay_with_its_idempotency_record_fits_one_transaction() {
    roost_e2e::needs_stack!();
    let table = table();
    let host = User::host("Max Ninety").await;
    let lid = listing(&host, 90).await;
    let l = read(&table, &lid).await;
    let now = Timestamp::now();
    let (item, nights) = booking(&l, &guest_id("guest-1"), 5, 95, now);
    assert_eq!(nights.len(), 90);
    let key = IdempotencyKey::parse(&unique("k")).expect("key");
    let request = Idempotent::new("guest-1", "POST /v1/bookings", &key, b"{}");
    let response = StoredResponse { status: 201, body: "{}".to_owned() };
    // 90 nights + booking + listing check + search item + hold slot + outbox + idempotency
    // record = 96 items.
    let outcome = create(&table, &item, &nights, &empty_slot(1), now, Some((&request, response))).await;
    assert_eq!(outcome, Ok(()));
    assert_eq!(nights_stored(&lid).await, 90);
    assert!(exists(&table, &item.booking_id).await);
}

#[tokio::test]
async fn a_hold_slot_taken_since_it_was_judged_refuses_the_whole_booking() {
    roost_e2e::needs_stack!();
    let table = table();
    let host = User::host("Sly Slots").await;
    let lid = listing(&host, 30).await;
    let l = read(&table, &lid).await;
    let now = Timestamp::now();
    let guest = guest_id("guest-1");
    let (first, nights) = booking(&l, &guest, 10, 12, now);
    assert_eq!(create(&table, &first, &nights, &empty_slot(2), now, None).await, Ok(()));

    // Another request judged slot 2 empty before the first committed: refused, nothing written.
    let (second, nights) = booking(&l, &guest, 14, 16, now);
    let outcome = create(&table, &second, &nights, &empty_slot(2), now, None).await;
    assert_eq!(outcome, Err(CreateFailure::HoldSlotTaken));
    // Judged free while naming another booking than the one it names now: refused too.
    let stale = SlotClaim { slot: 2, seen_booking: Some("bkg_someone_else".to_owned()) };
    let outcome = create(&table, &second, &nights, &stale, now, None).await;
    assert_eq!(outcome, Err(CreateFailure::HoldSlotTaken));
    assert!(!exists(&table, &second.booking_id).await);
    assert_eq!(nights_stored(&lid).await, 2, "the refused booking holds no night");

    // Judged with the booking it names (bookings decides that booking left pending_payment or
    // its hold lapsed; the condition only checks nothing changed since): taken over.
    let taken_over = SlotClaim { slot: 2, seen_booking: Some(first.booking_id.clone()) };
    let outcome = create(&table, &second, &nights, &taken_over, now, None).await;
    assert_eq!(outcome, Ok(()));
    // Its own free slot is no business of another guest's.
    let (other, nights) = booking(&l, &guest_id("guest-2"), 20, 22, now);
    assert_eq!(create(&table, &other, &nights, &empty_slot(2), now, None).await, Ok(()));
    let reads = store::booking_reads(&table, &lid, &guest, None).await.expect("reads");
    assert_eq!(reads.hold_slots.len(), 1);
    assert_eq!((reads.hold_slots[0].slot, reads.hold_slots[0].booking_id.as_str()), (2, second.booking_id.as_str()));
}
