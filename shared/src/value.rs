//! The decoded-value model every decoder produces and the encoder consumes.
//!
//! A record's payload, whatever its wire format (JSON, Kafka Connect JSON, Avro), is decoded
//! into a [`Value`] tree. Formats that carry a schema (Connect, Avro) also yield a
//! [`ColumnType`]; plain JSON gets its type inferred from the values of the whole batch
//! ([`ColumnType::infer`] and [`ColumnType::merge`]).
//!
//! Units are fixed so that every decoder agrees: dates are days since the Unix epoch, times of
//! day are microseconds since midnight, timestamps are microseconds since the Unix epoch in UTC,
//! decimals are unscaled `i128` integers whose scale is given by their [`ColumnType::Decimal`].

use std::fmt::Write as _;
use std::sync::Arc;

/// Largest decimal precision Delta Lake (and Parquet's `FIXED_LEN_BYTE_ARRAY(16)`) can hold.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// One decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every integer width; the column type says whether it is stored as 32 or 64 bits.
    Int(i64),
    Float(f64),
    /// Unscaled value; the scale is the one of the decimal's [`ColumnType::Decimal`].
    Decimal(i128),
    String(Text),
    Bytes(Box<[u8]>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
    List(Vec<Value>),
    /// Fields in the order the source gave them.
    Struct(Vec<(FieldName, Value)>),
}

/// The text of a string value. Texts of up to 24 bytes are kept inline, in the `Value`
/// itself (which is 32 bytes anyway, for `Decimal`'s `i128`): most column values are short
/// (codes, statuses, amounts, e-mail addresses), and each took an allocation and a free.
pub type Text = compact_str::CompactString;

/// The name of a struct field or row column. Shared, not owned: every record of a table
/// repeats the same names, so decoders hand out clones of one allocation (a schema's field
/// names, or the JSON reader's recent keys) instead of allocating each name per record.
pub type FieldName = Arc<str>;

/// Whether two field names are the same: by pointer first (the names of a table's records
/// share their allocations), then by text. `Arc<str>`'s own `==` compares the text every
/// time (the standard library's pointer shortcut applies to sized types only), a `memcmp`
/// call per column per row.
#[inline]
pub fn same_name(a: &FieldName, b: &FieldName) -> bool {
    Arc::ptr_eq(a, b) || same_text(a.as_bytes(), b.as_bytes())
}

/// Byte equality for short texts such as field names, without a `memcmp` call: up to 16
/// bytes are compared as two overlapping 8- or 4-byte words.
#[inline]
pub fn same_text(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => word32(a, 0) == word32(b, 0) && word32(a, n - 4) == word32(b, n - 4),
        8..=16 => word64(a, 0) == word64(b, 0) && word64(a, n - 8) == word64(b, n - 8),
        _ => a == b,
    }
}

/// The four bytes of `b` at `at` (the caller checked the length).
#[inline]
fn word32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// The eight bytes of `b` at `at` (the caller checked the length).
#[inline]
fn word64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

/// A named, typed column or struct field. Every column is nullable: CDC rows (deletes with
/// only a key, schema changes mid-stream) routinely omit values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Arc<str>,
    pub ty: ColumnType,
}

impl Field {
    pub fn new(name: impl Into<Arc<str>>, ty: ColumnType) -> Self {
        Field {
            name: name.into(),
            ty,
        }
    }
}

/// The type of a column, in the vocabulary Delta Lake understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// Only nulls were seen: the type is unknown. Encoded as STRING when nothing better is
    /// learnt in the batch.
    Null,
    Boolean,
    Int32,
    Int64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    String,
    Binary,
    Date,
    /// Time of day, microseconds.
    Time,
    /// Instant, microseconds, UTC.
    Timestamp,
    List(Box<ColumnType>),
    Struct(Vec<Field>),
    /// A nested value kept as its JSON text (the `json` nested-value mode, or a column whose
    /// values disagree in shape). Stored as STRING.
    Json,
}

impl ColumnType {
    /// The narrowest type that holds `value`, used for schema-less formats (plain JSON).
    pub fn infer(value: &Value) -> ColumnType {
        match value {
            Value::Null => ColumnType::Null,
            Value::Bool(_) => ColumnType::Boolean,
            Value::Int(_) => ColumnType::Int64,
            Value::Float(_) => ColumnType::Float64,
            Value::Decimal(_) => ColumnType::Decimal {
                precision: MAX_DECIMAL_PRECISION,
                scale: 0,
            },
            Value::String(_) => ColumnType::String,
            Value::Bytes(_) => ColumnType::Binary,
            Value::Date(_) => ColumnType::Date,
            Value::Time(_) => ColumnType::Time,
            Value::Timestamp(_) => ColumnType::Timestamp,
            Value::List(items) => {
                let mut element = ColumnType::Null;
                for item in items {
                    element = element.merge(&ColumnType::infer(item));
                }
                ColumnType::List(Box::new(element))
            }
            Value::Struct(fields) => ColumnType::Struct(
                fields
                    .iter()
                    .map(|(name, v)| Field::new(&**name, ColumnType::infer(v)))
                    .collect(),
            ),
        }
    }

    /// The type that holds values of both `self` and `other` without losing any of them.
    ///
    /// Safe widenings are applied (int32→int64, float32→float64, int→float64, decimal
    /// precision and scale grow to hold both); structs merge field by field (union of fields,
    /// first-seen order); anything else falls back to [`ColumnType::String`] for scalars or
    /// [`ColumnType::Json`] when a nested value is involved, so a conflict never fails a batch
    /// and never drops a value (see DESIGN.md, semantics 5).
    pub fn merge(&self, other: &ColumnType) -> ColumnType {
        use ColumnType as T;
        match (self, other) {
            (a, b) if a == b => a.clone(),
            (T::Null, x) | (x, T::Null) => x.clone(),
            (T::Int32, T::Int64) | (T::Int64, T::Int32) => T::Int64,
            (T::Float32, T::Float64) | (T::Float64, T::Float32) => T::Float64,
            (T::Int32 | T::Int64, T::Float32 | T::Float64)
            | (T::Float32 | T::Float64, T::Int32 | T::Int64) => T::Float64,
            (
                T::Decimal {
                    precision: p1,
                    scale: s1,
                },
                T::Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => {
                let scale = (*s1).max(*s2);
                let int_digits =
                    (i16::from(*p1) - i16::from(*s1)).max(i16::from(*p2) - i16::from(*s2));
                let precision = int_digits + i16::from(scale);
                if precision > i16::from(MAX_DECIMAL_PRECISION) {
                    T::String
                } else {
                    T::Decimal {
                        precision: precision as u8,
                        scale,
                    }
                }
            }
            (T::Int32 | T::Int64, T::Decimal { precision, scale })
            | (T::Decimal { precision, scale }, T::Int32 | T::Int64) => {
                // An int64 needs 19 integer digits.
                T::Decimal {
                    precision: 19,
                    scale: 0,
                }
                .merge(&T::Decimal {
                    precision: *precision,
                    scale: *scale,
                })
            }
            (T::List(a), T::List(b)) => match a.merge(b) {
                T::Json => T::Json,
                element => T::List(Box::new(element)),
            },
            (T::Struct(a), T::Struct(b)) => T::Struct(merge_fields(a, b)),
            (a, b) if a.is_nested() || b.is_nested() || *a == T::Json || *b == T::Json => T::Json,
            _ => T::String,
        }
    }

    pub fn is_nested(&self) -> bool {
        matches!(self, ColumnType::List(_) | ColumnType::Struct(_))
    }

    /// The same type with every nested part (struct, list) replaced by [`ColumnType::Json`]:
    /// the `json` nested-value mode.
    pub fn flatten_nested(&self) -> ColumnType {
        if self.is_nested() {
            ColumnType::Json
        } else {
            self.clone()
        }
    }

    /// Databricks SQL spelling of the type, e.g. `DECIMAL(10,2)` or `STRUCT<a: BIGINT>`.
    pub fn sql_name(&self) -> String {
        match self {
            ColumnType::Null | ColumnType::String | ColumnType::Json => "STRING".into(),
            ColumnType::Boolean => "BOOLEAN".into(),
            ColumnType::Int32 => "INT".into(),
            ColumnType::Int64 => "BIGINT".into(),
            ColumnType::Float32 => "FLOAT".into(),
            ColumnType::Float64 => "DOUBLE".into(),
            ColumnType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            ColumnType::Binary => "BINARY".into(),
            ColumnType::Date => "DATE".into(),
            // Delta has no TIME type: times of day are stored as microseconds since midnight.
            ColumnType::Time => "BIGINT".into(),
            ColumnType::Timestamp => "TIMESTAMP".into(),
            ColumnType::List(element) => format!("ARRAY<{}>", element.sql_name()),
            ColumnType::Struct(fields) => {
                let mut out = String::from("STRUCT<");
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(
                        out,
                        "{}: {}",
                        crate::sql::quote_ident(&f.name),
                        f.ty.sql_name()
                    );
                }
                out.push('>');
                out
            }
        }
    }
}

/// Field-wise union of two struct types: fields of `a` in order, then the new ones of `b`.
pub fn merge_fields(a: &[Field], b: &[Field]) -> Vec<Field> {
    let mut out: Vec<Field> = a.to_vec();
    for field in b {
        match out.iter_mut().find(|f| f.name == field.name) {
            Some(existing) => existing.ty = existing.ty.merge(&field.ty),
            None => out.push(field.clone()),
        }
    }
    out
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The field `name` of a struct value, if this is a struct and has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| &**n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Takes the field `name` out of a struct value, leaving `Null` in its place.
    pub fn take(&mut self, name: &str) -> Option<Value> {
        match self {
            Value::Struct(fields) => fields
                .iter_mut()
                .find(|(n, _)| &**n == name)
                .map(|(_, v)| std::mem::replace(v, Value::Null)),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Appends the JSON text of this value to `out`. `ty` (when known) gives decimals their
    /// scale; without it a decimal is written as its unscaled integer.
    ///
    /// Bytes become base64 strings, dates ISO `yyyy-mm-dd`, timestamps RFC 3339 with
    /// microseconds and `Z`, times `HH:MM:SS.ffffff`, decimals exact decimal strings.
    pub fn write_json(&self, ty: Option<&ColumnType>, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => {
                if f.is_finite() {
                    let _ = write!(out, "{f}");
                } else {
                    // JSON has no NaN or infinity: keep them as strings rather than lose them.
                    let _ = write!(out, "\"{f}\"");
                }
            }
            Value::Decimal(unscaled) => {
                let scale = match ty {
                    Some(ColumnType::Decimal { scale, .. }) => *scale,
                    _ => 0,
                };
                out.push('"');
                out.push_str(&format_decimal(*unscaled, scale));
                out.push('"');
            }
            Value::String(s) => write_json_string(s, out),
            Value::Bytes(b) => {
                use base64::Engine as _;
                out.push('"');
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
                out.push('"');
            }
            Value::Date(days) => {
                out.push('"');
                out.push_str(&format_date(*days));
                out.push('"');
            }
            Value::Time(micros) => {
                out.push('"');
                out.push_str(&format_time(*micros));
                out.push('"');
            }
            Value::Timestamp(micros) => {
                out.push('"');
                out.push_str(&format_timestamp(*micros));
                out.push('"');
            }
            Value::List(items) => {
                let element = match ty {
                    Some(ColumnType::List(e)) => Some(&**e),
                    _ => None,
                };
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(element, out);
                }
                out.push(']');
            }
            Value::Struct(fields) => {
                out.push('{');
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(name, out);
                    out.push(':');
                    let field_ty = match ty {
                        Some(ColumnType::Struct(fs)) => {
                            fs.iter().find(|f| *f.name == **name).map(|f| &f.ty)
                        }
                        _ => None,
                    };
                    v.write_json(field_ty, out);
                }
                out.push('}');
            }
        }
    }

    /// The JSON text of this value (see [`Value::write_json`]).
    pub fn to_json(&self, ty: Option<&ColumnType>) -> String {
        let mut out = String::new();
        self.write_json(ty, &mut out);
        out
    }

    /// The value as text for a STRING column that holds values of conflicting types: strings
    /// stay as they are, everything else becomes its JSON text.
    pub fn to_text(&self, ty: Option<&ColumnType>) -> String {
        match self {
            Value::String(s) => s.to_string(),
            Value::Decimal(_) | Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => {
                let json = self.to_json(ty);
                json.trim_matches('"').to_string()
            }
            other => other.to_json(ty),
        }
    }
}

/// Writes `s` as a JSON string literal (quoted and escaped).
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Exact decimal text of `unscaled × 10^-scale`.
pub fn format_decimal(unscaled: i128, scale: i8) -> String {
    if scale <= 0 {
        let mut s = unscaled.to_string();
        for _ in 0..(-i32::from(scale)) {
            s.push('0');
        }
        return s;
    }
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale - digits.len() + 1), digits)
    } else {
        digits
    };
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    format!("{}{int_part}.{frac_part}", if negative { "-" } else { "" })
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

pub fn format_date(days: i32) -> String {
    chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

pub fn format_time(micros: i64) -> String {
    let micros = micros.rem_euclid(MICROS_PER_DAY);
    let secs = micros / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        micros % 1_000_000
    )
}

pub fn format_timestamp(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_else(|| micros.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_live_inside_a_value_of_32_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), 32);
        let short = Text::from("user1234@example.com");
        assert!(!short.is_heap_allocated());
        assert!(!Text::from("a".repeat(24)).is_heap_allocated());
        assert!(Text::from("a".repeat(25)).is_heap_allocated());
        assert_eq!(
            Value::String(short),
            Value::String("user1234@example.com".into())
        );
    }

    #[test]
    fn merge_widens_safely() {
        use ColumnType as T;
        assert_eq!(T::Int32.merge(&T::Int64), T::Int64);
        assert_eq!(T::Int64.merge(&T::Float64), T::Float64);
        assert_eq!(T::Null.merge(&T::Date), T::Date);
        assert_eq!(
            T::Decimal {
                precision: 10,
                scale: 2
            }
            .merge(&T::Decimal {
                precision: 12,
                scale: 4
            }),
            T::Decimal {
                precision: 12,
                scale: 4
            }
        );
        assert_eq!(
            T::Decimal {
                precision: 5,
                scale: 4
            }
            .merge(&T::Decimal {
                precision: 10,
                scale: 0
            }),
            T::Decimal {
                precision: 14,
                scale: 4
            }
        );
        assert_eq!(T::Boolean.merge(&T::Int64), T::String);
        assert_eq!(T::Int64.merge(&T::Struct(vec![])), T::Json);
        assert_eq!(
            T::List(Box::new(T::Int32)).merge(&T::List(Box::new(T::Int64))),
            T::List(Box::new(T::Int64))
        );
    }

    #[test]
    fn struct_merge_is_a_union_in_first_seen_order() {
        use ColumnType as T;
        let a = T::Struct(vec![Field::new("id", T::Int64), Field::new("x", T::Null)]);
        let b = T::Struct(vec![
            Field::new("y", T::String),
            Field::new("x", T::Boolean),
        ]);
        assert_eq!(
            a.merge(&b),
            T::Struct(vec![
                Field::new("id", T::Int64),
                Field::new("x", T::Boolean),
                Field::new("y", T::String),
            ])
        );
    }

    #[test]
    fn decimals_format_exactly() {
        assert_eq!(format_decimal(12345, 2), "123.45");
        assert_eq!(format_decimal(-5, 3), "-0.005");
        assert_eq!(format_decimal(7, 0), "7");
        assert_eq!(format_decimal(7, -2), "700");
    }

    #[test]
    fn json_text_of_nested_values() {
        let v = Value::Struct(vec![
            ("a\"b".into(), Value::Int(1)),
            ("d".into(), Value::Decimal(1050)),
            (
                "l".into(),
                Value::List(vec![Value::Bool(true), Value::Null]),
            ),
            ("t".into(), Value::Timestamp(1_700_000_000_123_456)),
        ]);
        let ty = ColumnType::Struct(vec![Field::new(
            "d",
            ColumnType::Decimal {
                precision: 10,
                scale: 2,
            },
        )]);
        assert_eq!(
            v.to_json(Some(&ty)),
            r#"{"a\"b":1,"d":"10.50","l":[true,null],"t":"2023-11-14T22:13:20.123456Z"}"#
        );
    }

    #[test]
    fn same_text_agrees_with_slice_equality_at_every_length() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(same_text(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_text(&a, &b), "{n} {at}");
            }
            assert!(!same_text(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
        let (x, y): (FieldName, FieldName) = ("customer_id".into(), "customer_id".into());
        assert!(same_name(&x, &y) && same_name(&x, &x.clone()));
        assert!(!same_name(&x, &"customer_ix".into()));
    }
}
