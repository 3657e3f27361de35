//! Time as a dependency: rules take `now` from a `Clock` so tests (and the local stack's clock
//! offset) can move time without waiting for it.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::config::{self, ConfigError, Lookup};

/// Set only by the local runtime in test mode; the SAM template never sets it.
pub const CLOCK_OFFSET_VAR: &str = "ROOST_CLOCK_OFFSET_SECONDS";

/// Offsets beyond this are a typo, not a test scenario (and keep `now + offset` in range).
const MAX_OFFSET_SECONDS: i64 = 100 * 366 * 24 * 3600;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// System time shifted by a fixed offset.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    offset: SignedDuration,
}

impl OffsetClock {
    pub fn new(offset: SignedDuration) -> Self {
        let max = SignedDuration::from_secs(MAX_OFFSET_SECONDS);
        Self { offset: offset.clamp(-max, max) }
    }

    pub fn offset(&self) -> SignedDuration {
        self.offset
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        // Cannot fail: the offset is clamped far inside Timestamp's range.
        now.checked_add(self.offset).unwrap_or(now)
    }
}

/// The clock a function should run with: `SystemClock`, or an `OffsetClock` when
/// `ROOST_CLOCK_OFFSET_SECONDS` is set (a malformed value fails init rather than being ignored).
pub fn from_env() -> Result<SharedClock, ConfigError> {
    from_lookup(&config::env_lookup)
}

fn from_lookup(lookup: &Lookup) -> Result<SharedClock, ConfigError> {
    if config::optional_in(lookup, CLOCK_OFFSET_VAR).is_none() {
        return Ok(Arc::new(SystemClock));
    }
    let secs: i64 = config::parse_in(lookup, CLOCK_OFFSET_VAR)?;
    if secs.abs() > MAX_OFFSET_SECONDS {
        return Err(ConfigError::Invalid {
            name: CLOCK_OFFSET_VAR.to_owned(),
            reason: "offset larger than 100 years".to_owned(),
        });
    }
    Ok(Arc::new(OffsetClock::new(SignedDuration::from_secs(secs))))
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<Timestamp>,
}

impl FixedClock {
    pub fn new(now: Timestamp) -> Self {
        Self { now: Mutex::new(now) }
    }

    /// Parses an RFC 3339 instant; for tests, where a bad literal should fail loudly.
    pub fn at(rfc3339: &str) -> Result<Self, jiff::Error> {
        Ok(Self::new(rfc3339.parse()?))
    }

    pub fn set(&self, now: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.checked_add(by).unwrap_or(*now);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An invocation's deadline (Lambda's `Context::deadline`, wall-clock) on tokio's monotonic
/// clock, for `tokio::time` and for "is there time left for one more": a deadline already
/// past is now.
pub fn invocation_deadline(deadline: std::time::SystemTime) -> tokio::time::Instant {
    tokio::time::Instant::now() + deadline.duration_since(std::time::SystemTime::now()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_invocation_deadline_is_as_far_on_tokios_clock_and_a_past_one_is_now() {
        use std::time::{Duration, SystemTime};
        let before = tokio::time::Instant::now();
        let ahead = super::invocation_deadline(SystemTime::now() + Duration::from_secs(30));
        assert!(
            ahead >= before + Duration::from_secs(29) && ahead <= tokio::time::Instant::now() + Duration::from_secs(30)
        );
        let past = super::invocation_deadline(SystemTime::now() - Duration::from_secs(5));
        assert!(past <= tokio::time::Instant::now());
    }

    use super::*;
    use crate::config::fake_env;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let clock = FixedClock::at("2025-03-01T12:00:00Z").unwrap();
        assert_eq!(clock.now().to_string(), "2025-03-01T12:00:00Z");
        clock.advance(SignedDuration::from_mins(15));
        assert_eq!(clock.now().to_string(), "2025-03-01T12:15:00Z");
        clock.set("2030-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(clock.now().to_string(), "2030-01-01T00:00:00Z");
        let shared: SharedClock = Arc::new(clock);
        assert_eq!(shared.now().to_string(), "2030-01-01T00:00:00Z");
    }

    #[test]
    fn offset_clock_shifts_system_time() {
        let day = SignedDuration::from_hours(24);
        let clock = OffsetClock::new(day);
        let diff = clock.now().duration_since(Timestamp::now());
        assert!((diff - day).abs() < SignedDuration::from_secs(5), "{diff:?}");
        let huge = OffsetClock::new(SignedDuration::from_secs(i64::MAX));
        assert_eq!(huge.offset().as_secs(), MAX_OFFSET_SECONDS);
        let _ = huge.now();
    }

    #[test]
    fn env_selects_the_clock() {
        let none = from_lookup(&fake_env(&[])).unwrap();
        let diff = none.now().duration_since(Timestamp::now()).abs();
        assert!(diff < SignedDuration::from_secs(5));

        let shifted = from_lookup(&fake_env(&[(CLOCK_OFFSET_VAR, "-86400")])).unwrap();
        let diff = shifted.now().duration_since(Timestamp::now());
        assert!((diff + SignedDuration::from_hours(24)).abs() < SignedDuration::from_secs(5));

        assert!(from_lookup(&fake_env(&[(CLOCK_OFFSET_VAR, "soon")])).is_err());
        assert!(from_lookup(&fake_env(&[(CLOCK_OFFSET_VAR, "99999999999")])).is_err());
        assert!(from_env().is_ok());
    }
}
