#!/usr/bin/env python3
"""Deterministic benchmark workloads for benches/e2e.sh.

    gen.py WORKLOAD OUT_DIR      -> OUT_DIR/WORKLOAD.zip + OUT_DIR/WORKLOAD.json

Same seed, same bytes: a workload is only rebuilt when the zip is missing or its
manifest's `generator` version differs from GENERATOR (bump it when the shape changes).

Shape (per 20 entries, like benches/engine.rs):
  2 .json + 1 .yml  (15%)  text, every line holds ${VERSION}
  1 .js + 1 .md     (10%)  text, also holding ${VERSION} (not templated by the job)
  1 .js.map         ( 5%)  source map (excluded by the job)
  14 binaries       (70%)  incompressible, every other one stored, the rest deflated
Text and maps are deflated (level 6, zipfile's default).
"""

import hashlib
import json
import os
import random
import sys
import time
import zipfile
from pathlib import Path

GENERATOR = 3
TS = (2024, 5, 17, 12, 0, 0)
KIB = 1 << 10
MIB = 1 << 20

# name: (entries, binary size range, big binaries (count, size))
WORKLOADS = {
    "small": dict(entries=2_000, bin_min=4 * KIB, bin_max=52 * KIB, big=(0, 0)),
    "large": dict(entries=20_000, bin_min=4 * KIB, bin_max=80 * KIB, big=(0, 0)),
    # >= 2 GB: the memory check. A few 160 MiB binaries exercise the streamed
    # (never-whole-in-memory) path for entries larger than one read chunk.
    "huge": dict(entries=40_000, bin_min=4 * KIB, bin_max=100 * KIB, big=(4, 160 * MIB)),
}

WORDS = ("service orders deploy region image handler timeout memory queue bucket release "
         "stage artifact pipeline config build runtime version lambda template output input "
         "cache policy").split()
VLQ = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def text(rng, ext, size):
    out, n, line = [], 0, 0
    w = WORDS
    while n < size:
        a, b, k = w[rng.randrange(len(w))], w[rng.randrange(len(w))], rng.randrange(10_000)
        if ext == "json":
            s = f'  "{a}_{line}": {{"{b}": "{a}-{b}-{k}", "version": "${{VERSION}}"}},\n'
        elif ext == "yml":
            s = f"{a}_{line}:\n  {b}: {a}-{k}\n  image_tag: ${{VERSION}}\n"
        elif ext == "js":
            s = f"export const {a}{line} = ({b}) => {b}.{a}({k}); // ${{VERSION}}\n"
        else:
            s = f"The {a} {b} ({k}) ships in release ${{VERSION}}.\n"
        out.append(s)
        n += len(s)
        line += 1
    return "".join(out).encode()


def source_map(rng, size):
    parts = ['{"version":3,"sources":["src/app.ts"],"mappings":"']
    n = len(parts[0])
    while n < size:
        seg = "".join(VLQ[rng.randrange(24)] for _ in range(rng.randrange(2, 7)))
        seg += ";" if rng.randrange(8) == 0 else ","
        parts.append(seg)
        n += len(seg)
    parts.append('"}\n')
    return "".join(parts).encode()


def add(z, name, data, deflate):
    info = zipfile.ZipInfo(name, TS)
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    info.external_attr = 0o100644 << 16
    info.create_system = 3
    z.writestr(info, data)


def generate(name, out_dir):
    spec = WORKLOADS[name]
    out_dir.mkdir(parents=True, exist_ok=True)
    zpath, mpath = out_dir / f"{name}.zip", out_dir / f"{name}.json"
    if zpath.exists() and mpath.exists():
        m = json.loads(mpath.read_text())
        if m.get("generator") == GENERATOR and m.get("bytes") == zpath.stat().st_size:
            print(f"gen: {name}: cached ({m['bytes'] / 1e6:.1f} MB, {m['entries']} entries)",
                  file=sys.stderr)
            return
    t0 = time.time()
    rng = random.Random(f"artifact-bench/{name}/{GENERATOR}")
    counts = dict(json=0, yml=0, js=0, md=0, map=0, bin_stored=0, bin_deflated=0, big=0)
    uncompressed = 0
    tmp = zpath.with_suffix(".zip.tmp")
    n, (big_n, big_size) = spec["entries"], spec["big"]
    # Big binaries replace evenly spaced regular binaries (keeps the 70% share).
    # Slot 6 + k of its group of 20: a binary, stored for even k, deflated for odd k.
    big_at = {((k + 1) * n // (big_n + 1)) // 20 * 20 + 6 + k for k in range(big_n)}
    with zipfile.ZipFile(tmp, "w", allowZip64=True) as z:
        for i in range(n):
            k = i % 20
            if k <= 4:
                ext = ("json", "yml", "json", "js", "md")[k]
                data = text(rng, ext, rng.randrange(2 * KIB, 14 * KIB))
                deflate = True
                counts[ext] += 1
            elif k == 5:
                ext = "js.map"
                data = source_map(rng, rng.randrange(8 * KIB, 24 * KIB))
                deflate = True
                counts["map"] += 1
            else:
                ext = ("png", "bin", "woff2", "jar")[k % 4]
                size = big_size if i in big_at else rng.randrange(spec["bin_min"], spec["bin_max"])
                data = rng.randbytes(size)
                deflate = k % 2 == 1
                counts["bin_deflated" if deflate else "bin_stored"] += 1
                counts["big"] += i in big_at
            add(z, f"pkg{i // 100:03d}/mod{i % 7}/file{i:05d}.{ext}", data, deflate)
            uncompressed += len(data)
    h = hashlib.sha256()
    with open(tmp, "rb") as f:
        while chunk := f.read(8 * MIB):
            h.update(chunk)
    os.replace(tmp, zpath)
    manifest = dict(generator=GENERATOR, workload=name, entries=n, bytes=zpath.stat().st_size,
                    uncompressed=uncompressed, sha256=h.hexdigest(), counts=counts)
    mpath.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"gen: {name}: {manifest['bytes'] / 1e6:.1f} MB, {n} entries in {time.time() - t0:.1f}s",
          file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in WORKLOADS:
        sys.exit(f"usage: gen.py {{{'|'.join(WORKLOADS)}}} OUT_DIR")
    generate(sys.argv[1], Path(sys.argv[2]))
