//! Kafka Connect JSON: what `JsonConverter` writes with `schemas.enable=true`,
//! `{"schema": {...}, "payload": ...}`.
//!
//! The schema becomes a [`ColumnType`] ([`column_type`]) and the payload a [`Value`] of that
//! type. Connect and Debezium logical types (by the schema's `name`) map onto our units:
//!
//! | schema | column type | payload |
//! |---|---|---|
//! | `int8`/`int16`/`int32`, `int64` | Int32, Int64 | range-checked integer |
//! | `float32`, `float64` | Float32, Float64 | number, or `"NaN"`/`"Infinity"`/`"-Infinity"` |
//! | `boolean`, `string`, `bytes` | Boolean, String, Binary | bytes are base64 |
//! | `array` (`items`) | List | |
//! | `map` (`keys`, `values`) | Json | object, or array of `[key, value]` pairs; a Struct of the entries (key text as name), which the encoder writes as JSON object text |
//! | `struct` (`fields`) | Struct, in field order | missing fields are null, unknown keys ignored |
//! | `…connect.data.Decimal` | Decimal(precision, scale) | base64 two's complement, or a JSON number (`decimal.format=NUMERIC`) |
//! | `…connect.data.Date`, `io.debezium.time.Date` | Date | int32 days |
//! | `…connect.data.Time`, `io.debezium.time.Time` | Time | int32 ms |
//! | `io.debezium.time.MicroTime`, `NanoTime` | Time | int64 µs, ns |
//! | `…connect.data.Timestamp`, `io.debezium.time.Timestamp` | Timestamp | int64 ms (UTC) |
//! | `io.debezium.time.MicroTimestamp`, `NanoTimestamp` | Timestamp | int64 µs, ns |
//! | `io.debezium.time.ZonedTimestamp` | Timestamp | ISO-8601 string with offset |
//! | `io.debezium.data.VariableScaleDecimal` | String | `{scale, value}` → exact decimal text |
//!
//! A Decimal whose precision exceeds 38 (or whose scale does not fit) becomes a String holding
//! the exact decimal text; a negative scale is folded into the unscaled value (scale 0). Any
//! other name (`ZonedTime`, `Year`, `Json`, `Uuid`, `Enum`, `EnumSet`, `Xml`, `Bits`,
//! `Interval`, `MicroDuration`, ...) follows its primitive type, and so does a known name on
//! an unexpected primitive type. A null is accepted for every field, optional or not, and
//! stays null: a schema's `default` is not substituted (in a change event the null is the
//! row's value).
//!
//! `"schema": null` is a schema-less record: the payload is converted like plain JSON and
//! [`Decoded::schema`] is `None`.
//!
//! Performance: the payload is converted straight from the JSON tokens, driven by the
//! compiled schema, with no intermediate tree. Compiled schemas are kept in a small per-thread
//! cache keyed by the schema's JSON text, so records that share a schema (the usual case in a
//! batch) compile it once; and when a record has `JsonConverter`'s exact layout
//! (`{"schema":...,"payload":...}`, no whitespace) and its schema text is cached, the schema
//! is compared byte for byte instead of being parsed at all. Debezium schemas are often most
//! of a record's bytes, so this is the main saving. Other layouts (pretty-printed, `payload`
//! first, extra keys) take the general path, in one pass when `schema` comes first.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::rc::Rc;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;

use super::json::ObjectMembers;
use super::{DecodeError, Decoded};
use crate::value::{ColumnType, Field, FieldName, MAX_DECIMAL_PRECISION, Value, format_decimal};

const CONNECT_DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const CONNECT_DATE: &str = "org.apache.kafka.connect.data.Date";
const CONNECT_TIME: &str = "org.apache.kafka.connect.data.Time";
const CONNECT_TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
const DBZ_DATE: &str = "io.debezium.time.Date";
const DBZ_TIME: &str = "io.debezium.time.Time";
const DBZ_MICRO_TIME: &str = "io.debezium.time.MicroTime";
const DBZ_NANO_TIME: &str = "io.debezium.time.NanoTime";
const DBZ_TIMESTAMP: &str = "io.debezium.time.Timestamp";
const DBZ_MICRO_TIMESTAMP: &str = "io.debezium.time.MicroTimestamp";
const DBZ_NANO_TIMESTAMP: &str = "io.debezium.time.NanoTimestamp";
const DBZ_ZONED_TIMESTAMP: &str = "io.debezium.time.ZonedTimestamp";
const DBZ_VARIABLE_SCALE_DECIMAL: &str = "io.debezium.data.VariableScaleDecimal";

/// Largest |scale| accepted for decimals rendered as text: bounds the text's length.
const MAX_TEXT_SCALE: i64 = 10_000;
/// Largest two's-complement value (bytes) rendered as decimal text: bounds the work.
const MAX_BIG_DECIMAL_BYTES: usize = 16 * 1024;
/// Compiled schemas kept per thread (a batch interleaves key and value schemas, and topics).
const CACHE_ENTRIES: usize = 16;
/// Schemas longer than this are compiled per record instead of cached.
const MAX_CACHED_SCHEMA_LEN: usize = 1 << 20;

/// Base64 as Jackson writes it (standard alphabet); padding is optional when reading.
const BASE64: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;

/// Decodes one Kafka Connect JSON record (`{"schema": ..., "payload": ...}`).
///
/// JSON syntax errors give [`DecodeError::Json`]; a missing `schema` or `payload`, a schema
/// that is not a valid Connect schema, or a payload that does not match its schema give
/// [`DecodeError::Connect`] naming the field path (e.g. `after.amount: expected base64 bytes
/// for Decimal, got boolean`).
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    match decode_known_layout(bytes) {
        Some(decoded) => Ok(decoded),
        None => decode_any_layout(bytes),
    }
}

/// The fast path for `JsonConverter`'s own layout, `{"schema":S,"payload":P}` with no
/// whitespace around the keys, when `S` is `null` or byte for byte a schema in the cache:
/// the schema's text is compared, not parsed, and only `P` is parsed. `None` (nothing
/// cached, another layout, or any error) sends the record through the general path, which
/// also gives errors their exact message and position.
fn decode_known_layout(bytes: &[u8]) -> Option<Decoded> {
    let rest = bytes.strip_prefix(b"{\"schema\":")?;
    let (compiled, rest) = match rest.strip_prefix(b"null") {
        Some(rest) => (None, rest),
        None => {
            let (len, compiled) = cached_prefix(rest)?;
            (Some(compiled), &rest[len..])
        }
    };
    let payload = rest.strip_prefix(b",\"payload\":")?;
    let payload = payload.trim_ascii_end().strip_suffix(b"}")?;
    let ctx = Ctx::default();
    let node = compiled.as_deref().map_or(&ANY, |c| &c.node);
    // Validating the UTF-8 once is cheaper than string by string.
    let mut de = serde_json::Deserializer::from_str(std::str::from_utf8(payload).ok()?);
    let value = Seed::node(node, &ctx).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(Decoded {
        value,
        schema: compiled.map(|c| c.ty.clone()),
    })
}

fn decode_any_layout(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let ctx = Ctx::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let envelope = (&mut de)
        .deserialize_any(EnvelopeVisitor { ctx: &ctx })
        .and_then(|envelope| de.end().map(|()| envelope))
        .map_err(|e| ctx.error(&e))?;
    let (schema, payload) = match (envelope.schema, envelope.payload) {
        (Some(schema), Some(payload)) => (schema, payload),
        (None, None) => return Err(connect("missing \"schema\" and \"payload\" keys")),
        (None, Some(_)) => {
            return Err(connect(
                "missing \"schema\" key (is the converter's schemas.enable true?)",
            ));
        }
        (Some(_), None) => return Err(connect("missing \"payload\" key")),
    };
    let value = match payload {
        Payload::Done(value) => value,
        // `payload` came before `schema`: convert it now that the schema is known.
        Payload::Raw(raw) => {
            let node = schema.as_deref().map_or(&ANY, |c| &c.node);
            let mut de = serde_json::Deserializer::from_str(raw.get());
            Seed {
                target: Target::Node(node),
                ctx: &ctx,
            }
            .deserialize(&mut de)
            .map_err(|e| ctx.error(&e))?
        }
    };
    Ok(Decoded {
        value,
        schema: schema.map(|c| c.ty.clone()),
    })
}

/// The column type of a Connect schema (the value of an envelope's `schema` key).
pub fn column_type(schema: &serde_json::Value) -> Result<ColumnType, DecodeError> {
    compile(schema, "schema")
        .map(|(_, ty)| ty)
        .map_err(DecodeError::Connect)
}

fn connect(message: &str) -> DecodeError {
    DecodeError::Connect(message.to_string())
}

// ---------------------------------------------------------------------------------------------
// Schemas

/// A schema compiled for converting payloads.
struct Compiled {
    node: Node,
    ty: ColumnType,
}

/// How one payload value is converted.
enum Node {
    /// Schema-less: plain JSON.
    Any,
    Int {
        /// 8, 16, 32 or 64: the declared width, checked on every value.
        bits: u32,
        conv: IntConv,
        /// The logical type's short name, for messages.
        logical: Option<&'static str>,
    },
    Float(&'static str),
    Bool,
    Str,
    Bytes,
    Decimal(DecimalSpec),
    ZonedTimestamp,
    VariableScaleDecimal,
    Array(Box<Node>),
    Map(Box<MapSpec>),
    Struct(StructSpec),
}

#[derive(Clone, Copy)]
enum IntConv {
    Plain,
    Date,
    TimeMul(i64),
    TimeDiv(i64),
    TimestampMul(i64),
    TimestampDiv(i64),
}

#[derive(Clone, Copy)]
struct DecimalSpec {
    /// The schema's scale: the one of the payload's unscaled value.
    scale: i32,
    /// The column's precision and scale (`scale` clamped at 0, precision grown to hold it).
    precision: u32,
    col_scale: i32,
    /// Precision above 38: kept as exact decimal text.
    as_text: bool,
}

/// A map's value is a [`Value::Struct`] of its entries in payload order (keys as names), the
/// JSON object the encoder writes for a [`ColumnType::Json`] column.
struct MapSpec {
    keys: Node,
    values: Node,
    key_ty: ColumnType,
    value_ty: ColumnType,
    /// Decimals in the values are turned into their exact text, since the JSON text of a
    /// Json column is written without the types that carry their scales.
    value_has_decimal: bool,
}

struct StructSpec {
    fields: Box<[(FieldName, Node)]>,
    /// Name → position, for wide structs whose payload keys come out of order.
    index: Option<HashMap<FieldName, usize>>,
}

impl StructSpec {
    fn find(&self, name: &str, hint: usize) -> Option<usize> {
        if let Some((field, _)) = self.fields.get(hint)
            && **field == *name
        {
            return Some(hint);
        }
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.fields.iter().position(|(field, _)| **field == *name),
        }
    }
}

static ANY: Node = Node::Any;

impl Node {
    fn describe(&self) -> String {
        match self {
            Node::Any => "a JSON value".into(),
            Node::Int { bits, logical, .. } => match logical {
                Some(name) => format!("int{bits} for {name}"),
                None => format!("int{bits}"),
            },
            Node::Float(name) => (*name).into(),
            Node::Bool => "boolean".into(),
            Node::Str => "string".into(),
            Node::Bytes => "base64 bytes".into(),
            Node::Decimal(_) => "base64 bytes for Decimal".into(),
            Node::ZonedTimestamp => "ISO-8601 string for ZonedTimestamp".into(),
            Node::VariableScaleDecimal => "{scale, value} for VariableScaleDecimal".into(),
            Node::Array(_) => "array".into(),
            Node::Map(_) => "map (object or array of [key, value] pairs)".into(),
            Node::Struct(_) => "struct (object)".into(),
        }
    }
}

/// Compiles a schema; `path` names it in messages (`schema.after.amount`).
fn compile(schema: &serde_json::Value, path: &str) -> Result<(Node, ColumnType), String> {
    let Some(obj) = schema.as_object() else {
        return Err(format!("{path}: schema is not an object"));
    };
    let Some(ty) = obj.get("type").and_then(serde_json::Value::as_str) else {
        return Err(format!("{path}: schema has no \"type\" string"));
    };
    if let Some(name) = obj.get("name").and_then(serde_json::Value::as_str)
        && let Some(compiled) = compile_logical(ty, name, obj, path)?
    {
        return Ok(compiled);
    }
    let int = |bits, ty| {
        let node = Node::Int {
            bits,
            conv: IntConv::Plain,
            logical: None,
        };
        Ok((node, ty))
    };
    match ty {
        "int8" => int(8, ColumnType::Int32),
        "int16" => int(16, ColumnType::Int32),
        "int32" => int(32, ColumnType::Int32),
        "int64" => int(64, ColumnType::Int64),
        "float32" => Ok((Node::Float("float32"), ColumnType::Float32)),
        "float64" => Ok((Node::Float("float64"), ColumnType::Float64)),
        "boolean" => Ok((Node::Bool, ColumnType::Boolean)),
        "string" => Ok((Node::Str, ColumnType::String)),
        "bytes" => Ok((Node::Bytes, ColumnType::Binary)),
        "array" => {
            let items = obj
                .get("items")
                .ok_or_else(|| format!("{path}: array schema has no \"items\""))?;
            let (node, ty) = compile(items, &format!("{path}[]"))?;
            Ok((Node::Array(Box::new(node)), ColumnType::List(Box::new(ty))))
        }
        "map" => {
            let part = |key: &str| {
                let schema = obj
                    .get(key)
                    .ok_or_else(|| format!("{path}: map schema has no \"{key}\""))?;
                compile(schema, &format!("{path}{{{key}}}"))
            };
            let (keys, key_ty) = part("keys")?;
            let (values, value_ty) = part("values")?;
            let spec = MapSpec {
                keys,
                values,
                value_has_decimal: has_decimal(&value_ty),
                key_ty,
                value_ty,
            };
            Ok((Node::Map(Box::new(spec)), ColumnType::Json))
        }
        "struct" => {
            let Some(entries) = obj.get("fields").and_then(serde_json::Value::as_array) else {
                return Err(format!("{path}: struct schema has no \"fields\" array"));
            };
            let mut nodes = Vec::with_capacity(entries.len());
            let mut fields = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let Some(name) = entry.get("field").and_then(serde_json::Value::as_str) else {
                    return Err(format!("{path}.fields[{i}]: field has no \"field\" name"));
                };
                let (node, ty) = compile(entry, &format!("{path}.{name}"))?;
                nodes.push((FieldName::from(name), node));
                fields.push(Field::new(name, ty));
            }
            let index = (nodes.len() > 16).then(|| {
                let mut index = HashMap::with_capacity(nodes.len());
                for (i, (name, _)) in nodes.iter().enumerate() {
                    index.entry(name.clone()).or_insert(i);
                }
                index
            });
            let spec = StructSpec {
                fields: nodes.into_boxed_slice(),
                index,
            };
            Ok((Node::Struct(spec), ColumnType::Struct(fields)))
        }
        other => Err(format!("{path}: unknown Connect schema type \"{other}\"")),
    }
}

/// The logical type `name` on primitive `ty`, or `None` to follow the primitive type.
fn compile_logical(
    ty: &str,
    name: &str,
    obj: &serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Result<Option<(Node, ColumnType)>, String> {
    let int = |bits, conv, logical, column| {
        let node = Node::Int {
            bits,
            conv,
            logical: Some(logical),
        };
        Ok(Some((node, column)))
    };
    match (name, ty) {
        (CONNECT_DECIMAL, "bytes") => compile_decimal(obj, path).map(Some),
        (CONNECT_DATE | DBZ_DATE, "int32") => int(32, IntConv::Date, "Date", ColumnType::Date),
        (CONNECT_TIME | DBZ_TIME, "int32") => {
            int(32, IntConv::TimeMul(1000), "Time", ColumnType::Time)
        }
        (DBZ_MICRO_TIME, "int64") => int(64, IntConv::TimeMul(1), "MicroTime", ColumnType::Time),
        (DBZ_NANO_TIME, "int64") => int(64, IntConv::TimeDiv(1000), "NanoTime", ColumnType::Time),
        (CONNECT_TIMESTAMP | DBZ_TIMESTAMP, "int64") => int(
            64,
            IntConv::TimestampMul(1000),
            "Timestamp",
            ColumnType::Timestamp,
        ),
        (DBZ_MICRO_TIMESTAMP, "int64") => int(
            64,
            IntConv::TimestampMul(1),
            "MicroTimestamp",
            ColumnType::Timestamp,
        ),
        (DBZ_NANO_TIMESTAMP, "int64") => int(
            64,
            IntConv::TimestampDiv(1000),
            "NanoTimestamp",
            ColumnType::Timestamp,
        ),
        (DBZ_ZONED_TIMESTAMP, "string") => Ok(Some((Node::ZonedTimestamp, ColumnType::Timestamp))),
        (DBZ_VARIABLE_SCALE_DECIMAL, "struct") => {
            Ok(Some((Node::VariableScaleDecimal, ColumnType::String)))
        }
        _ => Ok(None),
    }
}

fn compile_decimal(
    obj: &serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Result<(Node, ColumnType), String> {
    let params = obj.get("parameters");
    let param = |key: &str| -> Option<i64> {
        match params?.get(key)? {
            serde_json::Value::String(s) => s.trim().parse().ok(),
            serde_json::Value::Number(n) => n.as_i64(),
            _ => None,
        }
    };
    let scale = param("scale")
        .ok_or_else(|| format!("{path}: Decimal schema has no integer \"scale\" parameter"))?;
    if scale.abs() > MAX_TEXT_SCALE {
        return Err(format!("{path}: Decimal scale {scale} is out of range"));
    }
    let declared = param("connect.decimal.precision")
        .filter(|p| *p > 0)
        .unwrap_or(i64::from(MAX_DECIMAL_PRECISION));
    // A negative scale is folded into the unscaled value; a scale above the precision grows
    // the precision (Delta requires 0 <= scale <= precision).
    let col_scale = scale.max(0);
    let precision = if scale < 0 {
        declared.saturating_add(-scale)
    } else {
        declared.max(scale)
    };
    let as_text = precision > i64::from(MAX_DECIMAL_PRECISION);
    let spec = DecimalSpec {
        scale: scale as i32,
        precision: precision.min(i64::from(MAX_DECIMAL_PRECISION)) as u32,
        col_scale: col_scale as i32,
        as_text,
    };
    let ty = if as_text {
        ColumnType::String
    } else {
        ColumnType::Decimal {
            precision: spec.precision as u8,
            scale: col_scale as i8,
        }
    };
    Ok((Node::Decimal(spec), ty))
}

/// Raw schema text → compiled schema, most recently used first. A cached text is always one
/// complete JSON value, so no cached text is a prefix of another.
type SchemaCache = Vec<(Box<[u8]>, Rc<Compiled>)>;

thread_local! {
    static CACHE: RefCell<SchemaCache> = const { RefCell::new(Vec::new()) };
}

/// The first cache entry whose text `matches`, moved to the front: its text length and
/// compiled schema.
fn cache_find(matches: impl Fn(&[u8]) -> bool) -> Option<(usize, Rc<Compiled>)> {
    CACHE.with_borrow_mut(|cache| {
        let i = cache.iter().position(|(text, _)| matches(text))?;
        if i > 0 {
            cache[..=i].rotate_right(1);
        }
        let (text, compiled) = &cache[0];
        Some((text.len(), Rc::clone(compiled)))
    })
}

/// The cached schema whose text starts `bytes`.
fn cached_prefix(bytes: &[u8]) -> Option<(usize, Rc<Compiled>)> {
    cache_find(|text| bytes.starts_with(text))
}

/// The compiled schema of the raw schema text, from the cache or compiled now.
fn compiled(raw: &str) -> Result<Rc<Compiled>, String> {
    if let Some((_, hit)) = cache_find(|text| text == raw.as_bytes()) {
        return Ok(hit);
    }
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| format!("schema: {e}"))?;
    let (node, ty) = compile(&value, "schema")?;
    let compiled = Rc::new(Compiled { node, ty });
    if raw.len() <= MAX_CACHED_SCHEMA_LEN {
        CACHE.with_borrow_mut(|cache| {
            cache.truncate(CACHE_ENTRIES - 1);
            cache.insert(0, (raw.as_bytes().into(), Rc::clone(&compiled)));
        });
    }
    Ok(compiled)
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Collects what went wrong while serde unwinds, since its errors are opaque: the visitor that
/// finds a mismatch records the message, and each enclosing struct or array adds its segment
/// of the path on the way out. Nothing is allocated unless something fails.
#[derive(Default)]
struct Ctx {
    fail: RefCell<Option<Fail>>,
}

enum Fail {
    Envelope(String),
    /// `path` is innermost first.
    Payload {
        path: Vec<Seg>,
        message: String,
    },
}

enum Seg {
    Field(FieldName),
    Index(usize),
}

impl Ctx {
    fn payload<E: de::Error>(&self, message: String) -> E {
        *self.fail.borrow_mut() = Some(Fail::Payload {
            path: Vec::new(),
            message,
        });
        E::custom("payload does not match its schema")
    }

    fn envelope<E: de::Error>(&self, message: String) -> E {
        *self.fail.borrow_mut() = Some(Fail::Envelope(message));
        E::custom("invalid envelope")
    }

    fn mismatch<E: de::Error>(&self, node: &Node, got: &str) -> E {
        self.payload(format!("expected {}, got {got}", node.describe()))
    }

    /// Adds `seg` to the path of a payload error coming out of `result`.
    fn at<T, E>(&self, seg: impl FnOnce() -> Seg, result: Result<T, E>) -> Result<T, E> {
        if result.is_err()
            && let Some(Fail::Payload { path, .. }) = self.fail.borrow_mut().as_mut()
        {
            path.push(seg());
        }
        result
    }

    fn error(&self, e: &serde_json::Error) -> DecodeError {
        match self.fail.borrow_mut().take() {
            Some(Fail::Envelope(message)) => DecodeError::Connect(message),
            Some(Fail::Payload { path, message }) => {
                DecodeError::Connect(format!("{}: {message}", path_text(&path)))
            }
            None => {
                let detail = strip_position(e);
                match e.classify() {
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                        DecodeError::Json {
                            line: e.line(),
                            column: e.column(),
                            detail,
                        }
                    }
                    serde_json::error::Category::Data => DecodeError::Connect(detail),
                    serde_json::error::Category::Io => DecodeError::Other(detail),
                }
            }
        }
    }
}

fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(detail) => detail.to_string(),
        None => text,
    }
}

fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path.iter().rev() {
        match seg {
            Seg::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Seg::Index(i) => {
                if out.is_empty() {
                    out.push_str("payload");
                }
                let _ = write!(out, "[{i}]");
            }
        }
    }
    if out.is_empty() {
        out.push_str("payload");
    }
    out
}

fn json_kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

// ---------------------------------------------------------------------------------------------
// The envelope

struct Envelope<'de> {
    /// `Some(None)`: `"schema": null`.
    schema: Option<Option<Rc<Compiled>>>,
    payload: Option<Payload<'de>>,
}

enum Payload<'de> {
    Done(Value),
    Raw(&'de RawValue),
}

struct EnvelopeVisitor<'c> {
    ctx: &'c Ctx,
}

impl<'de> Visitor<'de> for EnvelopeVisitor<'_> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kafka Connect JSON object with \"schema\" and \"payload\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let ctx = self.ctx;
        let mut envelope = Envelope {
            schema: None,
            payload: None,
        };
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                "schema" if envelope.schema.is_none() => {
                    let raw: &'de RawValue = map.next_value()?;
                    let text = raw.get().trim();
                    let schema = match json_kind(text) {
                        "null" => None,
                        "object" => Some(compiled(text).map_err(|m| ctx.envelope(m))?),
                        other => {
                            let message = format!("\"schema\" is not an object (got {other})");
                            return Err(ctx.envelope(message));
                        }
                    };
                    envelope.schema = Some(schema);
                }
                "payload" if envelope.payload.is_none() => {
                    envelope.payload = Some(match &envelope.schema {
                        Some(schema) => {
                            let node = schema.as_deref().map_or(&ANY, |c| &c.node);
                            let target = Target::Node(node);
                            Payload::Done(map.next_value_seed(Seed { target, ctx })?)
                        }
                        None => Payload::Raw(map.next_value()?),
                    });
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads

#[derive(Clone, Copy)]
enum Target<'a> {
    Node(&'a Node),
    /// One `[key, value]` entry of a map sent as an array of pairs; yields a 2-element list.
    Pair(&'a MapSpec),
}

/// Converts one payload value, driven by its schema node.
#[derive(Clone, Copy)]
struct Seed<'a> {
    target: Target<'a>,
    ctx: &'a Ctx,
}

impl<'a> Seed<'a> {
    fn node(node: &'a Node, ctx: &'a Ctx) -> Self {
        Seed {
            target: Target::Node(node),
            ctx,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if let Target::Node(Node::Decimal(spec)) = self.target {
            // The raw text keeps a NUMERIC-format decimal exact.
            let raw: &'de RawValue = Deserialize::deserialize(deserializer)?;
            return decimal_from_json(spec, raw.get().trim()).map_err(|m| self.ctx.payload(m));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.target {
            Target::Node(node) => f.write_str(&node.describe()),
            Target::Pair(_) => f.write_str("a [key, value] pair"),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        match self.target {
            Target::Node(_) => Ok(Value::Null),
            Target::Pair(_) => Err(self.mismatch("null")),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.target {
            Target::Node(Node::Any | Node::Bool) => Ok(Value::Bool(v)),
            _ => Err(self.mismatch("boolean")),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match self.target {
            Target::Node(Node::Any) => Ok(Value::Int(v)),
            Target::Node(Node::Float(_)) => Ok(Value::Float(v as f64)),
            Target::Node(node @ Node::Int { bits, conv, .. }) => {
                let fits = match bits {
                    8 => i8::try_from(v).is_ok(),
                    16 => i16::try_from(v).is_ok(),
                    32 => i32::try_from(v).is_ok(),
                    _ => true,
                };
                let out_of_range = || {
                    self.ctx
                        .payload(format!("integer {v} out of range for {}", node.describe()))
                };
                if !fits {
                    return Err(out_of_range());
                }
                Ok(match *conv {
                    IntConv::Plain => Value::Int(v),
                    IntConv::Date => Value::Date(v as i32),
                    IntConv::TimeMul(m) => Value::Time(v.checked_mul(m).ok_or_else(out_of_range)?),
                    IntConv::TimeDiv(d) => Value::Time(v.div_euclid(d)),
                    IntConv::TimestampMul(m) => {
                        Value::Timestamp(v.checked_mul(m).ok_or_else(out_of_range)?)
                    }
                    IntConv::TimestampDiv(d) => Value::Timestamp(v.div_euclid(d)),
                })
            }
            _ => Err(self.mismatch("number")),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if let Ok(v) = i64::try_from(v) {
            return self.visit_i64(v);
        }
        match self.target {
            // Past i64: keep it exact as a decimal with scale 0.
            Target::Node(Node::Any) => Ok(Value::Decimal(i128::from(v))),
            Target::Node(Node::Float(_)) => Ok(Value::Float(v as f64)),
            Target::Node(node @ Node::Int { .. }) => Err(self
                .ctx
                .payload(format!("integer {v} out of range for {}", node.describe()))),
            _ => Err(self.mismatch("number")),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.target {
            Target::Node(Node::Any | Node::Float(_)) => Ok(Value::Float(v)),
            Target::Node(Node::Int { .. }) => Err(self.mismatch("non-integer number")),
            _ => Err(self.mismatch("number")),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.target {
            Target::Node(Node::Any | Node::Str) => Ok(Value::String(v.into())),
            Target::Node(Node::Bytes) => match BASE64.decode(v) {
                Ok(bytes) => Ok(Value::Bytes(bytes.into_boxed_slice())),
                Err(e) => Err(self.ctx.payload(format!("invalid base64 for bytes: {e}"))),
            },
            Target::Node(Node::ZonedTimestamp) => match parse_zoned_timestamp(v) {
                Some(micros) => Ok(Value::Timestamp(micros)),
                None => Err(self.ctx.payload(format!(
                    "invalid ISO-8601 timestamp with offset for ZonedTimestamp: {v:?}"
                ))),
            },
            // Jackson quotes non-finite numbers.
            Target::Node(Node::Float(_)) => match v {
                "NaN" => Ok(Value::Float(f64::NAN)),
                "Infinity" => Ok(Value::Float(f64::INFINITY)),
                "-Infinity" => Ok(Value::Float(f64::NEG_INFINITY)),
                _ => Err(self.mismatch("string")),
            },
            _ => Err(self.mismatch("string")),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let ctx = self.ctx;
        match self.target {
            Target::Node(Node::Any) => {
                let mut items = Vec::new();
                while let Some(item) =
                    ctx.at(|| Seg::Index(items.len()), seq.next_element_seed(self))?
                {
                    items.push(item);
                }
                Ok(Value::List(items))
            }
            Target::Node(Node::Array(item)) => {
                let seed = Seed::node(item, ctx);
                let mut items = Vec::new();
                while let Some(item) =
                    ctx.at(|| Seg::Index(items.len()), seq.next_element_seed(seed))?
                {
                    items.push(item);
                }
                Ok(Value::List(items))
            }
            Target::Node(Node::Map(spec)) => {
                let seed = Seed {
                    target: Target::Pair(spec),
                    ctx,
                };
                let mut entries = Vec::new();
                while let Some(pair) =
                    ctx.at(|| Seg::Index(entries.len()), seq.next_element_seed(seed))?
                {
                    let Value::List(mut pair) = pair else {
                        return Err(ctx.payload("map entry is not a [key, value] pair".into()));
                    };
                    let (Some(value), Some(key)) = (pair.pop(), pair.pop()) else {
                        return Err(ctx.payload("map entry is not a [key, value] pair".into()));
                    };
                    let key = FieldName::from(key.to_text(Some(&spec.key_ty)));
                    entries.push((key, spec.json_ready(value)));
                }
                Ok(Value::Struct(entries))
            }
            Target::Pair(spec) => {
                let key = ctx.at(
                    || Seg::Index(0),
                    seq.next_element_seed(Seed::node(&spec.keys, ctx)),
                )?;
                let value = ctx.at(
                    || Seg::Index(1),
                    seq.next_element_seed(Seed::node(&spec.values, ctx)),
                )?;
                let (Some(key), Some(value)) = (key, value) else {
                    return Err(ctx.payload("map entry has fewer than 2 elements".into()));
                };
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(ctx.payload("map entry has more than 2 elements".into()));
                }
                Ok(Value::List(vec![key, value]))
            }
            _ => Err(self.mismatch("array")),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let ctx = self.ctx;
        match self.target {
            Target::Node(Node::Struct(spec)) => {
                let mut out: Vec<(FieldName, Value)> = spec
                    .fields
                    .iter()
                    .map(|(name, _)| (name.clone(), Value::Null))
                    .collect();
                let mut hint = 0;
                while let Some(Key(key)) = map.next_key()? {
                    let Some(i) = spec.find(&key, hint) else {
                        // Like JsonConverter: keys the schema does not declare are skipped.
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let (name, node) = &spec.fields[i];
                    let value = map.next_value_seed(Seed::node(node, ctx));
                    out[i].1 = ctx.at(|| Seg::Field(name.clone()), value)?;
                    hint = i + 1;
                }
                Ok(Value::Struct(out))
            }
            Target::Node(Node::Any) => any_object(map, ctx),
            Target::Node(Node::Map(spec)) => {
                let mut entries = Vec::new();
                while let Some(Key(key)) = map.next_key()? {
                    let value = map.next_value_seed(Seed::node(&spec.values, ctx));
                    let value = ctx.at(|| Seg::Field(key.as_ref().into()), value)?;
                    entries.push((key.into(), spec.json_ready(value)));
                }
                Ok(Value::Struct(entries))
            }
            Target::Node(Node::VariableScaleDecimal) => variable_scale_decimal(map, ctx),
            _ => Err(self.mismatch("object")),
        }
    }
}

impl Seed<'_> {
    fn mismatch<E: de::Error>(&self, got: &str) -> E {
        match self.target {
            Target::Node(node) => self.ctx.mismatch(node, got),
            Target::Pair(_) => self
                .ctx
                .payload(format!("expected a [key, value] map entry, got {got}")),
        }
    }
}

impl MapSpec {
    fn json_ready(&self, mut value: Value) -> Value {
        if self.value_has_decimal {
            decimals_to_text(&mut value, &self.value_ty);
        }
        value
    }
}

fn has_decimal(ty: &ColumnType) -> bool {
    match ty {
        ColumnType::Decimal { .. } => true,
        ColumnType::List(element) => has_decimal(element),
        ColumnType::Struct(fields) => fields.iter().any(|f| has_decimal(&f.ty)),
        _ => false,
    }
}

/// Replaces every decimal in `value` (of type `ty`) by its exact text.
fn decimals_to_text(value: &mut Value, ty: &ColumnType) {
    match (value, ty) {
        (value @ Value::Decimal(_), ColumnType::Decimal { scale, .. }) => {
            if let Value::Decimal(unscaled) = *value {
                *value = Value::String(format_decimal(unscaled, *scale).into());
            }
        }
        (Value::List(items), ColumnType::List(element)) => {
            for item in items {
                decimals_to_text(item, element);
            }
        }
        // Struct values hold their fields in schema order.
        (Value::Struct(fields), ColumnType::Struct(types)) => {
            for ((_, value), field) in fields.iter_mut().zip(types) {
                decimals_to_text(value, &field.ty);
            }
        }
        _ => {}
    }
}

/// A schema-less object: a struct in document order; a repeated key keeps its last value at
/// its first position, as in plain JSON ([`ObjectMembers`]).
fn any_object<'de, A: MapAccess<'de>>(mut map: A, ctx: &Ctx) -> Result<Value, A::Error> {
    let mut out: Vec<(FieldName, Value)> = Vec::new();
    let mut members = ObjectMembers::default();
    while let Some(Key(key)) = map.next_key()? {
        let value = map.next_value_seed(Seed::node(&ANY, ctx));
        let value = ctx.at(|| Seg::Field(key.as_ref().into()), value)?;
        members.add(&mut out, 0, key.into(), value);
    }
    Ok(Value::Struct(out))
}

/// Debezium's `VariableScaleDecimal`, `{"scale": int32, "value": base64}`, as exact text.
fn variable_scale_decimal<'de, A: MapAccess<'de>>(
    mut map: A,
    ctx: &Ctx,
) -> Result<Value, A::Error> {
    let scale_node = Node::Int {
        bits: 32,
        conv: IntConv::Plain,
        logical: None,
    };
    let mut scale = None;
    let mut bytes = None;
    while let Some(Key(key)) = map.next_key()? {
        match &*key {
            "scale" => {
                let value = map.next_value_seed(Seed::node(&scale_node, ctx));
                scale = ctx.at(|| Seg::Field("scale".into()), value)?.as_i64();
            }
            "value" => {
                let value = map.next_value_seed(Seed::node(&Node::Bytes, ctx));
                if let Value::Bytes(b) = ctx.at(|| Seg::Field("value".into()), value)? {
                    bytes = Some(b);
                }
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    match (scale, bytes) {
        (_, None) => Ok(Value::Null),
        (None, Some(_)) => Err(ctx.payload("VariableScaleDecimal has no scale".into())),
        (Some(scale), Some(bytes)) => {
            if scale.abs() > MAX_TEXT_SCALE {
                let message = format!("VariableScaleDecimal scale {scale} is out of range");
                return Err(ctx.payload(message));
            }
            let text = decimal_text(&bytes, scale as i32).map_err(|m| ctx.payload(m))?;
            Ok(Value::String(text.into()))
        }
    }
}

/// A Connect Decimal from its raw JSON: base64 of the unscaled two's-complement value, or a
/// plain JSON number (`decimal.format=NUMERIC`), or null.
fn decimal_from_json(spec: &DecimalSpec, raw: &str) -> Result<Value, String> {
    match json_kind(raw) {
        "null" => Ok(Value::Null),
        "string" => {
            let text: Cow<str> = if raw.contains('\\') {
                Cow::Owned(serde_json::from_str::<String>(raw).map_err(|e| e.to_string())?)
            } else {
                Cow::Borrowed(raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default())
            };
            let bytes = BASE64
                .decode(text.as_bytes())
                .map_err(|e| format!("invalid base64 for Decimal: {e}"))?;
            if bytes.is_empty() {
                return Err("empty bytes for Decimal".into());
            }
            if spec.as_text {
                return decimal_text(&bytes, spec.scale).map(|t| Value::String(t.into()));
            }
            let unscaled = i128_from_be(&bytes).ok_or_else(|| {
                format!("Decimal value does not fit precision {}", spec.precision)
            })?;
            let shift = (spec.col_scale - spec.scale) as u32;
            let unscaled = 10i128
                .checked_pow(shift)
                .and_then(|m| unscaled.checked_mul(m))
                .ok_or_else(|| {
                    format!("Decimal value does not fit precision {}", spec.precision)
                })?;
            check_precision(unscaled, spec.precision)
        }
        "number" => {
            let number = parse_number(raw).ok_or_else(|| format!("invalid number {raw}"))?;
            if spec.as_text {
                return Ok(Value::String(number.text().into()));
            }
            number
                .unscaled(spec.col_scale)
                .ok_or_else(|| {
                    format!(
                        "Decimal value {raw} does not fit DECIMAL({},{})",
                        spec.precision, spec.col_scale
                    )
                })
                .and_then(|unscaled| check_precision(unscaled, spec.precision))
        }
        other => Err(format!("expected base64 bytes for Decimal, got {other}")),
    }
}

fn check_precision(unscaled: i128, precision: u32) -> Result<Value, String> {
    match 10i128.checked_pow(precision) {
        Some(limit) if unscaled.unsigned_abs() >= limit.unsigned_abs() => Err(format!(
            "Decimal value has more than {precision} digits (the schema's precision)"
        )),
        _ => Ok(Value::Decimal(unscaled)),
    }
}

/// A big-endian two's-complement integer as `i128`, if it fits.
fn i128_from_be(bytes: &[u8]) -> Option<i128> {
    let first = *bytes.first()?;
    let negative = first & 0x80 != 0;
    let pad = if negative { 0xff } else { 0x00 };
    // Redundant sign-extension bytes may precede the value.
    let mut start = 0;
    while bytes.len() - start > 16 && bytes[start] == pad {
        start += 1;
    }
    let bytes = &bytes[start..];
    if bytes.len() > 16 || (bytes[0] & 0x80 != 0) != negative {
        return None;
    }
    let mut value: i128 = if negative { -1 } else { 0 };
    for &b in bytes {
        value = (value << 8) | i128::from(b);
    }
    Some(value)
}

/// Exact decimal text of a big-endian two's-complement unscaled value of any length.
fn decimal_text(bytes: &[u8], scale: i32) -> Result<String, String> {
    if bytes.is_empty() {
        return Err("empty bytes for a decimal value".into());
    }
    if bytes.len() > MAX_BIG_DECIMAL_BYTES {
        return Err(format!(
            "decimal value of {} bytes is too long",
            bytes.len()
        ));
    }
    if let Some(v) = i128_from_be(bytes) {
        return Ok(place_point(v < 0, &v.unsigned_abs().to_string(), scale));
    }
    let negative = bytes[0] & 0x80 != 0;
    // Magnitude: for a negative value, invert and add one.
    let mut magnitude: Vec<u8> = if negative {
        bytes.iter().map(|b| !b).collect()
    } else {
        bytes.to_vec()
    };
    if negative {
        for b in magnitude.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
    }
    // Big-endian u32 limbs, then repeated division by 10^9.
    let mut limbs: Vec<u32> = Vec::with_capacity(magnitude.len() / 4 + 1);
    let head = magnitude.len() % 4;
    if head > 0 {
        limbs.push(
            magnitude[..head]
                .iter()
                .fold(0, |acc, &b| (acc << 8) | u32::from(b)),
        );
    }
    for chunk in magnitude[head..].chunks(4) {
        limbs.push(chunk.iter().fold(0, |acc, &b| (acc << 8) | u32::from(b)));
    }
    let mut chunks: Vec<u32> = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        let zeros = limbs.iter().take_while(|&&l| l == 0).count();
        limbs.drain(..zeros);
    }
    let mut digits = String::with_capacity(chunks.len() * 9);
    for (i, chunk) in chunks.iter().rev().enumerate() {
        if i == 0 {
            let _ = write!(digits, "{chunk}");
        } else {
            let _ = write!(digits, "{chunk:09}");
        }
    }
    if digits.is_empty() {
        digits.push('0');
    }
    Ok(place_point(negative, &digits, scale))
}

/// `digits × 10^-scale` as plain decimal text; `digits` has no sign and no leading zeros.
fn place_point(negative: bool, digits: &str, scale: i32) -> String {
    let zero = digits.bytes().all(|b| b == b'0');
    let mut out = String::with_capacity(digits.len() + scale.unsigned_abs() as usize + 3);
    if negative && !zero {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(digits);
        if !zero {
            out.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        }
        return out;
    }
    let scale = scale as usize;
    if digits.len() <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(digits);
    } else {
        let (int_part, frac_part) = digits.split_at(digits.len() - scale);
        out.push_str(int_part);
        out.push('.');
        out.push_str(frac_part);
    }
    out
}

/// A JSON number as `digits × 10^exponent`.
struct Number<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    exponent: i64,
}

fn parse_number(raw: &str) -> Option<Number<'_>> {
    let (negative, rest) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let mantissa_end = rest.find(['e', 'E']).unwrap_or(rest.len());
    let (mantissa, exp) = rest.split_at(mantissa_end);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits_ok(int) || !digits_ok(frac) {
        return None;
    }
    let exponent = if exp.is_empty() {
        0
    } else {
        exp.get(1..)?.parse::<i64>().ok()?
    };
    if exponent.abs() > MAX_TEXT_SCALE {
        return None;
    }
    Some(Number {
        negative,
        int,
        frac,
        exponent,
    })
}

impl Number<'_> {
    /// The significant digits and the power of ten they are multiplied by.
    fn digits(&self) -> (String, i64) {
        let mut digits = String::with_capacity(self.int.len() + self.frac.len());
        digits.push_str(self.int);
        digits.push_str(self.frac);
        let trimmed = digits.trim_start_matches('0');
        let digits = if trimmed.is_empty() { "0" } else { trimmed };
        (digits.to_string(), self.exponent - self.frac.len() as i64)
    }

    /// Plain decimal text (no exponent).
    fn text(&self) -> String {
        let (digits, exponent) = self.digits();
        place_point(self.negative, &digits, -exponent as i32)
    }

    /// The unscaled value at `scale`, if exact and within `i128`.
    fn unscaled(&self, scale: i32) -> Option<i128> {
        let (digits, exponent) = self.digits();
        let shift = exponent + i64::from(scale);
        let digits = if shift >= 0 {
            digits.as_str()
        } else {
            // Digits below the scale must be zeros.
            let cut = digits.len().saturating_sub(shift.unsigned_abs() as usize);
            let (kept, dropped) = digits.split_at(cut);
            if dropped.bytes().any(|b| b != b'0') {
                return None;
            }
            if kept.is_empty() { "0" } else { kept }
        };
        let mut value: i128 = 0;
        for b in digits.bytes() {
            value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        if shift > 0 && value != 0 {
            value = value.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?;
        }
        Some(if self.negative { -value } else { value })
    }
}

/// Debezium `ZonedTimestamp` text (ISO-8601 with an offset) as UTC microseconds.
fn parse_zoned_timestamp(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%:z"))
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.timestamp_micros())
}

#[cfg(test)]
mod tests;
