#!/usr/bin/env bash
# Local services for deltasink development and tests, all on loopback, no Docker:
#
#   s3         moto_server (S3 + SQS)                 port $DELTASINK_LOCAL_S3_PORT        (5055)
#   registry   tools/schema_registry.py (Confluent)    port $DELTASINK_LOCAL_REGISTRY_PORT  (8081)
#   warehouse  tools/local_warehouse (Databricks SQL   port $DELTASINK_LOCAL_WAREHOUSE_PORT (8088)
#              Statement Execution API on Sail + Delta)
#
# Usage:
#   scripts/services.sh start [s3|registry|warehouse ...]   idempotent; waits until each answers
#   scripts/services.sh stop [NAME ...]                     stops what start started
#   scripts/services.sh restart [NAME ...]
#   scripts/services.sh status                              exit 0 only if all run
#   scripts/services.sh env                                 export lines: eval "$(scripts/services.sh env)"
#
# Pid files and logs: .local/<name>.pid, .local/<name>.log. Data: .local/warehouse (Delta
# tables), .local/warehouse-state (catalog, COPY INTO ledgers), .local/schema-registry.json.
# Other settings: DELTASINK_LOCAL_DIR (instead of .local; the tests use a temporary one),
# DELTASINK_LOCAL_BUCKET (deltasink-local), DELTASINK_LOCAL_TOKEN (the warehouse's bearer
# token), DELTASINK_WAREHOUSE_ROOT (s3://... or a directory), REGISTRY_BASIC_AUTH=user:pass,
# DELTASINK_LOCAL_OAUTH_CLIENT_ID/_SECRET (the warehouse then also issues OAuth M2M tokens).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="${DELTASINK_LOCAL_DIR:-$ROOT/.local}"
VENV="${DELTASINK_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

S3_PORT="${DELTASINK_LOCAL_S3_PORT:-5055}"
REGISTRY_PORT="${DELTASINK_LOCAL_REGISTRY_PORT:-8081}"
WAREHOUSE_PORT="${DELTASINK_LOCAL_WAREHOUSE_PORT:-8088}"
BUCKET="${DELTASINK_LOCAL_BUCKET:-deltasink-local}"
TOKEN="${DELTASINK_LOCAL_TOKEN:-dapi-deltasink-local-token}"
START_TIMEOUT="${DELTASINK_LOCAL_START_TIMEOUT:-90}"
ALL=(s3 registry warehouse)

port_of() {
    case "$1" in
        s3) echo "$S3_PORT" ;;
        registry) echo "$REGISTRY_PORT" ;;
        warehouse) echo "$WAREHOUSE_PORT" ;;
        *) echo "unknown service: $1 (expected: ${ALL[*]})" >&2; exit 2 ;;
    esac
}

health_url() {
    local p; p="$(port_of "$1")"
    case "$1" in
        s3) echo "http://127.0.0.1:$p/moto-api/" ;;
        registry) echo "http://127.0.0.1:$p/schemas/types" ;;
        warehouse) echo "http://127.0.0.1:$p/_local/health" ;;
    esac
}

# Any HTTP answer (even 401) counts as "answering"; prints the status code.
http_status() {
    "$PY" - "$1" <<'EOF' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

answers() { [[ "$(http_status "$(health_url "$1")")" != 000 ]]; }

port_busy() {
    "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

pid_of() {
    local f="$LOCAL/$1.pid"
    [[ -f "$f" ]] || return 1
    local pid; pid="$(cat "$f")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    # a process that exited but was not reaped yet (zombie) is not running
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 1
    echo "$pid"
}

service_env() {
    echo "AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT"
    echo "AWS_ACCESS_KEY_ID=test"
    echo "AWS_SECRET_ACCESS_KEY=test"
    echo "AWS_REGION=us-east-1"
    echo "AWS_DEFAULT_REGION=us-east-1"
    echo "AWS_ALLOW_HTTP=true"
}

launch() {
    local name="$1"; shift
    local log="$LOCAL/$name.log"
    echo "--- $(date -u +%FT%TZ) starting $name: $*" >>"$log"
    # setsid: own process group, so stop can end the service with everything it spawned.
    setsid "$@" >>"$log" 2>&1 </dev/null &
    echo $! >"$LOCAL/$name.pid"
}

fail_start() {
    local name="$1" why="$2"
    echo "services: $name failed to start: $why" >&2
    echo "---- last lines of $LOCAL/$name.log ----" >&2
    tail -n 30 "$LOCAL/$name.log" >&2 || true
    stop_one "$name" >/dev/null 2>&1 || true
    exit 1
}

start_one() {
    local name="$1" port; port="$(port_of "$name")"
    if pid="$(pid_of "$name")"; then
        if answers "$name"; then
            echo "services: $name already running (pid $pid, port $port)"
            return 0
        fi
    elif port_busy "$port"; then
        echo "services: port $port is already in use by a process this script did not start;" >&2
        echo "          stop it or choose another port (DELTASINK_LOCAL_${name^^}_PORT)" >&2
        exit 1
    else
        case "$name" in
            s3)
                launch s3 env -u AWS_ENDPOINT_URL "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" ;;
            registry)
                launch registry "$PY" "$ROOT/tools/schema_registry.py" --host 127.0.0.1 --port "$port" \
                    --store "$LOCAL/schema-registry.json" --preload "$ROOT/events/schemas" ;;
            warehouse)
                launch warehouse env $(service_env) TZ=UTC DATABRICKS_TOKEN="$TOKEN" \
                    PYTHONPATH="$ROOT/tools" PYTHONUNBUFFERED=1 \
                    DELTASINK_WAREHOUSE_ROOT="${DELTASINK_WAREHOUSE_ROOT:-$LOCAL/warehouse}" \
                    DELTASINK_WAREHOUSE_STATE="${DELTASINK_WAREHOUSE_STATE:-$LOCAL/warehouse-state}" \
                    "$PY" -m local_warehouse --host 127.0.0.1 --port "$port" ;;
        esac
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until answers "$name"; do
        pid_of "$name" >/dev/null || fail_start "$name" "the process exited"
        ((SECONDS < deadline)) || fail_start "$name" "no answer on port $port after ${START_TIMEOUT}s"
        sleep 0.3
    done
    echo "services: $name running (pid $(pid_of "$name"), port $port)"
}

create_bucket() {
    env $(service_env) "$PY" - "$BUCKET" <<'EOF' || { echo "services: could not create bucket $1" >&2; exit 1; }
import sys, boto3
s3 = boto3.client("s3")
try:
    s3.create_bucket(Bucket=sys.argv[1])
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
EOF
}

stop_one() {
    local name="$1" pid
    if ! pid="$(pid_of "$name")"; then
        rm -f "$LOCAL/$name.pid"
        echo "services: $name not running"
        return 0
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$LOCAL/$name.pid"
    echo "services: $name stopped"
}

cmd="${1:-status}"
shift || true
names=("$@")
[[ ${#names[@]} -eq 0 ]] && names=("${ALL[@]}")
for n in "${names[@]}"; do port_of "$n" >/dev/null; done
mkdir -p "$LOCAL"

case "$cmd" in
    start)
        "$ROOT/scripts/venv.sh"
        # S3 first: the warehouse reads and writes through it.
        for n in "${ALL[@]}"; do
            [[ " ${names[*]} " == *" $n "* ]] || continue
            start_one "$n"
            if [[ "$n" == s3 ]]; then create_bucket; fi
        done
        ;;
    stop)
        for ((i = ${#ALL[@]} - 1; i >= 0; i--)); do
            n="${ALL[$i]}"
            if [[ " ${names[*]} " == *" $n "* ]]; then stop_one "$n"; fi
        done
        ;;
    restart)
        "$0" stop "${names[@]}"
        "$0" start "${names[@]}"
        ;;
    status)
        rc=0
        for n in "${names[@]}"; do
            if pid="$(pid_of "$n")" && answers "$n"; then
                echo "$n: running (pid $pid, port $(port_of "$n"))"
            elif pid="$(pid_of "$n")"; then
                echo "$n: starting or not answering (pid $pid, port $(port_of "$n"))"; rc=3
            else
                echo "$n: stopped"; rc=3
            fi
        done
        exit $rc
        ;;
    env)
        service_env | sed 's/^/export /'
        echo "export DELTASINK_SCHEMA_REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT"
        if [[ -n "${REGISTRY_BASIC_AUTH:-}" ]]; then
            echo "export DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH=$(printf '%q' "$REGISTRY_BASIC_AUTH")"
        fi
        echo "export DATABRICKS_HOST=http://127.0.0.1:$WAREHOUSE_PORT"
        echo "export DATABRICKS_TOKEN=$TOKEN"
        echo "export DATABRICKS_HTTP_PATH=/sql/1.0/warehouses/local"
        if [[ -n "${DELTASINK_LOCAL_OAUTH_CLIENT_ID:-}" ]]; then
            echo "export DATABRICKS_CLIENT_ID=$(printf '%q' "$DELTASINK_LOCAL_OAUTH_CLIENT_ID")"
            echo "export DATABRICKS_CLIENT_SECRET=$(printf '%q' "${DELTASINK_LOCAL_OAUTH_CLIENT_SECRET:-}")"
        fi
        echo "export DELTASINK_LOCAL_BUCKET=$BUCKET"
        ;;
    *)
        echo "usage: $0 start|stop|restart|status|env [s3|registry|warehouse ...]" >&2
        exit 2
        ;;
esac
