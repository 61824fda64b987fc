//! Load end to end: sample events → stage → local S3 → load → the local SQL warehouse (Sail,
//! Delta tables) → query the tables back through the Statement Execution API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use deltasink::config::{LoadConfig, StageConfig};
use deltasink::load::loader::{LoadReport, Loader};
use deltasink::load::notifications::Announced;
use deltasink::registry::RegistryClient;
use deltasink::stage::Stager;
use deltasink::store::{ObjectStore, S3Store};
use deltasink::warehouse::{ClientOptions, Idempotency, WarehouseClient};
use deltasink_tests::*;

struct Env {
    store: S3Store,
    bucket: String,
    /// A schema of its own, so tests do not share tables.
    schema: String,
}

async fn env(test: &str) -> Result<Env> {
    let store = local_s3().await?;
    let bucket = fresh_bucket(&store, test).await?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let schema = format!("t_{test}_{nanos}");
    Ok(Env {
        store,
        bucket,
        schema,
    })
}

impl Env {
    /// Routes every topic's last part into this test's schema: `shop.public.customers` →
    /// `<schema>.customers`.
    fn routes(&self) -> String {
        format!(
            r#"[{{"regex": "(?:.*\\.)?([^.]+)", "table": "{}.{{1}}"}}]"#,
            self.schema
        )
    }
}

fn warehouse_vars(env: &Env, extra: &[(&str, &str)]) -> Result<HashMap<String, String>> {
    let mut vars = stage_vars(&env.bucket, extra);
    for name in [
        "DATABRICKS_HOST",
        "DATABRICKS_HTTP_PATH",
        "DATABRICKS_TOKEN",
    ] {
        vars.insert(
            name.to_string(),
            std::env::var(name)
                .map_err(|_| anyhow::anyhow!("{name} is not set: run scripts/test.sh"))?,
        );
    }
    vars.insert("DELTASINK_CATALOG".into(), "main".into());
    vars.insert("DELTASINK_SCHEMA".into(), env.schema.clone());
    Ok(vars)
}

fn loader(env: &Env, extra: &[(&str, &str)]) -> Result<Loader<S3Store, WarehouseClient>> {
    let config = LoadConfig::from_vars(&warehouse_vars(env, extra)?)?;
    let client = WarehouseClient::new(
        config.connection.clone(),
        config.credentials.clone(),
        ClientOptions::default(),
    )?;
    Ok(Loader::new(config, env.store.clone(), client))
}

async fn stage(env: &Env, event: &str, extra: &[(&str, &str)]) -> Result<Vec<Announced>> {
    let routes = env.routes();
    let mut vars = stage_vars(&env.bucket, extra);
    vars.insert("DELTASINK_ROUTES".into(), routes);
    let config = Arc::new(StageConfig::from_vars(&vars)?);
    let registry = config
        .registry
        .clone()
        .map(RegistryClient::new)
        .transpose()?;
    let summary = Stager::new(config, env.store.clone(), registry)
        .stage(&kafka_event(event)?)
        .await?;
    Ok(summary
        .keys
        .into_iter()
        .filter(|k| k.starts_with("staging/"))
        .map(|key| Announced {
            bucket: env.bucket.clone(),
            key,
            message_id: Some(format!("m-{event}")),
        })
        .collect())
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(240)
}

async fn query(
    loader: &Loader<S3Store, WarehouseClient>,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>> {
    Ok(loader
        .warehouse
        .execute(sql, &[], Idempotency::Safe, deadline())
        .await?
        .rows)
}

/// `COUNT(*)` of a table in the test's schema.
async fn count_rows(
    loader: &Loader<S3Store, WarehouseClient>,
    env: &Env,
    table: &str,
) -> Result<Option<String>> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM `main`.`{}`.`{table}`",
        env.schema
    );
    let rows = query(loader, &sql).await?;
    Ok(rows.first().and_then(|r| r.first()).cloned().flatten())
}

fn assert_loaded(report: &LoadReport) {
    for t in &report.tables {
        assert!(t.error.is_none(), "{}: {:?}", t.table, t.error);
    }
    assert!(report.failed_messages.is_empty(), "{report:?}");
}

#[tokio::test]
async fn debezium_changes_converge_to_the_source_state() -> Result<()> {
    let env = env("upsert").await?;
    let loader = loader(&env, &[])?;
    let announced = stage(&env, "msk-debezium-json.json", &[]).await?;
    let report = loader.load(announced.clone(), deadline()).await;
    assert_loaded(&report);
    // Cold start: DESCRIBE (table missing), CREATE, MERGE.
    assert_eq!(report.tables[0].statements, 3, "{report:?}");

    // The model: the last change per key in offset order (keys stay in one partition).
    let event = kafka_event("msk-debezium-json.json")?;
    let mut model: HashMap<i64, (bool, String)> = HashMap::new();
    let mut records: Vec<_> = event.records.values().flatten().collect();
    records.sort_by_key(|r| (r.partition, r.offset));
    for r in records {
        let Some(value) = &r.value else { continue };
        let bytes = base64_decode(value.as_bytes())?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        let deleted = v["op"] == "d";
        let image = if deleted { &v["before"] } else { &v["after"] };
        let id = image["id"].as_i64().unwrap_or_default();
        model.insert(
            id,
            (
                deleted,
                image["email"].as_str().unwrap_or_default().to_string(),
            ),
        );
    }
    let rows = query(
        &loader,
        &format!(
            "SELECT `id`, `_cdc_deleted`, `email` FROM `main`.`{}`.`customers` ORDER BY `id`",
            env.schema
        ),
    )
    .await?;
    let table: HashMap<i64, (bool, String)> = rows
        .iter()
        .map(|r| {
            let id = r[0]
                .as_deref()
                .unwrap_or_default()
                .parse()
                .unwrap_or_default();
            (
                id,
                (
                    r[1].as_deref() == Some("true"),
                    r[2].clone().unwrap_or_default(),
                ),
            )
        })
        .collect();
    assert_eq!(table, model);
    assert!(
        model.values().any(|(deleted, _)| *deleted),
        "the sample has a delete"
    );

    // Staged files are deleted after the load; a duplicate delivery loads nothing twice.
    assert!(env.store.list(&env.bucket, "staging/").await?.is_empty());
    let again = loader.load(announced, deadline()).await;
    assert_loaded(&again);
    assert_eq!(again.tables[0].already_loaded, 2);
    assert_eq!(again.tables[0].statements, 0);
    Ok(())
}

#[tokio::test]
async fn steady_state_is_one_statement_per_table_and_retries_load_nothing_twice() -> Result<()> {
    let env = env("steady").await?;
    let loader = loader(&env, &[("DELTASINK_PURGE", "false")])?;
    let announced = stage(&env, "msk-plain-json.json", &[]).await?;
    let first = loader.load(announced.clone(), deadline()).await;
    assert_loaded(&first);
    // Purge off: each loaded file carries a loaded marker (maintain's re-drive skips it).
    let mut markers: Vec<String> = env
        .store
        .list(&env.bucket, "_deltasink/loaded/")
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    markers.sort();
    let mut expected: Vec<String> = announced
        .iter()
        .map(|a| format!("_deltasink/loaded/{}", a.key))
        .collect();
    expected.sort();
    assert_eq!(markers, expected);
    // Purge off: the files stay; loading them again (a crash between load and delete, or a
    // duplicate notification) is one statement and inserts nothing.
    let second = loader.load(announced, deadline()).await;
    assert_loaded(&second);
    assert_eq!(second.tables[0].statements, 1, "{second:?}");
    assert_eq!(
        count_rows(&loader, &env, "clickstream").await?.as_deref(),
        Some("30")
    );
    Ok(())
}

#[tokio::test]
async fn connect_avro_and_raw_samples_load() -> Result<()> {
    let env = env("formats").await?;
    let url = registry_url()?;
    let topics = r#"{"shop.public.orders": {"key_format": "connect-json", "value_format": "connect-json"}, "shop.public.payments": {"key_format": "avro", "value_format": "avro"}, "ingest.payments_raw": {"key_format": "string"}}"#;
    let tables = format!(r#"{{"{}.payments_raw": {{"mode": "raw"}}}}"#, env.schema);
    let tables = tables.as_str();
    let extra = [
        ("DELTASINK_TOPICS", topics),
        ("DELTASINK_TABLES", tables),
        ("DELTASINK_SCHEMA_REGISTRY_URL", url.as_str()),
    ];
    let loader = loader(&env, &[("DELTASINK_TABLES", tables)])?;
    let mut announced = Vec::new();
    for event in ["msk-debezium-connect.json", "msk-avro.json", "msk-raw.json"] {
        announced.extend(stage(&env, event, &extra).await?);
    }
    let report = loader.load(announced, deadline()).await;
    assert_loaded(&report);
    assert_eq!(report.tables.len(), 3);
    let raw = query(
        &loader,
        &format!(
            "SELECT COUNT(*) AS n, MIN(`record_source`) AS s FROM `main`.`{}`.`payments_raw`",
            env.schema
        ),
    )
    .await?;
    assert_eq!(raw[0][0].as_deref(), Some("10"));
    assert_eq!(raw[0][1].as_deref(), Some("stream"));
    let amount = query(
        &loader,
        &format!(
            "SELECT CAST(SUM(`amount`) AS STRING) AS s, COUNT(*) AS n FROM `main`.`{}`.`orders`",
            env.schema
        ),
    )
    .await?;
    assert!(
        amount[0][0].as_deref().is_some_and(|s| s.contains('.')),
        "{amount:?}"
    );
    Ok(())
}

fn base64_decode(text: &[u8]) -> Result<Vec<u8>> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.decode(text)?)
}

#[tokio::test]
async fn copy_into_strategy_loads_each_file_once() -> Result<()> {
    let env = env("copy_into").await?;
    let loader = loader(
        &env,
        &[
            ("DELTASINK_APPEND_STRATEGY", "copy_into"),
            ("DELTASINK_PURGE", "false"),
        ],
    )?;
    let announced = stage(&env, "msk-plain-json.json", &[]).await?;
    assert_eq!(announced.len(), 3);
    let first = loader.load(announced.clone(), deadline()).await;
    assert_loaded(&first);
    // Cold: DESCRIBE, CREATE, then one COPY INTO per directory (the three files are in three
    // partition directories).
    assert_eq!(first.tables[0].statements, 5, "{first:?}");
    // The same files again: COPY INTO skips files it already loaded.
    let second = loader.load(announced, deadline()).await;
    assert_loaded(&second);
    assert_eq!(
        count_rows(&loader, &env, "clickstream").await?.as_deref(),
        Some("30")
    );
    Ok(())
}

#[tokio::test]
async fn an_unreadable_file_fails_only_its_own_message() -> Result<()> {
    let env = env("unreadable").await?;
    let loader = loader(&env, &[])?;
    let mut announced = stage(&env, "msk-plain-json.json", &[]).await?;
    let good: Vec<String> = announced.iter().map(|a| a.key.clone()).collect();
    // A truncated object under the same table, announced in its own SQS message.
    let table_dir = good[0]
        .rsplit_once('/')
        .map(|(dir, _)| dir.to_string())
        .unwrap_or_default();
    let bad = format!("{table_dir}/broken.parquet");
    env.store
        .put(
            &env.bucket,
            &bad,
            bytes::Bytes::from_static(b"PAR1 truncated"),
            "application/octet-stream",
        )
        .await?;
    announced.push(Announced {
        bucket: env.bucket.clone(),
        key: bad.clone(),
        message_id: Some("bad-message".into()),
    });
    let report = loader.load(announced, deadline()).await;
    assert_eq!(report.failed_messages, ["bad-message"], "{report:?}");
    let table = &report.tables[0];
    assert!(table.error.is_none(), "{report:?}");
    assert_eq!(table.unloadable.len(), 1, "{report:?}");
    assert_eq!(table.unloadable[0].key, bad);
    // The good files loaded and are gone; the bad one stays for maintain's re-drive.
    let staged: Vec<String> = env
        .store
        .list(&env.bucket, "staging/")
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(staged, [bad]);
    assert_eq!(
        count_rows(&loader, &env, "clickstream").await?.as_deref(),
        Some("30")
    );
    Ok(())
}
