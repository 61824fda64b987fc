//! Avro in the Confluent wire format → [`Value`] and [`ColumnType`].
//!
//! Each writer schema is compiled once (when the registry client fetches it) into a [`Plan`]:
//! a flat list of decoding nodes that read the Avro binary encoding straight into our
//! [`Value`] tree, with logical types and Kafka Connect/Debezium annotations already turned into
//! our units. Decoding a record is then one pass over its bytes, with no schema lookups, no
//! intermediate `apache_avro::types::Value` and no per-record allocation beyond the values
//! themselves. `apache_avro` parses the schemas (and, in tests, writes the fixtures); the
//! decoding follows the Avro 1.12 binary encoding.
//!
//! # Kafka Connect and Debezium annotations
//!
//! Debezium's Avro converter marks semantic types with a `connect.name` property on a primitive
//! schema, e.g. `{"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"}`.
//! `apache_avro` 0.22 parses such a schema into a bare `Schema::Long` and drops the property
//! (it keeps custom attributes only on records, enums, fixed, arrays and maps). The compiler
//! therefore walks the schema's JSON text side by side with the parsed [`Schema`]: record
//! fields are matched by name, union branches by position, array items and map values by
//! their keys, and named types referenced by name find the JSON of their definition. Where
//! the JSON has a `connect.name` the compiler picks the matching node:
//!
//! | `connect.name` (on) | column type | value |
//! |---|---|---|
//! | `io.debezium.time.Date`, `org.apache.kafka.connect.data.Date` (int) | Date | days |
//! | `io.debezium.time.Time`, `org.apache.kafka.connect.data.Time` (int) | Time | millis → micros |
//! | `io.debezium.time.MicroTime` (long) | Time | micros |
//! | `io.debezium.time.NanoTime` (long) | Time | nanos → micros |
//! | `io.debezium.time.Timestamp`, `org.apache.kafka.connect.data.Timestamp` (long) | Timestamp | millis → micros |
//! | `io.debezium.time.MicroTimestamp` (long) | Timestamp | micros |
//! | `io.debezium.time.NanoTimestamp` (long) | Timestamp | nanos → micros |
//! | `io.debezium.time.ZonedTimestamp` (string) | Timestamp | ISO-8601 with offset → UTC micros |
//! | `org.apache.kafka.connect.data.Decimal` (bytes, `connect.parameters.scale`, optional `connect.decimal.precision`) | Decimal | unscaled |
//! | `io.debezium.data.VariableScaleDecimal` (record `{scale: int, value: bytes}`) | String | exact decimal text |
//!
//! Debezium's `Timestamp`/`MicroTimestamp`/`NanoTimestamp` hold a zone-less local date-time
//! counted from the epoch; like Debezium we read them as UTC.
//!
//! # Type mapping
//!
//! Primitives map one to one (`int` → Int32, `long` → Int64, `float` → Float32, `double` →
//! Float64, `bytes` → Binary, `null` → Null). `decimal` (bytes or fixed) → Decimal, or String
//! holding the exact decimal text when its precision exceeds 38; `big-decimal` → String (exact
//! text). `date` → Date; `time-*` → Time (micros); `timestamp-*` and `local-timestamp-*` →
//! Timestamp (micros; nanos are floored to micros). `uuid` → String (fixed/bytes UUIDs are
//! formatted as canonical text). `duration` → String in ISO-8601 form `P{months}M{days}DT{s}.{ms}S`:
//! its three parts cannot be folded into one number without loss (a month has no fixed number
//! of days), and text keeps them readable in SQL where Binary would be opaque.
//!
//! `record` → Struct (field order kept); `array` → List; `map` → Json (the map's JSON object
//! text); `enum` → String (the symbol); `fixed` → Binary. A union of `null` and one type (either
//! order) is that type (every column is nullable); a union of a single type is that type; any
//! other union → Json (JSON text of the branch's value; a `null` branch stays null). Named
//! types are resolved wherever they are referenced; a reference to a record from inside its own
//! definition (a recursive type) becomes Json, since a column type must be finite.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use apache_avro::Schema;
use apache_avro::schema::{DecimalSchema, InnerDecimalSchema, RecordSchema, UuidSchema};
use serde_json::Value as Json;

use super::{DecodeError, Decoded};
use crate::registry::{AvroSchema, SchemaCache, WIRE_HEADER_LEN, schema_id};
use crate::value::{ColumnType, Field, MAX_DECIMAL_PRECISION, Value};

/// Decodes one record in the Confluent wire format with its writer schema from `schemas`.
pub fn decode(bytes: &[u8], schemas: &SchemaCache) -> Result<Decoded, DecodeError> {
    let (value, schema) = decode_with_schema(bytes, schemas)?;
    Ok(Decoded {
        value,
        schema: Some(schema.column_type().clone()),
    })
}

/// Like [`decode`], but returns the writer schema by reference instead of cloning its column
/// type into every record: the faster path when the caller groups records by schema.
pub fn decode_with_schema<'c>(
    bytes: &[u8],
    schemas: &'c SchemaCache,
) -> Result<(Value, &'c AvroSchema), DecodeError> {
    let id = schema_id(bytes)?;
    let schema = schemas.get(id)?;
    let body = bytes.get(WIRE_HEADER_LEN..).unwrap_or_default();
    let value = schema
        .plan()
        .decode(body)
        .map_err(|fail| DecodeError::Avro {
            id,
            detail: fail.to_string(),
        })?;
    Ok((value, schema))
}

/// The column type of values written with `schema`.
///
/// A parsed [`Schema`] no longer has the `connect.name` annotations of primitive types (see the
/// module documentation), so this sees Debezium timestamps as plain longs; schemas from the
/// registry are compiled with their JSON text ([`AvroSchema::column_type`]).
pub fn column_type(schema: &Schema) -> ColumnType {
    compile(schema, None, &[]).map_or(ColumnType::Json, |(_, ty)| ty)
}

/// Deepest nesting of records, arrays, maps and unions a record may have.
const MAX_DEPTH: u32 = 128;
/// Most items of zero-byte types (null, empty records) one record may hold.
const MAX_ZERO_WIDTH_ITEMS: usize = 1 << 20;
/// Most bytes of an unbounded decimal (`big-decimal`, precision > 38) turned into text.
const MAX_TEXT_DECIMAL_BYTES: usize = 512;
/// Largest decimal scale turned into text.
const MAX_TEXT_DECIMAL_SCALE: i64 = 4096;

type NodeId = usize;

/// A compiled writer schema: how to read its binary encoding into a [`Value`].
#[derive(Debug, Clone)]
pub struct Plan {
    nodes: Vec<Node>,
    /// Per node: can a value of it take zero bytes (null, empty record)?
    zero_width: Vec<bool>,
    root: NodeId,
}

#[derive(Debug, Clone)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    String,
    Bytes,
    Fixed(usize),
    Enum(Box<[Box<str>]>),
    Decimal {
        fixed: Option<usize>,
        precision: u32,
        scale: u32,
        /// Precision over 38: exact decimal text.
        text: bool,
    },
    BigDecimal,
    VariableScaleDecimal,
    Date,
    TimeMillis,
    TimeMicros,
    TimeNanos,
    TimestampMillis,
    TimestampMicros,
    TimestampNanos,
    ZonedTimestamp,
    UuidBinary(Option<usize>),
    Duration,
    Record(Box<[(Box<str>, NodeId)]>),
    Array(NodeId),
    Map(NodeId),
    /// `[null, T]` or `[T, null]`.
    Nullable {
        null_index: u64,
        inner: NodeId,
    },
    /// A union of one type.
    Single(NodeId),
    /// Any other union: JSON text of the branch.
    Union(Box<[NodeId]>),
    /// A recursive reference: JSON text of the named type's value.
    JsonOf(NodeId),
    /// Reserved while a named type is being compiled.
    Pending,
}

/// Compiles `schema` (with its JSON text when known, for Connect annotations) and the schemas
/// it references into a decoding plan and the column type of its values.
pub(crate) fn compile(
    schema: &Schema,
    json: Option<&Json>,
    references: &[(&Schema, Option<&Json>)],
) -> Result<(Plan, ColumnType), String> {
    let mut compiler = Compiler::default();
    for (s, j) in references {
        compiler.collect(s, *j);
    }
    compiler.collect(schema, json);
    let (root, ty) = compiler.node(schema, json)?;
    let zero_width = zero_width(&compiler.nodes);
    Ok((
        Plan {
            nodes: compiler.nodes,
            zero_width,
            root,
        },
        ty,
    ))
}

#[derive(Default)]
struct Compiler<'s> {
    /// Named type definitions by full name, with their JSON text.
    defs: HashMap<String, (&'s Schema, Option<&'s Json>)>,
    nodes: Vec<Node>,
    /// Named types compiled so far.
    done: HashMap<String, (NodeId, ColumnType)>,
    /// Named types being compiled (for recursion).
    active: HashMap<String, NodeId>,
}

impl<'s> Compiler<'s> {
    fn push(&mut self, node: Node, ty: ColumnType) -> (NodeId, ColumnType) {
        self.nodes.push(node);
        (self.nodes.len() - 1, ty)
    }

    /// Records every named type defined in `schema`.
    fn collect(&mut self, schema: &'s Schema, json: Option<&'s Json>) {
        let json = peel(json);
        if let Some(name) = defined_name(schema) {
            self.defs.entry(name).or_insert((schema, json));
        }
        match schema {
            Schema::Record(record) => {
                for field in &record.fields {
                    self.collect(&field.schema, field_json(json, &field.name));
                }
            }
            Schema::Array(array) => self.collect(&array.items, json.and_then(|j| j.get("items"))),
            Schema::Map(map) => self.collect(&map.types, json.and_then(|j| j.get("values"))),
            Schema::Union(union) => {
                for (i, variant) in union.variants().iter().enumerate() {
                    self.collect(variant, json.and_then(|j| j.get(i)));
                }
            }
            _ => {}
        }
    }

    fn node(
        &mut self,
        schema: &'s Schema,
        json: Option<&'s Json>,
    ) -> Result<(NodeId, ColumnType), String> {
        let json = peel(json);
        let connect = json
            .and_then(|j| j.get("connect.name"))
            .and_then(Json::as_str);
        if let Some(name) = defined_name(schema)
            && let Some((id, ty)) = self.done.get(&name)
        {
            return Ok((*id, ty.clone()));
        }
        use ColumnType as T;
        Ok(match schema {
            Schema::Null => self.push(Node::Null, T::Null),
            Schema::Boolean => self.push(Node::Boolean, T::Boolean),
            Schema::Int => match connect {
                Some("io.debezium.time.Date" | "org.apache.kafka.connect.data.Date") => {
                    self.push(Node::Date, T::Date)
                }
                Some("io.debezium.time.Time" | "org.apache.kafka.connect.data.Time") => {
                    self.push(Node::TimeMillis, T::Time)
                }
                _ => self.push(Node::Int, T::Int32),
            },
            Schema::Long => match connect {
                Some("io.debezium.time.MicroTime") => self.push(Node::TimeMicros, T::Time),
                Some("io.debezium.time.NanoTime") => self.push(Node::TimeNanos, T::Time),
                Some("io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp") => {
                    self.push(Node::TimestampMillis, T::Timestamp)
                }
                Some("io.debezium.time.MicroTimestamp") => {
                    self.push(Node::TimestampMicros, T::Timestamp)
                }
                Some("io.debezium.time.NanoTimestamp") => {
                    self.push(Node::TimestampNanos, T::Timestamp)
                }
                _ => self.push(Node::Long, T::Int64),
            },
            Schema::Float => self.push(Node::Float, T::Float32),
            Schema::Double => self.push(Node::Double, T::Float64),
            Schema::String => match connect {
                Some("io.debezium.time.ZonedTimestamp") => {
                    self.push(Node::ZonedTimestamp, T::Timestamp)
                }
                _ => self.push(Node::String, T::String),
            },
            Schema::Bytes => match (connect, json.and_then(connect_decimal)) {
                (Some("org.apache.kafka.connect.data.Decimal"), Some((precision, scale))) => {
                    self.decimal(None, precision, scale)
                }
                _ => self.push(Node::Bytes, T::Binary),
            },
            Schema::Uuid(UuidSchema::String) => self.push(Node::String, T::String),
            Schema::Uuid(UuidSchema::Bytes) => self.push(Node::UuidBinary(None), T::String),
            Schema::Uuid(UuidSchema::Fixed(fixed)) => {
                let node = self.push(Node::UuidBinary(Some(fixed.size)), T::String);
                self.finish_named(schema, node)
            }
            Schema::Decimal(DecimalSchema {
                precision,
                scale,
                inner,
            }) => {
                let fixed = match inner {
                    InnerDecimalSchema::Bytes => None,
                    InnerDecimalSchema::Fixed(f) => Some(f.size),
                };
                let node = self.decimal(fixed, Some(*precision), *scale);
                self.finish_named(schema, node)
            }
            Schema::BigDecimal => self.push(Node::BigDecimal, T::String),
            Schema::Date => self.push(Node::Date, T::Date),
            Schema::TimeMillis => self.push(Node::TimeMillis, T::Time),
            Schema::TimeMicros => self.push(Node::TimeMicros, T::Time),
            Schema::TimestampMillis | Schema::LocalTimestampMillis => {
                self.push(Node::TimestampMillis, T::Timestamp)
            }
            Schema::TimestampMicros | Schema::LocalTimestampMicros => {
                self.push(Node::TimestampMicros, T::Timestamp)
            }
            Schema::TimestampNanos | Schema::LocalTimestampNanos => {
                self.push(Node::TimestampNanos, T::Timestamp)
            }
            Schema::Duration(_) => {
                let node = self.push(Node::Duration, T::String);
                self.finish_named(schema, node)
            }
            Schema::Fixed(fixed) => {
                let node = self.push(Node::Fixed(fixed.size), T::Binary);
                self.finish_named(schema, node)
            }
            Schema::Enum(e) => {
                let symbols = e.symbols.iter().map(|s| Box::from(s.as_str())).collect();
                let node = self.push(Node::Enum(symbols), T::String);
                self.finish_named(schema, node)
            }
            Schema::Array(array) => {
                let (items, ty) = self.node(&array.items, json.and_then(|j| j.get("items")))?;
                self.push(Node::Array(items), T::List(Box::new(ty)))
            }
            Schema::Map(map) => {
                let (values, _) = self.node(&map.types, json.and_then(|j| j.get("values")))?;
                self.push(Node::Map(values), T::Json)
            }
            Schema::Union(union) => {
                let variants = union.variants();
                let mut compiled = Vec::with_capacity(variants.len());
                for (i, variant) in variants.iter().enumerate() {
                    compiled.push(self.node(variant, json.and_then(|j| j.get(i)))?);
                }
                let null_at = variants.iter().position(|v| matches!(v, Schema::Null));
                match (compiled.as_slice(), null_at) {
                    ([], _) => return Err("a union has no branches".into()),
                    ([(only, ty)], _) => {
                        let ty = ty.clone();
                        self.push(Node::Single(*only), ty)
                    }
                    ([_, _], Some(null_index)) => {
                        let (inner, ty) = compiled[1 - null_index].clone();
                        self.push(
                            Node::Nullable {
                                null_index: null_index as u64,
                                inner,
                            },
                            ty,
                        )
                    }
                    _ => {
                        let ids = compiled.iter().map(|(id, _)| *id).collect();
                        self.push(Node::Union(ids), T::Json)
                    }
                }
            }
            Schema::Record(record) => self.record(schema, record, json)?,
            Schema::Ref { name } => {
                let full = name.fullname(None);
                if let Some((id, ty)) = self.done.get(&full) {
                    (*id, ty.clone())
                } else if let Some(id) = self.active.get(&full) {
                    let id = *id;
                    self.push(Node::JsonOf(id), T::Json)
                } else if let Some((def, def_json)) = self.defs.get(&full).copied() {
                    if matches!(def, Schema::Ref { .. }) {
                        return Err(format!("named type {full} is never defined"));
                    }
                    self.node(def, def_json)?
                } else {
                    return Err(format!("named type {full} is never defined"));
                }
            }
        })
    }

    fn record(
        &mut self,
        schema: &'s Schema,
        record: &'s RecordSchema,
        json: Option<&'s Json>,
    ) -> Result<(NodeId, ColumnType), String> {
        let connect = record.attributes.get("connect.name").and_then(Json::as_str);
        if connect == Some("io.debezium.data.VariableScaleDecimal")
            && let [scale, value] = record.fields.as_slice()
            && scale.name == "scale"
            && matches!(scale.schema, Schema::Int)
            && value.name == "value"
            && matches!(value.schema, Schema::Bytes)
        {
            let node = self.push(Node::VariableScaleDecimal, ColumnType::String);
            return Ok(self.finish_named(schema, node));
        }
        let full = record.name.fullname(None);
        let (id, _) = self.push(Node::Pending, ColumnType::Null);
        self.active.insert(full.clone(), id);
        let mut fields = Vec::with_capacity(record.fields.len());
        let mut types = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
            let (node, ty) = self.node(&field.schema, field_json(json, &field.name))?;
            fields.push((Box::from(field.name.as_str()), node));
            types.push(Field::new(field.name.as_str(), ty));
        }
        self.active.remove(&full);
        self.nodes[id] = Node::Record(fields.into_boxed_slice());
        let ty = ColumnType::Struct(types);
        self.done.insert(full, (id, ty.clone()));
        Ok((id, ty))
    }

    fn decimal(
        &mut self,
        fixed: Option<usize>,
        precision: Option<usize>,
        scale: usize,
    ) -> (NodeId, ColumnType) {
        let max = usize::from(MAX_DECIMAL_PRECISION);
        let decimal_precision = precision.unwrap_or(max);
        let text = decimal_precision > max || scale > decimal_precision;
        let node = Node::Decimal {
            fixed,
            precision: u32::try_from(decimal_precision).unwrap_or(u32::MAX),
            scale: u32::try_from(scale).unwrap_or(u32::MAX),
            text,
        };
        let ty = if text {
            ColumnType::String
        } else {
            ColumnType::Decimal {
                precision: decimal_precision as u8,
                scale: scale as i8,
            }
        };
        self.push(node, ty)
    }

    /// Remembers a named non-record type so references reuse its node.
    fn finish_named(
        &mut self,
        schema: &Schema,
        (id, ty): (NodeId, ColumnType),
    ) -> (NodeId, ColumnType) {
        if let Some(name) = defined_name(schema) {
            self.done.insert(name, (id, ty.clone()));
        }
        (id, ty)
    }
}

/// The full name a schema defines, if it is a named type.
fn defined_name(schema: &Schema) -> Option<String> {
    match schema {
        Schema::Record(RecordSchema { name, .. })
        | Schema::Enum(apache_avro::schema::EnumSchema { name, .. })
        | Schema::Fixed(apache_avro::schema::FixedSchema { name, .. })
        | Schema::Duration(apache_avro::schema::FixedSchema { name, .. })
        | Schema::Uuid(UuidSchema::Fixed(apache_avro::schema::FixedSchema { name, .. }))
        | Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Fixed(apache_avro::schema::FixedSchema { name, .. }),
            ..
        }) => Some(name.fullname(None)),
        _ => None,
    }
}

/// The JSON object that describes a schema: `{"type": {"type": "long", ...}}` nests.
fn peel(mut json: Option<&Json>) -> Option<&Json> {
    while let Some(Json::Object(map)) = json {
        match map.get("type") {
            Some(inner @ (Json::Object(_) | Json::Array(_)))
                if !map.contains_key("connect.name") =>
            {
                json = Some(inner);
            }
            _ => break,
        }
    }
    json
}

/// The JSON of the type of field `name` of a record's JSON.
fn field_json<'j>(record: Option<&'j Json>, name: &str) -> Option<&'j Json> {
    record?
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("name").and_then(Json::as_str) == Some(name))?
        .get("type")
}

/// `(precision, scale)` of a Connect decimal: `connect.parameters` holds `scale` and maybe
/// `connect.decimal.precision`, as strings (numbers are accepted too).
fn connect_decimal(json: &Json) -> Option<(Option<usize>, usize)> {
    let params = json.get("connect.parameters")?;
    let number = |key: &str| match params.get(key)? {
        Json::String(s) => s.trim().parse::<usize>().ok(),
        Json::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    };
    let precision = number("connect.decimal.precision").filter(|p| *p > 0);
    Some((precision, number("scale")?))
}

/// Which nodes may take zero bytes; records are iterated to a fixed point (recursion).
fn zero_width(nodes: &[Node]) -> Vec<bool> {
    let mut zero: Vec<bool> = nodes
        .iter()
        .map(|n| matches!(n, Node::Null | Node::Fixed(0) | Node::Record(_)))
        .collect();
    loop {
        let mut changed = false;
        for (i, node) in nodes.iter().enumerate() {
            let now = match node {
                Node::Record(fields) => fields
                    .iter()
                    .all(|(_, f)| zero.get(*f).copied().unwrap_or(false)),
                Node::Single(inner) | Node::JsonOf(inner) => {
                    zero.get(*inner).copied().unwrap_or(false)
                }
                _ => zero[i],
            };
            if now != zero[i] {
                zero[i] = now;
                changed = true;
            }
        }
        if !changed {
            return zero;
        }
    }
}

/// Why a body could not be decoded, with the path of the field where it happened.
#[derive(Debug)]
pub(crate) struct Fail(Box<FailInner>);

#[derive(Debug)]
struct FailInner {
    detail: String,
    /// Innermost first.
    path: Vec<String>,
}

impl Fail {
    fn new(detail: impl Into<String>) -> Fail {
        Fail(Box::new(FailInner {
            detail: detail.into(),
            path: Vec::new(),
        }))
    }

    fn at(mut self, segment: impl FnOnce() -> String) -> Fail {
        self.0.path.push(segment());
        self
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.path.is_empty() {
            f.write_str("field `")?;
            for (i, segment) in self.0.path.iter().rev().enumerate() {
                if i > 0 && !segment.starts_with('[') {
                    f.write_char('.')?;
                }
                f.write_str(segment)?;
            }
            f.write_str("`: ")?;
        }
        f.write_str(&self.0.detail)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    zero_width_budget: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        match self.buf.get(self.pos..self.pos.saturating_add(n)) {
            Some(slice) => {
                self.pos += n;
                Ok(slice)
            }
            None => Err(Fail::new(format!(
                "the body ends early: {n} bytes needed at offset {}, {} left",
                self.pos,
                self.remaining()
            ))),
        }
    }

    fn varint(&mut self) -> Result<u64, Fail> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(Fail::new(format!(
                    "the body ends early inside a number at offset {}",
                    self.pos
                )));
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err(Fail::new(format!(
                    "a variable-length number is longer than 10 bytes at offset {}",
                    self.pos
                )));
            }
        }
    }

    fn long(&mut self) -> Result<i64, Fail> {
        let n = self.varint()?;
        Ok((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    fn int(&mut self) -> Result<i32, Fail> {
        let n = self.long()?;
        i32::try_from(n).map_err(|_| Fail::new(format!("int value {n} does not fit 32 bits")))
    }

    fn len(&mut self) -> Result<usize, Fail> {
        let n = self.long()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => Ok(n),
            _ => Err(Fail::new(format!(
                "length {n} at offset {} is negative or longer than the {} bytes left",
                self.pos,
                self.remaining()
            ))),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], Fail> {
        let n = self.len()?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, Fail> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|e| Fail::new(format!("string is not UTF-8: {e}")))
    }

    /// Item count of the next array or map block (0 ends); skips the byte size of blocks
    /// written with a negative count.
    fn block_count(&mut self, zero_width: bool) -> Result<usize, Fail> {
        let count = self.long()?;
        if count < 0 {
            self.long()?;
        }
        let count = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        if zero_width {
            self.zero_width_budget =
                self.zero_width_budget.checked_sub(count).ok_or_else(|| {
                    Fail::new(format!(
                        "more than {MAX_ZERO_WIDTH_ITEMS} items of an empty type"
                    ))
                })?;
        } else if count > self.remaining() {
            return Err(Fail::new(format!(
                "a block of {count} items cannot fit in the {} bytes left",
                self.remaining()
            )));
        }
        Ok(count)
    }
}

impl Plan {
    /// Decodes one Avro body (without the wire header). All of it must be consumed.
    pub(crate) fn decode(&self, body: &[u8]) -> Result<Value, Fail> {
        let mut reader = Reader {
            buf: body,
            pos: 0,
            zero_width_budget: MAX_ZERO_WIDTH_ITEMS,
        };
        let value = self.read(self.root, &mut reader, false, 0)?;
        if reader.remaining() > 0 {
            return Err(Fail::new(format!(
                "{} bytes are left after the value: the body was not written with this schema",
                reader.remaining()
            )));
        }
        Ok(value)
    }

    /// Reads one value of `id`. In `json` mode (inside a value kept as JSON text) decimals are
    /// read as text, maps as structs and unions as their branch, so that the JSON text is
    /// written without types.
    fn read(&self, id: NodeId, r: &mut Reader<'_>, json: bool, depth: u32) -> Result<Value, Fail> {
        let node = self
            .nodes
            .get(id)
            .ok_or_else(|| Fail::new("internal error: bad plan node"))?;
        Ok(match node {
            Node::Null => Value::Null,
            Node::Boolean => match r.take(1)? {
                [0] => Value::Bool(false),
                [1] => Value::Bool(true),
                other => return Err(Fail::new(format!("boolean byte is {other:?}, not 0 or 1"))),
            },
            Node::Int => Value::Int(i64::from(r.int()?)),
            Node::Long => Value::Int(r.long()?),
            Node::Float => Value::Float(f64::from(f32::from_le_bytes(array(r.take(4)?)))),
            Node::Double => Value::Float(f64::from_le_bytes(array(r.take(8)?))),
            Node::String => Value::String(r.str()?.into()),
            Node::Bytes => Value::Bytes(r.bytes()?.into()),
            Node::Fixed(size) => Value::Bytes(r.take(*size)?.into()),
            Node::Enum(symbols) => {
                let index = r.long()?;
                let symbol = usize::try_from(index).ok().and_then(|i| symbols.get(i));
                match symbol {
                    Some(s) => Value::String(s.clone()),
                    None => {
                        return Err(Fail::new(format!(
                            "enum index {index} is out of range ({} symbols)",
                            symbols.len()
                        )));
                    }
                }
            }
            Node::Decimal {
                fixed,
                precision,
                scale,
                text,
            } => {
                let bytes = match fixed {
                    Some(size) => r.take(*size)?,
                    None => r.bytes()?,
                };
                if *text || json {
                    Value::String(decimal_text(bytes, i64::from(*scale))?.into())
                } else {
                    Value::Decimal(decimal_i128(bytes, *precision)?)
                }
            }
            Node::BigDecimal => {
                let mut inner = Reader {
                    buf: r.bytes()?,
                    pos: 0,
                    zero_width_budget: 0,
                };
                let unscaled = inner.bytes()?;
                let scale = inner.long()?;
                Value::String(decimal_text(unscaled, scale)?.into())
            }
            Node::VariableScaleDecimal => {
                let scale = r.int().map_err(|f| f.at(|| "scale".into()))?;
                let unscaled = r.bytes().map_err(|f| f.at(|| "value".into()))?;
                Value::String(decimal_text(unscaled, i64::from(scale))?.into())
            }
            Node::Date => Value::Date(r.int()?),
            Node::TimeMillis => Value::Time(i64::from(r.int()?) * 1000),
            Node::TimeMicros => Value::Time(r.long()?),
            Node::TimeNanos => Value::Time(r.long()?.div_euclid(1000)),
            Node::TimestampMillis => {
                let millis = r.long()?;
                let micros = millis
                    .checked_mul(1000)
                    .ok_or_else(|| Fail::new(format!("timestamp {millis} ms is out of range")))?;
                Value::Timestamp(micros)
            }
            Node::TimestampMicros => Value::Timestamp(r.long()?),
            Node::TimestampNanos => Value::Timestamp(r.long()?.div_euclid(1000)),
            Node::ZonedTimestamp => Value::Timestamp(parse_zoned(r.str()?)?),
            Node::UuidBinary(size) => {
                let bytes = match size {
                    Some(size) => r.take(*size)?,
                    None => r.bytes()?,
                };
                Value::String(uuid_text(bytes)?.into())
            }
            Node::Duration => Value::String(duration_text(r.take(12)?).into()),
            Node::Record(fields) => {
                let depth = deeper(depth)?;
                let mut out = Vec::with_capacity(fields.len());
                for (name, field) in fields.iter() {
                    let value = self
                        .read(*field, r, json, depth)
                        .map_err(|f| f.at(|| name.to_string()))?;
                    out.push((name.clone(), value));
                }
                Value::Struct(out)
            }
            Node::Array(items) => {
                let depth = deeper(depth)?;
                let zero = self.zero_width.get(*items).copied().unwrap_or(true);
                let mut out = Vec::new();
                loop {
                    let count = r.block_count(zero)?;
                    if count == 0 {
                        break;
                    }
                    out.reserve(count.min(r.remaining().max(16)));
                    for _ in 0..count {
                        let i = out.len();
                        out.push(
                            self.read(*items, r, json, depth)
                                .map_err(|f| f.at(|| format!("[{i}]")))?,
                        );
                    }
                }
                Value::List(out)
            }
            Node::Map(values) => {
                let depth = deeper(depth)?;
                let mut entries = Vec::new();
                loop {
                    let count = r.block_count(false)?;
                    if count == 0 {
                        break;
                    }
                    entries.reserve(count.min(r.remaining()));
                    for _ in 0..count {
                        let key: Box<str> = r.str()?.into();
                        let value = self
                            .read(*values, r, true, depth)
                            .map_err(|f| f.at(|| format!("[{key:?}]")))?;
                        entries.push((key, value));
                    }
                }
                let map = Value::Struct(entries);
                if json {
                    map
                } else {
                    Value::String(map.to_json(None).into())
                }
            }
            Node::Nullable { null_index, inner } => {
                let index = r.varint()?;
                // Zig-zag: 0 → 0, 2 → 1.
                match index {
                    0 | 2 if index / 2 == *null_index => Value::Null,
                    0 | 2 => self.read(*inner, r, json, deeper(depth)?)?,
                    _ => return Err(bad_branch(index, 2)),
                }
            }
            Node::Single(inner) => match r.long()? {
                0 => self.read(*inner, r, json, deeper(depth)?)?,
                other => return Err(bad_branch_index(other, 1)),
            },
            Node::Union(branches) => {
                let index = r.long()?;
                let Some(&branch) = usize::try_from(index).ok().and_then(|i| branches.get(i))
                else {
                    return Err(bad_branch_index(index, branches.len()));
                };
                let value = self.read(branch, r, true, deeper(depth)?)?;
                match value {
                    Value::Null => Value::Null,
                    v if json => v,
                    v => Value::String(v.to_json(None).into()),
                }
            }
            Node::JsonOf(target) => {
                let value = self.read(*target, r, true, deeper(depth)?)?;
                if json || value.is_null() {
                    value
                } else {
                    Value::String(value.to_json(None).into())
                }
            }
            Node::Pending => return Err(Fail::new("internal error: unfinished plan node")),
        })
    }
}

fn deeper(depth: u32) -> Result<u32, Fail> {
    if depth >= MAX_DEPTH {
        Err(Fail::new(format!(
            "values nest deeper than {MAX_DEPTH} levels"
        )))
    } else {
        Ok(depth + 1)
    }
}

fn bad_branch(zigzag: u64, branches: usize) -> Fail {
    let index = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
    bad_branch_index(index, branches)
}

fn bad_branch_index(index: i64, branches: usize) -> Fail {
    Fail::new(format!(
        "union branch index {index} is out of range ({branches} branches)"
    ))
}

/// The first `N` bytes (callers pass slices of at least `N` bytes; zeros otherwise).
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes
        .get(..N)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .unwrap_or([0; N])
}

/// Two's-complement big-endian bytes as an `i128` with at most `precision` digits.
fn decimal_i128(bytes: &[u8], precision: u32) -> Result<i128, Fail> {
    let too_big = || Fail::new(format!("decimal value has more than {precision} digits"));
    let Some(&first) = bytes.first() else {
        return Ok(0);
    };
    let negative = first & 0x80 != 0;
    let extension = if negative { 0xff } else { 0 };
    let (head, tail) = bytes.split_at(bytes.len().saturating_sub(16));
    if head.iter().any(|&b| b != extension)
        || tail.first().is_some_and(|&b| (b & 0x80 != 0) != negative)
    {
        return Err(too_big());
    }
    let mut buf = [extension; 16];
    buf[16 - tail.len()..].copy_from_slice(tail);
    let value = i128::from_be_bytes(buf);
    let limit = 10u128.checked_pow(precision).unwrap_or(u128::MAX);
    if value.unsigned_abs() >= limit {
        return Err(too_big());
    }
    Ok(value)
}

/// Exact decimal text of two's-complement big-endian `unscaled` × 10^-`scale`.
fn decimal_text(unscaled: &[u8], scale: i64) -> Result<String, Fail> {
    if unscaled.len() > MAX_TEXT_DECIMAL_BYTES
        || scale.unsigned_abs() > MAX_TEXT_DECIMAL_SCALE as u64
    {
        return Err(Fail::new(format!(
            "decimal of {} bytes with scale {scale} is too large to keep",
            unscaled.len()
        )));
    }
    let negative = unscaled.first().is_some_and(|b| b & 0x80 != 0);
    let digits = match decimal_i128(unscaled, 39) {
        Ok(v) => v.unsigned_abs().to_string(),
        Err(_) => big_magnitude_digits(unscaled, negative),
    };
    let mut out = String::with_capacity(digits.len() + 3);
    if negative && digits != "0" {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(&digits);
        if digits != "0" {
            out.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        }
    } else {
        let scale = scale as usize;
        if digits.len() <= scale {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', scale - digits.len()));
            out.push_str(&digits);
        } else {
            let (int_part, frac_part) = digits.split_at(digits.len() - scale);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac_part);
        }
    }
    Ok(out)
}

/// Decimal digits of the magnitude of a two's-complement big-endian integer of any length.
fn big_magnitude_digits(bytes: &[u8], negative: bool) -> String {
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        for b in &mut magnitude {
            *b = !*b;
        }
        for b in magnitude.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
    }
    // Big-endian base-2^32 limbs, divided repeatedly by 10^9.
    let padding = (4 - magnitude.len() % 4) % 4;
    let mut padded = vec![0u8; padding];
    padded.extend_from_slice(&magnitude);
    let mut limbs: Vec<u32> = padded
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut chunks: Vec<u32> = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut remainder = 0u64;
        for limb in &mut limbs {
            let current = (remainder << 32) | u64::from(*limb);
            *limb = (current / 1_000_000_000) as u32;
            remainder = current % 1_000_000_000;
        }
        chunks.push(remainder as u32);
        let leading = limbs.iter().take_while(|&&l| l == 0).count();
        limbs.drain(..leading);
    }
    let mut out = String::new();
    match chunks.split_last() {
        None => out.push('0'),
        Some((most, rest)) => {
            let _ = write!(out, "{most}");
            for chunk in rest.iter().rev() {
                let _ = write!(out, "{chunk:09}");
            }
        }
    }
    out
}

/// An ISO-8601 date-time with offset (Debezium's `ZonedTimestamp`) as UTC micros.
fn parse_zoned(text: &str) -> Result<i64, Fail> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%#z"))
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M%#z"));
    match parsed {
        Ok(t) => Ok(t.timestamp_micros()),
        Err(e) => Err(Fail::new(format!(
            "{text:?} is not an ISO-8601 timestamp with offset (io.debezium.time.ZonedTimestamp): {e}"
        ))),
    }
}

fn uuid_text(bytes: &[u8]) -> Result<String, Fail> {
    if bytes.len() != 16 {
        return Err(Fail::new(format!(
            "a uuid has 16 bytes, not {}",
            bytes.len()
        )));
    }
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

/// Avro `duration` (months, days, millis as little-endian u32) as ISO-8601 text.
fn duration_text(bytes: &[u8]) -> String {
    let part = |i: usize| u32::from_le_bytes(array(bytes.get(i * 4..).unwrap_or_default()));
    let (months, days, millis) = (part(0), part(1), part(2));
    format!("P{months}M{days}DT{}.{:03}S", millis / 1000, millis % 1000)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::registry::{InMemorySchemas, RegistryError};
    use apache_avro::types::Value as A;
    use apache_avro::writer::datum::GenericDatumWriter;
    use apache_avro::{Days, Decimal, Duration, Millis, Months};
    use proptest::prelude::*;
    use std::sync::Arc;

    const ENVELOPE: &str =
        include_str!("../../tests/fixtures/avro/debezium_postgres_envelope.avsc");

    /// The Avro binary encoding of `value` (what `to_avro_datum` did before 0.22).
    fn to_avro_datum(schema: &Schema, value: A) -> apache_avro::AvroResult<Vec<u8>> {
        GenericDatumWriter::builder(schema)
            .build()?
            .write_value_to_vec(value)
    }

    fn framed(id: u32, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn cache(id: u32, schema_json: &str) -> SchemaCache {
        let mut cache = SchemaCache::new();
        cache.insert(id, Arc::new(AvroSchema::parse(id, schema_json).unwrap()));
        cache
    }

    /// Writes `value` with apache_avro, frames it and decodes it with our decoder.
    fn roundtrip(schema_json: &str, value: A) -> Decoded {
        let schema = Schema::parse_str(schema_json).unwrap();
        let body = to_avro_datum(&schema, value).unwrap();
        decode(&framed(42, &body), &cache(42, schema_json)).unwrap()
    }

    fn record(fields: &[(&str, &str)]) -> String {
        let fields: Vec<String> = fields
            .iter()
            .map(|(name, ty)| format!(r#"{{"name":"{name}","type":{ty}}}"#))
            .collect();
        format!(
            r#"{{"type":"record","name":"R","fields":[{}]}}"#,
            fields.join(",")
        )
    }

    fn a_record(fields: Vec<(&str, A)>) -> A {
        A::Record(
            fields
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
        )
    }

    fn v_struct(fields: Vec<(&str, Value)>) -> Value {
        Value::Struct(fields.into_iter().map(|(n, v)| (Box::from(n), v)).collect())
    }

    fn t_struct(fields: Vec<(&str, ColumnType)>) -> ColumnType {
        ColumnType::Struct(fields.into_iter().map(|(n, t)| Field::new(n, t)).collect())
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    /// Decodes one field `v` of type `ty` and returns its value and column type.
    fn one(ty: &str, value: A) -> (Value, ColumnType) {
        let decoded = roundtrip(&record(&[("v", ty)]), a_record(vec![("v", value)]));
        let Value::Struct(mut fields) = decoded.value else {
            panic!("not a struct")
        };
        let Some(ColumnType::Struct(types)) = decoded.schema else {
            panic!("not a struct type")
        };
        (fields.remove(0).1, types[0].ty.clone())
    }

    #[test]
    fn primitives() {
        let schema = record(&[
            ("b", r#""boolean""#),
            ("i", r#""int""#),
            ("l", r#""long""#),
            ("f", r#""float""#),
            ("d", r#""double""#),
            ("s", r#""string""#),
            ("y", r#""bytes""#),
            ("n", r#""null""#),
        ]);
        let decoded = roundtrip(
            &schema,
            a_record(vec![
                ("b", A::Boolean(true)),
                ("i", A::Int(-5)),
                ("l", A::Long(1 << 40)),
                ("f", A::Float(1.5)),
                ("d", A::Double(-2.25)),
                ("s", A::String("héllo".into())),
                ("y", A::Bytes(vec![0, 1, 255])),
                ("n", A::Null),
            ]),
        );
        assert_eq!(
            decoded.value,
            v_struct(vec![
                ("b", Value::Bool(true)),
                ("i", Value::Int(-5)),
                ("l", Value::Int(1 << 40)),
                ("f", Value::Float(1.5)),
                ("d", Value::Float(-2.25)),
                ("s", s("héllo")),
                ("y", Value::Bytes(vec![0, 1, 255].into())),
                ("n", Value::Null),
            ])
        );
        use ColumnType as T;
        assert_eq!(
            decoded.schema,
            Some(t_struct(vec![
                ("b", T::Boolean),
                ("i", T::Int32),
                ("l", T::Int64),
                ("f", T::Float32),
                ("d", T::Float64),
                ("s", T::String),
                ("y", T::Binary),
                ("n", T::Null),
            ]))
        );
    }

    #[test]
    fn top_level_primitive_schemas() {
        let decoded = roundtrip(r#""string""#, A::String("key-1".into()));
        assert_eq!(decoded.value, s("key-1"));
        assert_eq!(decoded.schema, Some(ColumnType::String));
        let decoded = roundtrip(r#"{"type":"long"}"#, A::Long(-1));
        assert_eq!(decoded.value, Value::Int(-1));
    }

    #[test]
    fn decimals() {
        use ColumnType as T;
        let bytes = r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}"#;
        assert_eq!(
            one(bytes, A::Decimal(Decimal::from([0x30, 0x39]))),
            (
                Value::Decimal(12345),
                T::Decimal {
                    precision: 10,
                    scale: 2
                }
            )
        );
        assert_eq!(
            one(bytes, A::Decimal(Decimal::from([0xcf, 0xc7]))).0,
            Value::Decimal(-12345)
        );
        let fixed = r#"{"type":"fixed","name":"Money","size":9,"logicalType":"decimal","precision":20,"scale":4}"#;
        assert_eq!(
            one(fixed, A::Decimal(Decimal::from([0xff; 9]))),
            (
                Value::Decimal(-1),
                T::Decimal {
                    precision: 20,
                    scale: 4
                }
            )
        );
        // Precision over 38: exact text.
        let wide = r#"{"type":"bytes","logicalType":"decimal","precision":50,"scale":5}"#;
        assert_eq!(
            one(wide, A::Decimal(Decimal::from([0x07, 0x5b, 0xcd, 0x15]))),
            (s("1234.56789"), T::String)
        );
        let mut two_pow_128 = vec![0x01];
        two_pow_128.extend([0u8; 16]);
        assert_eq!(
            one(wide, A::Decimal(Decimal::from(&two_pow_128))).0,
            s("3402823669209384634633746074317682.11456")
        );
        let mut minus_two_pow_128 = vec![0xff];
        minus_two_pow_128.extend([0u8; 16]);
        assert_eq!(
            one(wide, A::Decimal(Decimal::from(&minus_two_pow_128))).0,
            s("-3402823669209384634633746074317682.11456")
        );
        let big = one(
            r#"{"type":"bytes","logicalType":"big-decimal"}"#,
            A::BigDecimal("-12.0500".parse().unwrap()),
        );
        assert_eq!(big, (s("-12.0500"), T::String));
    }

    #[test]
    fn decimal_with_more_digits_than_its_precision_is_an_error() {
        let schema = record(&[(
            "v",
            r#"{"type":"bytes","logicalType":"decimal","precision":3,"scale":0}"#,
        )]);
        // 1000 has 4 digits; bytes 0x03e8 written by hand (apache_avro does not check).
        let body = [0x04, 0x03, 0xe8];
        let error = decode(&framed(1, &body), &cache(1, &schema)).unwrap_err();
        assert!(
            matches!(&error, DecodeError::Avro { id: 1, detail } if detail.contains("more than 3 digits")),
            "{error}"
        );
    }

    #[test]
    fn dates_times_and_timestamps() {
        use ColumnType as T;
        let cases: Vec<(&str, A, Value, T)> = vec![
            (
                r#"{"type":"int","logicalType":"date"}"#,
                A::Date(19_000),
                Value::Date(19_000),
                T::Date,
            ),
            (
                r#"{"type":"int","logicalType":"time-millis"}"#,
                A::TimeMillis(3_600_123),
                Value::Time(3_600_123_000),
                T::Time,
            ),
            (
                r#"{"type":"long","logicalType":"time-micros"}"#,
                A::TimeMicros(3_600_123_456),
                Value::Time(3_600_123_456),
                T::Time,
            ),
            (
                r#"{"type":"long","logicalType":"timestamp-millis"}"#,
                A::TimestampMillis(1_700_000_000_123),
                Value::Timestamp(1_700_000_000_123_000),
                T::Timestamp,
            ),
            (
                r#"{"type":"long","logicalType":"timestamp-micros"}"#,
                A::TimestampMicros(-1),
                Value::Timestamp(-1),
                T::Timestamp,
            ),
            (
                r#"{"type":"long","logicalType":"timestamp-nanos"}"#,
                A::TimestampNanos(1_700_000_000_123_456_789),
                Value::Timestamp(1_700_000_000_123_456),
                T::Timestamp,
            ),
            (
                r#"{"type":"long","logicalType":"timestamp-nanos"}"#,
                A::TimestampNanos(-1),
                Value::Timestamp(-1),
                T::Timestamp,
            ),
            (
                r#"{"type":"long","logicalType":"local-timestamp-millis"}"#,
                A::LocalTimestampMillis(5),
                Value::Timestamp(5_000),
                T::Timestamp,
            ),
            (
                r#"{"type":"long","logicalType":"local-timestamp-micros"}"#,
                A::LocalTimestampMicros(5),
                Value::Timestamp(5),
                T::Timestamp,
            ),
            (
                r#"{"type":"long","logicalType":"local-timestamp-nanos"}"#,
                A::LocalTimestampNanos(5_999),
                Value::Timestamp(5),
                T::Timestamp,
            ),
        ];
        for (schema, value, expected, ty) in cases {
            assert_eq!(one(schema, value), (expected, ty), "{schema}");
        }
    }

    #[test]
    fn uuids_and_durations() {
        let uuid: apache_avro::Uuid = "550e8400-e29b-41d4-a716-446655440000".parse().unwrap();
        assert_eq!(
            one(r#"{"type":"string","logicalType":"uuid"}"#, A::Uuid(uuid)),
            (
                s("550e8400-e29b-41d4-a716-446655440000"),
                ColumnType::String
            )
        );
        assert_eq!(
            one(
                r#"{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}"#,
                A::Uuid(uuid)
            ),
            (
                s("550e8400-e29b-41d4-a716-446655440000"),
                ColumnType::String
            )
        );
        let duration = Duration::new(Months::new(1), Days::new(2), Millis::new(3_004));
        assert_eq!(
            one(
                r#"{"type":"fixed","name":"D","size":12,"logicalType":"duration"}"#,
                A::Duration(duration)
            ),
            (s("P1M2DT3.004S"), ColumnType::String)
        );
    }

    #[test]
    fn connect_and_debezium_annotations() {
        use ColumnType as T;
        let ann = |base: &str, name: &str| {
            format!(r#"{{"type":"{base}","connect.version":1,"connect.name":"{name}"}}"#)
        };
        let cases: Vec<(String, A, Value, T)> = vec![
            (ann("int", "io.debezium.time.Date"), A::Int(19_000), Value::Date(19_000), T::Date),
            (ann("int", "org.apache.kafka.connect.data.Date"), A::Int(-3), Value::Date(-3), T::Date),
            (ann("int", "io.debezium.time.Time"), A::Int(61_001), Value::Time(61_001_000), T::Time),
            (ann("int", "org.apache.kafka.connect.data.Time"), A::Int(1), Value::Time(1_000), T::Time),
            (ann("long", "io.debezium.time.MicroTime"), A::Long(61_000_001), Value::Time(61_000_001), T::Time),
            (ann("long", "io.debezium.time.NanoTime"), A::Long(61_000_001_999), Value::Time(61_000_001), T::Time),
            (
                ann("long", "io.debezium.time.Timestamp"),
                A::Long(1_700_000_000_123),
                Value::Timestamp(1_700_000_000_123_000),
                T::Timestamp,
            ),
            (
                ann("long", "org.apache.kafka.connect.data.Timestamp"),
                A::Long(-1),
                Value::Timestamp(-1_000),
                T::Timestamp,
            ),
            (
                ann("long", "io.debezium.time.MicroTimestamp"),
                A::Long(1_700_000_000_123_456),
                Value::Timestamp(1_700_000_000_123_456),
                T::Timestamp,
            ),
            (
                ann("long", "io.debezium.time.NanoTimestamp"),
                A::Long(1_700_000_000_123_456_789),
                Value::Timestamp(1_700_000_000_123_456),
                T::Timestamp,
            ),
            (
                ann("string", "io.debezium.time.ZonedTimestamp"),
                A::String("2023-11-15T00:13:20.123456+02:00".into()),
                Value::Timestamp(1_700_000_000_123_456),
                T::Timestamp,
            ),
            (
                ann("string", "io.debezium.time.ZonedTimestamp"),
                A::String("2023-11-14T22:13:20Z".into()),
                Value::Timestamp(1_700_000_000_000_000),
                T::Timestamp,
            ),
            (
                r#"{"type":"bytes","connect.parameters":{"scale":"2","connect.decimal.precision":"8"},"connect.name":"org.apache.kafka.connect.data.Decimal"}"#.into(),
                A::Bytes(vec![0xfe, 0x0c]),
                Value::Decimal(-500),
                T::Decimal { precision: 8, scale: 2 },
            ),
            (
                r#"{"type":"bytes","connect.parameters":{"scale":"4"},"connect.name":"org.apache.kafka.connect.data.Decimal"}"#.into(),
                A::Bytes(vec![0x01]),
                Value::Decimal(1),
                T::Decimal { precision: 38, scale: 4 },
            ),
            // Unknown or misplaced annotations keep the primitive.
            (ann("long", "io.debezium.time.Date"), A::Long(7), Value::Int(7), T::Int64),
            (ann("string", "io.debezium.data.Json"), A::String("{}".into()), s("{}"), T::String),
            (ann("int", "io.debezium.time.Year"), A::Int(2024), Value::Int(2024), T::Int32),
        ];
        for (schema, value, expected, ty) in cases {
            assert_eq!(one(&schema, value), (expected, ty), "{schema}");
        }
        // The same annotations inside a nullable union, either order.
        for union in [
            format!(r#"["null",{}]"#, ann("int", "io.debezium.time.Date")),
            format!(r#"[{},"null"]"#, ann("int", "io.debezium.time.Date")),
        ] {
            let index = if union.starts_with(r#"["null""#) {
                1
            } else {
                0
            };
            let (value, ty) = one(&union, A::Union(index, Box::new(A::Int(2))));
            assert_eq!((value, ty), (Value::Date(2), T::Date), "{union}");
            let (value, _) = one(&union, A::Union(1 - index, Box::new(A::Null)));
            assert_eq!(value, Value::Null);
        }
    }

    #[test]
    fn arrays_and_maps_written_in_sized_blocks() {
        let schema_json = record(&[
            ("a", r#"{"type":"array","items":"long"}"#),
            ("m", r#"{"type":"map","values":"string"}"#),
        ]);
        let schema = Schema::parse_str(&schema_json).unwrap();
        // Small target blocks: several blocks, each with a negative count and a byte size.
        let body = GenericDatumWriter::builder(&schema)
            .target_block_size(1)
            .build()
            .unwrap()
            .write_value_to_vec(a_record(vec![
                ("a", A::Array((0..5).map(A::Long).collect())),
                (
                    "m",
                    A::Map([("k".to_string(), A::String("v".into()))].into()),
                ),
            ]))
            .unwrap();
        let decoded = decode(&framed(4, &body), &cache(4, &schema_json)).unwrap();
        assert_eq!(
            decoded.value,
            v_struct(vec![
                ("a", Value::List((0..5).map(Value::Int).collect())),
                ("m", s(r#"{"k":"v"}"#)),
            ])
        );
    }

    #[test]
    fn unparsable_zoned_timestamp_names_the_field() {
        let schema = record(&[(
            "inner",
            &record(&[(
                "ts",
                r#"{"type":"string","connect.name":"io.debezium.time.ZonedTimestamp"}"#,
            )])
            .replace(r#""name":"R""#, r#""name":"Inner""#),
        )]);
        let parsed = Schema::parse_str(&schema).unwrap();
        let body = to_avro_datum(
            &parsed,
            a_record(vec![(
                "inner",
                a_record(vec![("ts", A::String("yesterday".into()))]),
            )]),
        )
        .unwrap();
        let error = decode(&framed(3, &body), &cache(3, &schema)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("field `inner.ts`"), "{text}");
        assert!(text.contains("\"yesterday\""), "{text}");
        assert!(matches!(error, DecodeError::Avro { id: 3, .. }));
    }

    #[test]
    fn nested_records_arrays_maps_enums_and_unions() {
        use ColumnType as T;
        let schema = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
            {"name":"customer","type":{"type":"record","name":"Customer","fields":[
                {"name":"id","type":"long"},
                {"name":"tags","type":{"type":"array","items":"string"}}]}},
            {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
                {"name":"sku","type":"string"},
                {"name":"qty","type":["null","int"]}]}}},
            {"name":"attrs","type":{"type":"map","values":"long"}},
            {"name":"prices","type":{"type":"map","values":{"type":"bytes","logicalType":"decimal","precision":5,"scale":2}}},
            {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
            {"name":"note","type":["string","null"]},
            {"name":"any","type":["null","int","string"]},
            {"name":"only","type":["long"]},
            {"name":"referrer","type":["null","shop.Customer"]}
        ]}"#;
        let decoded = roundtrip(
            schema,
            a_record(vec![
                (
                    "customer",
                    a_record(vec![
                        ("id", A::Long(7)),
                        (
                            "tags",
                            A::Array(vec![A::String("vip".into()), A::String("new".into())]),
                        ),
                    ]),
                ),
                (
                    "lines",
                    A::Array(vec![
                        a_record(vec![
                            ("sku", A::String("A-1".into())),
                            ("qty", A::Union(1, Box::new(A::Int(2)))),
                        ]),
                        a_record(vec![
                            ("sku", A::String("B-2".into())),
                            ("qty", A::Union(0, Box::new(A::Null))),
                        ]),
                    ]),
                ),
                ("attrs", A::Map([("weight".to_string(), A::Long(3))].into())),
                (
                    "prices",
                    A::Map([("eur".to_string(), A::Decimal(Decimal::from([0x04, 0xd2])))].into()),
                ),
                ("status", A::Enum(1, "PAID".into())),
                ("note", A::Union(1, Box::new(A::Null))),
                ("any", A::Union(2, Box::new(A::String("x\"y".into())))),
                ("only", A::Union(0, Box::new(A::Long(9)))),
                (
                    "referrer",
                    A::Union(
                        1,
                        Box::new(a_record(vec![
                            ("id", A::Long(8)),
                            ("tags", A::Array(vec![])),
                        ])),
                    ),
                ),
            ]),
        );
        assert_eq!(
            decoded.value,
            v_struct(vec![
                (
                    "customer",
                    v_struct(vec![
                        ("id", Value::Int(7)),
                        ("tags", Value::List(vec![s("vip"), s("new")]))
                    ])
                ),
                (
                    "lines",
                    Value::List(vec![
                        v_struct(vec![("sku", s("A-1")), ("qty", Value::Int(2))]),
                        v_struct(vec![("sku", s("B-2")), ("qty", Value::Null)]),
                    ])
                ),
                ("attrs", s(r#"{"weight":3}"#)),
                ("prices", s(r#"{"eur":"12.34"}"#)),
                ("status", s("PAID")),
                ("note", Value::Null),
                ("any", s(r#""x\"y""#)),
                ("only", Value::Int(9)),
                (
                    "referrer",
                    v_struct(vec![("id", Value::Int(8)), ("tags", Value::List(vec![]))])
                ),
            ])
        );
        let customer = t_struct(vec![
            ("id", T::Int64),
            ("tags", T::List(Box::new(T::String))),
        ]);
        assert_eq!(
            decoded.schema,
            Some(t_struct(vec![
                ("customer", customer.clone()),
                (
                    "lines",
                    T::List(Box::new(t_struct(vec![
                        ("sku", T::String),
                        ("qty", T::Int32)
                    ])))
                ),
                ("attrs", T::Json),
                ("prices", T::Json),
                ("status", T::String),
                ("note", T::String),
                ("any", T::Json),
                ("only", T::Int64),
                ("referrer", customer),
            ]))
        );
        // Other branches of the general union.
        let any = |branch: u32, value: A| {
            one(
                r#"["null","int","string"]"#,
                A::Union(branch, Box::new(value)),
            )
            .0
        };
        assert_eq!(any(1, A::Int(5)), s("5"));
        assert_eq!(any(0, A::Null), Value::Null);
    }

    #[test]
    fn named_types_are_resolved_wherever_referenced() {
        use ColumnType as T;
        let schema = r#"{"type":"record","name":"R","namespace":"a","fields":[
            {"name":"x","type":{"type":"fixed","name":"Pair","size":2}},
            {"name":"y","type":"Pair"},
            {"name":"when","type":{"type":"record","name":"When","namespace":"b","fields":[
                {"name":"at","type":{"type":"long","connect.name":"io.debezium.time.MicroTimestamp"}}]}},
            {"name":"again","type":"b.When"},
            {"name":"maybe","type":["null","b.When"]}
        ]}"#;
        let when = a_record(vec![("at", A::Long(5))]);
        let decoded = roundtrip(
            schema,
            a_record(vec![
                ("x", A::Fixed(2, vec![1, 2])),
                ("y", A::Fixed(2, vec![3, 4])),
                ("when", when.clone()),
                ("again", when.clone()),
                ("maybe", A::Union(1, Box::new(when))),
            ]),
        );
        let when = v_struct(vec![("at", Value::Timestamp(5))]);
        assert_eq!(
            decoded.value,
            v_struct(vec![
                ("x", Value::Bytes(vec![1, 2].into())),
                ("y", Value::Bytes(vec![3, 4].into())),
                ("when", when.clone()),
                ("again", when.clone()),
                ("maybe", when),
            ])
        );
        let when_type = t_struct(vec![("at", T::Timestamp)]);
        assert_eq!(
            decoded.schema,
            Some(t_struct(vec![
                ("x", T::Binary),
                ("y", T::Binary),
                ("when", when_type.clone()),
                ("again", when_type.clone()),
                ("maybe", when_type),
            ]))
        );
    }

    #[test]
    fn recursive_types_become_json() {
        let schema = r#"{"type":"record","name":"Node","fields":[
            {"name":"value","type":"int"},
            {"name":"next","type":["null","Node"]}]}"#;
        let decoded = roundtrip(
            schema,
            a_record(vec![
                ("value", A::Int(1)),
                (
                    "next",
                    A::Union(
                        1,
                        Box::new(a_record(vec![
                            ("value", A::Int(2)),
                            ("next", A::Union(0, Box::new(A::Null))),
                        ])),
                    ),
                ),
            ]),
        );
        assert_eq!(
            decoded.value,
            v_struct(vec![
                ("value", Value::Int(1)),
                ("next", s(r#"{"value":2,"next":null}"#))
            ])
        );
        assert_eq!(
            decoded.schema,
            Some(t_struct(vec![
                ("value", ColumnType::Int32),
                ("next", ColumnType::Json)
            ]))
        );
    }

    #[test]
    fn column_type_of_a_parsed_schema() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[
                {"name":"d","type":{"type":"int","logicalType":"date"}},
                {"name":"t","type":{"type":"long","connect.name":"io.debezium.time.MicroTimestamp"}}]}"#,
        )
        .unwrap();
        // Without the JSON text the Connect annotation is gone (apache_avro drops it).
        assert_eq!(
            column_type(&schema),
            t_struct(vec![("d", ColumnType::Date), ("t", ColumnType::Int64)])
        );
    }

    fn envelope_record(after: A, updated_at: &str) -> A {
        a_record(vec![
            ("before", A::Union(0, Box::new(A::Null))),
            ("after", A::Union(1, Box::new(after))),
            (
                "source",
                a_record(vec![
                    ("version", A::String("2.5.0.Final".into())),
                    ("connector", A::String("postgresql".into())),
                    ("name", A::String("dbserver1".into())),
                    ("ts_ms", A::Long(1_700_000_000_000)),
                    ("snapshot", A::Union(0, Box::new(A::String("false".into())))),
                    ("db", A::String("inventory".into())),
                    (
                        "sequence",
                        A::Union(1, Box::new(A::String("[\"1\",\"2\"]".into()))),
                    ),
                    ("schema", A::String("inventory".into())),
                    ("table", A::String("customers".into())),
                    ("txId", A::Union(1, Box::new(A::Long(555)))),
                    ("lsn", A::Union(1, Box::new(A::Long(33_227_720)))),
                    ("xmin", A::Union(0, Box::new(A::Null))),
                ]),
            ),
            ("op", A::String("c".into())),
            ("ts_ms", A::Union(1, Box::new(A::Long(1_700_000_000_321)))),
            ("transaction", A::Union(0, Box::new(A::Null))),
        ])
        .tap_updated_at(updated_at)
    }

    trait TapUpdatedAt {
        fn tap_updated_at(self, updated_at: &str) -> Self;
    }

    impl TapUpdatedAt for A {
        fn tap_updated_at(mut self, updated_at: &str) -> Self {
            if let A::Record(fields) = &mut self
                && let Some((_, A::Union(_, after))) = fields.iter_mut().find(|(n, _)| n == "after")
                && let A::Record(after) = after.as_mut()
                && let Some((_, v)) = after.iter_mut().find(|(n, _)| n == "updated_at")
            {
                *v = A::String(updated_at.into());
            }
            self
        }
    }

    fn customer_row() -> A {
        a_record(vec![
            ("id", A::Int(1001)),
            ("name", A::Union(1, Box::new(A::String("Sally".into())))),
            (
                "balance",
                A::Union(1, Box::new(A::Decimal(Decimal::from([0x30, 0x39])))),
            ),
            (
                "credit",
                A::Union(1, Box::new(A::Bytes(vec![0x01, 0xe2, 0x40]))),
            ),
            ("born", A::Union(1, Box::new(A::Int(7_000)))),
            ("wakes_at", A::Union(1, Box::new(A::Long(25_200_000_000)))),
            ("created_at", A::Long(1_700_000_000_000_001)),
            ("updated_at", A::String(String::new())),
            (
                "exact",
                A::Union(
                    1,
                    Box::new(a_record(vec![
                        ("scale", A::Int(3)),
                        ("value", A::Bytes(vec![0xff, 0x85])),
                    ])),
                ),
            ),
        ])
    }

    fn envelope_bytes(updated_at: &str) -> Vec<u8> {
        let schema = Schema::parse_str(ENVELOPE).unwrap();
        framed(
            9,
            &to_avro_datum(&schema, envelope_record(customer_row(), updated_at)).unwrap(),
        )
    }

    #[test]
    fn debezium_envelope() {
        use ColumnType as T;
        let schemas = cache(9, ENVELOPE);
        let decoded = decode(&envelope_bytes("2023-11-14T23:13:20.5+01:00"), &schemas).unwrap();
        let after = v_struct(vec![
            ("id", Value::Int(1001)),
            ("name", s("Sally")),
            ("balance", Value::Decimal(12345)),
            ("credit", Value::Decimal(123_456)),
            ("born", Value::Date(7_000)),
            ("wakes_at", Value::Time(25_200_000_000)),
            ("created_at", Value::Timestamp(1_700_000_000_000_001)),
            ("updated_at", Value::Timestamp(1_700_000_000_500_000)),
            ("exact", s("-0.123")),
        ]);
        assert_eq!(decoded.value.get("before"), Some(&Value::Null));
        assert_eq!(decoded.value.get("after"), Some(&after));
        assert_eq!(decoded.value.get("op"), Some(&s("c")));
        assert_eq!(
            decoded.value.get("ts_ms"),
            Some(&Value::Int(1_700_000_000_321))
        );
        assert_eq!(decoded.value.get("transaction"), Some(&Value::Null));
        let source = decoded.value.get("source").unwrap();
        assert_eq!(source.get("snapshot"), Some(&s("false")));
        assert_eq!(source.get("lsn"), Some(&Value::Int(33_227_720)));
        assert_eq!(source.get("xmin"), Some(&Value::Null));

        let row = t_struct(vec![
            ("id", T::Int32),
            ("name", T::String),
            (
                "balance",
                T::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            (
                "credit",
                T::Decimal {
                    precision: 38,
                    scale: 3,
                },
            ),
            ("born", T::Date),
            ("wakes_at", T::Time),
            ("created_at", T::Timestamp),
            ("updated_at", T::Timestamp),
            ("exact", T::String),
        ]);
        let Some(T::Struct(fields)) = &decoded.schema else {
            panic!("struct")
        };
        let names: Vec<&str> = fields.iter().map(|f| &*f.name).collect();
        assert_eq!(
            names,
            ["before", "after", "source", "op", "ts_ms", "transaction"]
        );
        assert_eq!(fields[0].ty, row);
        assert_eq!(
            fields[1].ty, row,
            "the `Value` reference keeps the annotations"
        );
        assert_eq!(fields[4].ty, T::Int64);
        assert_eq!(
            fields[5].ty,
            t_struct(vec![
                ("id", T::String),
                ("total_order", T::Int64),
                ("data_collection_order", T::Int64)
            ])
        );

        let error = decode(&envelope_bytes("not a time"), &schemas).unwrap_err();
        assert!(
            error.to_string().contains("field `after.updated_at`"),
            "{error}"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let schemas = cache(9, ENVELOPE);
        let good = envelope_bytes("2023-11-14T22:13:20Z");
        assert!(decode(&good, &schemas).is_ok());
        for cut in 0..good.len() {
            let error = decode(&good[..cut], &schemas).unwrap_err();
            let expected = if cut < WIRE_HEADER_LEN {
                matches!(error, DecodeError::WireFormat(_))
            } else {
                matches!(error, DecodeError::Avro { id: 9, .. })
            };
            assert!(expected, "cut at {cut}: {error:?}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(
            matches!(decode(&trailing, &schemas), Err(DecodeError::Avro { detail, .. }) if detail.contains("1 bytes are left"))
        );
        assert!(
            matches!(decode(&[], &schemas), Err(DecodeError::WireFormat(m)) if m.contains("empty"))
        );
        let mut wrong_magic = good.clone();
        wrong_magic[0] = 1;
        assert!(
            matches!(decode(&wrong_magic, &schemas), Err(DecodeError::WireFormat(m)) if m.contains("magic byte 1"))
        );
    }

    #[tokio::test]
    async fn unknown_and_bad_schema_ids() {
        let mut source = InMemorySchemas::new();
        source.insert(1, r#""long""#).insert_error(
            2,
            RegistryError::Invalid {
                id: 2,
                detail: "nope".into(),
            },
        );
        let mut schemas = SchemaCache::new();
        schemas.prefetch(&source, [1, 2, 3]).await.unwrap();
        assert_eq!(
            decode(&framed(1, &[0x02]), &schemas).unwrap().value,
            Value::Int(1)
        );
        assert_eq!(
            decode(&framed(3, &[0x02]), &schemas),
            Err(DecodeError::UnknownSchema { id: 3 })
        );
        assert!(matches!(
            decode(&framed(2, &[0x02]), &schemas),
            Err(DecodeError::BadSchema { id: 2, .. })
        ));
    }

    #[test]
    fn hostile_bodies_fail_cleanly() {
        let check = |schema: &str, body: &[u8], needle: &str| {
            let error = decode(&framed(1, body), &cache(1, schema)).unwrap_err();
            assert!(error.to_string().contains(needle), "{schema}: {error}");
        };
        // A string longer than the body.
        check(r#""string""#, &[0x80, 0x80, 0x04], "longer than");
        // Invalid UTF-8.
        check(r#""string""#, &[0x02, 0xff], "not UTF-8");
        // A negative length.
        check(r#""bytes""#, &[0x01], "negative");
        // Billions of array items in a few bytes.
        check(
            r#"{"type":"array","items":"long"}"#,
            &[0xfe, 0xff, 0xff, 0xff, 0x0f],
            "cannot fit",
        );
        check(
            r#"{"type":"array","items":"null"}"#,
            &[0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00],
            "empty type",
        );
        // Union and enum indexes out of range.
        check(r#"["null","long"]"#, &[0x04], "branch index 2");
        check(r#"["null","int","string"]"#, &[0x01], "branch index -1");
        check(
            r#"{"type":"enum","name":"E","symbols":["A"]}"#,
            &[0x02],
            "enum index 1",
        );
        // A boolean byte that is not 0 or 1; an int wider than 32 bits; an endless varint.
        check(r#""boolean""#, &[0x02], "not 0 or 1");
        check(
            r#""int""#,
            &[0x80, 0x80, 0x80, 0x80, 0x20],
            "does not fit 32 bits",
        );
        check(r#""long""#, &[0xff; 11], "longer than 10 bytes");
        // Deep nesting of a recursive type.
        let deep: Vec<u8> = std::iter::repeat_n([0x02u8], 400).flatten().collect();
        check(
            r#"{"type":"record","name":"N","fields":[{"name":"next","type":["null","N"]}]}"#,
            &deep,
            "nest deeper",
        );
    }

    #[test]
    fn big_integers_format_like_i128() {
        for v in [
            0i128,
            1,
            -1,
            255,
            -256,
            i128::MAX,
            i128::MIN,
            10i128.pow(30),
            -(10i128.pow(30)),
        ] {
            let mut bytes = vec![if v < 0 { 0xff } else { 0 }; 8];
            bytes.extend_from_slice(&v.to_be_bytes());
            assert_eq!(
                big_magnitude_digits(&bytes, v < 0),
                v.unsigned_abs().to_string()
            );
        }
        assert_eq!(decimal_text(&[0x00], 3).unwrap(), "0.000");
        assert_eq!(decimal_text(&[0x05], -2).unwrap(), "500");
        assert_eq!(decimal_text(&[0xfb], 1).unwrap(), "-0.5");
        assert_eq!(decimal_text(&[], 0).unwrap(), "0");
    }

    /// The envelope schema and a schema touching every other node kind, for the fuzz tests.
    static FUZZ_SCHEMAS: std::sync::LazyLock<SchemaCache> = std::sync::LazyLock::new(fuzz_schemas);
    static FUZZ_RECORD: std::sync::LazyLock<Vec<u8>> =
        std::sync::LazyLock::new(|| envelope_bytes("2023-11-14T22:13:20Z"));

    fn fuzz_schemas() -> SchemaCache {
        let mut schemas = cache(9, ENVELOPE);
        let wide = r#"{"type":"record","name":"W","fields":[
            {"name":"a","type":{"type":"array","items":["null","string",{"type":"map","values":"double"}]}},
            {"name":"d","type":{"type":"fixed","name":"D","size":12,"logicalType":"duration"}},
            {"name":"e","type":{"type":"enum","name":"E","symbols":["X","Y","Z"]}},
            {"name":"f","type":{"type":"fixed","name":"M","size":20,"logicalType":"decimal","precision":45,"scale":3}},
            {"name":"b","type":{"type":"bytes","logicalType":"big-decimal"}},
            {"name":"u","type":{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}},
            {"name":"n","type":["null",{"type":"array","items":"null"}]},
            {"name":"r","type":["null","W"]}
        ]}"#;
        schemas.insert(10, Arc::new(AvroSchema::parse(10, wide).unwrap()));
        schemas
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let schemas = &*FUZZ_SCHEMAS;
            let _ = decode(&bytes, schemas);
            for id in [9u32, 10] {
                let _ = decode(&framed(id, &bytes), schemas);
            }
        }

        #[test]
        fn mutated_records_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
        ) {
            let mut bytes = FUZZ_RECORD.clone();
            for (index, byte) in flips {
                let i = index.index(bytes.len() - WIRE_HEADER_LEN) + WIRE_HEADER_LEN;
                bytes[i] = byte;
            }
            let _ = decode(&bytes, &FUZZ_SCHEMAS);
        }

        #[test]
        fn random_values_roundtrip(
            id in any::<i64>(),
            name in proptest::option::of(".{0,20}"),
            scores in proptest::collection::vec(any::<f64>().prop_filter("not NaN", |f| !f.is_nan()), 0..5),
            small in any::<i32>(),
            flag in any::<bool>(),
            when in any::<i64>(),
        ) {
            let schema = record(&[
                ("id", r#""long""#),
                ("name", r#"["null","string"]"#),
                ("scores", r#"{"type":"array","items":"double"}"#),
                ("small", r#""int""#),
                ("flag", r#""boolean""#),
                ("when", r#"{"type":"long","logicalType":"timestamp-micros"}"#),
            ]);
            let decoded = roundtrip(&schema, a_record(vec![
                ("id", A::Long(id)),
                ("name", match &name { Some(n) => A::Union(1, Box::new(A::String(n.clone()))), None => A::Union(0, Box::new(A::Null)) }),
                ("scores", A::Array(scores.iter().map(|f| A::Double(*f)).collect())),
                ("small", A::Int(small)),
                ("flag", A::Boolean(flag)),
                ("when", A::TimestampMicros(when)),
            ]));
            prop_assert_eq!(decoded.value, v_struct(vec![
                ("id", Value::Int(id)),
                ("name", name.map_or(Value::Null, |n| s(&n))),
                ("scores", Value::List(scores.into_iter().map(Value::Float).collect())),
                ("small", Value::Int(i64::from(small))),
                ("flag", Value::Bool(flag)),
                ("when", Value::Timestamp(when)),
            ]));
        }

        #[test]
        fn big_integer_digits_match_i128(v in any::<i128>(), pad in 0usize..6) {
            let mut bytes = vec![if v < 0 { 0xff } else { 0 }; pad];
            bytes.extend_from_slice(&v.to_be_bytes());
            prop_assert_eq!(big_magnitude_digits(&bytes, v < 0), v.unsigned_abs().to_string());
        }
    }
}
