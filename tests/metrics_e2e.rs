//! Metrics and logs end to end: a generated batch → stage → local S3 → load → the local SQL
//! warehouse, then a re-drive by maintain. The EMF line of each invocation must be valid and
//! its values must match what happened (records, bytes, rows, files, statements, rows the
//! tables hold, lags within the measured bounds); the JSON log lines must carry the fields of
//! their spans (table, topic, partition, offsets, s3_key, statement_id).

use std::collections::HashMap;

use anyhow::{Context, Result, ensure};
use deltasink::config::MaintainConfig;
use deltasink::maintain::{Job, Maintainer, ManualClock};
use deltasink::metrics::{self, Metrics};
use deltasink::telemetry::JsonLines;
use deltasink::warehouse::{ClientOptions, WarehouseClient};
use deltasink_tests::*;
use serde_json::{Value as Json, json};
use tracing_subscriber::fmt::format::JsonFields;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The captured log lines, each parsed as JSON.
fn json_lines(logs: &LogCapture) -> Result<Vec<Json>> {
    logs.text()
        .lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
        .collect()
}

/// The captured log lines whose message is `message`.
fn with_message(logs: &LogCapture, message: &str) -> Result<Vec<Json>> {
    Ok(json_lines(logs)?
        .into_iter()
        .filter(|l| l["message"] == message)
        .collect())
}

/// The EMF line `emit` would print, parsed, with the checks every line must pass.
fn emf(m: &Metrics) -> Result<Json> {
    let mut out = Vec::new();
    metrics::write_emf(m, now_ms(), &mut out)?;
    let line = String::from_utf8(out)?;
    ensure!(
        line.ends_with('\n') && line.matches('\n').count() == 1,
        "{line}"
    );
    let doc: Json = serde_json::from_str(&line)?;
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    ensure!(directive["Namespace"] == "deltasink", "{doc}");
    ensure!(directive["Dimensions"] == json!([["Function"]]), "{doc}");
    ensure!(doc["_aws"]["Timestamp"].is_i64(), "{doc}");
    for d in directive["Metrics"].as_array().context("Metrics")? {
        let name = d["Name"].as_str().context("Name")?;
        ensure!(doc[name].is_u64(), "{name} has no value: {doc}");
    }
    Ok(doc)
}

async fn count(warehouse: &WarehouseClient, table: &str) -> Result<u64> {
    let rows = query(warehouse, &format!("SELECT COUNT(*) FROM {table}")).await?;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .context("no count")?
        .parse::<u64>()
        .context("count")
}

fn debezium(id: i64, op: &str, name: &str, ts: i64) -> Vec<u8> {
    let row = json!({"id": id, "name": name});
    let (before, after) = match op {
        "d" => (Some(&row), None),
        _ => (None, Some(&row)),
    };
    debezium_value("orders", op, before, after, ts, None)
}

#[tokio::test]
async fn metrics_match_what_stage_load_and_redrive_did() -> Result<()> {
    let h = Harness::new("metrics").await?;
    let t = now_ms();
    let key = |id: i64| Some(json!({"id": id}).to_string().into_bytes());
    let rec = |topic: &str, partition: i32, offset: i64, ts: i64, k, v| GenRecord {
        topic: topic.into(),
        partition,
        offset,
        timestamp_ms: ts,
        key: k,
        value: v,
    };
    let orders = "shop.public.orders";
    let clicks = "web.clicks";
    let records = vec![
        // Upsert table, two partitions; the oldest staged row is not the first of its file.
        rec(
            orders,
            0,
            10,
            t - 30_000,
            key(1),
            Some(debezium(1, "c", "a", t - 30_000)),
        ),
        rec(
            orders,
            0,
            11,
            t - 50_000,
            key(2),
            Some(debezium(2, "c", "b", t - 50_000)),
        ),
        rec(
            orders,
            0,
            12,
            t - 20_000,
            key(1),
            Some(debezium(1, "u", "a2", t - 20_000)),
        ),
        rec(
            orders,
            0,
            13,
            t - 10_000,
            key(2),
            Some(debezium(2, "d", "b", t - 10_000)),
        ),
        // The Debezium tombstone after the delete: skipped.
        rec(orders, 0, 14, t - 10_000, key(2), None),
        rec(
            orders,
            1,
            5,
            t - 40_000,
            key(3),
            Some(debezium(3, "c", "c", t - 40_000)),
        ),
        // Append table (no key); one record that is not JSON goes to the errors prefix and
        // is the batch's oldest.
        rec(
            clicks,
            0,
            100,
            t - 15_000,
            None,
            Some(br#"{"page": "/"}"#.to_vec()),
        ),
        rec(
            clicks,
            0,
            101,
            t - 90_000,
            None,
            Some(b"{not json".to_vec()),
        ),
        rec(
            clicks,
            0,
            102,
            t - 5_000,
            None,
            Some(br#"{"page": "/b"}"#.to_vec()),
        ),
    ];
    let bytes_in: usize = records
        .iter()
        .map(|r| r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len))
        .sum();
    let oldest_in_batch = t - 90_000;
    let oldest_staged = t - 50_000;

    let logs = LogCapture::new();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("deltasink=info"))
        .with_writer(logs.clone())
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    // ---- stage ----
    let before = now_ms();
    let (summary, keys) = h.stage(&msk_event(&records)?, &[]).await?;
    let after = now_ms();
    let m = summary.metrics();
    let doc = emf(&m)?;
    ensure!(doc["Function"] == "stage", "{doc}");
    ensure!(
        keys.len() == 3,
        "one file per table and partition: {keys:?}"
    );
    let expected = [
        ("RecordsIn", 9),
        ("BytesIn", bytes_in as u64),
        ("RowsStaged", 7),
        ("FilesStaged", 3),
        ("RecordsToErrors", 1),
    ];
    for (name, value) in expected {
        ensure!(m.get(name) == Some(value), "{name}: {doc}");
    }
    let lag = m
        .get("StageLagMs")
        .with_context(|| format!("StageLagMs: {summary:?}"))?;
    let (low, high) = (
        (before - oldest_in_batch) as u64,
        (after - oldest_in_batch) as u64,
    );
    ensure!(
        low <= lag && lag <= high,
        "StageLagMs {lag} not in {low}..={high}"
    );

    // Every staged file's log line names its table, topic-partition, offsets and key.
    let staged = with_message(&logs, "staged")?;
    ensure!(staged.len() == 3, "{staged:?}");
    let line = staged
        .iter()
        .find(|l| l["topic"] == orders && l["partition"] == 0)
        .context("the log line of orders partition 0")?;
    ensure!(line["span"] == "stage_file", "{line}");
    ensure!(line["table"] == format!("{}.orders", h.schema), "{line}");
    ensure!(line["offsets"] == "10-13", "{line}");
    ensure!(line["rows"] == 4, "{line}");
    ensure!(keys.iter().any(|k| line["s3_key"] == k.as_str()), "{line}");
    ensure!(
        line["records"] == 9 && line["partitions"] == 3,
        "batch fields: {line}"
    );

    // ---- load ----
    let loader = h.loader(None, ClientOptions::default(), &[])?;
    let announced: Vec<_> = keys.iter().map(|k| h.announce(k, "m-1")).collect();
    let before = now_ms();
    let report = loader.load(announced.clone(), long_deadline()).await;
    let after = now_ms();
    check_loaded(&report)?;
    let m = report.metrics();
    let doc = emf(&m)?;
    ensure!(doc["Function"] == "load", "{doc}");
    ensure!(m.get("FilesLoaded") == Some(3), "{doc}");
    // Cold start, per table: DESCRIBE (missing), CREATE, the load statement.
    ensure!(report.tables.len() == 2, "{report:?}");
    ensure!(m.get("StatementsRun") == Some(6), "{doc}");
    ensure!(m.get("Retries") == Some(report.retries), "{doc}");
    let statement_ms = m
        .get("StatementDurationMs")
        .context("StatementDurationMs")?;
    ensure!(statement_ms <= (after - before) as u64, "{doc}");

    // The rows the statements reported are the rows the tables now hold: keys 1 and 3 live,
    // key 2 a tombstone (an insert of the deleted row), and the two clicks.
    let held = count(&loader.warehouse, &h.table("orders")).await?
        + count(&loader.warehouse, &h.table("clicks")).await?;
    ensure!(held == 5, "rows held: {held}");
    ensure!(m.get("RowsInserted") == Some(held), "{doc}");
    ensure!(m.get("RowsUpdated") == Some(0), "{doc}");
    ensure!(m.get("RowsDeleted") == Some(0), "{doc}");

    let lag = m.get("CommitLagMs").context("CommitLagMs")?;
    let (low, high) = (
        (before - oldest_staged) as u64,
        (after - oldest_staged) as u64,
    );
    ensure!(
        low <= lag && lag <= high,
        "CommitLagMs {lag} not in {low}..={high}"
    );

    // Log lines within a table's load carry the table; statements carry their id.
    let loaded = with_message(&logs, "table loaded")?;
    ensure!(loaded.len() == 2, "{loaded:?}");
    for line in &loaded {
        ensure!(line["span"] == "load_table", "{line}");
        ensure!(
            line["files"].is_u64() && line["rows_inserted"].is_u64(),
            "{line}"
        );
    }
    // Every statement the loader ran (the DESCRIBEs of the missing tables fail) logged its
    // id within its table's span. (The COUNT queries above ran outside the loader.)
    let statements: Vec<Json> = json_lines(&logs)?
        .into_iter()
        .filter(|l| {
            l["message"] == "statement succeeded" || l["message"] == "statement did not succeed"
        })
        .filter(|l| l.get("span").is_some())
        .collect();
    ensure!(statements.len() == 6, "{statements:?}");
    for line in &statements {
        ensure!(line["statement_id"].is_string(), "{line}");
        ensure!(
            line["table"] == format!("{}.orders", h.schema)
                || line["table"] == format!("{}.clicks", h.schema),
            "{line}"
        );
    }

    // A second delivery of the same notifications: the files are gone, nothing runs.
    let again = loader.load(announced, long_deadline()).await;
    check_loaded(&again)?;
    let m = again.metrics();
    emf(&m)?;
    ensure!(m.get("FilesLoaded") == Some(0), "{m:?}");
    ensure!(m.get("StatementsRun") == Some(0), "{m:?}");
    for name in ["CommitLagMs", "RowsInserted"] {
        ensure!(m.get(name).is_none(), "{name}: {m:?}");
    }

    // ---- maintain: a batch whose notifications were lost is re-driven ----
    let lost = vec![
        rec(
            orders,
            0,
            15,
            t - 1_000,
            key(4),
            Some(debezium(4, "c", "d", t - 1_000)),
        ),
        rec(
            clicks,
            0,
            103,
            t - 1_000,
            None,
            Some(br#"{"page": "/c"}"#.to_vec()),
        ),
    ];
    let (_, lost_keys) = h.stage(&msk_event(&lost)?, &[]).await?;
    ensure!(lost_keys.len() == 2, "{lost_keys:?}");
    let config = MaintainConfig::from_vars(&h.load_vars(None, &[])?)?;
    let client = WarehouseClient::new(
        config.load.connection.clone(),
        config.load.credentials.clone(),
        ClientOptions::default(),
    )?;
    let clock = ManualClock::at(now_ms() + 24 * 3_600_000);
    let maintainer = Maintainer::new(config, h.store.clone(), client, &clock);
    let report = maintainer
        .run(&[Job::Redrive, Job::Purge], long_deadline())
        .await;
    ensure!(report.ok(), "{report:?}");
    let m = report.metrics();
    let doc = emf(&m)?;
    ensure!(doc["Function"] == "maintain", "{doc}");
    ensure!(m.get("FilesRedriven") == Some(2), "{doc}");
    // The load deleted every file it loaded: nothing left for purge.
    ensure!(m.get("FilesPurged") == Some(0), "{doc}");
    ensure!(
        m.get("TombstonesDeleted").is_none() && m.get("BackfillRows").is_none(),
        "jobs that did not run: {doc}"
    );
    ensure!(
        count(&loader.warehouse, &h.table("orders")).await?
            + count(&loader.warehouse, &h.table("clicks")).await?
            == held + 2
    );
    let jobs: HashMap<String, usize> =
        with_message(&logs, "job finished")?
            .iter()
            .fold(HashMap::new(), |mut acc, l| {
                *acc.entry(l["job"].as_str().unwrap_or_default().to_string())
                    .or_default() += 1;
                acc
            });
    ensure!(
        jobs.get("redrive") == Some(&1) && jobs.get("purge") == Some(&1),
        "{jobs:?}"
    );
    Ok(())
}
