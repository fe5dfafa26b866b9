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
mod copy;

pub use copy::CopySource;

use crate::store::{CompletedPart, Encryption, ObjectStore, StoreError, StoreErrorKind};

/// What a job must undo if it fails: its open multipart uploads (and nothing else).
///
/// Uploads an earlier invocation opened (a continued job's) are kept apart: they are
/// aborted only once CodePipeline has taken this job's failure report
/// ([`Cleanup::run_continued`]), because a duplicate delivery of an event that was
/// already handled must not abort the upload the next invocation goes on with.
#[derive(Debug, Default)]
pub struct Cleanup {
    uploads: Mutex<Vec<(S3Location, String)>>,
    continued: Mutex<Vec<(S3Location, String)>>,
    states: Mutex<Vec<S3Location>>,
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
        self.continued.lock().unwrap().retain(|(_, u)| u != id);
    }
    /// Records an upload an earlier invocation opened (see the type's doc).
    pub fn add_continued_upload(&self, loc: &S3Location, id: &str) {
        let mut list = self.continued.lock().unwrap();
        if !list.iter().any(|(_, u)| u == id) {
            list.push((loc.clone(), id.to_string()));
        }
    }
    /// Leaves an upload open on purpose (a checkpoint continues it later).
    pub fn keep_upload(&self, id: &str) {
        self.remove_upload(id);
    }
    /// Records a checkpoint state object this job read or wrote, to delete should
    /// the job fail (see [`Cleanup::run_continued`]).
    pub fn add_continued_state(&self, loc: &S3Location) {
        self.states.lock().unwrap().push(loc.clone());
    }
    /// Aborts the uploads earlier invocations opened and deletes the job's state
    /// objects, once this job's failure was reported; a missing upload (already
    /// completed or aborted) is no problem.
    pub async fn run_continued(&self, store: &dyn ObjectStore) -> Vec<StoreError> {
        let uploads = std::mem::take(&mut *self.continued.lock().unwrap());
        let mut problems = Vec::new();
        for (loc, id) in uploads {
            match store.abort_multipart(&loc, &id).await {
                Err(e) if e.kind != StoreErrorKind::NotFound => problems.push(e),
                _ => {}
            }
        }
        let states = std::mem::take(&mut *self.states.lock().unwrap());
        for loc in states {
            if let Err(e) = store.delete(&loc).await {
                problems.push(e);
            }
        }
        problems
    }
    /// Uploads still open.
    pub fn open_uploads(&self) -> Vec<(S3Location, String)> {
        self.uploads.lock().unwrap().clone()
    }
    /// Aborts open uploads. Returns problems met on the way (they are logged; the
    /// job failure is reported regardless).
    pub async fn run(&self, store: &dyn ObjectStore) -> Vec<StoreError> {
        let continued = self.continued.lock().unwrap().clone();
        let uploads = std::mem::take(&mut *self.uploads.lock().unwrap());
        let mut problems = Vec::new();
        for (loc, id) in uploads {
            if continued.iter().any(|(_, u)| *u == id) {
                continue; // aborted only after the failure report: see run_continued
            }
            if let Err(e) = store.abort_multipart(&loc, &id).await {
                problems.push(e);
            }
        }
        problems
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SinkSummary {
    /// Object size.
    pub bytes: u64,
    /// Hex SHA-256 of the object.
    pub sha256: String,
    /// Parts used (0 for a single PutObject).
    pub parts: usize,
    /// Bytes the store copied server-side from inputs (UploadPartCopy) rather than
    /// receiving them from the worker.
    #[serde(default)]
    pub copied: u64,
}

/// A sink stopped between entries, to go on in a later invocation: the open upload,
/// its completed parts, the bytes of the part in progress (never uploaded early, so
/// part boundaries depend only on the output's bytes) and the running SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkState {
    /// The multipart upload, once one was started.
    pub upload_id: Option<String>,
    /// Parts completed, by number.
    pub parts: Vec<CompletedPart>,
    /// The next part's number.
    pub next_part: i32,
    /// Bytes written so far (parts plus `pending`).
    pub total: u64,
    /// Bytes of the part in progress.
    pub pending: Bytes,
    /// Bytes at the front of `pending` that are in the SHA-256 state already.
    pub pending_hashed: u64,
    /// Bytes placed by server-side copies so far.
    pub copied: u64,
    /// The SHA-256 state after the completed parts and `pending_hashed` bytes.
    pub sha256_state: Vec<u8>,
}

/// An output object being written.
pub struct Sink {
    store: Arc<dyn ObjectStore>,
    loc: S3Location,
    enc: Encryption,
    /// Media type of the object (`application/zip` unless told otherwise).
    content_type: &'static str,
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
    /// Bytes at the front of `buf` already in the digest (the rest is hashed when
    /// its part is cut, or before bytes that come after it are).
    hashed: usize,
    pool: Arc<rayon::ThreadPool>,
    /// Server-side copy of input ranges (see [`copy`]).
    copy: copy::CopyState,
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
            content_type: "application/zip",
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
            hashed: 0,
            pool,
            copy: copy::CopyState::default(),
        }
    }

    /// The object's media type (e.g. `application/gzip` for a tar.gz output).
    pub fn with_content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    /// This new sink, going on from `state` (see [`Sink::suspend`]); its upload is
    /// recorded in the cleanup list as one an earlier invocation opened.
    pub fn resume(mut self, state: SinkState) -> Result<Self, String> {
        let hasher = sha256_from_state(&state.sha256_state)?;
        let parts_bytes: u64 = state.parts.iter().map(|p| p.size).sum();
        if parts_bytes + state.pending.len() as u64 != state.total
            || state.next_part as usize != state.parts.len() + 1
        {
            return Err(format!(
                "the checkpoint's parts ({} bytes in {} parts, next part {}) and pending \
                 bytes ({}) do not add up to the {} bytes it says were written",
                parts_bytes,
                state.parts.len(),
                state.next_part,
                state.pending.len(),
                state.total
            ));
        }
        if let Some(id) = &state.upload_id {
            self.cleanup.add_upload(&self.loc, id);
            self.cleanup.add_continued_upload(&self.loc, id);
        }
        let part = self.settings.part_size_for(state.next_part) as usize;
        self.buf = BytesMut::with_capacity(part);
        self.buf.extend_from_slice(&state.pending);
        if state.pending_hashed > state.pending.len() as u64 {
            return Err(format!(
                "the checkpoint says {} of its {} pending bytes were hashed",
                state.pending_hashed,
                state.pending.len()
            ));
        }
        self.hashed = state.pending_hashed as usize;
        self.copy.copied = state.copied;
        self.next_part = state.next_part;
        self.upload_id = state.upload_id;
        self.parts = state.parts;
        self.total = state.total;
        self.sent = parts_bytes;
        self.hasher = Some(hasher);
        Ok(self)
    }

    /// Stops between entries: waits for the parts in flight and returns what a later
    /// invocation needs to go on. The upload stays open (it is removed from the
    /// cleanup list: the checkpoint owns it now).
    pub async fn suspend(mut self) -> Result<SinkState, StoreError> {
        self.close_run().await?;
        while !self.inflight.is_empty() {
            self.join_one().await?;
        }
        self.parts.sort_by_key(|p| p.number);
        if let Some(id) = &self.upload_id {
            self.cleanup.keep_upload(id);
        }
        let hasher = self
            .hasher
            .take()
            .expect("the digest is back after each part");
        Ok(SinkState {
            upload_id: self.upload_id.take(),
            parts: std::mem::take(&mut self.parts),
            next_part: self.next_part,
            total: self.total,
            pending: std::mem::take(&mut self.buf).freeze(),
            pending_hashed: self.hashed as u64,
            copied: self.copy.copied,
            sha256_state: sha256_state(&hasher),
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.total
    }

    /// Bytes of parts sent but not yet confirmed, and of a run still to be copied:
    /// what a checkpoint waits for.
    pub fn in_flight(&self) -> u64 {
        let confirmed: u64 = self.parts.iter().map(|p| p.size).sum();
        self.sent - confirmed + self.to_copy()
    }

    /// Bytes of the part being filled: what a checkpoint saves in its state.
    pub fn pending(&self) -> u64 {
        self.buf.len() as u64 + self.held()
    }

    /// Appends bytes to the object.
    pub async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.close_run().await?;
        self.total += data.len() as u64;
        self.append(data, false).await
    }

    /// Appends to the part being filled, sending parts as they fill. `hashed`: the
    /// bytes are in the digest already (bytes of a copyable run that was not copied).
    async fn append(&mut self, mut data: Bytes, hashed: bool) -> Result<(), StoreError> {
        debug_assert!(!hashed || self.hashed == self.buf.len());
        while !data.is_empty() {
            let target = self.settings.part_size_for(self.next_part) as usize;
            let take = (target - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data.split_to(take));
            if hashed {
                self.hashed = self.buf.len();
            }
            if self.buf.len() == target {
                self.cut_part().await?;
            }
        }
        Ok(())
    }

    /// Sends the part being filled, hashing first what of it is not in the digest.
    async fn cut_part(&mut self) -> Result<(), StoreError> {
        let next = self.settings.part_size_for(self.next_part + 1) as usize;
        let part = std::mem::replace(&mut self.buf, BytesMut::with_capacity(next)).freeze();
        let unhashed = part.slice(std::mem::take(&mut self.hashed)..);
        self.hash(unhashed).await?;
        self.send_part(part).await
    }

    /// Puts the rest of the part being filled into the digest (before bytes that
    /// come after it are hashed).
    async fn hash_pending(&mut self) -> Result<(), StoreError> {
        if self.hashed < self.buf.len() {
            let rest = Bytes::copy_from_slice(&self.buf[self.hashed..]);
            self.hashed = self.buf.len();
            self.hash(rest).await?;
        }
        Ok(())
    }

    /// Adds `bytes` (the next bytes of the object, in order) to the digest, on the
    /// pool.
    async fn hash(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        self.hash_all(vec![bytes]).await
    }

    /// Adds `chunks` (the next bytes of the object, in order) to the digest, in one
    /// call on the pool.
    async fn hash_all(&mut self, chunks: Vec<Bytes>) -> Result<(), StoreError> {
        let mut hasher = self
            .hasher
            .take()
            .expect("the digest is back after each part");
        let done = crate::bridge::on_pool(&self.pool, move || {
            for b in &chunks {
                hasher.update(b);
            }
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
        let (upload_id, number) = self.next_slot("UploadPart").await?;
        self.sent += part.len() as u64;
        let (store, loc) = (self.store.clone(), self.loc.clone());
        self.inflight.spawn(async move {
            let size = part.len() as u64;
            let etag = store.upload_part(&loc, &upload_id, number, part).await?;
            Ok(CompletedPart { number, etag, size })
        });
        Ok(())
    }

    /// The upload (started on first use) and the number of the next part, once
    /// there is room for it among the parts in flight.
    async fn next_slot(&mut self, op: &'static str) -> Result<(String, i32), StoreError> {
        if self.next_part > 10_000 {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                op,
                &self.loc,
                "more than 10,000 parts",
            ));
        }
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .store
                    .create_multipart(&self.loc, &self.enc, self.content_type)
                    .await?;
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
        Ok((upload_id, number))
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
        self.close_run().await?;
        let rest = std::mem::take(&mut self.buf).freeze();
        let hashed = std::mem::take(&mut self.hashed);
        self.hash(rest.slice(hashed..)).await?;
        let sha256 = hex::encode(self.hasher.take().expect("hashed above").finalize());
        if self.upload_id.is_none() {
            self.store
                .put_object(&self.loc, rest, &self.enc, self.content_type)
                .await?;
            return Ok(SinkSummary {
                bytes: self.total,
                sha256,
                parts: 0,
                copied: 0,
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
            copied: self.copy.copied,
        })
    }
}

/// The SHA-256 state as bytes (the digest's own serialization).
fn sha256_state(hasher: &Sha256) -> Vec<u8> {
    use sha2::digest::common::hazmat::SerializableState;
    hasher.serialize().to_vec()
}

fn sha256_from_state(bytes: &[u8]) -> Result<Sha256, String> {
    use sha2::digest::common::hazmat::SerializableState;
    let state = bytes
        .try_into()
        .map_err(|_| format!("a SHA-256 state of {} bytes", bytes.len()))?;
    Sha256::deserialize(state).map_err(|_| "an invalid SHA-256 state".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_state_round_trips_mid_block() {
        let mut a = Sha256::new();
        a.update(b"hello, a block and a half of bytes: 0123456789abcdef0123456789abcdef0123");
        let mut b = sha256_from_state(&sha256_state(&a)).unwrap();
        a.update(b" and the rest");
        b.update(b" and the rest");
        assert_eq!(a.finalize(), b.finalize());
        assert!(sha256_from_state(&[1, 2, 3]).is_err());
    }
}
