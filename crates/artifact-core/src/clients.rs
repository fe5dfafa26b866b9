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
//! - Upload bodies (UploadPart, PutObject) are signed or not by [`PayloadSigning`]: on
//!   HTTPS (AWS S3, or an `https://` endpoint) they are sent as `UNSIGNED-PAYLOAD`
//!   with a CRC32 checksum in a signed header (`x-amz-checksum-crc32`; the bodies are
//!   in memory, so no aws-chunked trailer) that the server verifies, which spares a
//!   SHA-256 pass over every byte uploaded; plain-HTTP endpoints keep SHA-256 signed
//!   payloads unless `ARTIFACT_S3_PAYLOAD_SIGNING=unsigned` says otherwise. (SeaweedFS
//!   4.x does not check a signed body against its SHA-256, but does check the CRC32.)

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

/// How upload bodies are protected on the way to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadSigning {
    /// Unsigned with a CRC32 checksum over HTTPS (AWS S3, `https://` endpoints);
    /// signed over plain HTTP.
    #[default]
    Auto,
    /// SHA-256 of every body in the signature (`x-amz-content-sha256`).
    Signed,
    /// `UNSIGNED-PAYLOAD` with a CRC32 checksum header, which the server verifies
    /// (S3, MinIO and SeaweedFS do).
    Unsigned,
}

impl PayloadSigning {
    /// From `ARTIFACT_S3_PAYLOAD_SIGNING` (`auto`, `signed`, `unsigned`; default
    /// `auto`).
    pub fn from_env() -> Result<Self, String> {
        Self::parse(&std::env::var("ARTIFACT_S3_PAYLOAD_SIGNING").unwrap_or_default())
    }

    /// `auto` (or empty), `signed` or `unsigned`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" | "auto" => Ok(PayloadSigning::Auto),
            "signed" => Ok(PayloadSigning::Signed),
            "unsigned" => Ok(PayloadSigning::Unsigned),
            other => Err(format!(
                "ARTIFACT_S3_PAYLOAD_SIGNING={other:?}: expected auto, signed or unsigned"
            )),
        }
    }

    /// Whether bodies sent to `endpoint` (`None`: AWS S3) go unsigned.
    pub fn unsigned_for(self, endpoint: Option<&str>) -> bool {
        match self {
            PayloadSigning::Auto => endpoint.is_none_or(|e| {
                e.get(..8)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
            }),
            PayloadSigning::Signed => false,
            PayloadSigning::Unsigned => true,
        }
    }
}

/// S3 stores from the job's credentials.
#[derive(Debug, Clone)]
pub struct S3StoreFactory {
    base: SdkConfig,
    endpoint: Option<String>,
    stall_timeout: std::time::Duration,
    signing: PayloadSigning,
}

impl S3StoreFactory {
    /// Factory inheriting region, HTTP client, retries and timeouts from `base`,
    /// signing payloads as [`PayloadSigning::Auto`] says.
    pub fn new(base: &SdkConfig, endpoint: Option<String>) -> Self {
        S3StoreFactory {
            base: base.clone(),
            endpoint,
            stall_timeout: crate::store::s3::DEFAULT_STALL_TIMEOUT,
            signing: PayloadSigning::Auto,
        }
    }

    /// Sets how upload bodies are signed.
    pub fn with_payload_signing(mut self, signing: PayloadSigning) -> Self {
        self.signing = signing;
        self
    }

    fn unsigned(&self) -> bool {
        self.signing.unsigned_for(self.endpoint.as_deref())
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
        if self.unsigned() {
            // Unsigned bodies carry a checksum, or nothing would protect them (whatever
            // AWS_REQUEST_CHECKSUM_CALCULATION says).
            b = b.request_checksum_calculation(RequestChecksumCalculation::WhenSupported);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }
}

impl StoreFactory for S3StoreFactory {
    fn store_for(&self, creds: &ArtifactCredentials) -> Arc<dyn ObjectStore> {
        Arc::new(
            S3Store::new(self.client(creds))
                .with_stall_timeout(self.stall_timeout)
                .with_unsigned_payloads(self.unsigned()),
        )
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

#[cfg(test)]
mod tests {
    use super::PayloadSigning;

    #[test]
    fn payload_signing_from_its_setting_and_the_endpoint() {
        assert_eq!(PayloadSigning::parse(""), Ok(PayloadSigning::Auto));
        assert_eq!(
            PayloadSigning::parse("unsigned"),
            Ok(PayloadSigning::Unsigned)
        );
        assert!(PayloadSigning::parse("yes")
            .unwrap_err()
            .contains("expected auto"));
        let auto = PayloadSigning::Auto;
        assert!(auto.unsigned_for(None));
        assert!(auto.unsigned_for(Some("HTTPS://minio.internal:9000")));
        assert!(!auto.unsigned_for(Some("http://127.0.0.1:8333")));
        assert!(!PayloadSigning::Signed.unsigned_for(None));
        assert!(PayloadSigning::Unsigned.unsigned_for(Some("http://127.0.0.1:8333")));
    }
}
