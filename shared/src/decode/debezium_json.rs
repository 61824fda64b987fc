//! A fast path for Debezium change events in plain JSON: the envelope is read in one pass
//! straight into a [`Change`], keeping only what a row needs. The image that is not used
//! (`before` of an update, `after` of a delete), `transaction` and the `source` fields other
//! than time and log position are skipped without allocating.
//!
//! It answers `Ok(None)` for a value that is not an envelope (no string `op`, or neither
//! `before` nor `after`); the caller then decodes it generically. For an envelope it gives
//! exactly what `json::decode` followed by [`debezium::unwrap`] gives (a test checks this on
//! the samples), so it changes speed, never results.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::debezium::{self, Change};
use super::json::{ValueSeed, json_error};
use super::{DecodeError, Decoded};
use crate::value::Value;

/// Decodes a Debezium JSON envelope, or `Ok(None)` when the value is not one.
pub fn decode(bytes: &[u8]) -> Result<Option<Change>, DecodeError> {
    // UTF-8 is validated once for the whole value (see `json::decode`); invalid text is left
    // to the generic path, which names the position.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(None);
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let parts = match de.deserialize_map(EnvelopeVisitor) {
        Ok(parts) => parts,
        // Not an object, or invalid JSON: the generic path gives the precise error.
        Err(_) => return Ok(None),
    };
    if de.end().map_err(json_error).is_err() {
        return Ok(None);
    }
    let Some(op) = parts.op else { return Ok(None) };
    if parts.before.is_none() && parts.after.is_none() {
        return Ok(None);
    }
    // Rebuild the minimal envelope and let the one unwrap implementation judge it, so both
    // paths report the same errors and the same metadata.
    // `after` is parsed as it is read (one pass); `before` is kept as raw text and parsed only
    // when the op uses it (deletes); an unused image is a placeholder for its presence.
    let delete = &*op == "d";
    let mut fields: Vec<(Box<str>, Value)> = Vec::with_capacity(5);
    fields.push(("op".into(), Value::String(op)));
    if let Some(before) = parts.before {
        let before = if delete {
            super::json::decode_str(before.get())?
        } else {
            Value::Null
        };
        fields.push(("before".into(), before));
    }
    if let Some(after) = parts.after {
        fields.push(("after".into(), if delete { Value::Null } else { after }));
    }
    if let Some(ts) = parts.ts_ms {
        fields.push(("ts_ms".into(), ts));
    }
    if let Some(ts) = parts.ts_us {
        fields.push(("ts_us".into(), ts));
    }
    if let Some(source) = parts.source {
        fields.push(("source".into(), source));
    }
    debezium::unwrap(Decoded::untyped(Value::Struct(fields))).map(Some)
}

#[derive(Default)]
struct Parts<'de> {
    op: Option<Box<str>>,
    /// `before` as raw JSON text borrowed from the input: `op` usually comes after it, and
    /// only deletes use it.
    before: Option<&'de serde_json::value::RawValue>,
    after: Option<Value>,
    ts_ms: Option<Value>,
    ts_us: Option<Value>,
    source: Option<Value>,
}

/// The envelope fields the fast path reads; keys are matched without allocating.
enum Key {
    Op,
    Before,
    After,
    TsMs,
    TsUs,
    Source,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "op" => Key::Op,
                    "before" => Key::Before,
                    "after" => Key::After,
                    "ts_ms" => Key::TsMs,
                    "ts_us" => Key::TsUs,
                    "source" => Key::Source,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

struct EnvelopeVisitor;

/// Fields of `source` that [`debezium::unwrap`] reads: times and log positions.
const SOURCE_FIELDS: &[&str] = &[
    "ts_ms",
    "ts_us",
    "lsn",
    "file",
    "pos",
    "row",
    "change_lsn",
    "event_serial_no",
    "scn",
];

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Parts<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Debezium envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts<'de>, A::Error> {
        let mut parts = Parts::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Op => {
                    let op: Value = map.next_value_seed(ValueSeed)?;
                    parts.op = match op {
                        Value::String(s) => Some(s),
                        _ => None,
                    };
                }
                Key::Before => parts.before = Some(map.next_value()?),
                Key::After => parts.after = Some(map.next_value_seed(ValueSeed)?),
                Key::TsMs => parts.ts_ms = Some(map.next_value_seed(ValueSeed)?),
                Key::TsUs => parts.ts_us = Some(map.next_value_seed(ValueSeed)?),
                Key::Source => parts.source = Some(map.next_value_seed(SourceSeed)?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(parts)
    }
}

/// A `source` key: one of [`SOURCE_FIELDS`], or another one.
struct SourceKey(Option<&'static str>);

impl<'de> serde::Deserialize<'de> for SourceKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SourceKey, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = SourceKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, v: &str) -> Result<SourceKey, E> {
                Ok(SourceKey(SOURCE_FIELDS.iter().find(|f| **f == v).copied()))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Reads `source`, keeping only [`SOURCE_FIELDS`].
struct SourceSeed;

impl<'de> DeserializeSeed<'de> for SourceSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(SourceVisitor)
    }
}

struct SourceVisitor;

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Debezium source block")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields: Vec<(Box<str>, Value)> = Vec::new();
        while let Some(SourceKey(known)) = map.next_key::<SourceKey>()? {
            match known {
                Some(name) => {
                    let value = map.next_value_seed(ValueSeed)?;
                    // A duplicated key keeps its last value, as the generic decoder does.
                    match fields.iter_mut().find(|(n, _)| &**n == name) {
                        Some(field) => field.1 = value,
                        None => fields.push((name.into(), value)),
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Struct(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::json;
    use proptest::prelude::*;

    fn both(
        text: &str,
    ) -> (
        Result<Option<Change>, DecodeError>,
        Result<Change, DecodeError>,
    ) {
        let fast = decode(text.as_bytes());
        let slow =
            json::decode(text.as_bytes()).and_then(|v| debezium::unwrap(Decoded::untyped(v)));
        (fast, slow)
    }

    #[test]
    fn agrees_with_the_generic_path() {
        for text in [
            r#"{"before": {"id": 1, "n": "a"}, "after": {"id": 1, "n": "b"}, "source": {"version": "2.5", "ts_ms": 10, "lsn": 99, "db": "x"}, "op": "u", "ts_ms": 11, "transaction": null}"#,
            r#"{"op": "d", "before": {"id": 7}, "after": null, "source": {"file": "mysql-bin.000003", "pos": 154, "row": 1, "ts_ms": 5}, "ts_ms": 6}"#,
            r#"{"before": null, "after": {"id": 2, "nested": {"a": [1, 2]}}, "op": "r", "ts_ms": 3}"#,
            r#"{"before": null, "after": null, "op": "c"}"#,
            r#"{"after": {"id": 1}, "op": "t"}"#,
        ] {
            let (fast, slow) = both(text);
            match (fast, slow) {
                (Ok(Some(f)), Ok(s)) => assert_eq!(f, s, "{text}"),
                (Err(f), Err(s)) => assert_eq!(f, s, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_envelopes_are_left_to_the_generic_path() {
        for text in [
            r#"{"id": 1}"#,
            r#"{"op": 5, "after": {}}"#,
            "[1]",
            "{broken",
            r#"{"op": "c"}"#,
        ] {
            assert_eq!(decode(text.as_bytes()).unwrap(), None, "{text}");
        }
    }

    #[test]
    fn the_debezium_sample_decodes_the_same_both_ways() {
        use base64::Engine as _;
        let path = format!(
            "{}/../events/msk-debezium-json.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut n = 0;
        for records in event["records"].as_object().unwrap().values() {
            for r in records.as_array().unwrap() {
                let Some(v) = r["value"].as_str() else {
                    continue;
                };
                let bytes = base64::engine::general_purpose::STANDARD.decode(v).unwrap();
                let text = String::from_utf8(bytes).unwrap();
                let (fast, slow) = both(&text);
                assert_eq!(fast.unwrap().unwrap(), slow.unwrap());
                n += 1;
            }
        }
        assert!(n > 30);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }
    }
}
