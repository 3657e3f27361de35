//! Writes the merged OpenAPI document to the path given (or stdout): `cargo roost openapi`
//! runs it with `docs/openapi.json`.

use std::io::Write;

fn main() -> anyhow::Result<()> {
    let json = docs::openapi::to_json(&docs::openapi::document())?;
    match std::env::args().nth(1) {
        Some(path) => std::fs::write(&path, json)?,
        None => std::io::stdout().write_all(json.as_bytes())?,
    }
    Ok(())
}
