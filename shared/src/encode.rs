//! Rows → Arrow record batch → Parquet bytes (zstd, but for delta-encoded integer columns,
//! which are stored uncompressed; microsecond UTC timestamps, decimals as DECIMAL, nested
//! values as STRUCT/ARRAY or JSON text).
//!
//! Each staged file also carries key-value metadata that the load function reads from the
//! footer (a contract; see the README): `deltasink.table`, `deltasink.mode`,
//! `deltasink.primary_key` (JSON array) and `deltasink.format_version` (`1`).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int32Builder, Int64Builder, ListArray, NullBufferBuilder,
    StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field as ArrowField, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use crate::config::{IntegerEncoding, NestedMode};
use crate::route::TableMode;
use crate::rows::{self, Row, TableRows};
use crate::value::{ColumnType, Field, FieldName, Value, same_name};

/// The format version written in `deltasink.format_version`.
pub const FORMAT_VERSION: &str = "1";

/// Why a file could not be encoded. Encoding follows a schema learnt from the very values it
/// encodes, so this signals a bug, not bad input; the invocation fails and is retried.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("table {table}: column {column}: {detail}")]
    Value {
        table: String,
        column: String,
        detail: String,
    },
    #[error("table {table}: Arrow: {source}")]
    Arrow {
        table: String,
        source: arrow::error::ArrowError,
    },
    #[error("table {table}: Parquet: {source}")]
    Parquet {
        table: String,
        source: parquet::errors::ParquetError,
    },
}

/// The Arrow type of a column type.
pub fn arrow_type(ty: &ColumnType) -> DataType {
    match ty {
        ColumnType::Null | ColumnType::String | ColumnType::Json => DataType::Utf8,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 | ColumnType::Time => DataType::Int64,
        ColumnType::Float32 => DataType::Float32,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
        ColumnType::Binary => DataType::Binary,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::List(element) => DataType::List(Arc::new(ArrowField::new(
            "element",
            arrow_type(element),
            true,
        ))),
        ColumnType::Struct(fields) => DataType::Struct(arrow_fields(fields)),
    }
}

fn arrow_fields(fields: &[Field]) -> Fields {
    fields
        .iter()
        .map(|f| ArrowField::new(&*f.name, arrow_type(&f.ty), true))
        .collect()
}

/// The columns of a table's staged files, nested types flattened to JSON text in `json` mode.
pub fn file_fields(table: &TableRows, nested: NestedMode) -> Vec<Field> {
    let mut fields = table.file_fields();
    if nested == NestedMode::Json {
        for f in &mut fields {
            f.ty = f.ty.flatten_nested();
        }
    }
    fields
}

/// Builds the record batch of `rows` (a slice of `table.rows`) with the columns `fields`
/// (their Arrow `schema`).
fn record_batch(
    table: &TableRows,
    rows: &[Row],
    fields: &[Field],
    schema: SchemaRef,
) -> Result<RecordBatch, EncodeError> {
    let metadata = match table.mode {
        TableMode::Raw => 5,
        _ => rows::cdc_metadata_fields().len(),
    };
    let data_count = fields.len() - metadata;
    let data_fields = &fields[..data_count];

    // Gather each data column's values, with a positional fast path: most rows list their
    // fields in the schema's order.
    let mut columns: Vec<Vec<Option<&Value>>> = vec![vec![None; rows.len()]; data_count];
    for (r, row) in rows.iter().enumerate() {
        for (i, (name, value)) in row.data.iter().enumerate() {
            let index = field_index(data_fields, i, name);
            if let Some(index) = index
                && !value.is_null()
            {
                columns[index][r] = Some(value);
            }
        }
    }

    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for (field, values) in data_fields.iter().zip(&columns) {
        arrays.push(
            build_array(&field.ty, values).map_err(|detail| EncodeError::Value {
                table: table.table.to_string(),
                column: field.name.to_string(),
                detail,
            })?,
        );
    }
    drop(columns);
    arrays.extend(metadata_arrays(table, rows));

    RecordBatch::try_new(schema, arrays).map_err(|source| EncodeError::Arrow {
        table: table.table.to_string(),
        source,
    })
}

fn metadata_arrays(table: &TableRows, rows: &[Row]) -> Vec<ArrayRef> {
    let topic = |row: &Row| -> &str {
        table
            .topics
            .get(row.at.topic as usize)
            .map(|t| &**t)
            .unwrap_or_default()
    };
    let timestamps = |f: &dyn Fn(&Row) -> Option<i64>| -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
        for row in rows {
            b.append_option(f(row));
        }
        Arc::new(b.finish())
    };
    fn strings<'r>(rows: &'r [Row], f: &dyn Fn(&'r Row) -> Option<&'r str>) -> ArrayRef {
        let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
        for row in rows {
            b.append_option(f(row));
        }
        Arc::new(b.finish())
    }
    let partitions = || -> ArrayRef {
        let mut b = Int32Builder::with_capacity(rows.len());
        for row in rows {
            b.append_value(row.at.partition);
        }
        Arc::new(b.finish())
    };
    let offsets = || -> ArrayRef {
        let mut b = Int64Builder::with_capacity(rows.len());
        for row in rows {
            b.append_value(row.at.offset);
        }
        Arc::new(b.finish())
    };
    let kafka_ts = |row: &Row| Some(row.at.timestamp_ms.saturating_mul(1000));
    match table.mode {
        TableMode::Raw => vec![
            timestamps(&kafka_ts),
            strings(rows, &|row| Some(topic(row))),
            partitions(),
            offsets(),
            strings(rows, &|_| Some("stream")),
        ],
        _ => {
            let mut deleted = BooleanBuilder::with_capacity(rows.len());
            for row in rows {
                deleted.append_value(row.change.as_ref().is_some_and(|c| c.deleted));
            }
            vec![
                strings(rows, &|row| row.change.as_ref().map(|c| c.op.code())),
                timestamps(&|row| row.change.as_ref().map(|c| c.cdc_ts)),
                Arc::new(deleted.finish()),
                strings(rows, &|row| {
                    row.change.as_ref().and_then(|c| c.position.as_deref())
                }),
                strings(rows, &|row| Some(topic(row))),
                partitions(),
                offsets(),
                timestamps(&kafka_ts),
            ]
        }
    }
}

/// Builds one Arrow array of type `ty` from values (None = null).
pub fn build_array(ty: &ColumnType, values: &[Option<&Value>]) -> Result<ArrayRef, String> {
    let n = values.len();
    Ok(match ty {
        ColumnType::Null | ColumnType::String => {
            let mut b = StringBuilder::with_capacity(n, n * 16);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::String(s)) => b.append_value(s),
                    Some(other) => b.append_value(other.to_text(None)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Json => {
            let mut b = StringBuilder::with_capacity(n, n * 32);
            let mut text = String::new();
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(v) => {
                        text.clear();
                        v.write_json(None, &mut text);
                        b.append_value(&text);
                    }
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(n);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Bool(x)) => b.append_value(*x),
                    Some(other) => return Err(mismatch("BOOLEAN", other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Int32 => {
            let mut b = Int32Builder::with_capacity(n);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Int(x)) => b.append_value(
                        i32::try_from(*x).map_err(|_| format!("{x} does not fit INT"))?,
                    ),
                    Some(other) => return Err(mismatch("INT", other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Int64 | ColumnType::Time => {
            let mut b = Int64Builder::with_capacity(n);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Int(x) | Value::Time(x)) => b.append_value(*x),
                    Some(other) => return Err(mismatch("BIGINT", other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Float32 => {
            let mut b = Float32Builder::with_capacity(n);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Float(x)) => b.append_value(*x as f32),
                    Some(Value::Int(x)) => b.append_value(*x as f32),
                    Some(other) => return Err(mismatch("FLOAT", other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Float64 => {
            let mut b = Float64Builder::with_capacity(n);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Float(x)) => b.append_value(*x),
                    Some(Value::Int(x)) => b.append_value(*x as f64),
                    Some(other) => return Err(mismatch("DOUBLE", other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Decimal { precision, scale } => {
            let mut b = Decimal128Builder::with_capacity(n)
                .with_precision_and_scale(*precision, *scale)
                .map_err(|e| e.to_string())?;
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    // Values of a decimal column share its scale (decoders rescale); integers
                    // from schema-less JSON are scaled up.
                    Some(Value::Decimal(x)) => b.append_value(*x),
                    Some(Value::Int(x)) => {
                        let factor = 10i128
                            .checked_pow(u32::try_from(*scale).unwrap_or(0))
                            .ok_or("decimal scale out of range")?;
                        b.append_value(i128::from(*x).checked_mul(factor).ok_or_else(|| {
                            format!("{x} does not fit DECIMAL({precision},{scale})")
                        })?)
                    }
                    Some(other) => return Err(mismatch("DECIMAL", other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Binary => {
            let mut b = BinaryBuilder::with_capacity(n, n * 16);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Bytes(x)) => b.append_value(x),
                    Some(other) => return Err(mismatch("BINARY", other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Date => {
            let mut b = Date32Builder::with_capacity(n);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Date(x)) => b.append_value(*x),
                    Some(other) => return Err(mismatch("DATE", other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Timestamp => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Timestamp(x)) => b.append_value(*x),
                    Some(other) => return Err(mismatch("TIMESTAMP", other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::List(element) => {
            let mut offsets = Vec::with_capacity(n + 1);
            let mut nulls = NullBufferBuilder::new(n);
            let mut items: Vec<Option<&Value>> = Vec::new();
            offsets.push(0i32);
            for v in values {
                match v {
                    None | Some(Value::Null) => nulls.append_null(),
                    Some(Value::List(xs)) => {
                        nulls.append_non_null();
                        items.extend(xs.iter().map(|x| (!x.is_null()).then_some(x)));
                    }
                    Some(other) => return Err(mismatch("ARRAY", other)),
                }
                let len = i32::try_from(items.len()).map_err(|_| "list too long".to_string())?;
                offsets.push(len);
            }
            let child = build_array(element, &items)?;
            let field = Arc::new(ArrowField::new("element", arrow_type(element), true));
            Arc::new(
                ListArray::try_new(
                    field,
                    OffsetBuffer::new(offsets.into()),
                    child,
                    nulls.finish(),
                )
                .map_err(|e| e.to_string())?,
            )
        }
        ColumnType::Struct(fields) => {
            let mut nulls = NullBufferBuilder::new(n);
            let mut children: Vec<Vec<Option<&Value>>> = vec![vec![None; n]; fields.len()];
            for (r, v) in values.iter().enumerate() {
                match v {
                    None | Some(Value::Null) => nulls.append_null(),
                    Some(Value::Struct(entries)) => {
                        nulls.append_non_null();
                        for (i, (name, x)) in entries.iter().enumerate() {
                            let index = field_index(fields, i, name);
                            if let Some(index) = index
                                && !x.is_null()
                            {
                                children[index][r] = Some(x);
                            }
                        }
                    }
                    Some(other) => return Err(mismatch("STRUCT", other)),
                }
            }
            if fields.is_empty() {
                // Parquet cannot store a struct without fields: keep the (empty) objects as
                // JSON text instead.
                return build_array(&ColumnType::Json, values);
            }
            let mut arrays = Vec::with_capacity(fields.len());
            for (f, c) in fields.iter().zip(&children) {
                arrays.push(build_array(&f.ty, c).map_err(|e| format!("{}: {e}", f.name))?);
            }
            Arc::new(
                StructArray::try_new(arrow_fields(fields), arrays, nulls.finish())
                    .map_err(|e| e.to_string())?,
            )
        }
    })
}

/// The position of the field `name`, found at `i`-th place in a value: most values list their
/// fields in the schema's order, so position `i` is checked before searching (and names
/// shared with the schema compare by pointer).
fn field_index(fields: &[Field], i: usize, name: &FieldName) -> Option<usize> {
    match fields.get(i) {
        Some(f) if same_name(&f.name, name) => Some(i),
        _ => fields.iter().position(|f| same_name(&f.name, name)),
    }
}

fn mismatch(expected: &str, got: &Value) -> String {
    format!("expected a {expected} value, got {}", got.to_json(None))
}

/// Writer settings of staged files, the footer's key-value metadata included. Dictionary
/// encoding is on for every column here; [`TableEncoder`] turns it off where values do not
/// repeat.
fn writer_properties_builder(table: &TableRows) -> WriterPropertiesBuilder {
    let level = ZstdLevel::try_new(1).unwrap_or_default();
    let primary_key = {
        let mut out = String::from("[");
        for (i, c) in table.primary_key.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            crate::value::write_json_string(c, &mut out);
        }
        out.push(']');
        out
    };
    // Column statistics only where they are read: the load function takes the oldest Kafka
    // timestamp of a file from its footer. Staged files are read whole, once, so neither
    // other statistics nor page offset indexes serve a reader.
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_offset_index_disabled(true);
    for timestamp in [rows::KAFKA_TIMESTAMP, rows::RAW_TIMESTAMP] {
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(timestamp), EnabledStatistics::Chunk);
    }
    builder
        .set_coerce_types(true)
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_key_value_metadata(Some(vec![
            KeyValue::new("deltasink.table".into(), table.table.to_string()),
            KeyValue::new("deltasink.mode".into(), table.mode.name().to_string()),
            KeyValue::new("deltasink.primary_key".into(), primary_key),
            KeyValue::new(
                "deltasink.format_version".into(),
                FORMAT_VERSION.to_string(),
            ),
        ]))
}

/// Encodes a record batch as one Parquet file.
fn write_file(
    table: &TableRows,
    batch: &RecordBatch,
    options: ArrowWriterOptions,
) -> Result<Vec<u8>, EncodeError> {
    let wrap = |source| EncodeError::Parquet {
        table: table.table.to_string(),
        source,
    };
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 3);
    let mut writer =
        ArrowWriter::try_new_with_options(&mut out, batch.schema(), options).map_err(wrap)?;
    writer.write(batch).map_err(wrap)?;
    writer.close().map_err(wrap)?;
    Ok(out)
}

/// Encodes the files of one table. What is the same for each of them (the columns and the
/// Arrow schema) is worked out once; the writer settings follow each file's values (which
/// columns repeat enough for a dictionary, which integers are delta-encoded) and are built
/// again only when a file chooses differently from the one before: the files of one batch
/// usually choose alike, but a file whose column is all null must not decide for the next.
pub struct TableEncoder<'t> {
    table: &'t TableRows,
    fields: Vec<Field>,
    schema: SchemaRef,
    integers: IntegerEncoding,
    /// The last file's column encodings and the writer options built for them.
    options: Option<(Vec<ColumnEncoding>, ArrowWriterOptions)>,
}

/// How a file stores one of its top-level columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnEncoding {
    /// Dictionary-encoded (the writer falls back to plain if the dictionary grows too large);
    /// also the writer's default for nested and boolean columns, which it never dictionary-encodes.
    Dictionary,
    Plain,
    /// `DELTA_BINARY_PACKED`: integers, dates and timestamps whose values do not repeat.
    Delta,
}

impl<'t> TableEncoder<'t> {
    pub fn new(table: &'t TableRows, nested: NestedMode, integers: IntegerEncoding) -> Self {
        let fields = file_fields(table, nested);
        let schema = Arc::new(Schema::new(arrow_fields(&fields)));
        TableEncoder {
            table,
            fields,
            schema,
            integers,
            options: None,
        }
    }

    /// The record batch of `rows` (a slice of the table's rows).
    pub fn record_batch(&self, rows: &[Row]) -> Result<RecordBatch, EncodeError> {
        record_batch(self.table, rows, &self.fields, Arc::clone(&self.schema))
    }

    /// One Parquet file of `batch` (a batch of [`Self::record_batch`]).
    pub fn parquet_bytes(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
        let encodings: Vec<ColumnEncoding> = batch
            .columns()
            .iter()
            .map(|column| column_encoding(column, self.integers))
            .collect();
        let options = match &self.options {
            Some((chosen, options)) if *chosen == encodings => options.clone(),
            _ => {
                let options = self.writer_options(&encodings)?;
                self.options = Some((encodings, options.clone()));
                options
            }
        };
        write_file(self.table, batch, options)
    }

    fn writer_options(
        &self,
        encodings: &[ColumnEncoding],
    ) -> Result<ArrowWriterOptions, EncodeError> {
        let mut builder = writer_properties_builder(self.table);
        for (field, encoding) in self.schema.fields().iter().zip(encodings) {
            let path = || ColumnPath::from(field.name().as_str());
            match encoding {
                ColumnEncoding::Dictionary => {}
                ColumnEncoding::Plain => {
                    builder = builder.set_column_dictionary_enabled(path(), false);
                }
                // Bit-packed deltas of values that do not repeat leave zstd little to find
                // (the benchmark batch's files: 2.3% larger without it), and each compressed
                // column chunk costs a compression context (on x86_64 zstd runs `cpuid` to
                // make one, which traps in a VM): the 30-table batch 2.6% fewer instructions.
                ColumnEncoding::Delta => {
                    builder = builder
                        .set_column_dictionary_enabled(path(), false)
                        .set_column_encoding(path(), Encoding::DELTA_BINARY_PACKED)
                        .set_column_compression(path(), Compression::UNCOMPRESSED);
                }
            }
        }
        let mut properties = builder.build();
        // What ArrowWriter would add to each file's footer, once per choice of encodings.
        add_encoded_arrow_schema_to_metadata(&self.schema, &mut properties);
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(properties.coerce_types())
            .convert(&self.schema)
            .map_err(|source| EncodeError::Parquet {
                table: self.table.table.to_string(),
                source,
            })?;
        Ok(ArrowWriterOptions::new()
            .with_properties(properties)
            .with_skip_arrow_metadata(true)
            .with_parquet_schema(parquet_schema))
    }
}

/// How a file stores `column`: a dictionary where values repeat, else delta encoding for
/// integers, dates and timestamps (stored as Parquet INT32/INT64; decimals are not, as their
/// physical type depends on precision) when `integers` allows it, else plain.
fn column_encoding(column: &ArrayRef, integers: IntegerEncoding) -> ColumnEncoding {
    if values_repeat(column) {
        return ColumnEncoding::Dictionary;
    }
    let integral = matches!(
        column.data_type(),
        DataType::Int32 | DataType::Int64 | DataType::Date32 | DataType::Timestamp(_, _)
    );
    if integral && integers == IntegerEncoding::Delta {
        ColumnEncoding::Delta
    } else {
        ColumnEncoding::Plain
    }
}

/// Whether a column's values repeat enough for dictionary encoding to pay, judged on up to
/// [`DICTIONARY_SAMPLE`] values spread over the array: at least two occurrences per distinct
/// value on average. Unique values (offsets, timestamps, ids, e-mails…) cost a hash lookup
/// each, a dictionary page as large as the plain values and an index page on top. Columns of
/// nested or boolean type (never dictionary-encoded) keep the default.
fn values_repeat(column: &ArrayRef) -> bool {
    let n = column.len();
    let sample = n.min(DICTIONARY_SAMPLE);
    let sampled = (0..sample).map(|k| k * n / sample.max(1));
    if let Some(strings) = column.as_string_opt::<i32>() {
        return repeat_often(sampled, |i| {
            strings.is_valid(i).then(|| strings.value(i).as_bytes())
        });
    }
    if let Some(bytes) = column.as_binary_opt::<i32>() {
        return repeat_often(sampled, |i| bytes.is_valid(i).then(|| bytes.value(i)));
    }
    let Some(width) = column.data_type().primitive_width() else {
        return true;
    };
    let data = column.to_data();
    let values = &data.buffers()[0].as_slice()[data.offset() * width..];
    repeat_often(sampled, |i| {
        column
            .is_valid(i)
            .then(|| &values[i * width..(i + 1) * width])
    })
}

/// Whether the non-null values at `indices` (the first [`DICTIONARY_SAMPLE`] of them) hold at
/// most one distinct value per two. Distinct values are counted by their hashes in a small
/// open-addressing table (no hash set or sort per column: the decision is taken for every
/// column of every file); a collision could only make a column look a little more repetitive
/// than it is. The count stops as soon as the answer is no, which a column of unique values
/// (ids, offsets, timestamps) reaches halfway.
fn repeat_often<'v>(
    indices: impl ExactSizeIterator<Item = usize>,
    value: impl Fn(usize) -> Option<&'v [u8]>,
) -> bool {
    let indices = indices.take(DICTIONARY_SAMPLE);
    // At most this many values are seen (nulls are not counted).
    let most = indices.len();
    SAMPLE_TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let generation = table.next_generation();
        let (mut seen, mut distinct) = (0usize, 0usize);
        for bytes in indices.filter_map(&value) {
            seen += 1;
            let hash = sample_hash(bytes);
            // The high half picks the slot, the low half is kept (with the generation).
            let entry = generation | (hash & 0xFFFF_FFFF);
            let mut slot = (hash >> 32) as usize % SAMPLE_SLOTS;
            loop {
                let current = table.slots[slot];
                if current >> 32 != generation >> 32 {
                    // Empty: written by an earlier count.
                    table.slots[slot] = entry;
                    distinct += 1;
                    if distinct * 2 > most {
                        return false;
                    }
                    break;
                }
                if current == entry {
                    break;
                }
                slot = (slot + 1) % SAMPLE_SLOTS;
            }
        }
        distinct * 2 <= seen
    })
}

/// Slots of [`SampleTable`]: twice the sample, so the table is never more than half full,
/// probes stay short and an empty slot is always found.
const SAMPLE_SLOTS: usize = 2 * DICTIONARY_SAMPLE;

/// The table [`repeat_often`] counts in, kept per thread so that it needs no clearing: each
/// slot holds a count's generation (high half) and a value's hash (low half); a slot of
/// another generation is empty.
struct SampleTable {
    generation: u32,
    slots: [u64; SAMPLE_SLOTS],
}

impl SampleTable {
    /// The next count's generation, in the high half of a slot.
    fn next_generation(&mut self) -> u64 {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: slots of old counts could pass for the new one's.
            self.slots = [0; SAMPLE_SLOTS];
            self.generation = 1;
        }
        u64::from(self.generation) << 32
    }
}

thread_local! {
    static SAMPLE_TABLE: std::cell::RefCell<SampleTable> = const {
        std::cell::RefCell::new(SampleTable {
            generation: 0,
            slots: [0; SAMPLE_SLOTS],
        })
    };
}

/// The hash of a sampled value: 4- and 8-byte values (integers, dates, timestamps, short
/// texts) are mixed in a few instructions, without collisions among values of one width;
/// other lengths go through xxh3. [`repeat_often`] places a value by the high half and keeps
/// the low half.
#[inline]
fn sample_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let word = if let Ok(b) = <[u8; 8]>::try_from(bytes) {
        u64::from_le_bytes(b)
    } else if let Ok(b) = <[u8; 4]>::try_from(bytes) {
        u64::from(u32::from_le_bytes(b)) | 4 << 32
    } else {
        return xxhash_rust::xxh3::xxh3_64(bytes);
    };
    // A bijection of the word: multiplying by an odd constant (which carries every bit into
    // the high half), then folding the high half into the low.
    let m = word.wrapping_mul(K);
    m ^ (m >> 29)
}

/// How many values of a file's column [`values_repeat`] looks at.
const DICTIONARY_SAMPLE: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::debezium::Op;
    use crate::route::TableName;
    use crate::rows::{ChangeMeta, Coordinates};
    use arrow::array::{Array, AsArray};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn repetition_is_at_most_one_distinct_value_per_two() {
        let judge = |values: &[&str]| repeat_often(0..values.len(), |i| Some(values[i].as_bytes()));
        assert!(judge(&["a", "a", "b", "b"]));
        assert!(judge(&["a", "a", "a", "b"]));
        assert!(!judge(&["a", "a", "b", "c"]));
        assert!(!judge(&["a", "b", "c"]));
        assert!(judge(&[]));
        // Nulls are not counted.
        assert!(repeat_often(0..4, |i| (i < 2).then_some(&b"x"[..])));
        assert!(!repeat_often(0..4, |i| (i == 0).then_some(&b"x"[..])));
        // Full samples: all distinct, half distinct (each value twice), one value more.
        let numbers: Vec<[u8; 8]> = (0..2 * DICTIONARY_SAMPLE as u64)
            .map(u64::to_le_bytes)
            .collect();
        assert!(!repeat_often(0..DICTIONARY_SAMPLE, |i| Some(
            &numbers[i][..]
        )));
        assert!(repeat_often(0..DICTIONARY_SAMPLE, |i| Some(
            &numbers[i / 2][..]
        )));
        let over = DICTIONARY_SAMPLE / 2 + 1;
        assert!(!repeat_often(0..DICTIONARY_SAMPLE, |i| Some(
            &numbers[i % over][..]
        )));
        // Mostly nulls: only the values seen count.
        assert!(repeat_often(0..DICTIONARY_SAMPLE, |i| {
            (i % 5 == 0).then_some(&numbers[i % 2][..])
        }));
        assert!(!repeat_often(0..DICTIONARY_SAMPLE, |i| {
            (i % 5 == 0).then_some(&numbers[i][..])
        }));
        // Only the first sample counts, however many indices are given.
        assert!(!repeat_often(0..10 * DICTIONARY_SAMPLE, |i| {
            Some(&numbers[if i < DICTIONARY_SAMPLE { i } else { 0 }][..])
        }));
    }

    #[test]
    fn counts_do_not_see_each_others_values_even_when_generations_wrap() {
        let numbers: Vec<[u8; 8]> = (0..DICTIONARY_SAMPLE as u64)
            .map(u64::to_le_bytes)
            .collect();
        let unique = || repeat_often(0..DICTIONARY_SAMPLE, |i| Some(&numbers[i][..]));
        let pairs = || repeat_often(0..DICTIONARY_SAMPLE, |i| Some(&numbers[i / 2][..]));
        SAMPLE_TABLE.with(|t| t.borrow_mut().generation = u32::MAX - 2);
        for _ in 0..3 {
            // Each count after one that filled the table with the same values.
            assert!(pairs());
            assert!(pairs());
            assert!(!unique());
        }
        assert!(SAMPLE_TABLE.with(|t| t.borrow().generation) < 10);
    }

    #[test]
    fn sample_hashes_of_one_width_never_collide() {
        use std::collections::HashSet;
        let wide: HashSet<u64> = (0..200_000u64)
            .chain((0..200_000u64).map(|n| n * 1_000_017 + (1 << 50)))
            .collect();
        let hashes: HashSet<u64> = wide.iter().map(|n| sample_hash(&n.to_le_bytes())).collect();
        assert_eq!(hashes.len(), wide.len());
        let narrow: HashSet<u32> = (0..200_000u32)
            .chain((0..200_000u32).map(|n| n.wrapping_mul(2_654_435_761)))
            .collect();
        let hashes: HashSet<u64> = narrow
            .iter()
            .map(|n| sample_hash(&n.to_le_bytes()))
            .collect();
        assert_eq!(hashes.len(), narrow.len());
        // Other lengths are hashed by xxh3.
        assert_eq!(sample_hash(b"paid!"), xxhash_rust::xxh3::xxh3_64(b"paid!"));
    }

    fn row(offset: i64, data: Vec<(&str, Value)>) -> Row {
        Row {
            data: data.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            declared: None,
            change: Some(ChangeMeta {
                op: Op::Create,
                cdc_ts: 1_000_000,
                deleted: false,
                position: None,
            }),
            at: Coordinates {
                topic: 0,
                partition: 2,
                offset,
                timestamp_ms: 1_700_000_000_123,
            },
            input_bytes: 10,
        }
    }

    /// An empty upsert table `s.t` keyed on `id`, fed by `topic.a`.
    fn upsert_table() -> TableRows {
        TableRows::new(
            TableName::parse("s.t").unwrap(),
            TableMode::Upsert,
            vec!["id".into()],
            vec![Arc::from("topic.a")].into(),
        )
    }

    fn read_back(bytes: Vec<u8>) -> (RecordBatch, Vec<KeyValue>) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
        let kv = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default();
        let mut reader = builder.build().unwrap();
        (reader.next().unwrap().unwrap(), kv)
    }

    #[test]
    fn round_trips_types_metadata_and_footer() {
        let mut t = upsert_table();
        let mut declared_row = row(
            7,
            vec![
                ("id", Value::Int(1)),
                ("amount", Value::Decimal(12345)),
                ("when", Value::Timestamp(1_700_000_000_000_001)),
                (
                    "tags",
                    Value::List(vec![Value::String("a".into()), Value::Null]),
                ),
                (
                    "addr",
                    Value::Struct(vec![("city".into(), Value::String("Oslo".into()))]),
                ),
            ],
        );
        declared_row.declared = Some(Arc::new(ColumnType::Struct(vec![
            Field::new("id", ColumnType::Int32),
            Field::new(
                "amount",
                ColumnType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            Field::new("when", ColumnType::Timestamp),
            Field::new("tags", ColumnType::List(Box::new(ColumnType::String))),
            Field::new(
                "addr",
                ColumnType::Struct(vec![Field::new("city", ColumnType::String)]),
            ),
        ])));
        t.push(declared_row);
        let mut encoder = TableEncoder::new(&t, NestedMode::Struct, IntegerEncoding::Delta);
        let batch = encoder.record_batch(&t.rows).unwrap();
        let (back, kv) = read_back(encoder.parquet_bytes(&batch).unwrap());
        assert_eq!(back.num_rows(), 1);
        let schema = back.schema();
        assert_eq!(
            schema.field_with_name("id").unwrap().data_type(),
            &DataType::Int32
        );
        assert_eq!(
            schema.field_with_name("amount").unwrap().data_type(),
            &DataType::Decimal128(10, 2)
        );
        assert_eq!(
            schema.field_with_name("_cdc_ts").unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let amount = back
            .column_by_name("amount")
            .unwrap()
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(amount.value(0), 12345);
        let kts = back
            .column_by_name("_kafka_timestamp")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(kts.value(0), 1_700_000_000_123_000);
        let tags = back.column_by_name("tags").unwrap().as_list::<i32>();
        assert_eq!(tags.value(0).len(), 2);
        assert!(tags.value(0).is_null(1));
        let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
        assert_eq!(get("deltasink.table").as_deref(), Some("s.t"));
        assert_eq!(get("deltasink.mode").as_deref(), Some("upsert"));
        assert_eq!(get("deltasink.primary_key").as_deref(), Some("[\"id\"]"));
    }

    #[test]
    fn json_mode_stores_nested_values_as_text() {
        let mut t = TableRows::new(
            TableName::parse("t").unwrap(),
            TableMode::Append,
            vec![],
            vec![Arc::from("x")].into(),
        );
        t.push(row(
            1,
            vec![("doc", Value::Struct(vec![("a".into(), Value::Int(1))]))],
        ));
        let batch = TableEncoder::new(&t, NestedMode::Json, IntegerEncoding::Delta)
            .record_batch(&t.rows)
            .unwrap();
        let doc = batch.column_by_name("doc").unwrap().as_string::<i32>();
        assert_eq!(doc.value(0), r#"{"a":1}"#);
    }

    #[test]
    fn rows_with_fields_in_any_order_land_in_the_right_columns() {
        let mut t = TableRows::new(
            TableName::parse("t").unwrap(),
            TableMode::Append,
            vec![],
            vec![Arc::from("x")].into(),
        );
        t.push(row(
            1,
            vec![("a", Value::Int(1)), ("b", Value::String("x".into()))],
        ));
        t.push(row(
            2,
            vec![("b", Value::String("y".into())), ("a", Value::Int(2))],
        ));
        t.push(row(3, vec![("b", Value::String("z".into()))]));
        let batch = TableEncoder::new(&t, NestedMode::Struct, IntegerEncoding::Delta)
            .record_batch(&t.rows)
            .unwrap();
        let a = batch
            .column_by_name("a")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        let b = batch.column_by_name("b").unwrap().as_string::<i32>();
        assert_eq!((a.value(0), a.value(1), a.is_null(2)), (1, 2, true));
        assert_eq!((b.value(0), b.value(1), b.value(2)), ("x", "y", "z"));
    }

    #[test]
    fn table_encoder_files_round_trip_with_the_same_footer() {
        let mut t = upsert_table();
        for i in 0..40i64 {
            let mut r = row(
                100 + i,
                vec![
                    ("id", Value::Int(i)),
                    (
                        "status",
                        Value::String(["new", "paid"][i as usize % 2].into()),
                    ),
                ],
            );
            r.at.timestamp_ms = 1_700_000_000_000 + 40 - i;
            t.push(r);
        }
        let mut encoder = TableEncoder::new(&t, NestedMode::Struct, IntegerEncoding::Delta);
        for rows in t.rows.chunks(20) {
            let batch = encoder.record_batch(rows).unwrap();
            let bytes = encoder.parquet_bytes(&batch).unwrap();
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes.clone())).unwrap();
            let metadata = builder.metadata().clone();
            let (back, kv) = read_back(bytes);
            // Every file: the batch's schema (read through the footer's Arrow schema) and
            // values, and the footer metadata in ArrowWriter's order.
            assert_eq!(back.schema().fields(), batch.schema().fields());
            assert_eq!(back.columns(), batch.columns());
            let keys: Vec<&str> = kv.iter().map(|e| e.key.as_str()).collect();
            assert_eq!(
                keys,
                [
                    "deltasink.table",
                    "deltasink.mode",
                    "deltasink.primary_key",
                    "deltasink.format_version",
                    "ARROW:schema"
                ]
            );
            let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
            assert_eq!(get("deltasink.table").as_deref(), Some("s.t"));
            assert_eq!(
                get("deltasink.format_version"),
                Some(FORMAT_VERSION.to_string())
            );

            let chunks = metadata.row_group(0).columns();
            let chunk = |name: &str| {
                chunks
                    .iter()
                    .find(|c| c.column_path().string() == name)
                    .unwrap()
            };
            let dictionary = |name: &str| chunk(name).dictionary_page_offset().is_some();
            let delta = |name: &str| {
                chunk(name)
                    .encodings()
                    .any(|e| e == Encoding::DELTA_BINARY_PACKED)
            };
            // Unique integers and timestamps are delta-encoded; repeated values keep their
            // dictionary.
            assert!(!dictionary("id") && !dictionary("_kafka_offset"));
            assert!(!dictionary("_kafka_timestamp"));
            assert!(delta("id") && delta("_kafka_offset") && delta("_kafka_timestamp"));
            assert!(dictionary("status") && dictionary("_kafka_topic") && dictionary("_cdc_ts"));
            assert!(!delta("status") && !delta("_cdc_ts"));
            // Delta-encoded columns are stored uncompressed, every other column with zstd.
            for c in chunks {
                let expected = if c.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED) {
                    Compression::UNCOMPRESSED
                } else {
                    Compression::ZSTD(ZstdLevel::try_new(1).unwrap())
                };
                assert_eq!(c.compression(), expected, "{}", c.column_path());
            }
            assert_eq!(chunk("id").compression(), Compression::UNCOMPRESSED);
            assert!(matches!(
                chunk("status").compression(),
                Compression::ZSTD(_)
            ));
            // The load function's statistic is there; the others are not written.
            let first = rows[0].at.timestamp_ms;
            let oldest = rows[rows.len() - 1].at.timestamp_ms;
            assert!(oldest < first);
            match chunk("_kafka_timestamp").statistics() {
                Some(parquet::file::statistics::Statistics::Int64(s)) => {
                    assert_eq!(s.min_opt(), Some(&(oldest * 1000)));
                    assert_eq!(s.max_opt(), Some(&(first * 1000)));
                }
                other => panic!("statistics of _kafka_timestamp: {other:?}"),
            }
            assert!(chunk("id").statistics().is_none());
            assert!(chunk("id").offset_index_offset().is_none());
        }
    }

    /// The column encodings of a staged file, by column name.
    fn encodings_of(bytes: Vec<u8>) -> Vec<(String, Vec<Encoding>)> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
        builder
            .metadata()
            .row_group(0)
            .columns()
            .iter()
            .map(|c| (c.column_path().string(), c.encodings().collect()))
            .collect()
    }

    fn encodings_of_column(file: &[(String, Vec<Encoding>)], name: &str) -> Vec<Encoding> {
        match file.iter().find(|(n, _)| n == name) {
            Some((_, e)) => e.clone(),
            None => panic!("no column {name} in {file:?}"),
        }
    }

    #[test]
    fn each_file_chooses_its_encodings_from_its_own_values() {
        // The first file's `note` is all null (a dictionary costs nothing there); the second
        // file's notes are all different and must not inherit that dictionary. `day` is a
        // date that repeats in the first file only.
        let mut t = upsert_table();
        for i in 0..40i64 {
            let second = i >= 20;
            let note = if second {
                Value::String(format!("note {i}").into())
            } else {
                Value::Null
            };
            let day = Value::Date(if second { i as i32 } else { 19_000 });
            // Unique negative and positive integers with nulls between them.
            let step = if i % 3 == 0 {
                Value::Null
            } else {
                Value::Int((i - 20) * 1_000_003)
            };
            t.push(row(
                100 + i,
                vec![
                    ("id", Value::Int(i)),
                    ("note", note),
                    ("day", day),
                    ("step", step),
                ],
            ));
        }
        let mut encoder = TableEncoder::new(&t, NestedMode::Struct, IntegerEncoding::Delta);
        let files: Vec<_> = t
            .rows
            .chunks(20)
            .map(|rows| {
                let batch = encoder.record_batch(rows).unwrap();
                let bytes = encoder.parquet_bytes(&batch).unwrap();
                // Whatever the encodings, the values read back the same.
                let (back, _) = read_back(bytes.clone());
                assert_eq!(back.columns(), batch.columns());
                encodings_of(bytes)
            })
            .collect();
        let dictionary = |file: usize, name: &str| {
            encodings_of_column(&files[file], name).contains(&Encoding::RLE_DICTIONARY)
        };
        let delta = |file: usize, name: &str| {
            encodings_of_column(&files[file], name).contains(&Encoding::DELTA_BINARY_PACKED)
        };
        assert!(dictionary(0, "note") && !dictionary(1, "note"));
        assert!(dictionary(0, "day") && !dictionary(1, "day") && delta(1, "day"));
        assert!(delta(0, "id") && delta(1, "id"));
        assert!(delta(0, "step") && delta(1, "step"));
        // Strings are never delta-encoded.
        assert!(!delta(1, "note"));
    }

    #[test]
    fn plain_integer_encoding_writes_no_delta_pages() {
        let mut t = upsert_table();
        for i in 0..20i64 {
            t.push(row(100 + i, vec![("id", Value::Int(i * 7919))]));
        }
        let mut encoder = TableEncoder::new(&t, NestedMode::Struct, IntegerEncoding::Plain);
        let batch = encoder.record_batch(&t.rows).unwrap();
        let bytes = encoder.parquet_bytes(&batch).unwrap();
        let (back, _) = read_back(bytes.clone());
        assert_eq!(back.columns(), batch.columns());
        let file = encodings_of(bytes);
        for (name, encodings) in &file {
            assert!(
                !encodings.contains(&Encoding::DELTA_BINARY_PACKED),
                "{name}: {encodings:?}"
            );
        }
        let id = encodings_of_column(&file, "id");
        assert!(id.contains(&Encoding::PLAIN) && !id.contains(&Encoding::RLE_DICTIONARY));
    }
}
