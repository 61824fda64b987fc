"""Classifies Databricks SQL statements and translates what Sail lacks.

Pure functions over statement text: no engine, no I/O. The engine
(:mod:`local_warehouse.engine`) executes the returned plans.

Translated here (and only here; the product always sends real Databricks SQL):

* ``COPY INTO t FROM '<dir>' FILEFORMAT = PARQUET [FILES = (...)] [PATTERN = '...']
  [FORMAT_OPTIONS (...)] [COPY_OPTIONS (...)]``  -> :class:`CopyInto`
* ``ALTER TABLE t ADD COLUMN[S] (c TYPE [COMMENT '...'], ...)`` -> :class:`AddColumns`
* ``read_files('<path>', format => 'parquet')`` -> ``parquet.`<path>```
* ``CREATE TABLE`` without ``LOCATION`` -> a location under the warehouse root
* ``TRUNCATE TABLE t`` -> ``DELETE FROM t``; ``DESCRIBE HISTORY``, ``DESCRIBE DETAIL``,
  ``SHOW TBLPROPERTIES``, ``OPTIMIZE``, ``VACUUM`` -> answered from the Delta log
* ``USE ...``, ``SET k = v``, ``CREATE CATALOG``, ``REFRESH``/``ANALYZE`` -> no-ops
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .sqltext import (
    SqlSyntaxError,
    Token,
    find_top_level_kw,
    ident_value,
    matching_paren,
    quote_ident,
    quote_name,
    quote_string,
    read_name,
    significant,
    split_top_level,
    string_value,
    strip_statement,
    tokenize,
)

QUERY_WORDS = {"SELECT", "WITH", "VALUES", "FROM", "TABLE", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "LIST"}


@dataclass
class Passthrough:
    """Run as is on Sail. ``kind`` decides how the result is reshaped."""

    sql: str
    kind: str  # query | insert | update | delete | merge | ddl
    target: list[str] | None = None  # the written table, if any


@dataclass
class CreateTable:
    sql: str
    name: list[str]
    has_location: bool
    replace: bool
    if_not_exists: bool
    using_pos: int | None  # where to insert "USING DELTA" when the statement has no USING
    location_pos: int  # where to insert "LOCATION '...'" when it has none

    def with_location(self, location: str | None) -> str:
        edits = []
        if self.using_pos is not None:
            edits.append((self.using_pos, " USING DELTA "))
        if location is not None and not self.has_location:
            edits.append((self.location_pos, f" LOCATION {quote_string(location)} "))
        sql = self.sql
        for pos, text in sorted(edits, key=lambda e: e[0], reverse=True):
            sql = sql[:pos] + text + sql[pos:]
        return sql


@dataclass
class DropTable:
    sql: str
    name: list[str]
    if_exists: bool


@dataclass
class SchemaDdl:
    sql: str
    action: str  # create | drop
    name: list[str]


@dataclass
class CopyInto:
    target: list[str]
    source: str
    fileformat: str
    files: list[str] | None = None
    pattern: str | None = None
    select_list: str | None = None  # COPY INTO t FROM (SELECT <select_list> FROM '<source>')
    format_options: dict[str, str] = field(default_factory=dict)
    copy_options: dict[str, str] = field(default_factory=dict)


@dataclass
class ColumnDef:
    name: str
    type_text: str
    comment: str | None = None
    nullable: bool = True


@dataclass
class AddColumns:
    target: list[str]
    columns: list[ColumnDef]
    if_not_exists: bool = False


@dataclass
class DeltaInfo:
    """Answered from the Delta log: history | detail | tblproperties | optimize | vacuum."""

    what: str
    target: list[str]
    limit: int | None = None
    retain_hours: float | None = None
    dry_run: bool = False


@dataclass
class NoOp:
    reason: str


def rewrite_read_files(sql: str) -> str:
    """``read_files('<path>', format => 'parquet', ...)`` -> ``parquet.`<path>```."""
    toks = tokenize(sql)
    sig = [t for t in toks if t.kind not in ("ws", "comment")]
    edits: list[tuple[int, int, str]] = []
    for k, t in enumerate(sig):
        if t.kind == "word" and t.text.lower() == "read_files" and k + 1 < len(sig) and sig[k + 1].is_punct("("):
            close = matching_paren(sig, k + 1)
            args = split_top_level(sig[k + 2 : close])
            if not args or args[0][0].kind != "string" or len(args[0]) != 1:
                raise SqlSyntaxError("read_files: the first argument must be one path string literal")
            path = string_value(args[0][0])
            fmt = None
            for arg in args[1:]:
                if len(arg) == 3 and arg[1].is_punct("=>") and arg[2].kind == "string":
                    key = ident_value(arg[0]).lower()
                    if key == "format":
                        fmt = string_value(arg[2]).lower()
            if fmt is None:
                low = path.lower().rstrip("/")
                fmt = next((f for f in ("parquet", "json", "csv", "avro", "orc") if low.endswith("." + f)), "parquet")
            if fmt not in ("parquet", "json", "csv", "avro", "orc", "text"):
                raise SqlSyntaxError(f"read_files: format {fmt!r} is not supported by the local warehouse")
            edits.append((t.start, sig[close].end, f"{fmt}.{quote_ident(path)}"))
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end:]
    return sql


def _parse_options(sig: list[Token], i: int) -> tuple[dict[str, str], int]:
    """``( 'k' = 'v', k = true, ... )`` starting at the ``(``; returns (options, index after)."""
    close = matching_paren(sig, i)
    opts: dict[str, str] = {}
    for item in split_top_level(sig[i + 1 : close]):
        if len(item) != 3 or not item[1].is_punct("="):
            raise SqlSyntaxError("options must be written 'key' = 'value'")
        key = string_value(item[0]) if item[0].kind == "string" else ident_value(item[0])
        val = string_value(item[2]) if item[2].kind == "string" else item[2].text
        opts[key.lower()] = val
    return opts, close + 1


def parse_copy_into(sql: str, sig: list[Token]) -> CopyInto:
    i = 2  # COPY INTO
    target, i = read_name(sig, i)
    if i < len(sig) and sig[i].is_kw("BY"):
        raise SqlSyntaxError("COPY INTO ... BY POSITION is not supported by the local warehouse")
    if i < len(sig) and sig[i].is_punct("("):
        raise SqlSyntaxError("COPY INTO with a column list is not supported by the local warehouse")
    if i >= len(sig) or not sig[i].is_kw("FROM"):
        raise SqlSyntaxError("COPY INTO: expected FROM")
    i += 1
    select_list = None
    if sig[i].kind == "string":
        source = string_value(sig[i])
        i += 1
    elif sig[i].is_punct("("):
        close = matching_paren(sig, i)
        inner = sig[i + 1 : close]
        if not inner or not inner[0].is_kw("SELECT"):
            raise SqlSyntaxError("COPY INTO: expected (SELECT ... FROM '<path>')")
        f = find_top_level_kw(inner, 1, "FROM")
        if f < 0 or f + 1 >= len(inner) or inner[f + 1].kind != "string" or f + 2 != len(inner):
            raise SqlSyntaxError("COPY INTO: expected (SELECT <columns> FROM '<path>') with nothing after the path")
        select_list = sql[inner[1].start : inner[f - 1].end]
        source = string_value(inner[f + 1])
        i = close + 1
    else:
        raise SqlSyntaxError("COPY INTO: FROM expects a path string or (SELECT ... FROM '<path>')")
    out = CopyInto(target=target, source=source, fileformat="", select_list=select_list)
    while i < len(sig):
        t = sig[i]
        if t.is_kw("WITH"):  # WITH (CREDENTIAL ...) / WITH (ENCRYPTION ...): ignored locally
            i = matching_paren(sig, i + 1) + 1
        elif t.is_kw("FILEFORMAT"):
            if not sig[i + 1].is_punct("="):
                raise SqlSyntaxError("COPY INTO: expected FILEFORMAT = <format>")
            out.fileformat = sig[i + 2].text.upper()
            i += 3
        elif t.is_kw("FILES"):
            if not sig[i + 1].is_punct("="):
                raise SqlSyntaxError("COPY INTO: expected FILES = ('file', ...)")
            close = matching_paren(sig, i + 2)
            items = split_top_level(sig[i + 3 : close])
            if any(len(it) != 1 or it[0].kind != "string" for it in items):
                raise SqlSyntaxError("COPY INTO: FILES takes a list of string literals")
            out.files = [string_value(it[0]) for it in items]
            i = close + 1
        elif t.is_kw("PATTERN"):
            out.pattern = string_value(sig[i + 2])
            i += 3
        elif t.is_kw("FORMAT_OPTIONS"):
            out.format_options, i = _parse_options(sig, i + 1)
        elif t.is_kw("COPY_OPTIONS"):
            out.copy_options, i = _parse_options(sig, i + 1)
        elif t.is_kw("VALIDATE"):
            raise SqlSyntaxError("COPY INTO ... VALIDATE is not supported by the local warehouse")
        else:
            raise SqlSyntaxError(f"COPY INTO: unexpected {t.text!r}")
    if not out.fileformat:
        raise SqlSyntaxError("COPY INTO: FILEFORMAT is required")
    if out.files is not None and out.pattern is not None:
        raise SqlSyntaxError("COPY INTO: FILES and PATTERN cannot be used together")
    return out


_COLDEF_STOP = ("COMMENT", "NOT", "FIRST", "AFTER", "DEFAULT", "NULL", "MASK", "GENERATED")


def parse_column_def(sql: str, toks: list[Token]) -> ColumnDef:
    if not toks:
        raise SqlSyntaxError("empty column definition")
    parts, i = read_name(toks, 0)
    if len(parts) != 1:
        raise SqlSyntaxError("adding nested fields (a.b) is not supported by the local warehouse")
    j = i
    depth = 0
    while j < len(toks):
        t = toks[j]
        if t.is_punct("(", "<"):
            depth += 1
        elif t.is_punct(")", ">"):
            depth -= 1
        elif depth == 0 and t.is_kw(*_COLDEF_STOP):
            break
        j += 1
    if j == i:
        raise SqlSyntaxError(f"column {parts[0]!r} has no type")
    col = ColumnDef(name=parts[0], type_text=sql[toks[i].start : toks[j - 1].end])
    while j < len(toks):
        t = toks[j]
        if t.is_kw("COMMENT"):
            col.comment = string_value(toks[j + 1])
            j += 2
        elif t.is_kw("NOT") and j + 1 < len(toks) and toks[j + 1].is_kw("NULL"):
            col.nullable = False
            j += 2
        elif t.is_kw("NULL"):
            j += 1
        elif t.is_kw("FIRST", "AFTER", "DEFAULT", "MASK", "GENERATED"):
            raise SqlSyntaxError(f"ADD COLUMNS ... {t.text.upper()} is not supported by the local warehouse")
        else:
            raise SqlSyntaxError(f"unexpected {t.text!r} in the definition of column {parts[0]!r}")
    return col


def parse_add_columns(sql: str, sig: list[Token], target: list[str], i: int) -> AddColumns:
    # sig[i] is ADD
    i += 1
    if not sig[i].is_kw("COLUMN", "COLUMNS"):
        raise SqlSyntaxError("expected ADD COLUMN(S)")
    i += 1
    if_not_exists = False
    if i + 2 < len(sig) and sig[i].is_kw("IF") and sig[i + 1].is_kw("NOT") and sig[i + 2].is_kw("EXISTS"):
        if_not_exists = True
        i += 3
    if sig[i].is_punct("("):
        close = matching_paren(sig, i)
        if close != len(sig) - 1:
            raise SqlSyntaxError("unexpected text after ADD COLUMNS (...)")
        defs = split_top_level(sig[i + 1 : close])
    else:
        defs = split_top_level(sig[i:])
    return AddColumns(target=target, columns=[parse_column_def(sql, d) for d in defs], if_not_exists=if_not_exists)


def _parse_create_table(sql: str, sig: list[Token]) -> CreateTable:
    i = 1
    replace = False
    if sig[i].is_kw("OR") and sig[i + 1].is_kw("REPLACE"):
        replace = True
        i += 2
    if sig[i].is_kw("EXTERNAL"):
        i += 1
    assert sig[i].is_kw("TABLE")
    i += 1
    if_not_exists = False
    if sig[i].is_kw("IF") and sig[i + 1].is_kw("NOT") and sig[i + 2].is_kw("EXISTS"):
        if_not_exists = True
        i += 3
    name, i = read_name(sig, i)
    after_cols = sig[i - 1].end
    if i < len(sig) and sig[i].is_punct("("):
        close = matching_paren(sig, i)
        after_cols = sig[close].end
        i = close + 1
    as_idx = find_top_level_kw(sig, i, "AS")
    has_using = find_top_level_kw(sig, i, "USING") >= 0 and (
        as_idx < 0 or find_top_level_kw(sig, i, "USING") < as_idx
    )
    loc = find_top_level_kw(sig, i, "LOCATION")
    has_location = loc >= 0 and (as_idx < 0 or loc < as_idx)
    location_pos = sig[as_idx].start if as_idx >= 0 else len(sql)
    return CreateTable(
        sql=sql,
        name=name,
        has_location=has_location,
        replace=replace,
        if_not_exists=if_not_exists,
        using_pos=None if has_using else after_cols,
        location_pos=location_pos,
    )


def classify(sql: str):
    """Returns the execution plan for one statement (raises :class:`SqlSyntaxError`)."""
    sql = strip_statement(sql)
    if not sql:
        raise SqlSyntaxError("empty statement")
    sig = significant(tokenize(sql))
    first = sig[0].upper
    second = sig[1].upper if len(sig) > 1 else ""

    if first == "COPY" and second == "INTO":
        return parse_copy_into(sql, sig)

    if first == "CREATE":
        words = [t.upper for t in sig[1:4]]
        if "TABLE" in words and (words[0] in ("TABLE", "EXTERNAL") or words[:2] == ["OR", "REPLACE"]):
            rewritten = rewrite_read_files(sql)
            return _parse_create_table(rewritten, significant(tokenize(rewritten)))
        if second in ("SCHEMA", "DATABASE", "NAMESPACE"):
            i = 2
            if sig[i].is_kw("IF"):
                i += 3
            name, _ = read_name(sig, i)
            return SchemaDdl(sql=sql, action="create", name=name)
        if second == "CATALOG":
            return NoOp("catalogs are implicit in the local warehouse")
        return Passthrough(rewrite_read_files(sql), "ddl")

    if first == "DROP":
        if second == "TABLE":
            i = 2
            if_exists = False
            if sig[i].is_kw("IF") and sig[i + 1].is_kw("EXISTS"):
                if_exists = True
                i += 2
            name, _ = read_name(sig, i)
            return DropTable(sql=sql, name=name, if_exists=if_exists)
        if second in ("SCHEMA", "DATABASE", "NAMESPACE"):
            i = 2
            if sig[i].is_kw("IF"):
                i += 2
            name, _ = read_name(sig, i)
            return SchemaDdl(sql=sql, action="drop", name=name)
        if second == "CATALOG":
            return NoOp("catalogs are implicit in the local warehouse")
        return Passthrough(sql, "ddl")

    if first == "ALTER" and second == "TABLE":
        target, i = read_name(sig, 2)
        if i < len(sig) and sig[i].is_kw("ADD") and i + 1 < len(sig) and sig[i + 1].is_kw("COLUMN", "COLUMNS"):
            return parse_add_columns(sql, sig, target, i)
        return Passthrough(sql, "ddl", target)

    if first == "TRUNCATE" and second == "TABLE":
        target, _ = read_name(sig, 2)
        return Passthrough(f"DELETE FROM {quote_name(target)}", "ddl", target)

    if first in ("DESCRIBE", "DESC") and second in ("HISTORY", "DETAIL"):
        target, i = read_name(sig, 2)
        limit = None
        if i < len(sig) and sig[i].is_kw("LIMIT"):
            limit = int(sig[i + 1].text)
        return DeltaInfo(what=second.lower(), target=target, limit=limit)

    if first == "SHOW" and second == "TBLPROPERTIES":
        target, _ = read_name(sig, 2)
        return DeltaInfo(what="tblproperties", target=target)

    if first == "OPTIMIZE":
        target, _ = read_name(sig, 1)
        return DeltaInfo(what="optimize", target=target)

    if first == "VACUUM":
        target, i = read_name(sig, 1)
        info = DeltaInfo(what="vacuum", target=target)
        while i < len(sig):
            if sig[i].is_kw("RETAIN"):
                info.retain_hours = float(sig[i + 1].text)
                i += 3
            elif sig[i].is_kw("DRY"):
                info.dry_run = True
                i += 2
            else:
                i += 1
        return info

    if first == "USE":
        return NoOp("USE has no effect: each statement of the Statement Execution API runs on its own")
    if first == "SET" and any(t.is_punct("=") for t in sig):
        return NoOp("SET has no effect: each statement of the Statement Execution API runs on its own")
    if first in ("REFRESH", "ANALYZE", "CACHE", "UNCACHE"):
        return NoOp(f"{first} is not needed by the local warehouse")

    rewritten = rewrite_read_files(sql)
    if first in QUERY_WORDS:
        return Passthrough(rewritten, "query")
    if first == "INSERT":
        i = 1
        if sig[i].is_kw("INTO", "OVERWRITE"):
            i += 1
        if i < len(sig) and sig[i].is_kw("TABLE"):
            i += 1
        target, _ = read_name(sig, i)
        return Passthrough(rewritten, "insert", target)
    if first == "UPDATE":
        target, _ = read_name(sig, 1)
        return Passthrough(rewritten, "update", target)
    if first == "DELETE":
        target, _ = read_name(sig, 2)
        return Passthrough(rewritten, "delete", target)
    if first == "MERGE":
        i = 1
        if sig[i].is_kw("WITH"):  # MERGE WITH SCHEMA EVOLUTION INTO
            i += 3
        if not sig[i].is_kw("INTO"):
            raise SqlSyntaxError("MERGE: expected INTO")
        target, _ = read_name(sig, i + 1)
        return Passthrough(rewritten, "merge", target)
    return Passthrough(rewritten, "ddl")
