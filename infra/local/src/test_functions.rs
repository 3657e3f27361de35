//! For the runtime's unit tests: a function written in bash against the Runtime API, so the
//! Lambda limits can be tested without building a Rust function or starting the emulators.
//! What it does depends on the event (a word in it) and on its `MODE` variable.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::lambda::{FunctionSpec, Lambda, Limits, Program};

/// The function: `MODE=die` exits at start, `MODE=hang` never reaches `/next`; otherwise each
/// event is answered with itself, after acting on the first word it contains:
/// `nap` (sleeps 1 s), `sleep` (5 s), `hog` (holds 100 MB), `env` (answers its environment),
/// `pid` (answers its pid), `edge` (answers exactly 6 MB), `big` (answers 7 MB), `write` (tries
/// to write in its working directory and in `/tmp`, and answers what it could), `trace` (answers
/// its invocation's `Lambda-Runtime-Trace-Id` header line).
const SCRIPT: &str = r#"#!/bin/bash
case "$MODE" in
  die) exit 3 ;;
  hang) sleep 60; exit 0 ;;
esac
api="$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
dir=$(mktemp -d)
while true; do
  curl -sS -o "$dir/event" -D "$dir/headers" "$api/next" || exit 1
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$dir/headers" | tr -d '\r' | awk '{print $2}')
  case "$(head -c 2000 "$dir/event")" in
    *nap*) sleep 1 ;;
    *sleep*) sleep 5 ;;
    *hog*) hog=$(head -c 100000000 /dev/zero | tr '\0' x); sleep 5 ;;
    *env*) env > "$dir/event" ;;
    *pid*) echo $$ > "$dir/event" ;;
    *trace*) grep -i '^lambda-runtime-trace-id:' "$dir/headers" | tr -d '\r' > "$dir/event" ;;
    *write*) { echo "cwd=$PWD"; (echo x > ./written) 2>/dev/null && echo "task root: written" || echo "task root: read-only";
               (echo x > "$dir/written") 2>/dev/null && echo "tmp: written" || echo "tmp: read-only"; } > "$dir/event" ;;
    *edge*) head -c 6291456 /dev/zero | tr '\0' x > "$dir/event" ;;
    *big*) head -c 7000000 /dev/zero | tr '\0' x > "$dir/event" ;;
  esac
  curl -sS -o /dev/null -X POST --data-binary "@$dir/event" "$api/$id/response"
done
"#;

/// A directory of its own under the system's temporary directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roost-unit-{name}-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Starts a runtime with one function `F` (the script) in `mode`, 64 MB, 10 s timeout.
pub async fn start(name: &str, mode: &str, max_processes: usize, limits: Limits) -> (Arc<Lambda>, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir(name);
    let binary = dir.join("bootstrap");
    std::fs::write(&binary, SCRIPT).expect("script");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let spec = FunctionSpec {
        name: "F".into(),
        program: Program::Binary(binary),
        environment: vec![("MODE".into(), mode.into())],
        memory_mb: 64,
        timeout: Duration::from_secs(10),
    };
    let lambda = Lambda::start(vec![spec], max_processes, limits, dir.join("logs"), false, axum::Router::new())
        .await
        .expect("runtime starts");
    (lambda, dir)
}
