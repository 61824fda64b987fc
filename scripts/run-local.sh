#!/usr/bin/env bash
# The main job on local defaults, the whole pipeline: start local S3, the schema registry and
# the local SQL warehouse; run the functions under `cargo lambda watch` (the Lambda runtime
# emulator); replay every sample MSK event through stage with `cargo lambda invoke`; list what
# was staged; deliver the S3 notifications of the staged files to load as an SQS batch; print
# the resulting Delta tables; run maintain's deployment check and its scheduled jobs.
#
#   scripts/run-local.sh            # leaves the services running for you to explore
#   scripts/run-local.sh --stop     # stops them at the end
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/venv.sh
scripts/services.sh start
eval "$(scripts/services.sh env)"
export PATH="$ROOT/.venv/bin:$PATH"

# One configuration that stages every sample (see events/README.md).
export DELTASINK_STAGING_BUCKET="$DELTASINK_LOCAL_BUCKET"
export DELTASINK_TOPICS='{"shop.public.orders": {"key_format": "connect-json", "value_format": "connect-json"}, "shop.public.payments": {"key_format": "avro", "value_format": "avro"}, "ingest.payments_raw": {"key_format": "string"}}'
export DELTASINK_TABLES='{"ingest.payments_raw": {"mode": "raw"}}'
export DELTASINK_CATALOG=main DELTASINK_SCHEMA=default
export RUST_LOG="${RUST_LOG:-warn}"

# Start from an empty staging area so the listing shows this run only.
.venv/bin/python - <<'PY'
import os, boto3
s3 = boto3.resource("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
s3.Bucket(os.environ["DELTASINK_STAGING_BUCKET"]).objects.all().delete()
PY

port="${DELTASINK_LOCAL_LAMBDA_PORT:-9009}"
mkdir -p .local
echo "run-local: building the functions and starting cargo lambda watch on 127.0.0.1:$port" >&2
cargo build -q -p stage -p load -p maintain
cargo lambda watch -q -A 127.0.0.1 -P "$port" --ignore-changes >.local/lambda-watch.log 2>&1 &
watch_pid=$!
trap 'kill $watch_pid 2>/dev/null || true; pkill -P $watch_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 1
done

for event in msk-debezium-json msk-debezium-connect msk-avro msk-plain-json msk-raw self-managed-kafka msk-bad-records; do
    printf 'run-local: stage %-22s → ' "$event.json"
    cargo lambda invoke stage -A 127.0.0.1 -P "$port" --data-file "events/$event.json" \
        | .venv/bin/python -c 'import json, sys
s = json.load(sys.stdin)
print("{records} records, {rows_staged} rows in {files_staged} files, {records_to_errors} to errors, {tombstones_skipped} tombstones".format(**s))'
done

.venv/bin/python scripts/list_staged.py

# The S3 notifications of every staged file, as the SQS queue would batch them for load.
.venv/bin/python - >.local/sqs-staged-files.json <<'PY'
import json, os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
bucket = os.environ["DELTASINK_STAGING_BUCKET"]
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="staging/")
        for o in page.get("Contents", [])]
records = []
for i, key in enumerate(keys):
    body = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": bucket}, "object": {"key": key.replace(" ", "+")}}}]}
    records.append({"messageId": f"local-{i}", "receiptHandle": "local", "body": json.dumps(body),
                    "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:deltasink-local", "awsRegion": "us-east-1"})
print(json.dumps({"Records": records}))
PY
printf 'run-local: load %s staged files → ' "$(grep -o '"messageId"' .local/sqs-staged-files.json | wc -l)"
start=$(date +%s.%N)
cargo lambda invoke load -A 127.0.0.1 -P "$port" --data-file .local/sqs-staged-files.json >.local/load-response.json
end=$(date +%s.%N)
.venv/bin/python - "$start" "$end" <<'PY'
import json, sys
r = json.load(open(".local/load-response.json"))
tables = r["report"]["tables"]
failed = r["batchItemFailures"]
print(f"{len(tables)} tables in {float(sys.argv[2]) - float(sys.argv[1]):.1f} s, "
      f"{sum(t['statements'] for t in tables)} statements, {len(failed)} failed messages")
for t in tables:
    print(f"  {t['table']:<24} {t['files']} files, {t['statements']} statements" + (f", ERROR {t['error']}" if t["error"] else ""))
PY
.venv/bin/python scripts/show_tables.py $(.venv/bin/python -c 'import json; print(" ".join("main." + t["table"] if t["table"].count(".") == 1 else "main.default." + t["table"] for t in json.load(open(".local/load-response.json"))["report"]["tables"]))')
# maintain: the deployment check, then the regular schedule (re-drive finds nothing stranded:
# every staged file was loaded and purged).
for event in maintain-check schedule; do
    printf 'run-local: maintain %-20s → ' "$event.json"
    cargo lambda invoke maintain -A 127.0.0.1 -P "$port" --data-file "events/$event.json" \
        | .venv/bin/python scripts/maintain_summary.py
done

if [[ "${1:-}" == "--stop" ]]; then
    scripts/services.sh stop
else
    echo "run-local: services still running (scripts/services.sh stop to end them)" >&2
fi
