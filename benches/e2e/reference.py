#!/usr/bin/env python3
"""Reference implementation: the common pattern for a CodePipeline Lambda that edits
an artifact, in boto3 + zipfile.

    reference.py CREDS BUCKET KEY OUT_KEY KMS_KEY VERSION

Download the object to a temporary directory, extract everything, drop *.map, replace
${VERSION} in *.json/*.yml, re-zip everything with deflate, upload with SSE-KMS. Uses
the job's session credentials (CREDS, written by setup.py) and boto3's default
TransferConfig for both directions. Prints phase timings and the temp disk it used
(input zip + extracted tree + output zip at the peak) as JSON on stdout.
"""

import json
import os
import sys
import tempfile
import time
import zipfile
from fnmatch import fnmatch

from common import job_s3


def tree_bytes(root):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)


def main(creds, bucket, key, out_key, kms_key, version):
    s3 = job_s3(creds)
    phases, t = {}, time.monotonic()

    def phase(name):
        nonlocal t
        now = time.monotonic()
        phases[name] = round(now - t, 3)
        t = now

    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        src = os.path.join(tmp, "in.zip")
        s3.download_file(bucket, key, src)
        phase("download")

        root = os.path.join(tmp, "x")
        with zipfile.ZipFile(src) as z:
            z.extractall(root)
        phase("extract")

        find, repl = b"${VERSION}", version.encode()
        for d, _, files in os.walk(root):
            for f in files:
                p = os.path.join(d, f)
                if fnmatch(f, "*.map"):
                    os.remove(p)
                elif fnmatch(f, "*.json") or fnmatch(f, "*.yml"):
                    with open(p, "rb") as fh:
                        data = fh.read()
                    if find in data:
                        with open(p, "wb") as fh:
                            fh.write(data.replace(find, repl))
        phase("transform")

        out = os.path.join(tmp, "out.zip")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for d, dirs, files in os.walk(root):
                dirs.sort()
                for f in sorted(files):
                    p = os.path.join(d, f)
                    z.write(p, os.path.relpath(p, root))
        phase("zip")
        peak = os.path.getsize(src) + tree_bytes(root) + os.path.getsize(out)

        s3.upload_file(out, bucket, out_key,
                       ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key,
                                  "ContentType": "application/zip"})
        phase("upload")
        out_bytes = os.path.getsize(out)
    phase("cleanup")
    print(json.dumps({"phases": phases, "tmp_peak_bytes": peak, "output_bytes": out_bytes}))


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    main(*sys.argv[1:])
