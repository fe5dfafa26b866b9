//! Peak memory on a large artifact, through the runner binary on its embedded store
//! (no server: the number is the worker's own). 1.8 GB of large raw entries and
//! 2,000 templated files at `--memory-mb 256` must stay well inside the function:
//! with glibc's default per-thread arenas the same job drifted between 200 and 260
//! MiB from run to run (freed part buffers stranded in the arenas of tokio's and
//! rayon's threads), past the limit at times. A tar.gz output of a 600 MiB entry
//! that deflates 138:1 (under the default ratio limit) must too: its content is
//! inflated into the tar as it streams, and one 2 MiB read inflated at once would be
//! 280 MiB.

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

/// Writes an artifact holding `mib` MiB of one deflated entry: a random byte, then
/// 600 zeros, over and over (138:1).
fn write_compressible(path: &std::path::Path, mib: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let o = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    w.start_file("data/sparse.bin", o).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 601];
    let mut left = mib * MIB;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        block[0] = (x as u8) | 1;
        let n = left.min(block.len());
        w.write_all(&block[..n]).unwrap();
        left -= n;
    }
    w.finish().unwrap();
}

/// Runs `params` on the artifact at `in/<name>.zip` of `store` at 256 MB; returns
/// the report.
fn run_at_256(store: &std::path::Path, name: &str, params: &str) -> serde_json::Value {
    let art = |n: &str, key: String| {
        serde_json::json!({"name": n, "revision": null, "location": {"type": "S3",
            "s3Location": {"bucketName": "bench", "objectKey": key}}})
    };
    let ev = serde_json::json!({"CodePipeline.job": {"id": job_id(), "accountId": "123456789012",
        "data": {
            "actionConfiguration": {"configuration": {"FunctionName": "f", "UserParameters": params}},
            "inputArtifacts": [art("In", format!("in/{name}.zip"))],
            "outputArtifacts": [art("Out", format!("out/{name}.out"))],
            "artifactCredentials": {"accessKeyId": "local", "secretAccessKey": "local",
                "sessionToken": "local"}}}});
    let event = store.join(format!("{name}.json"));
    std::fs::write(&event, serde_json::to_vec(&ev).unwrap()).unwrap();
    let out = Command::new(runner_binary())
        .arg("run")
        .arg(&event)
        .args(["--json", "--memory-mb", "256", "--store-dir"])
        .arg(store)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_tar_gz_of_a_highly_compressible_entry_stays_within_256_mb() {
    let store = std::env::temp_dir().join(unique("memory-targz"));
    let input = store.join("bench/in/sparse.zip");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::create_dir_all(store.join("bench/out")).unwrap();
    write_compressible(&input, 600);
    let params = r#"{"outputs":{"Out":{"from":["In"],"format":"tar.gz"}}}"#;
    let v = run_at_256(&store, "sparse", params);
    assert_eq!(v["status"], "Succeeded", "{v}");
    let peak = v["peakRssKib"].as_u64().unwrap() / 1024;
    let out = std::fs::read(store.join("bench/out/sparse.out")).unwrap();
    let _ = std::fs::remove_dir_all(&store);
    eprintln!("600 MiB entry at 138:1 into a tar.gz at 256 MB: peak RSS {peak} MiB");
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&out[..]));
    let sizes: Vec<u64> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().size().unwrap())
        .collect();
    assert_eq!(sizes, [600 * MIB as u64]);
    assert!(peak < 200, "peak RSS {peak} MiB");
}
