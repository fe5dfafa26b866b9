//! The `bootstrap` binary: the worker with the built-in steps.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    artifact_lambda::run(artifact_core::StepRegistry::new()).await
}
