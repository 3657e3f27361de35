//! The sample events in `events/docs/` replayed through the real router, as Lambda would
//! deliver them: the document with its ETag and a 304 on a match, the page under its policy,
//! and 404 for anything that is not one of the page's assets.

use std::sync::Arc;

use docs::{AppState, openapi, page, router};
use shared::testing::{self, ProblemAnswer};

fn state() -> AppState {
    AppState {
        document: Arc::new(openapi::Published::new(&openapi::document()).expect("document")),
        page: Arc::new(page::Page::new()),
    }
}

#[tokio::test]
async fn unknown_assets_are_problems() {
    let expected: &[ProblemAnswer] = &[
        ("asset-not-in-the-page.json", 404, "not_found", None),
        ("asset-path-traversal.json", 404, "not_found", None),
    ];
    for (file, status, code, _) in expected {
        let (got, headers, body) = testing::replay(router(state()), &testing::sample("docs", file)).await;
        assert_eq!((got, body["code"].as_str()), (*status, Some(*code)), "{file}: {body}");
        assert_eq!(headers["content-type"], "application/problem+json", "{file}");
    }
}

#[tokio::test]
async fn the_document_answers_304_to_its_own_etag_only() {
    let event = testing::sample("docs", "openapi-if-none-match.json");
    let (status, headers, body) = testing::replay(router(state()), &event).await;
    assert_eq!(status, 200);
    assert_eq!(body["openapi"], "3.1.0");
    let etag = headers["etag"].to_str().expect("ascii").to_owned();
    assert!(headers["cache-control"].to_str().expect("ascii").contains("max-age"));
    let again =
        event.replace(r#""if-none-match": "\"x\"""#, &format!(r#""if-none-match": {}"#, serde_json::json!(etag)));
    assert_ne!(again, event, "the sample sends If-None-Match");
    let (status, headers, _) = testing::replay(router(state()), &again).await;
    assert_eq!(status, 304);
    assert_eq!(headers["etag"], etag.as_str());
}

#[test]
fn every_sample_event_is_used() {
    assert_eq!(
        testing::sample_files("docs"),
        ["asset-not-in-the-page.json", "asset-path-traversal.json", "openapi-if-none-match.json"]
    );
}
