//! What several test modules need around the API: dates in a listing's time zone, a photo, the stored
//! items read and moved straight in the table (time passes by fixture, never by waiting),
//! localstripe as the guest's browser uses it, and what moto recorded (e-mails, reset codes).

use reqwest::Method;
use serde_json::{Value, json};

use crate::{Stack, User, client, dynamodb, eventually, json_of, s};

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

/// How long before local midnight no date is derived from today (a test's date-sensitive
/// requests follow the derivation within this margin, even on a loaded machine).
pub const MIDNIGHT_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_mins(3);

/// Today in `timezone` (an IANA name), never in the last [`MIDNIGHT_MARGIN`] before local
/// midnight: then it sleeps until 00:00:05 and answers the new date.
///
/// Why: a test computes "today + N" here while the function computes its own "today" when the
/// request arrives. Across local midnight the two differ by a day, and a refund band, a day-0
/// rule or a "not in the past" check shifts: the suite failed for whoever ran it a minute
/// before midnight in some listing's zone. Every test that derives dates from today goes
/// through here. (A blocking sleep: at most once per test, before the requests it dates.)
pub fn today_in(timezone: &str) -> jiff::civil::Date {
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or_else(|e| panic!("time zone {timezone}: {e}"));
    let now = jiff::Timestamp::now().to_zoned(tz.clone());
    let next_midnight = now.date().tomorrow().expect("a next day").to_zoned(tz.clone()).expect("local midnight");
    let left = next_midnight.timestamp().duration_since(now.timestamp());
    if left > MIDNIGHT_MARGIN {
        return now.date();
    }
    std::thread::sleep((left + jiff::SignedDuration::from_secs(5)).unsigned_abs());
    jiff::Timestamp::now().to_zoned(tz).date()
}

/// The date `days` after today in `timezone`, `YYYY-MM-DD`.
pub fn day_in(timezone: &str, days: i64) -> String {
    today_in(timezone).checked_add(jiff::Span::new().days(days)).expect("date").to_string()
}

/// Nights `[from, to)` days from today in `timezone`.
pub fn days_in(timezone: &str, from: i64, to: i64) -> Vec<String> {
    (from..to).map(|d| day_in(timezone, d)).collect()
}

/// The whole-second instant `minutes` ago: the form the stores write (`2026-01-01T10:15:00Z`).
pub fn minutes_ago(minutes: i64) -> jiff::Timestamp {
    let past = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_mins(minutes)).expect("past");
    jiff::Timestamp::from_second(past.as_second()).expect("whole seconds")
}

/// A query-string value: the few characters test city names may hold, escaped.
pub fn q(s: &str) -> String {
    s.replace('%', "%25").replace(' ', "%20").replace('&', "%26").replace('+', "%2B").replace('#', "%23")
}

// ---------------------------------------------------------------------------------------------
// Photos
// ---------------------------------------------------------------------------------------------

/// A 1x1 PNG.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// PUTs the bytes to the pre-signed URL of an upload with the headers it was signed with.
pub async fn put_upload(upload: &Value, bytes: &[u8]) -> reqwest::Response {
    let mut request = client().put(s(upload, "upload_url")).body(bytes.to_vec());
    for (name, value) in upload["upload_headers"].as_object().expect("upload_headers") {
        if name != "content-length" {
            request = request.header(name, value.as_str().expect("header value"));
        }
    }
    request.send().await.expect("s3")
}

// ---------------------------------------------------------------------------------------------
// Stored items
// ---------------------------------------------------------------------------------------------

/// The key of a booking item (`BOOKING#<id>` / `BOOKING`), in DynamoDB JSON.
pub fn booking_key(booking_id: &str) -> Value {
    json!({"PK": {"S": format!("BOOKING#{booking_id}")}, "SK": {"S": "BOOKING"}})
}

/// The booking item as stored (consistent read; `Null` when there is none).
pub async fn stored_booking(booking_id: &str) -> Value {
    dynamodb("GetItem", json!({"Key": booking_key(booking_id), "ConsistentRead": true})).await["Item"].clone()
}

/// The search item's `unavailable` set, straight from the table.
pub async fn stored_unavailable(listing_id: &str) -> std::collections::BTreeSet<String> {
    let out = dynamodb(
        "GetItem",
        json!({"Key": {"PK": {"S": format!("LISTING#{listing_id}")}, "SK": {"S": "SEARCH"}}, "ConsistentRead": true}),
    )
    .await;
    out["Item"]["unavailable"]["SS"]
        .as_array()
        .map(|a| a.iter().map(|d| d.as_str().expect("date").to_owned()).collect())
        .unwrap_or_default()
}

/// The key (`GUEST#<guest id>` / `HOLD_SLOT#<n>`) of the one hold slot item that names
/// `booking_id`, straight from the table.
pub async fn hold_slot_key_of(booking_id: &str) -> Value {
    let guest_pk = stored_booking(booking_id).await["GSI1PK"]["S"].as_str().expect("GSI1PK").to_owned();
    let out = dynamodb(
        "Query",
        json!({
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :slot)",
            "ExpressionAttributeValues": {":pk": {"S": guest_pk}, ":slot": {"S": "HOLD_SLOT#"}},
            "ConsistentRead": true
        }),
    )
    .await;
    let naming: Vec<&Value> =
        out["Items"].as_array().expect("items").iter().filter(|i| i["booking_id"]["S"] == json!(booking_id)).collect();
    assert_eq!(naming.len(), 1, "one hold slot names {booking_id}: {out}");
    json!({"PK": naming[0]["PK"], "SK": naming[0]["SK"]})
}

/// **Lapsed-hold fixture**: the hold lapsed at `instant` (in the past): `hold_expires_at` moved
/// on the booking item (`BOOKING#<id>` / `BOOKING`), on each of its NIGHT items
/// (`LISTING#<listing id>` / `NIGHT#<date>`) AND on the guest's hold slot that names it
/// (`GUEST#<guest id>` / `HOLD_SLOT#<n>`): bookings writes the same instant on all of them. Its
/// sweep-index entry is left where booking put it (at the original hold, in the future).
pub async fn lapse_hold(booking_id: &str, listing_id: &str, nights: &[String], instant: &str) {
    let set = |key: Value| {
        json!({
            "Key": key,
            "UpdateExpression": "SET hold_expires_at = :past",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeValues": {":past": {"S": instant}}
        })
    };
    dynamodb("UpdateItem", set(booking_key(booking_id))).await;
    for night in nights {
        let key = json!({"PK": {"S": format!("LISTING#{listing_id}")}, "SK": {"S": format!("NIGHT#{night}")}});
        dynamodb("UpdateItem", set(key)).await;
    }
    dynamodb("UpdateItem", set(hold_slot_key_of(booking_id).await)).await;
}

/// **Refused-address fixture** (with an address SES refuses, e.g. `<local part>@`) and its
/// undoing: the profile's e-mail set to `email` (`UpdateItem`; the profile must exist). Only
/// this user's e-mails are affected.
pub async fn set_profile_email(user: &User, email: &str) {
    dynamodb(
        "UpdateItem",
        json!({
            "Key": {"PK": {"S": format!("USER#{}", user.user_id)}, "SK": {"S": "PROFILE"}},
            "UpdateExpression": "SET email = :e",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeValues": {":e": {"S": email}}
        }),
    )
    .await;
}

/// **Stay-ends fixture**: the stay's check-out instant passes. One `UpdateItem` on the booking
/// item (`BOOKING#<id>` / `BOOKING`) moving `check_out_at` to a whole-second UTC instant an hour
/// ago, conditioned on the booking being a really paid, `confirmed` one (status and
/// `payment.status` are not touched: payment-events set them). Every view then reads the
/// effective status `completed`, as it would once the real check-out time passed.
pub async fn end_stay(booking_id: &str) {
    dynamodb(
        "UpdateItem",
        json!({
            "Key": booking_key(booking_id),
            "UpdateExpression": "SET check_out_at = :out",
            "ConditionExpression": "#s = :confirmed AND #p.#s = :succeeded",
            "ExpressionAttributeNames": {"#s": "status", "#p": "payment"},
            "ExpressionAttributeValues": {":out": {"S": minutes_ago(60).to_string()}, ":confirmed": {"S": "confirmed"},
                                          ":succeeded": {"S": "succeeded"}}
        }),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// localstripe, as the guest's browser and the operator use it
// ---------------------------------------------------------------------------------------------

/// localstripe takes any `sk_` key: this is the tests' own (as Stripe.js uses the publishable
/// key), never the stack's secret key (random, in SSM).
pub const STRIPE_KEY: &str = "sk_test_roost_e2e";

/// A raw call to localstripe (form-encoded as Stripe.js or a server SDK sends it; a GET's
/// `form` is its query). Returns the status and the body (`Null` when it is not JSON: some
/// localstripe errors are HTML).
pub async fn stripe(method: Method, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let request =
        client().request(method.clone(), format!("{}{path}", Stack::get().stripe_url)).bearer_auth(STRIPE_KEY);
    let request = if method == Method::GET { request.query(form) } else { request.form(form) };
    let response = request.send().await.expect("localstripe reachable");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The secret the stack's webhook verifies Stripe's signatures with.
pub fn webhook_secret() -> String {
    Stack::get().rest["stripe_webhook_secret"].as_str().expect("stripe_webhook_secret in stack.json").to_owned()
}

/// `Stripe-Signature` as Stripe computes it: HMAC-SHA256 of `"{t}.{body}"`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("hmac");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// `POST /v1/webhooks/stripe` with `body` as Stripe sends it, and `header` as its signature.
pub async fn post_webhook(body: &str, header: Option<&str>) -> reqwest::Response {
    let mut request = client()
        .post(Stack::get().url("/v1/webhooks/stripe"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_owned());
    if let Some(h) = header {
        request = request.header("stripe-signature", h);
    }
    request.send().await.expect("api")
}

/// What the guest's browser does with the client secret: attach `payment_method` to the intent
/// (asserting 200), then `/confirm` with no body; returns localstripe's answer to the confirm.
pub async fn confirm_with(intent_id: &str, payment_method: &str) -> (u16, Value) {
    let (status, body) =
        stripe(Method::POST, &format!("/v1/payment_intents/{intent_id}"), &[("payment_method", payment_method)]).await;
    assert_eq!(status, 200, "attach {payment_method}: {body}");
    stripe(Method::POST, &format!("/v1/payment_intents/{intent_id}/confirm"), &[]).await
}

/// A card payment method (for the numbers localstripe has no `pm_card_*` alias for).
pub async fn card(number: &str) -> String {
    let (status, pm) = stripe(
        Method::POST,
        "/v1/payment_methods",
        &[
            ("type", "card"),
            ("card[number]", number),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2034"),
            ("card[cvc]", "123"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{pm}");
    s(&pm, "id").to_owned()
}

/// The refunds localstripe holds for an intent.
pub async fn refunds_of(intent_id: &str) -> Vec<Value> {
    let (status, list) = stripe(Method::GET, &format!("/v1/refunds?payment_intent={intent_id}"), &[]).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().expect("data").clone()
}

// ---------------------------------------------------------------------------------------------
// What moto recorded
// ---------------------------------------------------------------------------------------------

/// moto's state dump (`/moto-api/data.json`).
async fn moto_state() -> Value {
    client()
        .get(format!("{}/moto-api/data.json", Stack::get().moto_url))
        .send()
        .await
        .expect("moto reachable")
        .json()
        .await
        .expect("data.json")
}

/// Every message in moto's sent-mail record.
pub async fn sent_mail() -> Vec<Value> {
    moto_state().await["ses"]["Message"].as_array().cloned().unwrap_or_default()
}

/// Whether the sent message `m` went to `email`.
pub fn sent_to(m: &Value, email: &str) -> bool {
    m["destinations"]["ToAddresses"].as_array().into_iter().flatten().any(|a| a == email)
}

/// moto hands out confirmation and reset codes in its state dump (EMULATORS.md), where SES
/// would e-mail them.
pub async fn reset_code(email: &str) -> String {
    let dump = moto_state().await;
    let users = dump.pointer("/cognitoidp/CognitoIdpUser").and_then(Value::as_array).expect("cognito users");
    users
        .iter()
        .find(|u| u.to_string().contains(email))
        .and_then(|u| u["confirmation_code"].as_str())
        .expect("a reset code for the user")
        .to_owned()
}

/// Waits until `user` reads the booking with `status`; returns it.
pub async fn wait_for_status(user: &User, booking_id: &str, status: &str) -> Value {
    eventually(&format!("{booking_id} {status}"), || async {
        let b = json_of(user.api().booking(booking_id).await, 200).await;
        (b["status"] == status).then_some(b)
    })
    .await
}

/// Waits for an inbox item of `event_type` about `booking_id` in `user`'s inbox; returns it.
pub async fn wait_for_inbox(user: &User, event_type: &str, booking_id: &str) -> Value {
    eventually(&format!("{event_type} in {}'s inbox", user.name), || async {
        let page = json_of(user.api().notifications("?limit=100").await, 200).await;
        page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["type"] == event_type && i["booking_id"] == booking_id)
            .cloned()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_a_date_near_now_in_the_zone() {
        let utc = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let got = today_in("UTC");
        assert!(got == utc || got == utc.tomorrow().expect("tomorrow"), "{got} vs {utc}");
        assert_eq!(day_in("UTC", 1), got.tomorrow().expect("tomorrow").to_string());
    }
}
