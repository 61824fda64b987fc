//! `CREATE TABLE IF NOT EXISTS` for a table the load function meets for the first time.
//!
//! Table properties: type widening on (schema evolution widens columns in place, see
//! [`evolution_sql`](super::evolution_sql)), optimized writes and auto compaction (many small
//! loads), and the table's deltasink mode and primary key (`deltasink.mode`,
//! `deltasink.primary_key` as a JSON array) so that tools and people can see how it is written.
//!
//! No `CLUSTER BY` (liquid clustering on the primary key would suit upsert tables on
//! Databricks, but Sail 0.7.2, the local engine, refuses `CLUSTER BY` in `CREATE TABLE`).

use super::{PlanError, TableRef, same_name, string_literal};
use crate::route::TableMode;
use crate::sql::quote_ident;
use crate::value::Field;

/// `CREATE TABLE IF NOT EXISTS <table> (<columns>) USING DELTA TBLPROPERTIES (...)`.
///
/// `fields` are the table's columns (for a new table: `evolve_files(&[], files).schema`);
/// the primary key columns must be among them.
pub fn create_table(
    table: &TableRef,
    fields: &[Field],
    mode: TableMode,
    primary_key: &[String],
) -> Result<String, PlanError> {
    if fields.is_empty() {
        return Err(PlanError::NoColumns { table: table.sql() });
    }
    for (i, field) in fields.iter().enumerate() {
        if fields[..i].iter().any(|f| same_name(&f.name, &field.name)) {
            return Err(PlanError::DuplicateColumn {
                table: table.sql(),
                column: field.name.to_string(),
            });
        }
    }
    if mode == TableMode::Upsert && primary_key.is_empty() {
        return Err(PlanError::NoPrimaryKey { table: table.sql() });
    }
    for key in primary_key {
        if !fields.iter().any(|f| same_name(&f.name, key)) {
            return Err(PlanError::MissingColumn {
                table: table.sql(),
                column: key.clone(),
                why: "primary key",
            });
        }
    }
    let columns: Vec<String> = fields
        .iter()
        .map(|f| format!("  {} {}", quote_ident(&f.name), f.ty.sql_name()))
        .collect();
    let key_json = serde_json::Value::from(primary_key.to_vec()).to_string();
    let properties = [
        ("delta.enableTypeWidening", "true"),
        ("delta.autoOptimize.optimizeWrite", "true"),
        ("delta.autoOptimize.autoCompact", "true"),
        ("deltasink.mode", mode.name()),
        ("deltasink.primary_key", &key_json),
    ];
    let properties: Vec<String> = properties
        .iter()
        .map(|(k, v)| format!("  {} = {}", string_literal(k), string_literal(v)))
        .collect();
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {table} (\n{columns}\n)\nUSING DELTA\nTBLPROPERTIES (\n{properties}\n)",
        table = table.sql(),
        columns = columns.join(",\n"),
        properties = properties.join(",\n"),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::value::ColumnType;

    #[test]
    fn refuses_bad_column_sets() {
        let t = TableRef::new("t");
        let id = Field::new("id", ColumnType::Int64);
        assert!(matches!(
            create_table(&t, &[], TableMode::Append, &[]),
            Err(PlanError::NoColumns { .. })
        ));
        assert!(matches!(
            create_table(
                &t,
                &[id.clone(), Field::new("ID", ColumnType::String)],
                TableMode::Append,
                &[]
            ),
            Err(PlanError::DuplicateColumn { .. })
        ));
        assert!(matches!(
            create_table(&t, std::slice::from_ref(&id), TableMode::Upsert, &[]),
            Err(PlanError::NoPrimaryKey { .. })
        ));
        assert!(matches!(
            create_table(
                &t,
                std::slice::from_ref(&id),
                TableMode::Upsert,
                &["key".into()]
            ),
            Err(PlanError::MissingColumn { .. })
        ));
        assert!(create_table(&t, &[id], TableMode::Upsert, &["Id".into()]).is_ok());
    }
}
