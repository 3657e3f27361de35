//! The schema as committed (`docs/schema.graphql`, written by `cargo roost graphql-schema`) is
//! the schema the code serves, and the limits refuse abusive queries before any resolver runs
//! (no table is reached: the state points at nothing). This file also makes `cargo test
//! --no-run` build the crate's binaries, which the stack runs.

use std::sync::Arc;

use graphql::auth::TokenVerifier;
use graphql::limits::Limits;
use graphql::{AppState, Reads};
use shared::testing;

#[test]
fn the_committed_schema_is_the_served_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.graphql");
    let committed = std::fs::read_to_string(path).expect("docs/schema.graphql");
    assert!(
        committed == graphql::schema::sdl(),
        "docs/schema.graphql differs from the schema in the code: run `cargo roost graphql-schema` and commit it"
    );
}

fn state(limits: Limits) -> AppState {
    let table = Arc::new(testing::offline_table());
    let cursors = Arc::new(testing::replay_cursor_key());
    let clock: shared::SharedClock = Arc::new(shared::clock::FixedClock::at("2026-07-01T10:00:00Z").expect("instant"));
    let photos = Arc::new(listings::photos::PhotoStore {
        client: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::new()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .endpoint_url(testing::OFFLINE_ENDPOINT)
                .build(),
        ),
        bucket: "photos".into(),
    });
    let reads = Reads::new(table, photos, clock.clone(), cursors);
    let tokens =
        Arc::new(TokenVerifier::new("https://issuer".into(), vec!["client".into()], "http://127.0.0.1:9/jwks".into()));
    let schema = graphql::schema::build(reads.clone(), &limits);
    AppState { reads, schema, tokens, clock, limits }
}

async fn errors(st: &AppState, query: &str) -> Vec<String> {
    st.schema.execute(query).await.errors.into_iter().map(|e| e.message).collect()
}

#[tokio::test]
async fn limits_refuse_before_any_read() {
    let st = state(Limits::default());
    let deep = "{ me { trips(first: 1) { edges { node { listing { reviews(first: 1) { edges { node { author { name } } } } } } } } } }";
    assert_eq!(errors(&st, deep).await, vec!["Query is nested too deep."]);
    let aliased: String = (0..16).map(|i| format!("a{i}: __typename ")).collect();
    assert_eq!(errors(&st, &format!("{{ {aliased} }}")).await, vec!["Query has too many aliases: 16, at most 15."]);
    let wide = "{ search(city: \"x\", first: 100) { edges { node { id title location { city region country } \
                nightlyPrice { amount currency } total { amount currency } rating { average count } } } } }";
    assert_eq!(errors(&st, wide).await, vec!["Query is too complex."]);
    assert!(errors(&st, "{ __schema { queryType { name } } }").await.is_empty());
}

#[tokio::test]
async fn introspection_follows_the_stage() {
    let closed = state(Limits { introspection: false, ..Limits::default() });
    let answer = closed.schema.execute("{ __schema { queryType { name } } __typename }").await;
    assert_eq!(answer.data.to_string(), "{__schema: null, __typename: \"Query\"}");
    let open = state(Limits::default());
    let answer = open.schema.execute("{ __schema { queryType { name } } }").await;
    assert_eq!(answer.data.to_string(), "{__schema: {queryType: {name: \"Query\"}}}");
}

#[tokio::test]
async fn private_fields_need_a_caller_and_say_so_with_rests_code() {
    let st = state(Limits::default());
    // A failed field is left out of `data` (async-graphql's way of a null), the rest stands.
    let answer = st.schema.execute("{ me { id } __typename }").await;
    assert_eq!(answer.data.to_string(), "{__typename: \"Query\"}");
    let code = answer.errors[0].extensions.as_ref().and_then(|e| e.get("code")).map(ToString::to_string);
    assert_eq!(code.as_deref(), Some("\"unauthorized\""));
}

#[tokio::test]
async fn every_persisted_query_fits_the_default_limits() {
    let st = state(Limits::default());
    for q in graphql::persisted::QUERIES {
        let variables: serde_json::Value = serde_json::from_str(q.example_variables).expect("variables");
        let request = async_graphql::Request::new(q.text).variables(async_graphql::Variables::from_json(variables));
        let answer = st.schema.execute(request).await;
        // Resolver errors carry a code (the offline table fails every read: `internal_error`;
        // `me` without a caller: `unauthorized`); a refusal by the limits or by validation has
        // none, and would have come before any read.
        let refused: Vec<&str> = answer
            .errors
            .iter()
            .filter(|e| e.extensions.as_ref().and_then(|x| x.get("code")).is_none())
            .map(|e| e.message.as_str())
            .collect();
        assert!(refused.is_empty(), "{}: {refused:?}", q.name);
    }
}
