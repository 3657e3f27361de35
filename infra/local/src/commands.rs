//! What `roost up` and `roost test` do.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::cli::{Args, USAGE, options, project_root};
use crate::deploy_tools;
use crate::emulators::{self, progress};
use crate::seed;
use crate::stack::Stack;
use crate::tools;

/// Runs the command `args` name on a new Tokio runtime; the process's exit code.
pub fn run(args: &Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roost: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.command.as_str() {
            "up" => up(args).await,
            "test" => test(args).await,
            "bench" => bench(args).await,
            "openapi" => write_openapi().await,
            "graphql-schema" => write_graphql_schema().await,
            "authorization" => write_authorization().await,
            "replay-stream-failures" => crate::replay::run(args).await,
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

/// Regenerates docs/openapi.json from the code (the `docs` function's `openapi` binary merges
/// every context's part); a test fails when the committed file differs.
async fn write_openapi() -> Result<ExitCode> {
    let root = project_root();
    let path = root.join("docs/openapi.json");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = tokio::process::Command::new(&cargo)
        .current_dir(&root)
        .args(["run", "--quiet", "--package", "docs", "--bin", "openapi", "--"])
        .arg(&path)
        .status()
        .await?;
    if !status.success() {
        bail!("generating the OpenAPI document failed");
    }
    progress(&format!("wrote {}", path.display()));
    Ok(ExitCode::SUCCESS)
}

/// Regenerates docs/schema.graphql from the code (the `graphql` crate's `graphql-schema`
/// binary prints the SDL); a test fails when the committed file differs.
async fn write_graphql_schema() -> Result<ExitCode> {
    let root = project_root();
    let path = root.join("docs/schema.graphql");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = tokio::process::Command::new(&cargo)
        .current_dir(&root)
        .args(["run", "--quiet", "--package", "graphql", "--bin", "graphql-schema"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    if !out.status.success() {
        bail!("generating the GraphQL schema failed");
    }
    std::fs::write(&path, out.stdout)?;
    progress(&format!("wrote {}", path.display()));
    Ok(ExitCode::SUCCESS)
}

/// Renders docs/authorization.md from tests/authorization.yaml (the test crate's
/// `authorization_doc` binary); a test fails when the committed page differs.
async fn write_authorization() -> Result<ExitCode> {
    let root = project_root();
    let path = root.join("docs/authorization.md");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = tokio::process::Command::new(&cargo)
        .current_dir(&root)
        .args(["run", "--quiet", "--package", "roost-e2e", "--bin", "authorization_doc", "--"])
        .arg(&path)
        .status()
        .await?;
    if !status.success() {
        bail!("rendering the authorization matrix failed");
    }
    progress(&format!("wrote {}", path.display()));
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

/// This binary's path for the tests (`ROOST_BIN`). The workspace build above may re-link it in
/// place, and then Linux names the running one `<path> (deleted)`: the path is the new binary's.
fn runtime_binary() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.to_string_lossy();
    Ok(std::path::PathBuf::from(path.strip_suffix(" (deleted)").unwrap_or(&path)))
}

/// The bench's driver (bench/driver): only `cargo roost bench` builds it. Its load tool (goose)
/// and the features it turns on in shared dependencies (reqwest's cookies and gzip) would cost
/// every test build minutes for nothing; what it measures with is `roost_e2e::bench`, which the
/// suite builds and unit-tests.
const BENCH_DRIVER: &str = "roost-bench";

/// Lints the template, builds everything once, starts a stack on free ports, and runs every
/// unit and end-to-end test against it; the exit code is the tests'.
async fn test(args: &Args) -> Result<ExitCode> {
    let root = project_root();
    let started = std::time::Instant::now();
    emulators::ensure_venv(&root).await?;
    // The browser and node tools the docs page, fuzzer, typed-client and workflow-lint tests drive.
    tools::ensure_test_tools(&root).await?;
    // The SAM CLI and cargo-lambda: `sam validate` below, `sam build` in tests/tests/e2e/deploy.rs.
    deploy_tools::ensure_deploy_tools(&root).await?;

    progress("cfn-lint infra/template.yaml");
    let lint = tokio::process::Command::new(emulators::venv_dir(&root).join("bin/cfn-lint"))
        .arg(root.join("infra/template.yaml"))
        .status()
        .await?;
    if !lint.success() {
        bail!("cfn-lint found problems in infra/template.yaml");
    }
    deploy_tools::sam_validate(&root).await?;

    // One build for the stack and the tests: `cargo test --no-run` builds every test target and,
    // because each function crate has integration tests, its binaries too (into target/debug,
    // where the stack runs them). A separate `cargo build --bins` would resolve features without
    // the dev-dependencies and compile `shared` and every function a second time.
    progress("building the workspace and its tests (debug)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (step, args) in [
        ("cargo build", &["test", "--workspace", "--exclude", BENCH_DRIVER, "--no-run"][..]),
        // The runtime's own tests run `fixture` (infra/local/fixtures), a crate with no tests of
        // its own, so the build above does not make its binary: build it by itself.
        ("cargo build of the runtime's test fixture", &["build", "--package", "fixture", "--bin", "fixture"][..]),
    ] {
        if !tokio::process::Command::new(&cargo).current_dir(&root).args(args).status().await?.success() {
            bail!("{step} failed");
        }
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
        .args(["test", "--workspace", "--exclude", BENCH_DRIVER, "--no-fail-fast"])
        .args(&args.rest)
        .env("ROOST_STACK", &stack_file)
        .env("ROOST_BIN", runtime_binary()?);
    // The soak (tests/tests/soak) runs only when asked, for as long as asked.
    if let Some(soak) = args.soak {
        command.env("ROOST_SOAK_SECONDS", soak.as_secs().to_string());
    }
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

/// `roost bench`: release builds of every function and the two reference functions
/// (bench/template.yaml), a stack as `up` runs it (no injected strictness, ordered delivery, no
/// idle stop: the bench stops processes itself when it wants a cold start), and the bench's
/// driver (bench/driver) against it; the driver's exit code (1 when a target is missed).
async fn bench(args: &Args) -> Result<ExitCode> {
    let root = project_root();
    let started = std::time::Instant::now();
    emulators::ensure_venv(&root).await?;
    // The driver is a client: a debug build shares the test build's dependencies. Its own
    // share of a round trip is the same for every operation it compares.
    progress("building the bench driver (bench/driver)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = ["build", "--quiet", "--package", BENCH_DRIVER, "--bin", BENCH_DRIVER];
    if !tokio::process::Command::new(&cargo).current_dir(&root).args(build).status().await?.success() {
        bail!("building the bench driver failed");
    }
    let mut bench_args =
        Args { port: 0, release: true, build: true, test_mode: false, quiet: true, seed: false, ..args.clone() };
    bench_args.state_dir = Some(root.join("target/roost/bench"));
    bench_args.template_overlay =
        Some(args.template_overlay.clone().unwrap_or_else(|| root.join("bench/template.yaml")));
    let options = options(&bench_args, &root);
    if options.state_dir.exists() {
        std::fs::remove_dir_all(&options.state_dir)?;
    }
    progress("building the functions (release) and starting the stack");
    let stack = Stack::start(&options).await?;
    let stack_file = options.state_dir.join("stack.json");
    stack.write_description(&stack_file)?;
    progress(&format!("stack up in {:.1} s", started.elapsed().as_secs_f64()));
    let mut driver = tokio::process::Command::new(root.join("target/debug").join(BENCH_DRIVER));
    driver.current_dir(&root).env("ROOST_STACK", &stack_file).args(&args.rest);
    if args.quick {
        driver.arg("--quick");
    }
    let status = tokio::select! {
        status = driver.status() => status?,
        _ = wait_for_stop(false) => {
            stack.stop().await;
            return Ok(ExitCode::FAILURE);
        }
    };
    stack.stop().await;
    progress(&format!("bench done in {:.1} s", started.elapsed().as_secs_f64()));
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
