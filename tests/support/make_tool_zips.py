#!/usr/bin/env python3
"""Builds zips the way real tools do, for tests/real_tools.rs. Usage: DIR.

Writes DIR/<tool>.zip for: infozip (zip -r, with a symlink and a unicode name),
jar (JDK jar: data descriptors, deflated directory entries), python-stream (zipfile on
a non-seekable stream: data descriptors on every entry), python-zip64 (zip64 records
forced), sfx (a stub prepended to a zip, offsets not adjusted), and writes
DIR/<tool>.expect.json with every file's content (base64) as Python reads it.
"""
import base64, io, json, os, pathlib, subprocess, sys, zipfile

out = pathlib.Path(sys.argv[1])
tree = out / "tree"
(tree / "app" / "conf").mkdir(parents=True, exist_ok=True)
(tree / "app" / "conf" / "app.json").write_text('{"version": "${VERSION}"}\n')
(tree / "app" / "conf" / "settings.yml").write_text("tag: ${VERSION}\n" * 200)
(tree / "app" / "bin.dat").write_bytes(os.urandom(0) + bytes((i * 7919) % 256 for i in range(70000)))
(tree / "app" / "empty").mkdir(exist_ok=True)
(tree / "app" / "ünïcødé.txt").write_text("ünïcødé ${VERSION}\n")
if not (tree / "app" / "link").exists():
    os.symlink("conf/app.json", tree / "app" / "link")


def modern_name(info):
    """Info-ZIP without a UTF-8 locale stores UTF-8 bytes without the UTF-8 flag;
    Python then decodes them as CP437. Modern readers (and the worker) take valid
    UTF-8 as UTF-8, and the worker's output sets the flag."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.filename


def expect(path):
    z = zipfile.ZipFile(path)
    files = {modern_name(i): base64.b64encode(z.read(i)).decode() for i in z.infolist() if not i.is_dir()}
    (out / (path.stem + ".expect.json")).write_text(json.dumps(files))


subprocess.run(["zip", "-q", "-r", "-y", str(out / "infozip.zip"), "app"], cwd=tree, check=True)
subprocess.run(["jar", "cf", str(out / "jar.zip"), "app"], cwd=tree, check=True)


class NonSeekable(io.RawIOBase):
    def __init__(self, f):
        self.f = f

    def writable(self):
        return True

    def write(self, b):
        return self.f.write(b)


with open(out / "python-stream.zip", "wb") as f:
    with zipfile.ZipFile(NonSeekable(f), "w") as z:
        for p in sorted(tree.rglob("*")):
            if p.is_symlink() or p.is_dir():
                continue
            rel = p.relative_to(tree).as_posix()
            ct = zipfile.ZIP_STORED if p.suffix == ".dat" else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(rel, (2020, 1, 1, 0, 0, 0))
            info.compress_type = ct
            with z.open(info, "w") as w:
                w.write(p.read_bytes())

with zipfile.ZipFile(out / "python-zip64.zip", "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
    for p in sorted(tree.rglob("*")):
        if p.is_symlink() or p.is_dir():
            continue
        rel = p.relative_to(tree).as_posix()
        with z.open(rel, "w", force_zip64=True) as w:
            w.write(p.read_bytes())

(out / "sfx.zip").write_bytes(b"#!/bin/sh\necho self-extractor stub\nexit 0\n" + (out / "infozip.zip").read_bytes())

for name in ["infozip", "jar", "python-stream", "python-zip64", "sfx"]:
    expect(out / f"{name}.zip")
print("ok")
