//! [`ObjectStore`] on a local directory: `ROOT/<bucket>/<key>`. The local runner's
//! embedded default, so a job runs on a fresh machine with no server at all.
//!
//! Buckets are existing directories (a missing one is `NoSuchBucket`); keys may not
//! contain `..`, empty or absolute components. Multipart parts are kept in
//! `ROOT/.uploads/<id>/` and assembled into a temporary file that is renamed into
//! place on completion, so readers never see a partial object. Encryption settings are
//! accepted and ignored (there is no KMS here).

use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{CompletedPart, Encryption, ObjectInfo, ObjectStore, StoreError, StoreErrorKind};
use crate::event::S3Location;

/// A directory acting as an object store.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    next_upload: AtomicU64,
}

impl LocalStore {
    /// A store rooted at `root` (which must exist).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore {
            root: root.into(),
            next_upload: AtomicU64::new(0),
        }
    }

    fn path(&self, op: &'static str, loc: &S3Location) -> Result<PathBuf, StoreError> {
        let bad = |why: &str| StoreError::new(StoreErrorKind::Invalid, op, loc, why.to_string());
        if loc.bucket_name.contains(['/', '\\']) || loc.bucket_name.starts_with('.') {
            return Err(bad("bucket names may not contain `/` or start with `.`"));
        }
        let bucket = self.root.join(&loc.bucket_name);
        if !bucket.is_dir() {
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                op,
                loc,
                format!("NoSuchBucket: no directory {}", bucket.display()),
            ));
        }
        let mut p = bucket;
        for part in loc.object_key.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(bad("object keys with empty, `.` or `..` components are not supported by the local store"));
            }
            p.push(part);
        }
        Ok(p)
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join(".uploads").join(upload_id)
    }
}

fn io_err(op: &'static str, loc: &S3Location, e: std::io::Error) -> StoreError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => StoreErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => StoreErrorKind::AccessDenied,
        _ => StoreErrorKind::Unavailable,
    };
    let what = if kind == StoreErrorKind::NotFound {
        "NoSuchKey: "
    } else {
        ""
    };
    StoreError::new(kind, op, loc, format!("{what}{e}"))
}

async fn write_atomically(
    dest: &Path,
    parts: Vec<PathBuf>,
    body: Option<Bytes>,
) -> std::io::Result<()> {
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = dest.with_file_name(format!(
        ".{}.partial",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object")
    ));
    // Removes the temporary file if this future is dropped half-way (a job aborted
    // at its deadline), as it is on an error.
    struct RemoveOnDrop(Option<PathBuf>);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            if let Some(p) = self.0.take() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let mut guard = RemoveOnDrop(Some(tmp.clone()));
    let mut f = tokio::fs::File::create(&tmp).await?;
    let res = async {
        if let Some(b) = body {
            f.write_all(&b).await?;
        }
        if !parts.is_empty() {
            // std::io::copy between files uses copy_file_range: the kernel moves the
            // bytes (completing a multi-GB object takes a moment, not minutes).
            f.flush().await?;
            let mut out = f.try_clone().await?.into_std().await;
            tokio::task::spawn_blocking(move || {
                for p in parts {
                    std::io::copy(&mut std::fs::File::open(&p)?, &mut out)?;
                }
                Ok::<_, std::io::Error>(())
            })
            .await
            .map_err(std::io::Error::other)??;
        }
        f.flush().await?;
        f.sync_all().await
    }
    .await;
    res?;
    tokio::fs::rename(&tmp, dest).await?;
    guard.0 = None;
    Ok(())
}

/// Size and modification time stand in for an ETag: files are replaced atomically
/// (rename), so a new version has a new mtime.
fn etag_of(m: &std::fs::Metadata) -> String {
    let nanos = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{:x}\"", m.len(), nanos)
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn head(&self, loc: &S3Location) -> Result<ObjectInfo, StoreError> {
        let p = self.path("HeadObject", loc)?;
        let m = tokio::fs::metadata(&p)
            .await
            .map_err(|e| io_err("HeadObject", loc, e))?;
        if !m.is_file() {
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                "HeadObject",
                loc,
                "NoSuchKey: not a file",
            ));
        }
        Ok(ObjectInfo {
            size: m.len(),
            etag: Some(etag_of(&m)),
        })
    }

    async fn get_range(
        &self,
        loc: &S3Location,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<Bytes, StoreError> {
        let p = self.path("GetObject", loc)?;
        if let Some(tag) = if_match {
            let m = tokio::fs::metadata(&p)
                .await
                .map_err(|e| io_err("GetObject", loc, e))?;
            if etag_of(&m) != tag {
                return Err(StoreError::new(
                    StoreErrorKind::Changed,
                    "GetObject",
                    loc,
                    "PreconditionFailed: the file changed since it was first read",
                ));
            }
        }
        let mut f = tokio::fs::File::open(&p)
            .await
            .map_err(|e| io_err("GetObject", loc, e))?;
        f.seek(SeekFrom::Start(range.start))
            .await
            .map_err(|e| io_err("GetObject", loc, e))?;
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        f.read_exact(&mut buf)
            .await
            .map_err(|e| io_err("GetObject", loc, e))?;
        Ok(Bytes::from(buf))
    }

    async fn put_object(
        &self,
        loc: &S3Location,
        body: Bytes,
        _enc: &Encryption,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        let p = self.path("PutObject", loc)?;
        write_atomically(&p, Vec::new(), Some(body))
            .await
            .map_err(|e| io_err("PutObject", loc, e))
    }

    async fn create_multipart(
        &self,
        loc: &S3Location,
        _enc: &Encryption,
        _content_type: &str,
    ) -> Result<String, StoreError> {
        self.path("CreateMultipartUpload", loc)?;
        let id = format!(
            "{}-{}",
            std::process::id(),
            self.next_upload.fetch_add(1, Ordering::Relaxed)
        );
        tokio::fs::create_dir_all(self.upload_dir(&id))
            .await
            .map_err(|e| io_err("CreateMultipartUpload", loc, e))?;
        Ok(id)
    }

    async fn upload_part(
        &self,
        loc: &S3Location,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let dir = self.upload_dir(upload_id);
        if !dir.is_dir() {
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                "UploadPart",
                loc,
                "NoSuchUpload",
            ));
        }
        let etag = format!("\"{:08x}-{}\"", crc32fast_hash(&body), body.len());
        tokio::fs::write(dir.join(number.to_string()), &body)
            .await
            .map_err(|e| io_err("UploadPart", loc, e))?;
        Ok(etag)
    }

    /// Copies the range file to file, through a small buffer: the bytes never pass
    /// through the job's memory, as with S3's server-side copy.
    async fn upload_part_copy(
        &self,
        loc: &S3Location,
        upload_id: &str,
        number: i32,
        source: &S3Location,
        source_etag: Option<&str>,
        range: Range<u64>,
    ) -> Result<String, StoreError> {
        const OP: &str = "UploadPartCopy";
        let dir = self.upload_dir(upload_id);
        if !dir.is_dir() {
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                OP,
                loc,
                "NoSuchUpload",
            ));
        }
        let p = self.path(OP, source)?;
        let mut f = tokio::fs::File::open(&p)
            .await
            .map_err(|e| io_err(OP, source, e))?;
        let m = f.metadata().await.map_err(|e| io_err(OP, source, e))?;
        if source_etag.is_some_and(|tag| etag_of(&m) != tag) {
            return Err(StoreError::new(
                StoreErrorKind::Changed,
                OP,
                source,
                "PreconditionFailed: the file changed since it was first read",
            ));
        }
        if range.start >= range.end || range.end > m.len() {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                OP,
                source,
                "InvalidRange",
            ));
        }
        f.seek(SeekFrom::Start(range.start))
            .await
            .map_err(|e| io_err(OP, source, e))?;
        let mut part = tokio::fs::File::create(dir.join(number.to_string()))
            .await
            .map_err(|e| io_err(OP, loc, e))?;
        let want = range.end - range.start;
        let copied = tokio::io::copy(&mut f.take(want), &mut part)
            .await
            .map_err(|e| io_err(OP, loc, e))?;
        part.flush().await.map_err(|e| io_err(OP, loc, e))?;
        if copied != want {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                OP,
                source,
                "InvalidRange",
            ));
        }
        Ok(format!("\"copy-{}-{}-{want}\"", number, range.start))
    }
    async fn complete_multipart(
        &self,
        loc: &S3Location,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), StoreError> {
        let p = self.path("CompleteMultipartUpload", loc)?;
        let dir = self.upload_dir(upload_id);
        let files = parts
            .iter()
            .map(|part| dir.join(part.number.to_string()))
            .collect();
        write_atomically(&p, files, None)
            .await
            .map_err(|e| io_err("CompleteMultipartUpload", loc, e))?;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        Ok(())
    }

    async fn abort_multipart(&self, loc: &S3Location, upload_id: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_dir_all(self.upload_dir(upload_id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("AbortMultipartUpload", loc, e)),
        }
    }

    async fn delete(&self, loc: &S3Location) -> Result<(), StoreError> {
        let p = self.path("DeleteObject", loc)?;
        match tokio::fs::remove_file(&p).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("DeleteObject", loc, e)),
        }
    }
}

fn crc32fast_hash(b: &[u8]) -> u32 {
    // A cheap content tag for local ETags; not a security property.
    let mut h: u32 = 0x811c_9dc5;
    for &x in b.iter().step_by(b.len() / 4096 + 1) {
        h = (h ^ x as u32).wrapping_mul(0x0100_0193);
    }
    h
}
