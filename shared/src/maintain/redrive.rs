//! Re-drive: staged files older than `DELTASINK_REDRIVE_AFTER_MINUTES` without a loaded marker
//! were never loaded (a lost or dead-lettered notification, a load that failed for good). They
//! are loaded through the load function's [`Loader`](crate::load::loader::Loader) — a re-drive
//! is exactly a load, so a file loaded twice changes nothing. A file that can never load (not
//! a readable staged Parquet file) is moved to `<errors prefix>/unloadable/` with a
//! `.reason.json` beside it. Afterwards every staged file is in a table, in the errors prefix,
//! or still in staging with an ERROR log line and a failed invocation (the warehouse refused
//! it; the next run tries again).

use std::collections::HashSet;
use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use tracing::{error, info, warn};

use super::{Clock, MaintainError, Maintainer};
use crate::load::notifications::Announced;
use crate::staging;
use crate::store::{ObjectInfo, ObjectStore};
use crate::warehouse::StatementExecutor;

/// Files handed to one load call: bounds the size of one MERGE's source.
const FILES_PER_LOAD: usize = 500;

/// What a re-drive did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RedriveReport {
    /// Staged files old enough and not marked as loaded.
    pub stranded: usize,
    /// Of those, loaded now.
    pub loaded: usize,
    /// Moved to the errors prefix (can never load).
    pub quarantined: Vec<String>,
    /// Staged files younger than the threshold (their notification may still be on its way).
    pub recent: usize,
    /// Tables whose files did not load (they stay in staging for the next run).
    pub failed_tables: Vec<String>,
}

impl<S: ObjectStore, E: StatementExecutor, C: Clock> Maintainer<S, E, C> {
    pub async fn redrive(&self, deadline: Instant) -> Result<RedriveReport, MaintainError> {
        let mut report = RedriveReport::default();
        let load = &self.config.load;
        let now = self.clock.now_ms();
        let threshold = self.config.redrive_after.as_millis() as i64;
        let marked = self.loaded_markers().await?;
        let staged = self
            .store()
            .list(self.bucket(), &format!("{}/", load.staging_prefix))
            .await?;
        let mut stranded: Vec<ObjectInfo> = Vec::new();
        for object in staged {
            if !object.key.ends_with(".parquet") {
                continue;
            }
            if marked.contains(&object.key) {
                continue;
            }
            if now - object.modified_ms < threshold {
                report.recent += 1;
                continue;
            }
            stranded.push(object);
        }
        report.stranded = stranded.len();
        if stranded.is_empty() {
            info!(recent = report.recent, "re-drive: nothing stranded");
            return Ok(report);
        }
        warn!(
            files = stranded.len(),
            "re-drive: loading staged files whose notification never led to a load"
        );
        for chunk in stranded.chunks(FILES_PER_LOAD) {
            let announced: Vec<Announced> = chunk
                .iter()
                .map(|o| Announced {
                    bucket: self.bucket().to_string(),
                    key: o.key.clone(),
                    message_id: None,
                })
                .collect();
            let result = self.loader.load(announced, deadline).await;
            for key in &result.refused {
                warn!(s3_key = %key, "re-drive: not a staged file of this deployment; left alone");
            }
            for table in &result.tables {
                for bad in &table.unloadable {
                    self.quarantine(&bad.key, &table.table, &bad.reason).await?;
                    report.quarantined.push(bad.key.clone());
                }
                report.loaded += table.files_loaded();
                if let Some(e) = &table.error {
                    error!(table = %table.table, files = table.files, error = %e, "re-drive: table not loaded; its files stay in staging for the next run");
                    report
                        .failed_tables
                        .push(format!("redrive: table {}: {e}", table.table));
                }
            }
        }
        info!(
            stranded = report.stranded,
            loaded = report.loaded,
            quarantined = report.quarantined.len(),
            failed_tables = report.failed_tables.len(),
            "re-drive finished"
        );
        Ok(report)
    }

    /// Staged keys that carry a loaded marker.
    pub(super) async fn loaded_markers(&self) -> Result<HashSet<String>, MaintainError> {
        let state = &self.config.load.state_prefix;
        let markers = self
            .store()
            .list(self.bucket(), &format!("{state}/loaded/"))
            .await?;
        Ok(markers
            .iter()
            .filter_map(|m| staging::staged_key_of_marker(state, &m.key))
            .map(str::to_string)
            .collect())
    }

    /// Moves a staged file that can never load to the errors prefix, with its reason. Copy
    /// first, delete last: a crash in between leaves the file in both places, never in none.
    async fn quarantine(&self, key: &str, table: &str, reason: &str) -> Result<(), MaintainError> {
        let bucket = self.bucket();
        let body = match self.store().get(bucket, key).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let target = staging::unloadable_key(&self.config.errors_prefix, key);
        let why = json!({
            "staged_key": key,
            "table": table,
            "reason": reason,
            "bytes": body.len(),
            "quarantined_at_ms": self.clock.now_ms(),
        });
        self.store()
            .put(bucket, &target, body, "application/octet-stream")
            .await?;
        self.store()
            .put(
                bucket,
                &format!("{target}.reason.json"),
                Bytes::from(why.to_string()),
                "application/json",
            )
            .await?;
        self.store().delete(bucket, key).await?;
        error!(s3_key = %key, errors_key = %target, table = %table, reason = %reason, "re-drive: staged file cannot be loaded; moved to the errors prefix");
        Ok(())
    }
}
