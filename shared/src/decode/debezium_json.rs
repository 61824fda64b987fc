//! A fast path for Debezium change events in plain JSON: the envelope is read in one pass
//! straight into a [`Change`], keeping only what a row needs. The image that is not used
//! (`before` of an update, `after` of a delete), `transaction` and the `source` fields other
//! than time and log position are skipped without allocating.
//!
//! It answers `Ok(None)` for a value that is not an envelope (no string `op`, or neither
//! `before` nor `after`); the caller then decodes it generically. For an envelope it gives
//! exactly what `json::decode` followed by [`debezium::unwrap`] gives (a test checks this on
//! the samples), so it changes speed, never results.

use super::DecodeError;
use super::debezium::{self, Change, EnvelopeTimes, Op};
use super::json_reader::{JsonStr, Reader};
use super::key_plan::{KeyPlan, PlannedKeys};
use crate::value::{FieldName, Value, same_name, same_text};

/// Decodes a Debezium JSON envelope, or `Ok(None)` when the value is not one.
pub fn decode(bytes: &[u8]) -> Result<Option<Change>, DecodeError> {
    // UTF-8 is validated once for the whole value, vectorized (see `json::decode`); invalid
    // text is left to the generic path, which names the position.
    let Ok(text) = simdutf8::basic::from_utf8(bytes) else {
        return Ok(None);
    };
    let mut scratch = SCRATCH.take();
    let change = match Reader::with(text, |r| read_envelope(r, &mut scratch)) {
        // Not an object, invalid JSON, or a form the hand-written reader leaves to
        // serde_json: the generic path gives the precise error or the value.
        None => Ok(None),
        Some(Err(e)) => Err(e),
        Some(Ok(envelope)) => {
            // The parts go through the same checks as a generically decoded envelope, so both
            // paths report the same errors and the same metadata.
            let Envelope {
                op,
                row,
                ts_ms,
                ts_us,
                source,
            } = envelope;
            let times = EnvelopeTimes {
                source: source.as_ref(),
                ts_us: ts_us.as_ref(),
                ts_ms: ts_ms.as_ref(),
            };
            let change = debezium::change(op, row, None, times).map(Some);
            if let Some(Value::Struct(mut fields)) = source {
                fields.clear();
                scratch.source_fields = fields;
            }
            change
        }
    };
    SCRATCH.set(scratch);
    change
}

/// What the reader keeps between envelopes on a thread.
#[derive(Default)]
struct Scratch {
    /// The kept `source` fields of the last envelope, emptied: every change has a `source`
    /// block, read for its times and position and dropped, so its vector is reused.
    source_fields: Vec<(FieldName, Value)>,
    /// The names of [`SOURCE_FIELDS`], made once: every change's `source` has some of them.
    source_names: Vec<FieldName>,
    /// The keys of the last envelope and of its `source` block (see [`KeyPlan`]).
    envelope_keys: KeyPlan<EnvelopeKey>,
    source_keys: KeyPlan<SourceKey>,
}

impl Scratch {
    const fn new() -> Self {
        Scratch {
            source_fields: Vec::new(),
            source_names: Vec::new(),
            envelope_keys: KeyPlan::new(),
            source_keys: KeyPlan::new(),
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = const { std::cell::Cell::new(Scratch::new()) };
}

/// What an envelope key is to the reader.
#[derive(Debug, Clone, Copy)]
enum EnvelopeKey {
    Op,
    Before,
    After,
    TsMs,
    TsUs,
    Source,
    /// Stepped over (`transaction`, extensions).
    Other,
}

impl EnvelopeKey {
    fn of(key: &str) -> EnvelopeKey {
        match key {
            "op" => EnvelopeKey::Op,
            "before" => EnvelopeKey::Before,
            "after" => EnvelopeKey::After,
            "ts_ms" => EnvelopeKey::TsMs,
            "ts_us" => EnvelopeKey::TsUs,
            "source" => EnvelopeKey::Source,
            _ => EnvelopeKey::Other,
        }
    }
}

/// What a `source` key is to the reader: the index of a kept field in [`SOURCE_FIELDS`], or
/// `None` for a field stepped over.
type SourceKey = Option<usize>;

fn source_key(key: &str) -> SourceKey {
    SOURCE_FIELDS
        .iter()
        .position(|f| same_text(f.as_bytes(), key.as_bytes()))
}

/// The parts of an envelope [`debezium::change`] reads.
struct Envelope {
    op: Op,
    /// The image the op uses (`Null` when absent).
    row: Value,
    ts_ms: Option<Value>,
    ts_us: Option<Value>,
    source: Option<Value>,
}

/// Reads the envelope's parts (an error for an `op` that carries no change), or `None` when
/// the value is not an envelope or the reader cannot read it all.
///
/// `after` is read as it comes (one pass); `before` is stepped over and its position kept, as
/// `op` usually comes after it and only deletes use it (it is read then). Every other value
/// is stepped over without allocating, but checked all the same: an invalid document must go
/// to the generic path.
fn read_envelope(
    r: &mut Reader<'_>,
    scratch: &mut Scratch,
) -> Option<Result<Envelope, DecodeError>> {
    let mut op: Option<OpField> = None;
    let mut before: Option<usize> = None;
    let mut after: Option<Value> = None;
    let mut ts_ms: Option<Value> = None;
    let mut ts_us: Option<Value> = None;
    let mut source: Option<Value> = None;
    if r.open_object(0)? {
        let mut keys = PlannedKeys::new(&mut scratch.envelope_keys);
        loop {
            // A duplicated key keeps its last value, as the generic decoder does.
            match keys.next(r, EnvelopeKey::of)? {
                // A string `op` is matched as it stands in the text (no allocation).
                EnvelopeKey::Op => {
                    op = Some(match r.string_value()? {
                        Some(text) => OpField::Text(text),
                        None => {
                            r.skip_value(1)?;
                            OpField::Other
                        }
                    })
                }
                EnvelopeKey::Before => {
                    r.skip_ws()?;
                    before = Some(r.pos());
                    r.skip_value(1)?;
                }
                EnvelopeKey::After => after = Some(r.value(1)?),
                EnvelopeKey::TsMs => ts_ms = Some(r.value(1)?),
                EnvelopeKey::TsUs => ts_us = Some(r.value(1)?),
                EnvelopeKey::Source => {
                    source = Some(read_source(
                        r,
                        &mut scratch.source_fields,
                        &mut scratch.source_names,
                        &mut scratch.source_keys,
                    )?)
                }
                EnvelopeKey::Other => r.skip_value(1)?,
            }
            if !r.next_or_close(b'}')? {
                break;
            }
        }
        keys.finish();
    }
    r.end()?;
    let op = match op {
        Some(OpField::Text(text)) if before.is_some() || after.is_some() => text,
        _ => return None,
    };
    let op = match debezium::op_text(op.as_str()) {
        Ok(op) => op,
        Err(e) => return Some(Err(e)),
    };
    // Only the image the op uses: `debezium::change` reads no other; a missing one is null.
    let row = if op == Op::Delete {
        match before {
            Some(at) => {
                r.seek(at);
                r.value(1)?
            }
            None => Value::Null,
        }
    } else {
        after.unwrap_or(Value::Null)
    };
    Some(Ok(Envelope {
        op,
        row,
        ts_ms,
        ts_us,
        source,
    }))
}

/// The envelope's `op` as read: a string's text, or another value (the document is then no
/// envelope).
enum OpField<'a> {
    Text(JsonStr<'a>),
    Other,
}

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

/// Reads `source`, keeping only [`SOURCE_FIELDS`] of an object. A `source` that is not an
/// object is read as `null`: [`debezium::unwrap`] finds no field in either.
/// `fields` is the emptied vector of a previous `source`, reused; `names` the names of
/// [`SOURCE_FIELDS`] (made here the first time).
fn read_source(
    r: &mut Reader<'_>,
    fields: &mut Vec<(FieldName, Value)>,
    names: &mut Vec<FieldName>,
    plan: &mut KeyPlan<SourceKey>,
) -> Option<Value> {
    if names.is_empty() {
        *names = SOURCE_FIELDS.iter().map(|n| FieldName::from(*n)).collect();
    }
    if r.skip_ws()? != b'{' {
        r.skip_value(1)?;
        return Some(Value::Null);
    }
    let mut fields = std::mem::take(fields);
    if r.open_object(1)? {
        let mut keys = PlannedKeys::new(plan);
        loop {
            match keys.next(r, source_key)? {
                Some(kept) => {
                    let name = &names[kept];
                    let value = r.value(2)?;
                    // A duplicated key keeps its last value, as the generic decoder does.
                    match fields.iter_mut().find(|(n, _)| same_name(n, name)) {
                        Some(field) => field.1 = value,
                        None => fields.push((name.clone(), value)),
                    }
                }
                None => r.skip_value(2)?,
            }
            if !r.next_or_close(b'}')? {
                break;
            }
        }
        keys.finish();
    }
    Some(Value::Struct(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoded, json};
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
        let payloads = crate::decode::debezium_sample_payloads(&["value"]);
        for bytes in &payloads {
            let text = std::str::from_utf8(bytes).unwrap();
            let (fast, slow) = both(text);
            assert_eq!(fast.unwrap().unwrap(), slow.unwrap());
        }
        assert!(payloads.len() > 30);
    }

    #[test]
    fn skipped_values_are_checked_as_the_generic_path_checks_them() {
        // serde_json's skipping (IgnoredAny, RawValue) let these through where its full read
        // refuses them; the fast path now leaves them to the generic path, which refuses them.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for text in [
            r#"{"op": "c", "after": {"id": 1}, "x": 1e400}"#.to_string(),
            r#"{"op": "c", "after": {"id": 1}, "transaction": "\ud800"}"#.to_string(),
            r#"{"op": "u", "before": {"a": "\udc00"}, "after": {"id": 1}}"#.to_string(),
            r#"{"op": "d", "before": {"id": 1e400}}"#.to_string(),
            r#"{"op": "c", "after": {"id": 1}, "source": {"db": 1e999}}"#.to_string(),
            format!(r#"{{"op": "c", "after": {{"id": 1}}, "transaction": {deep}}}"#),
            format!(r#"{{"op": "u", "before": {deep}, "after": {{"id": 1}}}}"#),
            r#"{"op": "c", "after": {"id": 1}, "x": "a\u0001"} "#.to_string() + "x",
        ] {
            assert_eq!(decode(text.as_bytes()), Ok(None), "{text}");
            assert!(
                matches!(json::decode(text.as_bytes()), Err(DecodeError::Json { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn escapes_and_duplicates_in_the_envelope_agree_with_the_generic_path() {
        for text in [
            r#"{"\u006fp": "\u0064", "before": {"id": 7, "s": "a\"b\u00e9"}, "after": null}"#,
            r#"{"op": "c", "op": "u", "after": {"id": 1}, "after": {"id": 2}}"#,
            r#"{"op": 5, "op": "r", "after": {"id": 1}}"#,
            r#"{"op": "d", "before": {"id": 1}, "before": {"id": 2}}"#,
            r#"{"op": "c", "after": {"id": 1}, "source": {"lsn": 1, "lsn": 2, "ts_ms": 3}, "source": {"ts_ms": 4, "x": [{"y": "\ud83d\ude00"}]}}"#,
            r#" { "after" : { "id" : 1 } , "op" : "c" , "source" : null } "#,
            r#"{"after": {"id": 1}, "op": "c", "source": [{"lsn": 5}], "ts_ms": 2}"#,
            r#"{"after": {"id": 1}, "op": "c", "source": 5, "source": {"lsn": 6}}"#,
            r#"{"op": "c", "after": {"id": -0, "f": 1.5e-3, "big": 18446744073709551615}, "ts_us": 12}"#,
        ] {
            let (fast, slow) = both(text);
            assert_eq!(fast.unwrap().unwrap(), slow.unwrap(), "{text}");
        }
    }

    fn envelope() -> impl Strategy<Value = String> {
        use crate::decode::json_reader::tests::{document, string_literal};
        let object = prop::collection::vec(("[a-e]", document()), 0..6).prop_map(|m| {
            let m: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            format!("{{{}}}", m.join(", "))
        });
        let image = prop_oneof![1 => Just("null".to_string()), 4 => object, 1 => document()];
        // Times stay within what `debezium::unwrap` can scale to microseconds: its `ms * 1000`
        // overflows beyond (the same on both paths; a panic in debug builds).
        let time = || {
            prop_oneof![
                4 => (-(1i64 << 52)..(1i64 << 52)).prop_map(|n| n.to_string()),
                1 => prop::sample::select(vec!["-0", "1.5", "1e3", "18446744073709551615", "\"1\"", "null", "{}"])
                    .prop_map(String::from),
            ]
        };
        let source_value = prop_oneof![
            time(),
            Just("\"mysql-bin.000003\"".to_string()),
            Just("\"0000002a:00000100:0003\"".to_string()),
            Just("\"123456\"".to_string()),
            Just("null".to_string()),
            document(),
        ];
        let source_key = prop_oneof![
            prop::sample::select(&SOURCE_FIELDS[2..]).prop_map(String::from),
            "[a-z]{1,8}",
        ];
        let source = prop_oneof![
            6 => prop::collection::vec(
                prop_oneof![
                    (prop::sample::select(&["ts_ms", "ts_us"][..]).prop_map(String::from), time()),
                    (source_key, source_value),
                ],
                0..8,
            )
            .prop_map(|m| {
                let m: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", m.join(","))
            }),
            1 => Just("null".to_string()),
            1 => document(),
        ];
        let op = prop_oneof![
            prop::sample::select(vec![
                "\"c\"",
                "\"u\"",
                "\"d\"",
                "\"r\"",
                "\"t\"",
                "\"x\"",
                "5",
                "null",
                "\"\\u0064\""
            ])
            .prop_map(String::from),
            string_literal(),
        ];
        let member = prop_oneof![
            2 => op.prop_map(|v| format!("\"op\":{v}")),
            3 => (prop::sample::select(vec!["before", "after"]), image)
                .prop_map(|(k, v)| format!("\"{k}\":{v}")),
            1 => (prop::sample::select(vec!["ts_ms", "ts_us"]), time())
                .prop_map(|(k, v)| format!("\"{k}\":{v}")),
            2 => source.prop_map(|v| format!("\"source\":{v}")),
            1 => (prop::sample::select(vec!["transaction", "schema", "x"]), document())
                .prop_map(|(k, v)| format!("\"{k}\":{v}")),
            1 => time().prop_map(|v| format!("\"\\u0074s_ms\":{v}")),
        ];
        prop::collection::vec(member, 0..8).prop_map(|m| format!("{{{}}}", m.join(",")))
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        /// Whatever the fast path answers is what the generic path gives; it steps aside only
        /// for non-envelopes and documents the hand-written reader leaves to serde_json.
        #[test]
        fn envelopes_decode_the_same_both_ways(text in envelope()) {
            let (fast, slow) = both(&text);
            match fast {
                Ok(Some(change)) => prop_assert_eq!(Ok(change), slow, "{}", text),
                Err(e) => prop_assert_eq!(Err(e), slow, "{}", text),
                Ok(None) => {
                    if let Ok(value) = json::decode(text.as_bytes()) {
                        prop_assert!(
                            !debezium::is_envelope(&value)
                                || crate::decode::json_reader::parse(&text).is_none(),
                            "stepped aside for {}", text
                        );
                    }
                }
            }
        }

        #[test]
        fn mutated_envelopes_decode_the_same_both_ways(
            text in envelope(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"{}[]\",:\\u0-.eE \n\x01\xff".to_vec()),
            insert in any::<bool>(),
        ) {
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len() + 1);
            if insert || i == bytes.len() {
                bytes.insert(i, byte);
            } else {
                bytes[i] = byte;
            }
            let slow = json::decode(&bytes).and_then(|v| debezium::unwrap(Decoded::untyped(v)));
            match decode(&bytes) {
                Ok(Some(change)) => prop_assert_eq!(Ok(change), slow),
                Err(e) => prop_assert_eq!(Err(e), slow),
                Ok(None) => {}
            }
        }
    }
}
