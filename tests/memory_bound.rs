//! Peak memory on a large artifact, through the runner binary on its embedded store
//! (no server: the number is the worker's own). 1.8 GB of large raw entries and
//! 2,000 templated files at `--memory-mb 256` must stay well inside the function:
//! with glibc's default per-thread arenas the same job drifted between 200 and 260
//! MiB from run to run (freed part buffers stranded in the arenas of tokio's and
//! rayon's threads), past the limit at times.

use std::io::Write;
use std::process::Command;

use artifact_suite::*;
use zip::write::SimpleFileOptions;

const MIB: usize = 1 << 20;

/// Writes the artifact: `blobs` x 300 MiB stored binaries (a cheap pseudo-random
/// stream) and 2,000 small deflated JSON files holding `${VERSION}`.
fn write_artifact(path: &std::path::Path, blobs: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; MIB];
    for b in 0..blobs {
        let o = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        w.start_file(format!("bin/blob{b}.bin"), o).unwrap();
        for _ in 0..300 {
            for chunk in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            w.write_all(&buf).unwrap();
        }
    }
    for i in 0..2_000 {
        w.start_file(format!("cfg/c{i:04}.json"), SimpleFileOptions::default())
            .unwrap();
        let line = format!("{{\"image\": \"${{VERSION}}\", \"n\": {i}}}\n");
        w.write_all(line.repeat(20).as_bytes()).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn a_large_artifact_stays_well_within_256_mb() {
    let store = std::env::temp_dir().join(unique("memory-store"));
    let input = store.join("bench/in/big.zip");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::create_dir_all(store.join("bench/out")).unwrap();
    write_artifact(&input, 6);
    let art = |name: &str, key: &str| {
        serde_json::json!({"name": name, "revision": null, "location": {"type": "S3",
            "s3Location": {"bucketName": "bench", "objectKey": key}}})
    };
    let ev = serde_json::json!({"CodePipeline.job": {"id": job_id(), "accountId": "123456789012",
        "data": {
            "actionConfiguration": {"configuration": {"FunctionName": "f",
                "UserParameters": r#"{"variables":{"VERSION":"9"},"steps":[{"template":{"files":["*.json"]}}]}"#}},
            "inputArtifacts": [art("In", "in/big.zip")],
            "outputArtifacts": [art("Out", "out/big.zip")],
            "artifactCredentials": {"accessKeyId": "local", "secretAccessKey": "local",
                "sessionToken": "local"}}}});
    let event = store.join("event.json");
    std::fs::write(&event, serde_json::to_vec(&ev).unwrap()).unwrap();
    let mut peaks = Vec::new();
    for _ in 0..2 {
        let out = Command::new(runner_binary())
            .arg("run")
            .arg(&event)
            .args(["--json", "--memory-mb", "256", "--store-dir"])
            .arg(&store)
            .env_remove("MALLOC_ARENA_MAX")
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(v["status"], "Succeeded", "{v}");
        peaks.push(v["peakRssKib"].as_u64().unwrap() / 1024);
    }
    let _ = std::fs::remove_dir_all(&store);
    eprintln!("1.8 GB at 256 MB: peak RSS {peaks:?} MiB");
    assert!(peaks.iter().all(|&p| p < 200), "peak RSS {peaks:?} MiB");
}
