//! Streaming the wanted entries' bytes: coalesced ranged GETs within the read budget,
//! turned into [`Piece`]s in order by a producer task (see the parent module for the
//! invariants: pinned reads, bounded regions, budgets, the end marker).

mod inflated;

pub use inflated::inflation_passes;

use std::ops::Range;
use std::sync::Arc;

use artifact_engine::entry::header_len;
use artifact_engine::zip::CdEntry;
use artifact_engine::ZipError;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::ZipIndex;
use crate::error::ArtifactCause;
use crate::store::{ObjectStore, StoreError};

/// A wanted entry: index into [`ZipIndex::entries`], and whether its data must be
/// assembled whole (it will be transformed).
#[derive(Debug, Clone, Copy)]
pub struct Want {
    /// Entry index.
    pub entry: usize,
    /// Needs the whole region in memory; the value is its footprint in bytes, taken
    /// from the transform budget before assembly.
    pub whole: Option<u64>,
    /// Always send as [`Piece::BigStart`] / data / end, even when the region fits
    /// in one chunk (entries transformed as they stream).
    pub pieces: bool,
    /// Caller's tag, returned with the pieces.
    pub tag: usize,
}

/// Data of the wanted entries, in order, then [`Piece::End`].
#[derive(Debug)]
pub enum Piece {
    /// The entry's whole region (local header, data, any descriptor).
    Whole {
        /// Caller's tag.
        tag: usize,
        /// The region.
        region: Bytes,
        /// The entry's share of the transform budget (for entries wanted whole).
        permit: Option<OwnedSemaphorePermit>,
    },
    /// A large entry starts; its local header was checked.
    BigStart {
        /// Caller's tag.
        tag: usize,
        /// The local header's bytes (empty for a member of an inflated inner zip).
        header: Bytes,
        /// The length of the entry's region (0 for such a member).
        region_len: u64,
    },
    /// The next slice of a large entry's compressed data.
    BigData(Bytes),
    /// A large entry ended; all its data was sent. `tail`: the region's bytes after
    /// the data (its data descriptor, if any).
    BigEnd {
        /// The bytes after the data.
        tail: Bytes,
    },
    /// Every wanted entry was sent.
    End,
}

struct Permitted {
    data: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Permitted {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// Budgets that bound what reading holds in memory.
#[derive(Debug, Clone)]
pub struct Budgets {
    /// Bytes of fetched chunks (one permit per byte).
    pub read: Arc<Semaphore>,
    /// Its size in bytes.
    pub read_bytes: u64,
    /// Bytes held by entries being transformed (one permit per KiB).
    pub transform: Arc<Semaphore>,
    /// Its size in KiB.
    pub transform_kib: u32,
}

impl Budgets {
    /// Budgets of `read_bytes` and `transform_bytes`.
    pub fn new(read_bytes: u64, transform_bytes: u64) -> Self {
        let read_bytes = read_bytes.clamp(1, u32::MAX as u64);
        let transform_kib = (transform_bytes / 1024).clamp(1, u32::MAX as u64 >> 4) as u32;
        Budgets {
            read: Arc::new(Semaphore::new(read_bytes as usize)),
            read_bytes,
            transform: Arc::new(Semaphore::new(transform_kib as usize)),
            transform_kib,
        }
    }

    /// Takes `bytes` from the transform budget (all of it when `bytes` is larger:
    /// such an entry is transformed alone).
    async fn take_transform(&self, bytes: u64) -> OwnedSemaphorePermit {
        let kib = bytes.div_ceil(1024).clamp(1, self.transform_kib as u64) as u32;
        self.transform
            .clone()
            .acquire_many_owned(kib)
            .await
            .expect("the transform budget is never closed")
    }
}

/// Read settings for [`stream_entries`].
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// Largest ranged GET.
    pub chunk: u64,
    /// GETs in flight.
    pub concurrency: usize,
    /// Gaps up to this size between wanted regions are read through rather than
    /// starting a new request.
    pub max_gap: u64,
}

/// Groups regions into ranged requests: neighbouring regions share a request up to
/// `chunk` bytes; a region larger than `chunk` is split into several requests.
pub fn plan_requests(regions: &[Range<u64>], plan: &ReadPlan) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in regions {
        if r.is_empty() {
            continue;
        }
        if r.end - r.start > plan.chunk {
            let mut s = r.start;
            while s < r.end {
                let e = (s + plan.chunk).min(r.end);
                out.push(s..e);
                s = e;
            }
            continue;
        }
        match out.last_mut() {
            Some(last)
                if r.start >= last.end
                    && r.start - last.end <= plan.max_gap
                    && r.end - last.start <= plan.chunk =>
            {
                last.end = r.end
            }
            _ => out.push(r.clone()),
        }
    }
    out
}

/// Streams the wanted entries' data from `store`, within `budgets`.
pub fn stream_entries(
    store: Arc<dyn ObjectStore>,
    index: Arc<ZipIndex>,
    wants: Vec<Want>,
    plan: ReadPlan,
    budgets: Budgets,
) -> impl Stream<Item = Result<Piece, ArtifactCause>> + Send + 'static {
    let chunk = plan.chunk.min(budgets.read_bytes).max(1);
    let plan = ReadPlan { chunk, ..plan };
    let regions = inflated::member_regions(&index, &wants);
    let requests = plan_requests(&regions, &plan);
    let loc = index.location.clone();
    let etag = index.etag.clone();
    let read_budget = budgets.read.clone();
    let chunks = futures::stream::iter(requests)
        .map(move |r| {
            let (store, budget) = (store.clone(), read_budget.clone());
            let (loc, etag) = (loc.clone(), etag.clone());
            async move {
                let permit = budget
                    .acquire_many_owned((r.end - r.start) as u32)
                    .await
                    .expect("budget semaphore is never closed");
                let data = store.get_range(&loc, r.clone(), etag.as_deref()).await?;
                let data = Bytes::from_owner(Permitted {
                    data,
                    _permit: permit,
                });
                Ok::<_, StoreError>((r.start, data))
            }
        })
        .buffered(plan.concurrency.max(1))
        .map_err(ArtifactCause::from);
    spawn_producer(move |tx| async move {
        let mut producer = Producer {
            chunks: ChunkCursor {
                chunks: Box::pin(chunks),
                cur: None,
            },
            tx,
            budgets,
            chunk,
            inflating: None,
        };
        if let Err(e) = producer.run(&index, &wants, regions).await {
            let _ = producer.tx.send(Err(e)).await;
        }
    })
}

/// Ordered chunks, and the one being read from.
struct ChunkCursor<S> {
    chunks: S,
    cur: Option<(u64, Bytes)>,
}

impl<S> ChunkCursor<S>
where
    S: Stream<Item = Result<(u64, Bytes), ArtifactCause>> + Unpin,
{
    /// The chunk holding byte `pos`, and its start. Requested ranges are visited in
    /// increasing order, so chunks before `pos` are dropped on the way.
    async fn covering(&mut self, pos: u64) -> Result<(u64, Bytes), ArtifactCause> {
        loop {
            if let Some((s, b)) = &self.cur {
                if pos >= *s && pos < *s + b.len() as u64 {
                    return Ok((*s, b.clone()));
                }
            }
            self.cur = match self.chunks.next().await {
                Some(c) => Some(c?),
                None => {
                    return Err(ArtifactCause::Verify(format!(
                        "the read plan ended before offset {pos}"
                    )))
                }
            };
        }
    }
}

/// Why production stopped early without an error: the consumer went away.
struct Gone;

/// Sends a piece; `Gone` when the consumer went away. (A free function borrowing
/// only the sender, so the producer's futures stay `Send`.)
async fn send(tx: &mpsc::Sender<Result<Piece, ArtifactCause>>, piece: Piece) -> Result<(), Gone> {
    tx.send(Ok(piece)).await.map_err(|_| Gone)
}

/// Turns ordered chunks into pieces and sends them.
struct Producer<S> {
    chunks: ChunkCursor<S>,
    tx: mpsc::Sender<Result<Piece, ArtifactCause>>,
    budgets: Budgets,
    /// The largest ranged GET (and slice of an inflated member sent).
    chunk: u64,
    /// The deflated inner zip being inflated for its members, if any.
    inflating: Option<inflated::Inflating>,
}

impl<S> Producer<S>
where
    S: Stream<Item = Result<(u64, Bytes), ArtifactCause>> + Unpin,
{
    async fn run(
        &mut self,
        index: &ZipIndex,
        wants: &[Want],
        regions: Vec<Range<u64>>,
    ) -> Result<(), ArtifactCause> {
        for (w, r) in wants.iter().zip(regions) {
            let e = &index.entries[w.entry];
            if let Some((c, data)) = index.deflated_container(w.entry) {
                if self.member(index, w, c, data).await?.is_err() {
                    return Ok(());
                }
                continue;
            }
            self.inflating = None;
            let sent = match w.whole {
                Some(footprint) => self.whole(w.tag, r, footprint).await?,
                None => self.streamed(e, w, r).await?,
            };
            if sent.is_err() {
                return Ok(());
            }
        }
        let _ = send(&self.tx, Piece::End).await;
        Ok(())
    }

    /// Sends an entry's region whole: a slice of one chunk, or (taking its share
    /// of the transform budget first) copied together from several.
    async fn whole(
        &mut self,
        tag: usize,
        r: Range<u64>,
        footprint: u64,
    ) -> Result<Result<(), Gone>, ArtifactCause> {
        let permit = Some(self.budgets.take_transform(footprint).await);
        let (cs, cb) = self.chunks.covering(r.start).await?;
        let off = (r.start - cs) as usize;
        let len = (r.end - r.start) as usize;
        let region = if off + len <= cb.len() {
            cb.slice(off..off + len)
        } else {
            let mut buf = BytesMut::with_capacity(len);
            let mut pos = r.start;
            while pos < r.end {
                let (cs, cb) = self.chunks.covering(pos).await?;
                let a = (pos - cs) as usize;
                let b = ((r.end - cs) as usize).min(cb.len());
                buf.extend_from_slice(&cb[a..b]);
                pos = cs + b as u64;
            }
            buf.freeze()
        };
        Ok(send(
            &self.tx,
            Piece::Whole {
                tag,
                region,
                permit,
            },
        )
        .await)
    }

    /// Sends a raw entry: whole when it sits in one chunk, else its checked header
    /// and then its data chunk by chunk.
    async fn streamed(
        &mut self,
        e: &CdEntry,
        w: &Want,
        r: Range<u64>,
    ) -> Result<Result<(), Gone>, ArtifactCause> {
        let tag = w.tag;
        let (cs, cb) = self.chunks.covering(r.start).await?;
        let off = (r.start - cs) as usize;
        if !w.pieces && off as u64 + (r.end - r.start) <= cb.len() as u64 {
            let region = cb.slice(off..off + (r.end - r.start) as usize);
            return Ok(send(
                &self.tx,
                Piece::Whole {
                    tag,
                    region,
                    permit: None,
                },
            )
            .await);
        }
        let hlen = header_len(e, &cb.slice(off..))?;
        let Range {
            start: data_start,
            end: data_end,
        } = data_span(e, r.start + hlen, r.end)?;
        let start = Piece::BigStart {
            tag,
            header: cb.slice(off..off + hlen as usize),
            region_len: r.end - r.start,
        };
        if send(&self.tx, start).await.is_err() {
            return Ok(Err(Gone));
        }
        let mut pos = data_start;
        while pos < data_end {
            let (cs, cb) = self.chunks.covering(pos).await?;
            let a = (pos - cs) as usize;
            let b = ((data_end - cs) as usize).min(cb.len());
            if send(&self.tx, Piece::BigData(cb.slice(a..b)))
                .await
                .is_err()
            {
                return Ok(Err(Gone));
            }
            pos = cs + b as u64;
        }
        let mut tail = BytesMut::new();
        while pos < r.end {
            let (cs, cb) = self.chunks.covering(pos).await?;
            let a = (pos - cs) as usize;
            let b = ((r.end - cs) as usize).min(cb.len());
            tail.extend_from_slice(&cb[a..b]);
            pos = cs + b as u64;
        }
        let tail = tail.freeze();
        Ok(send(&self.tx, Piece::BigEnd { tail }).await)
    }
}

/// The data of entry `e`, starting at `start` (after its local header), checked to end
/// by `region_end`.
fn data_span(e: &CdEntry, start: u64, region_end: u64) -> Result<Range<u64>, ArtifactCause> {
    match start.checked_add(e.compressed_size) {
        Some(end) if end <= region_end => Ok(start..end),
        _ => Err(ZipError::Malformed(format!(
            "entry {:?}: data overlaps the next entry or the central directory",
            e.name
        ))
        .into()),
    }
}

/// A stream fed by a spawned producer task through a small channel, so reading runs
/// ahead while the consumer waits on the sink. The task is aborted when the stream
/// is dropped (e.g. a job deadline).
fn spawn_producer<T, F, Fut>(f: F) -> impl Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(4);
    let task = tokio::spawn(f(tx));
    let guard = AbortOnDrop(task);
    futures::stream::poll_fn(move |cx| {
        let _keep = &guard;
        rx.poll_recv(cx)
    })
}

/// Aborts the producer when the consumer goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_coalesce_and_split() {
        let p = ReadPlan {
            chunk: 100,
            concurrency: 2,
            max_gap: 10,
        };
        let r = plan_requests(&[0..30, 30..60, 65..90, 200..210, 210..530, 530..540], &p);
        // The tail of a split region shares its request with the small region after it.
        assert_eq!(
            r,
            vec![0..90, 200..210, 210..310, 310..410, 410..510, 510..540]
        );
    }
}
