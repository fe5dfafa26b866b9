//! Members of inner zips (`unzip` steps), added to an input's index before data
//! moves (see [`artifact_engine::zip::inner`]). A stored inner zip is read in place:
//! its central directory by range, its members' offsets shifted into the input. A
//! deflated one is inflated once, by ranged GETs of `chunk` bytes, keeping only its
//! first bytes and its tail (at most the central-directory limit plus the end
//! records), checked against its CRC-32 and size; its members keep offsets in the
//! inflated zip and are read by inflating it again as the output is written
//! ([`super::read`]).
//!
//! Invariants: every read is pinned to the index's ETag and stays within the zip
//! entry's own data; the inner directory is parsed within the same limits (its entry
//! count counting the input's own) and name rules as the input's; the index's own
//! entries keep their indices and members follow them (`ZipIndex::own`,
//! `ZipIndex::member_of`), so everything decided from the own entries (conditions,
//! plan and patch files) is unchanged by adding members.

use std::ops::Range;

use artifact_engine::names::NameRules;
use artifact_engine::zip::inner::{
    check_container, header_probe_len, in_zip, inner_range, rebase, sort_by_offset, InflatedTail,
    TailInflater,
};
use artifact_engine::zip::read::TAIL_LEN;
use artifact_engine::zip::{CdEntry, ZipError};
use bytes::Bytes;

use super::{read_directory, Directory, IndexLimits, ZipIndex};
use crate::error::ArtifactCause;
use crate::event::S3Location;
use crate::store::ObjectStore;

/// `index` with the members of its zip entries `containers` added (each read once,
/// members in the order of their data), within `limits`: the entry count and the
/// central-directory bytes count the input's own too. Deflated ones are read `chunk`
/// bytes at a time.
pub async fn add_members(
    store: &dyn ObjectStore,
    mut out: ZipIndex,
    containers: &[usize],
    rules: &NameRules,
    limits: IndexLimits,
    chunk: u64,
) -> Result<ZipIndex, ArtifactCause> {
    let mut containers = containers.to_vec();
    containers.sort_unstable();
    containers.dedup();
    let (loc, etag) = (out.location.clone(), out.etag.clone());
    let (loc, etag) = (&loc, etag.as_deref());
    let mut cd_left = limits.cd_bytes.saturating_sub(out.eocd.cd_size);
    for c in containers {
        let e = &out.entries[c].clone();
        let deflated = check_container(e)?;
        let probe_end = (e.header_offset + header_probe_len(e)).min(out.ends[c]);
        let probe = store
            .get_range(loc, e.header_offset..probe_end, etag)
            .await?;
        let zip = inner_range(e, &probe, out.ends[c])?;
        let left = IndexLimits {
            entries: limits.entries.saturating_sub(out.entries.len() as u64),
            cd_bytes: cd_left,
        };
        let in_zip = |cause| match cause {
            ArtifactCause::Zip(z) => ArtifactCause::Zip(in_zip(&e.name, z)),
            other => other,
        };
        let dir = if deflated {
            let tail = inflate_tail(store, (loc, etag), e, zip.clone(), left, chunk).await?;
            let dir = read_inflated_directory(tail, rules, left)
                .await
                .map_err(in_zip)?;
            out.deflated.insert(c, zip);
            dir
        } else {
            let get =
                |r: Range<u64>| store.get_range(loc, zip.start + r.start..zip.start + r.end, etag);
            let mut dir = read_directory(get, zip.end - zip.start, rules, left)
                .await
                .map_err(in_zip)?;
            rebase(&mut dir.entries, &mut dir.ends, zip.start);
            dir
        };
        let Directory {
            eocd,
            mut entries,
            mut ends,
        } = dir;
        cd_left = cd_left.saturating_sub(eocd.cd_size);
        sort_by_offset(&mut entries, &mut ends);
        out.member_of.extend(std::iter::repeat_n(c, entries.len()));
        out.entries.extend(entries);
        out.ends.extend(ends);
    }
    Ok(out)
}

/// Inflates deflated zip entry `e` (compressed data at `data`) once, keeping its
/// first bytes and enough of its tail for a central directory within `limits`.
async fn inflate_tail(
    store: &dyn ObjectStore,
    (loc, etag): (&S3Location, Option<&str>),
    e: &CdEntry,
    data: Range<u64>,
    limits: IndexLimits,
    chunk: u64,
) -> Result<InflatedTail, ArtifactCause> {
    let cap = (TAIL_LEN + limits.cd_bytes + 1024).min(e.uncompressed_size.max(1)) as usize;
    let mut inflater = TailInflater::new(cap);
    let mut pos = data.start;
    while pos < data.end {
        let end = (pos + chunk.max(1)).min(data.end);
        let input = store.get_range(loc, pos..end, etag).await?;
        let entry = e.clone();
        inflater =
            tokio::task::spawn_blocking(move || inflater.feed(&entry, &input).map(|()| inflater))
                .await
                .map_err(|j| ZipError::Malformed(format!("inflating task failed: {j}")))??;
        pos = end;
    }
    Ok(inflater.finish(e)?)
}

/// The directory of an inflated inner zip from what [`inflate_tail`] kept: a read
/// outside its head and tail (a directory claiming to start earlier than the tail
/// holds) is refused.
async fn read_inflated_directory(
    t: InflatedTail,
    rules: &NameRules,
    limits: IndexLimits,
) -> Result<Directory, ArtifactCause> {
    let (head, tail) = (Bytes::from(t.head), Bytes::from(t.tail));
    let tail_start = t.tail_start;
    let get = |r: Range<u64>| {
        let got = if r.start >= tail_start {
            Ok(tail.slice((r.start - tail_start) as usize..(r.end - tail_start) as usize))
        } else if r.end <= head.len() as u64 {
            Ok(head.slice(r.start as usize..r.end as usize))
        } else {
            Err(ArtifactCause::Zip(ZipError::Malformed(format!(
                "its central directory or end record claims bytes {}..{}, before the last \
                 {} bytes where they can be",
                r.start,
                r.end,
                t.size - tail_start
            ))))
        };
        std::future::ready(got)
    };
    read_directory(get, t.size, rules, limits).await
}
