//! Writing an output zip to the object store as it is produced.
//!
//! Bytes are cut into parts (8 MiB first, growing so 10,000 parts cover any size) and
//! uploaded with `upload_concurrency` parts in flight; when that many are in flight,
//! [`Sink::write`] waits (backpressure). An output smaller than one part is sent with
//! a single PutObject. Before CompleteMultipartUpload the part numbers, count and total
//! size are checked against what was written. Open uploads are recorded in a
//! [`Cleanup`] so that a failed or timed-out job aborts them: no partial object, no
//! orphan upload.
//!
//! Completed objects are never deleted. The same job can be delivered twice, and an
//! object at an output key may be the completed output of an earlier delivery that
//! already succeeded; CodePipeline ignores a failed job's outputs, so leaving a
//! completed object costs nothing, while deleting one could lose an artifact.
//! The SHA-256 of the output is computed on the way through, once, part by part on
//! the rayon pool (never on the async threads), in part order.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::event::S3Location;
use crate::store::{CompletedPart, Encryption, ObjectStore, StoreError, StoreErrorKind};

/// What a job must undo if it fails: its open multipart uploads (and nothing else).
#[derive(Debug, Default)]
pub struct Cleanup {
    uploads: Mutex<Vec<(S3Location, String)>>,
}

impl Cleanup {
    fn add_upload(&self, loc: &S3Location, id: &str) {
        self.uploads
            .lock()
            .unwrap()
            .push((loc.clone(), id.to_string()));
    }
    fn remove_upload(&self, id: &str) {
        self.uploads.lock().unwrap().retain(|(_, u)| u != id);
    }
    /// Uploads still open.
    pub fn open_uploads(&self) -> Vec<(S3Location, String)> {
        self.uploads.lock().unwrap().clone()
    }
    /// Aborts open uploads. Returns problems met on the way (they are logged; the
    /// job failure is reported regardless).
    pub async fn run(&self, store: &dyn ObjectStore) -> Vec<StoreError> {
        let uploads = std::mem::take(&mut *self.uploads.lock().unwrap());
        let mut problems = Vec::new();
        for (loc, id) in uploads {
            if let Err(e) = store.abort_multipart(&loc, &id).await {
                problems.push(e);
            }
        }
        problems
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSummary {
    /// Object size.
    pub bytes: u64,
    /// Hex SHA-256 of the object.
    pub sha256: String,
    /// Parts used (0 for a single PutObject).
    pub parts: usize,
}

/// An output object being written.
pub struct Sink {
    store: Arc<dyn ObjectStore>,
    loc: S3Location,
    enc: Encryption,
    settings: Settings,
    cleanup: Arc<Cleanup>,
    buf: BytesMut,
    next_part: i32,
    upload_id: Option<String>,
    inflight: JoinSet<Result<CompletedPart, StoreError>>,
    parts: Vec<CompletedPart>,
    total: u64,
    sent: u64,
    /// The running digest; `None` only while a part is being hashed on the pool.
    hasher: Option<Sha256>,
    pool: Arc<rayon::ThreadPool>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("loc", &self.loc)
            .field("total", &self.total)
            .field("next_part", &self.next_part)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// A sink for `loc`; nothing is sent until the first part fills.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        loc: S3Location,
        enc: Encryption,
        settings: Settings,
        cleanup: Arc<Cleanup>,
        pool: Arc<rayon::ThreadPool>,
    ) -> Self {
        let first = settings.part_size_for(1) as usize;
        Sink {
            store,
            loc,
            enc,
            settings,
            cleanup,
            buf: BytesMut::with_capacity(first),
            next_part: 1,
            upload_id: None,
            inflight: JoinSet::new(),
            parts: Vec::new(),
            total: 0,
            sent: 0,
            hasher: Some(Sha256::new()),
            pool,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.total
    }

    /// Appends bytes to the object.
    pub async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.total += data.len() as u64;
        let mut data = data;
        while !data.is_empty() {
            let target = self.settings.part_size_for(self.next_part) as usize;
            let room = target - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data.split_to(take));
            if self.buf.len() == target {
                let next = self.settings.part_size_for(self.next_part + 1) as usize;
                let part = std::mem::replace(&mut self.buf, BytesMut::with_capacity(next)).freeze();
                self.hash(part.clone()).await?;
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    /// Adds `bytes` (the next bytes of the object, in order) to the digest, on the
    /// pool.
    async fn hash(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        let mut hasher = self
            .hasher
            .take()
            .expect("the digest is back after each part");
        let done = crate::bridge::on_pool(&self.pool, move || {
            hasher.update(&bytes);
            hasher
        })
        .await;
        self.hasher = Some(done.map_err(|panic| {
            StoreError::new(
                StoreErrorKind::Invalid,
                "UploadPart",
                &self.loc,
                format!("hashing the output panicked: {panic}"),
            )
        })?);
        Ok(())
    }

    async fn send_part(&mut self, part: Bytes) -> Result<(), StoreError> {
        if self.next_part > 10_000 {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                "UploadPart",
                &self.loc,
                "more than 10,000 parts",
            ));
        }
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self.store.create_multipart(&self.loc, &self.enc).await?;
                self.cleanup.add_upload(&self.loc, &id);
                self.upload_id = Some(id.clone());
                id
            }
        };
        while self.inflight.len() >= self.settings.upload_concurrency.max(1) {
            self.join_one().await?;
        }
        let number = self.next_part;
        self.next_part += 1;
        self.sent += part.len() as u64;
        let (store, loc) = (self.store.clone(), self.loc.clone());
        self.inflight.spawn(async move {
            let size = part.len() as u64;
            let etag = store.upload_part(&loc, &upload_id, number, part).await?;
            Ok(CompletedPart { number, etag, size })
        });
        Ok(())
    }

    async fn join_one(&mut self) -> Result<(), StoreError> {
        match self.inflight.join_next().await {
            Some(Ok(r)) => {
                self.parts.push(r?);
                Ok(())
            }
            Some(Err(e)) => Err(StoreError::new(
                StoreErrorKind::Invalid,
                "UploadPart",
                &self.loc,
                format!("upload task failed: {e}"),
            )),
            None => Ok(()),
        }
    }

    /// Sends what is left, verifies the parts and completes the object.
    pub async fn finish(mut self) -> Result<SinkSummary, StoreError> {
        let rest = std::mem::take(&mut self.buf).freeze();
        self.hash(rest.clone()).await?;
        let sha256 = hex::encode(self.hasher.take().expect("hashed above").finalize());
        if self.upload_id.is_none() {
            self.store.put_object(&self.loc, rest, &self.enc).await?;
            return Ok(SinkSummary {
                bytes: self.total,
                sha256,
                parts: 0,
            });
        }
        if !rest.is_empty() {
            self.send_part(rest).await?;
        }
        while !self.inflight.is_empty() {
            self.join_one().await?;
        }
        self.parts.sort_by_key(|p| p.number);
        let upload_id = self.upload_id.clone().expect("checked above");
        let verify = |why: String| {
            StoreError::new(
                StoreErrorKind::Invalid,
                "CompleteMultipartUpload",
                &self.loc,
                why,
            )
        };
        let expected = (self.next_part - 1) as usize;
        if self.parts.len() != expected
            || self
                .parts
                .iter()
                .enumerate()
                .any(|(i, p)| p.number != i as i32 + 1)
        {
            return Err(verify(format!(
                "{} parts uploaded, {expected} expected",
                self.parts.len()
            )));
        }
        let sum: u64 = self.parts.iter().map(|p| p.size).sum();
        if sum != self.total || self.sent != self.total {
            return Err(verify(format!(
                "parts hold {sum} bytes, {} were written",
                self.total
            )));
        }
        self.store
            .complete_multipart(&self.loc, &upload_id, &self.parts)
            .await?;
        self.cleanup.remove_upload(&upload_id);
        Ok(SinkSummary {
            bytes: self.total,
            sha256,
            parts: self.parts.len(),
        })
    }
}
