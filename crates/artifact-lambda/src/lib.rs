//! The AWS Lambda function (also a library, so a custom binary can add its own
//! transform steps: see `examples/custom_step.rs`): clients and the worker are built once per process; each
//! invocation handles one `CodePipeline.job` event and reports it. The handler
//! returns an error only when the report itself could not be sent, so that Lambda
//! retries the invocation; any job failure is reported and returns `Ok`.
//!
//! Environment: see `artifact_core::config` (memory, threads, KMS check, deadline
//! margin) plus optional `ARTIFACT_WORKER_S3_ENDPOINT`, `ARTIFACT_WORKER_KMS_ENDPOINT`,
//! `ARTIFACT_WORKER_CODEPIPELINE_ENDPOINT` for testing against local servers.

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
            let left = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
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
