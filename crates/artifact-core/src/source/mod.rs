//! Reading input zips from the object store by HTTP ranges: [`load_index`] here,
//! entry data in [`read`].
//!
//! [`load_index`] fetches the tail of the object (end record, zip64 record, and the
//! central directory when it fits there; separate ranges otherwise) and parses the
//! central directory. [`stream_entries`] then reads the regions of the wanted entries
//! in order, coalescing neighbouring regions into ranged GETs of up to
//! `read_chunk` bytes, with `read_concurrency` requests in flight.
//!
//! Invariants:
//! - Every GET carries `If-Match` with the ETag seen by the first HEAD, so an input
//!   that changes mid-job fails as `RevisionOutOfSync` instead of mixing versions.
//! - An entry's region ends at the earliest of the next entry's header and the
//!   largest its own header + data + descriptor can be; a read never runs on to
//!   "the next header" of a sparse or hostile archive.
//! - Every fetched chunk holds permits from the read budget until the last slice of
//!   it is dropped downstream. An entry that must be assembled whole (it will be
//!   transformed) first takes its footprint from the transform budget, before any
//!   byte of it is copied, and hands the permit on with the piece: bytes held for
//!   transformed entries are counted from assembly until they are written.
//! - The producer ends the stream with [`Piece::End`] after the last wanted entry;
//!   a stream that stops without it (a dead task) is an error downstream.
//!
//! Entries whose region fits in one chunk arrive whole ([`Piece::Whole`]); larger
//! entries arrive as a verified local header and then data slices
//! ([`Piece::BigStart`] / [`Piece::BigData`] / [`Piece::BigEnd`]) unless they must be
//! transformed, in which case they are assembled.

pub mod inner;
mod read;

use std::collections::BTreeMap;
use std::ops::Range;

use artifact_engine::names::NameRules;
use artifact_engine::plan::EntryInfo;
use artifact_engine::zip::read::{
    check_start, parse_central_directory_with, parse_eocd64, parse_tail, region_ends, EOCD64_LEN,
    TAIL_LEN,
};
use artifact_engine::zip::{CdEntry, Eocd, TailParse};
use artifact_engine::ZipError;
use bytes::Bytes;

pub use self::read::{
    inflation_passes, plan_requests, stream_entries, Budgets, Piece, ReadPlan, Want,
};
use crate::error::ArtifactCause;
use crate::event::S3Location;
use crate::store::ObjectStore;

/// An input archive's central directory.
#[derive(Debug, Clone)]
pub struct ZipIndex {
    /// Where it is.
    pub location: S3Location,
    /// Object size.
    pub size: u64,
    /// The ETag every read is pinned to.
    pub etag: Option<String>,
    /// End record.
    pub eocd: Eocd,
    /// Entries in central directory order.
    pub entries: Vec<CdEntry>,
    /// End of each entry's region (see `region_ends`).
    pub ends: Vec<u64>,
    /// How many of `entries` are the archive's own; the rest are members of its zip
    /// entries that `unzip` steps unpack (see [`inner`]).
    pub own: usize,
    /// For each member (`entries[own + m]`), the index of the zip entry holding it.
    pub member_of: Vec<usize>,
    /// The unpacked zip entries that are deflated, with their compressed data's range:
    /// their members' offsets are in the inflated zip, and they are read by inflating
    /// it (see [`read`]).
    pub deflated: BTreeMap<usize, Range<u64>>,
}

impl ZipIndex {
    /// The archive's own entries (its central directory), without unpacked members.
    pub fn own_entries(&self) -> &[CdEntry] {
        &self.entries[..self.own]
    }

    /// For a member of a deflated zip entry: that entry, and its compressed data.
    pub fn deflated_container(&self, entry: usize) -> Option<(usize, Range<u64>)> {
        let c = *self.member_of.get(entry.checked_sub(self.own)?)?;
        Some((c, self.deflated.get(&c)?.clone()))
    }

    /// Every entry as the plan sees it, members marked with their zip entry.
    pub fn infos(&self) -> Vec<EntryInfo<'_>> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| match i.checked_sub(self.own) {
                Some(m) => EntryInfo::of(e).member_of(self.member_of[m]),
                None => EntryInfo::of(e),
            })
            .collect()
    }
}

/// How much of an input's index a job can afford.
#[derive(Debug, Clone, Copy)]
pub struct IndexLimits {
    /// Largest central directory, in bytes.
    pub cd_bytes: u64,
    /// Most entries (as the end record declares them).
    pub entries: u64,
}

/// Reads and validates the central directory of the zip at `loc`, refusing one
/// that exceeds `limits` before reading it.
pub async fn load_index(
    store: &dyn ObjectStore,
    loc: &S3Location,
    rules: &NameRules,
    limits: IndexLimits,
) -> Result<ZipIndex, ArtifactCause> {
    let info = store.head(loc).await?;
    let (size, etag) = (info.size, info.etag);
    if size == 0 {
        return Err(ZipError::NotZip("the object is empty (0 bytes)".into()).into());
    }
    let get = |r: Range<u64>| store.get_range(loc, r, etag.as_deref());
    let dir = read_directory(get, size, rules, limits).await?;
    Ok(ZipIndex {
        location: loc.clone(),
        size,
        etag,
        eocd: dir.eocd,
        own: dir.entries.len(),
        entries: dir.entries,
        ends: dir.ends,
        member_of: Vec::new(),
        deflated: BTreeMap::new(),
    })
}

/// A zip's directory: end record, entries, and the end of each entry's region.
pub(crate) struct Directory {
    pub eocd: Eocd,
    pub entries: Vec<CdEntry>,
    pub ends: Vec<u64>,
}

/// Reads the directory of the `size`-byte zip whose bytes `get` returns by range
/// (offsets relative to the zip's first byte), within `limits`.
pub(crate) async fn read_directory<F, Fut, E>(
    get: F,
    size: u64,
    rules: &NameRules,
    limits: IndexLimits,
) -> Result<Directory, ArtifactCause>
where
    F: Fn(Range<u64>) -> Fut,
    Fut: std::future::Future<Output = Result<Bytes, E>>,
    ArtifactCause: From<E>,
{
    let max_cd_size = limits.cd_bytes;
    let tail_len = size.min(TAIL_LEN);
    let tail_start = size - tail_len;
    let tail = get(tail_start..size).await?;
    let in_tail = |r: &Range<u64>| -> Option<Bytes> {
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
                let Some(end) = at.checked_add(EOCD64_LEN).filter(|&e| e <= size) else {
                    continue;
                };
                let rec = match in_tail(&(at..end)) {
                    Some(b) => b,
                    None => get(at..end).await?,
                };
                result = parse_eocd64(&rec, partial.clone(), at);
                if result.is_ok() {
                    break;
                }
            }
            result?
        }
    };
    if eocd.entries > limits.entries {
        return Err(ZipError::Limit(format!(
            "{} entries; this function's memory holds the index of at most {} (about \
             1 KiB per entry while the job runs; raise the function memory)",
            eocd.entries, limits.entries
        ))
        .into());
    }
    if eocd.cd_size > max_cd_size {
        return Err(ZipError::Limit(format!(
            "central directory of {} bytes (the limit for this function's memory is \
             {max_cd_size}; raise the function memory)",
            eocd.cd_size
        ))
        .into());
    }
    let cd_end = eocd
        .cd_offset
        .checked_add(eocd.cd_size)
        .filter(|&e| e <= size)
        .ok_or_else(|| ZipError::Malformed("central directory runs past the object".into()))?;
    let cd_range = eocd.cd_offset..cd_end;
    let cd = match in_tail(&cd_range) {
        Some(b) => b,
        None => get(cd_range).await?,
    };
    let entries = parse_central_directory_with(&cd, &eocd, rules)?;
    if !entries.iter().any(|e| e.header_offset == 0) {
        let head = match in_tail(&(0..size.min(4))) {
            Some(b) => b,
            None => get(0..size.min(4)).await?,
        };
        check_start(&head, &entries)?;
    }
    let ends = region_ends(&entries, eocd.cd_offset)?;
    Ok(Directory {
        eocd,
        entries,
        ends,
    })
}
