//! Server-side copy against the real local stack (SeaweedFS, moto KMS), through a
//! recording proxy: runs of untouched entries of an unencrypted input are placed
//! with UploadPartCopy, so most of the output never passes through the worker; an
//! SSE-KMS input, which SeaweedFS will not copy from, falls back to uploading; both
//! outputs are byte for byte the same, SSE-KMS with the job's key, and readable by
//! external tools. The event carries session credentials (the ambient ones are
//! unknown to the server), so the copies were made with the job's credentials.

use std::time::{Duration, Instant};

use artifact_core::Settings;
use artifact_suite::proxy::{Action, FaultProxy, Rule, Seen};
use artifact_suite::*;
use codepipeline_local::Outcome;
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;

/// 20 MiB of stored noise on either side of a config file the plan edits.
fn input() -> Vec<u8> {
    let mut entries: Vec<(String, Vec<u8>, bool)> = (0..20)
        .map(|i| (format!("lib/a{i:02}.so"), noise(MIB, i), false))
        .collect();
    entries.push(("config/app.env".into(), b"VERSION=dev\n".to_vec(), true));
    entries.extend((0..20).map(|i| (format!("lib/b{i:02}.so"), noise(MIB, 100 + i), false)));
    let refs: Vec<(&str, &[u8], bool)> = entries
        .iter()
        .map(|(n, d, z)| (n.as_str(), d.as_slice(), *z))
        .collect();
    zip_of(&refs)
}

const PARAMS: &str =
    r#"{"steps":[{"replace":{"files":["config/app.env"],"find":"dev","with":"4.2.0"}}]}"#;

/// Bytes the worker uploaded itself (part and object bodies), and the copies it
/// asked for.
fn traffic(seen: &[Seen]) -> (u64, usize) {
    let mut uploaded = 0;
    let mut copies = 0;
    for r in seen.iter().filter(|r| r.method == "PUT") {
        if r.header("x-amz-copy-source").is_some() {
            copies += 1;
            continue;
        }
        let len = r
            .header("x-amz-decoded-content-length")
            .or(r.header("content-length"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        uploaded += len;
    }
    (uploaded, copies)
}

struct Run {
    body: Vec<u8>,
    copied: u64,
    uploaded: u64,
    copies: usize,
    sha256: String,
}

/// Runs the job on `input_key` of `bucket` through a fresh recording proxy with
/// `rules`.
async fn run(bucket: &str, input_key: &str, out_key: &str, kms_key: &str, rules: Vec<Rule>) -> Run {
    let s = stack();
    let proxy = FaultProxy::start(&s.s3_endpoint).await;
    for r in rules {
        proxy.add(r);
    }
    let creds = s.session_credentials().await;
    let job = job_id();
    let ev = event(
        &job,
        &[("Src", bucket, input_key)],
        &[("Out", bucket, out_key)],
        Some(PARAMS),
        &creds,
        Some(kms_key),
    );
    let cp = codepipeline();
    let worker = s
        .worker_via(
            &cp,
            Settings::default(),
            &proxy.endpoint(),
            Duration::from_secs(10),
        )
        .await;
    let far = Instant::now() + Duration::from_secs(600);
    let handled = worker.handle(ev, far, None).await.unwrap();
    let ok = handled
        .result
        .as_ref()
        .unwrap_or_else(|e| panic!("job failed: {e:?}"));
    let Outcome::Success {
        output_variables, ..
    } = cp.result_for(&job).expect("reported").outcome
    else {
        panic!("expected a success")
    };
    let (body, sse, kms_id) = s.get(bucket, out_key).await.expect("output exists");
    assert_eq!(sse.as_deref(), Some("aws:kms"));
    assert_eq!(
        kms_id.as_deref(),
        Some(kms_key),
        "encrypted with the job's key"
    );
    assert!(
        s.open_uploads(bucket).await.is_empty(),
        "no upload left open"
    );
    let (uploaded, copies) = traffic(&proxy.requests());
    Run {
        body,
        copied: ok.outputs[0].object.copied,
        uploaded,
        copies,
        sha256: output_variables["Out_sha256"].clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untouched_runs_are_copied_by_the_server_and_sse_kms_inputs_fall_back_to_the_same_bytes() {
    let s = stack();
    let bucket = unique("copy");
    s.create_bucket(&bucket).await;
    let key = s.create_key().await;
    let zip = input();
    s.put(&bucket, "in/plain.zip", zip.clone(), None).await;
    s.put(&bucket, "in/kms.zip", zip.clone(), Some(&key)).await;

    // Unencrypted input: the server copies the untouched runs (the first copy is
    // throttled once, and retried).
    let slow_down = Rule {
        method: "PUT",
        query_has: "UploadPartCopy",
        ranged: None,
        min_body: 0,
        times: 1,
        action: Action::Status {
            status: 503,
            code: "SlowDown",
        },
    };
    let copied = run(&bucket, "in/plain.zip", "out/a.zip", &key, vec![slow_down]).await;
    let total = copied.body.len() as u64;
    assert!(
        copied.copies >= 3,
        "UploadPartCopy requests: {}",
        copied.copies
    );
    assert!(
        copied.copied > total * 3 / 4,
        "{} of {total} bytes copied",
        copied.copied
    );
    assert_eq!(copied.uploaded + copied.copied, total);
    assert!(
        copied.uploaded < total / 4,
        "the worker uploaded {} of {total} bytes",
        copied.uploaded
    );
    assert_eq!(copied.sha256, hex::encode(Sha256::digest(&copied.body)));
    let entries = read_zip(&copied.body);
    assert_eq!(entries.len(), 41);
    let env = entries.iter().find(|(n, _)| n == "config/app.env").unwrap();
    assert_eq!(env.1, b"VERSION=4.2.0\n");
    check_with_external_readers(&copied.body);

    // SSE-KMS input: SeaweedFS refuses to copy from it; the worker uploads instead.
    let streamed = run(&bucket, "in/kms.zip", "out/b.zip", &key, vec![]).await;
    assert_eq!(streamed.copied, 0);
    assert_eq!(streamed.copies, 1, "one refused probe, then no more copies");
    assert_eq!(streamed.uploaded, total);
    assert!(streamed.body == copied.body, "byte-identical outputs");
    assert_eq!(streamed.sha256, copied.sha256);
    s.remove_bucket(&bucket).await;
}
