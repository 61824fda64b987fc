"""Smoke tests of the local services, started through scripts/services.sh.

    scripts/venv.sh && .venv/bin/python -m pytest tools

The services run on free ports with a temporary DELTASINK_LOCAL_DIR, so the tests neither
use nor disturb services a developer already runs. They are started once per session and
stopped at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICES = os.path.join(ROOT, "scripts", "services.sh")
BUCKET = "deltasink-local"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Local:
    def __init__(self, env: dict):
        self.env = env
        self.warehouse = f"http://127.0.0.1:{env['DELTASINK_LOCAL_WAREHOUSE_PORT']}"
        self.registry = f"http://127.0.0.1:{env['DELTASINK_LOCAL_REGISTRY_PORT']}"
        self.s3_url = f"http://127.0.0.1:{env['DELTASINK_LOCAL_S3_PORT']}"
        self.token = env["DELTASINK_LOCAL_TOKEN"]
        import boto3

        self.s3 = boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1",
                               aws_access_key_id="test", aws_secret_access_key="test")

    def services(self, *args, check=True):
        return subprocess.run([SERVICES, *args], env=self.env, check=check, capture_output=True, text=True, timeout=180)

    # ---- HTTP --------------------------------------------------------------------
    def http(self, method: str, url: str, body=None, token: str | None = "default", timeout: float = 70):
        headers = {"Content-Type": "application/json"}
        if token == "default":
            token = self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}"), dict(e.headers)

    def submit(self, statement: str, params=None, wait="30s", on_wait_timeout="CONTINUE", **extra):
        body = {"statement": statement, "warehouse_id": "local", "wait_timeout": wait,
                "on_wait_timeout": on_wait_timeout, **extra}
        if params is not None:
            body["parameters"] = params
        return self.http("POST", f"{self.warehouse}/api/2.0/sql/statements", body)

    def poll(self, sid: str, timeout: float = 60) -> dict:
        deadline = time.time() + timeout
        while True:
            code, body, _ = self.http("GET", f"{self.warehouse}/api/2.0/sql/statements/{sid}")
            assert code == 200, body
            if body["status"]["state"] in ("SUCCEEDED", "FAILED", "CANCELED", "CLOSED") or time.time() > deadline:
                return body
            time.sleep(0.2)

    def sql(self, statement: str, params=None) -> dict:
        """Runs a statement to completion and asserts it SUCCEEDED."""
        code, body, _ = self.submit(statement, params)
        assert code == 200, body
        if body["status"]["state"] in ("PENDING", "RUNNING"):
            body = self.poll(body["statement_id"])
        assert body["status"]["state"] == "SUCCEEDED", body
        return body

    def rows(self, statement: str, params=None) -> list[list]:
        return self.sql(statement, params)["result"].get("data_array", [])

    def faults(self, method="POST", body=None):
        code, out, _ = self.http(method, f"{self.warehouse}/_local/faults", body, token=None)
        assert code == 200, out
        return out

    def put_parquet(self, key: str, table) -> str:
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue())
        return f"s3://{BUCKET}/{key}"


@pytest.fixture(scope="session")
def local(tmp_path_factory):
    env = dict(os.environ)
    for k in [k for k in env if k.startswith(("AWS_", "DATABRICKS_"))]:
        env.pop(k)
    env.update(
        DELTASINK_LOCAL_DIR=str(tmp_path_factory.mktemp("local")),
        DELTASINK_LOCAL_S3_PORT=str(_free_port()),
        DELTASINK_LOCAL_REGISTRY_PORT=str(_free_port()),
        DELTASINK_LOCAL_WAREHOUSE_PORT=str(_free_port()),
        DELTASINK_LOCAL_TOKEN="test-token-" + uuid.uuid4().hex[:8],
        DELTASINK_LOCAL_OAUTH_CLIENT_ID="test-client",
        DELTASINK_LOCAL_OAUTH_CLIENT_SECRET="test-secret",
    )
    for k in ("REGISTRY_BASIC_AUTH", "DELTASINK_WAREHOUSE_ROOT", "DELTASINK_WAREHOUSE_STATE", "DELTASINK_LOCAL_BUCKET",
              "DELTASINK_WAREHOUSE_WORKERS"):
        env.pop(k, None)
    lc = Local(env)
    started = lc.services("start", check=False)
    if started.returncode != 0:
        lc.services("stop", check=False)
        pytest.fail(f"services.sh start failed:\n{started.stdout}\n{started.stderr}")
    yield lc
    stopped = lc.services("stop", check=False)
    assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(autouse=True)
def _reset_faults(local):
    local.faults("DELETE")
    yield
    try:
        local.faults("DELETE")
    except (OSError, AssertionError):  # the warehouse is down: the test that stopped it failed
        local.services("start", "warehouse", check=False)


def _orders(ids, names, ts_seconds, deleted=None, offsets=None):
    import datetime as dt

    import pyarrow as pa

    n = len(ids)
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "name": pa.array(names, pa.string()),
        "_cdc_ts": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=s) for s in ts_seconds],
                            pa.timestamp("us", tz="UTC")),
        "_cdc_deleted": pa.array(deleted or [False] * n, pa.bool_()),
        "_kafka_partition": pa.array([0] * n, pa.int32()),
        "_kafka_offset": pa.array(offsets or list(range(n)), pa.int64()),
    })


ORDERS_DDL = ("(id BIGINT, name STRING, _cdc_ts TIMESTAMP, _cdc_deleted BOOLEAN, _kafka_partition INT, "
              "_kafka_offset BIGINT) USING DELTA TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")


# ----------------------------------------------------------------------------------------
def test_services_status_and_env(local):
    st = local.services("status")
    assert "warehouse: running" in st.stdout and "s3: running" in st.stdout and "registry: running" in st.stdout
    env = local.services("env").stdout
    for var in ("AWS_ENDPOINT_URL=", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
                "AWS_ALLOW_HTTP=true", "DELTASINK_SCHEMA_REGISTRY_URL=", "DATABRICKS_HOST=http://127.0.0.1:",
                "DATABRICKS_TOKEN=", "DATABRICKS_HTTP_PATH=/sql/1.0/warehouses/local"):
        assert f"export {var}" in env, env
    again = local.services("start")  # idempotent
    assert "already running" in again.stdout


def test_auth(local):
    code, body, _ = local.http("POST", f"{local.warehouse}/api/2.0/sql/statements",
                               {"statement": "SELECT 1", "warehouse_id": "local"}, token=None)
    assert code == 401 and body["error_code"] == "UNAUTHENTICATED"
    code, body, _ = local.http("POST", f"{local.warehouse}/api/2.0/sql/statements",
                               {"statement": "SELECT 1", "warehouse_id": "local"}, token="wrong")
    assert code == 403 and body["error_code"] == "PERMISSION_DENIED"


def test_oauth_m2m_token(local):
    import base64

    def token(secret):
        req = urllib.request.Request(
            f"{local.warehouse}/oidc/v1/token", data=b"grant_type=client_credentials&scope=all-apis", method="POST",
            headers={"Authorization": "Basic " + base64.b64encode(f"test-client:{secret}".encode()).decode(),
                     "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    assert token("wrong")[0] == 401
    code, out = token("test-secret")
    assert code == 200 and out["token_type"] == "Bearer" and out["expires_in"] > 0
    code, body, _ = local.http("POST", f"{local.warehouse}/api/2.0/sql/statements",
                               {"statement": "SELECT 1", "warehouse_id": "local"}, token=out["access_token"])
    assert code == 200 and body["status"]["state"] == "SUCCEEDED"


def test_result_shape_and_types(local):
    body = local.sql("SELECT 1 AS i, CAST(2 AS BIGINT) AS l, 'x' AS s, CAST(NULL AS INT) AS n, true AS b, "
                     "CAST(1.25 AS DECIMAL(10,3)) AS d, TIMESTAMP'2024-01-02 03:04:05.123456' AS ts, "
                     "DATE'2024-01-02' AS dt, array(1, 2) AS a, named_struct('k', 'v') AS st")
    cols = body["manifest"]["schema"]["columns"]
    assert [c["name"] for c in cols] == ["i", "l", "s", "n", "b", "d", "ts", "dt", "a", "st"]
    assert [c["type_name"] for c in cols] == ["INT", "LONG", "STRING", "INT", "BOOLEAN", "DECIMAL", "TIMESTAMP",
                                              "DATE", "ARRAY", "STRUCT"]
    assert [c["position"] for c in cols] == list(range(10))
    assert body["manifest"]["format"] == "JSON_ARRAY" and body["manifest"]["total_row_count"] == 1
    assert body["result"]["chunk_index"] == 0 and body["result"]["row_count"] == 1
    assert body["result"]["data_array"] == [["1", "2", "x", None, "true", "1.250", "2024-01-02T03:04:05.123456Z",
                                              "2024-01-02", "[1,2]", '{"k":"v"}']]
    code, body, _ = local.submit("SELECT * FROM no_such_catalog.no_such_schema.t")
    assert code == 200 and body["status"]["state"] == "FAILED"
    assert body["status"]["error"]["message"].startswith("[TABLE_OR_VIEW_NOT_FOUND]")
    code, body, _ = local.submit("SELECT 1", wait="3s")
    assert code == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_create_copy_into_twice_alter_and_describe(local):
    run = uuid.uuid4().hex[:8]
    f1 = local.put_parquet(f"stage/{run}/orders/a.parquet", _orders([1, 2, 3], ["a", "b", "c"], [1, 2, 3]))
    local.put_parquet(f"stage/{run}/orders/b.parquet", _orders([4], ["d"], [4]))
    table = f"main.t{run}.orders"
    local.sql(f"CREATE TABLE IF NOT EXISTS {table} {ORDERS_DDL}")
    local.sql(f"CREATE TABLE IF NOT EXISTS {table} {ORDERS_DDL}")  # again: no-op

    copy = (f"COPY INTO {table} FROM 's3://{BUCKET}/stage/{run}/orders/' FILEFORMAT = PARQUET "
            "FILES = ('a.parquet', 'b.parquet') FORMAT_OPTIONS ('mergeSchema' = 'true') "
            "COPY_OPTIONS ('mergeSchema' = 'true')")
    first = local.sql(copy)
    assert [c["name"] for c in first["manifest"]["schema"]["columns"]] == ["num_affected_rows", "num_inserted_rows"]
    assert first["result"]["data_array"] == [["4", "4"]]
    assert local.sql(copy)["result"]["data_array"] == [["0", "0"]]  # same files: skipped
    assert local.rows(f"SELECT count(*) FROM {table}") == [["4"]]

    # a new file with an extra column, loaded with mergeSchema
    import pyarrow as pa

    extra = _orders([5], ["e"], [5]).append_column("region", pa.array(["eu"]))
    local.put_parquet(f"stage/{run}/orders/c.parquet", extra)
    res = local.sql(f"COPY INTO {table} FROM 's3://{BUCKET}/stage/{run}/orders' FILEFORMAT = PARQUET "
                    "COPY_OPTIONS ('mergeSchema' = 'true')")  # whole directory: only c.parquet is new
    assert res["result"]["data_array"] == [["1", "1"]]
    assert local.rows(f"SELECT id, region FROM {table} WHERE region IS NOT NULL") == [["5", "eu"]]

    local.sql(f"ALTER TABLE {table} ADD COLUMNS (`note x` STRING, amount DECIMAL(12,2))")
    described = local.rows(f"DESCRIBE TABLE {table}")
    assert ["note x", "string", None] in described and ["amount", "decimal(12,2)", None] in described
    code, body, _ = local.submit(f"ALTER TABLE {table} ADD COLUMNS (amount INT)")
    assert body["status"]["state"] == "FAILED" and "FIELD_ALREADY_EXISTS" in body["status"]["error"]["message"]
    local.sql(f"ALTER TABLE {table} ALTER COLUMN _kafka_partition TYPE BIGINT")  # type widening
    assert ["_kafka_partition", "bigint", None] in local.rows(f"DESCRIBE TABLE {table}")
    assert local.rows(f"SELECT count(*) FROM read_files('{f1}', format => 'parquet')") == [["3"]]
    hist = local.rows(f"DESCRIBE HISTORY {table} LIMIT 1")
    assert hist[0][2] == "CHANGE COLUMN"


def test_delta_table_on_s3_and_missing_file(local):
    run = uuid.uuid4().hex[:8]
    local.put_parquet(f"stage/{run}/x/a.parquet", _orders([1, 2], ["a", "b"], [1, 2]))
    table = f"main.s3{run}.orders"
    local.sql(f"CREATE TABLE {table} {ORDERS_DDL.replace('USING DELTA', f'USING DELTA LOCATION ' + repr(f's3://{BUCKET}/tables/{run}/orders'))}")
    copy = f"COPY INTO {table} FROM 's3://{BUCKET}/stage/{run}/x/' FILEFORMAT = PARQUET FILES = ('a.parquet')"
    assert local.sql(copy)["result"]["data_array"] == [["2", "2"]]
    assert local.sql(copy)["result"]["data_array"] == [["0", "0"]]
    keys = [o["Key"] for o in local.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"tables/{run}/orders/_delta_log/")["Contents"]]
    assert keys, "the Delta log is on S3"
    code, body, _ = local.submit(f"COPY INTO {table} FROM 's3://{BUCKET}/stage/{run}/x/' FILEFORMAT = PARQUET "
                                 "FILES = ('missing.parquet')")
    assert body["status"]["state"] == "FAILED" and "PATH_NOT_FOUND" in body["status"]["error"]["message"]


def test_merge_with_tombstone_guard_and_parameters(local):
    run = uuid.uuid4().hex[:8]
    table = f"main.m{run}.customers"
    local.sql(f"CREATE TABLE {table} {ORDERS_DDL}")
    cols = "id, name, _cdc_ts, _cdc_deleted, _kafka_partition, _kafka_offset"

    def merge(*paths):
        union = " UNION ALL ".join(f"SELECT {cols} FROM parquet.`{p}`" for p in paths)
        newer = ("(s._cdc_ts > t._cdc_ts OR (s._cdc_ts = t._cdc_ts AND (s._kafka_partition > t._kafka_partition "
                 "OR (s._kafka_partition = t._kafka_partition AND s._kafka_offset > t._kafka_offset))))")
        return local.sql(
            f"MERGE INTO {table} AS t USING (SELECT {cols} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY id "
            f"ORDER BY _cdc_ts DESC, _kafka_partition DESC, _kafka_offset DESC) AS rn FROM ({union}) AS u) AS d "
            f"WHERE rn = 1) AS s ON t.id = s.id "
            f"WHEN MATCHED AND {newer} THEN UPDATE SET * "
            f"WHEN NOT MATCHED THEN INSERT *")

    b1 = local.put_parquet(f"stage/{run}/1.parquet", _orders([1, 2, 2], ["a", "b", "b2"], [1, 1, 2], offsets=[0, 1, 2]))
    b2 = local.put_parquet(f"stage/{run}/2.parquet", _orders([1], [None], [5], deleted=[True], offsets=[3]))
    b3 = local.put_parquet(f"stage/{run}/3.parquet", _orders([1, 3], ["stale", "c"], [3, 6], offsets=[4, 5]))

    r1 = merge(b1)
    assert [c["name"] for c in r1["manifest"]["schema"]["columns"]] == [
        "num_affected_rows", "num_updated_rows", "num_deleted_rows", "num_inserted_rows"]
    assert r1["result"]["data_array"] == [["2", "0", "0", "2"]]
    assert merge(b2)["result"]["data_array"] == [["1", "1", "0", "0"]]  # the tombstone
    assert merge(b3)["result"]["data_array"] == [["1", "0", "0", "1"]]  # older update of 1 ignored
    assert merge(b1, b3)["result"]["data_array"] == [["0", "0", "0", "0"]]  # replays change nothing
    rows = local.rows(f"SELECT id, name, _cdc_deleted FROM {table} ORDER BY id")
    assert rows == [["1", None, "true"], ["2", "b2", "false"], ["3", "c", "false"]]

    # named parameters: typed, null, and a value that would be SQL if it were concatenated
    got = local.rows(
        f"SELECT id FROM {table} WHERE id >= :min_id AND _cdc_ts < :before AND coalesce(name, '') <> :evil "
        "AND :nothing IS NULL ORDER BY id",
        params=[{"name": "min_id", "value": "2", "type": "BIGINT"},
                {"name": "before", "value": "2030-01-01T00:00:00Z", "type": "TIMESTAMP"},
                {"name": "evil", "value": "x' OR '1'='1"},
                {"name": "nothing", "type": "INT"}])
    assert got == [["2"], ["3"]]
    code, body, _ = local.submit("SELECT :a", params=[{"name": "a; DROP", "value": "1"}])
    assert code == 400


def test_slow_statement_polling(local):
    local.faults(body={"delay_seconds": 2, "delay_statements": 1})
    t0 = time.time()
    code, body, _ = local.submit("SELECT 42 AS answer", wait="0s")
    assert code == 200 and body["status"]["state"] in ("PENDING", "RUNNING")
    assert "result" not in body
    done = local.poll(body["statement_id"])
    assert done["status"]["state"] == "SUCCEEDED" and done["result"]["data_array"] == [["42"]]
    assert time.time() - t0 >= 2
    chunk = local.http("GET", f"{local.warehouse}/api/2.0/sql/statements/{body['statement_id']}/result/chunks/0")[1]
    assert chunk["data_array"] == [["42"]]
    # wait_timeout shorter than the statement: CONTINUE returns RUNNING, the statement goes on
    local.faults(body={"delay_seconds": 7, "delay_statements": 1})
    code, body, _ = local.submit("SELECT 1", wait="5s")
    assert body["status"]["state"] in ("PENDING", "RUNNING")
    assert local.poll(body["statement_id"])["status"]["state"] == "SUCCEEDED"


def test_cancel(local):
    # explicit cancel of a statement held by the delay fault
    local.faults(body={"delay_seconds": 30, "delay_statements": 1})
    code, body, _ = local.submit("SELECT 1", wait="0s")
    sid = body["statement_id"]
    code, out, _ = local.http("POST", f"{local.warehouse}/api/2.0/sql/statements/{sid}/cancel", {})
    assert code == 200
    assert local.poll(sid, timeout=10)["status"]["state"] == "CANCELED"
    # on_wait_timeout=CANCEL
    local.faults(body={"delay_seconds": 30, "delay_statements": 1})
    t0 = time.time()
    code, body, _ = local.submit("SELECT 1", wait="5s", on_wait_timeout="CANCEL")
    assert body["status"]["state"] == "CANCELED" and time.time() - t0 < 15
    # a query really running in Sail is interrupted
    code, body, _ = local.submit("SELECT sum(id % 7) FROM range(0, 50000000000)", wait="0s")
    sid = body["statement_id"]
    time.sleep(1.5)
    local.http("POST", f"{local.warehouse}/api/2.0/sql/statements/{sid}/cancel", {})
    assert local.poll(sid, timeout=20)["status"]["state"] == "CANCELED"
    t0 = time.time()
    assert local.rows("SELECT 1") == [["1"]]
    assert time.time() - t0 < 5


def test_http_faults(local):
    local.faults(body={"http_429": 2, "http_503": 1})
    for expected in (429, 429, 503):
        code, body, headers = local.submit("SELECT 1")
        assert code == expected, body
        assert headers.get("Retry-After") == "1"
        assert body["error_code"] == ("TOO_MANY_REQUESTS" if expected == 429 else "TEMPORARILY_UNAVAILABLE")
    assert local.rows("SELECT 1") == [["1"]]


def test_fail_transient(local):
    local.faults(body={"fail_transient": 1})
    code, body, _ = local.submit("SELECT 1")
    assert body["status"]["state"] == "FAILED"
    assert body["status"]["error"]["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert local.rows("SELECT 1") == [["1"]]
    snap = local.faults("GET")
    assert snap["fail_transient"] == 0


def test_crash_after_next_then_restart_keeps_tables_and_ledger(local):
    run = uuid.uuid4().hex[:8]
    local.put_parquet(f"stage/{run}/a.parquet", _orders([1, 2], ["a", "b"], [1, 2]))
    table = f"main.c{run}.orders"
    local.sql(f"CREATE TABLE {table} {ORDERS_DDL}")
    copy = f"COPY INTO {table} FROM 's3://{BUCKET}/stage/{run}/' FILEFORMAT = PARQUET FILES = ('a.parquet')"
    local.faults(body={"crash_after_next": True})
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        local.submit(copy)  # executes and commits, then the warehouse dies before answering
    deadline = time.time() + 20
    while "warehouse: stopped" not in local.services("status", check=False).stdout:
        assert time.time() < deadline, "the warehouse did not exit"
        time.sleep(0.2)
    local.services("start", "warehouse")
    # the retry of the lost request loads nothing twice; the table survived the restart
    assert local.sql(copy)["result"]["data_array"] == [["0", "0"]]
    assert local.rows(f"SELECT count(*) FROM {table}") == [["2"]]
    assert ["id", "bigint", None] in local.rows(f"DESCRIBE TABLE {table}")


def test_schema_registry(local):
    schema = json.dumps({"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]})

    def call(method, path, body=None):
        return local.http(method, f"{local.registry}{path}", body, token=None)

    code, out, _ = call("POST", "/subjects/orders-value/versions", {"schema": schema})
    assert code == 200 and isinstance(out["id"], int)
    sid = out["id"]
    spaced = json.dumps(json.loads(schema), indent=2)
    assert call("POST", "/subjects/orders-value/versions", {"schema": spaced})[1] == {"id": sid}
    code, out, _ = call("GET", f"/schemas/ids/{sid}")
    assert code == 200 and json.loads(out["schema"]) == json.loads(schema)
    assert "orders-value" in call("GET", "/subjects")[1]
    latest = call("GET", "/subjects/orders-value/versions/latest")[1]
    assert latest["id"] == sid and latest["version"] == 1 and latest["subject"] == "orders-value"
    code, out, _ = call("GET", "/schemas/ids/999999")
    assert code == 404 and out["error_code"] == 40403


# ---- golden SQL of the product and the gaps it found ------------------------------------
GOLDEN = os.path.join(ROOT, "shared", "tests", "golden", "plan")


def _golden(name: str) -> list[str]:
    """The statements of one golden file (split at `;` + newline, as the product writes them)."""
    with open(os.path.join(GOLDEN, name)) as f:
        text = f.read()
    return [s.strip() for s in text.split(";\n") if s.strip()]


def _failed(local, statement, params=None) -> dict:
    code, body, _ = local.submit(statement, params)
    assert code == 200, body
    assert body["status"]["state"] == "FAILED", body
    return body["status"]["error"]


def test_add_columns_on_tables_with_array_struct_and_map_columns(local):
    run = uuid.uuid4().hex[:8]
    table = f"main.arr{run}.t"
    local.sql(f"CREATE TABLE {table} (id BIGINT, tags ARRAY<STRING>, s STRUCT<a: INT, b: ARRAY<INT>>, "
              "m MAP<STRING, INT>, flag BOOLEAN) USING DELTA TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
    before = local.rows(f"DESCRIBE TABLE {table}")  # Sail's own answer (registered with its columns)
    local.sql(f"INSERT INTO {table} SELECT 1 AS id, array('x', 'y') AS tags, named_struct('a', 1, 'b', array(2)) AS s, "
              "map('k', 3) AS m, true AS flag")
    local.sql(f"ALTER TABLE {table} ADD COLUMNS (note STRING COMMENT 'a note', `more tags` ARRAY<STRING>)")
    described = local.rows(f"DESCRIBE TABLE {table}")  # now answered from the Delta log: same format
    assert described[: len(before)] == before
    assert described[len(before):] == [["note", "string", None], ["more tags", "array<string>", None]]
    assert local.rows(f"SELECT id, tags, s, m, note FROM {table}") == [["1", '["x","y"]', '{"a":1,"b":[2]}', '{"k":3}', None]]
    extended = local.rows(f"DESCRIBE TABLE EXTENDED {table}")
    assert extended[: len(described)] == described and any(r[0] == "Location" for r in extended)

    # failures leave the table registered and readable
    assert "FIELD_ALREADY_EXISTS" in _failed(local, f"ALTER TABLE {table} ADD COLUMNS (note INT)")["message"]
    _failed(local, f"ALTER TABLE {table} ADD COLUMNS (bad NO_SUCH_TYPE)")
    assert local.rows(f"SELECT count(*) FROM {table}") == [["1"]]

    # the other statements the product runs on such a table
    local.sql(f"ALTER TABLE {table} ALTER COLUMN s.a TYPE BIGINT")
    local.sql(f"ALTER TABLE {table} ALTER COLUMN id TYPE DECIMAL(22,0)")
    assert ["id", "decimal(22,0)", None] in local.rows(f"DESCRIBE TABLE {table}")
    assert ["s", "struct<a:bigint,b:array<int>>", None] in local.rows(f"DESCRIBE TABLE {table}")
    assert local.sql(f"UPDATE {table} SET tags = array('z') WHERE flag = true")["result"]["data_array"] == [["1"]]
    local.sql(f"INSERT INTO {table} (id, tags, s, m, flag, note, `more tags`) SELECT 2, array('q'), "
              "named_struct('a', 5, 'b', array(6)), map('j', 1), false, 'n', array('w')")
    assert local.rows(f"SELECT id, tags, `more tags` FROM {table} ORDER BY id") == [
        ["1", '["z"]', None], ["2", '["q"]', '["w"]']]

    # tables with ARRAY columns survive a warehouse restart (registered again from the Delta log)
    local.services("restart", "warehouse")
    assert local.rows(f"DESCRIBE TABLE {table}")[-2:] == [["note", "string", None], ["more tags", "array<string>", None]]
    assert local.rows(f"SELECT count(*) FROM {table}") == [["2"]]
    local.sql(f"ALTER TABLE {table} ADD COLUMNS (after_restart INT)")
    assert local.rows(f"SELECT after_restart FROM {table} WHERE id = 2") == [[None]]


def test_nested_add_columns(local):
    run = uuid.uuid4().hex[:8]
    table = f"main.nest{run}.t"
    local.sql(f"CREATE TABLE {table} (id BIGINT, `we``ird` STRUCT<`x y`: INT, inner: STRUCT<p: STRING>>, "
              "tags ARRAY<STRUCT<e: INT>>) USING DELTA TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
    local.sql(f"INSERT INTO {table} SELECT 1 AS id, named_struct('x y', 7, 'inner', named_struct('p', 'v')) AS w, "
              "array(named_struct('e', 1)) AS tags")
    local.sql(f"ALTER TABLE {table} ADD COLUMNS (`we``ird`.`f` INT, `WE``IRD`.`inner`.`g` TIMESTAMP, "
              "top STRUCT<a: INT>, top.b STRING)")
    described = {r[0]: r[1] for r in local.rows(f"DESCRIBE TABLE {table}")}
    assert described["we`ird"] == "struct<x y:int,inner:struct<p:string,g:timestamp>,f:int>"
    assert described["top"] == "struct<a:int,b:string>"
    assert local.rows(f"SELECT `we``ird` FROM {table}") == [['{"x y":7,"inner":{"p":"v","g":null},"f":null}']]
    local.sql(f"ALTER TABLE {table} ADD COLUMNS IF NOT EXISTS (`we``ird`.`f` INT, `we``ird`.h BIGINT)")
    assert "h:bigint" in {r[0]: r[1] for r in local.rows(f"DESCRIBE TABLE {table}")}["we`ird"]
    assert "FIELD_ALREADY_EXISTS" in _failed(local, f"ALTER TABLE {table} ADD COLUMNS (`we``ird`.`F` INT)")["message"]
    assert "UNRESOLVED_COLUMN" in _failed(local, f"ALTER TABLE {table} ADD COLUMNS (nope.f INT)")["message"]
    assert "not a STRUCT" in _failed(local, f"ALTER TABLE {table} ADD COLUMNS (id.f INT)")["message"]
    assert "ARRAY" in _failed(local, f"ALTER TABLE {table} ADD COLUMNS (tags.element.f INT)")["message"]
    # the new field can be written
    local.sql(f"UPDATE {table} SET `we``ird` = named_struct('x y', 8, 'inner', named_struct('p', 'v', 'g', "
              "TIMESTAMP'2024-01-02 03:04:05'), 'f', 9, 'h', CAST(10 AS BIGINT)) WHERE id = 1")
    assert local.rows(f"SELECT `we``ird`.f, `we``ird`.inner.g FROM {table}") == [["9", "2024-01-02T03:04:05.000Z"]]


def test_parameters_in_commands(local):
    run = uuid.uuid4().hex[:8]
    table = f"main.par{run}.t"
    local.sql(f"CREATE TABLE {table} (id BIGINT, n INT, s STRING, b BOOLEAN, d DECIMAL(10,2), ts TIMESTAMP) USING DELTA")
    nasty = ["x' OR '1'='1", "back\\slash \\' \\\\' end\\", "it's \"q\" `b` -- c /* d */ ; DROP TABLE t", "line\nbreak\ttab",
             "\\u0041 \\n ${x} :p ?", "ünï €", "'", "\\"]
    insert = f"INSERT INTO {table} SELECT :id AS id, :n AS n, :s AS s, :b AS b, :d AS d, :ts AS ts"
    for i, value in enumerate(nasty):
        res = local.sql(insert, params=[
            {"name": "id", "value": str(i), "type": "BIGINT"}, {"name": "n", "value": str(i * 10), "type": "INT"},
            {"name": "s", "value": value}, {"name": "b", "value": "true" if i % 2 else "false", "type": "BOOLEAN"},
            {"name": "d", "value": f"{i}.25", "type": "DECIMAL(10,2)"},
            {"name": "ts", "value": f"2024-01-0{i + 1}T00:00:00Z", "type": "TIMESTAMP"}])
        assert res["result"]["data_array"] == [["1", "1"]]
    # every value arrived unchanged: compared through a query parameter (Spark Connect argument)
    for i, value in enumerate(nasty):
        assert local.rows(f"SELECT id FROM {table} WHERE s = :s", params=[{"name": "s", "value": value}]) == [[str(i)]]
    rows = local.rows(f"SELECT id, n, s, b, d, ts FROM {table} ORDER BY id")
    assert [r[2] for r in rows] == nasty
    assert rows[1] == ["1", "10", nasty[1], "true", "1.25", "2024-01-02T00:00:00.000Z"]

    # null values, typed
    local.sql(insert, params=[{"name": "id", "value": "100", "type": "BIGINT"}, {"name": "n", "type": "INT"},
                              {"name": "s"}, {"name": "b", "type": "BOOLEAN"}, {"name": "d", "type": "DECIMAL(10,2)"},
                              {"name": "ts", "type": "TIMESTAMP"}])
    assert local.rows(f"SELECT n, s, b, d, ts FROM {table} WHERE id = 100") == [[None] * 5]

    # UPDATE / DELETE / MERGE with every type
    res = local.sql(f"UPDATE {table} SET s = :s, d = :d WHERE b = :b AND n >= :n AND id <> :id",
                    params=[{"name": "s", "value": "upd'ated"}, {"name": "d", "value": "9.99", "type": "DECIMAL(10,2)"},
                            {"name": "b", "value": "true", "type": "BOOLEAN"}, {"name": "n", "value": "30", "type": "INT"},
                            {"name": "id", "value": "5", "type": "BIGINT"}])
    assert res["result"]["data_array"] == [["2"]]  # ids 3 and 7
    assert local.rows(f"SELECT id FROM {table} WHERE s = 'upd\\'ated' ORDER BY id") == [["3"], ["7"]]
    res = local.sql(f"DELETE FROM {table} WHERE b = true AND ts < :cutoff AND d > :d",
                    params=[{"name": "cutoff", "value": "2024-01-05T00:00:00Z", "type": "TIMESTAMP"},
                            {"name": "d", "value": "1.00", "type": "DECIMAL(10,2)"}])
    assert res["result"]["data_array"] == [["2"]]  # ids 1 and 3
    assert local.rows(f"SELECT id FROM {table} WHERE b = true ORDER BY id") == [["5"], ["7"]]
    res = local.sql(f"MERGE INTO {table} AS t USING (SELECT :id AS id, :s AS s) AS src ON t.id = src.id "
                    "WHEN MATCHED THEN UPDATE SET t.s = src.s WHEN NOT MATCHED THEN INSERT (id, s) VALUES (src.id, src.s)",
                    params=[{"name": "id", "value": "5", "type": "BIGINT"}, {"name": "s", "value": "mer'ged"}])
    assert res["result"]["data_array"] == [["1", "1", "0", "0"]]
    assert local.rows(f"SELECT s FROM {table} WHERE id = 5") == [["mer'ged"]]
    # a marker without a parameter, and a bad type
    err = _failed(local, f"DELETE FROM {table} WHERE id = :nope", params=[{"name": "other", "value": "1"}])
    assert "UNBOUND_SQL_PARAMETER" in err["message"]
    code, body, _ = local.submit(f"DELETE FROM {table} WHERE id = :p",
                                 params=[{"name": "p", "value": "1", "type": "INT) OR (1=1"}])
    assert code == 400


def test_quoted_table_names_get_a_working_managed_location(local):
    run = uuid.uuid4().hex[:8]
    schema = f"`main`.`sh op{run}`"
    tables = [f"{schema}.`or``ders.v2`", f"{schema}.`Ünï €%41 ~x`", f"{schema}.`a.b`", f"`main`.`sh op{run}.a`.`b`"]
    for i, t in enumerate(tables):
        local.sql(f"CREATE TABLE IF NOT EXISTS {t} (id BIGINT, tags ARRAY<STRING>) USING DELTA")
        local.sql(f"INSERT INTO {t} SELECT {i} AS id, array('x') AS tags")
    for i, t in enumerate(tables):  # distinct tables (`a.b` in one schema is not `b` in schema `sh op.a`)
        assert local.rows(f"SELECT id FROM {t}") == [[str(i)]]
        detail = local.sql(f"DESCRIBE DETAIL {t}")
        loc = detail["result"]["data_array"][0][3]
        leaf = loc.rsplit("/", 1)[1]
        assert all(c.isalnum() or c in "_.-" for c in leaf), loc  # no %, space, backtick, ~
        assert os.path.isdir(os.path.join(loc, "_delta_log")) and any(f.endswith(".parquet") for f in os.listdir(loc))
    loc0 = local.sql(f"DESCRIBE DETAIL {tables[0]}")["result"]["data_array"][0][3]
    assert loc0.endswith(f"/main/sh-20op{run}/or-60ders.v2")
    t = tables[0]
    local.sql(f"ALTER TABLE {t} ADD COLUMNS (c STRING)")
    local.sql(f"MERGE INTO {t} AS x USING (SELECT CAST(0 AS BIGINT) AS id, 'c' AS c) AS s ON x.id = s.id "
              "WHEN MATCHED THEN UPDATE SET x.c = s.c")
    local.sql(f"DELETE FROM {t} WHERE c = 'nothing'")
    assert local.rows(f"SELECT id, c FROM {t}") == [["0", "c"]]
    assert local.rows(f"DESCRIBE HISTORY {t} LIMIT 1")[0][2] == "MERGE"
    local.sql(f"DROP TABLE {t}")
    assert not os.path.exists(loc0)
    assert "TABLE_OR_VIEW_NOT_FOUND" in _failed(local, f"SELECT * FROM {t}")["message"]
    local.sql(f"CREATE TABLE {t} (id BIGINT) USING DELTA")  # the same name again: same, fresh location
    assert local.sql(f"DESCRIBE DETAIL {t}")["result"]["data_array"][0][3] == loc0
    assert local.rows(f"SELECT count(*) FROM {t}") == [["0"]]


def test_staged_keys_with_percent_quote_backtick_and_space(local):
    """Sail percent-decodes s3:// paths; the product's staged keys contain literal %XX."""
    import pyarrow as pa

    run = uuid.uuid4().hex[:8]
    data = pa.table({"id": pa.array([1, 2], pa.int64()), "v": pa.array(["a", "b"])})
    dirs = [f"shop.order%2Eitems{run}", f"main.sh%20op{run}", f"sp ace{run}", f"it's here{run}", f"back`tick{run}",
            f"pct%zz{run}", f"pct%2525{run}", f"hash#y{run}"]
    for d in dirs:
        local.put_parquet(f"staging/{d}/0/0-9.parquet", data)
    local.put_parquet(f"staging/shop.order.items{run}/0/0-9.parquet", data.slice(0, 1))  # what Sail would decode to
    for d in dirs:
        path = f"s3://{BUCKET}/staging/{d}/0/0-9.parquet"
        quoted = "`" + path.replace("`", "``") + "`"
        assert local.rows(f"SELECT count(*) FROM parquet.{quoted}") == [["2"]], path
        assert local.rows(f"SELECT count(*) FROM parquet.`" + path.replace("`", "``").rsplit("/", 1)[0] + "/`") == [["2"]], path
        lit = "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"
        assert local.rows(f"SELECT count(*) FROM read_files({lit}, format => 'parquet')") == [["2"]], path
    # COPY INTO from such directories, FILES and whole directory
    table = f"main.pct{run}.t"
    local.sql(f"CREATE TABLE {table} (id BIGINT, v STRING) USING DELTA")
    for d in dirs[:3]:
        src = f"s3://{BUCKET}/staging/{d}/0/".replace("'", "\\'")
        assert local.sql(f"COPY INTO {table} FROM '{src}' FILEFORMAT = PARQUET FILES = ('0-9.parquet')")[
            "result"]["data_array"] == [["2", "2"]]
    src = f"s3://{BUCKET}/staging/{dirs[3]}/0".replace("'", "\\'")
    assert local.sql(f"COPY INTO {table} FROM (SELECT id, v FROM '{src}') FILEFORMAT = PARQUET")[
        "result"]["data_array"] == [["2", "2"]]
    local.put_parquet(f"staging/{dirs[0]}/0/o'clock.parquet", data)
    src = f"s3://{BUCKET}/staging/{dirs[0]}/0/"
    assert local.sql(f"COPY INTO {table} FROM '{src}' FILEFORMAT = PARQUET FILES = ('o\\'clock.parquet')")[
        "result"]["data_array"] == [["2", "2"]]
    assert local.rows(f"SELECT count(*) FROM {table}") == [["10"]]
    # a missing file fails as on Databricks (Sail alone would read no rows)
    err = _failed(local, f"SELECT count(*) FROM parquet.`s3://{BUCKET}/staging/{dirs[0]}/0/missing.parquet`")
    assert "PATH_NOT_FOUND" in err["message"]
    err = _failed(local, f"INSERT INTO {table} SELECT id, v FROM parquet.`s3://{BUCKET}/staging/nothing{run}/`")
    assert "PATH_NOT_FOUND" in err["message"]


def test_golden_plan_sql(local):
    """Runs the SQL the product emits (shared/tests/golden/plan/*.sql) as it is, on data staged
    at the keys it names (bucket deltasink-staging, percent-encoded table names in the keys)."""
    import datetime as dt

    import pyarrow as pa

    staging = "deltasink-staging"
    with contextlib.suppress(Exception):
        local.s3.create_bucket(Bucket=staging)

    def put(path, table):
        import pyarrow.parquet as pq

        assert path.startswith(f"s3://{staging}/")
        buf = io.BytesIO()
        pq.write_table(table, buf)
        local.s3.put_object(Bucket=staging, Key=path[len(f"s3://{staging}/"):], Body=buf.getvalue())

    def ts(day, hour=0):
        return dt.datetime(2024, 1, day, hour, tzinfo=dt.timezone.utc)

    evil = "evil'); DROP TABLE x; -- \\"
    weird = pa.struct([("x y", pa.int32()), ("z", pa.timestamp("us", tz="UTC"))])

    def upsert_rows(ids, deleted, days, offsets):
        n = len(ids)
        return pa.table({
            "id": pa.array(ids, pa.int32()), evil: pa.array(["e"] * n), "Customer Name": pa.array([f"c{i}" for i in ids]),
            "a.b": pa.array([dt_dec(i) for i in ids], pa.decimal128(10, 2)), "qty": pa.array([i * 10 for i in ids], pa.int64()),
            "_cdc_op": pa.array(["d" if x else "u" for x in deleted]), "_cdc_ts": pa.array([ts(d) for d in days], pa.timestamp("us", tz="UTC")),
            "_cdc_deleted": pa.array(deleted), "_cdc_position": pa.array([f"{o:020d}" for o in offsets]),
            "_kafka_topic": pa.array(["cdc.shop.orders"] * n), "_kafka_partition": pa.array([0] * n, pa.int32()),
            "_kafka_offset": pa.array(offsets, pa.int64()), "_kafka_timestamp": pa.array([ts(d) for d in days], pa.timestamp("us", tz="UTC")),
            "we`ird": pa.array([{"x y": i, "z": ts(1)} for i in ids], weird), "tags": pa.array([["t"]] * n, pa.list_(pa.string())),
        })

    def dt_dec(i):
        from decimal import Decimal

        return Decimal(f"{i}.25")

    # the upsert table: create, evolve, MERGE from two staged files, project, hard delete
    for s in _golden("create_upsert.sql"):
        local.sql(s)
    for s in _golden("evolve.sql"):
        local.sql(s)
    target = "`main`.`sh op`.`or``ders.v2`"
    described = {r[0]: r[1] for r in local.rows(f"DESCRIBE TABLE {target}")}
    assert described["id"] == "bigint" and described["a.b"] == "decimal(12,4)"
    assert described["we`ird"] == "struct<x y:int,z:timestamp>" and described["tags"] == "array<string>"
    merge = _golden("merge_upsert.sql")[0]
    paths = sorted(set(re.findall(r"parquet\.`((?:[^`]|``)*)`", merge)))
    assert len(paths) == 2 and any("%2E" in p for p in paths) and any("'" in p for p in paths)
    put(paths[1].replace("``", "`"), upsert_rows([1, 2, 3], [False, False, True], [1, 1, 1], [1, 2, 3]))  # %2E key
    put(paths[0].replace("``", "`"), upsert_rows([4, 5, 1], [True, False, False], [9, 2, 3], [4, 5, 6]))  # it's here
    assert local.sql(merge)["result"]["data_array"] == [["5", "0", "0", "5"]]
    assert local.sql(merge)["result"]["data_array"] == [["0", "0", "0", "0"]]  # a replay changes nothing
    assert local.rows(f"SELECT id, `_cdc_deleted` FROM {target} ORDER BY id") == [
        ["1", "false"], ["2", "false"], ["3", "true"], ["4", "true"], ["5", "false"]]
    for s in _golden("project.sql"):
        assert len(local.rows(s)) == 3
    delete = _golden("hard_delete_tombstones.sql")[0]
    res = local.sql(delete, params=[{"name": "cutoff", "value": "2024-01-05T00:00:00Z", "type": "TIMESTAMP"}])
    assert res["result"]["data_array"] == [["1"]]  # id 3; id 4's tombstone is newer than the cutoff
    assert local.rows(f"SELECT id FROM {target} ORDER BY id") == [["1"], ["2"], ["4"], ["5"]]

    # the raw table: create, MERGE (append, deduplicated by topic/partition/offset)
    for s in _golden("create_raw.sql"):
        local.sql(s)
    merge = _golden("merge_append_raw.sql")[0]
    for i, p in enumerate(sorted(set(re.findall(r"parquet\.`((?:[^`]|``)*)`", merge)))):
        put(p, pa.table({"key": ["k"], "value": ["v"], "stream_record_timestamp": pa.array([ts(1)], pa.timestamp("us", tz="UTC")),
                         "kafka_topic": ["events"], "kafka_partition": pa.array([i], pa.int32()),
                         "kafka_offset": pa.array([0], pa.int64()), "record_source": ["s"]}))
    assert local.sql(merge)["result"]["data_array"] == [["2", "0", "0", "2"]]
    assert local.sql(merge)["result"]["data_array"] == [["0", "0", "0", "0"]]

    # the append table (created here: no golden CREATE), COPY INTO with mergeSchema, MERGE
    local.sql("CREATE TABLE IF NOT EXISTS `shop`.`order events` (`id` INT, `n` BIGINT, `_cdc_op` STRING, "
              "`_cdc_ts` TIMESTAMP, `_cdc_deleted` BOOLEAN, `_cdc_position` STRING, `_kafka_topic` STRING, "
              "`_kafka_partition` INT, `_kafka_offset` BIGINT, `_kafka_timestamp` TIMESTAMP) USING DELTA")

    def append_rows(offsets, n_type=pa.int64()):
        k = len(offsets)
        return pa.table({
            "id": pa.array(offsets, pa.int32()), "n": pa.array(offsets, n_type), "_cdc_op": ["c"] * k,
            "_cdc_ts": pa.array([ts(1)] * k, pa.timestamp("us", tz="UTC")), "_cdc_deleted": [False] * k,
            "_cdc_position": [str(o) for o in offsets], "_kafka_topic": ["orders"] * k,
            "_kafka_partition": pa.array([3] * k, pa.int32()), "_kafka_offset": pa.array(offsets, pa.int64()),
            "_kafka_timestamp": pa.array([ts(1)] * k, pa.timestamp("us", tz="UTC")), "extra": pa.array([True] * k)})

    copies = _golden("copy_into.sql")[1:]  # the first one lists 1000+ files; these name one each
    for s in copies:
        src = re.search(r"FROM '((?:[^'\\]|\\.)*)'\)", s).group(1).replace("\\'", "'")
        name = re.search(r"FILES = \('((?:[^'\\]|\\.)*)'\)", s).group(1).replace("\\'", "'")
        assert "%20" in src
        offset = {"10000-10009.parquet": [10000], "old.parquet": [1], "o'clock.parquet": [2]}[name]
        put(src + name, append_rows(offset, pa.int32() if name == "old.parquet" else pa.int64()))
        assert local.sql(s)["result"]["data_array"] == [["1", "1"]], s[-80:]
        assert local.sql(s)["result"]["data_array"] == [["0", "0"]]  # loaded files are skipped
    assert ["extra", "boolean", None] in local.rows("DESCRIBE TABLE `shop`.`order events`")
    merge = _golden("merge_append.sql")[0]
    srcs = sorted(set(re.findall(r"parquet\.`((?:[^`]|``)*)`", merge)))
    put(srcs[0], append_rows([100, 101], pa.int32()))  # 0-99.parquet: n cast to BIGINT by the product
    put(srcs[1], append_rows([101, 102]))
    assert local.sql(merge)["result"]["data_array"] == [["3", "0", "0", "3"]]
    assert local.rows("SELECT count(*) FROM `shop`.`order events`") == [["6"]]
