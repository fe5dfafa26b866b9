//! Whole-archive rewriting in memory: the same per-entry path the streaming worker
//! uses, for fuzzing, benchmarks, unit tests and small local jobs.

use bytes::Bytes;
use rayon::prelude::*;

use crate::entry::{process_entry, EntryError};
use crate::plan::{Decision, Plan};
use crate::zip::read::{index_bytes, region_ends};
use crate::zip::ZipWriter;

/// Summary of a rewrite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteStats {
    /// Entries written.
    pub entries: u64,
    /// Entries copied raw.
    pub raw: u64,
    /// Entries dropped by the plan.
    pub dropped: u64,
}

/// Rewrites `archive` through `plan` (route ignored: one input, one output), processing
/// entries in parallel on the current rayon pool; output order is input order.
pub fn rewrite(
    archive: &[u8],
    plan: &Plan,
    max_transform_size: u64,
) -> Result<(Vec<u8>, RewriteStats), EntryError> {
    let (eocd, entries) = index_bytes(archive)?;
    let ends = region_ends(&entries, eocd.cd_offset)?;
    let bytes = Bytes::copy_from_slice(archive);
    let outputs: Vec<_> = entries
        .par_iter()
        .zip(ends.par_iter())
        .map(|(e, &end)| {
            let decision = plan.decide(&e.name, e.is_dir());
            if decision == Decision::Drop {
                return Ok(None);
            }
            let region = bytes.slice(e.header_offset as usize..end as usize);
            process_entry(e, &e.name, region, plan, &decision, max_transform_size).map(Some)
        })
        .collect::<Result<_, EntryError>>()?;
    let mut w = ZipWriter::new();
    let mut out = Vec::with_capacity(archive.len());
    let mut stats = RewriteStats::default();
    for o in outputs {
        let Some(o) = o else {
            stats.dropped += 1;
            continue;
        };
        out.extend_from_slice(&w.local_header(&o.meta)?);
        out.extend_from_slice(&o.data);
        w.end_entry(o.data.len() as u64)?;
        stats.entries += 1;
        stats.raw += o.raw as u64;
    }
    out.extend_from_slice(&w.finish(&eocd.comment)?);
    Ok((out, stats))
}
