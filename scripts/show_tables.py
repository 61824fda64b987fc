"""Prints Delta tables through the local SQL warehouse's Statement Execution API: row counts
and the first rows of each table that has staged files or was loaded.

    .venv/bin/python scripts/show_tables.py main.public.customers main.clickstream ...
"""

import json
import os
import sys
import urllib.request


def execute(sql: str) -> dict:
    host = os.environ["DATABRICKS_HOST"].rstrip("/")
    request = urllib.request.Request(
        f"{host}/api/2.0/sql/statements",
        data=json.dumps({"statement": sql, "warehouse_id": "local", "wait_timeout": "30s"}).encode(),
        headers={"Authorization": f"Bearer {os.environ['DATABRICKS_TOKEN']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def quoted(name: str) -> str:
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))


def main(tables: list[str]) -> int:
    for table in tables:
        body = execute(f"SELECT * FROM {quoted(table)} LIMIT 3")
        state = body["status"]["state"]
        if state != "SUCCEEDED":
            print(f"{table}: {state} {body['status'].get('error', {}).get('message', '')}")
            continue
        count = execute(f"SELECT COUNT(*) AS n FROM {quoted(table)}")["result"]["data_array"][0][0]
        columns = [c["name"] for c in body["manifest"]["schema"]["columns"]]
        shown = [c for c in columns if not c.startswith("_kafka") and c != "_cdc_position"][:8]
        print(f"\n{table}: {count} rows, {len(columns)} columns")
        print("  " + " | ".join(shown))
        for row in body.get("result", {}).get("data_array", []) or []:
            values = dict(zip(columns, row))
            print("  " + " | ".join(str(values[c])[:24] for c in shown))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
