"""Classifies Databricks SQL statements and translates what Sail lacks.

Pure functions over statement text: no engine, no I/O. The engine
(:mod:`local_warehouse.engine`) executes the returned plans.

Translated here (and only here; the product always sends real Databricks SQL):

* ``COPY INTO t FROM '<dir>' FILEFORMAT = PARQUET [FILES = (...)] [PATTERN = '...']
  [FORMAT_OPTIONS (...)] [COPY_OPTIONS (...)]``  -> :class:`CopyInto`
* ``ALTER TABLE t ADD COLUMN[S] (c TYPE [COMMENT '...'], s.f TYPE, ...)`` -> :class:`AddColumns`
* ``read_files('<path>', format => 'parquet')`` -> ``parquet.`<path>```
* ``parquet.`s3://...%2E...``` -> ``parquet.`s3://...%252E...``` (Sail decodes ``%XX``; see
  :func:`sail_path`)
* named parameters in commands (INSERT/UPDATE/DELETE/MERGE/CTAS, which Sail refuses with
  arguments) -> typed literals built here (:func:`bind_parameters_as_literals`)
* ``DESCRIBE [TABLE] [EXTENDED] t`` -> :class:`DescribeTable`
* ``CREATE TABLE`` without ``LOCATION`` -> a location under the warehouse root
* ``TRUNCATE TABLE t`` -> ``DELETE FROM t``; ``DESCRIBE HISTORY``, ``DESCRIBE DETAIL``,
  ``SHOW TBLPROPERTIES``, ``OPTIMIZE``, ``VACUUM`` -> answered from the Delta log
* ``USE ...``, ``SET k = v``, ``CREATE CATALOG``, ``REFRESH``/``ANALYZE`` -> no-ops
"""

from __future__ import annotations

import re
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
    source_paths: list[str] = field(default_factory=list)  # files read through <format>.`<path>`


@dataclass
class CreateTable:
    sql: str
    name: list[str]
    has_location: bool
    replace: bool
    if_not_exists: bool
    using_pos: int | None  # where to insert "USING DELTA" when the statement has no USING
    location_pos: int  # where to insert "LOCATION '...'" when it has none
    source_paths: list[str] = field(default_factory=list)

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
    parent: list[str] = field(default_factory=list)  # ADD COLUMNS (s.inner.f INT): ["s", "inner"]


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
class DescribeTable:
    """``DESCRIBE [TABLE] [EXTENDED] t``: Sail's answer, or the Delta log's for tables Sail
    holds without columns (see Engine._register)."""

    sql: str
    target: list[str]
    extended: bool = False


@dataclass
class NoOp:
    reason: str


FILE_FORMATS = ("parquet", "json", "csv", "avro", "orc", "text")
_DECODING_SCHEMES = ("s3://", "s3a://", "file://")


def sail_path(path: str) -> str:
    """The text to give Sail so that it opens exactly the object ``path`` names.

    Sail percent-decodes ``s3://``, ``s3a://`` and ``file://`` URLs of file sources
    (``parquet.`s3://b/a%2Eb/f.parquet``` opens the key ``a.b/f.parquet``), while the
    product's staged keys contain a literal ``%`` (it percent-encodes table names in them).
    Encoding every ``%`` as ``%25`` makes Sail's decoding give the key back unchanged (a
    ``%`` that is not followed by two hex digits is left alone by Sail either way, and
    ``%25zz`` decodes to it too). Plain local paths (no scheme) are not decoded by Sail and
    are returned as they are.
    """
    if path.lower().startswith(_DECODING_SCHEMES):
        return path.replace("%", "%25")
    return path


def is_file_path(text: str) -> bool:
    return "://" in text or text.startswith("/")


def rewrite_file_sources(sql: str) -> tuple[str, list[str]]:
    """Rewrites every ``<format>.`<path>``` file source (parquet, json, csv, ...) so Sail
    reads exactly ``<path>`` (see :func:`sail_path`). Returns the new text and the paths
    (as the statement names them, i.e. the real object keys)."""
    sig = significant(tokenize(sql))
    edits: list[tuple[int, int, str]] = []
    paths: list[str] = []
    for k, t in enumerate(sig):
        if (
            t.kind == "word"
            and t.text.lower() in FILE_FORMATS
            and k + 2 < len(sig)
            and sig[k + 1].is_punct(".")
            and sig[k + 2].kind == "qident"
            and not (k > 0 and sig[k - 1].is_punct("."))
        ):
            path = ident_value(sig[k + 2])
            if not is_file_path(path):
                continue
            paths.append(path)
            encoded = sail_path(path)
            if encoded != path:
                edits.append((sig[k + 2].start, sig[k + 2].end, quote_ident(encoded)))
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end:]
    return sql, paths


def rewrite_sources(sql: str) -> tuple[str, list[str]]:
    """``read_files(...)`` -> ``parquet.`...```, then :func:`rewrite_file_sources`."""
    return rewrite_file_sources(rewrite_read_files(sql))


# --------------------------------------------------------------------------------------
# Named parameters in commands. Sail runs named arguments (Spark Connect `args`) only in
# queries; INSERT/UPDATE/DELETE/MERGE/CTAS with arguments fail ("command with parameters").
# For those the warehouse writes each parameter into the text as a typed literal it builds
# itself: CAST('<value, escaped>' AS <type>) or CAST(NULL AS <type>).
_PARAM_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?$")


@dataclass
class Param:
    name: str
    value: str | None
    type: str = "STRING"


def param_literal(p: Param) -> str:
    typ = " ".join(p.type.split()).upper()
    if not _PARAM_TYPE.match(typ):
        raise SqlSyntaxError(f"invalid parameter type {p.type!r}")
    if p.value is None:
        return f"CAST(NULL AS {typ})"
    if not isinstance(p.value, str):
        raise SqlSyntaxError(f"parameter {p.name}: the value must be a string or null")
    if typ == "STRING":
        return quote_string(p.value)
    return f"CAST({quote_string(p.value)} AS {typ})"


def bind_parameters_as_literals(sql: str, params: list[Param]) -> str:
    """Replaces every ``:name`` marker (outside strings, comments and quoted names) with the
    literal of its parameter. A marker without a parameter is an UNBOUND_SQL_PARAMETER error."""
    by_name = {p.name.lower(): p for p in params}
    edits = []
    for t in tokenize(sql):
        if t.kind == "param":
            p = by_name.get(t.text[1:].lower())
            if p is None:
                raise UnboundParameter(t.text[1:])
            edits.append((t.start, t.end, param_literal(p)))
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end:]
    return sql


class UnboundParameter(SqlSyntaxError):
    def __init__(self, name: str):
        super().__init__(f"Found the unbound parameter: {name}")
        self.name = name


def needs_literal_parameters(plan) -> bool:
    """True when Sail would refuse the plan's statement with named arguments: anything but
    a plain query (SELECT / WITH / VALUES / FROM / TABLE)."""
    if isinstance(plan, Passthrough):
        if plan.kind != "query":
            return True
        sig = significant(tokenize(plan.sql))
        return not (sig and (sig[0].is_kw("SELECT", "WITH", "VALUES", "FROM", "TABLE") or sig[0].is_punct("(")))
    return isinstance(plan, CreateTable)


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
        raise SqlSyntaxError(f"column {'.'.join(parts)!r} has no type")
    col = ColumnDef(name=parts[-1], type_text=sql[toks[i].start : toks[j - 1].end], parent=parts[:-1])
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
            raise SqlSyntaxError(f"unexpected {t.text!r} in the definition of column {'.'.join(parts)!r}")
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


DELETE_SOURCE = "__deltasink_delete"


def delete_as_merge(sql: str) -> str:
    """``DELETE FROM t [[AS] a] WHERE cond`` -> ``MERGE INTO t [AS a] USING (SELECT 1 AS ...)
    AS ... ON (cond) WHEN MATCHED THEN DELETE``.

    Sail 0.7.2's DELETE fails whenever its condition compares a BOOLEAN column with a value
    (``WHERE `_cdc_deleted` = true ...``: "Field minValues not found in struct" / "Field
    _cdc_deleted not found in struct", from its file pruning); its MERGE deletes the same
    rows correctly. A DELETE without WHERE, or of a ``delta.`<path>``` target, is kept.
    """
    sig = significant(tokenize(sql))
    if len(sig) < 3 or not sig[1].is_kw("FROM"):
        return sql
    name, i = read_name(sig, 2)
    if len(name) == 2 and name[0].lower() in ("delta", *FILE_FORMATS) and is_file_path(name[1]):
        return sql
    target_text = sql[sig[2].start : sig[i - 1].end]
    alias = ""
    if i < len(sig) and sig[i].is_kw("AS"):
        i += 1
    if i < len(sig) and sig[i].kind in ("word", "qident") and not sig[i].is_kw("WHERE"):
        alias = f" AS {sig[i].text}"
        i += 1
    if i >= len(sig) or not sig[i].is_kw("WHERE") or i + 1 >= len(sig):
        return sql
    cond = sql[sig[i + 1].start : sig[-1].end]
    source = quote_ident(DELETE_SOURCE)
    return (f"MERGE INTO {target_text}{alias} USING (SELECT 1 AS {quote_ident(DELETE_SOURCE + '_one')}) AS {source} "
            f"ON ({cond}) WHEN MATCHED THEN DELETE")


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
            rewritten, paths = rewrite_sources(sql)
            plan = _parse_create_table(rewritten, significant(tokenize(rewritten)))
            plan.source_paths = paths
            return plan
        if second in ("SCHEMA", "DATABASE", "NAMESPACE"):
            i = 2
            if sig[i].is_kw("IF"):
                i += 3
            name, _ = read_name(sig, i)
            return SchemaDdl(sql=sql, action="create", name=name)
        if second == "CATALOG":
            return NoOp("catalogs are implicit in the local warehouse")
        rewritten, paths = rewrite_sources(sql)
        return Passthrough(rewritten, "ddl", source_paths=paths)

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

    if first in ("DESCRIBE", "DESC") and len(sig) > 1:
        i = 1
        if sig[i].is_kw("TABLE"):
            i += 1
        elif sig[i].is_kw("SCHEMA", "DATABASE", "NAMESPACE", "CATALOG", "FUNCTION", "QUERY", "VOLUME"):
            return Passthrough(sql, "query")
        extended = False
        if i < len(sig) and sig[i].is_kw("EXTENDED", "FORMATTED") and i + 1 < len(sig) and sig[i + 1].kind in ("word", "qident"):
            extended = True
            i += 1
        target, j = read_name(sig, i)
        if j == len(sig):
            return DescribeTable(sql=sql, target=target, extended=extended)
        return Passthrough(sql, "query")

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

    rewritten, paths = rewrite_sources(sql)
    if first in QUERY_WORDS:
        return Passthrough(rewritten, "query", source_paths=paths)
    if first == "INSERT":
        i = 1
        if sig[i].is_kw("INTO", "OVERWRITE"):
            i += 1
        if i < len(sig) and sig[i].is_kw("TABLE"):
            i += 1
        target, _ = read_name(sig, i)
        return Passthrough(rewritten, "insert", target, paths)
    if first == "UPDATE":
        target, _ = read_name(sig, 1)
        return Passthrough(rewritten, "update", target, paths)
    if first == "DELETE":
        target, _ = read_name(sig, 2)
        return Passthrough(delete_as_merge(rewritten), "delete", target, paths)
    if first == "MERGE":
        i = 1
        if sig[i].is_kw("WITH"):  # MERGE WITH SCHEMA EVOLUTION INTO
            i += 3
        if not sig[i].is_kw("INTO"):
            raise SqlSyntaxError("MERGE: expected INTO")
        target, _ = read_name(sig, i + 1)
        return Passthrough(rewritten, "merge", target, paths)
    return Passthrough(rewritten, "ddl", source_paths=paths)
