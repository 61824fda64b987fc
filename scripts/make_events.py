#!/usr/bin/env python3
"""Generate the sample Lambda events in events/ (deterministic: same bytes on every run).

    .venv/bin/python scripts/make_events.py                 # write every committed sample
    .venv/bin/python scripts/make_events.py --check         # exit 1 if a file differs from a fresh run
    .venv/bin/python scripts/make_events.py --only avro,bad-records
    .venv/bin/python scripts/make_events.py --only large --out /tmp/msk-large-batch.json
    .venv/bin/python scripts/make_events.py --list          # names, paths, record counts

Every file is built in memory from fixed seeds and fixed timestamps, checked (valid JSON,
base64 that decodes, JSON values that parse, Connect decimals that decode, Avro bodies that
read back with fastavro against the schemas in events/schemas/, bad records that fail the
way they are meant to) and only then written. `events/README.md` is generated too, with the
record counts and offset ranges taken from the generated data.

The ~6 MB benchmark batch (`large`) is not written by default: generate it with
`--only large` (default output target/events/msk-large-batch.json, or `--out PATH`).

Kafka events have the shape the Lambda event source mapping delivers (Amazon MSK
`aws:kafka`, or `SelfManagedKafka`): records grouped by `<topic>-<partition>`, in offset order,
key/value base64 (absent for no key / a tombstone), header values as arrays of signed bytes,
integer millisecond timestamps. Change events are what Debezium 2.5's PostgreSQL connector
writes with JsonConverter (schemas.enable false or true) or Confluent's AvroConverter.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import random
import struct
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote_plus, unquote_plus

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
LARGE_DEFAULT_OUT = ROOT / "target" / "events" / "msk-large-batch.json"

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "deltasink-local"
MSK_ARN = (
    f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/demo-cluster/"
    "3f2a9c1e-7b4d-4e8a-9f61-2c5d8e0b7a43-1"
)
MSK_BOOTSTRAP = ",".join(
    f"b-{i}.demo-cluster.k7x2qp.c2.kafka.{REGION}.amazonaws.com:9098" for i in (1, 2, 3)
)
SELF_MANAGED_BOOTSTRAP = "kafka-1.internal.example.com:9092,kafka-2.internal.example.com:9092"

DEBEZIUM_VERSION = "2.5.0.Final"
# 2023-11-14T22:13:20Z: the snapshot of the sample database starts here.
T0_MS = 1_700_000_000_000

KEY_SCHEMA_ID = 101
VALUE_SCHEMA_ID = 102
UNKNOWN_SCHEMA_ID = 9999
PAYMENTS_TOPIC = "shop.public.payments"


def need_fastavro():
    try:
        import fastavro  # noqa: F401
    except ImportError:
        sys.exit(
            "make_events.py needs fastavro: run scripts/venv.sh and use .venv/bin/python "
            "(or `python3 -m venv /tmp/evvenv && /tmp/evvenv/bin/pip install fastavro`)"
        )
    import fastavro

    return fastavro


# --------------------------------------------------------------------------------------------
# Encoding helpers


def compact(obj: Any) -> bytes:
    """JSON as Kafka Connect's JsonConverter and most producers write it: no whitespace."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def signed(data: bytes) -> list[int]:
    return [b - 256 if b > 127 else b for b in data]


def pretty(obj: Any, indent: int = 0) -> str:
    """Indented JSON with lists of scalars kept on one line (header byte arrays stay short)."""
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [
            f'{pad}  {json.dumps(k, ensure_ascii=False)}: {pretty(v, indent + 2)}'
            for k, v in obj.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if not obj:
            return "[]"
        if all(not isinstance(x, (dict, list)) for x in obj):
            return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in obj) + "]"
        items = [pad + "  " + pretty(v, indent + 2) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def decimal_bytes(unscaled: int) -> bytes:
    """Big-endian two's complement, minimal length: Java's BigInteger.toByteArray()."""
    length = (unscaled if unscaled >= 0 else ~unscaled).bit_length() // 8 + 1
    return unscaled.to_bytes(length, "big", signed=True)


def iso_ms(ms: int) -> str:
    """AWS event time: 2023-11-14T22:13:20.123Z."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_s(ms: int) -> str:
    """EventBridge time: whole seconds, 2023-11-14T22:13:20Z."""
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def zoned_timestamp(micros: int) -> str:
    """io.debezium.time.ZonedTimestamp text (Java ISO_OFFSET_DATE_TIME: fraction without
    trailing zeros, `Z` for UTC)."""
    dt = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{micros % 1_000_000:06d}".rstrip("0")
    return text + (f".{frac}" if frac else "") + "Z"


def micros_at(year: int, month: int, day: int, rng: random.Random) -> int:
    dt = datetime(year, month, day, tzinfo=timezone.utc) + timedelta(
        seconds=rng.randrange(86_400), microseconds=rng.randrange(1_000_000)
    )
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def det_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hex_id(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(n))


def money(rng: random.Random, lo: int, hi: int) -> int:
    """A random amount in cents."""
    return rng.randrange(lo * 100, hi * 100)


def cents_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


# --------------------------------------------------------------------------------------------
# Kafka events


@dataclass
class Rec:
    """One Kafka record before it is put in an event. `value=None` is a tombstone; `bad` says
    why the record is meant to fail (the verifier checks that it does)."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp_type: str = "CREATE_TIME"
    offset: int = -1
    raw_value: str | None = None  # a literal (possibly invalid) base64 text for the value
    bad: str | None = None
    op: str | None = None  # the Debezium op, for the summary


class Log:
    """Kafka partitions: hands out consecutive offsets per topic-partition."""

    def __init__(self, bases: dict[tuple[str, int], int]):
        self.next = dict(bases)
        self.records: list[Rec] = []

    def append(self, rec: Rec) -> Rec:
        k = (rec.topic, rec.partition)
        rec.offset = self.next[k]
        self.next[k] += 1
        self.records.append(rec)
        return rec


def record_json(rec: Rec) -> dict:
    r: dict[str, Any] = {
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "timestamp": rec.timestamp,
        "timestampType": rec.timestamp_type,
    }
    if rec.key is not None:
        r["key"] = b64(rec.key)
    if rec.raw_value is not None:
        r["value"] = rec.raw_value
    elif rec.value is not None:
        r["value"] = b64(rec.value)
    r["headers"] = [{k: signed(v)} for k, v in rec.headers]
    return r


def kafka_event(records: list[Rec], self_managed: bool = False) -> dict:
    groups: dict[str, list[dict]] = {}
    for rec in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        groups.setdefault(f"{rec.topic}-{rec.partition}", []).append(record_json(rec))
    event: dict[str, Any] = {"eventSource": "SelfManagedKafka" if self_managed else "aws:kafka"}
    if not self_managed:
        event["eventSourceArn"] = MSK_ARN
    event["bootstrapServers"] = SELF_MANAGED_BOOTSTRAP if self_managed else MSK_BOOTSTRAP
    event["records"] = groups
    return event


# --------------------------------------------------------------------------------------------
# A PostgreSQL database as Debezium sees it: transactions with txId, LSN and commit time.


class Postgres:
    def __init__(self, rng: random.Random, lsn: int, tx_id: int, start_ms: int, db: str = "shop"):
        self.rng = rng
        self.lsn = lsn
        self.last_commit_lsn: int | None = None
        self.tx_id = tx_id
        self.now_ms = start_ms
        self.db = db
        self.snapshot_lsn = lsn
        self.snapshot_tx = tx_id
        self.snapshot_ms = start_ms
        self.emitted_ms = start_ms

    def source(self, table: str, snapshot: str, ts_ms: int, tx_id: int, lsn: int,
               seq_prev: int | None) -> dict:
        return {
            "version": DEBEZIUM_VERSION,
            "connector": "postgresql",
            "name": self.db,
            "ts_ms": ts_ms,
            "snapshot": snapshot,
            "db": self.db,
            "sequence": compact([None if seq_prev is None else str(seq_prev), str(lsn)]).decode(),
            "schema": "public",
            "table": table,
            "txId": tx_id,
            "lsn": lsn,
            "xmin": None,
        }

    def snapshot_source(self, table: str, marker: str) -> dict:
        return self.source(table, marker, self.snapshot_ms, self.snapshot_tx, self.snapshot_lsn, None)

    def commit(self, table: str, gap_ms: int | None = None) -> dict:
        """A new streamed transaction; returns its source block."""
        self.tx_id += self.rng.randrange(1, 4)
        prev = self.last_commit_lsn if self.last_commit_lsn is not None else self.lsn
        self.lsn += self.rng.randrange(200, 3000) // 8 * 8
        self.now_ms += gap_ms if gap_ms is not None else self.rng.randrange(400, 9000)
        src = self.source(table, "false", self.now_ms, self.tx_id, self.lsn, prev)
        self.last_commit_lsn = self.lsn
        return src

    def emit_ms(self, source_ts: int) -> int:
        """Connector processing time (envelope ts_ms): after the commit, never backwards."""
        self.emitted_ms = max(self.emitted_ms + 1, source_ts + self.rng.randrange(20, 180))
        return self.emitted_ms


def envelope(before, after, source, op, ts_ms) -> dict:
    return {"before": before, "after": after, "source": source, "op": op, "ts_ms": ts_ms,
            "transaction": None}


def snapshot_markers(n: int) -> list[str]:
    return ["first"] + ["true"] * (n - 2) + ["last"] if n >= 2 else ["last"] * n


# --------------------------------------------------------------------------------------------
# 1. Debezium JSON (schemas.enable=false): shop.public.customers

CITIES = [("Lisbon", "1100-148"), ("Porto", "4000-322"), ("Berlin", "10115"), ("Madrid", "28013"),
          ("Lyon", "69002"), ("Milan", "20121"), ("Vienna", "1010"), ("Ghent", "9000"),
          ("Austin", "78701"), ("Denver", "80202"), ("Toronto", "M5V 2T6"), ("Oslo", "0150")]
FIRST = ["Ana", "Bruno", "Chloé", "Dmitri", "Eva", "Farid", "Greta", "Hiro", "Ines", "Jonas",
         "Kofi", "Lena", "Marta", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara",
         "Uma", "Victor", "Wen", "Xavier", "Yara", "Zoë"]
LAST = ["Silva", "Costa", "Müller", "Ivanova", "García", "Rossi", "Novak", "Tanaka", "Okafor",
        "Berg", "Dubois", "Kowalski", "O'Brien", "Haddad", "Larsen", "Nguyen"]
TAGS = ["vip", "newsletter", "b2b", "churn-risk", "beta", "wholesale", "referral"]


class Customers:
    """The customers table and the change events its rows produce."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.rows: dict[int, dict] = {}

    def new_row(self, cid: int, created_micros: int | None = None) -> dict:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, zipc = rng.choice(CITIES)
        handle = (first + "." + last).lower().replace("'", "").replace("ü", "u").replace(
            "é", "e").replace("ë", "e")
        return {
            "id": cid,
            "email": f"{handle}{cid}@example.com",
            "name": f"{first} {last}",
            "loyalty_points": rng.randrange(0, 500),
            "balance": cents_text(money(rng, 0, 300)),
            "created_at": created_micros if created_micros is not None
            else micros_at(2023, rng.randrange(1, 11), rng.randrange(1, 28), rng),
            "tags": sorted(rng.sample(TAGS, rng.randrange(0, 3))),
            "address": {"city": city, "zip": zipc},
        }

    def mutate(self, row: dict, what: str) -> dict:
        rng = self.rng
        new = json.loads(json.dumps(row))
        if what == "points":
            new["loyalty_points"] += rng.randrange(10, 120)
        elif what == "balance":
            new["balance"] = cents_text(money(rng, 0, 400))
        elif what == "email":
            new["email"] = new["email"].replace("@example.com", "@mail.example.org")
        elif what == "name":
            new["name"] = new["name"] + "-" + rng.choice(LAST)
        elif what == "tags":
            new["tags"] = sorted(set(new["tags"]) | {rng.choice(TAGS)})
        elif what == "no-tags":
            new["tags"] = []
        elif what == "address":
            city, zipc = rng.choice(CITIES)
            new["address"] = {"city": city, "zip": zipc}
        elif what == "no-address":
            new["address"] = None
        else:
            raise ValueError(what)
        return new


def debezium_json_customers(pg: Postgres, table: Customers, log: Log, topic: str, nparts: int,
                            script: list[tuple]) -> None:
    """Plays a script of changes against the customers table into Kafka records."""

    def put(cid: int, value: dict | None, ts: int, op: str | None):
        log.append(Rec(topic, cid % nparts, compact({"id": cid}),
                       None if value is None else compact(value), ts, op=op))

    for step in script:
        kind = step[0]
        if kind == "snapshot":
            ids = step[1]
            for cid, marker in zip(ids, snapshot_markers(len(ids))):
                row = table.rows.setdefault(cid, table.new_row(cid))
                src = pg.snapshot_source("customers", marker)
                ts = pg.emit_ms(src["ts_ms"] + 100)
                put(cid, envelope(None, row, src, "r", ts), ts + 1, "r")
        elif kind == "c":
            cid = step[1]
            src = pg.commit("customers")
            row = table.new_row(cid, created_micros=src["ts_ms"] * 1000 + pg.rng.randrange(1000))
            table.rows[cid] = row
            ts = pg.emit_ms(src["ts_ms"])
            put(cid, envelope(None, row, src, "c", ts), ts + 1, "c")
        elif kind == "u":
            cid, what = step[1], step[2]
            src = pg.commit("customers")
            before = table.rows[cid]
            after = table.mutate(before, what)
            table.rows[cid] = after
            ts = pg.emit_ms(src["ts_ms"])
            put(cid, envelope(before, after, src, "u", ts), ts + 1, "u")
        elif kind == "d":
            cid = step[1]
            src = pg.commit("customers")
            before = table.rows.pop(cid)
            ts = pg.emit_ms(src["ts_ms"])
            put(cid, envelope(before, None, src, "d", ts), ts + 1, "d")
            # Debezium's tombstone (tombstones.on.delete=true): same key, no value.
            put(cid, None, ts + 1, None)
        else:
            raise ValueError(kind)


def gen_debezium_json() -> dict:
    rng = random.Random(1001)
    pg = Postgres(rng, lsn=24_023_128, tx_id=767, start_ms=T0_MS)
    table = Customers(rng)
    topic = "shop.public.customers"
    log = Log({(topic, 0): 0, (topic, 1): 0})
    script = [
        ("snapshot", list(range(1, 13))),
        ("c", 13), ("c", 14), ("u", 2, "points"), ("c", 15), ("u", 3, "email"), ("c", 16),
        ("u", 8, "tags"), ("d", 5), ("c", 17), ("u", 2, "balance"), ("c", 18), ("d", 8),
        ("u", 14, "address"), ("c", 19), ("u", 3, "name"), ("c", 20), ("u", 2, "tags"),
        ("c", 5),  # re-insert of the deleted key
        ("u", 11, "no-tags"), ("u", 4, "points"), ("u", 13, "no-address"), ("u", 20, "balance"),
        ("u", 10, "email"), ("u", 7, "address"), ("u", 9, "points"), ("u", 15, "tags"),
        ("u", 17, "balance"),
    ]
    debezium_json_customers(pg, table, log, topic, 2, script)
    return kafka_event(log.records) | {"_records": log.records}


# --------------------------------------------------------------------------------------------
# 2. Debezium Connect JSON (schemas.enable=true): shop.public.orders

def connect_field(ftype: str, field_name: str, optional: bool, **extra) -> dict:
    """A field of a Connect struct schema, keys in JsonConverter's order."""
    out: dict[str, Any] = {"type": ftype, "optional": optional}
    for k in ("name", "version", "parameters", "default"):
        if k in extra:
            out[k] = extra.pop(k)
    check(not extra, f"unexpected {extra}")
    out["field"] = field_name
    return out


def connect_source_schema() -> dict:
    return {
        "type": "struct",
        "fields": [
            connect_field("string", "version", False),
            connect_field("string", "connector", False),
            connect_field("string", "name", False),
            connect_field("int64", "ts_ms", False),
            connect_field("string", "snapshot", True, name="io.debezium.data.Enum", version=1,
                          parameters={"allowed": "true,last,false,incremental"},
                          default="false"),
            connect_field("string", "db", False),
            connect_field("string", "sequence", True),
            connect_field("string", "schema", False),
            connect_field("string", "table", False),
            connect_field("int64", "txId", True),
            connect_field("int64", "lsn", True),
            connect_field("int64", "xmin", True),
        ],
        "optional": False,
        "name": "io.debezium.connector.postgresql.Source",
        "field": "source",
    }


def connect_transaction_schema() -> dict:
    return {
        "type": "struct",
        "fields": [
            connect_field("string", "id", False),
            connect_field("int64", "total_order", False),
            connect_field("int64", "data_collection_order", False),
        ],
        "optional": True,
        "name": "event.block",
        "version": 1,
        "field": "transaction",
    }


def orders_connect_schemas(topic: str) -> tuple[dict, dict]:
    key = {
        "type": "struct",
        "fields": [connect_field("int64", "id", False, default=0)],
        "optional": False,
        "name": f"{topic}.Key",
    }
    row_fields = [
        connect_field("int64", "id", False, default=0),
        connect_field("int32", "customer_id", False),
        connect_field("bytes", "amount", False, name="org.apache.kafka.connect.data.Decimal",
                      version=1, parameters={"scale": "2", "connect.decimal.precision": "10"}),
        connect_field("string", "status", False, default="pending"),
        connect_field("int64", "ordered_at", False, name="io.debezium.time.MicroTimestamp",
                      version=1, default=0),
        connect_field("string", "updated_at", True, name="io.debezium.time.ZonedTimestamp",
                      version=1),
        connect_field("int32", "ship_date", True, name="io.debezium.time.Date", version=1),
        connect_field("string", "note", True),
    ]

    def row(name: str) -> dict:
        return {"type": "struct", "fields": row_fields, "optional": True,
                "name": f"{topic}.Value", "field": name}

    value = {
        "type": "struct",
        "fields": [
            row("before"),
            row("after"),
            connect_source_schema(),
            connect_field("string", "op", False),
            connect_field("int64", "ts_ms", True),
            connect_transaction_schema(),
        ],
        "optional": False,
        "name": f"{topic}.Envelope",
        "version": 1,
    }
    return key, value


STATUSES = ["pending", "paid", "packed", "shipped", "delivered"]
NOTES = ["leave at the door", "gift wrap, no invoice in the box", "call before delivery",
         "fragile ☕ mugs", None]


def gen_debezium_connect() -> dict:
    rng = random.Random(2002)
    topic = "shop.public.orders"
    nparts = 3
    pg = Postgres(rng, lsn=24_105_344, tx_id=812, start_ms=T0_MS + 5_000)
    log = Log({(topic, 0): 1000, (topic, 1): 2000, (topic, 2): 3000})
    key_schema, value_schema = orders_connect_schemas(topic)
    rows: dict[int, dict] = {}

    def payload_row(r: dict) -> dict:
        return {
            "id": r["id"],
            "customer_id": r["customer_id"],
            "amount": b64(decimal_bytes(r["amount_cents"])),
            "status": r["status"],
            "ordered_at": r["ordered_at"],
            "updated_at": None if r["updated_at"] is None else zoned_timestamp(r["updated_at"]),
            "ship_date": r["ship_date"],
            "note": r["note"],
        }

    def put(oid: int, env: dict | None, ts: int, op: str | None):
        key = compact({"schema": key_schema, "payload": {"id": oid}})
        value = None if env is None else compact({"schema": value_schema, "payload": env})
        log.append(Rec(topic, oid % nparts, key, value, ts, op=op))

    def new_order(oid: int, at_ms: int) -> dict:
        micros = at_ms * 1000 + rng.randrange(1000)
        return {"id": oid, "customer_id": rng.randrange(1, 21),
                "amount_cents": money(rng, 5, 900), "status": "pending",
                "ordered_at": micros, "updated_at": micros, "ship_date": None,
                "note": rng.choice(NOTES)}

    # Snapshot of the existing orders.
    ids = list(range(1001, 1007))
    for oid, marker in zip(ids, snapshot_markers(len(ids))):
        rows[oid] = new_order(oid, T0_MS - rng.randrange(86_400_000, 20 * 86_400_000))
        rows[oid]["status"] = rng.choice(STATUSES[:3])
        src = pg.snapshot_source("orders", marker)
        ts = pg.emit_ms(src["ts_ms"] + 100)
        put(oid, envelope(None, payload_row(rows[oid]), src, "r", ts), ts + 2, "r")

    def insert(oid: int):
        src = pg.commit("orders")
        rows[oid] = new_order(oid, src["ts_ms"])
        ts = pg.emit_ms(src["ts_ms"])
        put(oid, envelope(None, payload_row(rows[oid]), src, "c", ts), ts + 2, "c")

    def update(oid: int, change: Callable[[dict, int], None]):
        src = pg.commit("orders")
        before = payload_row(rows[oid])
        change(rows[oid], src["ts_ms"])
        rows[oid]["updated_at"] = src["ts_ms"] * 1000 + rng.randrange(1000)
        ts = pg.emit_ms(src["ts_ms"])
        put(oid, envelope(before, payload_row(rows[oid]), src, "u", ts), ts + 2, "u")

    def delete(oid: int):
        src = pg.commit("orders")
        before = payload_row(rows.pop(oid))
        ts = pg.emit_ms(src["ts_ms"])
        put(oid, envelope(before, None, src, "d", ts), ts + 2, "d")
        put(oid, None, ts + 2, None)

    def advance(r: dict, now_ms: int):
        r["status"] = STATUSES[min(STATUSES.index(r["status"]) + 1, len(STATUSES) - 1)]
        if r["status"] == "shipped":
            r["ship_date"] = now_ms // 86_400_000 + 1

    def reprice(r: dict, _now: int):
        r["amount_cents"] = r["amount_cents"] - money(rng, 1, 5)

    def set_note(r: dict, _now: int):
        r["note"] = None if r["note"] else "customer asked for an update"

    for oid in range(1007, 1011):
        insert(oid)
    update(1001, advance)
    update(1007, advance)
    update(1002, reprice)
    insert(1011)
    update(1001, advance)
    update(1004, set_note)
    delete(1003)  # partition 1
    insert(1012)
    update(1007, advance)
    update(1008, advance)
    insert(1013)
    update(1005, advance)
    update(1002, advance)
    insert(1014)
    update(1009, set_note)
    update(1010, reprice)
    update(1006, advance)  # partition 1, after the tombstone of 1003
    update(1011, advance)
    update(1013, advance)
    return kafka_event(log.records) | {"_records": log.records}


# --------------------------------------------------------------------------------------------
# 3. Confluent Avro: shop.public.payments

def avro_schemas(topic: str) -> tuple[dict, dict]:
    """The key and value schemas as Confluent's AvroConverter derives them from Debezium's
    Connect schemas (connect.meta.data on: connect.name/version/parameters/default)."""
    ns = topic
    key = {
        "type": "record",
        "name": "Key",
        "namespace": ns,
        "fields": [{"name": "id", "type": {"type": "long", "connect.default": 0}, "default": 0}],
        "connect.name": f"{topic}.Key",
    }
    value_record = {
        "type": "record",
        "name": "Value",
        "fields": [
            {"name": "id", "type": {"type": "long", "connect.default": 0}, "default": 0},
            {"name": "order_id", "type": "long"},
            {"name": "amount", "type": {
                "type": "bytes", "scale": 2, "precision": 12, "connect.version": 1,
                "connect.parameters": {"scale": "2", "connect.decimal.precision": "12"},
                "connect.name": "org.apache.kafka.connect.data.Decimal",
                "logicalType": "decimal"}},
            {"name": "currency", "type": "string"},
            {"name": "method", "type": {
                "type": "string", "connect.version": 1,
                "connect.parameters": {"allowed": "card,bank_transfer,wallet"},
                "connect.name": "io.debezium.data.Enum"}},
            {"name": "status", "type": {"type": "string", "connect.default": "pending"},
             "default": "pending"},
            {"name": "paid_at", "type": {
                "type": "long", "connect.version": 1,
                "connect.name": "io.debezium.time.MicroTimestamp"}},
            {"name": "captured", "type": "boolean"},
            {"name": "updated_at", "type": ["null", {
                "type": "string", "connect.version": 1,
                "connect.name": "io.debezium.time.ZonedTimestamp"}], "default": None},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
        "connect.name": f"{topic}.Value",
    }
    source = {
        "type": "record",
        "name": "Source",
        "namespace": "io.debezium.connector.postgresql",
        "fields": [
            {"name": "version", "type": "string"},
            {"name": "connector", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "ts_ms", "type": "long"},
            {"name": "snapshot", "type": [{
                "type": "string", "connect.version": 1,
                "connect.parameters": {"allowed": "true,last,false,incremental"},
                "connect.default": "false", "connect.name": "io.debezium.data.Enum"}, "null"],
             "default": "false"},
            {"name": "db", "type": "string"},
            {"name": "sequence", "type": ["null", "string"], "default": None},
            {"name": "schema", "type": "string"},
            {"name": "table", "type": "string"},
            {"name": "txId", "type": ["null", "long"], "default": None},
            {"name": "lsn", "type": ["null", "long"], "default": None},
            {"name": "xmin", "type": ["null", "long"], "default": None},
        ],
        "connect.name": "io.debezium.connector.postgresql.Source",
    }
    block = {
        "type": "record",
        "name": "block",
        "namespace": "event",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "total_order", "type": "long"},
            {"name": "data_collection_order", "type": "long"},
        ],
        "connect.version": 1,
        "connect.name": "event.block",
    }
    value = {
        "type": "record",
        "name": "Envelope",
        "namespace": ns,
        "fields": [
            {"name": "before", "type": ["null", value_record], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "source", "type": source},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": None},
            {"name": "transaction", "type": ["null", block], "default": None},
        ],
        "connect.version": 1,
        "connect.name": f"{topic}.Envelope",
    }
    return key, value


def subject_files() -> dict[str, tuple[int, dict]]:
    key, value = avro_schemas(PAYMENTS_TOPIC)
    return {
        f"{KEY_SCHEMA_ID}-{PAYMENTS_TOPIC}-key.avsc": (KEY_SCHEMA_ID, key),
        f"{VALUE_SCHEMA_ID}-{PAYMENTS_TOPIC}-value.avsc": (VALUE_SCHEMA_ID, value),
    }


class AvroCodec:
    def __init__(self):
        fastavro = need_fastavro()
        self.fastavro = fastavro
        key, value = avro_schemas(PAYMENTS_TOPIC)
        self.key = fastavro.parse_schema(key)
        self.value = fastavro.parse_schema(value)

    def encode(self, schema_id: int, parsed, datum) -> bytes:
        buf = io.BytesIO()
        self.fastavro.schemaless_writer(buf, parsed, datum)
        return b"\x00" + struct.pack(">I", schema_id) + buf.getvalue()

    def key_bytes(self, pid: int) -> bytes:
        return self.encode(KEY_SCHEMA_ID, self.key, {"id": pid})

    def value_bytes(self, env: dict, schema_id: int = VALUE_SCHEMA_ID) -> bytes:
        return self.encode(schema_id, self.value, env)


METHODS = ["card", "bank_transfer", "wallet"]
CURRENCIES = ["EUR", "USD", "GBP"]


class Payments:
    def __init__(self, rng: random.Random, pg: Postgres, codec: AvroCodec, log: Log, nparts: int):
        self.rng, self.pg, self.codec, self.log, self.nparts = rng, pg, codec, log, nparts
        self.rows: dict[int, dict] = {}

    def new_row(self, pid: int, at_ms: int, refund_of: int | None = None) -> dict:
        rng = self.rng
        amount = -money(rng, 5, 60) if refund_of else money(rng, 5, 900)
        return {
            "id": pid,
            "order_id": rng.randrange(1001, 1015),
            "amount": Decimal(amount).scaleb(-2),
            "currency": rng.choice(CURRENCIES),
            "method": rng.choice(METHODS),
            "status": "refunded" if refund_of else "pending",
            "paid_at": at_ms * 1000 + rng.randrange(1000),
            "captured": False,
            "updated_at": None,
            "note": f"refund of payment {refund_of}" if refund_of else None,
        }

    def put(self, pid: int, env: dict | None, ts: int, op: str | None, **kw) -> Rec:
        value = None if env is None else self.codec.value_bytes(env)
        return self.log.append(Rec(PAYMENTS_TOPIC, pid % self.nparts, self.codec.key_bytes(pid),
                                   value, ts, op=op, **kw))

    def snapshot(self, ids: list[int]):
        for pid, marker in zip(ids, snapshot_markers(len(ids))):
            row = self.new_row(pid, T0_MS - self.rng.randrange(3_600_000, 5 * 86_400_000))
            row["status"], row["captured"] = "captured", True
            self.rows[pid] = row
            src = self.pg.snapshot_source("payments", marker)
            ts = self.pg.emit_ms(src["ts_ms"] + 100)
            self.put(pid, envelope(None, dict(row), src, "r", ts), ts + 3, "r")

    def insert(self, pid: int, refund_of: int | None = None):
        src = self.pg.commit("payments")
        row = self.new_row(pid, src["ts_ms"], refund_of)
        self.rows[pid] = row
        ts = self.pg.emit_ms(src["ts_ms"])
        self.put(pid, envelope(None, dict(row), src, "c", ts), ts + 3, "c")

    def capture(self, pid: int):
        src = self.pg.commit("payments")
        before = dict(self.rows[pid])
        row = self.rows[pid]
        row["status"], row["captured"] = "captured", True
        row["updated_at"] = zoned_timestamp(src["ts_ms"] * 1000 + self.rng.randrange(1000))
        ts = self.pg.emit_ms(src["ts_ms"])
        self.put(pid, envelope(before, dict(row), src, "u", ts), ts + 3, "u")

    def delete(self, pid: int):
        src = self.pg.commit("payments")
        before = self.rows.pop(pid)
        ts = self.pg.emit_ms(src["ts_ms"])
        self.put(pid, envelope(before, None, src, "d", ts), ts + 3, "d")
        self.put(pid, None, ts + 3, None)


def gen_avro() -> dict:
    rng = random.Random(3003)
    codec = AvroCodec()
    pg = Postgres(rng, lsn=24_211_760, tx_id=902, start_ms=T0_MS + 9_000)
    log = Log({(PAYMENTS_TOPIC, 0): 500, (PAYMENTS_TOPIC, 1): 700})
    p = Payments(rng, pg, codec, log, 2)
    p.snapshot([4001, 4002, 4003, 4004])
    for pid in (4005, 4006, 4007):
        p.insert(pid)
    p.capture(4005)
    p.insert(4008)
    p.capture(4006)
    p.delete(4002)  # partition 0
    p.insert(4009)
    p.insert(4010)
    p.capture(4008)  # partition 0, after the tombstone
    p.insert(4011, refund_of=4001)  # a negative amount
    p.capture(4009)
    p.insert(4012)
    p.capture(4010)
    p.capture(4012)
    return kafka_event(log.records) | {"_records": log.records}


# --------------------------------------------------------------------------------------------
# 4. Plain JSON clickstream (no keys)

PAGES = [("/", "Home"), ("/products/espresso-cups", "Espresso cups"), ("/cart", "Cart"),
         ("/checkout", "Checkout"), ("/search?q=grinder", "Search"), ("/products/kettle", "Kettle")]


def gen_plain_json() -> dict:
    rng = random.Random(4004)
    topic = "clickstream"
    log = Log({(topic, 0): 7000, (topic, 1): 8000, (topic, 2): 9000})
    sessions = [hex_id(rng, 12).lower() for _ in range(5)]
    ms = T0_MS + 120_000
    float_at = {4, 13, 22}  # records whose duration_ms is fractional (first one is an int)
    for i in range(30):
        ms += rng.randrange(300, 9000)
        page, title = rng.choice(PAGES)
        etype = rng.choice(["page_view", "page_view", "click", "add_to_cart", "purchase"])
        user_id = rng.choice([None, 101, 102, 117, 2045])
        event: dict[str, Any] = {
            "event_id": det_uuid(rng),
            "event_type": etype,
            "ts": iso_ms(ms - rng.randrange(5, 400)),
            "session_id": rng.choice(sessions),
            "user": {"id": user_id, "anonymous": user_id is None},
            "page": {"path": page, "title": title},
            "device": {
                "type": rng.choice(["mobile", "desktop", "tablet"]),
                "os": rng.choice(["iOS 17.1", "Android 14", "Windows 11", "macOS 14.1"]),
                "screen": {"w": rng.choice([390, 412, 1440, 1920]),
                           "h": rng.choice([844, 915, 900, 1080])},
            },
            "duration_ms": (rng.randrange(50, 20000) + 0.5) if i in float_at
            else rng.randrange(50, 20000),
        }
        if rng.random() < 0.4:
            event["page"]["referrer"] = rng.choice(
                ["https://www.google.com/", "https://news.example.net/a/123", ""])
        if rng.random() < 0.3:
            event["utm"] = {"source": rng.choice(["newsletter", "google", "partner"]),
                            "medium": rng.choice(["email", "cpc"]),
                            "campaign": "black-friday-2023"}
        if etype in ("add_to_cart", "purchase"):
            items = [{"sku": f"SKU-{rng.randrange(1000, 1010)}", "qty": rng.randrange(1, 4),
                      "price": rng.randrange(300, 9000) / 100} for _ in range(rng.randrange(1, 4))]
            event["cart"] = {"items": items,
                             "total": round(sum(x["qty"] * x["price"] for x in items), 2)}
        if rng.random() < 0.25:
            event["experiments"] = sorted(rng.sample(["new-nav", "one-click", "dark-mode"], 2))
        if rng.random() < 0.2:
            event["geo"] = {"country": rng.choice(["PT", "DE", "US"]), "city": rng.choice(
                ["Lisbon", "München", "Austin"])}
        headers = [("content-type", b"application/json"),
                   ("traceparent", f"00-{hex_id(rng, 32).lower()}-{hex_id(rng, 16).lower()}-01"
                    .encode())]
        if i % 7 == 3:
            headers.append(("x-sig", bytes([0xFF, 0x00, 0x7F, 0x80, 0xC3, 0xA9])))
        log.append(Rec(topic, (i // 4) % 3, None, compact(event), ms, headers=headers))
    return kafka_event(log.records) | {"_records": log.records}


# --------------------------------------------------------------------------------------------
# 5. Raw ingestion: ingest.payments_raw (string keys, JSON values kept as sent)

def gen_raw() -> dict:
    rng = random.Random(5005)
    topic = "ingest.payments_raw"
    log = Log({(topic, 0): 0, (topic, 1): 0})
    ms = T0_MS + 300_000
    kinds = ["payment.created", "payment.authorized", "payment.captured", "payment.refunded"]
    for i in range(10):
        ms += rng.randrange(500, 20_000)
        pay = f"pay_{rng.randrange(10_000, 99_999)}"
        body = {
            "id": f"evt_{hex_id(rng, 16).lower()}",
            "type": kinds[i % 4],
            "created": ms // 1000,
            "data": {"payment": pay, "amount": money(rng, 1, 500), "currency": "EUR",
                     "customer": {"id": rng.randrange(1, 21), "country": rng.choice(["PT", "DE"])},
                     "metadata": {"order": str(rng.randrange(1001, 1015))}},
        }
        if i == 3:
            body["data"]["description"] = "Café da manhã ☕ — reembolso parcial"
        if i == 6:
            # A producer that pretty-prints: the raw table keeps the text exactly as sent.
            value = json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8")
        else:
            value = compact(body)
        headers = [("source", b"webhook-gateway"), ("x-region", "eu-west-1".encode())]
        if i == 3:
            headers.append(("x-note", "café".encode("utf-8")))
        log.append(Rec(topic, i % 2, pay.encode(), value, ms, headers=headers,
                       timestamp_type="LOG_APPEND_TIME"))
    return kafka_event(log.records) | {"_records": log.records}


# --------------------------------------------------------------------------------------------
# 6. Self-managed Kafka: inventory.public.products (plain JSON rows, JSON keys)

def gen_self_managed() -> dict:
    rng = random.Random(6006)
    topic = "inventory.public.products"
    log = Log({(topic, 0): 50})
    ms = T0_MS + 600_000
    products = [("SKU-1001", "Espresso cup, set of 2", 1499), ("SKU-1002", "Gooseneck kettle", 5900),
                ("SKU-1003", "Burr grinder", 12900), ("SKU-1001", "Espresso cup, set of 2", 1299),
                ("SKU-1004", "Milk jug 350 ml", 1850)]
    stock: dict[str, int] = {}
    for sku, name, cents in products:
        ms += rng.randrange(1000, 30_000)
        stock[sku] = stock.get(sku, rng.randrange(20, 80)) - rng.randrange(0, 6)
        row = {"sku": sku, "name": name, "price": cents / 100, "stock": stock[sku],
               "dimensions": {"w_mm": rng.randrange(50, 300), "h_mm": rng.randrange(50, 300)},
               "updated_at": iso_ms(ms - 40)}
        log.append(Rec(topic, 0, compact({"sku": sku}), compact(row), ms))
    return kafka_event(log.records, self_managed=True) | {"_records": log.records}


# --------------------------------------------------------------------------------------------
# 7. Bad records mixed with good ones

def gen_bad_records() -> dict:
    rng = random.Random(7007)
    codec = AvroCodec()
    topic = "shop.public.customers"
    pg = Postgres(rng, lsn=25_001_000, tx_id=1500, start_ms=T0_MS + 900_000)
    table = Customers(rng)
    log = Log({(topic, 0): 100, (PAYMENTS_TOPIC, 0): 900})

    def good_insert(cid: int) -> dict:
        src = pg.commit("customers")
        row = table.new_row(cid, created_micros=src["ts_ms"] * 1000)
        table.rows[cid] = row
        return envelope(None, row, src, "c", pg.emit_ms(src["ts_ms"]))

    def ts() -> int:
        return pg.emitted_ms + 1

    # 100: good insert of 21
    env = good_insert(21)
    log.append(Rec(topic, 0, compact({"id": 21}), compact(env), ts(), op="c"))
    # 101: value is not base64
    log.append(Rec(topic, 0, compact({"id": 22}), None, ts() + 1,
                   raw_value="eyJvcCI6ImMiLCJhZnRlciI6eyJpZCI6MjJ9fQ*!!not-base64",
                   bad="malformed base64 value"))
    # 102: good update of 21
    src = pg.commit("customers")
    before = table.rows[21]
    after = table.mutate(before, "points")
    table.rows[21] = after
    env = envelope(before, after, src, "u", pg.emit_ms(src["ts_ms"]))
    log.append(Rec(topic, 0, compact({"id": 21}), compact(env), ts(), op="u"))
    # 103: invalid JSON (cut off mid-object)
    broken = compact(good_insert(22))[:57]
    log.append(Rec(topic, 0, compact({"id": 22}), broken, ts(), bad="invalid JSON value"))
    # 104: valid JSON, but a Debezium envelope with an unknown op
    env = good_insert(24)
    env["op"] = "x"
    log.append(Rec(topic, 0, compact({"id": 24}), compact(env), ts(),
                   bad="Debezium envelope with op 'x'"))
    # 105: good insert of 23
    env = good_insert(23)
    log.append(Rec(topic, 0, compact({"id": 23}), compact(env), ts(), op="c"))

    # Payments (Avro): 900 good, 901 unknown schema id, 902 truncated body.
    pay_pg = Postgres(rng, lsn=25_002_000, tx_id=1510, start_ms=T0_MS + 901_000)
    p = Payments(rng, pay_pg, codec, log, 1)
    p.insert(4101)
    src = pay_pg.commit("payments")
    row = p.new_row(4102, src["ts_ms"])
    env = envelope(None, row, src, "c", pay_pg.emit_ms(src["ts_ms"]))
    good = codec.value_bytes(env)
    unknown = b"\x00" + struct.pack(">I", UNKNOWN_SCHEMA_ID) + good[5:]
    log.append(Rec(PAYMENTS_TOPIC, 0, codec.key_bytes(4102), unknown, pay_pg.emitted_ms + 3,
                   bad=f"Avro schema id {UNKNOWN_SCHEMA_ID} unknown to the registry"))
    src = pay_pg.commit("payments")
    row = p.new_row(4103, src["ts_ms"])
    env = envelope(None, row, src, "c", pay_pg.emit_ms(src["ts_ms"]))
    full = codec.value_bytes(env)
    log.append(Rec(PAYMENTS_TOPIC, 0, codec.key_bytes(4103), full[: 5 + (len(full) - 5) // 2],
                   pay_pg.emitted_ms + 3, bad="truncated Avro body (schema id 102)"))
    return kafka_event(log.records) | {"_records": log.records}


# --------------------------------------------------------------------------------------------
# 8. Large batch for the benchmark (a full ~6 MB batch, 3 topics x 4 partitions)

ITEM_SKUS = [f"SKU-{n}" for n in range(1000, 1400)]
# Lambda caps an event source mapping's batch at 6 MB (6,291,456 bytes); the benchmark batch
# fills 6,000,000 bytes of compact JSON, about 7,300 records of these tables.
LARGE_BUDGET_BYTES = 6_000_000
LARGE_RECORDS: int | None = None  # --records: a record count instead of the byte budget


def gen_large() -> dict:
    rng = random.Random(8008)
    nparts = 4
    topics = ["shop.public.customers", "shop.public.orders", "shop.public.items"]
    bases = {(t, p): 1_000_000 * (ti + 1) + 10_000 * p + rng.randrange(0, 5000)
             for ti, t in enumerate(topics) for p in range(nparts)}
    log = Log(bases)
    pg = Postgres(rng, lsn=30_000_000, tx_id=5000, start_ms=T0_MS + 3_600_000)
    customers = Customers(rng)
    orders: dict[int, dict] = {}
    items: dict[int, dict] = {}
    weights = {"shop.public.customers": 0.3, "shop.public.orders": 0.35, "shop.public.items": 0.35}
    next_id = {"shop.public.customers": 100_001, "shop.public.orders": 500_001,
               "shop.public.items": 900_001}
    live: dict[str, list[int]] = {t: [] for t in topics}

    def order_row(oid: int, ms: int) -> dict:
        micros = ms * 1000 + rng.randrange(1000)
        return {"id": oid, "customer_id": rng.randrange(100_001, 101_500),
                "amount": cents_text(money(rng, 5, 2000)), "status": "pending",
                "ordered_at": micros, "updated_at": zoned_timestamp(micros), "ship_date": None,
                "note": rng.choice(NOTES)}

    def item_row(iid: int, ms: int) -> dict:
        return {"id": iid, "order_id": rng.randrange(500_001, 503_000),
                "sku": rng.choice(ITEM_SKUS), "quantity": rng.randrange(1, 6),
                "unit_price": cents_text(money(rng, 2, 300)),
                "discount": rng.choice([None, None, "0.10", "0.25"]),
                "attributes": {"color": rng.choice(["black", "white", "sage", "terracotta"]),
                               "size": rng.choice(["S", "M", "L"])},
                "added_at": ms * 1000 + rng.randrange(1000)}

    tables = {"shop.public.customers": ("customers", customers.rows),
              "shop.public.orders": ("orders", orders),
              "shop.public.items": ("items", items)}

    size = len(compact(kafka_event([]))) + 12 * len('"shop.public.customers-0":[],')
    while True:
        topic = rng.choices(topics, weights=[weights[t] for t in topics])[0]
        tname, rows = tables[topic]
        src = pg.commit(tname, gap_ms=rng.randrange(1, 40))
        ts = pg.emit_ms(src["ts_ms"])
        r = rng.random()
        ids = live[topic]
        if not ids or r < 0.35:
            op = "c"
            kid = next_id[topic]
            next_id[topic] += 1
            if topic.endswith("customers"):
                row = customers.new_row(kid, created_micros=src["ts_ms"] * 1000)
            elif topic.endswith("orders"):
                row = order_row(kid, src["ts_ms"])
            else:
                row = item_row(kid, src["ts_ms"])
            rows[kid] = row
            ids.append(kid)
            before, after = None, row
        elif r < 0.95:
            op = "u"
            # Skewed towards recent keys so that keys get several versions in one batch.
            kid = ids[-1 - min(int(rng.expovariate(1 / 30)), len(ids) - 1)]
            before = rows[kid]
            after = json.loads(json.dumps(before))
            if topic.endswith("customers"):
                after = customers.mutate(before, rng.choice(["points", "balance", "tags",
                                                             "address", "email"]))
            elif topic.endswith("orders"):
                after["status"] = rng.choice(STATUSES[1:])
                after["updated_at"] = zoned_timestamp(src["ts_ms"] * 1000 + rng.randrange(1000))
                if after["status"] == "shipped":
                    after["ship_date"] = src["ts_ms"] // 86_400_000 + 1
            else:
                after["quantity"] = rng.randrange(1, 6)
                after["discount"] = rng.choice([None, "0.05", "0.15"])
            rows[kid] = after
        else:
            op = "d"
            kid = ids.pop(rng.randrange(len(ids)))
            before, after = rows.pop(kid), None
        # The large batch's tables have REPLICA IDENTITY DEFAULT: updates carry no before
        # image (deletes keep it here), which is also what keeps the batch near 6 MB.
        env = envelope(None if op == "u" else before, after, src, op, ts)
        part = kid % nparts
        recs = [Rec(topic, part, compact({"id": kid}), compact(env), ts + 1, op=op)]
        if op == "d":
            recs.append(Rec(topic, part, compact({"id": kid}), None, ts + 1))
        for i, r in enumerate(recs):
            r.offset = log.next[(topic, part)] + i
        add = sum(len(compact(record_json(r))) + 1 for r in recs)
        if LARGE_RECORDS is not None:
            if len(log.records) + len(recs) > LARGE_RECORDS:
                break
        elif size + add > LARGE_BUDGET_BYTES:
            break
        size += add
        for r in recs:
            log.append(r)
    return kafka_event(log.records) | {"_records": log.records}


# --------------------------------------------------------------------------------------------
# 9. S3, SQS and EventBridge events for the load function; schedule events for maintain

def s3_record(rng: random.Random, key: str, size: int, ms: int,
              event_name: str = "ObjectCreated:Put", sent_key: str | None = None) -> dict:
    """One S3 notification record; `key` is the object key, URL-encoded here as S3 does
    (`sent_key` overrides the encoded form)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": iso_ms(ms),
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AROAZ6EXAMPLEROLEID:deltasink-stage"},
        "requestParameters": {"sourceIPAddress": f"10.0.{rng.randrange(1, 40)}.{rng.randrange(2, 250)}"},
        "responseElements": {
            "x-amz-request-id": hex_id(rng, 16),
            "x-amz-id-2": base64.b64encode(rng.randbytes(48)).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "deltasink-staged-file",
            "bucket": {
                "name": BUCKET,
                "ownerIdentity": {"principalId": "A3NL1KOZZKEXAMPLE"},
                "arn": f"arn:aws:s3:::{BUCKET}",
            },
            "object": {
                "key": sent_key if sent_key is not None else quote_plus(key, safe="/"),
                "size": size,
                "eTag": hashlib.md5(key.encode()).hexdigest()
                + ("-2" if event_name.endswith("CompleteMultipartUpload") else ""),
                "sequencer": f"{ms * 1000:016X}"[-16:] + hex_id(rng, 2),
            },
        },
    }


def staged_key(table_segment: str, records: list[Rec], topic: str, partition: int,
               prefix: str = "staging") -> str:
    """The staging key stage writes for the rows of one topic-partition of a sample event
    (default file name pattern `{topic}/{partition}/{first_offset}-{last_offset}.parquet`)."""
    offs = [r.offset for r in records if r.topic == topic and r.partition == partition
            and r.value is not None and r.bad is None]
    return f"{prefix}/{table_segment}/{topic}/{partition}/{min(offs)}-{max(offs)}.parquet"


def gen_s3(samples: dict) -> dict:
    rng = random.Random(9009)
    ms = T0_MS + 1_000_000
    plain = "staging/shop.public.customers/shop.public.customers/0/0-19.parquet"
    # Object key `my staging/shop.public.customers/...` (staging prefix `my staging`), sent
    # with the space as `+` and the dots of the table segment as `%2E`.
    spaced = "my staging/shop.public.customers/shop.public.customers/1/0-20.parquet"
    spaced_sent = "my+staging/shop%2Epublic%2Ecustomers/shop.public.customers/1/0-20.parquet"
    # Table part `order.items` is percent-encoded in the staged key (`order%2Eitems`), and S3
    # encodes that `%` again in the notification (`order%252Eitems`).
    dotted_table = "staging/shop.public.order%2Eitems/shop.public.order.items/0/0-9.parquet"
    records = [s3_record(rng, plain, 18_734, ms),
               s3_record(rng, spaced, 21_047, ms + 412, sent_key=spaced_sent),
               s3_record(rng, dotted_table, 9_912, ms + 907)]
    for r, key in zip(records, [plain, spaced, dotted_table]):
        check(unquote_plus(r["s3"]["object"]["key"]) == key, f"s3 key {key}")
    return {"Records": records}


def gen_sqs(samples: dict) -> dict:
    rng = random.Random(1010)
    ms = T0_MS + 1_200_000
    dj = samples["debezium-json"]["_records"]
    dc = samples["debezium-connect"]["_records"]
    av = samples["avro"]["_records"]
    pj = samples["plain-json"]["_records"]
    files = [
        (staged_key("public.customers", dj, "shop.public.customers", 0), 18_734, "ObjectCreated:Put"),
        (staged_key("public.customers", dj, "shop.public.customers", 1), 19_305, "ObjectCreated:Put"),
        (staged_key("public.orders", dc, "shop.public.orders", 0), 14_220, "ObjectCreated:Put"),
        (staged_key("public.orders", dc, "shop.public.orders", 2), 13_868, "ObjectCreated:Put"),
        (staged_key("public.payments", av, PAYMENTS_TOPIC, 1), 12_590,
         "ObjectCreated:CompleteMultipartUpload"),
        (staged_key("clickstream", pj, "clickstream", 0), 16_002, "ObjectCreated:Put"),
    ]
    bodies = []
    for i, (key, size, name) in enumerate(files):
        body = {"Records": [s3_record(rng, key, size, ms + i * 350, name)]}
        bodies.append(compact(body).decode())
        if i == 2:
            bodies.append(compact({
                "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": iso_ms(ms - 86_400_000),
                "Bucket": BUCKET, "RequestId": hex_id(rng, 16),
                "HostId": base64.b64encode(rng.randbytes(57)).decode(),
            }).decode())
    records = []
    for i, body in enumerate(bodies):
        sent = ms + i * 350 + 40
        records.append({
            "messageId": det_uuid(rng),
            "receiptHandle": "AQEB" + base64.b64encode(rng.randbytes(120)).decode(),
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": str(sent),
                "SenderId": "AIDAJHIPRHEMV73VRJEBU",
                "ApproximateFirstReceiveTimestamp": str(sent + 20_000 + rng.randrange(900)),
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode("utf-8")).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:deltasink-staged-files",
            "awsRegion": REGION,
        })
    return {"Records": records}


def gen_eventbridge_s3(samples: dict) -> dict:
    rng = random.Random(1111)
    ms = T0_MS + 1_400_000
    dc = samples["debezium-connect"]["_records"]
    key = staged_key("public.orders", dc, "shop.public.orders", 1)
    return {
        "version": "0",
        "id": det_uuid(rng),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": iso_s(ms),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {
                "key": key,  # EventBridge does not URL-encode keys
                "size": 14_410,
                "etag": hashlib.md5(key.encode()).hexdigest(),
                "sequencer": f"{ms * 1000:016X}"[-16:],
            },
            "request-id": hex_id(rng, 16),
            "requester": ACCOUNT,
            "source-ip-address": "10.0.7.31",
            "reason": "PutObject",
        },
    }


def gen_schedule(_samples: dict) -> dict:
    rng = random.Random(1212)
    return {
        "version": "0",
        "id": det_uuid(rng),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": iso_s(T0_MS + 3_600_000),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/deltasink-maintain-schedule"],
        "detail": {},
    }


def gen_maintain_purge(_samples: dict) -> dict:
    return {"job": "purge"}


def gen_maintain_job(job: str):
    def gen(_samples: dict) -> dict:
        return {"job": job}
    return gen


# --------------------------------------------------------------------------------------------
# Verification


class VerifyError(Exception):
    pass


def check(cond: bool, what: str):
    if not cond:
        raise VerifyError(what)


def verify_kafka(name: str, event: dict, text: str, value_kind: str, key_kind: str):
    """Re-reads the serialized event as the stage function would and checks every record."""
    parsed = json.loads(text)
    check(parsed["eventSource"] in ("aws:kafka", "SelfManagedKafka"), f"{name}: eventSource")
    check(("eventSourceArn" in parsed) == (parsed["eventSource"] == "aws:kafka"),
          f"{name}: eventSourceArn presence")
    check("bootstrapServers" in parsed, f"{name}: bootstrapServers")
    by_coord = {(r.topic, r.partition, r.offset): r for r in event["_records"]}
    check(len(by_coord) == len(event["_records"]), f"{name}: duplicate offsets")
    seen = 0
    codec = None
    for group, recs in parsed["records"].items():
        offsets = [r["offset"] for r in recs]
        check(offsets == sorted(offsets), f"{name}: {group} not in offset order")
        for r in recs:
            seen += 1
            check(group == f'{r["topic"]}-{r["partition"]}', f"{name}: group {group}")
            check(isinstance(r["timestamp"], int), f"{name}: timestamp not an integer")
            for h in r["headers"]:
                for v in h.values():
                    check(all(isinstance(b, int) and -128 <= b <= 127 for b in v),
                          f"{name}: header bytes not signed")
            rec = by_coord[(r["topic"], r["partition"], r["offset"])]
            kind = value_kind if not (value_kind == "mixed") else (
                "avro" if r["topic"] == PAYMENTS_TOPIC else "json")
            kkind = key_kind if not (key_kind == "mixed") else (
                "avro" if r["topic"] == PAYMENTS_TOPIC else "json")
            if "key" in r:
                key = base64.b64decode(r["key"], validate=True)
                if kkind == "json":
                    json.loads(key)
                elif kkind == "connect":
                    k = json.loads(key)
                    check(set(k) == {"schema", "payload"}, f"{name}: connect key")
                elif kkind == "avro":
                    codec = codec or AvroCodec()
                    check(key[0] == 0 and struct.unpack(">I", key[1:5])[0] == KEY_SCHEMA_ID,
                          f"{name}: avro key header")
                    d = codec.fastavro.schemaless_reader(io.BytesIO(key[5:]), codec.key, None)
                    check(isinstance(d["id"], int), f"{name}: avro key")
                elif kkind == "string":
                    key.decode("utf-8")
            if "value" not in r:
                check(rec.value is None and rec.raw_value is None, f"{name}: lost value")
                continue
            try:
                value = base64.b64decode(r["value"], validate=True)
            except ValueError:
                check(rec.bad == "malformed base64 value", f"{name}: base64 at {r['offset']}")
                continue
            try:
                if kind == "json":
                    obj = json.loads(value)
                    is_env = isinstance(obj, dict) and "op" in obj
                    if rec.bad:
                        check(is_env and obj["op"] not in ("c", "u", "d", "r"),
                              f"{name}: bad record {r['offset']} decodes")
                    elif is_env:
                        check(obj["op"] in ("c", "u", "d", "r"), f"{name}: op")
                        check(obj["after" if obj["op"] != "d" else "before"] is not None,
                              f"{name}: row image")
                elif kind == "connect":
                    obj = json.loads(value)
                    check(list(obj) == ["schema", "payload"], f"{name}: connect layout")
                    check(value.startswith(b'{"schema":{'), f"{name}: JsonConverter layout")
                    for img in ("before", "after"):
                        row = obj["payload"][img]
                        if row:
                            raw = base64.b64decode(row["amount"], validate=True)
                            int.from_bytes(raw, "big", signed=True)
                elif kind == "avro":
                    codec = codec or AvroCodec()
                    check(value[0] == 0, f"{name}: magic byte")
                    sid = struct.unpack(">I", value[1:5])[0]
                    if sid == UNKNOWN_SCHEMA_ID:
                        check(bool(rec.bad), f"{name}: unknown id on a good record")
                        continue
                    check(sid == VALUE_SCHEMA_ID, f"{name}: schema id {sid}")
                    buf = io.BytesIO(value[5:])
                    d = codec.fastavro.schemaless_reader(buf, codec.value, None)
                    check(buf.tell() == len(value) - 5, f"{name}: trailing Avro bytes")
                    check(d["op"] in "cudr", f"{name}: avro op")
                    check(not rec.bad, f"{name}: bad avro record {r['offset']} decodes")
                elif kind == "string":
                    value.decode("utf-8")
                    json.loads(value)
            except VerifyError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure must be an intended one
                check(bool(rec.bad), f"{name}: offset {r['offset']} fails: {e!r}")
    check(seen == len(event["_records"]), f"{name}: record count")


def verify_avro_schema_files(files: dict[str, bytes]):
    fastavro = need_fastavro()
    for fname, data in files.items():
        fastavro.parse_schema(json.loads(data))


# --------------------------------------------------------------------------------------------
# Registry of outputs


@dataclass
class Output:
    name: str
    path: str  # relative to events/
    function: str
    build: Callable[[dict], dict]
    kafka: tuple[str, str] | None = None  # (key kind, value kind) for verification
    env: str = ""
    about: str = ""
    committed: bool = True
    compact: bool = False


OUTPUTS = [
    Output("debezium-json", "msk-debezium-json.json", "stage", lambda s: gen_debezium_json(),
           ("json", "json"), "(defaults)",
           "Debezium PostgreSQL change events, plain JSON (schemas.enable=false), "
           "`shop.public.customers` → table `public.customers` (upsert on the Kafka key `{\"id\"}`)"),
    Output("debezium-connect", "msk-debezium-connect.json", "stage", lambda s: gen_debezium_connect(),
           ("connect", "connect"),
           "DELTASINK_TOPICS='{\"shop.public.orders\": {\"key_format\": \"connect-json\", "
           "\"value_format\": \"connect-json\"}}'",
           "Debezium change events as Kafka Connect JSON (schemas.enable=true), `shop.public.orders` "
           "→ `public.orders`: Decimal amount (base64), MicroTimestamp, ZonedTimestamp, Date"),
    Output("avro", "msk-avro.json", "stage", lambda s: gen_avro(), ("avro", "avro"),
           "DELTASINK_TOPICS='{\"shop.public.payments\": {\"key_format\": \"avro\", "
           "\"value_format\": \"avro\"}}' DELTASINK_SCHEMA_REGISTRY_URL=http://127.0.0.1:8081",
           "Debezium change events in Confluent Avro wire format (key schema id 101, value 102, "
           "see schemas/), `shop.public.payments` → `public.payments`"),
    Output("plain-json", "msk-plain-json.json", "stage", lambda s: gen_plain_json(),
           ("json", "json"), "(defaults)",
           "non-CDC clickstream JSON without keys, `clickstream` → table `clickstream` (append); "
           "optional nested fields, `duration_ms` int in most records and float in 3"),
    Output("raw", "msk-raw.json", "stage", lambda s: gen_raw(), ("string", "string"),
           "DELTASINK_TABLES='{\"ingest.payments_raw\": {\"mode\": \"raw\"}}' "
           "DELTASINK_TOPICS='{\"ingest.payments_raw\": {\"key_format\": \"string\"}}'",
           "payment webhooks for a raw ingestion table, `ingest.payments_raw` → "
           "`ingest.payments_raw`: string keys, JSON values (one pretty-printed, one non-ASCII), "
           "LOG_APPEND_TIME"),
    Output("self-managed", "self-managed-kafka.json", "stage", lambda s: gen_self_managed(),
           ("json", "json"), "(defaults)",
           "`SelfManagedKafka` event: plain JSON product rows with JSON keys `{\"sku\"}`, "
           "`inventory.public.products` → `public.products` (upsert; SKU-1001 twice)"),
    Output("bad-records", "msk-bad-records.json", "stage", lambda s: gen_bad_records(),
           ("mixed", "mixed"),
           "DELTASINK_TOPICS='{\"shop.public.payments\": {\"key_format\": \"avro\", "
           "\"value_format\": \"avro\"}}' DELTASINK_SCHEMA_REGISTRY_URL=http://127.0.0.1:8081",
           "good Debezium JSON customers and Avro payments mixed with bad records: malformed "
           "base64, invalid JSON, op \"x\", unknown Avro schema id 9999, truncated Avro body"),
    Output("large", "msk-large-batch.json", "stage (benchmark)", lambda s: gen_large(),
           ("json", "json"), "(defaults)",
           "benchmark batch: a full 6 MB batch (about 7,400 Debezium JSON records) over "
           "`shop.public.customers`, `shop.public.orders`, `shop.public.items`, 4 partitions "
           "each; NOT committed",
           committed=False, compact=True),
    Output("s3", "s3-object-created.json", "load", gen_s3, None, "bucket `deltasink-local`",
           "direct S3 `ObjectCreated:Put` notification, 3 records: "
           "`staging/shop.public.customers/shop.public.customers/0/0-19.parquet` (table segment "
           "`shop.public.customers`, i.e. table shop.public.customers; default routing would "
           "stage msk-debezium-json.json under `staging/public.customers/`), a key sent as "
           "`my+staging/shop%2Epublic%2Ecustomers/...` (decodes to `my staging/shop.public."
           "customers/...`) and `staging/shop.public.order%252Eitems/...` (object key has "
           "`order%2Eitems`, table part `order.items`)"),
    Output("sqs", "sqs-s3-notifications.json", "load", gen_sqs, None, "bucket `deltasink-local`",
           "SQS batch of S3 notifications (6 ObjectCreated bodies, keys that stage writes for the "
           "samples above with default routing, plus one `s3:TestEvent` body)"),
    Output("eventbridge-s3", "eventbridge-s3-object-created.json", "load", gen_eventbridge_s3, None,
           "bucket `deltasink-local`",
           "EventBridge `Object Created` event from S3 (key not URL-encoded)"),
    Output("schedule", "schedule.json", "maintain", gen_schedule, None, "",
           "EventBridge `Scheduled Event` (the maintain function's regular trigger)"),
    Output("maintain-purge", "maintain-purge.json", "maintain", gen_maintain_purge, None, "",
           "`{\"job\": \"purge\"}`: run only the purge job"),
    Output("maintain-redrive", "maintain-redrive.json", "maintain", gen_maintain_job("redrive"), None, "",
           "`{\"job\": \"redrive\"}`: load staged files whose notification never led to a load"),
    Output("maintain-tombstones", "maintain-tombstones.json", "maintain", gen_maintain_job("tombstones"), None, "",
           "`{\"job\": \"tombstones\"}`: remove old tombstones of hard-delete tables"),
    Output("maintain-backfill", "maintain-backfill.json", "maintain", gen_maintain_job("backfill"), None, "",
           "`{\"job\": \"backfill\"}`: check the overlap and run due backfills"),
    Output("maintain-optimize", "maintain-optimize.json", "maintain", gen_maintain_job("optimize"), None, "",
           "`{\"job\": \"optimize\"}`: the slower schedule's input (OPTIMIZE the tables)"),
    Output("maintain-check", "maintain-check.json", "maintain", gen_maintain_job("check"), None, "",
           "`{\"job\": \"check\"}`: check the deployment (configuration, bucket, warehouse, registry)"),
]
BY_NAME = {o.name: o for o in OUTPUTS}


def serialize(out: Output, event: dict) -> str:
    clean = {k: v for k, v in event.items() if not k.startswith("_")}
    if out.compact:
        return json.dumps(clean, separators=(",", ":"), ensure_ascii=False) + "\n"
    return pretty(clean) + "\n"


def summarize(records: list[Rec]) -> dict:
    parts: dict[tuple[str, int], list[Rec]] = {}
    for r in records:
        parts.setdefault((r.topic, r.partition), []).append(r)
    return {
        "records": len(records),
        "tombstones": sum(1 for r in records if r.value is None and r.raw_value is None),
        "bad": sorted((r.topic, r.partition, r.offset, r.bad) for r in records if r.bad),
        "ops": {op: sum(1 for r in records if r.op == op) for op in "rcud"
                if any(r.op == op for r in records)},
        "partitions": {f"{t}-{p}": (min(x.offset for x in rs), max(x.offset for x in rs), len(rs))
                       for (t, p), rs in sorted(parts.items())},
        "tombstone_offsets": sorted((r.topic, r.partition, r.offset) for r in records
                                    if r.value is None and r.raw_value is None),
    }


def build(names: list[str]) -> dict[str, tuple[Output, dict, str]]:
    """Builds and verifies the named outputs (and the samples the load events refer to)."""
    needed = list(names)
    if any(n in ("sqs", "eventbridge-s3") for n in names):
        for dep in ("debezium-json", "debezium-connect", "avro", "plain-json"):
            if dep not in needed:
                needed.insert(0, dep)
    samples: dict[str, dict] = {}
    built: dict[str, tuple[Output, dict, str]] = {}
    for name in needed:
        out = BY_NAME[name]
        event = out.build(samples)
        samples[name] = event
        text = serialize(out, event)
        json.loads(text)
        if out.kafka:
            verify_kafka(out.path, event, text, out.kafka[1], out.kafka[0])
        if name in names:
            built[name] = (out, event, text)
    return built


def readme(built: dict[str, tuple[Output, dict, str]]) -> str:
    lines = [
        "# Sample Lambda events",
        "",
        "Generated by `scripts/make_events.py` (fixed seeds and timestamps: re-running gives the "
        "same bytes). Do not edit by hand; change the script and run",
        "",
        "    .venv/bin/python scripts/make_events.py          # rewrite events/ (and this README)",
        "    .venv/bin/python scripts/make_events.py --check  # fail if events/ is stale",
        "",
        "Every stage event also needs `DELTASINK_STAGING_BUCKET=deltasink-local`. Offsets are "
        "`first..last (count)` per topic-partition; tombstones are records with a key and no "
        "value. Avro topics need a schema registry: `.venv/bin/python tools/schema_registry.py` "
        "serves http://127.0.0.1:8081 and preloads `schemas/<id>-<subject>.avsc`.",
        "",
    ]
    for out in OUTPUTS:
        if out.name not in built:
            continue
        _, event, text = built[out.name]
        desc = f"- `{out.path}` ({len(text.encode()):,} bytes) — **{out.function}** — {out.about}."
        if out.env == "(defaults)":
            desc += " Env: defaults."
        elif out.env.startswith("DELTASINK_"):
            desc += f" Env: `{out.env}`."
        elif out.env:
            desc += f" Objects in {out.env}."
        if out.name == "sqs":
            keys = []
            for rec in event["Records"]:
                body = json.loads(rec["body"])
                keys.append(f"`{body['Records'][0]['s3']['object']['key']}`" if "Records" in body
                            else f"`{body['Event']}`")
            desc += " Bodies in order: " + ", ".join(keys) + "."
        if out.name == "eventbridge-s3":
            desc += f" Key `{event['detail']['object']['key']}`."
        if out.kafka:
            s = summarize(event["_records"])
            parts = "; ".join(f"`{k}` {a}..{b} ({n})" for k, (a, b, n) in s["partitions"].items())
            desc += f" {s['records']} records: {parts}"
            if s["ops"]:
                desc += "; ops " + ", ".join(f"{n} {op}" for op, n in s["ops"].items())
            if s["tombstone_offsets"]:
                desc += f"; {s['tombstones']} tombstone{'s' if s['tombstones'] > 1 else ''} at " \
                    + ", ".join(f"`{t}-{p}`@{o}" for t, p, o in s["tombstone_offsets"])
            else:
                desc += "; no tombstones"
            if s["bad"]:
                desc += "; bad at " + ", ".join(f"`{t}-{p}`@{o} ({why})" for t, p, o, why in s["bad"])
            desc += "."
        lines.append(desc)
    lines += [
        f"- `schemas/{KEY_SCHEMA_ID}-{PAYMENTS_TOPIC}-key.avsc`, "
        f"`schemas/{VALUE_SCHEMA_ID}-{PAYMENTS_TOPIC}-value.avsc` — the Avro key and value "
        "schemas (Debezium envelope as AvroConverter writes it) for the registry.",
        "- `msk-large-batch.json` (not committed) — **stage benchmark** — a full batch: "
        "6,000,000 bytes of compact JSON (Lambda's cap is 6 MB), about 7,400 Debezium JSON "
        "records (creates, updates without a before image, deletes each followed by its "
        "tombstone) over `shop.public.customers`, `shop.public.orders`, `shop.public.items`, "
        "partitions 0-3 each; exact counts and offsets: `--only large --list`. Env: defaults. "
        "Generate it with "
        "`.venv/bin/python scripts/make_events.py --only large --out <path>` "
        f"(default `{LARGE_DEFAULT_OUT.relative_to(ROOT)}`); add `--records 10000` for exactly "
        "10,000 records (8.1 MB, more than Lambda would deliver).",
        "",
        "To stage every sample in one process, combine the settings:",
        "",
        "    DELTASINK_STAGING_BUCKET=deltasink-local",
        "    DELTASINK_TOPICS='{\"shop.public.orders\": {\"key_format\": \"connect-json\", "
        "\"value_format\": \"connect-json\"}, \"shop.public.payments\": {\"key_format\": \"avro\", "
        "\"value_format\": \"avro\"}, \"ingest.payments_raw\": {\"key_format\": \"string\"}}'",
        "    DELTASINK_TABLES='{\"ingest.payments_raw\": {\"mode\": \"raw\"}}'",
        "    DELTASINK_SCHEMA_REGISTRY_URL=http://127.0.0.1:8081",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated names: " + ", ".join(BY_NAME))
    ap.add_argument("--out", type=Path, help="output file (with --only and a single name)")
    ap.add_argument("--dir", type=Path, default=EVENTS, help="events directory (default events/)")
    ap.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    ap.add_argument("--list", action="store_true", help="print each output's counts and offsets")
    ap.add_argument("--records", type=int,
                    help="large: this many records instead of filling 6,000,000 bytes")
    args = ap.parse_args(argv)
    if args.records is not None:
        global LARGE_RECORDS
        LARGE_RECORDS = args.records

    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            ap.error(f"unknown names {unknown}; choose from {', '.join(BY_NAME)}")
    else:
        names = [o.name for o in OUTPUTS if o.committed]
    if args.out and len(names) != 1:
        ap.error("--out needs --only with exactly one name")

    built = build(names)
    files: dict[Path, bytes] = {}
    for name, (out, _event, text) in built.items():
        if args.out:
            path = args.out
        elif not out.committed and args.dir == EVENTS:
            path = LARGE_DEFAULT_OUT
        else:
            path = args.dir / out.path
        files[path] = text.encode("utf-8")
    if not args.only or any(n in ("avro", "bad-records") for n in names):
        schema_files = {f: (pretty(s) + "\n").encode() for f, (_id, s) in subject_files().items()}
        verify_avro_schema_files(schema_files)
        for f, data in schema_files.items():
            files[args.dir / "schemas" / f] = data
    if not args.only:
        files[args.dir / "README.md"] = readme(built).encode("utf-8")

    if args.list:
        for name, (out, event, text) in built.items():
            line = f"{out.path}: {len(text.encode()):,} bytes"
            if out.kafka:
                s = summarize(event["_records"])
                line += f", {s['records']} records, {s['tombstones']} tombstones, ops {s['ops']}"
                for k, (a, b, n) in s["partitions"].items():
                    line += f"\n    {k}: offsets {a}..{b} ({n})"
                if 0 < len(s["tombstone_offsets"]) <= 20:
                    line += "\n    tombstones at " + ", ".join(
                        f"{t}-{p}@{o}" for t, p, o in s["tombstone_offsets"])
                for t, p, o, why in s["bad"]:
                    line += f"\n    bad {t}-{p}@{o}: {why}"
            print(line)
        return 0

    if args.check:
        stale = [p for p, data in files.items() if not p.exists() or p.read_bytes() != data]
        for p in stale:
            print(f"stale: {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}", file=sys.stderr)
        return 1 if stale else 0

    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
