#!/usr/bin/env bash
# End-to-end benchmark against the local S3 stack (SeaweedFS + moto KMS): the worker
# (artifact-runner) next to the common boto3+zipfile pattern and the S3 copy floor.
#
# Usage: benches/e2e.sh [WORKLOAD...]     WORKLOAD: small | large | huge
#                                         (default: small large; huge is >= 2 GB)
#
# For each workload (generated once, deterministically, into benches/.work/workloads/):
#   upload it as SSE-KMS (a moto key) with the admin identity, get STS session
#   credentials, write the runners' CodePipeline events, then measure with /usr/bin/time -v:
#     floor      benches/e2e/floor.py: GetObject stream -> multipart upload, no zip work
#     runner     target/release/artifact-runner run EVENT --json --s3-endpoint ... --kms-endpoint ...
#     runner-1t  the same with --threads 1 (one transform thread: the small-Lambda case,
#                about one vCPU or less) on its own event (output out/runner-1t-WL.zip)
#     reference  benches/e2e/reference.py: download, extract, drop *.map, ${VERSION} in
#                json/yml, re-zip (deflate), upload
#   each with its own TMPDIR, sampled with `du` for the temp disk peak. The job:
#     {"variables":{"VERSION":"1.2.3"},"steps":[{"exclude":["*.map"]},
#      {"template":{"files":["*.json","*.yml"]}}]}
#   Then checks the runner outputs and the reference's hold the same entries with
#   identical contents (benches/e2e/verify.py), prints the table (benches/e2e/report.py:
#   per implementation wall s, MB/s, CPU s = user + sys of the measured process,
#   CPU-s/GB of input, MB/s per busy core, peak RSS, temp disk, ratio) and writes the
#   chart (wall s and CPU-s/GB per workload and implementation, SVG).
#
# Environment:
#   E2E_REPEAT=N       run each implementation N times (interleaved); the table shows
#                      the median wall and CPU time and the max RSS / temp disk
#                      (default 1)
#   RUNNER_BIN=PATH    use this artifact-runner instead of building target/release's
#   E2E_RUNNER_ARGS    extra arguments for runner and runner-1t (e.g. "--memory-mb 1024";
#                      not --threads, which runner-1t sets)
#   E2E_WORK=DIR       work directory (default benches/.work, git-ignored)
#   E2E_VERIFY=0       run the job with "verify": false (raw copies not inflated)
#   E2E_THREADS1=0     skip runner-1t (default 1: measure it right after runner)
#   E2E_CHART=PATH     write the chart there (relative to the current directory;
#                      default $E2E_WORK/run/e2e-latest.svg), e.g. docs/e2e.svg
#   E2E_SHAPE=SPEC     model real S3's network: the measured implementations (floor,
#                      runner, runner-1t, reference) reach the server through
#                      benches/e2e/shape.py, a local proxy. SPEC is a comma-separated
#                      list of "<N>ms" (each request's first byte is held N ms, and each
#                      new connection N ms more) and "<N>MBps" (each connection capped
#                      at N MB/s per direction, MB = 1e6 bytes), either or both, e.g.
#                      E2E_SHAPE=30ms,40MBps. Setup, collecting and checking outputs
#                      talk to the server directly; KMS is not shaped. The shaping and
#                      each run's traffic (connections, requests) go into the results
#                      and the table; the proxy's log is $E2E_WORK/run/shape.log.
#                      Unset (default): no proxy.
#
# Exit status: 0 when every run succeeded and the outputs verified; the targets
# (large: runner <= 1.3x floor, reference >= 3x and >= 5x runner wall, runner RSS
# <= 256 MiB, runner CPU-s/GB <= 4.0 for this drop-maps + template job) are reported,
# not enforced.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# E2E_CHART is relative to the caller's directory.
CHART="${E2E_CHART:+$(realpath -m -- "$E2E_CHART")}"
cd "$ROOT"
WORK="${E2E_WORK:-$ROOT/benches/.work}"
export E2E_WORK="$WORK"
HERE="$ROOT/benches/e2e"
REPEAT="${E2E_REPEAT:-1}"
CHART="${CHART:-$WORK/run/e2e-latest.svg}"
VERSION_VALUE="1.2.3"

log() { printf 'e2e: %s\n' "$*" >&2; }
die() { printf 'e2e: error: %s\n' "$*" >&2; exit 1; }

workloads=("$@")
((${#workloads[@]})) || workloads=(small large)
for wl in "${workloads[@]}"; do
    case "$wl" in small|large|huge) ;; *) die "unknown workload '$wl' (small, large, huge)";; esac
done
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "E2E_REPEAT must be a positive integer"
THREADS1=1
[[ "${E2E_THREADS1:-1}" != 0 ]] || THREADS1=0
impls=(floor runner reference)
if ((THREADS1)); then impls=(floor runner runner-1t reference); fi
SHAPE_LATENCY_MS=0
SHAPE_MBPS=0
if [[ -n "${E2E_SHAPE:-}" ]]; then
    IFS=, read -ra shape_parts <<<"$E2E_SHAPE"
    for part in "${shape_parts[@]}"; do
        if [[ "$part" =~ ^([0-9]+(\.[0-9]+)?)ms$ ]]; then
            SHAPE_LATENCY_MS="${BASH_REMATCH[1]}"
        elif [[ "$part" =~ ^([0-9]+(\.[0-9]+)?)MBps$ ]]; then
            SHAPE_MBPS="${BASH_REMATCH[1]}"
        else
            die "E2E_SHAPE: '$part' is neither <N>ms nor <N>MBps (e.g. 30ms,40MBps)"
        fi
    done
fi

# ---------------------------------------------------------------- tools
if [[ ! -x /usr/bin/time ]]; then
    log "installing GNU time (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; } \
        || die "/usr/bin/time is missing and apt-get could not install 'time'"
fi

log "local stack"
bash scripts/local-stack start >/dev/null
set -a
# shellcheck disable=SC1091
. .local-stack/env
set +a
MASTER_PORT=$(sed -n 's/^MASTER_PORT=//p' .local-stack/ports 2>/dev/null || true)
PY="$ROOT/.local-stack/venv/bin/python"
[[ -x "$PY" ]] || die "no $PY (scripts/local-stack start installs it)"

if [[ -z "${RUNNER_BIN:-}" ]]; then
    log "cargo build --release -p artifact-runner"
    cargo build --release -p artifact-runner
    # A private copy: a concurrent `cargo build --release` cannot swap it mid-run.
    mkdir -p "$WORK/bin"
    cp -f "$ROOT/target/release/artifact-runner" "$WORK/bin/artifact-runner"
    RUNNER_BIN="$WORK/bin/artifact-runner"
    log "runner built from tree $(git describe --always --dirty 2>/dev/null || echo '?')"
fi
[[ -x "$RUNNER_BIN" ]] || die "no runner binary at $RUNNER_BIN"

# ---------------------------------------------------------------- workloads, stack
# The local SeaweedFS has a fixed number of 1 GB volumes; outputs are taken off the
# server after each run and the bucket's volumes compacted, so large workloads fit.
reclaim() {
    [[ -n "$MASTER_PORT" ]] || return 0
    "$PY" "$HERE/verify.py" reclaim "$MASTER_PORT" || true
}

mkdir -p "$WORK/workloads" "$WORK/run"
for wl in "${workloads[@]}"; do
    "$PY" "$HERE/gen.py" "$wl" "$WORK/workloads"
done
setup_json=$("$PY" "$HERE/setup.py" "${workloads[@]}")
KMS_KEY=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["kms_key_arn"])' "$setup_json")
BUCKET=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["bucket"])' "$setup_json")
reclaim
CREDS="$WORK/run/creds.json"
RESULTS="$WORK/run/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
: >"$RESULTS"
ln -sfn "$(basename "$RESULTS")" "$WORK/run/results-latest.jsonl"

# ---------------------------------------------------------------- network shaping
# The endpoint the measured implementations use: the server's, or the shaping proxy's.
MEASURE_S3_ENDPOINT="$LOCAL_STACK_S3_ENDPOINT"
SHAPE_PID=""
SHAPE_STATS="$WORK/run/shape.stats.json"
stop_shape() {
    [[ -n "$SHAPE_PID" ]] || return 0
    kill -TERM "$SHAPE_PID" 2>/dev/null || true
    wait "$SHAPE_PID" 2>/dev/null || true
    SHAPE_PID=""
}
# shape_snapshot FILE: the proxy's counters since the previous snapshot, into FILE.
shape_snapshot() {
    local i
    rm -f "$SHAPE_STATS"
    kill -USR1 "$SHAPE_PID" 2>/dev/null \
        || die "the shaping proxy is gone (see $WORK/run/shape.log)"
    for ((i = 0; i < 50; i++)); do
        if [[ -s "$SHAPE_STATS" ]]; then
            mv -f "$SHAPE_STATS" "$1"
            return 0
        fi
        sleep 0.1
    done
    die "no counters from the shaping proxy (see $WORK/run/shape.log)"
}
if [[ -n "${E2E_SHAPE:-}" ]]; then
    port_file="$WORK/run/shape.port"
    rm -f "$port_file" "$SHAPE_STATS"
    trap stop_shape EXIT
    "$PY" "$HERE/shape.py" --upstream "$LOCAL_STACK_S3_ENDPOINT" --listen-port 0 \
        --latency-ms "$SHAPE_LATENCY_MS" --bandwidth-mbps "$SHAPE_MBPS" \
        --port-file "$port_file" --stats-file "$SHAPE_STATS" >"$WORK/run/shape.log" 2>&1 &
    SHAPE_PID=$!
    for ((i = 0; i < 100; i++)); do
        [[ -s "$port_file" ]] && break
        kill -0 "$SHAPE_PID" 2>/dev/null \
            || die "the shaping proxy did not start: $(cat "$WORK/run/shape.log")"
        sleep 0.1
    done
    [[ -s "$port_file" ]] || die "the shaping proxy did not report its port in 10 s"
    MEASURE_S3_ENDPOINT="http://127.0.0.1:$(<"$port_file")"
    log "network shaping (E2E_SHAPE=$E2E_SHAPE): ${SHAPE_LATENCY_MS} ms per request," \
        "${SHAPE_MBPS} MB/s per connection (0: unlimited), through $MEASURE_S3_ENDPOINT"
fi

# ---------------------------------------------------------------- measuring
# measure WORKLOAD IMPL CMD...: runs CMD under /usr/bin/time -v with its own empty
# TMPDIR (sampled with du every 0.5 s) and no ambient AWS credentials, with
# LOCAL_STACK_S3_ENDPOINT (floor.py and reference.py read it) set to
# $MEASURE_S3_ENDPOINT; records it, with the proxy's traffic counters when shaping.
measure() {
    local wl="$1" impl="$2"; shift 2
    local dir="$WORK/run/$wl/$impl"
    rm -rf "$dir"
    mkdir -p "$dir/tmp"
    sync
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
        TMPDIR="$dir/tmp" RUST_LOG="${RUST_LOG:-warn}" \
        LOCAL_STACK_S3_ENDPOINT="$MEASURE_S3_ENDPOINT" \
        /usr/bin/time -v -o "$dir/time.txt" "$@" >"$dir/stdout" 2>"$dir/stderr" &
    local pid=$! peak=0 size rc=0
    while kill -0 "$pid" 2>/dev/null; do
        size=$(du -sb "$dir/tmp" 2>/dev/null | cut -f1) || size=0
        ((size > peak)) && peak=$size
        sleep 0.5
    done
    wait "$pid" || rc=$?
    local net=()
    if [[ -n "$SHAPE_PID" ]]; then
        shape_snapshot "$dir/network.json"
        net=("$dir/network.json")
    fi
    "$PY" "$HERE/report.py" record "$RESULTS" "$wl" "$impl" "$rc" "$dir/time.txt" \
        "$dir/stdout" "$peak" ${net[@]+"${net[@]}"}
    if ((rc != 0)); then
        log "$impl on $wl failed (rc $rc); last lines of $dir/stderr:"
        tail -n 20 "$dir/stderr" >&2 || true
    fi
    rm -rf "$dir/tmp"
    "$PY" "$HERE/verify.py" collect "$wl" "$impl" "$KMS_KEY" "$MASTER_PORT"
}

failed=0
for wl in "${workloads[@]}"; do
    log "workload $wl: $(( $(stat -c %s "$WORK/workloads/$wl.zip") / 1000000 )) MB, s3://$BUCKET/in/$wl.zip"
    for ((rep = 1; rep <= REPEAT; rep++)); do
        # shellcheck disable=SC2086  # E2E_RUNNER_ARGS is split on purpose
        measure "$wl" floor "$PY" "$HERE/floor.py" "$CREDS" "$BUCKET" "in/$wl.zip" \
            "out/floor-$wl.zip" "$KMS_KEY"
        # shellcheck disable=SC2086
        measure "$wl" runner "$RUNNER_BIN" run "$WORK/run/$wl/event.json" --json \
            --s3-endpoint "$MEASURE_S3_ENDPOINT" --kms-endpoint "$LOCAL_STACK_KMS_ENDPOINT" \
            ${E2E_RUNNER_ARGS:-}
        if ((THREADS1)); then
            # shellcheck disable=SC2086
            measure "$wl" runner-1t "$RUNNER_BIN" run "$WORK/run/$wl/event-1t.json" --json \
                --s3-endpoint "$MEASURE_S3_ENDPOINT" \
                --kms-endpoint "$LOCAL_STACK_KMS_ENDPOINT" ${E2E_RUNNER_ARGS:-} --threads 1
        fi
        measure "$wl" reference "$PY" "$HERE/reference.py" "$CREDS" "$BUCKET" "in/$wl.zip" \
            "out/reference-$wl.zip" "$KMS_KEY" "$VERSION_VALUE"
    done
    if ! "$PY" "$HERE/verify.py" check "$wl" "${impls[@]}"; then
        failed=1
    fi
done
if grep -q '"rc": [1-9]' "$RESULTS"; then failed=1; fi
stop_shape

echo
"$PY" "$HERE/report.py" table "$RESULTS"
"$PY" "$HERE/report.py" chart "$RESULTS" "$CHART"
echo "results: $RESULTS"
echo "chart: $CHART"
exit "$failed"
