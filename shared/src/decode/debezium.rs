//! The Debezium change envelope (`before`/`after`/`op`/`ts_ms`/`source`), read on top of any
//! decoded value (plain JSON, Connect JSON or Avro).

use super::{DecodeError, Decoded};
use crate::value::{ColumnType, Text, Value};

/// The change operation, stored in the `_cdc_op` column as `c`, `u`, `d` or `r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
    /// A snapshot read.
    Read,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
        }
    }
}

/// One change, unwrapped from its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub op: Op,
    /// The row image: `after` for c/u/r, `before` for d (`Value::Null` when the source sent
    /// no image, e.g. a delete without a before image; the key fills the row then).
    pub row: Value,
    /// The row's declared type, when the envelope had a schema.
    pub row_type: Option<ColumnType>,
    /// Source commit time in microseconds: `source.ts_us`, `source.ts_ms`, else the
    /// envelope's `ts_ms` (connector time) when the source block lacks one.
    pub source_ts_micros: Option<i64>,
    /// The source log position as a string whose lexicographic order is the log order
    /// (see [`log_position`]); `None` when the source block has none.
    pub position: Option<Text>,
}

/// Whether a decoded value looks like a Debezium envelope: a struct with a string `op` and a
/// `before` or `after` field.
pub fn is_envelope(value: &Value) -> bool {
    matches!(value.get("op"), Some(Value::String(_)))
        && (value.get("after").is_some() || value.get("before").is_some())
}

/// Unwraps a Debezium envelope.
pub fn unwrap(decoded: Decoded) -> Result<Change, DecodeError> {
    let Decoded { mut value, schema } = decoded;
    if !matches!(value, Value::Struct(_)) {
        return Err(DecodeError::Debezium(
            "the value is not an object with before/after/op fields".into(),
        ));
    }
    let op = op(value.get("op"))?;
    let image = image_name(op);
    let row = value.take(image).unwrap_or(Value::Null);
    let row_type = match schema {
        Some(ColumnType::Struct(fields)) => fields
            .into_iter()
            .find(|f| &*f.name == image)
            .map(|f| f.ty)
            .filter(|t| matches!(t, ColumnType::Struct(_))),
        _ => None,
    };
    change(
        op,
        row,
        row_type,
        EnvelopeTimes {
            source: value.get("source"),
            ts_us: value.get("ts_us"),
            ts_ms: value.get("ts_ms"),
        },
    )
}

/// The envelope's `op`.
pub(super) fn op(op: Option<&Value>) -> Result<Op, DecodeError> {
    match op {
        Some(Value::String(s)) => op_text(s),
        Some(Value::Null) | None => Err(DecodeError::Debezium("missing field 'op'".into())),
        Some(other) => Err(DecodeError::Debezium(format!(
            "field 'op' must be a string, got {}",
            other.to_json(None)
        ))),
    }
}

/// The op of a string `op` field.
pub(super) fn op_text(text: &str) -> Result<Op, DecodeError> {
    match text {
        "c" => Ok(Op::Create),
        "u" => Ok(Op::Update),
        "d" => Ok(Op::Delete),
        "r" => Ok(Op::Read),
        "t" => Err(DecodeError::Debezium(
            "op 't' (truncate) carries no row; truncate the target table by hand if intended"
                .into(),
        )),
        "m" => Err(DecodeError::Debezium(
            "op 'm' (logical decoding message) carries no row".into(),
        )),
        other => Err(DecodeError::Debezium(format!(
            "unknown op {other:?} (expected c, u, d or r)"
        ))),
    }
}

/// The row image an op carries: `before` for a delete, `after` otherwise.
pub(super) fn image_name(op: Op) -> &'static str {
    if op == Op::Delete { "before" } else { "after" }
}

/// The envelope fields a change's time and log position come from.
pub(super) struct EnvelopeTimes<'v> {
    pub source: Option<&'v Value>,
    pub ts_us: Option<&'v Value>,
    pub ts_ms: Option<&'v Value>,
}

/// The change of `op` with row image `row` (the [`image_name`] field, `Null` when absent):
/// checks the image, then reads the change time and log position. Both envelope readers end
/// here, so they judge envelopes alike.
pub(super) fn change(
    op: Op,
    row: Value,
    row_type: Option<ColumnType>,
    times: EnvelopeTimes<'_>,
) -> Result<Change, DecodeError> {
    let image = image_name(op);
    if !matches!(row, Value::Struct(_) | Value::Null) {
        return Err(DecodeError::Debezium(format!(
            "field '{image}' must be an object or null"
        )));
    }
    if row.is_null() && op != Op::Delete {
        return Err(DecodeError::Debezium(format!(
            "op '{}' without an '{image}' row image",
            op.code()
        )));
    }
    let EnvelopeTimes {
        source,
        ts_us,
        ts_ms,
    } = times;
    // Milliseconds beyond ±292,000 years do not fit microseconds: an error, not a wrap.
    let micros = |field: &str, ms: i64| {
        ms.checked_mul(1000).ok_or_else(|| {
            DecodeError::Debezium(format!("{field} {ms} is out of the timestamp range"))
        })
    };
    let source_ts_micros = if let Some(us) = source.and_then(|s| int_field(s, "ts_us")) {
        Some(us)
    } else if let Some(ms) = source.and_then(|s| int_field(s, "ts_ms")) {
        Some(micros("source.ts_ms", ms)?)
    } else if let Some(us) = ts_us.and_then(|v| int_value(v, Unit::Micros)) {
        Some(us)
    } else if let Some(ms) = ts_ms.and_then(|v| int_value(v, Unit::Millis)) {
        Some(micros("ts_ms", ms)?)
    } else {
        None
    };
    let position = source.and_then(log_position);
    Ok(Change {
        op,
        row,
        row_type,
        source_ts_micros,
        position,
    })
}

/// The unit an integer field is in, by its name (`*_us` are microseconds).
#[derive(Clone, Copy)]
enum Unit {
    Micros,
    Millis,
}

fn int_field(v: &Value, name: &str) -> Option<i64> {
    let unit = if name.ends_with("_us") {
        Unit::Micros
    } else {
        Unit::Millis
    };
    int_value(v.get(name)?, unit)
}

/// An integer field's value; a timestamp (from a typed envelope) is read in `unit`.
fn int_value(v: &Value, unit: Unit) -> Option<i64> {
    match (v, unit) {
        (Value::Int(i), _) => Some(*i),
        (Value::Timestamp(micros), Unit::Micros) => Some(*micros),
        (Value::Timestamp(micros), Unit::Millis) => Some(micros / 1000),
        _ => None,
    }
}

/// A sortable text form of the source log position, by connector:
/// - PostgreSQL `lsn` → `pg:` + 20-digit zero-padded LSN;
/// - MySQL/MariaDB `file`, `pos`, `row` → `mysql:<file>:` + 20-digit pos + `:` + 10-digit row
///   (binlog file names carry a fixed-width sequence number, so they sort);
/// - SQL Server / Db2 `change_lsn` (fixed-width hex) + `event_serial_no`;
/// - Oracle `scn` (+ `commit_scn`) → `ora:` + 40-digit zero-padded SCN.
///
/// Positions of one table always come from one connector, so only like compares with like.
pub fn log_position(source: &Value) -> Option<Text> {
    if let Some(lsn) = int_field(source, "lsn") {
        if let Ok(lsn) = u64::try_from(lsn) {
            // Every change row carries one: the 23 bytes are written on the stack and kept
            // inline in the `Text`, without an allocation.
            let mut out = *b"pg:00000000000000000000";
            out[3..].copy_from_slice(&zero_padded_20(lsn).0);
            return std::str::from_utf8(&out).ok().map(Text::from);
        }
        let mut out = String::with_capacity(24);
        out.push_str("pg:");
        push_zero_padded(&mut out, lsn, 20);
        return Some(out.into());
    }
    if let (Some(Value::String(file)), Some(pos)) = (source.get("file"), int_field(source, "pos")) {
        let row = int_field(source, "row").unwrap_or(0);
        let mut out = String::with_capacity(file.len() + 38);
        out.push_str("mysql:");
        out.push_str(file);
        out.push(':');
        push_zero_padded(&mut out, pos, 20);
        out.push(':');
        push_zero_padded(&mut out, row, 10);
        return Some(out.into());
    }
    if let Some(Value::String(lsn)) = source.get("change_lsn") {
        let serial = int_field(source, "event_serial_no").unwrap_or(0);
        let mut out = String::with_capacity(lsn.len() + 15);
        out.push_str("lsn:");
        out.push_str(lsn);
        out.push(':');
        push_zero_padded(&mut out, serial, 10);
        return Some(out.into());
    }
    if let Some(scn) = source.get("scn") {
        let digits = match scn {
            Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => {
                s.to_string()
            }
            Value::Int(i) => i.to_string(),
            _ => return None,
        };
        return Some(format!("ora:{digits:0>40}").into());
    }
    None
}

/// Appends `n` as `format!("{n:0width$}")` does; every change row carries a position, so the
/// common non-negative case does without the formatting machinery.
fn push_zero_padded(out: &mut String, n: i64, width: usize) {
    if n < 0 {
        use std::fmt::Write as _;
        let _ = write!(out, "{n:0width$}");
        return;
    }
    // The padding up to 20 is already there.
    let (digits, start) = zero_padded_20(n.unsigned_abs());
    for _ in digits.len()..width {
        out.push('0');
    }
    let from = start.min(digits.len().saturating_sub(width));
    out.push_str(std::str::from_utf8(&digits[from..]).unwrap_or_default());
}

/// `n`'s decimal digits right-aligned in 20 zeros (every `u64` fits), and where its digits
/// start (`0` has one digit).
fn zero_padded_20(n: u64) -> ([u8; 20], usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    (digits, start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::json;

    fn change(text: &str) -> Result<Change, DecodeError> {
        unwrap(Decoded::untyped(json::decode(text.as_bytes()).unwrap()))
    }

    #[test]
    fn update_takes_the_after_image_and_source_time() {
        let c = change(
            r#"{"before": {"id": 1, "n": "a"}, "after": {"id": 1, "n": "b"}, "op": "u",
                "ts_ms": 1700000000999, "source": {"ts_ms": 1700000000123, "lsn": 2456}}"#,
        )
        .unwrap();
        assert_eq!(c.op, Op::Update);
        assert_eq!(c.row.get("n"), Some(&Value::String("b".into())));
        assert_eq!(c.source_ts_micros, Some(1_700_000_000_123_000));
        assert_eq!(c.position.as_deref(), Some("pg:00000000000000002456"));
    }

    #[test]
    fn delete_takes_the_before_image() {
        let c = change(r#"{"before": {"id": 7}, "after": null, "op": "d", "ts_ms": 5}"#).unwrap();
        assert_eq!(c.op, Op::Delete);
        assert_eq!(c.row.get("id"), Some(&Value::Int(7)));
        assert_eq!(c.source_ts_micros, Some(5000));
    }

    #[test]
    fn a_change_time_beyond_the_timestamp_range_is_an_error_not_a_wrap() {
        for (text, field) in [
            (
                r#"{"op": "c", "after": {"id": 1}, "source": {"ts_ms": 9223372036854776}}"#,
                "source.ts_ms",
            ),
            (
                r#"{"op": "c", "after": {"id": 1}, "ts_ms": -9223372036854776}"#,
                "ts_ms",
            ),
        ] {
            let value = crate::decode::json::decode(text.as_bytes()).unwrap();
            let err = unwrap(Decoded::untyped(value)).unwrap_err().to_string();
            assert!(
                err.contains(field) && err.contains("out of the timestamp range"),
                "{err}"
            );
        }
        let fine = crate::decode::json::decode(
            br#"{"op": "c", "after": {"id": 1}, "source": {"ts_ms": 9223372036854}}"#,
        )
        .unwrap();
        assert_eq!(
            unwrap(Decoded::untyped(fine)).unwrap().source_ts_micros,
            Some(9_223_372_036_854_000)
        );
    }

    #[test]
    fn postgres_positions_are_the_zero_padded_lsn() {
        for lsn in [
            0,
            1,
            9,
            10,
            24_000_120,
            10i64.pow(18),
            i64::MAX,
            -1,
            i64::MIN,
        ] {
            let source = Value::Struct(vec![("lsn".into(), Value::Int(lsn))]);
            let position = log_position(&source).unwrap();
            assert_eq!(position, format!("pg:{lsn:020}"), "{lsn}");
            if lsn >= 0 {
                assert!(!position.is_heap_allocated(), "{lsn}");
            }
        }
    }

    #[test]
    fn zero_padding_matches_the_standard_formatting() {
        let mut values = vec![0, 1, 9, 10, 99, 1_000_000_007, i64::MAX, -1, -42, i64::MIN];
        values.extend((0..19).map(|e| 10i64.pow(e)));
        values.extend((1..19).map(|e| 10i64.pow(e) - 1));
        for n in values {
            for width in [0, 1, 10, 20, 25] {
                let mut out = String::from("x");
                push_zero_padded(&mut out, n, width);
                assert_eq!(out, format!("x{n:0width$}"), "{n} width {width}");
            }
        }
    }

    #[test]
    fn mysql_positions_sort_in_log_order() {
        let pos = |file: &str, pos: i64| {
            let src =
                json::decode(format!(r#"{{"file": "{file}", "pos": {pos}, "row": 0}}"#).as_bytes())
                    .unwrap();
            log_position(&src).unwrap()
        };
        assert!(pos("mysql-bin.000003", 154) < pos("mysql-bin.000003", 1540));
        assert!(pos("mysql-bin.000003", 99999) < pos("mysql-bin.000004", 4));
    }

    #[test]
    fn envelope_errors_name_the_problem() {
        let e = change(r#"{"after": {"id": 1}, "op": "t"}"#).unwrap_err();
        assert!(e.to_string().contains("truncate"), "{e}");
        let e = change(r#"{"after": {"id": 1}, "op": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown op"), "{e}");
        let e = change(r#"{"after": null, "op": "c"}"#).unwrap_err();
        assert!(e.to_string().contains("without an 'after'"), "{e}");
        let e = change(r#"{"after": 5, "op": "c"}"#).unwrap_err();
        assert!(e.to_string().contains("must be an object"), "{e}");
    }

    #[test]
    fn detects_envelopes() {
        assert!(is_envelope(
            &json::decode(br#"{"op": "c", "after": {}}"#).unwrap()
        ));
        assert!(!is_envelope(
            &json::decode(br#"{"op": 1, "after": {}}"#).unwrap()
        ));
        assert!(!is_envelope(&json::decode(br#"{"id": 1}"#).unwrap()));
    }
}
