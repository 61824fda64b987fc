//! Shared support for the end-to-end tests: clients for the local services that
//! `scripts/services.sh start` runs (local S3 via moto_server, the local schema registry and
//! the local SQL warehouse), sample events, and Parquet readers.
//!
//! Tests read the service endpoints from the environment `scripts/services.sh env` prints
//! (`scripts/test.sh` sets it up); without it they fail with a message that says so.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use deltasink::kafka::KafkaEvent;
use deltasink::store::{ObjectStore, S3Store};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Reads `events/<name>` as a Kafka event.
pub fn kafka_event(name: &str) -> Result<KafkaEvent> {
    let path = repo_root().join("events").join(name);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

fn require_env(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => bail!(
            "{name} is not set: the end-to-end tests need the local services. Run them with \
             `scripts/test.sh`, or `scripts/services.sh start && eval \"$(scripts/services.sh env)\"` first"
        ),
    }
}

/// The local S3 server's endpoint.
pub fn s3_endpoint() -> Result<String> {
    require_env("AWS_ENDPOINT_URL")
}

/// The local schema registry's URL.
pub fn registry_url() -> Result<String> {
    require_env("DELTASINK_SCHEMA_REGISTRY_URL")
}

/// An S3 store on the local server.
pub async fn local_s3() -> Result<S3Store> {
    s3_endpoint()?;
    Ok(S3Store::from_env().await)
}

static BUCKETS: AtomicUsize = AtomicUsize::new(0);

/// Creates a bucket of its own for one test, so tests run in parallel without sharing state.
pub async fn fresh_bucket(store: &S3Store, test: &str) -> Result<String> {
    let n = BUCKETS.fetch_add(1, Ordering::SeqCst);
    let name = format!(
        "t-{}-{}-{n}",
        test.replace('_', "-").chars().take(30).collect::<String>(),
        std::process::id()
    );
    store
        .client()
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .with_context(|| format!("creating bucket {name} on the local S3 server"))?;
    Ok(name)
}

/// Every object under `prefix` with its bytes, by key.
pub async fn objects(store: &S3Store, bucket: &str, prefix: &str) -> Result<Vec<(String, Bytes)>> {
    let mut out = Vec::new();
    for info in store.list(bucket, prefix).await? {
        let body = store.get(bucket, &info.key).await?;
        out.push((info.key, body));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// A Parquet file's rows as one batch, and its key-value metadata.
pub fn read_parquet(body: &Bytes) -> Result<(RecordBatch, HashMap<String, String>)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(body.clone())?;
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let schema = builder.schema().clone();
    let batches = builder
        .build()?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((arrow::compute::concat_batches(&schema, &batches)?, kv))
}

/// Stage configuration variables: the bucket plus `extra`.
pub fn stage_vars(bucket: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    vars.insert("DELTASINK_STAGING_BUCKET".to_string(), bucket.to_string());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    vars
}
