"""Unit tests of the statement classification and translations (no services needed)."""

from __future__ import annotations

import pytest

from local_warehouse.sqltext import SqlSyntaxError, strip_statement
from local_warehouse.translate import (
    AddColumns,
    CopyInto,
    CreateTable,
    DeltaInfo,
    DropTable,
    NoOp,
    Passthrough,
    classify,
    rewrite_read_files,
)


def test_copy_into_full_form():
    p = classify(
        "COPY INTO `main`.`sales`.`t` FROM 's3://b/stage/t/' FILEFORMAT = PARQUET "
        "FILES = ('a.parquet', 'b.parquet') FORMAT_OPTIONS ('mergeSchema' = 'true') "
        "COPY_OPTIONS ('mergeSchema' = 'true', 'force' = 'false');"
    )
    assert isinstance(p, CopyInto)
    assert p.target == ["main", "sales", "t"] and p.source == "s3://b/stage/t/" and p.fileformat == "PARQUET"
    assert p.files == ["a.parquet", "b.parquet"]
    assert p.copy_options == {"mergeschema": "true", "force": "false"}


def test_copy_into_select_and_pattern():
    p = classify("COPY INTO t FROM (SELECT id, cast(x AS INT) AS x FROM '/data/dir') FILEFORMAT = PARQUET PATTERN = '*.parquet'")
    assert p.select_list == "id, cast(x AS INT) AS x" and p.source == "/data/dir" and p.pattern == "*.parquet"
    with pytest.raises(SqlSyntaxError):
        classify("COPY INTO t FROM '/d' FILEFORMAT = PARQUET FILES = ('a') PATTERN = '*'")


def test_add_columns():
    p = classify("ALTER TABLE a.b.c ADD COLUMNS (`we``ird` STRUCT<x: INT, y: ARRAY<STRING>> COMMENT 'c', d DECIMAL(10, 2) NOT NULL)")
    assert isinstance(p, AddColumns) and p.target == ["a", "b", "c"]
    assert [(c.name, c.type_text, c.comment, c.nullable) for c in p.columns] == [
        ("we`ird", "STRUCT<x: INT, y: ARRAY<STRING>>", "c", True), ("d", "DECIMAL(10, 2)", None, False)]
    p = classify("ALTER TABLE t ADD COLUMN c BIGINT")
    assert [(c.name, c.type_text) for c in p.columns] == [("c", "BIGINT")]
    assert isinstance(classify("ALTER TABLE t ALTER COLUMN c TYPE BIGINT"), Passthrough)


def test_create_table_location_injection():
    p = classify("CREATE TABLE IF NOT EXISTS a.b.c (id BIGINT) USING DELTA TBLPROPERTIES ('k' = 'v')")
    assert isinstance(p, CreateTable) and p.if_not_exists and not p.has_location
    assert p.with_location("/w/a/b/c").endswith("TBLPROPERTIES ('k' = 'v') LOCATION '/w/a/b/c' ")
    p = classify("CREATE TABLE c (id BIGINT) COMMENT 'x'")
    assert "USING DELTA" in p.with_location("/w")
    p = classify("CREATE OR REPLACE TABLE c AS SELECT * FROM read_files('/x.parquet')")
    assert p.replace and p.with_location("/w").index("LOCATION") < p.with_location("/w").index(" AS SELECT")
    p = classify("CREATE TABLE c (id INT) USING DELTA LOCATION 's3://b/c'")
    assert p.has_location and p.with_location("/ignored") == p.sql


def test_read_files_rewrite():
    assert rewrite_read_files("SELECT * FROM read_files('s3://b/k.parquet', format => 'parquet') AS f") == \
        "SELECT * FROM parquet.`s3://b/k.parquet` AS f"
    assert rewrite_read_files("SELECT 'read_files(x)' AS s") == "SELECT 'read_files(x)' AS s"


def test_other_statements():
    assert isinstance(classify("DROP TABLE IF EXISTS a.b.c"), DropTable)
    assert isinstance(classify("USE CATALOG main"), NoOp)
    assert isinstance(classify("DESCRIBE HISTORY a.b.c"), DeltaInfo)
    assert classify("TRUNCATE TABLE a.b").sql == "DELETE FROM `a`.`b`"
    m = classify("MERGE WITH SCHEMA EVOLUTION INTO a.b.c AS t USING s ON t.id = s.id WHEN MATCHED THEN DELETE")
    assert m.kind == "merge" and m.target == ["a", "b", "c"]
    assert classify("INSERT INTO a.b.c SELECT 1").kind == "insert"
    assert classify("  -- hi\n SELECT 1 ; ").sql == "SELECT 1"
    with pytest.raises(SqlSyntaxError):
        strip_statement("SELECT 1; SELECT 2")
