//! [`ObjectStore`] on aws-sdk-s3: AWS S3 and S3-compatible servers (MinIO, SeaweedFS).
//!
//! The client is built per job from the job's `artifactCredentials` only (see
//! [`crate::clients`]); this module never looks at ambient credentials.

use std::ops::Range;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, ServerSideEncryption};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use bytes::Bytes;

use super::{CompletedPart, Encryption, ObjectStore, StoreError, StoreErrorKind};
use crate::event::S3Location;

/// S3 through aws-sdk-s3.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    /// Wraps a client (built from the job's credentials).
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Store { client }
    }
}

/// Maps an SDK error onto a [`StoreError`], keeping the server's code and message.
pub fn classify<E>(op: &'static str, loc: &S3Location, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, message) = match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("").to_string();
            let msg = se.err().message().unwrap_or("").to_string();
            (classify_code(&code, status), describe(&code, &msg, status))
        }
        SdkError::TimeoutError(_) => (StoreErrorKind::Unavailable, "request timed out".to_string()),
        SdkError::DispatchFailure(d) => (
            StoreErrorKind::Unavailable,
            format!("could not reach the server: {d:?}"),
        ),
        SdkError::ResponseError(_) => (
            StoreErrorKind::Unavailable,
            "unreadable response".to_string(),
        ),
        other => (
            StoreErrorKind::Invalid,
            aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
        ),
    };
    StoreError::new(kind, op, loc, message)
}

/// Classifies an S3 (or KMS) error code and HTTP status.
pub fn classify_code(code: &str, status: u16) -> StoreErrorKind {
    match code {
        "NoSuchKey" | "NoSuchBucket" | "NotFound" | "NoSuchUpload" => StoreErrorKind::NotFound,
        "AccessDenied"
        | "AccessDeniedException"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidToken"
        | "TokenRefreshRequired"
        | "KMS.DisabledException"
        | "KMS.AccessDeniedException"
        | "KMS.NotFoundException"
        | "KMS.KMSInvalidStateException"
        | "AllAccessDisabled" => StoreErrorKind::AccessDenied,
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "RequestTimeout"
        | "ServiceUnavailable"
        | "InternalError"
        | "RequestTimeTooSkewed" => StoreErrorKind::Unavailable,
        _ => match status {
            404 => StoreErrorKind::NotFound,
            401 | 403 => StoreErrorKind::AccessDenied,
            429 | 500..=599 => StoreErrorKind::Unavailable,
            _ => StoreErrorKind::Invalid,
        },
    }
}

fn describe(code: &str, msg: &str, status: u16) -> String {
    let hint = match code {
        "ExpiredToken" | "ExpiredTokenException" => {
            " (the job's artifactCredentials expired; the action can be retried)"
        }
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" => {
            " (the job's artifactCredentials were rejected)"
        }
        _ if code.starts_with("KMS.") => {
            " (the artifact credentials may not use the KMS key: check the key policy)"
        }
        _ => "",
    };
    match (code.is_empty(), msg.is_empty()) {
        (true, _) => format!("HTTP {status}{hint}"),
        (false, true) => format!("{code} (HTTP {status}){hint}"),
        (false, false) => format!("{code}: {msg} (HTTP {status}){hint}"),
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn size(&self, loc: &S3Location) -> Result<u64, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(&loc.bucket_name)
            .key(&loc.object_key)
            .send()
            .await
            .map_err(|e| classify("HeadObject", loc, e))?;
        out.content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Invalid,
                    "HeadObject",
                    loc,
                    "no Content-Length",
                )
            })
    }

    async fn get_range(&self, loc: &S3Location, range: Range<u64>) -> Result<Bytes, StoreError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let out = self
            .client
            .get_object()
            .bucket(&loc.bucket_name)
            .key(&loc.object_key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .map_err(|e| classify("GetObject", loc, e))?;
        let body = out.body.collect().await.map_err(|e| {
            StoreError::new(
                StoreErrorKind::Unavailable,
                "GetObject",
                loc,
                format!("reading body: {e}"),
            )
        })?;
        let bytes = body.into_bytes();
        if bytes.len() as u64 != range.end - range.start {
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "GetObject",
                loc,
                format!(
                    "asked for bytes {}..{}, got {} bytes (object changed or server ignored Range)",
                    range.start,
                    range.end,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    async fn put_object(
        &self,
        loc: &S3Location,
        body: Bytes,
        enc: &Encryption,
    ) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&loc.bucket_name)
            .key(&loc.object_key)
            .content_type("application/zip")
            .content_length(body.len() as i64)
            .body(ByteStream::from(body));
        if let Some(k) = &enc.kms_key_id {
            req = req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(k);
        }
        req.send()
            .await
            .map_err(|e| classify("PutObject", loc, e))?;
        Ok(())
    }

    async fn create_multipart(
        &self,
        loc: &S3Location,
        enc: &Encryption,
    ) -> Result<String, StoreError> {
        let mut req = self
            .client
            .create_multipart_upload()
            .bucket(&loc.bucket_name)
            .key(&loc.object_key)
            .content_type("application/zip");
        if let Some(k) = &enc.kms_key_id {
            req = req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(k);
        }
        let out = req
            .send()
            .await
            .map_err(|e| classify("CreateMultipartUpload", loc, e))?;
        out.upload_id.ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Invalid,
                "CreateMultipartUpload",
                loc,
                "no UploadId in response",
            )
        })
    }

    async fn upload_part(
        &self,
        loc: &S3Location,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&loc.bucket_name)
            .key(&loc.object_key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify("UploadPart", loc, e))?;
        out.e_tag.ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Invalid,
                "UploadPart",
                loc,
                "no ETag in response",
            )
        })
    }

    async fn complete_multipart(
        &self,
        loc: &S3Location,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), StoreError> {
        let parts = parts
            .iter()
            .map(|p| {
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(p.number)
                    .e_tag(&p.etag)
                    .build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&loc.bucket_name)
            .key(&loc.object_key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("CompleteMultipartUpload", loc, e))?;
        Ok(())
    }

    async fn abort_multipart(&self, loc: &S3Location, upload_id: &str) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&loc.bucket_name)
            .key(&loc.object_key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| classify("AbortMultipartUpload", loc, e))?;
        Ok(())
    }

    async fn delete(&self, loc: &S3Location) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&loc.bucket_name)
            .key(&loc.object_key)
            .send()
            .await
            .map_err(|e| classify("DeleteObject", loc, e))?;
        Ok(())
    }
}
