#!/usr/bin/env bash
# All the tests: formatting and lints, the Rust unit and end-to-end tests against the local
# services (S3 and SQS from moto_server, the schema registry, the local SQL warehouse), and
# the Python tooling's own tests. Installs what it needs into .venv first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/venv.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings

scripts/services.sh start
trap 'scripts/services.sh stop' EXIT
eval "$(scripts/services.sh env)"

cargo test --workspace
.venv/bin/python -m pytest -q tools
