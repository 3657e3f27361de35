//! The soak (issue 17; docs/reliability.md): `cargo roost test --soak 10m` runs mixed load for
//! that long (it sets `ROOST_SOAK_SECONDS`; without it this test returns at once, saying it was
//! skipped). Every few seconds it samples each function process's RSS (`/proc/<pid>/status`
//! `VmRSS`) and open file descriptors (`/proc/<pid>/fd`), the pids from the runtime's
//! `GET /_roost/processes`. After the warm-up (the first third) no process may grow either by
//! more than 10 %, the error rate of the last third may not exceed the first's, and the
//! invariants of `roost_e2e::invariants` hold at the end. A summary goes to
//! `target/roost/soak.json`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use roost_e2e::fixtures::{confirm_with, day_in};
use roost_e2e::invariants::{self, Trip};
use roost_e2e::load::{Tally, bounded, error_rate};
use roost_e2e::{NewListing, Stack, User, client, json_of, s, unique};
use serde_json::{Value, json};

const LISTINGS: usize = 6;
const GUESTS: usize = 12;
const WORKERS: usize = 4;
/// Growth allowed after warm-up, and the absolute slack under which growth is noise (an
/// allocator's arena, one more pooled connection).
const MAX_GROWTH: f64 = 0.10;
const RSS_SLACK_KB: u64 = 1024;
const FD_SLACK: u64 = 2;

fn soak_seconds() -> Option<u64> {
    std::env::var("ROOST_SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).filter(|s| *s > 0)
}

/// One sample of one process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    rss_kb: u64,
    fds: u64,
}

fn sample(pid: u64) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss_kb, fds))
}

/// The runtime's processes now: (function, pid).
async fn processes() -> Vec<(String, u64)> {
    let listed = json_of(
        client().get(format!("{}/_roost/processes", Stack::get().runtime_url)).send().await.expect("runtime"),
        200,
    )
    .await;
    let mut out = Vec::new();
    for (function, list) in listed["functions"].as_object().expect("functions") {
        for p in list.as_array().into_iter().flatten() {
            if let Some(pid) = p["pid"].as_u64() {
                out.push((function.clone(), pid));
            }
        }
    }
    out
}

/// A booking a worker made: pays 9 in 10, cancels 1 in 4 of those, leaves the rest to expire.
async fn one_trip(
    tally: &Tally,
    guest: &User,
    host: &User,
    listing: &(String, String),
    from: i64,
    n: u64,
) -> Option<Trip> {
    let (listing_id, city) = listing;
    let (check_in, check_out) = (day_in("UTC", from), day_in("UTC", from + 1));
    let api = |p: &str| Stack::get().url(p);
    let token = &guest.access_token;
    let search = format!("/v1/search?city={city}&check_in={check_in}&check_out={check_out}&guests=1");
    tally.send("search", || client().get(api(&search))).await;
    tally.send("listing", || client().get(api(&format!("/v1/listings/{listing_id}")))).await;
    let stay = json!({"listing_id": listing_id, "check_in": check_in, "check_out": check_out, "guests": 1});
    tally.send("quote", || client().post(api("/v1/quotes")).json(&stay)).await;
    let key = unique("soak-");
    let booked = tally
        .send("book", || {
            client().post(api("/v1/bookings")).bearer_auth(token).header("idempotency-key", &key).json(&stay)
        })
        .await;
    if booked.status != 201 {
        return None;
    }
    let booking_id = s(&booked.body, "booking_id").to_owned();
    let mut trip = Trip {
        booking_id: booking_id.clone(),
        listing_id: listing_id.clone(),
        nights: vec![check_in.clone()],
        guest: guest.clone(),
        host: host.clone(),
        paid_intent: None,
        cancelled_refund: None,
    };
    tally.send("trips", || client().get(api("/v1/me/trips")).bearer_auth(token)).await;
    if n % 10 == 9 {
        return Some(trip);
    }
    let paid = tally
        .send("pay", || client().post(api(&format!("/v1/bookings/{booking_id}/payment"))).bearer_auth(token))
        .await;
    if paid.status != 200 {
        return Some(trip);
    }
    let intent = s(&paid.body, "payment_intent_id").to_owned();
    let (status, confirmed) = confirm_with(&intent, "pm_card_visa").await;
    assert_eq!((status, &confirmed["status"]), (200, &json!("succeeded")), "{confirmed}");
    trip.paid_intent = Some(intent);
    tally.send("inbox", || client().get(api("/v1/me/notifications?limit=20")).bearer_auth(token)).await;
    if n.is_multiple_of(4) {
        // Cancel once confirmed (the webhook and its consumer are asynchronous).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let b = tally
                .send("read", || client().get(api(&format!("/v1/bookings/{booking_id}"))).bearer_auth(token))
                .await;
            if b.body["status"] == "confirmed" || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let cancel = tally
            .send("cancel", || {
                client().post(api(&format!("/v1/bookings/{booking_id}/cancel"))).bearer_auth(token).json(&json!({}))
            })
            .await;
        if cancel.status == 200 {
            trip.cancelled_refund = Some(cancel.body["refund"]["amount"].as_i64().unwrap_or(0));
        }
    }
    Some(trip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_soak_holds_memory_descriptors_and_error_rate_flat() {
    let Some(seconds) = soak_seconds() else {
        eprintln!("soak skipped: ROOST_SOAK_SECONDS is not set (run `cargo roost test --soak 10m`)");
        return;
    };
    roost_e2e::needs_stack!();
    let duration = Duration::from_secs(seconds);
    let hosts = bounded(2, (0..2).map(|i| async move { User::host(&format!("Soak Host {i}")).await })).await;
    let mut listings = Vec::new();
    for i in 0..LISTINGS {
        let city = unique("Soakcity");
        let body = NewListing {
            timezone: "UTC".into(),
            min_nights: Some(1),
            cancellation_policy: "flexible".into(),
            ..NewListing::in_city(&city)
        };
        listings.push((hosts[i % 2].api().new_listing(&body).await, city));
    }
    let guests = bounded(4, (0..GUESTS).map(|i| async move { User::guest(&format!("Soak Guest {i}")).await })).await;

    // Three tallies, one per third of the run: the error rate's creep is the last vs the first.
    let thirds: Arc<[Tally; 3]> = Arc::new([Tally::new(), Tally::new(), Tally::new()]);
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let (hosts, listings, guests) = (Arc::new(hosts), Arc::new(listings), Arc::new(guests));
    // Collected at once: each worker owns its clones, so the spawned load borrows nothing.
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (thirds, next, hosts, listings, guests) =
                (thirds.clone(), next.clone(), hosts.clone(), listings.clone(), guests.clone());
            async move {
                let mut trips = Vec::new();
                while started.elapsed() < duration {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let third = ((started.elapsed().as_secs_f64() / duration.as_secs_f64()) * 3.0).min(2.0) as usize;
                    let listing_index = (n as usize) % LISTINGS;
                    // Each trip its own night on its listing: one night a slot, far enough ahead.
                    let from = 5 + i64::try_from(n / LISTINGS as u64).expect("small");
                    let guest = &guests[(n as usize) % GUESTS];
                    let host = &hosts[listing_index % 2];
                    if let Some(trip) = one_trip(&thirds[third], guest, host, &listings[listing_index], from, n).await {
                        trips.push(trip);
                    }
                }
                trips
            }
        })
        .collect();
    let load = tokio::spawn(bounded(WORKERS, workers));

    // Sampling while the load runs.
    let mut series: BTreeMap<(String, u64), Vec<Sample>> = BTreeMap::new();
    while !load.is_finished() {
        let at = started.elapsed().as_secs_f64();
        for (function, pid) in processes().await {
            if let Some((rss_kb, fds)) = sample(pid) {
                series.entry((function, pid)).or_default().push(Sample { at, rss_kb, fds });
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let trips: Vec<Trip> = load.await.expect("load").into_iter().flatten().collect();
    let load_seconds = started.elapsed().as_secs_f64();

    // Growth after warm-up, per process that lived through it: its first sample after the
    // warm-up against its last.
    let warm_up = duration.as_secs_f64() / 3.0;
    let mut growth = Vec::new();
    let mut failures = Vec::new();
    for ((function, pid), samples) in &series {
        let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= warm_up).collect();
        let (Some(first), Some(last)) = (after.first(), after.last()) else { continue };
        if after.len() < 3 {
            continue;
        }
        let rss = (last.rss_kb as f64 - first.rss_kb as f64) / first.rss_kb.max(1) as f64;
        let fds = (last.fds as f64 - first.fds as f64) / first.fds.max(1) as f64;
        growth.push(
            json!({"function": function, "pid": pid, "samples": after.len(), "rss_kb": [first.rss_kb, last.rss_kb],
                           "fds": [first.fds, last.fds], "rss_growth": rss, "fd_growth": fds}),
        );
        if rss > MAX_GROWTH && last.rss_kb.saturating_sub(first.rss_kb) > RSS_SLACK_KB {
            failures.push(format!("{function} pid {pid}: RSS {} -> {} kB", first.rss_kb, last.rss_kb));
        }
        if fds > MAX_GROWTH && last.fds.saturating_sub(first.fds) > FD_SLACK {
            failures.push(format!("{function} pid {pid}: fds {} -> {}", first.fds, last.fds));
        }
    }
    let rates: Vec<f64> = thirds.iter().map(|t| error_rate(&t.answers())).collect();
    let report = invariants::check(&trips, 0, Duration::from_secs(90)).await;
    let violations: Vec<String> = thirds.iter().flat_map(|t| t.violations()).collect();

    let summary = json!({
        "seconds": seconds, "load_seconds": load_seconds, "trips": trips.len(),
        "processes_sampled": series.len(), "samples": series.values().map(Vec::len).sum::<usize>(),
        "growth_after_warm_up": growth, "growth_failures": failures,
        "error_rate_by_third": rates, "answers_by_third": thirds.iter().map(Tally::snapshot).collect::<Vec<Value>>(),
        "invariants": report,
    });
    let logs = &Stack::get().logs_dir;
    let path = logs.parent().and_then(|p| p.parent()).unwrap_or(logs).join("soak.json");
    std::fs::create_dir_all(path.parent().expect("dir")).expect("target/roost");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).expect("json")).expect("writing soak.json");
    println!("soak summary ({}):\n{}", path.display(), serde_json::to_string_pretty(&summary).expect("json"));

    assert!(trips.len() >= 5, "the soak made too few trips to say anything: {}", trips.len());
    assert!(!growth.is_empty(), "no process lived through the warm-up to be measured");
    assert!(failures.is_empty(), "growth after warm-up: {failures:#?}");
    assert!(rates[2] <= rates[0] + 0.02, "error rate crept: {rates:?}");
    assert!(violations.is_empty(), "answers that break the contract: {violations:#?}");
    assert!(report.violations.is_empty(), "broken invariants: {:#?}", report.violations);
}
