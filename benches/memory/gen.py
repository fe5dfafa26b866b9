#!/usr/bin/env python3
"""Workloads for benches/memory.sh, written into STORE/bench/in/<name>.zip.

    gen.py STORE NAME...

  huge-entry  one 600 MiB stored JSON file (every line holds ${VERSION}) and a few
              small files; the job templates *.json, so the big entry must be
              refused from its declared size before it is read (or streamed, once
              template streams): the process must never hold it
  tiny        500,000 entries of 8..64 bytes (a large central directory)
  big         ~2.2 GB: 7 x 300 MiB incompressible stored binaries plus 2,000 small
              deflated JSON files that the job templates
  unzip       ~600 MiB: a deflated inner zip dist/site.zip (2 x 250 MiB incompressible
              stored binaries, 5,000 small deflated JSON files) that the job unpacks
              and templates: the inner zip is inflated twice, never held

Deterministic: same bytes every run; an existing file is kept.
"""

import os
import random
import sys
import zipfile
from pathlib import Path

MIB = 1 << 20


def huge_entry(path):
    line = b'  "key_%08d": "image:${VERSION}",\n'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("README.md", "templated artifact\n")
        with z.open(zipfile.ZipInfo("config/huge.json", (2024, 1, 1, 0, 0, 0)), "w",
                    force_zip64=True) as f:
            f.write(b"{\n")
            n, written = 0, 2
            while written < 600 * MIB:
                chunk = b"".join(line % (n + i) for i in range(10_000))
                f.write(chunk)
                written += len(chunk)
                n += 10_000
            f.write(b'  "end": true\n}\n')
        z.writestr("app/settings.json", '{"image": "${VERSION}"}\n')


def tiny(path):
    rnd = random.Random(7)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for i in range(500_000):
            data = bytes(rnd.getrandbits(8) for _ in range(8 + i % 57))
            z.writestr(zipfile.ZipInfo(f"d{i // 1000:03d}/f{i:06d}.bin",
                                       (2024, 1, 1, 0, 0, 0)), data)


def big(path):
    rnd = random.Random(11)
    with zipfile.ZipFile(path, "w", allowZip64=True) as z:
        for b in range(7):
            info = zipfile.ZipInfo(f"bin/blob{b}.bin", (2024, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as f:
                for _ in range(300):
                    f.write(rnd.randbytes(MIB))
        for i in range(2_000):
            info = zipfile.ZipInfo(f"cfg/c{i:04d}.json", (2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, '{"image": "${VERSION}", "n": %d}\n' % i * 20)


def unzip(path):
    rnd = random.Random(13)
    inner = path.with_suffix(".inner")
    with zipfile.ZipFile(inner, "w", allowZip64=True) as z:
        for b in range(2):
            info = zipfile.ZipInfo(f"media/blob{b}.bin", (2024, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as f:
                for _ in range(250):
                    f.write(rnd.randbytes(MIB))
        for i in range(5_000):
            info = zipfile.ZipInfo(f"cfg/c{i:04d}.json", (2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, '{"image": "${VERSION}", "n": %d}\n' % i * 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        z.writestr("README.md", "a site build\n")
        z.write(inner, "dist/site.zip", compresslevel=1)
    inner.unlink()


def main():
    store = Path(sys.argv[1])
    out = store / "bench" / "in"
    out.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[2:]:
        path = out / f"{name}.zip"
        if path.exists():
            continue
        tmp = path.with_suffix(".tmp")
        {"huge-entry": huge_entry, "tiny": tiny, "big": big, "unzip": unzip}[name](tmp)
        os.replace(tmp, path)
        print(f"gen: {path} {path.stat().st_size / MIB:.0f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
