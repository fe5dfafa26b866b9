"""Makes the continuation benchmark's input: STORE/bench/in/long.zip with ENTRIES
entries (a quarter JSON to template, the rest random binary, half of it stored) and
the event for it in STORE/../long.json."""
import json, os, random, sys, zipfile

store, entries = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{store}/bench/in", exist_ok=True)
os.makedirs(f"{store}/bench/out", exist_ok=True)
rnd = random.Random(1)
blob = os.urandom(64 << 20)
with zipfile.ZipFile(f"{store}/bench/in/long.zip", "w") as z:
    for i in range(entries):
        if i % 4 == 0:
            text = json.dumps({"image": "app:${VERSION}", "i": i, "pad": "x" * rnd.randint(500, 4000)})
            z.writestr(f"cfg/{i:06}.json", text, compress_type=zipfile.ZIP_DEFLATED)
        else:
            n = rnd.randint(20_000, 40_000)
            at = rnd.randint(0, len(blob) - n)
            method = zipfile.ZIP_STORED if i % 2 else zipfile.ZIP_DEFLATED
            z.writestr(f"bin/{i:06}.bin", blob[at:at + n], compress_type=method)
art = lambda n, k: {"name": n, "revision": None,
                    "location": {"type": "S3", "s3Location": {"bucketName": "bench", "objectKey": k}}}
params = {"variables": {"VERSION": "2.0"},
          "steps": [{"template": {"files": ["*.json"]}}, {"manifest": {"path": "MANIFEST.json"}}]}
event = {"CodePipeline.job": {"id": "0a1b2c3d-0000-4000-8000-00000000c0de", "accountId": "123456789012", "data": {
    "actionConfiguration": {"configuration": {"FunctionName": "bench", "UserParameters": json.dumps(params)}},
    "inputArtifacts": [art("In", "in/long.zip")], "outputArtifacts": [art("Out", "out/long.zip")],
    "artifactCredentials": {"accessKeyId": "local", "secretAccessKey": "local", "sessionToken": "local"}}}}
json.dump(event, open(f"{os.path.dirname(store.rstrip('/'))}/long.json", "w"))
