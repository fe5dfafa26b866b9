#!/usr/bin/env bash
# Peak memory of the worker per function size: runs the release runner on the
# embedded store (no server: memory is the worker's own) at --memory-mb 256, 512 and
# 1024 over four workloads (benches/memory/gen.py: a 600 MiB templated entry,
# 500,000 tiny entries, a ~2 GB artifact, a 600 MiB deflated inner zip to unpack;
# `unzip` runs only when named; `targz` writes the `big` input as a tar.gz output,
# also only when named) and prints a table of result, wall time and
# peak RSS (the runner's own VmHWM). A measurement, not a test: it never fails on a
# number, only when a job ends in an unexpected way.
#
# Usage: benches/memory.sh [WORKLOAD...]   (default: huge-entry tiny big)
# Environment: MEMORY_SIZES="256 512 1024", MEMORY_WORK=DIR (default benches/.work/memory)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="${MEMORY_WORK:-$ROOT/benches/.work/memory}"
STORE="$WORK/store"
SIZES=(${MEMORY_SIZES:-256 512 1024})
workloads=("$@")
((${#workloads[@]})) || workloads=(huge-entry tiny big)
mkdir -p "$STORE/bench/out" "$WORK/events"

echo "memory: building the release runner" >&2
cargo build --release -q -p artifact-runner
RUNNER="${CARGO_TARGET_DIR:-$ROOT/target}/release/artifact-runner"
# A workload's input: its own, except targz, which reads big's.
input_of() { if [[ "$1" == targz ]]; then echo big; else echo "$1"; fi; }
inputs=()
for wl in "${workloads[@]}"; do inputs+=("$(input_of "$wl")"); done
python3 benches/memory/gen.py "$STORE" $(printf '%s\n' "${inputs[@]}" | sort -u)

printf '| workload | input | --memory-mb | result | wall s | peak RSS MiB |\n'
printf '|---|---|---|---|---|---|\n'
for wl in "${workloads[@]}"; do
  params='{"variables":{"VERSION":"9.9.9"},"steps":[{"template":{"files":["*.json"],"optional":true}}]}'
  if [[ "$wl" == unzip ]]; then
    params='{"variables":{"VERSION":"9.9.9"},"steps":[{"unzip":{"files":["dist/site.zip"]}},{"template":{"files":["**/*.json"]}}]}'
  elif [[ "$wl" == targz ]]; then
    params='{"variables":{"VERSION":"9.9.9"},"outputs":{"Out":{"from":["In"],"format":"tar.gz","steps":[{"template":{"files":["*.json"]}}]}}}'
  fi
  in_name=$(input_of "$wl")
  size_mib=$(( $(stat -c %s "$STORE/bench/in/$in_name.zip") / 1048576 ))
  for mb in "${SIZES[@]}"; do
    ev="$WORK/events/$wl-$mb.json"
    python3 - "$ev" "$wl" "$params" "$in_name" <<'PY'
import json, sys, uuid
ev, wl, params, in_name = sys.argv[1:]
art = lambda n, k: {"name": n, "revision": None,
                    "location": {"type": "S3", "s3Location": {"bucketName": "bench", "objectKey": k}}}
json.dump({"CodePipeline.job": {"id": str(uuid.uuid4()), "accountId": "123456789012", "data": {
    "actionConfiguration": {"configuration": {"FunctionName": "bench", "UserParameters": params}},
    "inputArtifacts": [art("In", f"in/{in_name}.zip")],
    "outputArtifacts": [art("Out", f"out/{wl}.zip")],
    "artifactCredentials": {"accessKeyId": "local", "secretAccessKey": "local", "sessionToken": "local"}}}},
    open(ev, "w"))
PY
    set +e
    out=$("$RUNNER" run "$ev" --store-dir "$STORE" --memory-mb "$mb" --json 2>/dev/null)
    code=$?
    set -e
    if [[ $code -ne 0 && $code -ne 3 ]]; then
      echo "memory: $wl at $mb MB: the runner exited $code" >&2; exit 1
    fi
    printf '%s' "$out" | python3 -c '
import json, sys
wl, size, mb = sys.argv[1:]
v = json.load(sys.stdin)
res = v["status"] if v["status"] == "Succeeded" else "refused: " + v["failure"]["type"]
wall, rss = v["elapsedSeconds"], v["peakRssKib"] / 1024
print(f"| {wl} | {size} MiB | {mb} | {res} | {wall:.1f} | {rss:.0f} |")
' "$wl" "$size_mib" "$mb"
    rm -f "$STORE/bench/out/$wl.zip"
  done
done
