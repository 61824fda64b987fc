#!/usr/bin/env bash
# The main job on local defaults: start local S3 and the schema registry, run the stage
# function under `cargo lambda watch` (the Lambda runtime emulator), replay every sample MSK
# event with `cargo lambda invoke`, then list what was staged with row counts.
#
#   scripts/run-local.sh            # leaves the services running for you to explore
#   scripts/run-local.sh --stop     # stops them at the end
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/venv.sh
scripts/services.sh start s3 registry
eval "$(scripts/services.sh env)"
export PATH="$ROOT/.venv/bin:$PATH"

# One configuration that stages every sample (see events/README.md).
export DELTASINK_STAGING_BUCKET="$DELTASINK_LOCAL_BUCKET"
export DELTASINK_TOPICS='{"shop.public.orders": {"key_format": "connect-json", "value_format": "connect-json"}, "shop.public.payments": {"key_format": "avro", "value_format": "avro"}, "ingest.payments_raw": {"key_format": "string"}}'
export DELTASINK_TABLES='{"ingest.payments_raw": {"mode": "raw"}}'
export RUST_LOG="${RUST_LOG:-warn}"

# Start from an empty staging area so the listing shows this run only.
.venv/bin/python - <<'PY'
import os, boto3
s3 = boto3.resource("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
s3.Bucket(os.environ["DELTASINK_STAGING_BUCKET"]).objects.all().delete()
PY

port="${DELTASINK_LOCAL_LAMBDA_PORT:-9009}"
mkdir -p .local
echo "run-local: building the stage function and starting cargo lambda watch on 127.0.0.1:$port" >&2
cargo build -q -p stage
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
if [[ "${1:-}" == "--stop" ]]; then
    scripts/services.sh stop
else
    echo "run-local: services still running (scripts/services.sh stop to end them)" >&2
fi
