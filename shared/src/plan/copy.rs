//! `COPY INTO`: the cheaper append, idempotent per file (the warehouse remembers the files a
//! table has loaded and skips them). Unlike [`merge_append`](super::merge_append) it does not
//! deduplicate records across overlapping files.
//!
//! `FILES` names files relative to the `FROM` directory, so files are grouped by directory;
//! within a directory, by schema, because one statement's `SELECT` (the files' projection,
//! see [`project`](super::project)) applies to all its files. At most
//! [`COPY_INTO_MAX_FILES`] files per statement.

use super::projection::select_list;
use super::{PlanError, StagedFile, TableRef, check_uri, string_literal};
use crate::value::Field;

/// The most files one `COPY INTO ... FILES = (...)` may list.
pub const COPY_INTO_MAX_FILES: usize = 1000;

/// The `COPY INTO` statements that load `files` into `table` (whose schema after evolution is
/// `target`), in order of the files' first appearance. Run them all; each is idempotent.
pub fn copy_into(
    table: &TableRef,
    target: &[Field],
    files: &[StagedFile],
) -> Result<Vec<String>, PlanError> {
    if files.is_empty() {
        return Err(PlanError::NoFiles { table: table.sql() });
    }
    // (directory, select list) → file names, in first-seen order.
    let mut groups: Vec<(&str, String, Vec<&str>)> = Vec::new();
    for file in files {
        check_uri(&file.uri)?;
        let (directory, name) = split(&file.uri);
        let select = select_list(file, target)?;
        match groups
            .iter_mut()
            .find(|(d, s, _)| *d == directory && *s == select)
        {
            Some((_, _, names)) => names.push(name),
            None => groups.push((directory, select, vec![name])),
        }
    }
    let mut out = Vec::new();
    for (directory, select, names) in &groups {
        for chunk in names.chunks(COPY_INTO_MAX_FILES) {
            let list: Vec<String> = chunk.iter().map(|n| string_literal(n)).collect();
            out.push(format!(
                "COPY INTO {table}\nFROM (SELECT {select} FROM {directory})\nFILEFORMAT = PARQUET\n\
                 FILES = ({files})\nCOPY_OPTIONS ('mergeSchema' = 'true')",
                table = table.sql(),
                directory = string_literal(directory),
                files = list.join(", "),
            ));
        }
    }
    Ok(out)
}

/// `s3://b/dir/name` → (`s3://b/dir/`, `name`). [`check_uri`] made sure there is a `/` after
/// the bucket and none at the end.
fn split(uri: &str) -> (&str, &str) {
    let at = uri.rfind('/').map_or(0, |i| i + 1);
    uri.split_at(at)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::value::ColumnType;

    #[test]
    fn splits_directory_and_name() {
        assert_eq!(split("s3://b/d/e/f.parquet"), ("s3://b/d/e/", "f.parquet"));
        assert_eq!(split("s3://b/f.parquet"), ("s3://b/", "f.parquet"));
    }

    #[test]
    fn groups_by_directory_and_schema() {
        let a = vec![Field::new("id", ColumnType::Int64)];
        let b = vec![Field::new("id", ColumnType::Int32)];
        let files = vec![
            StagedFile::new("s3://b/x/1.parquet", a.clone()),
            StagedFile::new("s3://b/y/1.parquet", a.clone()),
            StagedFile::new("s3://b/x/2.parquet", b.clone()),
            StagedFile::new("s3://b/x/3.parquet", a.clone()),
        ];
        let sql = copy_into(&TableRef::new("t"), &a, &files).unwrap();
        assert_eq!(sql.len(), 3);
        assert!(
            sql[0].contains("FROM 's3://b/x/')")
                && sql[0].contains("FILES = ('1.parquet', '3.parquet')")
        );
        assert!(sql[1].contains("FROM 's3://b/y/')"));
        assert!(
            sql[2].contains("CAST(`id` AS BIGINT)") && sql[2].contains("FILES = ('2.parquet')")
        );
        assert!(matches!(
            copy_into(&TableRef::new("t"), &a, &[]),
            Err(PlanError::NoFiles { .. })
        ));
    }
}
