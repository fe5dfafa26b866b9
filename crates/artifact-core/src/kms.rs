//! Checking the job's KMS key before any data moves, with the function's own
//! credentials: DescribeKey must show an enabled, symmetric encrypt/decrypt key.
//! Needs `kms:DescribeKey` on the key for the function's role (or
//! `ARTIFACT_WORKER_KMS_CHECK`: by default a denied DescribeKey is only logged).

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType};

use crate::error::JobError;
use crate::store::s3::classify_code;
use crate::store::StoreErrorKind;

/// DescribeKey-based key check.
#[derive(Debug, Clone)]
pub struct KeyChecker {
    client: aws_sdk_kms::Client,
}

impl KeyChecker {
    /// A checker using `client` (the function's own credentials).
    pub fn new(client: aws_sdk_kms::Client) -> Self {
        KeyChecker { client }
    }

    /// Checks `key_id` (key id, key ARN, alias name or alias ARN).
    pub async fn check(&self, key_id: &str) -> Result<(), JobError> {
        let err = |kind, message: String| JobError::Kms {
            key: key_id.to_string(),
            message,
            kind,
        };
        let out = match self.client.describe_key().key_id(key_id).send().await {
            Ok(o) => o,
            Err(SdkError::ServiceError(se)) => {
                let code = se.err().code().unwrap_or("").to_string();
                let msg = se.err().message().unwrap_or("").to_string();
                let status = se.raw().status().as_u16();
                let kind = match code.as_str() {
                    "NotFoundException" => StoreErrorKind::Invalid,
                    "InvalidArnException" => StoreErrorKind::Invalid,
                    _ => classify_code(&code, status),
                };
                let hint = match kind {
                    StoreErrorKind::AccessDenied => {
                        " (grant the function's role kms:DescribeKey on this key, or set \
                         leave ARTIFACT_WORKER_KMS_CHECK at warn)"
                    }
                    StoreErrorKind::Invalid => {
                        " (check the artifact store's encryption key in the pipeline)"
                    }
                    _ => "",
                };
                return Err(err(
                    kind,
                    format!("DescribeKey failed: {code}: {msg}{hint}"),
                ));
            }
            Err(e) => {
                return Err(err(
                    StoreErrorKind::Unavailable,
                    format!(
                        "DescribeKey failed: {}",
                        aws_smithy_types::error::display::DisplayErrorContext(&e)
                    ),
                ))
            }
        };
        let Some(meta) = out.key_metadata else {
            return Err(err(
                StoreErrorKind::Invalid,
                "DescribeKey returned no key metadata".into(),
            ));
        };
        if let Some(state) = &meta.key_state {
            if *state != KeyState::Enabled {
                return Err(err(
                    StoreErrorKind::Invalid,
                    format!("the key is {state:?}, not Enabled"),
                ));
            }
        } else if !meta.enabled {
            return Err(err(StoreErrorKind::Invalid, "the key is disabled".into()));
        }
        if let Some(spec) = &meta.key_spec {
            if *spec != KeySpec::SymmetricDefault {
                return Err(err(
                    StoreErrorKind::Invalid,
                    format!(
                        "the key spec is {spec:?}; S3 artifact encryption needs a symmetric key"
                    ),
                ));
            }
        }
        if let Some(usage) = &meta.key_usage {
            if *usage != KeyUsageType::EncryptDecrypt {
                return Err(err(
                    StoreErrorKind::Invalid,
                    format!("the key usage is {usage:?}; ENCRYPT_DECRYPT is needed"),
                ));
            }
        }
        Ok(())
    }

    /// True when the error says only that DescribeKey itself was denied.
    pub fn is_denied(e: &JobError) -> bool {
        matches!(
            e,
            JobError::Kms {
                kind: StoreErrorKind::AccessDenied,
                ..
            }
        )
    }
}
