//! Server-side copy of untouched runs (UploadPartCopy), against the in-memory store:
//! runs of untouched entries are placed by the store, the object is byte-identical
//! to the one written when the store refuses to copy, parts obey S3's 5 MiB rule
//! (the memory store enforces it), and turning copy off gives the same entries.

use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use artifact_core::store::memory::{Fault, MemoryStore};
use artifact_core::store::StoreErrorKind;
use artifact_core::{FailureType, JobSuccess, Settings};
use sha2::Digest;

mod common;
use common::{handle, noise};

const MIB: usize = 1 << 20;
const EDIT: &str = r#"{"steps":[{"replace":{"files":["cfg.txt"],"find":"dev","with":"prod"}}]}"#;

fn settings() -> Settings {
    let mut s = Settings::for_memory(128, 2);
    s.read_chunk = MIB as u64;
    s.read_budget = 4 * MIB as u64;
    s.part_size = 5 * MIB as u64;
    s.upload_concurrency = 2;
    s
}

/// `before` and `after` entries of `size` noise around `cfg.txt`, stored; with
/// `descriptors`, written as a stream (deflated, data descriptors after the data).
fn zip_around_cfg(before: usize, after: usize, size: usize, descriptors: bool) -> Vec<u8> {
    let method = if descriptors {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    let mut entries: Vec<(String, Vec<u8>)> = (0..before)
        .map(|i| (format!("a/{i:03}.bin"), noise(size, i as u64)))
        .collect();
    entries.push(("cfg.txt".into(), b"env=dev".to_vec()));
    entries.extend((0..after).map(|i| (format!("b/{i:03}.bin"), noise(size, 1000 + i as u64))));
    if descriptors {
        return streamed_zip(&entries);
    }
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in &entries {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A zip as a streaming writer makes it: every entry deflated, with zeros in its
/// local header and a data descriptor after its data.
fn streamed_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    use artifact_engine::streamed::StreamDeflater;
    use artifact_engine::zip::{EntryMeta, ZipWriter};
    let mut w = ZipWriter::new();
    let mut out = Vec::new();
    for (name, data) in entries {
        let meta = EntryMeta::file(name.as_str(), 8, 0, 0, data.len() as u64);
        out.extend_from_slice(&w.local_header_streamed(&meta).unwrap());
        let mut d = StreamDeflater::new(6, false);
        out.extend_from_slice(&d.push(data));
        let (tail, done) = d.finish();
        out.extend_from_slice(&tail);
        let desc = w
            .end_streamed(done.crc32, done.compressed, done.uncompressed)
            .unwrap();
        out.extend_from_slice(&desc);
    }
    out.extend_from_slice(&w.finish(b"").unwrap());
    out
}

/// Runs `EDIT` on `input` with `settings` (and `faults`), returning the result,
/// the output object and the store.
async fn run(
    input: &[u8],
    settings: Settings,
    faults: &[Fault],
) -> (JobSuccess, Vec<u8>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    store.insert("b", "in.zip", input.to_vec());
    for f in faults {
        store.inject(f.clone());
    }
    let ok = handle(&store, EDIT, settings).await.expect("job succeeds");
    let (out, _) = store.object("b", "out.zip").expect("output written");
    (ok, out.to_vec(), store)
}

/// Every entry's name and content.
fn entries(zip_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(Cursor::new(zip_bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

fn refuse_first_copy() -> Fault {
    Fault {
        op: "UploadPartCopy",
        nth: 0,
        kind: StoreErrorKind::Invalid,
    }
}

async fn copies_and_falls_back_identically(input: Vec<u8>) {
    let (ok, copied, store) = run(&input, settings(), &[]).await;
    let summary = &ok.outputs[0].object;
    assert_eq!(store.stats().bytes_copied, summary.copied);
    assert!(
        summary.copied as usize > input.len() * 8 / 10,
        "most of the output is copied: {} of {}",
        summary.copied,
        copied.len()
    );
    assert_eq!(summary.sha256, hex::encode(sha2::Sha256::digest(&copied)));
    let got = entries(&copied);
    assert_eq!(got.len(), entries(&input).len());
    let cfg = got.iter().find(|(n, _)| n == "cfg.txt").unwrap();
    assert_eq!(cfg.1, b"env=prod");

    // The store refuses the first copy: the same bytes, all uploaded by the worker.
    let (ok2, streamed, store2) = run(&input, settings(), &[refuse_first_copy()]).await;
    assert_eq!(store2.stats().bytes_copied, 0);
    assert_eq!(ok2.outputs[0].object.copied, 0);
    assert!(copied == streamed, "the fallback writes the same object");
    assert_eq!(ok2.outputs[0].object.sha256, summary.sha256);

    // Copy off: fresh headers, the same entries.
    let off = Settings {
        server_side_copy: false,
        ..settings()
    };
    let (_, rewritten, store3) = run(&input, off, &[]).await;
    assert_eq!(store3.stats().bytes_copied, 0);
    assert_eq!(entries(&rewritten), got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untouched_runs_are_copied_and_a_refusal_writes_the_same_bytes() {
    copies_and_falls_back_identically(zip_around_cfg(24, 24, MIB, false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_with_data_descriptors_are_copied_too() {
    copies_and_falls_back_identically(zip_around_cfg(20, 20, MIB, true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_runs_and_small_archives_are_not_copied() {
    // Runs of 12 MiB on either side: under the 15 MiB a copy needs.
    let input = zip_around_cfg(12, 12, MIB, false);
    let (ok, out, store) = run(&input, settings(), &[]).await;
    assert_eq!(store.stats().bytes_copied, 0);
    assert_eq!(ok.outputs[0].object.copied, 0);
    assert_eq!(entries(&out).len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_failing_after_the_probe_fails_the_job_and_leaves_nothing() {
    let store = Arc::new(MemoryStore::new());
    store.insert("b", "in.zip", zip_around_cfg(24, 24, MIB, false));
    store.inject(Fault {
        op: "UploadPartCopy",
        nth: 1, // the probe (call 0) succeeded: this input can be copied
        kind: StoreErrorKind::Unavailable,
    });
    let err = handle(&store, EDIT, settings()).await.unwrap_err();
    assert_eq!(err.failure_type(), FailureType::SystemUnavailable);
    assert!(err.report_message().contains("UploadPartCopy"), "{err}");
    assert_eq!(store.open_uploads(), 0, "the upload was aborted");
    assert!(store.object("b", "out.zip").is_none());
}
