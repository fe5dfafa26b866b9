//! `"format": "tar.gz"` outputs in real jobs against the local S3 stack: entries
//! (deflated and stored, small and streamed, a directory, a link, an executable, a
//! path too long for ustar, a templated file, added files and a manifest) become a
//! gzip-compressed tar that GNU tar, Python's `tarfile` and the `tar` crate read back
//! with the same content, modes and link. A `zip` step in a tar.gz output, and an
//! entry that would have to be transformed as it streams, are refused before any
//! data moves, and no output is written.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use artifact_core::Settings;
use artifact_suite::*;
use sha2::Digest;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod::{Deflated, Stored};

fn long_path() -> String {
    format!("deep/{}/{}/file.txt", "d".repeat(120), "e".repeat(130))
}

/// A name whose last component alone is longer than a ustar name field.
fn long_component() -> String {
    format!("n/{}.txt", "n".repeat(150))
}

fn big_text() -> Vec<u8> {
    (0..200_000)
        .flat_map(|i| format!("line {i} of a long log\n").into_bytes())
        .collect()
}

/// The input: every kind of entry a tar.gz output has to carry.
fn input_zip() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(Deflated);
    let stored = SimpleFileOptions::default().compression_method(Stored);
    w.add_directory("app/", SimpleFileOptions::default())
        .unwrap();
    w.start_file("app/config.json", deflated).unwrap();
    w.write_all(br#"{"v": "${V}"}"#).unwrap();
    w.start_file("bin/bootstrap", deflated.unix_permissions(0o755))
        .unwrap();
    w.write_all(b"#!/bin/sh\necho hi\n").unwrap();
    w.start_file("lib/libx.so.1", stored).unwrap();
    w.write_all(b"\x7fELF library").unwrap();
    w.add_symlink("lib/libx.so", "libx.so.1", SimpleFileOptions::default())
        .unwrap();
    w.start_file(long_path(), deflated).unwrap();
    w.write_all(b"far down").unwrap();
    w.start_file(long_component(), deflated).unwrap();
    w.write_all(b"wide").unwrap();
    w.start_file("data/noise.bin", deflated).unwrap();
    w.write_all(&noise(3 << 20, 11)).unwrap();
    w.start_file("data/stored.bin", stored).unwrap();
    w.write_all(&noise(2 << 20, 12)).unwrap();
    w.start_file("data/log.txt", deflated).unwrap();
    w.write_all(&big_text()).unwrap();
    w.finish().unwrap().into_inner()
}

/// Settings where entries over 1 MiB are too large to hold whole. As in every
/// memory size's settings, a read chunk is smaller than the largest entry held whole.
fn small_entry_limit() -> Settings {
    Settings {
        max_transform_size: 1 << 20,
        read_chunk: 512 << 10,
        ..Settings::default()
    }
}

/// Runs `params` on [`input_zip`] with entries over 1 MiB too large to hold whole;
/// returns the result, the output's bytes, if any, and the dry run, if it succeeds.
async fn run_job(
    params: &str,
) -> (
    Result<(), (String, String)>,
    Option<Vec<u8>>,
    Option<serde_json::Value>,
) {
    let s = stack();
    let bucket = unique("targz");
    s.create_bucket(&bucket).await;
    s.put(&bucket, "in.zip", input_zip(), None).await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, small_entry_limit()).await;
    let ev = |job: &str| {
        event(
            job,
            &[("In", &bucket, "in.zip")],
            &[("Out", &bucket, "out.tgz")],
            Some(params),
            &creds,
            None,
        )
    };
    let dry = worker
        .dry_run(ev(&job_id()))
        .await
        .ok()
        .map(|d| serde_json::to_value(d).unwrap());
    let handled = worker
        .handle(
            ev(&job_id()),
            Instant::now() + Duration::from_secs(120),
            None,
        )
        .await
        .unwrap();
    let result = handled
        .result
        .map(|_| ())
        .map_err(|(t, m)| (t.as_str().to_string(), m));
    let out = s.get(&bucket, "out.tgz").await.map(|(b, _, _)| b);
    if out.is_some() {
        let head = s
            .admin_s3()
            .head_object()
            .bucket(&bucket)
            .key("out.tgz")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("application/gzip"));
    }
    s.remove_bucket(&bucket).await;
    (result, out, dry)
}

/// One record as the `tar` crate reads it.
#[derive(Debug)]
struct Record {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    link: Option<String>,
    data: Vec<u8>,
}

fn read_tar_gz(bytes: &[u8]) -> Vec<Record> {
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut a = tar::Archive::new(gz);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            Record {
                path: e.path().unwrap().to_string_lossy().into_owned(),
                kind: e.header().entry_type(),
                mode: e.header().mode().unwrap(),
                link: e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned()),
                data,
            }
        })
        .collect()
}

const PARAMS: &str = r#"{"variables": {"V": "7"},
  "outputs": {"Out": {"from": ["In"], "format": "tar.gz", "steps": [
    {"template": {"files": ["app/*.json"]}},
    {"add": {"path": "VERSION", "text": "${V}"}},
    {"manifest": {"path": "MANIFEST.json"}}]}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tar_gz_output_carries_every_kind_of_entry() {
    let (result, out, dry) = run_job(PARAMS).await;
    result.expect("the job succeeds");
    assert_eq!(dry.expect("a dry run")["outputs"][0]["format"], "tar.gz");
    let out = out.expect("an output");
    assert_eq!(&out[..2], b"\x1f\x8b", "a gzip stream");
    let records = read_tar_gz(&out);
    let paths: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
    let long = long_path();
    assert_eq!(
        paths,
        [
            "app/",
            "app/config.json",
            "bin/bootstrap",
            "lib/libx.so.1",
            "lib/libx.so",
            long.as_str(),
            long_component().as_str(),
            "data/noise.bin",
            "data/stored.bin",
            "data/log.txt",
            "VERSION",
            "MANIFEST.json"
        ]
    );
    let get = |p: &str| records.iter().find(|r| r.path == p).unwrap();
    assert_eq!(get("app/").kind, tar::EntryType::Directory);
    assert_eq!(get("app/config.json").data, br#"{"v": "7"}"#);
    assert_eq!(get("bin/bootstrap").mode & 0o777, 0o755);
    assert_eq!(get("lib/libx.so").kind, tar::EntryType::Symlink);
    assert_eq!(get("lib/libx.so").link.as_deref(), Some("libx.so.1"));
    assert_eq!(get(&long).data, b"far down");
    assert_eq!(get(&long_component()).data, b"wide");
    assert!(get("data/noise.bin").data == noise(3 << 20, 11));
    assert!(get("data/stored.bin").data == noise(2 << 20, 12));
    assert!(get("data/log.txt").data == big_text());
    assert_eq!(get("VERSION").data, b"7");
    let manifest: serde_json::Value = serde_json::from_slice(&get("MANIFEST.json").data).unwrap();
    // Every entry but the directory, with the content the archive holds.
    let rows = manifest["entries"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    for row in rows {
        let r = get(row["path"].as_str().unwrap());
        if r.kind == tar::EntryType::Regular {
            let sha = hex::encode(sha2::Sha256::digest(&r.data));
            assert_eq!(row["sha256"], sha.as_str(), "{row}");
        }
    }
    check_with_gnu_tar_and_python(&out, &long);
}

/// GNU tar lists and extracts the archive (the link resolves, the executable keeps
/// its mode) and Python's `tarfile` reads every member.
fn check_with_gnu_tar_and_python(bytes: &[u8], long: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.tgz");
    std::fs::write(&file, bytes).unwrap();
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let ok = Command::new("tar")
        .arg("-xzf")
        .arg(&file)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(ok.success(), "GNU tar extracts it");
    assert_eq!(
        std::fs::read(x.join("lib/libx.so")).unwrap(),
        b"\x7fELF library"
    );
    assert_eq!(std::fs::read(x.join(long)).unwrap(), b"far down");
    assert_eq!(std::fs::read(x.join(long_component())).unwrap(), b"wide");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(x.join("bin/bootstrap"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let py = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, tarfile\n\
             t = tarfile.open(sys.argv[1], 'r:gz')\n\
             n = 0\n\
             for m in t.getmembers():\n\
             \x20   if m.isfile(): t.extractfile(m).read()\n\
             \x20   n += 1\n\
             print(n)",
        )
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "12");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_step_in_a_tar_gz_output_is_refused() {
    let params = r#"{"outputs": {"Out": {"from": ["In"], "format": "tar.gz", "steps": [
        {"zip": {"files": ["lib/**"], "to": "lib.zip"}}]}}}"#;
    let (result, out, _) = run_job(params).await;
    let (kind, message) = result.expect_err("refused");
    assert_eq!(kind, "ConfigurationError");
    assert!(message.contains("outputs.Out.steps[0].zip"), "{message}");
    assert!(message.contains("tar.gz"), "{message}");
    assert!(out.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_would_stream_through_a_transform_is_refused() {
    // data/log.txt is over the 1 MiB whole-entry limit: a zip output would template it
    // as it streams; a tar.gz needs its size first.
    let params = r#"{"variables": {"V": "7"},
      "outputs": {"Out": {"from": ["In"], "format": "tar.gz", "steps": [
        {"template": {"files": ["data/*.txt"]}}]}}}"#;
    let (result, out, _) = run_job(params).await;
    let (kind, message) = result.expect_err("refused");
    assert_eq!(kind, "JobFailed");
    assert!(message.contains("data/log.txt"), "{message}");
    assert!(message.contains("tar.gz"), "{message}");
    assert!(out.is_none());
}

/// Members of a deflated inner zip (one deflated member over the whole-entry limit,
/// so inflated for the tar as it streams out of the inflating zip) land in the
/// tar.gz with their content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_an_unzipped_deflated_zip_go_into_the_tar_gz() {
    let s = stack();
    let bucket = unique("targz-unzip");
    s.create_bucket(&bucket).await;
    let big = big_text();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(Deflated);
    w.start_file("index.html", deflated).unwrap();
    w.write_all(b"<p>${V}</p>").unwrap();
    w.start_file("logs/big.txt", deflated).unwrap();
    w.write_all(&big).unwrap();
    let site = w.finish().unwrap().into_inner();
    let input = zip_of(&[("README.md", b"readme", true), ("site.zip", &site, true)]);
    s.put(&bucket, "in.zip", input, None).await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, small_entry_limit()).await;
    let params = r#"{"variables": {"V": "7"},
      "outputs": {"Out": {"from": ["In"], "format": "tar.gz", "steps": [
        {"unzip": {"files": ["site.zip"]}},
        {"template": {"files": ["**/*.html"]}}]}}}"#;
    let ev = event(
        &job_id(),
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.tgz")],
        Some(params),
        &creds,
        None,
    );
    let handled = worker
        .handle(ev, Instant::now() + Duration::from_secs(120), None)
        .await
        .unwrap();
    handled.result.expect("the job succeeds");
    let (out, _, _) = s.get(&bucket, "out.tgz").await.unwrap();
    s.remove_bucket(&bucket).await;
    let records = read_tar_gz(&out);
    let paths: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["README.md", "site/index.html", "site/logs/big.txt"]);
    assert_eq!(records[1].data, b"<p>7</p>");
    assert!(records[2].data == big, "the large member's content");
}
