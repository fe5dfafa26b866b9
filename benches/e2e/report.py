#!/usr/bin/env python3
"""Results of benches/e2e.sh.

    report.py record RESULTS WORKLOAD IMPL RC TIME_FILE STDOUT_FILE TMP_PEAK_BYTES
        appends one run (parsed from `/usr/bin/time -v` and the implementation's JSON
        stdout) to RESULTS (JSON lines)
    report.py table RESULTS
        prints the table (median wall time and max RSS / temp disk over repeats),
        ratios, and the targets for `large` (runner <= 1.3x floor, reference >= 3x
        runner, runner peak RSS <= 256 MiB)
"""

import json
import re
import statistics
import sys
from pathlib import Path

from common import WORK

MIB = 1 << 20
IMPLS = ("floor", "runner", "reference")
LABEL = {"floor": "copy floor (boto3 stream)", "runner": "artifact-runner",
         "reference": "reference (boto3+zipfile)"}


def parse_time(path):
    text = Path(path).read_text()

    def field(name):
        m = re.search(rf"^\s*{re.escape(name)}: (.+)$", text, re.M)
        return m.group(1).strip() if m else None

    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)") or "0:0"
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return dict(wall=secs, rss_kib=int(field("Maximum resident set size (kbytes)") or 0),
                user=float(field("User time (seconds)") or 0),
                sys=float(field("System time (seconds)") or 0))


def record(results, wl, impl, rc, time_file, stdout_file, tmp_peak):
    row = dict(workload=wl, impl=impl, rc=int(rc), **parse_time(time_file))
    manifest = json.loads((WORK / "workloads" / f"{wl}.json").read_text())
    row["input_bytes"] = manifest["bytes"]
    row["tmp_peak_bytes"] = int(tmp_peak)
    try:
        out = json.loads(Path(stdout_file).read_text())
    except (ValueError, OSError):
        out = {}
    if impl == "runner":
        row["status"] = out.get("status")
        outs = out.get("outputs") or [{}]
        row["output_bytes"] = outs[0].get("bytes")
        row["detail"] = {k: outs[0].get(k) for k in ("entries", "transformedEntries",
                                                     "droppedEntries", "parts")}
        if out.get("failure"):
            row["detail"]["failure"] = out["failure"]
        if row["status"] != "Succeeded":
            row["rc"] = row["rc"] or 1
    else:
        row["output_bytes"] = out.get("output_bytes")
        row["detail"] = out.get("phases")
        # The sampler polls every 0.5 s; the reference also adds up what it wrote.
        row["tmp_peak_bytes"] = max(row["tmp_peak_bytes"], out.get("tmp_peak_bytes") or 0)
    with open(results, "a") as f:
        f.write(json.dumps(row) + "\n")
    status = "ok" if row["rc"] == 0 else f"FAILED (rc {row['rc']})"
    print(f"  {wl:6} {impl:9} {row['wall']:7.2f} s  rss {row['rss_kib'] / 1024:7.1f} MiB  "
          f"tmp {row['tmp_peak_bytes'] / MIB:7.1f} MiB  {status}  {json.dumps(row['detail'])}")


def table(results):
    rows = [json.loads(line) for line in Path(results).read_text().splitlines() if line.strip()]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    agg = {}
    for wl in workloads:
        for impl in IMPLS:
            rs = [r for r in rows if r["workload"] == wl and r["impl"] == impl]
            if not rs:
                continue
            agg[wl, impl] = dict(
                n=len(rs), failed=sum(r["rc"] != 0 for r in rs),
                wall=statistics.median(r["wall"] for r in rs),
                cpu=statistics.median(r["user"] + r["sys"] for r in rs),
                rss=max(r["rss_kib"] for r in rs) / 1024,
                tmp=max(r["tmp_peak_bytes"] for r in rs) / MIB,
                input=rs[0]["input_bytes"])

    head = ("workload", "implementation", "wall s", "MB/s", "CPU s", "peak RSS MiB",
            "temp disk MiB", "ratio")
    lines = []
    for wl in workloads:
        for impl in IMPLS:
            a = agg.get((wl, impl))
            if not a:
                continue
            ratio = ""
            if impl == "runner" and (wl, "floor") in agg:
                ratio = f"{a['wall'] / agg[wl, 'floor']['wall']:.2f}x floor"
            if impl == "reference" and (wl, "runner") in agg:
                ratio = f"{a['wall'] / agg[wl, 'runner']['wall']:.2f}x runner"
            if a["failed"]:
                ratio += f" ({a['failed']}/{a['n']} FAILED)"
            lines.append((wl, LABEL[impl], f"{a['wall']:.2f}", f"{a['input'] / 1e6 / a['wall']:.1f}",
                          f"{a['cpu']:.1f}", f"{a['rss']:.1f}", f"{a['tmp']:.1f}", ratio.strip()))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        str(c).ljust(w) if i < 2 or i == 7 else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths)))
    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    prev = None
    for line in lines:
        if prev and line[0] != prev:
            print()
        print(fmt(line))
        prev = line[0]
    sizes = ", ".join(f"{wl} = {agg[wl, i]['input'] / 1e6:.1f} MB"
                      for wl in workloads for i in IMPLS[:1] if (wl, i) in agg)
    reps = max(a["n"] for a in agg.values())
    print(f"\ninput sizes: {sizes}; MB/s = input bytes / wall; "
          f"{'median of ' + str(reps) + ' runs' if reps > 1 else 'one run each'}")

    ok = True
    for wl in ("large",):
        if not all((wl, i) in agg for i in IMPLS):
            continue
        r, f, ref = agg[wl, "runner"], agg[wl, "floor"], agg[wl, "reference"]
        checks = [
            (r["wall"] / f["wall"] <= 1.3, f"runner within 1.3x of the copy floor: "
             f"{r['wall'] / f['wall']:.2f}x"),
            (ref["wall"] / r["wall"] >= 3, f"runner >= 3x faster than the reference: "
             f"{ref['wall'] / r['wall']:.2f}x"),
            (r["rss"] <= 256, f"runner peak RSS <= 256 MiB: {r['rss']:.1f} MiB"),
        ]
        print(f"targets ({wl}):")
        for good, what in checks:
            print(f"  {'met ' if good else 'MISSED'}  {what}")
            ok &= good
    for wl in workloads:
        if wl != "large" and (wl, "runner") in agg:
            print(f"{wl}: runner peak RSS {agg[wl, 'runner']['rss']:.1f} MiB (target <= 256 MiB: "
                  f"{'met' if agg[wl, 'runner']['rss'] <= 256 else 'MISSED'})")
    return ok


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "record" and len(sys.argv) == 9:
        record(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)
