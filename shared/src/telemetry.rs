//! Logging set-up shared by the functions: JSON lines in Lambda (CloudWatch), readable text
//! elsewhere; level from `RUST_LOG` (default `info`).

/// Installs the global `tracing` subscriber. Safe to call more than once.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if in_lambda {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.try_init()
    };
}
