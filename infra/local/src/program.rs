//! What a function's process runs, by its `Runtime`: a custom runtime's binary (Roost's Rust
//! functions, `provided.al2023`), or Python started as Lambda's python runtimes start it, through
//! awslambdaric, the runtime interface client they use (the bench's Python reference,
//! bench/python-boto3).
//!
//! awslambdaric takes `AWS_LAMBDA_RUNTIME_API` as Lambda sets it, `host:port`: its native
//! client prepends `http://` and its init-error call connects to the host and port alone, so the
//! per-process path prefix the Rust runtime client accepts (`http://host:port/fn/<F>/<n>`)
//! cannot reach it. Such a process gets a Runtime API server of its own instead, on a port of
//! its own, which serves each request as that process's prefixed route.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::Uri;
use tokio::sync::oneshot;

use crate::lambda::{BODY_LIMIT, Lambda, runtime_routes};

pub enum Program {
    /// A custom runtime's executable (`bootstrap`); its directory is the task root.
    Binary(PathBuf),
    /// `<interpreter> -m awslambdaric <handler>` with `task_root` (the function's CodeUri) on
    /// `PYTHONPATH`; `runtime` is the template's (`python3.11`).
    Python { interpreter: PathBuf, runtime: String, handler: String, task_root: PathBuf },
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Binary(binary) => write!(f, "{}", binary.display()),
            Program::Python { interpreter, handler, .. } => {
                write!(f, "{} -m awslambdaric {handler}", interpreter.display())
            }
        }
    }
}

impl Program {
    /// The command, without its environment (the caller clears and sets it).
    pub fn command(&self) -> tokio::process::Command {
        match self {
            Program::Binary(binary) => tokio::process::Command::new(binary),
            Program::Python { interpreter, handler, .. } => {
                let mut command = tokio::process::Command::new(interpreter);
                command.args(["-m", "awslambdaric", handler]);
                command
            }
        }
    }

    /// Where its code lives (`LAMBDA_TASK_ROOT`): the process starts there, read-only.
    pub fn task_root(&self) -> std::path::PathBuf {
        match self {
            Program::Binary(binary) => binary.parent().map(std::path::Path::to_path_buf).unwrap_or_default(),
            Program::Python { task_root, .. } => task_root.clone(),
        }
    }

    /// Whether its runtime client takes `AWS_LAMBDA_RUNTIME_API` with a path prefix.
    pub fn takes_api_prefix(&self) -> bool {
        matches!(self, Program::Binary(_))
    }

    /// The variables Lambda sets for this kind of runtime: where the code and the runtime live,
    /// the handler, and for Python its import path.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        match self {
            Program::Binary(binary) => {
                let task_root = binary.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                vec![
                    ("LAMBDA_TASK_ROOT", task_root.clone()),
                    ("LAMBDA_RUNTIME_DIR", task_root),
                    ("_HANDLER", "bootstrap".into()),
                ]
            }
            Program::Python { interpreter, runtime, handler, task_root } => {
                let task_root = task_root.to_string_lossy().into_owned();
                // The virtualenv holding awslambdaric: `<venv>/bin/python`.
                let runtime_dir = interpreter.parent().and_then(|bin| bin.parent()).unwrap_or(interpreter);
                vec![
                    ("LAMBDA_TASK_ROOT", task_root.clone()),
                    ("LAMBDA_RUNTIME_DIR", runtime_dir.to_string_lossy().into_owned()),
                    ("_HANDLER", handler.clone()),
                    ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{runtime}")),
                    ("PYTHONPATH", task_root),
                    // Lambda's task root is read-only: nothing cached there between cold starts,
                    // and no __pycache__ left in the project's sources.
                    ("PYTHONDONTWRITEBYTECODE", "1".into()),
                ]
            }
        }
    }
}

/// Serves the Runtime API at `/2018-06-01/...` on a free port of its own, as process `number`
/// of `function` (its `/fn/<function>/<number>` routes); returns `host:port` and the sender
/// whose drop stops the server.
pub fn serve_own_api(lambda: &Arc<Lambda>, function: &str, number: u32) -> Result<(String, oneshot::Sender<()>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?.to_string();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let prefix = format!("/fn/{function}/{number}");
    let routes = runtime_routes().layer(DefaultBodyLimit::max(BODY_LIMIT)).with_state(lambda.clone());
    // Rewritten before routing: a layer on the router itself would run after it.
    let service =
        tower::ServiceBuilder::new().map_request(move |request: Request| prefixed(request, &prefix)).service(routes);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let app = axum::ServiceExt::<Request>::into_make_service(service);
        let shutdown = async {
            // A dropped sender (the process is gone) stops the server as a sent () would.
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            eprintln!("a process's runtime API server stopped: {e}");
        }
    });
    Ok((address, stop))
}

/// The request with `prefix` before its path (the query kept).
fn prefixed(mut request: Request, prefix: &str) -> Request {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    if let Ok(uri) = format!("{prefix}{path}").parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    request
}
