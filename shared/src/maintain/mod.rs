//! The maintain function: re-drive stranded staged files, purge staging, retire tombstones,
//! run one-time backfills once their overlap check passes, and optionally compact tables.
//!
//! Every job runs on its own: a job that fails is reported (and fails the invocation, so the
//! function's error alarm fires) without stopping the others. Loads go through the load
//! function's [`Loader`], so a re-drive is exactly a load.

mod backfill;
mod purge;
mod redrive;
mod tombstones;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use serde_json::Value as Json;
use tracing::{Instrument, info, info_span, warn};

use crate::config::MaintainConfig;
use crate::load::loader::{LoadError, Loader, TableOutcome, is_table_missing};
use crate::plan::TableRef;
use crate::route::TableName;
use crate::store::{ObjectStore, StoreError};
use crate::warehouse::{Idempotency, Param, StatementExecutor, StatementResult, WarehouseError};

pub use backfill::{BackfillOutcome, BackfillState, BackfillStatus};
pub use purge::PurgeReport;
pub use redrive::RedriveReport;
pub use tombstones::TombstoneOutcome;

/// The time source of the jobs' windows; injectable so tests can move time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to (tests and local replays).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(ms))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance_hours(&self, hours: f64) {
        self.0
            .fetch_add((hours * 3_600_000.0) as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock> Clock for &C {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

/// One job of the maintain function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    Redrive,
    Purge,
    Tombstones,
    Backfill,
    Optimize,
    Check,
}

impl Job {
    /// The jobs of the regular schedule, in order: loads first, so purge sees their markers.
    pub const REGULAR: [Job; 4] = [Job::Redrive, Job::Purge, Job::Tombstones, Job::Backfill];

    pub fn parse(name: &str) -> Option<Job> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "redrive" | "re-drive" => Job::Redrive,
            "purge" => Job::Purge,
            "tombstones" => Job::Tombstones,
            "backfill" => Job::Backfill,
            "optimize" => Job::Optimize,
            "check" => Job::Check,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Job::Redrive => "redrive",
            Job::Purge => "purge",
            Job::Tombstones => "tombstones",
            Job::Backfill => "backfill",
            Job::Optimize => "optimize",
            Job::Check => "check",
        }
    }

    /// The jobs an invocation asks for: an EventBridge schedule event, `{}` or
    /// `{"job": "all"}` → the regular jobs; `{"job": "purge"}` → one job;
    /// `{"jobs": ["redrive", "purge"]}` → several.
    pub fn from_input(input: &Json) -> Result<Vec<Job>, String> {
        const EXPECTED: &str = "redrive, purge, tombstones, backfill, optimize, check or all";
        let one = |v: &Json| -> Result<Vec<Job>, String> {
            let name = v
                .as_str()
                .ok_or_else(|| format!("a job name must be a string ({EXPECTED}), got {v}"))?;
            if name.eq_ignore_ascii_case("all") {
                return Ok(Job::REGULAR.to_vec());
            }
            Job::parse(name)
                .map(|j| vec![j])
                .ok_or_else(|| format!("unknown job {name:?}: expected {EXPECTED}"))
        };
        match input {
            Json::Null => Ok(Job::REGULAR.to_vec()),
            Json::Object(map) => {
                if let Some(job) = map.get("job") {
                    return one(job);
                }
                if let Some(jobs) = map.get("jobs") {
                    let list = jobs.as_array().ok_or_else(|| {
                        format!("`jobs` must be an array of job names ({EXPECTED})")
                    })?;
                    let mut out = Vec::new();
                    for j in list {
                        for job in one(j)? {
                            if !out.contains(&job) {
                                out.push(job);
                            }
                        }
                    }
                    return Ok(out);
                }
                // An EventBridge (or Scheduler) event without our input, or `{}`.
                Ok(Job::REGULAR.to_vec())
            }
            other => Err(format!(
                "expected a schedule event or {{\"job\": \"...\"}} ({EXPECTED}), got {other}"
            )),
        }
    }
}

/// A job that could not do its work (infrastructure, a table that failed to load).
#[derive(Debug, thiserror::Error)]
pub enum MaintainError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("table {table}: {source}")]
    Warehouse {
        table: String,
        source: WarehouseError,
    },
    #[error("table {table}: {detail}")]
    Table { table: String, detail: String },
    #[error("{0}")]
    Load(#[from] LoadError),
}

/// What one invocation did, job by job.
#[derive(Debug, Default, serde::Serialize)]
pub struct MaintainReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redrive: Option<RedriveReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge: Option<PurgeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tombstones: Option<Vec<TombstoneOutcome>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<Vec<BackfillOutcome>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimized: Option<Vec<String>>,
    /// One line per job or table that failed.
    pub errors: Vec<String>,
}

impl MaintainReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The maintain function's logic and clients, built once per cold start.
pub struct Maintainer<S, E, C> {
    pub config: MaintainConfig,
    /// The load function's loader: re-drives load through it; its store and warehouse serve
    /// the other jobs.
    pub loader: Loader<S, E>,
    pub clock: C,
}

impl<S: ObjectStore, E: StatementExecutor, C: Clock> Maintainer<S, E, C> {
    pub fn new(config: MaintainConfig, store: S, warehouse: E, clock: C) -> Self {
        let loader = Loader::new(config.load.clone(), store, warehouse);
        Maintainer {
            config,
            loader,
            clock,
        }
    }

    fn store(&self) -> &S {
        &self.loader.store
    }

    fn bucket(&self) -> &str {
        &self.config.load.bucket
    }

    /// Runs `jobs` in order (`Check` is not handled here: see the `check` module).
    pub async fn run(&self, jobs: &[Job], deadline: Instant) -> MaintainReport {
        let mut report = MaintainReport::default();
        for &job in jobs {
            if Instant::now() >= deadline {
                warn!(
                    job = job.name(),
                    "not started: the invocation deadline is near"
                );
                report
                    .errors
                    .push(format!("{}: not started before the deadline", job.name()));
                continue;
            }
            let started = Instant::now();
            let span = info_span!("maintain_job", job = job.name());
            self.run_job(job, deadline, &mut report)
                .instrument(span.clone())
                .await;
            if job == Job::Check {
                continue;
            }
            span.in_scope(|| {
                info!(
                    duration_ms = started.elapsed().as_millis() as u64,
                    "job finished"
                )
            });
        }
        report
    }

    async fn run_job(&self, job: Job, deadline: Instant, report: &mut MaintainReport) {
        match job {
            Job::Redrive => match self.redrive(deadline).await {
                Ok(r) => {
                    report.errors.extend(r.failed_tables.iter().cloned());
                    report.redrive = Some(r);
                }
                Err(e) => report.errors.push(format!("redrive: {e}")),
            },
            Job::Purge => match self.purge().await {
                Ok(r) => report.purge = Some(r),
                Err(e) => report.errors.push(format!("purge: {e}")),
            },
            Job::Tombstones => {
                let outcomes = self.tombstones(deadline).await;
                report.errors.extend(
                    outcomes
                        .iter()
                        .filter_map(|o| o.error.as_ref().map(|e| format!("tombstones: {e}"))),
                );
                report.tombstones = Some(outcomes);
            }
            Job::Backfill => {
                let outcomes = self.backfill(deadline).await;
                report.errors.extend(
                    outcomes
                        .iter()
                        .filter_map(|o| o.error.as_ref().map(|e| format!("backfill: {e}"))),
                );
                report.backfill = Some(outcomes);
            }
            Job::Optimize => {
                let (done, errors) = self.optimize(deadline).await;
                report.optimized = Some(done);
                report.errors.extend(errors);
            }
            Job::Check => {}
        }
    }

    /// `OPTIMIZE` of every configured table that exists.
    async fn optimize(&self, deadline: Instant) -> (Vec<String>, Vec<String>) {
        let mut done = Vec::new();
        let mut errors = Vec::new();
        for table in &self.config.optimize_tables {
            let target = self.table_ref(table);
            match self
                .execute(&target, &crate::plan::optimize(&target), &[], deadline)
                .await
            {
                Ok(_) => {
                    info!(table = %table, "optimized");
                    done.push(table.to_string());
                }
                Err(MaintainError::Warehouse { source, .. }) if is_table_missing(&source) => {
                    info!(table = %table, "not optimized: the table does not exist yet");
                }
                Err(e) => {
                    warn!(table = %table, error = %e, "optimize failed");
                    errors.push(format!("optimize: {e}"));
                }
            }
        }
        (done, errors)
    }

    fn table_ref(&self, table: &TableName) -> TableRef {
        TableRef::from(table).with_defaults(
            self.config.load.catalog.as_deref(),
            self.config.load.schema.as_deref(),
        )
    }

    async fn execute(
        &self,
        target: &TableRef,
        sql: &str,
        params: &[Param],
        deadline: Instant,
    ) -> Result<StatementResult, MaintainError> {
        self.loader
            .warehouse
            .execute(sql, params, Idempotency::Safe, deadline)
            .await
            .map_err(|source| MaintainError::Warehouse {
                table: target.sql(),
                source,
            })
    }

    /// Runs a query answering one integer (or NULL).
    async fn query_i64(
        &self,
        target: &TableRef,
        sql: &str,
        params: &[Param],
        deadline: Instant,
    ) -> Result<Option<i64>, MaintainError> {
        let result = self.execute(target, sql, params, deadline).await?;
        single_i64(&result).map_err(|detail| MaintainError::Table {
            table: target.sql(),
            detail,
        })
    }

    /// The table's columns, or `None` when it does not exist: the load function's DESCRIBE.
    async fn describe(
        &self,
        target: &TableRef,
        deadline: Instant,
    ) -> Result<Option<Vec<crate::value::Field>>, MaintainError> {
        let mut scratch = TableOutcome::default();
        Ok(self.loader.describe(target, deadline, &mut scratch).await?)
    }
}

/// The row count a DML statement reported: the first of the Databricks columns `names` that
/// holds a number (`num_affected_rows`, …), else the first column (engines that answer a
/// single count).
fn reported_count(result: &StatementResult, names: &[&str]) -> Option<i64> {
    names
        .iter()
        .filter_map(|name| result.value(0, name))
        .find_map(|v| v.trim().parse().ok())
        .or_else(|| single_i64(result).ok().flatten())
}

/// The single value of a one-row, one-column result, as an integer (`None` for NULL).
fn single_i64(result: &StatementResult) -> Result<Option<i64>, String> {
    match result.rows.first().and_then(|r| r.first()) {
        None | Some(None) => Ok(None),
        Some(Some(text)) => text
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("expected a whole number, got {text:?}")),
    }
}

/// A TIMESTAMP statement parameter for an instant in milliseconds (UTC, explicit `Z`).
fn timestamp_param(name: &str, ms: i64) -> Param {
    Param {
        name: name.to_string(),
        value: Some(crate::value::format_timestamp(ms * 1000)),
        type_name: Some("TIMESTAMP".to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_select_jobs() {
        let schedule = json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "1", "time": "2026-11-21T00:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:1:rule/m"], "detail": {}
        });
        assert_eq!(Job::from_input(&schedule).unwrap(), Job::REGULAR.to_vec());
        assert_eq!(Job::from_input(&json!({})).unwrap(), Job::REGULAR.to_vec());
        assert_eq!(
            Job::from_input(&json!({"job": "purge"})).unwrap(),
            vec![Job::Purge]
        );
        assert_eq!(
            Job::from_input(&json!({"job": "ALL"})).unwrap(),
            Job::REGULAR.to_vec()
        );
        assert_eq!(
            Job::from_input(&json!({"jobs": ["backfill", "optimize", "backfill"]})).unwrap(),
            vec![Job::Backfill, Job::Optimize]
        );
        let e = Job::from_input(&json!({"job": "vacuum"})).unwrap_err();
        assert!(e.contains("vacuum") && e.contains("redrive"), "{e}");
        assert!(Job::from_input(&json!({"job": 3})).is_err());
        assert!(Job::from_input(&json!({"jobs": "purge"})).is_err());
        assert!(Job::from_input(&json!([1])).is_err());
    }

    #[test]
    fn sample_events_select_their_jobs() {
        let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let read = |name: &str| -> Json {
            serde_json::from_str(&std::fs::read_to_string(events.join(name)).unwrap()).unwrap()
        };
        assert_eq!(
            Job::from_input(&read("schedule.json")).unwrap(),
            Job::REGULAR.to_vec()
        );
        for job in [
            Job::Purge,
            Job::Redrive,
            Job::Tombstones,
            Job::Backfill,
            Job::Optimize,
            Job::Check,
        ] {
            let name = format!("maintain-{}.json", job.name());
            assert_eq!(Job::from_input(&read(&name)).unwrap(), vec![job], "{name}");
        }
    }

    #[test]
    fn reported_counts_prefer_the_named_columns() {
        let result = |columns: &[&str], row: &[Option<&str>]| StatementResult {
            statement_id: "s".into(),
            columns: columns
                .iter()
                .map(|c| (c.to_string(), "BIGINT".into()))
                .collect(),
            rows: vec![row.iter().map(|v| v.map(str::to_string)).collect()],
            row_count: 1,
        };
        let databricks = result(
            &["num_affected_rows", "num_inserted_rows"],
            &[Some("7"), Some("5")],
        );
        assert_eq!(
            reported_count(&databricks, &["num_inserted_rows", "num_affected_rows"]),
            Some(5)
        );
        assert_eq!(reported_count(&databricks, &["num_affected_rows"]), Some(7));
        let single = result(&["count"], &[Some("3")]);
        assert_eq!(reported_count(&single, &["num_affected_rows"]), Some(3));
        let none = result(&["count"], &[None]);
        assert_eq!(reported_count(&none, &["num_affected_rows"]), None);
    }

    #[test]
    fn timestamps_are_utc_parameters() {
        let p = timestamp_param("cutoff", 1_700_000_000_123);
        assert_eq!(p.value.as_deref(), Some("2023-11-14T22:13:20.123000Z"));
        assert_eq!(p.type_name.as_deref(), Some("TIMESTAMP"));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance_hours(1.5);
        assert_eq!(c.now_ms(), 1000 + 5_400_000);
    }
}
