//! Writes `docs/authorization.md` (or the path given) from `tests/authorization.yaml`: what
//! `cargo roost authorization` runs. A test fails while the committed page differs.

use std::process::ExitCode;

fn main() -> ExitCode {
    let out = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(roost_e2e::authorization::doc_path);
    let page = match roost_e2e::authorization::load().and_then(|m| roost_e2e::authorization::render(&m)) {
        Ok(page) => page,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&out, page) {
        eprintln!("writing {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
