//! Deploying for real without an AWS account (issue 16):
//!
//! - `sam build` (the SAM CLI and cargo-lambda from `.venv-deploy`, installed by `cargo roost
//!   test`) builds every function the template declares through its `BuildMethod:
//!   rust-cargolambda`, and each artifact is a `bootstrap` ELF executable of the architecture asked
//!   for, needing no glibc newer than Lambda's, which the built template points the function at;
//! - the GitHub workflows (.github/workflows) pass actionlint, and a broken workflow does not;
//! - the deploy's smoke test (infra/smoke-test.sh) passes on the local stack and fails on a URL
//!   that does not answer 200.
//!
//! The build here is x86_64 and debug (`SAM_BUILD_MODE=debug`, cargo-lambda's `--compiler cargo`):
//! the arm64 standard library cannot be installed on this machine, and a release build would add
//! more than ten minutes to the suite (docs/decisions.md, docs/performance.md); features are
//! resolved for the whole workspace (tests/sam-build/CargoLambda.toml) so that dependencies
//! compile once, not once per function. It goes to `target/roost/sam-build` (cargo's own output to
//! `target/sam`). The deploy
//! workflow builds arm64 in release. `ROOST_SAM_ARCHITECTURE=arm64` builds arm64 here too, where
//! `rustup target add aarch64-unknown-linux-gnu` has been run (zig comes with cargo-lambda).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use roost_e2e::tools::{node_project, out_dir, root, run_ok};
use roost_e2e::{Stack, needs_stack};
use serde_yaml::Value;

/// ELF `e_machine` of x86_64 (EM_X86_64).
const EM_X86_64: u16 = 0x3E;
/// ELF `e_machine` of arm64 (EM_AARCH64).
const EM_AARCH64: u16 = 0xB7;

/// Lambda's architecture names and the ELF machine of each.
fn elf_machine_of(architecture: &str) -> u16 {
    match architecture {
        "x86_64" => EM_X86_64,
        "arm64" => EM_AARCH64,
        other => panic!("ROOST_SAM_ARCHITECTURE must be x86_64 or arm64, not {other}"),
    }
}

/// What an ELF header says about a file, as far as Lambda cares.
#[derive(Debug, PartialEq)]
struct ElfHeader {
    machine: u16,
    /// ET_EXEC (2) or ET_DYN (3, a position-independent executable).
    kind: u16,
}

/// Reads the ELF header of a 64-bit little-endian file (both Lambda architectures are); an error
/// says why `bytes` is not one.
fn elf_header(bytes: &[u8]) -> Result<ElfHeader, String> {
    // e_ident (16 bytes), e_type (u16 at 16), e_machine (u16 at 18).
    if bytes.len() < 20 {
        return Err(format!("{} bytes, shorter than an ELF header", bytes.len()));
    }
    if bytes[..4] != *b"\x7fELF" {
        return Err(format!("no ELF magic: {:02x?}", &bytes[..4]));
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err(format!("not 64-bit little-endian (EI_CLASS {}, EI_DATA {})", bytes[4], bytes[5]));
    }
    let half = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    Ok(ElfHeader { machine: half(18), kind: half(16) })
}

/// The glibc of Lambda's `provided.al2023` runtime (Amazon Linux 2023 ships glibc 2.34).
const AL2023_GLIBC: (u32, u32) = (2, 34);

/// The newest `GLIBC_x.y` symbol version named in a binary (its version-needed strings), if any.
fn newest_glibc_required(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut newest = None;
    for (at, _) in bytes.windows(6).enumerate().filter(|(_, w)| *w == b"GLIBC_") {
        let rest = &bytes[at + 6..bytes.len().min(at + 16)];
        let text: String = rest.iter().take_while(|b| b.is_ascii_digit() || **b == b'.').map(|&b| b as char).collect();
        let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
        if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
            newest = newest.max(Some((major, minor)));
        }
    }
    newest
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The logical ids of the template's functions, in the template's order.
fn function_ids(template: &Value) -> Vec<String> {
    let resources = template["Resources"].as_mapping().expect("Resources");
    resources
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, _)| id.as_str().expect("a logical id").to_owned())
        .collect()
}

/// `sam build` into `build_dir` for `architecture`, with the deploy virtualenv's tools first on
/// the PATH (sam finds `cargo-lambda` there). At the lowest CPU priority: it compiles beside the
/// rest of the suite, whose tests have deadlines.
fn sam_build(build_dir: &Path, architecture: &str) -> Command {
    let venv_bin = root().join(".venv-deploy/bin");
    assert!(
        venv_bin.join("sam").exists() && venv_bin.join("cargo-lambda").exists(),
        ".venv-deploy is missing sam or cargo-lambda: `cargo roost test` installs them (infra/requirements-deploy.txt)"
    );
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = Command::new("nice");
    command
        .args(["-n", "19"])
        .arg(venv_bin.join("sam"))
        .current_dir(root())
        .arg("build")
        // Not .aws-sam/build: a developer's arm64 release build there is what `sam deploy` would
        // upload next, and must not be replaced by this debug one.
        .arg("--build-dir")
        .arg(build_dir)
        .args(["--parameter-overrides", &format!("Stage=dev Architecture={architecture}")])
        .env("PATH", path)
        .env("SAM_CLI_TELEMETRY", "0")
        // `cargo lambda build` without --release: the debug profile, several times cheaper here.
        .env("SAM_BUILD_MODE", "debug")
        // Features resolved for the whole workspace in every function's build, so each dependency
        // compiles once (the file says why).
        .env("CARGO_LAMBDA_GLOBAL", root().join("tests/sam-build/CargoLambda.toml"))
        // A cargo target directory of its own (aws-lambda-builders keeps an explicit one and copies
        // from it): sharing `target/` shares the host's build scripts and proc-macros, and a build
        // from this test's environment and one from `cargo roost test`'s rebuilt each other's
        // dependencies (ring and up, minutes each way; docs/performance.md).
        .env("CARGO_TARGET_DIR", root().join("target/sam"))
        // Disk, not only time: this build is a second copy of every function (a CI run failed in it,
        // most likely out of disk, once the GraphQL function came). No incremental state (nobody edits
        // between two runs of this test) and no debug info in the bootstraps (never debugged).
        .env("CARGO_INCREMENTAL", "0")
        .env("CARGO_PROFILE_DEV_STRIP", "debuginfo");
    if architecture == std::env::consts::ARCH.replace("aarch64", "arm64") {
        // The host's own target needs no cross-linker: plain cargo rather than zig.
        command.env("CARGO_LAMBDA_COMPILER", "cargo");
    }
    command
}

/// The function's `bootstrap` is an executable ELF of `machine`, and the built template's
/// CodeUri points at the directory holding it.
fn assert_built(build_dir: &Path, built_template: &Value, id: &str, machine: u16) {
    let bootstrap = build_dir.join(id).join("bootstrap");
    let bytes = std::fs::read(&bootstrap).unwrap_or_else(|e| panic!("{id}: {}: {e}", bootstrap.display()));
    let header = elf_header(&bytes).unwrap_or_else(|e| panic!("{id}: {}: {e}", bootstrap.display()));
    assert_eq!(header.machine, machine, "{id}: e_machine of {}", bootstrap.display());
    assert!(
        matches!(header.kind, 2 | 3),
        "{id}: {} is ELF type {}, not an executable",
        bootstrap.display(),
        header.kind
    );
    // A binary that needs a newer glibc than Lambda's fails at init ("GLIBC_2.xx not found").
    let glibc = newest_glibc_required(&bytes);
    assert!(glibc <= Some(AL2023_GLIBC), "{id}: {} needs glibc {glibc:?}, newer than Lambda's", bootstrap.display());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&bootstrap).expect("bootstrap metadata").permissions().mode();
    assert_ne!(mode & 0o111, 0, "{id}: {} is not executable (mode {mode:o})", bootstrap.display());
    let code_uri = built_template["Resources"][id]["Properties"]["CodeUri"].as_str();
    let points_at = code_uri.map(|uri| build_dir.join(uri));
    assert_eq!(points_at, Some(build_dir.join(id)), "{id}: CodeUri in the built template");
}

#[tokio::test]
async fn sam_build_makes_a_bootstrap_of_the_asked_architecture_for_every_function() {
    needs_stack!();
    let architecture = std::env::var("ROOST_SAM_ARCHITECTURE").unwrap_or_else(|_| "x86_64".into());
    let machine = elf_machine_of(&architecture);
    tokio::task::spawn_blocking(move || {
        let build_dir = out_dir().join("sam-build");
        // A stale artifact from an earlier run must not pass for a new one.
        if build_dir.exists() {
            std::fs::remove_dir_all(&build_dir).expect("removing the previous sam build");
        }
        let ran = run_ok(&format!("sam build ({architecture}, debug)"), &mut sam_build(&build_dir, &architecture));
        let ids = function_ids(&read_yaml(&root().join("infra/template.yaml")));
        assert!(ids.len() >= 10, "the template's functions: {ids:?}");
        let built_template = read_yaml(&build_dir.join("template.yaml"));
        for id in &ids {
            assert!(ran.output.contains(&format!("functions: {id}")), "sam build did not build {id}:\n{}", ran.output);
            assert_built(&build_dir, &built_template, id, machine);
        }
        assert_eq!(function_ids(&built_template), ids, "the built template's functions");
        // Checked: its copies of the bootstraps only take disk from the rest of the suite.
        std::fs::remove_dir_all(&build_dir).expect("removing the checked sam build");
    })
    .await
    .expect("sam build");
}

/// Runs `command` and returns its output whatever its exit status.
fn run_any(what: &str, command: &mut Command) -> (Output, String) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: could not start {command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out, text)
}

/// A workflow with three mistakes actionlint knows: a job that needs a job that does not exist,
/// an input `actions/checkout@v4` does not have, and a context property that does not exist.
const BROKEN_WORKFLOW: &str = r#"name: Broken on purpose
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-24.04
    needs: no-such-job
    steps:
      - uses: actions/checkout@v4
        with:
          no-such-input: true
      - run: echo "${{ github.no_such_property }}"
"#;

fn lint_workflows(project: &Path, paths: &[PathBuf]) -> Command {
    let mut command = Command::new("node");
    command.current_dir(project).arg("lint.cjs").args(paths);
    command
}

#[tokio::test]
async fn the_workflows_pass_actionlint_and_a_broken_one_does_not() {
    needs_stack!();
    let project = node_project("tests/workflow-lint");
    tokio::task::spawn_blocking(move || {
        let workflows = root().join(".github/workflows");
        for required in ["ci.yml", "deploy.yml"] {
            assert!(workflows.join(required).is_file(), ".github/workflows/{required} is missing");
        }
        let count = std::fs::read_dir(&workflows).expect(".github/workflows").count();
        let ran = run_ok("actionlint .github/workflows", &mut lint_workflows(&project, &[workflows]));
        assert!(ran.output.contains(&format!("{count} workflow(s), 0 problem(s)")), "{}", ran.output);

        // The same linter on a broken workflow must fail, naming each mistake.
        let temp = std::env::temp_dir().join(format!("roost-actionlint-{}", std::process::id()));
        std::fs::create_dir_all(&temp).expect("a temp dir");
        let broken = temp.join("broken.yml");
        std::fs::write(&broken, BROKEN_WORKFLOW).expect("writing the broken workflow");
        let (out, text) = run_any("actionlint on a broken workflow", &mut lint_workflows(&project, &[broken]));
        let _ = std::fs::remove_dir_all(&temp);
        assert_eq!(out.status.code(), Some(1), "actionlint passed a broken workflow:\n{text}");
        for mistake in ["no-such-job", "no-such-input", "no_such_property", "3 problem(s)"] {
            assert!(text.contains(mistake), "actionlint did not report {mistake}:\n{text}");
        }
    })
    .await
    .expect("actionlint");
}

#[tokio::test]
async fn the_deploy_smoke_test_passes_on_the_stack_and_fails_where_health_is_not_200() {
    needs_stack!();
    let api = Stack::get().api_url.clone();
    tokio::task::spawn_blocking(move || {
        let script = root().join("infra/smoke-test.sh");
        let ran = run_ok("infra/smoke-test.sh on the local stack", Command::new("bash").arg(&script).arg(&api));
        for path in ["/v1/health 200", "/v1/openapi.json 200"] {
            assert!(ran.output.contains(path), "no {path} in:\n{}", ran.output);
        }
        // A base URL under which no route exists: the gateway answers 404, the script must fail.
        let wrong = format!("{api}/no-such-prefix");
        let (out, text) = run_any("infra/smoke-test.sh on a wrong URL", Command::new("bash").arg(&script).arg(&wrong));
        assert!(!out.status.success(), "the smoke test passed on {wrong}:\n{text}");
        assert!(text.contains("/no-such-prefix/v1/health answered 404, not 200"), "{text}");
    })
    .await
    .expect("smoke test");
}

#[test]
fn the_elf_reader_knows_this_test_binary_and_refuses_what_is_not_elf() {
    let this = std::fs::read(std::env::current_exe().expect("current exe")).expect("reading this test binary");
    let expected = elf_machine_of(&std::env::consts::ARCH.replace("aarch64", "arm64"));
    let header = elf_header(&this).expect("this test binary is ELF");
    assert_eq!(header.machine, expected);
    assert!(matches!(header.kind, 2 | 3), "ELF type {}", header.kind);

    assert!(elf_header(b"#!/bin/sh\necho not a binary\n").unwrap_err().contains("no ELF magic"));
    assert!(elf_header(&this[..10]).unwrap_err().contains("shorter than an ELF header"));
    let mut thirty_two_bit = this[..64].to_vec();
    thirty_two_bit[4] = 1;
    assert!(elf_header(&thirty_two_bit).unwrap_err().contains("not 64-bit"));
    let mut arm = this[..64].to_vec();
    arm[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
    assert_eq!(elf_header(&arm).map(|h| h.machine), Ok(EM_AARCH64));
}

#[test]
fn the_glibc_reader_finds_the_newest_version_a_binary_needs() {
    let dynstr = b"\0libc.so.6\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0";
    assert_eq!(newest_glibc_required(dynstr), Some((2, 34)));
    assert_eq!(newest_glibc_required(b"\0GLIBC_2.39\0GLIBC_2.3\0"), Some((2, 39)));
    assert!(newest_glibc_required(b"\0GLIBC_2.39\0") > Some(AL2023_GLIBC));
    assert_eq!(newest_glibc_required(b"statically linked, no version strings"), None);
}
