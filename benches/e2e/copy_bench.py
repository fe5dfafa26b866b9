#!/usr/bin/env python3
"""Server-side copy benchmark (run by benches/copy.sh; .local-stack/venv/bin/python).

    copy_bench.py RUNNER_BIN WORKLOAD [REPEAT] [PLAN]

The job most pipelines run between stages: stamp a version into a few files of a
large artifact. WORKLOAD (from gen.py) is uploaded twice, without encryption
(in/copy-plain-WL.zip) and SSE-KMS (in/copy-kms-WL.zip); PLAN `stamp` (the default)
templates three JSON files (at 10%, 50% and 90% of the archive) and leaves every
other entry as it is; PLAN `copy-all` changes nothing (every entry raw, verified).
Three runs of the release runner, each under /usr/bin/time -v, with the job's STS
session credentials:

  copy       plain input: runs of untouched entries are placed with UploadPartCopy
  streamed   SSE-KMS input: SeaweedFS refuses to copy from it, so after one refused
             probe the worker uploads every byte (the streaming path, same bytes)
  copy-off   plain input, ARTIFACT_WORKER_SERVER_SIDE_COPY=off (fresh headers, every
             byte uploaded: what the worker did before server-side copy)

Prints per run: wall s, CPU s (user + sys of the runner), CPU-s/GB (per 1e9 bytes of
the input zip), peak RSS, output bytes,
bytes copied by the server, bytes uploaded by the worker and their share of the
output; checks that `copy` and `streamed` wrote the same object (SHA-256).
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
import zipfile

import boto3
from botocore.config import Config

from common import BUCKET, MIB, WORK, s3_client, stack_env
from setup import kms_key


def upload(s3, path, key, sha256, arn):
    """Uploads `path` as `key` (SSE-KMS under `arn`, or plain), unless already there."""
    try:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        if head.get("Metadata", {}).get("sha256") == sha256 and head.get("SSEKMSKeyId") == arn:
            return
    except s3.exceptions.ClientError:
        pass
    extra = {"Metadata": {"sha256": sha256}}
    if arn:
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=arn)
    s3.upload_file(str(path), BUCKET, key, ExtraArgs=extra)


def session(env):
    sts = boto3.client(
        "sts", endpoint_url=env["LOCAL_STACK_S3_ENDPOINT"], region_name=env["LOCAL_STACK_REGION"],
        aws_access_key_id=env["LOCAL_STACK_ADMIN_ACCESS_KEY"],
        aws_secret_access_key=env["LOCAL_STACK_ADMIN_SECRET_KEY"],
        config=Config(parameter_validation=False),
    )
    return sts.assume_role(RoleArn="", RoleSessionName=f"copy-bench-{os.getpid()}",
                           DurationSeconds=3600)["Credentials"]


def event(path, in_key, out_key, creds, arn, params):
    art = lambda name, key: {"name": name, "revision": None, "location": {  # noqa: E731
        "type": "S3", "s3Location": {"bucketName": BUCKET, "objectKey": key}}}
    ev = {"CodePipeline.job": {"id": str(uuid.uuid4()), "accountId": "123456789012", "data": {
        "actionConfiguration": {"configuration": {"FunctionName": "artifact-worker",
                                                  "UserParameters": params}},
        "inputArtifacts": [art("SourceArtifact", in_key)],
        "outputArtifacts": [art("BuildArtifact", out_key)],
        "artifactCredentials": {"accessKeyId": creds["AccessKeyId"],
                                "secretAccessKey": creds["SecretAccessKey"],
                                "sessionToken": creds["SessionToken"]},
        "encryptionKey": {"id": arn, "type": "KMS"}}}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(ev, f)


def measure(runner, ev_path, env, extra_env):
    time_path = ev_path + ".time"
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run_env.update(extra_env, RUST_LOG="warn")
    out = subprocess.run(
        ["/usr/bin/time", "-v", "-o", time_path, runner, "run", ev_path, "--json",
         "--s3-endpoint", env["LOCAL_STACK_S3_ENDPOINT"],
         "--kms-endpoint", env["LOCAL_STACK_KMS_ENDPOINT"]],
        env=run_env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"runner failed ({out.returncode}):\n{out.stderr[-3000:]}")
    t = open(time_path).read()
    field = lambda name: re.search(rf"{name}: (.*)", t).group(1).strip()  # noqa: E731
    wall = field(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)").split(":")
    wall_s = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
    cpu = float(field("User time \\(seconds\\)")) + float(field("System time \\(seconds\\)"))
    rss = int(field("Maximum resident set size \\(kbytes\\)")) / 1024
    result = json.loads(out.stdout)
    assert result["status"] == "Succeeded", result
    obj = result["outputs"][0]
    return dict(wall=wall_s, cpu=cpu, rss=rss, bytes=obj["bytes"], copied=obj["copiedBytes"],
                sha256=obj["sha256"])


def main(runner, wl, repeat, plan):
    env = stack_env()
    manifest = json.loads((WORK / "workloads" / f"{wl}.json").read_text())
    zpath = WORK / "workloads" / f"{wl}.zip"
    names = [n for n in zipfile.ZipFile(zpath).namelist() if n.endswith(".json")]
    stamped = [names[len(names) * k // 10] for k in (1, 5, 9)]
    plans = {"stamp": [{"template": {"files": stamped}}], "copy-all": []}
    if plan not in plans:
        sys.exit(f"copy_bench.py: PLAN is one of {', '.join(plans)}, not {plan}")
    steps = plans[plan]
    params = json.dumps({"variables": {"VERSION": "1.2.3"}, "steps": steps})
    state = json.loads((WORK / "state.json").read_text()) if (WORK / "state.json").exists() else {}
    arn, _ = kms_key(env, state)
    state["kms_key_arn"] = arn
    (WORK / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    s3 = s3_client(env)
    try:
        s3.head_bucket(Bucket=BUCKET)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=BUCKET)
    plain, kms = f"in/copy-plain-{wl}.zip", f"in/copy-kms-{wl}.zip"
    upload(s3, zpath, plain, manifest["sha256"], None)
    upload(s3, zpath, kms, manifest["sha256"], arn)
    creds = session(env)
    run_dir = WORK / "run" / "copy"
    run_dir.mkdir(parents=True, exist_ok=True)
    runs = {"copy": (plain, {}), "streamed": (kms, {}),
            "copy-off": (plain, {"ARTIFACT_WORKER_SERVER_SIDE_COPY": "off"})}
    got = {name: [] for name in runs}
    for _ in range(repeat):
        for name, (key, extra) in runs.items():
            ev_path = str(run_dir / f"{name}.json")
            event(ev_path, key, f"out/copy-{plan}-{name}-{wl}.zip", creds, arn, params)
            got[name].append(measure(runner, ev_path, env, extra))
            time.sleep(1)
    what = {"stamp": f"3 stamped: {', '.join(stamped)}", "copy-all": "copy-all plan"}[plan]
    print(f"\nworkload {wl}: {manifest['bytes'] / 1e6:.0f} MB, {len(names)} JSON files, "
          f"{what}; median of {repeat}")
    print(f"{'run':<10} {'wall s':>7} {'CPU s':>6} {'CPU-s/GB':>9} {'RSS MiB':>8} {'output MB':>10} "
          f"{'copied MB':>10} {'uploaded MB':>12} {'uploaded %':>11}")
    for name, rs in got.items():
        med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
        up = med("bytes") - med("copied")
        per_gb = med("cpu") / (manifest["bytes"] / 1e9)
        print(f"{name:<10} {med('wall'):>7.2f} {med('cpu'):>6.2f} {per_gb:>9.2f} "
              f"{max(r['rss'] for r in rs):>8.0f} "
              f"{med('bytes') / 1e6:>10.1f} {med('copied') / 1e6:>10.1f} {up / 1e6:>12.1f} "
              f"{100 * up / med('bytes'):>10.1f}%")
    same = {r["sha256"] for r in got["copy"] + got["streamed"]}
    if len(same) != 1:
        sys.exit(f"copy and streamed outputs differ: {same}")
    print("copy and streamed outputs: byte-identical (SHA-256 " + same.pop()[:16] + "...)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1,
         sys.argv[4] if len(sys.argv) > 4 else "stamp")
