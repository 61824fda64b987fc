//! The maintain function's configuration: every load setting (it loads through the same code)
//! plus the windows of its jobs and the per-table maintenance settings of `DELTASINK_TABLES`.

use std::collections::HashMap;
use std::time::Duration;

use super::{ConfigError, LoadConfig, Vars, vars};
use crate::plan::DedupColumn;
use crate::route::{TableMode, TableName};

/// A raw ingestion table with a backfill source (`backfill_source` in `DELTASINK_TABLES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillSettings {
    pub table: TableName,
    pub source: TableName,
    /// Deduplication columns; empty = the whole `key`, `value` and `stream_record_timestamp`.
    pub dedup: Vec<DedupColumn>,
}

/// The maintain function's configuration.
#[derive(Debug, Clone)]
pub struct MaintainConfig {
    pub load: LoadConfig,
    /// Where re-drive moves staged files that can never load.
    pub errors_prefix: String,
    /// A staged file older than this that was not loaded is re-driven.
    pub redrive_after: Duration,
    /// Bookkeeping leftovers older than this are removed by purge.
    pub staging_retention: Duration,
    /// Upsert tables with hard delete, and how long their tombstones are kept.
    pub hard_delete: Vec<(TableName, Duration)>,
    pub backfills: Vec<BackfillSettings>,
    pub backfill_min_overlap: Duration,
    pub backfill_deadline: Duration,
    /// Tables the `optimize` job compacts.
    pub optimize_tables: Vec<TableName>,
}

const HOUR: u64 = 3600;

impl MaintainConfig {
    pub fn from_vars(map: &HashMap<String, String>) -> Result<MaintainConfig, ConfigError> {
        use vars::*;
        let load = LoadConfig::from_vars(map)?;
        let v = Vars::new(map);
        let errors_prefix = v.prefix(ERRORS_PREFIX, "errors")?;
        let hours = |name: &str, default: usize| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(
                v.positive(name, default)? as u64 * HOUR,
            ))
        };
        let minutes = |name: &str, default: usize| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(v.positive(name, default)? as u64 * 60))
        };
        let tombstone_default = hours(TOMBSTONE_RETENTION_HOURS, 168)?;

        let mut names: Vec<&TableName> = load.tables.keys().collect();
        names.sort_by_key(|t| t.to_string());
        let mut hard_delete = Vec::new();
        let mut backfills = Vec::new();
        for table in names {
            let settings = &load.tables[table];
            let mode = settings.mode.unwrap_or(load.default_mode);
            let problem = |p: String| ConfigError::new(TABLES, format!("table {table}: {p}"));
            if settings.hard_delete == Some(true) {
                if matches!(mode, TableMode::Append | TableMode::Raw) {
                    return Err(problem(format!(
                        "hard_delete applies to upsert tables, this one is {}",
                        mode.name()
                    )));
                }
                let retention = match settings.tombstone_retention_hours {
                    Some(0) => {
                        return Err(problem(
                            "tombstone_retention_hours must be positive: a tombstone removed at once lets a late, older change bring the row back".into(),
                        ));
                    }
                    Some(h) => Duration::from_secs(h * HOUR),
                    None => tombstone_default,
                };
                hard_delete.push((table.clone(), retention));
            }
            match (&settings.backfill_source, &settings.backfill_dedup_columns) {
                (Some(source), dedup) => {
                    if mode != TableMode::Raw {
                        return Err(problem(format!(
                            "backfill_source applies to raw ingestion tables (mode raw), this one is {}",
                            mode.name()
                        )));
                    }
                    let source = TableName::parse(source)
                        .map_err(|p| problem(format!("backfill_source: {p}")))?;
                    let dedup = dedup
                        .iter()
                        .flatten()
                        .map(|c| DedupColumn::parse(c))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|p| problem(format!("backfill_dedup_columns: {p}")))?;
                    backfills.push(BackfillSettings {
                        table: table.clone(),
                        source,
                        dedup,
                    });
                }
                (None, Some(_)) => {
                    return Err(problem(
                        "backfill_dedup_columns is set without backfill_source".into(),
                    ));
                }
                (None, None) => {}
            }
        }

        let optimize_tables = match v.get(OPTIMIZE_TABLES) {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(TableName::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|p| ConfigError::new(OPTIMIZE_TABLES, p))?,
            None => {
                let mut all: Vec<TableName> = load.tables.keys().cloned().collect();
                all.sort_by_key(|t| t.to_string());
                all
            }
        };

        Ok(MaintainConfig {
            errors_prefix,
            redrive_after: minutes(REDRIVE_AFTER_MINUTES, 180)?,
            staging_retention: hours(STAGING_RETENTION_HOURS, 24)?,
            hard_delete,
            backfills,
            backfill_min_overlap: minutes(BACKFILL_MIN_OVERLAP_MINUTES, 60)?,
            backfill_deadline: hours(BACKFILL_DEADLINE_HOURS, 48)?,
            optimize_tables,
            load,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_vars;

    #[test]
    fn defaults() {
        let c = MaintainConfig::from_vars(&test_vars(&[])).unwrap();
        assert_eq!(c.redrive_after, Duration::from_secs(3 * 3600));
        assert_eq!(c.staging_retention, Duration::from_secs(24 * 3600));
        assert_eq!(c.backfill_min_overlap, Duration::from_secs(3600));
        assert_eq!(c.backfill_deadline, Duration::from_secs(48 * 3600));
        assert_eq!(c.errors_prefix, "errors");
        assert_eq!(c.load.state_prefix, "_deltasink");
        assert!(c.hard_delete.is_empty() && c.backfills.is_empty());
        assert!(c.optimize_tables.is_empty());
    }

    #[test]
    fn table_settings() {
        let c = MaintainConfig::from_vars(&test_vars(&[
            (
                vars::TABLES,
                r#"{"shop.orders": {"mode": "upsert", "hard_delete": true, "tombstone_retention_hours": 2},
                    "shop.customers": {"hard_delete": true},
                    "raw.events": {"mode": "raw", "backfill_source": "legacy.events",
                                   "backfill_dedup_columns": ["value.transaction_id", "key"]}}"#,
            ),
            (vars::TOMBSTONE_RETENTION_HOURS, "10"),
        ]))
        .unwrap();
        let hd: Vec<(String, u64)> = c
            .hard_delete
            .iter()
            .map(|(t, d)| (t.to_string(), d.as_secs() / 3600))
            .collect();
        assert_eq!(
            hd,
            vec![("shop.customers".into(), 10), ("shop.orders".into(), 2)]
        );
        assert_eq!(c.backfills.len(), 1);
        assert_eq!(c.backfills[0].source.to_string(), "legacy.events");
        assert_eq!(c.backfills[0].dedup.len(), 2);
        assert_eq!(c.optimize_tables.len(), 3);
    }

    #[test]
    fn errors_name_the_variable_and_table() {
        let cases = [
            (
                r#"{"t": {"mode": "append", "hard_delete": true}}"#,
                "hard_delete applies to upsert tables",
            ),
            (
                r#"{"t": {"mode": "upsert", "hard_delete": true, "tombstone_retention_hours": 0}}"#,
                "must be positive",
            ),
            (
                r#"{"t": {"mode": "upsert", "backfill_source": "s"}}"#,
                "raw ingestion tables",
            ),
            (
                r#"{"t": {"mode": "raw", "backfill_dedup_columns": ["key"]}}"#,
                "without backfill_source",
            ),
            (
                r#"{"t": {"mode": "raw", "backfill_source": "s", "backfill_dedup_columns": ["value.a-b"]}}"#,
                "backfill_dedup_columns",
            ),
        ];
        for (tables, expected) in cases {
            let e = MaintainConfig::from_vars(&test_vars(&[(vars::TABLES, tables)])).unwrap_err();
            assert_eq!(e.variable, vars::TABLES);
            assert!(e.to_string().contains(expected), "{e}");
            assert!(e.to_string().contains("table t"), "{e}");
        }
        let e = MaintainConfig::from_vars(&test_vars(&[(vars::REDRIVE_AFTER_MINUTES, "soon")]))
            .unwrap_err();
        assert_eq!(e.variable, vars::REDRIVE_AFTER_MINUTES);
        let e =
            MaintainConfig::from_vars(&test_vars(&[(vars::OPTIMIZE_TABLES, "a..b")])).unwrap_err();
        assert_eq!(e.variable, vars::OPTIMIZE_TABLES);
    }
}
