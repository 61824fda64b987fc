//! Staging object keys: where staged files and error files go in S3.
//!
//! Layout (a contract with the load and maintain functions; changing it strands files):
//!
//! ```text
//! <staging prefix>/<table segment>/<file name from the pattern>
//! <errors prefix>/<topic>/<partition>/<first offset>-<last offset>.jsonl
//! <errors prefix>/unloadable/<staged key>            a staged file that can never load (maintain)
//! <errors prefix>/unloadable/<staged key>.reason.json   why
//! <state prefix>/loaded/<staged key>                 marker: this kept staged file was loaded
//! <state prefix>/backfill/<table segment>.json       a backfill's progress (maintain)
//! ```
//!
//! The state prefix (`_deltasink` by default) lies outside the staging prefix and holds no
//! `.parquet` object, so nothing in it triggers a load.
//!
//! The table segment is the table's parts joined by `.`, each part percent-encoded outside
//! `[A-Za-z0-9_-]` (so a `.` or `/` inside a part cannot be confused with a separator);
//! [`table_from_key`] reads it back. The file name comes from a [`FileNamePattern`] whose every
//! placeholder is derived from the file's own contents, never from the clock, so a retried
//! invocation writes the same keys and overwrites instead of adding files.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::route::TableName;

/// The default file name pattern.
pub const DEFAULT_PATTERN: &str =
    "{topic}/{partition}/{first_offset}-{last_offset}{format_extension}";

/// Characters percent-encoded in a table segment: everything but `[A-Za-z0-9_-]`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-');

/// The coordinates and contents-derived facts of one staged file, from which its name is
/// rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts<'a> {
    pub table: &'a TableName,
    pub topic: &'a str,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// Index of this file among the files of its table, topic and partition in one batch.
    pub part_number: usize,
    /// Kafka timestamp (ms) of the file's first record.
    pub first_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Date(Vec<DatePiece>),
    TimestampSeconds,
    TimestampMillis,
    TimestampMicros,
    PartNumber,
    SyncId,
    FormatExtension,
    Table,
    Topic,
    Partition,
    FirstOffset,
    LastOffset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DatePiece {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Literal(String),
}

/// A parsed, validated file name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNamePattern {
    pieces: Vec<Piece>,
}

impl FileNamePattern {
    /// Parses a pattern and refuses one that would let a retry (or another batch) produce a
    /// different key for the same records or the same key for different records.
    pub fn parse(pattern: &str) -> Result<FileNamePattern, String> {
        let mut pieces = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("pattern {pattern:?} has an unclosed `{{`"))?;
                    let name = &rest[1..end];
                    pieces
                        .push(placeholder(name).map_err(|p| format!("pattern {pattern:?}: {p}"))?);
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    pieces.push(Piece::Literal(rest[..i].to_string()));
                    rest = &rest[i..];
                }
                None => {
                    pieces.push(Piece::Literal(rest.to_string()));
                    rest = "";
                }
            }
        }
        for piece in &pieces {
            if let Piece::Literal(text) = piece
                && text.contains('}')
            {
                return Err(format!("pattern {pattern:?} has a `}}` without its `{{`"));
            }
        }
        let has = |p: &Piece| pieces.contains(p);
        let unique = has(&Piece::SyncId)
            || (has(&Piece::Topic) && has(&Piece::Partition) && has(&Piece::FirstOffset));
        if !unique {
            return Err(format!(
                "pattern {pattern:?} does not identify its records, so a retry could create a second file \
                 (or two batches could overwrite each other): include {{sync_id}}, or all of {{topic}}, \
                 {{partition}} and {{first_offset}}"
            ));
        }
        if pattern.starts_with('/')
            || pattern
                .split('/')
                .any(|seg| seg == ".." || seg == "." || seg.is_empty())
        {
            return Err(format!(
                "pattern {pattern:?} must be a relative path without empty, `.` or `..` segments"
            ));
        }
        Ok(FileNamePattern { pieces })
    }

    /// Renders the file name for one file.
    pub fn render(&self, facts: &FileFacts<'_>) -> String {
        let mut out = String::with_capacity(64);
        let micros = facts.first_timestamp_ms.saturating_mul(1000);
        let when = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Date(parts) => {
                    for part in parts {
                        let _ = match part {
                            DatePiece::Year => write!(out, "{}", when.format("%Y")),
                            DatePiece::Month => write!(out, "{}", when.format("%m")),
                            DatePiece::Day => write!(out, "{}", when.format("%d")),
                            DatePiece::Hour => write!(out, "{}", when.format("%H")),
                            DatePiece::Minute => write!(out, "{}", when.format("%M")),
                            DatePiece::Literal(s) => write!(out, "{s}"),
                        };
                    }
                }
                Piece::TimestampSeconds => {
                    let _ = write!(out, "{}", facts.first_timestamp_ms.div_euclid(1000));
                }
                Piece::TimestampMillis => {
                    let _ = write!(out, "{}", facts.first_timestamp_ms);
                }
                Piece::TimestampMicros => {
                    let _ = write!(out, "{micros}");
                }
                Piece::PartNumber => {
                    let _ = write!(out, "{}", facts.part_number);
                }
                Piece::SyncId => {
                    let _ = write!(out, "{:016x}", sync_id(facts));
                }
                Piece::FormatExtension => out.push_str(".parquet"),
                Piece::Table => out.push_str(&table_segment(facts.table)),
                Piece::Topic => out.push_str(facts.topic),
                Piece::Partition => {
                    let _ = write!(out, "{}", facts.partition);
                }
                Piece::FirstOffset => {
                    let _ = write!(out, "{}", facts.first_offset);
                }
                Piece::LastOffset => {
                    let _ = write!(out, "{}", facts.last_offset);
                }
            }
        }
        out
    }
}

fn placeholder(name: &str) -> Result<Piece, String> {
    Ok(match name {
        "date" => Piece::Date(date_format("yyyy-MM-dd")?),
        "timestamp" => Piece::TimestampSeconds,
        "timestamp:millis" => Piece::TimestampMillis,
        "timestamp:micros" => Piece::TimestampMicros,
        "part_number" => Piece::PartNumber,
        "sync_id" => Piece::SyncId,
        "format_extension" => Piece::FormatExtension,
        "table" => Piece::Table,
        "topic" => Piece::Topic,
        "partition" => Piece::Partition,
        "first_offset" => Piece::FirstOffset,
        "last_offset" => Piece::LastOffset,
        other => match other.strip_prefix("date:") {
            Some(format) => Piece::Date(date_format(format)?),
            None => {
                return Err(format!(
                    "unknown placeholder {{{other}}}; known: date, date:<yyyy MM dd HH mm>, timestamp, \
                     timestamp:millis, timestamp:micros, part_number, sync_id, format_extension, table, \
                     topic, partition, first_offset, last_offset"
                ));
            }
        },
    })
}

fn date_format(format: &str) -> Result<Vec<DatePiece>, String> {
    let mut out = Vec::new();
    let mut rest = format;
    while !rest.is_empty() {
        let (piece, len) = if rest.starts_with("yyyy") {
            (DatePiece::Year, 4)
        } else if rest.starts_with("MM") {
            (DatePiece::Month, 2)
        } else if rest.starts_with("dd") {
            (DatePiece::Day, 2)
        } else if rest.starts_with("HH") {
            (DatePiece::Hour, 2)
        } else if rest.starts_with("mm") {
            (DatePiece::Minute, 2)
        } else {
            let c = rest.chars().next().unwrap_or_default();
            if c.is_ascii_alphabetic() {
                return Err(format!(
                    "date format {format:?}: unknown letter {c:?} (use yyyy, MM, dd, HH, mm)"
                ));
            }
            (DatePiece::Literal(c.to_string()), c.len_utf8())
        };
        out.push(piece);
        rest = &rest[len..];
    }
    Ok(out)
}

/// A stable 64-bit id of a file's coordinates (xxh3; stable across releases by contract).
fn sync_id(facts: &FileFacts<'_>) -> u64 {
    let mut text = String::with_capacity(96);
    let _ = write!(
        text,
        "{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}",
        facts.table, facts.topic, facts.partition, facts.first_offset, facts.last_offset
    );
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// The key segment of a table: parts percent-encoded and joined by `.`.
pub fn table_segment(table: &TableName) -> String {
    let mut out = String::new();
    for (i, part) in table.parts().iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.extend(utf8_percent_encode(part, SEGMENT));
    }
    out
}

/// Reads the table back from a table segment.
pub fn parse_table_segment(segment: &str) -> Result<TableName, String> {
    let mut parts = Vec::new();
    for raw in segment.split('.') {
        let part = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|e| format!("table segment {segment:?} is not UTF-8: {e}"))?;
        if part.is_empty() {
            return Err(format!("table segment {segment:?} has an empty part"));
        }
        // Re-quote so that TableName::parse keeps dots and backticks inside a part.
        parts.push(format!("`{}`", part.replace('`', "``")));
    }
    TableName::parse(&parts.join("."))
}

/// The full key of a staged file.
pub fn staged_key(prefix: &str, pattern: &FileNamePattern, facts: &FileFacts<'_>) -> String {
    format!(
        "{prefix}/{}/{}",
        table_segment(facts.table),
        pattern.render(facts)
    )
}

/// The table a staged key belongs to, or why the key is not a staged file under `prefix`.
pub fn table_from_key(prefix: &str, key: &str) -> Result<TableName, String> {
    let rest = key
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| format!("key {key:?} is outside the staging prefix {prefix:?}/"))?;
    let (segment, file) = rest
        .split_once('/')
        .ok_or_else(|| format!("key {key:?} has no table segment"))?;
    if file.is_empty() {
        return Err(format!("key {key:?} names a folder, not a file"));
    }
    parse_table_segment(segment)
}

/// The key of the error file for one topic-partition of a batch.
pub fn errors_key(prefix: &str, topic: &str, partition: i32, first: i64, last: i64) -> String {
    format!("{prefix}/{topic}/{partition}/{first}-{last}.jsonl")
}

/// The marker that says the staged file `staged_key` was loaded. The load function writes it
/// when it keeps a loaded file (purge off, or a failed delete); re-drive skips marked files and
/// purge deletes them.
pub fn loaded_marker_key(state_prefix: &str, staged_key: &str) -> String {
    format!("{state_prefix}/loaded/{staged_key}")
}

/// The staged key a loaded marker stands for.
pub fn staged_key_of_marker<'a>(state_prefix: &str, marker_key: &'a str) -> Option<&'a str> {
    marker_key
        .strip_prefix(state_prefix)?
        .strip_prefix("/loaded/")
        .filter(|k| !k.is_empty())
}

/// Where re-drive moves a staged file that can never load.
pub fn unloadable_key(errors_prefix: &str, staged_key: &str) -> String {
    format!("{errors_prefix}/unloadable/{staged_key}")
}

/// The state object of a table's backfill.
pub fn backfill_state_key(state_prefix: &str, table: &TableName) -> String {
    format!("{state_prefix}/backfill/{}.json", table_segment(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(table: &TableName) -> FileFacts<'_> {
        FileFacts {
            table,
            topic: "cdc.shop.orders",
            partition: 3,
            first_offset: 100,
            last_offset: 199,
            part_number: 1,
            first_timestamp_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn default_pattern_renders_coordinates() {
        let t = TableName::parse("shop.orders").unwrap();
        let p = FileNamePattern::parse(DEFAULT_PATTERN).unwrap();
        assert_eq!(
            staged_key("staging", &p, &facts(&t)),
            "staging/shop.orders/cdc.shop.orders/3/100-199.parquet"
        );
    }

    #[test]
    fn every_placeholder_renders() {
        let t = TableName::parse("shop.orders").unwrap();
        let p = FileNamePattern::parse(
            "{date}/{date:yyyy_MM}/{timestamp}-{timestamp:millis}-{timestamp:micros}/{table}/{topic}-{partition}-{first_offset}-{last_offset}-{part_number}-{sync_id}{format_extension}",
        )
        .unwrap();
        let name = p.render(&facts(&t));
        let id = format!("{:016x}", sync_id(&facts(&t)));
        assert_eq!(
            name,
            format!(
                "2023-11-14/2023_11/1700000000-1700000000123-1700000000123000/shop.orders/cdc.shop.orders-3-100-199-1-{id}.parquet"
            )
        );
    }

    #[test]
    fn patterns_that_break_retries_are_refused() {
        for bad in [
            "{date}/{part_number}.parquet",
            "{topic}/{partition}/{timestamp}.parquet",
            "{table}-{last_offset}",
            "static.parquet",
        ] {
            let e = FileNamePattern::parse(bad).unwrap_err();
            assert!(e.contains("retry"), "{bad}: {e}");
        }
        assert!(FileNamePattern::parse("{sync_id}.parquet").is_ok());
        assert!(
            FileNamePattern::parse("{nope}{sync_id}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(
            FileNamePattern::parse("{sync_id")
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            FileNamePattern::parse("{date:yyyy-QQ}{sync_id}")
                .unwrap_err()
                .contains("'Q'")
        );
        assert!(
            FileNamePattern::parse("../{sync_id}")
                .unwrap_err()
                .contains("..")
        );
        assert!(FileNamePattern::parse("/{sync_id}").is_err());
    }

    #[test]
    fn sync_id_differs_by_coordinates() {
        let t = TableName::parse("shop.orders").unwrap();
        let a = facts(&t);
        let mut b = facts(&t);
        b.first_offset = 101;
        assert_ne!(sync_id(&a), sync_id(&b));
        assert_eq!(sync_id(&a), sync_id(&facts(&t)));
    }

    #[test]
    fn table_segment_round_trips_odd_names() {
        for name in [
            "orders",
            "shop.orders",
            "c.s.t",
            "s.`a.b`",
            "s.`we``ird`",
            "s.`sp ace/slash`",
        ] {
            let t = TableName::parse(name).unwrap();
            let seg = table_segment(&t);
            assert!(!seg.contains('/'), "{seg}");
            assert_eq!(parse_table_segment(&seg).unwrap(), t, "{name} via {seg}");
        }
    }

    #[test]
    fn table_from_key_checks_the_prefix() {
        let t = table_from_key("staging", "staging/s.a%2Eb/t/0/1-2.parquet").unwrap();
        assert_eq!(t.parts(), ["s", "a.b"]);
        assert!(
            table_from_key("staging", "other/s.t/x.parquet")
                .unwrap_err()
                .contains("outside")
        );
        assert!(table_from_key("staging", "stagingx/s.t/x").is_err());
        assert!(table_from_key("staging", "staging/s.t/").is_err());
    }

    #[test]
    fn bookkeeping_keys_round_trip() {
        let staged = "staging/shop.orders/shop.orders/0/1-2.parquet";
        let marker = loaded_marker_key("_deltasink", staged);
        assert_eq!(marker, format!("_deltasink/loaded/{staged}"));
        assert_eq!(staged_key_of_marker("_deltasink", &marker), Some(staged));
        assert_eq!(
            staged_key_of_marker("_deltasink", "_deltasink/loaded/"),
            None
        );
        assert_eq!(staged_key_of_marker("_deltasink", "other/loaded/x"), None);
        let t = TableName::parse("raw.`a.b`").unwrap();
        assert_eq!(
            backfill_state_key("_deltasink", &t),
            "_deltasink/backfill/raw.a%2Eb.json"
        );
    }
}
