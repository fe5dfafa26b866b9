#!/usr/bin/env bash
# Server-side copy benchmark against the local S3 stack (SeaweedFS + moto KMS): a
# version stamped into three files of a large artifact (or, with PLAN copy-all, nothing
# changed), with untouched runs copied by the server (unencrypted input), uploaded by
# the worker (SSE-KMS input, which SeaweedFS will not copy from) and with copy turned
# off. See benches/e2e/copy_bench.py.
#
# Usage: benches/copy.sh [WORKLOAD] [REPEAT] [PLAN]
#   WORKLOAD: small | large | huge (default large); REPEAT: runs, median (default 1);
#   PLAN: stamp (template 3 JSON files, the default) | copy-all (change nothing)
# Environment: RUNNER_BIN=PATH uses that runner instead of building target/release's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/benches/e2e"
cd "$ROOT"
WL="${1:-large}"
REPEAT="${2:-1}"
PLAN="${3:-stamp}"
case "$PLAN" in stamp|copy-all) ;; *) echo "copy.sh: PLAN is stamp or copy-all, not $PLAN" >&2; exit 2 ;; esac
bash scripts/local-stack start >/dev/null
PY="$ROOT/.local-stack/venv/bin/python"
if [[ -z "${RUNNER_BIN:-}" ]]; then
    cargo build --release -q -p artifact-runner
    RUNNER_BIN="$ROOT/target/release/artifact-runner"
fi
"$PY" "$HERE/gen.py" "$WL" "${E2E_WORK:-$ROOT/benches/.work}/workloads" >&2
cd "$HERE"
"$PY" copy_bench.py "$RUNNER_BIN" "$WL" "$REPEAT" "$PLAN"
