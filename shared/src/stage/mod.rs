//! The stage pipeline: a Kafka event → decoded, routed table rows → Parquet files in the
//! staging prefix, and undecodable records → the errors prefix.
//!
//! [`plan`] is pure (no I/O): it turns an event into the files to write, so that it is unit
//! tested and benchmarked in-process. [`Stager::stage`] adds the two network steps: fetching
//! Avro schemas before decoding, and uploading the planned files.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use tracing::{Instrument, info, info_span, warn};

mod errors;
mod files;

pub use errors::ErrorRecord;
pub use files::{FileCoordinates, PlannedFile, encode_batch};

use crate::config::{Envelope, StageConfig, TopicFormat};
use crate::decode::debezium::{self, Op};
use crate::decode::{self, DecodeError, Decoded, Format};
use crate::encode::EncodeError;
use crate::kafka::{self, EventError, KafkaEvent, PartitionRecords, RecordRef};
use crate::registry::{RegistryError, SchemaCache, SchemaSource};
use crate::route::{Route, TableMode, TableName};
use crate::rows::{self, ChangeMeta, Coordinates, Row, TableRows};
use crate::store::{ObjectStore, StoreError};
use crate::value::{ColumnType, Field, FieldName, Value, same_name};

/// Why an invocation failed. Every variant fails the whole invocation so that the event
/// source mapping retries it; record-level problems never get here (they go to the errors
/// prefix).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("unusable event: {0}")]
    Event(#[from] EventError),
    #[error("schema registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("staging upload failed: {0}")]
    Store(#[from] StoreError),
    #[error("encoding failed: {0}")]
    Encode(#[from] EncodeError),
}

/// What one invocation produced.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageSummary {
    pub records: usize,
    pub input_bytes: usize,
    pub rows_staged: usize,
    pub files_staged: usize,
    pub records_to_errors: usize,
    /// Debezium tombstones (null values after a delete): compaction markers whose delete the
    /// preceding `d` event already carries.
    pub tombstones_skipped: usize,
    pub keys: Vec<String>,
    /// The oldest Kafka timestamp of the batch (ms since the epoch; records without a
    /// timestamp are not counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_timestamp_ms: Option<i64>,
    /// When every file of the batch was written (ms since the epoch); `None` from [`plan`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged_at_ms: Option<i64>,
}

/// Avro schema ids referenced by the event's Avro keys and values, for prefetching.
pub fn avro_schema_ids(config: &StageConfig, parts: &[PartitionRecords<'_>]) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut buf = Vec::new();
    for part in parts {
        let format = config.formats.for_topic(part.topic);
        for r in &part.records {
            for (f, text) in [(format.key, r.key_b64), (format.value, r.value_b64)] {
                if f == Format::Avro
                    && let Some(text) = text
                    && kafka::decode_base64("value", text, &mut buf).is_ok()
                    && let Ok(id) = crate::registry::schema_id(&buf)
                    && !ids.contains(&id)
                {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

/// The decoded rows and errors of a batch, before encoding.
pub struct DecodedBatch<'a> {
    pub tables: Vec<TableRows>,
    pub errors: Vec<ErrorRecord<'a>>,
    pub tombstones_skipped: usize,
    pub records: usize,
    pub input_bytes: usize,
    /// The oldest Kafka timestamp among the records (ms; `None` when none has one).
    pub oldest_timestamp_ms: Option<i64>,
}

/// Decodes and routes every record of the event (pure; Avro schemas come from `schemas`).
pub fn decode_batch<'a>(
    config: &StageConfig,
    parts: &[PartitionRecords<'a>],
    schemas: &SchemaCache,
) -> DecodedBatch<'a> {
    let topics: Arc<[Arc<str>]> = {
        let mut names: Vec<Arc<str>> = Vec::new();
        for p in parts {
            if !names.iter().any(|n| &**n == p.topic) {
                names.push(Arc::from(p.topic));
            }
        }
        names.into()
    };
    let mut tables: BTreeMap<TableName, TableBatch<'a>> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut tombstones_skipped = 0;
    let mut records = 0;
    let mut input_bytes = 0;
    let mut oldest_timestamp_ms: Option<i64> = None;
    let mut key_buf = Vec::new();
    let mut value_buf = Vec::new();
    let mut key_columns = Vec::new();
    let routes: Vec<Route> = parts.iter().map(|p| config.router.route(p.topic)).collect();
    // Records routed to each table: its rows are reserved once, so they never move.
    let mut routed: BTreeMap<&TableName, usize> = BTreeMap::new();
    for (part, route) in parts.iter().zip(&routes) {
        *routed.entry(&route.table).or_default() += part.records.len();
    }
    for (part, route) in parts.iter().zip(&routes) {
        let format = config.formats.for_topic(part.topic);
        let topic_index = topics.iter().position(|t| &**t == part.topic).unwrap_or(0) as u32;
        let TableBatch {
            rows: table,
            sources,
            first_key_columns,
        } = tables.entry(route.table.clone()).or_insert_with(|| {
            let records = routed.get(&route.table).copied().unwrap_or_default();
            let mut rows = TableRows::new(
                route.table.clone(),
                route.mode,
                route.primary_key.clone(),
                topics.clone(),
            );
            rows.rows.reserve(records);
            TableBatch {
                rows,
                sources: Vec::with_capacity(records),
                first_key_columns: None,
            }
        });
        for record in &part.records {
            records += 1;
            // Kafka sends -1 for a record without a timestamp.
            if record.timestamp_ms > 0 {
                oldest_timestamp_ms = Some(
                    oldest_timestamp_ms.map_or(record.timestamp_ms, |t| t.min(record.timestamp_ms)),
                );
            }
            let at = Coordinates {
                topic: topic_index,
                partition: record.partition,
                offset: record.offset,
                timestamp_ms: record.timestamp_ms,
            };
            let built = build_row(
                config,
                format,
                route,
                schemas,
                record,
                at,
                &mut key_buf,
                &mut value_buf,
                &mut key_columns,
            );
            input_bytes += key_buf.len() + value_buf.len();
            match built {
                Ok(Built::Row { row, keyed }) => {
                    if keyed && first_key_columns.is_none() {
                        *first_key_columns =
                            Some(key_columns.iter().map(|c| c.to_string()).collect());
                    }
                    sources.push((*record, keyed));
                    table.push(row);
                }
                Ok(Built::Tombstone) => tombstones_skipped += 1,
                Err(reason) => errors.push(ErrorRecord {
                    record: *record,
                    table: Some(route.table.clone()),
                    reason,
                }),
            }
        }
    }

    let mut out = Vec::with_capacity(tables.len());
    for (_, batch) in tables {
        let TableBatch {
            rows: mut table,
            sources,
            first_key_columns,
        } = batch;
        settle_mode(&mut table, &sources, first_key_columns, &mut errors);
        if !table.rows.is_empty() {
            out.push(table);
        }
    }
    DecodedBatch {
        tables: out,
        errors,
        tombstones_skipped,
        records,
        input_bytes,
        oldest_timestamp_ms,
    }
}

/// What a batch gathers for one table while its records are decoded.
struct TableBatch<'a> {
    rows: TableRows,
    /// Parallel to `rows.rows`: the source record and whether it was keyed.
    sources: Vec<(RecordRef<'a>, bool)>,
    /// The key columns of the table's first keyed record.
    first_key_columns: Option<Vec<String>>,
}

/// Resolves `auto` (upsert when the table has a key) and the primary key of an upsert table
/// taken from Kafka keys; rows that cannot be upserted (no key) move to the errors list.
/// `sources` is parallel to `table.rows`; `first_key_columns` are the key columns of the
/// first keyed row, if any.
fn settle_mode<'a>(
    table: &mut TableRows,
    sources: &[(RecordRef<'a>, bool)],
    first_key_columns: Option<Vec<String>>,
    errors: &mut Vec<ErrorRecord<'a>>,
) {
    if table.mode == TableMode::Auto {
        table.mode = if !table.primary_key.is_empty() || first_key_columns.is_some() {
            TableMode::Upsert
        } else {
            TableMode::Append
        };
    }
    if table.mode != TableMode::Upsert {
        return;
    }
    if table.primary_key.is_empty() {
        // The key columns are the fields of the first keyed row's key (Debezium keys are
        // structs of the primary key columns), or `_kafka_key` for a primitive key.
        table.primary_key = first_key_columns.unwrap_or_default();
    }
    let name = table.table.clone();
    let pk = table.primary_key.clone();
    let rows = std::mem::take(&mut table.rows);
    let mut kept = Vec::with_capacity(rows.len());
    for (row, (record, _)) in rows.into_iter().zip(sources) {
        let missing: Vec<String> = pk
            .iter()
            .filter(|c| !row.data.iter().any(|(n, v)| **n == ***c && !v.is_null()))
            .map(|c| format!("`{c}`"))
            .collect();
        if !pk.is_empty() && missing.is_empty() {
            kept.push(row);
            continue;
        }
        let reason = if pk.is_empty() {
            format!(
                "upsert table {name} has no primary key: configure primary_key in DELTASINK_TABLES or send keyed records"
            )
        } else {
            format!(
                "primary key column(s) {} missing or null in a row of upsert table {name}",
                missing.join(", ")
            )
        };
        errors.push(ErrorRecord {
            record: *record,
            table: Some(name.clone()),
            reason,
        });
    }
    table.rows = kept;
}

enum Built {
    Row { row: Row, keyed: bool },
    Tombstone,
}

#[allow(clippy::too_many_arguments)]
fn build_row(
    config: &StageConfig,
    format: TopicFormat,
    route: &Route,
    schemas: &SchemaCache,
    record: &RecordRef<'_>,
    at: Coordinates,
    key_buf: &mut Vec<u8>,
    value_buf: &mut Vec<u8>,
    key_columns: &mut Vec<FieldName>,
) -> Result<Built, String> {
    key_buf.clear();
    value_buf.clear();
    key_columns.clear();
    if let Some(text) = record.key_b64 {
        kafka::decode_base64("key", text, key_buf).map_err(|e| e.to_string())?;
    }
    if let Some(text) = record.value_b64 {
        kafka::decode_base64("value", text, value_buf).map_err(|e| e.to_string())?;
    }
    let size = key_buf.len() + value_buf.len();
    if size > config.max_record_bytes {
        return Err(DecodeError::Oversized {
            size,
            limit: config.max_record_bytes,
        }
        .to_string());
    }
    let has_value = record.value_b64.is_some();
    let key = match record.key_b64 {
        Some(_) => {
            Some(decode_part(format.key, key_buf, schemas).map_err(|e| format!("key: {e}"))?)
        }
        None => None,
    };

    if route.mode == TableMode::Raw {
        let key_text = key.map(|k| Value::String(k.value.to_text(k.schema.as_ref()).into()));
        let value_text = if has_value {
            let v = match format.value {
                // Keep JSON and text exactly as sent.
                Format::Json | Format::String => std::str::from_utf8(value_buf)
                    .map(|s| s.to_string())
                    .map_err(|e| format!("value: invalid UTF-8 text: {e}"))?,
                f => {
                    let d =
                        decode_part(f, value_buf, schemas).map_err(|e| format!("value: {e}"))?;
                    d.value.to_text(d.schema.as_ref())
                }
            };
            Value::String(v.into())
        } else {
            Value::Null
        };
        let row = Row {
            data: vec![
                (rows::RAW_KEY.into(), key_text.unwrap_or(Value::Null)),
                (rows::RAW_VALUE.into(), value_text),
            ],
            declared: None,
            change: None,
            at,
            input_bytes: size,
        };
        return Ok(Built::Row { row, keyed: false });
    }

    let (mut data, mut declared, change) = if !has_value {
        if format.envelope != Envelope::None {
            return Ok(Built::Tombstone);
        }
        if key.is_none() {
            return Err("record has neither key nor value".into());
        }
        (
            Vec::new(),
            None,
            ChangeMeta {
                op: Op::Delete,
                cdc_ts: at.timestamp_ms.saturating_mul(1000),
                deleted: true,
                position: None,
            },
        )
    } else {
        let payload =
            decode_value(format, value_buf, schemas, true).map_err(|e| format!("value: {e}"))?;
        match payload {
            Payload::Change(change) => {
                let data = match change.row {
                    Value::Struct(fields) => fields,
                    _ => Vec::new(),
                };
                (
                    data,
                    change.row_type,
                    ChangeMeta {
                        op: change.op,
                        cdc_ts: change
                            .source_ts_micros
                            .unwrap_or(at.timestamp_ms.saturating_mul(1000)),
                        deleted: change.op == Op::Delete,
                        position: change.position,
                    },
                )
            }
            Payload::Plain(value) => {
                let (data, declared) = match (value.value, value.schema) {
                    (Value::Struct(fields), schema) => (fields, schema),
                    (other, schema) => (
                        vec![("value".into(), other)],
                        schema.map(|t| ColumnType::Struct(vec![Field::new("value", t)])),
                    ),
                };
                (
                    data,
                    declared,
                    ChangeMeta {
                        op: Op::Create,
                        cdc_ts: at.timestamp_ms.saturating_mul(1000),
                        deleted: false,
                        position: None,
                    },
                )
            }
        }
    };

    // Key columns: a struct key's fields fill the row where it lacks them (deletes without a
    // before image, key-only tombstones); a primitive key is kept as `_kafka_key` when it is
    // the table's key.
    let keyed = key.as_ref().is_some_and(|k| !k.value.is_null());
    if let Some(key) = key.filter(|k| !k.value.is_null()) {
        match key.value {
            Value::Struct(fields) => {
                let key_types = match &key.schema {
                    Some(ColumnType::Struct(types)) => Some(types),
                    _ => None,
                };
                for (name, value) in fields {
                    key_columns.push(name.clone());
                    let present = data
                        .iter()
                        .any(|(n, v)| same_name(n, &name) && !v.is_null());
                    if !present {
                        let ty = key_types
                            .and_then(|ts| ts.iter().find(|f| *f.name == *name))
                            .map(|f| f.ty.clone());
                        if let (Some(ColumnType::Struct(fields)), Some(ty)) = (&mut declared, ty)
                            && !fields.iter().any(|f| *f.name == *name)
                        {
                            fields.push(Field::new(&*name, ty));
                        }
                        data.retain(|(n, _)| *n != name);
                        data.push((name, value));
                    }
                }
            }
            primitive => {
                if route.primary_key.is_empty() {
                    key_columns.push(rows::KAFKA_KEY.into());
                    if let Some(ColumnType::Struct(fields)) = &mut declared {
                        fields.push(Field::new(
                            rows::KAFKA_KEY,
                            key.schema
                                .clone()
                                .unwrap_or_else(|| ColumnType::infer(&primitive)),
                        ));
                    }
                    data.push((rows::KAFKA_KEY.into(), primitive));
                }
            }
        }
    }
    for (name, _) in &mut data {
        if let std::borrow::Cow::Owned(renamed) = rows::data_column_name(name) {
            *name = renamed.into();
        }
    }
    Ok(Built::Row {
        row: Row {
            data,
            declared: declared.map(Arc::new),
            change: Some(change),
            at,
            input_bytes: size,
        },
        keyed,
    })
}

/// A decoded value: a Debezium change, or a plain value to store as it is.
#[derive(Debug, PartialEq)]
enum Payload {
    Change(debezium::Change),
    Plain(Decoded),
}

/// Decodes a record's value and unwraps its Debezium envelope if it has one. Debezium JSON
/// takes the fast path when `fast` (always, but for tests comparing both paths).
fn decode_value(
    format: TopicFormat,
    bytes: &[u8],
    schemas: &SchemaCache,
    fast: bool,
) -> Result<Payload, DecodeError> {
    if fast
        && format.value == Format::Json
        && format.envelope != Envelope::None
        && let Some(change) = decode::debezium_json::decode(bytes)?
    {
        return Ok(Payload::Change(change));
    }
    let value = decode_part(format.value, bytes, schemas)?;
    let envelope = match format.envelope {
        Envelope::Debezium => true,
        Envelope::Auto => debezium::is_envelope(&value.value),
        Envelope::None => false,
    };
    if envelope {
        debezium::unwrap(value).map(Payload::Change)
    } else {
        Ok(Payload::Plain(value))
    }
}

fn decode_part(
    format: Format,
    bytes: &[u8],
    schemas: &SchemaCache,
) -> Result<Decoded, DecodeError> {
    match format {
        Format::Avro => decode::avro::decode(bytes, schemas),
        f => decode::decode_self_describing(f, bytes),
    }
}

/// Decodes and encodes an event without I/O: the files a stage invocation would write.
/// Avro schemas must already be in `schemas`.
pub fn plan(
    config: &StageConfig,
    event: &KafkaEvent,
    schemas: &SchemaCache,
) -> Result<(Vec<PlannedFile>, StageSummary), StageError> {
    let parts = kafka::partitions(event)?;
    let decoded = decode_batch(config, &parts, schemas);
    encode_batch(config, decoded)
}

/// The stage function's logic with its clients, built once per cold start.
pub struct Stager<S, R> {
    pub config: Arc<StageConfig>,
    pub store: S,
    pub registry: Option<R>,
}

impl<S: ObjectStore, R: SchemaSource> Stager<S, R> {
    pub fn new(config: Arc<StageConfig>, store: S, registry: Option<R>) -> Self {
        Stager {
            config,
            store,
            registry,
        }
    }

    /// Stages one event: fetch Avro schemas, decode, encode, upload. Returns only after every
    /// file is written; any infrastructure failure fails the invocation (a retry rewrites the
    /// same keys). Logs within one `stage` span for the batch and one `stage_file` span per
    /// file written.
    pub async fn stage(&self, event: &KafkaEvent) -> Result<StageSummary, StageError> {
        let parts = kafka::partitions(event)?;
        let span = batch_span(&parts);
        self.stage_parts(parts).instrument(span).await
    }

    async fn stage_parts(
        &self,
        parts: Vec<PartitionRecords<'_>>,
    ) -> Result<StageSummary, StageError> {
        let mut schemas = SchemaCache::default();
        let ids = avro_schema_ids(&self.config, &parts);
        if !ids.is_empty() {
            match &self.registry {
                Some(registry) => schemas.prefetch(registry, ids).await?,
                // Config validation requires a registry for Avro topics; a record that still
                // names a schema is decoded against an empty cache and goes to errors.
                None => warn!("Avro records but no schema registry configured"),
            }
        }
        let decoded = decode_batch(&self.config, &parts, &schemas);
        drop(parts);
        let (files, mut summary) = encode_batch(&self.config, decoded)?;
        let bucket = self.config.bucket.as_str();
        futures::stream::iter(files.into_iter().map(|f| {
            let at = &f.at;
            let span = info_span!(
                "stage_file",
                table = tracing::field::Empty,
                topic = %at.topic,
                partition = at.partition,
                offsets = %format_args!("{}-{}", at.first_offset, at.last_offset),
                s3_key = %f.key,
                rows = f.rows,
            );
            if let Some(table) = &f.table {
                span.record("table", tracing::field::display(table));
            }
            async move {
                self.store
                    .put(bucket, &f.key, f.body, f.content_type)
                    .await?;
                match f.table {
                    Some(_) => info!("staged"),
                    None => info!("error records written"),
                }
                Ok::<(), StoreError>(())
            }
            .instrument(span)
        }))
        .buffer_unordered(self.config.max_concurrent_uploads)
        .try_collect::<Vec<()>>()
        .await?;
        summary.staged_at_ms = Some(chrono::Utc::now().timestamp_millis());
        if summary.records_to_errors > 0 {
            warn!(
                records_to_errors = summary.records_to_errors,
                "records could not be decoded and were written to the errors prefix"
            );
        }
        Ok(summary)
    }
}

/// The span of one batch: its size, and its coordinates when it holds one topic-partition
/// (an MSK batch often does).
fn batch_span(parts: &[PartitionRecords<'_>]) -> tracing::Span {
    let records: usize = parts.iter().map(|p| p.records.len()).sum();
    let span = info_span!(
        "stage",
        records,
        partitions = parts.len(),
        topic = tracing::field::Empty,
        partition = tracing::field::Empty,
        offsets = tracing::field::Empty,
    );
    if let [part] = parts {
        span.record("topic", part.topic);
        span.record("partition", part.partition);
        if let (Some(first), Some(last)) = (part.records.first(), part.records.last()) {
            span.record(
                "offsets",
                tracing::field::display(format_args!("{}-{}", first.offset, last.offset)),
            );
        }
    } else if let Some(first) = parts.first()
        && parts.iter().all(|p| p.topic == first.topic)
    {
        span.record("topic", first.topic);
    }
    span
}

#[cfg(test)]
mod tests;
