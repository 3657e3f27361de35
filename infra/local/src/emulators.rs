//! The emulators' virtualenv and processes: moto (through our launcher) and localstripe.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{die_with_parent, free_port};

/// A virtualenv the project installs from a pinned requirements file.
pub struct Venv {
    /// The virtualenv's directory, relative to the repository's root (gitignored).
    pub dir: &'static str,
    /// Its pinned requirements, relative to the repository's root.
    pub requirements: &'static str,
    /// What it holds, for the progress lines.
    pub what: &'static str,
}

/// The emulators, cfn-lint and schemathesis.
pub const EMULATORS_VENV: Venv =
    Venv { dir: ".venv", requirements: "infra/local/requirements.txt", what: "moto, localstripe and cfn-lint" };

/// awslambdaric and boto3 for python functions (bench/python-boto3, the bench's reference):
/// installed only when a template or overlay has one, apart from `.venv` so that moto's pins and
/// the reference's never constrain each other.
pub const BENCH_VENV: Venv = Venv {
    dir: ".venv-bench",
    requirements: "bench/python-boto3/requirements.txt",
    what: "awslambdaric and boto3 (python functions)",
};

pub fn venv_dir(root: &Path) -> PathBuf {
    root.join(EMULATORS_VENV.dir)
}

/// Creates `.venv` from `infra/local/requirements.txt` when missing or stale.
pub async fn ensure_venv(root: &Path) -> Result<()> {
    ensure_venv_of(root, &EMULATORS_VENV).await
}

/// Creates `venv` from its requirements when missing or stale: a copy of the requirements file
/// inside the virtualenv is the stamp, so an unchanged file installs nothing.
pub async fn ensure_venv_of(root: &Path, venv: &Venv) -> Result<()> {
    let dir = root.join(venv.dir);
    let requirements = root.join(venv.requirements);
    let wanted =
        std::fs::read_to_string(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = dir.join(".roost-requirements");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    if !dir.join("bin/python").exists() {
        progress(&format!("creating the virtualenv {}", venv.dir));
        run(tokio::process::Command::new("python3").args(["-m", "venv"]).arg(&dir), "python3 -m venv").await?;
    }
    progress(&format!("installing {} into {} (pinned in {})", venv.what, venv.dir, venv.requirements));
    run(
        tokio::process::Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install",
    )
    .await?;
    std::fs::write(&stamp, wanted)?;
    progress(&format!("{} installed", venv.what));
    Ok(())
}

pub async fn run(command: &mut tokio::process::Command, what: &str) -> Result<()> {
    let status = command.status().await.with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed: {status}");
    }
    Ok(())
}

pub fn progress(line: &str) {
    eprintln!("roost: {line}");
}

pub struct Emulator {
    pub name: &'static str,
    pub url: String,
    pub pid: u32,
    pub log: PathBuf,
    child: tokio::process::Child,
}

impl Emulator {
    pub async fn start_moto(root: &Path, state_dir: &Path) -> Result<Self> {
        let port = free_port()?;
        let mut command = tokio::process::Command::new(venv_dir(root).join("bin/python"));
        command.arg(root.join("infra/local/moto_launcher.py")).args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        Self::start("moto", command, port, state_dir).await
    }

    pub async fn start_localstripe(root: &Path, state_dir: &Path) -> Result<Self> {
        let port = free_port()?;
        // Our launcher: localstripe plus the manual-capture webhooks it lacks (the file says why).
        let mut command = tokio::process::Command::new(venv_dir(root).join("bin/python"));
        command.arg(root.join("infra/local/stripe_launcher.py"));
        // --from-scratch: localstripe otherwise reloads /tmp/localstripe.pickle, shared by every stack.
        command.args(["--port", &port.to_string(), "--from-scratch"]);
        Self::start("localstripe", command, port, state_dir).await
    }

    async fn start(
        name: &'static str,
        mut command: tokio::process::Command,
        port: u16,
        state_dir: &Path,
    ) -> Result<Self> {
        progress(&format!("starting {name} on port {port}"));
        let log = state_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        command.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file);
        die_with_parent(&mut command);
        let mut child = command.spawn().with_context(|| format!("starting {name}"))?;
        let pid = child.id().unwrap_or_default();
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited at start ({status}); its log, {}:\n{}", log.display(), tail(&log));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill().await;
                bail!("{name} did not listen within 60 s; its log, {}:\n{}", log.display(), tail(&log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { name, url, pid, log, child })
    }

    pub async fn stop(&mut self) {
        crate::process::kill(self.pid, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
