//! Sign-out (and a password reset) ends the session on every private route of every context,
//! within `shared::sessions::CACHE_TTL` (docs/decisions.md, "Access tokens after sign-out").

use std::time::{Duration, Instant};

use reqwest::Method;
use roost_e2e::fixtures::reset_code;
use roost_e2e::{Stack, User, client, login, unique};
use serde_json::{Value, json};
use shared::sessions::CACHE_TTL;

/// One private route of each context, with what a live token gets there (the route's answer for
/// this caller: a fake id is a 404 only once the caller was accepted).
fn probes() -> Vec<(&'static str, Method, &'static str, Option<Value>, u16)> {
    vec![
        ("ListingsFunction", Method::GET, "/v1/me/listings", None, 200),
        ("BookingsFunction", Method::GET, "/v1/me/trips", None, 200),
        ("PaymentsFunction", Method::POST, "/v1/bookings/bkg_01kaxb3c4d5e6f7g8h9jkmnpqr/payment", None, 404),
        (
            "ReviewsFunction",
            Method::POST,
            "/v1/reviews/rev_01kaxb3c4d5e6f7g8h9jkmnpqr/response",
            Some(json!({"comment": "Thank you"})),
            404,
        ),
        ("UsersFunction", Method::GET, "/v1/me/notifications", None, 200),
    ]
}

/// The request log line's DynamoDB counts for this request: (the route's own, the sign-out
/// check's). Polled for up to the harness's PATIENCE: the log is written as the runtime reads it.
async fn costs(function: &str, request_id: &str) -> (u64, u64) {
    let v = roost_e2e::request_line(function, request_id).await;
    (
        v["ddb_requests"].as_u64().expect("ddb_requests"),
        v["session_ddb_requests"].as_u64().expect("session_ddb_requests"),
    )
}

/// How long after a sign-out a process may still accept the old token, plus the time a request
/// takes on a loaded machine.
fn bound() -> Duration {
    CACHE_TTL + Duration::from_secs(3)
}

/// Sends the probe; returns (status, problem code, request id).
async fn status_and_code(user: &User, method: &Method, path: &str, body: Option<&Value>) -> (u16, String, String) {
    let request_id = unique("session-");
    let mut request = client()
        .request(method.clone(), Stack::get().url(path))
        .header("authorization", user.bearer())
        .header("x-request-id", &request_id);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("api");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned(), request_id)
}

/// Every probe refuses `user`'s token with 401 `token_revoked` before `ended + bound()`.
async fn assert_every_context_refuses(user: &User, ended: Instant) {
    let deadline = ended + bound();
    for (context, method, path, body, _) in probes() {
        loop {
            let (status, code, _) = status_and_code(user, &method, path, body.as_ref()).await;
            if (status, code.as_str()) == (401, "token_revoked") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{context} still answers {status} {code} {:?} after the end",
                ended.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Once every cache that could hold the old answer has expired, refused by every process.
    tokio::time::sleep_until((ended + CACHE_TTL + Duration::from_millis(100)).into()).await;
    for (context, method, path, body, _) in probes() {
        let (status, code, request_id) = status_and_code(user, &method, path, body.as_ref()).await;
        assert_eq!((status, code.as_str()), (401, "token_revoked"), "{context}");
        // Refused before the handler ran: at most the check's one read.
        let (route, check) = costs(context, &request_id).await;
        assert_eq!(route, 0, "{context}");
        assert!(check <= 1, "{context}: {check}");
    }
}

/// Every probe accepts `user`'s token. `first_call`: no function but users has seen this user
/// yet, so each check is a cache miss and must cost exactly its one read.
async fn assert_every_context_accepts(user: &User, first_call: bool) {
    for (context, method, path, body, accepted) in probes() {
        let (status, code, request_id) = status_and_code(user, &method, path, body.as_ref()).await;
        assert_eq!(status, accepted, "{context}: {code}");
        // The check costs one GetItem on a miss and nothing on a hit.
        let (_, check) = costs(context, &request_id).await;
        if first_call && context != "UsersFunction" {
            assert_eq!(check, 1, "{context}");
        } else {
            assert!(check <= 1, "{context}: {check}");
        }
    }
}

/// `iat` has one-second resolution and the revocation's own second is refused: a token for a
/// new session is minted in a later second.
async fn next_second() {
    let now = jiff::Timestamp::now();
    let into = Duration::from_nanos(u64::try_from(now.subsec_nanosecond()).unwrap_or(0));
    tokio::time::sleep(Duration::from_secs(1) - into + Duration::from_millis(50)).await;
}

fn with_tokens(user: &User, tokens: &Value) -> User {
    User {
        access_token: tokens["access_token"].as_str().expect("access").into(),
        id_token: tokens["id_token"].as_str().expect("id").into(),
        refresh_token: tokens["refresh_token"].as_str().expect("refresh").into(),
        ..user.clone()
    }
}

#[tokio::test]
async fn after_sign_out_every_context_refuses_the_old_token_and_a_new_sign_in_works() {
    roost_e2e::needs_stack!();
    // A host, so that the listings probe answers 200 to a live token.
    let user = User::host("Session").await;
    // Every context has now seen (and cached) this user as not signed out.
    assert_every_context_accepts(&user, true).await;

    let signed_out = Instant::now();
    assert_eq!(user.post("/v1/auth/logout", None).await.status(), 204);
    assert_every_context_refuses(&user, signed_out).await;

    next_second().await;
    let again = with_tokens(&user, &login(&user.email, &user.password).await);
    assert_every_context_accepts(&again, false).await;
    // The old token stays refused next to the new one.
    let (status, code, _) = status_and_code(&user, &Method::GET, "/v1/me/trips", None).await;
    assert_eq!((status, code.as_str()), (401, "token_revoked"));
}

#[tokio::test]
async fn a_password_reset_ends_the_session_everywhere() {
    roost_e2e::needs_stack!();
    let user = User::host("Reset").await;
    assert_every_context_accepts(&user, true).await;
    let post = |path: &'static str, body: Value| async move {
        client().post(Stack::get().url(path)).json(&body).send().await.expect("api").status().as_u16()
    };
    assert_eq!(post("/v1/auth/password/forgot", json!({"email": user.email})).await, 202);
    let code = reset_code(&user.email).await;
    let reset = json!({"email": user.email, "code": code, "new_password": "Changed-pass-2"});
    let reset_at = Instant::now();
    assert_eq!(post("/v1/auth/password/reset", reset).await, 204);
    assert_every_context_refuses(&user, reset_at).await;

    next_second().await;
    let again = with_tokens(&user, &login(&user.email, "Changed-pass-2").await);
    assert_every_context_accepts(&again, false).await;
}
