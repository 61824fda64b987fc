//! Tombstones: upsert tables configured with `"hard_delete": true` keep deleted rows as
//! tombstones (`_cdc_deleted = true`) so that a late, older change cannot bring them back.
//! Once a tombstone is older than the table's retention window (`tombstone_retention_hours`,
//! default `DELTASINK_TOMBSTONE_RETENTION_HOURS`, measured on `_cdc_ts`), it is physically
//! removed. The window must exceed the longest possible delivery delay of a change.

use std::time::{Duration, Instant};

use tracing::{Instrument, info, info_span, warn};

use super::{Clock, MaintainError, Maintainer, is_table_missing, reported_count, timestamp_param};
use crate::plan;
use crate::route::TableName;
use crate::store::ObjectStore;
use crate::warehouse::StatementExecutor;

/// What happened to one hard-delete table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TombstoneOutcome {
    pub table: String,
    /// Tombstones with `_cdc_ts` before this instant were removed (ms since the epoch).
    pub cutoff_ms: i64,
    /// Rows removed, when the warehouse reports it.
    pub deleted: Option<i64>,
    pub table_missing: bool,
    pub error: Option<String>,
}

impl<S: ObjectStore, E: StatementExecutor, C: Clock> Maintainer<S, E, C> {
    pub async fn tombstones(&self, deadline: Instant) -> Vec<TombstoneOutcome> {
        let mut outcomes = Vec::new();
        for (table, retention) in &self.config.hard_delete {
            let span = info_span!("tombstones_table", table = %table);
            outcomes.push(
                self.tombstones_table(table, *retention, deadline)
                    .instrument(span)
                    .await,
            );
        }
        outcomes
    }

    async fn tombstones_table(
        &self,
        table: &TableName,
        retention: Duration,
        deadline: Instant,
    ) -> TombstoneOutcome {
        let cutoff_ms = self.clock.now_ms() - retention.as_millis() as i64;
        let target = self.table_ref(table);
        let mut outcome = TombstoneOutcome {
            table: table.to_string(),
            cutoff_ms,
            deleted: None,
            table_missing: false,
            error: None,
        };
        let result = match plan::hard_delete_tombstones(&target, "cutoff") {
            Ok(sql) => {
                self.execute(
                    &target,
                    &sql,
                    &[timestamp_param("cutoff", cutoff_ms)],
                    deadline,
                )
                .await
            }
            Err(e) => Err(MaintainError::Table {
                table: target.sql(),
                detail: e.to_string(),
            }),
        };
        match result {
            Ok(r) => {
                outcome.deleted = reported_count(&r, &["num_affected_rows"]);
                info!(table = %table, cutoff = %crate::value::format_timestamp(cutoff_ms * 1000), deleted = ?outcome.deleted, "tombstones removed");
            }
            Err(MaintainError::Warehouse { source, .. }) if is_table_missing(&source) => {
                outcome.table_missing = true;
                info!(table = %table, "tombstones: the table does not exist yet");
            }
            Err(e) => {
                warn!(table = %table, error = %e, "tombstones not removed");
                outcome.error = Some(e.to_string());
            }
        }
        outcome
    }
}
