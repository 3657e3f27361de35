//! The targets, checked against a bench result (`target/roost/bench.json`), each with
//! pass or fail and the figures it compared. Pure over the JSON, so the page can be regenerated
//! from a result file and the checks unit-tested.

use serde::Serialize;
use serde_json::Value;

use super::scaling::MAX_P50_GROWTH;

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub pass: bool,
    pub detail: String,
}

/// Most any function may use (REPORT `Max Memory Used`), MB.
pub const MAX_RSS_MB: f64 = 25.0;
/// Largest release zip, MB.
pub const MAX_ZIP_MB: f64 = 8.0;
/// Operations that read, and the most DynamoDB requests each may make.
pub const READS: [&str; 3] = ["get_listing", "search", "get_trip"];
/// Operations that write, and the most DynamoDB requests each may make (a transaction is one).
pub const WRITES: [&str; 3] = ["create_booking", "pay", "post_review"];
/// GraphQL screens, and the most DynamoDB requests each may make whatever the items it shows
/// (issue 19): the listing page is the listing, its host, its nights and a page of reviews;
/// the trips page the caller, a page of trips and their listings (one batch).
pub const GRAPHQL_SCREENS: [&str; 2] = ["graphql_listing_page", "graphql_trips_page"];

fn num(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer).and_then(Value::as_f64)
}

fn target(name: impl Into<String>, pass: bool, detail: impl Into<String>) -> Target {
    Target { name: name.into(), pass, detail: detail.into() }
}

/// Every target over `bench`; a figure that is missing fails its target.
pub fn check(bench: &Value) -> Vec<Target> {
    let mut out = Vec::new();
    let hello = num(bench, "/references/rust_hello/init_ms_p50");
    let python = num(bench, "/references/python_boto3/init_ms_p50");
    for (name, f) in bench["functions"].as_object().into_iter().flatten() {
        let init = num(f, "/init_ms_p50");
        out.push(match (init, hello) {
            (Some(i), Some(h)) => target(
                format!("{name}: init p50 <= 2x hello-world Rust"),
                i <= 2.0 * h,
                format!("{i:.1} ms vs {h:.1} ms"),
            ),
            _ => target(format!("{name}: init p50 <= 2x hello-world Rust"), false, "not measured"),
        });
        out.push(match (init, python) {
            (Some(i), Some(p)) => {
                target(format!("{name}: init p50 <= 1/5 Python boto3"), i * 5.0 <= p, format!("{i:.1} ms vs {p:.1} ms"))
            }
            _ => target(format!("{name}: init p50 <= 1/5 Python boto3"), false, "not measured"),
        });
        let rss = num(f, "/max_rss_mb");
        out.push(target(
            format!("{name}: max RSS <= {MAX_RSS_MB} MB"),
            rss.is_some_and(|r| r <= MAX_RSS_MB),
            rss.map_or("not measured".into(), |r| format!("{r} MB")),
        ));
        let zip = num(f, "/zip_mb");
        out.push(target(
            format!("{name}: release zip <= {MAX_ZIP_MB} MB"),
            zip.is_some_and(|z| z <= MAX_ZIP_MB),
            zip.map_or("not measured".into(), |z| format!("{z:.1} MB")),
        ));
    }
    for (ops, most, what) in [
        (&READS[..], 1.0, "reads: 1 DynamoDB request"),
        (&WRITES[..], 2.0, "writes: <= 2 DynamoDB requests"),
        (&GRAPHQL_SCREENS[..], 4.0, "a screen in one query: <= 4 DynamoDB requests"),
    ] {
        for op in ops {
            let n = num(bench, &format!("/operations/{op}/ddb_requests"));
            out.push(target(
                format!("{op}: {what}"),
                n.is_some_and(|n| n <= most),
                n.map_or("not measured".into(), |n| n.to_string()),
            ));
        }
    }
    out.extend(search_targets(bench));
    let errors = num(bench, "/load/errors");
    out.push(target(
        "load: zero 5xx",
        errors == Some(0.0),
        errors.map_or("not measured".into(), |e| format!("{e} answers 5xx")),
    ));
    let double = num(bench, "/load/double_held_nights");
    out.push(target(
        "load: zero double-held nights",
        double == Some(0.0),
        double.map_or("not measured".into(), |d| d.to_string()),
    ));
    let violations = bench["load"]["invariant_violations"].as_array().map(Vec::len);
    out.push(target(
        "load: the invariants hold",
        violations == Some(0),
        violations.map_or("not measured".into(), |v| format!("{v} violations")),
    ));
    out
}

fn search_targets(bench: &Value) -> Vec<Target> {
    let sizes: Vec<(usize, &Value)> = bench["search_scaling"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(n, v)| Some((n.parse().ok()?, v)))
        .collect();
    let smallest = sizes.iter().min_by_key(|(n, _)| *n);
    let largest = sizes.iter().max_by_key(|(n, _)| *n);
    let (Some((small_n, small)), Some((large_n, large))) = (smallest, largest) else {
        return vec![target("search: independent of the city's size", false, "not measured")];
    };
    let requests = |v: &Value| num(v, "/ddb_requests");
    let p50 = |v: &Value| num(v, "/handler_ms/p50");
    let counts: Vec<Option<f64>> = sizes.iter().map(|(_, v)| requests(v)).collect();
    let same = counts.iter().all(|c| c.is_some() && *c == counts[0]);
    let growth = match (p50(small), p50(large)) {
        (Some(s), Some(l)) if s > 0.0 => Some(l / s),
        _ => None,
    };
    vec![
        target(
            "search: DynamoDB requests do not grow with the city",
            same,
            format!("{counts:?} at sizes {:?}", sizes.iter().map(|(n, _)| n).collect::<Vec<_>>()),
        ),
        target(
            format!("search: handler p50 at {large_n} <= {MAX_P50_GROWTH}x at {small_n}"),
            growth.is_some_and(|g| g <= MAX_P50_GROWTH),
            growth.map_or("not measured".into(), |g| format!("{g:.2}x")),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn passing() -> Value {
        json!({
            "functions": {"F": {"init_ms_p50": 20.0, "max_rss_mb": 20, "zip_mb": 5.0}},
            "references": {"rust_hello": {"init_ms_p50": 15.0}, "python_boto3": {"init_ms_p50": 400.0}},
            "operations": {"get_listing": {"ddb_requests": 1}, "search": {"ddb_requests": 1}, "get_trip": {"ddb_requests": 1},
                           "create_booking": {"ddb_requests": 2}, "pay": {"ddb_requests": 2}, "post_review": {"ddb_requests": 1},
                           "graphql_listing_page": {"ddb_requests": 4}, "graphql_trips_page": {"ddb_requests": 3}},
            "search_scaling": {"100": {"ddb_requests": 1, "handler_ms": {"p50": 4.0}}, "10000": {"ddb_requests": 1, "handler_ms": {"p50": 5.0}}},
            "load": {"errors": 0, "double_held_nights": 0, "invariant_violations": []}
        })
    }

    #[test]
    fn a_result_within_every_target_passes_them_all() {
        let targets = check(&passing());
        let failed: Vec<_> = targets.iter().filter(|t| !t.pass).collect();
        assert!(failed.is_empty(), "{failed:#?}");
        assert!(targets.len() >= 14, "{targets:#?}");
    }

    #[test]
    fn each_miss_fails_its_own_target() {
        let failing = |edit: &dyn Fn(&mut Value), name: &str| {
            let mut bench = passing();
            edit(&mut bench);
            let failed: Vec<String> = check(&bench).into_iter().filter(|t| !t.pass).map(|t| t.name).collect();
            assert!(failed.iter().any(|f| f.contains(name)), "{name}: {failed:?}");
        };
        failing(&|b| b["functions"]["F"]["init_ms_p50"] = json!(31.0), "2x hello-world");
        failing(&|b| b["references"]["python_boto3"]["init_ms_p50"] = json!(99.0), "1/5 Python");
        failing(&|b| b["functions"]["F"]["max_rss_mb"] = json!(26), "max RSS");
        failing(&|b| b["functions"]["F"].as_object_mut().map(|f| f.remove("zip_mb")).map(drop).unwrap_or(()), "zip");
        failing(&|b| b["operations"]["search"]["ddb_requests"] = json!(2), "search: reads");
        failing(&|b| b["operations"]["pay"]["ddb_requests"] = json!(3), "pay: writes");
        failing(
            &|b| b["operations"]["graphql_listing_page"]["ddb_requests"] = json!(5),
            "graphql_listing_page: a screen",
        );
        failing(&|b| b["search_scaling"]["10000"]["ddb_requests"] = json!(2), "do not grow");
        failing(&|b| b["search_scaling"]["10000"]["handler_ms"]["p50"] = json!(6.1), "handler p50");
        failing(&|b| b["load"]["errors"] = json!(1), "5xx");
        failing(&|b| b["load"]["double_held_nights"] = json!(1), "double-held");
        failing(&|b| b["load"]["invariant_violations"] = json!(["x"]), "invariants");
    }
}
