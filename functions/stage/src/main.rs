//! The stage Lambda: MSK (or self-managed Kafka) batches → Parquet files in S3 staging.
//! Wiring only: configuration, clients and the handler; the logic is in `deltasink::stage`.

use std::sync::Arc;

use deltasink::config::StageConfig;
use deltasink::invocation;
use deltasink::kafka::KafkaEvent;
use deltasink::registry::RegistryClient;
use deltasink::stage::{StageSummary, Stager};
use deltasink::store::S3Store;
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// mimalloc: the stage pipeline allocates many small values; glibc malloc was a quarter of its
/// profile (see the README benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    deltasink::telemetry::init();
    let vars = invocation::with_secrets(std::env::vars().collect()).await?;
    let config = Arc::new(invocation::logged(StageConfig::from_vars(&vars))?);
    let registry = config
        .registry
        .clone()
        .map(RegistryClient::new)
        .transpose()?;
    let store = S3Store::from_env().await;
    let stager = Arc::new(Stager::new(config, store, registry));
    let emit_metrics = invocation::emits_metrics(&vars);
    lambda_runtime::run(service_fn(|event: LambdaEvent<KafkaEvent>| {
        let stager = stager.clone();
        async move { handle(&stager, event, emit_metrics).await }
    }))
    .await
}

async fn handle(
    stager: &Stager<S3Store, RegistryClient>,
    event: LambdaEvent<KafkaEvent>,
    emit_metrics: bool,
) -> Result<StageSummary, Error> {
    let summary = stager.stage(&event.payload).await.map_err(|e| {
        tracing::error!(error = %e, "stage failed; the event source mapping will retry the batch");
        e
    })?;
    if emit_metrics {
        deltasink::metrics::emit(&summary.metrics());
    }
    tracing::info!(
        records = summary.records,
        rows = summary.rows_staged,
        files = summary.files_staged,
        records_to_errors = summary.records_to_errors,
        tombstones_skipped = summary.tombstones_skipped,
        "batch staged"
    );
    Ok(summary)
}
