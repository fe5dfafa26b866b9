#!/usr/bin/env python3
"""End-to-end check of the local S3 + KMS stack (run: scripts/local-stack check).

Runs with the stack's own venv (boto3). Reads LOCAL_STACK_* from the environment,
or from .local-stack/env next to the repo root when they are not set. Each step
prints `ok:` or `FAIL:`; the last line is `local-stack-check: N passed, N failed`
and the exit code is non-zero when a step failed.

What it shows, in the order the Rust integration tests rely on it:
  1. moto KMS: CreateKey gives a key ARN (moto accepts any credentials).
  2. S3 with the admin identity: CreateBucket; PutObject with aws:kms + key ARN;
     HeadObject reports aws:kms and the same ARN; GetObject returns the bytes.
  3. STS AssumeRole served on the S3 endpoint, signed with the admin identity,
     RoleArn empty (RoleSessionName 2-64 chars, DurationSeconds 900-43200):
     session credentials (ASIA... + token). GetObject and an SSE-KMS PutObject
     work with them; GetObject fails with an unknown access key, without or with
     a forged token, and when the static admin key is sent with a session token.
     The same call is also made raw (POST form body, SigV4 service "sts") to
     pin the wire shape the Rust tests replicate.
  4. Multipart upload with SSE-KMS, parts 5 MiB + 1 byte: completes, ETag ends
     in "-2", HEAD reports aws:kms + ARN, content round-trips.
  5. Ranged GET: 206, Content-Range, the right bytes.
  6. Quirks (reported, not asserted): unknown KMS key id on PutObject; aws:kms
     without a key id; a key alias as SSEKMSKeyId; SSE headers on
     CreateMultipartUpload / CompleteMultipartUpload responses; PutObject to a
     missing bucket.
"""

import hashlib
import os
import sys
import traceback
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parent.parent


def load_env():
    keys = [
        "LOCAL_STACK_S3_ENDPOINT",
        "LOCAL_STACK_KMS_ENDPOINT",
        "LOCAL_STACK_ADMIN_ACCESS_KEY",
        "LOCAL_STACK_ADMIN_SECRET_KEY",
        "LOCAL_STACK_REGION",
    ]
    env = {k: os.environ[k] for k in keys if os.environ.get(k)}
    if len(env) < len(keys):
        path = Path(os.environ.get("LOCAL_STACK_DIR", REPO / ".local-stack")) / "env"
        if not path.exists():
            sys.exit(f"local-stack-check: no {path}; run scripts/local-stack start")
        for line in path.read_text().splitlines():
            k, sep, v = line.partition("=")
            if sep and k in keys:
                env.setdefault(k, v)
    return env


ENV = load_env()
S3_EP = ENV["LOCAL_STACK_S3_ENDPOINT"]
KMS_EP = ENV["LOCAL_STACK_KMS_ENDPOINT"]
AK = ENV["LOCAL_STACK_ADMIN_ACCESS_KEY"]
SK = ENV["LOCAL_STACK_ADMIN_SECRET_KEY"]
REGION = ENV["LOCAL_STACK_REGION"]

# Never pick up the caller's AWS settings.
for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(var, None)

S3_CONFIG = Config(
    s3={"addressing_style": "path"},
    retries={"max_attempts": 1, "mode": "standard"},  # show errors as they are
    connect_timeout=5,
    read_timeout=60,
)

passed = 0
failed = 0


def step(name):
    def wrap(fn):
        global passed, failed
        try:
            detail = fn()
            passed += 1
            print(f"ok: {name}" + (f" -- {detail}" if detail else ""))
        except Exception as exc:  # noqa: BLE001 - report every failure the same way
            failed += 1
            print(f"FAIL: {name}: {exc}")
            traceback.print_exc(limit=3, file=sys.stdout)
        return fn
    return wrap


def s3_client(access_key, secret_key, token=None):
    return boto3.client(
        "s3",
        endpoint_url=S3_EP,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        config=S3_CONFIG,
    )


def error_code(fn):
    try:
        fn()
    except ClientError as exc:
        return exc.response["Error"].get("Code") or str(
            exc.response["ResponseMetadata"].get("HTTPStatusCode"))
    return None


admin = s3_client(AK, SK)
kms = boto3.client(
    "kms",
    endpoint_url=KMS_EP,
    region_name=REGION,
    # moto accepts any credentials; the admin pair is as good as any.
    aws_access_key_id=AK,
    aws_secret_access_key=SK,
)
bucket = f"lscheck-{uuid.uuid4().hex[:12]}"
state = {}


@step("KMS CreateKey on moto")
def _():
    meta = kms.create_key(Description="local-stack-check")["KeyMetadata"]
    state["arn"] = meta["Arn"]
    assert meta["Arn"].startswith("arn:aws:kms:"), meta["Arn"]
    return meta["Arn"]


@step("CreateBucket with the admin identity")
def _():
    admin.create_bucket(Bucket=bucket)
    return bucket


@step("PutObject SSE-KMS; HEAD reports aws:kms + key ARN; GET round-trips")
def _():
    body = b"hello sse-kms\n" * 100
    admin.put_object(Bucket=bucket, Key="sse/one", Body=body,
                     ServerSideEncryption="aws:kms", SSEKMSKeyId=state["arn"])
    head = admin.head_object(Bucket=bucket, Key="sse/one")
    assert head.get("ServerSideEncryption") == "aws:kms", head
    assert head.get("SSEKMSKeyId") == state["arn"], head
    got = admin.get_object(Bucket=bucket, Key="sse/one")
    assert got["Body"].read() == body
    assert got.get("ServerSideEncryption") == "aws:kms", got
    return f"HEAD: {head['ServerSideEncryption']} {head['SSEKMSKeyId']}"


@step("STS AssumeRole on the S3 endpoint (boto3, RoleArn empty)")
def _():
    sts = boto3.client(
        "sts",
        endpoint_url=S3_EP,
        region_name=REGION,
        aws_access_key_id=AK,
        aws_secret_access_key=SK,
        # botocore insists RoleArn has >= 20 chars; SeaweedFS wants it empty
        # (any real ARN is AccessDenied: "user admin is not authorized to assume role").
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )
    creds = sts.assume_role(RoleArn="", RoleSessionName="local-stack-check",
                            DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA"), creds["AccessKeyId"]
    assert creds["SessionToken"], creds
    state["session"] = creds
    return f"{creds['AccessKeyId']} expires {creds['Expiration'].isoformat()}"


@step("STS AssumeRole raw: POST / form body, SigV4 service 'sts'")
def _():
    body = "Action=AssumeRole&Version=2011-06-15&RoleSessionName=raw-check&DurationSeconds=900"
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=S3_EP + "/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(AK, SK), "sts", REGION).add_auth(req)
    prepared = req.prepare()
    http = urllib.request.Request(prepared.url, data=body.encode(),
                                  headers=dict(prepared.headers), method="POST")
    with urllib.request.urlopen(http, timeout=10) as resp:
        assert resp.status == 200, resp.status
        xml = resp.read()
    ns = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}
    root = ET.fromstring(xml)
    key = root.find("s:AssumeRoleResult/s:Credentials/s:AccessKeyId", ns).text
    token = root.find("s:AssumeRoleResult/s:Credentials/s:SessionToken", ns).text
    assert key.startswith("ASIA") and token, xml[:300]
    return f"{root.tag.split('}')[1]} -> {key}"


@step("Session credentials: GetObject and SSE-KMS PutObject work; unknown key / bad token fail")
def _():
    c = state["session"]
    sess = s3_client(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert sess.get_object(Bucket=bucket, Key="sse/one")["Body"].read().startswith(b"hello")
    sess.put_object(Bucket=bucket, Key="sse/by-session", Body=b"written with session creds",
                    ServerSideEncryption="aws:kms", SSEKMSKeyId=state["arn"])
    assert sess.head_object(Bucket=bucket, Key="sse/by-session")["SSEKMSKeyId"] == state["arn"]
    unknown = error_code(lambda: s3_client("AKIAUNKNOWNKEY000000", "x" * 40).get_object(
        Bucket=bucket, Key="sse/one"))
    assert unknown is not None, "unknown access key was accepted"
    no_token = error_code(lambda: s3_client(c["AccessKeyId"], c["SecretAccessKey"]).get_object(
        Bucket=bucket, Key="sse/one"))
    assert no_token is not None, "session key without its token was accepted"
    bad_token = error_code(lambda: s3_client(
        c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"][:-4] + "AAAA").get_object(
        Bucket=bucket, Key="sse/one"))
    assert bad_token is not None, "session key with a forged token was accepted"
    static_with_token = error_code(lambda: s3_client(AK, SK, c["SessionToken"]).get_object(
        Bucket=bucket, Key="sse/one"))
    assert static_with_token is not None, "static key + session token was accepted"
    return (f"unknown key -> {unknown}; no token -> {no_token}; forged token -> {bad_token}; "
            f"static key + token -> {static_with_token}")


@step("Multipart SSE-KMS 5 MiB + 1 byte completes; HEAD aws:kms; content intact")
def _():
    part1 = os.urandom(5 * 1024 * 1024)
    part2 = b"z"
    mpu = admin.create_multipart_upload(Bucket=bucket, Key="sse/multi",
                                        ServerSideEncryption="aws:kms",
                                        SSEKMSKeyId=state["arn"])
    state["create_mpu_sse"] = mpu.get("ServerSideEncryption")
    uid = mpu["UploadId"]
    parts = []
    for n, data in ((1, part1), (2, part2)):
        r = admin.upload_part(Bucket=bucket, Key="sse/multi", UploadId=uid,
                              PartNumber=n, Body=data)
        assert r["ETag"].strip('"') == hashlib.md5(data).hexdigest(), (n, r["ETag"])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    done = admin.complete_multipart_upload(Bucket=bucket, Key="sse/multi", UploadId=uid,
                                           MultipartUpload={"Parts": parts})
    state["complete_mpu_sse"] = done.get("ServerSideEncryption")
    expect = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in (part1, part2))).hexdigest()
    assert done["ETag"].strip('"') == f"{expect}-2", (done["ETag"], expect)
    head = admin.head_object(Bucket=bucket, Key="sse/multi")
    assert head["ContentLength"] == len(part1) + 1, head["ContentLength"]
    assert head.get("ServerSideEncryption") == "aws:kms", head
    assert head.get("SSEKMSKeyId") == state["arn"], head
    body = admin.get_object(Bucket=bucket, Key="sse/multi")["Body"].read()
    assert body == part1 + part2
    state["multi"] = part1 + part2
    return f"ETag {done['ETag']}"


@step("Ranged GET returns 206 with Content-Range and the right bytes")
def _():
    data = state["multi"]
    lo, hi = 5 * 1024 * 1024 - 10, 5 * 1024 * 1024  # spans the part boundary
    r = admin.get_object(Bucket=bucket, Key="sse/multi", Range=f"bytes={lo}-{hi}")
    status = r["ResponseMetadata"]["HTTPStatusCode"]
    assert status == 206, status
    assert r["ContentRange"] == f"bytes {lo}-{hi}/{len(data)}", r["ContentRange"]
    assert r["Body"].read() == data[lo:hi + 1]
    return f"206 {r['ContentRange']}"


def quirks():
    print("quirks (reported, not asserted):")
    print(f"  CreateMultipartUpload ServerSideEncryption header: {state.get('create_mpu_sse')!r}")
    print(f"  CompleteMultipartUpload ServerSideEncryption header: {state.get('complete_mpu_sse')!r}")
    try:
        admin.put_object(Bucket=bucket, Key="sse/badkey", Body=b"x",
                         ServerSideEncryption="aws:kms",
                         SSEKMSKeyId="arn:aws:kms:us-east-1:123456789012:key/"
                                     "00000000-0000-0000-0000-000000000000")
        print("  PutObject with an unknown KMS key: accepted")
    except ClientError as exc:
        print(f"  PutObject with an unknown KMS key: HTTP "
              f"{exc.response['ResponseMetadata']['HTTPStatusCode']} "
              f"{exc.response['Error'].get('Code')}")
    code = error_code(lambda: admin.put_object(Bucket=bucket, Key="sse/nokey", Body=b"x",
                                               ServerSideEncryption="aws:kms"))
    print(f"  PutObject aws:kms without SSEKMSKeyId (no aws/s3 default key): {code or 'accepted'}")
    alias = f"alias/{bucket}"
    kms.create_alias(AliasName=alias, TargetKeyId=state["arn"])
    admin.put_object(Bucket=bucket, Key="sse/alias", Body=b"x",
                     ServerSideEncryption="aws:kms", SSEKMSKeyId=alias)
    shown = admin.head_object(Bucket=bucket, Key="sse/alias").get("SSEKMSKeyId")
    print(f"  PutObject with SSEKMSKeyId={alias}: HEAD shows "
          f"{'the key ARN' if shown == state['arn'] else repr(shown)}")
    code = error_code(lambda: admin.put_object(Bucket=bucket + "-missing", Key="k", Body=b"x"))
    print(f"  PutObject to a missing bucket: {code or 'accepted'}")


def cleanup():
    try:
        for obj in admin.list_objects_v2(Bucket=bucket).get("Contents", []):
            admin.delete_object(Bucket=bucket, Key=obj["Key"])
        admin.delete_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort
        print(f"note: cleanup of {bucket} failed: {exc}")


try:
    if "arn" in state:
        quirks()
finally:
    cleanup()

print(f"local-stack-check: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
