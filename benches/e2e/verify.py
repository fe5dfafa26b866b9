#!/usr/bin/env python3
"""Checks an e2e run's outputs.

    verify.py collect WORKLOAD IMPL KMS_KEY [MASTER_PORT]
        right after IMPL ran (admin identity): records the output's encryption, takes
        the output (out/IMPL-WORKLOAD.zip) off the server (floor: streamed and hashed;
        runner, runner-1t, reference: saved to .work/run/WORKLOAD/IMPL.zip), deletes
        the object and, given the SeaweedFS master port, reclaims its space, so the
        next run has room (the local SeaweedFS has a fixed number of 1 GB volumes)
    verify.py reclaim MASTER_PORT
        compacts the bucket's volumes (SeaweedFS reclaims space only on vacuum)
    verify.py check WORKLOAD IMPL...
        IMPL...: the implementations that ran (floor, runner and reference, and
        runner-1t when it ran too)
        - every output was SSE-KMS under the job's key;
        - floor output byte-identical to the input (sha256);
        - each runner output (runner, runner-1t) and the reference output: same entry
          names (order may differ) and identical contents, read with Python's zipfile
          (which checks every CRC); names are the input's minus *.map; no *.json/*.yml
          still holds ${VERSION}, other text files still do.
        Prints one line per check; exits 1 if any failed.
"""

import hashlib
import json
import sys
import time
import urllib.request
import zipfile

from botocore.exceptions import ClientError

from common import BUCKET, MIB, WORK, s3_client, stack_env

IMPLS = ("floor", "runner", "runner-1t", "reference")
REQUIRED = ("floor", "runner", "reference")


def collect(wl, impl, kms_key, master_port=""):
    s3 = s3_client(stack_env())
    key = f"out/{impl}-{wl}.zip"
    run = WORK / "run" / wl
    info = {"impl": impl, "key": key}
    try:
        head = s3.head_object(Bucket=BUCKET, Key=key)
    except ClientError as e:
        info["error"] = str(e)
        (run / f"{impl}.collected.json").write_text(json.dumps(info))
        if master_port:
            reclaim(master_port)  # parts of an aborted upload
        return
    info.update(sse=head.get("ServerSideEncryption"), sse_key=head.get("SSEKMSKeyId"),
                expected_key=kms_key, bytes=head["ContentLength"])
    if impl == "floor":
        h = hashlib.sha256()
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        while chunk := body.read(8 * MIB):
            h.update(chunk)
        info["sha256"] = h.hexdigest()
    else:
        s3.download_file(BUCKET, key, str(run / f"{impl}.zip"))
    s3.delete_object(Bucket=BUCKET, Key=key)
    (run / f"{impl}.collected.json").write_text(json.dumps(info))
    if master_port:
        reclaim(master_port, head["ContentLength"])


def volumes(master, collection):
    """[(size, deleted bytes)] of the collection's volumes, from the master."""
    with urllib.request.urlopen(f"{master}/vol/status", timeout=10) as r:
        status = json.load(r)
    found = []

    def walk(o):
        if isinstance(o, dict):
            if "Collection" in o and "Size" in o and "Id" in o:
                if o["Collection"] == collection:
                    found.append((o["Size"], o.get("DeletedByteCount", 0)))
            else:
                for v in o.values():
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(status)
    return found


def reclaim(master_port, expected=0):
    """Compacts the bucket's volumes once the filer's (asynchronous) chunk deletions
    of about `expected` bytes have reached them (volume stats arrive with heartbeats),
    so deleted outputs free their space before the next run."""
    master = f"http://127.0.0.1:{master_port}"
    garbage = lambda: sum(d for _, d in volumes(master, BUCKET))  # noqa: E731
    try:
        deadline = time.monotonic() + 60
        while garbage() < 0.9 * expected and time.monotonic() < deadline:
            time.sleep(1)
        for _ in range(3):
            urllib.request.urlopen(
                f"{master}/vol/vacuum?garbageThreshold=0.001&collection={BUCKET}", timeout=600).read()
            time.sleep(3)
            if garbage() < 16 * MIB:
                return
    except OSError as e:
        print(f"reclaim: {e} (continuing)", file=sys.stderr)


def digest_entries(path):
    """{name: sha256 of contents} for every entry, reading (and CRC-checking) all data."""
    out = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            h = hashlib.sha256()
            with z.open(info) as f:
                while chunk := f.read(4 * MIB):
                    h.update(chunk)
            out[info.filename] = h.hexdigest()
    return out


def check(wl, impls):
    run = WORK / "run" / wl
    manifest = json.loads((WORK / "workloads" / f"{wl}.json").read_text())
    failures = []

    def ok(good, what):
        print(f"verify {wl}: {'ok' if good else 'FAIL'}: {what}")
        if not good:
            failures.append(what)

    got = {}
    for impl in impls:
        path = run / f"{impl}.collected.json"
        got[impl] = json.loads(path.read_text()) if path.exists() else {"error": "not collected"}
        g = got[impl]
        ok("error" not in g and g["sse"] == "aws:kms" and g["sse_key"] == g["expected_key"],
           f"{impl} output is SSE-KMS under the job's key "
           f"({g.get('error') or str(g['sse']) + ', ' + str(g['sse_key'])})")
    ok(got["floor"].get("sha256") == manifest["sha256"], "floor output is byte-identical to the input")

    runners = [impl for impl in impls if impl.startswith("runner")]
    paths = {impl: run / f"{impl}.zip" for impl in (*runners, "reference")}
    if not all(p.exists() for p in paths.values()):
        ok(False, f"{', '.join(paths)} outputs available")
        return failures
    digests = {impl: digest_entries(p) for impl, p in paths.items()}
    with zipfile.ZipFile(WORK / "workloads" / f"{wl}.zip") as z:
        expected = {n for n in z.namelist() if not n.endswith(".map")}
    ref = digests["reference"]
    ok(set(ref) == expected, f"reference has the input's {len(expected)} names minus *.map "
       f"(has {len(ref)})")
    for impl in runners:
        r = digests[impl]
        ok(set(r) == expected, f"{impl} has the same names (has {len(r)})")
        differ = sorted(n for n in expected if r.get(n) != ref.get(n))
        ok(not differ, f"{impl} and reference contents identical"
           + (f" ({len(differ)} differ, e.g. {differ[:3]})" if differ else ""))
    with zipfile.ZipFile(paths["runner"]) as z:
        names = [n for n in z.namelist() if n.endswith((".json", ".yml"))]
        left = [n for n in names if b"${VERSION}" in z.read(n)]
        others = [n for n in z.namelist() if n.endswith((".md", ".js"))][:100]
        kept = all(b"${VERSION}" in z.read(n) for n in others)
    ok(bool(names) and not left, f"${{VERSION}} replaced in all {len(names)} json/yml entries")
    ok(kept, "${VERSION} left alone in other text files")
    for p in paths.values():
        p.unlink()
    return failures


if __name__ == "__main__":
    if len(sys.argv) in (5, 6) and sys.argv[1] == "collect" and sys.argv[3] in IMPLS:
        collect(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "reclaim":
        reclaim(sys.argv[2])
    elif (len(sys.argv) >= 4 and sys.argv[1] == "check" and set(sys.argv[3:]) <= set(IMPLS)
          and set(REQUIRED) <= set(sys.argv[3:])):
        sys.exit(1 if check(sys.argv[2], sys.argv[3:]) else 0)
    else:
        sys.exit(__doc__)
