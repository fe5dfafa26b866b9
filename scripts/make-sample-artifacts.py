#!/usr/bin/env python3
"""Writes the sample input artifacts used by events/*.json into events/store/.

Deterministic (fixed timestamps), so re-running it reproduces the committed files.
"""
import pathlib
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent / "events" / "store" / "artifact-bucket" / "in"
TS = (2024, 5, 17, 12, 0, 0)


def add(z, name, data, deflate=True):
    info = zipfile.ZipInfo(name, TS)
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    info.external_attr = (0o40755 << 16) | 0x10 if name.endswith("/") else 0o100644 << 16
    z.writestr(info, data)


def source():
    with zipfile.ZipFile(ROOT / "SourceArtifact.zip", "w") as z:
        add(z, "package.json", '{\n  "name": "orders-api",\n  "version": "${VERSION}",\n  "main": "dist/app.js"\n}\n')
        add(z, "dist/", b"")
        add(z, "dist/app.js", "console.log('orders-api ${VERSION}');\n" * 50)
        add(z, "dist/app.js.map", '{"version":3,"sources":["src/app.ts"],"mappings":"AAAA"}\n')
        add(z, "config/app.yml", "service: orders-api\nimage_tag: ${VERSION}\nbuild: ${CODEPIPELINE_JOB_ID}\n")
        add(z, "static/logo.png", bytes((i * 37) % 256 for i in range(4096)), deflate=False)
        add(z, "README.md", "# orders-api\n\nDeployed by CodePipeline.\n")


def templates():
    with zipfile.ZipFile(ROOT / "Templates.zip", "w") as z:
        add(z, "template.yml", "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n")
        add(z, "template-config.json", '{\n  "Parameters": {\n    "ImageTag": "latest",\n    "Stage": "prod"\n  },\n  "Tags": {\n    "team": "orders"\n  }\n}\n')


if __name__ == "__main__":
    ROOT.mkdir(parents=True, exist_ok=True)
    source()
    templates()
    print("wrote", *sorted(p.name for p in ROOT.iterdir()))
