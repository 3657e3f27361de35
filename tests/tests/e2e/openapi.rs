//! The API described by itself (issue 15): the committed `docs/openapi.json` is exactly what the
//! code generates, it names every route of the template and no other (with the template's
//! authorizer as its security), and the stack serves it with an ETag and a page that loads
//! nothing from elsewhere.

use std::collections::BTreeSet;

use roost_e2e::{Stack, client, json_of, needs_stack};
use serde_json::Value;

use crate::auth::routes;

fn committed() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    std::fs::read_to_string(path).expect("docs/openapi.json (write it with `cargo roost openapi`)")
}

fn generated() -> Value {
    serde_json::from_str(&docs::openapi::to_json(&docs::openapi::document()).expect("JSON")).expect("JSON")
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> impl Iterator<Item = (&'static str, &String, &Value)> {
    doc["paths"].as_object().expect("paths").iter().flat_map(|(path, item)| {
        METHODS.into_iter().filter_map(move |method| item.get(method).map(|op| (method, path, op)))
    })
}

#[test]
fn the_committed_document_is_what_the_code_generates() {
    let generated = docs::openapi::to_json(&docs::openapi::document()).expect("JSON");
    assert!(
        committed() == generated,
        "docs/openapi.json differs from the document the code generates: run `cargo roost openapi` and commit it"
    );
}

#[test]
fn the_document_names_every_route_of_the_template_and_no_other() {
    let doc = generated();
    let mut documented = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let signed_in = op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("cognito").is_some()));
        // The tag is the context, and the context's function serves the route (a handler
        // documented in one context but served by another would 404 live).
        let tag = op["tags"][0].as_str().unwrap_or_default().to_owned();
        documented.insert((method.to_uppercase(), path.clone(), !signed_in, tag));
    }
    let context = |function: &str| function.trim_end_matches("Function").to_lowercase();
    let declared: BTreeSet<(String, String, bool, String)> =
        routes().into_iter().map(|r| (r.method, r.path, r.public, context(&r.function))).collect();
    let missing: Vec<_> = declared.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&declared).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "(method, path, public, context) in the template but not the document: {missing:#?}\n\
         in the document but not the template: {extra:#?}"
    );
}

#[test]
fn every_operation_has_a_tag_a_summary_an_id_and_documented_errors() {
    let doc = generated();
    let tags: BTreeSet<&str> =
        doc["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        let tag = op["tags"][0].as_str().unwrap_or_default();
        assert!(tags.contains(tag), "{name}: tag {tag:?} is not one of {tags:?}");
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{name}: no summary");
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_owned()), "{name}: operationId {id} is used twice");
        let responses = op["responses"].as_object().expect("responses");
        assert!(responses.keys().any(|s| s.starts_with('2') || s == "304"), "{name}: no success answer");
        let problem = &responses["500"]["content"]["application/problem+json"];
        assert!(problem["schema"]["allOf"].is_array(), "{name}: 500 is not a problem");
        if path.contains('{') && !path.starts_with("/v1/docs/") {
            assert!(responses.contains_key("404") || responses.contains_key("403"), "{name}: an id but no 404");
        }
    }
}

#[tokio::test]
async fn the_stack_serves_the_document_with_an_etag_and_answers_304() {
    needs_stack!();
    let url = Stack::get().url("/v1/openapi.json");
    let res = client().get(&url).send().await.expect("api");
    let etag = res.headers().get("etag").expect("ETag").to_str().expect("ascii").to_owned();
    let cache = res.headers().get("cache-control").expect("Cache-Control").to_str().expect("ascii").to_owned();
    assert!(cache.contains("max-age="), "{cache}");
    assert!(res.headers()["content-type"].to_str().expect("ascii").starts_with("application/json"));
    let served = json_of(res, 200).await;
    let committed: Value = serde_json::from_str(&committed()).expect("JSON");
    assert!(served == committed, "the served document is not docs/openapi.json");

    let again = client().get(&url).header("if-none-match", &etag).send().await.expect("api");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().expect("ascii"), etag);
    assert!(again.bytes().await.expect("body").is_empty());
    let weak = client().get(&url).header("if-none-match", format!("\"other\", W/{etag}")).send().await.expect("api");
    assert_eq!(weak.status(), 304);
    let stale = client().get(&url).header("if-none-match", "\"stale\"").send().await.expect("api");
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_ours_under_a_strict_policy() {
    needs_stack!();
    let res = client().get(Stack::get().url("/v1/docs")).send().await.expect("api");
    assert_eq!(res.status(), 200);
    let csp = res.headers().get("content-security-policy").expect("CSP").to_str().expect("ascii").to_owned();
    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains("http"), "{csp}");
    let html = res.text().await.expect("body");
    let assets: Vec<&str> = html.split("\"docs/").skip(1).filter_map(|s| s.split('"').next()).collect();
    assert!(assets.len() >= 4, "{html}");
    for asset in assets {
        let res = client().get(Stack::get().url(&format!("/v1/docs/{asset}"))).send().await.expect("api");
        assert_eq!(res.status(), 200, "{asset}");
        assert!(!res.bytes().await.expect("body").is_empty(), "{asset}");
    }
    let missing = client().get(Stack::get().url("/v1/docs/index.html")).send().await.expect("api");
    roost_e2e::assert_problem(missing, 404, "not_found").await;
}

/// Every `code` some operation of the document can answer.
fn problem_codes(doc: &Value) -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    for (_, _, op) in operations(doc) {
        for response in op["responses"].as_object().expect("responses").values() {
            let schema = &response["content"]["application/problem+json"]["schema"];
            for part in schema["allOf"].as_array().into_iter().flatten() {
                for code in part["properties"]["code"]["enum"].as_array().into_iter().flatten() {
                    codes.insert(code.as_str().expect("a code is a string").to_owned());
                }
            }
        }
    }
    codes
}

#[test]
fn every_problem_code_of_the_document_is_explained_in_the_guide() {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).expect("api.md");
    let index = guide.split("## Problem codes").nth(1).expect("docs/api.md has a `## Problem codes` section");
    let index = index.split("\n## ").next().unwrap_or(index);
    let codes = problem_codes(&generated());
    assert!(codes.len() >= 10, "{codes:?}");
    let missing: Vec<&String> = codes.iter().filter(|c| !index.contains(&format!("| `{c}` |"))).collect();
    assert!(missing.is_empty(), "codes the reference lists but docs/api.md's index does not explain: {missing:?}");
}
