//! The stage function's configuration.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Vars, parse_format, vars};
use crate::decode::Format;
use crate::registry::RegistryConfig;
use crate::route::{RouteRule, Router, TableSettings};
use crate::staging::FileNamePattern;

/// How nested values (structs, arrays, maps) are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NestedMode {
    /// As Delta STRUCT and ARRAY columns.
    Struct,
    /// As STRING columns holding the JSON text.
    Json,
}

/// How staged files encode integer, date and timestamp columns whose values do not repeat
/// (repeating ones are dictionary-encoded either way). Offsets, Kafka and change times, ids
/// and created-at columns are such columns: delta encoding stores their small steps in a few
/// bits, which makes files about three times smaller and saves the compressor most of its
/// work. `DELTA_BINARY_PACKED` is part of the Parquet format since 2.2 (2015); Spark reads it
/// since 3.3 (Databricks Runtime 11.3 LTS and every SQL warehouse), as do Arrow, DataFusion
/// and DuckDB. `Plain` is for readers that know only the oldest encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegerEncoding {
    Delta,
    Plain,
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
    pub integer_encoding: IntegerEncoding,
    pub formats: TopicFormats,
    pub router: Router,
    pub registry: Option<RegistryConfig>,
    pub max_concurrent_uploads: usize,
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

        let nested = v.choice(
            NESTED,
            NestedMode::Struct,
            &[("struct", NestedMode::Struct), ("json", NestedMode::Json)],
        )?;
        let integer_encoding = v.choice(
            INTEGER_ENCODING,
            IntegerEncoding::Delta,
            &[
                ("delta", IntegerEncoding::Delta),
                ("plain", IntegerEncoding::Plain),
            ],
        )?;
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
        let default_mode = v.table_mode(DEFAULT_MODE)?;
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
            integer_encoding,
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
        assert_eq!(c.integer_encoding, IntegerEncoding::Delta);
        assert!(c.registry.is_none());
    }

    #[test]
    fn word_settings_are_read_case_insensitively() {
        let c = StageConfig::from_vars(&vars(&[
            (vars::STAGING_BUCKET, "b"),
            (vars::NESTED, "JSON"),
            (vars::INTEGER_ENCODING, "Plain"),
        ]))
        .unwrap();
        assert_eq!(c.nested, NestedMode::Json);
        assert_eq!(c.integer_encoding, IntegerEncoding::Plain);
        let e = StageConfig::from_vars(&vars(&[
            (vars::STAGING_BUCKET, "b"),
            (vars::INTEGER_ENCODING, "RLE"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, vars::INTEGER_ENCODING);
        assert!(
            e.to_string()
                .contains("expected `delta` or `plain`, got \"rle\""),
            "{e}"
        );
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
            (vars::INTEGER_ENCODING, "rle", "`delta` or `plain`"),
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
