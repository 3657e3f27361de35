use roost_e2e::{Stack, client};
use serde_json::Value;

#[tokio::test]
async fn health_answers_through_the_gateway_with_a_request_id() {
    roost_e2e::needs_stack!();
    let stack = Stack::get();
    let response = client().get(stack.url("/v1/health")).send().await.expect("api reachable");
    assert_eq!(response.status(), 200);
    let generated = response.headers()["x-request-id"].to_str().expect("ascii").to_string();
    assert!(!generated.is_empty());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"status": "ok"}));

    let echoed = client().get(stack.url("/v1/health")).header("x-request-id", "e2e-abc.123").send().await.expect("api");
    assert_eq!(echoed.headers()["x-request-id"], "e2e-abc.123");

    let log = stack.function_log("UsersFunction");
    assert!(log.contains("REPORT RequestId:"), "the runtime reports every invocation: {log}");
    assert!(log.contains("\"ddb_requests\":0"), "the request line counts DynamoDB calls: {log}");
}

#[tokio::test]
async fn unknown_routes_are_answered_by_the_gateway() {
    roost_e2e::needs_stack!();
    let response = client().get(Stack::get().url("/v1/nope")).send().await.expect("api reachable");
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.expect("json"), serde_json::json!({"message": "Not Found"}));
}
