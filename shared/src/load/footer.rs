//! Reading a staged file's Parquet footer with one ranged GET: its columns (as
//! [`ColumnType`]s) and the deltasink metadata stage wrote (table, mode, primary key).

use std::collections::HashMap;

use arrow::datatypes::{DataType, TimeUnit};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::ParquetMetaDataReader;

use crate::route::TableMode;
use crate::store::{ObjectStore, StoreError};
use crate::value::{ColumnType, Field};

/// Bytes fetched first: enough for the footer of any staged file of ordinary width.
const FIRST_READ: u64 = 64 * 1024;

/// What a staged file's footer says.
#[derive(Debug, Clone, PartialEq)]
pub struct Footer {
    pub fields: Vec<Field>,
    pub mode: Option<TableMode>,
    pub primary_key: Vec<String>,
    pub rows: i64,
    /// The oldest Kafka timestamp of the file's rows (ms since the epoch), from the column
    /// statistics of `_kafka_timestamp` (`stream_record_timestamp` in raw tables); `None`
    /// when the footer has no statistics for it.
    pub oldest_kafka_timestamp_ms: Option<i64>,
}

/// Why a footer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FooterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The object is not a readable staged Parquet file: it can never load.
    #[error("s3://{bucket}/{key} is not a staged Parquet file: {detail}")]
    Invalid {
        bucket: String,
        key: String,
        detail: String,
    },
}

/// Reads the footer of `s3://bucket/key`.
pub async fn read(
    store: &impl ObjectStore,
    bucket: &str,
    key: &str,
) -> Result<Footer, FooterError> {
    let invalid = |detail: String| FooterError::Invalid {
        bucket: bucket.to_string(),
        key: key.to_string(),
        detail,
    };
    let mut tail = store.get_tail(bucket, key, FIRST_READ).await?;
    if tail.len() < 8 || &tail[tail.len() - 4..] != b"PAR1" {
        return Err(invalid("no Parquet magic at the end".into()));
    }
    let len_bytes: [u8; 4] = tail[tail.len() - 8..tail.len() - 4]
        .try_into()
        .map_err(|_| invalid("short footer".into()))?;
    let metadata_len = u64::from(u32::from_le_bytes(len_bytes)) + 8;
    if metadata_len > tail.len() as u64 {
        tail = store.get_tail(bucket, key, metadata_len).await?;
        if (tail.len() as u64) < metadata_len {
            return Err(invalid("footer longer than the file".into()));
        }
    }
    let start = tail.len() - metadata_len as usize;
    let metadata = ParquetMetaDataReader::decode_metadata(&tail[start..tail.len() - 8])
        .map_err(|e| invalid(e.to_string()))?;
    let file = metadata.file_metadata();
    let kv: HashMap<&str, &str> = file
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter_map(|e| e.value.as_deref().map(|v| (e.key.as_str(), v)))
                .collect()
        })
        .unwrap_or_default();
    let schema = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
        .map_err(|e| invalid(e.to_string()))?;
    let oldest_kafka_timestamp_ms = oldest_timestamp_ms(&metadata, &schema);
    let mut fields = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let ty = column_type(f.data_type()).ok_or_else(|| {
            invalid(format!(
                "column {:?} has unsupported type {}",
                f.name(),
                f.data_type()
            ))
        })?;
        fields.push(Field::new(f.name().as_str(), ty));
    }
    let primary_key = match kv.get("deltasink.primary_key") {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| invalid(format!("deltasink.primary_key: {e}")))?,
        None => Vec::new(),
    };
    Ok(Footer {
        fields,
        mode: kv.get("deltasink.mode").and_then(|m| TableMode::parse(m)),
        primary_key,
        rows: file.num_rows(),
        oldest_kafka_timestamp_ms,
    })
}

/// The smallest value of the Kafka timestamp column over the row groups' statistics, in
/// milliseconds; `None` when a row group lacks the statistic (a partial minimum would not be
/// the oldest).
fn oldest_timestamp_ms(
    metadata: &parquet::file::metadata::ParquetMetaData,
    schema: &arrow::datatypes::Schema,
) -> Option<i64> {
    use parquet::file::statistics::Statistics;
    let (name, unit) = [crate::rows::KAFKA_TIMESTAMP, crate::rows::RAW_TIMESTAMP]
        .iter()
        .find_map(
            |name| match schema.field_with_name(name).ok()?.data_type() {
                DataType::Timestamp(unit, _) => Some((*name, *unit)),
                _ => None,
            },
        )?;
    let per_ms: i64 = match unit {
        TimeUnit::Second => return None,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1_000_000,
    };
    let mut oldest: Option<i64> = None;
    for group in metadata.row_groups() {
        let column = group
            .columns()
            .iter()
            .find(|c| c.column_path().parts() == [name])?;
        let min = match column.statistics()? {
            Statistics::Int64(s) => *s.min_opt()?,
            _ => return None,
        };
        let ms = min.div_euclid(per_ms);
        oldest = Some(oldest.map_or(ms, |o| o.min(ms)));
    }
    oldest
}

/// The column type of an Arrow type as stage writes it (the inverse of
/// [`crate::encode::arrow_type`]; JSON text columns read back as STRING).
pub fn column_type(ty: &DataType) -> Option<ColumnType> {
    Some(match ty {
        DataType::Boolean => ColumnType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 => ColumnType::Int32,
        DataType::Int64 => ColumnType::Int64,
        DataType::Float32 => ColumnType::Float32,
        DataType::Float64 => ColumnType::Float64,
        DataType::Decimal128(p, s) => ColumnType::Decimal {
            precision: *p,
            scale: *s,
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::String,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => ColumnType::Binary,
        DataType::Date32 => ColumnType::Date,
        DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Millisecond, _) => {
            ColumnType::Timestamp
        }
        DataType::List(f) | DataType::LargeList(f) => {
            ColumnType::List(Box::new(column_type(f.data_type())?))
        }
        DataType::Struct(fields) => ColumnType::Struct(
            fields
                .iter()
                .map(|f| column_type(f.data_type()).map(|t| Field::new(f.name().as_str(), t)))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::encode;

    #[tokio::test]
    async fn footer_gives_the_oldest_kafka_timestamp_from_statistics() {
        use crate::config::StageConfig;
        use crate::store::MemoryStore;
        let vars = std::collections::HashMap::from([(
            "DELTASINK_STAGING_BUCKET".to_string(),
            "b".to_string(),
        )]);
        let config = StageConfig::from_vars(&vars).unwrap();
        let record = |offset: i64, ts: i64| {
            serde_json::json!({
                "topic": "t", "partition": 0, "offset": offset, "timestamp": ts,
                "timestampType": "CREATE_TIME", "key": null,
                "value": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{{\"n\":{offset}}}")),
                "headers": []
            })
        };
        let event: crate::kafka::KafkaEvent = serde_json::from_value(serde_json::json!({
            "eventSource": "aws:kafka",
            "records": {"t-0": [record(1, 1_800_000_000_500), record(2, 1_800_000_000_100), record(3, 1_800_000_000_900)]}
        }))
        .unwrap();
        let (files, summary) =
            crate::stage::plan(&config, &event, &crate::registry::SchemaCache::default()).unwrap();
        assert_eq!(summary.oldest_timestamp_ms, Some(1_800_000_000_100));
        let store = MemoryStore::default();
        let f = &files[0];
        store
            .put("b", &f.key, f.body.clone(), f.content_type)
            .await
            .unwrap();
        let footer = read(&store, "b", &f.key).await.unwrap();
        assert_eq!(footer.oldest_kafka_timestamp_ms, Some(1_800_000_000_100));
    }

    #[test]
    fn column_types_round_trip_through_arrow() {
        let types = [
            ColumnType::Boolean,
            ColumnType::Int32,
            ColumnType::Int64,
            ColumnType::Float64,
            ColumnType::Decimal {
                precision: 12,
                scale: 2,
            },
            ColumnType::String,
            ColumnType::Binary,
            ColumnType::Date,
            ColumnType::Timestamp,
            ColumnType::List(Box::new(ColumnType::Int64)),
            ColumnType::Struct(vec![Field::new("a b", ColumnType::String)]),
        ];
        for ty in types {
            assert_eq!(
                column_type(&encode::arrow_type(&ty)),
                Some(ty.clone()),
                "{ty:?}"
            );
        }
    }
}
