//! Running the project's non-Rust test tools (Playwright, schemathesis, the TypeScript compiler
//! and node), installed by `cargo roost test` (infra/local/src/tools.rs): where they are, and a
//! run that fails the test with the tool's whole output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `target/roost` (reports, screenshots, compiled examples), created when missing.
pub fn out_dir() -> PathBuf {
    let dir = root().join("target/roost");
    std::fs::create_dir_all(&dir).expect("target/roost");
    dir
}

/// Asserts that a node project's dependencies are installed (`cargo roost test` runs `npm ci`).
pub fn node_project(relative: &str) -> PathBuf {
    let dir = root().join(relative);
    assert!(
        dir.join("node_modules").is_dir(),
        "{relative}/node_modules is missing: `cargo roost test` installs it (npm ci in {relative})"
    );
    dir
}

/// What a tool printed, and how long it took.
pub struct Ran {
    pub output: String,
    pub took: Duration,
}

/// Runs `command` to the end (blocking: call it from `spawn_blocking` in an async test) and
/// asserts it succeeded; on failure the assertion message is everything it printed.
pub fn run_ok(what: &str, command: &mut Command) -> Ran {
    let started = Instant::now();
    let out = command.output().unwrap_or_else(|e| panic!("{what}: could not start {command:?}: {e}"));
    let took = started.elapsed();
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{what} failed ({}) after {:.1} s; its last lines first:\n{}\n--- everything it printed:\n{output}",
        out.status,
        took.as_secs_f64(),
        last_lines(&output, 40)
    );
    eprintln!("{what}: passed in {:.1} s", took.as_secs_f64());
    Ran { output, took }
}

/// The last `n` lines of `text`: where a failing tool says why (a long build log is cut from
/// the end in CI's record of a failure, so the reason goes first).
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_lines_keeps_the_end_of_a_long_log_and_all_of_a_short_one() {
        let log: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(super::last_lines(&log, 2), "line 99\nline 100");
        assert_eq!(super::last_lines("only\n", 40), "only");
    }
}
