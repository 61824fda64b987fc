#!/usr/bin/env bash
# Builds the three Lambda functions for arm64 (`provided.al2023`) with cargo-lambda (zig
# cross-compiles, aws-lc and rustls included), zips them, prints each zip's size and fails when
# one reaches 10 MB.
#
#   scripts/build-lambdas.sh          # the release profile (fat LTO, one codegen unit): what
#                                     # `sam build` ships; the README's sizes come from it
#   scripts/build-lambdas.sh --quick  # thin LTO, 16 codegen units: proves every function builds
#                                     # for arm64 in a fraction of the time (CI); its zips are
#                                     # larger, so the 10 MB check is conservative
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/venv.sh >/dev/null
# cargo-lambda finds zig through the venv's python (the ziglang package).
export PATH="$ROOT/.venv/bin:$PATH"

if [[ "${1:-}" == "--quick" ]]; then
    export CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
    # A directory of its own, so that quick and release artifacts never mix.
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/quick}"
fi
target="${CARGO_TARGET_DIR:-$ROOT/target}"
limit=$((10 * 1024 * 1024))

start=$(date +%s)
.venv/bin/cargo-lambda lambda build --release --arm64 --output-format zip \
    --bin stage --bin load --bin maintain
echo "build-lambdas: built in $(( $(date +%s) - start )) s" >&2

status=0
for fn in stage load maintain; do
    zip="$target/lambda/$fn/bootstrap.zip"
    if [[ ! -f "$zip" ]]; then
        echo "build-lambdas: $zip is missing" >&2
        status=1
        continue
    fi
    size=$(stat -c %s "$zip")
    printf 'build-lambdas: %-8s %s MB zipped (%s)\n' "$fn" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" "$zip"
    if (( size >= limit )); then
        echo "build-lambdas: $fn is over the 10 MB goal" >&2
        status=1
    fi
done
exit $status
