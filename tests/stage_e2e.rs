//! Stage end to end: sample MSK events → the stage handler → the local S3 server → Parquet
//! read back (schema, row counts, values, metadata columns, key naming, retries, bad input).

use std::sync::Arc;

use anyhow::Result;
use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use deltasink::config::StageConfig;
use deltasink::registry::{RegistryClient, RegistryConfig};
use deltasink::stage::{StageError, StageSummary, Stager};
use deltasink::store::S3Store;
use deltasink_tests::*;

const CONNECT_TOPICS: &str =
    r#"{"shop.public.orders": {"key_format": "connect-json", "value_format": "connect-json"}}"#;
const AVRO_TOPICS: &str =
    r#"{"shop.public.payments": {"key_format": "avro", "value_format": "avro"}}"#;

async fn stage(
    bucket: &str,
    extra: &[(&str, &str)],
    event: &str,
) -> Result<(S3Store, StageSummary)> {
    let store = local_s3().await?;
    let config = Arc::new(StageConfig::from_vars(&stage_vars(bucket, extra))?);
    let registry = config
        .registry
        .clone()
        .map(RegistryClient::new)
        .transpose()?;
    let stager = Stager::new(config, store.clone(), registry);
    let summary = stager.stage(&kafka_event(event)?).await?;
    Ok((store, summary))
}

#[tokio::test]
async fn debezium_json_sample_becomes_upsert_files_per_partition() -> Result<()> {
    let store = local_s3().await?;
    let bucket = fresh_bucket(&store, "debezium_json").await?;
    let (store, summary) = stage(&bucket, &[], "msk-debezium-json.json").await?;
    assert_eq!(summary.records, 41);
    assert_eq!(summary.tombstones_skipped, 2);
    assert_eq!(summary.records_to_errors, 0);
    assert_eq!(summary.rows_staged, 39);

    let files = objects(&store, &bucket, "").await?;
    let keys: Vec<&str> = files.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "staging/public.customers/shop.public.customers/0/0-19.parquet",
            "staging/public.customers/shop.public.customers/1/0-20.parquet"
        ]
    );
    let (batch, meta) = read_parquet(&files[0].1)?;
    assert_eq!(batch.num_rows(), 19);
    assert_eq!(meta["deltasink.mode"], "upsert");
    assert_eq!(meta["deltasink.primary_key"], "[\"id\"]");
    assert_eq!(meta["deltasink.table"], "public.customers");
    let schema = batch.schema();
    for column in [
        "id",
        "email",
        "_cdc_op",
        "_cdc_ts",
        "_cdc_deleted",
        "_cdc_position",
        "_kafka_topic",
        "_kafka_partition",
        "_kafka_offset",
        "_kafka_timestamp",
    ] {
        assert!(schema.field_with_name(column).is_ok(), "missing {column}");
    }
    assert_eq!(
        schema.field_with_name("_kafka_timestamp")?.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    // The tombstone at offset 13 is not a row; every other offset is, in order.
    let offsets = batch
        .column_by_name("_kafka_offset")
        .unwrap()
        .as_primitive::<Int64Type>();
    let offsets: Vec<i64> = offsets.values().to_vec();
    assert_eq!(offsets, (0..20).filter(|o| *o != 13).collect::<Vec<_>>());
    let topics = batch
        .column_by_name("_kafka_topic")
        .unwrap()
        .as_string::<i32>();
    assert!((0..batch.num_rows()).all(|i| topics.value(i) == "shop.public.customers"));
    // Kafka timestamps are exact milliseconds, as microseconds.
    let event = kafka_event("msk-debezium-json.json")?;
    let first = &event.records["shop.public.customers-0"][0];
    let kts = batch
        .column_by_name("_kafka_timestamp")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(kts.value(0), first.timestamp * 1000);
    // Deletes are tombstone rows; the position is the Postgres LSN.
    let ops = batch.column_by_name("_cdc_op").unwrap().as_string::<i32>();
    let deleted = batch.column_by_name("_cdc_deleted").unwrap().as_boolean();
    for i in 0..batch.num_rows() {
        assert_eq!(ops.value(i) == "d", deleted.value(i), "row {i}");
    }
    let positions = batch
        .column_by_name("_cdc_position")
        .unwrap()
        .as_string::<i32>();
    assert!(positions.value(0).starts_with("pg:"));
    Ok(())
}

#[tokio::test]
async fn connect_json_sample_keeps_exact_types() -> Result<()> {
    let store = local_s3().await?;
    let bucket = fresh_bucket(&store, "connect").await?;
    let (store, summary) = stage(
        &bucket,
        &[("DELTASINK_TOPICS", CONNECT_TOPICS)],
        "msk-debezium-connect.json",
    )
    .await?;
    assert_eq!(
        (
            summary.records,
            summary.tombstones_skipped,
            summary.rows_staged
        ),
        (30, 1, 29)
    );
    let files = objects(&store, &bucket, "staging/public.orders/").await?;
    assert_eq!(files.len(), 3);
    let (batch, _) = read_parquet(&files[0].1)?;
    let schema = batch.schema();
    assert_eq!(
        schema.field_with_name("amount")?.data_type(),
        &DataType::Decimal128(10, 2)
    );
    assert_eq!(
        schema.field_with_name("ordered_at")?.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(
        schema.field_with_name("updated_at")?.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(
        schema.field_with_name("ship_date")?.data_type(),
        &DataType::Date32
    );
    assert_eq!(schema.field_with_name("id")?.data_type(), &DataType::Int64);
    Ok(())
}

#[tokio::test]
async fn avro_sample_decodes_through_the_local_registry() -> Result<()> {
    let store = local_s3().await?;
    let bucket = fresh_bucket(&store, "avro").await?;
    let url = registry_url()?;
    let (store, summary) = stage(
        &bucket,
        &[
            ("DELTASINK_TOPICS", AVRO_TOPICS),
            ("DELTASINK_SCHEMA_REGISTRY_URL", &url),
        ],
        "msk-avro.json",
    )
    .await?;
    assert_eq!(
        (
            summary.records,
            summary.tombstones_skipped,
            summary.rows_staged
        ),
        (20, 1, 19)
    );
    assert_eq!(summary.records_to_errors, 0);
    let files = objects(&store, &bucket, "staging/public.payments/").await?;
    assert_eq!(files.len(), 2);
    let (batch, meta) = read_parquet(&files[0].1)?;
    assert_eq!(meta["deltasink.primary_key"], "[\"id\"]");
    assert_eq!(
        batch.schema().field_with_name("amount")?.data_type(),
        &DataType::Decimal128(12, 2)
    );
    Ok(())
}

#[tokio::test]
async fn plain_json_sample_is_appended_with_widened_types() -> Result<()> {
    let store = local_s3().await?;
    let bucket = fresh_bucket(&store, "plain").await?;
    let (store, summary) = stage(&bucket, &[], "msk-plain-json.json").await?;
    assert_eq!(summary.rows_staged, 30);
    let files = objects(&store, &bucket, "staging/clickstream/").await?;
    assert_eq!(files.len(), 3);
    for (_, body) in &files {
        let (batch, meta) = read_parquet(body)?;
        assert_eq!(meta["deltasink.mode"], "append");
        let ty = batch
            .schema()
            .field_with_name("duration_ms")?
            .data_type()
            .clone();
        assert!(matches!(ty, DataType::Int64 | DataType::Float64), "{ty}");
    }
    Ok(())
}

#[tokio::test]
async fn raw_and_self_managed_samples_are_staged() -> Result<()> {
    let store = local_s3().await?;
    let bucket = fresh_bucket(&store, "raw").await?;
    let (store, summary) = stage(
        &bucket,
        &[
            (
                "DELTASINK_TABLES",
                r#"{"ingest.payments_raw": {"mode": "raw"}}"#,
            ),
            (
                "DELTASINK_TOPICS",
                r#"{"ingest.payments_raw": {"key_format": "string"}}"#,
            ),
        ],
        "msk-raw.json",
    )
    .await?;
    assert_eq!(summary.rows_staged, 10);
    let files = objects(&store, &bucket, "staging/ingest.payments_raw/").await?;
    let (batch, meta) = read_parquet(&files[0].1)?;
    assert_eq!(meta["deltasink.mode"], "raw");
    assert_eq!(batch.num_columns(), 7);
    assert_eq!(
        batch
            .column_by_name("record_source")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "stream"
    );

    let (store, summary) = stage(&bucket, &[], "self-managed-kafka.json").await?;
    assert_eq!(summary.rows_staged, 5);
    let files = objects(&store, &bucket, "staging/public.products/").await?;
    let (_, meta) = read_parquet(&files[0].1)?;
    assert_eq!(meta["deltasink.primary_key"], "[\"sku\"]");
    Ok(())
}

#[tokio::test]
async fn bad_records_land_in_the_errors_prefix_and_the_batch_succeeds() -> Result<()> {
    let store = local_s3().await?;
    let bucket = fresh_bucket(&store, "bad").await?;
    let url = registry_url()?;
    let (store, summary) = stage(
        &bucket,
        &[
            ("DELTASINK_TOPICS", AVRO_TOPICS),
            ("DELTASINK_SCHEMA_REGISTRY_URL", &url),
        ],
        "msk-bad-records.json",
    )
    .await?;
    assert_eq!(summary.records, 9);
    assert_eq!(summary.records_to_errors, 5);
    assert_eq!(summary.rows_staged, 4);
    let errors = objects(&store, &bucket, "errors/").await?;
    let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "errors/shop.public.customers/0/101-104.jsonl",
            "errors/shop.public.payments/0/901-902.jsonl"
        ]
    );
    let lines: Vec<serde_json::Value> = errors
        .iter()
        .flat_map(|(_, body)| {
            String::from_utf8_lossy(body)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|l| serde_json::from_str(&l))
        .collect::<std::result::Result<_, _>>()?;
    let reasons: Vec<(i64, String)> = lines
        .iter()
        .map(|l| {
            (
                l["offset"].as_i64().unwrap_or(-1),
                l["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expect = [
        (101, "invalid base64"),
        (103, "invalid JSON"),
        (104, "unknown op"),
        (901, "schema id 9999"),
        (902, "Avro body does not match schema id 102"),
    ];
    for ((offset, reason), (want_offset, want)) in reasons.iter().zip(expect) {
        assert_eq!(*offset, want_offset);
        assert!(reason.contains(want), "offset {offset}: {reason}");
    }
    // The raw bytes are kept exactly as the event carried them.
    let event = kafka_event("msk-bad-records.json")?;
    let original = event.records["shop.public.customers-0"]
        .iter()
        .find(|r| r.offset == 101)
        .and_then(|r| r.value.clone());
    assert_eq!(
        lines[0]["value_base64"]
            .as_str()
            .map(|s| s.as_bytes().to_vec()),
        original.map(|v| v.as_bytes().to_vec())
    );
    Ok(())
}

#[tokio::test]
async fn a_retried_invocation_rewrites_the_same_objects() -> Result<()> {
    let store = local_s3().await?;
    let bucket = fresh_bucket(&store, "retry").await?;
    stage(&bucket, &[], "msk-debezium-json.json").await?;
    let first = objects(&store, &bucket, "").await?;
    stage(&bucket, &[], "msk-debezium-json.json").await?;
    let second = objects(&store, &bucket, "").await?;
    assert_eq!(
        first, second,
        "a retry must write the same keys with the same bytes"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_registry_fails_the_invocation_and_stages_nothing() -> Result<()> {
    let store = local_s3().await?;
    let bucket = fresh_bucket(&store, "registry_down").await?;
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    drop(listener);
    let config = Arc::new(StageConfig::from_vars(&stage_vars(
        &bucket,
        &[
            ("DELTASINK_TOPICS", AVRO_TOPICS),
            ("DELTASINK_SCHEMA_REGISTRY_URL", &url),
        ],
    ))?);
    let registry = RegistryClient::new(RegistryConfig {
        url,
        basic_auth: None,
        timeout: std::time::Duration::from_millis(500),
    })?;
    let stager = Stager::new(config, store.clone(), Some(registry));
    let err = stager
        .stage(&kafka_event("msk-avro.json")?)
        .await
        .unwrap_err();
    assert!(matches!(err, StageError::Registry(_)), "{err}");
    assert!(objects(&store, &bucket, "").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_missing_bucket_fails_the_invocation() -> Result<()> {
    let store = local_s3().await?;
    let config = Arc::new(StageConfig::from_vars(&stage_vars(
        "no-such-bucket-deltasink",
        &[],
    ))?);
    let stager = Stager::new(config, store, None::<RegistryClient>);
    let err = stager
        .stage(&kafka_event("msk-plain-json.json")?)
        .await
        .unwrap_err();
    assert!(matches!(err, StageError::Store(_)), "{err}");
    assert!(
        err.to_string().contains("no-such-bucket-deltasink"),
        "{err}"
    );
    Ok(())
}
