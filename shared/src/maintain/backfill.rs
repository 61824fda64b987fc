//! The one-time backfill of raw ingestion tables (`backfill_source` in `DELTASINK_TABLES`).
//!
//! Per table, a state object (`<state prefix>/backfill/<table>.json`) walks through
//! `waiting` → `started` → `done`:
//! - **waiting**: created the first time maintain sees the ingestion table (the moment the
//!   stream was first seen; the deadline counts from it). Each run checks the overlap: the
//!   backfill's newest `stream_record_timestamp` must reach at least
//!   `DELTASINK_BACKFILL_MIN_OVERLAP_MINUTES` past the table's oldest `stream` row. When it
//!   does, or when `DELTASINK_BACKFILL_DEADLINE_HOURS` have passed since the stream was first
//!   seen (logged as a warning: the overlap was not met), the state becomes `started`.
//! - **started**: the MERGE runs (see [`crate::plan::backfill_merge`]): it only inserts rows
//!   whose dedup values the table lacks, so running it again after a crash (before `done` was
//!   written) inserts nothing twice. The decision is not re-taken: a started backfill finishes.
//! - **done**: never runs again.

use std::time::Instant;

use bytes::Bytes;
use tracing::{Instrument, info, info_span, warn};

use super::{Clock, MaintainError, Maintainer, reported_count};
use crate::config::BackfillSettings;
use crate::plan;
use crate::staging;
use crate::store::ObjectStore;
use crate::warehouse::StatementExecutor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillStatus {
    Waiting,
    Started,
    Done,
}

/// The persisted progress of one table's backfill.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackfillState {
    pub table: String,
    pub source: String,
    pub status: BackfillStatus,
    /// When maintain first saw the ingestion table (ms since the epoch).
    pub stream_first_seen_ms: i64,
    #[serde(default)]
    pub started_at_ms: Option<i64>,
    #[serde(default)]
    pub overlap_met: Option<bool>,
    #[serde(default)]
    pub completed_at_ms: Option<i64>,
    #[serde(default)]
    pub rows_inserted: Option<i64>,
}

/// What one run did for one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackfillOutcome {
    pub table: String,
    pub source: String,
    /// The status after this run (`None`: the ingestion table does not exist yet).
    pub status: Option<BackfillStatus>,
    /// Whether the MERGE ran in this run.
    pub ran: bool,
    pub overlap_met: Option<bool>,
    /// Newest `stream_record_timestamp` of the source, µs since the epoch.
    pub backfill_newest_us: Option<i64>,
    /// Oldest `stream_record_timestamp` of the table's `stream` rows, µs since the epoch.
    pub stream_oldest_us: Option<i64>,
    pub rows_inserted: Option<i64>,
    pub error: Option<String>,
}

impl<S: ObjectStore, E: StatementExecutor, C: Clock> Maintainer<S, E, C> {
    pub async fn backfill(&self, deadline: Instant) -> Vec<BackfillOutcome> {
        let mut outcomes = Vec::new();
        for settings in &self.config.backfills {
            let mut outcome = BackfillOutcome {
                table: settings.table.to_string(),
                source: settings.source.to_string(),
                status: None,
                ran: false,
                overlap_met: None,
                backfill_newest_us: None,
                stream_oldest_us: None,
                rows_inserted: None,
                error: None,
            };
            let span =
                info_span!("backfill_table", table = %settings.table, source = %settings.source);
            if let Err(e) = self
                .backfill_table(settings, deadline, &mut outcome)
                .instrument(span)
                .await
            {
                warn!(table = %settings.table, source = %settings.source, error = %e, "backfill not done");
                outcome.error = Some(e.to_string());
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    /// The state of a table's backfill, if any.
    pub async fn backfill_state(
        &self,
        settings: &BackfillSettings,
    ) -> Result<Option<BackfillState>, MaintainError> {
        let key = staging::backfill_state_key(&self.config.load.state_prefix, &settings.table);
        match self.store().get(self.bucket(), &key).await {
            Ok(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| MaintainError::Table {
                    table: settings.table.to_string(),
                    detail: format!(
                        "backfill state s3://{}/{key} is not readable ({e}); fix or delete it",
                        self.bucket()
                    ),
                }),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn save_backfill_state(
        &self,
        settings: &BackfillSettings,
        state: &BackfillState,
    ) -> Result<(), MaintainError> {
        let key = staging::backfill_state_key(&self.config.load.state_prefix, &settings.table);
        let body = serde_json::to_vec_pretty(state).map_err(|e| MaintainError::Table {
            table: settings.table.to_string(),
            detail: format!("backfill state not serializable: {e}"),
        })?;
        self.store()
            .put(self.bucket(), &key, Bytes::from(body), "application/json")
            .await?;
        Ok(())
    }

    async fn backfill_table(
        &self,
        settings: &BackfillSettings,
        deadline: Instant,
        outcome: &mut BackfillOutcome,
    ) -> Result<(), MaintainError> {
        let mut state = self.backfill_state(settings).await?;
        if let Some(s) = &state {
            outcome.status = Some(s.status);
            outcome.rows_inserted = s.rows_inserted;
            if s.status == BackfillStatus::Done {
                return Ok(());
            }
        }
        let target = self.table_ref(&settings.table);
        let Some(target_fields) = self.describe(&target, deadline).await? else {
            info!(table = %settings.table, "backfill waits: the ingestion table does not exist yet");
            return Ok(());
        };
        let now = self.clock.now_ms();
        let state = match &mut state {
            Some(s) => s,
            None => {
                let fresh = BackfillState {
                    table: settings.table.to_string(),
                    source: settings.source.to_string(),
                    status: BackfillStatus::Waiting,
                    stream_first_seen_ms: now,
                    started_at_ms: None,
                    overlap_met: None,
                    completed_at_ms: None,
                    rows_inserted: None,
                };
                self.save_backfill_state(settings, &fresh).await?;
                info!(table = %settings.table, "backfill: stream first seen; waiting for the overlap");
                state.insert(fresh)
            }
        };
        outcome.status = Some(state.status);

        let source = self.table_ref(&settings.source);
        let source_fields =
            self.describe(&source, deadline)
                .await?
                .ok_or_else(|| MaintainError::Table {
                    table: settings.table.to_string(),
                    detail: format!(
                        "backfill source {} does not exist; create it or fix backfill_source",
                        source.sql()
                    ),
                })?;

        if state.status == BackfillStatus::Waiting {
            let newest = self
                .query_i64(&source, &plan::backfill_newest(&source), &[], deadline)
                .await?;
            let oldest_stmt = plan::stream_oldest(&target);
            let oldest = self
                .query_i64(&target, &oldest_stmt.sql, &oldest_stmt.params, deadline)
                .await?;
            outcome.backfill_newest_us = newest;
            outcome.stream_oldest_us = oldest;
            let min_overlap_us = self.config.backfill_min_overlap.as_micros() as i64;
            let overlap_met =
                matches!((newest, oldest), (Some(n), Some(o)) if n >= o + min_overlap_us);
            let waited_ms = now - state.stream_first_seen_ms;
            let deadline_passed = waited_ms >= self.config.backfill_deadline.as_millis() as i64;
            outcome.overlap_met = Some(overlap_met);
            if !overlap_met && !deadline_passed {
                info!(
                    table = %settings.table,
                    backfill_newest = ?newest.map(crate::value::format_timestamp),
                    stream_oldest = ?oldest.map(crate::value::format_timestamp),
                    waited_hours = waited_ms / 3_600_000,
                    "backfill waits: the overlap is not met yet"
                );
                return Ok(());
            }
            if !overlap_met {
                warn!(
                    table = %settings.table,
                    backfill_newest = ?newest.map(crate::value::format_timestamp),
                    stream_oldest = ?oldest.map(crate::value::format_timestamp),
                    waited_hours = waited_ms / 3_600_000,
                    "backfill runs without the overlap: the deadline since the stream was first seen has passed"
                );
            }
            state.status = BackfillStatus::Started;
            state.started_at_ms = Some(now);
            state.overlap_met = Some(overlap_met);
            self.save_backfill_state(settings, state).await?;
            outcome.status = Some(state.status);
        } else {
            info!(table = %settings.table, "backfill: finishing a run that started earlier");
            outcome.overlap_met = state.overlap_met;
        }

        let merge = plan::backfill_merge(
            &target,
            &target_fields,
            &source,
            &source_fields,
            &settings.dedup,
        )
        .map_err(|e| MaintainError::Table {
            table: settings.table.to_string(),
            detail: e.to_string(),
        })?;
        let result = self
            .execute(&target, &merge.sql, &merge.params, deadline)
            .await?;
        outcome.ran = true;
        let rows = reported_count(&result, &["num_inserted_rows", "num_affected_rows"]);
        state.status = BackfillStatus::Done;
        state.completed_at_ms = Some(self.clock.now_ms());
        state.rows_inserted = rows;
        self.save_backfill_state(settings, state).await?;
        outcome.status = Some(BackfillStatus::Done);
        outcome.rows_inserted = rows;
        info!(table = %settings.table, source = %settings.source, rows_inserted = ?rows, overlap_met = ?state.overlap_met, "backfill done");
        Ok(())
    }
}
