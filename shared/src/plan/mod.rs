//! SQL plans for the load and maintain functions: pure functions from table schemas and
//! staged files to Databricks SQL text. No I/O happens here.
//!
//! The load function, per table and batch of staged files:
//! 1. reads each staged file's Parquet footer into a [`StagedFile`] (its columns as
//!    [`ColumnType`]s);
//! 2. creates the table when it is missing: [`create_table`] with the columns of
//!    `evolve_files(&[], files).schema` (so the first batch gets a `_rescued_data` column
//!    when its own files disagree);
//! 3. evolves the table: [`evolve_files`] against the table's current columns, then runs the
//!    statements of [`evolution_sql`] (ADD COLUMNS first, then one ALTER COLUMN per widening);
//! 4. loads every file of the batch with one statement built against the evolved schema
//!    ([`Evolution::schema`]): [`merge_upsert`] for upsert tables, [`merge_append`] (exactly
//!    once per Kafka record) or [`copy_into`] (once per file) for append and raw tables.
//!
//! Maintain uses [`hard_delete_tombstones`].
//!
//! Rules every plan follows (DESIGN.md, semantics 5 and 6):
//! - every identifier (catalog, schema, table, column, struct field) goes through
//!   [`quote_ident`]; no data value ever enters SQL text. The only literals are the staged
//!   files' S3 paths (checked by [`check_uri`]), table property values, and constants.
//! - every file is read through its own projection ([`project`]) that gives it exactly the
//!   target's columns, in order and with the target's types: a column the file lacks is a
//!   typed `NULL`; a narrower type is cast; a value the target column cannot hold (and any file
//!   column the target lacks) is carried into the [`RESCUED_DATA`] column as a JSON object of
//!   `{column: value as text}`. So files of different schemas can be `UNION ALL`ed, and no
//!   value is ever dropped.
//! - every select expression is aliased (Sail refuses duplicate unaliased expressions).
//!
//! Golden files: the SQL of representative inputs is kept under
//! `shared/tests/golden/plan/*.sql` and compared by the tests of this module. After an
//! intended change, rewrite them with
//! `DELTASINK_BLESS=1 cargo test -p deltasink --lib plan` and review the diff.

mod backfill;
mod copy;
mod create;
mod evolve;
mod maintain;
mod merge;
mod projection;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use std::fmt;

pub use backfill::{
    DedupColumn, ParamStatement, RECORD_SOURCE_BACKFILL, RECORD_SOURCE_STREAM, backfill_merge,
    backfill_newest, stream_oldest,
};
pub use copy::{COPY_INTO_MAX_FILES, copy_into};
pub use create::create_table;
pub use evolve::{
    Evolution, Incompatible, NewColumn, Widening, evolution_sql, evolve, evolve_files,
};
pub use maintain::{hard_delete_tombstones, optimize};
pub use merge::{ROW_NUMBER_COLUMN, merge_append, merge_upsert};
pub use projection::{project, rescued_columns};

use crate::route::TableName;
use crate::sql::quote_ident;
use crate::value::{ColumnType, Field};

/// The rescued-data column: a STRING holding a JSON object `{column: value as text}` of the
/// values of a row that its table's columns could not hold (an incompatible type, or a
/// column name that collides with another one). Added by [`evolution_sql`] when first needed.
pub const RESCUED_DATA: &str = "_rescued_data";

/// A table of one to three parts. The caller applies the default catalog and schema (see
/// [`TableRef::with_defaults`]); a catalog is only ever given together with a schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    catalog: Option<String>,
    schema: Option<String>,
    table: String,
}

impl TableRef {
    /// A one-part name, resolved by the warehouse against the statement's catalog and schema.
    pub fn new(table: impl Into<String>) -> TableRef {
        TableRef {
            catalog: None,
            schema: None,
            table: table.into(),
        }
    }

    /// `schema.table`.
    pub fn in_schema(schema: impl Into<String>, table: impl Into<String>) -> TableRef {
        TableRef {
            catalog: None,
            schema: Some(schema.into()),
            table: table.into(),
        }
    }

    /// `catalog.schema.table`.
    pub fn in_catalog(
        catalog: impl Into<String>,
        schema: impl Into<String>,
        table: impl Into<String>,
    ) -> TableRef {
        TableRef {
            catalog: Some(catalog.into()),
            schema: Some(schema.into()),
            table: table.into(),
        }
    }

    /// The same table with the missing parts filled in: the schema when there is none, the
    /// catalog when there is a schema but no catalog.
    pub fn with_defaults(mut self, catalog: Option<&str>, schema: Option<&str>) -> TableRef {
        if self.schema.is_none() {
            self.schema = schema.map(str::to_string);
        }
        if self.catalog.is_none() && self.schema.is_some() {
            self.catalog = catalog.map(str::to_string);
        }
        self
    }

    pub fn catalog(&self) -> Option<&str> {
        self.catalog.as_deref()
    }

    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The quoted name, e.g. `` `main`.`shop`.`orders` ``.
    pub fn sql(&self) -> String {
        let mut out = String::new();
        for part in [self.catalog.as_deref(), self.schema.as_deref()]
            .into_iter()
            .flatten()
        {
            out.push_str(&quote_ident(part));
            out.push('.');
        }
        out.push_str(&quote_ident(&self.table));
        out
    }
}

impl From<&TableName> for TableRef {
    fn from(name: &TableName) -> TableRef {
        match name.parts() {
            [catalog, schema, table] => TableRef::in_catalog(catalog, schema, table),
            [schema, table] => TableRef::in_schema(schema, table),
            _ => TableRef::new(name.table()),
        }
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// A staged Parquet file: where it is and its columns (read from its footer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// `s3://bucket/key`.
    pub uri: String,
    /// The file's Parquet schema as column types, in file order.
    pub fields: Vec<Field>,
}

impl StagedFile {
    pub fn new(uri: impl Into<String>, fields: Vec<Field>) -> StagedFile {
        StagedFile {
            uri: uri.into(),
            fields,
        }
    }
}

/// Why a plan cannot be built. Every one is permanent: the inputs (a file's path, the table's
/// schema or settings) are wrong or the caller skipped a step, and retrying changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("table {table}: no staged files to load")]
    NoFiles { table: String },
    #[error("table {table}: no columns")]
    NoColumns { table: String },
    #[error("table {table}: duplicate column `{column}` (column names are case-insensitive)")]
    DuplicateColumn { table: String, column: String },
    #[error("table {table}: column `{column}` is missing ({why})")]
    MissingColumn {
        table: String,
        column: String,
        why: &'static str,
    },
    #[error("table {table}: an upsert table needs a primary key")]
    NoPrimaryKey { table: String },
    #[error("staged file `{uri}`: {reason}")]
    UnsafePath { uri: String, reason: &'static str },
    #[error(
        "staged file `{uri}`: the table cannot hold column(s) {columns:?} and has no `_rescued_data` \
         STRING column to keep them; apply the schema evolution (evolve_files, evolution_sql) first"
    )]
    NeedsRescueColumn { uri: String, columns: Vec<String> },
    #[error(
        "staged file `{uri}`: key column `{column}` is missing or has a type the table's column \
         cannot hold; its rows cannot be matched (a primary key's type cannot change in place)"
    )]
    KeyNotLoadable { uri: String, column: String },
    #[error("parameter name `{name}` must match [A-Za-z_][A-Za-z0-9_]*")]
    BadParameterName { name: String },
}

/// A Spark SQL string literal: single quotes, with `\` and `'` escaped by a backslash (the
/// Spark and Databricks parsers read backslash escapes) and control characters written as
/// `\uXXXX`, so that any text reads back exactly.
pub(crate) fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() && (c as u32) <= 0xFFFF => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Checks that `uri` names one file (`scheme://bucket/key`) and can be written into SQL
/// safely. Refused: control characters (no literal form survives every path layer), glob
/// metacharacters `* ? [ ] { }` and the backslash (``parquet.`path` `` and COPY INTO sources
/// are glob patterns on Spark, where `\` is the glob escape: such a path would name other
/// files or none). Quotes and backticks are fine: they are escaped where the path is written.
pub fn check_uri(uri: &str) -> Result<(), PlanError> {
    let refuse = |reason| {
        Err(PlanError::UnsafePath {
            uri: uri.to_string(),
            reason,
        })
    };
    let Some((scheme, rest)) = uri.split_once("://") else {
        return refuse("not a URI of the form scheme://bucket/key");
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return refuse("not a URI of the form scheme://bucket/key");
    }
    if !rest.contains('/') || rest.ends_with('/') {
        return refuse("does not name a file (scheme://bucket/key)");
    }
    if uri.chars().any(char::is_control) {
        return refuse("control characters in a path cannot be written into SQL safely");
    }
    if uri.contains(['*', '?', '[', ']', '{', '}', '\\']) {
        return refuse(
            "glob metacharacters (* ? [ ] { } \\) in a path would be read as a pattern by the warehouse",
        );
    }
    Ok(())
}

/// ``parquet.`<uri>` ``: the file as a table (the path is a backtick-quoted identifier).
pub(crate) fn parquet_source(uri: &str) -> Result<String, PlanError> {
    check_uri(uri)?;
    Ok(format!("parquet.{}", quote_ident(uri)))
}

/// Column-name equality as Spark and Delta resolve names (case-insensitive).
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a == b || a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
}

pub(crate) fn is_rescued(name: &str) -> bool {
    same_name(name, RESCUED_DATA)
}

/// Pairs incoming fields with target fields by name: exact matches first, then
/// case-insensitive ones among the targets still free. For each incoming field, the index of
/// its target field, if any. Fields named like the rescued-data column are never paired
/// when `skip_rescued` is set.
pub(crate) fn pair(
    targets: &[Field],
    incoming: &[Field],
    skip_rescued: bool,
) -> Vec<Option<usize>> {
    let mut used = vec![false; targets.len()];
    let mut out = vec![None; incoming.len()];
    let skip = |name: &str| skip_rescued && is_rescued(name);
    for (j, f) in incoming.iter().enumerate() {
        if skip(&f.name) {
            continue;
        }
        if let Some(i) = (0..targets.len()).find(|&i| !used[i] && targets[i].name == f.name) {
            used[i] = true;
            out[j] = Some(i);
        }
    }
    for (j, f) in incoming.iter().enumerate() {
        if out[j].is_some() || skip(&f.name) {
            continue;
        }
        if let Some(i) = (0..targets.len())
            .find(|&i| !used[i] && !skip(&targets[i].name) && same_name(&targets[i].name, &f.name))
        {
            used[i] = true;
            out[j] = Some(i);
        }
    }
    out
}

/// The type as stored: JSON text and unknown (all-null) columns are STRING, times of day are
/// BIGINT. Two types with the same storage type have the same SQL spelling.
pub(crate) fn storage(ty: &ColumnType) -> ColumnType {
    match ty {
        ColumnType::Null | ColumnType::Json => ColumnType::String,
        ColumnType::Time => ColumnType::Int64,
        ColumnType::List(element) => ColumnType::List(Box::new(storage(element))),
        ColumnType::Struct(fields) => ColumnType::Struct(
            fields
                .iter()
                .map(|f| Field::new(f.name.clone(), storage(&f.ty)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Index of the column named `name` (case-insensitive), if any.
pub(crate) fn find_column(fields: &[Field], name: &str) -> Option<usize> {
    fields
        .iter()
        .position(|f| f.name.as_ref() == name)
        .or_else(|| fields.iter().position(|f| same_name(&f.name, name)))
}
