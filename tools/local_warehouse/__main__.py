"""Launcher: ``PYTHONPATH=tools .venv/bin/python -m local_warehouse [--port 8088]``.

Normally started by ``scripts/services.sh start``. Configuration (flags override env):
  --host / DELTASINK_LOCAL_WAREHOUSE_HOST        default 127.0.0.1
  --port / DELTASINK_LOCAL_WAREHOUSE_PORT        default 8088
  --root / DELTASINK_WAREHOUSE_ROOT              where tables created without LOCATION go
                                                 (a directory or s3://bucket/prefix);
                                                 default <repo>/.local/warehouse
  --state / DELTASINK_WAREHOUSE_STATE            catalog + COPY INTO ledgers;
                                                 default <repo>/.local/warehouse-state
  --workers / DELTASINK_WAREHOUSE_WORKERS        statement worker threads, default 8
  DATABRICKS_TOKEN                               if set, required as "Authorization: Bearer ..."
  DELTASINK_LOCAL_OAUTH_CLIENT_ID/_SECRET        if set, /oidc/v1/token issues bearer tokens
  AWS_ENDPOINT_URL, AWS_ALLOW_HTTP, AWS_*        how Sail and deltalake reach S3 (moto)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="local_warehouse", description="Local Databricks SQL warehouse on Sail")
    ap.add_argument("--host", default=os.environ.get("DELTASINK_LOCAL_WAREHOUSE_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("DELTASINK_LOCAL_WAREHOUSE_PORT", "8088")))
    ap.add_argument("--root", default=os.environ.get("DELTASINK_WAREHOUSE_ROOT", os.path.join(ROOT, ".local", "warehouse")))
    ap.add_argument("--state", default=os.environ.get("DELTASINK_WAREHOUSE_STATE", os.path.join(ROOT, ".local", "warehouse-state")))
    ap.add_argument("--workers", type=int, default=int(os.environ.get("DELTASINK_WAREHOUSE_WORKERS", "8")))
    args = ap.parse_args(argv)

    logging.basicConfig(level=os.environ.get("DELTASINK_WAREHOUSE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ.setdefault("TZ", "UTC")

    from .engine import Engine
    from .server import Warehouse, serve

    root = args.root if "://" in args.root else os.path.abspath(args.root)
    engine = Engine(root, os.path.abspath(args.state))
    engine.start()
    oauth = None
    if os.environ.get("DELTASINK_LOCAL_OAUTH_CLIENT_ID"):
        oauth = (os.environ["DELTASINK_LOCAL_OAUTH_CLIENT_ID"], os.environ.get("DELTASINK_LOCAL_OAUTH_CLIENT_SECRET", ""))
    wh = Warehouse(engine, workers=args.workers, token=os.environ.get("DATABRICKS_TOKEN") or None, oauth_client=oauth)
    httpd = serve(args.host, args.port, wh)

    def shutdown(*_):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    logging.getLogger("local_warehouse").info(
        "local warehouse listening on http://%s:%d (tables under %s, state in %s, auth %s)",
        args.host, args.port, root, args.state, "on" if wh.token or oauth else "off")
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        wh.pool.shutdown(wait=False, cancel_futures=True)
        engine.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
