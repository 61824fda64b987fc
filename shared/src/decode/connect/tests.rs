#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

const ALL_TYPES: &str = include_str!("../../../tests/fixtures/connect/all_types.json");
const PG_UPDATE: &str =
    include_str!("../../../tests/fixtures/connect/debezium_postgres_update.json");
const PG_DELETE: &str =
    include_str!("../../../tests/fixtures/connect/debezium_postgres_delete.json");

fn ok(json: &str) -> Decoded {
    match decode(json.as_bytes()) {
        Ok(decoded) => decoded,
        Err(e) => panic!("{json}: {e}"),
    }
}

fn connect_error(json: &str) -> String {
    match decode(json.as_bytes()) {
        Err(DecodeError::Connect(message)) => message,
        other => panic!("{json}: expected a Connect error, got {other:?}"),
    }
}

/// An envelope whose schema is a struct `after` holding one field `f` of `field_schema`.
fn in_after(field_schema: &str, value: &str) -> String {
    format!(
        r#"{{"schema":{{"type":"struct","fields":[{{"type":"struct","optional":true,"field":"after","fields":[{}]}}]}},"payload":{{"after":{{"f":{value}}}}}}}"#,
        field_schema.replacen('{', r#"{"field":"f","#, 1)
    )
}

fn after_f(decoded: &Decoded) -> (&ColumnType, &Value) {
    let Some(ColumnType::Struct(top)) = &decoded.schema else {
        panic!("no struct schema: {decoded:?}")
    };
    let ColumnType::Struct(after) = &top[0].ty else {
        panic!("after is not a struct")
    };
    let value = decoded.value.get("after").and_then(|a| a.get("f"));
    (&after[0].ty, value.expect("after.f"))
}

fn field_types(ty: &ColumnType) -> Vec<(&str, &ColumnType)> {
    match ty {
        ColumnType::Struct(fields) => fields.iter().map(|f| (&*f.name, &f.ty)).collect(),
        other => panic!("not a struct: {other:?}"),
    }
}

fn s(text: &str) -> Value {
    Value::String(text.into())
}

fn dec(precision: u8, scale: i8) -> ColumnType {
    ColumnType::Decimal { precision, scale }
}

#[test]
fn every_type_and_logical_type() {
    use ColumnType as T;
    let decoded = ok(ALL_TYPES);
    let schema = decoded.schema.clone().unwrap();
    let expected: Vec<(&str, ColumnType, Value)> = vec![
        ("i8", T::Int32, Value::Int(-128)),
        ("i16", T::Int32, Value::Int(32767)),
        ("i32", T::Int32, Value::Int(-2_147_483_648)),
        ("i64", T::Int64, Value::Int(i64::MAX)),
        ("f32", T::Float32, Value::Float(1.5)),
        ("f64", T::Float64, Value::Float(-2.25e10)),
        ("f64_nan", T::Float64, Value::Float(f64::NAN)),
        ("b", T::Boolean, Value::Bool(true)),
        ("s", T::String, s("h\u{e9}llo \"q\"")),
        ("by", T::Binary, Value::Bytes(vec![1, 2, 255].into())),
        (
            "arr",
            T::List(Box::new(T::Int32)),
            Value::List(vec![Value::Int(1), Value::Int(2), Value::Null]),
        ),
        (
            "m_obj",
            T::Json,
            Value::Struct(vec![("a".into(), Value::Int(1)), ("b".into(), Value::Null)]),
        ),
        (
            "m_pairs",
            T::Json,
            Value::Struct(vec![
                ("1".into(), Value::Timestamp(1_709_288_130_123_000)),
                ("2".into(), Value::Null),
            ]),
        ),
        (
            "st",
            T::Struct(vec![Field::new("x", T::Int32), Field::new("y", T::String)]),
            Value::Struct(vec![("x".into(), Value::Int(-7)), ("y".into(), s("z"))]),
        ),
        ("dec", dec(10, 2), Value::Decimal(12345)),
        ("dec_noprec", dec(38, 0), Value::Decimal(1999)),
        (
            "dec_big",
            T::String,
            s("100000000000000000000000000000000000000.00"),
        ),
        ("dec_numeric", dec(10, 2), Value::Decimal(12340)),
        ("dec_neg_scale", dec(7, 0), Value::Decimal(500)),
        ("date", T::Date, Value::Date(19783)),
        ("time", T::Time, Value::Time(36_930_123_000)),
        ("ts", T::Timestamp, Value::Timestamp(1_709_288_130_123_000)),
        ("dbz_date", T::Date, Value::Date(19783)),
        ("dbz_time", T::Time, Value::Time(36_930_123_000)),
        ("micro_time", T::Time, Value::Time(36_930_123_456)),
        ("nano_time", T::Time, Value::Time(36_930_123_456)),
        (
            "dbz_ts",
            T::Timestamp,
            Value::Timestamp(1_709_288_130_123_000),
        ),
        (
            "micro_ts",
            T::Timestamp,
            Value::Timestamp(1_709_288_130_123_456),
        ),
        (
            "nano_ts",
            T::Timestamp,
            Value::Timestamp(1_709_288_130_123_456),
        ),
        (
            "zoned_ts",
            T::Timestamp,
            Value::Timestamp(1_709_288_130_123_456),
        ),
        ("zoned_time", T::String, s("10:15:30.123456Z")),
        ("year", T::Int32, Value::Int(2024)),
        ("vsd", T::String, s("-1234567.89")),
        ("json", T::String, s(r#"{"a": [1, 2]}"#)),
        ("uuid", T::String, s("7e9c7c1e-2b7e-4d3a-9a5e-3c2f1f0d4b11")),
        ("enum", T::String, s("b")),
        ("enum_set", T::String, s("a,c")),
        ("xml", T::String, s("<a>1</a>")),
        ("bits", T::Binary, Value::Bytes(vec![5].into())),
        ("interval", T::String, s("P1Y2M3DT4H5M6.78S")),
        ("micro_duration", T::Int64, Value::Int(3_723_000_000)),
        ("unknown_name", T::Int64, Value::Int(42)),
        ("required_null", T::Int32, Value::Null),
    ];
    let types = field_types(&schema);
    assert_eq!(types.len(), expected.len());
    let Value::Struct(values) = &decoded.value else {
        panic!("not a struct")
    };
    for (i, (name, ty, value)) in expected.iter().enumerate() {
        assert_eq!(types[i], (*name, ty), "type of {name}");
        assert_eq!(&*values[i].0, *name);
        match (value, &values[i].1) {
            (Value::Float(a), Value::Float(b)) if a.is_nan() => assert!(b.is_nan(), "{name}"),
            (expected, got) => assert_eq!(got, expected, "value of {name}"),
        }
    }
}

#[test]
fn debezium_postgres_update() {
    let decoded = ok(PG_UPDATE);
    let schema = decoded.schema.clone().unwrap();
    let top: Vec<&str> = field_types(&schema).iter().map(|(n, _)| *n).collect();
    assert_eq!(
        top,
        [
            "before",
            "after",
            "source",
            "transaction",
            "op",
            "ts_ms",
            "ts_us",
            "ts_ns"
        ]
    );
    let after_ty = field_types(&schema)[1].1.clone();
    let after_types = field_types(&after_ty);
    let ty_of = |name: &str| {
        after_types
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(ty_of("id"), ColumnType::Int32);
    assert_eq!(ty_of("amount"), dec(10, 2));
    assert_eq!(ty_of("balance"), ColumnType::String);
    assert_eq!(ty_of("created_at"), ColumnType::Timestamp);
    assert_eq!(ty_of("updated_at"), ColumnType::Timestamp);
    assert_eq!(ty_of("birth_date"), ColumnType::Date);
    assert_eq!(
        ty_of("tags"),
        ColumnType::List(Box::new(ColumnType::String))
    );
    assert_eq!(ty_of("profile"), ColumnType::String);

    let v = &decoded.value;
    let after = v.get("after").unwrap();
    let before = v.get("before").unwrap();
    assert_eq!(after.get("id"), Some(&Value::Int(1004)));
    assert_eq!(after.get("email"), Some(&s("anne.k@example.com")));
    assert_eq!(after.get("amount"), Some(&Value::Decimal(12345)));
    assert_eq!(before.get("amount"), Some(&Value::Decimal(10000)));
    assert_eq!(after.get("balance"), Some(&s("-5")));
    assert_eq!(before.get("balance"), Some(&s("314.159")));
    assert_eq!(
        after.get("created_at"),
        Some(&Value::Timestamp(1_709_288_130_123_456))
    );
    assert_eq!(
        after.get("updated_at"),
        Some(&Value::Timestamp(1_709_288_130_500_000))
    );
    assert_eq!(
        before.get("updated_at"),
        Some(&Value::Timestamp(1_709_288_130_123_456))
    );
    assert_eq!(after.get("birth_date"), Some(&Value::Date(7441)));
    assert_eq!(
        after.get("tags"),
        Some(&Value::List(vec![s("vip"), Value::Null, s("beta")]))
    );
    assert_eq!(after.get("score"), Some(&Value::Null));
    assert_eq!(after.get("active"), Some(&Value::Bool(true)));
    assert_eq!(v.get("op"), Some(&s("u")));
    assert_eq!(v.get("ts_ms"), Some(&Value::Int(1_709_288_130_456)));
    assert_eq!(v.get("transaction"), Some(&Value::Null));
    let source = v.get("source").unwrap();
    assert_eq!(source.get("lsn"), Some(&Value::Int(24_023_184)));
    assert_eq!(source.get("xmin"), Some(&Value::Null));
    assert_eq!(source.get("snapshot"), Some(&s("false")));
}

#[test]
fn debezium_postgres_delete_has_null_after() {
    let decoded = ok(PG_DELETE);
    assert_eq!(decoded.value.get("after"), Some(&Value::Null));
    assert_eq!(decoded.value.get("op"), Some(&s("d")));
    assert_eq!(
        decoded.value.get("before").and_then(|b| b.get("id")),
        Some(&Value::Int(1004))
    );
    // Same schema as the update: served from the cache, same type.
    assert_eq!(decoded.schema, ok(PG_UPDATE).schema);
}

#[test]
fn payload_before_schema_and_other_key_orders_decode_the_same() {
    let expected = ok(PG_UPDATE);
    // serde_json's map sorts keys: "payload" now comes before "schema".
    let parsed: serde_json::Value = serde_json::from_str(PG_UPDATE).unwrap();
    let reordered = serde_json::to_string(&parsed).unwrap();
    assert!(reordered.starts_with(r#"{"payload""#));
    assert_eq!(ok(&reordered), expected);
    // Unknown envelope keys are ignored.
    let extra = format!(r#"{{"x":[1,{{"y":2}}],{}"#, &PG_UPDATE.trim_start()[1..]);
    assert_eq!(ok(&extra), expected);
}

#[test]
fn converter_layout_fast_path_agrees_with_the_general_path() {
    let parsed: serde_json::Value = serde_json::from_str(PG_UPDATE).unwrap();
    let compact = format!(
        r#"{{"schema":{},"payload":{}}}"#,
        parsed["schema"], parsed["payload"]
    );
    let general = decode_any_layout(compact.as_bytes()).unwrap(); // caches the schema
    assert_eq!(
        decode_known_layout(compact.as_bytes()),
        Some(general.clone())
    );
    assert_eq!(decode(format!("{compact}\n").as_bytes()), Ok(general));
    let schemaless = r#"{"schema":null,"payload":{"a":[1]}}"#;
    assert_eq!(
        decode_known_layout(schemaless.as_bytes()),
        Some(Decoded::untyped(Value::Struct(vec![(
            "a".into(),
            Value::List(vec![Value::Int(1)])
        )])))
    );

    // Anything unusual goes the general way, with its exact error.
    let schema = r#"{"type":"struct","fields":[{"field":"n","type":"int8"}]}"#;
    let record = |rest: &str| format!(r#"{{"schema":{schema},"payload":{rest}"#);
    assert!(decode(record(r#"{"n":1}}"#).as_bytes()).is_ok());
    assert_eq!(
        decode(record(r#"{"n":1000}}"#).as_bytes()),
        Err(DecodeError::Connect(
            "n: integer 1000 out of range for int8".into()
        ))
    );
    assert!(matches!(
        decode(record(r#"{"n":1}}}"#).as_bytes()),
        Err(DecodeError::Json { detail, .. }) if detail == "trailing characters"
    ));
    assert_eq!(
        decode(record(r#"{"n":1},"payload":{"n":2}}"#).as_bytes()).map(|d| d.value),
        Ok(Value::Struct(vec![("n".into(), Value::Int(1))]))
    );
    assert_eq!(
        decode(record(r#"{"n":1},"extra":true}"#).as_bytes()).map(|d| d.value),
        Ok(Value::Struct(vec![("n".into(), Value::Int(1))]))
    );
    let invalid_utf8 = record(r#"{"n":"X"}}"#).replace('X', "\u{1}").into_bytes();
    let invalid_utf8: Vec<u8> = invalid_utf8
        .into_iter()
        .map(|b| if b == 1 { 0xff } else { b })
        .collect();
    assert!(matches!(
        decode(&invalid_utf8),
        Err(DecodeError::Json { .. })
    ));
}

#[test]
fn nested_structs_and_arrays() {
    let json = r#"{"schema":{"type":"struct","fields":[
        {"field":"id","type":"int64"},
        {"field":"lines","type":"array","optional":true,"items":{"type":"struct","fields":[
            {"field":"sku","type":"string"},
            {"field":"price","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},
            {"field":"dims","type":"array","items":{"type":"float32"}}]}},
        {"field":"addr","type":"struct","fields":[
            {"field":"city","type":"string"},
            {"field":"geo","type":"struct","fields":[{"field":"lat","type":"float64"},{"field":"lon","type":"float64"}]}]}]},
      "payload":{"id":7,"lines":[{"sku":"a","price":"MDk=","dims":[1,2.5]},{"dims":[],"sku":"b","extra":{"ignored":[1]}}],
                 "addr":{"geo":{"lon":2.35,"lat":48.85},"city":"Paris"}}}"#;
    let decoded = ok(json);
    use ColumnType as T;
    let line_ty = T::Struct(vec![
        Field::new("sku", T::String),
        Field::new("price", dec(38, 2)),
        Field::new("dims", T::List(Box::new(T::Float32))),
    ]);
    let geo_ty = T::Struct(vec![
        Field::new("lat", T::Float64),
        Field::new("lon", T::Float64),
    ]);
    assert_eq!(
        decoded.schema,
        Some(T::Struct(vec![
            Field::new("id", T::Int64),
            Field::new("lines", T::List(Box::new(line_ty))),
            Field::new(
                "addr",
                T::Struct(vec![
                    Field::new("city", T::String),
                    Field::new("geo", geo_ty)
                ])
            ),
        ]))
    );
    let line = |sku: &str, price: Value, dims: Vec<Value>| {
        Value::Struct(vec![
            ("sku".into(), s(sku)),
            ("price".into(), price),
            ("dims".into(), Value::List(dims)),
        ])
    };
    assert_eq!(
        decoded.value,
        Value::Struct(vec![
            ("id".into(), Value::Int(7)),
            (
                "lines".into(),
                Value::List(vec![
                    line(
                        "a",
                        Value::Decimal(12345),
                        vec![Value::Float(1.0), Value::Float(2.5)]
                    ),
                    line("b", Value::Null, vec![]),
                ])
            ),
            (
                "addr".into(),
                Value::Struct(vec![
                    ("city".into(), s("Paris")),
                    (
                        "geo".into(),
                        Value::Struct(vec![
                            ("lat".into(), Value::Float(48.85)),
                            ("lon".into(), Value::Float(2.35)),
                        ])
                    ),
                ])
            ),
        ])
    );
}

#[test]
fn wide_structs_with_keys_out_of_order() {
    let n = 40;
    let fields: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"field":"c{i}","type":"int32"}}"#))
        .collect();
    let values: Vec<String> = (0..n).rev().map(|i| format!(r#""c{i}":{i}"#)).collect();
    let json = format!(
        r#"{{"schema":{{"type":"struct","fields":[{}]}},"payload":{{{},"c\u0030":100}}}}"#,
        fields.join(","),
        values.join(",")
    );
    let Value::Struct(got) = ok(&json).value else {
        panic!()
    };
    assert_eq!(got.len(), n);
    for (i, (name, value)) in got.iter().enumerate() {
        assert_eq!(&**name, format!("c{i}"));
        // `c\u0030` is `c0` escaped: the repeated key wins.
        let expected = if i == 0 { 100 } else { i as i64 };
        assert_eq!(value, &Value::Int(expected));
    }
}

#[test]
fn maps_in_both_shapes() {
    // A map is a struct of its entries; the encoder writes it as JSON text without types.
    let map_json = |schema: &str, value: &str| {
        let decoded = ok(&in_after(schema, value));
        let (ty, value) = after_f(&decoded);
        assert_eq!(ty, &ColumnType::Json);
        value.to_json(None)
    };
    let decimal_values = r#"{"type":"map","keys":{"type":"string"},"values":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}}"#;
    assert_eq!(
        map_json(decimal_values, r#"{"x\"y":"MDk=","z":null}"#),
        r#"{"x\"y":"123.45","z":null}"#
    );
    let nested_decimals = r#"{"type":"map","keys":{"type":"string"},"values":{"type":"array","items":{"type":"struct","fields":[{"field":"d","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"3"}},{"field":"n","type":"int32"}]}}}"#;
    assert_eq!(
        map_json(nested_decimals, r#"{"k":[{"n":1,"d":"+w=="}]}"#),
        r#"{"k":[{"d":"-0.005","n":1}]}"#
    );
    let date_lists = r#"{"type":"map","keys":{"type":"int64"},"values":{"type":"array","items":{"type":"int32","name":"io.debezium.time.Date"}}}"#;
    assert_eq!(
        map_json(date_lists, "[[10,[0,19783]],[-1,[]],[3,null]]"),
        r#"{"10":["1970-01-01","2024-03-01"],"-1":[],"3":null}"#
    );
    let decimal_keys = r#"{"type":"map","keys":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"1"}},"values":{"type":"string"}}"#;
    assert_eq!(
        map_json(decimal_keys, r#"[["MDk=","a"]]"#),
        r#"{"1234.5":"a"}"#
    );
    let struct_keys = r#"{"type":"map","keys":{"type":"struct","fields":[{"field":"a","type":"int8"}]},"values":{"type":"boolean"}}"#;
    assert_eq!(
        map_json(struct_keys, r#"[[{"a":1},true]]"#),
        r#"{"{\"a\":1}":true}"#
    );
    let strings = r#"{"type":"map","keys":{"type":"string"},"values":{"type":"string"}}"#;
    assert_eq!(map_json(strings, "{}"), "{}");
    assert_eq!(map_json(strings, "[]"), "{}");
    assert_eq!(map_json(strings, "null"), "null");
}

#[test]
fn decimals_of_every_shape() {
    let d = |params: &str, value: &str| {
        let schema = format!(
            r#"{{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{params}}}"#
        );
        let decoded = ok(&in_after(&schema, value));
        let (ty, v) = after_f(&decoded);
        (ty.clone(), v.clone())
    };
    let p10s2 = r#"{"scale":"2","connect.decimal.precision":"10"}"#;
    assert_eq!(d(p10s2, r#""MDk=""#), (dec(10, 2), Value::Decimal(12345)));
    assert_eq!(d(p10s2, r#""+w==""#), (dec(10, 2), Value::Decimal(-5)));
    assert_eq!(d(p10s2, r#""MDk""#), (dec(10, 2), Value::Decimal(12345)));
    assert_eq!(d(p10s2, "null"), (dec(10, 2), Value::Null));
    // decimal.format=NUMERIC
    assert_eq!(d(p10s2, "-0.5"), (dec(10, 2), Value::Decimal(-50)));
    assert_eq!(d(p10s2, "12.300"), (dec(10, 2), Value::Decimal(1230)));
    assert_eq!(d(p10s2, "1E+2"), (dec(10, 2), Value::Decimal(10000)));
    assert_eq!(d(p10s2, "7"), (dec(10, 2), Value::Decimal(700)));
    // Parameters given as numbers; a scale above the precision grows the precision.
    assert_eq!(
        d(r#"{"scale":5,"connect.decimal.precision":3}"#, r#""AQ==""#),
        (dec(5, 5), Value::Decimal(1))
    );
    // Redundant sign-extension bytes past 16 are fine.
    assert_eq!(
        d(r#"{"scale":"0"}"#, r#""////////////////////////+w==""#),
        (dec(38, 0), Value::Decimal(-5))
    );
    // Past 38 digits: exact text.
    assert_eq!(
        d(
            r#"{"scale":"3","connect.decimal.precision":"60"}"#,
            r#""4pzWDjyjW0BURgqfAAAAAAA=""#
        ),
        (
            ColumnType::String,
            s("-10000000000000000000000000000000000000.000")
        )
    );
    assert_eq!(
        d(
            r#"{"scale":"2","connect.decimal.precision":"39"}"#,
            "-1.5e1"
        ),
        (ColumnType::String, s("-15"))
    );
    // Negative scale folds into the value.
    assert_eq!(
        d(
            r#"{"scale":"-3","connect.decimal.precision":"4"}"#,
            r#""B88=""#
        ),
        (dec(7, 0), Value::Decimal(1_999_000))
    );
    assert_eq!(
        d(
            r#"{"scale":"-37","connect.decimal.precision":"2"}"#,
            r#""Ag==""#
        ),
        (
            ColumnType::String,
            s("20000000000000000000000000000000000000")
        )
    );
}

#[test]
fn zoned_timestamps_with_offsets() {
    let z = |text: &str| {
        let schema = r#"{"type":"string","name":"io.debezium.time.ZonedTimestamp"}"#;
        let decoded = ok(&in_after(schema, &format!("{text:?}")));
        after_f(&decoded).1.clone()
    };
    assert_eq!(
        z("2024-03-01T10:15:30Z"),
        Value::Timestamp(1_709_288_130_000_000)
    );
    assert_eq!(
        z("2024-03-01T10:15:30.123456Z"),
        Value::Timestamp(1_709_288_130_123_456)
    );
    assert_eq!(
        z("2024-03-01T12:15:30.1+02:00"),
        Value::Timestamp(1_709_288_130_100_000)
    );
    assert_eq!(
        z("2024-03-01T05:15:30-05:00"),
        Value::Timestamp(1_709_288_130_000_000)
    );
    assert_eq!(
        z("2024-03-01T12:15:30+0200"),
        Value::Timestamp(1_709_288_130_000_000)
    );
    assert_eq!(z("1969-12-31T23:59:59.999999Z"), Value::Timestamp(-1));
}

#[test]
fn nulls_for_required_fields_and_missing_fields_are_null() {
    let json = r#"{"schema":{"type":"struct","optional":false,"fields":[
        {"field":"a","type":"int32","optional":false},
        {"field":"b","type":"struct","optional":false,"fields":[{"field":"c","type":"string","optional":false}]},
        {"field":"d","type":"array","optional":false,"items":{"type":"int64","optional":false}},
        {"field":"e","type":"string","optional":false}]},
      "payload":{"a":null,"b":null,"d":[null,1]}}"#;
    assert_eq!(
        ok(json).value,
        Value::Struct(vec![
            ("a".into(), Value::Null),
            ("b".into(), Value::Null),
            ("d".into(), Value::List(vec![Value::Null, Value::Int(1)])),
            ("e".into(), Value::Null),
        ])
    );
    let whole = ok(
        r#"{"schema":{"type":"struct","fields":[{"field":"a","type":"int32"}]},"payload":null}"#,
    );
    assert_eq!(whole.value, Value::Null);
    assert_eq!(
        whole.schema,
        Some(ColumnType::Struct(vec![Field::new("a", ColumnType::Int32)]))
    );
}

#[test]
fn top_level_primitives() {
    let d =
        ok(r#"{"schema":{"type":"int64","name":"io.debezium.time.MicroTimestamp"},"payload":5}"#);
    assert_eq!(
        d,
        Decoded {
            value: Value::Timestamp(5),
            schema: Some(ColumnType::Timestamp)
        }
    );
    let d = ok(r#"{"schema":{"type":"string","optional":false},"payload":"a\nb"}"#);
    assert_eq!(
        d,
        Decoded {
            value: s("a\nb"),
            schema: Some(ColumnType::String)
        }
    );
    let d = ok(r#"{"schema":{"type":"float32"},"payload":"-Infinity"}"#);
    assert_eq!(d.value, Value::Float(f64::NEG_INFINITY));
    let d = ok(r#"{"schema":{"type":"float64"},"payload":3}"#);
    assert_eq!(d.value, Value::Float(3.0));
    let d = ok(r#"{"schema":{"type":"int32","name":"io.debezium.time.Date"},"payload":-1}"#);
    assert_eq!(d.value, Value::Date(-1));
    // A known name on an unexpected primitive type follows the primitive.
    let d = ok(
        r#"{"schema":{"type":"string","name":"io.debezium.time.MicroTimestamp"},"payload":"x"}"#,
    );
    assert_eq!(
        d,
        Decoded {
            value: s("x"),
            schema: Some(ColumnType::String)
        }
    );
    // NanoTime/NanoTimestamp round toward negative infinity.
    let d =
        ok(r#"{"schema":{"type":"int64","name":"io.debezium.time.NanoTimestamp"},"payload":-1}"#);
    assert_eq!(d.value, Value::Timestamp(-1));
}

#[test]
fn schemaless_payloads_are_plain_json() {
    let d = ok(
        r#"{"schema":null,"payload":{"a":1,"b":[1.5,"x",true,null,-2],"c":{"d":18446744073709551615},"a":3}}"#,
    );
    assert_eq!(d.schema, None);
    assert_eq!(
        d.value,
        Value::Struct(vec![
            ("a".into(), Value::Int(3)),
            (
                "b".into(),
                Value::List(vec![
                    Value::Float(1.5),
                    s("x"),
                    Value::Bool(true),
                    Value::Null,
                    Value::Int(-2),
                ])
            ),
            (
                "c".into(),
                Value::Struct(vec![(
                    "d".into(),
                    Value::Decimal(18_446_744_073_709_551_615)
                )])
            ),
        ])
    );
    assert_eq!(
        ok(r#"{"payload":"x","schema":null}"#),
        Decoded::untyped(s("x"))
    );
    assert_eq!(
        ok(r#"{"schema":null,"payload":null}"#),
        Decoded::untyped(Value::Null)
    );
    // Many keys, one repeated late: still one field each.
    let keys: Vec<String> = (0..100).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let json = format!(
        r#"{{"schema":null,"payload":{{{},"k1":"x"}}}}"#,
        keys.join(",")
    );
    let Value::Struct(fields) = ok(&json).value else {
        panic!()
    };
    assert_eq!(fields.len(), 100);
    assert_eq!(fields[1], ("k1".into(), s("x")));
}

#[test]
fn envelope_errors_name_what_is_missing() {
    assert_eq!(
        connect_error(r#"{"payload":{"a":1}}"#),
        r#"missing "schema" key (is the converter's schemas.enable true?)"#
    );
    assert_eq!(
        connect_error(r#"{"schema":{"type":"int32"}}"#),
        r#"missing "payload" key"#
    );
    assert_eq!(
        connect_error("{}"),
        r#"missing "schema" and "payload" keys"#
    );
    assert_eq!(
        connect_error(r#"{"schema":"int32","payload":1}"#),
        r#""schema" is not an object (got string)"#
    );
    assert_eq!(
        connect_error(r#"{"schema":[],"payload":1}"#),
        r#""schema" is not an object (got array)"#
    );
    assert_eq!(
        connect_error("[1,2]"),
        r#"invalid type: sequence, expected a Kafka Connect JSON object with "schema" and "payload""#
    );
    assert_eq!(
        connect_error(r#""text""#),
        r#"invalid type: string "text", expected a Kafka Connect JSON object with "schema" and "payload""#
    );
}

#[test]
fn schema_errors_name_the_schema_path() {
    let cases = [
        (
            r#"{"optional":true}"#,
            r#"schema: schema has no "type" string"#,
        ),
        (
            r#"{"type":"int128"}"#,
            r#"schema: unknown Connect schema type "int128""#,
        ),
        (
            r#"{"type":"array"}"#,
            r#"schema: array schema has no "items""#,
        ),
        (
            r#"{"type":"map","keys":{"type":"string"}}"#,
            r#"schema: map schema has no "values""#,
        ),
        (
            r#"{"type":"struct"}"#,
            r#"schema: struct schema has no "fields" array"#,
        ),
        (
            r#"{"type":"struct","fields":[{"type":"int32"}]}"#,
            r#"schema.fields[0]: field has no "field" name"#,
        ),
        (
            r#"{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"amount","type":"bytes","name":"org.apache.kafka.connect.data.Decimal"}]}]}"#,
            r#"schema.after.amount: Decimal schema has no integer "scale" parameter"#,
        ),
        (
            r#"{"type":"array","items":{"type":"map","keys":{"type":"string"},"values":{"type":"bogus"}}}"#,
            r#"schema[]{values}: unknown Connect schema type "bogus""#,
        ),
        (
            r#"{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"99999"}}"#,
            "schema: Decimal scale 99999 is out of range",
        ),
    ];
    for (schema, message) in cases {
        let json = format!(r#"{{"schema":{schema},"payload":null}}"#);
        assert_eq!(connect_error(&json), message, "{schema}");
        let value: serde_json::Value = serde_json::from_str(schema).unwrap();
        assert_eq!(
            column_type(&value),
            Err(DecodeError::Connect(message.into()))
        );
    }
}

#[test]
fn payload_errors_name_the_field_path() {
    let decimal = r#"{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2","connect.decimal.precision":"4"}}"#;
    let zoned = r#"{"type":"string","name":"io.debezium.time.ZonedTimestamp"}"#;
    let vsd = r#"{"type":"struct","name":"io.debezium.data.VariableScaleDecimal","fields":[{"field":"scale","type":"int32"},{"field":"value","type":"bytes"}]}"#;
    let ts = r#"{"type":"int64","name":"org.apache.kafka.connect.data.Timestamp"}"#;
    let map = r#"{"type":"map","keys":{"type":"int32"},"values":{"type":"string"}}"#;
    let cases = [
        (
            r#"{"type":"int32"}"#,
            r#""7""#,
            "after.f: expected int32, got string",
        ),
        (
            r#"{"type":"int32"}"#,
            "3000000000",
            "after.f: integer 3000000000 out of range for int32",
        ),
        (
            r#"{"type":"int8"}"#,
            "-129",
            "after.f: integer -129 out of range for int8",
        ),
        (
            r#"{"type":"int16"}"#,
            "1.5",
            "after.f: expected int16, got non-integer number",
        ),
        (
            r#"{"type":"int64"}"#,
            "18446744073709551615",
            "after.f: integer 18446744073709551615 out of range for int64",
        ),
        (
            r#"{"type":"string"}"#,
            "12",
            "after.f: expected string, got number",
        ),
        (
            r#"{"type":"boolean"}"#,
            r#""true""#,
            "after.f: expected boolean, got string",
        ),
        (
            r#"{"type":"float64"}"#,
            r#""1.5""#,
            "after.f: expected float64, got string",
        ),
        (
            r#"{"type":"bytes"}"#,
            r#""not base64!""#,
            "after.f: invalid base64 for bytes: Invalid symbol 32, offset 3.",
        ),
        (
            r#"{"type":"bytes"}"#,
            "[1]",
            "after.f: expected base64 bytes, got array",
        ),
        (
            decimal,
            "true",
            "after.f: expected base64 bytes for Decimal, got boolean",
        ),
        (
            decimal,
            "{}",
            "after.f: expected base64 bytes for Decimal, got object",
        ),
        (
            decimal,
            r#""@@""#,
            "after.f: invalid base64 for Decimal: Invalid symbol 64, offset 0.",
        ),
        (decimal, r#""""#, "after.f: empty bytes for Decimal"),
        (
            decimal,
            "1.234",
            "after.f: Decimal value 1.234 does not fit DECIMAL(4,2)",
        ),
        (
            decimal,
            "100",
            "after.f: Decimal value has more than 4 digits (the schema's precision)",
        ),
        (
            decimal,
            r#""JxA=""#,
            "after.f: Decimal value has more than 4 digits (the schema's precision)",
        ),
        (
            decimal,
            r#""AQAAAAAAAAAAAAAAAAAAAAA=""#,
            "after.f: Decimal value does not fit precision 4",
        ),
        (
            zoned,
            r#""yesterday""#,
            r#"after.f: invalid ISO-8601 timestamp with offset for ZonedTimestamp: "yesterday""#,
        ),
        (
            zoned,
            "1709288130",
            "after.f: expected ISO-8601 string for ZonedTimestamp, got number",
        ),
        (
            ts,
            "9223372036854775807",
            "after.f: integer 9223372036854775807 out of range for int64 for Timestamp",
        ),
        (
            vsd,
            r#"{"value":"AQ=="}"#,
            "after.f: VariableScaleDecimal has no scale",
        ),
        (
            vsd,
            r#"{"scale":"2","value":"AQ=="}"#,
            "after.f.scale: expected int32, got string",
        ),
        (
            vsd,
            r#"{"scale":2,"value":"%"}"#,
            "after.f.value: invalid base64 for bytes: Invalid symbol 37, offset 0.",
        ),
        (
            vsd,
            r#"{"scale":2,"value":""}"#,
            "after.f: empty bytes for a decimal value",
        ),
        (
            vsd,
            "5",
            "after.f: expected {scale, value} for VariableScaleDecimal, got number",
        ),
        (
            r#"{"type":"array","items":{"type":"int32"}}"#,
            "[1,\"2\"]",
            "after.f[1]: expected int32, got string",
        ),
        (
            r#"{"type":"array","items":{"type":"struct","fields":[{"field":"g","type":"boolean"}]}}"#,
            r#"[{"g":true},{"g":1}]"#,
            "after.f[1].g: expected boolean, got number",
        ),
        (
            r#"{"type":"array","items":{"type":"int32"}}"#,
            "{}",
            "after.f: expected array, got object",
        ),
        (
            r#"{"type":"struct","fields":[]}"#,
            "[]",
            "after.f: expected struct (object), got array",
        ),
        (
            map,
            "[[1]]",
            "after.f[0]: map entry has fewer than 2 elements",
        ),
        (
            map,
            r#"[[1,"a",2]]"#,
            "after.f[0]: map entry has more than 2 elements",
        ),
        (
            map,
            "[1]",
            "after.f[0]: expected a [key, value] map entry, got number",
        ),
        (
            map,
            r#"[[1,"a"],["x","b"]]"#,
            "after.f[1][0]: expected int32, got string",
        ),
        (map, r#"{"a":1}"#, "after.f.a: expected string, got number"),
        (
            map,
            "true",
            "after.f: expected map (object or array of [key, value] pairs), got boolean",
        ),
    ];
    for (schema, value, message) in cases {
        let json = in_after(schema, value);
        assert_eq!(connect_error(&json), message, "{schema} with {value}");
    }
    assert_eq!(
        connect_error(r#"{"schema":{"type":"int32"},"payload":"x"}"#),
        "payload: expected int32, got string"
    );
    assert_eq!(
        connect_error(r#"{"schema":{"type":"array","items":{"type":"int32"}},"payload":[true]}"#),
        "payload[0]: expected int32, got boolean"
    );
    // Payload first: the same path.
    assert_eq!(
        connect_error(
            r#"{"payload":{"after":{"amount":false}},"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"amount","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}]}]}}"#
        ),
        "after.amount: expected base64 bytes for Decimal, got boolean"
    );
}

#[test]
fn json_syntax_errors_carry_line_and_column() {
    let err = decode(b"{\"schema\": {\"type\": \"int32\"},\n  \"payload\": 1,,}").unwrap_err();
    let DecodeError::Json {
        line,
        column,
        detail,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!((line, column), (2, 16));
    assert_eq!(detail, "key must be a string");

    let err = decode(br#"{"schema":null,"payload":1} x"#).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Json { line: 1, column: 29, detail } if detail == "trailing characters"),
        "{err:?}"
    );
    let err = decode(b"").unwrap_err();
    assert!(
        matches!(&err, DecodeError::Json { detail, .. } if detail == "EOF while parsing a value"),
        "{err:?}"
    );
    // Truncated in the middle of a payload converted on the fly.
    let truncated = &PG_UPDATE.as_bytes()[..PG_UPDATE.len() - 40];
    assert!(matches!(decode(truncated), Err(DecodeError::Json { .. })));
    // Invalid UTF-8 in a string.
    let err = decode(b"{\"schema\":null,\"payload\":\"\xff\"}").unwrap_err();
    assert!(matches!(err, DecodeError::Json { .. }), "{err:?}");
}

#[test]
fn cache_keeps_alternating_schemas_apart() {
    // More distinct schemas than cache entries, interleaved, several rounds.
    for round in 0..3 {
        for i in 0..(CACHE_ENTRIES + 4) {
            let json = format!(
                r#"{{"schema":{{"type":"struct","fields":[{{"field":"f{i}","type":"int32"}}]}},"payload":{{"f{i}":{round}}}}}"#
            );
            let decoded = ok(&json);
            let name = format!("f{i}");
            assert_eq!(
                decoded.schema,
                Some(ColumnType::Struct(vec![Field::new(
                    name.as_str(),
                    ColumnType::Int32
                )]))
            );
            assert_eq!(decoded.value.get(&name), Some(&Value::Int(round)));
        }
    }
    // A failing schema is not cached and fails every time.
    for _ in 0..2 {
        assert!(connect_error(r#"{"schema":{"type":"nope"},"payload":1}"#).contains("nope"));
    }
}

#[test]
fn column_type_of_a_schema_value() {
    let schema = serde_json::json!({
        "type": "struct",
        "fields": [
            {"field": "id", "type": "int16"},
            {"field": "ts", "type": "int64", "name": "io.debezium.time.NanoTimestamp"},
            {"field": "m", "type": "map", "keys": {"type": "string"}, "values": {"type": "int32"}},
            {"field": "tags", "type": "array", "items": {"type": "string", "name": "io.debezium.data.Uuid"}},
        ]
    });
    assert_eq!(
        column_type(&schema),
        Ok(ColumnType::Struct(vec![
            Field::new("id", ColumnType::Int32),
            Field::new("ts", ColumnType::Timestamp),
            Field::new("m", ColumnType::Json),
            Field::new("tags", ColumnType::List(Box::new(ColumnType::String))),
        ]))
    );
    assert_eq!(
        column_type(&serde_json::json!("int32")),
        Err(DecodeError::Connect(
            "schema: schema is not an object".into()
        ))
    );
}

#[test]
fn big_decimal_text() {
    assert_eq!(decimal_text(&[0x00], 2).unwrap(), "0.00");
    assert_eq!(decimal_text(&[0xff], 0).unwrap(), "-1");
    assert_eq!(decimal_text(&[0x05], -3).unwrap(), "5000");
    assert_eq!(decimal_text(&[0x00], -3).unwrap(), "0");
    // -2^135: needs 17 bytes.
    let mut bytes = vec![0u8; 17];
    bytes[0] = 0x80;
    assert_eq!(
        decimal_text(&bytes, 5).unwrap(),
        "-435561429658801233233119497512663310.66368"
    );
    assert_eq!(place_point(true, "5", 3), "-0.005");
    assert_eq!(place_point(false, "12345", 2), "123.45");
    assert_eq!(place_point(true, "0", 2), "0.00");
}

/// Decimal text of a two's-complement value, the slow obvious way.
fn reference_text(bytes: &[u8], scale: i32) -> String {
    let negative = bytes[0] & 0x80 != 0;
    let mut magnitude: Vec<u8> = if negative {
        bytes.iter().map(|b| !b).collect()
    } else {
        bytes.to_vec()
    };
    // digits, least significant first
    let mut digits: Vec<u32> = vec![0];
    for b in &magnitude {
        let mut carry = u32::from(*b);
        for d in digits.iter_mut() {
            let v = *d * 256 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push(carry % 10);
            carry /= 10;
        }
    }
    if negative {
        // magnitude = !bytes + 1
        let mut i = 0;
        loop {
            if i == digits.len() {
                digits.push(0);
            }
            digits[i] += 1;
            if digits[i] < 10 {
                break;
            }
            digits[i] = 0;
            i += 1;
        }
    }
    magnitude.clear();
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    let text: String = digits
        .iter()
        .rev()
        .map(|d| char::from(b'0' + *d as u8))
        .collect();
    place_point(negative, &text, scale)
}

fn minimal_bytes(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let redundant = (bytes[start] == 0x00 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn json_ish_text_never_panics(text in "\\{\"schema\":.*") {
        let _ = decode(text.as_bytes());
    }

    #[test]
    fn envelope_shaped_text_never_panics(
        text in "\\{\"schema\":(null|\\{\"type\":\"(int8|int32|int64|float32|string|bytes|boolean|array|map|struct)\"(,\"name\":\"(org.apache.kafka.connect.data.(Decimal|Date|Time|Timestamp)|io.debezium.(time|data).[A-Za-z]{2,20})\")?(,\"parameters\":\\{\"scale\":\"-?[0-9]{1,3}\"\\})?(,\"items\":\\{\"type\":\"int32\"\\})?(,\"keys\":\\{\"type\":\"string\"\\},\"values\":\\{\"type\":\"int8\"\\})?(,\"fields\":\\[(\\{\"field\":\"[a-c]\",\"type\":\"(int16|string|bytes)\"\\},?){0,3}\\])?\\}),\"payload\":(null|-?[0-9]{1,25}(\\.[0-9]{1,5})?(e-?[0-9]{1,4})?|\"[A-Za-z0-9+/=:.TZ-]{0,30}\"|\\[[-0-9a-z\",\\[\\]]{0,30}\\]|\\{[-0-9a-z\",:{}]{0,40}\\}|true)\\}"
    ) {
        let _ = decode(text.as_bytes());
    }

    #[test]
    fn mutated_fixtures_never_panic(pos in 0usize..10_000, byte in any::<u8>(), cut in any::<bool>()) {
        for fixture in [ALL_TYPES, PG_UPDATE] {
            let mut bytes = fixture.as_bytes().to_vec();
            let pos = pos % bytes.len();
            if cut {
                bytes.truncate(pos);
            } else {
                bytes[pos] = byte;
            }
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn decimal_bytes_round_trip(v in any::<i128>(), scale in 0i8..=38) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(minimal_bytes(v));
        let schema = format!(r#"{{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{{"scale":"{scale}"}}}}"#);
        let result = decode(format!(r#"{{"schema":{schema},"payload":"{b64}"}}"#).as_bytes());
        if v.unsigned_abs() < 10u128.pow(38) {
            prop_assert_eq!(result, Ok(Decoded { value: Value::Decimal(v), schema: Some(dec(38, scale)) }));
        } else {
            prop_assert!(matches!(result, Err(DecodeError::Connect(_))));
        }
        // As text (precision past 38): exact.
        let schema = schema.replace(r#""}}"#, r#"","connect.decimal.precision":"50"}}"#);
        let result = decode(format!(r#"{{"schema":{schema},"payload":"{b64}"}}"#).as_bytes());
        let text = crate::value::format_decimal(v, scale);
        prop_assert_eq!(result, Ok(Decoded { value: Value::String(text.into()), schema: Some(ColumnType::String) }));
    }

    #[test]
    fn numeric_decimals_are_exact(v in any::<i64>(), scale in 0i8..=12) {
        let text = crate::value::format_decimal(i128::from(v), scale);
        let json = format!(r#"{{"schema":{{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{{"scale":"{scale}"}}}},"payload":{text}}}"#);
        prop_assert_eq!(decode(json.as_bytes()).map(|d| d.value), Ok(Value::Decimal(i128::from(v))));
    }

    #[test]
    fn variable_scale_decimals_are_exact(bytes in proptest::collection::vec(any::<u8>(), 1..80), scale in -40i32..60) {
        prop_assert_eq!(decimal_text(&bytes, scale).unwrap(), reference_text(&bytes, scale));
    }
}
