//! The one-time backfill of a raw ingestion table from a backfill source table, and the
//! queries of its overlap check.
//!
//! The MERGE copies source rows into the ingestion table with `record_source = 'backfill'`:
//! each target column takes the source column of the same name (cast to the target's type;
//! STRUCT/ARRAY values become JSON text in STRING columns) or NULL when the source lacks it.
//! Source rows are deduplicated on the dedup columns (newest `stream_record_timestamp` wins),
//! and a row is inserted only when no row of the table (stream or backfill) has the same dedup
//! values (`<=>`: NULL equals NULL). Existing rows are never updated or deleted, so the MERGE
//! leaves stream rows untouched and running it again inserts nothing: a run that crashed after
//! the commit but before its completion was recorded is finished by running it again.
//!
//! Values never enter the SQL text: `record_source` and the JSON paths of nested dedup
//! columns travel as named parameters.

use super::{PlanError, TableRef};
use crate::rows::{RAW_KEY, RAW_SOURCE, RAW_TIMESTAMP, RAW_VALUE};
use crate::sql::quote_ident;
use crate::value::{ColumnType, Field};
use crate::warehouse::Param;

/// `record_source` of rows written by the stage/load path.
pub const RECORD_SOURCE_STREAM: &str = "stream";
/// `record_source` of rows written by the backfill.
pub const RECORD_SOURCE_BACKFILL: &str = "backfill";

/// A deduplication column: a column, or a field inside it in dot notation
/// (`value.transaction_id`). Inside a STRING column (the raw tables' `key` and `value` hold
/// JSON text) the path is a JSON path; inside a STRUCT it is a field access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupColumn {
    pub column: String,
    pub path: Vec<String>,
}

impl DedupColumn {
    /// Parses `column` or `column.field.field`; every part must match `[A-Za-z_][A-Za-z0-9_]*`.
    pub fn parse(text: &str) -> Result<DedupColumn, String> {
        let mut parts = text.split('.').map(str::to_string);
        let column = parts.next().unwrap_or_default();
        let path: Vec<String> = parts.collect();
        for part in std::iter::once(&column).chain(&path) {
            let valid = part
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "{text:?}: each part must match [A-Za-z_][A-Za-z0-9_]* (e.g. value.transaction_id)"
                ));
            }
        }
        Ok(DedupColumn { column, path })
    }

    fn display(&self) -> String {
        std::iter::once(self.column.as_str())
            .chain(self.path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A dedup value of a row of relation `alias`, all of them quoted identifiers or parameters.
enum DedupExpr {
    /// `alias.column`
    Column(String),
    /// `CAST(alias.column.field… AS STRING)`
    StructField(String, String),
    /// `get_json_object(alias.column, :param)`
    JsonPath(String, String),
}

impl DedupExpr {
    fn sql(&self, alias: &str) -> String {
        match self {
            DedupExpr::Column(column) => format!("{alias}.{column}"),
            DedupExpr::StructField(column, fields) => {
                format!("CAST({alias}.{column}{fields} AS STRING)")
            }
            DedupExpr::JsonPath(column, param) => {
                format!("get_json_object({alias}.{column}, :{param})")
            }
        }
    }
}

/// A statement with its named parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamStatement {
    pub sql: String,
    pub params: Vec<Param>,
}

/// `SELECT unix_micros(max(stream_record_timestamp)) FROM <source>`: the backfill's newest row.
pub fn backfill_newest(source: &TableRef) -> String {
    format!(
        "SELECT unix_micros(max({})) FROM {}",
        quote_ident(RAW_TIMESTAMP),
        source.sql()
    )
}

/// The ingestion table's oldest stream row, in microseconds since the epoch.
pub fn stream_oldest(target: &TableRef) -> ParamStatement {
    ParamStatement {
        sql: format!(
            "SELECT unix_micros(min({})) FROM {} WHERE {} = :stream_source",
            quote_ident(RAW_TIMESTAMP),
            target.sql(),
            quote_ident(RAW_SOURCE)
        ),
        params: vec![Param::new("stream_source", Some(RECORD_SOURCE_STREAM))],
    }
}

/// The backfill MERGE (see the module documentation). `target_fields` and `source_fields` are
/// the tables' columns as described by the warehouse.
pub fn backfill_merge(
    target: &TableRef,
    target_fields: &[Field],
    source: &TableRef,
    source_fields: &[Field],
    dedup: &[DedupColumn],
) -> Result<ParamStatement, PlanError> {
    let find = |fields: &'_ [Field], name: &str| -> Option<ColumnType> {
        fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.ty.clone())
    };
    for column in [RAW_TIMESTAMP, RAW_SOURCE] {
        if find(target_fields, column).is_none() {
            return Err(PlanError::MissingColumn {
                table: target.sql(),
                column: column.into(),
                why: "a raw ingestion table has it",
            });
        }
    }
    if find(source_fields, RAW_TIMESTAMP).is_none() {
        return Err(PlanError::MissingColumn {
            table: source.sql(),
            column: RAW_TIMESTAMP.into(),
            why: "a backfill source needs a stream_record_timestamp TIMESTAMP column",
        });
    }

    // The source rows in the target's shape.
    let mut projection = Vec::with_capacity(target_fields.len());
    for field in target_fields {
        let name = quote_ident(&field.name);
        let expr = if field.name.eq_ignore_ascii_case(RAW_SOURCE) {
            ":backfill_source".to_string()
        } else {
            match find(source_fields, &field.name) {
                None => format!("CAST(NULL AS {})", field.ty.sql_name()),
                Some(ty) if ty.sql_name() == field.ty.sql_name() => format!("src.{name}"),
                Some(ColumnType::Struct(_) | ColumnType::List(_))
                    if field.ty.sql_name() == "STRING" =>
                {
                    format!("to_json(src.{name})")
                }
                Some(_) => format!("CAST(src.{name} AS {})", field.ty.sql_name()),
            }
        };
        projection.push(format!("{expr} AS {name}"));
    }

    // Dedup expressions over a relation in the target's shape.
    let default_dedup = [RAW_KEY, RAW_VALUE, RAW_TIMESTAMP].map(|c| DedupColumn {
        column: c.to_string(),
        path: Vec::new(),
    });
    let dedup = if dedup.is_empty() {
        &default_dedup[..]
    } else {
        dedup
    };
    let mut params = vec![Param::new("backfill_source", Some(RECORD_SOURCE_BACKFILL))];
    let mut dedup_exprs: Vec<DedupExpr> = Vec::new();
    for (i, d) in dedup.iter().enumerate() {
        let ty = find(target_fields, &d.column).ok_or_else(|| PlanError::MissingColumn {
            table: target.sql(),
            column: d.display(),
            why: "named in backfill_dedup_columns",
        })?;
        let column = quote_ident(&d.column);
        dedup_exprs.push(if d.path.is_empty() {
            DedupExpr::Column(column)
        } else if matches!(ty, ColumnType::Struct(_)) {
            let fields = d
                .path
                .iter()
                .map(|p| format!(".{}", quote_ident(p)))
                .collect();
            DedupExpr::StructField(column, fields)
        } else {
            let param = format!("dedup_path_{i}");
            params.push(Param::new(&param, Some(format!("$.{}", d.path.join(".")))));
            DedupExpr::JsonPath(column, param)
        });
    }

    let columns: Vec<String> = target_fields.iter().map(|f| quote_ident(&f.name)).collect();
    let partition: Vec<String> = dedup_exprs.iter().map(|e| e.sql("p")).collect();
    let on: Vec<String> = dedup_exprs
        .iter()
        .map(|e| format!("{} <=> {}", e.sql("t"), e.sql("s")))
        .collect();
    let rn = quote_ident(super::ROW_NUMBER_COLUMN);
    let sql = format!(
        "MERGE INTO {target} AS t\nUSING (\n  SELECT {cols}\n  FROM (\n    SELECT p.*, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY p.{ts} DESC) AS {rn}\n    FROM (\n      SELECT {projection}\n      FROM {source} AS src\n    ) AS p\n  ) AS ranked\n  WHERE {rn} = 1\n) AS s\nON {on}\nWHEN NOT MATCHED THEN INSERT *",
        target = target.sql(),
        cols = columns.join(", "),
        partition = partition.join(", "),
        ts = quote_ident(RAW_TIMESTAMP),
        projection = projection.join(",\n             "),
        source = source.sql(),
        on = on.join("\n  AND "),
    );
    Ok(ParamStatement { sql, params })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::rows;

    fn raw() -> Vec<Field> {
        rows::raw_fields()
    }

    #[test]
    fn dedup_columns_parse() {
        assert_eq!(
            DedupColumn::parse("value.transaction_id").unwrap(),
            DedupColumn {
                column: "value".into(),
                path: vec!["transaction_id".into()]
            }
        );
        for bad in [
            "",
            "value.",
            ".x",
            "value.a-b",
            "value.`x`",
            "a b",
            "value.x'y",
        ] {
            assert!(DedupColumn::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nested_dedup_travels_as_parameters() {
        let target = TableRef::in_catalog("main", "raw", "events");
        let source = TableRef::in_catalog("main", "legacy", "events");
        let source_fields = vec![
            Field::new("key", ColumnType::String),
            Field::new(
                "value",
                ColumnType::Struct(vec![Field::new("transaction_id", ColumnType::Int64)]),
            ),
            Field::new("stream_record_timestamp", ColumnType::Timestamp),
            Field::new("kafka_offset", ColumnType::Int32),
        ];
        let stmt = backfill_merge(
            &target,
            &raw(),
            &source,
            &source_fields,
            &[DedupColumn::parse("value.transaction_id").unwrap()],
        )
        .unwrap();
        let sql = &stmt.sql;
        assert!(sql.contains("to_json(src.`value`) AS `value`"), "{sql}");
        assert!(sql.contains("CAST(src.`kafka_offset` AS BIGINT)"), "{sql}");
        assert!(
            sql.contains("CAST(NULL AS STRING) AS `kafka_topic`"),
            "{sql}"
        );
        assert!(sql.contains(":backfill_source AS `record_source`"), "{sql}");
        assert!(
            sql.contains("get_json_object(t.`value`, :dedup_path_0) <=> get_json_object(s.`value`, :dedup_path_0)"),
            "{sql}"
        );
        assert!(!sql.contains("transaction_id"), "path in SQL text: {sql}");
        assert!(!sql.contains("'backfill'"), "{sql}");
        assert_eq!(stmt.params.len(), 2);
        assert_eq!(stmt.params[1].value.as_deref(), Some("$.transaction_id"));
        assert!(sql.ends_with("WHEN NOT MATCHED THEN INSERT *"), "{sql}");
        assert!(!sql.contains("WHEN MATCHED"), "{sql}");
    }

    #[test]
    fn default_dedup_is_key_value_and_timestamp() {
        let stmt = backfill_merge(
            &TableRef::new("t"),
            &raw(),
            &TableRef::new("s"),
            &raw(),
            &[],
        )
        .unwrap();
        assert!(
            stmt.sql.contains(
                "ON t.`key` <=> s.`key`\n  AND t.`value` <=> s.`value`\n  AND t.`stream_record_timestamp` <=> s.`stream_record_timestamp`"
            ),
            "{}",
            stmt.sql
        );
    }

    #[test]
    fn missing_columns_are_named() {
        let no_ts = vec![Field::new("value", ColumnType::String)];
        let e = backfill_merge(
            &TableRef::new("t"),
            &raw(),
            &TableRef::new("s"),
            &no_ts,
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("stream_record_timestamp"), "{e}");
        let e = backfill_merge(
            &TableRef::new("t"),
            &raw(),
            &TableRef::new("s"),
            &raw(),
            &[DedupColumn::parse("payload.id").unwrap()],
        )
        .unwrap_err();
        assert!(e.to_string().contains("payload.id"), "{e}");
    }

    #[test]
    fn golden() {
        let stmt = backfill_merge(
            &TableRef::in_catalog("main", "raw", "events"),
            &raw(),
            &TableRef::in_catalog("main", "legacy", "events"),
            &raw(),
            &[
                DedupColumn::parse("value.transaction_id").unwrap(),
                DedupColumn::parse("key").unwrap(),
            ],
        )
        .unwrap();
        crate::plan::tests::golden("backfill_merge", &[stmt.sql]);
    }
}
