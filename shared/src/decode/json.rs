//! Plain JSON → [`Value`], parsed in one pass with no intermediate document tree: by the
//! hand-written [`super::json_reader`], or by serde_json (below) for what that one leaves.
//!
//! Numbers keep their exactness where serde_json does: integers that fit `i64` are
//! [`Value::Int`]; larger ones up to `u64::MAX` become [`Value::Decimal`] with scale 0; integers
//! beyond that, fractions and exponents are [`Value::Float`] (serde_json, without its
//! `arbitrary_precision` feature, reads them as floats). Object keys keep their order; a
//! duplicated key keeps its last value, as most JSON readers do.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{DecodeError, json_reader};
use crate::value::{FieldName, Value};

/// Decodes one JSON document.
///
/// The hand-written reader ([`super::json_reader`]) reads almost every document; what it
/// leaves (invalid JSON, and the rare forms listed in its notes) is read again by the serde_json
/// reference reader, which gives the same value or the precise error.
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    if let Ok(text) = simdutf8::basic::from_utf8(bytes)
        && let Some(value) = json_reader::parse(text)
    {
        return Ok(value);
    }
    decode_reference(bytes)
}

/// The serde_json reader: the fallback of [`decode`], and the reference its tests compare with.
pub(crate) fn decode_reference(bytes: &[u8]) -> Result<Value, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => decode_with(&mut serde_json::Deserializer::from_str(text)),
        // Invalid UTF-8: the byte reader names the position of the bad string.
        Err(_) => decode_with(&mut serde_json::Deserializer::from_slice(bytes)),
    }
}

/// serde_json validates the UTF-8 of a byte slice string by string (one call per string);
/// [`decode_reference`] checks the whole document once and reads it as text instead, which
/// costs a fraction for records made of many short strings.
fn decode_with<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
) -> Result<Value, DecodeError> {
    let value = ValueSeed.deserialize(&mut *de).map_err(json_error)?;
    de.end().map_err(json_error)?;
    Ok(value)
}

/// Turns a serde_json error into a [`DecodeError::Json`] with its position.
pub fn json_error(e: serde_json::Error) -> DecodeError {
    DecodeError::Json {
        line: e.line(),
        column: e.column(),
        detail: strip_position(&e.to_string()),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Deserializes any JSON value into a [`Value`]; usable as a field type inside other serde
/// structs (the Debezium envelope reader uses it for `before` and `after`).
#[derive(Clone, Copy)]
pub struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// A [`Value`] that can be used as a field of a `#[derive(Deserialize)]` struct.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonValue(pub Value);

impl<'de> de::Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor).map(JsonValue)
    }
}

struct ValueVisitor;

/// Objects up to this many keys check duplicates linearly.
const LINEAR_KEYS: usize = 32;

/// Adds the members of one JSON object to `fields[start..]` as every reader of schema-less
/// objects (serde_json's visitor here, [`super::json_reader`], and Connect's schema-less
/// payloads) must: a duplicated key keeps its last value at its first position. Duplicates
/// are looked up linearly in small objects and through a hash index in large ones, so that
/// an object with many keys cannot stall a batch.
#[derive(Default)]
pub(super) struct ObjectMembers {
    index: Option<HashMap<FieldName, usize>>,
}

impl ObjectMembers {
    pub(super) fn add(
        &mut self,
        fields: &mut Vec<(FieldName, Value)>,
        start: usize,
        key: FieldName,
        value: Value,
    ) {
        let members = &mut fields[start..];
        if members.len() >= LINEAR_KEYS && self.index.is_none() {
            self.index = Some(
                members
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.clone(), i))
                    .collect(),
            );
        }
        let existing = match &self.index {
            Some(index) => index.get(&key).copied(),
            None => members.iter().position(|(k, _)| *k == key),
        };
        match existing {
            Some(i) => members[i].1 = value,
            None => {
                if let Some(index) = &mut self.index {
                    index.insert(key.clone(), members.len());
                }
                fields.push((key, value));
            }
        }
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Decimal(i128::from(v)),
        })
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Decimal(v))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(match i128::try_from(v) {
            Ok(i) => Value::Decimal(i),
            Err(_) => Value::Float(v as f64),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields: Vec<(FieldName, Value)> = Vec::with_capacity(map.size_hint().unwrap_or(8));
        let mut members = ObjectMembers::default();
        while let Some(key) = map.next_key::<KeyStr>()? {
            let value = map.next_value_seed(ValueSeed)?;
            members.add(&mut fields, 0, key.0, value);
        }
        Ok(Value::Struct(fields))
    }
}

/// An object key, read from the input as a shared name.
struct KeyStr(FieldName);

impl<'de> de::Deserialize<'de> for KeyStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyStr, E> {
                Ok(KeyStr(v.into()))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyStr, E> {
                Ok(KeyStr(v.into()))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_every_json_kind() {
        let v =
            decode(br#"{"a": 1, "b": -2.5, "c": "x", "d": true, "e": null, "f": [1, {"g": "h"}]}"#)
                .unwrap();
        assert_eq!(
            v,
            Value::Struct(vec![
                ("a".into(), Value::Int(1)),
                ("b".into(), Value::Float(-2.5)),
                ("c".into(), Value::String("x".into())),
                ("d".into(), Value::Bool(true)),
                ("e".into(), Value::Null),
                (
                    "f".into(),
                    Value::List(vec![
                        Value::Int(1),
                        Value::Struct(vec![("g".into(), Value::String("h".into()))])
                    ])
                ),
            ])
        );
    }

    #[test]
    fn big_integers_stay_exact() {
        assert_eq!(
            decode(b"18446744073709551615").unwrap(),
            Value::Decimal(18_446_744_073_709_551_615)
        );
        assert_eq!(
            decode(b"9223372036854775807").unwrap(),
            Value::Int(i64::MAX)
        );
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_in_first_position() {
        assert_eq!(
            decode(br#"{"a": 1, "b": 2, "a": 3}"#).unwrap(),
            Value::Struct(vec![
                ("a".into(), Value::Int(3)),
                ("b".into(), Value::Int(2))
            ])
        );
    }

    #[test]
    fn escaped_keys_and_strings_are_unescaped() {
        assert_eq!(
            decode(br#"{"with \"quote\"": "line\nbreak \u00e9"}"#).unwrap(),
            Value::Struct(vec![(
                "with \"quote\"".into(),
                Value::String("line\nbreak \u{e9}".into())
            )])
        );
    }

    #[test]
    fn invalid_json_names_the_position() {
        let err = decode(b"{\"a\": 1,\n \"b\": }").unwrap_err();
        match err {
            DecodeError::Json { line, column, .. } => assert_eq!((line, column), (2, 7)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            decode(b"{} trailing"),
            Err(DecodeError::Json { .. })
        ));
        assert!(matches!(decode(b""), Err(DecodeError::Json { .. })));
    }

    #[test]
    fn large_objects_keep_duplicates_and_order() {
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"k{i}\": {i},"));
        }
        text.push_str("\"k5\": -5, \"k99\": -99}");
        let v = decode(text.as_bytes()).unwrap();
        let Value::Struct(fields) = v else { panic!() };
        assert_eq!(fields.len(), 100);
        assert_eq!(fields[5], ("k5".into(), Value::Int(-5)));
        assert_eq!(fields[99], ("k99".into(), Value::Int(-99)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_json_like_text_never_panics(s in r#"[\[\]{}":,0-9a-z.eE+\- \\]{0,64}"#) {
            let _ = decode(s.as_bytes());
        }
    }
}
