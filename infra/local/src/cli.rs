//! The command line: `roost <up|test> [options]`, and the stack options it makes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::stack::{Delivery, Options, Strictness};

pub const USAGE: &str =
    "usage: cargo roost <up|test|bench|openapi|graphql-schema|authorization|replay-stream-failures> [options]

  up     start the local stack and serve the API until Ctrl-C
         --port N            HTTP API port (default 8000; 0 picks a free one)
         --release           build and run release binaries
         --template PATH     SAM template (default infra/template.yaml)
         --template-overlay PATH
                             more Resources merged into the template's (a logical id both
                             declare is an error); bench/template.yaml adds the bench's
                             reference functions
         --state-dir PATH    where stack.json and logs go (default target/roost)
         --max-processes N   processes per function under load (default 8)
         --no-build          run binaries already in target/
         --test-mode         shorten SQS visibility timeouts (redrive in seconds)
         --quiet             keep function logs in the state dir only
         --exit-with-parent  stop when the process that started us dies
         --no-seed           skip the demo accounts (needed for other templates)
         --conflict-rate R   share of transactions touching an item written in the conflict
                             window that moto cancels with TransactionConflict (0 off; test: 0.2)
         --conflict-window-ms N
                             that window (test: 50)
         --gsi-lag-ms N      how far GSI queries lag behind the table (0 off; test: 100)
         --idle-stop SECS    stop a process idle this long, as Lambda reclaims sandboxes
                             (default: never; 60 in test mode, so cold starts happen)
         --gateway-timeout SECS
                             API Gateway's integration timeout (default 30, its maximum)
         --account-concurrency N
                             throttle invocations beyond N in flight (default: no cap)
         --delivery chaotic|ordered
                             chaotic: stream records over 4 simulated shards in parallel,
                             SQS batches shuffled and 5 % of messages delivered twice
                             (default in test mode); ordered: one shard, batches as received
  test   lint the template, build, start a stack on free ports, run every test against it
         --soak DURATION     also run the soak (tests/tests/soak) for DURATION (90s, 10m, 1h):
                             it sets ROOST_SOAK_SECONDS for the tests; without it the soak skips
  bench  release builds, a stack with the reference functions (bench/template.yaml), and the
         measurements of docs/performance.md: writes target/roost/bench.json and that page;
         exits 1 when a target is missed
         --quick             3 cold starts per function, 5 passes, 15 s of load (default: 10,
                             20, 60 s); after `--`: the driver's --runs N, --passes N,
                             --load-seconds N, --users N, --sizes 100,1000,10000
  openapi
         write the OpenAPI document generated from the code to docs/openapi.json
  graphql-schema
         write the GraphQL schema generated from the code to docs/schema.graphql
  authorization
         render tests/authorization.yaml (the authorization matrix) to docs/authorization.md
  replay-stream-failures
         replay the events of the failure records in EventsRelayFailuresQueue of a running
         stack (docs/operations.md): re-inserts their outbox items, deletes the records
         --stack PATH        its stack.json (default target/roost/stack.json)
         --queue NAME        the failure queue (default roost-EventsRelayFailuresQueue)
         --start-sequence N  only the failure records starting at sequence number N";

#[derive(Clone)]
pub struct Args {
    pub command: String,
    pub port: u16,
    pub release: bool,
    pub template: Option<PathBuf>,
    pub template_overlay: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub max_processes: usize,
    pub build: bool,
    pub test_mode: bool,
    pub quiet: bool,
    pub exit_with_parent: bool,
    pub seed: bool,
    pub conflict_rate: Option<f64>,
    pub conflict_window_ms: Option<u64>,
    pub gsi_lag_ms: Option<u64>,
    pub idle_stop: Option<u64>,
    pub gateway_timeout: Option<f64>,
    pub account_concurrency: Option<usize>,
    pub delivery: Option<Delivery>,
    pub stack: Option<PathBuf>,
    pub queue: Option<String>,
    pub start_sequence: Option<String>,
    /// `bench --quick`.
    pub quick: bool,
    /// `test --soak`: how long the soak runs (passed to the tests as `ROOST_SOAK_SECONDS`).
    pub soak: Option<std::time::Duration>,
    pub rest: Vec<String>,
}

pub fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut parsed = Args {
        command,
        port: 8000,
        release: false,
        template: None,
        template_overlay: None,
        state_dir: None,
        max_processes: 8,
        build: true,
        test_mode: false,
        quiet: false,
        exit_with_parent: false,
        seed: true,
        conflict_rate: None,
        conflict_window_ms: None,
        gsi_lag_ms: None,
        idle_stop: None,
        gateway_timeout: None,
        account_concurrency: None,
        delivery: None,
        stack: None,
        queue: None,
        start_sequence: None,
        soak: None,
        quick: false,
        rest: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => parsed.port = value("--port")?.parse()?,
            "--release" => parsed.release = true,
            "--template" => parsed.template = Some(value("--template")?.into()),
            "--template-overlay" => parsed.template_overlay = Some(value("--template-overlay")?.into()),
            "--state-dir" => parsed.state_dir = Some(value("--state-dir")?.into()),
            "--max-processes" => parsed.max_processes = value("--max-processes")?.parse()?,
            "--no-build" => parsed.build = false,
            "--test-mode" => parsed.test_mode = true,
            "--quiet" => parsed.quiet = true,
            "--exit-with-parent" => parsed.exit_with_parent = true,
            "--no-seed" => parsed.seed = false,
            "--conflict-rate" => parsed.conflict_rate = Some(value("--conflict-rate")?.parse()?),
            "--conflict-window-ms" => parsed.conflict_window_ms = Some(value("--conflict-window-ms")?.parse()?),
            "--gsi-lag-ms" => parsed.gsi_lag_ms = Some(value("--gsi-lag-ms")?.parse()?),
            "--idle-stop" => parsed.idle_stop = Some(value("--idle-stop")?.parse()?),
            "--gateway-timeout" => parsed.gateway_timeout = Some(value("--gateway-timeout")?.parse()?),
            "--account-concurrency" => parsed.account_concurrency = Some(value("--account-concurrency")?.parse()?),
            "--delivery" => parsed.delivery = Some(Delivery::parse(&value("--delivery")?)?),
            "--stack" => parsed.stack = Some(value("--stack")?.into()),
            "--queue" => parsed.queue = Some(value("--queue")?),
            "--start-sequence" => parsed.start_sequence = Some(value("--start-sequence")?),
            "--soak" => parsed.soak = Some(parse_duration(&value("--soak")?)?),
            "--quick" => parsed.quick = true,
            "--" => parsed.rest.extend(args.by_ref()),
            other => bail!("unknown option {other}\n\n{USAGE}"),
        }
    }
    Ok(parsed)
}

/// A duration as people write it: a whole number and a unit, `s`, `m` or `h` (`90s`, `10m`,
/// `1h`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().with_context(|| format!("{text:?}: expected a duration like 90s, 10m or 1h"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        other => bail!("{text:?}: unknown unit {other:?} (s, m or h)"),
    };
    if seconds == 0 {
        bail!("{text:?}: a soak needs a positive duration");
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// The workspace this binary was built from.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

pub fn options(args: &Args, root: &Path) -> Options {
    // In test mode DynamoDB is made as unforgiving as AWS by default (docs/local-runtime.md).
    let (rate, window_ms, lag_ms) = if args.test_mode { (0.2, 50, 100) } else { (0.0, 0, 0) };
    Options {
        root: root.to_path_buf(),
        template: args.template.clone().unwrap_or_else(|| root.join("infra/template.yaml")),
        template_overlay: args.template_overlay.clone(),
        state_dir: args.state_dir.clone().unwrap_or_else(|| root.join("target/roost")),
        port: args.port,
        release: args.release,
        build: args.build,
        max_processes: args.max_processes,
        test_mode: args.test_mode,
        echo_logs: !args.quiet,
        strictness: Strictness {
            conflict_rate: args.conflict_rate.unwrap_or(rate),
            conflict_window_ms: args.conflict_window_ms.unwrap_or(window_ms),
            gsi_lag_ms: args.gsi_lag_ms.unwrap_or(lag_ms),
        },
        limits: crate::lambda::Limits {
            idle_stop: args
                .idle_stop
                .or(args.test_mode.then_some(TEST_MODE_IDLE_STOP_SECS))
                .map(std::time::Duration::from_secs),
            account_concurrency: args.account_concurrency,
            ..crate::lambda::Limits::default()
        },
        gateway_timeout: args
            .gateway_timeout
            .map_or(crate::gateway::INTEGRATION_TIMEOUT, std::time::Duration::from_secs_f64),
        // Tests meet what AWS may do (out of order, twice); `up` stays easy to follow.
        delivery: args.delivery.unwrap_or(if args.test_mode { Delivery::Chaotic } else { Delivery::Ordered }),
    }
}

/// Test mode's idle stop: short enough that the suite meets cold starts, long enough that a
/// test's own requests mostly find a warm process.
const TEST_MODE_IDLE_STOP_SECS: u64 = 60;

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_in_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("90s").expect("90s"), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").expect("10m"), Duration::from_secs(600));
        assert_eq!(parse_duration("1h").expect("1h"), Duration::from_secs(3600));
        assert_eq!(parse_duration("45").expect("bare"), Duration::from_secs(45));
        for bad in ["", "m", "10d", "1.5m", "-5s", "0s", "10 m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
