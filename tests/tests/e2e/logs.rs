//! No personal data or secret in any log line (issue 13, item 14). One journey through HTTP
//! (sign-up, confirm, login, a wrong password, a second sign-up with the same e-mail, refresh,
//! profile, forgotten password, a listing, a booking, a payment at localstripe and its webhook,
//! the notifications, one of them refused by SES first, the stay's end, a review, sign-out),
//! then, once the asynchronous work has logged its last line, every function's log file is
//! scanned for:
//!
//! - the two users' e-mail addresses, their local parts, their names and their password;
//! - their access, id and refresh tokens (as issued and as refreshed), and any JWT at all;
//! - the payment's client secret, and any `pi_..._secret_...`;
//! - the Stripe secret key, the webhook signing secret and every other secret parameter of the
//!   stack (read back from SSM), and any `sk_test_`/`sk_live_`/`whsec_` string.
//!
//! A hit fails the test and prints the file, the line number and the line with the secret
//! replaced by what it is. A static check beside it keeps such fields out of the sources.

use std::path::PathBuf;

use reqwest::Method;
use std::time::Duration;

use roost_e2e::api::{Address, money};
use roost_e2e::fixtures::{self, day_in, end_stay, wait_for_inbox};
use roost_e2e::{
    NewListing, PASSWORD, Stack, Stay, User, client, dynamodb, eventually, eventually_for, json_of, moto_json, s,
    unique,
};
use serde_json::{Value, json};

async fn anonymous(method: Method, path: &str, body: Option<&Value>) -> reqwest::Response {
    let request = client().request(method, Stack::get().url(path));
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    request.send().await.expect("api")
}

fn day(days: i64) -> String {
    day_in("UTC", days)
}

/// A call to localstripe as the guest's browser makes it, asserting success.
async fn stripe(path: &str, form: &[(&str, &str)]) -> Value {
    let (status, body) = fixtures::stripe(Method::POST, path, form).await;
    assert!((200..300).contains(&status), "localstripe {path}: {status}");
    body
}

/// Sets the profile's e-mail (`UpdateItem`, the item must exist).
async fn set_profile_email(user: &User, email: &str) {
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

/// The value of each secret parameter of the stack (SSM, as the functions read them).
async fn secret_parameter_values() -> Vec<(String, String)> {
    let names = Stack::get().rest["secret_parameters"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for name in names.iter().filter_map(Value::as_str) {
        let got = moto_json("ssm", "AmazonSSM.GetParameter", &json!({"Name": name, "WithDecryption": true})).await;
        if let Some(value) = got["Parameter"]["Value"].as_str().filter(|v| v.len() >= 8) {
            out.push((format!("secret parameter {name}"), value.to_owned()));
        }
    }
    out
}

/// The functions the journey of `no_log_line_carries_personal_data_tokens_or_secrets` invokes.
const JOURNEY_FUNCTIONS: &[&str] = &[
    "UsersFunction",
    "ListingsFunction",
    "BookingsFunction",
    "PaymentsFunction",
    "PaymentEventsFunction",
    "EventsRelayFunction",
    "NotificationsFunction",
    "ReviewsFunction",
];

/// The `X-Request-Id` of a response (the id its function's `request` line carries).
fn request_id(response: &reqwest::Response) -> String {
    let id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("an X-Request-Id");
    id.to_owned()
}

/// Waits until `function`'s log has a line containing every one of `needles`.
async fn logged(function: &str, needles: &[&str]) {
    eventually(&format!("{function} logging {needles:?}"), || async {
        let log = Stack::get().function_log(function);
        log.lines().any(|l| needles.iter().all(|n| l.contains(n))).then_some(())
    })
    .await
}

/// What must never be in a log line: (what it is, the exact text).
struct Needles(Vec<(String, String)>);

impl Needles {
    fn add(&mut self, what: impl Into<String>, text: &str) {
        assert!(text.len() >= 6, "a needle this short would match by chance: {text:?}");
        self.0.push((what.into(), text.to_ascii_lowercase()));
    }

    fn add_user(&mut self, role: &str, user: &User) {
        self.add(format!("{role}'s e-mail"), &user.email);
        self.add(format!("{role}'s e-mail local part"), user.email.split('@').next().expect("local part"));
        self.add(format!("{role}'s name"), &user.name);
        for (i, part) in user.name.split(' ').enumerate().filter(|(_, p)| p.len() >= 6) {
            self.add(format!("{role}'s name (part {i})"), part);
        }
        self.add(format!("{role}'s access token"), &user.access_token);
        self.add(format!("{role}'s id token"), &user.id_token);
        self.add(format!("{role}'s refresh token"), &user.refresh_token);
    }

    /// The first thing in `line` that must not be there, and the line with every hit redacted.
    fn find(&self, line: &str) -> Option<(String, String)> {
        let lower = line.to_ascii_lowercase();
        let mut hits: Vec<&str> = self.0.iter().filter(|(_, n)| lower.contains(n)).map(|(w, _)| w.as_str()).collect();
        // Any secret-shaped string, whoever's.
        if jwt_at(line).is_some() {
            hits.push("a JWT");
        }
        for (what, shape) in [
            ("a Stripe secret key", "sk_test_"),
            ("a Stripe secret key", "sk_live_"),
            ("a webhook signing secret", "whsec_"),
        ] {
            if lower.contains(shape) {
                hits.push(what);
            }
        }
        if client_secret_at(&lower).is_some() {
            hits.push("a payment intent client secret");
        }
        if hits.is_empty() {
            return None;
        }
        Some((hits.join(", "), redact(line, &self.0)))
    }
}

/// Where a JWT (`eyJ<base64url>.<base64url>.`: a JSON header, case-sensitive so that no
/// lowercase id matches) starts in `s`.
fn jwt_at(s: &str) -> Option<usize> {
    let b64 = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_');
    let mut from = 0;
    while let Some(i) = s[from..].find("eyJ") {
        let start = from + i;
        let header = s[start..].bytes().take_while(b64).count();
        let rest = &s[start + header..];
        if header >= 10 && rest.starts_with('.') {
            let payload = rest[1..].bytes().take_while(b64).count();
            if payload >= 10 && rest[1 + payload..].starts_with('.') {
                return Some(start);
            }
        }
        from = start + 3;
    }
    None
}

/// Where a `pi_<id>_secret_<secret>` starts in `s`.
fn client_secret_at(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("pi_") {
        let start = from + i;
        let rest = &s[start + 3..];
        let id_len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if id_len > 0 && rest[id_len..].starts_with("_secret_") {
            return Some(start);
        }
        from = start + 3;
    }
    None
}

/// The line with each needle replaced by `[what]`, and whatever follows a secret-shaped prefix
/// cut, so the report itself leaks nothing.
fn redact(line: &str, needles: &[(String, String)]) -> String {
    let mut out = line.to_owned();
    for (what, needle) in needles {
        // ASCII lowering keeps byte offsets (the needles are ASCII).
        while let Some(at) = out.to_ascii_lowercase().find(needle.as_str()) {
            out.replace_range(at..at + needle.len(), &format!("[{what}]"));
        }
    }
    if let Some(at) = jwt_at(&out) {
        out.truncate(at);
        out.push_str("[JWT cut]");
    }
    for shape in ["sk_test_", "sk_live_", "whsec_"] {
        if let Some(at) = out.find(shape) {
            out.truncate(at);
            out.push_str("[secret-shaped text cut]");
        }
    }
    if let Some(at) = client_secret_at(&out.to_ascii_lowercase()) {
        out.truncate(at);
        out.push_str("[client secret cut]");
    }
    out.chars().take(400).collect()
}

#[test]
fn the_scanner_finds_and_redacts() {
    let mut needles = Needles(Vec::new());
    needles.add("the e-mail", "Ann.Lee@example.com");
    let (what, line) = needles.find(r#"{"msg":"hello ann.lee@EXAMPLE.com"}"#).expect("a hit");
    assert_eq!(what, "the e-mail");
    assert_eq!(line, r#"{"msg":"hello [the e-mail]"}"#);
    let (what, line) = needles.find("secret pi_3abc_secret_xyz here").expect("a hit");
    assert_eq!(what, "a payment intent client secret");
    assert_eq!(line, "secret [client secret cut]");
    assert!(needles.find(r#"{"payment_intent_id":"pi_3abc","message":"booking confirmed"}"#).is_none());
    let (what, line) = needles.find("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln").expect("a hit");
    assert_eq!((what.as_str(), line.as_str()), ("a JWT", "Bearer [JWT cut]"));
    assert!(needles.find("ids 01kaxbeyjq5e6f7g8h9jkmnp and eyJ alone").is_none());
}

#[tokio::test]
async fn no_log_line_carries_personal_data_tokens_or_secrets() {
    roost_e2e::needs_stack!();
    let stack = Stack::get();
    // Names unique to this run, so a hit is ours.
    let (host_name, guest_name) = (format!("Hosta {}", unique("Lgx")), format!("Guesta {}", unique("Lgy")));
    let (host, guest) = tokio::join!(User::host(&host_name), User::guest(&guest_name));
    let mut needles = Needles(Vec::new());
    needles.add("the test password", PASSWORD);

    // Account paths that see e-mails and tokens, the failing ones included.
    let wrong_password = "Wrong-password-1";
    needles.add("the rejected password", wrong_password);
    let wrong = json!({"email": guest.email, "password": wrong_password});
    assert_eq!(anonymous(Method::POST, "/v1/auth/login", Some(&wrong)).await.status(), 401);
    let again = json!({"email": guest.email, "password": PASSWORD, "name": guest.name});
    assert_eq!(anonymous(Method::POST, "/v1/auth/signup", Some(&again)).await.status(), 409);
    let refreshed = json_of(
        anonymous(Method::POST, "/v1/auth/refresh", Some(&json!({"refresh_token": guest.refresh_token}))).await,
        200,
    )
    .await;
    needles.add("the guest's refreshed access token", s(&refreshed, "access_token"));
    needles.add("the guest's refreshed id token", s(&refreshed, "id_token"));
    json_of(guest.get("/v1/me").await, 200).await;
    json_of(guest.send(Method::PATCH, "/v1/me", Some(&json!({"name": guest.name}))).await, 200).await;
    let forgot = json!({"email": host.email});
    assert!(anonymous(Method::POST, "/v1/auth/password/forgot", Some(&forgot)).await.status().is_success());

    // The host lists a home; the guest books it and pays at localstripe.
    let city = unique("Logville");
    let listing = NewListing {
        title: "Log scan loft".into(),
        description: "Quiet.".into(),
        address: Address {
            line1: "1 Quay".into(),
            region: Some("R".into()),
            postal_code: None,
            ..NewListing::in_city(&city).address
        },
        timezone: "UTC".into(),
        nightly_price: money(9_000, "EUR"),
        cleaning_fee: None,
        min_nights: Some(1),
        max_nights: Some(7),
        cancellation_policy: "flexible".into(),
        ..NewListing::in_city(&city)
    };
    let listing_id = host.api().new_listing(&listing).await;
    let booking = guest.api().booked(&Stay::new(&listing_id, day(20), day(22), 1)).await;
    let booking_id = s(&booking, "booking_id").to_owned();
    let intent = json_of(guest.post(&format!("/v1/bookings/{booking_id}/payment"), None).await, 200).await;
    let intent_id = s(&intent, "payment_intent_id").to_owned();
    needles.add("the payment's client secret", s(&intent, "client_secret"));
    // SES refuses the guest's first e-mail (the error path, where addresses tend to leak): the
    // profile's address loses its domain until the refusal is recorded (the notifications
    // test's refused-address fixture).
    let refused = format!("{}@", guest.email.split('@').next().expect("local part"));
    set_profile_email(&guest, &refused).await;
    stripe(&format!("/v1/payment_intents/{intent_id}"), &[("payment_method", "pm_card_visa")]).await;
    let confirmed = stripe(&format!("/v1/payment_intents/{intent_id}/confirm"), &[]).await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");

    // The webhook -> payment-events confirms it; both are notified.
    let booking_path = format!("/v1/bookings/{booking_id}");
    eventually("the booking confirmed", || async {
        let b = json_of(guest.get(&booking_path).await, 200).await;
        (b["status"] == "confirmed").then_some(())
    })
    .await;
    let guest_confirmed = wait_for_inbox(&guest, "booking.confirmed", &booking_id).await;
    let host_confirmed = wait_for_inbox(&host, "booking.confirmed", &booking_id).await;
    let key = json!({"PK": {"S": format!("INBOX#{}", guest.user_id)},
                     "SK": {"S": format!("NOTIFICATION#{}", s(&guest_confirmed, "notification_id"))}});
    let email_status = |key: Value| async move {
        let item = dynamodb("GetItem", json!({"Key": key, "ConsistentRead": true})).await;
        item["Item"]["email"]["M"]["status"]["S"].as_str().unwrap_or("").to_owned()
    };
    eventually("the guest's e-mail refused", || async { (email_status(key.clone()).await == "pending").then_some(()) })
        .await;
    set_profile_email(&guest, &guest.email).await;
    eventually_for(Duration::from_secs(150), "the guest's e-mail sent on redelivery", || async {
        (email_status(key.clone()).await == "sent").then_some(())
    })
    .await;

    // The stay ends; the guest reviews; the host is notified.
    end_stay(&booking_id).await;
    let review = json!({"rating": 5, "comment": "Spotless."});
    json_of(guest.post(&format!("/v1/bookings/{booking_id}/review"), Some(&review)).await, 201).await;
    let host_reviewed = wait_for_inbox(&host, "review.posted", &booking_id).await;
    let reviews = anonymous(Method::GET, &format!("/v1/listings/{listing_id}/reviews"), None).await;
    assert_eq!(reviews.status(), 200);
    let reviews_request = request_id(&reviews);

    // Sign-out (the guest's tokens were in the request).
    let logout = guest.post("/v1/auth/logout", None).await;
    assert!(logout.status().is_success());
    let logout_request = request_id(&logout);

    // The synchronous functions' last lines (a function's output reaches its log file after the
    // response): the request lines of the last two calls, by their request ids.
    logged("ReviewsFunction", &[&reviews_request, "\"message\":\"request\""]).await;
    logged("UsersFunction", &[&logout_request, "\"message\":\"request\""]).await;

    // The asynchronous work has logged its last line for this journey: the relay published both
    // events, payment-events confirmed the booking, notifications finished each recipient.
    let ntf = |item: &Value| s(item, "notification_id").to_owned();
    let (confirmed_ntf, reviewed_ntf) = (ntf(&guest_confirmed), ntf(&host_reviewed));
    assert_eq!(confirmed_ntf, ntf(&host_confirmed));
    for n in [&confirmed_ntf, &reviewed_ntf] {
        let event_id = n.replacen("ntf_", "evt_", 1);
        logged("EventsRelayFunction", &[&event_id, "event published"]).await;
    }
    logged("PaymentEventsFunction", &[&booking_id, "booking confirmed"]).await;
    for (user, n) in [(&guest, &confirmed_ntf), (&host, &confirmed_ntf), (&host, &reviewed_ntf)] {
        logged("NotificationsFunction", &[n.as_str(), user.user_id.as_str(), "\"notified\""]).await;
    }

    needles.add_user("the host", &host);
    needles.add_user("the guest", &guest);
    let secrets = secret_parameter_values().await;
    assert!(!secrets.is_empty(), "no secret parameter read: is stack.json's secret_parameters list empty?");
    for (what, value) in secrets {
        needles.add(what, &value);
    }
    let webhook_secret = stack.rest["stripe_webhook_secret"].as_str().expect("stripe_webhook_secret in stack.json");
    needles.add("the Stripe webhook secret", webhook_secret);

    // Every function's log, and every other file the runtime wrote there.
    let functions: Vec<&str> =
        stack.rest["functions"].as_array().expect("functions in stack.json").iter().filter_map(Value::as_str).collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&stack.logs_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", stack.logs_dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    files.sort();
    // The runtime creates every log file at start: what shows a function was scanned is a
    // REPORT line (an invocation ended) in its log, for each function this journey calls.
    for f in JOURNEY_FUNCTIONS {
        assert!(functions.contains(f), "{f} is not among the stack's functions {functions:?}");
        let log = String::from_utf8_lossy(&std::fs::read(stack.logs_dir.join(format!("{f}.log"))).unwrap_or_default())
            .into_owned();
        assert!(log.contains("REPORT RequestId:"), "{f}'s log shows no invocation: the journey's lines are not there");
    }
    let mut hits = Vec::new();
    let mut lines = 0;
    for file in &files {
        // Bytes, lossily: a file that is not UTF-8 is scanned, not skipped.
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            lines += 1;
            if let Some((what, redacted)) = needles.find(line) {
                hits.push(format!("{}:{}: {what}\n    {redacted}", file.display(), number + 1));
            }
        }
    }
    assert!(lines > 0, "the logs are empty: is {} the stack's log directory?", stack.logs_dir.display());
    assert!(hits.is_empty(), "{} log line(s) carry what logs must not:\n{}", hits.len(), hits.join("\n"));
}

/// Words that name personal data or secrets: a log statement may not use them as a field name
/// or in a logged expression (ids are what logs carry).
const FORBIDDEN: &[&str] = &[
    "email",
    "emails",
    "password",
    "new_password",
    "token",
    "tokens",
    "access_token",
    "id_token",
    "refresh_token",
    "secret",
    "secrets",
    "client_secret",
    "webhook_secret",
    "secret_key",
    "stripe_key",
    "authorization",
    "headers",
    "claims",
    "card",
    "recipient_name",
    "guest_name",
    "host_name",
    "display_name",
    "profile",
];

/// The argument text of each log macro call (`info!(..)`, `info_span!(..)`, ...) in `source`,
/// with the line it starts on; items under `#[cfg(test)]` are not production logs.
fn log_calls(source: &str) -> Vec<(usize, String)> {
    let source = &production_source(source);
    let mut calls = Vec::new();
    for (at, _) in source.match_indices("!(") {
        let head = &source[..at];
        let ident_start = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let name = &head[ident_start..];
        let levels = ["trace", "debug", "info", "warn", "error", "event"];
        if !levels.iter().any(|l| name == *l || name == format!("{l}_span")) {
            continue;
        }
        let mut depth = 0;
        let mut in_string = false;
        let mut escaped = false;
        let mut end = None;
        for (i, c) in source[at + 1..].char_indices() {
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(at + 1 + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        if let Some(end) = end {
            calls.push((head.matches('\n').count() + 1, source[at + 2..end].to_owned()));
        }
    }
    calls
}

/// The identifiers of a log call's arguments outside string literals, plus the names inside
/// `{..}` placeholders of its format strings.
fn words(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut code = String::new();
    let mut parts = args.split('"');
    let mut literal = false;
    for part in parts.by_ref() {
        if literal {
            for placeholder in part.split('{').skip(1) {
                let name: String = placeholder.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                out.push(name);
            }
        } else {
            code.push_str(part);
            code.push(' ');
        }
        literal = !literal;
    }
    out.extend(code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map(str::to_owned));
    out.retain(|w| !w.is_empty());
    out
}

/// `source` with every item that carries `#[cfg(test)]` blanked out (a brace-matched
/// `mod x { .. }` or `fn`, or an item ending at `;` such as `mod order_tests;`), newlines kept so
/// line numbers stay true. Only the test item is dropped: production code after it is scanned.
fn production_source(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = source.as_bytes().to_vec();
    let mut from = 0;
    while let Some(found) = source[from..].find("#[cfg(test)]") {
        let start = from + found;
        let mut i = start + "#[cfg(test)]".len();
        let mut depth = 0usize;
        let mut end = bytes.len();
        while i < bytes.len() {
            match bytes[i] {
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    i = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    continue;
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    i = source[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
                    continue;
                }
                b'r' if matches!(bytes.get(i + 1), Some(b'#' | b'"'))
                    && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
                {
                    let hashes = bytes[i + 1..].iter().take_while(|b| **b == b'#').count();
                    if bytes.get(i + 1 + hashes) == Some(&b'"') {
                        let close = format!("\"{}", "#".repeat(hashes));
                        let body = i + 2 + hashes;
                        i = source[body..].find(&close).map_or(bytes.len(), |n| body + n + close.len());
                        continue;
                    }
                }
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b'\'' => {
                    // A char literal ('{', '\'', '\n'); a lifetime ('a) has no closing quote.
                    if bytes.get(i + 1) == Some(&b'\\') {
                        i = source[i + 3..].find('\'').map_or(bytes.len(), |n| i + 3 + n);
                    } else if let Some(c) = source[i + 1..].chars().next()
                        && source[i + 1 + c.len_utf8()..].starts_with('\'')
                    {
                        i += c.len_utf8() + 1;
                    }
                }
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let end = end.min(bytes.len());
        for b in &mut out[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        from = end;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn rust_sources(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            if !matches!(path.file_name().and_then(|n| n.to_str()), Some("tests" | "target")) {
                rust_sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The cheap, static half of the rule: no log statement of a function or of `shared` names a
/// field or logs an expression whose name says it is personal data or a secret, and every
/// `#[instrument]` skips its arguments (it would otherwise log each one's `Debug`).
#[test]
fn log_statements_name_no_personal_data_or_secret() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_sources(&root.join("functions"), &mut files);
    rust_sources(&root.join("shared/src"), &mut files);
    assert!(files.len() > 20, "found only {} sources under {}", files.len(), root.display());
    let mut offences = Vec::new();
    let mut calls = 0;
    for file in &files {
        let source = std::fs::read_to_string(file).expect("source");
        for (line, args) in log_calls(&source) {
            calls += 1;
            let bad: Vec<String> = words(&args).into_iter().filter(|w| FORBIDDEN.contains(&w.as_str())).collect();
            if !bad.is_empty() {
                offences.push(format!("{}:{line}: logs {bad:?}", file.display()));
            }
        }
        let production = production_source(&source);
        for (at, _) in production.match_indices("instrument(") {
            let attribute = &production[at..production[at..].find(")]").map_or(production.len(), |e| at + e)];
            let is_attribute = production[..at].trim_end().ends_with("#[") || production[..at].ends_with("tracing::");
            if is_attribute && !attribute.contains("skip_all") {
                let line = production[..at].matches('\n').count() + 1;
                offences.push(format!("{}:{line}: #[instrument] without skip_all", file.display()));
            }
        }
    }
    assert!(calls > 50, "found only {calls} log statements: is the scanner broken?");
    assert!(offences.is_empty(), "log statements that may carry personal data or secrets:\n{}", offences.join("\n"));
}

#[test]
fn the_static_scan_sees_fields_shorthands_and_placeholders() {
    let src = "fn f() { tracing::warn!(user_id = %u, email = %e, \"x\"); info!(%profile.email, \"y\"); \
               tracing::error!(\"to {email}\"); tracing::info!(user_id, \"fine (email not logged)\"); }";
    let calls = log_calls(src);
    assert_eq!(calls.len(), 4);
    let forbidden = |args: &str| words(args).into_iter().filter(|w| FORBIDDEN.contains(&w.as_str())).count();
    assert_eq!(forbidden(&calls[0].1), 1);
    assert_eq!(forbidden(&calls[1].1), 2);
    assert_eq!(forbidden(&calls[2].1), 1);
    assert_eq!(forbidden(&calls[3].1), 0, "words inside a message are not fields");
}

/// A test module declared early (`#[cfg(test)] mod order_tests;`, as payment-events does) must
/// not hide the production code after it from the scan; a test module's own logs are skipped.
#[test]
fn the_static_scan_skips_only_the_test_item() {
    let src = "#[cfg(test)]\nmod order_tests;\n\nfn f() {\n    tracing::warn!(email = %e, \"x\");\n}\n\
               #[cfg(test)]\nmod tests {\n    fn g() { let c = '{'; let s = r#\"}\"#; info!(email, \"t\"); }\n}\n\
               #[instrument]\nfn h() { error!(token = %t, \"after\"); }\n";
    let calls = log_calls(src);
    assert_eq!(calls.iter().map(|(line, _)| *line).collect::<Vec<_>>(), vec![5, 12], "{calls:?}");
    assert!(calls[0].1.contains("email") && calls[1].1.contains("token"));
    let production = production_source(src);
    assert_eq!(production.lines().count(), src.lines().count(), "line numbers are kept");
    assert!(production.contains("#[instrument]") && !production.contains("order_tests"));
}
