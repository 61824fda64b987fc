//! The load function's configuration.

use std::collections::HashMap;
use std::time::Duration;

use super::{ConfigError, Vars, vars};
use crate::route::{TableMode, TableName, TableSettings};
use crate::warehouse::{ConnectionSettings, Credentials};

/// How append and raw tables are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendStrategy {
    /// Insert-only MERGE on the Kafka coordinates: each record exactly once, even when a
    /// retried batch split differently (bisect on error) staged overlapping files.
    Merge,
    /// `COPY INTO`: cheaper, idempotent per file only (overlapping files would duplicate rows).
    CopyInto,
}

/// The load function's configuration.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub bucket: String,
    pub staging_prefix: String,
    pub connection: ConnectionSettings,
    pub credentials: Credentials,
    /// Catalog and schema for table names that lack them.
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// Prefix of deltasink's own bookkeeping objects (loaded-file markers, backfill state):
    /// never under the staging prefix, never `.parquet`, so they trigger no load.
    pub state_prefix: String,
    /// Delete staged files once loaded.
    pub purge: bool,
    pub append: AppendStrategy,
    pub tables: HashMap<TableName, TableSettings>,
    pub default_mode: TableMode,
    /// Time kept free before the Lambda deadline: statements are cancelled before it.
    pub deadline_margin: Duration,
}

impl LoadConfig {
    pub fn from_vars(map: &HashMap<String, String>) -> Result<LoadConfig, ConfigError> {
        use vars::*;
        let v = Vars::new(map);
        let bucket = v
            .required(
                STAGING_BUCKET,
                "the S3 bucket that holds staged Parquet files",
            )?
            .to_string();
        let staging_prefix = v.prefix(STAGING_PREFIX, "staging")?;
        let state_prefix = v.prefix(STATE_PREFIX, "_deltasink")?;
        if state_prefix == staging_prefix
            || state_prefix.starts_with(&format!("{staging_prefix}/"))
            || staging_prefix.starts_with(&format!("{state_prefix}/"))
        {
            return Err(ConfigError::new(
                STATE_PREFIX,
                format!(
                    "{state_prefix:?} overlaps the staging prefix {staging_prefix:?}: bookkeeping objects must live outside it"
                ),
            ));
        }

        let connection = match (
            v.get(DATABRICKS_JDBC_URL),
            v.get(DATABRICKS_HTTP_PATH),
            v.get(DATABRICKS_WAREHOUSE_ID),
        ) {
            (Some(jdbc), _, _) => ConnectionSettings::parse(v.get(DATABRICKS_HOST), jdbc)
                .map_err(|e| ConfigError::new(DATABRICKS_JDBC_URL, e.to_string()))?,
            (None, Some(path), _) => ConnectionSettings::parse(
                Some(v.required(
                    DATABRICKS_HOST,
                    "the workspace host name, e.g. adb-123.4.azuredatabricks.net",
                )?),
                path,
            )
            .map_err(|e| ConfigError::new(DATABRICKS_HTTP_PATH, e.to_string()))?,
            (None, None, Some(id)) => ConnectionSettings::parse(
                Some(v.required(
                    DATABRICKS_HOST,
                    "the workspace host name, e.g. adb-123.4.azuredatabricks.net",
                )?),
                id,
            )
            .map_err(|e| ConfigError::new(DATABRICKS_WAREHOUSE_ID, e.to_string()))?,
            (None, None, None) => {
                return Err(ConfigError::new(
                    DATABRICKS_HTTP_PATH,
                    format!(
                        "is required (or {DATABRICKS_JDBC_URL}, or {DATABRICKS_WAREHOUSE_ID}): the SQL warehouse's HTTP path /sql/1.0/warehouses/<id> from its Connection details"
                    ),
                ));
            }
        };
        let catalog = v
            .get(CATALOG)
            .map(str::to_string)
            .or_else(|| connection.catalog().map(str::to_string));
        let schema = v
            .get(SCHEMA)
            .map(str::to_string)
            .or_else(|| connection.schema().map(str::to_string));

        let credentials = match (
            v.get(DATABRICKS_TOKEN),
            v.get(DATABRICKS_CLIENT_ID),
            v.get(DATABRICKS_CLIENT_SECRET),
        ) {
            (Some(token), None, None) => Credentials::token(token)
                .map_err(|e| ConfigError::new(DATABRICKS_TOKEN, e.to_string()))?,
            (None, Some(id), Some(secret)) => Credentials::oauth_m2m(id, secret)
                .map_err(|e| ConfigError::new(DATABRICKS_CLIENT_ID, e.to_string()))?,
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ConfigError::new(
                    DATABRICKS_TOKEN,
                    format!(
                        "set either a token or {DATABRICKS_CLIENT_ID} + {DATABRICKS_CLIENT_SECRET}, not both"
                    ),
                ));
            }
            (None, Some(_), None) => {
                return Err(ConfigError::new(
                    DATABRICKS_CLIENT_SECRET,
                    "is required with DATABRICKS_CLIENT_ID",
                ));
            }
            (None, None, Some(_)) => {
                return Err(ConfigError::new(
                    DATABRICKS_CLIENT_ID,
                    "is required with DATABRICKS_CLIENT_SECRET",
                ));
            }
            (None, None, None) => {
                return Err(ConfigError::new(
                    DATABRICKS_TOKEN,
                    format!(
                        "is required (or {DATABRICKS_CLIENT_ID} + {DATABRICKS_CLIENT_SECRET} for a service principal)"
                    ),
                ));
            }
        };

        let purge = match v.get(PURGE).map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") | Some("1") | Some("yes") => true,
            Some("false") | Some("0") | Some("no") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    PURGE,
                    format!("expected true or false, got {other:?}"),
                ));
            }
        };
        let append = match v
            .get(APPEND_STRATEGY)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("merge") => AppendStrategy::Merge,
            Some("copy_into") | Some("copy-into") => AppendStrategy::CopyInto,
            Some(other) => {
                return Err(ConfigError::new(
                    APPEND_STRATEGY,
                    format!("expected merge or copy_into, got {other:?}"),
                ));
            }
        };
        let raw_tables: HashMap<String, TableSettings> = v.json(TABLES)?.unwrap_or_default();
        let mut tables = HashMap::with_capacity(raw_tables.len());
        for (name, settings) in raw_tables {
            let table = TableName::parse(&name).map_err(|p| ConfigError::new(TABLES, p))?;
            tables.insert(table, settings);
        }
        let default_mode = v.table_mode(DEFAULT_MODE)?;
        Ok(LoadConfig {
            bucket,
            staging_prefix,
            state_prefix,
            connection,
            credentials,
            catalog,
            schema,
            purge,
            append,
            tables,
            default_mode,
            deadline_margin: Duration::from_millis(v.positive(DEADLINE_MARGIN_MS, 5000)? as u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_vars;

    #[test]
    fn host_path_and_token() {
        let c = LoadConfig::from_vars(&test_vars(&[])).unwrap();
        assert_eq!(c.connection.warehouse_id(), "abc");
        assert!(c.purge);
        assert_eq!(c.append, AppendStrategy::Merge);
        assert!(!format!("{c:?}").contains("dapi-secret-token"));
    }

    #[test]
    fn jdbc_url_gives_catalog_and_schema() {
        let c = LoadConfig::from_vars(&test_vars(&[
            (vars::DATABRICKS_HTTP_PATH, ""),
            (vars::DATABRICKS_HOST, ""),
            (
                vars::DATABRICKS_JDBC_URL,
                "jdbc:databricks://adb-1.2.azuredatabricks.net:443/default;transportMode=http;ssl=1;AuthMech=3;httpPath=/sql/1.0/warehouses/w1;ConnCatalog=main;ConnSchema=sales",
            ),
        ]))
        .unwrap();
        assert_eq!(c.catalog.as_deref(), Some("main"));
        assert_eq!(c.schema.as_deref(), Some("sales"));
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: [(&[(&str, &str)], &str); 7] = [
            (
                &[(
                    vars::DATABRICKS_HTTP_PATH,
                    "/sql/protocolv1/o/123/0123-456789-abc",
                )],
                vars::DATABRICKS_HTTP_PATH,
            ),
            (
                &[(vars::DATABRICKS_HTTP_PATH, "")],
                vars::DATABRICKS_HTTP_PATH,
            ),
            (&[(vars::DATABRICKS_TOKEN, "")], vars::DATABRICKS_TOKEN),
            (
                &[(vars::DATABRICKS_CLIENT_ID, "sp")],
                vars::DATABRICKS_TOKEN,
            ),
            (&[(vars::PURGE, "maybe")], vars::PURGE),
            (&[(vars::STATE_PREFIX, "staging/x")], vars::STATE_PREFIX),
            (&[(vars::APPEND_STRATEGY, "insert")], vars::APPEND_STRATEGY),
        ];
        for (pairs, variable) in cases {
            let e = LoadConfig::from_vars(&test_vars(pairs)).unwrap_err();
            assert_eq!(e.variable, variable, "{e}");
            assert!(!e.to_string().contains("dapi-secret-token"));
        }
        let e = LoadConfig::from_vars(&test_vars(&[(
            vars::DATABRICKS_HTTP_PATH,
            "/sql/protocolv1/o/123/0123-456789-abc",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("SQL warehouse"), "{e}");
    }
}
