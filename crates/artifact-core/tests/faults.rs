//! The pipeline against the in-memory store with injected faults, driven through
//! `Worker::handle` (the worker's own cleanup and reporting, to the project's local
//! job-API endpoint): every failure is typed and reported exactly once, aborts the
//! multipart upload and leaves no object; reads are ranged and bounded; outputs are
//! deterministic.

use std::io::{Cursor, Write};
use std::sync::Arc;

use artifact_core::store::memory::{Fault, MemoryStore};
use artifact_core::store::{ObjectStore, StoreErrorKind};
use artifact_core::{FailureType, JobError, JobSuccess, Settings};

mod common;
use common::{handle, noise, Failed};

fn big_zip(entries: usize, size: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        w.start_file(format!("d/{i:04}.bin"), opts).unwrap();
        w.write_all(&noise(size, i as u64)).unwrap();
    }
    w.start_file("cfg.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(b"env=dev").unwrap();
    w.finish().unwrap().into_inner()
}

fn small_settings() -> Settings {
    let mut s = Settings::for_memory(128, 2);
    s.read_chunk = 1 << 20;
    s.read_budget = 4 << 20;
    s.part_size = 5 << 20;
    s.upload_concurrency = 2;
    // These tests are of the worker's own uploads (tests/copy.rs covers copies).
    s.server_side_copy = false;
    s
}

async fn run(store: &Arc<MemoryStore>, params: &str) -> (Result<JobSuccess, Failed>, ()) {
    (handle(store, params, small_settings()).await, ())
}

const EDIT: &str = r#"{"steps":[{"replace":{"files":["cfg.txt"],"find":"dev","with":"prod"}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_ranged_and_bounded_and_output_is_encrypted_and_deterministic() {
    let store = Arc::new(MemoryStore::new());
    let input = big_zip(40, 500_000); // ~20 MB
    store.insert("b", "in.zip", input.clone());
    let (r, _) = run(&store, EDIT).await;
    let ok = r.unwrap();
    let stats = store.stats();
    assert!(
        stats.max_range <= 1 << 20,
        "no range larger than a chunk: {}",
        stats.max_range
    );
    assert!(
        stats.bytes_read < input.len() as u64 + (128 << 10),
        "each byte read about once: {}",
        stats.bytes_read
    );
    assert!(ok.outputs[0].object.parts >= 4);
    let (body, enc) = store.object("b", "out.zip").unwrap();
    assert_eq!(enc.kms_key_id.as_deref(), Some("alias/pipeline"));
    let mut a = zip::ZipArchive::new(Cursor::new(body.to_vec())).unwrap();
    assert_eq!(a.len(), 41);
    let mut s = String::new();
    std::io::Read::read_to_string(&mut a.by_name("cfg.txt").unwrap(), &mut s).unwrap();
    assert_eq!(s, "env=prod");
    // Same job again: byte-identical output.
    let (r2, _) = run(&store, EDIT).await;
    assert_eq!(
        r2.unwrap().outputs[0].object.sha256,
        ok.outputs[0].object.sha256
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_failure_mid_way_aborts_and_leaves_nothing() {
    for (op, nth) in [
        ("UploadPart", 2),
        ("CompleteMultipartUpload", 0),
        ("CreateMultipartUpload", 0),
    ] {
        let store = Arc::new(MemoryStore::new());
        store.insert("b", "in.zip", big_zip(40, 500_000));
        store.inject(Fault {
            op,
            nth,
            kind: StoreErrorKind::Unavailable,
        });
        let (r, ()) = run(&store, "").await;
        let err = r.unwrap_err();
        assert_eq!(err.failure_type(), FailureType::SystemUnavailable, "{op}");
        assert!(
            err.report_message().contains("output artifact \"Out\""),
            "{}",
            err.report_message()
        );
        assert!(
            store.object("b", "out.zip").is_none(),
            "{op}: no partial object"
        );
        assert_eq!(store.open_uploads(), 0, "{op}: upload aborted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_failures_are_typed() {
    for (kind, want) in [
        (StoreErrorKind::Unavailable, FailureType::SystemUnavailable),
        (StoreErrorKind::AccessDenied, FailureType::PermissionError),
        (StoreErrorKind::NotFound, FailureType::RevisionUnavailable),
    ] {
        let store = Arc::new(MemoryStore::new());
        store.insert("b", "in.zip", big_zip(40, 500_000));
        // A late entry-data read, after the output upload started.
        store.inject(Fault {
            op: "GetObject",
            nth: 12,
            kind,
        });
        let (r, _) = run(&store, "").await;
        let err = r.unwrap_err();
        assert_eq!(err.failure_type(), want);
        assert!(
            err.report_message().contains("input artifact \"In\""),
            "{}",
            err.report_message()
        );
        assert!(store.object("b", "out.zip").is_none());
        assert_eq!(store.open_uploads(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_archives_fail_cleanly() {
    let good = big_zip(3, 1000);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty object", vec![]),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("garbage", noise(5000, 9)),
    ];
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("../../etc/passwd", zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(b"x").unwrap();
    cases.push(("traversal", w.finish().unwrap().into_inner()));
    let mut lying = good.clone();
    let n = lying.len();
    lying[n - 6..n - 2].copy_from_slice(&(n as u32 + 100).to_le_bytes());
    cases.push(("cd offset past the end", lying));
    for (what, bytes) in cases {
        let store = Arc::new(MemoryStore::new());
        store.insert("b", "in.zip", bytes);
        let (r, _) = run(&store, "").await;
        let err = r.unwrap_err();
        assert_eq!(err.failure_type(), FailureType::JobFailed, "{what}: {err}");
        assert!(
            err.report_message().contains("\"In\""),
            "{what}: {}",
            err.report_message()
        );
        assert!(store.object("b", "out.zip").is_none(), "{what}");
    }
}

#[tokio::test]
async fn panics_on_the_pool_become_errors() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let r: Result<(), String> = artifact_core::bridge::on_pool(&pool, || panic!("boom")).await;
    assert_eq!(r.unwrap_err(), "boom");
}

fn zip_with(entries: &[(&str, Vec<u8>, bool)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, deflate) in entries {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn big_json(len: usize) -> Vec<u8> {
    let mut v = b"{\n".to_vec();
    let mut i = 0;
    while v.len() < len {
        v.extend_from_slice(format!("  \"k{i}\": \"image:${{VERSION}} env=dev\",\n").as_bytes());
        i += 1;
    }
    v.extend_from_slice(b"  \"end\": true\n}\n");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_too_large_to_transform_is_refused_before_it_is_read() {
    // 128 MB function: entries over 16 MiB cannot be held whole, and a regex
    // `replace` needs the whole entry. The 40 MiB stored entry must be refused from
    // its declared size, not after its bytes were assembled in memory.
    let store = Arc::new(MemoryStore::new());
    let input = zip_with(&[
        ("small.txt", b"hi".to_vec(), true),
        ("big.json", big_json(40 << 20), false),
    ]);
    store.insert("b", "in.zip", input);
    let params =
        r#"{"steps":[{"replace":{"files":["*.json"],"regex":"env=(\\w+)","with":"env=x"}}]}"#;
    let (r, _) = run(&store, params).await;
    let err = r.unwrap_err();
    let msg = err.report_message();
    assert_eq!(err.failure_type(), FailureType::JobFailed, "{msg}");
    assert!(
        msg.contains("big.json") && msg.contains("cannot be"),
        "{msg}"
    );
    let read = store.stats().bytes_read;
    assert!(read < 1 << 20, "read {read} bytes before refusing");
    assert!(store.object("b", "out.zip").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_and_replace_stream_through_an_entry_past_the_limit() {
    // The same 40 MiB entry with streamable steps: transformed as it streams, read
    // in chunks, and written with a data descriptor.
    let text = big_json(40 << 20);
    for deflate in [false, true] {
        let store = Arc::new(MemoryStore::new());
        store.insert(
            "b",
            "in.zip",
            zip_with(&[
                ("small.json", b"{\"v\": \"${VERSION}\"}".to_vec(), true),
                ("big.json", text.clone(), deflate),
            ]),
        );
        let params = r#"{"variables":{"VERSION":"3.1"},"steps":[{"template":{"files":["*.json"]}},
            {"replace":{"files":["*.json"],"find":"env=dev","with":"env=prod"}}]}"#;
        let (r, _) = run(&store, params).await;
        let ok = r.unwrap();
        assert_eq!(ok.outputs[0].transformed_entries, 2);
        assert!(store.stats().max_range <= 1 << 20, "read in chunks");
        let (body, _) = store.object("b", "out.zip").unwrap();
        let mut a = zip::ZipArchive::new(Cursor::new(body.to_vec())).unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut a.by_name("big.json").unwrap(), &mut got).unwrap();
        let want = String::from_utf8(text.clone())
            .unwrap()
            .replace("${VERSION}", "3.1")
            .replace("env=dev", "env=prod");
        assert!(got == want.as_bytes(), "deflate={deflate}: content differs");
        let mut small = String::new();
        std::io::Read::read_to_string(&mut a.by_name("small.json").unwrap(), &mut small).unwrap();
        assert_eq!(small, "{\"v\": \"3.1\"}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_spanning_many_chunks_are_copied_and_transformed() {
    let mut s = small_settings();
    s.read_chunk = 64 << 10;
    s.read_budget = 256 << 10;
    let text: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("line {i} env=dev\n").into_bytes())
        .collect();
    let input = zip_with(&[
        ("a.bin", noise(300_000, 1), false),
        ("b.txt", text.clone(), true),
        ("c.bin", noise(200_000, 2), true),
        ("d.txt", text.clone(), false),
    ]);
    let store = Arc::new(MemoryStore::new());
    store.insert("b", "in.zip", input);
    let params = r#"{"steps":[{"replace":{"files":["*.txt"],"find":"dev","with":"prod"}}]}"#;
    let ok = handle(&store, params, s).await.unwrap();
    assert_eq!(ok.outputs[0].transformed_entries, 2);
    // Entry reads stay within a chunk (the index read of the tail may be larger).
    assert!(store.stats().max_range <= 128 << 10);
    let (body, _) = store.object("b", "out.zip").unwrap();
    let mut a = zip::ZipArchive::new(Cursor::new(body.to_vec())).unwrap();
    let want = String::from_utf8(text).unwrap().replace("dev", "prod");
    for (name, expect) in [
        ("a.bin", noise(300_000, 1)),
        ("b.txt", want.clone().into_bytes()),
        ("c.bin", noise(200_000, 2)),
        ("d.txt", want.into_bytes()),
    ] {
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut a.by_name(name).unwrap(), &mut got).unwrap();
        assert!(got == expect, "{name} differs");
    }
}

#[tokio::test]
async fn reads_are_pinned_to_the_first_etag() {
    use artifact_core::event::S3Location;
    let store = MemoryStore::new();
    store.insert("b", "in.zip", b"version one".to_vec());
    let loc = S3Location {
        bucket_name: "b".into(),
        object_key: "in.zip".into(),
    };
    let info = store.head(&loc).await.unwrap();
    let tag = info.etag.as_deref();
    assert!(store.get_range(&loc, 0..7, tag).await.is_ok());
    store.insert("b", "in.zip", b"version two".to_vec());
    let err = store.get_range(&loc, 0..7, tag).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Changed);
    let job_err = JobError::artifact(artifact_core::error::Side::Input, "In", &loc, err);
    assert_eq!(job_err.failure_type(), FailureType::RevisionOutOfSync);
}
