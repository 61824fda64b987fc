//! Records that could not be staged: one JSON object per line in the errors prefix, with the
//! record's coordinates, its key and value exactly as the event carried them, and the reason.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::PlannedFile;
use crate::config::StageConfig;
use crate::kafka::RecordRef;
use crate::route::TableName;
use crate::staging;

/// A record that could not be staged, with its raw bytes and the reason. Written to the
/// errors prefix as one JSON object per line.
#[derive(Debug, Clone)]
pub struct ErrorRecord<'a> {
    pub record: RecordRef<'a>,
    pub table: Option<TableName>,
    pub reason: String,
}

impl ErrorRecord<'_> {
    pub(crate) fn write_json(&self, out: &mut String) {
        use crate::value::write_json_string as s;
        use std::fmt::Write as _;
        let r = &self.record;
        out.push_str("{\"topic\":");
        s(r.topic, out);
        let _ = write!(
            out,
            ",\"partition\":{},\"offset\":{},\"timestamp\":{}",
            r.partition, r.offset, r.timestamp_ms
        );
        out.push_str(",\"table\":");
        match &self.table {
            Some(t) => s(&t.to_string(), out),
            None => out.push_str("null"),
        }
        out.push_str(",\"reason\":");
        s(&self.reason, out);
        // The key and value exactly as the event carried them (base64), even when invalid.
        for (name, part) in [("key_base64", r.key_b64), ("value_base64", r.value_b64)] {
            let _ = write!(out, ",\"{name}\":");
            match part {
                Some(text) => s(&String::from_utf8_lossy(text), out),
                None => out.push_str("null"),
            }
        }
        out.push_str(",\"headers\":[");
        for (i, (name, value)) in r.headers().iter().enumerate() {
            use base64::Engine as _;
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            s(name, out);
            out.push_str(",\"value_base64\":");
            s(
                &base64::engine::general_purpose::STANDARD.encode(value),
                out,
            );
            out.push('}');
        }
        out.push_str("]}\n");
    }
}

pub(crate) fn error_files(config: &StageConfig, errors: &[ErrorRecord<'_>]) -> Vec<PlannedFile> {
    let mut by_partition: BTreeMap<(&str, i32), Vec<&ErrorRecord<'_>>> = BTreeMap::new();
    for e in errors {
        by_partition
            .entry((e.record.topic, e.record.partition))
            .or_default()
            .push(e);
    }
    by_partition
        .into_iter()
        .map(|((topic, partition), mut records)| {
            records.sort_by_key(|e| e.record.offset);
            let mut body = String::new();
            for e in &records {
                e.write_json(&mut body);
            }
            let first = records.first().map(|e| e.record.offset).unwrap_or_default();
            let last = records.last().map(|e| e.record.offset).unwrap_or_default();
            PlannedFile {
                key: staging::errors_key(&config.errors_prefix, topic, partition, first, last),
                body: Bytes::from(body),
                content_type: "application/x-ndjson",
                rows: records.len(),
                table: None,
                at: super::FileCoordinates {
                    topic: topic.to_string(),
                    partition,
                    first_offset: first,
                    last_offset: last,
                },
            }
        })
        .collect()
}
