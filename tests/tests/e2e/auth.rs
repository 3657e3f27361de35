//! What the gateway answers before any function runs, for every route the template declares
//! (issue 23): every private route refuses a request without a valid token, the answers carry
//! a request id, and CORS is what the template's `CorsConfiguration` says. The routes and the
//! CORS settings are read from `infra/template.yaml`, so a new route is covered by itself.

use reqwest::Method;
use roost_e2e::{Stack, User, client, json_of, unique};
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;

fn template() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("infra/template.yaml");
    serde_yaml::from_str(&text).expect("YAML")
}

/// A route of the HTTP API as a function's `HttpApi` event declares it.
#[derive(Debug)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub public: bool,
    /// The template's logical id of the function that serves it (`UsersFunction`, ...).
    pub function: String,
}

/// Every `HttpApi` event of every function in the template.
pub fn routes() -> Vec<Route> {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut out = Vec::new();
    for (id, resource) in resources {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for event in events.values().filter(|e| e["Type"].as_str() == Some("HttpApi")) {
            let p = &event["Properties"];
            out.push(Route {
                method: p["Method"].as_str().expect("Method").to_uppercase(),
                path: p["Path"].as_str().expect("Path").to_owned(),
                public: p["Auth"]["Authorizer"].as_str() == Some("NONE"),
                function: id.as_str().expect("a logical id").to_owned(),
            });
        }
    }
    assert!(out.len() >= 20, "the template's routes were not found: {out:?}");
    out
}

/// `path` with each `{parameter}` replaced by a made-up id.
pub fn concrete(path: &str) -> String {
    path.split('/')
        .map(|part| if part.starts_with('{') && part.ends_with('}') { "x_e2e_nope" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(route: &Route, authorization: Option<&str>) -> reqwest::Response {
    let method = Method::from_bytes(route.method.as_bytes()).expect("method");
    let request = client().request(method, Stack::get().url(&concrete(&route.path)));
    let request = match authorization {
        Some(a) => request.header("authorization", a),
        None => request,
    };
    request.send().await.expect("api")
}

/// API Gateway's own answer (not a function's): `{"message": ...}` as JSON, with the gateway's
/// request id (`apigw-requestid`) for support to find it.
async fn assert_gateway_answer(response: reqwest::Response, status: u16, message: &str, what: &str) {
    assert!(
        response.headers().get("apigw-requestid").is_some_and(|v| !v.is_empty()),
        "{what}: no apigw-requestid: {:?}",
        response.headers()
    );
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(content_type, "application/json", "{what}");
    assert_eq!(json_of(response, status).await, json!({"message": message}), "{what}");
}

#[tokio::test]
async fn every_private_route_of_the_template_refuses_a_missing_or_bad_token() {
    roost_e2e::needs_stack!();
    let routes = routes();
    let private: Vec<&Route> = routes.iter().filter(|r| !r.public).collect();
    assert!(private.len() >= 18, "{private:?}");
    // An expired, forged or garbled token is refused like none (the authorizer checks the
    // signature, issuer and audience before any function runs).
    let garbled = "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    for route in private {
        let what = format!("{} {}", route.method, route.path);
        assert_gateway_answer(call(route, None).await, 401, "Unauthorized", &format!("{what} without a token")).await;
        assert_gateway_answer(
            call(route, Some(garbled)).await,
            401,
            "Unauthorized",
            &format!("{what} with a bad token"),
        )
        .await;
    }
}

#[tokio::test]
async fn public_routes_never_ask_for_a_token() {
    roost_e2e::needs_stack!();
    // A public route reaches its function without a token: whatever the function answers, it is
    // not the gateway's 401.
    for route in routes().iter().filter(|r| r.public && !r.path.starts_with("/v1/webhooks/")) {
        let response = call(route, None).await;
        assert_ne!(response.status(), 401, "{} {} is public", route.method, route.path);
        assert!(
            response.headers().contains_key("x-request-id"),
            "{} {}: the function answered",
            route.method,
            route.path
        );
    }
}

#[tokio::test]
async fn an_unknown_route_is_the_gateways_404_with_its_request_id() {
    roost_e2e::needs_stack!();
    let response = client().get(Stack::get().url("/v1/no-such-route")).send().await.expect("api");
    assert_gateway_answer(response, 404, "Not Found", "GET /v1/no-such-route").await;
    let response = client().delete(Stack::get().url("/v1/health")).send().await.expect("api");
    assert_gateway_answer(response, 404, "Not Found", "DELETE /v1/health (no such method)").await;
}

#[tokio::test]
async fn function_errors_carry_the_callers_request_id_or_a_new_one() {
    roost_e2e::needs_stack!();
    let user = User::guest("Rid Error").await;
    // The caller's id comes back on an error, as on a success.
    let id = unique("rid-error-");
    let response = client()
        .get(Stack::get().url("/v1/bookings/bkg_nope"))
        .header("authorization", user.bearer())
        .header("x-request-id", &id)
        .send()
        .await
        .expect("api");
    assert_eq!(response.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some(id.as_str()));
    roost_e2e::assert_problem(response, 404, "not_found").await;
    // Without one, the function makes one up: on a validation error, and on an anonymous 404.
    let response = user.get("/v1/me/trips?limit=0").await;
    assert!(response.headers().get("x-request-id").is_some_and(|v| !v.is_empty()), "{:?}", response.headers());
    roost_e2e::assert_problem(response, 400, "validation_failed").await;
    let response = client().get(Stack::get().url("/v1/listings/lst_nope")).send().await.expect("api");
    assert!(response.headers().get("x-request-id").is_some_and(|v| !v.is_empty()), "{:?}", response.headers());
    roost_e2e::assert_problem(response, 404, "not_found").await;
}

/// The template's `CorsConfiguration` list under `key`, lower case, `!Ref` parameters resolved
/// to their default (what the local stack deploys).
fn cors_list(key: &str) -> Vec<String> {
    let template = template();
    let cors = &template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
    let value = match &cors[key] {
        Yaml::Tagged(tagged) if tagged.tag == "!Ref" => {
            let parameter = tagged.value.as_str().expect("a parameter name");
            template["Parameters"][parameter]["Default"].clone()
        }
        other => other.clone(),
    };
    let items: Vec<String> = match value {
        Yaml::Sequence(items) => items.iter().map(|i| i.as_str().expect("a string").to_owned()).collect(),
        Yaml::String(s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
        other => panic!("CorsConfiguration.{key}: {other:?}"),
    };
    items.into_iter().map(|s| s.to_lowercase()).collect()
}

fn header_list(response: &reqwest::Response, name: &str) -> Vec<String> {
    let value = response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name}"));
    value.split(',').map(|s| s.trim().to_lowercase()).collect()
}

#[tokio::test]
async fn cors_preflight_and_simple_requests_answer_as_the_template_declares() {
    roost_e2e::needs_stack!();
    let origin = "https://app.roost.example";
    let allowed_origins = cors_list("AllowOrigins");
    let want_origin =
        if allowed_origins.iter().any(|o| o == "*") { "*".to_owned() } else { allowed_origins[0].clone() };
    let origin = if want_origin == "*" { origin.to_owned() } else { want_origin.clone() };

    // A preflight for a private route: answered by the gateway (no token needed for it).
    let preflight = client()
        .request(Method::OPTIONS, Stack::get().url("/v1/bookings"))
        .header("origin", &origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,idempotency-key")
        .send()
        .await
        .expect("api");
    assert!(preflight.status().is_success(), "preflight: {}", preflight.status());
    let got_origin = preflight.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok());
    assert_eq!(got_origin, Some(want_origin.as_str()));
    let mut methods = header_list(&preflight, "access-control-allow-methods");
    let mut want_methods = cors_list("AllowMethods");
    methods.sort();
    want_methods.sort();
    assert_eq!(methods, want_methods);
    let mut headers = header_list(&preflight, "access-control-allow-headers");
    let mut want_headers = cors_list("AllowHeaders");
    headers.sort();
    want_headers.sort();
    assert_eq!(headers, want_headers);
    for needed in ["authorization", "content-type", "idempotency-key", "x-request-id"] {
        assert!(headers.iter().any(|h| h == needed), "{needed} allowed: {headers:?}");
    }
    let max_age = preflight.headers().get("access-control-max-age").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let template = template();
    let want_age = template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]["MaxAge"].as_u64();
    assert_eq!(max_age, want_age.map(|a| a.to_string()));

    // A simple request: the function's answer, with the origin allowed and the request id
    // readable by the browser's script.
    let simple = client().get(Stack::get().url("/v1/health")).header("origin", &origin).send().await.expect("api");
    assert_eq!(simple.status(), 200);
    assert_eq!(
        simple.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some(want_origin.as_str())
    );
    let mut exposed = header_list(&simple, "access-control-expose-headers");
    let mut want_exposed = cors_list("ExposeHeaders");
    exposed.sort();
    want_exposed.sort();
    assert_eq!(exposed, want_exposed);
    assert!(exposed.iter().any(|h| h == "x-request-id"), "{exposed:?}");
    // The gateway's own answers are decorated too (a browser must be able to read a 401).
    let refused = client().get(Stack::get().url("/v1/me")).header("origin", &origin).send().await.expect("api");
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some(want_origin.as_str())
    );
    let _: Value = refused.json().await.expect("json");
}
