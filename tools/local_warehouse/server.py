"""HTTP front end: the Databricks SQL Statement Execution API 2.0 on loopback.

Endpoints
  POST /api/2.0/sql/statements                      submit (waits up to wait_timeout)
  GET  /api/2.0/sql/statements/{id}                 poll
  POST /api/2.0/sql/statements/{id}/cancel          cancel
  GET  /api/2.0/sql/statements/{id}/result/chunks/0 the (single) result chunk
  GET  /api/2.0/sql/warehouses[/{id}]               a RUNNING warehouse, for connection checks
  POST /oidc/v1/token                               OAuth M2M client-credentials tokens
  GET  /_local/health                               liveness (no auth)
  GET|POST|DELETE /_local/faults                    fault injection (no auth, loopback only)
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from .engine import Canceled, Engine, ExecContext, WarehouseError, map_exception
from .results import Result
from .sqltext import SqlSyntaxError
from .translate import Param, UnboundParameter, bind_parameters_as_literals, classify, needs_literal_parameters

log = logging.getLogger("local_warehouse.server")

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "CLOSED")
_TYPE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.error_code, self.message, self.headers = status, error_code, message, headers or {}


class Faults:
    """Fault injection state (see README.md, "Fault injection")."""

    KEYS = ("http_429", "http_503", "fail_transient", "delay_seconds", "delay_statements", "crash_after_next", "retry_after")

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.http_429 = 0
            self.http_503 = 0
            self.fail_transient = 0
            self.delay_seconds = 0.0
            self.delay_statements = None  # None: every statement until reset
            self.crash_after_next = False
            self.retry_after = 1

    def update(self, body: dict):
        unknown = set(body) - set(self.KEYS)
        if unknown:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"unknown fault(s): {sorted(unknown)}; known: {list(self.KEYS)}")
        with self.lock:
            for k, v in body.items():
                if k == "crash_after_next":
                    self.crash_after_next = bool(v)
                elif k == "delay_seconds":
                    self.delay_seconds = float(v)
                elif k == "delay_statements":
                    self.delay_statements = None if v is None else int(v)
                else:
                    setattr(self, k, int(v))

    def snapshot(self) -> dict:
        with self.lock:
            return {k: getattr(self, k) for k in self.KEYS}

    def take_http(self) -> int | None:
        with self.lock:
            if self.http_429 > 0:
                self.http_429 -= 1
                return 429
            if self.http_503 > 0:
                self.http_503 -= 1
                return 503
        return None

    def take_statement(self) -> dict:
        """The faults one newly submitted statement carries."""
        out = {}
        with self.lock:
            if self.fail_transient > 0:
                self.fail_transient -= 1
                out["fail_transient"] = True
            if self.delay_seconds > 0 and (self.delay_statements is None or self.delay_statements > 0):
                out["delay"] = self.delay_seconds
                if self.delay_statements is not None:
                    self.delay_statements -= 1
            if self.crash_after_next:
                self.crash_after_next = False
                out["crash"] = True
        return out


class Statement:
    def __init__(self, sql: str, args, namespace, row_limit, faults: dict, params: list[Param] | None = None):
        self.id = str(uuid.uuid4())
        self.sql = sql
        self.args = args
        self.params = params or []
        self.namespace = namespace
        self.row_limit = row_limit
        self.faults = faults
        self.state = "PENDING"
        self.error: WarehouseError | None = None
        self.result: Result | None = None
        self.created = time.time()
        self.finished_at: float | None = None
        self.done = threading.Event()
        self.cancel = threading.Event()
        self.tag = "stmt-" + uuid.uuid4().hex
        self.lock = threading.Lock()

    def finish(self, state: str, result: Result | None = None, error: WarehouseError | None = None) -> bool:
        with self.lock:
            if self.state in TERMINAL:
                return False
            self.state, self.result, self.error = state, result, error
            self.finished_at = time.time()
        self.done.set()
        return True

    def to_json(self) -> dict:
        with self.lock:
            state, result, error = self.state, self.result, self.error
        out: dict = {"statement_id": self.id, "status": {"state": state}}
        if state == "FAILED" and error is not None:
            out["status"]["error"] = {"error_code": error.error_code, "message": error.message}
            if error.sql_state:
                out["status"]["sql_state"] = error.sql_state
        if state == "SUCCEEDED" and result is not None:
            rows = result.rows
            truncated = False
            if self.row_limit is not None and len(rows) > self.row_limit:
                rows, truncated = rows[: self.row_limit], True
            manifest = {
                "format": "JSON_ARRAY",
                "schema": {"column_count": len(result.columns), "columns": [c.to_json(i) for i, c in enumerate(result.columns)]},
                "total_row_count": len(rows),
                "total_chunk_count": 1,
                "chunks": [{"chunk_index": 0, "row_offset": 0, "row_count": len(rows)}],
                "truncated": truncated,
            }
            out["manifest"] = manifest
            out["result"] = self.chunk(rows)
        return out

    @staticmethod
    def chunk(rows) -> dict:
        res = {"chunk_index": 0, "row_offset": 0, "row_count": len(rows)}
        if rows:  # like Databricks: no data_array at all when there are no rows
            res["data_array"] = rows
        return res


class Warehouse:
    def __init__(self, engine: Engine, workers: int = 8, token: str | None = None,
                 oauth_client: tuple[str, str] | None = None):
        self.engine = engine
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stmt")
        self.statements: dict[str, Statement] = {}
        self.lock = threading.Lock()
        self.faults = Faults()
        self.token = token
        self.oauth_client = oauth_client
        self.oauth_tokens: dict[str, float] = {}

    # ---- auth ---------------------------------------------------------------------
    def check_auth(self, header: str | None):
        if not self.token and not self.oauth_client:
            return
        if not header or not header.startswith("Bearer "):
            raise ApiError(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
        given = header[len("Bearer "):].strip()
        if self.token and secrets.compare_digest(given, self.token):
            return
        exp = self.oauth_tokens.get(given)
        if exp is not None and exp > time.time():
            return
        raise ApiError(403, "PERMISSION_DENIED", "Invalid access token.")

    def issue_token(self, auth_header: str | None, form: dict) -> dict:
        if not self.oauth_client:
            raise ApiError(400, "invalid_client", "OAuth is not configured on the local warehouse")
        cid, secret = form.get("client_id"), form.get("client_secret")
        if auth_header and auth_header.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(auth_header[6:]).decode().partition(":")
            except Exception:
                raise ApiError(401, "invalid_client", "malformed Basic credentials") from None
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")
        if (cid, secret) != self.oauth_client:
            raise ApiError(401, "invalid_client", "Client authentication failed")
        tok = "local-oauth-" + secrets.token_hex(16)
        self.oauth_tokens[tok] = time.time() + 3600
        return {"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "scope": form.get("scope", "all-apis")}

    # ---- statements -----------------------------------------------------------------
    def submit(self, body: dict) -> dict:
        code = self.faults.take_http()
        if code == 429:
            raise ApiError(429, "TOO_MANY_REQUESTS", "Too many requests (injected fault). Please retry later.",
                           {"Retry-After": str(self.faults.retry_after)})
        if code == 503:
            raise ApiError(503, "TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable (injected fault).",
                           {"Retry-After": str(self.faults.retry_after)})

        sql = body.get("statement")
        if not isinstance(sql, str) or not sql.strip():
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "statement is required")
        if not body.get("warehouse_id"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "warehouse_id is required")
        wait = body.get("wait_timeout", "10s")
        m = re.fullmatch(r"(\d+)s", str(wait))
        secs = int(m.group(1)) if m else -1
        if secs != 0 and not 5 <= secs <= 50:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           f"wait_timeout must be 0s or between 5s and 50s, got {wait!r}")
        on_timeout = body.get("on_wait_timeout", "CONTINUE")
        if on_timeout not in ("CONTINUE", "CANCEL"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "on_wait_timeout must be CONTINUE or CANCEL")
        disposition = body.get("disposition", "INLINE")
        fmt = body.get("format", "JSON_ARRAY")
        if disposition != "INLINE":
            raise ApiError(400, "NOT_IMPLEMENTED", "the local warehouse supports disposition INLINE only")
        if fmt != "JSON_ARRAY":
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"format {fmt} requires disposition EXTERNAL_LINKS")
        row_limit = body.get("row_limit")
        if row_limit is not None and (not isinstance(row_limit, int) or row_limit < 0):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "row_limit must be a non-negative integer")
        params = self._params(body.get("parameters") or [])
        args = self._bind(params)
        catalog, schema = body.get("catalog"), body.get("schema")
        namespace = None
        if schema:
            namespace = (catalog, schema) if catalog else (schema,)

        st = Statement(sql, args, namespace, row_limit, self.faults.take_statement(), params)
        with self.lock:
            self._expire()
            self.statements[st.id] = st
        log.info("%s submitted: %s", st.id, _short(sql))
        self.pool.submit(self._run, st)
        if secs > 0:
            st.done.wait(secs)
        if not st.done.is_set() and on_timeout == "CANCEL":
            self.cancel(st.id)
            st.done.wait(5)
        return st.to_json()

    @staticmethod
    def _params(params: list) -> list[Param]:
        """The request's ``parameters``, checked: names are identifiers, types are type names
        (letters, digits, spaces and an optional ``(p[, s])``), values strings or null."""
        if not isinstance(params, list):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "parameters must be a list")
        out = []
        for p in params:
            name = p.get("name") if isinstance(p, dict) else None
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"invalid parameter name {name!r}")
            typ = p.get("type") or "STRING"
            if not isinstance(typ, str) or not _TYPE_RE.match(typ.strip()):
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"invalid parameter type {typ!r}")
            value = p.get("value")
            if value is not None and not isinstance(value, str):
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"parameter {name}: value must be a string or null")
            out.append(Param(name, value, typ.strip()))
        return out

    @staticmethod
    def _bind(params: list[Param]) -> dict | None:
        """Named parameters -> Spark Connect named arguments (never SQL text), for queries.
        Commands get typed literals instead (see translate.bind_parameters_as_literals)."""
        if not params:
            return None
        from pyspark.sql import functions as F

        args = {}
        for p in params:
            col = F.lit(p.value)
            if p.value is None or p.type.upper() != "STRING":
                col = col.cast(p.type)
            args[p.name] = col
        return args

    def _run(self, st: Statement):
        t0 = time.time()
        try:
            if st.cancel.is_set():
                st.finish("CANCELED")
                return
            if st.faults.get("fail_transient"):
                st.finish("FAILED", error=WarehouseError(
                    "The SQL warehouse is temporarily unavailable (injected fault). Please retry.",
                    "TEMPORARILY_UNAVAILABLE"))
                return
            args = st.args
            try:
                plan = classify(st.sql)
                if st.params and needs_literal_parameters(plan):
                    # Sail refuses commands with named arguments: bind them as typed literals
                    plan = classify(bind_parameters_as_literals(st.sql, st.params))
                    args = None
            except UnboundParameter as e:
                raise WarehouseError(f"[UNBOUND_SQL_PARAMETER] {e}. SQLSTATE: 42P02", "BAD_REQUEST", "42P02") from None
            except SqlSyntaxError as e:
                raise WarehouseError(f"[PARSE_SYNTAX_ERROR] {e}. SQLSTATE: 42601", "BAD_REQUEST", "42601") from None
            keys = self.engine.lock_keys(plan, st.sql, st.namespace)
            with self.engine.table_locks.hold(keys, st.cancel):
                with st.lock:
                    if st.state == "PENDING":
                        st.state = "RUNNING"
                delay = st.faults.get("delay")
                if delay and st.cancel.wait(delay):
                    raise Canceled()
                if st.cancel.is_set():
                    raise Canceled()
                ctx = ExecContext(tag=st.tag, args=args, namespace=st.namespace, cancel=st.cancel)
                result = self.engine.execute(plan, ctx)
            if st.cancel.is_set():
                raise Canceled()
            if st.faults.get("crash"):
                log.warning("%s executed; crashing now (injected fault crash_after_next)", st.id)
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(70)
            st.finish("SUCCEEDED", result=result)
        except Canceled:
            st.finish("CANCELED")
        except Exception as e:  # noqa: BLE001
            if st.cancel.is_set():
                st.finish("CANCELED")
            else:
                err = map_exception(e)
                st.finish("FAILED", error=err)
        log.info("%s %s in %.2fs%s", st.id, st.state, time.time() - t0,
                 f": {st.error.message[:300]}" if st.error else "")

    def get(self, sid: str) -> Statement:
        with self.lock:
            st = self.statements.get(sid)
        if st is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Statement {sid} not found")
        return st

    def cancel(self, sid: str):
        st = self.get(sid)
        if st.state in TERMINAL:
            return
        st.cancel.set()
        with st.lock:
            pending = st.state == "PENDING"
        if pending:
            st.finish("CANCELED")
        else:
            self.engine.interrupt(st.tag)

    def _expire(self):
        now = time.time()
        for sid in [s for s, st in self.statements.items() if st.finished_at and now - st.finished_at > 3600]:
            self.statements.pop(sid, None)


def _short(sql: str) -> str:
    s = " ".join(sql.split())
    return s if len(s) <= 200 else s[:200] + "..."


def make_handler(wh: Warehouse):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "deltasink-local-warehouse/1"

        def log_message(self, fmt, *args):  # route through logging, quietly
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, status: int, body, headers: dict | None = None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _json(self) -> dict:
            raw = self._body()
            if not raw:
                return {}
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError(400, "MALFORMED_REQUEST", "request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "MALFORMED_REQUEST", "request body must be a JSON object")
            return body

        def _dispatch(self, method: str):
            path = urlparse(self.path).path.rstrip("/")
            try:
                if path == "/_local/health":
                    return self._send(200, {"status": "ok"})
                if path == "/_local/faults":
                    if method == "POST":
                        wh.faults.update(self._json())
                    elif method == "DELETE":
                        self._body()
                        wh.faults.reset()
                    return self._send(200, wh.faults.snapshot())
                if path == "/oidc/.well-known/oauth-authorization-server":
                    host = self.headers.get("Host", "127.0.0.1")
                    return self._send(200, {"issuer": f"http://{host}/oidc", "token_endpoint": f"http://{host}/oidc/v1/token",
                                            "authorization_endpoint": f"http://{host}/oidc/v1/authorize"})
                if path == "/oidc/v1/token" and method == "POST":
                    from urllib.parse import parse_qs

                    form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
                    return self._send(200, wh.issue_token(self.headers.get("Authorization"), form))

                wh.check_auth(self.headers.get("Authorization"))
                if path == "/api/2.0/sql/statements" and method == "POST":
                    return self._send(200, wh.submit(self._json()))
                m = re.fullmatch(r"/api/2\.0/sql/statements/([^/]+)(/cancel|/result/chunks/(\d+))?", path)
                if m:
                    sid, suffix, chunk = m.group(1), m.group(2), m.group(3)
                    if suffix == "/cancel" and method == "POST":
                        self._body()
                        wh.cancel(sid)
                        return self._send(200, {})
                    if suffix and suffix.startswith("/result") and method == "GET":
                        st = wh.get(sid)
                        if st.state != "SUCCEEDED" or int(chunk) != 0:
                            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"no result chunk {chunk} for statement {sid}")
                        return self._send(200, st.to_json()["result"])
                    if not suffix and method == "GET":
                        return self._send(200, wh.get(sid).to_json())
                    if not suffix and method == "DELETE":  # close
                        st = wh.get(sid)
                        wh.cancel(sid)
                        with st.lock:
                            st.state = "CLOSED"
                        return self._send(200, {})
                m = re.fullmatch(r"/api/2\.0/sql/warehouses(?:/([^/]+))?", path)
                if m and method == "GET":
                    info = {"id": m.group(1) or "local", "name": "deltasink local warehouse", "state": "RUNNING",
                            "warehouse_type": "PRO", "enable_serverless_compute": True}
                    return self._send(200, info if m.group(1) else {"warehouses": [info]})
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
            except ApiError as e:
                self._send(e.status, {"error_code": e.error_code, "message": e.message}, e.headers)
            except Exception as e:  # noqa: BLE001
                log.exception("request failed")
                self._send(500, {"error_code": "INTERNAL_ERROR", "message": str(e)})

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_DELETE(self):
            self._dispatch("DELETE")

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(host: str, port: int, wh: Warehouse) -> Server:
    httpd = Server((host, port), make_handler(wh))
    return httpd
