//! The Kafka event a Lambda event source mapping delivers (Amazon MSK: `aws:kafka`;
//! self-managed Kafka: `SelfManagedKafka`), and its records in offset order.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

use crate::decode::DecodeError;

mod reader;

/// The event an MSK or self-managed Kafka event source mapping sends.
///
/// deltasink reads it with its own types rather than `aws_lambda_events`' because those turn
/// the record timestamp into a date-time through a float, which loses milliseconds (seen:
/// 1700000000123 became 1700000000122); the timestamp must stay exact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaEvent {
    #[serde(default)]
    pub event_source: Option<String>,
    #[serde(default)]
    pub event_source_arn: Option<String>,
    #[serde(default)]
    pub bootstrap_servers: Option<String>,
    /// Records grouped by `<topic>-<partition>`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub records: HashMap<String, Vec<KafkaRecord>>,
}

impl KafkaEvent {
    /// Reads an event from the invocation payload. The stage function reads the payload itself
    /// through this rather than letting the Lambda runtime deserialize it: the runtime tracks
    /// the path of every field it reads (for its error messages), which cost a third more than
    /// the parse itself on a 10k-record event (91 M vs 58 M instructions). The path is still
    /// given when the payload is not an event: it is computed then, on the error path only.
    ///
    /// The payload's UTF-8 is checked once, vectorized, and the JSON read as text by a reader
    /// for exactly this shape (`reader.rs`: a third of serde_json's instructions on the
    /// benchmark's event); anything that reader does not read exactly as serde_json would is
    /// read by serde_json, which also names what is wrong. A payload that is not UTF-8 is read
    /// by serde_json as bytes, where the base64 fields need none.
    ///
    /// The base64 keys and values are views of `payload` (shared, not copied) unless they
    /// hold escapes: they are the bulk of a batch, and copying them cost a memory copy of the
    /// whole batch and two allocations per record.
    pub fn from_payload(payload: Bytes) -> Result<KafkaEvent, EventError> {
        let parsed = PAYLOAD.with(|current| {
            current.replace(Some(payload.clone()));
            let parsed = match simdutf8::basic::from_utf8(&payload) {
                Ok(text) => match reader::read(text, &payload) {
                    Some(event) => Ok(event),
                    None => serde_json::from_str(text),
                },
                Err(_) => serde_json::from_slice(&payload),
            };
            current.replace(None);
            parsed
        });
        parsed.map_err(|_| {
            let de = &mut serde_json::Deserializer::from_slice(&payload);
            match serde_path_to_error::deserialize::<_, KafkaEvent>(de) {
                Err(e) => EventError::Payload {
                    path: e.path().to_string(),
                    detail: e.into_inner().to_string(),
                },
                // Unreachable in practice (the same bytes failed above); said plainly anyway.
                Ok(_) => EventError::Payload {
                    path: ".".into(),
                    detail: "the payload could not be read as an event".into(),
                },
            }
        })
    }

    /// [`KafkaEvent::from_payload`] of a copy of `payload`.
    pub fn from_json(payload: &[u8]) -> Result<KafkaEvent, EventError> {
        Self::from_payload(Bytes::copy_from_slice(payload))
    }
}

thread_local! {
    /// The payload [`KafkaEvent::from_payload`] is reading, whose parts the base64 fields
    /// become (serde gives a visitor no state of its own to carry it in).
    static PAYLOAD: std::cell::RefCell<Option<Bytes>> = const { std::cell::RefCell::new(None) };
}

/// One Kafka record as the event carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaRecord {
    /// One allocation for the records of a topic (see [`SharedTopic`]).
    #[serde(default, deserialize_with = "shared_topic")]
    pub topic: Option<Arc<str>>,
    pub partition: i64,
    pub offset: i64,
    /// Milliseconds since the epoch, exact.
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub timestamp_type: Option<TimestampType>,
    /// Base64; absent or null for a record without a key.
    #[serde(default)]
    pub key: Option<Base64Text>,
    /// Base64; absent or null for a tombstone.
    #[serde(default)]
    pub value: Option<Base64Text>,
    /// Header values are arrays of signed bytes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub headers: Vec<HashMap<String, Vec<i8>>>,
}

/// What a record's timestamp is (`timestampType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TimestampType {
    #[serde(rename = "CREATE_TIME")]
    CreateTime,
    #[serde(rename = "LOG_APPEND_TIME")]
    LogAppendTime,
    #[serde(rename = "NO_TIMESTAMP_TYPE")]
    NoTimestampType,
    /// A value Kafka does not define.
    #[serde(other)]
    Other,
}

/// A record's topic, read as the previous record's topic (a reference count) when it is the
/// same text: every record repeats its topic, and an allocation, copy and free per record
/// cost about 3 M instructions on a 10,000-record event (1.6% of staging it).
struct SharedTopic(Arc<str>);

thread_local! {
    /// The topic of the last record read on this thread.
    static LAST_TOPIC: std::cell::RefCell<Option<Arc<str>>> =
        const { std::cell::RefCell::new(None) };
}

impl SharedTopic {
    fn of(text: &str) -> SharedTopic {
        LAST_TOPIC.with(|last| {
            let mut last = last.borrow_mut();
            match &*last {
                Some(topic) if **topic == *text => SharedTopic(topic.clone()),
                _ => {
                    let topic: Arc<str> = Arc::from(text);
                    *last = Some(topic.clone());
                    SharedTopic(topic)
                }
            }
        })
    }
}

impl<'de> Deserialize<'de> for SharedTopic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SharedTopic;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a topic name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SharedTopic, E> {
                Ok(SharedTopic::of(v))
            }
        }
        d.deserialize_str(Visitor)
    }
}

fn shared_topic<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
    Ok(Option::<SharedTopic>::deserialize(d)?.map(|t| t.0))
}

/// A base64 key or value as the event carries it, kept as bytes: no UTF-8 validation of its
/// own (the base64 decoder checks every byte anyway), so an event that is not valid UTF-8 is
/// still read, and its bad records go to the errors prefix one by one. Read from a payload,
/// it is a view of the payload's bytes, unless the JSON string had escapes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Base64Text(pub Bytes);

impl Base64Text {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `text` as a view of the payload being read when it lies within it, else a copy.
    fn of(text: &[u8]) -> Self {
        let view = PAYLOAD.with(|current| {
            let current = current.borrow();
            let payload = current.as_ref()?;
            let start = payload.as_ptr() as usize;
            let at = text.as_ptr() as usize;
            let within = at >= start && at + text.len() <= start + payload.len();
            within.then(|| payload.slice_ref(text))
        });
        Base64Text(view.unwrap_or_else(|| Bytes::copy_from_slice(text)))
    }
}

impl From<&str> for Base64Text {
    fn from(text: &str) -> Self {
        Base64Text(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl std::fmt::Debug for Base64Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Base64Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Base64Text, E> {
                Ok(Base64Text::of(v))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Base64Text, E> {
                Ok(Base64Text(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Base64Text, E> {
                Ok(Base64Text(Bytes::from(v)))
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &str) -> Result<Base64Text, E> {
                Ok(Base64Text::of(v.as_bytes()))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Base64Text, E> {
                Ok(Base64Text(Bytes::copy_from_slice(v.as_bytes())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Base64Text, E> {
                Ok(Base64Text(Bytes::from(v.into_bytes())))
            }
        }
        // serde_json reads a string as raw bytes here (escapes processed, UTF-8 not checked).
        d.deserialize_byte_buf(Visitor)
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One record with its key and value still base64-encoded, and its exact coordinates.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp in milliseconds, exactly as Kafka gave it.
    pub timestamp_ms: i64,
    pub key_b64: Option<&'a [u8]>,
    pub value_b64: Option<&'a [u8]>,
    pub record: &'a KafkaRecord,
}

impl RecordRef<'_> {
    /// Headers as (name, bytes) pairs; Lambda sends header values as arrays of signed bytes.
    pub fn headers(&self) -> Vec<(&str, Vec<u8>)> {
        self.record
            .headers
            .iter()
            .flat_map(|h| h.iter())
            .map(|(k, v)| (k.as_str(), v.iter().map(|b| *b as u8).collect()))
            .collect()
    }
}

/// The records of one topic-partition, sorted by offset.
#[derive(Debug)]
pub struct PartitionRecords<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub records: Vec<RecordRef<'a>>,
}

/// Why the event itself (not one record) is unusable. Such an event cannot succeed on retry
/// either, so the function reports it and the event source mapping's on-failure destination
/// keeps it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error(
        "the invocation payload is not a Kafka event (at {path}): {detail}; expected the event an MSK or self-managed Kafka event source mapping sends"
    )]
    Payload { path: String, detail: String },
    #[error("unsupported eventSource {0:?}: expected aws:kafka (Amazon MSK) or SelfManagedKafka")]
    Source(String),
    #[error("record under {group:?} at offset {offset}: partition {partition} is out of range")]
    Partition {
        group: String,
        partition: i64,
        offset: i64,
    },
}

/// Groups an event's records by topic-partition, sorted by topic, partition and offset.
///
/// A record without a `topic` field takes it from its group name (`<topic>-<partition>`).
pub fn partitions(event: &KafkaEvent) -> Result<Vec<PartitionRecords<'_>>, EventError> {
    if let Some(source) = &event.event_source
        && source != "aws:kafka"
        && source != "SelfManagedKafka"
    {
        return Err(EventError::Source(source.clone()));
    }
    let mut out: Vec<PartitionRecords<'_>> = Vec::new();
    // Where the previous record went.
    let mut last: Option<usize> = None;
    let mut groups: Vec<(&String, &Vec<KafkaRecord>)> = event.records.iter().collect();
    groups.sort_by(|a, b| a.0.cmp(b.0));
    for (group, records) in groups {
        for record in records {
            let partition = i32::try_from(record.partition).map_err(|_| EventError::Partition {
                group: group.clone(),
                partition: record.partition,
                offset: record.offset,
            })?;
            let topic = match record.topic.as_deref() {
                Some(t) => t,
                None => group
                    .rsplit_once('-')
                    .map(|(t, _)| t)
                    .unwrap_or(group.as_str()),
            };
            let r = RecordRef {
                topic,
                partition,
                offset: record.offset,
                timestamp_ms: record.timestamp,
                key_b64: record.key.as_ref().map(Base64Text::as_bytes),
                value_b64: record.value.as_ref().map(Base64Text::as_bytes),
                record,
            };
            // A group usually holds one topic-partition, so the record usually joins the
            // previous record's; other partitions are searched (partition number first).
            let same = |p: &PartitionRecords<'_>| p.partition == partition && p.topic == topic;
            let found = match last {
                Some(i) if out.get(i).is_some_and(same) => Some(i),
                _ => out.iter().position(same),
            };
            match found {
                Some(i) => {
                    out[i].records.push(r);
                    last = Some(i);
                }
                None => {
                    // Room for the whole group at once.
                    let mut first = Vec::with_capacity(records.len());
                    first.push(r);
                    out.push(PartitionRecords {
                        topic,
                        partition,
                        records: first,
                    });
                    last = Some(out.len() - 1);
                }
            }
        }
    }
    for p in &mut out {
        p.records.sort_by_key(|r| r.offset);
        // A duplicated offset within one event (seen with retried batches) is one record.
        p.records.dedup_by_key(|r| r.offset);
    }
    out.sort_by(|a, b| (a.topic, a.partition).cmp(&(b.topic, b.partition)));
    Ok(out)
}

/// Decodes a base64 key or value into `buf` (reused between records).
pub fn decode_base64(
    part: &'static str,
    text: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    buf.clear();
    // The vectorized decoder (AVX2 / NEON, chosen at run time) is ~10x cheaper per byte than
    // a scalar one, which matters at a few MB per batch; it only says that text is invalid,
    // so invalid text is decoded again by the scalar decoder, which names what and where.
    if base64_simd::STANDARD.decode_append(text, buf).is_ok() {
        return Ok(());
    }
    buf.clear();
    base64::engine::general_purpose::STANDARD
        .decode_vec(text, buf)
        .map_err(|e| DecodeError::Base64 {
            part,
            detail: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_sorts_and_reads_headers() {
        let event: KafkaEvent = serde_json::from_str(
            r#"{"eventSource": "aws:kafka", "records": {
                "b-1": [{"topic": "b", "partition": 1, "offset": 9, "timestamp": 1700000000123,
                          "timestampType": "CREATE_TIME", "value": "e30=", "headers": [{"h": [104, -1]}]}],
                "a-0": [{"topic": "a", "partition": 0, "offset": 5, "timestamp": 1, "timestampType": "CREATE_TIME", "headers": []},
                        {"topic": "a", "partition": 0, "offset": 4, "timestamp": 1, "timestampType": "CREATE_TIME", "headers": []}]}}"#,
        )
        .unwrap();
        let parts = partitions(&event).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].topic, parts[0].partition), ("a", 0));
        assert_eq!(
            parts[0]
                .records
                .iter()
                .map(|r| r.offset)
                .collect::<Vec<_>>(),
            [4, 5]
        );
        assert_eq!(parts[1].records[0].timestamp_ms, 1_700_000_000_123);
        assert_eq!(
            parts[1].records[0].headers(),
            vec![("h", vec![104u8, 255u8])]
        );
    }

    #[test]
    fn from_json_reads_events_and_names_where_a_payload_is_wrong() {
        let event = KafkaEvent::from_json(
            br#"{"eventSource": "aws:kafka", "records": {"t-0": [{"topic": "t", "partition": 0, "offset": 3, "timestamp": 1700000000123, "value": "e30="}]}}"#,
        )
        .unwrap();
        assert_eq!(event.records["t-0"][0].timestamp, 1_700_000_000_123);
        assert_eq!(
            event.records["t-0"][0].value.as_ref().unwrap().as_bytes(),
            b"e30="
        );

        let e = KafkaEvent::from_json(
            br#"{"eventSource": "aws:kafka", "records": {"t-0": [{"topic": "t", "partition": 0, "offset": "3"}]}}"#,
        )
        .unwrap_err();
        match &e {
            EventError::Payload { path, detail } => {
                assert_eq!(path, "records.t-0[0].offset");
                assert!(detail.contains("expected i64"), "{detail}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.to_string().contains("not a Kafka event"), "{e}");
        assert!(matches!(
            KafkaEvent::from_json(b"{\"records\": [1"),
            Err(EventError::Payload { .. })
        ));
    }

    #[test]
    fn records_of_several_partitions_in_one_group_are_split_by_topic_and_partition() {
        let event = KafkaEvent::from_json(
            br#"{"records": {"x-0": [
                {"topic": "a", "partition": 0, "offset": 3},
                {"topic": "a", "partition": 1, "offset": 9},
                {"topic": "b", "partition": 0, "offset": 2},
                {"topic": "a", "partition": 0, "offset": 1},
                {"topic": "a", "partition": 1, "offset": 8},
                {"topic": "a", "partition": 0, "offset": 2}],
              "a-1": [{"topic": "a", "partition": 1, "offset": 7}]}}"#,
        )
        .unwrap();
        let parts: Vec<(&str, i32, Vec<i64>)> = partitions(&event)
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p.topic,
                    p.partition,
                    p.records.iter().map(|r| r.offset).collect(),
                )
            })
            .collect();
        assert_eq!(
            parts,
            [
                ("a", 0, vec![1, 2, 3]),
                ("a", 1, vec![7, 8, 9]),
                ("b", 0, vec![2]),
            ]
        );
    }

    #[test]
    fn records_of_a_topic_share_its_name_and_timestamp_types_are_read() {
        let event = KafkaEvent::from_json(
            br#"{"records": {"t-0": [
                {"topic": "orders", "partition": 0, "offset": 1, "timestampType": "CREATE_TIME"},
                {"topic": "orders", "partition": 0, "offset": 2, "timestampType": "LOG_APPEND_TIME"},
                {"topic": "ord\u0065rs", "partition": 0, "offset": 3, "timestampType": "NO_TIMESTAMP_TYPE"},
                {"topic": "other", "partition": 0, "offset": 4, "timestampType": "LATER"},
                {"topic": null, "partition": 0, "offset": 5, "timestampType": null},
                {"partition": 0, "offset": 6}]}}"#,
        )
        .unwrap();
        let records = &event.records["t-0"];
        let topics: Vec<Option<&str>> = records.iter().map(|r| r.topic.as_deref()).collect();
        assert_eq!(
            topics,
            [
                Some("orders"),
                Some("orders"),
                Some("orders"),
                Some("other"),
                None,
                None
            ]
        );
        let (a, b, c) = (&records[0].topic, &records[1].topic, &records[2].topic);
        assert!(Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap()));
        assert!(Arc::ptr_eq(a.as_ref().unwrap(), c.as_ref().unwrap()));
        let types: Vec<Option<TimestampType>> = records.iter().map(|r| r.timestamp_type).collect();
        assert_eq!(
            types,
            [
                Some(TimestampType::CreateTime),
                Some(TimestampType::LogAppendTime),
                Some(TimestampType::NoTimestampType),
                Some(TimestampType::Other),
                None,
                None
            ]
        );
        // A topic that is not a string is a malformed event, named where it is.
        match KafkaEvent::from_json(
            br#"{"records": {"t-0": [{"topic": 5, "partition": 0, "offset": 1}]}}"#,
        ) {
            Err(EventError::Payload { path, .. }) => assert_eq!(path, "records.t-0[0].topic"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn self_managed_events_are_accepted_and_others_refused() {
        let ok: KafkaEvent = serde_json::from_str(
            r#"{"eventSource": "SelfManagedKafka", "bootstrapServers": "b:9092", "records": {}}"#,
        )
        .unwrap();
        assert!(partitions(&ok).unwrap().is_empty());
        let bad: KafkaEvent =
            serde_json::from_str(r#"{"eventSource": "aws:sqs", "records": {}}"#).unwrap();
        assert!(matches!(partitions(&bad), Err(EventError::Source(_))));
    }

    #[test]
    fn base64_fields_are_read_as_bytes_without_utf8_validation() {
        // Escapes are processed; invalid UTF-8 inside the string is kept for the decoder (and
        // the errors prefix) to judge.
        let mut json = br#"{"partition": 0, "offset": 1, "key": "a\/b=", "value": "x"#.to_vec();
        json.extend_from_slice(&[0xff, b'"', b'}']);
        let record: KafkaRecord = serde_json::from_slice(&json).unwrap();
        assert_eq!(record.key.unwrap().as_bytes(), b"a/b=");
        assert_eq!(record.value.unwrap().as_bytes(), &[b'x', 0xff]);
        let null: KafkaRecord =
            serde_json::from_str(r#"{"partition": 0, "offset": 1, "key": null}"#).unwrap();
        assert!(null.key.is_none() && null.value.is_none());
        let from_value: KafkaRecord = serde_json::from_value(
            serde_json::json!({"partition": 0, "offset": 1, "value": "e30="}),
        )
        .unwrap();
        assert_eq!(from_value.value.unwrap().as_bytes(), b"e30=");
    }

    #[test]
    fn base64_fields_are_views_of_the_payload_unless_escaped() {
        let payload = Bytes::from_static(
            br#"{"records": {"t-0": [
                {"partition": 0, "offset": 1, "key": "a2V5", "value": "dmFsdWU="},
                {"partition": 0, "offset": 2, "key": "a\/b=", "value": ""}
            ]}}"#,
        );
        let within = |text: &[u8]| {
            let start = payload.as_ptr() as usize;
            let at = text.as_ptr() as usize;
            at >= start && at + text.len() <= start + payload.len()
        };
        let event = KafkaEvent::from_payload(payload.clone()).unwrap();
        let records = &event.records["t-0"];
        let (plain, escaped) = (&records[0], &records[1]);
        let (key, value) = (plain.key.as_ref().unwrap(), plain.value.as_ref().unwrap());
        assert_eq!(
            (key.as_bytes(), value.as_bytes()),
            (&b"a2V5"[..], &b"dmFsdWU="[..])
        );
        assert!(within(key.as_bytes()) && within(value.as_bytes()));
        // An escaped string is unescaped into a copy; an empty one is empty either way.
        let escaped_key = escaped.key.as_ref().unwrap().as_bytes();
        assert_eq!(escaped_key, b"a/b=");
        assert!(!within(escaped_key));
        assert_eq!(escaped.value.as_ref().unwrap().as_bytes(), b"");
        // Reading a copy of the payload gives the same event, and reading ends lending the
        // payload: later deserialization copies.
        assert_eq!(KafkaEvent::from_json(&payload).unwrap(), event);
        let text = std::str::from_utf8(&payload).unwrap();
        let later: KafkaEvent = serde_json::from_str(text).unwrap();
        assert_eq!(later, event);
        assert!(!within(
            later.records["t-0"][0].key.as_ref().unwrap().as_bytes()
        ));
    }

    #[test]
    fn malformed_base64_is_a_decode_error() {
        let mut buf = Vec::new();
        let e = decode_base64("value", b"not base64!", &mut buf).unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid base64 in the record's value"),
            "{e}"
        );
    }

    /// The scalar decoder `decode_base64` falls back to: the reference for every input.
    fn scalar(text: &[u8]) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn vectorized_base64_agrees_with_the_scalar_decoder_at_every_length() {
        use base64::Engine as _;
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut buf = vec![1, 2, 3];
        for n in 0..data.len() {
            let text = base64::engine::general_purpose::STANDARD.encode(&data[..n]);
            decode_base64("value", text.as_bytes(), &mut buf).unwrap();
            assert_eq!(buf, &data[..n], "length {n}");
        }
        // Non-canonical padding and trailing bits are refused, as the scalar decoder does.
        for bad in [
            "QQ", "QR==", "QUI", "QUJ=", "Q===", "=QUJD", "QU JD", "QUJD\n",
        ] {
            assert!(scalar(bad.as_bytes()).is_err(), "{bad}");
            assert!(
                decode_base64("key", bad.as_bytes(), &mut buf).is_err(),
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn vectorized_base64_accepts_exactly_what_the_scalar_decoder_accepts(
            text in "[A-Za-z0-9+/=]{0,90}"
        ) {
            let mut buf = Vec::new();
            let ours = decode_base64("value", text.as_bytes(), &mut buf).map(|()| buf.clone());
            match (ours, scalar(text.as_bytes())) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => proptest::prop_assert!(false, "{text:?}: ours {a:?}, scalar {b:?}"),
            }
        }
    }
}
