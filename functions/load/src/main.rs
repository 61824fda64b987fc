//! The load Lambda: S3 notifications (through SQS, directly, or from EventBridge) of staged
//! files → MERGE / COPY INTO through the Databricks SQL Statement Execution API.
//! Wiring only: configuration, clients and the handler; the logic is in `deltasink::load`.

// The handler's future nests the loader, the warehouse client and reqwest deeply: computing the
// layout of `main`'s future needs more than the default 128 query levels on a clean build.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deltasink::config::LoadConfig;
use deltasink::load::{self, loader::Loader, notifications};
use deltasink::store::S3Store;
use deltasink::warehouse::{ClientOptions, WarehouseClient};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value as Json;

/// mimalloc: the stage pipeline allocates many small values; glibc malloc was a quarter of its
/// profile (see the README benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    deltasink::telemetry::init();
    let vars = std::env::vars().collect();
    let config = match LoadConfig::from_vars(&vars) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(variable = %e.variable, "{e}");
            return Err(e.into());
        }
    };
    let warehouse = WarehouseClient::new(
        config.connection.clone(),
        config.credentials.clone(),
        ClientOptions::default(),
    )?;
    let store = S3Store::from_env().await;
    let loader = Arc::new(Loader::new(config, store, warehouse));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Json>| {
        let loader = loader.clone();
        async move { handle(&loader, event).await }
    }))
    .await
}

async fn handle(
    loader: &Loader<S3Store, WarehouseClient>,
    event: LambdaEvent<Json>,
) -> Result<Json, Error> {
    let deadline = deadline(event.context.deadline, loader.config.deadline_margin);
    let from_sqs = event
        .payload
        .pointer("/Records/0/eventSource")
        .and_then(Json::as_str)
        == Some("aws:sqs");
    let notifications = notifications::parse(&event.payload)?;
    for (id, why) in &notifications.unreadable {
        tracing::error!(message_id = %id, "unreadable message, returned to the queue: {why}");
    }
    let report = loader.load(notifications.objects.clone(), deadline).await;
    Ok(load::response(&notifications, &report, from_sqs)?)
}

/// The Lambda deadline (epoch milliseconds) as an `Instant`, less the safety margin.
///
/// Lambda sends the deadline as epoch milliseconds. The `cargo lambda watch` emulator sends the
/// time allowed instead (seen: 600000); a value too small to be an epoch time in milliseconds
/// (before 2001) is read that way, so local runs get their real budget.
fn deadline(deadline_ms: u64, margin: Duration) -> Instant {
    const EPOCH_MS_2001: u64 = 978_307_200_000;
    let left = if deadline_ms < EPOCH_MS_2001 {
        Duration::from_millis(deadline_ms)
    } else {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Duration::from_millis(deadline_ms.saturating_sub(now_ms))
    };
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
