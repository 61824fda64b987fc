//! Typed configuration, parsed and validated once at cold start.
//!
//! The library never reads the process environment: a function's `main` collects the
//! variables into a map and passes it to `StageConfig::from_vars` / `LoadConfig::from_vars`.
//! Every error names the variable and says what is expected, so a wrong setting stops the
//! function at start with a message an operator can act on. The README's configuration
//! reference lists every variable (and a test checks it against [`vars`]).

mod load;
mod maintain;
mod stage;

use std::collections::HashMap;

use crate::decode::Format;

pub use load::{AppendStrategy, LoadConfig};
pub use maintain::{BackfillSettings, MaintainConfig};
pub use stage::{Envelope, IntegerEncoding, NestedMode, StageConfig, TopicFormat, TopicFormats};

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration {variable}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            variable: variable.to_string(),
            problem: problem.into(),
        }
    }
}

/// Variable names, in one place for the code, the tests and the README reference.
pub mod vars {
    pub const STAGING_BUCKET: &str = "DELTASINK_STAGING_BUCKET";
    pub const STAGING_PREFIX: &str = "DELTASINK_STAGING_PREFIX";
    pub const ERRORS_PREFIX: &str = "DELTASINK_ERRORS_PREFIX";
    pub const FILE_NAME_PATTERN: &str = "DELTASINK_FILE_NAME_PATTERN";
    pub const MAX_FILE_ROWS: &str = "DELTASINK_MAX_FILE_ROWS";
    pub const MAX_FILE_BYTES: &str = "DELTASINK_MAX_FILE_BYTES";
    pub const MAX_RECORD_BYTES: &str = "DELTASINK_MAX_RECORD_BYTES";
    pub const NESTED: &str = "DELTASINK_NESTED";
    pub const INTEGER_ENCODING: &str = "DELTASINK_INTEGER_ENCODING";
    pub const KEY_FORMAT: &str = "DELTASINK_KEY_FORMAT";
    pub const VALUE_FORMAT: &str = "DELTASINK_VALUE_FORMAT";
    pub const ENVELOPE: &str = "DELTASINK_ENVELOPE";
    pub const TOPICS: &str = "DELTASINK_TOPICS";
    pub const ROUTES: &str = "DELTASINK_ROUTES";
    pub const TABLES: &str = "DELTASINK_TABLES";
    pub const DEFAULT_MODE: &str = "DELTASINK_DEFAULT_MODE";
    pub const SCHEMA_REGISTRY_URL: &str = "DELTASINK_SCHEMA_REGISTRY_URL";
    pub const SCHEMA_REGISTRY_BASIC_AUTH: &str = "DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH";
    pub const SCHEMA_REGISTRY_TIMEOUT_MS: &str = "DELTASINK_SCHEMA_REGISTRY_TIMEOUT_MS";
    pub const MAX_CONCURRENT_UPLOADS: &str = "DELTASINK_MAX_CONCURRENT_UPLOADS";
    pub const DATABRICKS_HOST: &str = "DATABRICKS_HOST";
    pub const DATABRICKS_HTTP_PATH: &str = "DATABRICKS_HTTP_PATH";
    pub const DATABRICKS_JDBC_URL: &str = "DATABRICKS_JDBC_URL";
    pub const DATABRICKS_WAREHOUSE_ID: &str = "DATABRICKS_WAREHOUSE_ID";
    pub const DATABRICKS_TOKEN: &str = "DATABRICKS_TOKEN";
    pub const DATABRICKS_CLIENT_ID: &str = "DATABRICKS_CLIENT_ID";
    pub const DATABRICKS_CLIENT_SECRET: &str = "DATABRICKS_CLIENT_SECRET";
    pub const CATALOG: &str = "DELTASINK_CATALOG";
    pub const SCHEMA: &str = "DELTASINK_SCHEMA";
    pub const PURGE: &str = "DELTASINK_PURGE";
    pub const APPEND_STRATEGY: &str = "DELTASINK_APPEND_STRATEGY";
    pub const DEADLINE_MARGIN_MS: &str = "DELTASINK_DEADLINE_MARGIN_MS";
    pub const SECRET_ARN: &str = "DELTASINK_SECRET_ARN";
    pub const SECRET_SSM_PARAMETER: &str = "DELTASINK_SECRET_SSM_PARAMETER";
    pub const STATE_PREFIX: &str = "DELTASINK_STATE_PREFIX";
    pub const REDRIVE_AFTER_MINUTES: &str = "DELTASINK_REDRIVE_AFTER_MINUTES";
    pub const STAGING_RETENTION_HOURS: &str = "DELTASINK_STAGING_RETENTION_HOURS";
    pub const TOMBSTONE_RETENTION_HOURS: &str = "DELTASINK_TOMBSTONE_RETENTION_HOURS";
    pub const BACKFILL_MIN_OVERLAP_MINUTES: &str = "DELTASINK_BACKFILL_MIN_OVERLAP_MINUTES";
    pub const BACKFILL_DEADLINE_HOURS: &str = "DELTASINK_BACKFILL_DEADLINE_HOURS";
    pub const OPTIMIZE_TABLES: &str = "DELTASINK_OPTIMIZE_TABLES";

    /// Every load variable with its default ("" = required or unset) and meaning.
    pub const LOAD: &[(&str, &str, &str)] = &[
        (
            STAGING_BUCKET,
            "",
            "S3 bucket of the staged files (required)",
        ),
        (
            STAGING_PREFIX,
            "staging",
            "key prefix of staged files; keys outside it are refused",
        ),
        (
            DATABRICKS_HOST,
            "",
            "workspace host name (with or without https://)",
        ),
        (
            DATABRICKS_HTTP_PATH,
            "",
            "SQL warehouse HTTP path /sql/1.0/warehouses/<id>",
        ),
        (
            DATABRICKS_JDBC_URL,
            "",
            "alternatively, the warehouse's JDBC URL (ConnCatalog/ConnSchema honoured)",
        ),
        (
            DATABRICKS_WAREHOUSE_ID,
            "",
            "alternatively, the warehouse id",
        ),
        (DATABRICKS_TOKEN, "", "personal access token"),
        (
            DATABRICKS_CLIENT_ID,
            "",
            "service principal client id (OAuth machine-to-machine)",
        ),
        (DATABRICKS_CLIENT_SECRET, "", "service principal secret"),
        (CATALOG, "", "catalog for tables named without one"),
        (SCHEMA, "", "schema for tables named without one"),
        (PURGE, "true", "delete staged files once loaded"),
        (
            STATE_PREFIX,
            "_deltasink",
            "key prefix of bookkeeping objects (loaded-file markers, backfill state); outside the staging prefix",
        ),
        (
            APPEND_STRATEGY,
            "merge",
            "append/raw loads: merge (exactly once per record) or copy_into (once per file)",
        ),
        (
            TABLES,
            "",
            "JSON object: table → {mode, primary_key, hard_delete, ...}",
        ),
        (
            DEFAULT_MODE,
            "auto",
            "table mode when neither the table settings nor the files say",
        ),
        (
            DEADLINE_MARGIN_MS,
            "5000",
            "time kept free before the Lambda deadline",
        ),
        (
            SECRET_ARN,
            "",
            "Secrets Manager secret (ARN or name) holding the secrets, read at cold start",
        ),
        (
            SECRET_SSM_PARAMETER,
            "",
            "alternatively, an SSM SecureString parameter holding them",
        ),
    ];

    /// The maintain function's own variables (it also reads every load variable: it loads
    /// through the same code). The README's maintain reference is checked against this table.
    pub const MAINTAIN: &[(&str, &str, &str)] = &[
        (
            ERRORS_PREFIX,
            "errors",
            "where re-drive moves staged files that can never load (unreadable Parquet)",
        ),
        (
            REDRIVE_AFTER_MINUTES,
            "180",
            "age after which a staged file that was not loaded is re-driven",
        ),
        (
            STAGING_RETENTION_HOURS,
            "24",
            "age after which bookkeeping leftovers (markers of purged files, check probes) are removed",
        ),
        (
            TOMBSTONE_RETENTION_HOURS,
            "168",
            "default age (of `_cdc_ts`) after which tombstones of hard-delete tables are removed",
        ),
        (
            BACKFILL_MIN_OVERLAP_MINUTES,
            "60",
            "how far the backfill's newest row must reach past the oldest stream row",
        ),
        (
            BACKFILL_DEADLINE_HOURS,
            "48",
            "after this long since the stream was first seen, the backfill runs without the overlap",
        ),
        (
            OPTIMIZE_TABLES,
            "",
            "comma-separated tables for the `optimize` job (default: every table in DELTASINK_TABLES)",
        ),
    ];

    /// Every stage variable with its default ("" = required or unset) and meaning; the README
    /// configuration reference is checked against this table by a test.
    pub const STAGE: &[(&str, &str, &str)] = &[
        (
            STAGING_BUCKET,
            "",
            "S3 bucket for staged Parquet files and the errors prefix (required)",
        ),
        (
            STAGING_PREFIX,
            "staging",
            "key prefix under which staged files are written",
        ),
        (
            ERRORS_PREFIX,
            "errors",
            "key prefix for records that could not be decoded",
        ),
        (
            FILE_NAME_PATTERN,
            crate::staging::DEFAULT_PATTERN,
            "file name pattern under `<staging prefix>/<table>/`",
        ),
        (
            MAX_FILE_ROWS,
            "500000",
            "rows per staged file before a new file starts",
        ),
        (
            MAX_FILE_BYTES,
            "67108864",
            "approximate bytes per staged file before a new file starts",
        ),
        (
            MAX_RECORD_BYTES,
            "4194304",
            "key + value bytes above which a record goes to the errors prefix",
        ),
        (
            NESTED,
            "struct",
            "nested values as `struct` (STRUCT/ARRAY columns) or `json` (STRING)",
        ),
        (
            INTEGER_ENCODING,
            "delta",
            "Parquet encoding of integer, date and timestamp columns whose values do not repeat: `delta` (DELTA_BINARY_PACKED) or `plain`",
        ),
        (
            KEY_FORMAT,
            "json",
            "default key format: json, connect-json, avro, string, bytes",
        ),
        (
            VALUE_FORMAT,
            "json",
            "default value format: json, connect-json, avro, string, bytes",
        ),
        (
            ENVELOPE,
            "auto",
            "Debezium envelope handling: auto, debezium, none",
        ),
        (
            TOPICS,
            "",
            "JSON object: topic name or `*` glob → {key_format, value_format, envelope}",
        ),
        (
            ROUTES,
            "",
            "JSON array of routing rules (strip_prefix, regex, map), first match wins",
        ),
        (TABLES, "", "JSON object: table → {mode, primary_key}"),
        (
            DEFAULT_MODE,
            "auto",
            "table mode when a table has none: auto, upsert, append, raw",
        ),
        (
            SCHEMA_REGISTRY_URL,
            "",
            "Confluent schema registry URL (required for Avro topics)",
        ),
        (
            SCHEMA_REGISTRY_BASIC_AUTH,
            "",
            "`user:password` for the schema registry",
        ),
        (
            SCHEMA_REGISTRY_TIMEOUT_MS,
            "5000",
            "timeout of one schema registry request",
        ),
        (MAX_CONCURRENT_UPLOADS, "4", "staged files uploaded at once"),
        (
            SECRET_ARN,
            "",
            "Secrets Manager secret (ARN or name) holding the secrets, read at cold start",
        ),
        (
            SECRET_SSM_PARAMETER,
            "",
            "alternatively, an SSM SecureString parameter holding them",
        ),
    ];
}

/// A view of the variables with typed getters that name the variable in every error.
pub struct Vars<'a> {
    map: &'a HashMap<String, String>,
}

impl<'a> Vars<'a> {
    pub fn new(map: &'a HashMap<String, String>) -> Self {
        Vars { map }
    }

    /// The trimmed value, `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.map
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    pub fn required(&self, name: &str, what: &str) -> Result<&'a str, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, format!("is required: {what}")))
    }

    pub fn positive(&self, name: &str, default: usize) -> Result<usize, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => match s.replace('_', "").parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(ConfigError::new(
                    name,
                    format!("expected a positive whole number, got {s:?}"),
                )),
            },
        }
    }

    pub fn prefix(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        let raw = self.get(name).unwrap_or(default);
        let trimmed = raw.trim_matches('/');
        if trimmed.is_empty() {
            return Err(ConfigError::new(
                name,
                "expected a non-empty key prefix such as `staging`",
            ));
        }
        if trimmed
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(ConfigError::new(
                name,
                format!("{raw:?} has an empty, `.` or `..` path segment"),
            ));
        }
        Ok(trimmed.to_string())
    }

    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|s| {
                serde_json::from_str(s)
                    .map_err(|e| ConfigError::new(name, format!("invalid JSON value: {e}")))
            })
            .transpose()
    }

    /// A table mode (`auto`, `upsert`, `append`, `raw`); `auto` when unset.
    pub fn table_mode(&self, name: &str) -> Result<crate::route::TableMode, ConfigError> {
        match self.get(name) {
            None => Ok(crate::route::TableMode::Auto),
            Some(s) => crate::route::TableMode::parse(s).ok_or_else(|| {
                ConfigError::new(
                    name,
                    format!("expected auto, upsert, append or raw, got {s:?}"),
                )
            }),
        }
    }

    /// One of a few words, case-insensitive; `default` when unset. The error lists the
    /// words in the order given.
    pub fn choice<T: Copy>(
        &self,
        name: &str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(given) = self.get(name) else {
            return Ok(default);
        };
        let given = given.to_ascii_lowercase();
        if let Some((_, value)) = choices.iter().find(|(word, _)| *word == given) {
            return Ok(*value);
        }
        let words: Vec<String> = choices.iter().map(|(w, _)| format!("`{w}`")).collect();
        let expected = match words.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        Err(ConfigError::new(
            name,
            format!("expected {expected}, got {given:?}"),
        ))
    }

    pub fn format(&self, name: &str, default: Format) -> Result<Format, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => parse_format(s).map_err(|p| ConfigError::new(name, p)),
        }
    }
}

pub(crate) fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| {
        format!("unknown format {s:?}: expected json, connect-json, avro, string or bytes")
    })
}

/// For tests: a minimal valid set of variables (staging bucket, warehouse host, HTTP path and
/// token) with `pairs` applied on top, an empty value removing its variable.
#[cfg(test)]
pub(crate) fn test_vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = [
        (vars::STAGING_BUCKET, "b"),
        (vars::DATABRICKS_HOST, "adb-1.2.azuredatabricks.net"),
        (vars::DATABRICKS_HTTP_PATH, "/sql/1.0/warehouses/abc"),
        (vars::DATABRICKS_TOKEN, "dapi-secret-token"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in pairs {
        if v.is_empty() {
            m.remove(*k);
        } else {
            m.insert(k.to_string(), v.to_string());
        }
    }
    m
}
