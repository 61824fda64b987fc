"""Executes classified statements on Sail (Spark Connect, in-process) with Delta tables.

Sail keeps its catalog in memory, per Spark session. The engine therefore uses one Spark
session for every statement and persists its own catalog (schemas, table name -> location)
in ``<state>/catalog.json``; on start it registers every table again, so tables outlive a
warehouse restart. COPY INTO's per-file ledger lives in ``<state>/copy_ledger/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatch

from . import storage
from .results import Column, Result, from_arrow, long_col, string_col
from .sqltext import quote_ident, quote_name, quote_string
from .translate import (
    AddColumns,
    CopyInto,
    CreateTable,
    DeltaInfo,
    DescribeTable,
    DropTable,
    NoOp,
    Passthrough,
    SchemaDdl,
    sail_path,
)

log = logging.getLogger("local_warehouse.engine")

# Sail's in-memory catalog refusing an ALTER COLUMN it has no column for (after the Delta change)
_SAIL_CATALOG_ALTER_COLUMN = re.compile(r"failed to alter column (type|default) for .*does not exist", re.I | re.S)

DEFAULT_NAMESPACE = ("default",)


class WarehouseError(Exception):
    """A statement failure, shaped as the Statement Execution API reports it."""

    def __init__(self, message: str, error_code: str = "BAD_REQUEST", sql_state: str | None = None):
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.sql_state = sql_state


class Canceled(Exception):
    pass


@dataclass
class ExecContext:
    tag: str
    args: dict | None = None
    namespace: tuple[str, ...] | None = None  # from the request's catalog/schema
    cancel: threading.Event = field(default_factory=threading.Event)


# --------------------------------------------------------------------------------------
# Errors: Sail's messages -> Databricks error classes and SQLSTATEs where we can tell.
_ERROR_PATTERNS = [
    (re.compile(r"TABLE_OR_VIEW_NOT_FOUND|Table not found|table .* not found", re.I), "TABLE_OR_VIEW_NOT_FOUND", "42P01"),
    (re.compile(r"Database not found|schema .* not found|SCHEMA_NOT_FOUND", re.I), "SCHEMA_NOT_FOUND", "42704"),
    (re.compile(r"already exists", re.I), "TABLE_OR_VIEW_ALREADY_EXISTS", "42P07"),
    (re.compile(r"No value found for placeholder", re.I), "UNBOUND_SQL_PARAMETER", "42P02"),
    (re.compile(r"cannot resolve attribute|missing from the schema|UNRESOLVED_COLUMN", re.I), "UNRESOLVED_COLUMN", "42703"),
    (re.compile(r"^invalid argument: found .* expected|PARSE_SYNTAX_ERROR", re.I), "PARSE_SYNTAX_ERROR", "42601"),
    (re.compile(r"divide by zero|DIVIDE_BY_ZERO", re.I), "DIVIDE_BY_ZERO", "22012"),
    (re.compile(r"Cannot cast", re.I), "CAST_INVALID_INPUT", "22018"),
]


def map_exception(e: BaseException) -> WarehouseError:
    if isinstance(e, WarehouseError):
        return e
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    for pattern, cls, state in _ERROR_PATTERNS:
        if pattern.search(first):
            tag = f"[{cls}]"
            msg = first[first.index(tag):] if tag in first else f"{tag} {first}"
            return WarehouseError(f"{msg} SQLSTATE: {state}", "BAD_REQUEST", state)
    name = type(e).__name__
    if name in ("AnalysisException", "ParseException", "IllegalArgumentException", "NumberFormatException",
                "ArithmeticException", "SparkRuntimeException", "UnsupportedOperationException",
                "PySparkValueError", "PySparkTypeError"):
        return WarehouseError(first, "BAD_REQUEST")
    return WarehouseError(f"{name}: {first}", "INTERNAL_ERROR")


# --------------------------------------------------------------------------------------
class RWLock:
    """Statements with a catalog/schema in the request run `USE SCHEMA` on the shared
    session: they hold the write side; every other statement holds the read side."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextlib.contextmanager
    def read(self):
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def write(self):
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class TableLocks:
    """One lock per table: statements touching the same table run one at a time."""

    def __init__(self):
        self._mutex = threading.Lock()
        self._locks: dict[tuple, threading.Lock] = {}

    @contextlib.contextmanager
    def hold(self, keys, cancel: threading.Event):
        held = []
        try:
            for key in sorted(set(keys)):
                with self._mutex:
                    lock = self._locks.setdefault(key, threading.Lock())
                while not lock.acquire(timeout=0.1):
                    if cancel.is_set():
                        raise Canceled()
                held.append(lock)
            yield
        finally:
            for lock in reversed(held):
                lock.release()


# --------------------------------------------------------------------------------------
def _atomic_write_json(path: str, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class CatalogStore:
    """Persisted names: schemas and table name -> {location, managed}."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.RLock()
        self.schemas: dict[str, list[str]] = {}
        self.tables: dict[str, dict] = {}
        if os.path.exists(path):
            with open(path) as f:
                data = json.load(f)
            # keyed again from the parts: older files used "a.b.c" keys, ambiguous with dots in names
            self.schemas = {self.key(v): v for v in data.get("schemas", {}).values()}
            self.tables = {self.key(v["parts"]): v for v in data.get("tables", {}).values()}

    @staticmethod
    def key(parts) -> str:
        """The lookup key of a name: its parts, case-insensitive, unambiguous whatever the
        parts contain (dots, backticks, spaces)."""
        return json.dumps([p.lower() for p in parts], ensure_ascii=False)

    def save(self):
        with self.lock:
            _atomic_write_json(self.path, {"schemas": self.schemas, "tables": self.tables})

    def add_schema(self, parts):
        with self.lock:
            k = self.key(parts)
            if k not in self.schemas:
                self.schemas[k] = list(parts)
                self.save()

    def drop_schema(self, parts):
        with self.lock:
            k = self.key(parts)
            self.schemas.pop(k, None)
            for tk in [t for t, e in self.tables.items() if self.key(e["parts"][:-1]) == k]:
                self.tables.pop(tk)
            self.save()

    def add_table(self, parts, location: str, managed: bool):
        with self.lock:
            self.tables[self.key(parts)] = {"parts": list(parts), "location": location, "managed": managed}
            self.save()

    def drop_table(self, parts):
        with self.lock:
            entry = self.tables.pop(self.key(parts), None)
            self.save()
            return entry

    def get(self, parts):
        return self.tables.get(self.key(parts))


class CopyLedger:
    """Files COPY INTO loaded into one Delta table (keyed by location and Delta table id).

    A load first records its files as *pending* with the table version it starts from and
    the rows it will add; once the INSERT commits, they move to ``files``. If the warehouse
    dies in between, the next COPY INTO on the table settles the pending entry by looking at
    the Delta log: the commit right after the recorded version is ours when it is a WRITE of
    exactly that many rows.
    """

    def __init__(self, state_dir: str, location: str, table_id: str):
        digest = hashlib.sha256(location.encode()).hexdigest()[:16]
        self.path = os.path.join(state_dir, "copy_ledger", f"{digest}.json")
        self.location = location
        self.table_id = table_id
        data = {}
        if os.path.exists(self.path):
            with open(self.path) as f:
                data = json.load(f)
        if data.get("table_id") != table_id:  # a new table at the same location starts afresh
            data = {}
        self.files: dict[str, dict] = data.get("files", {})
        self.pending: dict | None = data.get("pending")

    def save(self):
        _atomic_write_json(
            self.path,
            {"location": self.location, "table_id": self.table_id, "files": self.files, "pending": self.pending},
        )

    @staticmethod
    def remove(state_dir: str, location: str):
        digest = hashlib.sha256(location.encode()).hexdigest()[:16]
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(state_dir, "copy_ledger", f"{digest}.json"))


# --------------------------------------------------------------------------------------
def spark_type_ddl(dt) -> str:
    """DDL text for a pyspark DataType, with quoted struct field names."""
    from pyspark.sql import types as T

    if isinstance(dt, T.StructType):
        return "STRUCT<" + ", ".join(f"{quote_ident(f.name)}: {spark_type_ddl(f.dataType)}" for f in dt.fields) + ">"
    if isinstance(dt, T.ArrayType):
        return f"ARRAY<{spark_type_ddl(dt.elementType)}>"
    if isinstance(dt, T.MapType):
        return f"MAP<{spark_type_ddl(dt.keyType)}, {spark_type_ddl(dt.valueType)}>"
    if isinstance(dt, T.DecimalType):
        return f"DECIMAL({dt.precision},{dt.scale})"
    return dt.simpleString().upper()


def managed_dir_name(part: str) -> str:
    """The directory of one name part under the warehouse root: lower case, ``[a-z0-9_.-]``
    kept, every other byte of its UTF-8 form written ``-xx`` (hex), ``-`` itself as ``-2d``
    and a leading ``.`` as ``-2e``. Injective, and free of ``%``, spaces and ``~``: Sail
    percent-encodes or -decodes such characters in table locations differently for the
    Delta log and the data files (``sh op`` -> ``sh-20op``, ``or`ders.v2`` -> ``or-60ders.v2``)."""
    out = []
    for i, ch in enumerate(part.lower()):
        if ("a" <= ch <= "z") or ("0" <= ch <= "9") or ch == "_" or (ch == "." and i > 0):
            out.append(ch)
        else:
            out.extend(f"-{b:02x}" for b in ch.encode("utf-8"))
    return "".join(out) or "-"


def describe_type(dt) -> str:
    """A type as Sail's (and Databricks') DESCRIBE TABLE prints it: ``bigint``,
    ``decimal(12,4)``, ``array<string>``, ``struct<x y:int,z:timestamp>``."""
    return dt.simpleString()


def _has_list_or_map(dt) -> bool:
    from pyspark.sql import types as T

    if isinstance(dt, (T.ArrayType, T.MapType)):
        return True
    if isinstance(dt, T.StructType):
        return any(_has_list_or_map(f.dataType) for f in dt.fields)
    return False


def _find_struct(schema, path: list[str], table_parts):
    """The STRUCT type at ``path`` (case-insensitive) in ``schema``, for nested ADD COLUMNS."""
    from pyspark.sql import types as T

    cur = schema
    for i, name in enumerate(path):
        field = next((f for f in cur.fields if f.name.lower() == name.lower()), None)
        where = quote_name(path[: i + 1])
        if field is None:
            raise WarehouseError(
                f"[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter with name {where} "
                f"cannot be resolved in {quote_name(table_parts)}. SQLSTATE: 42703", "BAD_REQUEST", "42703")
        if not isinstance(field.dataType, T.StructType):
            kind = field.dataType.typeName().upper()
            detail = (" (fields inside ARRAY or MAP elements cannot be added by the local warehouse: Sail 0.7.2's schema "
                      "evolution does not support it)" if kind in ("ARRAY", "MAP") else "")
            raise WarehouseError(
                f"[DELTA_UNSUPPORTED_ADD_COLUMN] cannot add a field to {where}: it is a {kind}, not a STRUCT{detail}.",
                "BAD_REQUEST", "42809")
        cur = field.dataType
    return cur


def _with_field(struct, path: list[str], field):
    """A copy of ``struct`` with ``field`` appended to the STRUCT at ``path``."""
    from pyspark.sql import types as T

    if not path:
        return T.StructType([*struct.fields, field])
    return T.StructType([
        T.StructField(f.name, _with_field(f.dataType, path[1:], field), f.nullable, f.metadata)
        if f.name.lower() == path[0].lower() else f
        for f in struct.fields
    ])


def _delta_struct(schema_json: str):
    from pyspark.sql.types import StructType

    return StructType.fromJson(json.loads(schema_json))


class Engine:
    def __init__(self, warehouse_root: str, state_dir: str):
        self.warehouse_root = warehouse_root.rstrip("/")
        self.state_dir = state_dir
        os.makedirs(state_dir, exist_ok=True)
        if not storage.is_s3(self.warehouse_root):
            os.makedirs(self.warehouse_root, exist_ok=True)
        self.catalog = CatalogStore(os.path.join(state_dir, "catalog.json"))
        self.table_locks = TableLocks()
        self.ns_lock = RWLock()
        self.server = None
        self.spark = None
        self.columnless: set[str] = set()  # catalog keys of tables Sail holds without columns

    # ---- lifecycle ----------------------------------------------------------------
    def start(self):
        os.environ.setdefault("SAIL_SPARK__SESSION_TIMEOUT_SECS", str(10 * 365 * 24 * 3600))
        os.environ.setdefault("TZ", "UTC")
        with contextlib.suppress(AttributeError):
            time.tzset()
        from pysail.spark import SparkConnectServer
        from pyspark.sql import SparkSession

        t0 = time.time()
        self.server = SparkConnectServer("127.0.0.1", 0)
        self.server.start(background=True)
        host, port = self.server.listening_address
        self.spark = SparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self.sql("SELECT 1").num_rows
        log.info("Sail Spark Connect server on %s:%s, ready in %.1fs", host, port, time.time() - t0)
        self._restore_catalog()

    def stop(self):
        with contextlib.suppress(Exception):
            if self.spark is not None:
                self.spark.stop()
        with contextlib.suppress(Exception):
            if self.server is not None:
                self.server.stop()

    def _restore_catalog(self):
        for parts in list(self.catalog.schemas.values()):
            try:
                self.sql(f"CREATE DATABASE IF NOT EXISTS {quote_name(parts)}")
            except Exception as e:
                log.warning("could not restore schema %s: %s", parts, e)
        restored = 0
        for key, entry in list(self.catalog.tables.items()):
            parts, location = entry["parts"], entry["location"]
            try:
                if not storage.has_delta_log(location):
                    log.warning("table %s: no Delta log at %s any more; forgetting it", key, location)
                    self.catalog.drop_table(parts)
                    continue
                self.sql(f"CREATE DATABASE IF NOT EXISTS {quote_name(parts[:-1] or DEFAULT_NAMESPACE)}")
                self._register(parts, location, replace=False)
                restored += 1
            except Exception as e:
                log.warning("could not restore table %s at %s: %s", key, location, e)
        if restored:
            log.info("restored %d table(s) from %s", restored, self.catalog.path)

    # ---- Sail ---------------------------------------------------------------------
    def sql(self, text: str, args: dict | None = None):
        df = self.spark.sql(text, args=args) if args else self.spark.sql(text)
        return df.toArrow()

    def interrupt(self, tag: str):
        with contextlib.suppress(Exception):
            self.spark.interruptTag(tag)

    def schema_of(self, text: str):
        """The pyspark StructType of a query, without running it."""
        return self.spark.sql(text).schema

    # ---- names --------------------------------------------------------------------
    def resolve(self, parts, ns: tuple[str, ...] | None) -> tuple[str, ...]:
        parts = tuple(parts)
        if len(parts) >= 2:
            return parts
        return tuple(ns or DEFAULT_NAMESPACE) + parts

    def lock_keys(self, plan, sql: str, ns) -> set[str]:
        """Registered tables the statement mentions, plus the table it writes."""
        from .sqltext import dotted_names, significant, tokenize

        keys: set[str] = set()
        target = getattr(plan, "target", None) or getattr(plan, "name", None)
        if target and not isinstance(plan, SchemaDdl):
            keys.add(CatalogStore.key(self.resolve(target, ns)))
        try:
            names = dotted_names(significant(tokenize(sql)))
        except Exception:
            names = []
        known = self.catalog.tables
        for parts in names:
            for n in range(1, len(parts) + 1):
                for cand in (parts[:n], self.resolve(parts[:n], ns) if n == 1 else None):
                    if cand and CatalogStore.key(cand) in known:
                        keys.add(CatalogStore.key(cand))
        return keys

    def location_of(self, parts) -> str:
        entry = self.catalog.get(parts)
        if entry:
            return entry["location"]
        rows = self.sql(f"DESCRIBE TABLE EXTENDED {quote_name(parts)}").to_pylist()
        for r in rows:
            if (r.get("col_name") or "").strip().lower() == "location":
                return r["data_type"]
        raise WarehouseError(
            f"[DELTA_MISSING_DELTA_TABLE] {quote_name(parts)} has no location; is it a Delta table?", "BAD_REQUEST", "42P01"
        )

    def _delta(self, location: str):
        from deltalake import DeltaTable

        return DeltaTable(location)

    def _register(self, parts, location: str, replace: bool):
        """(Re-)registers a Delta table in Sail's catalog with its current columns.

        Sail checks declared columns against the Delta log strictly (Arrow types, list and
        map field names included), and the names differ for every ARRAY and MAP column: a
        table with one cannot be registered with a column list at all. Such a table is
        registered without columns (Sail reads and writes it from the Delta log just the
        same) and the warehouse answers ``DESCRIBE TABLE`` for it from the Delta log (see
        :meth:`_describe`). With ``replace`` the old registration is dropped first; whatever
        fails after that, the table ends up registered (without columns at worst)."""
        dt = self._delta(location)
        struct = _delta_struct(dt.schema().to_json())
        cols = []
        for f in struct.fields:
            col = f"{quote_ident(f.name)} {spark_type_ddl(f.dataType)}"
            if not f.nullable:
                col += " NOT NULL"
            comment = (f.metadata or {}).get("comment")
            if comment:
                col += f" COMMENT {quote_string(comment)}"
            cols.append(col)
        meta = dt.metadata()
        name = quote_name(parts)
        partitioned = ""
        if meta.partition_columns:
            partitioned = f" PARTITIONED BY ({', '.join(quote_ident(c) for c in meta.partition_columns)})"
        props = dict(meta.configuration or {})
        tblprops = (f" TBLPROPERTIES ({', '.join(f'{quote_string(k)} = {quote_string(v)}' for k, v in props.items())})"
                    if props else "")
        located = f" USING DELTA{partitioned} LOCATION {quote_string(location)}"
        with_cols = f"CREATE TABLE {name} ({', '.join(cols)}){located}"
        without_cols = f"CREATE TABLE {name} USING DELTA LOCATION {quote_string(location)}"
        attempts = []
        if not _has_list_or_map(struct):
            attempts += [(with_cols + tblprops, True), (with_cols, True)] if tblprops else [(with_cols, True)]
        attempts += [(without_cols + tblprops, False), (without_cols, False)] if tblprops else [(without_cols, False)]
        key = CatalogStore.key(parts)
        if replace:
            self.sql(f"DROP TABLE IF EXISTS {name}")
        errors = []
        for text, has_columns in attempts:
            try:
                self.sql(text)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
                continue
            if has_columns:
                self.columnless.discard(key)
            else:
                self.columnless.add(key)
                if errors:
                    log.info("table %s registered without columns: %s", name, str(errors[0]).splitlines()[0][:300])
            return
        raise errors[-1]

    def _sail_columns(self, parts) -> list[tuple[str, str]]:
        out = []
        for r in self.sql(f"DESCRIBE TABLE {quote_name(parts)}").to_pylist():
            name = r.get("col_name") or ""
            if not name or name.startswith("#"):
                break
            out.append((name, (r.get("data_type") or "").lower()))
        return out

    def reconcile(self, parts):
        """Sail's catalog keeps the columns of CREATE TABLE; when the Delta schema changed
        (ADD COLUMNS, MERGE WITH SCHEMA EVOLUTION, type widening) register the table again so
        DESCRIBE TABLE (and Sail's own ALTER COLUMN bookkeeping) see the real columns."""
        entry = self.catalog.get(parts)
        if not entry:
            return
        struct = _delta_struct(self._delta(entry["location"]).schema().to_json())
        if CatalogStore.key(entry["parts"]) in self.columnless and _has_list_or_map(struct):
            return  # registered without columns, described from the Delta log: nothing to update
        want = [(f.name, describe_type(f.dataType)) for f in struct.fields]
        have = self._sail_columns(entry["parts"])
        norm = lambda cols: [(n, t.replace(" ", "").lower()) for n, t in cols]  # noqa: E731
        if norm(want) != norm(have):
            log.info("re-registering %s: columns changed", quote_name(entry["parts"]))
            self._register(entry["parts"], entry["location"], replace=True)

    def _describe(self, plan: DescribeTable, ctx: ExecContext) -> Result:
        """DESCRIBE TABLE: Sail's answer, except for tables registered without columns
        (ARRAY/MAP columns, see :meth:`_register`): their columns come from the Delta log,
        in Sail's format (``col_name``, ``data_type`` as ``struct<a:int,b:array<string>>``,
        ``comment``), followed by Sail's extended rows for EXTENDED."""
        parts = self.resolve(plan.target, ctx.namespace)
        entry = self.catalog.get(parts)
        if not entry or CatalogStore.key(entry["parts"]) not in self.columnless:
            return from_arrow(self.sql(plan.sql))
        struct = _delta_struct(self._delta(entry["location"]).schema().to_json())
        rows = [[f.name, describe_type(f.dataType), (f.metadata or {}).get("comment")] for f in struct.fields]
        if plan.extended:
            for r in self.sql(f"DESCRIBE TABLE EXTENDED {quote_name(entry['parts'])}").to_pylist():
                rows.append([r.get("col_name"), r.get("data_type"), r.get("comment")])
        return Result([string_col("col_name"), string_col("data_type"), string_col("comment")], rows)

    # ---- execution ----------------------------------------------------------------
    def execute(self, plan, ctx: ExecContext) -> Result:
        if isinstance(plan, NoOp):
            return Result()
        lock = self.ns_lock.write() if ctx.namespace else self.ns_lock.read()
        with lock:
            self.spark.addTag(ctx.tag)
            try:
                if ctx.namespace:
                    self.sql(f"USE SCHEMA {quote_name(ctx.namespace)}")
                try:
                    return self._execute(plan, ctx)
                finally:
                    if ctx.namespace:
                        with contextlib.suppress(Exception):
                            self.sql("USE SCHEMA `default`")
            finally:
                with contextlib.suppress(Exception):
                    self.spark.removeTag(ctx.tag)

    def _check(self, ctx: ExecContext):
        if ctx.cancel.is_set():
            raise Canceled()

    def _execute(self, plan, ctx: ExecContext) -> Result:
        if isinstance(plan, Passthrough):
            return self._passthrough(plan, ctx)
        if isinstance(plan, CreateTable):
            return self._create_table(plan, ctx)
        if isinstance(plan, DropTable):
            return self._drop_table(plan, ctx)
        if isinstance(plan, SchemaDdl):
            return self._schema_ddl(plan, ctx)
        if isinstance(plan, CopyInto):
            return self._copy_into(plan, ctx)
        if isinstance(plan, AddColumns):
            return self._add_columns(plan, ctx)
        if isinstance(plan, DeltaInfo):
            return self._delta_info(plan, ctx)
        if isinstance(plan, DescribeTable):
            return self._describe(plan, ctx)
        raise WarehouseError(f"unsupported plan {type(plan).__name__}", "INTERNAL_ERROR")

    def _passthrough(self, plan: Passthrough, ctx: ExecContext) -> Result:
        target = self.resolve(plan.target, ctx.namespace) if plan.target else None
        version_before = None
        location = None
        entry = self.catalog.get(target) if target else None
        if plan.kind in ("merge", "update", "delete") and entry:
            location = entry["location"]
            version_before = self._delta(location).version()
        self._check_sources(plan.source_paths)
        try:
            table = self.sql(plan.sql, ctx.args)
        except Exception as e:
            if not (plan.kind == "ddl" and entry and CatalogStore.key(entry["parts"]) in self.columnless
                    and _SAIL_CATALOG_ALTER_COLUMN.search(str(e))):
                raise
            # ALTER COLUMN on a table Sail holds without columns: Sail changes the Delta table
            # first and then fails to update its (empty) column list; the change is done.
            log.info("%s: %s (ignored: the table is registered without columns)", quote_name(entry["parts"]),
                     str(e).splitlines()[0][:200])
            return Result()
        count = None
        if "count" in table.column_names and table.num_rows == 1:
            count = table.column("count")[0].as_py()
        if plan.kind == "query":
            return from_arrow(table)
        if plan.kind == "insert":
            return Result([long_col("num_affected_rows"), long_col("num_inserted_rows")], [[_s(count), _s(count)]])
        if plan.kind in ("merge", "update", "delete"):
            res = self._dml_result(plan.kind, location, version_before, count)
            if plan.kind == "merge" and target and re.search(r"\bSCHEMA\s+EVOLUTION\b", plan.sql, re.I):
                self.reconcile(target)
            return res
        if target and self.catalog.get(target):  # ALTER TABLE ...: the columns may have changed
            self.reconcile(target)
        return Result()

    def _check_sources(self, paths):
        """Sail reads a missing file or directory as no rows; Databricks fails. Fail the same
        way, so that a lost staged file cannot load nothing silently."""
        for p in dict.fromkeys(paths):
            if any(c in p for c in "*?[{"):  # a glob: Sail expands it, nothing to check here
                continue
            try:
                found = storage.exists(p) or storage.is_nonempty_dir(p)
            except Exception as e:  # noqa: BLE001
                log.warning("could not check %s: %s", p, e)
                continue
            if not found:
                raise WarehouseError(f"[PATH_NOT_FOUND] Path does not exist: {p}. SQLSTATE: 42K03", "BAD_REQUEST", "42K03")

    _DML = {
        # kind: (Delta operations, [(result column, [operationMetrics keys summed])])
        "merge": (("MERGE",), [("num_updated_rows", ["numTargetRowsUpdated"]),
                               ("num_deleted_rows", ["numTargetRowsDeleted"]),
                               ("num_inserted_rows", ["numTargetRowsInserted"])]),
        "update": (("UPDATE",), []),
        "delete": (("DELETE", "MERGE"), []),  # DELETE ... WHERE runs as a MERGE (translate.delete_as_merge)
    }
    _DML_AFFECTED = {"merge": None, "update": ["numUpdatedRows"], "delete": ["numDeletedRows", "numTargetRowsDeleted"]}

    def _dml_result(self, kind: str, location, version_before, count) -> Result:
        """Databricks' row counts for MERGE/UPDATE/DELETE, read from the Delta commit's
        operationMetrics (Sail itself reports one `count`, which for DELETE is the rows
        rewritten, not the rows deleted)."""
        ops, parts = self._DML[kind]
        cols = [long_col("num_affected_rows")] + [long_col(name) for name, _ in parts]
        if location is not None:
            dt = self._delta(location)
            if dt.version() == version_before:  # nothing matched: no commit
                return Result(cols, [["0"] * len(cols)])
            hist = dt.history(1)
            if hist and hist[0].get("operation") in ops:
                m = hist[0].get("operationMetrics") or {}
                values = [sum(int(m.get(k, 0)) for k in keys) for _, keys in parts]
                if kind == "merge":
                    affected = sum(values)
                else:
                    key = next((k for k in self._DML_AFFECTED[kind] if k in m), None)
                    affected = int(m[key]) if key else int(count or 0)
                return Result(cols, [[str(affected)] + [str(v) for v in values]])
        return Result(cols, [[_s(count)] + [None] * len(parts)])

    # ---- CREATE / DROP --------------------------------------------------------------
    def _ensure_namespace(self, ns):
        self.sql(f"CREATE DATABASE IF NOT EXISTS {quote_name(ns)}")
        self.catalog.add_schema(ns)

    def _managed_location(self, parts) -> str:
        base = storage.join(self.warehouse_root, *(managed_dir_name(p) for p in parts))
        if not storage.is_nonempty_dir(base):
            return base
        return f"{base}-{uuid.uuid4().hex[:8]}"

    def _create_table(self, plan: CreateTable, ctx: ExecContext) -> Result:
        parts = self.resolve(plan.name, ctx.namespace)
        existing = self.catalog.get(parts)
        if existing and plan.if_not_exists:
            return Result()
        self._ensure_namespace(parts[:-1])
        self._check_sources(plan.source_paths)
        location = None
        managed = not plan.has_location
        if managed:
            location = existing["location"] if existing else self._managed_location(parts)
        self.sql(plan.with_location(location), ctx.args)
        self.columnless.discard(CatalogStore.key(parts))  # Sail registered it with its columns
        if not plan.has_location:
            final_location = location
        else:
            final_location = None
            for r in self.sql(f"DESCRIBE TABLE EXTENDED {quote_name(parts)}").to_pylist():
                if (r.get("col_name") or "").strip().lower() == "location":
                    final_location = r["data_type"]
        if final_location:
            self.catalog.add_table(parts, final_location, managed)
        return Result()

    def _drop_table(self, plan: DropTable, ctx: ExecContext) -> Result:
        parts = self.resolve(plan.name, ctx.namespace)
        self.sql(plan.sql)
        entry = self.catalog.drop_table(parts)
        self.columnless.discard(CatalogStore.key(parts))
        if entry:
            CopyLedger.remove(self.state_dir, entry["location"])
            if entry.get("managed"):
                storage.delete_tree(entry["location"])
        return Result()

    def _schema_ddl(self, plan: SchemaDdl, ctx: ExecContext) -> Result:
        self.sql(plan.sql)
        if plan.action == "create":
            self.catalog.add_schema(plan.name)
        else:
            self.catalog.drop_schema(plan.name)
        return Result()

    # ---- ALTER TABLE ADD COLUMNS ------------------------------------------------------
    def _evolve(self, parts, new_cols: list[tuple[str, str]], replaced: dict[str, str] | None = None):
        """Adds columns (and struct fields) with a MERGE WITH SCHEMA EVOLUTION whose source
        has no rows: a schema-only commit.

        ``new_cols`` are new top-level columns (name, type DDL); ``replaced`` maps existing
        STRUCT columns (lower-cased name) to their widened type DDL (new nested fields).
        (deltalake's alter.add_columns refuses tables with the typeWidening writer feature,
        which is what delta.enableTypeWidening = true turns on; Sail's MERGE handles them.)
        """
        name = quote_name(parts)
        replaced = replaced or {}
        if replaced:
            current = _delta_struct(self._delta(self.location_of(parts)).schema().to_json())
            items = [f"CAST(NULL AS {replaced[f.name.lower()]}) AS {quote_ident(f.name)}" if f.name.lower() in replaced
                     else quote_ident(f.name) for f in current.fields]
        else:
            items = ["*"]
        items += [f"CAST(NULL AS {t}) AS {quote_ident(c)}" for c, t in new_cols]
        self.sql(
            f"MERGE WITH SCHEMA EVOLUTION INTO {name} AS __t "
            f"USING (SELECT {', '.join(items)} FROM {name} LIMIT 0) AS __s ON false WHEN NOT MATCHED THEN INSERT *"
        )
        self.reconcile(parts)

    def _add_columns(self, plan: AddColumns, ctx: ExecContext) -> Result:
        from pyspark.sql import types as T

        parts = self.resolve(plan.target, ctx.namespace)
        location = self.location_of(parts)
        schema = _delta_struct(self._delta(location).schema().to_json())
        original = {f.name.lower() for f in schema.fields}
        changed: set[str] = set()  # existing top-level STRUCT columns that get new fields
        for col in plan.columns:
            # let Sail parse the type: canonical DDL text, and a clear error for a bad type
            dtype = self.schema_of(f"SELECT CAST(NULL AS {col.type_text}) AS c").fields[0].dataType
            path = [*col.parent, col.name]
            holder = _find_struct(schema, col.parent, parts) if col.parent else schema
            if any(f.name.lower() == col.name.lower() for f in holder.fields):
                if plan.if_not_exists:
                    continue
                raise WarehouseError(
                    f"[FIELD_ALREADY_EXISTS] Cannot add column, because {quote_name(path)} already exists in "
                    f"{quote_name(parts)}. SQLSTATE: 42710",
                    "BAD_REQUEST",
                    "42710",
                )
            schema = _with_field(schema, col.parent, T.StructField(col.name, dtype, True))
            if col.parent and col.parent[0].lower() in original:
                changed.add(col.parent[0].lower())
        new_cols = [(f.name, spark_type_ddl(f.dataType)) for f in schema.fields if f.name.lower() not in original]
        replaced = {f.name.lower(): spark_type_ddl(f.dataType) for f in schema.fields if f.name.lower() in changed}
        if new_cols or replaced:
            self._evolve(parts, new_cols, replaced)
        return Result()

    # ---- COPY INTO ------------------------------------------------------------------
    def _copy_into(self, plan: CopyInto, ctx: ExecContext) -> Result:
        if plan.fileformat != "PARQUET":
            raise WarehouseError(
                f"COPY INTO ... FILEFORMAT = {plan.fileformat} is not supported by the local warehouse (only PARQUET)",
                "NOT_IMPLEMENTED",
            )
        parts = self.resolve(plan.target, ctx.namespace)
        location = self.location_of(parts)
        copy_opts = {k.lower(): str(v).lower() for k, v in plan.copy_options.items()}
        force = copy_opts.get("force") == "true"
        merge_schema = copy_opts.get("mergeschema") == "true"

        source = plan.source.rstrip("/")
        if plan.files is not None:
            paths = [f if ("://" in f or f.startswith("/")) else storage.join(source, f) for f in plan.files]
        else:
            paths = storage.list_files(source)
            if plan.pattern:
                paths = [p for p in paths if fnmatch(p[len(source) + 1 :], plan.pattern)]
        paths = list(dict.fromkeys(paths))  # keep order, drop duplicates

        dt = self._delta(location)
        ledger = CopyLedger(self.state_dir, location, dt.metadata().id)
        self._settle_pending(ledger, dt)
        todo = [p for p in paths if force or p not in ledger.files]
        if not todo:
            return Result([long_col("num_affected_rows"), long_col("num_inserted_rows")], [["0", "0"]])

        metas = {}
        for p in todo:
            self._check(ctx)
            try:
                metas[p] = storage.parquet_metadata(p)
            except FileNotFoundError:
                raise WarehouseError(
                    f"[PATH_NOT_FOUND] Path does not exist: {p}. SQLSTATE: 42K03", "BAD_REQUEST", "42K03"
                ) from None
            except OSError as e:
                if "not found" in str(e).lower() or "no such" in str(e).lower() or "404" in str(e):
                    raise WarehouseError(
                        f"[PATH_NOT_FOUND] Path does not exist: {p}. SQLSTATE: 42K03", "BAD_REQUEST", "42K03"
                    ) from None
                raise WarehouseError(f"[CANNOT_READ_FILE] {p}: {e}", "BAD_REQUEST") from None

        target = _delta_struct(dt.schema().to_json())
        if merge_schema:
            have = {f.name.lower() for f in target.fields}
            new_cols: list[tuple[str, str]] = []
            for p in todo:
                file_schema = self.schema_of(self._file_select(p, plan.select_list))
                for f in file_schema.fields:
                    if f.name.lower() not in have:
                        have.add(f.name.lower())
                        new_cols.append((f.name, spark_type_ddl(f.dataType)))
            if new_cols:
                self._evolve(parts, new_cols)
                dt = self._delta(location)
                target = _delta_struct(dt.schema().to_json())

        selects = []
        expected_rows = 0
        for p in todo:
            file_cols = {f.name.lower(): f.name for f in self.schema_of(self._file_select(p, plan.select_list)).fields}
            exprs = []
            for f in target.fields:
                ddl = spark_type_ddl(f.dataType)
                src = file_cols.get(f.name.lower())
                value = f"CAST({quote_ident(src)} AS {ddl})" if src is not None else f"CAST(NULL AS {ddl})"
                exprs.append(f"{value} AS {quote_ident(f.name)}")
            selects.append(f"SELECT {', '.join(exprs)} FROM ({self._file_select(p, plan.select_list)}) AS __f")
            expected_rows += metas[p].num_rows
        self._check(ctx)
        ledger.pending = {"files": todo, "base_version": dt.version(), "rows": expected_rows}
        ledger.save()
        table = self.sql(f"INSERT INTO {quote_name(parts)} " + " UNION ALL ".join(selects))
        inserted = table.column("count")[0].as_py() if "count" in table.column_names and table.num_rows else expected_rows
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        version = self._delta(location).version()
        for p in todo:
            ledger.files[p] = {"version": version, "loaded_at": now}
        ledger.pending = None
        ledger.save()
        return Result([long_col("num_affected_rows"), long_col("num_inserted_rows")], [[str(inserted), str(inserted)]])

    @staticmethod
    def _file_select(path: str, select_list: str | None) -> str:
        return f"SELECT {select_list or '*'} FROM parquet.{quote_ident(sail_path(path))}"

    def _settle_pending(self, ledger: CopyLedger, dt):
        p = ledger.pending
        if not p:
            return
        base = int(p["base_version"])
        committed = False
        if dt.version() > base:
            for h in dt.history(dt.version() - base):
                if int(h.get("version", -1)) == base + 1:
                    rows = int((h.get("operationMetrics") or {}).get("numOutputRows", -1))
                    committed = h.get("operation") == "WRITE" and rows == int(p["rows"])
        if committed:
            for f in p["files"]:
                ledger.files[f] = {"version": base + 1, "loaded_at": "recovered"}
        log.info("COPY INTO ledger %s: pending load of %d file(s) %s", ledger.path, len(p["files"]),
                 "was committed" if committed else "did not commit")
        ledger.pending = None
        ledger.save()

    # ---- Delta log: history, detail, properties, optimize, vacuum ---------------------
    def _delta_info(self, plan: DeltaInfo, ctx: ExecContext) -> Result:
        parts = self.resolve(plan.target, ctx.namespace)
        location = self.location_of(parts)
        dt = self._delta(location)
        if plan.what == "history":
            cols = [long_col("version"), Column("timestamp", "TIMESTAMP", "TIMESTAMP"), string_col("operation"),
                    Column("operationParameters", "MAP", "MAP<STRING, STRING>"), long_col("readVersion"),
                    Column("isBlindAppend", "BOOLEAN", "BOOLEAN"),
                    Column("operationMetrics", "MAP", "MAP<STRING, STRING>"), string_col("userMetadata"),
                    string_col("engineInfo")]
            rows = []
            for h in dt.history(plan.limit):
                ts = h.get("timestamp")
                rows.append([
                    _s(h.get("version")),
                    time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000)) + f".{int(ts % 1000):03d}Z" if ts else None,
                    h.get("operation"),
                    json.dumps({k: str(v) for k, v in (h.get("operationParameters") or {}).items()}),
                    _s(h.get("readVersion")),
                    None if h.get("isBlindAppend") is None else str(bool(h.get("isBlindAppend"))).lower(),
                    json.dumps({k: str(v) for k, v in (h.get("operationMetrics") or {}).items()}),
                    h.get("userMetadata"),
                    h.get("engineInfo"),
                ])
            return Result(cols, rows)
        if plan.what == "detail":
            meta = dt.metadata()
            import pyarrow as pa

            adds = pa.table(dt.get_add_actions(flatten=True)).to_pylist()  # arro3 table -> pyarrow
            proto = dt.protocol()
            cols = [string_col("format"), string_col("id"), string_col("name"), string_col("location"),
                    Column("createdAt", "TIMESTAMP", "TIMESTAMP"), Column("partitionColumns", "ARRAY", "ARRAY<STRING>"),
                    long_col("numFiles"), long_col("sizeInBytes"), Column("properties", "MAP", "MAP<STRING, STRING>"),
                    Column("minReaderVersion", "INT", "INT"), Column("minWriterVersion", "INT", "INT")]
            created = meta.created_time
            return Result(cols, [[
                "delta", meta.id, ".".join(parts), location,
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created / 1000)) + ".000Z" if created else None,
                json.dumps(list(meta.partition_columns)), str(len(adds)),
                str(sum(int(a.get("size_bytes", 0) or 0) for a in adds)),
                json.dumps(dict(meta.configuration or {})), str(proto.min_reader_version), str(proto.min_writer_version),
            ]])
        if plan.what == "tblproperties":
            return Result([string_col("key"), string_col("value")],
                          [[k, v] for k, v in sorted((dt.metadata().configuration or {}).items())])
        if plan.what == "optimize":
            # deltalake's compact() refuses tables with writer features it lacks (TypeWidening,
            # which the product's CREATE TABLE enables); rewriting the table through Sail
            # compacts it the same way, as far as a reader can tell.
            files_before = len(pa_adds(dt))
            try:
                m = dt.optimize.compact()
            except Exception as e:  # noqa: BLE001 - any refusal falls back to a rewrite
                log.info("OPTIMIZE %s: deltalake compact refused (%s); rewriting through Sail", location, e)
                name = quote_name(parts)
                self.sql(f"INSERT OVERWRITE {name} SELECT * FROM {name}")
                m = {"numFilesRemoved": files_before, "numFilesAdded": len(pa_adds(self._delta(location))),
                     "method": "rewrite"}
            return Result([string_col("path"), string_col("metrics")], [[location, json.dumps(m, default=str)]])
        if plan.what == "vacuum":
            hours = None if plan.retain_hours is None else int(plan.retain_hours)
            files = dt.vacuum(retention_hours=hours, dry_run=plan.dry_run, enforce_retention_duration=hours is None or hours >= 168)
            return Result([string_col("path")], [[f] for f in files] if plan.dry_run else [[location]])
        raise WarehouseError(f"unsupported {plan.what}", "INTERNAL_ERROR")


def pa_adds(dt) -> list:
    """The add actions (live data files) of a Delta table."""
    import pyarrow as pa

    return pa.table(dt.get_add_actions(flatten=True)).to_pylist()


def _s(v) -> str | None:
    return None if v is None else str(v)
