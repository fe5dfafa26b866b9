//! Trustworthy at the edges: every job ends in exactly one report CodePipeline
//! accepts, and no delivery loses an artifact another delivery completed. Against the
//! real local stack (SeaweedFS + moto) and the project's job-API endpoint with
//! injected report faults.

use std::time::{Duration, Instant};

use artifact_core::report::Reported;
use artifact_core::{FailureType, Settings};
use artifact_suite::*;
use codepipeline_local::{Fault, Outcome};

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

/// A bucket with `in.zip` (two small entries) and session credentials for it.
async fn small_job_bucket(prefix: &str) -> (String, artifact_core::event::ArtifactCredentials) {
    let s = stack();
    let bucket = unique(prefix);
    s.create_bucket(&bucket).await;
    let input = zip_of(&[("a.txt", b"alpha", true), ("b.txt", b"beta", false)]);
    s.put(&bucket, "in.zip", input, None).await;
    (bucket, s.session_credentials().await)
}

/// The event of a job reading `in.zip` and writing `out.zip` in `bucket`.
fn copy_event(
    job: &str,
    bucket: &str,
    creds: &artifact_core::event::ArtifactCredentials,
    params: Option<&str>,
) -> serde_json::Value {
    event(
        job,
        &[("In", bucket, "in.zip")],
        &[("Out", bucket, "out.zip")],
        params,
        creds,
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_message_is_cut_by_utf16_units_and_accepted() {
    let s = stack();
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    // A job whose failure message is long and made of astral characters (two UTF-16
    // units each): cut by characters it would be twice the API's limit.
    let (bucket, creds) = small_job_bucket("utf16").await;
    let job = job_id();
    // An unknown step named with 3,000 astral characters: the plan error quotes it.
    let params = format!(r#"{{"steps": [{{"{}": 1}}]}}"#, "𝄞".repeat(3000));
    let ev = copy_event(&job, &bucket, &creds, Some(&params));
    let handled = worker.handle(ev, far(), None).await.expect("reported");
    assert_eq!(handled.reported, Reported::Sent);
    let result = cp.result_for(&job).expect("a failure was recorded");
    let Outcome::Failure { message, .. } = result.outcome else {
        panic!("expected a failure, got {:?}", result.outcome);
    };
    let units = message.encode_utf16().count();
    assert!(units <= 5000 && units > 4000, "{units} UTF-16 units");
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_success_report_becomes_a_failure_report() {
    let s = stack();
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let (bucket, creds) = small_job_bucket("reject").await;
    let job = job_id();
    let ev = copy_event(&job, &bucket, &creds, None);
    // CodePipeline refuses the success for good (the action's variables overflow).
    cp.fail_next(
        1,
        Fault::new(
            400,
            "OutputVariablesSizeExceededException",
            "Exceeded the total size limit for all variables in the pipeline",
        ),
    );
    let handled = worker.handle(ev, far(), None).await.expect("reported");
    let (kind, message) = handled.result.expect_err("reported as a failure");
    assert_eq!(kind, FailureType::JobFailed);
    assert!(message.contains("rejected its success report"), "{message}");
    assert!(message.contains("OutputVariablesSizeExceeded"), "{message}");
    assert_eq!(handled.reported, Reported::Sent);
    assert!(cp.result_for(&job).unwrap().is_failure());
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_not_found_is_final() {
    let s = stack();
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let (bucket, creds) = small_job_bucket("notfound").await;
    let job = job_id();
    let ev = copy_event(&job, &bucket, &creds, None);
    cp.fail_next(1, Fault::new(400, "JobNotFoundException", "No job"));
    let handled = worker
        .handle(ev, far(), None)
        .await
        .expect("no retry storm");
    assert_eq!(handled.reported, Reported::JobNotFound);
    assert_eq!(cp.calls().len(), 1, "one call, no retries");
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_reports_are_retried_until_taken() {
    let s = stack();
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let (bucket, creds) = small_job_bucket("throttle").await;
    let job = job_id();
    let ev = copy_event(&job, &bucket, &creds, None);
    // More throttles than the SDK's own three attempts absorb.
    cp.fail_next(7, Fault::throttling());
    let handled = worker.handle(ev, far(), None).await.expect("reported");
    assert_eq!(handled.reported, Reported::Sent);
    assert!(cp.result_for(&job).unwrap().is_success());
    assert_eq!(cp.calls().len(), 8);
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_that_overwrite_inputs_or_each_other_are_refused() {
    let s = stack();
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let (bucket, creds) = small_job_bucket("overlap").await;
    let original = s.get(&bucket, "in.zip").await.unwrap().0;
    let cases: [&[Art]; 2] = [
        &[("Out", &bucket, "in.zip")],
        &[("A", &bucket, "same.zip"), ("B", &bucket, "same.zip")],
    ];
    for outputs in cases {
        let job = job_id();
        let ev = event(
            &job,
            &[("In", &bucket, "in.zip")],
            outputs,
            None,
            &creds,
            None,
        );
        let handled = worker.handle(ev, far(), None).await.expect("reported");
        let (kind, message) = handled.result.expect_err("refused");
        assert_eq!(kind, FailureType::ConfigurationError, "{message}");
        assert!(message.contains("overwrite"), "{message}");
    }
    assert_eq!(s.keys(&bucket).await, ["in.zip"], "no data moved");
    assert_eq!(s.get(&bucket, "in.zip").await.unwrap().0, original);
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_that_fails_late_keeps_what_the_first_completed() {
    let s = stack();
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let (bucket, creds) = small_job_bucket("redeliver").await;
    let other = unique("redeliver-b");
    s.create_bucket(&other).await;
    let job = job_id();
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[
            ("First", &bucket, "first.zip"),
            ("Second", &other, "second.zip"),
        ],
        Some(r#"{"outputs":{"First":{"from":["In"]},"Second":{"from":["In"]}}}"#),
        &creds,
        None,
    );
    let first = worker.handle(ev.clone(), far(), None).await.unwrap();
    assert!(first.result.is_ok(), "{:?}", first.result);
    let completed = s.get(&bucket, "first.zip").await.unwrap().0;
    // The second output's bucket goes away; the redelivery writes `First` again, then
    // fails on `Second`. It must not delete the object the first delivery completed.
    s.remove_bucket(&other).await;
    let again = worker.handle(ev, far(), None).await.unwrap();
    assert!(again.result.is_err(), "{:?}", again.result);
    assert_eq!(again.reported, Reported::AlreadyReported);
    let kept = s.get(&bucket, "first.zip").await.expect("still there").0;
    assert_eq!(kept, completed);
    assert!(s.open_uploads(&bucket).await.is_empty());
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_custom_step_is_reported_and_leaves_nothing() {
    use std::sync::Arc;

    use artifact_core::{CustomStep, StepRegistry};
    let s = stack();
    let cp = codepipeline();
    let mut steps = StepRegistry::new();
    steps.register("explode", |_: &serde_json::Value| {
        Ok(Arc::new(|_: &str, _: Vec<u8>| -> Result<Vec<u8>, String> {
            panic!("the custom step exploded")
        }) as Arc<dyn CustomStep>)
    });
    let worker = s.worker(&cp, Settings::default()).await.with_steps(steps);
    let (bucket, creds) = small_job_bucket("panic").await;
    let job = job_id();
    let params = r#"{"steps": [{"custom": {"name": "explode", "files": ["a.txt"]}}]}"#;
    let ev = copy_event(&job, &bucket, &creds, Some(params));
    let handled = worker.handle(ev, far(), None).await.expect("reported");
    let (kind, message) = handled.result.expect_err("a failure");
    assert_eq!(kind, FailureType::JobFailed);
    assert!(message.contains("the custom step exploded"), "{message}");
    assert!(cp.result_for(&job).unwrap().is_failure());
    assert_eq!(s.keys(&bucket).await, ["in.zip"]);
    assert!(s.open_uploads(&bucket).await.is_empty());
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_job_api_makes_the_handler_fail_for_a_redelivery() {
    use artifact_core::clients::{codepipeline_client, S3StoreFactory};
    use artifact_core::report::{ReportErrorKind, Reporter};
    use artifact_core::{HandleError, Worker};
    use std::sync::Arc;
    let s = stack();
    let base = s.base_config().await;
    let settings = Settings {
        deadline_margin: Duration::from_secs(1),
        ..Settings::default()
    };
    // Nothing listens on port 9: every report attempt fails until the deadline.
    let worker = Worker::new(
        settings,
        Arc::new(S3StoreFactory::new(&base, Some(s.s3_endpoint.clone()))),
        None,
        Reporter::new(codepipeline_client(&base, Some("http://127.0.0.1:9"))),
    );
    let (bucket, creds) = small_job_bucket("noapi").await;
    let ev = event(
        &job_id(),
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        None,
        &creds,
        None,
    );
    let err = worker
        .handle(ev, Instant::now() + Duration::from_secs(6), None)
        .await
        .expect_err("the report could not be sent");
    let HandleError::Report(e) = err else {
        panic!("expected a report error, got {err}");
    };
    assert_eq!(e.kind, ReportErrorKind::Unavailable);
    assert!(e.message.contains("attempt"), "{}", e.message);
    s.remove_bucket(&bucket).await;
}
