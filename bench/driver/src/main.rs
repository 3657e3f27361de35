//! `roost-bench`: what `cargo roost bench` runs against the release stack it started (issue 18;
//! docs/performance.md). It measures cold starts beside the two reference functions, warm
//! operations, search as a city grows, a bounded load with goose and the release zips; prices
//! the load's usage; writes `target/roost/bench.json` and regenerates docs/performance.md.
//! The measuring lives in `roost_e2e::bench`, where `cargo roost test` compiles and tests it.

mod load;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use roost_e2e::bench::cold::{ColdStarts, Wake, all_cold_starts, empty_batch, scheduled_event};
use roost_e2e::bench::measure::Call;
use roost_e2e::bench::warm::{Scene, operations};
use roost_e2e::bench::{PYTHON_REFERENCE, RUST_REFERENCE, cdn, cost, render, scaling, targets, usage};
use roost_e2e::{Stack, anonymous, invariants, json_of, unique, until_indexed};
use serde_json::{Value, json};

/// What to run, from the command line (`cargo roost bench` passes its own options through).
struct Options {
    quick: bool,
    runs: usize,
    passes: usize,
    load_seconds: usize,
    users: usize,
    sizes: Vec<usize>,
    out: PathBuf,
    doc: PathBuf,
    binaries: PathBuf,
}

fn options() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let root = std::env::current_dir()?;
    let mut o = Options {
        quick: false,
        runs: 10,
        passes: 20,
        load_seconds: 60,
        users: 8,
        sizes: vec![100, 1_000, 10_000],
        out: root.join("target/roost/bench.json"),
        doc: root.join("docs/performance.md"),
        binaries: root.join("target/release"),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => (o.quick, o.runs, o.passes, o.load_seconds) = (true, 3, 5, 15),
            "--runs" => o.runs = value()?.parse()?,
            "--passes" => o.passes = value()?.parse()?,
            "--load-seconds" => o.load_seconds = value()?.parse()?,
            "--users" => o.users = value()?.parse()?,
            "--sizes" => o.sizes = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--out" => o.out = value()?.into(),
            "--doc" => o.doc = value()?.into(),
            "--binaries" => o.binaries = value()?.into(),
            "--render-only" => {}
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("roost-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(what: &str) {
    let _ = writeln!(std::io::stderr(), "roost-bench: {what}");
}

async fn run() -> Result<bool> {
    let options = options()?;
    // `--render-only`: the page again from the last result (after a change to the page's shape).
    if std::env::args().any(|a| a == "--render-only") {
        let bench: Value = serde_json::from_str(&std::fs::read_to_string(&options.out)?)?;
        let checked = targets::check(&bench);
        let existing = std::fs::read_to_string(&options.doc).unwrap_or_default();
        write(&options.doc, &render::render(&bench, &checked, &existing))?;
        return Ok(checked.iter().all(|t| t.pass));
    }
    let started = Instant::now();
    let stack = Stack::try_get().context("ROOST_STACK is not set: run `cargo roost bench`")?;
    let functions: Vec<String> = stack.rest["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    progress("setting up a host, a guest and a listing");
    let scene = Scene::new().await;
    let pending = scene.guest.api().booked(&scene.stay(400)).await;
    let pending_id = roost_e2e::s(&pending, "booking_id").to_owned();

    progress(&format!("cold starts: {} per function", options.runs));
    let wakes: Vec<Wake> = functions.iter().filter_map(|f| wake(f, &scene, &pending_id)).collect();
    let cold = all_cold_starts(&wakes, options.runs).await;
    progress(&format!("warm operations: {} passes", options.passes));
    let references = functions.iter().any(|f| f == PYTHON_REFERENCE) && functions.iter().any(|f| f == RUST_REFERENCE);
    let warm = operations(&scene, options.passes, references).await;
    // The load runs before the big cities are seeded: moto's queries slow down with the table's
    // size (docs/performance.md), which would make the load measure the emulator.
    progress(&format!("load: {} guests for {} s", options.users, options.load_seconds));
    let roost_functions: Vec<String> =
        functions.iter().filter(|f| !roost_e2e::bench::is_reference(f)).cloned().collect();
    let (load, cost) = load_phase(&options, &scene, &roost_functions).await?;
    progress(&format!("search over cities of {:?} listings", options.sizes));
    let scaling = scaling::search_scaling(&scene.host, &options.sizes, options.passes).await;

    let zips = zip_sizes(&options.binaries)?;
    let mut bench = json!({
        "machine": machine(&options, started),
        "functions": {}, "references": {},
        "operations": warm, "search_scaling": scaling, "load": load,
        "cost_per_million_bookings_usd": cost.as_ref().map(|c| c.per_million_bookings_usd), "cost": cost,
    });
    for (function, starts) in &cold {
        let zip = binary_of(function).and_then(|b| zips.get(&b).copied());
        let (section, name) = match function.as_str() {
            RUST_REFERENCE => ("references", "rust_hello"),
            PYTHON_REFERENCE => ("references", "python_boto3"),
            other => ("functions", other),
        };
        bench[section][name] = cold_json(starts, zip);
    }
    // A function the bench could not wake has no figures: its targets fail as not measured.
    for function in functions.iter().filter(|f| !cold.contains_key(*f)) {
        bench["functions"][function] = json!({"not_measured": "no way to wake it is known to bench/driver"});
    }
    let checked = targets::check(&bench);
    bench["targets"] = json!(checked);
    write(&options.out, &serde_json::to_string_pretty(&bench)?)?;
    let existing = std::fs::read_to_string(&options.doc).unwrap_or_default();
    write(&options.doc, &render::render(&bench, &checked, &existing))?;
    for t in &checked {
        println!("{} {} ({})", if t.pass { "pass" } else { "FAIL" }, t.name, t.detail);
    }
    println!("wrote {} and {}", options.out.display(), options.doc.display());
    Ok(checked.iter().all(|t| t.pass))
}

/// How the bench wakes each function for a cold start; `None` (said) for one it does not know.
fn wake<'a>(function: &'a str, scene: &'a Scene, pending_booking: &str) -> Option<Wake<'a>> {
    let listing = &scene.listing_id;
    let (guest, anyone) = (scene.guest.api(), anonymous());
    Some(match function {
        "UsersFunction" => Wake::Http(anyone, Call::get(function, format!("/v1/users/{}", scene.host.user_id))),
        "ListingsFunction" => Wake::Http(anyone, Call::get(function, format!("/v1/listings/{listing}"))),
        "BookingsFunction" => Wake::Http(anyone, Call::post(function, "/v1/quotes", Some(scene.stay(200)))),
        "ReviewsFunction" => Wake::Http(anyone, Call::get(function, format!("/v1/listings/{listing}/reviews"))),
        "DocsFunction" => Wake::Http(anyone, Call::get(function, "/v1/openapi.json")),
        "GraphqlFunction" => {
            let page = json!({"query": roost_e2e::bench::warm::LISTING_PAGE, "variables": {"id": listing}});
            Wake::Http(anyone, Call::post(function, "/v1/graphql", Some(page)))
        }
        "PaymentsFunction" => {
            Wake::Http(guest, Call::post(function, format!("/v1/bookings/{pending_booking}/payment"), None))
        }
        RUST_REFERENCE => Wake::Http(anyone, Call::get(function, "/bench/hello")),
        PYTHON_REFERENCE => Wake::Http(anyone, Call::get(function, format!("/bench/python/listings/{listing}"))),
        "BookingsSweepFunction" => Wake::Invoke(function, scheduled_event()),
        "PaymentEventsFunction" | "NotificationsFunction" | "EventsRelayFunction" => {
            Wake::Invoke(function, empty_batch())
        }
        other => {
            progress(&format!("{other}: no way to wake it for a cold start is known; add one to bench/driver"));
            return None;
        }
    })
}

fn cold_json(starts: &ColdStarts, zip_mb: Option<f64>) -> Value {
    json!({
        "init_ms_p50": starts.init_ms.p50, "init_ms_min": starts.init_ms.min, "init_ms_max": starts.init_ms.max,
        "max_rss_mb": starts.max_rss_mb, "memory_size_mb": starts.memory_size_mb, "zip_mb": zip_mb,
        "first_request_ms_p50": starts.first_request_ms.p50, "warm_request_ms_p50": starts.warm_request_ms.p50,
        "runs": starts.init_ms.n,
    })
}

/// The load run, then the invariants over every booking it made, then its usage priced.
async fn load_phase(options: &Options, scene: &Scene, functions: &[String]) -> Result<(Value, Option<cost::Cost>)> {
    let city = unique("Loadtown");
    roost_e2e::seed::seed_listings(&scene.host, &city, 20).await;
    let path = format!("/v1/search?city={city}");
    until_indexed(
        || async { json_of(anonymous().get(&path).await, 200).await },
        |page: &Value| page["items"].as_array().is_some_and(|items| items.len() >= 20),
    )
    .await;
    let shared = Arc::new(load::Shared {
        host: scene.host.clone(),
        city,
        timezone: scene.timezone.clone(),
        trips: Mutex::new(Vec::new()),
        started: Instant::now(),
        observed: Mutex::new(Vec::new()),
    });
    let mark = usage::mark(functions).await;
    let began = Instant::now();
    let metrics = load::run(shared.clone(), &Stack::get().api_url, options.users, options.load_seconds)
        .await
        .map_err(|e| anyhow::anyhow!("goose: {e}"))?;
    let seconds = began.elapsed().as_secs_f64();
    let mut summary = load::summarize(&metrics, seconds);
    let trips = shared.trips.lock().unwrap_or_else(|p| p.into_inner()).clone();
    progress(&format!("load made {} bookings; checking the invariants", trips.len()));
    let report = invariants::check(&trips, 0, load::SETTLE).await;
    let confirmed = report.final_status.get("confirmed").copied().unwrap_or(0);
    let double_held =
        report.violations.iter().filter(|v| v.starts_with("a night is held by at most one booking")).count();
    let api_requests = summary["requests"].as_u64().unwrap_or(0);
    let used = usage::since(&mark, confirmed, api_requests, sns_subscribed_queues()?).await;
    summary["seconds"] = json!(options.load_seconds);
    summary["bookings"] = json!(trips.len());
    summary["bookings_confirmed"] = json!(confirmed);
    summary["bookings_per_second"] = json!(confirmed as f64 / seconds);
    summary["double_held_nights"] = json!(double_held);
    summary["invariant_violations"] = json!(report.violations);
    summary["invariants_checked"] = json!(report.checked);
    summary["usage"] = json!(used);
    summary["cdn"] = json!(cdn::share(&shared.observed.lock().unwrap_or_else(|p| p.into_inner())));
    Ok((summary, cost::per_million_bookings(&used)))
}

/// The template's SNS subscriptions: each publish is delivered to that many queues.
fn sns_subscribed_queues() -> Result<u64> {
    let template = std::fs::read_to_string("infra/template.yaml").context("reading infra/template.yaml")?;
    Ok(template.lines().filter(|l| l.trim() == "Type: AWS::SNS::Subscription").count() as u64)
}

/// The template's function -> cargo binary (`Metadata.BuildProperties.Binary`).
fn binary_of(function: &str) -> Option<String> {
    let mut binaries = BTreeMap::new();
    for path in ["infra/template.yaml", "bench/template.yaml"] {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        // The tags (`!Ref`) do not matter here: read as plain YAML with them ignored.
        let Ok(yaml) = serde_yaml::from_str::<serde_yaml::Value>(&text) else { continue };
        for (id, resource) in yaml["Resources"].as_mapping().into_iter().flatten() {
            if let (Some(id), Some(binary)) = (id.as_str(), resource["Metadata"]["BuildProperties"]["Binary"].as_str())
            {
                binaries.insert(id.to_owned(), binary.to_owned());
            }
        }
    }
    binaries.remove(function)
}

/// Each release binary in `dir` packed as `cargo lambda build --release` packs it (the binary
/// as `bootstrap` in a deflated zip), in MB.
fn zip_sizes(dir: &Path) -> Result<BTreeMap<String, f64>> {
    let mut sizes = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        let executable = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path)?.permissions()) & 0o111 != 0;
        if !path.is_file() || !executable || name.contains('.') || name.starts_with("lib") {
            continue;
        }
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755);
        zip.start_file("bootstrap", options)?;
        zip.write_all(&std::fs::read(&path)?)?;
        let bytes = zip.finish()?.into_inner().len();
        sizes.insert(name, bytes as f64 / 1_048_576.0);
    }
    Ok(sizes)
}

fn machine(options: &Options, started: Instant) -> Value {
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned())))
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    json!({
        "command": if options.quick { "cargo roost bench --quick" } else { "cargo roost bench" },
        "date": jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC").to_string(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "os": os, "commit": commit, "runs": options.runs, "passes": options.passes,
        "minutes": (started.elapsed().as_secs_f64() / 6.0).round() / 10.0,
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
