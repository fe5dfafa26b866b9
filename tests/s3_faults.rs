//! Faults between the worker and the real S3 server, injected by a proxy in front of
//! SeaweedFS: ranged GET bodies cut or stalled mid-way, SlowDown bursts on
//! UploadPart, and a refused UploadPart. Each job goes through `Worker::handle` (the
//! worker's own retries and cleanup), and after each there is exactly one accepted
//! report, no open multipart upload, and no partial output.

use std::time::{Duration, Instant};

use artifact_core::clients::PayloadSigning;
use artifact_core::Settings;
use artifact_suite::proxy::{Action, FaultProxy, Rule, Seen};
use artifact_suite::*;
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

/// A ~24 MiB input of incompressible stored entries (the output goes multipart).
fn input() -> Vec<u8> {
    let entries: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("data/{i}.bin"), noise(4 * MIB, i)))
        .collect();
    let refs: Vec<(&str, &[u8], bool)> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), false))
        .collect();
    zip_of(&refs)
}

struct Outcome {
    result: Result<(), (String, String)>,
    faults: usize,
    /// Every request the proxy forwarded or answered.
    requests: Vec<Seen>,
}

/// Runs a copy-all job through `proxy` with `rules`; checks the invariants that hold
/// whatever the outcome, and returns it.
async fn run_with_faults(rules: Vec<Rule>) -> Outcome {
    run_signed(rules, PayloadSigning::Auto).await
}

/// [`run_with_faults`] with upload bodies signed as `signing` says.
async fn run_signed(rules: Vec<Rule>, signing: PayloadSigning) -> Outcome {
    let s = stack();
    let bucket = unique("fault");
    s.create_bucket(&bucket).await;
    let input = input();
    s.put(&bucket, "in.zip", input.clone(), None).await;
    let creds = s.session_credentials().await;
    let proxy = FaultProxy::start(&s.s3_endpoint).await;
    for r in rules {
        proxy.add(r);
    }
    let cp = codepipeline();
    let worker = s
        .worker_signing_via(
            &cp,
            // The worker's own uploads are under test (tests/server_side_copy.rs
            // injects faults into copies).
            Settings {
                server_side_copy: false,
                ..Settings::default()
            },
            &proxy.endpoint(),
            Duration::from_secs(1),
            signing,
        )
        .await;
    let job = job_id();
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        None,
        &creds,
        None,
    );
    let handled = worker.handle(ev, far(), None).await.expect("reported");
    assert_eq!(cp.results().len(), 1, "exactly one report");
    assert!(s.open_uploads(&bucket).await.is_empty(), "no open upload");
    let result = match handled.result {
        Ok(_) => {
            let (body, _, _) = s.get(&bucket, "out.zip").await.expect("output");
            let got: Vec<(String, Vec<u8>)> = read_zip(&body);
            let want: Vec<(String, Vec<u8>)> = read_zip(&input);
            assert_eq!(got.len(), want.len());
            for ((gn, gd), (wn, wd)) in got.iter().zip(&want) {
                assert_eq!(gn, wn);
                assert!(Sha256::digest(gd) == Sha256::digest(wd), "{gn} differs");
            }
            Ok(())
        }
        Err((t, m)) => {
            assert!(
                s.get(&bucket, "out.zip").await.is_none(),
                "no partial output"
            );
            Err((t.as_str().to_string(), m))
        }
    };
    let faults = proxy.faults_applied();
    s.remove_bucket(&bucket).await;
    Outcome {
        result,
        faults,
        requests: proxy.requests(),
    }
}

fn upload_parts(o: &Outcome) -> Vec<&Seen> {
    o.requests
        .iter()
        .filter(|r| r.method == "PUT" && r.query.contains("partNumber="))
        .filter(|r| r.header("x-amz-copy-source").is_none()) // no body: a copy
        .collect()
}

/// Unsigned upload bodies carry a CRC32 checksum in a signed header (the server
/// checks it; no SHA-256 of the body is computed), also when a part is sent again
/// after SlowDown; signed ones carry the body's SHA-256 and no checksum. The output
/// is the same either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_bodies_are_signed_or_checksummed() {
    let slow_down = || Rule {
        method: "PUT",
        query_has: "partNumber=",
        ranged: None,
        min_body: 0,
        times: 1,
        action: Action::Status {
            status: 503,
            code: "SlowDown",
        },
    };
    let unsigned = run_signed(vec![slow_down()], PayloadSigning::Unsigned).await;
    assert!(unsigned.result.is_ok(), "{:?}", unsigned.result);
    assert_eq!(unsigned.faults, 1);
    let parts = upload_parts(&unsigned);
    assert!(parts.len() >= 3, "{} parts", parts.len());
    for p in &parts {
        assert_eq!(
            p.header("x-amz-content-sha256"),
            Some("UNSIGNED-PAYLOAD"),
            "{p:?}"
        );
        let crc = p.header("x-amz-checksum-crc32").unwrap_or("");
        assert_eq!(crc.len(), 8, "a base64 CRC32: {p:?}");
    }

    let signed = run_signed(vec![slow_down()], PayloadSigning::Signed).await;
    assert!(signed.result.is_ok(), "{:?}", signed.result);
    let parts = upload_parts(&signed);
    assert!(parts.len() >= 3);
    for p in &parts {
        let sha = p.header("x-amz-content-sha256").unwrap_or("");
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{p:?}"
        );
        assert_eq!(p.header("x-amz-checksum-crc32"), None, "{p:?}");
    }
    // A body damaged on the way is refused by its checksum (BadDigest) and the part
    // is sent again. (SeaweedFS does not check a signed body against its SHA-256, so
    // only the checksum catches damage there; S3 checks both.)
    let damage = Rule {
        action: Action::CorruptRequestBody,
        ..slow_down()
    };
    let o = run_signed(vec![damage], PayloadSigning::Unsigned).await;
    assert_eq!(o.faults, 1);
    assert!(o.result.is_ok(), "{:?}", o.result);
    // By default, plain-HTTP endpoints sign; AWS S3 and HTTPS endpoints do not.
    assert!(!PayloadSigning::Auto.unsigned_for(Some("http://127.0.0.1:8333")));
    assert!(PayloadSigning::Auto.unsigned_for(Some("https://minio.example")));
    assert!(PayloadSigning::Auto.unsigned_for(None));
}

fn ranged_get(times: usize, action: Action) -> Rule {
    Rule {
        method: "GET",
        query_has: "",
        ranged: Some(true),
        min_body: MIB,
        times,
        action,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_body_cut_half_way_is_resumed() {
    let o = run_with_faults(vec![ranged_get(2, Action::CutBody { after: MIB / 2 })]).await;
    assert_eq!(o.faults, 2);
    assert!(o.result.is_ok(), "{:?}", o.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_get_body_is_re_read() {
    let stall = Action::Stall {
        after: MIB / 4,
        pause: Duration::from_secs(30),
    };
    let o = run_with_faults(vec![ranged_get(1, stall)]).await;
    assert_eq!(o.faults, 1);
    assert!(o.result.is_ok(), "{:?}", o.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_bursts_on_upload_part_are_survived() {
    // More 503s in a row than the SDK's own three attempts absorb.
    let o = run_with_faults(vec![Rule {
        method: "PUT",
        query_has: "partNumber=",
        ranged: None,
        min_body: 0,
        times: 5,
        action: Action::Status {
            status: 503,
            code: "SlowDown",
        },
    }])
    .await;
    assert_eq!(o.faults, 5);
    assert!(o.result.is_ok(), "{:?}", o.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_part_fails_cleanly_with_its_cause() {
    let o = run_with_faults(vec![Rule {
        method: "PUT",
        query_has: "partNumber=",
        ranged: None,
        min_body: 0,
        times: 1000,
        action: Action::Status {
            status: 403,
            code: "AccessDenied",
        },
    }])
    .await;
    let (t, m) = o.result.expect_err("the job fails");
    assert_eq!(t, "PermissionError", "{m}");
    assert!(
        m.contains("UploadPart") && m.contains("AccessDenied"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_replaced_mid_job_is_revision_out_of_sync() {
    // The real server honours If-Match on ranged GETs: a read pinned to an old ETag
    // fails with 412, which the worker reports as RevisionOutOfSync.
    use artifact_core::store::{s3::S3Store, ObjectStore, StoreErrorKind};
    let s = stack();
    let bucket = unique("pin");
    s.create_bucket(&bucket).await;
    s.put(&bucket, "in.zip", b"version one".to_vec(), None)
        .await;
    let store = S3Store::new(s.admin_s3());
    let loc = artifact_core::event::S3Location {
        bucket_name: bucket.clone(),
        object_key: "in.zip".into(),
    };
    let info = store.head(&loc).await.unwrap();
    let tag = info.etag.clone();
    assert!(tag.is_some(), "the server sends an ETag");
    assert!(store.get_range(&loc, 0..7, tag.as_deref()).await.is_ok());
    s.put(&bucket, "in.zip", b"version two".to_vec(), None)
        .await;
    let err = store
        .get_range(&loc, 0..7, tag.as_deref())
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Changed, "{err}");
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_complete_response_still_completes_the_output() {
    // The server completes the upload but the response is lost (500); the retry is
    // told NoSuchUpload (as S3-compatible servers answer for a completed upload).
    // The object is there with the size written, so the job succeeds, and the output
    // is checked byte for byte.
    let complete = |action| Rule {
        method: "POST",
        query_has: "uploadId=",
        ranged: None,
        min_body: 0,
        times: 1,
        action,
    };
    let o = run_with_faults(vec![
        complete(Action::LoseResponse {
            status: 500,
            code: "InternalError",
        }),
        complete(Action::Status {
            status: 404,
            code: "NoSuchUpload",
        }),
    ])
    .await;
    assert_eq!(o.faults, 2);
    assert!(o.result.is_ok(), "{:?}", o.result);
}
