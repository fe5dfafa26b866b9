//! Where a command's artifacts live (the embedded store directory, or an S3
//! endpoint with the event's credentials) and the worker built on it, shared by
//! `run` and `plan`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use artifact_core::clients::{
    kms_client, FixedStore, PayloadSigning, S3StoreFactory, StoreFactory,
};
use artifact_core::config::KmsCheck;
use artifact_core::kms::KeyChecker;
use artifact_core::report::Reporter;
use artifact_core::store::local::LocalStore;
use artifact_core::{Settings, Worker};
use aws_config::BehaviorVersion;

/// Store and resource options.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory used as the artifact store when no S3 endpoint is given
    /// (`<dir>/<bucket>/<key>`).
    #[arg(
        long,
        env = "ARTIFACT_RUNNER_STORE_DIR",
        default_value = "events/store"
    )]
    pub store_dir: PathBuf,
    /// S3-compatible endpoint (e.g. http://127.0.0.1:9000 for MinIO); path-style.
    /// The event's artifactCredentials are used for it.
    #[arg(long, env = "ARTIFACT_RUNNER_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// KMS endpoint for the key check (the check is skipped without S3 and KMS endpoints).
    #[arg(long, env = "ARTIFACT_RUNNER_KMS_ENDPOINT")]
    pub kms_endpoint: Option<String>,
    /// Region for the clients.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Memory to plan for, in MB (as AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
    #[arg(long, env = "ARTIFACT_WORKER_MEMORY_MB")]
    pub memory_mb: Option<u64>,
    /// Transform threads.
    #[arg(long, env = "ARTIFACT_WORKER_THREADS")]
    pub threads: Option<usize>,
}

/// The function's own credentials: from the environment when set, else a fixed local
/// identity (local servers accept any; the embedded endpoint ignores them).
pub async fn base_config(region: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()));
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            "local",
            "local",
            None,
            None,
            "artifact-runner",
        ));
    }
    loader.load().await
}

impl StoreArgs {
    /// The worker's settings: the environment's, with the memory and threads given.
    fn settings(&self) -> Settings {
        let mut settings = Settings::from_env();
        if let Some(mb) = self.memory_mb {
            let threads = settings.threads;
            settings = Settings {
                kms_check: settings.kms_check,
                deadline_margin: settings.deadline_margin,
                server_side_copy: settings.server_side_copy,
                ..Settings::for_memory(mb, threads)
            };
        }
        if let Some(t) = self.threads {
            settings.threads = t;
        }
        settings
    }

    /// A worker on these stores, reporting with `reporter`.
    pub fn worker(&self, base: &aws_config::SdkConfig, reporter: Reporter) -> Result<Worker> {
        let mut settings = self.settings();
        let (stores, kms): (Arc<dyn StoreFactory>, _) = match &self.s3_endpoint {
            Some(ep) => (
                Arc::new(
                    S3StoreFactory::new(base, Some(ep.clone()))
                        .with_payload_signing(PayloadSigning::from_env().map_err(|e| anyhow!(e))?),
                ),
                self.kms_endpoint
                    .as_deref()
                    .map(|k| KeyChecker::new(kms_client(base, Some(k)))),
            ),
            None => {
                if !self.store_dir.is_dir() {
                    bail!(
                        "store directory {} does not exist (run from the repository root, or pass --store-dir)",
                        self.store_dir.display()
                    );
                }
                (
                    Arc::new(FixedStore(Arc::new(LocalStore::new(&self.store_dir)))),
                    None,
                )
            }
        };
        if kms.is_none() {
            settings.kms_check = KmsCheck::Off;
        }
        Ok(Worker::new(settings, stores, kms, reporter))
    }
}

/// Reads and parses a JSON event file.
pub fn read_event(path: &std::path::Path) -> Result<serde_json::Value> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}
