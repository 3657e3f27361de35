//! The Lambda limits, each against the bash function of `crate::test_functions`.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};

use super::{Limits, MAX_PAYLOAD, Outcome};
use crate::test_functions::start;

fn crash_type(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Crashed(crash) => crash.error_type,
        other => panic!("expected a crash, got {other:?}"),
    }
}

fn error_type(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Error(error) => error["errorType"].as_str().unwrap_or_default().to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn response_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Response(body) => String::from_utf8_lossy(body).into_owned(),
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn the_kill_switch_kills_the_process_that_takes_the_next_matching_invocation() {
    let (lambda, _) = start("kill", "", 2, Limits::default()).await;
    let kills = format!("{}/_roost/kill", lambda.api_base());
    let client = reqwest::Client::new();
    let armed: Value = client
        .post(&kills)
        .json(&json!({"function": "F", "after_ms": 300, "payload_contains": "victim"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(armed["armed"][0]["function"], "F", "{armed}");
    assert_eq!(
        response_text(&lambda.invoke("F", Bytes::from("bystander")).await.unwrap()),
        "bystander",
        "an invocation the order does not name runs"
    );
    let started = Instant::now();
    let killed = lambda.invoke("F", Bytes::from("sleep victim")).await.unwrap();
    assert_eq!(crash_type(&killed), "Runtime.ExitError");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "killed mid-invocation, not at its end: {:?}",
        started.elapsed()
    );
    let after: Value = client.get(&kills).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["armed"], json!([]), "one shot");
    assert_eq!(response_text(&lambda.invoke("F", Bytes::from("victim again")).await.unwrap()), "victim again");
    let unknown = client.post(&kills).json(&json!({"function": "G", "after_ms": 1})).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    lambda.stop();
}

#[tokio::test]
async fn events_and_responses_up_to_6_mb_pass_and_larger_ones_fail_as_on_lambda() {
    let (lambda, _) = start("payload", "", 1, Limits::default()).await;
    let edge = response_text(&lambda.invoke("F", Bytes::from("edge")).await.unwrap());
    assert_eq!(edge.len(), MAX_PAYLOAD, "the Runtime API takes a 6 MB response");
    let big = lambda.invoke("F", Bytes::from("big")).await.unwrap();
    assert_eq!(error_type(&big), "Function.ResponseSizeTooLarge");
    let event = Bytes::from(vec![b'x'; MAX_PAYLOAD + 1]);
    assert_eq!(error_type(&lambda.invoke("F", event).await.unwrap()), "RequestEntityTooLargeException");
    let event = Bytes::from(vec![b'y'; MAX_PAYLOAD]);
    assert_eq!(response_text(&lambda.invoke("F", event).await.unwrap()).len(), MAX_PAYLOAD);
    lambda.stop();
}

#[tokio::test]
async fn a_process_over_its_memory_size_is_killed_as_out_of_memory() {
    let (lambda, _) = start("memory", "", 1, Limits::default()).await;
    let outcome = lambda.invoke("F", Bytes::from("hog")).await.unwrap();
    assert_eq!(crash_type(&outcome), "Runtime.OutOfMemory");
    assert_eq!(response_text(&lambda.invoke("F", Bytes::from("fine")).await.unwrap()), "fine");
    lambda.stop();
}

#[tokio::test]
async fn a_process_that_never_finishes_init_is_killed_and_restarts_back_off() {
    let limits = Limits { init: Duration::from_millis(500), ..Limits::default() };
    let (lambda, dir) = start("init", "hang", 1, limits).await;
    let started = Instant::now();
    assert_eq!(crash_type(&lambda.invoke("F", Bytes::from("a")).await.unwrap()), "Runtime.ExitError");
    assert!(started.elapsed() < Duration::from_secs(5), "failed at the init limit: {:?}", started.elapsed());
    let again = Instant::now();
    assert_eq!(crash_type(&lambda.invoke("F", Bytes::from("b")).await.unwrap()), "Runtime.ExitError");
    assert!(again.elapsed() < Duration::from_millis(150), "backing off: failed at once, {:?}", again.elapsed());
    let log = std::fs::read_to_string(dir.join("logs/F.log")).unwrap();
    assert!(log.contains("Phase: init\tStatus: timeout"), "{log}");
    lambda.stop();
}

#[tokio::test]
async fn a_function_that_dies_at_start_fails_its_requests_instead_of_hanging_them() {
    let (lambda, _) = start("die", "die", 4, Limits::default()).await;
    let started = Instant::now();
    let outcomes = futures_of(&lambda, 3, "x").await;
    for outcome in &outcomes {
        assert_eq!(crash_type(outcome), "Runtime.ExitError");
    }
    assert!(started.elapsed() < Duration::from_secs(3), "failed fast: {:?}", started.elapsed());
    lambda.stop();
}

#[tokio::test]
async fn an_idle_process_is_stopped_and_the_next_invocation_starts_cold() {
    let limits = Limits { idle_stop: Some(Duration::from_millis(300)), ..Limits::default() };
    let (lambda, dir) = start("idle", "", 1, limits).await;
    let first = response_text(&lambda.invoke("F", Bytes::from("pid")).await.unwrap());
    let warm = response_text(&lambda.invoke("F", Bytes::from("pid")).await.unwrap());
    assert_eq!(first, warm, "back to back: the same warm process");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let cold = response_text(&lambda.invoke("F", Bytes::from("pid")).await.unwrap());
    assert_ne!(first, cold, "after the idle stop: a new process");
    let log = std::fs::read_to_string(dir.join("logs/F.log")).unwrap();
    assert!(log.contains("stopped after"), "{log}");
    lambda.stop();
}

#[tokio::test]
async fn beyond_the_account_concurrency_invocations_are_throttled() {
    let limits = Limits { account_concurrency: Some(1), ..Limits::default() };
    let (lambda, _) = start("concurrency", "", 2, limits).await;
    let outcomes = futures_of(&lambda, 2, "nap").await;
    let throttled = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Error(e) if e["errorType"] == "TooManyRequestsException"))
        .count();
    let answered = outcomes.iter().filter(|o| matches!(o, Outcome::Response(_))).count();
    assert_eq!((throttled, answered), (1, 1), "{outcomes:?}");
    lambda.stop();
}

#[tokio::test]
async fn every_invocation_carries_its_own_x_ray_trace_id() {
    let (lambda, _) = start("trace", "", 1, Limits::default()).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2 {
        let line = response_text(&lambda.invoke("F", Bytes::from("trace")).await.unwrap());
        let value = line.split_once(':').map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
        // Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>, as Lambda sends it.
        let root = value.strip_prefix("Root=1-").unwrap_or_else(|| panic!("no trace id in {line:?}"));
        let (epoch, rest) = root.split_once('-').unwrap();
        assert!(epoch.len() == 8 && epoch.chars().all(|c| c.is_ascii_hexdigit()), "{value}");
        assert!(rest.len() > 24 && rest[..24].chars().all(|c| c.is_ascii_hexdigit()), "{value}");
        assert!(rest[24..].starts_with(";Parent=") && rest.ends_with(";Sampled=0"), "{value}");
        seen.insert(value);
    }
    assert_eq!(seen.len(), 2, "one trace id per invocation: {seen:?}");
}

#[tokio::test]
async fn the_task_root_is_the_working_directory_and_read_only_and_tmp_is_writable() {
    let (lambda, dir) = start("task-root", "", 1, Limits::default()).await;
    let answer = response_text(&lambda.invoke("F", Bytes::from("write")).await.unwrap());
    let dir = std::fs::canonicalize(&dir).unwrap();
    assert!(answer.lines().any(|l| l == format!("cwd={}", dir.display())), "{answer}");
    assert!(answer.lines().any(|l| l == "tmp: written"), "{answer}");
    if crate::process::task_roots_are_read_only() {
        assert!(answer.lines().any(|l| l == "task root: read-only"), "{answer}");
        assert!(!dir.join("written").exists());
    } else {
        // No CAP_SYS_ADMIN here (not root): docs/local-runtime.md lists the difference.
        eprintln!("this machine cannot make task roots read-only: {answer}");
    }
}

#[tokio::test]
async fn the_environment_is_what_lambda_sets() {
    let (lambda, dir) = start("env", "", 1, Limits::default()).await;
    let env = response_text(&lambda.invoke("F", Bytes::from("env")).await.unwrap());
    for expected in [
        "TZ=:UTC".to_string(),
        "AWS_LAMBDA_FUNCTION_NAME=roost-F".to_string(),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=64".to_string(),
        "AWS_LAMBDA_FUNCTION_VERSION=$LATEST".to_string(),
        "_HANDLER=bootstrap".to_string(),
        format!("LAMBDA_TASK_ROOT={}", dir.display()),
        format!("LAMBDA_RUNTIME_DIR={}", dir.display()),
    ] {
        assert!(env.lines().any(|l| l == expected), "{expected} in\n{env}");
    }
    lambda.stop();
}

/// `n` concurrent invocations of `F` with `event`.
async fn futures_of(lambda: &std::sync::Arc<super::Lambda>, n: usize, event: &'static str) -> Vec<Outcome> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let lambda = lambda.clone();
            tokio::spawn(async move { lambda.invoke("F", Bytes::from(event)).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

#[tokio::test]
async fn the_processes_endpoint_lists_each_running_process_pid() {
    let (lambda, _) = start("procs", "", 1, Limits::default()).await;
    let pid = response_text(&lambda.invoke("F", Bytes::from("pid")).await.unwrap());
    let listed: Value =
        reqwest::get(format!("{}/_roost/processes", lambda.api_base())).await.unwrap().json().await.unwrap();
    let processes = listed["functions"]["F"].as_array().expect("F's processes");
    assert_eq!(processes.len(), 1, "{listed}");
    assert_eq!(processes[0]["pid"].to_string(), pid.trim(), "the pid the process itself reports: {listed}");
    assert_eq!(processes[0]["busy"], false, "{listed}");
    lambda.stop();
}

/// The REPORT lines of F's log, in order.
fn reports(dir: &std::path::Path) -> Vec<String> {
    let log = std::fs::read_to_string(dir.join("logs/F.log")).unwrap_or_default();
    log.lines().filter(|l| l.contains("REPORT RequestId")).map(str::to_string).collect()
}

/// Waits (at most 5 s) until F's log has `n` REPORT lines: each is written just after its
/// invocation's answer is handed back.
async fn reports_when(dir: &std::path::Path, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines = reports(dir);
        if lines.len() >= n {
            return lines;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{n} REPORT lines expected: {lines:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `pid`'s process is gone (its exit reaped), not merely signalled.
fn gone(pid: u64) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn deleting_a_function_s_processes_stops_the_idle_ones_and_its_next_invocation_is_cold() {
    let (lambda, dir) = start("delete", "", 2, Limits::default()).await;
    let http = reqwest::Client::new();
    let processes = format!("{}/_roost/processes", lambda.api_base());
    // Two processes (two invocations at once), then one of them busy for 5 s.
    futures_of(&lambda, 2, "nap").await;
    reports_when(&dir, 2).await;
    let sleeper = {
        let lambda = lambda.clone();
        tokio::spawn(async move { lambda.invoke("F", Bytes::from("sleep")).await.unwrap() })
    };
    let (busy, idle) = loop {
        let listed: Value = http.get(&processes).send().await.unwrap().json().await.unwrap();
        let list = listed["functions"]["F"].as_array().cloned().unwrap_or_default();
        let pid_where = |busy: bool| list.iter().find(|p| p["busy"] == busy).and_then(|p| p["pid"].as_u64());
        if let (Some(busy), Some(idle)) = (pid_where(true), pid_where(false)) {
            break (busy, idle);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    let stop = http.delete(format!("{processes}/F")).send().await.unwrap();
    assert_eq!(stop.status(), 200);
    assert_eq!(stop.json::<Value>().await.unwrap(), json!({"stopped": 1}), "the idle process only");
    assert!(gone(idle), "the idle process {idle} has exited by the time DELETE answers");
    assert!(!gone(busy), "the busy process {busy} is left to finish its invocation");

    let next = response_text(&lambda.invoke("F", Bytes::from("pid")).await.unwrap());
    let next: u64 = next.trim().parse().unwrap();
    assert!(next != idle && next != busy, "a new process ({next}) ran it");
    // The third REPORT (the sleeper's, 5 s long, comes fourth): a cold start's.
    let third = reports_when(&dir, 3).await.swap_remove(2);
    assert!(third.contains("\tInit Duration: "), "{third}");
    assert_eq!(response_text(&sleeper.await.unwrap()), "sleep", "the busy invocation ran to its end");
    let fourth = reports_when(&dir, 4).await.swap_remove(3);
    assert!(!fourth.contains("Init Duration"), "the busy process was warm: {fourth}");
    assert!(std::fs::read_to_string(dir.join("logs/F.log")).unwrap().contains("stopped by DELETE"));

    let unknown = http.delete(format!("{processes}/NoSuchFunction")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    lambda.stop();
}
