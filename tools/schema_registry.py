#!/usr/bin/env python3
"""A small local stand-in for the Confluent Schema Registry (stdlib only).

Serves the subset of the REST API that Avro producers and consumers use:

  GET  /schemas/ids/{id}                      {"schema": "...", ["schemaType"], ["references"]}
  GET  /schemas/ids/{id}/schema               the schema text itself
  GET  /schemas/types                         ["AVRO", "JSON", "PROTOBUF"]
  GET  /subjects                              ["orders-value", ...]
  GET  /subjects/{subject}/versions           [1, 2]
  GET  /subjects/{subject}/versions/{v}       v = number or "latest"
  POST /subjects/{subject}/versions           register {"schema", ["schemaType"], ["references"]} -> {"id": N}
  POST /subjects/{subject}                    look a schema up under a subject
  DELETE /subjects/{subject}                  forget a subject (its ids stay resolvable)
  GET  /config                                {"compatibilityLevel": "NONE"}

Errors use Confluent's body: {"error_code": 40403, "message": "Schema 7 not found"}.
The same schema text (compared as compact JSON) always gets the same id.

Registrations persist in a JSON file (--store). Files named ``<id>-<subject>.avsc`` in the
--preload directory (default: events/schemas) are registered under that fixed id and
subject at start, so sample events carrying fixed schema ids decode after any restart.

HTTP basic auth is required when REGISTRY_BASIC_AUTH=user:pass is set.

  python3 tools/schema_registry.py --port 8081 --store .local/schema-registry.json
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import logging
import os
import re
import secrets
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

log = logging.getLogger("schema_registry")
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


class RegistryError(Exception):
    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _canonical(schema: str, schema_type: str) -> str:
    if schema_type in ("AVRO", "JSON"):
        try:
            return json.dumps(json.loads(schema), separators=(",", ":"), sort_keys=False)
        except ValueError:
            raise RegistryError(422, 42201, "Invalid schema: not valid JSON") from None
    return schema.strip()


class Store:
    def __init__(self, path: str | None):
        self.path = path
        self.lock = threading.RLock()
        self.schemas: dict[int, dict] = {}  # id -> {schema, schemaType, references}
        self.subjects: dict[str, list[dict]] = {}  # subject -> [{version, id}]
        if path and os.path.exists(path):
            with open(path) as f:
                data = json.load(f)
            self.schemas = {int(k): v for k, v in data.get("schemas", {}).items()}
            self.subjects = data.get("subjects", {})

    def save(self):
        if not self.path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = f"{self.path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w") as f:
            json.dump({"schemas": {str(k): v for k, v in sorted(self.schemas.items())}, "subjects": self.subjects}, f, indent=1)
        os.replace(tmp, self.path)

    def _find(self, canon: str, schema_type: str, references: list) -> int | None:
        for sid, s in self.schemas.items():
            if s["canonical"] == canon and s["schemaType"] == schema_type and s.get("references", []) == references:
                return sid
        return None

    def register(self, subject: str, schema: str, schema_type: str = "AVRO", references: list | None = None,
                 fixed_id: int | None = None) -> int:
        schema_type = (schema_type or "AVRO").upper()
        if schema_type not in ("AVRO", "JSON", "PROTOBUF"):
            raise RegistryError(422, 42201, f"Invalid schema type {schema_type}")
        references = references or []
        canon = _canonical(schema, schema_type)
        with self.lock:
            sid = self._find(canon, schema_type, references)
            if fixed_id is not None and sid != fixed_id:
                if fixed_id in self.schemas:
                    log.warning("schema id %d is redefined by a preloaded file", fixed_id)
                sid = fixed_id
                self.schemas[sid] = {"schema": schema, "schemaType": schema_type, "references": references, "canonical": canon}
            elif sid is None:
                sid = max(self.schemas, default=0) + 1
                self.schemas[sid] = {"schema": schema, "schemaType": schema_type, "references": references, "canonical": canon}
            versions = self.subjects.setdefault(subject, [])
            if not any(v["id"] == sid for v in versions):
                versions.append({"version": max((v["version"] for v in versions), default=0) + 1, "id": sid})
            self.save()
            return sid

    def schema_by_id(self, sid: int) -> dict:
        s = self.schemas.get(sid)
        if s is None:
            raise RegistryError(404, 40403, f"Schema {sid} not found")
        return s

    def versions(self, subject: str) -> list[dict]:
        v = self.subjects.get(subject)
        if not v:
            raise RegistryError(404, 40401, f"Subject '{subject}' not found.")
        return v

    def version(self, subject: str, version: str) -> dict:
        versions = self.versions(subject)
        if version in ("latest", "-1"):
            return versions[-1]
        try:
            n = int(version)
        except ValueError:
            raise RegistryError(422, 42202, f"The specified version '{version}' is not a valid version id.") from None
        for v in versions:
            if v["version"] == n:
                return v
        raise RegistryError(404, 40402, f"Version {n} not found.")

    def delete_subject(self, subject: str) -> list[int]:
        with self.lock:
            versions = self.versions(subject)
            self.subjects.pop(subject)
            self.save()
            return [v["version"] for v in versions]


def schema_body(s: dict) -> dict:
    out = {"schema": s["schema"]}
    if s["schemaType"] != "AVRO":
        out["schemaType"] = s["schemaType"]
    if s.get("references"):
        out["references"] = s["references"]
    return out


def preload(store: Store, directory: str) -> int:
    n = 0
    for path in sorted(glob.glob(os.path.join(directory, "*.avsc"))):
        m = re.fullmatch(r"(\d+)-(.+)\.avsc", os.path.basename(path))
        if not m:
            log.warning("skipping %s: expected <id>-<subject>.avsc", path)
            continue
        with open(path) as f:
            text = f.read().strip()
        store.register(m.group(2), text, "AVRO", fixed_id=int(m.group(1)))
        n += 1
    return n


def make_handler(store: Store, basic_auth: str | None):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "deltasink-local-schema-registry/1"

        def log_message(self, fmt, *args):
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, status: int, body, raw: bool = False, headers: dict | None = None):
            data = body.encode() if raw else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if raw else CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _json(self) -> dict:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise RegistryError(400, 50005, "Unrecognized JSON body") from None
            if not isinstance(body, dict):
                raise RegistryError(400, 50005, "Expected a JSON object")
            return body

        def _auth(self):
            if not basic_auth:
                return
            h = self.headers.get("Authorization") or ""
            ok = False
            if h.startswith("Basic "):
                try:
                    ok = secrets.compare_digest(base64.b64decode(h[6:]).decode(), basic_auth)
                except Exception:
                    ok = False
            if not ok:
                raise RegistryError(401, 40101, "Unauthorized")

        def _dispatch(self, method: str):
            try:
                self._auth()
                parts = [unquote(p) for p in urlparse(self.path).path.strip("/").split("/") if p]
                if method == "GET" and parts == ["subjects"]:
                    return self._send(200, sorted(store.subjects))
                if method == "GET" and parts in (["schemas", "types"],):
                    return self._send(200, ["AVRO", "JSON", "PROTOBUF"])
                if method == "GET" and parts and parts[0] == "config":
                    return self._send(200, {"compatibilityLevel": "NONE"})
                if len(parts) >= 3 and parts[:2] == ["schemas", "ids"]:
                    try:
                        sid = int(parts[2])
                    except ValueError:
                        raise RegistryError(404, 40403, f"Schema {parts[2]} not found") from None
                    s = store.schema_by_id(sid)
                    if method == "GET" and len(parts) == 3:
                        return self._send(200, schema_body(s))
                    if method == "GET" and parts[3:] == ["schema"]:
                        return self._send(200, s["schema"], raw=True)
                    if method == "GET" and parts[3:] == ["versions"]:
                        return self._send(200, [{"subject": subj, "version": v["version"]}
                                                for subj, vs in sorted(store.subjects.items()) for v in vs if v["id"] == sid])
                if len(parts) >= 2 and parts[0] == "subjects":
                    subject = parts[1]
                    if len(parts) == 2 and method == "DELETE":
                        return self._send(200, store.delete_subject(subject))
                    if len(parts) == 2 and method == "POST":  # lookup
                        body = self._json()
                        stype = (body.get("schemaType") or "AVRO").upper()
                        canon = _canonical(body.get("schema") or "", stype)
                        for v in store.versions(subject):
                            s = store.schemas[v["id"]]
                            if s["canonical"] == canon and s["schemaType"] == stype:
                                return self._send(200, {"subject": subject, "version": v["version"], "id": v["id"], **schema_body(s)})
                        raise RegistryError(404, 40403, "Schema not found")
                    if len(parts) == 3 and parts[2] == "versions":
                        if method == "GET":
                            return self._send(200, [v["version"] for v in store.versions(subject)])
                        if method == "POST":
                            body = self._json()
                            if not isinstance(body.get("schema"), str):
                                raise RegistryError(422, 42201, "Invalid schema: 'schema' must be a string")
                            sid = store.register(subject, body["schema"], body.get("schemaType") or "AVRO", body.get("references"))
                            return self._send(200, {"id": sid})
                    if len(parts) >= 4 and parts[2] == "versions" and method == "GET":
                        v = store.version(subject, parts[3])
                        s = store.schemas[v["id"]]
                        if parts[4:] == ["schema"]:
                            return self._send(200, s["schema"], raw=True)
                        return self._send(200, {"subject": subject, "version": v["version"], "id": v["id"], **schema_body(s)})
                raise RegistryError(404, 404, f"HTTP 404 Not Found: {method} {self.path}")
            except RegistryError as e:
                headers = {"WWW-Authenticate": 'Basic realm="schema-registry"'} if e.status == 401 else None
                self._send(e.status, {"error_code": e.code, "message": e.message}, headers=headers)
            except Exception as e:  # noqa: BLE001
                log.exception("request failed")
                self._send(500, {"error_code": 50001, "message": str(e)})

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="local Confluent-compatible schema registry")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("DELTASINK_LOCAL_REGISTRY_PORT", "8081")))
    ap.add_argument("--store", default=os.path.join(ROOT, ".local", "schema-registry.json"),
                    help="JSON file the registrations persist in ('' for memory only)")
    ap.add_argument("--preload", default=os.path.join(ROOT, "events", "schemas"),
                    help="directory of <id>-<subject>.avsc files registered at start")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)

    store = Store(args.store or None)
    if args.preload and os.path.isdir(args.preload):
        log.info("preloaded %d schema(s) from %s", preload(store, args.preload), args.preload)
    auth = os.environ.get("REGISTRY_BASIC_AUTH") or None
    httpd = Server((args.host, args.port), make_handler(store, auth))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown, daemon=True).start())
    log.info("schema registry on http://%s:%d (%d schema(s), basic auth %s)", args.host, args.port,
             len(store.schemas), "on" if auth else "off")
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
