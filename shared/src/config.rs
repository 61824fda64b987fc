//! Typed configuration, parsed and validated once at cold start.
//!
//! The library never reads the process environment: a function's `main` collects the
//! variables into a map and passes it to [`StageConfig::from_vars`]. Every error names the
//! variable and says what is expected, so a wrong setting stops the function at start with a
//! message an operator can act on. The README's configuration reference lists every variable.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::decode::Format;
use crate::registry::RegistryConfig;
use crate::route::{RouteRule, Router, TableMode, TableSettings};
use crate::staging::FileNamePattern;

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

/// How nested values (structs, arrays, maps) are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NestedMode {
    /// As Delta STRUCT and ARRAY columns.
    Struct,
    /// As STRING columns holding the JSON text.
    Json,
}

/// Whether values are read as Debezium change envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Envelope {
    /// A value with a string `op` and `before`/`after` fields is a Debezium envelope.
    Auto,
    /// Every value must be a Debezium envelope; anything else goes to the errors prefix.
    Debezium,
    /// Values are rows as they are.
    None,
}

/// The formats of one topic's keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicFormat {
    pub key: Format,
    pub value: Format,
    pub envelope: Envelope,
}

/// Per-topic format overrides: exact names or `*` globs, first match wins.
#[derive(Debug, Clone)]
pub struct TopicFormats {
    default: TopicFormat,
    overrides: Vec<(crate::route::Glob, TopicFormat)>,
}

impl TopicFormats {
    pub fn new(default: TopicFormat) -> Self {
        TopicFormats {
            default,
            overrides: Vec::new(),
        }
    }

    pub fn for_topic(&self, topic: &str) -> TopicFormat {
        self.overrides
            .iter()
            .find(|(glob, _)| glob.matches(topic))
            .map(|(_, f)| *f)
            .unwrap_or(self.default)
    }
}

/// The stage function's configuration.
#[derive(Debug, Clone)]
pub struct StageConfig {
    pub bucket: String,
    /// Staging prefix without leading or trailing slash.
    pub staging_prefix: String,
    /// Errors prefix without leading or trailing slash.
    pub errors_prefix: String,
    pub file_name: FileNamePattern,
    pub max_file_rows: usize,
    pub max_file_bytes: usize,
    pub max_record_bytes: usize,
    pub nested: NestedMode,
    pub formats: TopicFormats,
    pub router: Router,
    pub registry: Option<RegistryConfig>,
    pub max_concurrent_uploads: usize,
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
            super::super::staging::DEFAULT_PATTERN,
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

    pub fn format(&self, name: &str, default: Format) -> Result<Format, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => parse_format(s).map_err(|p| ConfigError::new(name, p)),
        }
    }
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| {
        format!("unknown format {s:?}: expected json, connect-json, avro, string or bytes")
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicFormatSpec {
    key_format: Option<String>,
    value_format: Option<String>,
    envelope: Option<Envelope>,
}

impl StageConfig {
    /// Parses and validates the stage configuration from environment-style variables.
    pub fn from_vars(map: &HashMap<String, String>) -> Result<StageConfig, ConfigError> {
        use vars::*;
        let v = Vars::new(map);
        let bucket = v
            .required(
                STAGING_BUCKET,
                "the S3 bucket that receives staged Parquet files",
            )?
            .to_string();
        let staging_prefix = v.prefix(STAGING_PREFIX, "staging")?;
        let errors_prefix = v.prefix(ERRORS_PREFIX, "errors")?;
        if staging_prefix == errors_prefix
            || staging_prefix.starts_with(&format!("{errors_prefix}/"))
            || errors_prefix.starts_with(&format!("{staging_prefix}/"))
        {
            return Err(ConfigError::new(
                ERRORS_PREFIX,
                format!(
                    "{errors_prefix:?} overlaps the staging prefix {staging_prefix:?}: error files would be loaded as data"
                ),
            ));
        }
        let file_name = FileNamePattern::parse(
            v.get(FILE_NAME_PATTERN)
                .unwrap_or(crate::staging::DEFAULT_PATTERN),
        )
        .map_err(|p| ConfigError::new(FILE_NAME_PATTERN, p))?;

        let nested = match v.get(NESTED).map(|s| s.to_ascii_lowercase()) {
            None => NestedMode::Struct,
            Some(s) if s == "struct" => NestedMode::Struct,
            Some(s) if s == "json" => NestedMode::Json,
            Some(s) => {
                return Err(ConfigError::new(
                    NESTED,
                    format!("expected `struct` or `json`, got {s:?}"),
                ));
            }
        };
        let envelope = match v.get(ENVELOPE) {
            None => Envelope::Auto,
            Some(s) => parse_envelope(s).map_err(|p| ConfigError::new(ENVELOPE, p))?,
        };
        let default_format = TopicFormat {
            key: v.format(KEY_FORMAT, Format::Json)?,
            value: v.format(VALUE_FORMAT, Format::Json)?,
            envelope,
        };
        let mut formats = TopicFormats::new(default_format);
        if let Some(specs) = v.json::<serde_json::Map<String, serde_json::Value>>(TOPICS)? {
            for (topic, spec) in specs {
                let spec: TopicFormatSpec = serde_json::from_value(spec)
                    .map_err(|e| ConfigError::new(TOPICS, format!("entry {topic:?}: {e}")))?;
                let parse = |s: &Option<String>, default: Format| match s {
                    None => Ok(default),
                    Some(s) => parse_format(s)
                        .map_err(|p| ConfigError::new(TOPICS, format!("entry {topic:?}: {p}"))),
                };
                let format = TopicFormat {
                    key: parse(&spec.key_format, default_format.key)?,
                    value: parse(&spec.value_format, default_format.value)?,
                    envelope: spec.envelope.unwrap_or(default_format.envelope),
                };
                let glob =
                    crate::route::Glob::new(&topic).map_err(|p| ConfigError::new(TOPICS, p))?;
                formats.overrides.push((glob, format));
            }
        }

        let rules = match v.get(ROUTES) {
            None => Vec::new(),
            Some(json) => RouteRule::parse_list(json).map_err(|p| ConfigError::new(ROUTES, p))?,
        };
        let tables: HashMap<String, TableSettings> = v.json(TABLES)?.unwrap_or_default();
        let default_mode = match v.get(DEFAULT_MODE) {
            None => TableMode::Auto,
            Some(s) => TableMode::parse(s).ok_or_else(|| {
                ConfigError::new(
                    DEFAULT_MODE,
                    format!("expected auto, upsert, append or raw, got {s:?}"),
                )
            })?,
        };
        let router = Router::new(rules, tables, default_mode).map_err(|p| {
            ConfigError::new(
                if p.starts_with("table") {
                    TABLES
                } else {
                    ROUTES
                },
                p,
            )
        })?;

        let registry = match v.get(SCHEMA_REGISTRY_URL) {
            None => None,
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::new(
                        SCHEMA_REGISTRY_URL,
                        format!("expected an http:// or https:// URL, got {url:?}"),
                    ));
                }
                let basic_auth = match v.get(SCHEMA_REGISTRY_BASIC_AUTH) {
                    None => None,
                    Some(s) => match s.split_once(':') {
                        Some((user, password)) if !user.is_empty() => {
                            Some((user.to_string(), password.to_string()))
                        }
                        // Never echo the value: it is a secret.
                        _ => {
                            return Err(ConfigError::new(
                                SCHEMA_REGISTRY_BASIC_AUTH,
                                "expected `user:password`",
                            ));
                        }
                    },
                };
                Some(RegistryConfig {
                    url: url.trim_end_matches('/').to_string(),
                    basic_auth,
                    timeout: Duration::from_millis(
                        v.positive(SCHEMA_REGISTRY_TIMEOUT_MS, 5000)? as u64
                    ),
                })
            }
        };
        let uses_avro = std::iter::once(&default_format)
            .chain(formats.overrides.iter().map(|(_, f)| f))
            .any(|f| f.key == Format::Avro || f.value == Format::Avro);
        if uses_avro && registry.is_none() {
            return Err(ConfigError::new(
                SCHEMA_REGISTRY_URL,
                "is required because a topic uses the avro format",
            ));
        }

        Ok(StageConfig {
            bucket,
            staging_prefix,
            errors_prefix,
            file_name,
            max_file_rows: v.positive(MAX_FILE_ROWS, 500_000)?,
            max_file_bytes: v.positive(MAX_FILE_BYTES, 64 * 1024 * 1024)?,
            max_record_bytes: v.positive(MAX_RECORD_BYTES, 4 * 1024 * 1024)?,
            nested,
            formats,
            router,
            registry,
            max_concurrent_uploads: v.positive(MAX_CONCURRENT_UPLOADS, 4)?,
        })
    }
}

fn parse_envelope(s: &str) -> Result<Envelope, String> {
    match s.to_ascii_lowercase().as_str() {
        "auto" => Ok(Envelope::Auto),
        "debezium" => Ok(Envelope::Debezium),
        "none" => Ok(Envelope::None),
        _ => Err(format!("expected auto, debezium or none, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_only_the_bucket() {
        let c = StageConfig::from_vars(&vars(&[(vars::STAGING_BUCKET, "b")])).unwrap();
        assert_eq!(c.staging_prefix, "staging");
        assert_eq!(c.errors_prefix, "errors");
        assert_eq!(c.max_file_rows, 500_000);
        assert_eq!(c.nested, NestedMode::Struct);
        assert!(c.registry.is_none());
    }

    #[test]
    fn missing_bucket_names_the_variable() {
        let e = StageConfig::from_vars(&vars(&[])).unwrap_err();
        assert_eq!(e.variable, vars::STAGING_BUCKET);
        assert!(e.to_string().contains("is required"), "{e}");
    }

    #[test]
    fn bad_values_name_the_variable_and_expectation() {
        let cases = [
            (vars::MAX_FILE_ROWS, "ten", "positive whole number"),
            (vars::MAX_FILE_BYTES, "0", "positive whole number"),
            (vars::NESTED, "xml", "`struct` or `json`"),
            (vars::VALUE_FORMAT, "protobuf", "unknown format"),
            (vars::ENVELOPE, "maxwell", "auto, debezium or none"),
            (vars::TOPICS, "{not json", "invalid JSON"),
            (
                vars::ROUTES,
                "[{\"regex\": \"(\", \"table\": \"t\"}]",
                "invalid regex",
            ),
            (vars::ROUTES, "[{\"regex\": \"(a)\"}]", "unknown rule"),
            (vars::FILE_NAME_PATTERN, "{date}.parquet", "retry"),
            (vars::STAGING_PREFIX, "a//b", "empty"),
            (vars::DEFAULT_MODE, "merge", "auto, upsert"),
            (vars::SCHEMA_REGISTRY_URL, "localhost:8081", "http://"),
        ];
        for (name, value, expected) in cases {
            let e = StageConfig::from_vars(&vars(&[(vars::STAGING_BUCKET, "b"), (name, value)]))
                .unwrap_err();
            assert_eq!(e.variable, name, "{e}");
            assert!(e.to_string().contains(expected), "{name}: {e}");
        }
    }

    #[test]
    fn avro_needs_a_registry() {
        let e = StageConfig::from_vars(&vars(&[
            (vars::STAGING_BUCKET, "b"),
            (vars::TOPICS, r#"{"orders.*": {"value_format": "avro"}}"#),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, vars::SCHEMA_REGISTRY_URL);
    }

    #[test]
    fn registry_password_never_shows() {
        let c = StageConfig::from_vars(&vars(&[
            (vars::STAGING_BUCKET, "b"),
            (vars::SCHEMA_REGISTRY_URL, "http://127.0.0.1:8081/"),
            (vars::SCHEMA_REGISTRY_BASIC_AUTH, "svc:s3cr3t-pw"),
        ]))
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-pw"));
        let e = StageConfig::from_vars(&vars(&[
            (vars::STAGING_BUCKET, "b"),
            (vars::SCHEMA_REGISTRY_URL, "http://127.0.0.1:8081/"),
            (vars::SCHEMA_REGISTRY_BASIC_AUTH, "s3cr3t-pw"),
        ]))
        .unwrap_err();
        assert!(!e.to_string().contains("s3cr3t-pw"));
    }

    #[test]
    fn topic_overrides_by_glob() {
        let c = StageConfig::from_vars(&vars(&[
            (vars::STAGING_BUCKET, "b"),
            (
                vars::TOPICS,
                r#"{"cdc.*": {"value_format": "connect-json", "envelope": "debezium"}}"#,
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.formats.for_topic("cdc.public.orders").value,
            Format::ConnectJson
        );
        assert_eq!(
            c.formats.for_topic("cdc.public.orders").envelope,
            Envelope::Debezium
        );
        assert_eq!(c.formats.for_topic("events").value, Format::Json);
    }

    #[test]
    fn errors_prefix_may_not_overlap_staging() {
        let e = StageConfig::from_vars(&vars(&[
            (vars::STAGING_BUCKET, "b"),
            (vars::ERRORS_PREFIX, "staging/errors"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, vars::ERRORS_PREFIX);
    }
}
