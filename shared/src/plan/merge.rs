//! The load statements: one `MERGE INTO` per table and batch, whatever the number of files.
//!
//! The source of both is the `UNION ALL` of the files' projections (every file brought to the
//! target's columns, see [`project`](super::project)), deduplicated with `ROW_NUMBER()`; its
//! select list is exactly the target's columns, so the helper column never reaches the table.
//!
//! **Upsert** ([`merge_upsert`]): one row per primary key, the newest version, applied only
//! when newer than the table's row. The version order is one total order, shared by the
//! deduplication and the guard:
//!
//! `(_cdc_position, _cdc_ts, _kafka_partition, _kafka_offset, _kafka_topic)`, compared
//! lexicographically, NULL lowest.
//!
//! The source log position (LSN, binlog file/pos, SCN: sortable text) thus decides whenever
//! both versions carry one, the commit timestamp otherwise, and the Kafka coordinates break
//! ties (the topic last, so that two distinct records never tie). Because the same total
//! order picks the batch's winner and guards the update, the table converges to the newest
//! version per key whatever the grouping, order and duplication of loads (DESIGN.md,
//! semantics 1). A version with a position counts as newer than one without.
//!
//! Deletes are tombstone rows (`_cdc_deleted = true`) that go through the same UPDATE/INSERT:
//! the tombstone keeps its version, so an older change arriving later loses against it, and a
//! newer re-insert replaces it (semantics 2). Re-running the same files changes nothing:
//! an equal version is not newer.
//!
//! **Append** ([`merge_append`]): insert-only, keyed on the Kafka coordinates, so each record
//! lands exactly once even when staged files overlap (a retried batch split differently)
//! or a file is loaded again (semantics 3). Future work: a pruning predicate on the target
//! (partition and offset ranges of the batch) to narrow the join scan; it must come from the
//! data itself, never from values written into the SQL text.

use super::projection::{fills, project};
use super::{PlanError, StagedFile, TableRef, find_column, same_name};
use crate::route::TableMode;
use crate::rows;
use crate::sql::quote_ident;
use crate::value::Field;

/// The helper column of the deduplication (suffixed with `_` while a target column has the
/// name). It never reaches the table.
pub const ROW_NUMBER_COLUMN: &str = "_deltasink_rn";

/// Version columns of upsert rows, most significant first.
const VERSION: [&str; 5] = [
    rows::CDC_POSITION,
    rows::CDC_TS,
    rows::KAFKA_PARTITION,
    rows::KAFKA_OFFSET,
    rows::KAFKA_TOPIC,
];

/// One `MERGE INTO` that upserts every file of the batch into an upsert table.
///
/// `target` is the table's schema after evolution (see [`Evolution::schema`](super::Evolution));
/// `primary_key` the key columns (names resolved case-insensitively against `target`).
///
/// `UPDATE SET *` and `INSERT *` (not column lists): the source's columns are exactly the
/// planned `target`, so when the table has gained a column since it was planned (another
/// instance evolved it; this one's schema cache is stale) the statement fails instead of
/// silently keeping an older version's value in that column. The loader then describes the
/// table again and re-plans.
pub fn merge_upsert(
    table: &TableRef,
    target: &[Field],
    files: &[StagedFile],
    primary_key: &[String],
) -> Result<String, PlanError> {
    if primary_key.is_empty() {
        return Err(PlanError::NoPrimaryKey { table: table.sql() });
    }
    let key = resolve(
        table,
        target,
        primary_key.iter().map(String::as_str),
        "primary key",
    )?;
    let version = resolve(table, target, VERSION, "version column of an upsert table")?;
    let order: Vec<String> = version
        .iter()
        .map(|c| format!("{} DESC NULLS LAST", quote_ident(c)))
        .collect();
    let (source, on) = keyed_source(table, target, files, &key, &order)?;
    Ok(format!(
        "MERGE INTO {table} AS t\nUSING {source} AS s\nON {on}\n\
         WHEN MATCHED AND (\n  {newer}\n) THEN UPDATE SET *\n\
         WHEN NOT MATCHED THEN INSERT *",
        table = table.sql(),
        newer = newer(&version),
    ))
}

/// One insert-only `MERGE INTO` that appends every file of the batch, each Kafka record
/// exactly once. Raw tables (`mode` [`TableMode::Raw`]) are keyed on `kafka_topic`,
/// `kafka_partition`, `kafka_offset`; append tables on `_kafka_topic`, `_kafka_partition`,
/// `_kafka_offset`.
pub fn merge_append(
    table: &TableRef,
    target: &[Field],
    files: &[StagedFile],
    mode: TableMode,
) -> Result<String, PlanError> {
    let coordinates = match mode {
        TableMode::Raw => [rows::RAW_TOPIC, rows::RAW_PARTITION, rows::RAW_OFFSET],
        _ => [rows::KAFKA_TOPIC, rows::KAFKA_PARTITION, rows::KAFKA_OFFSET],
    };
    let key = resolve(
        table,
        target,
        coordinates,
        "Kafka coordinates of an append table",
    )?;
    let order: Vec<String> = key.iter().map(|c| quote_ident(c)).collect();
    let (source, on) = keyed_source(table, target, files, &key, &order)?;
    Ok(format!(
        "MERGE INTO {table} AS t\nUSING {source} AS s\nON {on}\n\
         WHEN NOT MATCHED THEN INSERT {insert}",
        table = table.sql(),
        insert = insert(target),
    ))
}

/// The MERGE source (the files deduplicated per `key`, first by `order`) and its `ON`
/// condition on `key`, after checking that every file fills the key columns.
fn keyed_source(
    table: &TableRef,
    target: &[Field],
    files: &[StagedFile],
    key: &[String],
    order: &[String],
) -> Result<(String, String), PlanError> {
    let source = deduplicated(table, target, files, key, order)?;
    check_keys(target, files, key)?;
    let on: Vec<String> = key
        .iter()
        .map(|k| format!("t.{k} = s.{k}", k = quote_ident(k)))
        .collect();
    Ok((source, on.join(" AND ")))
}

/// Every file must fill the key columns (primary key, Kafka coordinates) from its own
/// columns: a key that is missing or rescued would be NULL, never match, and insert the row
/// again on every load.
fn check_keys(target: &[Field], files: &[StagedFile], key: &[String]) -> Result<(), PlanError> {
    for file in files {
        for column in key {
            let filled = find_column(target, column).is_some_and(|i| fills(file, target, i));
            if !filled {
                return Err(PlanError::KeyNotLoadable {
                    uri: file.uri.clone(),
                    column: column.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The target's spelling of each column in `names`.
fn resolve<'a>(
    table: &TableRef,
    target: &[Field],
    names: impl IntoIterator<Item = &'a str>,
    why: &'static str,
) -> Result<Vec<String>, PlanError> {
    names
        .into_iter()
        .map(|name| match find_column(target, name) {
            Some(i) => Ok(target[i].name.to_string()),
            None => Err(PlanError::MissingColumn {
                table: table.sql(),
                column: name.to_string(),
                why,
            }),
        })
        .collect()
}

/// `(SELECT <target columns> FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY <partition>
/// ORDER BY <order>) AS rn FROM (<projections, UNION ALL>) AS u) AS ranked WHERE rn = 1)`.
fn deduplicated(
    table: &TableRef,
    target: &[Field],
    files: &[StagedFile],
    partition: &[String],
    order: &[String],
) -> Result<String, PlanError> {
    if files.is_empty() {
        return Err(PlanError::NoFiles { table: table.sql() });
    }
    if target.is_empty() {
        return Err(PlanError::NoColumns { table: table.sql() });
    }
    let projections = files
        .iter()
        .map(|file| project(file, target))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rn = ROW_NUMBER_COLUMN.to_string();
    while target.iter().any(|c| same_name(&c.name, &rn)) {
        rn.push('_');
    }
    let rn = quote_ident(&rn);
    let columns: Vec<String> = target.iter().map(|c| quote_ident(&c.name)).collect();
    let partition: Vec<String> = partition.iter().map(|c| quote_ident(c)).collect();
    Ok(format!(
        "(\n  SELECT {columns}\n  FROM (\n    SELECT *, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {order}) AS {rn}\n    \
         FROM (\n      {union}\n    ) AS u\n  ) AS ranked\n  WHERE {rn} = 1\n)",
        columns = columns.join(", "),
        partition = partition.join(", "),
        order = order.join(", "),
        union = projections.join("\n      UNION ALL\n      "),
    ))
}

/// "s is newer than t": lexicographic over `columns`, NULL lowest, written flat (one line per
/// deciding column: the ones before it equal, it greater). Every term is a non-NULL boolean
/// (`<=>`, `COALESCE`), so the whole is never NULL.
fn newer(columns: &[String]) -> String {
    let mut cases = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let mut terms: Vec<String> = columns[..i]
            .iter()
            .map(|c| format!("s.{c} <=> t.{c}", c = quote_ident(c)))
            .collect();
        let c = quote_ident(column);
        terms.push(format!(
            "COALESCE(s.{c} > t.{c}, s.{c} IS NOT NULL AND t.{c} IS NULL)"
        ));
        cases.push(if terms.len() == 1 {
            terms.remove(0)
        } else {
            format!("({})", terms.join(" AND "))
        });
    }
    if cases.is_empty() {
        return "false".into();
    }
    cases.join("\n  OR ")
}

/// `(<columns>) VALUES (s.<columns>)`: every target column, explicitly.
fn insert(target: &[Field]) -> String {
    let columns: Vec<String> = target.iter().map(|c| quote_ident(&c.name)).collect();
    let values: Vec<String> = columns.iter().map(|c| format!("s.{c}")).collect();
    format!("({}) VALUES ({})", columns.join(", "), values.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::value::ColumnType;

    #[test]
    fn newer_is_lexicographic_and_null_safe() {
        let cols = vec!["p".to_string(), "o".to_string()];
        assert_eq!(
            newer(&cols),
            "COALESCE(s.`p` > t.`p`, s.`p` IS NOT NULL AND t.`p` IS NULL)\n  \
             OR (s.`p` <=> t.`p` AND COALESCE(s.`o` > t.`o`, s.`o` IS NOT NULL AND t.`o` IS NULL))"
        );
    }

    #[test]
    fn missing_key_or_version_columns_are_reported() {
        let table = TableRef::new("t");
        let file = StagedFile::new(
            "s3://b/k.parquet",
            vec![Field::new("id", ColumnType::Int64)],
        );
        let target = vec![Field::new("id", ColumnType::Int64)];
        let e = merge_upsert(
            &table,
            &target,
            std::slice::from_ref(&file),
            &["nope".into()],
        )
        .unwrap_err();
        assert!(
            matches!(e, PlanError::MissingColumn { ref column, .. } if column == "nope"),
            "{e}"
        );
        let e =
            merge_upsert(&table, &target, std::slice::from_ref(&file), &["ID".into()]).unwrap_err();
        assert!(
            matches!(e, PlanError::MissingColumn { ref column, .. } if column == "_cdc_position"),
            "{e}"
        );
        let e = merge_upsert(&table, &target, std::slice::from_ref(&file), &[]).unwrap_err();
        assert!(matches!(e, PlanError::NoPrimaryKey { .. }));
        let e = merge_append(&table, &target, &[], TableMode::Append).unwrap_err();
        assert!(matches!(e, PlanError::MissingColumn { .. }));
    }

    #[test]
    fn key_columns_must_come_from_every_file() {
        let table = TableRef::new("t");
        let mut target = vec![Field::new("id", ColumnType::Int64)];
        target.extend(rows::cdc_metadata_fields());
        target.push(Field::new(super::super::RESCUED_DATA, ColumnType::String));
        let good = StagedFile::new("s3://b/1.parquet", target.clone());
        let mut rescued = target.clone();
        rescued[0].ty = ColumnType::String;
        let rescued = StagedFile::new("s3://b/2.parquet", rescued);
        let missing = StagedFile::new("s3://b/3.parquet", target[1..].to_vec());
        let key = ["id".to_string()];
        assert!(merge_upsert(&table, &target, std::slice::from_ref(&good), &key).is_ok());
        for bad in [rescued, missing] {
            let e = merge_upsert(&table, &target, &[good.clone(), bad.clone()], &key).unwrap_err();
            assert_eq!(
                e,
                PlanError::KeyNotLoadable {
                    uri: bad.uri.clone(),
                    column: "id".into()
                }
            );
        }
        let no_offset = StagedFile::new(
            "s3://b/4.parquet",
            target
                .iter()
                .filter(|f| &*f.name != rows::KAFKA_OFFSET)
                .cloned()
                .collect(),
        );
        assert!(matches!(
            merge_append(&table, &target, &[no_offset], TableMode::Append),
            Err(PlanError::KeyNotLoadable { .. })
        ));
    }

    #[test]
    fn the_helper_column_never_collides() {
        let mut target = rows::raw_fields();
        target.push(Field::new("_DELTASINK_RN", ColumnType::Int64));
        let file = StagedFile::new("s3://b/k.parquet", target.clone());
        let sql = merge_append(&TableRef::new("t"), &target, &[file], TableMode::Raw).unwrap();
        assert!(sql.contains("AS `_deltasink_rn_`"), "{sql}");
        assert!(sql.contains("WHERE `_deltasink_rn_` = 1"), "{sql}");
    }
}
