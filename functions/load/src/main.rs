//! The load Lambda: S3 notifications (through SQS, directly, or from EventBridge) of staged
//! files → MERGE / COPY INTO through the Databricks SQL Statement Execution API.
//! Wiring only: configuration, clients and the handler; the logic is in `deltasink::load`.

// The handler's future nests the loader, the warehouse client and reqwest deeply: computing the
// layout of `main`'s future needs more than the default 128 query levels on a clean build.
#![recursion_limit = "256"]

use std::sync::Arc;

use deltasink::config::LoadConfig;
use deltasink::invocation;
use deltasink::load::{self, loader::Loader, notifications};
use deltasink::store::S3Store;
use deltasink::warehouse::{ClientOptions, WarehouseClient};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value as Json;

/// mimalloc: the stage pipeline allocates many small values; glibc malloc was a quarter of its
/// profile (see the README benchmarks).
#[global_allocator]
static GLOBAL: deltasink::allocator::MiMalloc = deltasink::allocator::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    deltasink::telemetry::init();
    let vars = invocation::with_secrets(std::env::vars().collect()).await?;
    let config = invocation::logged(LoadConfig::from_vars(&vars))?;
    let warehouse = WarehouseClient::new(
        config.connection.clone(),
        config.credentials.clone(),
        ClientOptions::default(),
    )?;
    let store = S3Store::from_env().await;
    let loader = Arc::new(Loader::new(config, store, warehouse));
    let emit_metrics = invocation::emits_metrics(&vars);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Json>| {
        let loader = loader.clone();
        async move { handle(&loader, event, emit_metrics).await }
    }))
    .await
}

async fn handle(
    loader: &Loader<S3Store, WarehouseClient>,
    event: LambdaEvent<Json>,
    emit_metrics: bool,
) -> Result<Json, Error> {
    let deadline = invocation::deadline(event.context.deadline, loader.config.deadline_margin);
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
    if emit_metrics {
        deltasink::metrics::emit(&report.metrics());
    }
    Ok(load::response(&notifications, &report, from_sqs)?)
}
