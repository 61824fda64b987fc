//! Deterministic synthetic MSK events for the benchmarks: Debezium JSON change events of a
//! realistic shape, spread over a chosen number of topics (each routes to its own table).

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
        if i % 3 == 0 {
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

/// An MSK event of `records` Debezium JSON changes over `topics` topics, 3 partitions each.
pub fn msk_event(records: usize, topics: usize) -> Vec<u8> {
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
    out.into_bytes()
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
pub fn stage_in_process(config: &deltasink::config::StageConfig, event_json: &[u8]) -> usize {
    let event: deltasink::kafka::KafkaEvent = match serde_json::from_slice(event_json) {
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
