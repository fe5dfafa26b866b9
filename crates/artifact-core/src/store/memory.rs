//! In-memory [`ObjectStore`] with fault injection and request accounting, for unit
//! tests (mountpoint-s3's `MockClient` + `FailureClient` in one). Not a product path.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use super::{CompletedPart, Encryption, ObjectInfo, ObjectStore, StoreError, StoreErrorKind};
use crate::event::S3Location;

/// A fault: the `nth` (0-based) call of `op` fails with `kind`.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Operation name (`GetObject`, `UploadPart`, ...).
    pub op: &'static str,
    /// Which call of that operation fails.
    pub nth: usize,
    /// How it fails.
    pub kind: StoreErrorKind,
}

/// What the store saw.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Calls per operation.
    pub calls: BTreeMap<&'static str, usize>,
    /// Largest single GetObject range.
    pub max_range: u64,
    /// Total bytes served by GetObject.
    pub bytes_read: u64,
    /// Total bytes placed by UploadPartCopy.
    pub bytes_copied: u64,
}

#[derive(Debug, Default)]
struct State {
    objects: HashMap<(String, String), (Bytes, Encryption)>,
    uploads: HashMap<String, (S3Location, Encryption, BTreeMap<i32, Bytes>)>,
    next_id: u64,
    faults: Vec<Fault>,
    stats: Stats,
}

/// Objects in a map.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Puts an object directly (test setup).
    pub fn insert(&self, bucket: &str, key: &str, body: impl Into<Bytes>) {
        self.state.lock().unwrap().objects.insert(
            (bucket.into(), key.into()),
            (body.into(), Encryption::default()),
        );
    }
    /// An object and the encryption it was written with.
    pub fn object(&self, bucket: &str, key: &str) -> Option<(Bytes, Encryption)> {
        self.state
            .lock()
            .unwrap()
            .objects
            .get(&(bucket.into(), key.into()))
            .cloned()
    }
    /// Multipart uploads still open.
    pub fn open_uploads(&self) -> usize {
        self.state.lock().unwrap().uploads.len()
    }
    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push(fault);
    }
    /// Request accounting so far.
    pub fn stats(&self) -> Stats {
        self.state.lock().unwrap().stats.clone()
    }

    fn enter(
        &self,
        op: &'static str,
        loc: &S3Location,
    ) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        let mut s = self.state.lock().unwrap();
        let n = s.stats.calls.entry(op).or_default();
        let nth = *n;
        *n += 1;
        if let Some(f) = s.faults.iter().find(|f| f.op == op && f.nth == nth) {
            return Err(StoreError::new(
                f.kind,
                op,
                loc,
                format!("injected fault on call #{nth}"),
            ));
        }
        Ok(s)
    }
}

/// A content hash standing in for S3's ETag.
fn etag_of(b: &[u8]) -> String {
    use sha2::Digest;
    format!("\"{}\"", hex::encode(&sha2::Sha256::digest(b)[..16]))
}

fn key(loc: &S3Location) -> (String, String) {
    (loc.bucket_name.clone(), loc.object_key.clone())
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn head(&self, loc: &S3Location) -> Result<ObjectInfo, StoreError> {
        let s = self.enter("HeadObject", loc)?;
        s.objects
            .get(&key(loc))
            .map(|(b, _)| ObjectInfo {
                size: b.len() as u64,
                etag: Some(etag_of(b)),
            })
            .ok_or_else(|| {
                StoreError::new(StoreErrorKind::NotFound, "HeadObject", loc, "NoSuchKey")
            })
    }
    async fn get_range(
        &self,
        loc: &S3Location,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<Bytes, StoreError> {
        let mut s = self.enter("GetObject", loc)?;
        let b = s
            .objects
            .get(&key(loc))
            .map(|(b, _)| b.clone())
            .ok_or_else(|| {
                StoreError::new(StoreErrorKind::NotFound, "GetObject", loc, "NoSuchKey")
            })?;
        if if_match.is_some_and(|tag| tag != etag_of(&b)) {
            return Err(StoreError::new(
                StoreErrorKind::Changed,
                "GetObject",
                loc,
                "PreconditionFailed (HTTP 412)",
            ));
        }
        if range.end > b.len() as u64 || range.start > range.end {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                "GetObject",
                loc,
                "InvalidRange",
            ));
        }
        let n = range.end - range.start;
        s.stats.max_range = s.stats.max_range.max(n);
        s.stats.bytes_read += n;
        Ok(b.slice(range.start as usize..range.end as usize))
    }
    async fn put_object(
        &self,
        loc: &S3Location,
        body: Bytes,
        enc: &Encryption,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.enter("PutObject", loc)?;
        s.objects.insert(key(loc), (body, enc.clone()));
        Ok(())
    }
    async fn create_multipart(
        &self,
        loc: &S3Location,
        enc: &Encryption,
        _content_type: &str,
    ) -> Result<String, StoreError> {
        let mut s = self.enter("CreateMultipartUpload", loc)?;
        s.next_id += 1;
        let id = format!("upload-{}", s.next_id);
        s.uploads
            .insert(id.clone(), (loc.clone(), enc.clone(), BTreeMap::new()));
        Ok(id)
    }
    async fn upload_part(
        &self,
        loc: &S3Location,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let mut s = self.enter("UploadPart", loc)?;
        let u = s.uploads.get_mut(upload_id).ok_or_else(|| {
            StoreError::new(StoreErrorKind::NotFound, "UploadPart", loc, "NoSuchUpload")
        })?;
        u.2.insert(number, body);
        Ok(format!("\"etag-{number}\""))
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
        let mut s = self.enter("UploadPartCopy", loc)?;
        let err = |kind, why: &str| StoreError::new(kind, "UploadPartCopy", loc, why);
        let src = s.objects.get(&key(source)).map(|(b, _)| b.clone());
        let src = src.ok_or_else(|| err(StoreErrorKind::NotFound, "NoSuchKey"))?;
        if source_etag.is_some_and(|tag| tag != etag_of(&src)) {
            return Err(err(
                StoreErrorKind::Changed,
                "PreconditionFailed (HTTP 412)",
            ));
        }
        if range.end > src.len() as u64 || range.start >= range.end {
            return Err(err(StoreErrorKind::Invalid, "InvalidRange"));
        }
        let u = s.uploads.get_mut(upload_id);
        let u = u.ok_or_else(|| err(StoreErrorKind::NotFound, "NoSuchUpload"))?;
        u.2.insert(number, src.slice(range.start as usize..range.end as usize));
        s.stats.bytes_copied += range.end - range.start;
        Ok(format!("\"copy-{number}\""))
    }
    async fn complete_multipart(
        &self,
        loc: &S3Location,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), StoreError> {
        let mut s = self.enter("CompleteMultipartUpload", loc)?;
        let (l, enc, stored) = s.uploads.remove(upload_id).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::NotFound,
                "CompleteMultipartUpload",
                loc,
                "NoSuchUpload",
            )
        })?;
        let mut body = BytesMut::new();
        let last = parts.len().saturating_sub(1);
        let small = |i: usize, p: &CompletedPart| {
            i < last && stored.get(&p.number).is_some_and(|b| b.len() < 5 << 20)
        };
        if parts.iter().enumerate().any(|(i, p)| small(i, p)) {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                "CompleteMultipartUpload",
                loc,
                "EntityTooSmall: a part before the last is under 5 MiB",
            ));
        }
        for p in parts {
            let b = stored.get(&p.number).ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Invalid,
                    "CompleteMultipartUpload",
                    loc,
                    "InvalidPart",
                )
            })?;
            body.extend_from_slice(b);
        }
        s.objects.insert(key(&l), (body.freeze(), enc));
        Ok(())
    }
    async fn abort_multipart(&self, loc: &S3Location, upload_id: &str) -> Result<(), StoreError> {
        let mut s = self.enter("AbortMultipartUpload", loc)?;
        s.uploads.remove(upload_id);
        Ok(())
    }
    async fn delete(&self, loc: &S3Location) -> Result<(), StoreError> {
        let mut s = self.enter("DeleteObject", loc)?;
        s.objects.remove(&key(loc));
        Ok(())
    }
}
