//! A hostile corpus, built by the code below (each case's construction is visible),
//! run through the runner binary against the real local stack at `--memory-mb 256`.
//! Every case must end in one typed failure naming the entry, leave no output object
//! and no open upload, and stay within the memory it was given.

use std::io::{Cursor, Write};
use std::process::Command;

use artifact_suite::*;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod::{Deflated, Stored};

const MIB: usize = 1 << 20;

/// Writes entries with the `zip` crate (made on a Unix host, as most CI tools do).
fn build(entries: &[(&str, Vec<u8>, zip::CompressionMethod)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, method) in entries {
        let opts = SimpleFileOptions::default()
            .compression_method(*method)
            .large_file(data.len() >= u32::MAX as usize);
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Where entry `name`'s data starts, and its local and central header offsets.
fn offsets(zip: &[u8], name: &str) -> (usize, usize, usize) {
    let mut a = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    let f = a.by_name(name).unwrap();
    (
        f.data_start() as usize,
        f.header_start() as usize,
        f.central_header_start() as usize,
    )
}

/// The start of the end-of-central-directory record.
fn eocd_at(zip: &[u8]) -> usize {
    zip.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap()
}

fn corpus() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let mut cases = Vec::new();
    // 1. A stored entry whose bytes no longer match its CRC (small: read whole).
    let mut z = build(&[
        ("ok.txt", b"fine".to_vec(), Deflated),
        ("corrupt.bin", noise(300_000, 1), Stored),
    ]);
    let (data, _, _) = offsets(&z, "corrupt.bin");
    z[data + 1000] ^= 0xFF;
    cases.push(("crc, small stored", z, "JobFailed", "corrupt.bin"));
    // 2. The same in a large entry streamed in several chunks.
    let mut z = build(&[("big/corrupt.bin", noise(20 * MIB, 2), Stored)]);
    let (data, _, _) = offsets(&z, "big/corrupt.bin");
    z[data + 19 * MIB] ^= 0x01;
    cases.push(("crc, large streamed", z, "JobFailed", "big/corrupt.bin"));
    // 3. A ratio bomb: 300 MiB of zeros in about 300 KiB.
    let z = build(&[("zeros.bin", vec![0u8; 300 * MIB], Deflated)]);
    cases.push(("ratio bomb", z, "JobFailed", "zeros.bin"));
    // 4. A declared-size lie: 200 KB of text declared as 1,000 bytes (CRC left as is).
    let text: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("{i:09}\n").into_bytes())
        .collect();
    let mut z = build(&[("lie.txt", text, Deflated)]);
    let (_, local, central) = offsets(&z, "lie.txt");
    z[local + 22..local + 26].copy_from_slice(&1000u32.to_le_bytes());
    z[central + 24..central + 28].copy_from_slice(&1000u32.to_le_bytes());
    cases.push(("size lie", z, "JobFailed", "lie.txt"));
    // 5-8. Names that extractors treat differently than they look.
    for (what, name) in [
        ("backslash traversal", "..\\..\\evil.txt"),
        ("NUL in a name", "a\0b.txt"),
        ("dot component", "a/./b.txt"),
    ] {
        let z = build(&[
            ("a/b.txt", b"x".to_vec(), Deflated),
            (name, b"y".to_vec(), Deflated),
        ]);
        cases.push((what, z, "JobFailed", "unsafe or invalid name"));
    }
    let z = build(&[
        ("README.md", b"x".to_vec(), Deflated),
        ("readme.md", b"y".to_vec(), Deflated),
    ]);
    cases.push(("case duplicates", z, "JobFailed", "readme.md"));
    // 9. Zip structures after the end record: another reader could pick them.
    let mut z = build(&[("a.txt", b"x".to_vec(), Deflated)]);
    let tail = build(&[("b.txt", b"other archive".to_vec(), Deflated)]);
    z.extend_from_slice(&tail);
    cases.push(("second archive appended", z, "JobFailed", "malformed zip"));
    // 10. An end-record comment length running past the end of the file.
    let mut z = build(&[("a.txt", b"x".to_vec(), Deflated)]);
    let e = eocd_at(&z);
    z[e + 20..e + 22].copy_from_slice(&100u16.to_le_bytes());
    cases.push(("comment past EOF", z, "JobFailed", "zip"));
    // 11. A symbolic link that escapes the artifact.
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("a/ok.txt", SimpleFileOptions::default())
        .unwrap();
    w.write_all(b"x").unwrap();
    w.add_symlink("a/link", "../../etc/passwd", SimpleFileOptions::default())
        .unwrap();
    let z = w.finish().unwrap().into_inner();
    cases.push(("escaping symlink", z, "JobFailed", "../../etc/passwd"));
    cases
}

/// Runs `ev` through the runner binary at `--memory-mb 256` against the stack;
/// returns the exit code and the `--json` report.
fn run_runner(ev: &serde_json::Value) -> (Option<i32>, serde_json::Value) {
    let s = stack();
    let path = std::env::temp_dir().join(format!("{}.json", unique("event")));
    std::fs::write(&path, serde_json::to_vec(ev).unwrap()).unwrap();
    let out = Command::new(runner_binary())
        .arg("run")
        .arg(&path)
        .args([
            "--json",
            "--memory-mb",
            "256",
            "--s3-endpoint",
            &s.s3_endpoint,
        ])
        .env("AWS_ACCESS_KEY_ID", AMBIENT_UNKNOWN_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "nope")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

#[test]
fn hostile_archives_fail_typed_clean_and_within_memory() {
    let s = stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = unique("hostile");
    let creds = rt.block_on(async {
        s.create_bucket(&bucket).await;
        s.session_credentials().await
    });
    for (i, (what, bytes, want_type, want_text)) in corpus().into_iter().enumerate() {
        let key = format!("in/{i}.zip");
        rt.block_on(s.put(&bucket, &key, bytes, None));
        let job = job_id();
        let out_key = format!("out/{i}.zip");
        let ev = event(
            &job,
            &[("In", &bucket, &key)],
            &[("Out", &bucket, &out_key)],
            None,
            &creds,
            None,
        );
        let (code, v) = run_runner(&ev);
        assert_eq!(code, Some(3), "{what}: {v}");
        assert_eq!(v["failure"]["type"], want_type, "{what}: {v}");
        let message = v["failure"]["message"].as_str().unwrap();
        assert!(message.contains(want_text), "{what}: {message}");
        assert!(
            message.contains("input artifact \"In\""),
            "{what}: {message}"
        );
        let rss_mib = v["peakRssKib"].as_u64().unwrap() / 1024;
        assert!(rss_mib < 256, "{what}: peak RSS {rss_mib} MiB");
        let (keys, uploads) =
            rt.block_on(async { (s.keys(&bucket).await, s.open_uploads(&bucket).await) });
        assert!(!keys.contains(&out_key), "{what}: no output object");
        assert!(uploads.is_empty(), "{what}: no open upload");
        eprintln!("{what}: {} ({rss_mib} MiB peak)", v["failure"]["type"]);
    }
    rt.block_on(s.remove_bucket(&bucket));
}

#[test]
fn verification_can_be_turned_off_for_raw_copies() {
    // `"verify": false` copies raw entries without reading them: the corrupt entry
    // passes through unchanged (the user asked for it), and the job succeeds.
    let s = stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = unique("noverify");
    let mut z = build(&[("corrupt.bin", noise(300_000, 1), Stored)]);
    let (data, _, _) = offsets(&z, "corrupt.bin");
    z[data + 10] ^= 0xFF;
    let creds = rt.block_on(async {
        s.create_bucket(&bucket).await;
        s.put(&bucket, "in.zip", z.clone(), None).await;
        s.session_credentials().await
    });
    let worker_result = rt.block_on(async {
        let cp = codepipeline();
        let w = s.worker(&cp, artifact_core::Settings::default()).await;
        let run = |params: &'static str| {
            let ev = event(
                &job_id(),
                &[("In", &bucket, "in.zip")],
                &[("Out", &bucket, "out.zip")],
                Some(params),
                &creds,
                None,
            );
            w.handle(
                ev,
                std::time::Instant::now() + std::time::Duration::from_secs(600),
                None,
            )
        };
        let on = run("{}").await.unwrap().result.map(|_| ());
        let off = run(r#"{"verify": false}"#)
            .await
            .unwrap()
            .result
            .map(|_| ());
        (on, off)
    });
    let (on, off) = worker_result;
    let (t, m) = on.expect_err("verified by default");
    assert_eq!(t.as_str(), "JobFailed");
    assert!(m.contains("CRC-32"), "{m}");
    off.expect("copied raw when verification is off");
    rt.block_on(s.remove_bucket(&bucket));
}

#[test]
fn a_templated_entry_past_the_memory_limit_streams_within_memory() {
    // At 256 MB an entry over 32 MiB cannot be held whole; `template` streams it.
    let s = stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = unique("stream");
    let mut text = Vec::with_capacity(40 * MIB + 100);
    let mut i = 0;
    while text.len() < 40 * MIB {
        text.extend_from_slice(format!("  \"k{i}\": \"image:${{VERSION}}\",\n").as_bytes());
        i += 1;
    }
    let z = build(&[("cfg/huge.json", text.clone(), Stored)]);
    let creds = rt.block_on(async {
        s.create_bucket(&bucket).await;
        s.put(&bucket, "in.zip", z, None).await;
        s.session_credentials().await
    });
    let ev = event(
        &job_id(),
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        Some(r#"{"variables":{"VERSION":"7.0"},"steps":[{"template":{"files":["*.json"]}}]}"#),
        &creds,
        None,
    );
    let (_, v) = run_runner(&ev);
    assert_eq!(v["status"], "Succeeded", "{v}");
    let rss_mib = v["peakRssKib"].as_u64().unwrap() / 1024;
    assert!(rss_mib < 256, "peak RSS {rss_mib} MiB");
    let (body, _, _) = rt.block_on(s.get(&bucket, "out.zip")).unwrap();
    let got = read_zip(&body);
    let want = String::from_utf8(text)
        .unwrap()
        .replace("${VERSION}", "7.0");
    assert!(got[0].1 == want.as_bytes(), "content differs");
    check_with_external_readers(&body);
    eprintln!(
        "streamed 40 MiB at 256 MB: {rss_mib} MiB peak, {} s",
        v["elapsedSeconds"]
    );
    rt.block_on(s.remove_bucket(&bucket));
}
