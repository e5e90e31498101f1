//! The one source of the current time for every service, so that tests can
//! move time on (a grant expiring, a challenge running out) instead of
//! sleeping. Protocol code stays pure: it is handed `now`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The current time: the system's, or a test's. Cheap to clone; clones of a
/// test clock share its setting.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<TestClock>);

impl Clock {
    /// The system's time.
    pub fn system() -> Self {
        Self(None)
    }

    pub fn now(&self) -> DateTime<Utc> {
        let system = Utc::now();
        match &self.0 {
            None => system,
            Some(test) => system + test.offset(),
        }
    }

    /// Unix seconds.
    pub fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }

    /// Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

/// A clock for tests: the system's time moved on by however much the test
/// says. Time still passes (asynchronous work keeps its order); a test
/// moves it ahead by hours where the system would need it to wait.
#[derive(Debug, Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    /// Starts at the system's time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves every clone of this clock, and every [`Clock`] made of it, ahead by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the time to `at`, from which it goes on passing.
    pub fn set(&self, at: DateTime<Utc>) {
        let offset = (at - Utc::now()).num_milliseconds();
        self.0.store(offset, Ordering::SeqCst);
    }

    pub fn clock(&self) -> Clock {
        Clock(Some(self.clone()))
    }

    fn offset(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_on_when_told() {
        let test = TestClock::new();
        let clock = test.clock();
        let before = Clock::system().now_secs();
        test.advance(std::time::Duration::from_secs(3600));
        assert!(clock.now_secs() >= before + 3600);
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        test.set(at);
        assert!((clock.now() - at).num_seconds().abs() < 5);
    }
}
