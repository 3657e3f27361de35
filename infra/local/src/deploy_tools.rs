//! The deploy tools `roost test` installs and runs: the SAM CLI and cargo-lambda in a virtualenv
//! of their own (`.venv-deploy`, from infra/requirements-deploy.txt; aws-sam-cli pins
//! boto3/botocore versions moto does not run with, so they cannot share `.venv`), and
//! `sam validate --lint` over the template. tests/tests/e2e/deploy.rs runs `sam build` with them.

use std::path::Path;

use anyhow::{Result, bail};

use crate::emulators::{Venv, ensure_venv_of, progress};

/// The SAM CLI, cargo-lambda and (pulled by cargo-lambda's wheel) zig.
pub const DEPLOY_VENV: Venv =
    Venv { dir: ".venv-deploy", requirements: "infra/requirements-deploy.txt", what: "the SAM CLI and cargo-lambda" };

/// Creates `.venv-deploy` when missing or its requirements changed.
pub async fn ensure_deploy_tools(root: &Path) -> Result<()> {
    ensure_venv_of(root, &DEPLOY_VENV).await
}

/// `sam validate --lint -t infra/template.yaml`: SAM's transform and its cfn-lint pass over the
/// template; an error fails the run. No AWS account or network is needed.
pub async fn sam_validate(root: &Path) -> Result<()> {
    progress("sam validate --lint -t infra/template.yaml");
    let status = tokio::process::Command::new(root.join(DEPLOY_VENV.dir).join("bin/sam"))
        .current_dir(root)
        .args(["validate", "--lint", "-t", "infra/template.yaml"])
        // No usage report to AWS (there is no network to send it to anyway).
        .env("SAM_CLI_TELEMETRY", "0")
        .status()
        .await?;
    if !status.success() {
        bail!("sam validate --lint found problems in infra/template.yaml");
    }
    Ok(())
}
