"""Shared helpers for the e2e benchmark scripts (run with .local-stack/venv/bin/python)."""

import json
import os
import sys
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("E2E_WORK", REPO / "benches" / ".work"))
BUCKET = os.environ.get("E2E_BUCKET", "artifact-bench")
MIB = 1 << 20

# Never pick up the caller's AWS settings.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
             "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)


def stack_env():
    keys = ("LOCAL_STACK_S3_ENDPOINT", "LOCAL_STACK_KMS_ENDPOINT", "LOCAL_STACK_ADMIN_ACCESS_KEY",
            "LOCAL_STACK_ADMIN_SECRET_KEY", "LOCAL_STACK_REGION")
    env = {k: os.environ[k] for k in keys if os.environ.get(k)}
    path = REPO / ".local-stack" / "env"
    if len(env) < len(keys) and path.exists():
        for line in path.read_text().splitlines():
            k, sep, v = line.partition("=")
            if sep and k in keys:
                env.setdefault(k, v.strip().strip('"'))
    missing = [k for k in keys if k not in env]
    if missing:
        sys.exit(f"e2e: {missing} not set and no {path}: run scripts/local-stack start")
    return env


# Same choices as the worker's S3 client for a custom endpoint: path-style, checksums
# only when required (SeaweedFS and the aws-chunked trailer checksums do not mix).
S3_CONFIG = Config(
    s3={"addressing_style": "path"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    retries={"max_attempts": 3, "mode": "standard"},
    max_pool_connections=16,
)


def s3_client(env, creds=None):
    if creds is None:
        creds = dict(AccessKeyId=env["LOCAL_STACK_ADMIN_ACCESS_KEY"],
                     SecretAccessKey=env["LOCAL_STACK_ADMIN_SECRET_KEY"])
    return boto3.client(
        "s3",
        endpoint_url=env["LOCAL_STACK_S3_ENDPOINT"],
        region_name=env["LOCAL_STACK_REGION"],
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=S3_CONFIG,
    )


def load_json(path):
    return json.loads(Path(path).read_text())


def job_s3(args_creds):
    """S3 client on the job's session credentials (a file written by setup.py)."""
    env = stack_env()
    return s3_client(env, load_json(args_creds))
