//! The stage Lambda: MSK (or self-managed Kafka) batches → Parquet files in S3 staging.
//! Wiring only: configuration, clients and the handler; the logic is in `deltasink::stage`.

mod payload;

use std::sync::Arc;

use deltasink::config::StageConfig;
use deltasink::invocation;
use deltasink::registry::RegistryClient;
use deltasink::stage::{StageSummary, Stager};
use deltasink::store::S3Store;
use lambda_runtime::{Error, LambdaEvent, Runtime, layers, service_fn};
use payload::{Payloads, ReadPayloadLayer};

/// mimalloc: the stage pipeline allocates many small values; glibc malloc was a quarter of its
/// profile (see the README benchmarks). Freed memory stays with the process between
/// invocations (`deltasink::allocator`).
#[global_allocator]
static GLOBAL: deltasink::allocator::MiMalloc = deltasink::allocator::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    deltasink::telemetry::init();
    if !deltasink::allocator::keep_freed_memory() {
        tracing::warn!(
            "glibc refused the malloc settings; freed memory may be returned to the kernel"
        );
    }
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
    // The event is read by `ReadPayloadLayer`, not by the runtime (see `payload`): the
    // handler's own payload is a placeholder.
    let payloads = Payloads::default();
    let handler = {
        let payloads = payloads.clone();
        service_fn(move |event: LambdaEvent<serde::de::IgnoredAny>| {
            let (stager, payloads) = (stager.clone(), payloads.clone());
            async move { handle(&stager, &payloads, event, emit_metrics).await }
        })
    };
    Runtime::new(handler)
        .layer(ReadPayloadLayer(payloads))
        .layer(layers::TracingLayer::new())
        .run()
        .await
}

async fn handle(
    stager: &Stager<S3Store, RegistryClient>,
    payloads: &Payloads,
    invocation: LambdaEvent<serde::de::IgnoredAny>,
    emit_metrics: bool,
) -> Result<StageSummary, Error> {
    let event = payloads.take(&invocation.context.request_id).map_err(|e| {
        tracing::error!(error = %e, "the invocation payload is not a Kafka event");
        e
    })?;
    let summary = stager.stage(&event).await.map_err(|e| {
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
