//! Schema evolution: what a table must become to hold the columns of incoming files, and the
//! DDL that gets it there.
//!
//! Each incoming column is compared with the table's column of the same name
//! (case-insensitive, exact spelling preferred):
//! - missing from the table → added (`ALTER TABLE t ADD COLUMNS (c T)`; a new field of a
//!   struct column is added in place, `ADD COLUMNS (s.f T)`, and `a.element.f` inside an
//!   array of structs);
//! - the table's type holds every value of the incoming type → nothing to do, the projection
//!   casts (INT into BIGINT, FLOAT/INT/BIGINT into DOUBLE, a decimal with no more integer
//!   digits and no more scale, anything into STRING as text);
//! - Delta type widening can make the table's type hold both → `ALTER TABLE t ALTER COLUMN c
//!   TYPE W` (needs `delta.enableTypeWidening`; [`create_table`](super::create_table) sets
//!   it). The widenings used are the ones Delta supports: INT → BIGINT, INT → DOUBLE,
//!   FLOAT → DOUBLE, INT → DECIMAL(p,s) with p − s ≥ 10, BIGINT → DECIMAL(p,s) with p − s ≥ 20,
//!   DECIMAL(p,s) → DECIMAL(p',s') with s' ≥ s and p' − s' ≥ p − s; also on struct fields and
//!   array elements;
//! - anything else (BIGINT → DOUBLE, a number vs a string, a struct vs a scalar, a decimal
//!   past 38 digits, ...) is *incompatible*: the table's column stays as it is and the
//!   projection carries the file's value into the rescued-data column, which is added the
//!   first time it is needed. Never a failure, never a loss (DESIGN.md, semantics 5).
//!   An incompatible struct field makes its whole top-level column rescued.

use std::sync::Arc;

use super::{RESCUED_DATA, StagedFile, TableRef, is_rescued, pair, same_name, storage};
use crate::sql::quote_ident;
use crate::value::{ColumnType, Field, MAX_DECIMAL_PRECISION};

/// A column to add. `path` has one part for a top-level column; more for a struct field
/// (`["s", "f"]`) or a field of the structs of an array (`["a", "element", "f"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewColumn {
    pub path: Vec<Arc<str>>,
    pub ty: ColumnType,
}

/// A column (or nested field, or array element: see [`NewColumn::path`]) whose type Delta
/// widens in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    pub path: Vec<Arc<str>>,
    pub from: ColumnType,
    pub to: ColumnType,
}

/// An incoming top-level column whose values the table's column cannot hold: they go to the
/// rescued-data column. `target` is the table's type (STRING for a column that is itself
/// named like the rescued-data column; NULL for a new column that Delta cannot hold, a
/// struct with two fields whose names differ only in case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatible {
    pub column: Arc<str>,
    pub target: ColumnType,
    pub incoming: ColumnType,
}

/// What a table must become to hold incoming files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evolution {
    /// Columns and nested fields to add, in order (the rescued-data column last).
    pub add: Vec<NewColumn>,
    pub widen: Vec<Widening>,
    pub incompatible: Vec<Incompatible>,
    /// The table's columns after the evolution: the schema to build the load statement
    /// against.
    pub schema: Vec<Field>,
}

impl Evolution {
    /// Whether the table needs no DDL.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.widen.is_empty()
    }
}

/// The evolution of a table with columns `target` for one incoming schema.
pub fn evolve(target: &[Field], incoming: &[Field]) -> Evolution {
    evolve_schemas(target, std::iter::once(incoming))
}

/// The evolution of a table with columns `target` for all files of a batch, in order (a
/// column two files disagree on takes the first file's type, widened by the later ones when
/// Delta allows; otherwise the later file's values are rescued). With `target` empty, the
/// resulting [`Evolution::schema`] is the schema to create the table with.
pub fn evolve_files(target: &[Field], files: &[StagedFile]) -> Evolution {
    evolve_schemas(target, files.iter().map(|f| f.fields.as_slice()))
}

fn evolve_schemas<'a>(
    target: &[Field],
    incoming: impl IntoIterator<Item = &'a [Field]>,
) -> Evolution {
    let mut schema = target.to_vec();
    let mut incompatible: Vec<Incompatible> = Vec::new();
    let mut note = |inc: Incompatible| {
        if !incompatible.contains(&inc) {
            incompatible.push(inc);
        }
    };
    for fields in incoming {
        let pairs = pair(&schema, fields, true);
        let mut appended: Vec<Field> = Vec::new();
        for (field, paired) in fields.iter().zip(pairs) {
            if is_rescued(&field.name) {
                note(Incompatible {
                    column: field.name.clone(),
                    target: ColumnType::String,
                    incoming: field.ty.clone(),
                });
                continue;
            }
            match paired {
                Some(i) => match fit(&schema[i].ty, &field.ty) {
                    Fit::Holds => {}
                    Fit::Widen(ty) => schema[i].ty = ty,
                    Fit::Incompatible => note(Incompatible {
                        column: field.name.clone(),
                        target: schema[i].ty.clone(),
                        incoming: field.ty.clone(),
                    }),
                },
                None => {
                    // A name that differs only in case from a column already paired (the file
                    // has both `Id` and `id`) cannot become a second column.
                    let taken = schema
                        .iter()
                        .chain(&appended)
                        .find(|f| same_name(&f.name, &field.name));
                    match (taken, new_type(&field.ty)) {
                        (None, Some(ty)) => appended.push(Field::new(field.name.clone(), ty)),
                        (taken, _) => note(Incompatible {
                            column: field.name.clone(),
                            target: taken.map_or(ColumnType::Null, |f| f.ty.clone()),
                            incoming: field.ty.clone(),
                        }),
                    }
                }
            }
        }
        schema.extend(appended);
    }
    if !incompatible.is_empty() && !schema.iter().any(|f| is_rescued(&f.name)) {
        schema.push(Field::new(RESCUED_DATA, ColumnType::String));
    }
    let mut add = Vec::new();
    let mut widen = Vec::new();
    for (i, field) in schema.iter().enumerate() {
        let path = vec![field.name.clone()];
        match target.get(i) {
            Some(old) => diff(path, &old.ty, &field.ty, &mut add, &mut widen),
            None => add.push(NewColumn {
                path,
                ty: field.ty.clone(),
            }),
        }
    }
    Evolution {
        add,
        widen,
        incompatible,
        schema,
    }
}

/// The type a new column or field gets: its storage type; `None` when a struct in it has two
/// fields whose names differ only in case (Delta cannot hold both: the column is rescued).
fn new_type(ty: &ColumnType) -> Option<ColumnType> {
    fn case_clash(ty: &ColumnType) -> bool {
        match ty {
            ColumnType::Struct(fields) => {
                fields
                    .iter()
                    .enumerate()
                    .any(|(i, a)| fields[..i].iter().any(|b| same_name(&a.name, &b.name)))
                    || fields.iter().any(|f| case_clash(&f.ty))
            }
            ColumnType::List(element) => case_clash(element),
            _ => false,
        }
    }
    (!case_clash(ty)).then(|| storage(ty))
}

/// The statements that apply `evolution` to `table`: one `ADD COLUMNS` with every new
/// column and nested field, then one `ALTER COLUMN ... TYPE` per widening. Run them in order,
/// before the load statement. Empty when there is nothing to change.
pub fn evolution_sql(table: &TableRef, evolution: &Evolution) -> Vec<String> {
    let name = table.sql();
    let mut out = Vec::new();
    if !evolution.add.is_empty() {
        let columns: Vec<String> = evolution
            .add
            .iter()
            .map(|c| format!("{} {}", column_path(&c.path), c.ty.sql_name()))
            .collect();
        out.push(format!(
            "ALTER TABLE {name} ADD COLUMNS ({})",
            columns.join(", ")
        ));
    }
    for w in &evolution.widen {
        out.push(format!(
            "ALTER TABLE {name} ALTER COLUMN {} TYPE {}",
            column_path(&w.path),
            w.to.sql_name()
        ));
    }
    out
}

fn column_path(path: &[Arc<str>]) -> String {
    path.iter()
        .map(|p| quote_ident(p))
        .collect::<Vec<_>>()
        .join(".")
}

/// How a table column's type fits an incoming type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The table's type holds every incoming value (the same type, or through a cast).
    Holds,
    /// Delta widening to this type makes the table hold both.
    Widen(ColumnType),
    /// The values cannot go into this column: rescue them.
    Incompatible,
}

pub(crate) fn fit(target: &ColumnType, incoming: &ColumnType) -> Fit {
    use ColumnType as T;
    if *incoming == T::Null {
        return Fit::Holds;
    }
    let (t, i) = (storage(target), storage(incoming));
    if t == i {
        return Fit::Holds;
    }
    match (&t, &i) {
        // Any value is kept as text in a STRING column (nested ones as JSON).
        (T::String, _) => Fit::Holds,
        (T::Struct(tf), T::Struct(inf)) => fit_struct(tf, inf),
        (T::List(te), T::List(ie)) => match fit(te, ie) {
            Fit::Holds => Fit::Holds,
            Fit::Widen(e) => Fit::Widen(T::List(Box::new(e))),
            Fit::Incompatible => Fit::Incompatible,
        },
        (T::Struct(_) | T::List(_), _) | (_, T::Struct(_) | T::List(_)) => Fit::Incompatible,
        _ if holds(&t, &i) => Fit::Holds,
        _ => match widen(&t, &i) {
            Some(w) => Fit::Widen(w),
            None => Fit::Incompatible,
        },
    }
}

fn fit_struct(target: &[Field], incoming: &[Field]) -> Fit {
    let mut fields: Vec<Field> = target.to_vec();
    let mut changed = false;
    let pairs = pair(target, incoming, false);
    for (field, paired) in incoming.iter().zip(pairs) {
        match paired {
            Some(i) => match fit(&target[i].ty, &field.ty) {
                Fit::Holds => {}
                Fit::Widen(ty) => {
                    fields[i].ty = ty;
                    changed = true;
                }
                Fit::Incompatible => return Fit::Incompatible,
            },
            None => {
                let taken = fields.iter().any(|f| same_name(&f.name, &field.name));
                let Some(ty) = new_type(&field.ty).filter(|_| !taken) else {
                    return Fit::Incompatible;
                };
                fields.push(Field::new(field.name.clone(), ty));
                changed = true;
            }
        }
    }
    if changed {
        Fit::Widen(ColumnType::Struct(fields))
    } else {
        Fit::Holds
    }
}

fn decimal_parts(ty: &ColumnType) -> Option<(i16, i16)> {
    match ty {
        ColumnType::Decimal { precision, scale } => {
            Some((i16::from(*precision), i16::from(*scale)))
        }
        _ => None,
    }
}

/// Whether every value of the scalar storage type `incoming` fits `target` exactly through a
/// CAST. BIGINT into DOUBLE counts (as in [`ColumnType::merge`]; exact up to 2^53).
pub(crate) fn holds(target: &ColumnType, incoming: &ColumnType) -> bool {
    use ColumnType as T;
    if target == incoming {
        return true;
    }
    match (target, incoming) {
        (T::String, _) => true,
        (T::Int64, T::Int32) => true,
        (T::Float64, T::Float32 | T::Int32 | T::Int64) => true,
        (T::Decimal { .. }, T::Int32 | T::Int64 | T::Decimal { .. }) => {
            let Some((p, s)) = decimal_parts(target) else {
                return false;
            };
            match incoming {
                T::Int32 => s >= 0 && p - s >= 10,
                T::Int64 => s >= 0 && p - s >= 19,
                _ => match decimal_parts(incoming) {
                    Some((p2, s2)) => s >= s2 && p - s >= p2 - s2,
                    None => false,
                },
            }
        }
        _ => false,
    }
}

/// The type Delta can widen the scalar `target` to so that it also holds `incoming`.
pub(crate) fn widen(target: &ColumnType, incoming: &ColumnType) -> Option<ColumnType> {
    use ColumnType as T;
    let decimal = |int_digits: i16, scale: i16| -> Option<ColumnType> {
        let precision = int_digits + scale;
        if scale < 0 || precision > i16::from(MAX_DECIMAL_PRECISION) {
            return None;
        }
        Some(T::Decimal {
            precision: u8::try_from(precision).ok()?,
            scale: i8::try_from(scale).ok()?,
        })
    };
    match (target, incoming) {
        (T::Int32, T::Int64) => Some(T::Int64),
        (T::Int32, T::Float32 | T::Float64) => Some(T::Float64),
        (T::Float32, T::Float64 | T::Int32 | T::Int64) => Some(T::Float64),
        (T::Int32, T::Decimal { .. }) => {
            let (p, s) = decimal_parts(incoming)?;
            decimal((p - s).max(10), s)
        }
        (T::Int64, T::Decimal { .. }) => {
            let (p, s) = decimal_parts(incoming)?;
            decimal((p - s).max(20), s)
        }
        (T::Decimal { .. }, T::Int32 | T::Int64 | T::Decimal { .. }) => {
            let (p, s) = decimal_parts(target)?;
            let (int_digits, scale) = match incoming {
                T::Int32 => (10, 0),
                T::Int64 => (19, 0),
                _ => {
                    let (p2, s2) = decimal_parts(incoming)?;
                    (p2 - s2, s2)
                }
            };
            decimal((p - s).max(int_digits), s.max(scale))
        }
        _ => None,
    }
}

/// Adds to `add` and `widen` what turns the table type `old` into `new` (which extends it:
/// struct fields keep their positions, new ones come after).
fn diff(
    path: Vec<Arc<str>>,
    old: &ColumnType,
    new: &ColumnType,
    add: &mut Vec<NewColumn>,
    widen: &mut Vec<Widening>,
) {
    match (storage(old), new) {
        (ColumnType::Struct(a), ColumnType::Struct(b)) => {
            for (i, field) in b.iter().enumerate() {
                let mut sub = path.clone();
                match a.get(i) {
                    Some(old_field) => {
                        sub.push(old_field.name.clone());
                        diff(sub, &old_field.ty, &field.ty, add, widen);
                    }
                    None => {
                        sub.push(field.name.clone());
                        add.push(NewColumn {
                            path: sub,
                            ty: field.ty.clone(),
                        });
                    }
                }
            }
        }
        (ColumnType::List(a), ColumnType::List(b)) => {
            let mut sub = path;
            sub.push(Arc::from("element"));
            diff(sub, &a, b, add, widen);
        }
        (a, b) if a != storage(b) => widen.push(Widening {
            path,
            from: old.clone(),
            to: b.clone(),
        }),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use ColumnType as T;

    fn f(name: &str, ty: ColumnType) -> Field {
        Field::new(name, ty)
    }

    fn dec(precision: u8, scale: i8) -> ColumnType {
        T::Decimal { precision, scale }
    }

    fn path(parts: &[&str]) -> Vec<Arc<str>> {
        parts.iter().map(|p| Arc::from(*p)).collect()
    }

    /// The single widening `from` → `to` (or none) of one column receiving `incoming`.
    fn one(from: ColumnType, incoming: ColumnType) -> Evolution {
        evolve(&[f("c", from)], &[f("c", incoming)])
    }

    fn widened(from: ColumnType, incoming: ColumnType, to: ColumnType) {
        let e = one(from.clone(), incoming.clone());
        assert_eq!(
            e.widen,
            vec![Widening {
                path: path(&["c"]),
                from,
                to: to.clone()
            }],
            "{incoming:?}"
        );
        assert!(e.add.is_empty() && e.incompatible.is_empty(), "{e:?}");
        assert_eq!(e.schema, vec![f("c", to)]);
    }

    fn held(target: ColumnType, incoming: ColumnType) {
        let e = one(target.clone(), incoming.clone());
        assert!(
            e.is_empty() && e.incompatible.is_empty(),
            "{target:?} {incoming:?}: {e:?}"
        );
        assert_eq!(e.schema, vec![f("c", target)]);
    }

    fn incompatible(target: ColumnType, incoming: ColumnType) {
        let e = one(target.clone(), incoming.clone());
        assert_eq!(
            e.incompatible,
            vec![Incompatible {
                column: "c".into(),
                target: target.clone(),
                incoming
            }]
        );
        assert!(e.widen.is_empty());
        assert_eq!(
            e.add,
            vec![NewColumn {
                path: path(&[RESCUED_DATA]),
                ty: T::String
            }]
        );
        assert_eq!(e.schema, vec![f("c", target), f(RESCUED_DATA, T::String)]);
    }

    #[test]
    fn delta_widenings() {
        widened(T::Int32, T::Int64, T::Int64);
        widened(T::Int32, T::Time, T::Int64);
        widened(T::Int32, T::Float64, T::Float64);
        widened(T::Int32, T::Float32, T::Float64);
        widened(T::Float32, T::Float64, T::Float64);
        widened(T::Float32, T::Int32, T::Float64);
        widened(T::Int32, dec(5, 2), dec(12, 2));
        widened(T::Int32, dec(14, 2), dec(14, 2));
        widened(T::Int64, dec(10, 0), dec(20, 0));
        widened(T::Int64, dec(30, 4), dec(30, 4));
        widened(dec(10, 2), dec(12, 2), dec(12, 2));
        widened(dec(10, 2), dec(10, 4), dec(12, 4));
        widened(dec(10, 2), dec(12, 4), dec(12, 4));
        widened(dec(5, 0), T::Int32, dec(10, 0));
        widened(dec(12, 4), T::Int64, dec(23, 4));
    }

    #[test]
    fn narrower_or_equal_incoming_types_are_cast() {
        held(T::Int64, T::Int32);
        held(T::Int64, T::Time);
        held(T::Float64, T::Float32);
        held(T::Float64, T::Int64);
        held(dec(12, 2), dec(10, 2));
        held(dec(20, 4), dec(10, 1));
        held(dec(12, 2), T::Int32);
        held(dec(21, 2), T::Int64);
        held(T::String, T::Int64);
        held(T::String, T::Boolean);
        held(T::String, T::Binary);
        held(T::Json, T::Struct(vec![f("a", T::Int64)]));
        held(T::String, T::List(Box::new(T::Int32)));
        held(T::Int32, T::Null);
        held(T::Struct(vec![f("a", T::Int64)]), T::Null);
        held(T::Json, T::String);
        held(T::Null, T::String);
        held(T::Time, T::Int64);
    }

    #[test]
    fn incompatible_changes_are_rescued_not_failed() {
        incompatible(T::Int64, T::String);
        incompatible(T::Int64, T::Float64);
        incompatible(T::Int64, T::Float32);
        incompatible(T::Int32, T::Boolean);
        incompatible(T::Boolean, T::Int32);
        incompatible(T::Float64, dec(10, 2));
        incompatible(dec(10, 2), T::Float64);
        incompatible(dec(38, 0), dec(38, 2));
        incompatible(T::Int64, dec(38, 20));
        incompatible(T::Date, T::Timestamp);
        incompatible(T::Timestamp, T::Date);
        incompatible(T::Binary, T::String);
        incompatible(T::Int64, T::Struct(vec![f("a", T::Int64)]));
        incompatible(T::Struct(vec![f("a", T::Int64)]), T::Int64);
        incompatible(T::Struct(vec![f("a", T::Int64)]), T::Json);
        incompatible(T::List(Box::new(T::Int64)), T::Int64);
        incompatible(
            T::Struct(vec![f("a", T::Int64), f("b", T::String)]),
            T::Struct(vec![f("a", T::String)]),
        );
        incompatible(T::List(Box::new(T::Int64)), T::List(Box::new(T::Float64)));
    }

    #[test]
    fn new_columns_and_nested_fields_are_added() {
        let target = vec![
            f("id", T::Int64),
            f("s", T::Struct(vec![f("a", T::Int32), f("b", T::String)])),
            f("l", T::List(Box::new(T::Struct(vec![f("x", T::Int64)])))),
        ];
        let incoming = vec![
            f("ID", T::Int32),
            f("new col", T::Json),
            f("S", T::Struct(vec![f("A", T::Int64), f("c.d", T::Boolean)])),
            f(
                "l",
                T::List(Box::new(T::Struct(vec![f("x", T::Int64), f("y", T::Date)]))),
            ),
        ];
        let e = evolve(&target, &incoming);
        assert!(e.incompatible.is_empty(), "{e:?}");
        assert_eq!(
            e.add,
            vec![
                NewColumn {
                    path: path(&["s", "c.d"]),
                    ty: T::Boolean
                },
                NewColumn {
                    path: path(&["l", "element", "y"]),
                    ty: T::Date
                },
                NewColumn {
                    path: path(&["new col"]),
                    ty: T::String
                },
            ]
        );
        assert_eq!(
            e.widen,
            vec![Widening {
                path: path(&["s", "a"]),
                from: T::Int32,
                to: T::Int64
            }]
        );
        assert_eq!(
            e.schema,
            vec![
                f("id", T::Int64),
                f(
                    "s",
                    T::Struct(vec![
                        f("a", T::Int64),
                        f("b", T::String),
                        f("c.d", T::Boolean)
                    ]),
                ),
                f(
                    "l",
                    T::List(Box::new(T::Struct(vec![f("x", T::Int64), f("y", T::Date)]))),
                ),
                f("new col", T::String),
            ]
        );
        let table = TableRef::in_catalog("main", "shop", "orders");
        assert_eq!(
            evolution_sql(&table, &e),
            vec![
                "ALTER TABLE `main`.`shop`.`orders` ADD COLUMNS (`s`.`c.d` BOOLEAN, `l`.`element`.`y` DATE, `new col` STRING)",
                "ALTER TABLE `main`.`shop`.`orders` ALTER COLUMN `s`.`a` TYPE BIGINT",
            ]
        );
    }

    #[test]
    fn nothing_to_do_for_the_same_schema() {
        let target = vec![f("id", T::Int64), f("n", T::String)];
        let e = evolve(&target, &target);
        assert!(e.is_empty() && e.incompatible.is_empty());
        assert_eq!(e.schema, target);
        assert!(evolution_sql(&TableRef::new("t"), &e).is_empty());
    }

    #[test]
    fn files_fold_in_order_and_rescue_what_disagrees() {
        let files = vec![
            StagedFile::new(
                "s3://b/1.parquet",
                vec![f("id", T::Int32), f("x", T::Int32)],
            ),
            StagedFile::new(
                "s3://b/2.parquet",
                vec![f("id", T::Int64), f("x", T::String)],
            ),
            StagedFile::new(
                "s3://b/3.parquet",
                vec![f("id", T::Int32), f("x", T::String)],
            ),
        ];
        let e = evolve_files(&[f("id", T::Int32)], &files);
        assert_eq!(
            e.schema,
            vec![
                f("id", T::Int64),
                f("x", T::Int32),
                f(RESCUED_DATA, T::String)
            ]
        );
        assert_eq!(
            e.incompatible,
            vec![Incompatible {
                column: "x".into(),
                target: T::Int32,
                incoming: T::String
            }]
        );
        assert_eq!(
            e.add,
            vec![
                NewColumn {
                    path: path(&["x"]),
                    ty: T::Int32
                },
                NewColumn {
                    path: path(&[RESCUED_DATA]),
                    ty: T::String
                },
            ]
        );
        // Creating a table: evolve from nothing.
        let created = evolve_files(&[], &files[..1]);
        assert_eq!(created.schema, files[0].fields);
    }

    #[test]
    fn a_column_named_like_the_rescued_column_is_itself_rescued() {
        let e = evolve(
            &[f("id", T::Int64)],
            &[f("id", T::Int64), f("_Rescued_Data", T::Int64)],
        );
        assert_eq!(
            e.incompatible,
            vec![Incompatible {
                column: "_Rescued_Data".into(),
                target: T::String,
                incoming: T::Int64
            }]
        );
        assert_eq!(
            e.schema,
            vec![f("id", T::Int64), f(RESCUED_DATA, T::String)]
        );
        // An existing rescued column is kept, not added twice.
        let again = evolve(&e.schema, &[f("_rescued_data", T::Int64)]);
        assert!(again.add.is_empty());
        assert_eq!(again.schema, e.schema);
    }

    #[test]
    fn names_differing_only_in_case_are_one_column() {
        let e = evolve(&[], &[f("Id", T::Int64), f("id", T::Int64)]);
        assert_eq!(
            e.schema,
            vec![f("Id", T::Int64), f(RESCUED_DATA, T::String)]
        );
        assert_eq!(e.incompatible.len(), 1);
        assert_eq!(&*e.incompatible[0].column, "id");
        let nested = evolve(
            &[f("s", T::Struct(vec![f("a", T::Int64)]))],
            &[f("s", T::Struct(vec![f("a", T::Int64), f("A", T::Int64)]))],
        );
        assert_eq!(nested.incompatible.len(), 1);
    }
}
