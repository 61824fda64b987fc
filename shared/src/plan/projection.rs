//! The per-file projection: a `SELECT` over one staged file that yields exactly the target's
//! columns, in the target's order and with the target's types, so that files with different
//! schemas can be `UNION ALL`ed and loaded by one statement.
//!
//! For each target column:
//! - the file's column of the same name (exact spelling first, then case-insensitive), as is
//!   when the types are the same, else converted: `CAST` to a wider scalar, text for a STRING
//!   column (`CAST(.. AS STRING)`, `base64(..)` for binary, `to_json(..)` for nested values),
//!   structs rebuilt field by field (`struct(.. AS f, ..)`, missing fields typed NULL, a NULL
//!   struct stays NULL), arrays element by element (`transform`) or by one `CAST`;
//! - `CAST(NULL AS <type>)` when the file lacks it;
//! - for the rescued-data column: `NULLIF(to_json(struct(<value as text> AS <column>, ..)),
//!   '{}')` over the file's columns the table cannot hold (an incompatible type, a column the
//!   table lacks, a column named like the rescued-data column); such a column's target column
//!   gets NULL. Nothing in a file is ever left out.

use std::sync::Arc;

use super::evolve::holds;
use super::{PlanError, StagedFile, is_rescued, pair, parquet_source, storage};
use crate::sql::quote_ident;
use crate::value::{ColumnType, Field};

/// ``SELECT <one aliased expression per target column> FROM parquet.`<uri>` ``.
///
/// Fails when the file has columns the target cannot hold and the target has no
/// `_rescued_data` STRING column (the caller skipped [`evolve_files`](super::evolve_files)),
/// or when the file's path cannot be written safely.
pub fn project(file: &StagedFile, target: &[Field]) -> Result<String, PlanError> {
    let source = parquet_source(&file.uri)?;
    Ok(format!(
        "SELECT {} FROM {source}",
        select_list(file, target)?
    ))
}

/// The select list of [`project`] (also the select list of a COPY INTO over files of the same
/// schema).
pub(crate) fn select_list(file: &StagedFile, target: &[Field]) -> Result<String, PlanError> {
    let pairs = pair(target, &file.fields, true);
    let mut by_target: Vec<Option<usize>> = vec![None; target.len()];
    let mut rescued: Vec<&Field> = Vec::new();
    for (j, paired) in pairs.iter().enumerate() {
        match paired {
            Some(i) => by_target[*i] = Some(j),
            None => rescued.push(&file.fields[j]),
        }
    }
    let mut exprs: Vec<(String, &Field)> = Vec::with_capacity(target.len());
    let mut rescue_at = None;
    for (i, column) in target.iter().enumerate() {
        if is_rescued(&column.name) {
            rescue_at = Some(exprs.len());
            exprs.push((String::new(), column));
            continue;
        }
        let expr = match by_target[i] {
            None => typed_null(&column.ty),
            Some(j) => {
                let field = &file.fields[j];
                match convert(&quote_ident(&field.name), &field.ty, &column.ty, 0) {
                    Some(conv) => conv.render(&quote_ident(&field.name), &column.ty),
                    None => {
                        rescued.push(field);
                        typed_null(&column.ty)
                    }
                }
            }
        };
        exprs.push((expr, column));
    }
    match rescue_at {
        Some(at) if storage(&exprs[at].1.ty) == ColumnType::String => {
            // Rescued values keep the file's column order.
            rescued.sort_by_key(|r| file.fields.iter().position(|f| std::ptr::eq(f, *r)));
            exprs[at].0 = rescue_expr(&rescued);
        }
        _ if !rescued.is_empty() => {
            return Err(PlanError::NeedsRescueColumn {
                uri: file.uri.clone(),
                columns: rescued.iter().map(|f| f.name.to_string()).collect(),
            });
        }
        // No rescued values in this file, and a rescued-data column of another type (not
        // ours): NULL of its type.
        Some(at) => exprs[at].0 = typed_null(&exprs[at].1.ty),
        None => {}
    }
    Ok(exprs
        .iter()
        .map(|(expr, column)| format!("{expr} AS {}", quote_ident(&column.name)))
        .collect::<Vec<_>>()
        .join(", "))
}

fn typed_null(ty: &ColumnType) -> String {
    format!("CAST(NULL AS {})", ty.sql_name())
}

/// The rescued-data value: a JSON object of the rescued columns' values as text, NULL when all
/// of them are NULL (`to_json` leaves NULL fields out).
fn rescue_expr(rescued: &[&Field]) -> String {
    if rescued.is_empty() {
        return typed_null(&ColumnType::String);
    }
    let fields: Vec<String> = rescued
        .iter()
        .map(|f| {
            let column = quote_ident(&f.name);
            format!("{} AS {column}", as_text(&column, &f.ty))
        })
        .collect();
    format!("NULLIF(to_json(struct({})), '{{}}')", fields.join(", "))
}

/// `expr` (of type `ty`) as text: nested values as JSON, binary as base64, scalars cast.
fn as_text(expr: &str, ty: &ColumnType) -> String {
    match ty {
        ColumnType::Null => typed_null(&ColumnType::String),
        ColumnType::Struct(_) | ColumnType::List(_) => format!("to_json({expr})"),
        ColumnType::Binary => format!("base64({expr})"),
        ColumnType::String | ColumnType::Json => expr.to_string(),
        _ => format!("CAST({expr} AS STRING)"),
    }
}

/// How a value becomes the target type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Conv {
    /// Already the target type.
    Same,
    /// `CAST(expr AS <target>)`.
    Cast,
    Expr(String),
}

impl Conv {
    fn render(self, expr: &str, to: &ColumnType) -> String {
        match self {
            Conv::Same => expr.to_string(),
            Conv::Cast => format!("CAST({expr} AS {})", to.sql_name()),
            Conv::Expr(e) => e,
        }
    }
}

/// How `expr` of type `from` becomes type `to`, or `None` when `to` cannot hold it (then it is
/// rescued). `depth` numbers lambda variables of nested `transform`s.
fn convert(expr: &str, from: &ColumnType, to: &ColumnType, depth: usize) -> Option<Conv> {
    use ColumnType as T;
    if *from == T::Null {
        return Some(Conv::Expr(typed_null(to)));
    }
    let (f, t) = (storage(from), storage(to));
    if f == t {
        return Some(Conv::Same);
    }
    match (&f, &t) {
        (_, T::String) => Some(match f {
            T::Binary | T::Struct(_) | T::List(_) => Conv::Expr(as_text(expr, &f)),
            _ => Conv::Cast,
        }),
        (T::Struct(from_fields), T::Struct(to_fields)) => {
            rebuild_struct(expr, from_fields, to_fields, depth).map(Conv::Expr)
        }
        (T::List(from_el), T::List(to_el)) => {
            let var = format!("x{}", depth + 1);
            match convert(&var, from_el, to_el, depth + 1)? {
                Conv::Same => Some(Conv::Same),
                Conv::Cast => Some(Conv::Cast),
                Conv::Expr(e) => Some(Conv::Expr(format!("transform({expr}, {var} -> {e})"))),
            }
        }
        (T::Struct(_) | T::List(_), _) | (_, T::Struct(_) | T::List(_)) => None,
        _ if holds(&t, &f) => Some(Conv::Cast),
        _ => None,
    }
}

/// `CASE WHEN expr IS NULL THEN NULL ELSE struct(<field> AS `name`, ...) END` in the target's
/// field order; `None` when a source field has no target field (it would be lost) or cannot
/// be converted.
fn rebuild_struct(expr: &str, from: &[Field], to: &[Field], depth: usize) -> Option<String> {
    let pairs = pair(to, from, false);
    let mut by_target: Vec<Option<usize>> = vec![None; to.len()];
    for (j, paired) in pairs.iter().enumerate() {
        // A source field without a target field would be lost: rescue the whole column.
        by_target[(*paired)?] = Some(j);
    }
    let mut parts = Vec::with_capacity(to.len());
    for (i, field) in to.iter().enumerate() {
        let value = match by_target[i] {
            None => typed_null(&field.ty),
            Some(j) => {
                let source = &from[j];
                let access = format!("{expr}.{}", quote_ident(&source.name));
                convert(&access, &source.ty, &field.ty, depth)?.render(&access, &field.ty)
            }
        };
        parts.push(format!("{value} AS {}", quote_ident(&field.name)));
    }
    Some(format!(
        "CASE WHEN {expr} IS NULL THEN NULL ELSE struct({}) END",
        parts.join(", ")
    ))
}

/// Whether [`project`] fills the target column `index` from a column of the file (rather than
/// with NULL: the file lacks it, or its values are rescued).
pub(crate) fn fills(file: &StagedFile, target: &[Field], index: usize) -> bool {
    let pairs = pair(target, &file.fields, true);
    file.fields.iter().zip(pairs).any(|(field, paired)| {
        paired == Some(index) && convert("c", &field.ty, &target[index].ty, 0).is_some()
    })
}

/// The names of the file's columns that [`project`] carries into the rescued-data column (for
/// logs and metrics).
pub fn rescued_columns(file: &StagedFile, target: &[Field]) -> Vec<Arc<str>> {
    let pairs = pair(target, &file.fields, true);
    file.fields
        .iter()
        .zip(pairs)
        .filter(|(field, paired)| match paired {
            None => true,
            Some(i) => convert("c", &field.ty, &target[*i].ty, 0).is_none(),
        })
        .map(|(field, _)| field.name.clone())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::plan::{RESCUED_DATA, evolve_files};
    use ColumnType as T;

    fn f(name: &str, ty: ColumnType) -> Field {
        Field::new(name, ty)
    }

    #[test]
    fn same_schema_is_a_plain_select() {
        let fields = vec![f("id", T::Int64), f("n", T::Json)];
        let file = StagedFile::new(
            "s3://b/k.parquet",
            vec![f("id", T::Int64), f("n", T::String)],
        );
        assert_eq!(
            project(&file, &fields).unwrap(),
            "SELECT `id` AS `id`, `n` AS `n` FROM parquet.`s3://b/k.parquet`"
        );
    }

    #[test]
    fn casts_fills_and_reorders() {
        let target = vec![
            f("id", T::Int64),
            f(
                "Price",
                T::Decimal {
                    precision: 12,
                    scale: 2,
                },
            ),
            f("missing", T::Timestamp),
            f("tags", T::List(Box::new(T::Int64))),
        ];
        let file = StagedFile::new(
            "s3://b/k.parquet",
            vec![
                f("tags", T::List(Box::new(T::Int32))),
                f(
                    "price",
                    T::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
                f("ID", T::Int32),
            ],
        );
        assert_eq!(
            project(&file, &target).unwrap(),
            "SELECT CAST(`ID` AS BIGINT) AS `id`, CAST(`price` AS DECIMAL(12,2)) AS `Price`, \
             CAST(NULL AS TIMESTAMP) AS `missing`, CAST(`tags` AS ARRAY<BIGINT>) AS `tags` \
             FROM parquet.`s3://b/k.parquet`"
        );
    }

    #[test]
    fn structs_are_rebuilt_and_arrays_transformed() {
        let target = vec![
            f("s", T::Struct(vec![f("a", T::Int64), f("b", T::String)])),
            f(
                "l",
                T::List(Box::new(T::Struct(vec![f("x", T::Int64), f("y", T::Date)]))),
            ),
            f("j", T::Json),
            f("bin", T::String),
        ];
        let file = StagedFile::new(
            "s3://b/k.parquet",
            vec![
                f("s", T::Struct(vec![f("a", T::Int32)])),
                f("l", T::List(Box::new(T::Struct(vec![f("x", T::Int64)])))),
                f("j", T::Struct(vec![f("z", T::Boolean)])),
                f("bin", T::Binary),
            ],
        );
        assert_eq!(
            project(&file, &target).unwrap(),
            "SELECT CASE WHEN `s` IS NULL THEN NULL ELSE struct(CAST(`s`.`a` AS BIGINT) AS `a`, \
             CAST(NULL AS STRING) AS `b`) END AS `s`, transform(`l`, x1 -> CASE WHEN x1 IS NULL \
             THEN NULL ELSE struct(x1.`x` AS `x`, CAST(NULL AS DATE) AS `y`) END) AS `l`, \
             to_json(`j`) AS `j`, base64(`bin`) AS `bin` FROM parquet.`s3://b/k.parquet`"
        );
    }

    #[test]
    fn incompatible_and_unknown_columns_are_rescued() {
        let target = vec![
            f("id", T::Int64),
            f("n", T::Int64),
            f("s", T::Struct(vec![f("a", T::Int64)])),
            f(RESCUED_DATA, T::String),
        ];
        let file = StagedFile::new(
            "s3://b/k.parquet",
            vec![
                f("id", T::Int64),
                f("n", T::String),
                f(
                    "s",
                    T::Struct(vec![f("a", T::Int64), f("extra", T::Binary)]),
                ),
                f("not in table", T::Binary),
                f("_rescued_data", T::Float64),
            ],
        );
        assert_eq!(
            project(&file, &target).unwrap(),
            "SELECT `id` AS `id`, CAST(NULL AS BIGINT) AS `n`, CAST(NULL AS STRUCT<`a`: BIGINT>) AS `s`, \
             NULLIF(to_json(struct(`n` AS `n`, to_json(`s`) AS `s`, base64(`not in table`) AS `not in table`, \
             CAST(`_rescued_data` AS STRING) AS `_rescued_data`)), '{}') AS `_rescued_data` \
             FROM parquet.`s3://b/k.parquet`"
        );
        assert_eq!(
            rescued_columns(&file, &target),
            vec![
                Arc::from("n"),
                Arc::from("s"),
                Arc::from("not in table"),
                Arc::from("_rescued_data")
            ]
        );
        // Without a rescued-data column the plan refuses instead of dropping values.
        let e = project(&file, &target[..3]).unwrap_err();
        assert!(matches!(e, PlanError::NeedsRescueColumn { .. }), "{e}");
    }

    #[test]
    fn evolved_schema_always_projects() {
        let files = vec![
            StagedFile::new(
                "s3://b/1.parquet",
                vec![f("id", T::Int32), f("x", T::Int32)],
            ),
            StagedFile::new(
                "s3://b/2.parquet",
                vec![f("id", T::Float64), f("x", T::String)],
            ),
        ];
        let e = evolve_files(&[f("id", T::Int64)], &files);
        for file in &files {
            project(file, &e.schema).unwrap();
            let rescued = rescued_columns(file, &e.schema);
            for name in &rescued {
                assert!(e.incompatible.iter().any(|i| i.column == *name), "{name}");
            }
        }
        assert_eq!(
            rescued_columns(&files[1], &e.schema),
            vec![Arc::from("id"), Arc::from("x")]
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        let target = vec![f("id", T::Int64)];
        for uri in [
            "s3://b/a*b.parquet",
            "s3://b/a\nb.parquet",
            "s3://b/a\\b.parquet",
            "s3://b/",
            "b/k.parquet",
            "s3://b/{a,b}.parquet",
        ] {
            let file = StagedFile::new(uri, target.clone());
            assert!(
                matches!(project(&file, &target), Err(PlanError::UnsafePath { .. })),
                "{uri:?}"
            );
        }
        let file = StagedFile::new("s3://b/it's `odd`/k.parquet", target.clone());
        assert_eq!(
            project(&file, &target).unwrap(),
            "SELECT `id` AS `id` FROM parquet.`s3://b/it's ``odd``/k.parquet`"
        );
    }
}
