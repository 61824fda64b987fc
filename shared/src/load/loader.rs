//! The load pipeline: announced staged files → per table: read footers, create or evolve the
//! table (DDL only when its schema changed), one load statement for all of the table's files,
//! then delete the loaded files. A table that fails reports its SQS messages as batch item
//! failures; nothing is deleted before it is loaded.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use tracing::{Instrument, error, info, info_span, warn};

use super::footer::{self, Footer, FooterError};
use super::notifications::Announced;
use crate::config::{AppendStrategy, LoadConfig};
use crate::metrics;
use crate::plan::{self, PlanError, StagedFile, TableRef};
use crate::route::{TableMode, TableName};
use crate::staging;
use crate::store::{ObjectStore, StoreError};
use crate::value::Field;
use crate::warehouse::{Idempotency, StatementExecutor, StatementResult, WarehouseError};

/// Why one table's files did not load. The table's messages are reported as failures and
/// retried by SQS (then dead-lettered, and re-driven by the maintain function).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("table {table}: {source}")]
    Store { table: String, source: StoreError },
    #[error("table {table}: {source}")]
    Warehouse {
        table: String,
        source: WarehouseError,
    },
    #[error("table {table}: {source}")]
    Plan { table: String, source: PlanError },
    #[error("table {table}: {detail}")]
    Describe { table: String, detail: String },
}

/// What happened to one table in one invocation.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableOutcome {
    pub table: String,
    pub files: usize,
    /// Files announced but already gone (loaded and purged by an earlier delivery).
    pub already_loaded: usize,
    /// Statements run for this table: 1 in steady state (plus DDL when the schema changed).
    pub statements: usize,
    /// Files that can never load (not readable as a staged Parquet file), with the reason:
    /// skipped, their messages failed; maintain's re-drive moves them to the errors prefix.
    pub unloadable: Vec<Unloadable>,
    pub error: Option<String>,
    /// Rows the load statement(s) reported changing.
    pub rows: RowCounts,
    /// Time spent in this table's statements (DESCRIBE, DDL, the load), retries included.
    pub statement_ms: u64,
    /// The oldest Kafka timestamp among the table's files read in this invocation (ms since
    /// the epoch, from the footers' statistics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_kafka_timestamp_ms: Option<i64>,
    /// When the load statement(s) succeeded (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_at_ms: Option<i64>,
}

impl TableOutcome {
    /// Files loaded by this invocation (not already loaded earlier, not unloadable).
    pub fn files_loaded(&self) -> usize {
        if self.error.is_some() {
            return 0;
        }
        self.files
            .saturating_sub(self.already_loaded)
            .saturating_sub(self.unloadable.len())
    }

    /// Commit time minus the oldest Kafka timestamp of the files loaded.
    pub fn commit_lag_ms(&self) -> Option<u64> {
        metrics::lag_ms(self.committed_at_ms, self.oldest_kafka_timestamp_ms)
    }
}

/// The row counts of DML statements, as Databricks reports them (`num_affected_rows`,
/// `num_inserted_rows`, `num_updated_rows`, `num_deleted_rows`). A count the warehouse did
/// not report stays `None`: nothing is inferred.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    pub affected: Option<u64>,
    pub inserted: Option<u64>,
    pub updated: Option<u64>,
    pub deleted: Option<u64>,
}

impl RowCounts {
    /// The counts in a statement's result (its first row).
    pub fn of_result(result: &StatementResult) -> RowCounts {
        let get = |column: &str| result.value(0, column)?.trim().parse::<u64>().ok();
        RowCounts {
            affected: get("num_affected_rows"),
            inserted: get("num_inserted_rows"),
            updated: get("num_updated_rows"),
            deleted: get("num_deleted_rows"),
        }
    }

    /// Adds `other`: each count is the sum of the known values, `None` when neither knew it.
    pub fn add(&mut self, other: RowCounts) {
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
        self.affected = sum(self.affected, other.affected);
        self.inserted = sum(self.inserted, other.inserted);
        self.updated = sum(self.updated, other.updated);
        self.deleted = sum(self.deleted, other.deleted);
    }
}

/// A staged file that can never load.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unloadable {
    pub key: String,
    pub reason: String,
}

/// The result of one invocation.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    pub tables: Vec<TableOutcome>,
    /// SQS message ids to report as batch item failures.
    pub failed_messages: Vec<String>,
    /// Announced objects that are not staged files of this deployment (other bucket, outside
    /// the staging prefix, not Parquet): never loaded.
    pub refused: Vec<String>,
    /// Requests the warehouse client tried again (statements re-submitted, polls and result
    /// fetches retried).
    pub retries: u64,
}

/// The load function's logic and its clients, built once per cold start.
pub struct Loader<S, E> {
    pub config: LoadConfig,
    pub store: S,
    pub warehouse: E,
    /// Table schemas known from earlier invocations of this warm function.
    schemas: Mutex<HashMap<TableName, Vec<Field>>>,
}

struct PendingFile {
    key: String,
    messages: Vec<String>,
}

impl<S: ObjectStore, E: StatementExecutor> Loader<S, E> {
    pub fn new(config: LoadConfig, store: S, warehouse: E) -> Self {
        Loader {
            config,
            store,
            warehouse,
            schemas: Mutex::new(HashMap::new()),
        }
    }

    /// Loads every announced staged file, grouped by table. Logs within one `load` span for
    /// the invocation and one `load_table` span per table.
    pub async fn load(&self, announced: Vec<Announced>, deadline: Instant) -> LoadReport {
        let span = info_span!("load", announced = announced.len());
        let (mut report, retries) = metrics::count_retries(self.load_all(announced, deadline))
            .instrument(span)
            .await;
        report.retries = retries;
        report
    }

    async fn load_all(&self, announced: Vec<Announced>, deadline: Instant) -> LoadReport {
        let mut report = LoadReport::default();
        let mut tables: BTreeMap<TableName, Vec<PendingFile>> = BTreeMap::new();
        for a in announced {
            let table = if a.bucket != self.config.bucket {
                Err(format!(
                    "bucket {} is not the staging bucket {}",
                    a.bucket, self.config.bucket
                ))
            } else if !a.key.ends_with(".parquet") {
                Err("not a Parquet file".to_string())
            } else {
                staging::table_from_key(&self.config.staging_prefix, &a.key)
            };
            let table = match table {
                Ok(t) => t,
                Err(why) => {
                    warn!(s3_key = %a.key, bucket = %a.bucket, "refused: {why}");
                    report.refused.push(format!("s3://{}/{}", a.bucket, a.key));
                    continue;
                }
            };
            let files = tables.entry(table).or_default();
            match files.iter_mut().find(|f| f.key == a.key) {
                Some(f) => f.messages.extend(a.message_id),
                None => files.push(PendingFile {
                    key: a.key,
                    messages: a.message_id.into_iter().collect(),
                }),
            }
        }
        for (table, files) in tables {
            let span = info_span!("load_table", table = %table, files = files.len());
            let outcome = self
                .load_one(&table, &files, deadline, &mut report.failed_messages)
                .instrument(span)
                .await;
            report.tables.push(outcome);
        }
        report
    }

    /// Loads one table's files; the messages of files that did not load go to `failed`.
    async fn load_one(
        &self,
        table: &TableName,
        files: &[PendingFile],
        deadline: Instant,
        failed: &mut Vec<String>,
    ) -> TableOutcome {
        let started = Instant::now();
        let mut outcome = TableOutcome {
            table: table.to_string(),
            files: files.len(),
            ..TableOutcome::default()
        };
        let result = self.load_table(table, files, deadline, &mut outcome).await;
        for bad in &outcome.unloadable {
            error!(s3_key = %bad.key, reason = %bad.reason, "staged file cannot be loaded; maintain's re-drive moves it to the errors prefix");
            let messages = files.iter().filter(|f| f.key == bad.key);
            for m in messages.flat_map(|f| &f.messages) {
                if !failed.contains(m) {
                    failed.push(m.clone());
                }
            }
        }
        match result {
            Ok(()) => info!(
                already_loaded = outcome.already_loaded,
                statements = outcome.statements,
                rows_inserted = outcome.rows.inserted,
                rows_updated = outcome.rows.updated,
                rows_deleted = outcome.rows.deleted,
                commit_lag_ms = outcome.commit_lag_ms(),
                duration_ms = started.elapsed().as_millis() as u64,
                "table loaded"
            ),
            Err(e) => {
                warn!(error = %e, "table not loaded; its messages will be retried");
                outcome.error = Some(e.to_string());
                for f in files {
                    for m in &f.messages {
                        if !failed.contains(m) {
                            failed.push(m.clone());
                        }
                    }
                }
            }
        }
        outcome
    }

    async fn load_table(
        &self,
        table: &TableName,
        pending: &[PendingFile],
        deadline: Instant,
        outcome: &mut TableOutcome,
    ) -> Result<(), LoadError> {
        let name = table.to_string();
        let store_err = |source| LoadError::Store {
            table: name.clone(),
            source,
        };
        // 1. Footers; a file that is gone was loaded and purged by an earlier delivery.
        let mut files: Vec<(String, Footer)> = Vec::with_capacity(pending.len());
        for f in pending {
            match footer::read(&self.store, &self.config.bucket, &f.key).await {
                Ok(footer) => files.push((f.key.clone(), footer)),
                Err(FooterError::Store(e)) if e.is_not_found() => outcome.already_loaded += 1,
                Err(FooterError::Store(e)) => return Err(store_err(e)),
                Err(e @ FooterError::Invalid { .. }) => outcome.unloadable.push(Unloadable {
                    key: f.key.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        if files.is_empty() {
            return Ok(());
        }
        outcome.oldest_kafka_timestamp_ms = files
            .iter()
            .filter_map(|(_, f)| f.oldest_kafka_timestamp_ms)
            .min();

        // 2. Mode and key: the table's settings, else what stage wrote into the files.
        let settings = self.config.tables.get(table);
        let primary_key: Vec<String> = match settings.map(|s| &s.primary_key) {
            Some(pk) if !pk.is_empty() => pk.clone(),
            _ => files
                .iter()
                .find(|(_, f)| !f.primary_key.is_empty())
                .map(|(_, f)| f.primary_key.clone())
                .unwrap_or_default(),
        };
        let mode = match settings
            .and_then(|s| s.mode)
            .or_else(|| files.iter().find_map(|(_, f)| f.mode))
            .unwrap_or(self.config.default_mode)
        {
            TableMode::Auto if !primary_key.is_empty() => TableMode::Upsert,
            TableMode::Auto => TableMode::Append,
            m => m,
        };
        let target = TableRef::from(table).with_defaults(
            self.config.catalog.as_deref(),
            self.config.schema.as_deref(),
        );
        let staged: Vec<StagedFile> = files
            .iter()
            .map(|(key, f)| {
                StagedFile::new(
                    format!("s3://{}/{key}", self.config.bucket),
                    f.fields.clone(),
                )
            })
            .collect();

        // 3-5. Schema, evolution and the load statement. A permanent SQL failure (a column
        // another instance added meanwhile, a lost race on ADD COLUMNS) means this instance's
        // idea of the table is stale: describe it again, re-plan and retry once.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .plan_and_run(
                    table,
                    &target,
                    mode,
                    &primary_key,
                    &staged,
                    deadline,
                    outcome,
                )
                .await
            {
                Ok(schema) => {
                    outcome.committed_at_ms = Some(chrono::Utc::now().timestamp_millis());
                    self.remember_schema(table, schema);
                    break;
                }
                Err(LoadError::Warehouse { source, .. })
                    if attempt == 1
                        && matches!(source, WarehouseError::Failed { .. })
                        && !source.is_retriable() =>
                {
                    warn!(table = %table, error = %source.summary(), "load failed on a stale table schema; describing it again");
                    self.forget_schema(table);
                }
                Err(e) => {
                    self.forget_schema(table);
                    return Err(e);
                }
            }
        }

        // 6. Only now are the files done with: deleted, or kept with a loaded marker.
        for (key, _) in &files {
            self.finish_file(key).await;
        }
        Ok(())
    }

    /// Knows (or creates) the table, evolves it for `staged`, and runs the load statement(s).
    /// Returns the table's schema after the load.
    #[allow(clippy::too_many_arguments)]
    async fn plan_and_run(
        &self,
        table: &TableName,
        target: &TableRef,
        mode: TableMode,
        primary_key: &[String],
        staged: &[StagedFile],
        deadline: Instant,
        outcome: &mut TableOutcome,
    ) -> Result<Vec<Field>, LoadError> {
        let name = table.to_string();
        // 3. The table's schema: cached, described, or created.
        let current = match self.cached_schema(table) {
            Some(s) => s,
            None => match self.describe(target, deadline, outcome).await? {
                Some(s) => s,
                None => {
                    let schema = plan::evolve_files(&[], staged).schema;
                    let sql = plan::create_table(target, &schema, mode, primary_key).map_err(
                        |source| LoadError::Plan {
                            table: name.clone(),
                            source,
                        },
                    )?;
                    self.run(&name, &sql, Idempotency::Safe, deadline, outcome)
                        .await?;
                    info!(table = %table, mode = mode.name(), "table created");
                    schema
                }
            },
        };

        // 4. Evolve when the files bring new columns or wider types.
        let evolution = plan::evolve_files(&current, staged);
        for incompatible in &evolution.incompatible {
            warn!(
                table = %table,
                column = %incompatible.column,
                target = %incompatible.target.sql_name(),
                incoming = %incompatible.incoming.sql_name(),
                "incompatible type change: values kept in _rescued_data"
            );
        }
        if !evolution.is_empty() {
            for sql in plan::evolution_sql(target, &evolution) {
                self.run(&name, &sql, Idempotency::Unsafe, deadline, outcome)
                    .await?;
            }
            info!(table = %table, added = evolution.add.len(), widened = evolution.widen.len(), "schema evolved");
        }
        let schema = evolution.schema;

        // 5. One statement loads every file of the table.
        let plan_err = |source| LoadError::Plan {
            table: name.clone(),
            source,
        };
        let statements = match mode {
            TableMode::Upsert => {
                vec![plan::merge_upsert(target, &schema, staged, primary_key).map_err(plan_err)?]
            }
            _ => match self.config.append {
                AppendStrategy::Merge => {
                    vec![plan::merge_append(target, &schema, staged, mode).map_err(plan_err)?]
                }
                AppendStrategy::CopyInto => {
                    plan::copy_into(target, &schema, staged).map_err(plan_err)?
                }
            },
        };
        for sql in &statements {
            let result = self
                .run(&name, sql, Idempotency::Safe, deadline, outcome)
                .await?;
            outcome.rows.add(RowCounts::of_result(&result));
        }
        Ok(schema)
    }

    /// A loaded file is deleted (purge on) or kept with a loaded marker (purge off) so that
    /// maintain's re-drive skips it. A failed delete also leaves a marker, for maintain's purge.
    /// Best effort: without the marker, re-drive loads the file again, which changes nothing.
    async fn finish_file(&self, key: &str) {
        let bucket = &self.config.bucket;
        if self.config.purge {
            match self.store.delete(bucket, key).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(s3_key = %key, error = %e, "loaded file not deleted; marking it for purge")
                }
            }
        }
        let marker = staging::loaded_marker_key(&self.config.state_prefix, key);
        if let Err(e) = self
            .store
            .put(
                bucket,
                &marker,
                bytes::Bytes::new(),
                "application/octet-stream",
            )
            .await
        {
            warn!(s3_key = %key, error = %e, "loaded marker not written; re-drive will load the file again (harmless)");
        }
    }

    async fn run(
        &self,
        table: &str,
        sql: &str,
        idempotency: Idempotency,
        deadline: Instant,
        outcome: &mut TableOutcome,
    ) -> Result<StatementResult, LoadError> {
        outcome.statements += 1;
        let started = Instant::now();
        let result = self
            .warehouse
            .execute(sql, &[], idempotency, deadline)
            .await
            .map_err(|source| LoadError::Warehouse {
                table: table.to_string(),
                source,
            });
        outcome.statement_ms = outcome
            .statement_ms
            .saturating_add(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        result
    }

    /// The table's columns, or `None` when it does not exist (maintain reads tables this way
    /// too).
    pub(crate) async fn describe(
        &self,
        target: &TableRef,
        deadline: Instant,
        outcome: &mut TableOutcome,
    ) -> Result<Option<Vec<Field>>, LoadError> {
        let sql = format!("DESCRIBE TABLE {}", target.sql());
        let result = match self
            .run(&target.sql(), &sql, Idempotency::Safe, deadline, outcome)
            .await
        {
            Ok(r) => r,
            Err(LoadError::Warehouse { source, .. }) if is_table_missing(&source) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        fields_of_describe(&result)
            .map(Some)
            .map_err(|detail| LoadError::Describe {
                table: target.sql(),
                detail,
            })
    }

    fn cached_schema(&self, table: &TableName) -> Option<Vec<Field>> {
        self.schemas.lock().ok()?.get(table).cloned()
    }

    fn remember_schema(&self, table: &TableName, schema: Vec<Field>) {
        if let Ok(mut m) = self.schemas.lock() {
            m.insert(table.clone(), schema);
        }
    }

    fn forget_schema(&self, table: &TableName) {
        if let Ok(mut m) = self.schemas.lock() {
            m.remove(table);
        }
    }
}

/// The columns of a `DESCRIBE TABLE` result (up to the first blank or `#` row).
pub fn fields_of_describe(result: &StatementResult) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    for row in &result.rows {
        let column = row.first().cloned().flatten().unwrap_or_default();
        if column.is_empty() || column.starts_with('#') {
            break;
        }
        let type_text = row.get(1).cloned().flatten().unwrap_or_default();
        let ty = crate::sql::parse_type(&type_text)
            .map_err(|detail| format!("column {column:?}: {detail}"))?;
        fields.push(Field::new(column, ty));
    }
    Ok(fields)
}

/// Whether a statement failed because its table does not exist.
pub fn is_table_missing(e: &WarehouseError) -> bool {
    e.error_code() == Some("TABLE_OR_VIEW_NOT_FOUND")
        || e.sql_state() == Some("42P01")
        || e.to_string().contains("TABLE_OR_VIEW_NOT_FOUND")
}
