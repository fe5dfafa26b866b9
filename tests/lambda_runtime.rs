//! The `bootstrap` binary under a real Lambda Runtime API emulator (`cargo lambda
//! watch`), against SeaweedFS + moto and a local CodePipeline endpoint: the code
//! path Lambda runs (runtime context, deadline, logging, clients reused across
//! invocations, errors returned to the runtime).

use artifact_suite::lambda::{Emulator, Function};
use artifact_suite::*;
use codepipeline_local::Fault;
use serde_json::{json, Value};

struct Setup {
    bucket: String,
    key: String,
    creds: artifact_core::event::ArtifactCredentials,
}

fn setup(rt: &tokio::runtime::Runtime) -> Setup {
    let s = stack();
    rt.block_on(async {
        let bucket = unique("lambda");
        s.create_bucket(&bucket).await;
        let key = s.create_key().await;
        let input = zip_of(&[
            ("app/config.json", br#"{"version":"${VERSION}"}"#, true),
            ("app/main.js.map", b"{}", true),
            ("app/main.js", b"console.log(1)", true),
        ]);
        s.put(&bucket, "in/Source.zip", input, Some(&key)).await;
        let creds = s.session_credentials().await;
        Setup { bucket, key, creds }
    })
}

const PARAMS: &str = r#"{"variables":{"VERSION":"4.2"},"steps":[{"exclude":["**/*.map"]},{"template":{"files":["**/*.json"]}}]}"#;

fn job_event(s: &Setup, job: &str, out_key: &str) -> Value {
    event(
        job,
        &[("Source", &s.bucket, "in/Source.zip")],
        &[("Built", &s.bucket, out_key)],
        Some(PARAMS),
        &s.creds,
        Some(&s.key),
    )
}

/// Worker environment: the local servers, and ambient credentials no server knows
/// (artifact calls must use the event's).
fn worker_env<'a>(cp_endpoint: &'a str, stack: &'a Stack) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ARTIFACT_WORKER_S3_ENDPOINT", stack.s3_endpoint.as_str()),
        ("ARTIFACT_WORKER_KMS_ENDPOINT", stack.kms_endpoint.as_str()),
        ("ARTIFACT_WORKER_CODEPIPELINE_ENDPOINT", cp_endpoint),
        ("AWS_ACCESS_KEY_ID", AMBIENT_UNKNOWN_KEY),
        (
            "AWS_SECRET_ACCESS_KEY",
            "ambient-secret-that-no-server-knows-000",
        ),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON line: {l}")))
        .collect()
}

#[test]
fn bootstrap_runs_jobs_under_the_runtime_api_emulator() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = setup(&rt);
    let cp = {
        let _in_runtime = rt.enter();
        codepipeline()
    };
    let cp_url = cp.endpoint_url();
    let emulator = Emulator::start();
    let mut env = worker_env(&cp_url, stack());
    // The emulator's deadline (a relative 600000) is implausible: this is used.
    env.push(("ARTIFACT_WORKER_TIMEOUT_S", "8"));
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON"));
    let mut function = Function::start(&bootstrap_binary(), &emulator, &env);

    // Two jobs on one process.
    let jobs = [job_id(), job_id()];
    for (i, job) in jobs.iter().enumerate() {
        let out_key = format!("out/Built-{i}.zip");
        let (status, body) = emulator.invoke(&job_event(&s, job, &out_key));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["jobId"], job.as_str(), "{body}");
        let result = cp.result_for(job).expect("a report");
        assert_eq!(body["succeeded"], true, "{body} {result:?}");
        assert!(result.is_success(), "{result:?}");
        let (zip, sse, kms) = rt.block_on(stack().get(&s.bucket, &out_key)).unwrap();
        assert_eq!(
            (sse.as_deref(), kms.as_deref()),
            (Some("aws:kms"), Some(s.key.as_str()))
        );
        let entries = read_zip(&zip);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["app/config.json", "app/main.js"]);
        assert_eq!(entries[0].1, br#"{"version":"4.2"}"#);
    }

    // An event with a job id but missing fields: a failure report, Ok to the runtime.
    let broken = job_id();
    let (status, body) = emulator.invoke(&json!({"CodePipeline.job": {"id": broken}}));
    assert_eq!((status, &body["succeeded"]), (200, &json!(false)), "{body}");
    let result = cp.result_for(&broken).expect("a failure report");
    assert!(result.is_failure(), "{result:?}");

    // An event without a job id: nothing can be reported, an error to the runtime.
    let (status, body) = emulator.invoke(&json!({"hello": "world"}));
    let error = body.to_string();
    assert!(
        status >= 400 || body.get("errorType").is_some(),
        "{status} {body}"
    );
    assert!(error.contains("no CodePipeline.job.id"), "{error}");

    // A report that cannot be sent: an error, so that Lambda retries.
    let unreported = job_id();
    cp.fail_next(100_000, Fault::internal_failure());
    let (status, body) = emulator.invoke(&job_event(&s, &unreported, "out/Never.zip"));
    assert!(
        status >= 400 || body.get("errorType").is_some(),
        "{status} {body}"
    );
    assert!(body.to_string().contains(&unreported), "{body}");

    assert!(function.running(), "one process served every invocation");
    assert!(function.wait_for_line(|l| l.contains("returning an error to the runtime")));
    let logs = json_lines(&function.lines());
    let message = |v: &Value| v["message"].as_str().unwrap_or("").to_string();
    let starts = logs.iter().filter(|v| message(v) == "worker starting");
    assert_eq!(starts.count(), 1, "clients built once per process");
    let warnings: Vec<&Value> = logs
        .iter()
        .filter(|v| v["level"] == "WARN" && message(v).contains("deadline"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(message(warnings[0]).contains("not epoch milliseconds"));
    assert_eq!(warnings[0]["deadline_ms"], 600000);
    for job in &jobs {
        let finished = logs
            .iter()
            .find(|v| message(v) == "job finished" && v["job_id"] == job.as_str())
            .unwrap_or_else(|| panic!("no `job finished` line for {job}"));
        assert_eq!(finished["outcome"], "succeeded");
        assert_eq!(finished["entries"], 2);
        assert_eq!(finished["span"]["job_id"], job.as_str());
        for field in [
            "bytes_in",
            "bytes_out",
            "peak_rss_mb",
            "wall_ms",
            "report_ms",
        ] {
            assert!(finished[field].as_u64().is_some(), "{field}: {finished}");
        }
        assert!(finished["bytes_in"].as_u64().unwrap() > 0);
        let summary = cp.result_for(job).unwrap();
        let text = format!("{summary:?}");
        assert!(
            text.contains("MB/s") && text.contains("transform"),
            "{text}"
        );
    }
    let job_lines = logs
        .iter()
        .filter(|v| v["span"]["job_id"] == jobs[1].as_str())
        .count();
    assert!(job_lines >= 2, "every line of an invocation names its job");
    rt.block_on(stack().remove_bucket(&s.bucket));
}

#[test]
fn text_logs_at_the_lambda_log_level_and_the_configured_timeout() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = setup(&rt);
    let cp = {
        let _in_runtime = rt.enter();
        codepipeline()
    };
    let cp_url = cp.endpoint_url();
    let emulator = Emulator::start();
    let mut env = worker_env(&cp_url, stack());
    // Less than the default 3 s deadline margin: the job cannot start.
    env.push(("ARTIFACT_WORKER_TIMEOUT_S", "2"));
    env.push(("AWS_LAMBDA_LOG_FORMAT", "Text"));
    env.push(("AWS_LAMBDA_LOG_LEVEL", "WARN"));
    let function = Function::start(&bootstrap_binary(), &emulator, &env);
    let job = job_id();
    let (status, body) = emulator.invoke(&job_event(&s, &job, "out/Late.zip"));
    assert_eq!((status, &body["succeeded"]), (200, &json!(false)), "{body}");
    let result = format!("{:?}", cp.result_for(&job).expect("a failure report"));
    assert!(
        result.contains("SystemUnavailable") && result.contains("the Lambda deadline left"),
        "{result}"
    );
    assert!(function.wait_for_line(|l| l.contains("job failed")));
    let lines = function.lines();
    assert!(lines
        .iter()
        .all(|l| serde_json::from_str::<Value>(l).is_err()));
    assert!(lines.iter().all(|l| !l.contains(" INFO ")), "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l.contains("WARN") && l.contains("600000")));
    rt.block_on(stack().remove_bucket(&s.bucket));
}
