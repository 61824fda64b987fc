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
use crate::value::{ColumnType, Field, FieldName, MAX_DECIMAL_PRECISION, Text, Value};

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
    Record(Box<[(FieldName, NodeId)]>),
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
            fields.push((FieldName::from(field.name.as_str()), node));
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
                    Some(s) => Value::String(Text::from(&**s)),
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
                        let key: FieldName = r.str()?.into();
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
mod tests;
