"""Unit tests of the statement classification and translations (no services needed)."""

from __future__ import annotations

import pytest

from local_warehouse.sqltext import SqlSyntaxError, strip_statement
from local_warehouse.engine import CatalogStore, managed_dir_name
from local_warehouse.translate import (
    AddColumns,
    CopyInto,
    CreateTable,
    DeltaInfo,
    DescribeTable,
    DropTable,
    NoOp,
    Param,
    Passthrough,
    UnboundParameter,
    bind_parameters_as_literals,
    classify,
    needs_literal_parameters,
    rewrite_read_files,
    sail_path,
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


def test_nested_add_columns_parse():
    p = classify("ALTER TABLE t ADD COLUMNS (`s`.`f` INT, `we``ird`.inner.`x y` STRUCT<a: INT>, top STRING)")
    assert [(c.parent, c.name, c.type_text) for c in p.columns] == [
        (["s"], "f", "INT"), (["we`ird", "inner"], "x y", "STRUCT<a: INT>"), ([], "top", "STRING")]


def test_describe_table():
    p = classify("DESCRIBE TABLE EXTENDED `main`.`sh op`.`or``ders.v2`")
    assert isinstance(p, DescribeTable) and p.extended and p.target == ["main", "sh op", "or`ders.v2"]
    assert isinstance(classify("DESC t"), DescribeTable)
    assert isinstance(classify("DESCRIBE SCHEMA main.s"), Passthrough)
    assert isinstance(classify("DESCRIBE TABLE t c"), Passthrough)  # a column: Sail's answer
    assert isinstance(classify("DESCRIBE HISTORY t"), DeltaInfo)


def test_file_paths_keep_a_literal_percent():
    assert sail_path("s3://b/staging/shop.order%2Eitems/0/a.parquet") == "s3://b/staging/shop.order%252Eitems/0/a.parquet"
    assert sail_path("file:///tmp/a%20b/x.parquet") == "file:///tmp/a%2520b/x.parquet"
    assert sail_path("/tmp/a%20b/x.parquet") == "/tmp/a%20b/x.parquet"  # plain paths are not decoded by Sail
    sql = ("SELECT * FROM parquet.`s3://b/main.sh%20op.or%60ders%2Ev2/0.parquet` UNION ALL "
           "SELECT * FROM parquet.`s3://b/it's here/a``b.parquet` UNION ALL SELECT * FROM csv.`s3://b/%41.csv`")
    p = classify(sql)
    assert p.sql == sql.replace("%", "%25")
    assert p.source_paths == ["s3://b/main.sh%20op.or%60ders%2Ev2/0.parquet", "s3://b/it's here/a`b.parquet", "s3://b/%41.csv"]
    p = classify("SELECT * FROM read_files('s3://b/a%2Eb/x.parquet', format => 'parquet')")
    assert p.sql == "SELECT * FROM parquet.`s3://b/a%252Eb/x.parquet`" and p.source_paths == ["s3://b/a%2Eb/x.parquet"]
    # a table in a schema that happens to be called parquet is not a path
    assert classify("SELECT * FROM parquet.`t%1`").sql == "SELECT * FROM parquet.`t%1`"
    # COPY INTO keeps the literal path; the engine encodes it when it builds the SELECT
    assert classify("COPY INTO t FROM 's3://b/o%2Ei/' FILEFORMAT = PARQUET FILES = ('o\\'clock.parquet')").files == ["o'clock.parquet"]


def test_parameters_as_literals_in_commands():
    params = [Param("cutoff", "2024-01-01T00:00:00Z", "TIMESTAMP"), Param("s", "x' OR '1'='1 \\' \\"),
              Param("n", None, "decimal(10, 2)"), Param("b", "true", "BOOLEAN")]
    out = bind_parameters_as_literals(
        "DELETE FROM t WHERE a < :cutoff AND b = ':cutoff' AND c = :s AND `:s` = :n AND d = :b -- :zz", params)
    assert out == ("DELETE FROM t WHERE a < CAST('2024-01-01T00:00:00Z' AS TIMESTAMP) AND b = ':cutoff' AND "
                   "c = 'x\\' OR \\'1\\'=\\'1 \\\\\\' \\\\' AND `:s` = CAST(NULL AS DECIMAL(10, 2)) AND "
                   "d = CAST('true' AS BOOLEAN) -- :zz")
    with pytest.raises(UnboundParameter):
        bind_parameters_as_literals("DELETE FROM t WHERE a = :missing", params)
    with pytest.raises(SqlSyntaxError):
        bind_parameters_as_literals("DELETE FROM t WHERE a = :p", [Param("p", "1", "INT) OR (1=1")])
    assert needs_literal_parameters(classify("DELETE FROM t WHERE a = :p"))
    assert needs_literal_parameters(classify("INSERT INTO t SELECT :p"))
    assert needs_literal_parameters(classify("CREATE TABLE t AS SELECT :p AS p"))
    assert not needs_literal_parameters(classify("SELECT :p"))
    assert not needs_literal_parameters(classify("WITH x AS (SELECT :p AS p) SELECT * FROM x"))


def test_delete_runs_as_merge():
    p = classify("DELETE FROM `main`.`sh op`.`or``ders.v2` WHERE `_cdc_deleted` = true AND `_cdc_ts` < :cutoff;")
    assert p.kind == "delete" and p.target == ["main", "sh op", "or`ders.v2"]
    assert p.sql == ("MERGE INTO `main`.`sh op`.`or``ders.v2` USING (SELECT 1 AS `__deltasink_delete_one`) AS "
                     "`__deltasink_delete` ON (`_cdc_deleted` = true AND `_cdc_ts` < :cutoff) WHEN MATCHED THEN DELETE")
    assert classify("DELETE FROM t AS x WHERE x.a = 1").sql.startswith("MERGE INTO t AS x USING")
    assert classify("DELETE FROM t").sql == "DELETE FROM t"
    assert classify("DELETE FROM delta.`/p` WHERE a = 1").sql == "DELETE FROM delta.`/p` WHERE a = 1"


def test_managed_directory_names():
    assert managed_dir_name("sh op") == "sh-20op"
    assert managed_dir_name("or`ders.v2") == "or-60ders.v2"
    assert managed_dir_name("Orders") == "orders"
    assert managed_dir_name("a-b") == "a-2db" and managed_dir_name("a-2db") == "a-2d2db"
    assert managed_dir_name(".hidden") == "-2ehidden"
    assert managed_dir_name("é%~") == "-c3-a9-25-7e"
    names = ["a b", "a-20b", "a_20b", "a.b", "a%20b", "A B"]
    assert len({managed_dir_name(n) for n in names}) == len(names) - 1  # "A B" is "a b" (names ignore case)
    assert CatalogStore.key(["a.b", "c"]) != CatalogStore.key(["a", "b.c"])
