//! The local runtime's Lambda-style `REPORT` lines (docs/local-runtime.md), read from the
//! function logs the runtime writes: `Duration`, `Billed Duration`, `Memory Size`,
//! `Max Memory Used` and, on a process's first invocation, `Init Duration`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One REPORT line.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub request_id: String,
    pub duration_ms: f64,
    pub billed_ms: u64,
    pub memory_mb: u64,
    pub max_memory_mb: u64,
    /// Only on a cold start: process start to its first `/next`.
    pub init_ms: Option<f64>,
}

/// Parses a REPORT line (with or without the runtime's `[Function] ` prefix).
pub fn parse(line: &str) -> Option<Report> {
    let rest = &line[line.find("REPORT RequestId: ")? + "REPORT RequestId: ".len()..];
    let mut fields = rest.split('\t');
    let request_id = fields.next()?.trim().to_owned();
    let mut report =
        Report { request_id, duration_ms: -1.0, billed_ms: 0, memory_mb: 0, max_memory_mb: 0, init_ms: None };
    for field in fields {
        let (name, value) = field.split_once(": ")?;
        let number = value.split(' ').next()?;
        match name.trim() {
            "Duration" => report.duration_ms = number.parse().ok()?,
            "Billed Duration" => report.billed_ms = number.parse().ok()?,
            "Memory Size" => report.memory_mb = number.parse().ok()?,
            "Max Memory Used" => report.max_memory_mb = number.parse().ok()?,
            "Init Duration" => report.init_ms = Some(number.parse().ok()?),
            _ => {}
        }
    }
    (report.duration_ms >= 0.0).then_some(report)
}

/// A function's log read from where it ended when the tail was made: what a measurement added.
pub struct Tail {
    path: PathBuf,
    offset: u64,
}

impl Tail {
    /// From the log's current end.
    pub fn at_end(path: &Path) -> Tail {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Tail { path: path.to_owned(), offset }
    }

    /// Every REPORT line written since the tail was made.
    pub fn reports(&self) -> Vec<Report> {
        let bytes = std::fs::read(&self.path).unwrap_or_default();
        let start = usize::try_from(self.offset).unwrap_or(usize::MAX).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).lines().filter_map(parse).collect()
    }

    /// Waits (at most `patience`) for a REPORT line since the tail that `wanted` accepts: the
    /// runtime writes it just after the answer, so it may lag the HTTP response a little.
    pub async fn wait_for(&self, patience: Duration, wanted: impl Fn(&Report) -> bool) -> Option<Report> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(report) = self.reports().into_iter().find(|r| wanted(r)) {
                return Some(report);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cold_report_has_its_init_duration() {
        let line = "[ListingsFunction] REPORT RequestId: 8c01a48f\tDuration: 55.30 ms\tBilled Duration: 56 ms\t\
                    Memory Size: 256 MB\tMax Memory Used: 31 MB\tInit Duration: 53.70 ms";
        let report = parse(line).expect("a report");
        assert_eq!(report.request_id, "8c01a48f");
        assert_eq!((report.duration_ms, report.billed_ms, report.memory_mb, report.max_memory_mb), (55.3, 56, 256, 31));
        assert_eq!(report.init_ms, Some(53.7));
    }

    #[test]
    fn a_warm_report_has_none_and_other_lines_are_not_reports() {
        let warm = parse(
            "REPORT RequestId: x\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB",
        )
        .expect("a report");
        assert_eq!(warm.init_ms, None);
        assert!(parse(r#"[ListingsFunction] {"message":"request","status":200}"#).is_none());
        assert!(parse("REPORT RequestId: x\tDuration: soon").is_none());
    }

    #[tokio::test]
    async fn a_tail_sees_only_what_was_written_after_it() {
        let dir = std::env::temp_dir().join(format!("roost-bench-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("F.log");
        let line = |id: &str| {
            format!(
                "REPORT RequestId: {id}\tDuration: 2.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB\n"
            )
        };
        std::fs::write(&path, line("old")).expect("write");
        let tail = Tail::at_end(&path);
        assert!(tail.reports().is_empty());
        std::fs::write(&path, format!("{}{}", line("old"), line("new"))).expect("write");
        let found = tail.wait_for(Duration::from_millis(100), |r| r.request_id == "new").await;
        assert_eq!(found.map(|r| r.request_id), Some("new".to_owned()));
        assert!(tail.wait_for(Duration::from_millis(50), |r| r.request_id == "old").await.is_none());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
