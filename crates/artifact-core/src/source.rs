//! Reading input zips from the object store by HTTP ranges.
//!
//! [`load_index`] fetches the tail of the object (end record, zip64 record, and the
//! central directory when it fits there; separate ranges otherwise) and parses the
//! central directory. [`stream_entries`] then reads the regions of the wanted entries
//! in order, coalescing neighbouring regions into ranged GETs of up to
//! `read_chunk` bytes, with `read_concurrency` requests in flight. Every chunk holds
//! permits from a byte budget until the last slice of it is dropped downstream, so
//! bytes in flight between the store and the sink never exceed the budget (plus the
//! entries being transformed). The object is never held whole in memory or on disk.
//!
//! Entries whose region fits in one chunk arrive whole ([`Piece::Whole`]); larger
//! entries arrive as a verified local header and then data slices
//! ([`Piece::BigStart`] / [`Piece::BigData`] / [`Piece::BigEnd`]) unless they must be
//! transformed, in which case they are assembled (bounded by `max_transform_size`).

use std::ops::Range;
use std::sync::Arc;

use artifact_engine::entry::header_len;
use artifact_engine::zip::read::{
    parse_central_directory, parse_eocd64, parse_tail, region_ends, EOCD64_LEN, TAIL_LEN,
};
use artifact_engine::zip::{CdEntry, Eocd, TailParse};
use artifact_engine::ZipError;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ArtifactCause;
use crate::event::S3Location;
use crate::store::{ObjectStore, StoreError};

/// Largest central directory we agree to load.
pub const MAX_CD_SIZE: u64 = 256 << 20;

/// An input archive's central directory.
#[derive(Debug)]
pub struct ZipIndex {
    /// Where it is.
    pub location: S3Location,
    /// Object size.
    pub size: u64,
    /// End record.
    pub eocd: Eocd,
    /// Entries in central directory order.
    pub entries: Vec<CdEntry>,
    /// End of each entry's region (see `region_ends`).
    pub ends: Vec<u64>,
}

/// Reads and validates the central directory of the zip at `loc`.
pub async fn load_index(
    store: &dyn ObjectStore,
    loc: &S3Location,
) -> Result<ZipIndex, ArtifactCause> {
    let size = store.size(loc).await?;
    if size == 0 {
        return Err(ZipError::NotZip("the object is empty (0 bytes)".into()).into());
    }
    let tail_len = size.min(TAIL_LEN);
    let tail_start = size - tail_len;
    let tail = store.get_range(loc, tail_start..size).await?;
    let in_tail = |r: Range<u64>| -> Option<Bytes> {
        (r.start >= tail_start && r.end <= size)
            .then(|| tail.slice((r.start - tail_start) as usize..(r.end - tail_start) as usize))
    };
    let eocd = match parse_tail(&tail, size)? {
        TailParse::Done(e) => e,
        TailParse::NeedEocd64 {
            offset,
            declared,
            partial,
        } => {
            let mut result = Err(ZipError::Malformed("zip64 end record not found".into()));
            for at in [offset, declared] {
                if at + EOCD64_LEN > size {
                    continue;
                }
                let rec = match in_tail(at..at + EOCD64_LEN) {
                    Some(b) => b,
                    None => store.get_range(loc, at..at + EOCD64_LEN).await?,
                };
                result = parse_eocd64(&rec, partial.clone(), at);
                if result.is_ok() {
                    break;
                }
            }
            result?
        }
    };
    if eocd.cd_size > MAX_CD_SIZE {
        return Err(ZipError::Limit(format!(
            "central directory of {} bytes (the limit is {MAX_CD_SIZE})",
            eocd.cd_size
        ))
        .into());
    }
    let cd_range = eocd.cd_offset..eocd.cd_offset + eocd.cd_size;
    let cd = match in_tail(cd_range.clone()) {
        Some(b) => b,
        None => store.get_range(loc, cd_range).await?,
    };
    let entries = parse_central_directory(&cd, &eocd)?;
    let ends = region_ends(&entries, eocd.cd_offset)?;
    Ok(ZipIndex {
        location: loc.clone(),
        size,
        eocd,
        entries,
        ends,
    })
}

/// A wanted entry: index into [`ZipIndex::entries`], and whether its data must be
/// assembled whole (it will be transformed).
#[derive(Debug, Clone, Copy)]
pub struct Want {
    /// Entry index.
    pub entry: usize,
    /// Needs the whole region in memory.
    pub whole: bool,
    /// Caller's tag, returned with the pieces.
    pub tag: usize,
}

/// Data of the wanted entries, in order.
#[derive(Debug)]
pub enum Piece {
    /// The entry's whole region (local header, data, any descriptor).
    Whole {
        /// Caller's tag.
        tag: usize,
        /// The region.
        region: Bytes,
    },
    /// A large entry starts; its local header was checked.
    BigStart {
        /// Caller's tag.
        tag: usize,
    },
    /// The next slice of a large entry's compressed data.
    BigData(Bytes),
    /// A large entry ended; all its data was sent.
    BigEnd,
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

/// Streams the wanted entries' data from `store`. `budget` bounds the bytes held by
/// fetched chunks (each request takes permits for its size until dropped).
pub fn stream_entries(
    store: Arc<dyn ObjectStore>,
    index: Arc<ZipIndex>,
    wants: Vec<Want>,
    plan: ReadPlan,
    budget: Arc<Semaphore>,
    budget_bytes: u64,
) -> impl Stream<Item = Result<Piece, ArtifactCause>> + Send + 'static {
    let chunk = plan.chunk.min(budget_bytes).max(1);
    let plan = ReadPlan { chunk, ..plan };
    let regions: Vec<Range<u64>> = wants
        .iter()
        .map(|w| index.entries[w.entry].header_offset..index.ends[w.entry])
        .collect();
    let requests = plan_requests(&regions, &plan);
    let loc = index.location.clone();
    let chunks = futures::stream::iter(requests)
        .map(move |r| {
            let store = store.clone();
            let budget = budget.clone();
            let loc = loc.clone();
            async move {
                let permit = budget
                    .acquire_many_owned((r.end - r.start) as u32)
                    .await
                    .expect("budget semaphore is never closed");
                let data = store.get_range(&loc, r.clone()).await?;
                Ok::<_, StoreError>((
                    r.start,
                    Bytes::from_owner(Permitted {
                        data,
                        _permit: permit,
                    }),
                ))
            }
        })
        .buffered(plan.concurrency.max(1))
        .map_err(ArtifactCause::from);
    assemble(chunks, index, wants, regions)
}

/// Turns ordered chunks into pieces.
fn assemble<S>(
    chunks: S,
    index: Arc<ZipIndex>,
    wants: Vec<Want>,
    regions: Vec<Range<u64>>,
) -> impl Stream<Item = Result<Piece, ArtifactCause>> + Send + 'static
where
    S: Stream<Item = Result<(u64, Bytes), ArtifactCause>> + Send + Unpin + 'static,
{
    async_stream_like(move |tx| async move {
        let mut chunks = chunks;
        let mut cur: Option<(u64, Bytes)> = None;
        // Returns the bytes [start, end) from the chunk stream; all requested ranges
        // are visited in increasing order, and small regions never span chunks.
        macro_rules! next_chunk_covering {
            ($pos:expr) => {{
                let want: u64 = $pos;
                loop {
                    if let Some((s, b)) = &cur {
                        if want >= *s && want < *s + b.len() as u64 {
                            break;
                        }
                    }
                    match chunks.next().await {
                        Some(Ok(c)) => cur = Some(c),
                        Some(Err(e)) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                        None => {
                            let _ = tx
                                .send(Err(ArtifactCause::Verify(format!(
                                    "read plan ended before offset {}",
                                    $pos
                                ))))
                                .await;
                            return;
                        }
                    }
                }
                let (s, b) = cur.as_ref().unwrap();
                (*s, b.clone())
            }};
        }
        for (w, r) in wants.iter().zip(regions) {
            let e = &index.entries[w.entry];
            let len = r.end - r.start;
            let (cs, cb) = next_chunk_covering!(r.start);
            let off = (r.start - cs) as usize;
            if off as u64 + len <= cb.len() as u64 {
                let region = cb.slice(off..off + len as usize);
                if tx
                    .send(Ok(Piece::Whole { tag: w.tag, region }))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            // Region spans several chunks.
            if w.whole {
                let mut buf = BytesMut::with_capacity(len as usize);
                let mut pos = r.start;
                while pos < r.end {
                    let (cs, cb) = next_chunk_covering!(pos);
                    let a = (pos - cs) as usize;
                    let b = ((r.end - cs) as usize).min(cb.len());
                    buf.extend_from_slice(&cb[a..b]);
                    pos = cs + b as u64;
                }
                if tx
                    .send(Ok(Piece::Whole {
                        tag: w.tag,
                        region: buf.freeze(),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            // Large raw entry: check the header (within the first chunk), then stream data.
            let first = cb.slice(off..);
            let hlen = match header_len(e, &first) {
                Ok(h) => h,
                Err(err) => {
                    let _ = tx.send(Err(err.into())).await;
                    return;
                }
            };
            let data_start = r.start + hlen;
            let data_end = data_start + e.compressed_size;
            if data_end > r.end {
                let _ = tx
                    .send(Err(ZipError::Malformed(format!(
                        "entry {:?}: data overlaps the next entry or the central directory",
                        e.name
                    ))
                    .into()))
                    .await;
                return;
            }
            if tx.send(Ok(Piece::BigStart { tag: w.tag })).await.is_err() {
                return;
            }
            let mut pos = data_start;
            while pos < data_end {
                let (cs, cb) = next_chunk_covering!(pos);
                let a = (pos - cs) as usize;
                let b = ((data_end - cs) as usize).min(cb.len());
                if tx.send(Ok(Piece::BigData(cb.slice(a..b)))).await.is_err() {
                    return;
                }
                pos = cs + b as u64;
            }
            if tx.send(Ok(Piece::BigEnd)).await.is_err() {
                return;
            }
        }
    })
}

/// A stream fed by a spawned producer task through a small channel, so reading runs
/// ahead while the consumer waits on the sink. The task stops when the stream is
/// dropped (its next send fails).
fn async_stream_like<T, F, Fut>(f: F) -> impl Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(f(tx));
    let guard = AbortOnDrop(task);
    futures::stream::poll_fn(move |cx| {
        let _keep = &guard;
        rx.poll_recv(cx)
    })
}

/// Aborts the producer when the consumer goes away (e.g. a job deadline).
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
