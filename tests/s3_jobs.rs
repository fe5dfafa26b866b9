//! End-to-end jobs against the real local stack: SeaweedFS (S3 + STS) with moto as
//! its KMS, the real aws-sdk-codepipeline client talking to the project's local job
//! API endpoint. Inputs are uploaded SSE-KMS by an admin identity; the event carries
//! STS session credentials; the ambient AWS_* variables hold a key the server does not
//! know — so a job can only succeed if the worker used the job's credentials.

use std::time::{Duration, Instant};

use artifact_core::Settings;
use artifact_suite::*;
use codepipeline_local::Outcome;
use sha2::{Digest, Sha256};

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

fn failure(cp: &codepipeline_local::LocalCodePipeline, job: &str) -> (String, String) {
    match cp.result_for(job).expect("a result was reported").outcome {
        Outcome::Failure { type_, message, .. } => (type_, message),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_uses_session_credentials_and_kms_key() {
    let s = stack();
    let bucket = unique("e2e");
    s.create_bucket(&bucket).await;
    let key = s.create_key().await;
    let input = zip_of(&[
        ("app/", b"", false),
        (
            "app/config.json",
            br#"{"tag":"${VERSION}","job":"${CODEPIPELINE_JOB_ID}"}"#,
            true,
        ),
        ("app/bundle.js.map", b"{}", true),
        ("app/logo.bin", &noise(10_000, 1), false),
        ("docs/ünïcode name.txt", b"hello", true),
    ]);
    s.put(&bucket, "in/src.zip", input, Some(&key)).await;
    let creds = s.session_credentials().await;
    let job = job_id();
    let params = r#"{"variables":{"VERSION":"7.1.0"},"steps":[{"exclude":["*.map"]},{"template":{"files":["*.json"]}}]}"#;
    let ev = event(
        &job,
        &[("Src", &bucket, "in/src.zip")],
        &[("Out", &bucket, "out/out.zip")],
        Some(params),
        &creds,
        Some(&key),
    );

    // Prove the ambient credentials are useless against this server.
    let ambient = s.s3_with(aws_credential_types::Credentials::new(
        AMBIENT_UNKNOWN_KEY,
        "x",
        None,
        None,
        "t",
    ));
    assert!(ambient
        .head_object()
        .bucket(&bucket)
        .key("in/src.zip")
        .send()
        .await
        .is_err());

    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let handled = worker.handle(ev, far(), Some("req-1")).await.unwrap();
    let ok = handled
        .result
        .as_ref()
        .unwrap_or_else(|e| panic!("job failed: {e:?}"));

    let (body, sse, kms_id) = s.get(&bucket, "out/out.zip").await.expect("output exists");
    assert_eq!(sse.as_deref(), Some("aws:kms"));
    assert_eq!(
        kms_id.as_deref(),
        Some(key.as_str()),
        "output encrypted with the job's key"
    );
    let entries = read_zip(&body);
    let names: Vec<_> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "app/",
            "app/config.json",
            "app/logo.bin",
            "docs/ünïcode name.txt"
        ]
    );
    assert_eq!(
        entries[1].1,
        format!(r#"{{"tag":"7.1.0","job":"{job}"}}"#).as_bytes()
    );
    assert_eq!(entries[2].1, noise(10_000, 1));
    check_with_external_readers(&body);

    let rec = cp.result_for(&job).expect("reported");
    let Outcome::Success {
        output_variables,
        execution_details,
        ..
    } = rec.outcome
    else {
        panic!("{rec:?}")
    };
    assert_eq!(output_variables["Out_entries"], "4");
    assert_eq!(output_variables["Out_bytes"], body.len().to_string());
    assert_eq!(
        output_variables["Out_sha256"],
        hex::encode(Sha256::digest(&body))
    );
    let details = execution_details.unwrap();
    assert_eq!(details.external_execution_id.as_deref(), Some("req-1"));
    assert_eq!(details.percent_complete, Some(100));
    assert_eq!(ok.outputs[0].transformed_entries, 1);
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_goes_multipart_and_reads_back() {
    let s = stack();
    let bucket = unique("mp");
    s.create_bucket(&bucket).await;
    let key = s.create_key().await;
    // ~20 MiB over 3,000 entries: several parts, many ranged reads.
    let blobs: Vec<(String, Vec<u8>)> = (0..3000)
        .map(|i| (format!("f/{i:05}.bin"), noise(7000, i)))
        .collect();
    let mut entries: Vec<(&str, &[u8], bool)> = blobs
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), false))
        .collect();
    let text = "version=${VERSION}\n".repeat(2000);
    entries.push(("cfg/app.properties", text.as_bytes(), true));
    s.put(&bucket, "in.zip", zip_of(&entries), Some(&key)).await;
    let creds = s.session_credentials().await;
    let job = job_id();
    let params =
        r#"{"variables":{"VERSION":"3"},"steps":[{"template":{"files":["*.properties"]}}]}"#;
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        Some(params),
        &creds,
        Some(&key),
    );
    let cp = codepipeline();
    let mut settings = Settings::for_memory(256, 2);
    settings.read_chunk = 1 << 20; // many coalesced ranges
    let worker = s.worker(&cp, settings).await;
    let handled = worker.handle(ev, far(), None).await.unwrap();
    let ok = handled.result.unwrap_or_else(|e| panic!("{e:?}"));
    assert!(
        ok.outputs[0].object.parts >= 2,
        "expected a multipart upload: {:?}",
        ok.outputs[0].object
    );
    let (body, sse, _) = s.get(&bucket, "out.zip").await.unwrap();
    assert_eq!(sse.as_deref(), Some("aws:kms"));
    let listed = check_with_external_readers(&body);
    assert_eq!(listed.len(), 3001);
    let got = read_zip(&body);
    assert_eq!(got[1234].1, noise(7000, 1234));
    assert_eq!(got[3000].1, "version=3\n".repeat(2000).as_bytes());
    assert!(s.open_uploads(&bucket).await.is_empty());
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_mid_upload_leaves_nothing_behind() {
    let s = stack();
    let bucket = unique("abort");
    s.create_bucket(&bucket).await;
    // 12 MiB of good data (more than one 8 MiB part), then an entry with a bad CRC
    // that the plan must decompress.
    let good: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| (format!("blob{i}.bin"), noise(1 << 20, i)))
        .collect();
    let mut entries: Vec<(&str, &[u8], bool)> = good
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), false))
        .collect();
    entries.push(("zz/last.txt", b"the last entry, to be corrupted", false));
    let mut zip = zip_of(&entries);
    let at = zip.windows(12).position(|w| w == b"the last ent").unwrap();
    zip[at] ^= 0x20; // data no longer matches the CRC
    s.put(&bucket, "in.zip", zip, None).await;
    // An earlier output that the same job writes first must be removed too.
    let creds = s.session_credentials().await;
    let job = job_id();
    let params = r#"{"steps":[{"replace":{"files":["zz/*.txt"],"find":"last","with":"final"}}],"outputs":{"A":{"from":["In"]},"B":{"from":["In"]}}}"#;
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[("A", &bucket, "a.zip"), ("B", &bucket, "b.zip")],
        Some(params),
        &creds,
        None,
    );
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::for_memory(256, 2)).await;
    let handled = worker.handle(ev, far(), None).await.unwrap();
    let (t, msg) = handled.result.unwrap_err();
    assert_eq!(t.as_str(), "JobFailed");
    assert!(
        msg.contains("zz/last.txt") && msg.contains("CRC") && msg.contains("\"In\""),
        "{msg}"
    );
    assert_eq!(failure(&cp, &job).0, "JobFailed");
    assert_eq!(s.keys(&bucket).await, ["in.zip"], "no partial output left");
    assert!(
        s.open_uploads(&bucket).await.is_empty(),
        "no open multipart upload left"
    );
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_gets_its_type_and_names_the_artifact() {
    let s = stack();
    let bucket = unique("fail");
    s.create_bucket(&bucket).await;
    let key = s.create_key().await;
    s.put(
        &bucket,
        "ok.zip",
        zip_of(&[("a.txt", b"a", true)]),
        Some(&key),
    )
    .await;
    s.put(
        &bucket,
        "not-a-zip.zip",
        b"this is a text file, not a zip archive".to_vec(),
        Some(&key),
    )
    .await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let out = [("Out", bucket.as_str(), "out.zip")];

    // Runs one job reading `input`, expecting a failure; returns (type, message).
    let run = |input: &'static str,
               params: Option<&'static str>,
               creds: artifact_core::event::ArtifactCredentials,
               kms: &str,
               out: [(&'static str, &str, &'static str); 1]| {
        let ev = event(
            &job_id(),
            &[("Src", &bucket, input)],
            &out,
            params,
            &creds,
            Some(kms),
        );
        let worker = &worker;
        async move {
            worker
                .handle(ev, far(), None)
                .await
                .unwrap()
                .result
                .unwrap_err()
        }
    };

    // Missing input object -> RevisionUnavailable.
    let (t, m) = run("missing.zip", None, creds.clone(), &key, out).await;
    assert_eq!(t.as_str(), "RevisionUnavailable", "{m}");
    assert!(m.contains("\"Src\"") && m.contains("missing.zip"), "{m}");

    // Bad UserParameters -> ConfigurationError naming the field.
    let bad_params = Some(r#"{"steps":[{"exclude":["[bad"]}]}"#);
    let (t, m) = run("ok.zip", bad_params, creds.clone(), &key, out).await;
    assert_eq!(t.as_str(), "ConfigurationError");
    assert!(m.contains("steps[0].exclude[0]"), "{m}");

    // Not a zip -> JobFailed naming the artifact.
    let (t, m) = run("not-a-zip.zip", None, creds.clone(), &key, out).await;
    assert_eq!(t.as_str(), "JobFailed");
    assert!(m.contains("\"Src\"") && m.contains("not a zip"), "{m}");

    // Unknown KMS key -> ConfigurationError before any data moves.
    let bogus = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let (t, m) = run("ok.zip", None, creds.clone(), bogus, out).await;
    assert_eq!(t.as_str(), "ConfigurationError", "{m}");
    assert!(m.contains(bogus), "{m}");

    // Credentials the server does not know -> PermissionError.
    let mut wrong = creds.clone();
    wrong.access_key_id = "ASIAWRONGWRONGWRONG1".into();
    let (t, m) = run("ok.zip", None, wrong, &key, out).await;
    assert_eq!(t.as_str(), "PermissionError", "{m}");
    assert!(m.contains("\"Src\""), "{m}");

    // A session token that does not match -> PermissionError.
    let mut bad_token = creds.clone();
    bad_token.session_token = Some("not-the-token".into());
    let (t, _) = run("ok.zip", None, bad_token, &key, out).await;
    assert_eq!(t.as_str(), "PermissionError");

    // Expired credentials -> PermissionError without touching S3.
    let mut expired = creds.clone();
    expired.expiration_time = Some(1_000);
    let (t, m) = run("ok.zip", None, expired, &key, out).await;
    assert_eq!(t.as_str(), "PermissionError");
    assert!(m.contains("expired"), "{m}");

    // Output bucket missing -> ConfigurationError naming the output.
    let missing_bucket = [("Out", "no-such-bucket-artifacts", "o.zip")];
    let (t, m) = run("ok.zip", None, creds.clone(), &key, missing_bucket).await;
    assert_eq!(t.as_str(), "ConfigurationError", "{m}");
    assert!(m.contains("output artifact \"Out\""), "{m}");

    // Nothing was written by any of them.
    assert_eq!(s.keys(&bucket).await.len(), 2);
    assert!(s.open_uploads(&bucket).await.is_empty());
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_s3_is_system_unavailable() {
    let s = stack();
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let base = s.base_config().await;
    // Nothing listens on port 9: connection refused on every retry.
    let worker = artifact_core::Worker::new(
        Settings::default(),
        std::sync::Arc::new(artifact_core::clients::S3StoreFactory::new(
            &base,
            Some("http://127.0.0.1:9".into()),
        )),
        None,
        artifact_core::report::Reporter::new(artifact_core::clients::codepipeline_client(
            &base,
            Some(&cp.endpoint_url()),
        )),
    );
    let job = job_id();
    let ev = event(
        &job,
        &[("Src", "b", "k.zip")],
        &[("Out", "b", "o.zip")],
        None,
        &creds,
        None,
    );
    let (t, m) = worker
        .handle(ev, far(), None)
        .await
        .unwrap()
        .result
        .unwrap_err();
    assert_eq!(t.as_str(), "SystemUnavailable", "{m}");
    assert_eq!(failure(&cp, &job).0, "SystemUnavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_delivery_is_harmless() {
    let s = stack();
    let bucket = unique("dup");
    s.create_bucket(&bucket).await;
    s.put(
        &bucket,
        "in.zip",
        zip_of(&[("a.txt", b"alpha", true), ("b.txt", b"beta", false)]),
        None,
    )
    .await;
    let creds = s.session_credentials().await;
    let job = job_id();
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        None,
        &creds,
        None,
    );
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let first = worker.handle(ev.clone(), far(), None).await.unwrap();
    assert_eq!(first.reported, artifact_core::report::Reported::Sent);
    let (body1, _, _) = s.get(&bucket, "out.zip").await.unwrap();
    let second = worker.handle(ev, far(), None).await.unwrap();
    assert_eq!(
        second.reported,
        artifact_core::report::Reported::AlreadyReported
    );
    let (body2, _, _) = s.get(&bucket, "out.zip").await.unwrap();
    assert_eq!(body1, body2, "the same job gives a byte-identical output");
    assert_eq!(cp.results().len(), 1);
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_too_close_is_reported_and_cleaned_up() {
    let s = stack();
    let bucket = unique("late");
    s.create_bucket(&bucket).await;
    s.put(
        &bucket,
        "in.zip",
        zip_of(&[("a.txt", b"alpha", true)]),
        None,
    )
    .await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let job = job_id();
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        None,
        &creds,
        None,
    );
    // 3 s left, 10 s margin: report at once instead of starting.
    let handled = worker
        .handle(ev, Instant::now() + Duration::from_secs(3), None)
        .await
        .unwrap();
    let (t, m) = handled.result.unwrap_err();
    assert_eq!(t.as_str(), "SystemUnavailable");
    assert!(m.contains("deadline"), "{m}");
    assert_eq!(failure(&cp, &job).0, "SystemUnavailable");
    assert_eq!(s.keys(&bucket).await, ["in.zip"]);
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_during_a_large_job_aborts_the_upload() {
    use std::sync::{mpsc, Arc, Mutex};

    use artifact_core::{CustomStep, StepRegistry};
    let s = stack();
    let bucket = unique("slow");
    s.create_bucket(&bucket).await;
    // 12 MiB of raw entries (the multipart upload opens), then one that a custom step
    // holds until the test releases it: the deadline always comes first.
    let blobs: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| (format!("b{i:02}.bin"), noise(1 << 20, i)))
        .chain([("z-last.txt".to_string(), b"held".to_vec())])
        .collect();
    let entries: Vec<(&str, &[u8], bool)> = blobs
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), false))
        .collect();
    s.put(&bucket, "in.zip", zip_of(&entries), None).await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let mut settings = Settings::for_memory(256, 1);
    settings.deadline_margin = Duration::from_millis(500);
    settings.part_size = 5 << 20;
    let (release, held) = mpsc::channel::<()>();
    let held = Arc::new(Mutex::new(held));
    let mut steps = StepRegistry::new();
    steps.register("hold", move |_: &serde_json::Value| {
        let held = held.clone();
        Ok(Arc::new(move |_: &str, data: Vec<u8>| {
            let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(60));
            Ok(data)
        }) as Arc<dyn CustomStep>)
    });
    let worker = s.worker(&cp, settings).await.with_steps(steps);
    let job = job_id();
    let params = r#"{"steps":[{"custom":{"name":"hold","files":["z-last.txt"]}}]}"#;
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        Some(params),
        &creds,
        None,
    );
    let handled = worker
        .handle(ev, Instant::now() + Duration::from_secs(4), None)
        .await
        .unwrap();
    release.send(()).unwrap();
    let (t, m) = handled.result.unwrap_err();
    assert_eq!(t.as_str(), "SystemUnavailable", "{m}");
    assert!(m.contains("deadline"), "{m}");
    assert_eq!(failure(&cp, &job).0, "SystemUnavailable");
    assert!(s.open_uploads(&bucket).await.is_empty(), "upload aborted");
    assert_eq!(s.keys(&bucket).await, ["in.zip"]);
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_single_entry_archives_round_trip() {
    let s = stack();
    let bucket = unique("shapes");
    s.create_bucket(&bucket).await;
    s.put(&bucket, "empty.zip", zip_of(&[]), None).await;
    s.put(
        &bucket,
        "one.zip",
        zip_of(&[("only.txt", b"just one", true)]),
        None,
    )
    .await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    for (input, entries) in [("empty.zip", 0usize), ("one.zip", 1)] {
        let out = format!("out-{input}");
        let ev = event(
            &job_id(),
            &[("In", &bucket, input)],
            &[("Out", &bucket, &out)],
            None,
            &creds,
            None,
        );
        let ok = worker
            .handle(ev, far(), None)
            .await
            .unwrap()
            .result
            .unwrap_or_else(|e| panic!("{input}: {e:?}"));
        assert_eq!(ok.outputs[0].entries, entries as u64);
        let (body, _, _) = s.get(&bucket, &out).await.unwrap();
        if entries == 0 {
            // unzip -t rejects empty archives ("zipfile is empty"); Python and java must accept it.
            assert_eq!(body.len(), 22, "just an end record");
            assert!(read_zip(&body).is_empty());
            assert_eq!(check_with_java(&body), 0);
        } else {
            assert_eq!(check_with_external_readers(&body).len(), 1);
            assert_eq!(read_zip(&body)[0].1, b"just one");
        }
    }
    s.remove_bucket(&bucket).await;
}
