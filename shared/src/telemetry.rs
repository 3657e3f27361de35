//! JSON logs for CloudWatch: one object per line, fields flattened to the top level so Logs
//! Insights can filter on them, no ANSI colours and no timestamp (Lambda stamps every line).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::SubscriberBuilder;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields};

/// Installs the global subscriber: `RUST_LOG` filter (default `info`). Calling it again is a
/// no-op, so tests and binaries may both call it.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = json_subscriber(filter).try_init();
}

pub(crate) fn json_subscriber(filter: EnvFilter) -> SubscriberBuilder<JsonFields, Format<Json, ()>, EnvFilter> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .with_env_filter(filter)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    /// Writes into `LINES`, for a subscriber of this test only.
    struct Sink;

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            LINES.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn init_twice_is_harmless() {
        super::init();
        super::init();
        assert!(tracing::dispatcher::has_been_set());
    }

    #[test]
    fn lines_are_flat_json_without_time_or_target() {
        let subscriber = super::json_subscriber(super::EnvFilter::new("info")).with_writer(|| Sink).finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("below the filter");
            tracing::info!(answer = 42, "telemetry works");
        });
        let line: serde_json::Value = serde_json::from_slice(&LINES.lock().unwrap()).unwrap();
        assert_eq!(line, serde_json::json!({"level": "INFO", "message": "telemetry works", "answer": 42}));
    }
}
