//! Members of inner zips (`unzip` steps), added to an input's index before data
//! moves: each unpacked zip entry must be stored in its input, so its members are
//! entries of the input at shifted offsets (see [`artifact_engine::zip::inner`]);
//! their central directory is read by range like the input's own, pinned to the
//! same ETag, within the same limits, with names checked by the same rules.
//!
//! Invariant: the index's own entries keep their indices; members follow them
//! (`ZipIndex::own`, `ZipIndex::member_of`), so everything decided from the own
//! entries (conditions, plan and patch files) is unchanged by adding members.

use std::ops::Range;

use artifact_engine::names::NameRules;
use artifact_engine::zip::inner::{check_container, header_probe_len, in_zip, inner_range, rebase};

use super::{read_directory, IndexLimits, ZipIndex};
use crate::error::ArtifactCause;
use crate::store::ObjectStore;

/// `index` with the members of its zip entries `containers` added (each read once),
/// within `limits` (its entry count counts the own entries too).
pub async fn add_members(
    store: &dyn ObjectStore,
    index: &ZipIndex,
    containers: &[usize],
    rules: &NameRules,
    limits: IndexLimits,
) -> Result<ZipIndex, ArtifactCause> {
    let mut containers = containers.to_vec();
    containers.sort_unstable();
    containers.dedup();
    let mut out = index.clone();
    let (loc, etag) = (&index.location, index.etag.as_deref());
    for c in containers {
        let e = &index.entries[c];
        check_container(e)?;
        let probe_end = (e.header_offset + header_probe_len(e)).min(index.ends[c]);
        let probe = store
            .get_range(loc, e.header_offset..probe_end, etag)
            .await?;
        let zip = inner_range(e, &probe, index.ends[c])?;
        let get =
            |r: Range<u64>| store.get_range(loc, zip.start + r.start..zip.start + r.end, etag);
        let left = IndexLimits {
            entries: limits.entries.saturating_sub(out.entries.len() as u64),
            ..limits
        };
        let mut dir = read_directory(get, zip.end - zip.start, rules, left)
            .await
            .map_err(|cause| match cause {
                ArtifactCause::Zip(z) => ArtifactCause::Zip(in_zip(&e.name, z)),
                other => other,
            })?;
        rebase(&mut dir.entries, &mut dir.ends, zip.start);
        out.member_of
            .extend(std::iter::repeat_n(c, dir.entries.len()));
        out.entries.extend(dir.entries);
        out.ends.extend(dir.ends);
    }
    Ok(out)
}
