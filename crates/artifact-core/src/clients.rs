//! Building AWS clients.
//!
//! - The artifact S3 client is built per job from the event's `artifactCredentials`
//!   ONLY: a static provider with the session token replaces whatever the base config
//!   would resolve. It inherits region, HTTP client (connection pool), retry and
//!   timeout settings from the base config.
//! - CodePipeline and KMS clients use the function's own credentials (the base
//!   config), built once per process.
//! - With a custom endpoint (MinIO, SeaweedFS...) S3 uses path-style addressing and
//!   computes checksums only when required: the SDK's default aws-chunked trailer
//!   checksums break many S3-compatible servers.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};

use crate::event::ArtifactCredentials;
use crate::store::s3::S3Store;
use crate::store::ObjectStore;

/// Endpoint overrides (local servers); `None` means the AWS default.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// S3-compatible server, e.g. `http://127.0.0.1:9000`.
    pub s3: Option<String>,
    /// KMS endpoint.
    pub kms: Option<String>,
    /// CodePipeline job API endpoint.
    pub codepipeline: Option<String>,
}

/// Gives each job a store that uses that job's credentials.
pub trait StoreFactory: Send + Sync + 'static {
    /// The store for a job with these artifact credentials.
    fn store_for(&self, creds: &ArtifactCredentials) -> Arc<dyn ObjectStore>;
}

/// S3 stores from the job's credentials.
#[derive(Debug, Clone)]
pub struct S3StoreFactory {
    base: SdkConfig,
    endpoint: Option<String>,
    stall_timeout: std::time::Duration,
}

impl S3StoreFactory {
    /// Factory inheriting region, HTTP client, retries and timeouts from `base`.
    pub fn new(base: &SdkConfig, endpoint: Option<String>) -> Self {
        S3StoreFactory {
            base: base.clone(),
            endpoint,
            stall_timeout: crate::store::s3::DEFAULT_STALL_TIMEOUT,
        }
    }

    /// Sets how long a GET body may stall before it is re-read.
    pub fn with_stall_timeout(mut self, t: std::time::Duration) -> Self {
        self.stall_timeout = t;
        self
    }

    /// The S3 client for these credentials.
    pub fn client(&self, creds: &ArtifactCredentials) -> aws_sdk_s3::Client {
        let provider = Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            creds.session_token.clone(),
            None,
            "CodePipelineArtifactCredentials",
        );
        let mut b = aws_sdk_s3::config::Builder::from(&self.base).credentials_provider(provider);
        if let Some(ep) = &self.endpoint {
            b = b
                .endpoint_url(ep)
                .force_path_style(true)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }
}

impl StoreFactory for S3StoreFactory {
    fn store_for(&self, creds: &ArtifactCredentials) -> Arc<dyn ObjectStore> {
        Arc::new(S3Store::new(self.client(creds)).with_stall_timeout(self.stall_timeout))
    }
}

/// One store for every job, whatever its credentials (the runner's local directory,
/// tests' in-memory store).
#[derive(Clone)]
pub struct FixedStore(pub Arc<dyn ObjectStore>);

impl StoreFactory for FixedStore {
    fn store_for(&self, _creds: &ArtifactCredentials) -> Arc<dyn ObjectStore> {
        self.0.clone()
    }
}

/// CodePipeline client on the function's own credentials.
pub fn codepipeline_client(
    base: &SdkConfig,
    endpoint: Option<&str>,
) -> aws_sdk_codepipeline::Client {
    let mut b = aws_sdk_codepipeline::config::Builder::from(base);
    if let Some(ep) = endpoint {
        b = b.endpoint_url(ep);
    }
    aws_sdk_codepipeline::Client::from_conf(b.build())
}

/// KMS client on the function's own credentials.
pub fn kms_client(base: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_kms::Client {
    let mut b = aws_sdk_kms::config::Builder::from(base);
    if let Some(ep) = endpoint {
        b = b.endpoint_url(ep);
    }
    aws_sdk_kms::Client::from_conf(b.build())
}
