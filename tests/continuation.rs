//! Long jobs across invocations, against the real local stack (SeaweedFS + moto,
//! session credentials in every event, reports to codepipeline-local): a job that
//! cannot finish before its deadline checkpoints and continues in new jobs with the
//! continuation token, ending byte-identical to an uninterrupted run; tampered,
//! foreign, stale or duplicate continuations end in typed failures (or an
//! already-reported no-op) that leave no open upload and no state object.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_core::{CustomStep, Handled, Settings, StepRegistry, Worker};
use artifact_suite::*;
use codepipeline_local::{LocalCodePipeline, Outcome};
use serde_json::Value;

const MIB: usize = 1 << 20;

/// A checkpointing job made deterministic: 8 MiB of raw blobs (so a multipart
/// upload is open), then 200 small JSON files that a custom step slows to 25 ms
/// each on one thread, so 5 s of work meets a 2.5 s deadline.
struct Fixture {
    bucket: String,
    creds: artifact_core::event::ArtifactCredentials,
    cp: LocalCodePipeline,
    worker: Worker,
    params: &'static str,
}

const PARAMS: &str = r#"{"variables":{"V":"1.0"},"steps":[{"template":{"files":["*.json"]}},{"custom":{"name":"slow","files":["*.json"]}},{"manifest":{"path":"MANIFEST.json"}}]}"#;

fn input_zip(seed: u64) -> Vec<u8> {
    let blobs: Vec<(String, Vec<u8>)> = (0..8)
        .map(|i| (format!("bin/{i}.bin"), noise(MIB, seed + i)))
        .collect();
    let texts: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| {
            let body = format!("{{\"n\": {i}, \"v\": \"${{V}}\", \"seed\": {seed}}}\n");
            (format!("cfg/{i:03}.json"), body.into_bytes())
        })
        .collect();
    let entries: Vec<(&str, &[u8], bool)> = blobs
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), false))
        .chain(texts.iter().map(|(n, d)| (n.as_str(), d.as_slice(), true)))
        .collect();
    zip_of(&entries)
}

impl Fixture {
    async fn new(name: &str) -> Fixture {
        Fixture::with_params(name, PARAMS).await
    }

    async fn with_params(name: &str, params: &'static str) -> Fixture {
        let s = stack();
        let bucket = unique(name);
        s.create_bucket(&bucket).await;
        s.put(&bucket, "in.zip", input_zip(1), None).await;
        let creds = s.session_credentials().await;
        let cp = codepipeline();
        let mut settings = Settings::for_memory(256, 1);
        settings.deadline_margin = Duration::from_millis(300);
        settings.part_size = 5 << 20;
        let mut steps = StepRegistry::new();
        steps.register("slow", |_: &Value| {
            Ok(Arc::new(|_: &str, data: Vec<u8>| {
                std::thread::sleep(Duration::from_millis(25));
                Ok(data)
            }) as Arc<dyn CustomStep>)
        });
        let worker = s.worker(&cp, settings).await.with_steps(steps);
        Fixture {
            bucket,
            creds,
            cp,
            worker,
            params,
        }
    }

    fn event(&self, job: &str, out_key: &str, token: Option<&str>) -> Value {
        let mut ev = event(
            job,
            &[("In", &self.bucket, "in.zip")],
            &[("Out", &self.bucket, out_key)],
            Some(self.params),
            &self.creds,
            None,
        );
        if let Some(t) = token {
            ev["CodePipeline.job"]["data"]["continuationToken"] = t.into();
        }
        ev
    }

    async fn handle(&self, ev: Value, within: Duration) -> Handled {
        self.worker
            .handle(ev, Instant::now() + within, None)
            .await
            .unwrap()
    }

    /// The first invocation of `out_key`'s job: it must checkpoint. Returns the token.
    async fn first_checkpoint(&self, out_key: &str) -> String {
        let job = job_id();
        let h = self
            .handle(self.event(&job, out_key, None), Duration::from_millis(2500))
            .await;
        let ok = h
            .result
            .unwrap_or_else(|e| panic!("first invocation failed: {e:?}"));
        let c = ok.continuation.expect("the job checkpoints");
        assert!(ok.output_variables.is_empty());
        let recorded = self.cp.result_for(&job).expect("reported");
        match recorded.outcome {
            Outcome::Success {
                continuation_token,
                output_variables,
                execution_details,
                ..
            } => {
                assert_eq!(continuation_token.as_deref(), Some(c.token.as_str()));
                assert!(output_variables.is_empty());
                let pct = execution_details.unwrap().percent_complete.unwrap();
                assert!((1..100).contains(&pct), "{pct}");
            }
            other => panic!("{other:?}"),
        }
        c.token
    }

    async fn failure_of(&self, h: &Handled) -> (String, String) {
        let (t, m) = h.result.as_ref().expect_err("the continuation fails");
        (t.as_str().to_string(), m.clone())
    }

    /// No open upload, and only these keys left in the bucket.
    async fn assert_clean(&self, keys: &[&str]) {
        let s = stack();
        assert!(
            s.open_uploads(&self.bucket).await.is_empty(),
            "open uploads"
        );
        let mut got = s.keys(&self.bucket).await;
        got.sort();
        assert_eq!(got, keys);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_foreign_tokens_are_refused_and_leave_nothing() {
    let f = Fixture::new("ctamper").await;
    let token = f.first_checkpoint("out.zip").await;
    // Not a token at all.
    let h = f
        .handle(
            f.event(&job_id(), "out.zip", Some("aw1.bm90LWEtdG9rZW4")),
            Duration::from_secs(60),
        )
        .await;
    let (t, m) = f.failure_of(&h).await;
    assert_eq!(t, "ConfigurationError", "{m}");
    assert!(m.contains("continuation token is not valid"), "{m}");
    // A token for another action's artifacts (same bucket, other output).
    let other = f.first_checkpoint("other.zip").await;
    let h = f
        .handle(
            f.event(&job_id(), "out.zip", Some(&other)),
            Duration::from_secs(60),
        )
        .await;
    let (t, m) = f.failure_of(&h).await;
    assert_eq!(t, "ConfigurationError", "{m}");
    assert!(m.contains("belongs to other artifacts"), "{m}");
    // The foreign token touched nothing of the other action: it still finishes.
    let h = f
        .handle(
            f.event(&job_id(), "other.zip", Some(&other)),
            Duration::from_secs(120),
        )
        .await;
    let ok = h.result.expect("the other action goes on");
    assert!(ok.continuation.is_none());
    assert_eq!(ok.invocations, 2);
    // A token whose digest was altered: the state object no longer matches it.
    let mut decoded = artifact_core::continuation::Token::decode(&token).unwrap();
    decoded.digest = "0".repeat(64);
    let h = f
        .handle(
            f.event(&job_id(), "out.zip", Some(&decoded.encode())),
            Duration::from_secs(60),
        )
        .await;
    let (t, m) = f.failure_of(&h).await;
    assert_eq!(t, "ConfigurationError", "{m}");
    assert!(m.contains("was altered"), "{m}");
    // The failed action's upload is aborted and its state object deleted.
    let s = stack();
    let keys = s.keys(&f.bucket).await;
    assert!(
        !keys.iter().any(|k| k.starts_with("out.zip")),
        "nothing left of the failed action: {keys:?}"
    );
    let uploads = s.open_uploads(&f.bucket).await;
    assert!(
        uploads.iter().all(|k| k.starts_with("other.zip")),
        "{uploads:?}"
    );
    s.remove_bucket(&f.bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_state_object_fails_and_aborts_the_upload() {
    let f = Fixture::new("cdeleted").await;
    let token = f.first_checkpoint("out.zip").await;
    let s = stack();
    let state: Vec<String> = s
        .keys(&f.bucket)
        .await
        .into_iter()
        .filter(|k| k.contains(".checkpoint-"))
        .collect();
    assert_eq!(state.len(), 1, "one state object beside the output");
    assert_eq!(
        s.open_uploads(&f.bucket).await.len(),
        1,
        "the upload stays open"
    );
    s.admin_s3()
        .delete_object()
        .bucket(&f.bucket)
        .key(&state[0])
        .send()
        .await
        .unwrap();
    let h = f
        .handle(
            f.event(&job_id(), "out.zip", Some(&token)),
            Duration::from_secs(60),
        )
        .await;
    let (t, m) = f.failure_of(&h).await;
    assert_eq!(t, "ConfigurationError", "{m}");
    assert!(m.contains("is missing"), "{m}");
    f.assert_clean(&["in.zip"]).await;
    s.remove_bucket(&f.bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_changed_between_invocations_are_revision_out_of_sync() {
    let f = Fixture::new("cchanged").await;
    let token = f.first_checkpoint("out.zip").await;
    let s = stack();
    s.put(&f.bucket, "in.zip", input_zip(2), None).await;
    let h = f
        .handle(
            f.event(&job_id(), "out.zip", Some(&token)),
            Duration::from_secs(60),
        )
        .await;
    let (t, m) = f.failure_of(&h).await;
    assert_eq!(t, "RevisionOutOfSync", "{m}");
    assert!(m.contains("changed between invocations"), "{m}");
    f.assert_clean(&["in.zip"]).await;
    s.remove_bucket(&f.bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_continuation_delivery_does_not_damage_the_result() {
    let f = Fixture::new("cdup").await;
    let s = stack();
    // The uninterrupted result, for comparison.
    let whole = f
        .handle(
            f.event(&job_id(), "whole.zip", None),
            Duration::from_secs(120),
        )
        .await
        .result
        .expect("an uninterrupted run");
    assert!(whole.continuation.is_none());
    let token = f.first_checkpoint("out.zip").await;
    let second = job_id();
    let ev = f.event(&second, "out.zip", Some(&token));
    let done = f.handle(ev.clone(), Duration::from_secs(120)).await;
    let ok = done.result.expect("the continuation finishes");
    assert!(ok.continuation.is_none());
    assert_eq!(ok.invocations, 2);
    // The same event again (Lambda may deliver twice): the state is gone, the
    // failure report finds the job already reported, and nothing is touched.
    let dup = f.handle(ev, Duration::from_secs(60)).await;
    assert_eq!(
        dup.reported,
        artifact_core::report::Reported::AlreadyReported
    );
    let (t, m) = f.failure_of(&dup).await;
    assert_eq!(t, "ConfigurationError", "{m}");
    let (out, _, _) = s.get(&f.bucket, "out.zip").await.unwrap();
    let (want, _, _) = s.get(&f.bucket, "whole.zip").await.unwrap();
    assert!(out == want, "byte-identical to the uninterrupted run");
    let vars = |v: &std::collections::BTreeMap<String, String>| {
        v.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(vars(&ok.output_variables), vars(&whole.output_variables));
    assert!(f.cp.result_for(&second).unwrap().is_success());
    f.assert_clean(&["in.zip", "out.zip", "whole.zip"]).await;
    check_with_external_readers(&out);
    s.remove_bucket(&f.bucket).await;
}

/// [`PARAMS`] writing a tar.gz at gzip level 1 (the 8 MiB of noise costs CPU to
/// deflate).
const TAR_PARAMS: &str = r#"{"variables":{"V":"1.0"},"outputs":{"Out":{"from":["In"],"format":"tar.gz","gzip_level":1,"steps":[{"template":{"files":["*.json"]}},{"custom":{"name":"slow","files":["*.json"]}},{"manifest":{"path":"MANIFEST.json"}}]}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tar_gz_output_continues_across_invocations() {
    use std::io::Read;
    let f = Fixture::with_params("ctar", TAR_PARAMS).await;
    let s = stack();
    let whole = f
        .handle(
            f.event(&job_id(), "whole.tgz", None),
            Duration::from_secs(120),
        )
        .await
        .result
        .expect("an uninterrupted run");
    assert!(whole.continuation.is_none());
    // Each invocation gets 4 s of the 5 s of work: what is checked here is that
    // the gzip stream goes on across checkpoints (the tight deadlines are the zip
    // tests'; on CI two runs of this test missed the 2.5 s they use, which did not
    // reproduce on this machine, under load or not).
    let within = Duration::from_millis(4000);
    let first = f
        .handle(f.event(&job_id(), "out.tgz", None), within)
        .await
        .result
        .unwrap_or_else(|e| panic!("first invocation failed: {e:?}"));
    let mut token = first.continuation.expect("the job checkpoints").token;
    let mut invocations = 1;
    loop {
        let ev = f.event(&job_id(), "out.tgz", Some(&token));
        let ok = f
            .handle(ev, within)
            .await
            .result
            .expect("each continuation succeeds");
        invocations += 1;
        match ok.continuation {
            Some(c) => token = c.token,
            None => break,
        }
        assert!(invocations < 20, "the job makes progress");
    }
    let gunzip = |b: &[u8]| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let (out, _, _) = s.get(&f.bucket, "out.tgz").await.unwrap();
    let (want, _, _) = s.get(&f.bucket, "whole.tgz").await.unwrap();
    // One gzip member whose tar is the uninterrupted run's, byte for byte (the
    // compressed bytes differ where the stream was flushed for a checkpoint).
    assert!(
        gunzip(&out) == gunzip(&want),
        "same tar as the uninterrupted run"
    );
    let records = tar::Archive::new(flate2::read::GzDecoder::new(&out[..]))
        .entries()
        .unwrap()
        .count();
    assert_eq!(records, 8 + 200 + 1);
    f.assert_clean(&["in.zip", "out.tgz", "whole.tgz"]).await;
    s.remove_bucket(&f.bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_too_near_to_checkpoint_is_a_failure_naming_the_budget() {
    let f = Fixture::new("cnear").await;
    let job = job_id();
    let h = f
        .handle(f.event(&job, "out.zip", None), Duration::from_millis(600))
        .await;
    let (t, m) = f.failure_of(&h).await;
    assert_eq!(t, "SystemUnavailable", "{m}");
    assert!(
        m.contains("too little to make progress and save a checkpoint"),
        "{m}"
    );
    assert!(f.cp.result_for(&job).unwrap().is_failure());
    f.assert_clean(&["in.zip"]).await;
    stack().remove_bucket(&f.bucket).await;
}

/// Runs the runner binary on `ev` against the stack with `args`; the `--json` report.
fn runner(ev: &Value, args: &[&str], margin_ms: &str) -> Value {
    let s = stack();
    let path = std::env::temp_dir().join(format!("{}.json", unique("event")));
    std::fs::write(&path, serde_json::to_vec(ev).unwrap()).unwrap();
    let out = Command::new(runner_binary())
        .arg("run")
        .arg(&path)
        .args(["--json", "--s3-endpoint", &s.s3_endpoint])
        .args(["--kms-endpoint", &s.kms_endpoint])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", AMBIENT_UNKNOWN_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "nope")
        .env("ARTIFACT_WORKER_DEADLINE_MARGIN_MS", margin_ms)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

/// ~600 MB, 20,000 entries: a quarter templated JSON, the rest binary (half stored).
fn big_input() -> Vec<u8> {
    use std::io::{Cursor, Write};
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod::{Deflated, Stored};
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(620 * MIB)));
    let blob = noise(64 * MIB, 7);
    for i in 0..20_000usize {
        let (name, data, method) = if i % 4 == 0 {
            let text = format!(
                "{{\"image\": \"app:${{VERSION}}\", \"i\": {i}, \"pad\": \"{}\"}}\n",
                "x".repeat(2_000 + i % 3_000)
            );
            (format!("cfg/{i:05}.json"), text.into_bytes(), Deflated)
        } else {
            let len = 30_000 + (i * 7_919) % 20_000;
            let at = (i * 104_729) % (blob.len() - len);
            let method = if i % 2 == 0 { Stored } else { Deflated };
            (
                format!("bin/{i:05}.bin"),
                blob[at..at + len].to_vec(),
                method,
            )
        };
        w.start_file(
            name,
            SimpleFileOptions::default().compression_method(method),
        )
        .unwrap();
        w.write_all(&data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn a_600_mb_job_continues_across_invocations_byte_identical() {
    let s = stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = unique("clong");
    let input = big_input();
    let (creds, key) = rt.block_on(async {
        s.create_bucket(&bucket).await;
        let key = s.create_key().await;
        s.put(&bucket, "in.zip", input, Some(&key)).await;
        (s.session_credentials().await, key)
    });
    let params = r#"{"variables":{"VERSION":"2.0"},"steps":[{"exclude":["bin/*3.bin"]},{"template":{"files":["*.json"]}},{"manifest":{"path":"MANIFEST.json"}}]}"#;
    let ev = |out: &str| {
        event(
            &job_id(),
            &[("In", &bucket, "in.zip")],
            &[("Out", &bucket, out)],
            Some(params),
            &creds,
            Some(&key),
        )
    };
    let whole = runner(&ev("whole.zip"), &[], "3000");
    assert_eq!(whole["status"], "Succeeded", "{whole}");
    assert_eq!(whole["invocations"].as_array().unwrap().len(), 1);
    let wall = whole["elapsedSeconds"].as_f64().unwrap();
    // Each invocation gets about a quarter of the work, plus its fixed costs.
    let timeout = format!("{:.1}", (wall / 4.0 + 1.5).max(3.0));
    let long = runner(&ev("out.zip"), &["--timeout", &timeout], "500");
    assert_eq!(long["status"], "Succeeded", "{long}");
    let invocations = long["invocations"].as_array().unwrap();
    assert!(invocations.len() >= 3, "{invocations:?}");
    let mut ids: Vec<&str> = invocations
        .iter()
        .map(|i| i["jobId"].as_str().unwrap())
        .collect();
    let mut last_pct = 0;
    for inv in &invocations[..invocations.len() - 1] {
        assert_eq!(inv["outcome"], "Continued", "{inv}");
        assert!(inv["continuationToken"].as_str().unwrap().len() <= 2048);
        let pct = inv["percentComplete"].as_i64().unwrap();
        assert!(pct >= last_pct && pct < 100, "{pct}");
        last_pct = pct;
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), invocations.len(), "a new job id per invocation");
    let (out, _, _) = rt.block_on(s.get(&bucket, "out.zip")).unwrap();
    let (want, _, _) = rt.block_on(s.get(&bucket, "whole.zip")).unwrap();
    assert!(out == want, "byte-identical to the uninterrupted run");
    assert_eq!(long["outputVariables"], whole["outputVariables"]);
    assert!(whole["outputVariables"]["Out_sha256"].is_string());
    rt.block_on(async {
        assert!(s.open_uploads(&bucket).await.is_empty(), "open uploads");
        let mut keys = s.keys(&bucket).await;
        keys.sort();
        assert_eq!(
            keys,
            ["in.zip", "out.zip", "whole.zip"],
            "no state object left"
        );
    });
    eprintln!(
        "600 MB job: uninterrupted {wall:.1} s; with --timeout {timeout}: {} invocations, {:.1} s ({:?})",
        invocations.len(),
        long["elapsedSeconds"].as_f64().unwrap(),
        invocations
            .iter()
            .map(|i| (i["percentComplete"].clone(), i["seconds"].as_f64().unwrap()))
            .collect::<Vec<_>>()
    );
    rt.block_on(s.remove_bucket(&bucket));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_continuation_report_fails_the_job_and_leaves_nothing() {
    let f = Fixture::new("crejected").await;
    f.cp.fail_next(
        1,
        codepipeline_local::Fault::new(400, "ValidationException", "refused for the test"),
    );
    let job = job_id();
    let h = f
        .handle(f.event(&job, "out.zip", None), Duration::from_millis(2500))
        .await;
    let (t, m) = f.failure_of(&h).await;
    assert_eq!(t, "JobFailed", "{m}");
    assert!(m.contains("rejected its success report"), "{m}");
    assert!(f.cp.result_for(&job).unwrap().is_failure());
    // The checkpoint will never be continued: its upload and state are removed.
    f.assert_clean(&["in.zip"]).await;
    stack().remove_bucket(&f.bucket).await;
}
