#!/usr/bin/env bash
# All the tests: formatting and lints, the Rust unit and end-to-end tests against the local
# services (S3 and SQS from moto_server, the schema registry, the local SQL warehouse), and
# the Python tooling's own tests, the SAM template check (cfn-lint, template vs code vs README)
# and the arm64 Lambda build. Installs what it needs into .venv first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The disk is shared with other work and a run once ran out of it while linking: one build
# needs no incremental cache, and line tables keep backtraces' file and line at a fraction of
# full debug info's size.
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only
export CARGO_PROFILE_TEST_DEBUG=line-tables-only

scripts/venv.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
scripts/check-template.sh

scripts/services.sh start
trap 'scripts/services.sh stop' EXIT
eval "$(scripts/services.sh env)"

cargo test --workspace
.venv/bin/python -m pytest -q tools

# Every function builds for arm64 (provided.al2023) and stays under 10 MB zipped.
scripts/build-lambdas.sh --quick
