#!/usr/bin/env python3
"""Generates seed corpora for the fuzz targets (fuzz/corpus/ is gitignored).

    python3 fuzz/seeds.py            # writes fuzz/corpus/{zip_index,zip_rewrite,plan_parse,pipeline}/

Zips are built byte by byte (struct) so every feature is present exactly as intended:
stored, deflated, data descriptors (with and without signature), zip64 (extra fields
and end records), empty archives, directories, UTF-8 / CP437 / Info-ZIP Unicode path
names, DOS backslashes, a prepended stub, an archive comment, and content the
zip_rewrite target's template/replace plan changes. Python's zipfile adds a couple of
archives written by a real tool. Only the standard library is used.
"""

import io
import os
import random
import struct
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

DOS_TIME = (12 << 11) | (30 << 5) | 0  # 12:30:00
DOS_DATE = (44 << 9) | (6 << 5) | 15  # 2024-06-15


def deflate(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


class Entry:
    def __init__(self, name, data=b"", method=8, flags=0, host=3, descriptor=None,
                 zip64=False, extra_local=b"", extra_central=b"", raw_name=None,
                 external=None):
        self.raw_name = raw_name if raw_name is not None else name.encode("utf-8")
        self.data = data
        self.method = method
        self.flags = flags
        if not self.raw_name.isascii() and raw_name is None:
            self.flags |= 1 << 11
        self.host = host
        self.descriptor = descriptor  # None, "sig" or "nosig"
        if descriptor:
            self.flags |= 1 << 3
        self.zip64 = zip64
        self.extra_local = extra_local
        self.extra_central = extra_central
        is_dir = self.raw_name.endswith(b"/")
        if external is None:
            external = (0o40755 << 16 | 0x10) if is_dir else (0o100644 << 16)
        self.external = external


def build(entries, comment=b"", prefix=b"", zip64_end=False, trailing=b""):
    out = bytearray(prefix)
    central = bytearray()
    for e in entries:
        body = e.data if e.method == 0 else deflate(e.data)
        crc = zlib.crc32(e.data) & 0xFFFFFFFF
        usize, csize = len(e.data), len(body)
        offset = len(out) - len(prefix)  # offsets as declared, without the stub
        version = 45 if e.zip64 else (20 if e.method == 8 else 10)
        lextra = bytearray(e.extra_local)
        if e.zip64:
            lextra += struct.pack("<HHQQ", 1, 16, usize, csize)
        if e.descriptor:
            l_crc, l_cs, l_us = 0, 0, 0
        elif e.zip64:
            l_crc, l_cs, l_us = crc, 0xFFFFFFFF, 0xFFFFFFFF
        else:
            l_crc, l_cs, l_us = crc, csize, usize
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, version, e.flags, e.method,
                           DOS_TIME, DOS_DATE, l_crc, l_cs, l_us, len(e.raw_name), len(lextra))
        out += e.raw_name + lextra + body
        if e.descriptor == "sig":
            out += struct.pack("<IIII", 0x08074B50, crc, csize, usize)
        elif e.descriptor == "nosig":
            out += struct.pack("<III", crc, csize, usize)
        cextra = bytearray(e.extra_central)
        if e.zip64:
            cextra += struct.pack("<HHQQQ", 1, 24, usize, csize, offset)
            c_cs, c_us, c_off = 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF
        else:
            c_cs, c_us, c_off = csize, usize, offset
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (e.host << 8) | version,
                               version, e.flags, e.method, DOS_TIME, DOS_DATE, crc, c_cs,
                               c_us, len(e.raw_name), len(cextra), 0, 0, 0, e.external,
                               c_off)
        central += e.raw_name + cextra
    cd_offset = len(out) - len(prefix)
    out += central
    n = len(entries)
    if zip64_end:
        eocd64_offset = len(out) - len(prefix)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, (3 << 8) | 45, 45, 0, 0, n, n,
                           len(central), cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                           0xFFFFFFFF, len(comment))
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset,
                           len(comment))
    out += comment + trailing
    return bytes(out)


def unicode_path_extra(raw_name, name):
    data = b"\x01" + struct.pack("<I", zlib.crc32(raw_name) & 0xFFFFFFFF) + name.encode()
    return struct.pack("<HH", 0x7075, len(data)) + data


TEMPLATED = b'{"version": "${VERSION}", "job": "${JOB_ID}", "keep": "${UNSET}", "a": "aaa"}\n'


def zips():
    text = b"hello, world\n" * 20
    z = {}
    z["empty.zip"] = build([])
    z["empty-comment.zip"] = build([], comment=b"an empty archive")
    z["stored.zip"] = build([Entry("a.txt", b"alpha\n", method=0),
                             Entry("b/c.txt", b"", method=0)])
    z["deflated.zip"] = build([Entry("readme.md", text), Entry("x/y/z.bin", bytes(range(256)))])
    z["descriptor.zip"] = build([Entry("dd/sig.txt", text, descriptor="sig"),
                                 Entry("dd/nosig.txt", b"no signature", descriptor="nosig"),
                                 Entry("dd/stored.txt", b"stored+dd", method=0, descriptor="sig")])
    z["zip64.zip"] = build([Entry("big/one.txt", text, zip64=True),
                            Entry("big/two.txt", b"two", method=0, zip64=True)],
                           zip64_end=True)
    z["zip64-end-only.zip"] = build([Entry("small.txt", b"small")], zip64_end=True)
    z["dirs.zip"] = build([Entry("dir/", method=0), Entry("dir/sub/", method=0),
                           Entry("dir/sub/file.txt", b"in a dir", method=0)])
    z["unicode.zip"] = build([
        Entry("ünï/ćode.txt", "ünïcode".encode()),             # UTF-8 flag
        Entry("", b"cp437", raw_name=b"caf\x82.txt", host=0),     # CP437 (no flag, not UTF-8)
        Entry("", b"upath", raw_name=b"old.txt",                  # Info-ZIP Unicode path
              extra_central=unicode_path_extra(b"old.txt", "néw/名前.txt")),
        Entry("", b"dos", raw_name=b"win\\path\\f.txt", host=0),  # DOS backslashes
    ])
    z["templated.zip"] = build([Entry("config/app.json", TEMPLATED),
                                Entry("plain.txt", TEMPLATED, method=0),
                                Entry("assets/", method=0)])
    z["stub-comment.zip"] = build([Entry("s.txt", b"after a stub")],
                                  prefix=b"#!/bin/sh\nexit 0\n", comment=b"comment",
                                  trailing=b"")
    z["bomb.zip"] = build([Entry("bomb.txt", b"\0" * 2_000_000)])  # over the 1 MiB limit
    # Written by a real tool.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/__init__.py", "VERSION = '${VERSION}'\n")
        zf.writestr(zipfile.ZipInfo("pkg/data/"), b"")
        zf.writestr("pkg/data/a.yml", "a: aaaa\n", compress_type=zipfile.ZIP_STORED)
    z["pyzipfile.zip"] = buf.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("forced64.txt", "w", force_zip64=True) as f:
            f.write(text)
    z["pyzipfile-zip64.zip"] = buf.getvalue()
    # Inner zips stored in place, for the unzip plan: plain, with descriptors, zip64.
    z["inner-stored.zip"] = build([Entry("a.txt", b"a ${VERSION}\n"),
                                   Entry("in.zip", z["deflated.zip"], method=0)])
    z["inner-descriptor.zip"] = build([Entry("lib/x.zip", z["descriptor.zip"], method=0),
                                       Entry("lib/y.zip", z["dirs.zip"], method=0)])
    z["inner-zip64.zip"] = build([Entry("z.zip", z["zip64.zip"], method=0, zip64=True)])
    return z


PLANS = {
    "empty.json": "",
    "blank.json": "   ",
    "object.json": "{}",
    "doc-example.json": """{
  "variables": { "VERSION": "1.4.2" },
  "on_unknown_variable": "keep",
  "steps": [
    { "exclude": ["**/*.map"] },
    { "template": { "files": ["**/*.json", "**/*.yml"] } },
    { "replace": { "files": ["config/*.txt"], "find": "staging", "with": "prod" } }
  ],
  "outputs": { "BuildOut": { "from": ["SourceOut"] } }
}""",
    "include.json": '{"steps":[{"include":["src/**","README.md","docs/"]}]}',
    "fail-unknown.json": '{"on_unknown_variable":"fail","steps":[{"template":{"files":["*"]}}]}',
    "routes.json": '{"outputs":{"BuildOut":{"from":["Extra","SourceOut"]},"Other":{"from":["Extra"]}}}',
    "bad-glob.json": '{"steps":[{"replace":{"files":["a/[b"],"find":"x","with":"y"}}]}',
    "bad-var.json": '{"variables":{"1X":"v"}}',
    "bad-field.json": '{"steps":[{"replce":{}}]}',
    "not-object.json": "input_parameter",
    # Plan v2 step kinds (rejected as unknown fields by a v1 engine: still useful).
    "v2-move.json": '{"steps":[{"move":{"strip_prefix":"src/","add_prefix":"site/"}},{"move":{"files":["*.txt"],"regex":"(.*)\\\\.txt","to":"$1.md"}}],"outputs":{"BuildOut":{"from":[{"input":"SourceOut","prefix":"app/"}],"on_conflict":"last"}}}',
    "v2-set.json": '{"variables":{"IMAGE":"repo:1"},"steps":[{"set":{"files":["config/app.json"],"pointer":"/nested/tag","value":"${IMAGE}"}},{"set":{"files":["*.yml"],"pointer":"/image/tag","value":"new","format":"yaml"}}]}',
    "v2-add-manifest.json": '{"steps":[{"add":{"path":"VERSION","text":"${JOB_ID}"}},{"add":{"path":"bin.dat","base64":"AAEC"}},{"manifest":{"path":"manifest.json"}}]}',
    "v2-export-pack.json": '{"steps":[{"export":{"variable":"TAG","file":"config/app.json","pointer":"/nested/tag","default":"none"}},{"pack":{"files":["*.txt"],"compression":"store","mtime":"1980-01-01T00:00:00","file_mode":"644","dir_mode":"755"}},{"pack":{"level":9}}]}',
    "v2-regex-replace.json": '{"steps":[{"replace":{"files":["src/*"],"regex":"st(a+)ging","with":"prod$1"}},{"include":{"files":["**"],"inputs":["SourceOut"]}}]}',
    "v3-unzip.json": '{"steps":[{"unzip":{"files":["*.zip"],"to":"x/","keep":true}},{"unzip":{"files":["lib/*.zip"],"optional":true}}]}',
    "escapes.json": '{"variables":{"\\u00e9":"\\ud83d\\ude00"},"steps":[{"replace":{"files":["\\\\*"],"find":"\\u0000","with":""}}]}',
}


def pipeline_seeds():
    """Inputs for the pipeline target, which builds its plan and archive from choice
    bytes (byte 0: length of the plan section; then plan choices; then archive
    choices): fixed pseudo-random choice streams of several shapes, so the first runs
    already cover many step kinds and entry layouts. Exhausted choices are 0, the
    common valid option, so even the short seeds are complete plans and archives."""
    rng = random.Random(20240615)
    seeds = {"empty": b"", "zero-plan": b"\x00" + bytes(range(64))}
    for i in range(24):
        plan_len = rng.choice([8, 16, 32, 48, 64, 96, 128, 200])
        plan = bytes(rng.randrange(256) for _ in range(plan_len))
        zlen = rng.choice([0, 4, 16, 32, 64, 128])
        zpart = bytes(rng.randrange(256) for _ in range(zlen))
        seeds[f"rand-{i:02d}"] = bytes([plan_len]) + plan + zpart
    return seeds


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    z = zips()
    for name, data in z.items():
        # Self-check with Python's reader where it applies (not for the bomb's size).
        if name != "bomb.zip":
            zipfile.ZipFile(io.BytesIO(data)).testzip()
        for t in ("zip_index", "zip_rewrite"):
            write(t, name, data)
    for name, text in PLANS.items():
        write("plan_parse", name, text.encode())
    seeds = pipeline_seeds()
    for name, data in seeds.items():
        write("pipeline", name, data)
    print(f"wrote {len(z)} zips to corpus/zip_index and corpus/zip_rewrite, "
          f"{len(PLANS)} plans to corpus/plan_parse, {len(seeds)} inputs to corpus/pipeline "
          f"(under {CORPUS})", file=sys.stderr)


if __name__ == "__main__":
    main()
