//! The object store the worker reads inputs from and writes outputs to: one trait,
//! implemented for S3 ([`s3::S3Store`], any S3-compatible server), for a local
//! directory ([`local::LocalStore`], the runner's embedded default), and, behind the
//! `test-util` feature, in memory with fault injection ([`memory`]).
//!
//! Every call names its object, so errors can say what failed where.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

use crate::event::S3Location;

pub mod local;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod s3;

/// How outputs are encrypted at rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encryption {
    /// `Some(key)`: `aws:kms` with this key id/ARN. `None`: the bucket default.
    pub kms_key_id: Option<String>,
}

/// What HEAD says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// The object's ETag (quoted, as S3 sends it), used to pin the version read.
    pub etag: Option<String>,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompletedPart {
    /// 1-based part number.
    pub number: i32,
    /// ETag returned by the store.
    pub etag: String,
    /// Bytes in the part.
    pub size: u64,
}

/// Classified store failure; maps onto a CodePipeline failure type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The object or bucket does not exist.
    NotFound,
    /// Credentials rejected, expired, or not allowed (S3 or KMS).
    AccessDenied,
    /// Throttling, 5xx or network trouble that persisted through retries.
    Unavailable,
    /// The object changed since it was first read (`If-Match` failed).
    Changed,
    /// The request itself was wrong (bad range, bad key, too small part...).
    Invalid,
}

/// A failed store call.
#[derive(Debug, thiserror::Error)]
#[error("{op} {location}: {message}")]
pub struct StoreError {
    /// Classification.
    pub kind: StoreErrorKind,
    /// The operation (`GetObject`, `UploadPart`...).
    pub op: &'static str,
    /// The object.
    pub location: S3Location,
    /// The server's code and message (never credentials).
    pub message: String,
}

impl StoreError {
    /// A new error.
    pub fn new(
        kind: StoreErrorKind,
        op: &'static str,
        location: &S3Location,
        message: impl Into<String>,
    ) -> Self {
        StoreError {
            kind,
            op,
            location: location.clone(),
            message: message.into(),
        }
    }
}

/// Object operations the worker needs.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Size and ETag of the object.
    async fn head(&self, loc: &S3Location) -> Result<ObjectInfo, StoreError>;
    /// Bytes `range` of the object (must lie inside it). With `if_match`, the read
    /// fails with [`StoreErrorKind::Changed`] unless the object still has that ETag.
    async fn get_range(
        &self,
        loc: &S3Location,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<Bytes, StoreError>;
    /// Writes a whole object in one request, of media type `content_type`.
    async fn put_object(
        &self,
        loc: &S3Location,
        body: Bytes,
        enc: &Encryption,
        content_type: &str,
    ) -> Result<(), StoreError>;
    /// Starts a multipart upload of an object of media type `content_type`; returns
    /// its id.
    async fn create_multipart(
        &self,
        loc: &S3Location,
        enc: &Encryption,
        content_type: &str,
    ) -> Result<String, StoreError>;
    /// Uploads one part; returns its ETag.
    async fn upload_part(
        &self,
        loc: &S3Location,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String, StoreError>;
    /// Fills part `number` of an upload with bytes `range` of the object `source`
    /// (UploadPartCopy), pinned to ETag `source_etag` when given; returns the
    /// part's ETag. A store that cannot copy server-side refuses with an error, and
    /// the caller sends the bytes itself instead.
    async fn upload_part_copy(
        &self,
        loc: &S3Location,
        upload_id: &str,
        number: i32,
        source: &S3Location,
        source_etag: Option<&str>,
        range: Range<u64>,
    ) -> Result<String, StoreError>;
    /// Completes a multipart upload from its parts, in order.
    async fn complete_multipart(
        &self,
        loc: &S3Location,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), StoreError>;
    /// Aborts a multipart upload, discarding its parts.
    async fn abort_multipart(&self, loc: &S3Location, upload_id: &str) -> Result<(), StoreError>;
    /// Deletes an object (missing objects are not an error).
    async fn delete(&self, loc: &S3Location) -> Result<(), StoreError>;
}
