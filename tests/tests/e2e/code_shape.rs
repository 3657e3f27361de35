//! The one shape every context takes (CONTRIBUTING.md), checked over the source tree so that it
//! stays true: short entry points, `lib.rs` holding only the wiring, and no function so long
//! that its parts have no names. A static test: it needs no stack.

use std::path::{Path, PathBuf};

/// Longest function body allowed in production code (tests may tell a longer story).
const MAX_FUNCTION_LINES: usize = 80;
/// A Lambda's entry point reads config, builds clients once and runs: nothing more.
const MAX_MAIN_LINES: usize = 40;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The bench's crates: its Rust reference functions (bench/README.md) and its driver.
fn bench_crates() -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("bench"))
        .expect("bench/")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    assert!(!crates.is_empty(), "no crate under bench/");
    crates
}

/// Production sources: every context's `src`, `shared/src`, the local runtime's `src` and the
/// bench's crates.
fn production_sources() -> Vec<PathBuf> {
    let root = root();
    let mut dirs = vec![root.join("shared/src"), root.join("infra/local/src")];
    for context in std::fs::read_dir(root.join("functions")).expect("functions/").flatten() {
        dirs.push(context.path().join("src"));
    }
    dirs.extend(bench_crates().into_iter().map(|c| c.join("src")));
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&dir, &mut files);
    }
    files.sort();
    assert!(files.len() > 20, "found only {} source files under {}", files.len(), root.display());
    files
}

/// The source with comments, string and char literals blanked out (newlines kept), so that
/// braces are only the code's own.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank =
        |out: &mut Vec<u8>, part: &[u8]| out.extend(part.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let prev_is_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let end = if rest.starts_with(b"//") {
            rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            rest.windows(2).position(|w| w == b"*/").map_or(rest.len(), |p| p + 2)
        } else if rest[0] == b'r' && !prev_is_ident && matches!(rest.get(1), Some(b'"' | b'#')) {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) == Some(&b'"') {
                let closing: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                let body = 2 + hashes;
                rest[body..]
                    .windows(closing.len())
                    .position(|w| w == closing.as_slice())
                    .map_or(rest.len(), |p| body + p + closing.len())
            } else {
                0
            }
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(rest.len())
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            match (rest.get(1), rest.get(2)) {
                (Some(b'\\'), _) => rest[2..].iter().position(|&c| c == b'\'').map_or(0, |p| p + 3),
                (Some(_), Some(b'\'')) => 3,
                _ => 0,
            }
        } else {
            0
        };
        if end == 0 {
            out.push(b[i]);
            i += 1;
        } else {
            blank(&mut out, &rest[..end]);
            i += end;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(name, first line, number of lines)` of every function with a body.
fn functions(src: &str) -> Vec<(String, usize, usize)> {
    let code = code_only(src);
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let mut depth = 0i32;
        let mut opened = false;
        'scan: for (k, l) in lines.iter().enumerate().skip(start) {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened => break 'scan, // a declaration without a body
                    _ => {}
                }
            }
            if opened && depth == 0 {
                found.push((name, start + 1, k - start + 1));
                break;
            }
        }
    }
    found
}

fn fn_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        match w {
            "pub" | "async" | "const" | "unsafe" | "extern" => continue,
            w if w.starts_with("pub(") => continue,
            "fn" => {
                let name: String = words.next()?.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                return (!name.is_empty()).then_some(name);
            }
            _ => return None,
        }
    }
    None
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

#[test]
fn no_production_function_is_longer_than_80_lines() {
    let mut long = Vec::new();
    for file in production_sources() {
        let src = std::fs::read_to_string(&file).expect("readable source");
        for (name, line, count) in functions(&src) {
            if count > MAX_FUNCTION_LINES {
                long.push(format!("{}:{line} fn {name}: {count} lines", relative(&file)));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them where they have parts):\n{}",
        long.join("\n")
    );
}

#[test]
fn every_lambda_entry_point_is_short() {
    let mut entry_points = Vec::new();
    for context in std::fs::read_dir(root().join("functions")).expect("functions/").flatten() {
        let src = context.path().join("src");
        entry_points.push(src.join("main.rs"));
        rust_files(&src.join("bin"), &mut entry_points);
    }
    // The reference functions are Lambdas; the bench's driver (bench/driver) is a command.
    let lambdas = bench_crates().into_iter().filter(|c| {
        std::fs::read_to_string(c.join("Cargo.toml")).is_ok_and(|manifest| manifest.contains("lambda_http"))
    });
    entry_points.extend(lambdas.map(|c| c.join("src/main.rs")));
    let mut long = Vec::new();
    for file in &entry_points {
        let lines = std::fs::read_to_string(file).expect("readable entry point").lines().count();
        if lines >= MAX_MAIN_LINES {
            long.push(format!("{}: {lines} lines", relative(file)));
        }
    }
    assert!(entry_points.len() >= 9, "found only {} Lambda entry points", entry_points.len());
    assert!(long.is_empty(), "entry points of {MAX_MAIN_LINES} lines or more:\n{}", long.join("\n"));
}

/// `lib.rs` is the wiring: modules, `AppState`, the router or batch entry point. Handlers,
/// helpers and tests live in the modules the skeleton names.
#[test]
fn every_context_lib_holds_only_the_wiring() {
    let mut crowded = Vec::new();
    for context in std::fs::read_dir(root().join("functions")).expect("functions/").flatten() {
        let lib = context.path().join("src/lib.rs");
        let src = std::fs::read_to_string(&lib).expect("every context has a lib.rs");
        let fns = functions(&src);
        if fns.len() > 2 || src.contains("#[cfg(test)]") {
            let names: Vec<String> = fns.iter().map(|(n, ..)| n.clone()).collect();
            crowded.push(format!(
                "{}: fns {names:?}{}",
                relative(&lib),
                if src.contains("#[cfg(test)]") { ", tests" } else { "" }
            ));
        }
    }
    assert!(crowded.is_empty(), "lib.rs holding more than the wiring:\n{}", crowded.join("\n"));
}

#[test]
fn the_scanner_sees_through_strings_comments_and_declarations() {
    let src = "fn a() {\n    let s = \"}\";\n    // }\n    let c = '}';\n}\nfn declared();\npub(crate) async fn b<'x>(v: &'x str) -> &'x str {\n    r#\"{\"#;\n    v\n}\n";
    assert_eq!(functions(src), vec![("a".to_owned(), 1, 5), ("b".to_owned(), 7, 4)]);
}
