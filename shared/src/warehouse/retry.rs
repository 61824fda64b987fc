//! Retry timing, pure: full-jitter exponential backoff, `Retry-After`, and the
//! `wait_timeout` a submission can afford before the deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Exponential backoff with full jitter: attempt `n` (from 1) sleeps a uniform random time
/// in `[0, min(cap, base · 2^(n-1))]`. A `Retry-After` from the server replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts in all, the first included. The deadline bounds them too.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(10),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the sleep after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// A full-jitter sleep after failed attempt `attempt`.
    pub fn backoff(&self, attempt: u32, jitter: &Jitter) -> Duration {
        self.ceiling(attempt).mul_f64(jitter.unit())
    }
}

/// A tiny xorshift64* generator for jitter, seeded from the clock: no `rand` needed, and
/// shared between tasks without a lock.
#[derive(Debug)]
pub struct Jitter(AtomicU64);

impl Default for Jitter {
    fn default() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Jitter::seeded(nanos)
    }
}

impl Jitter {
    pub fn seeded(seed: u64) -> Self {
        // splitmix64 of the seed, never zero (xorshift's fixed point).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Jitter(AtomicU64::new(z.max(1)))
    }

    fn step(mut x: u64) -> u64 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x
    }

    pub fn next_u64(&self) -> u64 {
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let next = Self::step(current);
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next.wrapping_mul(0x2545_F491_4F6C_DD1D),
                Err(actual) => current = actual,
            }
        }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A `Retry-After` header value: delay-seconds or an HTTP-date. Absurd values are capped at
/// an hour (the deadline bounds the wait anyway).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    const MAX: Duration = Duration::from_secs(3600);
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX));
    }
    if let Ok(seconds) = value.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Some(Duration::from_secs_f64(seconds.min(MAX.as_secs_f64())));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX))
}

/// Time to leave between the end of a synchronous wait and the cancel point, for the
/// response to travel and a first poll.
const WAIT_SLACK: Duration = Duration::from_secs(5);

/// The `wait_timeout` (seconds) for a submission: the preferred wait, shortened so that the
/// server answers well before `until_cancel` runs out. The API takes 0 (asynchronous) or
/// 5 to 50 seconds.
pub fn wait_timeout_secs(preferred: Duration, until_cancel: Duration) -> u64 {
    let affordable = until_cancel.saturating_sub(WAIT_SLACK).as_secs();
    let wait = preferred.as_secs().min(50).min(affordable);
    if wait < 5 { 0 } else { wait }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_millis(200));
        assert_eq!(p.ceiling(2), Duration::from_millis(400));
        assert_eq!(p.ceiling(6), Duration::from_millis(6400));
        assert_eq!(p.ceiling(7), Duration::from_secs(10));
        assert_eq!(p.ceiling(1000), Duration::from_secs(10));
    }

    proptest! {
        #[test]
        fn backoff_stays_within_the_ceiling(seed in any::<u64>(), attempt in 1u32..100) {
            let p = RetryPolicy::default();
            let j = Jitter::seeded(seed);
            for _ in 0..10 {
                let d = p.backoff(attempt, &j);
                prop_assert!(d <= p.ceiling(attempt));
            }
        }
    }

    #[test]
    fn jitter_spreads() {
        let j = Jitter::seeded(7);
        let values: Vec<f64> = (0..1000).map(|_| j.unit()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        // 2015-10-21T07:28:00Z is 1445412480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(
            parse_retry_after("99999999", now),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn wait_timeout_fits_the_budget() {
        let s = Duration::from_secs;
        assert_eq!(wait_timeout_secs(s(30), s(600)), 30);
        assert_eq!(wait_timeout_secs(s(120), s(600)), 50);
        assert_eq!(wait_timeout_secs(s(30), s(20)), 15);
        assert_eq!(wait_timeout_secs(s(30), s(9)), 0);
        assert_eq!(wait_timeout_secs(s(30), s(10)), 5);
        assert_eq!(wait_timeout_secs(s(3), s(600)), 0);
        assert_eq!(wait_timeout_secs(Duration::ZERO, s(600)), 0);
    }
}
