//! Golden-file tests of every plan, and the check that no input string reaches SQL text
//! unquoted. `DELTASINK_BLESS=1` rewrites the golden files (see the module documentation).

use std::path::PathBuf;

use super::*;
use crate::route::TableMode;
use crate::rows;
use crate::value::ColumnType as T;

const EVIL: &str = "evil'); DROP TABLE x; -- \\";
const WEIRD: &str = "we`ird";
const BUCKET: &str = "s3://deltasink-staging";

fn f(name: &str, ty: ColumnType) -> Field {
    Field::new(name, ty)
}

fn dec(precision: u8, scale: i8) -> ColumnType {
    T::Decimal { precision, scale }
}

fn with_cdc(mut data: Vec<Field>) -> Vec<Field> {
    data.extend(rows::cdc_metadata_fields());
    data
}

fn upsert_table() -> TableRef {
    TableRef::in_catalog("main", "sh op", "or`ders.v2")
}

fn pk() -> Vec<String> {
    vec!["id".into(), EVIL.into()]
}

/// An older file and a newer one with another schema: a narrower key, a widened decimal, a
/// column whose type changed incompatibly, a new struct and array.
fn upsert_files() -> Vec<StagedFile> {
    vec![
        StagedFile::new(
            format!(
                "{BUCKET}/staging/main.sh%20op.or%60ders%2Ev2/cdc.shop.orders/0/100-199.parquet"
            ),
            with_cdc(vec![
                f("id", T::Int32),
                f(EVIL, T::String),
                f("Customer Name", T::String),
                f("a.b", dec(10, 2)),
                f("qty", T::Int64),
            ]),
        ),
        StagedFile::new(
            format!("{BUCKET}/staging/it's here/cdc.shop.orders/1/0-9.parquet"),
            with_cdc(vec![
                f("ID", T::Int64),
                f(EVIL, T::String),
                f("customer name", T::Int64),
                f("a.b", dec(12, 4)),
                f("qty", T::Float64),
                f(
                    WEIRD,
                    T::Struct(vec![f("x y", T::Int32), f("z", T::Timestamp)]),
                ),
                f("tags", T::List(Box::new(T::String))),
            ]),
        ),
    ]
}

/// The table as the first file created it, and its evolution for both files.
fn upsert_evolution() -> (Vec<Field>, Evolution) {
    let files = upsert_files();
    let created = evolve_files(&[], &files[..1]).schema;
    let evolution = evolve_files(&created, &files);
    (created, evolution)
}

fn append_files() -> Vec<StagedFile> {
    vec![
        StagedFile::new(
            format!("{BUCKET}/staging/shop.order%20events/orders/3/0-99.parquet"),
            with_cdc(vec![f("id", T::Int64), f("n", T::Int32)]),
        ),
        StagedFile::new(
            format!("{BUCKET}/staging/shop.order%20events/orders/3/50-149.parquet"),
            with_cdc(vec![
                f("id", T::Int64),
                f("n", T::Int64),
                f("extra", T::Boolean),
            ]),
        ),
    ]
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/plan")
        .join(format!("{name}.sql"))
}

/// Compares `statements` (each followed by `;`, separated by blank lines) with the golden
/// file `name`, or rewrites it under `DELTASINK_BLESS=1`.
pub(super) fn golden(name: &str, statements: &[String]) {
    let text: String = statements
        .iter()
        .map(|s| format!("{s};\n"))
        .collect::<Vec<_>>()
        .join("\n");
    let path = golden_path(name);
    if std::env::var("DELTASINK_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with DELTASINK_BLESS=1 cargo test -p deltasink --lib plan",
            path.display()
        )
    });
    if text != expected {
        let line = text
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| text.lines().count().min(expected.lines().count()));
        panic!(
            "{} differs from the plan at line {}:\n  golden: {:?}\n  actual: {:?}\n\
             (if the change is intended: DELTASINK_BLESS=1 cargo test -p deltasink --lib plan)",
            path.display(),
            line + 1,
            expected.lines().nth(line).unwrap_or("<end>"),
            text.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

fn all_plans() -> Vec<(&'static str, Vec<String>)> {
    let (created, evolution) = upsert_evolution();
    let files = upsert_files();
    let mut plans = vec![
        (
            "create_upsert",
            vec![create_table(&upsert_table(), &created, TableMode::Upsert, &pk()).unwrap()],
        ),
        (
            "create_raw",
            vec![
                create_table(
                    &TableRef::new("raw events"),
                    &rows::raw_fields(),
                    TableMode::Raw,
                    &[],
                )
                .unwrap(),
            ],
        ),
        ("evolve", evolution_sql(&upsert_table(), &evolution)),
        (
            "project",
            files
                .iter()
                .map(|file| project(file, &evolution.schema).unwrap())
                .collect(),
        ),
        (
            "merge_upsert",
            vec![merge_upsert(&upsert_table(), &evolution.schema, &files, &pk()).unwrap()],
        ),
    ];

    let append_files = append_files();
    let append_table = TableRef::in_schema("shop", "order events");
    let appended = evolve_files(&append_files[0].fields, &append_files[1..]).schema;
    plans.push((
        "merge_append",
        vec![merge_append(&append_table, &appended, &append_files, TableMode::Append).unwrap()],
    ));
    let raw = rows::raw_fields();
    let raw_files: Vec<StagedFile> = (0..2)
        .map(|p| {
            StagedFile::new(
                format!("{BUCKET}/staging/raw%20events/events/{p}/0-99.parquet"),
                raw.clone(),
            )
        })
        .collect();
    plans.push((
        "merge_append_raw",
        vec![
            merge_append(
                &TableRef::new("raw events"),
                &raw,
                &raw_files,
                TableMode::Raw,
            )
            .unwrap(),
        ],
    ));

    // 1001 files of one schema in one directory, one in another directory, one of another
    // schema: four statements.
    let mut copy_files: Vec<StagedFile> = (0..1001)
        .map(|i| {
            StagedFile::new(
                format!(
                    "{BUCKET}/staging/shop.order%20events/orders/3/{}-{}.parquet",
                    i * 10,
                    i * 10 + 9
                ),
                append_files[1].fields.clone(),
            )
        })
        .collect();
    copy_files.push(StagedFile::new(
        format!("{BUCKET}/staging/shop.order%20events/orders/4/o'clock.parquet"),
        append_files[1].fields.clone(),
    ));
    copy_files.insert(
        1,
        StagedFile::new(
            format!("{BUCKET}/staging/shop.order%20events/orders/3/old.parquet"),
            append_files[0].fields.clone(),
        ),
    );
    plans.push((
        "copy_into",
        copy_into(&append_table, &appended, &copy_files).unwrap(),
    ));
    plans.push((
        "hard_delete_tombstones",
        vec![hard_delete_tombstones(&upsert_table(), "cutoff").unwrap()],
    ));
    plans
}

#[test]
fn golden_files() {
    for (name, statements) in all_plans() {
        golden(name, &statements);
    }
}

#[test]
fn the_upsert_fixture_evolves_as_expected() {
    let (created, evolution) = upsert_evolution();
    assert_eq!(created.len(), 5 + rows::cdc_metadata_fields().len());
    let names: Vec<&str> = evolution.incompatible.iter().map(|i| &*i.column).collect();
    assert_eq!(names, ["qty"]);
    assert_eq!(
        evolution
            .widen
            .iter()
            .map(|w| w.to.clone())
            .collect::<Vec<_>>(),
        vec![T::Int64, dec(12, 4)]
    );
    assert_eq!(evolution.add.len(), 3);
    assert_eq!(&*evolution.schema.last().unwrap().name, RESCUED_DATA);
}

#[test]
fn merge_source_selects_exactly_the_target_columns() {
    let (_, evolution) = upsert_evolution();
    let sql = merge_upsert(&upsert_table(), &evolution.schema, &upsert_files(), &pk()).unwrap();
    let columns: Vec<String> = evolution
        .schema
        .iter()
        .map(|c| crate::sql::quote_ident(&c.name))
        .collect();
    assert!(
        sql.contains(&format!("\n  SELECT {}\n  FROM (", columns.join(", "))),
        "{sql}"
    );
    // `*` actions: the source is exactly the planned columns, so a table that gained a column
    // since it was planned makes the MERGE fail rather than keep a stale value.
    assert!(
        sql.contains("THEN UPDATE SET *\n") && sql.ends_with("WHEN NOT MATCHED THEN INSERT *"),
        "{sql}"
    );
    assert_eq!(sql.matches("UNION ALL").count(), 1);
    assert!(!sql.contains(&format!("t.`{}`", ROW_NUMBER_COLUMN)));
}

/// A token of SQL text: a backtick-quoted identifier, a string literal (both decoded), or
/// anything else.
#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Other(String),
}

/// Lexes Spark SQL just enough to tell quoted text from the rest; panics on an unterminated
/// quote.
fn lex(sql: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut other = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                out.push(Tok::Other(std::mem::take(&mut other)));
                let mut ident = String::new();
                loop {
                    match chars.next() {
                        Some('`') if chars.peek() == Some(&'`') => {
                            chars.next();
                            ident.push('`');
                        }
                        Some('`') => break,
                        Some(c) => ident.push(c),
                        None => panic!("unterminated identifier in {sql}"),
                    }
                }
                out.push(Tok::Ident(ident));
            }
            '\'' => {
                out.push(Tok::Other(std::mem::take(&mut other)));
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some('u') => {
                                let hex: String = chars.by_ref().take(4).collect();
                                let code = u32::from_str_radix(&hex, 16).unwrap();
                                text.push(char::from_u32(code).unwrap());
                            }
                            Some(c @ ('\\' | '\'')) => text.push(c),
                            other => panic!("unexpected escape {other:?} in {sql}"),
                        },
                        Some('\'') => break,
                        Some(c) => text.push(c),
                        None => panic!("unterminated string in {sql}"),
                    }
                }
                out.push(Tok::Str(text));
            }
            c => other.push(c),
        }
    }
    out.push(Tok::Other(other));
    out
}

#[test]
fn no_input_string_appears_unquoted() {
    let plans = all_plans();
    let mut identifiers: Vec<String> = vec![
        "element".into(),
        RESCUED_DATA.into(),
        ROW_NUMBER_COLUMN.into(),
    ];
    let mut literals: Vec<String> = vec!["{}".into(), "mergeSchema".into(), "true".into()];
    let mut files = upsert_files();
    files.extend(append_files());
    for file in &files {
        identifiers.push(file.uri.clone());
        for field in &file.fields {
            identifiers.push(field.name.to_string());
            if let T::Struct(inner) = &field.ty {
                identifiers.extend(inner.iter().map(|f| f.name.to_string()));
            }
        }
    }
    identifiers.extend(rows::raw_fields().iter().map(|f| f.name.to_string()));
    identifiers.extend(
        [
            "main",
            "sh op",
            "or`ders.v2",
            "shop",
            "order events",
            "raw events",
        ]
        .map(String::from),
    );
    identifiers
        .extend((0..2).map(|p| format!("{BUCKET}/staging/raw%20events/events/{p}/0-99.parquet")));
    literals.extend(
        [
            "delta.enableTypeWidening",
            "delta.autoOptimize.optimizeWrite",
            "delta.autoOptimize.autoCompact",
            "deltasink.mode",
            "deltasink.primary_key",
            "upsert",
            "raw",
            "[]",
        ]
        .map(String::from),
    );
    literals.push(serde_json::Value::from(pk()).to_string());

    let mut statements = 0;
    for (name, plan) in &plans {
        for sql in plan {
            statements += 1;
            for tok in lex(sql) {
                match tok {
                    Tok::Ident(id) => assert!(
                        identifiers.contains(&id),
                        "{name}: unexpected identifier {id:?}"
                    ),
                    Tok::Str(s) => assert!(
                        literals.contains(&s)
                            || (s.starts_with(BUCKET) && (s.ends_with('/')))
                            || s.ends_with(".parquet"),
                        "{name}: unexpected literal {s:?}"
                    ),
                    Tok::Other(text) => {
                        for marker in [
                            "DROP", "evil", "ird", "Customer", "sh op", "it's", "o'clock",
                        ] {
                            assert!(
                                !text.contains(marker),
                                "{name}: {marker:?} unquoted in {text:?}"
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(statements > 10);
}

#[test]
fn string_literals_escape_quotes_backslashes_and_controls() {
    assert_eq!(string_literal("it's"), "'it\\'s'");
    assert_eq!(string_literal("a\\b"), "'a\\\\b'");
    assert_eq!(string_literal("a\nb\u{7f}"), "'a\\u000Ab\\u007F'");
    for s in ["it's", "a\\b", "\\'", "x\n\ty", EVIL] {
        let lexed = lex(&string_literal(s));
        assert_eq!(lexed[1], Tok::Str(s.to_string()));
    }
}

#[test]
fn table_refs_quote_every_part() {
    assert_eq!(TableRef::new("t").sql(), "`t`");
    assert_eq!(TableRef::in_schema("s", "t").sql(), "`s`.`t`");
    assert_eq!(upsert_table().sql(), "`main`.`sh op`.`or``ders.v2`");
    let name = crate::route::TableName::parse("c.`a.b`.`we``ird`").unwrap();
    assert_eq!(TableRef::from(&name).sql(), "`c`.`a.b`.`we``ird`");
    assert_eq!(
        TableRef::new("t")
            .with_defaults(Some("main"), Some("s"))
            .sql(),
        "`main`.`s`.`t`"
    );
    assert_eq!(
        TableRef::in_schema("x", "t")
            .with_defaults(Some("main"), Some("s"))
            .sql(),
        "`main`.`x`.`t`"
    );
    assert_eq!(
        TableRef::new("t").with_defaults(Some("main"), None).sql(),
        "`t`"
    );
}
