//! Purge: with `DELTASINK_PURGE` on (the default), delete the staged files that carry a loaded
//! marker (a load whose delete failed, or files kept while purge was off), then their markers;
//! remove bookkeeping leftovers older than `DELTASINK_STAGING_RETENTION_HOURS` (markers whose
//! file is gone, probes of the deployment check). A staged file without a marker is never
//! deleted, however old: it has not been loaded, and re-drive loads it. With purge off nothing
//! is deleted and the log says what is kept.

use tracing::{info, warn};

use super::{Clock, MaintainError, Maintainer};
use crate::staging;
use crate::store::ObjectStore;
use crate::warehouse::StatementExecutor;

/// What a purge did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub purge_enabled: bool,
    /// Loaded staged files deleted.
    pub loaded_files_deleted: usize,
    /// Markers deleted (with their file, or as leftovers).
    pub markers_deleted: usize,
    /// Other bookkeeping leftovers deleted (deployment check probes).
    pub leftovers_deleted: usize,
    /// Staged files kept because they were not loaded (re-drive's business).
    pub unloaded_kept: usize,
    /// Loaded staged files kept because purge is off.
    pub loaded_kept: usize,
}

impl<S: ObjectStore, E: StatementExecutor, C: Clock> Maintainer<S, E, C> {
    pub async fn purge(&self) -> Result<PurgeReport, MaintainError> {
        let load = &self.config.load;
        let bucket = self.bucket();
        let now = self.clock.now_ms();
        let retention = self.config.staging_retention.as_millis() as i64;
        let mut report = PurgeReport {
            purge_enabled: load.purge,
            ..PurgeReport::default()
        };
        let markers = self
            .store()
            .list(bucket, &format!("{}/loaded/", load.state_prefix))
            .await?;
        let staged = self
            .store()
            .list(bucket, &format!("{}/", load.staging_prefix))
            .await?;
        let staged_keys: std::collections::HashSet<&str> =
            staged.iter().map(|o| o.key.as_str()).collect();
        let marked: std::collections::HashSet<&str> = markers
            .iter()
            .filter_map(|m| staging::staged_key_of_marker(&load.state_prefix, &m.key))
            .collect();
        report.unloaded_kept = staged
            .iter()
            .filter(|o| o.key.ends_with(".parquet") && !marked.contains(o.key.as_str()))
            .count();

        if !load.purge {
            report.loaded_kept = marked.iter().filter(|k| staged_keys.contains(*k)).count();
            info!(
                loaded_kept = report.loaded_kept,
                unloaded = report.unloaded_kept,
                "purge is off (DELTASINK_PURGE=false): staged files are kept for debugging; nothing deleted"
            );
            return Ok(report);
        }

        for marker in &markers {
            let Some(staged_key) = staging::staged_key_of_marker(&load.state_prefix, &marker.key)
            else {
                continue;
            };
            if staged_keys.contains(staged_key) {
                // Loaded (the marker says so): the file first, then its marker.
                delete_tolerant(self.store(), bucket, staged_key).await?;
                report.loaded_files_deleted += 1;
            } else if now - marker.modified_ms < retention {
                continue;
            }
            delete_tolerant(self.store(), bucket, &marker.key).await?;
            report.markers_deleted += 1;
        }

        let probes = self
            .store()
            .list(bucket, &format!("{}/check/", load.state_prefix))
            .await?;
        for probe in probes {
            if now - probe.modified_ms >= retention {
                delete_tolerant(self.store(), bucket, &probe.key).await?;
                report.leftovers_deleted += 1;
            }
        }
        let foreign = staged
            .iter()
            .filter(|o| !o.key.ends_with(".parquet"))
            .count();
        if foreign > 0 {
            warn!(
                objects = foreign,
                "purge: objects under the staging prefix that are not staged files were left alone"
            );
        }
        info!(
            loaded_files_deleted = report.loaded_files_deleted,
            markers_deleted = report.markers_deleted,
            leftovers_deleted = report.leftovers_deleted,
            unloaded_kept = report.unloaded_kept,
            "purge finished"
        );
        Ok(report)
    }
}

/// Deletes `key`; an object already gone is not an error.
async fn delete_tolerant<S: ObjectStore>(
    store: &S,
    bucket: &str,
    key: &str,
) -> Result<(), MaintainError> {
    match store.delete(bucket, key).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
