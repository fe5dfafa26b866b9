//! Server-side copy: output bytes that are a byte range of an input (runs of entries
//! written verbatim, see `artifact_engine::zip::verbatim`) are placed with
//! UploadPartCopy instead of being uploaded by the worker.
//!
//! A run is the bytes written with [`Sink::write_copyable`] that continue one
//! another in one input. Multipart parts must be at least 5 MiB (except the last),
//! so a run is only copied once it is long enough, and the parts around it are
//! shaped for that:
//! - Until a run reaches [`COMMIT`] bytes, its bytes are held (copied out of the
//!   reader's chunks, so the read budget is not pinned). A run that ends shorter is
//!   written like any other bytes.
//! - At [`COMMIT`], the part being filled is topped up to 5 MiB from the run's first
//!   bytes ("a little of a neighbouring run is streamed") and sent; the rest of
//!   what is held, bar the last [`LAG`] bytes, is copied.
//! - From then on nothing is held: copy parts of [`COPY_PART`] bytes are sent while
//!   staying [`LAG`] bytes behind the run's end, so that the copy that closes the run
//!   is never under 5 MiB.
//!
//! The first copy from an input is a probe made while its bytes are still held: if
//! the store refuses it (SeaweedFS answers `NotImplemented` for SSE-KMS sources; some
//! S3-compatible servers have no UploadPartCopy), the held bytes are written instead,
//! that input is never copied from again by this sink, and the log says so. The
//! object's bytes are the same either way; only who moves them differs. A copy that
//! fails after a successful probe fails the output, like a failed upload.
//!
//! Every byte is hashed as it arrives, in object order, so the output's SHA-256 does
//! not depend on which bytes were copied.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::Sink;
use crate::event::S3Location;
use crate::store::{CompletedPart, StoreError};

const MIB: u64 = 1 << 20;
/// The smallest part S3 takes, except the last.
const MIN_PART: u64 = 5 * MIB;
/// Bytes a run must reach before it is copied.
pub(super) const COMMIT: u64 = 3 * MIN_PART;
/// How far copies stay behind a run's end.
const LAG: u64 = MIN_PART;
/// Size of the copy parts of a long run (small enough that copies go on while the
/// run is read, and that what is left to copy when a checkpoint closes the run is
/// short).
const COPY_PART: u64 = 64 * MIB;
/// No run starts copying past this part number (copies use part numbers quickly;
/// the 10,000 S3 allows must last the whole object).
const LAST_COPY_PART: i32 = 9_000;
/// Bytes of a held run hashed at once.
const HASH_BATCH: u64 = MIB;

/// An input object the output's bytes can be copied from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    /// The input object.
    pub location: S3Location,
    /// Its ETag when it was first read: copies are pinned to it.
    pub etag: Option<String>,
}

/// A sink's copy bookkeeping.
#[derive(Debug, Default)]
pub(super) struct CopyState {
    /// Copying is on for this sink.
    pub enabled: bool,
    /// The run being written.
    run: Option<Run>,
    /// Inputs whose first copy was refused.
    refused: Vec<S3Location>,
    /// Inputs a copy succeeded from.
    confirmed: Vec<S3Location>,
    /// Bytes placed by copies.
    pub copied: u64,
}

/// Bytes that continue one another in one input.
#[derive(Debug)]
struct Run {
    source: Arc<CopySource>,
    start: u64,
    end: u64,
    /// The run's bytes until it is committed (then empty).
    held: VecDeque<Bytes>,
    held_len: u64,
    /// Bytes at the back of `held` not yet hashed.
    unhashed: u64,
    /// Once committed: where the bytes not yet copied start.
    copied_to: Option<u64>,
    /// Once committed: bytes not yet hashed (hashed a batch at a time, as a thread
    /// hand-off per slice costs more than the hashing of a small entry).
    to_hash: Vec<Bytes>,
    to_hash_len: u64,
}

impl Run {
    /// Takes the first `n` held bytes.
    fn take_front(&mut self, mut n: u64) -> Vec<Bytes> {
        let mut out = Vec::new();
        while n > 0 {
            let mut b = self.held.pop_front().expect("n is within what is held");
            if b.len() as u64 > n {
                self.held.push_front(b.split_off(n as usize));
            }
            n -= b.len() as u64;
            self.held_len -= b.len() as u64;
            out.push(b);
        }
        out
    }
}

impl Sink {
    /// Turns server-side copy of [`Sink::write_copyable`] runs on or off.
    pub fn with_server_side_copy(mut self, on: bool) -> Self {
        self.copy.enabled = on;
        self
    }

    /// Bytes placed by server-side copies so far.
    pub fn copied(&self) -> u64 {
        self.copy.copied
    }

    /// Appends `data`, which is also bytes `at..` of `source`: the store may copy it
    /// from there instead of receiving it (see the module doc).
    pub async fn write_copyable(
        &mut self,
        data: Bytes,
        source: &Arc<CopySource>,
        at: u64,
    ) -> Result<(), StoreError> {
        let refused = self.copy.refused.contains(&source.location);
        if data.is_empty() {
            return Ok(()); // an empty descriptor neither ends nor extends a run
        }
        if !self.copy.enabled || refused {
            return self.write(data).await;
        }
        let continues = self
            .copy
            .run
            .as_ref()
            .is_some_and(|r| r.source == *source && r.end == at);
        if !continues {
            self.close_run().await?;
            if self.next_part > LAST_COPY_PART {
                return self.write(data).await;
            }
            self.hash_pending().await?;
            self.copy.run = Some(Run {
                source: source.clone(),
                start: at,
                end: at,
                held: VecDeque::new(),
                held_len: 0,
                unhashed: 0,
                copied_to: None,
                to_hash: Vec::new(),
                to_hash_len: 0,
            });
        }
        self.total += data.len() as u64;
        let run = self.run_mut();
        run.end += data.len() as u64;
        let (copied_to, end, source) = (run.copied_to, run.end, run.source.clone());
        match copied_to {
            Some(c) => {
                let run = self.run_mut();
                run.to_hash_len += data.len() as u64;
                run.to_hash.push(data);
                if run.to_hash_len >= HASH_BATCH {
                    self.hash_held().await?;
                }
                if end - LAG - c >= COPY_PART {
                    self.copy_part(&source, c..end - LAG, false).await?;
                    self.run_mut().copied_to = Some(end - LAG);
                }
            }
            None => {
                // Owned, so the reader's chunk (and its read budget) is let go.
                let run = self.run_mut();
                run.held_len += data.len() as u64;
                run.unhashed += data.len() as u64;
                run.held.push_back(Bytes::copy_from_slice(&data));
                if run.unhashed >= HASH_BATCH {
                    self.hash_held().await?;
                }
                if self.run_mut().held_len >= COMMIT {
                    self.commit().await?;
                }
            }
        }
        Ok(())
    }

    /// Bytes held for the run being written.
    pub(super) fn held(&self) -> u64 {
        self.copy.run.as_ref().map_or(0, |r| r.held_len)
    }

    /// Bytes of the committed run not yet sent as copies: closing the run (at a
    /// checkpoint or the end) copies them.
    pub(super) fn to_copy(&self) -> u64 {
        let run = self.copy.run.as_ref();
        run.and_then(|r| r.copied_to.map(|c| r.end - c))
            .unwrap_or(0)
    }

    fn run_mut(&mut self) -> &mut Run {
        self.copy.run.as_mut().expect("a run is open")
    }

    /// Hashes the run's bytes not hashed yet, in one call on the pool.
    async fn hash_held(&mut self) -> Result<(), StoreError> {
        let run = self.run_mut();
        if run.to_hash_len > 0 {
            run.to_hash_len = 0;
            let chunks = std::mem::take(&mut run.to_hash);
            return self.hash_all(chunks).await;
        }
        let mut n = std::mem::take(&mut run.unhashed);
        let mut chunks: Vec<Bytes> = Vec::new();
        for b in run.held.iter().rev() {
            if n == 0 {
                break;
            }
            chunks.push(b.clone());
            n -= b.len() as u64;
        }
        chunks.reverse();
        self.hash_all(chunks).await
    }

    /// The run is long enough: top up the part being filled and send it, then copy
    /// what is held bar the last [`LAG`] bytes (probing the input on its first copy).
    async fn commit(&mut self) -> Result<(), StoreError> {
        self.hash_held().await?;
        let pending = self.buf.len() as u64;
        let top_up = if pending == 0 {
            0
        } else {
            MIN_PART.saturating_sub(pending)
        };
        let front = self.run_mut().take_front(top_up);
        for b in front {
            self.append(b, true).await?;
        }
        if !self.buf.is_empty() {
            self.cut_part().await?;
        }
        let run = self.run_mut();
        let (from, to) = (run.start + top_up, run.end - LAG);
        let source = run.source.clone();
        let probe = !self.copy.confirmed.contains(&source.location);
        match self.copy_part(&source, from..to, probe).await {
            Ok(()) => {
                if probe {
                    self.copy.confirmed.push(source.location.clone());
                }
                let run = self.run_mut();
                run.held.clear();
                run.held_len = 0;
                run.copied_to = Some(to);
            }
            Err(e) if probe => {
                tracing::warn!(
                    source = %source.location,
                    output = %self.loc,
                    error = %e,
                    "the store refused a server-side copy; this input's bytes are \
                     uploaded by the worker instead"
                );
                self.copy.refused.push(source.location.clone());
                let run = self.copy.run.take().expect("a run is open");
                for b in run.held {
                    self.append(b, true).await?;
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Ends the run being written: a committed run's last bytes are copied, a short
    /// run's held bytes are written.
    pub(super) async fn close_run(&mut self) -> Result<(), StoreError> {
        if self.copy.run.is_none() {
            return Ok(());
        }
        self.hash_held().await?;
        let run = self.copy.run.take().expect("checked above");
        match run.copied_to {
            Some(c) => self.copy_part(&run.source, c..run.end, false).await,
            None => {
                for b in run.held {
                    self.append(b, true).await?;
                }
                Ok(())
            }
        }
    }

    /// Copies `range` of `source` as the next part: awaited when `wait` (a probe:
    /// on failure the part number is given back), else sent with the parts in
    /// flight.
    async fn copy_part(
        &mut self,
        source: &Arc<CopySource>,
        range: Range<u64>,
        wait: bool,
    ) -> Result<(), StoreError> {
        let (upload_id, number) = self.next_slot("UploadPartCopy").await?;
        let size = range.end - range.start;
        let (store, loc, src) = (self.store.clone(), self.loc.clone(), source.clone());
        let copy = async move {
            let etag = store
                .upload_part_copy(
                    &loc,
                    &upload_id,
                    number,
                    &src.location,
                    src.etag.as_deref(),
                    range,
                )
                .await?;
            Ok(CompletedPart { number, etag, size })
        };
        if wait {
            match copy.await {
                Ok(part) => self.parts.push(part),
                Err(e) => {
                    self.next_part -= 1;
                    return Err(e);
                }
            }
        } else {
            self.inflight.spawn(copy);
        }
        self.sent += size;
        self.copy.copied += size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::sink::Cleanup;
    use crate::store::memory::MemoryStore;
    use crate::store::{Encryption, ObjectStore};
    use sha2::Digest;

    fn loc(key: &str) -> S3Location {
        S3Location {
            bucket_name: "b".into(),
            object_key: key.into(),
        }
    }

    fn sink(store: &Arc<MemoryStore>) -> Sink {
        let mut settings = Settings::for_memory(256, 1);
        settings.part_size = MIN_PART;
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap(),
        );
        Sink::new(
            store.clone(),
            loc("out"),
            Encryption::default(),
            settings,
            Arc::new(Cleanup::default()),
            pool,
        )
        .with_server_side_copy(true)
    }

    /// Writes `src[range]` in 1 MiB slices as bytes of the source.
    async fn copyable(sink: &mut Sink, src: &Bytes, from: &Arc<CopySource>, r: Range<usize>) {
        let mut at = r.start;
        while at < r.end {
            let end = (at + MIB as usize).min(r.end);
            let data = src.slice(at..end);
            sink.write_copyable(data, from, at as u64).await.unwrap();
            at = end;
        }
    }

    /// A 2 MiB streamed head, a 40 MiB run, 3 streamed bytes, then a 40 MiB run;
    /// with `stops`, the sink is suspended and resumed at two points: 10 MiB into
    /// the first run (before it is committed) and 30 MiB into the second (after).
    async fn write_all(stops: bool) -> (Bytes, crate::sink::SinkSummary, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let src = Bytes::from(
            (0..80 * MIB as usize)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<_>>(),
        );
        store.insert("b", "src", src.clone());
        let etag = store.head(&loc("src")).await.unwrap().etag;
        let from = Arc::new(CopySource {
            location: loc("src"),
            etag,
        });
        let cut = |s: Sink| async {
            if !stops {
                return s;
            }
            let state = s.suspend().await.unwrap();
            sink(&store).resume(state).unwrap()
        };
        let m = MIB as usize;
        let mut s = sink(&store);
        s.write(Bytes::from(vec![1u8; 2 * m])).await.unwrap();
        copyable(&mut s, &src, &from, 0..10 * m).await;
        let mut s = cut(s).await;
        copyable(&mut s, &src, &from, 10 * m..40 * m).await;
        s.write(Bytes::from_static(b"xyz")).await.unwrap();
        copyable(&mut s, &src, &from, 40 * m..70 * m).await;
        let mut s = cut(s).await;
        copyable(&mut s, &src, &from, 70 * m..80 * m).await;
        let summary = s.finish().await.unwrap();
        let (out, _) = store.object("b", "out").unwrap();
        (out, summary, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_are_copied_and_checkpoints_inside_runs_change_no_byte() {
        let (out, summary, store) = write_all(false).await;
        let m = MIB as usize;
        assert_eq!(out.len(), 2 * m + 80 * m + 3);
        assert_eq!(&out[..2 * m], &vec![1u8; 2 * m][..]);
        assert_eq!(&out[42 * m..42 * m + 3], b"xyz");
        assert_eq!(summary.sha256, hex::encode(sha2::Sha256::digest(&out)));
        assert_eq!(store.stats().bytes_copied, summary.copied);
        // Each run gives up to 5 MiB to top up the part before it.
        assert!(summary.copied >= 70 * MIB, "{}", summary.copied);
        let (resumed, summary2, _) = write_all(true).await;
        assert!(resumed == out, "suspended and resumed: the same object");
        assert_eq!(summary2.sha256, summary.sha256);
        // Cut 10 MiB in, the first run's held bytes are uploaded and 30 MiB remain
        // to copy; cut 30 MiB into the second, its copied part is closed there.
        assert!(summary2.copied >= 50 * MIB, "{}", summary2.copied);
    }
}
