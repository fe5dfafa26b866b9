//! [`ObjectStore`] on aws-sdk-s3: AWS S3 and S3-compatible servers (MinIO, SeaweedFS).
//!
//! The client is built per job from the job's `artifactCredentials` only (see
//! [`crate::clients`]); this module never looks at ambient credentials.
//!
//! Retries: the SDK retries a request that fails before its response body starts.
//! On top of that, a ranged GET whose body breaks (reset, short read) or stalls for
//! longer than the stall timeout is resumed from the first byte not yet received,
//! and throttling, 5xx and network errors on any call are retried with exponential
//! backoff and full jitter, up to [`MAX_ATTEMPTS`] attempts. The error that is finally
//! returned keeps its cause and says how many attempts were made. Only
//! [`StoreErrorKind::Unavailable`] errors are retried: a denied, missing or changed
//! object fails at once.

/// Attempts per call (including the first) before an unavailable store fails a job.
pub const MAX_ATTEMPTS: u32 = 6;

/// How long a GET body may deliver nothing before it is abandoned and re-read.
pub const DEFAULT_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

use std::ops::Range;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, ServerSideEncryption};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use bytes::Bytes;

use super::{CompletedPart, Encryption, ObjectInfo, ObjectStore, StoreError, StoreErrorKind};
use crate::event::S3Location;

/// S3 through aws-sdk-s3.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    stall_timeout: std::time::Duration,
    /// Upload bodies go as `UNSIGNED-PAYLOAD` (with the client's checksum).
    unsigned: bool,
}

impl S3Store {
    /// Wraps a client (built from the job's credentials).
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Store {
            client,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            unsigned: false,
        }
    }

    /// Sends upload bodies unsigned (see [`crate::clients::PayloadSigning`]).
    pub fn with_unsigned_payloads(mut self, unsigned: bool) -> Self {
        self.unsigned = unsigned;
        self
    }

    /// Sets how long a GET body may stall before it is re-read.
    pub fn with_stall_timeout(mut self, t: std::time::Duration) -> Self {
        self.stall_timeout = t;
        self
    }

    /// One GET of `range` appended to `buf`; on a body error the bytes received so
    /// far stay in `buf`, so the next attempt resumes after them.
    async fn get_into(
        &self,
        loc: &S3Location,
        range: Range<u64>,
        if_match: Option<&str>,
        buf: &mut bytes::BytesMut,
    ) -> Result<(), StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&loc.bucket_name)
            .key(&loc.object_key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify("GetObject", loc, e))?;
        let unavailable =
            |why: String| StoreError::new(StoreErrorKind::Unavailable, "GetObject", loc, why);
        let want = (range.end - range.start) as usize;
        let start = buf.len();
        let mut body = out.body;
        loop {
            let next = tokio::time::timeout(self.stall_timeout, body.next())
                .await
                .map_err(|_| {
                    unavailable(format!(
                        "the body stalled: no bytes for {} ms after {} of {want}",
                        self.stall_timeout.as_millis(),
                        buf.len() - start
                    ))
                })?;
            match next {
                None => break,
                Some(Ok(chunk)) => {
                    if buf.len() - start + chunk.len() > want {
                        return Err(StoreError::new(
                            StoreErrorKind::Invalid,
                            "GetObject",
                            loc,
                            format!(
                                "asked for bytes {}..{}, got more (the server ignored Range)",
                                range.start, range.end
                            ),
                        ));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => {
                    return Err(unavailable(format!(
                        "reading the body after {} of {want} bytes: {}",
                        buf.len() - start,
                        aws_smithy_types::error::display::DisplayErrorContext(&e)
                    )))
                }
            }
        }
        if buf.len() - start < want {
            return Err(unavailable(format!(
                "the body ended after {} of {want} bytes",
                buf.len() - start
            )));
        }
        Ok(())
    }
}

/// Exponential backoff (100 ms doubling, capped at 5 s) with full jitter, for up to
/// [`MAX_ATTEMPTS`] attempts.
#[derive(Debug)]
pub struct Backoff {
    attempt: u32,
    delay: std::time::Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempt: 1,
            delay: std::time::Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// After a failed attempt: sleeps and returns `Ok` when `e` is worth another
    /// attempt, else returns `e`, noting how many attempts were made.
    pub async fn wait_or_fail(&mut self, mut e: StoreError) -> Result<(), StoreError> {
        if e.kind == StoreErrorKind::Unavailable && self.attempt < MAX_ATTEMPTS {
            tracing::warn!(op = e.op, location = %e.location, attempt = self.attempt, error = %e.message, "retrying");
            tokio::time::sleep(self.delay.mul_f64(fastrand::f64())).await;
            self.delay = (self.delay * 2).min(std::time::Duration::from_secs(5));
            self.attempt += 1;
            return Ok(());
        }
        if self.attempt > 1 {
            e.message = format!("{} (after {} attempts)", e.message, self.attempt);
        }
        Err(e)
    }
}

/// Runs `call` until it succeeds or [`Backoff`] gives up.
pub async fn with_retries<T, F, Fut>(mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::default();
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => backoff.wait_or_fail(e).await?,
        }
    }
}

/// A key as `x-amz-copy-source` wants it: percent-encoded, `/` kept.
fn copy_source_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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
        "PreconditionFailed" => StoreErrorKind::Changed,
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
        | "RequestTimeTooSkewed"
        // A body damaged on the way (the checksum or the signed SHA-256 does not
        // match): the same bytes are sent again.
        | "BadDigest"
        | "XAmzContentSHA256Mismatch" => StoreErrorKind::Unavailable,
        // A feature the server lacks (SeaweedFS's UploadPartCopy from an SSE-KMS
        // source): asking again will not help.
        "NotImplemented" => StoreErrorKind::Invalid,
        _ => match status {
            501 => StoreErrorKind::Invalid,
            404 => StoreErrorKind::NotFound,
            412 => StoreErrorKind::Changed,
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
    async fn head(&self, loc: &S3Location) -> Result<ObjectInfo, StoreError> {
        let out = with_retries(|| async {
            self.client
                .head_object()
                .bucket(&loc.bucket_name)
                .key(&loc.object_key)
                .send()
                .await
                .map_err(|e| classify("HeadObject", loc, e))
        })
        .await?;
        let size = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Invalid,
                    "HeadObject",
                    loc,
                    "no Content-Length",
                )
            })?;
        Ok(ObjectInfo {
            size,
            etag: out.e_tag,
        })
    }

    async fn get_range(
        &self,
        loc: &S3Location,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<Bytes, StoreError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let mut buf = bytes::BytesMut::with_capacity((range.end - range.start) as usize);
        let mut backoff = Backoff::default();
        loop {
            // Resume after the bytes already received.
            let rest = range.start + buf.len() as u64..range.end;
            match self.get_into(loc, rest, if_match, &mut buf).await {
                Ok(()) => return Ok(buf.freeze()),
                Err(e) => backoff.wait_or_fail(e).await?,
            }
        }
    }

    async fn put_object(
        &self,
        loc: &S3Location,
        body: Bytes,
        enc: &Encryption,
        content_type: &str,
    ) -> Result<(), StoreError> {
        with_retries(|| {
            let mut req = self
                .client
                .put_object()
                .bucket(&loc.bucket_name)
                .key(&loc.object_key)
                .content_type(content_type)
                .content_length(body.len() as i64)
                .body(ByteStream::from(body.clone()));
            if let Some(k) = &enc.kms_key_id {
                req = req
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(k);
            }
            let unsigned = self.unsigned;
            async move {
                let sent = if unsigned {
                    req.customize().disable_payload_signing().send().await
                } else {
                    req.send().await
                };
                sent.map_err(|e| classify("PutObject", loc, e))
            }
        })
        .await?;
        Ok(())
    }

    async fn create_multipart(
        &self,
        loc: &S3Location,
        enc: &Encryption,
        content_type: &str,
    ) -> Result<String, StoreError> {
        let out = with_retries(|| {
            let mut req = self
                .client
                .create_multipart_upload()
                .bucket(&loc.bucket_name)
                .key(&loc.object_key)
                .content_type(content_type);
            if let Some(k) = &enc.kms_key_id {
                req = req
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(k);
            }
            async move {
                req.send()
                    .await
                    .map_err(|e| classify("CreateMultipartUpload", loc, e))
            }
        })
        .await?;
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
        let out = with_retries(|| {
            let req = self
                .client
                .upload_part()
                .bucket(&loc.bucket_name)
                .key(&loc.object_key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(body.len() as i64)
                .body(ByteStream::from(body.clone()));
            let unsigned = self.unsigned;
            async move {
                let sent = if unsigned {
                    req.customize().disable_payload_signing().send().await
                } else {
                    req.send().await
                };
                sent.map_err(|e| classify("UploadPart", loc, e))
            }
        })
        .await?;
        out.e_tag.ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Invalid,
                "UploadPart",
                loc,
                "no ETag in response",
            )
        })
    }

    async fn upload_part_copy(
        &self,
        loc: &S3Location,
        upload_id: &str,
        number: i32,
        source: &S3Location,
        source_etag: Option<&str>,
        range: Range<u64>,
    ) -> Result<String, StoreError> {
        let copy_source = format!(
            "{}/{}",
            source.bucket_name,
            copy_source_key(&source.object_key)
        );
        let out = with_retries(|| {
            let req = self
                .client
                .upload_part_copy()
                .bucket(&loc.bucket_name)
                .key(&loc.object_key)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(&copy_source)
                .copy_source_range(format!("bytes={}-{}", range.start, range.end - 1))
                .set_copy_source_if_match(source_etag.map(str::to_string));
            async move {
                req.send()
                    .await
                    .map_err(|e| classify("UploadPartCopy", loc, e))
            }
        })
        .await?;
        out.copy_part_result.and_then(|r| r.e_tag).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Invalid,
                "UploadPartCopy",
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
        let parts_total: u64 = parts.iter().map(|p| p.size).sum();
        let parts = parts
            .iter()
            .map(|p| {
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(p.number)
                    .e_tag(&p.etag)
                    .build()
            })
            .collect();
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let done = with_retries(|| {
            let req = self
                .client
                .complete_multipart_upload()
                .bucket(&loc.bucket_name)
                .key(&loc.object_key)
                .upload_id(upload_id)
                .multipart_upload(upload.clone());
            async move {
                req.send()
                    .await
                    .map_err(|e| classify("CompleteMultipartUpload", loc, e))
            }
        })
        .await;
        match done {
            Ok(_) => Ok(()),
            // A retry (ours or the SDK's) after a Complete whose response was lost
            // finds the upload gone: the object is there, with the size written.
            Err(e) if e.kind == StoreErrorKind::NotFound => match self.head(loc).await {
                Ok(info) if info.size == parts_total => {
                    tracing::warn!(location = %loc, "CompleteMultipartUpload answered NoSuchUpload after the object was completed");
                    Ok(())
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    async fn abort_multipart(&self, loc: &S3Location, upload_id: &str) -> Result<(), StoreError> {
        with_retries(|| {
            let req = self
                .client
                .abort_multipart_upload()
                .bucket(&loc.bucket_name)
                .key(&loc.object_key)
                .upload_id(upload_id);
            async move {
                req.send()
                    .await
                    .map_err(|e| classify("AbortMultipartUpload", loc, e))
            }
        })
        .await?;
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
