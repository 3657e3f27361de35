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
    #[test]
    fn init_twice_is_harmless() {
        super::init();
        super::init();
        tracing::info!(answer = 42, "telemetry works");
    }
}
