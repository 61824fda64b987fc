"""Arrow results -> the Statement Execution API's manifest columns and JSON_ARRAY rows.

Databricks' JSON_ARRAY format sends every value as a string (or null): numbers in plain
decimal notation, booleans as ``true``/``false``, dates as ``YYYY-MM-DD``, timestamps as
ISO 8601 in UTC with a ``Z``, binary as base64, and arrays, maps and structs as JSON text.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.types as pt


@dataclass
class Column:
    name: str
    type_name: str
    type_text: str
    extra: dict = field(default_factory=dict)

    def to_json(self, position: int) -> dict:
        d = {"name": self.name, "type_name": self.type_name, "type_text": self.type_text, "position": position}
        d.update(self.extra)
        return d


@dataclass
class Result:
    columns: list[Column] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)


def long_col(name: str) -> Column:
    return Column(name, "LONG", "BIGINT")


def string_col(name: str) -> Column:
    return Column(name, "STRING", "STRING")


def type_of(t: pa.DataType) -> tuple[str, str, dict]:
    """(type_name, type_text, extra) for an Arrow type, as Databricks names the Spark type."""
    if pt.is_boolean(t):
        return "BOOLEAN", "BOOLEAN", {}
    if pt.is_int8(t):
        return "BYTE", "TINYINT", {}
    if pt.is_int16(t):
        return "SHORT", "SMALLINT", {}
    if pt.is_int32(t):
        return "INT", "INT", {}
    if pt.is_int64(t):
        return "LONG", "BIGINT", {}
    if pt.is_unsigned_integer(t):
        return "LONG", "BIGINT", {}
    if pt.is_float32(t):
        return "FLOAT", "FLOAT", {}
    if pt.is_float64(t) or pt.is_float16(t):
        return "DOUBLE", "DOUBLE", {}
    if pt.is_decimal(t):
        return "DECIMAL", f"DECIMAL({t.precision},{t.scale})", {"type_precision": t.precision, "type_scale": t.scale}
    if pt.is_string(t) or pt.is_large_string(t) or (hasattr(pt, "is_string_view") and pt.is_string_view(t)):
        return "STRING", "STRING", {}
    if pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t) or (
        hasattr(pt, "is_binary_view") and pt.is_binary_view(t)
    ):
        return "BINARY", "BINARY", {}
    if pt.is_date(t):
        return "DATE", "DATE", {}
    if pt.is_timestamp(t):
        return ("TIMESTAMP", "TIMESTAMP", {}) if t.tz else ("TIMESTAMP_NTZ", "TIMESTAMP_NTZ", {})
    if pt.is_duration(t):
        return "INTERVAL", "INTERVAL DAY TO SECOND", {}
    if pt.is_interval(t):
        return "INTERVAL", "INTERVAL", {}
    if pt.is_null(t):
        return "NULL", "VOID", {}
    if pt.is_map(t):
        return "MAP", f"MAP<{type_of(t.key_type)[1]}, {type_of(t.item_type)[1]}>", {}
    if pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t) or (
        hasattr(pt, "is_list_view") and pt.is_list_view(t)
    ):
        return "ARRAY", f"ARRAY<{type_of(t.value_type)[1]}>", {}
    if pt.is_struct(t):
        inner = ", ".join(f"{t.field(i).name}: {type_of(t.field(i).type)[1]}" for i in range(t.num_fields))
        return "STRUCT", f"STRUCT<{inner}>", {}
    return "STRING", str(t).upper(), {}


def _timestamp(v: _dt.datetime, tz: bool) -> str:
    if tz:
        v = v.astimezone(_dt.timezone.utc)
    frac = v.microsecond
    text = v.strftime("%Y-%m-%dT%H:%M:%S") if v.year >= 1000 else f"{v.year:04d}" + v.strftime("-%m-%dT%H:%M:%S")
    text += f".{frac // 1000:03d}" if frac % 1000 == 0 else f".{frac:06d}"
    return text + ("Z" if tz else "")


def _float(v: float, single: bool) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if single:
        import numpy as np

        return str(np.float32(v))
    return repr(v)


def _duration(v: _dt.timedelta) -> str:
    return str(v)


def _json_value(v, t: pa.DataType) -> str:
    """JSON text for a value nested in an array, map or struct."""
    if v is None:
        return "null"
    if pt.is_boolean(t):
        return "true" if v else "false"
    if pt.is_integer(t):
        return str(int(v))
    if pt.is_floating(t):
        s = _float(float(v), pt.is_float32(t))
        return s if s not in ("NaN", "Infinity", "-Infinity") else json.dumps(s)
    if pt.is_decimal(t):
        return format(Decimal(v), "f")
    if pt.is_map(t):
        items = v.items() if isinstance(v, dict) else v
        return "{" + ",".join(f"{json.dumps(str(k))}:{_json_value(x, t.item_type)}" for k, x in items) + "}"
    if pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t):
        return "[" + ",".join(_json_value(x, t.value_type) for x in v) + "]"
    if pt.is_struct(t):
        return (
            "{"
            + ",".join(f"{json.dumps(t.field(i).name)}:{_json_value(v.get(t.field(i).name), t.field(i).type)}" for i in range(t.num_fields))
            + "}"
        )
    return json.dumps(_scalar(v, t))


def _scalar(v, t: pa.DataType) -> str:
    if pt.is_boolean(t):
        return "true" if v else "false"
    if pt.is_integer(t):
        return str(int(v))
    if pt.is_floating(t):
        return _float(float(v), pt.is_float32(t))
    if pt.is_decimal(t):
        return format(Decimal(v), "f")
    if pt.is_timestamp(t):
        return _timestamp(v, bool(t.tz)) if isinstance(v, _dt.datetime) else str(v)
    if pt.is_date(t):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, _dt.timedelta):
        return _duration(v)
    return str(v)


def format_value(v, t: pa.DataType) -> str | None:
    if v is None:
        return None
    if pt.is_nested(t):
        return _json_value(v, t)
    return _scalar(v, t)


def from_arrow(table: pa.Table, row_limit: int | None = None) -> Result:
    res = Result()
    for f in table.schema:
        name, text, extra = type_of(f.type)
        res.columns.append(Column(f.name, name, text, extra))
    if row_limit is not None:
        table = table.slice(0, row_limit)
    cols = []
    for i, f in enumerate(table.schema):
        try:
            values = table.column(i).to_pylist()
        except (ValueError, OverflowError):  # e.g. timestamps outside Python's datetime range
            values = table.column(i).cast(pa.string()).to_pylist()
            cols.append(values)
            continue
        cols.append([format_value(v, f.type) for v in values])
    res.rows = [list(r) for r in zip(*cols)] if cols else []
    return res
