//! Rows → Arrow record batch → Parquet bytes (zstd, microsecond UTC timestamps, decimals as
//! DECIMAL, nested values as STRUCT/ARRAY or JSON text).
//!
//! Each staged file also carries key-value metadata that the load function reads from the
//! footer (a contract; see the README): `deltasink.table`, `deltasink.mode`,
//! `deltasink.primary_key` (JSON array) and `deltasink.format_version` (`1`).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int32Builder, Int64Builder, ListArray, NullBufferBuilder, StringBuilder,
    StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field as ArrowField, Fields, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::config::NestedMode;
use crate::route::TableMode;
use crate::rows::{self, Row, TableRows};
use crate::value::{ColumnType, Field, Value};

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

/// Builds the record batch of `rows` (a slice of `table.rows`) with the given columns.
pub fn record_batch(
    table: &TableRows,
    rows: &[Row],
    fields: &[Field],
) -> Result<RecordBatch, EncodeError> {
    let table_name = table.table.to_string();
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
                table: table_name.clone(),
                column: field.name.to_string(),
                detail,
            })?,
        );
    }
    drop(columns);
    arrays.extend(metadata_arrays(table, rows));

    let schema = Arc::new(Schema::new(arrow_fields(fields)));
    RecordBatch::try_new(schema, arrays).map_err(|source| EncodeError::Arrow {
        table: table_name,
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
/// fields in the schema's order, so position `i` is checked before searching.
fn field_index(fields: &[Field], i: usize, name: &str) -> Option<usize> {
    match fields.get(i) {
        Some(f) if *f.name == *name => Some(i),
        _ => fields.iter().position(|f| *f.name == *name),
    }
}

fn mismatch(expected: &str, got: &Value) -> String {
    format!("expected a {expected} value, got {}", got.to_json(None))
}

/// Writer settings of staged files.
pub fn writer_properties(table: &TableRows) -> WriterProperties {
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
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Chunk)
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
        .build()
}

/// Encodes a record batch as one Parquet file.
pub fn parquet_bytes(table: &TableRows, batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
    let wrap = |source| EncodeError::Parquet {
        table: table.table.to_string(),
        source,
    };
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 3);
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(writer_properties(table)))
        .map_err(wrap)?;
    writer.write(batch).map_err(wrap)?;
    writer.close().map_err(wrap)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::debezium::Op;
    use crate::route::TableName;
    use crate::rows::{ChangeMeta, Coordinates};
    use arrow::array::{Array, AsArray};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

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
            key_columns: Vec::new(),
        }
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
        let mut t = TableRows::new(
            TableName::parse("s.t").unwrap(),
            TableMode::Upsert,
            vec!["id".into()],
            vec![Arc::from("topic.a")].into(),
        );
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
        let fields = file_fields(&t, NestedMode::Struct);
        let batch = record_batch(&t, &t.rows, &fields).unwrap();
        let (back, kv) = read_back(parquet_bytes(&t, &batch).unwrap());
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
        let fields = file_fields(&t, NestedMode::Json);
        let batch = record_batch(&t, &t.rows, &fields).unwrap();
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
        let fields = file_fields(&t, NestedMode::Struct);
        let batch = record_batch(&t, &t.rows, &fields).unwrap();
        let a = batch
            .column_by_name("a")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        let b = batch.column_by_name("b").unwrap().as_string::<i32>();
        assert_eq!((a.value(0), a.value(1), a.is_null(2)), (1, 2, true));
        assert_eq!((b.value(0), b.value(1), b.value(2)), ("x", "y", "z"));
    }
}
