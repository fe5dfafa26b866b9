#!/usr/bin/env python3
"""Results of benches/e2e.sh.

    report.py record RESULTS WORKLOAD IMPL RC TIME_FILE STDOUT_FILE TMP_PEAK_BYTES [NET_FILE]
        appends one run (parsed from `/usr/bin/time -v` and the implementation's JSON
        stdout) to RESULTS (JSON lines); NET_FILE, when the run went through the
        shaping proxy (E2E_SHAPE), holds its shaping and traffic counters (shape.py's
        stats file), recorded as the row's "network"
    report.py table RESULTS
        prints the table per workload and implementation: median wall time, MB/s,
        CPU seconds (user + sys of the measured process), CPU-s/GB of input, MB/s per
        busy core, max peak RSS and temp disk over repeats, ratios (for shaped runs,
        a "network:" line first and the requests and connections of the median run
        as columns); then the targets
        for `large` (runner <= 1.3x floor, reference >= 3x and >= 5x runner wall,
        runner peak RSS <= 256 MiB, runner CPU-s/GB <= 4.0), reported, not enforced
    report.py chart RESULTS OUT.svg
        writes a self-contained SVG: per workload, bars of wall seconds and CPU-s/GB
        for each implementation
"""

import json
import math
import re
import statistics
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from common import WORK

MIB = 1 << 20
IMPLS = ("floor", "runner", "runner-1t", "reference")
RUNNERS = ("runner", "runner-1t")
LABEL = {"floor": "copy floor (boto3 stream)", "runner": "artifact-runner",
         "runner-1t": "artifact-runner --threads 1", "reference": "reference (boto3+zipfile)"}
# The ratio column: wall time over this implementation's.
RATIO_TO = {"runner": "floor", "runner-1t": "runner", "reference": "runner"}
COLOR = {"floor": "#8c8c8c", "runner": "#0072b2", "runner-1t": "#56b4e9",
         "reference": "#e69f00"}


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


def record(results, wl, impl, rc, time_file, stdout_file, tmp_peak, net_file=None):
    row = dict(workload=wl, impl=impl, rc=int(rc), **parse_time(time_file))
    manifest = json.loads((WORK / "workloads" / f"{wl}.json").read_text())
    row["input_bytes"] = manifest["bytes"]
    row["tmp_peak_bytes"] = int(tmp_peak)
    try:
        out = json.loads(Path(stdout_file).read_text())
    except (ValueError, OSError):
        out = {}
    if impl in RUNNERS:
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
    if net_file:
        row["network"] = json.loads(Path(net_file).read_text())
    with open(results, "a") as f:
        f.write(json.dumps(row) + "\n")
    status = "ok" if row["rc"] == 0 else f"FAILED (rc {row['rc']})"
    print(f"  {wl:6} {impl:9} {row['wall']:7.2f} s  rss {row['rss_kib'] / 1024:7.1f} MiB  "
          f"tmp {row['tmp_peak_bytes'] / MIB:7.1f} MiB  {status}  {json.dumps(row['detail'])}")


def per(num, den):
    """num / den, or None when den is 0 (a run that failed at once)."""
    return num / den if den else None


def load_rows(results):
    return [json.loads(line) for line in Path(results).read_text().splitlines() if line.strip()]


def network_note(rows):
    """"network: ..." for results measured through the shaping proxy, else None."""
    shapes = {(n["latency_ms"], n["bandwidth_MBps"]) for r in rows if (n := r.get("network"))}
    if not shapes:
        return None
    parts = []
    for latency, mbps in sorted(shapes):
        lat = f"{latency:g} ms/request" if latency else "no added latency"
        bw = f"{mbps:g} MB/s per connection" if mbps else "no bandwidth cap"
        parts.append(f"{lat}, {bw}")
    direct = sum(1 for r in rows if not r.get("network"))
    return ("network: " + "; ".join(parts) + " (benches/e2e/shape.py)"
            + (f"; {direct} runs direct" if direct else ""))


def aggregate(results):
    """(workloads in order, {(workload, impl): medians / maxima over its repeats})."""
    rows = load_rows(results)
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    agg = {}
    for wl in workloads:
        for impl in IMPLS:
            rs = [r for r in rows if r["workload"] == wl and r["impl"] == impl]
            if not rs:
                continue
            a = agg[wl, impl] = dict(
                n=len(rs), failed=sum(r["rc"] != 0 for r in rs),
                wall=statistics.median(r["wall"] for r in rs),
                cpu=statistics.median(r["user"] + r["sys"] for r in rs),
                rss=max(r["rss_kib"] for r in rs) / 1024,
                tmp=max(r["tmp_peak_bytes"] for r in rs) / MIB,
                input=rs[0]["input_bytes"])
            a["mbs"] = per(a["input"] / 1e6, a["wall"])
            a["cpu_gb"] = per(a["cpu"], a["input"] / 1e9)
            a["mbs_core"] = per(a["input"] / 1e6, a["cpu"])
            # Traffic through the shaping proxy: the run with the median wall time's.
            net = sorted(rs, key=lambda r: r["wall"])[(len(rs) - 1) // 2].get("network")
            if net:
                a["net"] = net
    return [wl for wl in workloads if any(k[0] == wl for k in agg)], agg


def fixed(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def ratio_cell(agg, wl, impl):
    a, base = agg[wl, impl], RATIO_TO.get(impl)
    ratio = per(a["wall"], agg[wl, base]["wall"]) if (wl, base) in agg else None
    cell = f"{ratio:.2f}x {base}" if ratio is not None else ""
    if a["failed"]:
        cell += f" ({a['failed']}/{a['n']} FAILED)"
    return cell.strip()


def net_cells(a):
    """Requests and connections (max open at once) of a shaped run."""
    n = a.get("net")
    if not n:
        return ("-", "-")
    return (str(n["requests"]), f"{n['connections']} ({n['max_open_connections']})")


def table_lines(workloads, agg, shaped=False):
    return [(wl, LABEL[impl], f"{a['wall']:.2f}", fixed(a["mbs"], 1), f"{a['cpu']:.2f}",
             fixed(a["cpu_gb"], 2), fixed(a["mbs_core"], 1), f"{a['rss']:.1f}",
             f"{a['tmp']:.1f}", *(net_cells(a) if shaped else ()), ratio_cell(agg, wl, impl))
            for wl in workloads for impl in IMPLS if (a := agg.get((wl, impl)))]


def print_columns(head, lines):
    """Workload, implementation and ratio left-aligned, numbers right-aligned; a blank
    line between workloads."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    left = {0, 1, len(head) - 1}
    fmt = lambda cells: "  ".join(  # noqa: E731
        str(c).ljust(w) if i in left else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    prev = None
    for line in lines:
        if prev and line[0] != prev:
            print()
        print(fmt(line))
        prev = line[0]


def sizes_note(workloads, agg):
    first = {wl: next(a for (w, _), a in agg.items() if w == wl) for wl in workloads}
    sizes = ", ".join(f"{wl} = {a['input'] / 1e6:.1f} MB" for wl, a in first.items())
    reps = max(a["n"] for a in agg.values())
    return f"input sizes: {sizes}; " + (f"median of {reps} runs" if reps > 1 else "one run each")


def print_targets(workloads, agg):
    """The targets for `large` (reported, not enforced); True when all are met."""
    ok = True
    for wl in ("large",):
        if not all((wl, i) in agg for i in ("floor", "runner", "reference")):
            continue
        if any(agg[wl, i]["failed"] for i in ("floor", "runner", "reference")):
            print(f"targets ({wl}): not evaluated (failed runs)")
            ok = False
            continue
        r, f, ref = agg[wl, "runner"], agg[wl, "floor"], agg[wl, "reference"]
        speedup = ref["wall"] / r["wall"]
        checks = [
            (r["wall"] / f["wall"] <= 1.3, f"runner within 1.3x of the copy floor: "
             f"{r['wall'] / f['wall']:.2f}x"),
            (speedup >= 3, f"runner >= 3x faster than the reference: {speedup:.2f}x"),
            (speedup >= 5, f"reference >= 5x runner wall: {speedup:.2f}x"),
            (r["rss"] <= 256, f"runner peak RSS <= 256 MiB: {r['rss']:.1f} MiB"),
            (r["cpu_gb"] <= 4.0, f"runner CPU-s/GB <= 4.0 (drop-maps + template): "
             f"{r['cpu_gb']:.2f}"),
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


def table(results):
    workloads, agg = aggregate(results)
    note = network_note(load_rows(results))
    head = ("workload", "implementation", "wall s", "MB/s", "CPU s", "CPU-s/GB", "MB/s/core",
            "peak RSS MiB", "temp disk MiB", "ratio")
    if note:
        print(note)
        head = (*head[:-1], "requests", "conns (max open)", head[-1])
    print_columns(head, table_lines(workloads, agg, shaped=bool(note)))
    print(f"\n{sizes_note(workloads, agg)}\n"
          "MB/s = input MB / wall s; CPU s = user + sys of the measured process (not the S3 "
          "server's);\nCPU-s/GB = CPU s per 1e9 input bytes; MB/s/core = input MB / CPU s; "
          "peak RSS, temp disk: max over runs")
    if note:
        print("requests, conns: through the shaping proxy in the median run (KMS not included); "
              "a new connection\nwaits the latency once more before its first request")
    return print_targets(workloads, agg)


# ---------------------------------------------------------------- chart
CHART_W, MARGIN, GUTTER, PANEL_GAP = 800, 20, 195, 30
PANEL_W = (CHART_W - MARGIN - GUTTER - PANEL_GAP - MARGIN) // 2
VALUE_ROOM = 70  # right of the longest bar, for its value
BAR_H, ROW_H = 18, 26
# (key in the aggregate, panel title, axis label, value format)
METRICS = (("wall", "(a) wall time", "seconds (lower is better)", "{:.2f} s"),
           ("cpu_gb", "(b) CPU per GB", "CPU-seconds per GB of input (lower is better)", "{:.2f}"))


def text(x, y, s, size=12, anchor="start", weight="normal", fill="#222"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(s)}</text>')


def nice_axis(vmax):
    """(top, step): a 1/2/5 x 10^k step giving about 4 ticks, top >= vmax."""
    raw = max(vmax, 1e-9) / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return step * math.ceil(vmax / step - 1e-9) or step, step


def panel(x, y, rows, metric):
    """One metric's bars for one workload at (x, y) (top of the first bar); rows are
    (impl, aggregate). Returns (svg elements, height)."""
    key, title, axis, value_fmt = metric
    values = [a[key] for _, a in rows]
    top, step = nice_axis(max(values))
    scale = (PANEL_W - VALUE_ROOM) / top
    out = [text(x, y - 8, title, size=13, weight="bold")]
    bottom = y + len(rows) * ROW_H
    for t in (step * i for i in range(round(top / step) + 1)):
        tx = x + t * scale
        out.append(f'<line x1="{tx:.1f}" y1="{y - 2}" x2="{tx:.1f}" y2="{bottom}" '
                   f'stroke="#e3e3e3"/>')
        out.append(text(tx, bottom + 14, f"{t:g}", size=11, anchor="middle", fill="#555"))
    for i, ((impl, a), v) in enumerate(zip(rows, values)):
        by = y + i * ROW_H
        out.append(f'<rect x="{x}" y="{by}" width="{v * scale:.1f}" height="{BAR_H}" '
                   f'fill="{COLOR[impl]}"><title>{escape(LABEL[impl])}</title></rect>')
        out.append(text(x + v * scale + 5, by + BAR_H - 4, value_fmt.format(v),
                        fill="#c00" if a["failed"] else "#222"))
    out.append(f'<line x1="{x}" y1="{bottom}" x2="{x + PANEL_W - VALUE_ROOM}" y2="{bottom}" '
               f'stroke="#555"/>')
    out.append(text(x + (PANEL_W - VALUE_ROOM) / 2, bottom + 30, axis, size=11,
                    anchor="middle", fill="#555"))
    return out, bottom + 30 - y


def workload_block(y, wl, agg):
    """Header, implementation labels and both panels for one workload at y; returns
    (svg elements, height)."""
    rows = [(impl, agg[wl, impl]) for impl in IMPLS if (wl, impl) in agg]
    first = rows[0][1]
    runs = f"median of {first['n']} runs" if first["n"] > 1 else "one run"
    out = [text(MARGIN, y + 16, f"{wl} \u2014 {first['input'] / 1e6:.1f} MB input, {runs}",
                size=15, weight="bold")]
    failed = [f"{LABEL[impl]} ({a['failed']} of {a['n']})" for impl, a in rows if a["failed"]]
    if failed:
        out.append(text(MARGIN, y + 34, "failed runs (red values; included in the medians): "
                        + ", ".join(failed), size=11, fill="#c00"))
    bars_y = y + (66 if failed else 50)
    for i, (impl, _) in enumerate(rows):
        out.append(text(MARGIN + GUTTER - 8, bars_y + i * ROW_H + BAR_H - 4, LABEL[impl],
                        anchor="end"))
    height = 0
    for j, metric in enumerate(METRICS):
        elems, h = panel(MARGIN + GUTTER + j * (PANEL_W + PANEL_GAP), bars_y, rows, metric)
        out += elems
        height = max(height, h)
    return out, bars_y - y + height + 24


def legend(y, impls):
    """The implementations' colours, two to a row, at y; returns (elements, height)."""
    out = []
    for i, impl in enumerate(impls):
        x, ly = MARGIN + (i % 2) * 260, y + (i // 2) * 20
        out.append(f'<rect x="{x}" y="{ly}" width="14" height="14" fill="{COLOR[impl]}"/>')
        out.append(text(x + 20, ly + 12, LABEL[impl]))
    return out, (len(impls) + 1) // 2 * 20


def chart(results, out):
    workloads, agg = aggregate(results)
    body = [text(MARGIN, 30, "End-to-end: wall time and CPU cost per implementation",
                 size=18, weight="bold"),
            text(MARGIN, 50, "CPU = user + sys of the measured process (the S3 server's not "
                 "included); GB = 1e9 bytes of input; " + Path(results).resolve().name,
                 size=11, fill="#555")]
    top = 64
    note = network_note(load_rows(results))
    if note:
        body.append(text(MARGIN, 66, note, size=11, fill="#555"))
        top = 80
    elems, y = legend(top, [i for i in IMPLS if any(k[1] == i for k in agg)])
    body += elems
    y += top + 12
    for wl in workloads:
        elems, h = workload_block(y, wl, agg)
        body += elems
        y += h
    height = y + MARGIN
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{height}" '
           f'viewBox="0 0 {CHART_W} {height}" font-family="-apple-system, Segoe UI, '
           f'Helvetica, Arial, sans-serif">',
           "<title>artifact-runner end-to-end benchmark</title>",
           f'<rect width="{CHART_W}" height="{height}" fill="#ffffff"/>',
           *body, "</svg>"]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(svg) + "\n")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "record" and len(sys.argv) in (9, 10):
        record(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        table(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "chart":
        chart(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
