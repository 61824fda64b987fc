//! The maintain function end to end: stage → local S3 → (load) → the local SQL warehouse, with
//! a manual clock standing in for the passing hours.
//!
//! What must hold: a staged file whose notification was dropped is loaded by re-drive exactly
//! once (and a file that can never load ends in the errors prefix, not in limbo); purge never
//! removes a file that was not loaded; tombstones older than the window disappear and younger
//! ones stay; the backfill waits while the overlap is short, runs once it is met or anyway
//! after the deadline, never runs twice, finishes after a crash without duplicates,
//! deduplicates on nested columns and leaves stream rows untouched.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Result, ensure};
use bytes::Bytes;
use deltasink::config::MaintainConfig;
use deltasink::maintain::{BackfillStatus, Maintainer, ManualClock};
use deltasink::store::{ObjectStore, S3Store};
use deltasink::warehouse::{
    ClientOptions, Idempotency, Param, StatementExecutor, StatementResult, WarehouseClient,
    WarehouseError,
};
use deltasink_tests::*;
use serde_json::json;

/// 2023-11-14T22:13:20Z: the Kafka time of the stream rows of the backfill tests.
const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn maintainer<'c, E: StatementExecutor>(
    h: &Harness,
    extra: &[(&str, &str)],
    clock: &'c ManualClock,
    wrap: impl FnOnce(WarehouseClient) -> E,
) -> Result<Maintainer<S3Store, E, &'c ManualClock>> {
    let config = MaintainConfig::from_vars(&h.load_vars(None, extra)?)?;
    let client = WarehouseClient::new(
        config.load.connection.clone(),
        config.load.credentials.clone(),
        ClientOptions::default(),
    )?;
    Ok(Maintainer::new(
        config,
        h.store.clone(),
        wrap(client),
        clock,
    ))
}

fn record(
    topic: &str,
    partition: i32,
    offset: i64,
    ts: i64,
    key: Option<serde_json::Value>,
    value: serde_json::Value,
) -> GenRecord {
    GenRecord {
        topic: topic.to_string(),
        partition,
        offset,
        timestamp_ms: ts,
        key: key.map(|k| k.to_string().into_bytes()),
        value: Some(value.to_string().into_bytes()),
    }
}

fn text(rows: &[Vec<Option<String>>]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

// ---- re-drive ---------------------------------------------------------------------------------

#[tokio::test]
async fn redrive_loads_a_stranded_file_exactly_once() -> Result<()> {
    let h = Harness::new("mredrive").await?;
    let tables = format!(r#"{{"{}.clicks": {{"mode": "append"}}}}"#, h.schema);
    let settings = [("DELTASINK_TABLES", tables.as_str())];
    let records: Vec<GenRecord> = (0..20)
        .map(|i| {
            record(
                "web.clicks",
                (i % 2) as i32,
                100 + i,
                T0 + i,
                None,
                json!({"id": i, "page": format!("/p{i}")}),
            )
        })
        .collect();
    let (_, keys) = h.stage(&msk_event(&records)?, &settings).await?;
    ensure!(keys.len() == 2, "one file per partition: {keys:?}");
    // A staged file that is not Parquet at all (a truncated upload, a stray object).
    let bad = format!("staging/{}.clicks/web.clicks/9/1-2.parquet", h.schema);
    h.store
        .put(
            &h.bucket,
            &bad,
            Bytes::from_static(b"not parquet"),
            "application/octet-stream",
        )
        .await?;

    // The notifications were lost: nothing announces these files.
    let clock = ManualClock::at(now_ms());
    let m = maintainer(&h, &settings, &clock, |c| c)?;
    let r = m.redrive(long_deadline()).await?;
    assert_eq!((r.stranded, r.recent), (0, 3), "young files wait: {r:?}");

    clock.advance_hours(4.0);
    let r = m.redrive(long_deadline()).await?;
    assert_eq!((r.stranded, r.loaded), (3, 2), "{r:?}");
    assert_eq!(r.quarantined, vec![bad.clone()]);
    assert!(r.failed_tables.is_empty(), "{r:?}");
    let count = format!(
        "SELECT count(*), count(DISTINCT `_kafka_offset`) FROM {}",
        h.table("clicks")
    );
    assert_eq!(
        text(&query(&m.loader.warehouse, &count).await?),
        [["20", "20"]]
    );
    // Nothing left in staging: each file is in the table or in the errors prefix.
    assert_eq!(h.staged().await?, Vec::<String>::new());
    let errors = objects(&h.store, &h.bucket, "errors/unloadable/").await?;
    let names: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
    let moved = format!("errors/unloadable/{bad}");
    assert_eq!(names, [moved.as_str(), &format!("{moved}.reason.json")]);
    assert_eq!(errors[0].1.as_ref(), b"not parquet");
    let reason: serde_json::Value = serde_json::from_slice(&errors[1].1)?;
    assert_eq!(reason["staged_key"], json!(bad));
    assert!(
        reason["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("Parquet"),
        "{reason}"
    );

    // The next runs find nothing to do, and the table holds every record once.
    clock.advance_hours(4.0);
    let r = m.redrive(long_deadline()).await?;
    assert_eq!((r.stranded, r.loaded), (0, 0), "{r:?}");
    assert_eq!(
        text(&query(&m.loader.warehouse, &count).await?),
        [["20", "20"]]
    );
    Ok(())
}

// ---- purge ------------------------------------------------------------------------------------

#[tokio::test]
async fn purge_never_removes_an_unloaded_file() -> Result<()> {
    let h = Harness::new("mpurge").await?;
    let tables = format!(r#"{{"{}.orders": {{"mode": "append"}}}}"#, h.schema);
    let keep = [
        ("DELTASINK_TABLES", tables.as_str()),
        ("DELTASINK_PURGE", "false"),
    ];
    let purge_on = [("DELTASINK_TABLES", tables.as_str())];
    let batch = |first: i64| -> Result<_> {
        let records: Vec<GenRecord> = (first..first + 5)
            .map(|i| record("shop.orders", 0, i, T0 + i, None, json!({"order": i})))
            .collect();
        msk_event(&records)
    };
    let (_, loaded_keys) = h.stage(&batch(0)?, &keep).await?;
    let (_, stranded_keys) = h.stage(&batch(5)?, &keep).await?;
    // With purge off, the load function keeps the first file and marks it loaded.
    let loader = h.loader(None, ClientOptions::default(), &keep)?;
    let announced = loaded_keys.iter().map(|k| h.announce(k, "m1")).collect();
    check_loaded(&loader.load(announced, long_deadline()).await)?;
    let marker = format!("_deltasink/loaded/{}", loaded_keys[0]);
    ensure!(
        h.store.get(&h.bucket, &marker).await.is_ok(),
        "the loaded marker {marker} exists"
    );

    let clock = ManualClock::at(now_ms() + 100 * HOUR);
    // Purge off: nothing is deleted, and the report says what is kept.
    let m = maintainer(&h, &keep, &clock, |c| c)?;
    let r = m.purge().await?;
    assert!(!r.purge_enabled);
    assert_eq!((r.loaded_kept, r.unloaded_kept), (1, 1), "{r:?}");
    let mut all_staged: Vec<String> = loaded_keys.iter().chain(&stranded_keys).cloned().collect();
    all_staged.sort();
    assert_eq!(h.staged().await?, all_staged);
    // Re-drive with purge off loads only the unmarked file, and marks it.
    let r = m.redrive(long_deadline()).await?;
    assert_eq!((r.stranded, r.loaded), (1, 1), "{r:?}");
    assert_eq!(h.staged().await?, all_staged);

    // A third file staged later, never loaded, old by the clock; bookkeeping leftovers.
    let (_, unloaded_keys) = h.stage(&batch(10)?, &keep).await?;
    let orphan = format!("_deltasink/loaded/staging/{}.orders/gone.parquet", h.schema);
    let probe = "_deltasink/check/probe-1".to_string();
    for key in [&orphan, &probe] {
        h.store
            .put(&h.bucket, key, Bytes::new(), "application/octet-stream")
            .await?;
    }

    // Purge on: the two loaded files and their markers go; the unloaded file stays.
    let m = maintainer(&h, &purge_on, &clock, |c| c)?;
    let r = m.purge().await?;
    assert!(r.purge_enabled);
    assert_eq!(
        (
            r.loaded_files_deleted,
            r.markers_deleted,
            r.leftovers_deleted,
            r.unloaded_kept
        ),
        (2, 3, 1, 1),
        "{r:?}"
    );
    assert_eq!(h.staged().await?, unloaded_keys);
    assert_eq!(
        objects(&h.store, &h.bucket, "_deltasink/").await?.len(),
        0,
        "markers and probes are gone"
    );
    // Purging again changes nothing; re-drive loads the last file; every order is there once.
    let r = m.purge().await?;
    assert_eq!((r.loaded_files_deleted, r.unloaded_kept), (0, 1), "{r:?}");
    let r = m.redrive(long_deadline()).await?;
    assert_eq!((r.stranded, r.loaded), (1, 1), "{r:?}");
    assert_eq!(h.staged().await?, Vec::<String>::new());
    let rows = query(
        &m.loader.warehouse,
        &format!(
            "SELECT count(*), count(DISTINCT `_kafka_offset`) FROM {}",
            h.table("orders")
        ),
    )
    .await?;
    assert_eq!(text(&rows), [["15", "15"]]);
    Ok(())
}

// ---- tombstones -------------------------------------------------------------------------------

#[tokio::test]
async fn tombstones_older_than_the_window_disappear() -> Result<()> {
    let h = Harness::new("mtomb").await?;
    let now = now_ms();
    let tables = format!(
        r#"{{"{s}.customers": {{"hard_delete": true, "tombstone_retention_hours": 2}},
            "{s}.ghost": {{"mode": "upsert", "hard_delete": true}}}}"#,
        s = h.schema
    );
    let settings = [("DELTASINK_TABLES", tables.as_str())];
    let row = |id: i64| json!({"id": id, "name": format!("c{id}")});
    let change = |offset: i64, id: i64, op: &str, ts: i64| GenRecord {
        topic: "shop.public.customers".into(),
        partition: 0,
        offset,
        timestamp_ms: ts,
        key: Some(json!({"id": id}).to_string().into_bytes()),
        value: Some(match op {
            "d" => debezium_value("customers", "d", Some(&row(id)), None, ts, None),
            _ => debezium_value("customers", op, None, Some(&row(id)), ts, None),
        }),
    };
    let records = vec![
        change(0, 1, "c", now - 10 * HOUR),
        change(1, 2, "c", now - 10 * HOUR),
        change(2, 3, "c", now - 10 * HOUR),
        change(3, 1, "d", now - 5 * HOUR), // an old tombstone
        change(4, 2, "d", now - HOUR),     // a young tombstone
    ];
    let (_, keys) = h.stage(&msk_event(&records)?, &settings).await?;
    let loader = h.loader(None, ClientOptions::default(), &settings)?;
    let announced = keys.iter().map(|k| h.announce(k, "m1")).collect();
    check_loaded(&loader.load(announced, long_deadline()).await)?;
    let rows_sql = format!(
        "SELECT `id`, `_cdc_deleted` FROM {} ORDER BY `id`",
        h.table("customers")
    );
    assert_eq!(
        text(&query(&loader.warehouse, &rows_sql).await?),
        [["1", "true"], ["2", "true"], ["3", "false"]]
    );

    let clock = ManualClock::at(now);
    let m = maintainer(&h, &settings, &clock, |c| c)?;
    let outcomes = m.tombstones(long_deadline()).await;
    let customers = outcomes.iter().find(|o| o.table.ends_with("customers"));
    let ghost = outcomes.iter().find(|o| o.table.ends_with("ghost"));
    assert!(customers.is_some_and(|o| o.error.is_none()), "{outcomes:?}");
    assert!(
        ghost.is_some_and(|o| o.table_missing && o.error.is_none()),
        "{outcomes:?}"
    );
    assert_eq!(
        text(&query(&loader.warehouse, &rows_sql).await?),
        [["2", "true"], ["3", "false"]],
        "the old tombstone is gone, the young one and the live row stay"
    );
    // Three hours later the other tombstone is old enough too.
    clock.advance_hours(3.0);
    let outcomes = m.tombstones(long_deadline()).await;
    assert!(outcomes.iter().all(|o| o.error.is_none()), "{outcomes:?}");
    assert_eq!(
        text(&query(&loader.warehouse, &rows_sql).await?),
        [["3", "false"]]
    );
    Ok(())
}

// ---- backfill ---------------------------------------------------------------------------------

/// A raw ingestion table `events` fed by the stream (transaction ids `stream_ids`, Kafka time
/// T0 + 10 min per id after the first) and a backfill source table `legacy`.
struct BackfillFixture {
    h: Harness,
    tables: String,
}

impl BackfillFixture {
    async fn new(
        test: &str,
        dedup: Option<&str>,
        stream_ids: std::ops::RangeInclusive<i64>,
    ) -> Result<BackfillFixture> {
        let h = Harness::new(test).await?;
        let dedup = dedup
            .map(|d| format!(r#", "backfill_dedup_columns": ["{d}"]"#))
            .unwrap_or_default();
        let tables = format!(
            r#"{{"{s}.events": {{"mode": "raw", "backfill_source": "{s}.legacy"{dedup}}}}}"#,
            s = h.schema
        );
        let first = *stream_ids.start();
        let records: Vec<GenRecord> = stream_ids
            .map(|id| {
                record(
                    "app.events",
                    0,
                    id,
                    T0 + (id - first) * 600_000,
                    Some(json!({"tx": id})),
                    json!({"transaction_id": id, "amount": id * 10}),
                )
            })
            .collect();
        let f = BackfillFixture { h, tables };
        let settings = f.settings();
        let (_, keys) = f.h.stage(&msk_event(&records)?, &settings).await?;
        let loader = f.h.loader(None, ClientOptions::default(), &settings)?;
        let announced = keys.iter().map(|k| f.h.announce(k, "m1")).collect();
        check_loaded(&loader.load(announced, long_deadline()).await)?;
        let wh = &loader.warehouse;
        query(wh, &format!(
            "CREATE TABLE {} (`key` STRING, `value` STRING, `stream_record_timestamp` TIMESTAMP, `kafka_offset` BIGINT) USING DELTA",
            f.h.table("legacy")
        ))
        .await?;
        Ok(f)
    }

    fn settings(&self) -> [(&str, &str); 1] {
        [("DELTASINK_TABLES", self.tables.as_str())]
    }

    /// Adds a backfill source row for transaction `id` at `ts` (ms).
    async fn legacy_row(
        &self,
        wh: &impl StatementExecutor,
        id: i64,
        amount: i64,
        ts: i64,
    ) -> Result<()> {
        let key = json!({"tx": id}).to_string();
        let value = json!({"transaction_id": id, "amount": amount}).to_string();
        wh.execute(
            &format!(
                "INSERT INTO {} SELECT :key, :value, timestamp_millis(:ts), :offset",
                self.h.table("legacy")
            ),
            &[
                Param::new("key", Some(key)),
                Param::new("value", Some(value)),
                Param {
                    name: "ts".into(),
                    value: Some(ts.to_string()),
                    type_name: Some("BIGINT".into()),
                },
                Param {
                    name: "offset".into(),
                    value: Some((9000 + id).to_string()),
                    type_name: Some("BIGINT".into()),
                },
            ],
            Idempotency::Unsafe,
            long_deadline(),
        )
        .await?;
        Ok(())
    }

    /// `(transaction id, record_source, unix millis, kafka_offset)` of every row, sorted.
    async fn rows(&self, wh: &impl StatementExecutor) -> Result<Vec<Vec<String>>> {
        Ok(text(&query(wh, &format!(
            "SELECT CAST(get_json_object(`value`, '$.transaction_id') AS INT) AS tx, `record_source`, unix_millis(`stream_record_timestamp`), `kafka_offset`, `kafka_topic` FROM {} ORDER BY tx, `record_source`",
            self.h.table("events")
        )).await?))
    }
}

#[tokio::test]
async fn backfill_waits_for_the_overlap_then_runs_once() -> Result<()> {
    let f = BackfillFixture::new("mbackfill", Some("value.transaction_id"), 5..=9).await?;
    let clock = ManualClock::at(now_ms());
    let m = maintainer(&f.h, &f.settings(), &clock, |c| c)?;
    let wh = &m.loader.warehouse;
    // The backfill reaches 10 minutes into the stream (id 6 is in both), with a duplicate.
    for (id, ts) in [
        (1, T0 - 5 * HOUR),
        (2, T0 - 4 * HOUR),
        (2, T0 - 7 * HOUR / 2),
        (3, T0 - 3 * HOUR),
        (4, T0 - 2 * HOUR),
        (5, T0 - HOUR),
        (6, T0 + 600_000),
    ] {
        f.legacy_row(wh, id, id * 10, ts).await?;
    }
    let stream_before: Vec<Vec<String>> = f.rows(wh).await?;
    assert_eq!(stream_before.len(), 5);

    let out = m.backfill(long_deadline()).await;
    assert_eq!(out.len(), 1);
    assert!(out[0].error.is_none(), "{out:?}");
    assert_eq!(
        (out[0].status, out[0].ran, out[0].overlap_met),
        (Some(BackfillStatus::Waiting), false, Some(false)),
        "{out:?}"
    );
    assert_eq!(out[0].backfill_newest_us, Some((T0 + 600_000) * 1000));
    assert_eq!(out[0].stream_oldest_us, Some(T0 * 1000));
    assert_eq!(
        f.rows(wh).await?,
        stream_before,
        "nothing copied while waiting"
    );

    // The backfill now reaches two hours past the oldest stream row.
    f.legacy_row(wh, 7, 70, T0 + 2 * HOUR).await?;
    clock.advance_hours(1.0);
    let out = m.backfill(long_deadline()).await;
    assert!(out[0].error.is_none(), "{out:?}");
    assert_eq!(
        (out[0].status, out[0].ran, out[0].overlap_met),
        (Some(BackfillStatus::Done), true, Some(true)),
        "{out:?}"
    );
    let rows = f.rows(wh).await?;
    let backfilled: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "backfill").collect();
    assert_eq!(
        backfilled
            .iter()
            .map(|r| (
                r[0].as_str(),
                r[2].parse::<i64>().unwrap_or(0),
                r[3].as_str(),
                r[4].as_str()
            ))
            .collect::<Vec<_>>(),
        [
            ("1", T0 - 5 * HOUR, "9001", "NULL"),
            ("2", T0 - 7 * HOUR / 2, "9002", "NULL"), // the newer of the two copies
            ("3", T0 - 3 * HOUR, "9003", "NULL"),
            ("4", T0 - 2 * HOUR, "9004", "NULL"),
        ],
        "ids 5-7 were already streamed: not copied; Kafka columns pass through or are NULL"
    );
    let stream_after: Vec<Vec<String>> =
        rows.iter().filter(|r| r[1] == "stream").cloned().collect();
    assert_eq!(stream_after, stream_before, "stream rows untouched");

    // Never twice, even when the source grows.
    f.legacy_row(wh, 0, 0, T0 - 6 * HOUR).await?;
    clock.advance_hours(1.0);
    let out = m.backfill(long_deadline()).await;
    assert_eq!(
        (out[0].status, out[0].ran),
        (Some(BackfillStatus::Done), false),
        "{out:?}"
    );
    assert_eq!(f.rows(wh).await?, rows);
    Ok(())
}

/// Executes statements on the real warehouse, but the first MERGE "crashes" the invocation
/// right after its commit: the answer is lost, as when the Lambda times out.
struct CrashAfterMerge {
    inner: WarehouseClient,
    armed: AtomicBool,
}

impl StatementExecutor for CrashAfterMerge {
    async fn execute(
        &self,
        sql: &str,
        params: &[Param],
        idempotency: Idempotency,
        deadline: Instant,
    ) -> Result<StatementResult, WarehouseError> {
        let result = self
            .inner
            .execute(sql, params, idempotency, deadline)
            .await?;
        if sql.starts_with("MERGE") && self.armed.swap(false, Ordering::SeqCst) {
            return Err(WarehouseError::Deadline {
                statement_id: Some(result.statement_id),
                canceled: false,
            });
        }
        Ok(result)
    }
}

#[tokio::test]
async fn backfill_runs_anyway_after_the_deadline_and_survives_a_crash() -> Result<()> {
    // No dedup columns: the whole key, value and stream_record_timestamp.
    let f = BackfillFixture::new("mbackfill2", None, 3..=4).await?;
    let clock = ManualClock::at(now_ms());
    let m = maintainer(&f.h, &f.settings(), &clock, |c| c)?;
    let wh = &m.loader.warehouse;
    // A short overlap: the backfill ends 10 minutes into the stream; its row for id 3 is the
    // very stream record (same key, value and time), its row for id 4 is not (another time).
    f.legacy_row(wh, 1, 10, T0 - 2 * HOUR).await?;
    f.legacy_row(wh, 3, 30, T0).await?;
    f.legacy_row(wh, 4, 40, T0 + 10 * 60_000 - 1).await?;

    let out = m.backfill(long_deadline()).await;
    assert_eq!(
        (out[0].status, out[0].ran),
        (Some(BackfillStatus::Waiting), false),
        "{out:?}"
    );
    clock.advance_hours(47.0);
    let out = m.backfill(long_deadline()).await;
    assert_eq!(
        (out[0].status, out[0].ran),
        (Some(BackfillStatus::Waiting), false),
        "{out:?}"
    );

    // Past 48 hours it runs anyway — and the invocation dies right after the MERGE commits.
    clock.advance_hours(2.0);
    let crashing = maintainer(&f.h, &f.settings(), &clock, |c| CrashAfterMerge {
        inner: c,
        armed: AtomicBool::new(true),
    })?;
    let out = crashing.backfill(long_deadline()).await;
    assert!(out[0].error.is_some(), "{out:?}");
    let state = m.backfill_state(&m.config.backfills[0]).await?;
    assert_eq!(
        state.as_ref().map(|s| (s.status, s.overlap_met)),
        Some((BackfillStatus::Started, Some(false))),
        "{state:?}"
    );

    // The next run finishes it: nothing is copied twice.
    let out = m.backfill(long_deadline()).await;
    assert!(out[0].error.is_none(), "{out:?}");
    assert_eq!(
        (out[0].status, out[0].ran, out[0].overlap_met),
        (Some(BackfillStatus::Done), true, Some(false)),
        "{out:?}"
    );
    let rows = f.rows(wh).await?;
    let summary: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("1", "backfill"),
            ("3", "stream"),
            ("4", "backfill"),
            ("4", "stream")
        ],
        "{rows:?}"
    );
    let out = m.backfill(long_deadline()).await;
    assert_eq!(
        (out[0].status, out[0].ran),
        (Some(BackfillStatus::Done), false)
    );
    Ok(())
}

// ---- optimize ---------------------------------------------------------------------------------

#[tokio::test]
async fn optimize_compacts_configured_tables_and_skips_missing_ones() -> Result<()> {
    let h = Harness::new("mopt").await?;
    let tables = format!(
        r#"{{"{s}.visits": {{"mode": "append"}}, "{s}.later": {{"mode": "append"}}}}"#,
        s = h.schema
    );
    let settings = [("DELTASINK_TABLES", tables.as_str())];
    let loader = h.loader(None, ClientOptions::default(), &settings)?;
    // Four loads: four commits, four data files.
    for batch in 0..4i64 {
        let records: Vec<GenRecord> = (0..5)
            .map(|i| {
                let offset = batch * 5 + i;
                record(
                    "web.visits",
                    0,
                    offset,
                    T0 + offset,
                    None,
                    json!({"n": offset}),
                )
            })
            .collect();
        let (_, keys) = h.stage(&msk_event(&records)?, &settings).await?;
        let announced = keys.iter().map(|k| h.announce(k, "m")).collect();
        check_loaded(&loader.load(announced, long_deadline()).await)?;
    }
    let detail = format!("DESCRIBE DETAIL {}", h.table("visits"));
    let files = |rows: Vec<Vec<Option<String>>>, columns: &[(String, String)]| -> i64 {
        let at = columns
            .iter()
            .position(|(n, _)| n == "numFiles")
            .unwrap_or(usize::MAX);
        rows.first()
            .and_then(|r| r.get(at).cloned().flatten())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    let before = loader
        .warehouse
        .execute(&detail, &[], Idempotency::Safe, long_deadline())
        .await?;
    assert!(
        files(before.rows, &before.columns) >= 4,
        "one file per load"
    );

    let clock = ManualClock::at(now_ms());
    let m = maintainer(&h, &settings, &clock, |c| c)?;
    let report = m
        .run(&[deltasink::maintain::Job::Optimize], long_deadline())
        .await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        report.optimized,
        Some(vec![format!("{}.visits", h.schema)]),
        "the missing table is skipped"
    );
    let after = loader
        .warehouse
        .execute(&detail, &[], Idempotency::Safe, long_deadline())
        .await?;
    assert_eq!(
        files(after.rows, &after.columns),
        1,
        "compacted into one file"
    );
    let count = format!("SELECT count(*) FROM {}", h.table("visits"));
    assert_eq!(text(&query(&loader.warehouse, &count).await?), [["20"]]);
    Ok(())
}
