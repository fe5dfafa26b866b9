#!/usr/bin/env python3
"""The copy floor: the input object streamed from S3 and uploaded again (multipart,
SSE-KMS) with no zip work and no disk.

    floor.py CREDS BUCKET KEY OUT_KEY KMS_KEY

GetObject's streaming body goes straight into upload_fileobj, which reads it in
8 MiB parts (the worker's part size) and uploads up to 4 at once; nothing touches the
disk. Uses the job's session credentials. Prints timings as JSON on stdout.
"""

import json
import sys
import time

from boto3.s3.transfer import TransferConfig

from common import MIB, job_s3


def main(creds, bucket, key, out_key, kms_key):
    s3 = job_s3(creds)
    t0 = time.monotonic()
    obj = s3.get_object(Bucket=bucket, Key=key)
    size = obj["ContentLength"]
    s3.upload_fileobj(
        obj["Body"], bucket, out_key,
        ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key,
                   "ContentType": "application/zip"},
        Config=TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB,
                              max_concurrency=4, use_threads=True),
    )
    print(json.dumps({"phases": {"copy": round(time.monotonic() - t0, 3)},
                      "tmp_peak_bytes": 0, "output_bytes": size}))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
