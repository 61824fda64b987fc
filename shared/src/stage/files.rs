//! Encoding a decoded batch into the files to write: per table, runs of one topic-partition
//! split at the row and byte limits, each a Parquet file with a deterministic key.

use bytes::Bytes;

use super::{DecodedBatch, StageError, StageSummary, errors};
use crate::config::StageConfig;
use crate::encode;
use crate::route::TableName;
use crate::rows::TableRows;
use crate::staging::{self, FileFacts};

/// A file to write: a staged Parquet file or an errors file.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub key: String,
    pub body: Bytes,
    pub content_type: &'static str,
    pub rows: usize,
    pub table: Option<TableName>,
    /// Where the file's records come from (for logs).
    pub at: FileCoordinates,
}

/// The topic-partition and offset range of a file's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCoordinates {
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Encodes every table of a decoded batch into staged files, and the errors into error
/// files. Pure: the bodies are returned, not written.
pub fn encode_batch(
    config: &StageConfig,
    decoded: DecodedBatch<'_>,
) -> Result<(Vec<PlannedFile>, StageSummary), StageError> {
    let mut files = Vec::new();
    let mut summary = StageSummary {
        records: decoded.records,
        input_bytes: decoded.input_bytes,
        tombstones_skipped: decoded.tombstones_skipped,
        records_to_errors: decoded.errors.len(),
        oldest_timestamp_ms: decoded.oldest_timestamp_ms,
        ..StageSummary::default()
    };
    for table in decoded.tables {
        encode_table(config, table, &mut files, &mut summary)?;
    }
    files.extend(errors::error_files(config, &decoded.errors));
    summary.keys = files.iter().map(|f| f.key.clone()).collect();
    Ok((files, summary))
}

fn encode_table(
    config: &StageConfig,
    table: TableRows,
    files: &mut Vec<PlannedFile>,
    summary: &mut StageSummary,
) -> Result<(), StageError> {
    let mut encoder = encode::TableEncoder::new(&table, config.nested, config.integer_encoding);
    let mut start = 0;
    let mut part_number = 0;
    while start < table.rows.len() {
        let first = &table.rows[start];
        let (topic, partition) = (first.at.topic, first.at.partition);
        if start > 0 {
            let previous = &table.rows[start - 1].at;
            part_number = if (previous.topic, previous.partition) == (topic, partition) {
                part_number + 1
            } else {
                0
            };
        }
        // A file holds one topic-partition (its key names them) and stays within the limits.
        let mut end = start;
        let mut bytes = 0usize;
        while end < table.rows.len() {
            let r = &table.rows[end];
            if r.at.topic != topic || r.at.partition != partition {
                break;
            }
            let rows_in_file = end - start;
            if rows_in_file > 0
                && (rows_in_file >= config.max_file_rows
                    || bytes + r.input_bytes > config.max_file_bytes)
            {
                break;
            }
            bytes += r.input_bytes;
            end += 1;
        }
        let rows = &table.rows[start..end];
        let batch = encoder.record_batch(rows)?;
        let body = encoder.parquet_bytes(&batch)?;
        let topic_name = table
            .topics
            .get(topic as usize)
            .map(|t| &**t)
            .unwrap_or_default();
        let facts = FileFacts {
            table: &table.table,
            topic: topic_name,
            partition,
            first_offset: rows[0].at.offset,
            last_offset: rows[rows.len() - 1].at.offset,
            part_number,
            first_timestamp_ms: rows[0].at.timestamp_ms,
        };
        let key = staging::staged_key(&config.staging_prefix, &config.file_name, &facts);
        summary.rows_staged += rows.len();
        summary.files_staged += 1;
        files.push(PlannedFile {
            key,
            body: Bytes::from(body),
            content_type: "application/vnd.apache.parquet",
            rows: rows.len(),
            table: Some(table.table.clone()),
            at: FileCoordinates {
                topic: topic_name.to_string(),
                partition,
                first_offset: facts.first_offset,
                last_offset: facts.last_offset,
            },
        });
        start = end;
    }
    Ok(())
}
