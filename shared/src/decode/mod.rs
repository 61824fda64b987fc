//! Decoders: record bytes in one wire format → a [`Value`] (and its type when the format
//! carries one).
//!
//! Every decoder is pure and synchronous; the Avro decoder gets its writer schemas from a
//! [`crate::registry::SchemaCache`] filled beforehand (the only network step), so decoding a
//! batch never waits on I/O per record. A decoder never panics on arbitrary input: it returns
//! a [`DecodeError`] naming what is wrong, and the record goes to the errors prefix.

pub mod avro;
pub mod connect;
pub mod debezium;
pub mod debezium_json;
pub mod json;
pub(crate) mod json_reader;
pub(crate) mod key_plan;
mod names;

use crate::value::{ColumnType, Value};

/// The wire format of a record's key or value, chosen per topic by configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain JSON; the type is inferred over the batch.
    Json,
    /// Kafka Connect JSON with the `{"schema": ..., "payload": ...}` envelope.
    ConnectJson,
    /// Avro in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, body.
    Avro,
    /// UTF-8 text kept as a string.
    String,
    /// Opaque bytes kept as binary.
    Bytes,
}

impl Format {
    /// Parses the configuration spelling: `json`, `connect-json`, `avro`, `string`, `bytes`.
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "connect-json" | "connect_json" | "connectjson" => Some(Format::ConnectJson),
            "avro" | "confluent-avro" => Some(Format::Avro),
            "string" | "text" => Some(Format::String),
            "bytes" | "binary" => Some(Format::Bytes),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::ConnectJson => "connect-json",
            Format::Avro => "avro",
            Format::String => "string",
            Format::Bytes => "bytes",
        }
    }
}

/// A decoded key or value.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub value: Value,
    /// The exact type from the record's schema (Connect, Avro); `None` for schema-less formats,
    /// whose type is inferred from the values.
    pub schema: Option<ColumnType>,
}

impl Decoded {
    pub fn untyped(value: Value) -> Self {
        Decoded {
            value,
            schema: None,
        }
    }

    /// The declared type, or the one inferred from the value.
    pub fn column_type(&self) -> ColumnType {
        self.schema
            .clone()
            .unwrap_or_else(|| ColumnType::infer(&self.value))
    }
}

/// Why one record could not be decoded. Always a property of the record (poison), never of
/// the infrastructure: the record goes to the errors prefix with this text as its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid base64 in the record's {part}: {detail}")]
    Base64 { part: &'static str, detail: String },
    #[error("invalid JSON at line {line} column {column}: {detail}")]
    Json {
        line: usize,
        column: usize,
        detail: String,
    },
    #[error("invalid Kafka Connect JSON envelope: {0}")]
    Connect(String),
    #[error("not Confluent Avro wire format: {0}")]
    WireFormat(String),
    #[error("Avro schema id {id} is not known to the schema registry")]
    UnknownSchema { id: u32 },
    #[error("Avro schema id {id} cannot be used: {detail}")]
    BadSchema { id: u32, detail: String },
    #[error("Avro body does not match schema id {id}: {detail}")]
    Avro { id: u32, detail: String },
    #[error("invalid UTF-8 text: {0}")]
    Utf8(String),
    #[error("invalid Debezium change event: {0}")]
    Debezium(String),
    #[error("record of {size} bytes exceeds the configured limit of {limit} bytes")]
    Oversized { size: usize, limit: usize },
    #[error("{0}")]
    Other(String),
}

/// Decodes bytes of a schema-free format (`Json`, `String`, `Bytes`) or Connect JSON.
/// Avro needs the schema cache: use [`avro::decode`].
pub fn decode_self_describing(format: Format, bytes: &[u8]) -> Result<Decoded, DecodeError> {
    match format {
        Format::Json => json::decode(bytes).map(Decoded::untyped),
        Format::ConnectJson => connect::decode(bytes),
        Format::String => std::str::from_utf8(bytes)
            .map(|s| Decoded {
                value: Value::String(s.into()),
                schema: Some(ColumnType::String),
            })
            .map_err(|e| DecodeError::Utf8(e.to_string())),
        Format::Bytes => Ok(Decoded {
            value: Value::Bytes(bytes.into()),
            schema: Some(ColumnType::Binary),
        }),
        Format::Avro => Err(DecodeError::Other(
            "Avro must be decoded with its schema cache".into(),
        )),
    }
}

/// The decoded `part`s (`"key"`, `"value"`) of every record of the sample Debezium JSON event
/// (`events/msk-debezium-json.json`), for decoder tests.
#[cfg(test)]
pub(crate) fn debezium_sample_payloads(parts: &[&str]) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let path = format!(
        "{}/../events/msk-debezium-json.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for records in event["records"].as_object().unwrap().values() {
        for r in records.as_array().unwrap() {
            for part in parts {
                if let Some(v) = r[*part].as_str() {
                    out.push(base64::engine::general_purpose::STANDARD.decode(v).unwrap());
                }
            }
        }
    }
    out
}
