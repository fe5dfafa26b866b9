#!/usr/bin/env python3
"""Prepares the local stack for an e2e run.

    setup.py WORKLOAD...

- a KMS key in moto (reused while moto still knows it; the id is kept in
  .work/state.json),
- bucket `artifact-bench` (admin identity),
- each workload's zip uploaded as in/WORKLOAD.zip with SSE-KMS under that key (skipped
  when the object is already there with the same sha256 and key),
- session credentials from STS AssumeRole on the S3 endpoint -> .work/run/creds.json,
- per workload, the CodePipeline events for the runner -> .work/run/WORKLOAD/event.json
  (output out/runner-WORKLOAD.zip) and for the one-thread runner ->
  .work/run/WORKLOAD/event-1t.json (output out/runner-1t-WORKLOAD.zip).
Prints a JSON summary (key ARN, bucket) on stdout.
"""

import json
import os
import sys
import time
import uuid

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from common import BUCKET, MIB, WORK, s3_client, stack_env

_PLAN = {
    "variables": {"VERSION": "1.2.3"},
    "steps": [{"exclude": ["*.map"]}, {"template": {"files": ["*.json", "*.yml"]}}],
}
# E2E_VERIFY=0 measures the runner with raw-copy verification off ("verify": false).
if os.environ.get("E2E_VERIFY", "1") == "0":
    _PLAN["verify"] = False
USER_PARAMETERS = json.dumps(_PLAN)


def kms_key(env, state):
    kms = boto3.client("kms", endpoint_url=env["LOCAL_STACK_KMS_ENDPOINT"],
                       region_name=env["LOCAL_STACK_REGION"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    arn = state.get("kms_key_arn")
    if arn:
        try:
            if kms.describe_key(KeyId=arn)["KeyMetadata"]["Enabled"]:
                return arn, False
        except ClientError:
            pass
    arn = kms.create_key(Description="artifact-worker e2e benchmark")["KeyMetadata"]["Arn"]
    return arn, True


def write_event(path, wl, output_key, creds, arn, expires_ms):
    """The CodePipeline event for the runner: in/WL.zip -> output_key (mode 0600)."""
    art = lambda name, key: {"name": name, "revision": None, "location": {  # noqa: E731
        "type": "S3", "s3Location": {"bucketName": BUCKET, "objectKey": key}}}
    event = {"CodePipeline.job": {
        "id": str(uuid.uuid4()),
        "accountId": "123456789012",
        "data": {
            "actionConfiguration": {"configuration": {
                "FunctionName": "artifact-worker", "UserParameters": USER_PARAMETERS}},
            "inputArtifacts": [art("SourceArtifact", f"in/{wl}.zip")],
            "outputArtifacts": [art("BuildArtifact", output_key)],
            "artifactCredentials": {
                "accessKeyId": creds["AccessKeyId"], "secretAccessKey": creds["SecretAccessKey"],
                "sessionToken": creds["SessionToken"], "expirationTime": expires_ms},
            "encryptionKey": {"id": arn, "type": "KMS"},
        }}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(event, f, indent=1)


def main(workloads):
    env = stack_env()
    WORK.mkdir(parents=True, exist_ok=True)
    state_path = WORK / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    arn, new_key = kms_key(env, state)
    if new_key:
        state = {"kms_key_arn": arn}  # objects under an old key are unreadable now
    state_path.write_text(json.dumps(state, indent=1) + "\n")

    s3 = s3_client(env)
    try:
        s3.head_bucket(Bucket=BUCKET)
    except ClientError:
        s3.create_bucket(Bucket=BUCKET)

    # Leftovers of interrupted runs: outputs and open multipart uploads.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="out/"):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=o["Key"])
    for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])

    for wl in workloads:
        manifest = json.loads((WORK / "workloads" / f"{wl}.json").read_text())
        key = f"in/{wl}.zip"
        try:
            head = s3.head_object(Bucket=BUCKET, Key=key)
            same = (head.get("Metadata", {}).get("sha256") == manifest["sha256"]
                    and head.get("SSEKMSKeyId") == arn
                    and head["ContentLength"] == manifest["bytes"])
        except ClientError:
            same = False
        if same:
            print(f"setup: s3://{BUCKET}/{key} already uploaded", file=sys.stderr)
            continue
        t0 = time.time()
        s3.upload_file(
            str(WORK / "workloads" / f"{wl}.zip"), BUCKET, key,
            ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": arn,
                       "Metadata": {"sha256": manifest["sha256"]}},
            Config=TransferConfig(multipart_chunksize=16 * MIB, max_concurrency=4),
        )
        print(f"setup: uploaded s3://{BUCKET}/{key} ({manifest['bytes'] / 1e6:.1f} MB, SSE-KMS) "
              f"in {time.time() - t0:.1f}s", file=sys.stderr)

    # Session credentials: AssumeRole served by SeaweedFS on the S3 endpoint.
    sts = boto3.client(
        "sts", endpoint_url=env["LOCAL_STACK_S3_ENDPOINT"], region_name=env["LOCAL_STACK_REGION"],
        aws_access_key_id=env["LOCAL_STACK_ADMIN_ACCESS_KEY"],
        aws_secret_access_key=env["LOCAL_STACK_ADMIN_SECRET_KEY"],
        # botocore insists RoleArn has >= 20 chars; SeaweedFS wants it empty
        config=Config(parameter_validation=False, retries={"max_attempts": 2}),
    )
    c = sts.assume_role(RoleArn="", RoleSessionName=f"e2e-bench-{os.getpid()}",
                        DurationSeconds=4 * 3600)["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA"), "expected session credentials"
    run = WORK / "run"
    run.mkdir(parents=True, exist_ok=True)
    creds_path = run / "creds.json"
    fd = os.open(creds_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}, f)
    expires_ms = int(time.time() * 1000) + 4 * 3600 * 1000

    for wl in workloads:
        (run / wl).mkdir(parents=True, exist_ok=True)
        for name, impl in (("event.json", "runner"), ("event-1t.json", "runner-1t")):
            write_event(run / wl / name, wl, f"out/{impl}-{wl}.zip", c, arn, expires_ms)
    print(json.dumps({"kms_key_arn": arn, "bucket": BUCKET, "creds": str(creds_path)}))


if __name__ == "__main__":
    main(sys.argv[1:])
