//! Table rows: decoded records turned into the rows of a table, with the metadata columns
//! every staged file carries, and the table's schema learnt over the batch.
//!
//! Metadata columns (names are a contract with the load function and with users' queries;
//! see the README):
//!
//! | mode | column | type | meaning |
//! |---|---|---|---|
//! | upsert, append | `_cdc_op` | STRING | `c`, `u`, `d`, `r` (Debezium op; `c` for a plain row, `d` for a keyed null value) |
//! | upsert, append | `_cdc_ts` | TIMESTAMP | source commit time; the Kafka timestamp when the record has none |
//! | upsert, append | `_cdc_deleted` | BOOLEAN | tombstone flag |
//! | upsert, append | `_cdc_position` | STRING | sortable source log position (LSN, binlog file/pos, SCN) or NULL |
//! | upsert, append | `_kafka_topic`, `_kafka_partition` (INT), `_kafka_offset` (BIGINT), `_kafka_timestamp` (TIMESTAMP) | | Kafka coordinates |
//! | raw | `key`, `value` | STRING | key and value as text (JSON text for structured formats) |
//! | raw | `stream_record_timestamp` | TIMESTAMP | Kafka timestamp |
//! | raw | `kafka_topic`, `kafka_partition`, `kafka_offset` | | Kafka coordinates |
//! | raw | `record_source` | STRING | `stream` (the maintain function's backfill writes `backfill`) |
//!
//! A data column whose name collides with a metadata column is renamed with the prefix
//! `_src` (e.g. `_src_cdc_op`), so neither value is lost.

use std::sync::Arc;

use crate::decode::debezium::Op;
use crate::route::{TableMode, TableName};
use crate::value::{ColumnType, Field, FieldName, Text, Value, same_name};

pub const CDC_OP: &str = "_cdc_op";
pub const CDC_TS: &str = "_cdc_ts";
pub const CDC_DELETED: &str = "_cdc_deleted";
pub const CDC_POSITION: &str = "_cdc_position";
pub const KAFKA_TOPIC: &str = "_kafka_topic";
pub const KAFKA_PARTITION: &str = "_kafka_partition";
pub const KAFKA_OFFSET: &str = "_kafka_offset";
pub const KAFKA_TIMESTAMP: &str = "_kafka_timestamp";

pub const RAW_KEY: &str = "key";
pub const RAW_VALUE: &str = "value";
pub const RAW_TIMESTAMP: &str = "stream_record_timestamp";
pub const RAW_TOPIC: &str = "kafka_topic";
pub const RAW_PARTITION: &str = "kafka_partition";
pub const RAW_OFFSET: &str = "kafka_offset";
pub const RAW_SOURCE: &str = "record_source";

/// The column a primitive (non-struct) Kafka key is kept in when it is the primary key.
pub const KAFKA_KEY: &str = "_kafka_key";

/// Metadata columns of upsert and append tables, in file order, after the data columns.
pub fn cdc_metadata_fields() -> Vec<Field> {
    vec![
        Field::new(CDC_OP, ColumnType::String),
        Field::new(CDC_TS, ColumnType::Timestamp),
        Field::new(CDC_DELETED, ColumnType::Boolean),
        Field::new(CDC_POSITION, ColumnType::String),
        Field::new(KAFKA_TOPIC, ColumnType::String),
        Field::new(KAFKA_PARTITION, ColumnType::Int32),
        Field::new(KAFKA_OFFSET, ColumnType::Int64),
        Field::new(KAFKA_TIMESTAMP, ColumnType::Timestamp),
    ]
}

/// Columns of a raw ingestion table, in file order.
pub fn raw_fields() -> Vec<Field> {
    vec![
        Field::new(RAW_KEY, ColumnType::String),
        Field::new(RAW_VALUE, ColumnType::String),
        Field::new(RAW_TIMESTAMP, ColumnType::Timestamp),
        Field::new(RAW_TOPIC, ColumnType::String),
        Field::new(RAW_PARTITION, ColumnType::Int32),
        Field::new(RAW_OFFSET, ColumnType::Int64),
        Field::new(RAW_SOURCE, ColumnType::String),
    ]
}

fn is_metadata_name(name: &str) -> bool {
    // Every metadata name starts with `_`: most column names are settled by one byte.
    name.starts_with('_')
        && matches!(
            name,
            CDC_OP
                | CDC_TS
                | CDC_DELETED
                | CDC_POSITION
                | KAFKA_TOPIC
                | KAFKA_PARTITION
                | KAFKA_OFFSET
                | KAFKA_TIMESTAMP
        )
}

/// Renames a data column that collides with a metadata column.
#[inline]
pub fn data_column_name(name: &str) -> std::borrow::Cow<'_, str> {
    if is_metadata_name(name) {
        std::borrow::Cow::Owned(format!("_src{name}"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// [`data_column_name`] of a shared name: the same allocation unless it is renamed.
#[inline]
pub fn data_column_field_name(name: &FieldName) -> FieldName {
    match data_column_name(name) {
        std::borrow::Cow::Borrowed(_) => name.clone(),
        std::borrow::Cow::Owned(renamed) => renamed.into(),
    }
}

/// Kafka coordinates of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coordinates {
    /// Index into the batch's topic list ([`TableRows::topics`]).
    pub topic: u32,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// Change metadata of an upsert/append row.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeMeta {
    pub op: Op,
    /// Microseconds.
    pub cdc_ts: i64,
    pub deleted: bool,
    pub position: Option<Text>,
}

/// One row of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Data columns in source order (for raw tables: `key` and `value` as strings).
    pub data: Vec<(FieldName, Value)>,
    /// The row's declared type (a struct), when its format has a schema.
    pub declared: Option<Arc<ColumnType>>,
    pub change: Option<ChangeMeta>,
    pub at: Coordinates,
    /// Bytes of the record's key and value, for file-size limits.
    pub input_bytes: usize,
}

/// The rows a batch has for one table, in (topic, partition, offset) order per
/// topic-partition, with the schema learnt from them.
#[derive(Debug)]
pub struct TableRows {
    pub table: TableName,
    pub mode: TableMode,
    pub primary_key: Vec<String>,
    pub topics: Arc<[Arc<str>]>,
    pub rows: Vec<Row>,
    /// Data columns (not metadata) learnt over all rows.
    pub data_fields: Vec<Field>,
    last_declared: Option<Arc<ColumnType>>,
}

impl TableRows {
    pub fn new(
        table: TableName,
        mode: TableMode,
        primary_key: Vec<String>,
        topics: Arc<[Arc<str>]>,
    ) -> Self {
        TableRows {
            table,
            mode,
            primary_key,
            topics,
            rows: Vec::new(),
            data_fields: Vec::new(),
            last_declared: None,
        }
    }

    /// Adds a row and learns its columns' types.
    pub fn push(&mut self, row: Row) {
        match &row.declared {
            Some(declared) => {
                let same = self
                    .last_declared
                    .as_ref()
                    .is_some_and(|last| Arc::ptr_eq(last, declared) || last == declared);
                if !same {
                    if let ColumnType::Struct(fields) = &**declared {
                        for f in fields {
                            let name = data_column_field_name(&f.name);
                            observe_field(&mut self.data_fields, &name, |ty| *ty = ty.merge(&f.ty));
                        }
                    }
                    self.last_declared = Some(declared.clone());
                }
            }
            None => self.observe_values(&row.data),
        }
        self.rows.push(row);
    }

    fn observe_values(&mut self, data: &[(FieldName, Value)]) {
        for (i, (name, value)) in data.iter().enumerate() {
            // Rows usually repeat the previous row's names in the same order, and decoders
            // share name allocations: most columns are found at `i` by pointer. A name equal
            // to a learnt one needs no renaming (learnt names are renamed ones).
            match self.data_fields.get_mut(i) {
                Some(f) if same_name(&f.name, name) => {
                    if !holds(&f.ty, value) {
                        observe(&mut f.ty, value)
                    }
                }
                _ => {
                    let name = data_column_field_name(name);
                    observe_field(&mut self.data_fields, &name, |ty| observe(ty, value))
                }
            }
        }
    }

    /// All columns of the staged file: data then metadata (or the raw columns).
    pub fn file_fields(&self) -> Vec<Field> {
        match self.mode {
            TableMode::Raw => raw_fields(),
            _ => {
                let mut fields = self.data_fields.clone();
                for f in &mut fields {
                    if f.ty == ColumnType::Null {
                        f.ty = ColumnType::String;
                    }
                }
                fields.extend(cdc_metadata_fields());
                fields
            }
        }
    }
}

fn observe_field(fields: &mut Vec<Field>, name: &FieldName, update: impl FnOnce(&mut ColumnType)) {
    match fields.iter_mut().find(|f| same_name(&f.name, name)) {
        Some(f) => update(&mut f.ty),
        None => {
            let mut ty = ColumnType::Null;
            update(&mut ty);
            fields.push(Field::new(name.clone(), ty));
        }
    }
}

/// Whether `ty` already holds the scalar `value` (or `value` is null): what most values of a
/// column are, checked inline before [`observe`] is called. `false` for nested values.
#[inline(always)]
fn holds(ty: &ColumnType, value: &Value) -> bool {
    use ColumnType as T;
    matches!(
        (ty, value),
        (_, Value::Null)
            | (T::Int64 | T::Float64, Value::Int(_))
            | (T::String, Value::String(_))
            | (T::Boolean, Value::Bool(_))
            | (T::Float64, Value::Float(_))
            | (T::Timestamp, Value::Timestamp(_))
            | (T::Json, _)
    )
}

/// Widens `ty` so that it holds `value`, without allocating when it already does.
pub fn observe(ty: &mut ColumnType, value: &Value) {
    use ColumnType as T;
    match (&mut *ty, value) {
        (_, Value::Null) => {}
        (T::Boolean, Value::Bool(_))
        | (T::Int64, Value::Int(_))
        | (T::Float64, Value::Float(_))
        | (T::String, Value::String(_))
        | (T::Binary, Value::Bytes(_))
        | (T::Date, Value::Date(_))
        | (T::Time, Value::Time(_))
        | (T::Timestamp, Value::Timestamp(_))
        | (T::Json, _) => {}
        (T::Float64, Value::Int(_)) => {}
        (T::Struct(fields), Value::Struct(values)) => {
            for (i, (name, v)) in values.iter().enumerate() {
                match fields.get_mut(i) {
                    Some(f) if same_name(&f.name, name) => observe(&mut f.ty, v),
                    _ => observe_field(fields, name, |t| observe(t, v)),
                }
            }
        }
        (T::List(element), Value::List(items)) => {
            for item in items {
                observe(element, item);
            }
            if **element == T::Json {
                *ty = T::Json;
            }
        }
        (T::Null, v) => *ty = T::infer(v),
        (t, v) => *t = t.merge(&T::infer(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(data: Vec<(&str, Value)>) -> Row {
        Row {
            data: data.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            declared: None,
            change: None,
            at: Coordinates {
                topic: 0,
                partition: 0,
                offset: 0,
                timestamp_ms: 0,
            },
            input_bytes: 0,
        }
    }

    fn table() -> TableRows {
        TableRows::new(
            TableName::parse("t").unwrap(),
            TableMode::Append,
            vec![],
            vec![Arc::from("topic")].into(),
        )
    }

    #[test]
    fn the_inline_check_only_passes_values_observe_would_not_change() {
        let types = [
            ColumnType::Null,
            ColumnType::Boolean,
            ColumnType::Int32,
            ColumnType::Int64,
            ColumnType::Float64,
            ColumnType::String,
            ColumnType::Timestamp,
            ColumnType::Date,
            ColumnType::Json,
            ColumnType::Decimal {
                precision: 10,
                scale: 2,
            },
            ColumnType::List(Box::new(ColumnType::Int64)),
            ColumnType::Struct(vec![Field::new("a", ColumnType::Int64)]),
        ];
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Int(1),
            Value::Float(1.5),
            Value::String("x".into()),
            Value::Timestamp(1),
            Value::Date(1),
            Value::Decimal(1),
            Value::List(vec![Value::Int(1)]),
            Value::Struct(vec![("a".into(), Value::String("y".into()))]),
        ];
        let mut passed = 0;
        for ty in &types {
            for value in &values {
                if holds(ty, value) {
                    passed += 1;
                    let mut observed = ty.clone();
                    observe(&mut observed, value);
                    assert_eq!(&observed, ty, "{value:?}");
                }
            }
        }
        // Nulls for every type, six common scalar cases, and anything in a JSON column.
        assert_eq!(passed, types.len() + 6 + values.len() - 1);
    }

    #[test]
    fn learns_a_union_of_columns_and_widens() {
        let mut t = table();
        t.push(row(vec![("id", Value::Int(1)), ("n", Value::Null)]));
        t.push(row(vec![
            ("id", Value::Float(1.5)),
            ("extra", Value::Bool(true)),
        ]));
        t.push(row(vec![
            ("n", Value::String("x".into())),
            ("id", Value::Int(2)),
        ]));
        assert_eq!(
            t.data_fields,
            vec![
                Field::new("id", ColumnType::Float64),
                Field::new("n", ColumnType::String),
                Field::new("extra", ColumnType::Boolean),
            ]
        );
    }

    #[test]
    fn conflicting_types_become_text_or_json() {
        let mut t = table();
        t.push(row(vec![("a", Value::Int(1)), ("b", Value::Int(1))]));
        t.push(row(vec![
            ("a", Value::Bool(true)),
            ("b", Value::Struct(vec![])),
        ]));
        assert_eq!(t.data_fields[0].ty, ColumnType::String);
        assert_eq!(t.data_fields[1].ty, ColumnType::Json);
    }

    #[test]
    fn metadata_name_collisions_are_renamed() {
        let mut t = table();
        t.push(row(vec![("_cdc_op", Value::String("mine".into()))]));
        let names: Vec<_> = t.file_fields().iter().map(|f| f.name.to_string()).collect();
        assert_eq!(names[0], "_src_cdc_op");
        assert!(names.contains(&"_cdc_op".to_string()));
    }

    #[test]
    fn all_null_columns_are_strings_in_files() {
        let mut t = table();
        t.push(row(vec![("a", Value::Null)]));
        assert_eq!(t.file_fields()[0].ty, ColumnType::String);
    }
}
