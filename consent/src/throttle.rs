//! Rate limits for the patients' anonymous routes (challenges, sign-in,
//! enrolment): a fixed window per key (a device, a client address), kept in
//! memory. They bound guessing and flooding; they are not an accounting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many keys are remembered; past it, finished windows are dropped.
const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct Throttle {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt for `key`; refuses with the seconds to wait once the
    /// window's allowance is spent.
    pub fn allow(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut hits = self
            .hits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if hits.len() >= MAX_KEYS {
            hits.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            if hits.len() >= MAX_KEYS {
                // Flooded with distinct keys: refuse new ones until windows end.
                return Err(self.window.as_secs().max(1));
            }
        }
        let (start, count) = hits.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= self.window {
            *start = now;
            *count = 0;
        }
        if *count >= self.max {
            let wait = self.window.saturating_sub(now.duration_since(*start));
            return Err(wait.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }
}

/// The limits of the patients' anonymous routes.
#[derive(Debug)]
pub struct Throttles {
    /// Challenges and sign-ins, per device.
    pub per_device: Throttle,
    /// Challenges, sign-ins and enrolments, per client address.
    pub per_address: Throttle,
}

impl Default for Throttles {
    fn default() -> Self {
        Self {
            per_device: Throttle::new(10, Duration::from_secs(60)),
            per_address: Throttle::new(300, Duration::from_secs(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_allowance_then_refuses() {
        let t = Throttle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(t.allow("device-a"), Ok(()));
        }
        assert!(t
            .allow("device-a")
            .is_err_and(|wait| (1..=60).contains(&wait)));
        assert_eq!(t.allow("device-b"), Ok(()));
        let short = Throttle::new(1, Duration::from_millis(20));
        assert_eq!(short.allow("k"), Ok(()));
        assert!(short.allow("k").is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(short.allow("k"), Ok(()));
    }
}
