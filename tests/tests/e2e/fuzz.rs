//! The API fuzzer (issue 15): schemathesis (pinned in infra/local/requirements.txt, options in
//! tests/fuzz/schemathesis.toml) against the document the stack serves at `/v1/openapi.json`, as
//! three personas: no one, a guest and a host. Every answer must be what the document says
//! (status, content type, headers, body schema), never a 5xx, and data the document forbids must
//! be refused. A JUnit report per persona: `target/roost/fuzz-<persona>.xml`. Exceptions, per
//! operation and check with their reasons: docs/api-fuzzing.md.

use std::process::Command;
use std::sync::Mutex;

use roost_e2e::tools::{out_dir, root, run_ok};
use roost_e2e::{Stack, User, client, needs_stack};

/// One persona at a time: each run already uses the workers the config names, and the stack's
/// functions need the same two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

async fn fuzz(persona: &'static str, user: Option<User>) {
    let schemathesis = root().join(".venv/bin/schemathesis");
    assert!(schemathesis.exists(), "{} is missing: `cargo roost test` installs it", schemathesis.display());
    // The served document, from a file: loaded from its URL, schemathesis leaves out the
    // operation that serves it (GET /v1/openapi.json).
    let served = client().get(Stack::get().url("/v1/openapi.json")).send().await.expect("api");
    let document = out_dir().join(format!("fuzz-{persona}-openapi.json"));
    std::fs::write(&document, served.bytes().await.expect("the document")).expect("target/roost");
    let base = Stack::get().api_url.clone();
    let junit = out_dir().join(format!("fuzz-{persona}.xml"));
    let bearer = user.as_ref().map(User::bearer);
    tokio::task::spawn_blocking(move || {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut command = Command::new(schemathesis);
        command
            .arg("--config-file")
            .arg(root().join("tests/fuzz/schemathesis.toml"))
            .args(["--no-color", "run"])
            .arg(&document)
            .args(["--url", &base, "--report", "junit", "--report-junit-path"])
            .arg(&junit)
            .current_dir(out_dir())
            .env("PYTHONUNBUFFERED", "1");
        if let Ok(seed) = std::env::var("ROOST_FUZZ_SEED") {
            command.args(["--seed", &seed]);
        }
        if let Some(user) = &user {
            command.arg("--header").arg(format!("Authorization: {}", user.bearer()));
            // Both end the persona's sessions (the fuzzer reuses the e-mail GET /v1/me answers,
            // and the local Cognito takes any reset code): every later request would be a 401
            // (docs/api-fuzzing.md). The anonymous run still fuzzes them.
            command.args(["--exclude-path", "/v1/auth/logout", "--exclude-path", "/v1/auth/password/reset"]);
        }
        run_ok(&format!("schemathesis as {persona} (report {})", junit.display()), &mut command);
    })
    .await
    .expect("schemathesis run");
    // Every 401 is documented, so a persona whose session ended mid-run would pass while fuzzing
    // nothing past the authorizer: its token must still work at the end.
    if let Some(bearer) = bearer {
        let me = client().get(Stack::get().url("/v1/me")).header("authorization", bearer).send().await.expect("api");
        assert_eq!(me.status(), 200, "the {persona} persona's session ended during the run: it fuzzed only 401s");
    }
}

#[tokio::test]
async fn the_api_answers_an_anonymous_fuzzer_as_documented() {
    needs_stack!();
    fuzz("anonymous", None).await;
}

#[tokio::test]
async fn the_api_answers_a_guest_fuzzer_as_documented() {
    needs_stack!();
    fuzz("guest", Some(User::guest("Fuzz Guest").await)).await;
}

#[tokio::test]
async fn the_api_answers_a_host_fuzzer_as_documented() {
    needs_stack!();
    fuzz("host", Some(User::host("Fuzz Host").await)).await;
}
