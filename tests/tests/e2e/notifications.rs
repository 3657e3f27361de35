//! Notifications end to end (issue 9, notifications part): a domain event put on the
//! notifications queue (as the topic's raw delivery would) for a booking made through the API
//! becomes an inbox item for each person concerned (read back through `GET
//! /v1/me/notifications`) and an e-mail to each (read back from moto's sent-mail record); a
//! duplicate delivery gives nothing new; a listing title with `<script>` arrives escaped in the
//! HTML. An e-mail SES refuses is sent by the redelivery, exactly once (issue 13, item 7).
//! Nothing sleeps for a fixed time: every wait is a bounded poll.

use std::time::{Duration, Instant};

use roost_e2e::api::{Address, money};
use roost_e2e::fixtures::{day_in, sent_mail, set_profile_email};
use roost_e2e::{NewListing, Stack, Stay, User, assert_problem, dynamodb, eventually_for, json_of, sqs, unique};
use serde_json::{Value, json};

const TITLE: &str = "Loft <script>alert(1)</script> & sea";
const WAIT: Duration = Duration::from_secs(60);
/// A failed message comes back after the queue's visibility timeout (60 s in the template, capped
/// at 2 s by the local test mode, `infra/local/src/stack.rs`): waits that span a redelivery, or a
/// queue that holds one, allow for it, with a wide margin for a loaded machine.
const REDELIVERY: Duration = Duration::from_secs(150);

fn queue_url() -> String {
    let queues = Stack::get().rest["queues"].as_object().expect("queues in stack.json");
    let url = queues.get("roost-NotificationsQueue").expect("roost-NotificationsQueue in stack.json");
    url.as_str().map(str::to_owned).or_else(|| url["url"].as_str().map(str::to_owned)).expect("queue url")
}

fn day(days: i64) -> String {
    day_in("UTC", days)
}

pub(super) async fn booking(host: &User, guest: &User) -> String {
    let listing = NewListing {
        title: TITLE.into(),
        description: "Notified.".into(),
        property_type: "apartment".into(),
        address: Address {
            line1: "1 Quay".into(),
            city: unique("Notifyville"),
            region: Some("Region".into()),
            country: "PT".into(),
            postal_code: None,
        },
        timezone: "UTC".into(),
        nightly_price: money(8_100, "EUR"),
        cleaning_fee: None,
        min_nights: Some(1),
        max_nights: Some(7),
        cancellation_policy: "flexible".into(),
        ..NewListing::in_city("")
    };
    let listing_id = host.api().new_listing(&listing).await;
    let b = guest.api().booked(&Stay::new(&listing_id, day(30), day(33), 1)).await;
    b["booking_id"].as_str().expect("booking_id").to_owned()
}

/// Puts an envelope on the notifications queue as SNS raw delivery would; returns the event id.
pub(super) async fn deliver(event_id: &str, event_type: &str, data: Value) {
    let envelope = json!({
        "id": event_id, "type": event_type, "version": 1,
        "occurred_at": jiff::Timestamp::now().round(jiff::Unit::Second).expect("ts").to_string(),
        "data": data,
    });
    sqs(
        "SendMessage",
        &json!({
            "QueueUrl": queue_url(),
            "MessageBody": envelope.to_string(),
            "MessageAttributes": {"type": {"DataType": "String", "StringValue": event_type}},
        }),
    )
    .await;
}

pub(super) fn ntf_id(event_id: &str) -> String {
    format!("ntf_{}", event_id.trim_start_matches("evt_"))
}

async fn inbox(user: &User, query: &str) -> Value {
    json_of(user.get(&format!("/v1/me/notifications{query}")).await, 200).await
}

/// Polls the user's inbox until `notification_id` is in it; returns that item.
pub(super) async fn wait_for_item(user: &User, notification_id: &str) -> Value {
    let start = Instant::now();
    loop {
        let page = inbox(user, "?limit=100").await;
        if let Some(item) =
            page["items"].as_array().into_iter().flatten().find(|i| i["notification_id"] == notification_id)
        {
            return item.clone();
        }
        assert!(start.elapsed() < WAIT, "{notification_id} never reached the inbox: {page}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn to_addresses(m: &Value) -> Vec<String> {
    m["destinations"]["ToAddresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn mail_to<'a>(all: &'a [Value], email: &str) -> Vec<&'a Value> {
    all.iter().filter(|m| to_addresses(m).iter().any(|a| a == email)).collect()
}

/// Polls until `email` has received `n` messages; returns them.
async fn wait_for_mail(email: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let all = sent_mail().await;
        let mine: Vec<Value> = mail_to(&all, email).into_iter().cloned().collect();
        if mine.len() >= n {
            return mine;
        }
        assert!(start.elapsed() < WAIT, "{email} got {} of {n} e-mails", mine.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until notifications has logged, for `recipients` people, that a delivery of
/// `notification_id`'s event found their notification done before ("already notified
/// (duplicate delivery)", under the recipient span that names the notification): the
/// duplicate's own evidence. (Waiting for the shared queue to empty waited for every other
/// test's messages too, and a failed one holds it up to a redelivery.)
async fn duplicate_done(notification_id: &str, recipients: usize) {
    let field = format!("\"notification_id\":\"{notification_id}\"");
    eventually_for(REDELIVERY, &format!("the duplicate of {notification_id} found done for {recipients}"), || async {
        let log = Stack::get().function_log("NotificationsFunction");
        let done =
            log.lines().filter(|l| l.contains("already notified (duplicate delivery)") && l.contains(&field)).count();
        (done >= recipients).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_confirmed_booking_notifies_guest_and_host_once_with_escaped_html() {
    roost_e2e::needs_stack!();
    let host = User::host("Notify Host").await;
    let guest = User::guest("Notify Guest").await;
    let booking_id = booking(&host, &guest).await;
    let event_id = shared::ids::new_id("evt");
    let data = json!({
        "booking_id": booking_id, "listing_id": "lst_unused", "guest_id": guest.user_id, "host_id": host.user_id,
        "check_in": day(30), "check_out": day(33),
        "amount_paid": {"amount": 24_300, "currency": "EUR"}, "payment_intent_id": "pi_e2e"
    });
    deliver(&event_id, "booking.confirmed", data.clone()).await;

    let id = ntf_id(&event_id);
    for (user, title) in [(&guest, "Your booking is confirmed"), (&host, "New confirmed booking")] {
        let item = wait_for_item(user, &id).await;
        assert_eq!(item["type"], "booking.confirmed");
        assert_eq!(item["title"], title);
        assert_eq!(item["booking_id"], booking_id.as_str());
        assert_eq!(item["read"], false);
        assert!(item["body"].as_str().unwrap_or("").contains(TITLE), "{item}");
    }
    let guest_mail = wait_for_mail(&guest.email, 1).await;
    let host_mail = wait_for_mail(&host.email, 1).await;
    let m = &guest_mail[0];
    assert_eq!(m["subject"], "Your booking is confirmed");
    assert!(m["source"].as_str().unwrap_or("").contains("no-reply@"), "{m}");
    let html = m["body"].as_str().unwrap_or("");
    assert!(!html.contains("<script>"), "unescaped title in {html}");
    assert!(html.contains("Loft &lt;script&gt;alert(1)&lt;/script&gt; &amp; sea"), "{html}");
    assert!(html.contains("EUR 243.00"), "{html}");
    assert_eq!(host_mail[0]["subject"], "New confirmed booking");

    // A second delivery of the same event, then a sentinel (booking.expired: the guest only).
    deliver(&event_id, "booking.confirmed", data).await;
    let sentinel = shared::ids::new_id("evt");
    deliver(
        &sentinel,
        "booking.expired",
        json!({"booking_id": booking_id, "listing_id": "lst_unused", "guest_id": guest.user_id, "host_id": host.user_id}),
    )
    .await;
    wait_for_item(&guest, &ntf_id(&sentinel)).await;
    wait_for_mail(&guest.email, 2).await;
    duplicate_done(&id, 2).await;
    let all = sent_mail().await;
    assert_eq!(mail_to(&all, &guest.email).len(), 2, "the duplicate sent the guest another e-mail");
    assert_eq!(mail_to(&all, &host.email).len(), 1, "the duplicate sent the host another e-mail");
    assert_eq!(inbox(&guest, "").await["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(inbox(&host, "").await["items"].as_array().map(Vec::len), Some(1));

    // Newest first, paginated, unread filter, marking read.
    let first = inbox(&guest, "?limit=1").await;
    assert_eq!(first["items"][0]["notification_id"], ntf_id(&sentinel).as_str());
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = inbox(&guest, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(second["items"][0]["notification_id"], id.as_str());
    assert_problem(host.get(&format!("/v1/me/notifications?limit=1&cursor={cursor}")).await, 400, "invalid_cursor")
        .await;

    let read = guest.post(&format!("/v1/me/notifications/{id}/read"), None).await;
    assert_eq!(read.status(), 204);
    let unread = inbox(&guest, "?unread=true").await;
    let ids: Vec<&str> =
        unread["items"].as_array().into_iter().flatten().filter_map(|i| i["notification_id"].as_str()).collect();
    assert_eq!(ids, vec![ntf_id(&sentinel).as_str()]);
    // Someone else's notification and an unknown one are both 404.
    assert_problem(
        host.post(&format!("/v1/me/notifications/{}/read", ntf_id(&sentinel)), None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        guest.post("/v1/me/notifications/ntf_01kaxb3c4d5e6f7g8h9jkmnp99/read", None).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn every_event_type_reaches_exactly_the_people_concerned() {
    roost_e2e::needs_stack!();
    let host = User::host("Notify Host").await;
    let guest = User::guest("Notify Guest").await;
    let booking_id = booking(&host, &guest).await;
    let (g, h) = (guest.user_id.as_str(), host.user_id.as_str());
    let eur = json!({"amount": 24_300, "currency": "EUR"});
    // (type, data, guest notified, host notified)
    let cases = [
        (
            "booking.cancelled",
            json!({"booking_id": booking_id, "listing_id": "lst_x", "guest_id": g, "host_id": h,
            "cancelled_by": "guest", "refund_due": eur}),
            true,
            true,
        ),
        (
            "payment.failed",
            json!({"booking_id": booking_id, "guest_id": g, "payment_intent_id": "pi_x",
            "failure_code": "card_declined"}),
            true,
            false,
        ),
        (
            "refund.issued",
            json!({"booking_id": booking_id, "guest_id": g, "refund_id": "re_x", "amount": eur}),
            true,
            false,
        ),
        (
            "review.posted",
            json!({"review_id": "rev_01kaxb3c4d5e6f7g8h9jkmnpqr", "booking_id": booking_id,
            "listing_id": "lst_x", "author_id": g, "host_id": h, "rating": 5}),
            false,
            true,
        ),
    ];
    let (mut to_guest, mut to_host) = (0, 0);
    let mut delivered = Vec::new();
    for (event_type, data, guest_too, host_too) in cases {
        let event_id = shared::ids::new_id("evt");
        deliver(&event_id, event_type, data).await;
        let id = ntf_id(&event_id);
        delivered.push(id.clone());
        for (user, concerned, count) in [(&guest, guest_too, &mut to_guest), (&host, host_too, &mut to_host)] {
            if concerned {
                let item = wait_for_item(user, &id).await;
                assert_eq!(item["type"], event_type);
                *count += 1;
                let mail = wait_for_mail(&user.email, *count).await;
                assert!(
                    mail.iter().any(|m| m["subject"] == item["title"]),
                    "{event_type}: no e-mail titled {}",
                    item["title"]
                );
            }
        }
    }
    // This test's own evidence that its messages are done: each recipient's e-mail recorded as
    // sent is the last write of an event's delivery to them.
    for id in &delivered {
        for user in [&guest, &host] {
            if stored_item(user, id).await.is_some() {
                eventually_for(WAIT, &format!("{id}: the e-mail recorded as sent"), || async {
                    stored_item(user, id).await.filter(|i| email_status(i) == "sent")
                })
                .await;
            }
        }
    }
    let all = sent_mail().await;
    assert_eq!(mail_to(&all, &guest.email).len(), to_guest);
    assert_eq!(mail_to(&all, &host.email).len(), to_host);
    assert_eq!(inbox(&guest, "").await["items"].as_array().map(Vec::len), Some(to_guest));
    assert_eq!(inbox(&host, "").await["items"].as_array().map(Vec::len), Some(to_host));
}

/// The inbox item of `user` for `notification_id`, straight from the table (consistent), as
/// DynamoDB JSON: the API does not show the e-mail state.
async fn stored_item(user: &User, notification_id: &str) -> Option<Value> {
    let out = dynamodb(
        "GetItem",
        json!({
            "Key": {"PK": {"S": format!("INBOX#{}", user.user_id)}, "SK": {"S": format!("NOTIFICATION#{notification_id}")}},
            "ConsistentRead": true
        }),
    )
    .await;
    out.get("Item").cloned()
}

fn email_status(item: &Value) -> &str {
    item["email"]["M"]["status"]["S"].as_str().unwrap_or("")
}

// **Refused-address fixture** (`fixtures::set_profile_email`): the profile's e-mail becomes
// `<local part>@` (no domain), which moto's SES refuses (`InvalidParameterValue`, "Missing
// domain") as SES refuses what it cannot deliver; setting it back restores the real address.

#[tokio::test]
async fn an_e_mail_ses_refused_is_sent_by_the_redelivery_exactly_once() {
    roost_e2e::needs_stack!();
    let host = User::host("Refused Host").await;
    let guest = User::guest("Refused Guest").await;
    let booking_id = booking(&host, &guest).await;
    let local_part = guest.email.split('@').next().expect("local part").to_owned();
    let refused = format!("{local_part}@");
    set_profile_email(&guest, &refused).await;

    let event_id = shared::ids::new_id("evt");
    let data = json!({
        "booking_id": booking_id, "listing_id": "lst_unused", "guest_id": guest.user_id, "host_id": host.user_id,
        "check_in": day(30), "check_out": day(33),
        "amount_paid": {"amount": 24_300, "currency": "EUR"}, "payment_intent_id": "pi_e2e"
    });
    deliver(&event_id, "booking.confirmed", data.clone()).await;
    let id = ntf_id(&event_id);

    // SES refused the guest's e-mail: the item stays, its e-mail back to `pending`. The address
    // is restored at once: the failed message comes back every 2 s locally (the test mode's
    // visibility cap) and reaches the DLQ after 5 receives, so the refusal must last only a
    // bounded number of attempts, however slow the machine is at the checks below.
    let guest_item = eventually_for(WAIT, "the guest's e-mail refused and pending", || async {
        stored_item(&guest, &id).await.filter(|i| email_status(i) == "pending")
    })
    .await;
    set_profile_email(&guest, &guest.email).await;
    // Refused at least once (a loaded machine may see a redelivery refused again before this
    // read: the message returns every 2 s), and nothing sent.
    let refusals: u32 = guest_item["email"]["M"]["attempts"]["N"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(refusals >= 1, "{guest_item}");
    assert!(guest_item["email"]["M"].get("message_id").is_none(), "nothing sent yet: {guest_item}");
    // The host's went on the first delivery.
    let host_mail = wait_for_mail(&host.email, 1).await;
    let host_item = stored_item(&host, &id).await.expect("the host's item");
    assert_eq!(email_status(&host_item), "sent", "{host_item}");
    assert_eq!(host_item["email"]["M"]["message_id"]["S"], host_mail[0]["id"], "SES's message id recorded");
    let item = wait_for_item(&guest, &id).await;
    assert!(item.get("email").is_none(), "the inbox API does not show the e-mail state: {item}");

    // SES recovers (the address is deliverable again); a redelivery sends exactly that e-mail.
    let guest_mail = eventually_for(REDELIVERY, "the guest's e-mail after the redelivery", || async {
        let all = sent_mail().await;
        let mine: Vec<Value> = mail_to(&all, &guest.email).into_iter().cloned().collect();
        (!mine.is_empty()).then_some(mine)
    })
    .await;
    assert!(mail_to(&sent_mail().await, &refused).is_empty(), "nothing went to the refused address");
    assert_eq!(guest_mail[0]["subject"], "Your booking is confirmed");
    let guest_item = eventually_for(WAIT, "the guest's e-mail recorded as sent", || async {
        stored_item(&guest, &id).await.filter(|i| email_status(i) == "sent")
    })
    .await;
    // At least the refused attempt and the one that sent (more if a redelivery came while the
    // address was being restored).
    let attempts: u32 = guest_item["email"]["M"]["attempts"]["N"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(attempts >= 2, "{guest_item}");
    assert_eq!(guest_item["email"]["M"]["message_id"]["S"], guest_mail[0]["id"]);

    // Delivered again: nothing more for anyone.
    deliver(&event_id, "booking.confirmed", data).await;
    duplicate_done(&id, 2).await;
    let all = sent_mail().await;
    assert_eq!(mail_to(&all, &guest.email).len(), 1, "the guest's e-mail went once");
    assert_eq!(mail_to(&all, &host.email).len(), 1, "the host's e-mail went once");
    assert_eq!(inbox(&guest, "").await["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(inbox(&host, "").await["items"].as_array().map(Vec::len), Some(1));
}
