//! The AWS Lambda function (also a library, so a custom binary can add its own
//! transform steps: see `examples/custom_step.rs`): clients and the worker are built once per process; each
//! invocation handles one `CodePipeline.job` event and reports it. The handler
//! returns an error only when the report itself could not be sent, so that Lambda
//! retries the invocation; any job failure is reported and returns `Ok`.
//!
//! Environment: see `artifact_core::config` (memory, threads, KMS check, deadline
//! margin) plus optional `ARTIFACT_WORKER_S3_ENDPOINT`, `ARTIFACT_WORKER_KMS_ENDPOINT`,
//! `ARTIFACT_WORKER_CODEPIPELINE_ENDPOINT` for testing against local servers, and
//! `ARTIFACT_WORKER_TIMEOUT_S` (default 900): the time assumed left when the runtime
//! gives no usable deadline (see [`time_left`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use artifact_core::clients::{codepipeline_client, kms_client, Endpoints, S3StoreFactory};
use artifact_core::kms::KeyChecker;
use artifact_core::report::Reporter;
use artifact_core::{Settings, StepRegistry, Worker};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// Runs the Lambda function with the built-in steps plus the custom `steps`.
pub async fn run(steps: StepRegistry) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();

    let base = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let endpoints = Endpoints {
        s3: env("ARTIFACT_WORKER_S3_ENDPOINT"),
        kms: env("ARTIFACT_WORKER_KMS_ENDPOINT"),
        codepipeline: env("ARTIFACT_WORKER_CODEPIPELINE_ENDPOINT"),
    };
    let settings = Settings::from_env();
    tracing::info!(?settings, "worker starting");
    let worker = Arc::new(
        Worker::new(
            settings,
            Arc::new(S3StoreFactory::new(&base, endpoints.s3.clone())),
            Some(KeyChecker::new(kms_client(&base, endpoints.kms.as_deref()))),
            Reporter::new(codepipeline_client(
                &base,
                endpoints.codepipeline.as_deref(),
            )),
        )
        .with_steps(steps),
    );

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let worker = worker.clone();
        async move {
            let left = time_left(
                event.context.deadline,
                SystemTime::now(),
                fallback_timeout(),
            );
            let deadline = Instant::now() + left;
            let request_id = event.context.request_id.clone();
            let handled = worker
                .handle(event.payload, deadline, Some(&request_id))
                .await?;
            Ok::<Value, Error>(json!({
                "jobId": handled.job_id,
                "succeeded": handled.result.is_ok(),
                "reported": format!("{:?}", handled.reported),
            }))
        }
    }))
    .await
}

/// Deadlines below this are not absolute epoch milliseconds (this is 2001-09-09).
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// The time assumed left when the runtime's deadline is unusable:
/// `ARTIFACT_WORKER_TIMEOUT_S`, else Lambda's 15-minute maximum.
fn fallback_timeout() -> Duration {
    let secs = std::env::var("ARTIFACT_WORKER_TIMEOUT_S")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(900);
    Duration::from_secs(secs)
}

/// The time left in this invocation from the runtime's `Lambda-Runtime-Deadline-Ms`.
/// AWS sends an absolute epoch time in milliseconds, in the future. Local emulators
/// differ: `cargo lambda watch` sends a relative `600000`, others send nothing (0) or
/// the invoke time (already past). A small value is taken as relative milliseconds;
/// a missing or already-past one gives `fallback`, with a warning, instead of
/// failing every job at once.
pub fn time_left(deadline_ms: u64, now: SystemTime, fallback: Duration) -> Duration {
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64;
    match deadline_ms {
        0 => {
            tracing::warn!(
                fallback_s = fallback.as_secs(),
                "the runtime sent no deadline"
            );
            fallback
        }
        ms if ms < EPOCH_MS_FLOOR => {
            tracing::warn!(
                ms,
                "the runtime sent a relative deadline; taking it as milliseconds left"
            );
            Duration::from_millis(ms)
        }
        ms if ms <= now_ms => {
            tracing::warn!(
                behind_ms = now_ms - ms,
                fallback_s = fallback.as_secs(),
                "the runtime's deadline has already passed at invocation start"
            );
            fallback
        }
        ms => Duration::from_millis(ms - now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_from_aws_and_emulators() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_000);
        let fb = Duration::from_secs(900);
        // AWS: absolute, 14 minutes ahead.
        assert_eq!(
            time_left(1_764_000_840_000, now, fb),
            Duration::from_secs(840)
        );
        // cargo lambda watch: relative 600000.
        assert_eq!(time_left(600_000, now, fb), Duration::from_secs(600));
        // No header, or the invoke time (already past): the fallback.
        assert_eq!(time_left(0, now, fb), fb);
        assert_eq!(time_left(1_763_999_999_000, now, fb), fb);
    }
}
