//! Deterministic synthetic MSK events for the benchmarks: Debezium change events of a
//! realistic shape in JSON (spread over a chosen number of topics, each its own table) and in
//! Confluent Avro. Shared by several bench binaries, each using part of it.
#![allow(dead_code)]

use base64::Engine as _;

/// Debezium JSON change event JSON for row `i`.
fn change(i: usize, table: &str) -> String {
    let id = i as i64;
    let op = match i % 10 {
        0 => "c",
        9 => "d",
        _ => "u",
    };
    let row = format!(
        r#"{{"id":{id},"customer_id":{},"email":"user{id}@example.com","status":"{}","amount":"{}.{:02}","quantity":{},"created_at":{},"updated_at":"2024-03-01T10:{:02}:{:02}.123456Z","note":{}}}"#,
        1000 + id % 97,
        ["new", "paid", "shipped", "returned"][i % 4],
        i % 500,
        i % 100,
        i % 13,
        1_700_000_000_000_000i64 + id * 1_000_017,
        i % 60,
        (i * 7) % 60,
        if i.is_multiple_of(3) {
            "null".to_string()
        } else {
            format!("\"note {i}\"")
        }
    );
    let (before, after) = if op == "d" {
        (row.as_str(), "null")
    } else {
        ("null", row.as_str())
    };
    format!(
        r#"{{"before":{before},"after":{after},"source":{{"version":"2.5.0.Final","connector":"postgresql","name":"shop","ts_ms":{},"db":"shop","schema":"public","table":"{table}","txId":{},"lsn":{}}},"op":"{op}","ts_ms":{}}}"#,
        1_700_000_000_000i64 + i as i64,
        5000 + i / 4,
        24_000_000 + i * 120,
        1_700_000_000_100i64 + i as i64
    )
}

/// An MSK event of `records` Debezium JSON changes over `topics` topics, 3 partitions each,
/// as the Lambda runtime hands over an invocation body.
pub fn msk_event(records: usize, topics: usize) -> bytes::Bytes {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut groups: Vec<Vec<String>> = vec![Vec::new(); topics * 3];
    for i in 0..records {
        let topic_index = i % topics;
        let partition = (i / topics) % 3;
        let table = format!("table_{topic_index}");
        let topic = format!("shop.public.{table}");
        let key = format!(r#"{{"id":{i}}}"#);
        let record = format!(
            r#"{{"topic":"{topic}","partition":{partition},"offset":{},"timestamp":{},"timestampType":"CREATE_TIME","key":"{}","value":"{}","headers":[]}}"#,
            100_000 + i,
            1_700_000_000_200i64 + i as i64,
            b64.encode(key),
            b64.encode(change(i, &table))
        );
        groups[topic_index * 3 + partition].push(record);
    }
    let mut out = String::from(
        r#"{"eventSource":"aws:kafka","eventSourceArn":"arn:aws:kafka:us-east-1:123456789012:cluster/bench/1","bootstrapServers":"b-1:9098","records":{"#,
    );
    let mut first = true;
    for (g, records) in groups.iter().enumerate() {
        if records.is_empty() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&format!(
            r#""shop.public.table_{}-{}":[{}]"#,
            g / 3,
            g % 3,
            records.join(",")
        ));
    }
    out.push_str("}}");
    bytes::Bytes::from(out.into_bytes())
}

/// The stage configuration the benchmarks use.
pub fn config() -> deltasink::config::StageConfig {
    let vars = [("DELTASINK_STAGING_BUCKET".to_string(), "bench".to_string())]
        .into_iter()
        .collect();
    match deltasink::config::StageConfig::from_vars(&vars) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// Event JSON in, Parquet bytes out: everything the stage function does but the upload.
pub fn stage_in_process(
    config: &deltasink::config::StageConfig,
    event_json: &bytes::Bytes,
) -> usize {
    let event = match deltasink::kafka::KafkaEvent::from_payload(event_json.clone()) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    let schemas = deltasink::registry::SchemaCache::default();
    match deltasink::stage::plan(config, &event, &schemas) {
        Ok((files, summary)) => {
            assert_eq!(summary.records_to_errors, 0);
            files.iter().map(|f| f.body.len()).sum()
        }
        Err(e) => panic!("{e}"),
    }
}

/// The Avro value schema of the Avro benchmark: a Debezium envelope as the AvroConverter
/// writes it (nullable before/after records, a source record, op, ts_ms).
pub const AVRO_VALUE_SCHEMA: &str = r#"{
  "type": "record", "name": "Envelope", "namespace": "shop.public.orders",
  "fields": [
    {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": [
      {"name": "id", "type": "long"},
      {"name": "customer_id", "type": "long"},
      {"name": "email", "type": "string"},
      {"name": "status", "type": "string"},
      {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
      {"name": "quantity", "type": "int"},
      {"name": "created_at", "type": {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"}},
      {"name": "note", "type": ["null", "string"], "default": null}
    ]}], "default": null},
    {"name": "after", "type": ["null", "Value"], "default": null},
    {"name": "source", "type": {"type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql", "fields": [
      {"name": "version", "type": "string"},
      {"name": "connector", "type": "string"},
      {"name": "ts_ms", "type": "long"},
      {"name": "db", "type": "string"},
      {"name": "table", "type": "string"},
      {"name": "lsn", "type": ["null", "long"], "default": null}
    ]}},
    {"name": "op", "type": "string"},
    {"name": "ts_ms", "type": ["null", "long"], "default": null}
  ]
}"#;

/// Schema id of [`AVRO_VALUE_SCHEMA`] in the benchmark's schema cache.
pub const AVRO_VALUE_ID: u32 = 102;

/// An MSK event of `records` Debezium changes in Confluent Avro (JSON keys), one topic.
pub fn msk_avro_event(records: usize) -> bytes::Bytes {
    use apache_avro::types::Value as A;
    let b64 = base64::engine::general_purpose::STANDARD;
    let schema = match apache_avro::Schema::parse_str(AVRO_VALUE_SCHEMA) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut groups: Vec<Vec<String>> = vec![Vec::new(); 3];
    for i in 0..records {
        let id = i as i64;
        let row = A::Record(vec![
            ("id".into(), A::Long(id)),
            ("customer_id".into(), A::Long(1000 + id % 97)),
            ("email".into(), A::String(format!("user{id}@example.com"))),
            (
                "status".into(),
                A::String(["new", "paid", "shipped", "returned"][i % 4].into()),
            ),
            (
                "amount".into(),
                A::Decimal(apache_avro::Decimal::from(
                    ((i % 50_000) as i64).to_be_bytes().to_vec(),
                )),
            ),
            ("quantity".into(), A::Int((i % 13) as i32)),
            (
                "created_at".into(),
                A::Long(1_700_000_000_000_000 + id * 1_000_017),
            ),
            (
                "note".into(),
                if i.is_multiple_of(3) {
                    A::Union(0, Box::new(A::Null))
                } else {
                    A::Union(1, Box::new(A::String(format!("note {i}"))))
                },
            ),
        ]);
        let delete = i % 10 == 9;
        let (before, after) = if delete {
            (A::Union(1, Box::new(row)), A::Union(0, Box::new(A::Null)))
        } else {
            (A::Union(0, Box::new(A::Null)), A::Union(1, Box::new(row)))
        };
        let envelope = A::Record(vec![
            ("before".into(), before),
            ("after".into(), after),
            (
                "source".into(),
                A::Record(vec![
                    ("version".into(), A::String("2.5.0.Final".into())),
                    ("connector".into(), A::String("postgresql".into())),
                    ("ts_ms".into(), A::Long(1_700_000_000_000 + id)),
                    ("db".into(), A::String("shop".into())),
                    ("table".into(), A::String("orders".into())),
                    (
                        "lsn".into(),
                        A::Union(1, Box::new(A::Long(24_000_000 + id * 120))),
                    ),
                ]),
            ),
            (
                "op".into(),
                A::String(
                    if delete {
                        "d"
                    } else if i % 10 == 0 {
                        "c"
                    } else {
                        "u"
                    }
                    .into(),
                ),
            ),
            (
                "ts_ms".into(),
                A::Union(1, Box::new(A::Long(1_700_000_000_100 + id))),
            ),
        ]);
        let written = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .and_then(|w| w.write_value_to_vec(envelope));
        let body = match written {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        let mut value = vec![0u8];
        value.extend_from_slice(&AVRO_VALUE_ID.to_be_bytes());
        value.extend_from_slice(&body);
        let partition = i % 3;
        groups[partition].push(format!(
            r#"{{"topic":"shop.public.orders","partition":{partition},"offset":{},"timestamp":{},"timestampType":"CREATE_TIME","key":"{}","value":"{}","headers":[]}}"#,
            100_000 + i,
            1_700_000_000_200i64 + i as i64,
            b64.encode(format!(r#"{{"id":{i}}}"#)),
            b64.encode(value)
        ));
    }
    let parts: Vec<String> = groups
        .iter()
        .enumerate()
        .map(|(p, records)| format!(r#""shop.public.orders-{p}":[{}]"#, records.join(",")))
        .collect();
    format!(
        r#"{{"eventSource":"aws:kafka","records":{{{}}}}}"#,
        parts.join(",")
    )
    .into_bytes()
    .into()
}

/// The configuration of the Avro benchmark: JSON keys, Avro values.
pub fn avro_config() -> deltasink::config::StageConfig {
    let vars = [
        ("DELTASINK_STAGING_BUCKET", "bench"),
        ("DELTASINK_VALUE_FORMAT", "avro"),
        ("DELTASINK_SCHEMA_REGISTRY_URL", "http://127.0.0.1:1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    match deltasink::config::StageConfig::from_vars(&vars) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// The schema cache holding [`AVRO_VALUE_SCHEMA`], as a warm function has it.
pub fn avro_schemas() -> deltasink::registry::SchemaCache {
    let schema = match deltasink::registry::AvroSchema::parse(AVRO_VALUE_ID, AVRO_VALUE_SCHEMA) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut cache = deltasink::registry::SchemaCache::new();
    cache.insert(AVRO_VALUE_ID, std::sync::Arc::new(schema));
    cache
}

/// Like [`stage_in_process`], with a given schema cache.
pub fn stage_in_process_with(
    config: &deltasink::config::StageConfig,
    event_json: &bytes::Bytes,
    schemas: &deltasink::registry::SchemaCache,
) -> usize {
    let event = match deltasink::kafka::KafkaEvent::from_payload(event_json.clone()) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    match deltasink::stage::plan(config, &event, schemas) {
        Ok((files, summary)) => {
            assert_eq!(summary.records_to_errors, 0, "{summary:?}");
            files.iter().map(|f| f.body.len()).sum()
        }
        Err(e) => panic!("{e}"),
    }
}
