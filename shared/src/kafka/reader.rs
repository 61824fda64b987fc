//! The event read by hand: a reader for exactly the shape event source mappings send, built
//! on the crate's JSON reader (`decode::json_reader`), with each record's keys recognised
//! where they stand against the last record's key order (`decode::key_plan`).
//!
//! serde_json's derived reader spent about 4,300 instructions per record of the benchmark's
//! event: a string parse and comparison per field name, a visitor call per field, a
//! thread-local lookup per base64 string. Here a record's field names are byte comparisons,
//! its integers are read a word at a time and its base64 key and value are found with a
//! vectorized search for their closing quote.
//!
//! It answers `None` for anything it does not read exactly as serde_json would (a duplicate
//! field, a missing `partition` or `offset`, a value of an unexpected type, escapes in a
//! base64 string, invalid JSON); [`super::KafkaEvent::from_payload`] then reads the payload
//! with serde_json, which gives the same event or the precise error. So it changes speed,
//! never results (the tests compare the two on generated events).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::{Base64Text, KafkaEvent, KafkaRecord, TimestampType};
use crate::decode::json_reader::{JsonStr, Reader};
use crate::decode::key_plan::{KeyPlan, PlannedKeys};

/// Reads the event in `text`, the UTF-8 text of `payload` (whose parts the base64 strings
/// become), or `None` when serde_json must read it.
pub(super) fn read(text: &str, payload: &Bytes) -> Option<KafkaEvent> {
    debug_assert_eq!(text.as_ptr(), payload.as_ptr());
    Reader::with(text, |r| {
        let mut event = KafkaEvent::default();
        let mut seen = Seen::default();
        if r.open_object(0)? {
            loop {
                let key = r.key()?;
                match key.as_str() {
                    "eventSource" => {
                        seen.first(0)?;
                        event.event_source = optional_string(r)?;
                    }
                    "eventSourceArn" => {
                        seen.first(1)?;
                        event.event_source_arn = optional_string(r)?;
                    }
                    "bootstrapServers" => {
                        seen.first(2)?;
                        event.bootstrap_servers = optional_string(r)?;
                    }
                    "records" => {
                        seen.first(3)?;
                        event.records = groups(r, text, payload)?;
                    }
                    // serde ignores fields it does not know; they must still be valid JSON.
                    _ => r.skip_value(1)?,
                }
                if !r.next_or_close(b'}')? {
                    break;
                }
            }
        }
        r.end()?;
        Some(event)
    })
}

/// The fields of an object already read, to refuse a duplicate as serde's derive does.
#[derive(Default)]
struct Seen(u16);

impl Seen {
    /// `None` when field `bit` was already read.
    fn first(&mut self, bit: u32) -> Option<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        Some(())
    }
}

/// `null` or a string.
fn optional_string(r: &mut Reader<'_>) -> Option<Option<String>> {
    if r.null()? {
        return Some(None);
    }
    Some(Some(r.string()?.into_string()))
}

/// `records`: `null` (no records) or an object of record lists by `<topic>-<partition>`.
fn groups(
    r: &mut Reader<'_>,
    text: &str,
    payload: &Bytes,
) -> Option<HashMap<String, Vec<KafkaRecord>>> {
    let mut groups = HashMap::new();
    if r.null()? {
        return Some(groups);
    }
    let mut cx = Records {
        text,
        payload,
        plan: KeyPlan::new(),
        last_topic: None,
    };
    if r.open_object(1)? {
        loop {
            let group = r.key()?.into_string();
            let records = records(r, &mut cx)?;
            // A repeated group name replaces the earlier list, as serde's map does.
            groups.insert(group, records);
            if !r.next_or_close(b'}')? {
                break;
            }
        }
    }
    Some(groups)
}

/// What a record's key is to the reader: the bit of the field in [`Seen`], or `None` for a
/// field serde ignores.
type Field = Option<u32>;

const TOPIC: u32 = 0;
const PARTITION: u32 = 1;
const OFFSET: u32 = 2;
const TIMESTAMP: u32 = 3;
const TIMESTAMP_TYPE: u32 = 4;
const KEY: u32 = 5;
const VALUE: u32 = 6;
const HEADERS: u32 = 7;

fn field(key: &str) -> Field {
    Some(match key {
        "topic" => TOPIC,
        "partition" => PARTITION,
        "offset" => OFFSET,
        "timestamp" => TIMESTAMP,
        "timestampType" => TIMESTAMP_TYPE,
        "key" => KEY,
        "value" => VALUE,
        "headers" => HEADERS,
        _ => return None,
    })
}

/// What reading the records of an event needs besides the reader.
struct Records<'t> {
    /// The event's text and its payload, whose parts the base64 strings become.
    text: &'t str,
    payload: &'t Bytes,
    /// The key order of the last record.
    plan: KeyPlan<Field>,
    /// The topic of the last record (see [`shared_topic`]).
    last_topic: Option<Arc<str>>,
}

/// One group's list of records.
fn records(r: &mut Reader<'_>, cx: &mut Records<'_>) -> Option<Vec<KafkaRecord>> {
    if r.skip_ws()? != b'[' {
        return None;
    }
    r.expect(b'[')?;
    let mut records = Vec::new();
    if r.skip_ws()? == b']' {
        r.expect(b']')?;
        return Some(records);
    }
    loop {
        records.push(record(r, cx)?);
        if !r.next_or_close(b']')? {
            return Some(records);
        }
    }
}

/// One record object.
fn record(r: &mut Reader<'_>, cx: &mut Records<'_>) -> Option<KafkaRecord> {
    let mut record = KafkaRecord::default();
    let mut seen = Seen::default();
    // Inside the event, `records` and a list: three containers.
    if r.open_object(3)? {
        let mut keys = PlannedKeys::new(&mut cx.plan);
        loop {
            let Some(bit) = keys.next(r, field)? else {
                r.skip_value(4)?;
                if !r.next_or_close(b'}')? {
                    break;
                }
                continue;
            };
            seen.first(bit)?;
            match bit {
                TOPIC => {
                    record.topic = if r.null()? {
                        None
                    } else {
                        Some(shared_topic(r.string()?, &mut cx.last_topic))
                    }
                }
                PARTITION => record.partition = r.integer()?,
                OFFSET => record.offset = r.integer()?,
                TIMESTAMP => record.timestamp = r.integer()?,
                TIMESTAMP_TYPE => {
                    record.timestamp_type = if r.null()? {
                        None
                    } else {
                        Some(timestamp_type(r.string()?.as_str()))
                    }
                }
                KEY => record.key = base64_text(r, cx.text, cx.payload)?,
                VALUE => record.value = base64_text(r, cx.text, cx.payload)?,
                _ => record.headers = headers(r, cx.text)?,
            }
            if !r.next_or_close(b'}')? {
                break;
            }
        }
        keys.finish();
    }
    // serde requires these two (the others default).
    if seen.0 & (1 << PARTITION) == 0 || seen.0 & (1 << OFFSET) == 0 {
        return None;
    }
    Some(record)
}

/// The record's topic, shared with the previous record's when it is the same text (see
/// [`super::SharedTopic`]).
fn shared_topic(text: JsonStr<'_>, last: &mut Option<Arc<str>>) -> Arc<str> {
    match last {
        Some(topic) if **topic == *text.as_str() => topic.clone(),
        _ => {
            let topic: Arc<str> = Arc::from(text.as_str());
            *last = Some(topic.clone());
            topic
        }
    }
}

/// The variant serde's derive reads from the same text.
fn timestamp_type(text: &str) -> TimestampType {
    match text {
        "CREATE_TIME" => TimestampType::CreateTime,
        "LOG_APPEND_TIME" => TimestampType::LogAppendTime,
        "NO_TIMESTAMP_TYPE" => TimestampType::NoTimestampType,
        _ => TimestampType::Other,
    }
}

/// `null` or a base64 string, as a view of the payload.
fn base64_text(r: &mut Reader<'_>, text: &str, payload: &Bytes) -> Option<Option<Base64Text>> {
    if r.null()? {
        return Some(None);
    }
    let raw = r.raw_string()?;
    let at = raw.as_ptr() as usize - text.as_ptr() as usize;
    Some(Some(Base64Text(payload.slice(at..at + raw.len()))))
}

/// `null`, `[]`, or a list of header maps: those are rare enough to be read by serde_json from
/// their span of the text.
fn headers(r: &mut Reader<'_>, text: &str) -> Option<Vec<HashMap<String, Vec<i8>>>> {
    if r.null()? {
        return Some(Vec::new());
    }
    let start = r.pos();
    r.skip_value(4)?;
    let span = text.get(start..r.pos())?.trim_start();
    if span == "[]" {
        return Some(Vec::new());
    }
    serde_json::from_str(span).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The event the reader makes of `text`, and serde_json's.
    fn both(text: &str) -> (Option<KafkaEvent>, Result<KafkaEvent, String>) {
        let payload = Bytes::copy_from_slice(text.as_bytes());
        let fast = read(std::str::from_utf8(&payload).unwrap(), &payload);
        let slow = serde_json::from_str::<KafkaEvent>(text).map_err(|e| e.to_string());
        (fast, slow)
    }

    /// Asserts the reader reads `text`, into serde_json's event.
    fn read_alike(text: &str) -> KafkaEvent {
        match both(text) {
            (Some(fast), Ok(slow)) => {
                assert_eq!(fast, slow, "{text}");
                fast
            }
            other => panic!("{text}: {other:?}"),
        }
    }

    /// Asserts the reader leaves `text` to serde_json.
    fn deferred(text: &str) {
        assert!(both(text).0.is_none(), "{text}");
    }

    fn event_with_record(record: &str) -> String {
        format!(r#"{{"eventSource":"aws:kafka","records":{{"t-0":[{record}]}}}}"#)
    }

    #[test]
    fn the_sample_events_are_read_as_serde_json_reads_them() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
        let mut read = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !(name.starts_with("msk-") || name.starts_with("self-managed")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let event = read_alike(&text);
            assert!(!event.records.is_empty(), "{name}");
            read += 1;
        }
        assert!(read >= 7, "{read} sample events");
    }

    #[test]
    fn every_field_is_read_in_any_order_with_whitespace() {
        let event = read_alike(
            r#" { "records" : { "t-1" : [ { "headers" : [ { "h" : [ 104 , -1 ] } ] , "value" : "dmFs" ,
                "key" : null , "timestampType" : "LOG_APPEND_TIME" , "timestamp" : -1 , "offset" : 42 ,
                "partition" : 1 , "topic" : "t" , "extra" : { "a" : [ 1 , "x" ] } } ,
                { "partition" : 1 , "offset" : 43 } ] } , "eventSource" : null ,
                "bootstrapServers" : "b-1:9098" , "eventSourceArn" : "arn" , "other" : 1 } "#,
        );
        let records = &event.records["t-1"];
        assert_eq!(records.len(), 2);
        let r = &records[0];
        assert_eq!(
            (r.partition, r.offset, r.timestamp),
            (1, 42, -1),
            "{records:?}"
        );
        assert_eq!(r.value.as_ref().unwrap().as_bytes(), b"dmFs");
        assert_eq!(r.headers[0]["h"], vec![104, -1]);
        assert_eq!(event.bootstrap_servers.as_deref(), Some("b-1:9098"));
        assert_eq!(event.event_source, None);
    }

    #[test]
    fn base64_strings_are_views_of_the_payload() {
        let text =
            event_with_record(r#"{"partition":0,"offset":1,"key":"a2V5","value":"dmFsdWU="}"#);
        let payload = Bytes::from(text.clone().into_bytes());
        let event = read(std::str::from_utf8(&payload).unwrap(), &payload).unwrap();
        let value = event.records["t-0"][0].value.as_ref().unwrap();
        assert_eq!(value.as_bytes(), b"dmFsdWU=");
        let start = payload.as_ptr() as usize;
        let at = value.as_bytes().as_ptr() as usize;
        assert!(at >= start && at + value.0.len() <= start + payload.len());
    }

    #[test]
    fn control_characters_in_base64_strings_are_kept_as_serde_json_keeps_them() {
        // serde_json reads a string as bytes without refusing control characters; the base64
        // decoder then refuses them, record by record.
        let event = read_alike(&event_with_record(
            "{\"partition\":0,\"offset\":1,\"value\":\"ab\u{1}c\"}",
        ));
        assert_eq!(
            event.records["t-0"][0].value.as_ref().unwrap().as_bytes(),
            b"ab\x01c"
        );
    }

    #[test]
    fn what_the_reader_does_not_read_exactly_is_left_to_serde_json() {
        for record in [
            // Duplicates, missing required fields.
            r#"{"partition":0,"offset":1,"offset":2}"#,
            r#"{"partition":0}"#,
            r#"{"offset":0}"#,
            // Integers serde_json refuses or reads otherwise.
            r#"{"partition":0,"offset":-0}"#,
            r#"{"partition":0,"offset":1.0}"#,
            r#"{"partition":0,"offset":1e2}"#,
            r#"{"partition":0,"offset":01}"#,
            r#"{"partition":0,"offset":9223372036854775808}"#,
            r#"{"partition":0,"offset":1234567890123456789}"#,
            r#"{"partition":0,"offset":"1"}"#,
            // Escapes in base64, values of other types.
            r#"{"partition":0,"offset":1,"value":"a\/b="}"#,
            r#"{"partition":0,"offset":1,"key":5}"#,
            r#"{"partition":0,"offset":1,"topic":5}"#,
            r#"{"partition":0,"offset":1,"timestampType":1}"#,
            r#"{"partition":0,"offset":1,"headers":[{"h":[300]}]}"#,
            // A record that is not an object.
            r#"[0,1]"#,
        ] {
            deferred(&event_with_record(record));
        }
        for text in [
            r#"{"records":{"t-0":[]}} x"#,
            r#"{"records":{"t-0":null}}"#,
            r#"{"records":[]}"#,
            r#"{"eventSource":"a","eventSource":"b"}"#,
            r#"{"eventSource":1}"#,
            "[]",
            "",
        ] {
            deferred(text);
        }
    }

    #[test]
    fn the_integer_forms_serde_json_accepts_are_read() {
        let event = read_alike(&event_with_record(
            r#"{"partition":-2147483649,"offset":999999999999999999,"timestamp":-123456789012345678}"#,
        ));
        let r = &event.records["t-0"][0];
        assert_eq!(
            (r.partition, r.offset, r.timestamp),
            (
                -2_147_483_649,
                999_999_999_999_999_999,
                -123_456_789_012_345_678
            )
        );
        read_alike(&event_with_record(
            r#"{"partition":0,"offset":0,"timestamp":0}"#,
        ));
        // 19 digits: left to serde_json, which reads them.
        for ts in [i64::MAX, i64::MIN, MAX_READ + 1, -MAX_READ - 1] {
            let text =
                event_with_record(&format!(r#"{{"partition":0,"offset":0,"timestamp":{ts}}}"#));
            deferred(&text);
            assert_eq!(
                KafkaEvent::from_json(text.as_bytes()).unwrap().records["t-0"][0].timestamp,
                ts
            );
        }
    }

    /// The largest integer the reader reads itself (18 digits).
    const MAX_READ: i64 = 999_999_999_999_999_999;

    /// A member of a generated record: a key and the text of its value.
    fn member() -> impl Strategy<Value = (String, String)> {
        let int = prop::sample::select(vec![
            "0",
            "7",
            "-1",
            "12",
            "1700000000123",
            "-0",
            "1.5",
            "1e3",
            "00",
            "\"3\"",
            "null",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "123456789012345678901",
        ]);
        let b64 = prop::sample::select(vec![
            "\"e30=\"",
            "\"\"",
            "null",
            "\"a\\/b=\"",
            "\"x\u{1}y\"",
            "5",
            "[1,2]",
            "\"dmFsdWU=\"",
        ]);
        let topic = prop::sample::select(vec![
            "\"t\"",
            "\"t\"",
            "\"t\\u0031\"",
            "null",
            "5",
            "\"a\\\"b\"",
            "\"x\u{2}\"",
        ]);
        let ts_type = prop::sample::select(vec![
            "\"CREATE_TIME\"",
            "\"LOG_APPEND_TIME\"",
            "\"NO_TIMESTAMP_TYPE\"",
            "\"LATER\"",
            "null",
            "1",
            "\"CREATE\\u005fTIME\"",
        ]);
        let headers = prop::sample::select(vec![
            "[]",
            "null",
            "[{\"h\":[104,-1]}]",
            "[{\"h\":[300]}]",
            "{}",
            "[{}]",
        ]);
        prop_oneof![
            int.clone()
                .prop_map(|v| ("partition".to_string(), v.to_string())),
            int.clone()
                .prop_map(|v| ("offset".to_string(), v.to_string())),
            int.prop_map(|v| ("timestamp".to_string(), v.to_string())),
            b64.clone().prop_map(|v| ("key".to_string(), v.to_string())),
            b64.prop_map(|v| ("value".to_string(), v.to_string())),
            topic.prop_map(|v| ("topic".to_string(), v.to_string())),
            ts_type.prop_map(|v| ("timestampType".to_string(), v.to_string())),
            headers.prop_map(|v| ("headers".to_string(), v.to_string())),
            Just(("extra".to_string(), r#"{"a":[1,{"b":null}]}"#.to_string())),
            Just(("offs\\u0065t".to_string(), "3".to_string())),
        ]
    }

    /// A record: usually `partition` and `offset` first, then members in any order.
    fn record_text() -> impl Strategy<Value = String> {
        (
            any::<bool>(),
            prop::collection::vec(member(), 0..8),
            prop::sample::select(vec!["", " ", "\n\t"]),
        )
            .prop_map(|(required, members, space)| {
                let mut parts = Vec::new();
                if required {
                    parts.push(format!("\"partition\":{space}0"));
                    parts.push(format!("\"offset\"{space}:5"));
                }
                for (key, value) in members {
                    parts.push(format!("{space}\"{key}\"{space}:{space}{value}{space}"));
                }
                format!("{{{}}}", parts.join(","))
            })
    }

    fn event_text() -> impl Strategy<Value = String> {
        let group = (
            prop::sample::select(vec!["t-0", "t-1", "t\\u002d2", "t-0"]),
            prop::collection::vec(record_text(), 0..4),
        )
            .prop_map(|(name, records)| format!("\"{name}\":[{}]", records.join(",")));
        (
            prop::collection::vec(group, 0..3),
            prop::sample::select(vec![
                "\"eventSource\":\"aws:kafka\",",
                "\"eventSource\":null,",
                "",
                "\"bootstrapServers\":\"b:1\",\"x\":[true,false],",
                "\"eventSource\":1,",
            ]),
            prop::sample::select(vec!["", " ", "x", "}"]),
        )
            .prop_map(|(groups, head, tail)| {
                format!("{{{head}\"records\":{{{}}}}}{tail}", groups.join(","))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever the reader reads, serde_json reads the same; what it leaves, serde_json
        /// judges; and `from_payload` gives serde_json's event or an error where it fails.
        #[test]
        fn the_reader_agrees_with_serde_json(text in event_text()) {
            let (fast, slow) = both(&text);
            if let Some(fast) = fast {
                prop_assert_eq!(Ok(fast), slow.clone(), "{}", text);
            }
            let via_payload = KafkaEvent::from_payload(Bytes::from(text.clone().into_bytes()));
            prop_assert_eq!(via_payload.is_ok(), slow.is_ok(), "{}", text);
            if let (Ok(a), Ok(b)) = (via_payload, slow) {
                prop_assert_eq!(a, b);
            }
        }

        /// Events made only of what the reader handles are all read by it.
        #[test]
        fn plain_events_are_read_by_the_reader(
            records in prop::collection::vec((0i64..4, 0i64..1_000_000, -MAX_READ..=MAX_READ, any::<bool>()), 0..20),
        ) {
            let records: Vec<String> = records
                .iter()
                .map(|(p, o, ts, keyed)| {
                    let key = if *keyed { "\"a2V5\"" } else { "null" };
                    format!(
                        r#"{{"topic":"t","partition":{p},"offset":{o},"timestamp":{ts},"timestampType":"CREATE_TIME","key":{key},"value":"dmFsdWU=","headers":[]}}"#
                    )
                })
                .collect();
            let text = format!(r#"{{"eventSource":"aws:kafka","records":{{"t-0":[{}]}}}}"#, records.join(","));
            let (fast, slow) = both(&text);
            prop_assert_eq!(fast, Some(slow.unwrap()));
        }
    }
}
