#!/usr/bin/env bash
# What continuation costs: runs the release runner on the embedded store over one
# input (benches/continuation/gen.py; CONT_ENTRIES entries, ~26 KiB each) once
# uninterrupted and once with --timeout CONT_TIMEOUT (so it checkpoints and follows
# its continuations), checks both outputs are byte-identical with identical output
# variables, and prints the invocations, the wall time of each run, the overhead per
# extra invocation, and each checkpoint's measured cost (from deciding to stop to the
# state object written, the worker's own `checkpoint saved` log line).
# A measurement, not a test: it fails only when the two outputs differ.
#
# Usage: benches/continuation.sh
# Environment: CONT_ENTRIES=20000, CONT_TIMEOUT=2, CONT_WORK=DIR (default benches/.work/continuation)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="${CONT_WORK:-$ROOT/benches/.work/continuation}"
ENTRIES="${CONT_ENTRIES:-20000}"
TIMEOUT="${CONT_TIMEOUT:-2}"
mkdir -p "$WORK"
cargo build --release -q -p artifact-runner
RUNNER="${CARGO_TARGET_DIR:-$ROOT/target}/release/artifact-runner"
[ -f "$WORK/store/bench/in/long.zip" ] || python3 benches/continuation/gen.py "$WORK/store" "$ENTRIES"
run() { # NAME ARGS...
  local name=$1; shift
  rm -f "$WORK/store/bench/out/"*
  RUST_LOG=artifact_core=info ARTIFACT_WORKER_DEADLINE_MARGIN_MS=300 \
    "$RUNNER" run "$WORK/long.json" --store-dir "$WORK/store" --json "$@" \
    > "$WORK/$name.json" 2> "$WORK/$name.log"
  cp "$WORK/store/bench/out/long.zip" "$WORK/$name.zip"
}
run whole
run continued --timeout "$TIMEOUT"
cmp -s "$WORK/whole.zip" "$WORK/continued.zip" || { echo "outputs differ" >&2; exit 1; }
python3 - "$WORK" "$TIMEOUT" <<'PY'
import json, re, sys
work, timeout = sys.argv[1], sys.argv[2]
w = json.load(open(f"{work}/whole.json")); c = json.load(open(f"{work}/continued.json"))
assert w["outputVariables"] == c["outputVariables"], "output variables differ"
n = len(c["invocations"])
log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{work}/continued.log").read())
costs = [int(m) for m in re.findall(r"checkpoint_ms=(\d+)", log)]
saves = [int(m) for m in re.findall(r"state_save_ms=(\d+)", log)]
print(f"input: {w['outputs'][0]['entries']} entries, output {w['outputs'][0]['bytes'] / 2**20:.0f} MiB (byte-identical, same output variables)")
print(f"uninterrupted: 1 invocation, {w['elapsedSeconds']:.2f} s, peak RSS {w['peakRssKib'] // 1024} MiB")
print(f"--timeout {timeout}: {n} invocations, {c['elapsedSeconds']:.2f} s, peak RSS {c['peakRssKib'] // 1024} MiB")
print("  per invocation (percent, s): " + ", ".join(f"{i['percentComplete']}%/{i['seconds']:.2f}" for i in c["invocations"]))
if n > 1:
    print(f"overhead per extra invocation: {(c['elapsedSeconds'] - w['elapsedSeconds']) / (n - 1):.2f} s")
if costs:
    med = lambda v: sorted(v)[len(v) // 2]
    print(f"checkpoint cost (ms, deciding to stop .. state written): min {min(costs)}, median {med(costs)}, max {max(costs)}")
    print(f"  of which the state object PUT (ms): median {med(saves)}, max {max(saves)}")
PY
