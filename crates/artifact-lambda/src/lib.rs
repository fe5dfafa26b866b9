//! The AWS Lambda function (also a library, so a custom binary can add its own
//! transform steps: see `examples/custom_step.rs`).
//!
//! Invariants:
//! - the clients and the worker are built once per process and shared by every
//!   invocation (the `worker starting` line appears once per process);
//! - each invocation handles one `CodePipeline.job` event and reports it. The
//!   handler returns an error to the runtime only when nothing could be reported:
//!   an event without a job id, or a report CodePipeline could not be reached for
//!   (so Lambda retries the invocation). Any job failure is reported and returns
//!   `Ok`;
//! - every log line of an invocation carries its `request_id` and `job_id`
//!   ([`logging`]).
//!
//! Environment: see `artifact_core::config` (memory, threads, KMS check, deadline
//! margin), [`deadline`] (`ARTIFACT_WORKER_TIMEOUT_S`), [`logging`]
//! (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`), plus optional
//! `ARTIFACT_WORKER_S3_ENDPOINT`, `ARTIFACT_WORKER_KMS_ENDPOINT` and
//! `ARTIFACT_WORKER_CODEPIPELINE_ENDPOINT` for testing against local servers.

pub mod deadline;
pub mod logging;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use artifact_core::clients::{
    codepipeline_client, kms_client, Endpoints, PayloadSigning, S3StoreFactory,
};
use artifact_core::kms::KeyChecker;
use artifact_core::report::Reporter;
use artifact_core::{Settings, StepRegistry, Worker};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use tracing::Instrument;

/// Runs the Lambda function with the built-in steps plus the custom `steps`.
///
/// A binary of its own should call [`artifact_core::alloc::limit_malloc_arenas`]
/// first in `main`, before the runtime starts (as `bootstrap` does); it is called
/// here too, which still caps the arenas made from now on.
pub async fn run(steps: StepRegistry) -> Result<(), Error> {
    artifact_core::alloc::limit_malloc_arenas();
    logging::init_from_env();
    let worker = Arc::new(build_worker(steps).await);
    let invocations = Arc::new(AtomicU64::new(0));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let worker = worker.clone();
        let n = invocations.fetch_add(1, Ordering::Relaxed) + 1;
        // Boxed: the job's future is deep, and the runtime nests it further.
        Box::pin(handle(worker, event, n))
    }))
    .await
}

/// The worker with the function's own clients (built once per process).
async fn build_worker(steps: StepRegistry) -> Worker {
    let started = Instant::now();
    let base = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let endpoints = Endpoints {
        s3: env("ARTIFACT_WORKER_S3_ENDPOINT"),
        kms: env("ARTIFACT_WORKER_KMS_ENDPOINT"),
        codepipeline: env("ARTIFACT_WORKER_CODEPIPELINE_ENDPOINT"),
    };
    let settings = Settings::from_env();
    let signing = PayloadSigning::from_env().unwrap_or_else(|why| {
        tracing::warn!(%why, "using ARTIFACT_S3_PAYLOAD_SIGNING=auto");
        PayloadSigning::Auto
    });
    let worker = Worker::new(
        settings,
        Arc::new(S3StoreFactory::new(&base, endpoints.s3.clone()).with_payload_signing(signing)),
        Some(KeyChecker::new(kms_client(&base, endpoints.kms.as_deref()))),
        Reporter::new(codepipeline_client(
            &base,
            endpoints.codepipeline.as_deref(),
        )),
    )
    .with_steps(steps);
    tracing::info!(
        settings = ?worker.settings(),
        init_ms = started.elapsed().as_millis() as u64,
        "worker starting"
    );
    worker
}

/// One invocation: the job's deadline from the runtime context, the event handled
/// and reported inside a span naming the request and the job.
async fn handle(
    worker: Arc<Worker>,
    event: LambdaEvent<Value>,
    process_invocation: u64,
) -> Result<Value, Error> {
    let request_id = event.context.request_id.clone();
    let job_id = event
        .payload
        .pointer("/CodePipeline.job/id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let span = tracing::info_span!("invocation", %request_id, %job_id, process_invocation);
    async move {
        let left = deadline::invocation_time(event.context.deadline, SystemTime::now());
        let deadline = Instant::now() + left;
        let handled = worker
            .handle(event.payload, deadline, Some(&request_id))
            .await
            .inspect_err(|e| tracing::error!(error = %e, "returning an error to the runtime"))?;
        Ok(json!({
            "jobId": handled.job_id,
            "succeeded": handled.result.is_ok(),
            "reported": format!("{:?}", handled.reported),
        }))
    }
    .instrument(span)
    .await
}
