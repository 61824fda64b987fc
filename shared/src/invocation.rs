//! Facts of one Lambda invocation that every function needs.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The Lambda deadline (epoch milliseconds) as an `Instant`, less the safety margin.
///
/// Lambda sends the deadline as epoch milliseconds. The `cargo lambda watch` emulator sends the
/// time allowed instead (seen: 600000); a value too small to be an epoch time in milliseconds
/// (before 2001) is read that way, so local runs get their real budget.
pub fn deadline(deadline_ms: u64, margin: Duration) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let left = time_left(deadline_ms, now_ms);
    if left <= margin {
        tracing::warn!(
            remaining_ms = left.as_millis() as u64,
            margin_ms = margin.as_millis() as u64,
            "the invocation has less time than the deadline margin: raise the function timeout"
        );
    } else {
        tracing::info!(
            remaining_ms = left.as_millis() as u64,
            "invocation deadline"
        );
    }
    Instant::now() + left.saturating_sub(margin)
}

fn time_left(deadline_ms: u64, now_ms: u64) -> Duration {
    const EPOCH_MS_2001: u64 = 978_307_200_000;
    if deadline_ms < EPOCH_MS_2001 {
        Duration::from_millis(deadline_ms)
    } else {
        Duration::from_millis(deadline_ms.saturating_sub(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_deadlines_and_emulator_budgets() {
        let now = 1_800_000_000_000;
        assert_eq!(time_left(now + 30_000, now), Duration::from_secs(30));
        assert_eq!(time_left(now - 5, now), Duration::ZERO);
        // cargo lambda watch: the budget itself.
        assert_eq!(time_left(600_000, now), Duration::from_secs(600));
    }
}
