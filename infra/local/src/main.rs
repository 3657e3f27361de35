//! `roost`: the local runtime behind `cargo roost up` and `cargo roost test`.
//! See docs/local-runtime.md for how it works and how it differs from AWS.

mod aws;
mod emulators;
mod gateway;
mod lambda;
mod process;
mod provision;
mod seed;
mod seed_listings;
mod sources;
mod stack;
mod template;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::emulators::progress;
use crate::stack::{Options, Stack};

const USAGE: &str = "usage: cargo roost <up|test> [options]

  up     start the local stack and serve the API until Ctrl-C
         --port N            HTTP API port (default 8000; 0 picks a free one)
         --release           build and run release binaries
         --template PATH     SAM template (default infra/template.yaml)
         --state-dir PATH    where stack.json and logs go (default target/roost)
         --max-processes N   processes per function under load (default 8)
         --no-build          run binaries already in target/
         --test-mode         shorten SQS visibility timeouts (redrive in seconds)
         --quiet             keep function logs in the state dir only
         --exit-with-parent  stop when the process that started us dies
         --no-seed           skip the demo accounts (needed for other templates)
  test   lint the template, build, start a stack on free ports, run every test against it";

#[derive(Clone)]
struct Args {
    command: String,
    port: u16,
    release: bool,
    template: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    max_processes: usize,
    build: bool,
    test_mode: bool,
    quiet: bool,
    exit_with_parent: bool,
    seed: bool,
    rest: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut parsed = Args {
        command,
        port: 8000,
        release: false,
        template: None,
        state_dir: None,
        max_processes: 8,
        build: true,
        test_mode: false,
        quiet: false,
        exit_with_parent: false,
        seed: true,
        rest: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => parsed.port = value("--port")?.parse()?,
            "--release" => parsed.release = true,
            "--template" => parsed.template = Some(value("--template")?.into()),
            "--state-dir" => parsed.state_dir = Some(value("--state-dir")?.into()),
            "--max-processes" => parsed.max_processes = value("--max-processes")?.parse()?,
            "--no-build" => parsed.build = false,
            "--test-mode" => parsed.test_mode = true,
            "--quiet" => parsed.quiet = true,
            "--exit-with-parent" => parsed.exit_with_parent = true,
            "--no-seed" => parsed.seed = false,
            "--" => parsed.rest.extend(args.by_ref()),
            other => bail!("unknown option {other}\n\n{USAGE}"),
        }
    }
    Ok(parsed)
}

/// The workspace this binary was built from.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roost: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.command.as_str() {
            "up" => up(&args).await,
            "test" => test(&args).await,
            _ => {
                eprintln!("{USAGE}");
                Ok(ExitCode::from(2))
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("roost: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn options(args: &Args, root: &Path) -> Options {
    Options {
        root: root.to_path_buf(),
        template: args.template.clone().unwrap_or_else(|| root.join("infra/template.yaml")),
        state_dir: args.state_dir.clone().unwrap_or_else(|| root.join("target/roost")),
        port: args.port,
        release: args.release,
        build: args.build,
        max_processes: args.max_processes,
        test_mode: args.test_mode,
        echo_logs: !args.quiet,
    }
}

async fn up(args: &Args) -> Result<ExitCode> {
    let root = project_root();
    emulators::ensure_venv(&root).await?;
    let options = options(args, &root);
    let stack = Stack::start(&options).await?;
    let stack_file = options.state_dir.join("stack.json");
    stack.write_description(&stack_file)?;
    let api_url = stack.description["api_url"].as_str().unwrap_or_default().to_string();
    // Demo data goes through the project's own API (the runtime's fixture template has none).
    if args.seed {
        match seed::seed(&api_url).await {
            Ok(demo) => {
                println!("Demo accounts (sign in with POST /v1/auth/login):");
                for u in demo.users {
                    println!("  {:<5}  {}  password {}", u.role, u.email, u.password);
                }
                println!("Demo listings: {} (try GET /v1/search?city=lisboa)", demo.listings);
            }
            Err(e) => {
                stack.stop().await;
                let _ = std::fs::remove_file(&stack_file);
                return Err(e.context("seeding demo data"));
            }
        }
    }
    println!("Roost API: {api_url}");
    println!("Stack: {}", stack_file.display());
    wait_for_stop(args.exit_with_parent).await;
    progress("stopping");
    stack.stop().await;
    let _ = std::fs::remove_file(&stack_file);
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, SIGTERM, or (with --exit-with-parent) the parent going away.
async fn wait_for_stop(exit_with_parent: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let parent = std::os::unix::process::parent_id();
    let orphaned = async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if exit_with_parent && std::os::unix::process::parent_id() != parent {
                return;
            }
        }
    };
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
        _ = orphaned => {}
    }
}

/// Lints the template, builds everything once, starts a stack on free ports, and runs every
/// unit and end-to-end test against it; the exit code is the tests'.
async fn test(args: &Args) -> Result<ExitCode> {
    let root = project_root();
    let started = std::time::Instant::now();
    emulators::ensure_venv(&root).await?;

    progress("cfn-lint infra/template.yaml");
    let lint = tokio::process::Command::new(emulators::venv_dir(&root).join("bin/cfn-lint"))
        .arg(root.join("infra/template.yaml"))
        .status()
        .await?;
    if !lint.success() {
        bail!("cfn-lint found problems in infra/template.yaml");
    }

    // One build for the stack and the tests: `cargo test --no-run` builds every test target and,
    // because each function crate has integration tests, its binaries too (into target/debug,
    // where the stack runs them). A separate `cargo build --bins` would resolve features without
    // the dev-dependencies and compile `shared` and every function a second time.
    progress("building the workspace and its tests (debug)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = tokio::process::Command::new(&cargo)
        .current_dir(&root)
        .args(["test", "--workspace", "--no-run"])
        .status()
        .await?;
    if !build.success() {
        bail!("cargo build failed");
    }
    // The runtime's own tests run `fixture` (infra/local/fixtures), a crate with no tests of its
    // own, so the build above does not make its binary: build it by itself (a few small crates).
    let fixture = tokio::process::Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--package", "fixture", "--bin", "fixture"])
        .status()
        .await?;
    if !fixture.success() {
        bail!("cargo build of the runtime's test fixture failed");
    }

    let mut test_args = Args { port: 0, build: false, test_mode: true, quiet: true, ..args.clone() };
    test_args.state_dir = Some(root.join("target/roost/test"));
    let options = options(&test_args, &root);
    if options.state_dir.exists() {
        std::fs::remove_dir_all(&options.state_dir)?;
    }
    let stack = Stack::start(&options).await?;
    let stack_file = options.state_dir.join("stack.json");
    stack.write_description(&stack_file)?;
    progress(&format!("stack up in {:.1} s: {}", started.elapsed().as_secs_f64(), stack_file.display()));

    let mut command = tokio::process::Command::new(&cargo);
    command
        .current_dir(&root)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(&args.rest)
        .env("ROOST_STACK", &stack_file)
        .env("ROOST_BIN", std::env::current_exe()?);
    let status = tokio::select! {
        status = command.status() => status?,
        _ = wait_for_stop(false) => {
            stack.stop().await;
            return Ok(ExitCode::FAILURE);
        }
    };
    stack.stop().await;
    progress(&format!(
        "tests {} in {:.1} s",
        if status.success() { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    ));
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
