//! The users context end to end: sign-up to sign-out through Cognito (moto), through HTTP.

use base64::Engine;
use roost_e2e::fixtures::reset_code;
use roost_e2e::{PASSWORD, Stack, User, assert_problem, client, cognito, dynamodb, join_all, login, unique};
use serde_json::{Value, json};

async fn post(path: &str, body: Value) -> reqwest::Response {
    client().post(Stack::get().url(path)).json(&body).send().await.expect("api")
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("jwt");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("b64"))
        .expect("json")
}

/// Token revocation has one-second resolution (`iat`), and tokens minted in the second of a
/// logout or reset are refused too: a new session starts in a later second. (Moving the stored
/// revocation instant back instead would not do: every function caches it for a few seconds,
/// shared::sessions.)
async fn next_second() {
    let into = u64::try_from(jiff::Timestamp::now().subsec_nanosecond()).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_nanos(1_000_000_000 - into + 50_000_000)).await;
}

fn email(name: &str) -> String {
    format!("{}@test.roost.dev", unique(name))
}

#[tokio::test]
async fn the_whole_journey_from_sign_up_to_sign_out() {
    roost_e2e::needs_stack!();
    let email = email("journey");
    let signup =
        post("/v1/auth/signup", json!({"email": email.to_uppercase(), "password": PASSWORD, "name": " Jo Journey "}))
            .await;
    assert_eq!(signup.status(), 201);
    let created: Value = signup.json().await.expect("json");
    assert_eq!((created["email"].as_str(), &created["confirmed"]), (Some(email.as_str()), &json!(false)));
    let user_id = created["user_id"].as_str().expect("user_id").to_string();

    let early = post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
    assert_problem(early, 403, "user_not_confirmed").await;

    assert_eq!(post("/v1/auth/confirm", json!({"email": email, "code": "123456"})).await.status(), 204);
    let tokens = login(&email, PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_i64().unwrap_or(0) > 0);
    let user = User {
        user_id: user_id.clone(),
        email: email.clone(),
        password: PASSWORD.into(),
        name: "Jo Journey".into(),
        access_token: tokens["access_token"].as_str().expect("access").into(),
        id_token: tokens["id_token"].as_str().expect("id").into(),
        refresh_token: tokens["refresh_token"].as_str().expect("refresh").into(),
    };

    let me: Value = user.get("/v1/me").await.json().await.expect("json");
    assert_eq!(me["user_id"], user_id);
    assert_eq!(me["email"], email);
    assert_eq!(me["name"], "Jo Journey");
    assert_eq!(me["roles"], json!(["guest"]));

    let updated =
        user.send(reqwest::Method::PATCH, "/v1/me", Some(&json!({"bio": "Loves the sea", "name": "Jo"}))).await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.expect("json");
    assert_eq!((updated["name"].as_str(), updated["bio"].as_str()), (Some("Jo"), Some("Loves the sea")));
    let email_change = user.send(reqwest::Method::PATCH, "/v1/me", Some(&json!({"email": "x@y.co"}))).await;
    assert_problem(email_change, 400, "validation_failed").await;

    let host = user.post("/v1/me/host", None).await;
    assert_eq!(host.status(), 200);
    assert_eq!(host.json::<Value>().await.expect("json")["roles"], json!(["guest", "host"]));
    assert!(claims(&user.access_token).get("cognito:groups").is_none(), "the old token predates the group");
    let refreshed = post("/v1/auth/refresh", json!({"refresh_token": user.refresh_token})).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.expect("json");
    assert!(refreshed.get("refresh_token").is_none(), "refresh issues no new refresh token");
    let fresh_access = refreshed["access_token"].as_str().expect("access").to_string();
    assert_eq!(claims(&fresh_access)["cognito:groups"], json!(["hosts"]));

    let public: Value = client()
        .get(Stack::get().url(&format!("/v1/users/{user_id}")))
        .send()
        .await
        .expect("api")
        .json()
        .await
        .expect("json");
    assert_eq!(
        public,
        json!({"user_id": user_id, "name": "Jo", "bio": "Loves the sea", "created_at": me["created_at"], "is_host": true})
    );

    assert_eq!(post("/v1/auth/password/forgot", json!({"email": email})).await.status(), 202);
    let wrong = post(
        "/v1/auth/password/reset",
        json!({"email": email, "code": "moto-confirmation-code:1", "new_password": "Changed-pass-2"}),
    )
    .await;
    assert_problem(wrong, 400, "invalid_code").await;
    let code = reset_code(&email).await;
    let weak = post("/v1/auth/password/reset", json!({"email": email, "code": code, "new_password": "weak"})).await;
    let weak = assert_problem(weak, 400, "validation_failed").await;
    assert_eq!(weak["errors"][0]["field"], "new_password");
    let reset =
        post("/v1/auth/password/reset", json!({"email": email, "code": code, "new_password": "Changed-pass-2"})).await;
    assert_eq!(reset.status(), 204);
    assert_problem(
        post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(user.get("/v1/me").await, 401, "token_revoked").await;

    next_second().await;
    let after_reset = login(&email, "Changed-pass-2").await;
    let session = User {
        access_token: after_reset["access_token"].as_str().expect("access").into(),
        refresh_token: after_reset["refresh_token"].as_str().expect("refresh").into(),
        ..user
    };
    assert_eq!(session.get("/v1/me").await.status(), 200);

    assert_eq!(session.post("/v1/auth/logout", None).await.status(), 204);
    assert_problem(session.get("/v1/me").await, 401, "token_revoked").await;
    let stale_refresh = post("/v1/auth/refresh", json!({"refresh_token": session.refresh_token})).await;
    assert_problem(stale_refresh, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_look_the_same() {
    roost_e2e::needs_stack!();
    let user = User::guest("Enum").await;
    let wrong = post("/v1/auth/login", json!({"email": user.email, "password": "Not-the-pass-1"})).await;
    let unknown = post("/v1/auth/login", json!({"email": email("nobody"), "password": "Not-the-pass-1"})).await;
    let (a, b) = (
        assert_problem(wrong, 401, "invalid_credentials").await,
        assert_problem(unknown, 401, "invalid_credentials").await,
    );
    assert_eq!(a, b);
    assert_eq!(post("/v1/auth/password/forgot", json!({"email": email("ghost")})).await.status(), 202);
}

/// A day and an hour: past the grace period during which an unconfirmed account keeps its
/// e-mail (UNCONFIRMED_ACCOUNT_GRACE_HOURS, 24 in the template).
const PAST_GRACE_SECONDS: i64 = 25 * 3600;

/// Moves the account's `UserCreateDate` back, as if it had been made `seconds` earlier: the local
/// stack's moto launcher offers this (infra/local/moto_launcher.py, (5)), AWS has no such call.
async fn age_account(email: &str, seconds: i64) {
    let stack = Stack::get();
    let response = client()
        .post(format!("{}/moto-api/roost/cognito-user-age", stack.moto_url))
        .json(&json!({"UserPoolId": stack.user_pool_id, "Username": email, "Seconds": seconds}))
        .send()
        .await
        .expect("moto");
    assert_eq!(response.status(), 200, "ageing {email}: {}", response.text().await.unwrap_or_default());
}

/// The pool's accounts with this e-mail: (sub, status).
async fn accounts(email: &str) -> Vec<(String, String)> {
    let stack = Stack::get();
    let listed =
        cognito("ListUsers", &json!({"UserPoolId": stack.user_pool_id, "Filter": format!("email = \"{email}\"")}))
            .await;
    listed["Users"]
        .as_array()
        .expect("Users")
        .iter()
        .map(|u| {
            let sub = u["Attributes"].as_array().expect("Attributes").iter().find(|a| a["Name"] == "sub");
            (
                sub.and_then(|a| a["Value"].as_str()).expect("sub").to_owned(),
                u["UserStatus"].as_str().expect("UserStatus").to_owned(),
            )
        })
        .collect()
}

/// The stored profile item, if any (consistent read).
async fn profile_item(user_id: &str) -> Option<Value> {
    let key = json!({"PK": {"S": format!("USER#{user_id}")}, "SK": {"S": "PROFILE"}});
    let out = dynamodb("GetItem", json!({"Key": key, "ConsistentRead": true})).await;
    out.get("Item").cloned()
}

async fn sign_up(email: &str, password: &str, name: &str) -> reqwest::Response {
    post("/v1/auth/signup", json!({"email": email, "password": password, "name": name})).await
}

async fn signed_up(email: &str, password: &str, name: &str) -> String {
    let response = sign_up(email, password, name).await;
    assert_eq!(response.status(), 201, "sign-up {email}");
    response.json::<Value>().await.expect("json")["user_id"].as_str().expect("user_id").to_owned()
}

#[tokio::test]
async fn signing_up_again_within_a_day_keeps_the_first_account_and_its_password() {
    roost_e2e::needs_stack!();
    let email = email("again");
    let first = signed_up(&email, PASSWORD, "First").await;
    let second = sign_up(&email, "Second-pass-2", "Second").await;
    let second = assert_problem(second, 409, "email_taken").await;
    assert!(second.get("user_id").is_none(), "nothing about the account: {second}");
    assert_eq!(accounts(&email).await, [(first.clone(), "UNCONFIRMED".to_owned())]);
    assert_eq!(profile_item(&first).await.expect("profile kept")["name"]["S"], "First");

    assert_eq!(post("/v1/auth/confirm", json!({"email": email, "code": "1"})).await.status(), 204);
    let tokens = login(&email, PASSWORD).await;
    assert_eq!(claims(tokens["access_token"].as_str().expect("access"))["sub"], first.as_str());
    let second_password = post("/v1/auth/login", json!({"email": email, "password": "Second-pass-2"})).await;
    assert_problem(second_password, 401, "invalid_credentials").await;
    let again = sign_up(&email, PASSWORD, "Third").await;
    assert_problem(again, 409, "email_taken").await;
}

#[tokio::test]
async fn an_unconfirmed_account_older_than_a_day_is_replaced() {
    roost_e2e::needs_stack!();
    let email = email("stale");
    let first = signed_up(&email, PASSWORD, "First").await;
    age_account(&email, PAST_GRACE_SECONDS).await;
    let second = signed_up(&email, "Second-pass-2", "Second").await;
    assert_ne!(first, second, "the stale account was replaced");
    assert_eq!(accounts(&email).await, [(second.clone(), "UNCONFIRMED".to_owned())]);
    assert!(profile_item(&first).await.is_none(), "the stale sign-up's profile went with it");
    let gone = client().get(Stack::get().url(&format!("/v1/users/{first}"))).send().await.expect("api");
    assert_problem(gone, 404, "not_found").await;

    assert_eq!(post("/v1/auth/confirm", json!({"email": email, "code": "1"})).await.status(), 204);
    let tokens = login(&email, "Second-pass-2").await;
    assert_eq!(claims(tokens["access_token"].as_str().expect("access"))["sub"], second.as_str());
}

#[tokio::test]
async fn a_stale_sign_up_whose_profile_holds_more_than_its_sign_up_is_kept() {
    roost_e2e::needs_stack!();
    let email = email("kept");
    let first = signed_up(&email, PASSWORD, "First").await;
    // As a migration or a support tool would: the profile now holds more than the sign-up wrote.
    let key = json!({"PK": {"S": format!("USER#{first}")}, "SK": {"S": "PROFILE"}});
    dynamodb(
        "UpdateItem",
        json!({"Key": key, "UpdateExpression": "SET bio = :bio, updated_at = :now",
               "ExpressionAttributeValues": {":bio": {"S": "Imported"}, ":now": {"S": "2030-01-01T00:00:00Z"}}}),
    )
    .await;
    age_account(&email, PAST_GRACE_SECONDS).await;
    let second = sign_up(&email, "Second-pass-2", "Second").await;
    assert_problem(second, 409, "email_taken").await;
    assert_eq!(accounts(&email).await, [(first.clone(), "UNCONFIRMED".to_owned())]);
    assert_eq!(profile_item(&first).await.expect("profile kept")["bio"]["S"], "Imported");
}

#[tokio::test]
async fn accounts_an_operator_made_or_reset_survive_a_sign_up_with_their_email() {
    roost_e2e::needs_stack!();
    let stack = Stack::get();
    // Made by an operator or a migration (AdminCreateUser): FORCE_CHANGE_PASSWORD, with a profile.
    let email = email("migrated");
    let created = cognito(
        "AdminCreateUser",
        &json!({"UserPoolId": stack.user_pool_id, "Username": email, "TemporaryPassword": "Temp-pass-1",
                "MessageAction": "SUPPRESS", "UserAttributes": [{"Name": "name", "Value": "Migrated"}]}),
    )
    .await;
    let sub = created["User"]["Attributes"]
        .as_array()
        .expect("Attributes")
        .iter()
        .find(|a| a["Name"] == "sub")
        .and_then(|a| a["Value"].as_str())
        .expect("sub")
        .to_owned();
    let now = jiff::Timestamp::now().to_string();
    dynamodb(
        "PutItem",
        json!({"Item": {
            "PK": {"S": format!("USER#{sub}")}, "SK": {"S": "PROFILE"}, "type": {"S": "profile"},
            "user_id": {"S": sub}, "email": {"S": email}, "name": {"S": "Migrated"}, "bio": {"S": ""},
            "is_host": {"BOOL": false}, "created_at": {"S": now}, "updated_at": {"S": now}
        }}),
    )
    .await;
    // However old: only an UNCONFIRMED account may ever be replaced.
    age_account(&email, PAST_GRACE_SECONDS).await;
    assert_eq!(accounts(&email).await, [(sub.clone(), "FORCE_CHANGE_PASSWORD".to_owned())]);
    assert_problem(sign_up(&email, PASSWORD, "Squatter").await, 409, "email_taken").await;
    assert_eq!(accounts(&email).await, [(sub.clone(), "FORCE_CHANGE_PASSWORD".to_owned())]);
    assert_eq!(profile_item(&sub).await.expect("profile kept")["name"]["S"], "Migrated");

    // Reset by an operator (AdminResetUserPassword): RESET_REQUIRED.
    let user = User::guest("Reset").await;
    // Cognito marks the e-mail verified on confirmation (AutoVerifiedAttributes); moto does not,
    // and refuses the reset of an account without a verified e-mail.
    cognito(
        "AdminUpdateUserAttributes",
        &json!({"UserPoolId": stack.user_pool_id, "Username": user.email,
                "UserAttributes": [{"Name": "email_verified", "Value": "true"}]}),
    )
    .await;
    cognito("AdminResetUserPassword", &json!({"UserPoolId": stack.user_pool_id, "Username": user.email})).await;
    age_account(&user.email, PAST_GRACE_SECONDS).await;
    assert_eq!(accounts(&user.email).await, [(user.user_id.clone(), "RESET_REQUIRED".to_owned())]);
    assert_problem(sign_up(&user.email, PASSWORD, "Squatter").await, 409, "email_taken").await;
    assert_eq!(accounts(&user.email).await, [(user.user_id.clone(), "RESET_REQUIRED".to_owned())]);
    assert_eq!(profile_item(&user.user_id).await.expect("profile kept")["name"]["S"], "Reset");
}

/// Four sign-ups at once for a new e-mail, and for one whose unconfirmed account is stale: each
/// time exactly one wins (201) and its account is the only one; the others are 409.
#[tokio::test]
async fn concurrent_sign_ups_with_one_email_make_one_account() {
    roost_e2e::needs_stack!();
    for stale in [false, true] {
        let email = email("race");
        let old = if stale {
            let old = signed_up(&email, PASSWORD, "Old").await;
            age_account(&email, PAST_GRACE_SECONDS).await;
            Some(old)
        } else {
            None
        };
        let attempts = (0..4).map(|i| {
            let email = email.clone();
            async move {
                let response = sign_up(&email, PASSWORD, &format!("Racer {i}")).await;
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.expect("json"))
            }
        });
        let outcomes = join_all(attempts).await;
        let winners: Vec<&Value> = outcomes.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
        assert_eq!(winners.len(), 1, "stale={stale}: {outcomes:?}");
        let loser_codes = ["email_taken", "signup_in_progress"];
        for (status, body) in &outcomes {
            let code = body["code"].as_str().unwrap_or_default();
            assert!(*status == 201 || (*status == 409 && loser_codes.contains(&code)), "stale={stale}: {outcomes:?}");
        }
        let winner = winners[0]["user_id"].as_str().expect("user_id").to_owned();
        assert_eq!(accounts(&email).await, [(winner.clone(), "UNCONFIRMED".to_owned())], "stale={stale}");
        assert!(profile_item(&winner).await.is_some(), "stale={stale}: the winner has its profile");
        if let Some(old) = old {
            assert_ne!(old, winner);
            assert!(profile_item(&old).await.is_none(), "the stale account's profile is gone");
        }
    }
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_never_a_5xx() {
    roost_e2e::needs_stack!();
    let weak = post("/v1/auth/signup", json!({"email": email("weak"), "password": "password", "name": "W"})).await;
    let weak = assert_problem(weak, 400, "validation_failed").await;
    assert_eq!(weak["errors"][0]["field"], "password");
    let bad_email = post("/v1/auth/signup", json!({"email": "not-an-email", "password": PASSWORD, "name": "W"})).await;
    assert_eq!(assert_problem(bad_email, 400, "validation_failed").await["errors"][0]["field"], "email");
    let wrong_type = post("/v1/auth/signup", json!({"email": 7, "password": PASSWORD, "name": "W"})).await;
    assert_problem(wrong_type, 400, "validation_failed").await;
    let unknown =
        post("/v1/auth/signup", json!({"email": email("u"), "password": PASSWORD, "name": "W", "admin": true})).await;
    assert_problem(unknown, 400, "validation_failed").await;
    let malformed = client()
        .post(Stack::get().url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("api");
    assert_problem(malformed, 400, "malformed_request").await;
    let huge = client()
        .post(Stack::get().url("/v1/auth/signup"))
        .header("content-type", "application/json")
        .body(format!("{{\"email\":\"{}\"}}", "a".repeat(1 << 20)))
        .send()
        .await
        .expect("api");
    assert_problem(huge, 413, "payload_too_large").await;
    let bio = User::guest("Bio").await;
    let long = bio.send(reqwest::Method::PATCH, "/v1/me", Some(&json!({"bio": "x".repeat(1001)}))).await;
    assert_eq!(assert_problem(long, 400, "validation_failed").await["errors"][0]["field"], "bio");
    let garbage_id = client().get(Stack::get().url("/v1/users/not-a-user")).send().await.expect("api");
    assert_problem(garbage_id, 404, "not_found").await;
    let refresh = post("/v1/auth/refresh", json!({"refresh_token": "garbage"})).await;
    assert_problem(refresh, 401, "invalid_token").await;
}

/// The gateway's JWT authorizer guards every protected users route: each bad token is a 401
/// with API Gateway's own body, and the function never sees the request.
#[tokio::test]
async fn the_authorizer_refuses_bad_tokens_before_the_function_runs() {
    roost_e2e::needs_stack!();
    use roost_e2e::tokens::{claims_of, sign, signing_keys};
    let stack = Stack::get();
    let user = User::guest("Gate").await;
    let (moto_key, other_key) = signing_keys();
    let base = claims_of(&user.access_token);
    let now = jiff::Timestamp::now().as_second();
    let mut expired = base.clone();
    expired.insert("iat".into(), json!(now - 7200));
    expired.insert("exp".into(), json!(now - 3600));

    // A real sign-in through another app client of the same pool.
    let other_client = cognito(
        "CreateUserPoolClient",
        &json!({"UserPoolId": stack.user_pool_id, "ClientName": unique("other"), "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}),
    )
    .await["UserPoolClient"]["ClientId"]
        .as_str()
        .expect("client id")
        .to_string();
    let other_sign_in = cognito(
        "InitiateAuth",
        &json!({"ClientId": other_client, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": {"USERNAME": user.email, "PASSWORD": user.password}}),
    )
    .await;
    let other_client_token = other_sign_in["AuthenticationResult"]["AccessToken"].as_str().expect("token").to_string();

    let cases = [
        ("no token", None),
        ("garbage", Some("Bearer not.a.jwt".to_string())),
        ("another key", Some(format!("Bearer {}", sign(&base, &other_key)))),
        ("expired", Some(format!("Bearer {}", sign(&expired, &moto_key)))),
        ("another app client", Some(format!("Bearer {other_client_token}"))),
    ];
    let mut refused = Vec::new();
    for (what, authorization) in cases {
        let request_id = unique("refused-");
        let mut request = client().get(stack.url("/v1/me")).header("x-request-id", &request_id);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.expect("api");
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(response.json::<Value>().await.expect("json"), json!({"message": "Unauthorized"}), "{what}");
        refused.push(request_id);
    }

    // Control: the same forged-token path with moto's own key and untouched claims gets through,
    // and its line in the function's log is what the refused requests lack.
    let control_id = unique("control-");
    let control = client()
        .get(stack.url("/v1/me"))
        .header("x-request-id", &control_id)
        .header("authorization", format!("Bearer {}", sign(&base, &moto_key)))
        .send()
        .await
        .expect("api");
    assert_eq!(control.status(), 200);
    let log = wait_for_log("UsersFunction", &control_id).await;
    for id in refused {
        assert!(!log.contains(&id), "{id} reached the function");
    }
}

async fn wait_for_log(function: &str, needle: &str) -> String {
    for _ in 0..100 {
        let log = Stack::get().function_log(function);
        if log.contains(needle) {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{needle} never reached {function}'s log");
}
