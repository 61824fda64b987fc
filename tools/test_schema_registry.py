"""In-process tests of tools/schema_registry.py: preload, persistence, basic auth."""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import schema_registry as sr  # noqa: E402

ORDER = {"type": "record", "name": "Order", "namespace": "t", "fields": [{"name": "id", "type": "long"}]}


@pytest.fixture
def serve():
    servers = []

    def start(store_path, preload_dir=None, auth=None):
        store = sr.Store(store_path)
        if preload_dir:
            sr.preload(store, preload_dir)
        httpd = sr.Server(("127.0.0.1", 0), sr.make_handler(store, auth))
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def call(url, method="GET", body=None, auth=None):
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_preload_fixed_ids_and_persistence(serve, tmp_path):
    pre = tmp_path / "schemas"
    pre.mkdir()
    (pre / "7-orders-value.avsc").write_text(json.dumps(ORDER, indent=2))
    store = str(tmp_path / "store.json")
    base = serve(store, str(pre))
    code, out = call(f"{base}/schemas/ids/7")
    assert code == 200 and json.loads(out["schema"]) == ORDER and "schemaType" not in out
    assert call(f"{base}/subjects/orders-value/versions/latest")[1]["id"] == 7
    code, out = call(f"{base}/subjects/other-value/versions", "POST",
                     {"schema": json.dumps({**ORDER, "name": "Other"})})
    assert out == {"id": 8}
    # a restart (new process, same store) keeps both
    base2 = serve(store, str(pre))
    assert call(f"{base2}/schemas/ids/8")[0] == 200
    assert call(f"{base2}/schemas/ids/7")[0] == 200
    assert call(f"{base2}/schemas/ids/9") == (404, {"error_code": 40403, "message": "Schema 9 not found"})
    assert call(f"{base2}/subjects/nope/versions/latest")[1]["error_code"] == 40401


def test_basic_auth(serve, tmp_path):
    base = serve(str(tmp_path / "s.json"), auth="user:secret")
    assert call(f"{base}/subjects")[0] == 401
    assert call(f"{base}/subjects", auth="user:wrong")[1]["error_code"] == 40101
    assert call(f"{base}/subjects", auth="user:secret") == (200, [])
