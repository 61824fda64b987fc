#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::registry::{InMemorySchemas, RegistryError};
use apache_avro::types::Value as A;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Days, Decimal, Duration, Millis, Months};
use proptest::prelude::*;
use std::sync::Arc;

const ENVELOPE: &str = include_str!("../../../tests/fixtures/avro/debezium_postgres_envelope.avsc");

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
    Value::Struct(
        fields
            .into_iter()
            .map(|(n, v)| (FieldName::from(n), v))
            .collect(),
    )
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
