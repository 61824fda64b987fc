//! What every function's `main` and handler need: its variables with secrets resolved, its
//! configuration errors logged, whether metrics are printed, the invocation's deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::ConfigError;
use crate::secrets::SecretError;

/// The function's variables (collected by `main` from the process environment) with the
/// secret they name from Secrets Manager or SSM merged in; a failure is logged naming the
/// variable, and the function stops.
pub async fn with_secrets(
    mut vars: HashMap<String, String>,
) -> Result<HashMap<String, String>, SecretError> {
    if let Err(e) = crate::secrets::resolve_from_env_vars(&mut vars).await {
        tracing::error!(variable = %e.variable(), "{e}");
        return Err(e);
    }
    Ok(vars)
}

/// A parsed configuration, its error logged naming the variable (the function then stops).
pub fn logged<T>(config: Result<T, ConfigError>) -> Result<T, ConfigError> {
    if let Err(e) = &config {
        tracing::error!(variable = %e.variable, "{e}");
    }
    config
}

/// Whether the process runs in Lambda, where CloudWatch reads stdout: metrics (Embedded
/// Metric Format) are printed only then.
pub fn emits_metrics(vars: &HashMap<String, String>) -> bool {
    vars.contains_key("AWS_LAMBDA_FUNCTION_NAME")
}

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
    fn metrics_only_in_lambda() {
        let mut vars = HashMap::new();
        assert!(!emits_metrics(&vars));
        vars.insert(
            "AWS_LAMBDA_FUNCTION_NAME".to_string(),
            "deltasink-load".to_string(),
        );
        assert!(emits_metrics(&vars));
    }

    #[test]
    fn epoch_deadlines_and_emulator_budgets() {
        let now = 1_800_000_000_000;
        assert_eq!(time_left(now + 30_000, now), Duration::from_secs(30));
        assert_eq!(time_left(now - 5, now), Duration::ZERO);
        // cargo lambda watch: the budget itself.
        assert_eq!(time_left(600_000, now), Duration::from_secs(600));
    }
}
