//! Shared support for the end-to-end tests: clients for the local services that
//! `scripts/services.sh start` runs (local S3 via moto_server, the local schema registry and
//! the local SQL warehouse), sample events, and Parquet readers.
//!
//! Tests read the service endpoints from the environment `scripts/services.sh env` prints
//! (`scripts/test.sh` sets it up); without it they fail with a message that says so.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    KafkaEvent::from_json(&bytes).with_context(|| format!("parsing {}", path.display()))
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

// ---- Generated Kafka events -----------------------------------------------------------------

/// One Kafka record of a generated event: the key and value as bytes (base64-encoded into
/// the event), the coordinates as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// An MSK event (`aws:kafka`, the shape of `events/msk-*.json`) holding `records`, grouped
/// by `<topic>-<partition>` in the order given.
pub fn msk_event(records: &[GenRecord]) -> Result<KafkaEvent> {
    use base64::Engine as _;
    let b64 = |bytes: &Option<Vec<u8>>| {
        bytes
            .as_ref()
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
    };
    let mut groups = serde_json::Map::new();
    for r in records {
        let group = groups
            .entry(format!("{}-{}", r.topic, r.partition))
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(list) = group {
            list.push(serde_json::json!({
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp_ms,
                "timestampType": "CREATE_TIME",
                "key": b64(&r.key),
                "value": b64(&r.value),
                "headers": [],
            }));
        }
    }
    let event = serde_json::json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/demo-cluster/3f2a9c1e-7b4d-4e8a-9f61-2c5d8e0b7a43-1",
        "bootstrapServers": "b-1.demo-cluster.k7x2qp.c2.kafka.us-east-1.amazonaws.com:9098",
        "records": groups,
    });
    Ok(serde_json::from_value(event)?)
}

/// A Debezium PostgreSQL change event value as the JSON converter writes it with
/// `schemas.enable=false` (the shape of `events/msk-debezium-json.json`). `lsn: None` leaves
/// the source block without a log position (the version is then the commit timestamp).
pub fn debezium_value(
    table: &str,
    op: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
    source_ts_ms: i64,
    lsn: Option<i64>,
) -> Vec<u8> {
    let mut source = serde_json::json!({
        "version": "2.5.0.Final",
        "connector": "postgresql",
        "name": "shop",
        "ts_ms": source_ts_ms,
        "snapshot": if op == "r" { "true" } else { "false" },
        "db": "shop",
        "sequence": serde_json::Value::Null,
        "schema": "public",
        "table": table,
        "txId": 700 + source_ts_ms % 1000,
        "xmin": serde_json::Value::Null,
    });
    if let Some(lsn) = lsn {
        source["lsn"] = lsn.into();
        source["sequence"] = format!("[null,\"{lsn}\"]").into();
    }
    let value = serde_json::json!({
        "before": before.cloned(),
        "after": after.cloned(),
        "source": source,
        "op": op,
        "ts_ms": source_ts_ms + 120,
        "transaction": serde_json::Value::Null,
    });
    value.to_string().into_bytes()
}

/// A tiny seeded xorshift64* generator for test plans (no `rand` in the workspace).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

// ---- A test's own bucket, schema, stager and loaders ------------------------------------------

/// One test's corner of the local services: a bucket and a schema of its own.
pub struct Harness {
    pub store: S3Store,
    pub bucket: String,
    /// A schema of its own, so tests do not share tables.
    pub schema: String,
}

impl Harness {
    pub async fn new(test: &str) -> Result<Harness> {
        let store = local_s3().await?;
        let bucket = fresh_bucket(&store, test).await?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let n = BUCKETS.fetch_add(1, Ordering::SeqCst);
        Ok(Harness {
            store,
            bucket,
            schema: format!("t_{test}_{nanos}_{n}"),
        })
    }

    /// Routes every topic's last part into this test's schema: `shop.public.customers` →
    /// `<schema>.customers`.
    pub fn routes(&self) -> String {
        format!(
            r#"[{{"regex": "(?:.*\\.)?([^.]+)", "table": "{}.{{1}}"}}]"#,
            self.schema
        )
    }

    /// The quoted three-part name of this test's table `name`.
    pub fn table(&self, name: &str) -> String {
        format!("`main`.`{}`.`{name}`", self.schema)
    }

    /// Stages `event` with the stage defaults plus `extra`; returns the summary and the
    /// staged files' keys (not the error files).
    pub async fn stage(
        &self,
        event: &KafkaEvent,
        extra: &[(&str, &str)],
    ) -> Result<(deltasink::stage::StageSummary, Vec<String>)> {
        let mut vars = stage_vars(&self.bucket, extra);
        vars.entry("DELTASINK_ROUTES".into())
            .or_insert_with(|| self.routes());
        let config = std::sync::Arc::new(deltasink::config::StageConfig::from_vars(&vars)?);
        let registry = config
            .registry
            .clone()
            .map(deltasink::registry::RegistryClient::new)
            .transpose()?;
        let summary = deltasink::stage::Stager::new(config, self.store.clone(), registry)
            .stage(event)
            .await?;
        let keys = summary
            .keys
            .iter()
            .filter(|k| k.starts_with("staging/"))
            .cloned()
            .collect();
        Ok((summary, keys))
    }

    /// Load configuration variables: the local warehouse of `scripts/services.sh env`, or the
    /// one at `host` (`http://127.0.0.1:<port>`), catalog `main`, this test's schema, plus
    /// `extra`.
    pub fn load_vars(
        &self,
        host: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<HashMap<String, String>> {
        let mut vars = stage_vars(&self.bucket, &[]);
        for name in [
            "DATABRICKS_HOST",
            "DATABRICKS_HTTP_PATH",
            "DATABRICKS_TOKEN",
        ] {
            vars.insert(name.to_string(), require_env(name)?);
        }
        if let Some(host) = host {
            vars.insert("DATABRICKS_HOST".into(), host.to_string());
        }
        vars.insert("DELTASINK_CATALOG".into(), "main".into());
        vars.insert("DELTASINK_SCHEMA".into(), self.schema.clone());
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Ok(vars)
    }

    /// A loader (a cold Lambda instance) with its own warehouse client.
    pub fn loader(
        &self,
        host: Option<&str>,
        options: deltasink::warehouse::ClientOptions,
        extra: &[(&str, &str)],
    ) -> Result<deltasink::load::loader::Loader<S3Store, deltasink::warehouse::WarehouseClient>>
    {
        let config = deltasink::config::LoadConfig::from_vars(&self.load_vars(host, extra)?)?;
        let client = deltasink::warehouse::WarehouseClient::new(
            config.connection.clone(),
            config.credentials.clone(),
            options,
        )?;
        Ok(deltasink::load::loader::Loader::new(
            config,
            self.store.clone(),
            client,
        ))
    }

    /// The notification of staged file `key` in SQS message `message_id`.
    pub fn announce(
        &self,
        key: &str,
        message_id: &str,
    ) -> deltasink::load::notifications::Announced {
        deltasink::load::notifications::Announced {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message_id: Some(message_id.to_string()),
        }
    }

    /// The keys under `staging/`, sorted.
    pub async fn staged(&self) -> Result<Vec<String>> {
        let mut keys: Vec<String> = self
            .store
            .list(&self.bucket, "staging/")
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// A deadline far enough away for any test statement.
pub fn long_deadline() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(240)
}

/// Runs a query and returns its rows.
pub async fn query(
    warehouse: &impl deltasink::warehouse::StatementExecutor,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>> {
    Ok(warehouse
        .execute(
            sql,
            &[],
            deltasink::warehouse::Idempotency::Safe,
            long_deadline(),
        )
        .await?
        .rows)
}

/// Fails with the report when a table did not load or a message failed.
pub fn check_loaded(report: &deltasink::load::loader::LoadReport) -> Result<()> {
    if report.failed_messages.is_empty()
        && report.refused.is_empty()
        && report.tables.iter().all(|t| t.error.is_none())
    {
        Ok(())
    } else {
        bail!("load failed: {report:#?}")
    }
}

/// Log output captured in memory: a `tracing_subscriber` writer (`with_writer(capture.clone())`)
/// whose clones all write into one buffer.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
