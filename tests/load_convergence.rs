//! Load semantics end to end (DESIGN.md, semantics 1, 2, 3 and 5): generated Kafka events →
//! stage → local S3 → load in random groupings, random order and with duplicates → the local
//! SQL warehouse (Sail, Delta) → the tables read back and compared with a model.
//!
//! - convergence (property test, fixed seed): random Debezium JSON change streams (inserts,
//!   updates, deletes with and without a before image, re-inserts) over 2–3 partitions, cut
//!   into MSK batches at random, staged into many small files, loaded by two warm loaders and
//!   the odd cold one in random groups and order, files announced twice and re-loaded (purge
//!   off): the table equals the last change per key, deletes as tombstones;
//! - a delete is not undone by a late older change (by log position, and by commit time when
//!   there is no position), and a newer re-insert brings the row back;
//! - append tables hold each Kafka record exactly once when a batch is staged twice with
//!   different boundaries (overlapping files) and every file is loaded, some twice;
//! - schema evolution mid-stream: a new column, INT → BIGINT widening, an incompatible
//!   STRING kept in `_rescued_data`, loaded batch by batch and all at once;
//! - two warm loaders (Lambda instances) whose schema caches go stale when the other one
//!   evolves the table: a newer row version still replaces the whole row, and a file with the
//!   column added meanwhile still loads.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail, ensure};
use deltasink::load::loader::Loader;
use deltasink::load::notifications::Announced;
use deltasink::store::S3Store;
use deltasink::warehouse::{ClientOptions, WarehouseClient};
use deltasink_tests::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner};
use serde_json::json;

const TOPIC: &str = "shop.public.customers";
/// Source commit times start here (ms).
const T0: i64 = 1_700_000_000_000;

type Client = Loader<S3Store, WarehouseClient>;

// ---- the model ----------------------------------------------------------------------------

/// A key's row as the table must show it: `(name, score, deleted)`. A delete keeps the values
/// of its before image (none when the event has no before image).
type ModelRow = (Option<String>, Option<i64>, bool);

/// One generated change, in source (log) order.
#[derive(Debug, Clone)]
struct Change {
    id: i64,
    op: &'static str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    ts_ms: i64,
    lsn: Option<i64>,
    /// A Debezium tombstone (key, no value) follows the delete, as with `tombstones.on.delete`.
    tombstone: bool,
}

fn image(id: i64, name: &str, score: i64) -> serde_json::Value {
    json!({"id": id, "name": name, "score": score})
}

impl Change {
    /// The row this change leaves in the model.
    fn model_row(&self) -> ModelRow {
        let (img, deleted) = match self.op {
            "d" => (self.before.as_ref(), true),
            _ => (self.after.as_ref(), false),
        };
        let name = img.and_then(|v| v["name"].as_str()).map(str::to_string);
        let score = img.and_then(|v| v["score"].as_i64());
        (name, score, deleted)
    }
}

/// Kafka records of `changes` on topic [`TOPIC`]: key `{"id": k}`, partition `k mod
/// partitions` (Kafka's keyed partitioning keeps a key in one partition), offsets
/// consecutive per partition from `first_offset[partition]`.
fn records(changes: &[Change], partitions: i32, first_offset: &mut [i64]) -> Vec<GenRecord> {
    let mut out = Vec::new();
    for c in changes {
        let partition = (c.id % i64::from(partitions)) as i32;
        let key = json!({"id": c.id}).to_string().into_bytes();
        let value = debezium_value(
            "customers",
            c.op,
            c.before.as_ref(),
            c.after.as_ref(),
            c.ts_ms,
            c.lsn,
        );
        let mut push = |value: Option<Vec<u8>>| {
            let offset = &mut first_offset[partition as usize];
            out.push(GenRecord {
                topic: TOPIC.into(),
                partition,
                offset: *offset,
                timestamp_ms: c.ts_ms + 40,
                key: Some(key.clone()),
                value,
            });
            *offset += 1;
        };
        push(Some(value));
        if c.tombstone {
            push(None);
        }
    }
    out
}

/// The table's rows: `id → (name, score, _cdc_deleted)`; fails on a key seen twice.
async fn table_rows(client: &Client, table: &str) -> Result<BTreeMap<i64, ModelRow>> {
    let rows = query(
        &client.warehouse,
        &format!("SELECT `id`, `name`, `score`, `_cdc_deleted` FROM {table} ORDER BY `id`"),
    )
    .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let id: i64 = r[0].as_deref().context("NULL id")?.parse()?;
        let score = r[2].as_deref().map(str::parse).transpose()?;
        let deleted = match r[3].as_deref() {
            Some("true") => true,
            Some("false") => false,
            other => bail!("id {id}: _cdc_deleted is {other:?}"),
        };
        ensure!(
            out.insert(id, (r[1].clone(), score, deleted)).is_none(),
            "id {id} has two rows"
        );
    }
    Ok(out)
}

// ---- 1. convergence, property test ----------------------------------------------------------

#[derive(Debug, Clone)]
struct Scenario {
    partitions: i32,
    keys: u8,
    /// (key, action 0..100, score) per change.
    steps: Vec<(u8, u8, i32)>,
    /// Batch boundaries (taken modulo the number of records).
    cuts: Vec<u16>,
    max_file_rows: usize,
    plan_seed: u64,
}

fn scenarios() -> impl Strategy<Value = Scenario> {
    (
        2..=3i32,
        3u8..=9,
        prop::collection::vec((any::<u8>(), 0u8..100, any::<i32>()), 12..40),
        prop::collection::vec(any::<u16>(), 1..4),
        2usize..=5,
        any::<u64>(),
    )
        .prop_map(
            |(partitions, keys, steps, cuts, max_file_rows, plan_seed)| Scenario {
                partitions,
                keys,
                steps,
                cuts,
                max_file_rows,
                plan_seed,
            },
        )
}

/// The scenario's changes in log order: the commit time and the LSN grow with every change.
fn changes(s: &Scenario) -> Vec<Change> {
    #[derive(Clone)]
    enum State {
        Absent,
        Live(serde_json::Value),
        Deleted,
    }
    let mut state = vec![State::Absent; usize::from(s.keys)];
    let mut lsn = 24_023_128i64;
    let mut out = Vec::new();
    for (i, &(key, action, score)) in s.steps.iter().enumerate() {
        let k = usize::from(key % s.keys);
        let id = k as i64 + 1;
        lsn += 8 + i64::from(action) * 16;
        let ts_ms = T0 + 1_000 * (i as i64 + 1);
        let name = format!("name-{id}-{i}");
        let score = i64::from(score);
        let (op, before, after) = match &state[k] {
            State::Absent if action < 30 => ("r", None, Some(image(id, &name, score))),
            State::Absent | State::Deleted => ("c", None, Some(image(id, &name, score))),
            State::Live(current) if action < 65 => {
                // An update changes the score, and the name every other time.
                let name = if action % 2 == 0 {
                    name
                } else {
                    current["name"].as_str().unwrap_or_default().to_string()
                };
                ("u", Some(current.clone()), Some(image(id, &name, score)))
            }
            // A delete carries its before image (REPLICA IDENTITY FULL) or none at all.
            State::Live(current) => ("d", (action % 2 == 0).then(|| current.clone()), None),
        };
        let tombstone = op == "d" && action % 3 != 0;
        state[k] = match op {
            "d" => State::Deleted,
            _ => State::Live(after.clone().unwrap_or_default()),
        };
        out.push(Change {
            id,
            op,
            before,
            after,
            ts_ms,
            lsn: Some(lsn),
            tombstone,
        });
    }
    out
}

/// The model: the last change per key.
fn model(changes: &[Change]) -> BTreeMap<i64, ModelRow> {
    changes.iter().map(|c| (c.id, c.model_row())).collect()
}

/// One load invocation: files (by key) with their SQS message ids, and which loader runs it.
#[derive(Debug)]
struct Invocation {
    files: Vec<(String, String)>,
    /// 0 or 1: one of two warm loaders; 2: a cold loader of its own.
    loader: usize,
}

/// Random groups of the staged files in random order; about a third of the files are
/// announced a second time (in another group, the same group, or a late re-drive group).
fn load_plan(files: &[String], seed: u64) -> Vec<Invocation> {
    let mut rng = XorShift::new(seed);
    let mut order = files.to_vec();
    rng.shuffle(&mut order);
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut rest = order.as_slice();
    while !rest.is_empty() {
        let n = (1 + rng.below(5)).min(rest.len());
        groups.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    let mut redrive = Vec::new();
    for f in files {
        if rng.chance(35) {
            match rng.below(3) {
                0 => redrive.push(f.clone()),
                _ => {
                    let g = rng.below(groups.len());
                    groups[g].push(f.clone());
                }
            }
        }
    }
    if !redrive.is_empty() {
        rng.shuffle(&mut redrive);
        groups.push(redrive);
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(g, files)| Invocation {
            files: files
                .into_iter()
                .enumerate()
                .map(|(i, f)| (f, format!("m-{g}-{i}")))
                .collect(),
            loader: if rng.chance(15) { 2 } else { rng.below(2) },
        })
        .collect()
}

/// Loads `files` like one SQS batch; failed messages are delivered again (at most twice more),
/// as SQS would. Returns how many re-deliveries it took.
async fn load_like_sqs(h: &Harness, loader: &Client, files: &[(String, String)]) -> Result<usize> {
    let mut pending: Vec<Announced> = files.iter().map(|(k, m)| h.announce(k, m)).collect();
    for attempt in 0..3 {
        let report = loader.load(pending.clone(), long_deadline()).await;
        ensure!(report.refused.is_empty(), "refused: {report:?}");
        if report.failed_messages.is_empty() {
            return Ok(attempt);
        }
        eprintln!("re-delivering after a failed load: {report:?}");
        pending.retain(|a| {
            a.message_id
                .as_ref()
                .is_some_and(|m| report.failed_messages.contains(m))
        });
        if attempt == 2 {
            bail!("still failing after 3 deliveries: {report:#?}");
        }
    }
    unreachable!()
}

async fn run_scenario(s: &Scenario) -> Result<()> {
    let h = Harness::new("conv").await?;
    let changes = changes(s);
    let mut next_offset: Vec<i64> = (0..s.partitions).map(|p| 100 * i64::from(p)).collect();
    let all = records(&changes, s.partitions, &mut next_offset);

    // MSK batches at random boundaries, each staged into files of at most max_file_rows rows.
    let mut cuts: Vec<usize> = s.cuts.iter().map(|c| usize::from(*c) % all.len()).collect();
    cuts.extend([0, all.len()]);
    cuts.sort_unstable();
    cuts.dedup();
    let rows = s.max_file_rows.to_string();
    let mut files = Vec::new();
    for w in cuts.windows(2) {
        let batch = &all[w[0]..w[1]];
        let (summary, keys) = h
            .stage(&msk_event(batch)?, &[("DELTASINK_MAX_FILE_ROWS", &rows)])
            .await?;
        let tombstones = batch.iter().filter(|r| r.value.is_none()).count();
        ensure!(
            summary.records_to_errors == 0
                && summary.tombstones_skipped == tombstones
                && summary.rows_staged == batch.len() - tombstones,
            "stage summary {summary:?} for {} records, {tombstones} tombstones",
            batch.len()
        );
        files.extend(keys);
    }
    ensure!(files.len() > 1, "one file only: {files:?}");

    let warm = [
        h.loader(
            None,
            ClientOptions::default(),
            &[("DELTASINK_PURGE", "false")],
        )?,
        h.loader(
            None,
            ClientOptions::default(),
            &[("DELTASINK_PURGE", "false")],
        )?,
    ];
    let plan = load_plan(&files, s.plan_seed);
    let mut redeliveries = 0;
    for invocation in &plan {
        let redelivered = match invocation.loader {
            i @ (0 | 1) => load_like_sqs(&h, &warm[i], &invocation.files).await?,
            _ => {
                let cold = h.loader(
                    None,
                    ClientOptions::default(),
                    &[("DELTASINK_PURGE", "false")],
                )?;
                load_like_sqs(&h, &cold, &invocation.files).await?
            }
        };
        redeliveries += redelivered;
    }
    eprintln!(
        "case: {} changes ({} deletes, {} without a before image), {} partitions, {} files, {} invocations, {redeliveries} re-deliveries",
        changes.len(),
        changes.iter().filter(|c| c.op == "d").count(),
        changes
            .iter()
            .filter(|c| c.op == "d" && c.before.is_none())
            .count(),
        s.partitions,
        files.len(),
        plan.len(),
    );
    // Purge off: every staged file is still there.
    let mut expected_files = files.clone();
    expected_files.sort();
    ensure!(h.staged().await? == expected_files, "staged files changed");

    let table = table_rows(&warm[0], &h.table("customers")).await?;
    let expected = model(&changes);
    if table != expected {
        let diff: Vec<String> = expected
            .keys()
            .chain(table.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|id| table.get(id) != expected.get(id))
            .map(|id| {
                let history: Vec<String> = changes
                    .iter()
                    .filter(|c| c.id == *id)
                    .map(|c| format!("{}@{:?} {:?}", c.op, c.lsn, c.model_row()))
                    .collect();
                format!(
                    "id {id}: table {:?}, model {:?}; history {history:?}",
                    table.get(id),
                    expected.get(id)
                )
            })
            .collect();
        bail!(
            "table differs from the model ({} files, {} invocations, {redeliveries} re-deliveries):\n{}\nplan: {plan:#?}",
            files.len(),
            plan.len(),
            diff.join("\n")
        );
    }
    Ok(())
}

#[test]
fn upserts_converge_whatever_the_grouping_order_and_duplication() -> Result<()> {
    let cases = std::env::var("DELTASINK_CONVERGENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let config = Config {
        cases,
        // Every case runs against the local services: keep shrinking short.
        max_shrink_iters: 8,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let seed: [u8; 32] = *b"deltasink-convergence-seed-00001";
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runner.run(&scenarios(), |s| {
        rt.block_on(run_scenario(&s))
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))
    });
    if let Err(e) = result {
        bail!("{e}");
    }
    Ok(())
}

// ---- 2. deletes and late changes -------------------------------------------------------------

/// A change of key `id` to (or, for a delete, from) `(name, score)` at commit time `T0 + t` s,
/// with log position `lsn`.
fn change(
    id: i64,
    op: &'static str,
    (name, score): (&str, i64),
    t: i64,
    lsn: Option<i64>,
) -> Change {
    let img = image(id, name, score);
    let (before, after) = match op {
        "d" => (Some(img), None),
        _ => (None, Some(img)),
    };
    Change {
        id,
        op,
        before,
        after,
        ts_ms: T0 + 1_000 * t,
        lsn,
        tombstone: op == "d",
    }
}

#[tokio::test]
async fn a_delete_is_not_undone_by_a_late_older_change_and_a_newer_insert_restores_the_row()
-> Result<()> {
    let h = Harness::new("late").await?;
    let loader = h.loader(None, ClientOptions::default(), &[])?;
    // Key 2 lives in partition 0, key 1 in partition 1 (two partitions). Key 1's events carry an
    // LSN; key 2's carry none, so commit times order them.
    let mut offsets = vec![0i64, 0];
    let steps: [&[Change]; 4] = [
        // Insert and delete.
        &[
            change(1, "c", ("one", 10), 1, Some(1_000)),
            change(2, "c", ("two", 20), 1, None),
            change(1, "d", ("one", 10), 3, Some(3_000)),
            change(2, "d", ("two", 20), 5, None),
        ],
        // Late, older updates (lower LSN / commit time, higher offsets): ignored.
        &[
            change(1, "u", ("one-late", 11), 2, Some(2_000)),
            change(2, "u", ("two-late", 21), 4, None),
        ],
        // Newer re-inserts: the rows come back.
        &[
            change(1, "c", ("one-again", 12), 6, Some(6_000)),
            change(2, "c", ("two-again", 22), 7, None),
        ],
        // A late delete older than the re-insert: ignored.
        &[
            change(1, "d", ("one-late", 11), 5, Some(5_000)),
            change(2, "d", ("two-late", 21), 6, None),
        ],
    ];
    let deleted: [ModelRow; 2] = [
        (Some("one".into()), Some(10), true),
        (Some("two".into()), Some(20), true),
    ];
    let again: [ModelRow; 2] = [
        (Some("one-again".into()), Some(12), false),
        (Some("two-again".into()), Some(22), false),
    ];
    let expected = [deleted.clone(), deleted, again.clone(), again];
    for (i, (changes, expected)) in steps.iter().zip(expected).enumerate() {
        let event = msk_event(&records(changes, 2, &mut offsets))?;
        let (_, keys) = h.stage(&event, &[]).await?;
        let announced = keys
            .iter()
            .map(|k| h.announce(k, &format!("m-{i}")))
            .collect();
        check_loaded(&loader.load(announced, long_deadline()).await)?;
        let table = table_rows(&loader, &h.table("customers")).await?;
        let expected: BTreeMap<i64, ModelRow> =
            [(1, expected[0].clone()), (2, expected[1].clone())]
                .into_iter()
                .collect();
        assert_eq!(table, expected, "after load {i}");
    }
    // Purge on: nothing is left to load.
    assert_eq!(h.staged().await?, Vec::<String>::new());
    Ok(())
}

// ---- 3. append: exactly once -----------------------------------------------------------------

#[tokio::test]
async fn append_tables_hold_each_record_once_when_batches_are_staged_twice_differently()
-> Result<()> {
    let h = Harness::new("once").await?;
    // 3 partitions, 47 unkeyed plain JSON records.
    let mut all = Vec::new();
    for i in 0..47i64 {
        let partition = (i % 3) as i32;
        all.push(GenRecord {
            topic: "web.clicks".into(),
            partition,
            offset: 5_000 + i / 3,
            timestamp_ms: T0 + i,
            key: None,
            value: Some(
                json!({"n": i, "page": format!("/p/{}", i % 7), "ms": 10 * i})
                    .to_string()
                    .into_bytes(),
            ),
        });
    }
    // The first delivery: two batches of 7-row files; the retry after a bisect: three batches
    // of 4-row files. Different keys that overlap in offsets.
    let mut files = BTreeSet::new();
    for (cuts, rows) in [(&[0, 20, 47][..], "7"), (&[0, 9, 30, 47][..], "4")] {
        for w in cuts.windows(2) {
            let event = msk_event(&all[w[0]..w[1]])?;
            let (summary, keys) = h
                .stage(&event, &[("DELTASINK_MAX_FILE_ROWS", rows)])
                .await?;
            assert_eq!(summary.rows_staged, w[1] - w[0]);
            files.extend(keys);
        }
    }
    let files: Vec<String> = files.into_iter().collect();
    assert!(files.len() >= 14, "{files:?}");

    // Every file, in random groups and order, a third of them twice.
    let loader = h.loader(
        None,
        ClientOptions::default(),
        &[("DELTASINK_PURGE", "false")],
    )?;
    for (i, invocation) in load_plan(&files, 7).iter().enumerate() {
        let announced = invocation
            .files
            .iter()
            .map(|(k, m)| h.announce(k, m))
            .collect();
        let report = loader.load(announced, long_deadline()).await;
        check_loaded(&report)?;
        // Cold: DESCRIBE (missing), CREATE, MERGE; then one MERGE per invocation.
        let statements = if i == 0 { 3 } else { 1 };
        assert_eq!(report.tables[0].statements, statements, "{report:?}");
    }
    let table = h.table("clicks");
    let rows = query(
        &loader.warehouse,
        &format!(
            "SELECT `n`, `_kafka_partition`, `_kafka_offset`, `page`, `_cdc_op`, `_cdc_deleted` \
             FROM {table} ORDER BY `n`"
        ),
    )
    .await?;
    let expected: Vec<Vec<Option<String>>> = (0..47i64)
        .map(|i| {
            vec![
                Some(i.to_string()),
                Some((i % 3).to_string()),
                Some((5_000 + i / 3).to_string()),
                Some(format!("/p/{}", i % 7)),
                Some("c".into()),
                Some("false".into()),
            ]
        })
        .collect();
    assert_eq!(rows, expected);

    // A full re-drive of every file in one invocation inserts nothing.
    let announced = files.iter().map(|k| h.announce(k, "m-redrive")).collect();
    check_loaded(&loader.load(announced, long_deadline()).await)?;
    let count = query(
        &loader.warehouse,
        &format!("SELECT COUNT(*) AS n FROM {table}"),
    )
    .await?;
    assert_eq!(count[0][0].as_deref(), Some("47"));
    Ok(())
}

// ---- 4. schema evolution mid-stream ---------------------------------------------------------

/// The `(field, connect type)`s of a batch's value schema and its payloads.
type ConnectBatch = (Vec<(&'static str, &'static str)>, Vec<serde_json::Value>);

/// A Kafka Connect JSON value (`schemas.enable=true`) of a struct with the given
/// `(field, connect type)`s.
fn connect_value(fields: &[(&str, &str)], payload: serde_json::Value) -> Vec<u8> {
    let fields: Vec<serde_json::Value> = fields
        .iter()
        .map(|(name, ty)| json!({"field": name, "type": ty, "optional": *name != "id"}))
        .collect();
    json!({
        "schema": {"type": "struct", "name": "metrics.Value", "optional": false, "fields": fields},
        "payload": payload,
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn schema_evolution_adds_widens_and_rescues_without_failing() -> Result<()> {
    let h = Harness::new("evolve").await?;
    let topics = r#"{"telemetry.stepwise": {"value_format": "connect-json"}, "telemetry.at_once": {"value_format": "connect-json"}}"#;
    let big = 5_000_000_000i64;
    // (schema, payloads) per batch.
    let batches: Vec<ConnectBatch> = vec![
        (
            vec![("id", "int64"), ("a", "int32")],
            vec![json!({"id": 1, "a": 10}), json!({"id": 2, "a": -20})],
        ),
        (
            vec![("id", "int64"), ("a", "int32"), ("b", "string")],
            vec![
                json!({"id": 3, "a": 30, "b": "x"}),
                json!({"id": 4, "a": null, "b": "y"}),
            ],
        ),
        (
            vec![("id", "int64"), ("a", "int64"), ("b", "string")],
            vec![
                json!({"id": 5, "a": big, "b": "z"}),
                json!({"id": 6, "a": -big, "b": null}),
            ],
        ),
        (
            vec![("id", "int64"), ("a", "string"), ("b", "string")],
            vec![
                json!({"id": 7, "a": "seven", "b": "w"}),
                json!({"id": 8, "a": "8.5e3", "b": "v"}),
            ],
        ),
        (
            vec![("id", "int64"), ("a", "int32")],
            vec![json!({"id": 9, "a": 90})],
        ),
    ];
    // The same batches on two topics: `telemetry.stepwise` is loaded batch by batch,
    // `telemetry.at_once` in one invocation.
    let stepwise = h.loader(None, ClientOptions::default(), &[])?;
    let mut at_once = Vec::new();
    let mut offset = 0i64;
    for (i, (fields, payloads)) in batches.iter().enumerate() {
        let mut recs = Vec::new();
        for p in payloads {
            for topic in ["telemetry.stepwise", "telemetry.at_once"] {
                recs.push(GenRecord {
                    topic: topic.into(),
                    partition: 0,
                    offset,
                    timestamp_ms: T0 + offset,
                    key: None,
                    value: Some(connect_value(fields, p.clone())),
                });
            }
            offset += 1;
        }
        let (summary, keys) = h
            .stage(&msk_event(&recs)?, &[("DELTASINK_TOPICS", topics)])
            .await?;
        assert_eq!(summary.records_to_errors, 0, "{summary:?}");
        let (now, later): (Vec<_>, Vec<_>) = keys.into_iter().partition(|k| k.contains("stepwise"));
        at_once.extend(later);
        let announced = now
            .iter()
            .map(|k| h.announce(k, &format!("m-{i}")))
            .collect();
        let report = stepwise.load(announced, long_deadline()).await;
        check_loaded(&report).with_context(|| format!("batch {i}"))?;
    }
    let announced = at_once.iter().map(|k| h.announce(k, "m-all")).collect();
    check_loaded(&stepwise.load(announced, long_deadline()).await)?;

    let expected: Vec<Vec<Option<String>>> = [
        (1, Some("10"), None, None),
        (2, Some("-20"), None, None),
        (3, Some("30"), Some("x"), None),
        (4, None, Some("y"), None),
        (5, Some("5000000000"), Some("z"), None),
        (6, Some("-5000000000"), None, None),
        (7, None, Some("w"), Some(r#"{"a":"seven"}"#)),
        (8, None, Some("v"), Some(r#"{"a":"8.5e3"}"#)),
        (9, Some("90"), None, None),
    ]
    .into_iter()
    .map(
        |(id, a, b, rescued): (i64, Option<&str>, Option<&str>, Option<&str>)| {
            vec![
                Some(id.to_string()),
                a.map(str::to_string),
                b.map(str::to_string),
                rescued.map(str::to_string),
            ]
        },
    )
    .collect();
    for name in ["stepwise", "at_once"] {
        let table = h.table(name);
        let rows = query(
            &stepwise.warehouse,
            &format!("SELECT `id`, `a`, `b`, `_rescued_data` FROM {table} ORDER BY `id`"),
        )
        .await?;
        assert_eq!(rows, expected, "table {name}");
        let columns = query(&stepwise.warehouse, &format!("DESCRIBE TABLE {table}")).await?;
        let types: BTreeMap<String, String> = columns
            .iter()
            .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?.to_lowercase())))
            .collect();
        assert_eq!(
            types.get("id").map(String::as_str),
            Some("bigint"),
            "{name}: {types:?}"
        );
        assert_eq!(
            types.get("a").map(String::as_str),
            Some("bigint"),
            "{name}: {types:?}"
        );
        assert_eq!(
            types.get("b").map(String::as_str),
            Some("string"),
            "{name}: {types:?}"
        );
        assert_eq!(
            types.get("_rescued_data").map(String::as_str),
            Some("string"),
            "{name}: {types:?}"
        );
    }
    Ok(())
}

// ---- 5. concurrent loaders (warm Lambda instances) with stale schema caches ------------------

/// Two warm load functions share a table. One of them evolves it (a new column); the other
/// one's cached schema is then stale. A newer version of a row loaded by the stale one must
/// still replace the whole row: the new column becomes NULL when the newer change does not
/// carry it, exactly as a cold loader (or the other warm one) loads the same file.
#[tokio::test]
async fn a_stale_schema_cache_does_not_keep_values_of_an_older_version() -> Result<()> {
    let h = Harness::new("stale").await?;
    let a = h.loader(None, ClientOptions::default(), &[])?;
    let b = h.loader(None, ClientOptions::default(), &[])?;
    // Keyed plain JSON (upsert on the Kafka key's `id`); producers omit null fields.
    let mut offset = 0i64;
    let mut stage = async |rows: &[serde_json::Value]| -> Result<Vec<Announced>> {
        let recs: Vec<GenRecord> = rows
            .iter()
            .map(|row| {
                offset += 1;
                GenRecord {
                    topic: "shop.items".into(),
                    partition: 0,
                    offset,
                    timestamp_ms: T0 + offset,
                    key: Some(json!({"id": row["id"]}).to_string().into_bytes()),
                    value: Some(row.to_string().into_bytes()),
                }
            })
            .collect();
        let (_, keys) = h.stage(&msk_event(&recs)?, &[]).await?;
        Ok(keys.iter().map(|k| h.announce(k, k)).collect())
    };
    let table = h.table("items");
    let rows = async |client: &Client| -> Result<Vec<Vec<Option<String>>>> {
        query(
            &client.warehouse,
            &format!("SELECT `id`, `name`, `score` FROM {table} ORDER BY `id`"),
        )
        .await
    };
    let row = |id: i64, name: &str, score: Option<i64>| {
        vec![
            Some(id.to_string()),
            Some(name.to_string()),
            score.map(|s| s.to_string()),
        ]
    };

    // A creates the table with (id, name) and caches that schema.
    let f1 = stage(&[json!({"id": 1, "name": "a"}), json!({"id": 2, "name": "x"})]).await?;
    check_loaded(&a.load(f1, long_deadline()).await)?;
    // B adds `score` and loads a version of row 1 that has one.
    let f2 = stage(&[json!({"id": 1, "name": "b", "score": 7})]).await?;
    check_loaded(&b.load(f2, long_deadline()).await)?;
    assert_eq!(rows(&b).await?, [row(1, "b", Some(7)), row(2, "x", None)]);
    // A loads a newer version of row 1 without `score`: the whole row is replaced.
    let f3 = stage(&[json!({"id": 1, "name": "c"})]).await?;
    let report = a.load(f3, long_deadline()).await;
    check_loaded(&report)?;
    assert_eq!(
        rows(&a).await?,
        [row(1, "c", None), row(2, "x", None)],
        "the loader with the stale schema cache kept row 1's score of an older version \
         (a cold loader sets it to NULL): {report:?}"
    );
    Ok(())
}

/// The stale loader meets a file with the column the other loader already added: it must
/// load (at worst after a re-delivery), never lose or duplicate the row.
#[tokio::test]
async fn a_stale_schema_cache_meeting_a_column_added_meanwhile_still_loads() -> Result<()> {
    let h = Harness::new("stale2").await?;
    let a = h.loader(None, ClientOptions::default(), &[])?;
    let b = h.loader(None, ClientOptions::default(), &[])?;
    let event = |offset: i64, row: serde_json::Value| {
        msk_event(&[GenRecord {
            topic: "shop.items".into(),
            partition: 0,
            offset,
            timestamp_ms: T0 + offset,
            key: Some(json!({"id": row["id"]}).to_string().into_bytes()),
            value: Some(row.to_string().into_bytes()),
        }])
    };
    let mut files = Vec::new();
    for (offset, row) in [
        (1, json!({"id": 1, "name": "a"})),
        (2, json!({"id": 2, "name": "b", "score": 7})),
        (3, json!({"id": 3, "name": "c", "score": 8})),
    ] {
        let (_, keys) = h.stage(&event(offset, row)?, &[]).await?;
        files.push(keys);
    }
    check_loaded(
        &a.load(vec![h.announce(&files[0][0], "m1")], long_deadline())
            .await,
    )?;
    check_loaded(
        &b.load(vec![h.announce(&files[1][0], "m2")], long_deadline())
            .await,
    )?;
    let first = a
        .load(vec![h.announce(&files[2][0], "m3")], long_deadline())
        .await;
    // The stale ADD COLUMNS fails (the column exists); the loader describes the table again
    // and loads in the same invocation: no message goes back to the queue.
    check_loaded(&first)?;
    assert!(first.tables[0].statements >= 3, "{first:?}");
    let rows = query(
        &a.warehouse,
        &format!(
            "SELECT `id`, `name`, `score` FROM {} ORDER BY `id`",
            h.table("items")
        ),
    )
    .await?;
    let expected: Vec<Vec<Option<String>>> =
        [(1, "a", None), (2, "b", Some("7")), (3, "c", Some("8"))]
            .into_iter()
            .map(|(id, name, score): (i64, &str, Option<&str>)| {
                vec![
                    Some(id.to_string()),
                    Some(name.into()),
                    score.map(str::to_string),
                ]
            })
            .collect();
    assert_eq!(rows, expected);
    eprintln!("first report: {first:?}");
    Ok(())
}
