//! The `bootstrap` binary: the worker with the built-in steps.

fn main() -> Result<(), lambda_runtime::Error> {
    // Before any thread starts (see artifact_core::alloc).
    artifact_core::alloc::limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(artifact_lambda::run(artifact_core::StepRegistry::new()))
}
