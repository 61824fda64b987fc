//! Each function's report as its invocation's metrics: the meaning of every metric name (the
//! SAM template's alarms and dashboard use these names).

use super::{Metrics, lag_ms, n};
use crate::load::loader::{LoadReport, RowCounts, TableOutcome};
use crate::maintain::MaintainReport;
use crate::stage::StageSummary;

impl StageSummary {
    /// The invocation's metrics (`Function` = `stage`): `RecordsIn`, `BytesIn` (Kafka keys and
    /// values, decoded from base64), `RowsStaged`, `FilesStaged` (Parquet files, not error
    /// files), `RecordsToErrors`, and `StageLagMs` (when the files were written minus the
    /// batch's oldest Kafka timestamp: the batch's largest lag; only for a staged batch with
    /// timestamps).
    pub fn metrics(&self) -> Metrics {
        Metrics::new("stage")
            .count("RecordsIn", n(self.records))
            .bytes("BytesIn", n(self.input_bytes))
            .count("RowsStaged", n(self.rows_staged))
            .count("FilesStaged", n(self.files_staged))
            .count("RecordsToErrors", n(self.records_to_errors))
            .millis(
                "StageLagMs",
                lag_ms(self.staged_at_ms, self.oldest_timestamp_ms),
            )
    }
}

impl LoadReport {
    /// The invocation's metrics (`Function` = `load`): `FilesLoaded`; `RowsInserted`,
    /// `RowsUpdated`, `RowsDeleted` (sums of what the load statements reported; absent when
    /// no statement reported the count); `StatementsRun` (every statement, DESCRIBE and DDL
    /// included); `StatementDurationMs` (the SUM of the statements' wall-clock durations,
    /// retries and backoff included); `Retries`; `CommitLagMs` (the MAX over the tables loaded
    /// of commit time minus the oldest Kafka timestamp of the table's files; absent when no
    /// table committed).
    pub fn metrics(&self) -> Metrics {
        let mut rows = RowCounts::default();
        for t in &self.tables {
            rows.add(t.rows);
        }
        let sum = |f: fn(&TableOutcome) -> u64| self.tables.iter().map(f).sum::<u64>();
        Metrics::new("load")
            .count("FilesLoaded", sum(|t| n(t.files_loaded())))
            .count("RowsInserted", rows.inserted)
            .count("RowsUpdated", rows.updated)
            .count("RowsDeleted", rows.deleted)
            .count("StatementsRun", sum(|t| n(t.statements)))
            .millis("StatementDurationMs", sum(|t| t.statement_ms))
            .count("Retries", self.retries)
            .millis(
                "CommitLagMs",
                self.tables
                    .iter()
                    .filter_map(TableOutcome::commit_lag_ms)
                    .max(),
            )
    }
}

impl MaintainReport {
    /// The invocation's metrics (`Function` = `maintain`), each only for a job that ran:
    /// `FilesRedriven` (stranded staged files loaded), `FilesPurged` (loaded staged files
    /// deleted), `TombstonesDeleted` (sum over the hard-delete tables; absent when a table's
    /// count is not known), `BackfillRows` (rows the backfill MERGEs inserted in this run;
    /// absent when a count is not known).
    pub fn metrics(&self) -> Metrics {
        let tombstones = self.tombstones.as_ref().and_then(|outcomes| {
            outcomes
                .iter()
                .filter(|o| o.error.is_none() && !o.table_missing)
                .map(|o| o.deleted.and_then(|d| u64::try_from(d).ok()))
                .sum::<Option<u64>>()
        });
        let backfill = self.backfill.as_ref().and_then(|outcomes| {
            outcomes
                .iter()
                .filter(|o| o.ran)
                .map(|o| o.rows_inserted.and_then(|r| u64::try_from(r).ok()))
                .sum::<Option<u64>>()
        });
        Metrics::new("maintain")
            .count("FilesRedriven", self.redrive.as_ref().map(|r| n(r.loaded)))
            .count(
                "FilesPurged",
                self.purge.as_ref().map(|p| n(p.loaded_files_deleted)),
            )
            .count("TombstonesDeleted", tombstones)
            .count("BackfillRows", backfill)
    }
}
