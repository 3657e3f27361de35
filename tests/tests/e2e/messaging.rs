//! Messaging end to end (issue 20, messaging part), through HTTP: a guest's inquiry about a
//! listing opens the one conversation of (listing, guest); the host replies; both lists show it
//! newest activity first with unread counts; reading clears them; pages go either way. Contact
//! details are masked before a booking between them is confirmed (and the sender is told), not
//! after. An `Idempotency-Key` repeat is the same message; the send limit answers 429 with
//! `Retry-After`; anyone else gets 404, as for an id that does not exist.

use std::time::Duration;

use roost_e2e::fixtures::{day_in, sent_mail, sent_to};
use roost_e2e::{NewListing, Stay, User, assert_problem, eventually, json_of, s, unique, until_indexed};
use serde_json::{Value, json};

use crate::reviews::pay;

const TZ: &str = "Europe/Paris";

async fn listing(host: &User) -> String {
    host.api().new_listing(&NewListing { min_nights: Some(1), ..NewListing::in_city(&unique("Chatville")) }).await
}

async fn inquire(guest: &User, listing_id: &str, text: &str, key: Option<&str>) -> reqwest::Response {
    let body = json!({"listing_id": listing_id, "text": text});
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    guest.api().call(reqwest::Method::POST, "/v1/conversations", Some(&body), &headers).await
}

async fn send(user: &User, conversation_id: &str, text: &str, key: Option<&str>) -> reqwest::Response {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    let path = format!("/v1/conversations/{conversation_id}/messages");
    user.api().call(reqwest::Method::POST, &path, Some(&json!({"text": text})), &headers).await
}

async fn messages(user: &User, conversation_id: &str, query: &str) -> Value {
    json_of(user.get(&format!("/v1/conversations/{conversation_id}/messages{query}")).await, 200).await
}

/// The caller's conversations once the index shows `conversation_id` with `unread` unread.
async fn listed(user: &User, conversation_id: &str, unread: u64) -> Value {
    let page = until_indexed(
        || async { json_of(user.get("/v1/me/conversations").await, 200).await },
        |page: &Value| {
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["conversation_id"] == conversation_id && c["unread_count"].as_u64() == Some(unread))
        },
    )
    .await;
    let items = page["items"].as_array().expect("items");
    items
        .iter()
        .find(|c| c["conversation_id"] == conversation_id)
        .cloned()
        .unwrap_or_else(|| panic!("{conversation_id} not listed: {page}"))
}

fn texts(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|m| s(m, "text").to_owned()).collect()
}

#[tokio::test]
async fn an_inquiry_a_reply_unread_counts_and_reading() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Chat Host"), User::guest("Chat Guest"));
    let listing_id = listing(&host).await;

    let started = inquire(&guest, &listing_id, "  Is the flat quiet at night? <b>thanks</b>  ", None).await;
    assert_eq!(started.status(), 201);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let started: Value = started.json().await.unwrap();
    let conversation_id = s(&started, "conversation_id").to_owned();
    assert_eq!(location, format!("/v1/conversations/{conversation_id}/messages"));
    assert_eq!(started["message"]["text"], "Is the flat quiet at night? <b>thanks</b>", "trimmed, stored as typed");
    assert_eq!(started["message"]["sender_id"], guest.user_id.as_str());
    assert_eq!(started["message"]["masked"], false);
    assert!(started.get("note").is_none(), "{started}");

    // The host sees it, unread, with the guest's name and the listing.
    let seen = listed(&host, &conversation_id, 1).await;
    assert_eq!(seen["with"], json!({"user_id": guest.user_id, "name": guest.name}));
    assert_eq!(seen["listing"]["listing_id"], listing_id.as_str());
    assert_eq!(seen["last_message"]["sender_id"], guest.user_id.as_str());
    assert!(!seen.to_string().contains(&guest.email), "never an e-mail: {seen}");

    let reply = json_of(send(&host, &conversation_id, "Very quiet.", None).await, 201).await;
    assert_eq!(reply["conversation_id"], conversation_id.as_str());
    let mine = listed(&guest, &conversation_id, 1).await;
    assert_eq!(mine["with"]["user_id"], host.user_id.as_str());
    assert_eq!(mine["last_message"]["preview"], "Very quiet.");
    // The host's own reply does not count as unread for them; the guest's message still does.
    assert_eq!(listed(&host, &conversation_id, 1).await["last_message"]["preview"], "Very quiet.");

    // A second inquiry about the same listing carries the same conversation on.
    let again = json_of(inquire(&guest, &listing_id, "And parking?", None).await, 200).await;
    assert_eq!(again["conversation_id"], conversation_id.as_str());
    listed(&host, &conversation_id, 2).await;

    // Reading clears the reader's count only.
    assert_eq!(host.post(&format!("/v1/conversations/{conversation_id}/read"), None).await.status(), 204);
    listed(&host, &conversation_id, 0).await;
    listed(&guest, &conversation_id, 1).await;

    // Newest first by default, oldest first on request; the cursor pages.
    let newest = messages(&guest, &conversation_id, "").await;
    assert_eq!(texts(&newest), ["And parking?", "Very quiet.", "Is the flat quiet at night? <b>thanks</b>"]);
    let first = messages(&guest, &conversation_id, "?order=oldest&limit=2").await;
    assert_eq!(texts(&first), ["Is the flat quiet at night? <b>thanks</b>", "Very quiet."]);
    let cursor = s(&first, "next_cursor").to_owned();
    // A cursor is the caller's own.
    let cursor_elsewhere =
        host.get(&format!("/v1/conversations/{conversation_id}/messages?order=oldest&cursor={cursor}")).await;
    assert_problem(cursor_elsewhere, 400, "invalid_cursor").await;
    let rest_as_guest = messages(&guest, &conversation_id, &format!("?order=oldest&limit=2&cursor={cursor}")).await;
    assert_eq!(texts(&rest_as_guest), ["And parking?"]);
    assert!(rest_as_guest["next_cursor"].is_null());
    let newest_cursor = messages(&guest, &conversation_id, "?limit=1").await;
    let other_order = guest
        .get(&format!(
            "/v1/conversations/{conversation_id}/messages?order=oldest&cursor={}",
            s(&newest_cursor, "next_cursor")
        ))
        .await;
    assert_problem(other_order, 400, "invalid_cursor").await;
}

#[tokio::test]
async fn contact_details_are_masked_until_a_booking_is_confirmed() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Mask Host"), User::guest("Mask Guest"));
    let listing_id = listing(&host).await;
    let text = "Mail me at jo.doe@example.com or call +33 6 12 34 56 78, we arrive 2026-07-10.";
    let started = json_of(inquire(&guest, &listing_id, text, None).await, 201).await;
    let conversation_id = s(&started, "conversation_id").to_owned();
    assert_eq!(started["message"]["masked"], true);
    assert_eq!(started["message"]["text"], "Mail me at [email hidden] or call [phone hidden], we arrive 2026-07-10.");
    assert!(s(&started, "note").contains("hidden until a booking"), "{started}");
    // The host's answer is masked too, and what the host reads is the masked text.
    let reply = json_of(send(&host, &conversation_id, "Text me: 0612345678", None).await, 201).await;
    assert_eq!(reply["message"]["text"], "Text me: [phone hidden]");
    let read = messages(&host, &conversation_id, "").await;
    assert!(!read.to_string().contains("jo.doe@example.com") && !read.to_string().contains("0612345678"));

    // A booking waiting for payment is not enough.
    let stay = Stay::new(&listing_id, day_in(TZ, 30), day_in(TZ, 32), 1);
    let booking = guest.api().booked(&stay).await;
    let booking_id = s(&booking, "booking_id").to_owned();
    let pending = json_of(send(&guest, &conversation_id, "jo@example.com", None).await, 201).await;
    assert_eq!(pending["message"]["masked"], true);

    // Confirmed (the paid-stay fixture), once the guest's trips show it: nothing is masked.
    pay(&booking_id).await;
    until_indexed(
        || async { json_of(guest.api().trips("?status=confirmed").await, 200).await },
        |page: &Value| page["items"].as_array().into_iter().flatten().any(|b| b["booking_id"] == booking_id.as_str()),
    )
    .await;
    let after = json_of(send(&guest, &conversation_id, "My number: +33 6 12 34 56 78", None).await, 201).await;
    assert_eq!(after["message"]["masked"], false);
    assert_eq!(after["message"]["text"], "My number: +33 6 12 34 56 78");
    assert!(after.get("note").is_none());
    let host_after = json_of(send(&host, &conversation_id, "host@example.com", None).await, 201).await;
    assert_eq!(host_after["message"]["text"], "host@example.com");
}

#[tokio::test]
async fn a_repeat_with_the_same_key_is_the_same_message() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Idem Host"), User::guest("Idem Guest"));
    let listing_id = listing(&host).await;
    let key = unique("inquiry-key");
    let first = json_of(inquire(&guest, &listing_id, "Hello?", Some(&key)).await, 201).await;
    let repeat = inquire(&guest, &listing_id, "Hello?", Some(&key)).await;
    assert_eq!(repeat.status(), 201);
    assert_eq!(repeat.headers()["idempotent-replayed"], "true");
    assert_eq!(repeat.json::<Value>().await.unwrap(), first);
    assert_problem(inquire(&guest, &listing_id, "Other", Some(&key)).await, 422, "idempotency_key_reused").await;

    let conversation_id = s(&first, "conversation_id").to_owned();
    let key = unique("message-key");
    let sent = json_of(send(&guest, &conversation_id, "Still there?", Some(&key)).await, 201).await;
    let again = send(&guest, &conversation_id, "Still there?", Some(&key)).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(again, 201).await, sent);
    assert_problem(send(&guest, &conversation_id, "Other", Some(&key)).await, 422, "idempotency_key_reused").await;
    assert_eq!(texts(&messages(&host, &conversation_id, "").await), ["Still there?", "Hello?"], "each once");
    // Two messages from the guest, each counted once.
    listed(&host, &conversation_id, 2).await;
}

#[tokio::test]
async fn the_send_limit_answers_429_with_retry_after() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Rate Host"), User::guest("Rate Guest"));
    let listing_id = listing(&host).await;
    // All within one calendar minute: start early in one.
    let second = jiff::Timestamp::now().as_second().rem_euclid(60);
    if second > 40 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
    let started = json_of(inquire(&guest, &listing_id, "Message 1", None).await, 201).await;
    let conversation_id = s(&started, "conversation_id").to_owned();
    for n in 2..=10 {
        json_of(send(&guest, &conversation_id, &format!("Message {n}"), None).await, 201).await;
    }
    let refused = send(&guest, &conversation_id, "Message 11", None).await;
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(refused, 429, "too_many_requests").await;
    // The limit is the sender's: the host may still answer.
    json_of(send(&host, &conversation_id, "Slow down!", None).await, 201).await;
    assert_eq!(messages(&host, &conversation_id, "?limit=100").await["items"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn strangers_get_404_as_for_an_unknown_conversation() {
    roost_e2e::needs_stack!();
    let (host, guest, stranger) =
        tokio::join!(User::host("Private Host"), User::guest("Private Guest"), User::guest("Nosy Stranger"));
    let listing_id = listing(&host).await;
    let started = json_of(inquire(&guest, &listing_id, "Just us", None).await, 201).await;
    let conversation_id = s(&started, "conversation_id").to_owned();
    let random = shared::ids::new_id_at("cnv", jiff::Timestamp::now());
    for id in [conversation_id.as_str(), random.as_str(), "not-an-id"] {
        let read =
            assert_problem(stranger.get(&format!("/v1/conversations/{id}/messages")).await, 404, "not_found").await;
        assert!(!read.to_string().contains("Just us"));
        assert_problem(send(&stranger, id, "Hi!", None).await, 404, "not_found").await;
        assert_problem(stranger.post(&format!("/v1/conversations/{id}/read"), None).await, 404, "not_found").await;
    }
    let none = json_of(stranger.get("/v1/me/conversations").await, 200).await;
    assert_eq!(none["items"], json!([]));
    // The host cannot inquire about their own listing; an unknown listing is 404.
    assert_problem(inquire(&host, &listing_id, "Me?", None).await, 422, "own_listing").await;
    let unknown = shared::ids::new_id_at("lst", jiff::Timestamp::now());
    assert_problem(inquire(&guest, &unknown, "Anyone?", None).await, 404, "not_found").await;
    // Bad texts: empty after trimming, too long.
    let empty = assert_problem(send(&guest, &conversation_id, "  \n ", None).await, 400, "validation_failed").await;
    assert_eq!(empty["errors"][0]["field"], "text");
    assert_problem(send(&guest, &conversation_id, &"x".repeat(2001), None).await, 400, "validation_failed").await;
    json_of(send(&guest, &conversation_id, &"é".repeat(2000), None).await, 201).await;
}

/// The `message.posted` inbox items of `user` about `listing_title`, once there are `n`.
async fn message_items(user: &User, n: usize) -> Vec<Value> {
    eventually(&format!("{n} message items in {}'s inbox", user.name), || async {
        let page = json_of(user.get("/v1/me/notifications?limit=100").await, 200).await;
        let items: Vec<Value> =
            page["items"].as_array().into_iter().flatten().filter(|i| i["type"] == "message.posted").cloned().collect();
        (items.len() >= n).then_some(items)
    })
    .await
}

async fn mail_to(email: &str) -> Vec<Value> {
    sent_mail().await.into_iter().filter(|m| sent_to(m, email)).collect()
}

#[tokio::test]
async fn the_other_person_gets_an_inbox_item_each_and_one_e_mail_per_15_minutes() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Mail Host"), User::guest("Mail Guest"));
    let listing_id = listing(&host).await;
    let first = "<b>Hello</b> & is the <script>x</script> flat free?\nSecond line";
    let started = json_of(inquire(&guest, &listing_id, first, None).await, 201).await;
    let conversation_id = s(&started, "conversation_id").to_owned();
    // The first message's e-mail goes out; then messages keep coming.
    let mail = eventually("the host's first message e-mail", || async {
        let mail = mail_to(&host.email).await;
        (!mail.is_empty()).then_some(mail)
    })
    .await;
    for n in 2..=3 {
        json_of(send(&guest, &conversation_id, &format!("Message {n}"), None).await, 201).await;
    }
    let items = message_items(&host, 3).await;
    assert_eq!(items.len(), 3, "one inbox item per message");
    assert!(items.iter().all(|i| s(i, "title") == format!("New message from {}", guest.name)));
    assert!(items.iter().any(|i| s(i, "body").contains("Message 3")));
    // Every event was applied (3 inbox items) and still one e-mail: the throttle held two back.
    assert_eq!(mail_to(&host.email).await.len(), 1, "at most one e-mail per conversation per 15 minutes");
    let m = &mail[0];
    assert_eq!(m["subject"], format!("New message from {}", guest.name));
    let html = m["body"].as_str().unwrap_or("");
    assert!(!html.contains("<script>") && !html.contains("<b>Hello"), "unescaped message in {html}");
    assert!(html.contains("&lt;b&gt;Hello&lt;/b&gt; &amp; is the &lt;script&gt;x&lt;/script&gt;"), "{html}");

    // The other direction has its own throttle: the host's reply e-mails the guest.
    json_of(send(&host, &conversation_id, "Yes it is.", None).await, 201).await;
    message_items(&guest, 1).await;
    let to_guest = eventually("the guest's e-mail", || async {
        let mail = mail_to(&guest.email).await;
        (!mail.is_empty()).then_some(mail)
    })
    .await;
    assert_eq!(to_guest.len(), 1);
    assert!(!to_guest[0].to_string().contains(&host.email));
}
