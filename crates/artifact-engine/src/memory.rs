//! Whole-archive rewriting in memory: the same per-entry path the streaming worker
//! uses, for fuzzing, benchmarks, unit tests and small local jobs. One input, one
//! output (the plan's first output, fed by its first source), a zip or a tar.gz.
//!
//! Entries are processed on the current rayon pool in batches ([`BATCH_BYTES`]); while
//! the pool works on one batch, the previous one is written to the output in order
//! (one task of the same pool), so the serial writing overlaps the parallel work.
//! The output's bytes are those of processing everything first and writing after.

use std::collections::HashMap;

use bytes::Bytes;
use rayon::prelude::*;

use crate::entry::{
    check_transform_size, compressed_data, planned_meta, process_entry, EntryError, ManifestRow,
    Processed,
};
use crate::links::check_symlink;
use crate::plan::{
    layout_output_entries, EntryInfo, EntryPlan, Export, InnerZip, OutputFormat, OutputLayout,
    OutputPlan, Plan, Planned,
};
use crate::streamed::{streamable, EntryStreamer, StreamDeflater, StreamedEntry};
use crate::tar::{record, GzipStream, END};
use crate::zip::inner;
use crate::zip::read::{index_bytes_with, region_ends, CdEntry};
use crate::zip::ZipError;
use crate::zip::{EntryMeta, ZipWriter};

/// Summary of a rewrite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteStats {
    /// Entries of the output written (added files, manifest and zip entries made by
    /// `zip` steps included; their members are not).
    pub entries: u64,
    /// Entries copied raw.
    pub raw: u64,
    /// Entries dropped by the plan.
    pub dropped: u64,
    /// Exported variables.
    pub exports: Vec<Export>,
}

/// Rewrites `archive` through output 0 of `plan`, processing entries in parallel on
/// the current rayon pool; output order is the plan's order. Entries are planned with
/// their kind ([`layout_output_kinds`]) and every symbolic link's target is checked
/// with [`check_symlink`] before it is written.
pub fn rewrite(
    archive: &[u8],
    plan: &Plan,
    max_transform_size: u64,
) -> Result<(Vec<u8>, RewriteStats), EntryError> {
    rewrite_bytes(Bytes::copy_from_slice(archive), plan, max_transform_size)
}

/// [`rewrite`] of an archive the caller hands over: untouched entries are sliced out
/// of it, not copied.
pub fn rewrite_bytes(
    bytes: Bytes,
    plan: &Plan,
    max_transform_size: u64,
) -> Result<(Vec<u8>, RewriteStats), EntryError> {
    let archive = &bytes[..];
    let (eocd, entries) = index_bytes_with(archive, &plan.name_rules())?;
    plan.limits().check(&entries)?;
    let ends = region_ends(&entries, eocd.cd_offset)?;
    // The plan is copied only when the archive decides something in it.
    let resolved;
    let plan = if plan.has_entry_conditions() || plan.has_patch_files() {
        let mut p = plan.clone();
        p.resolve_conditions(|_, g| entries.iter().any(|e| g.is_match(&e.name, e.is_dir())));
        read_patch_files(&mut p, &entries, &ends, &bytes)?;
        resolved = p;
        &resolved
    } else {
        plan
    };
    let op = plan.output(0);
    let unpacked = unzip_members(archive, op, entries, ends, max_transform_size)?;
    let (entries, member_of) = (&unpacked.entries, &unpacked.member_of);
    plan.limits().check(entries)?;
    let own = entries.len() - member_of.len();
    let names: Vec<EntryInfo<'_>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| match i.checked_sub(own) {
            Some(m) => EntryInfo::of(e).member_of(member_of[m]),
            None => EntryInfo::of(e),
        })
        .collect();
    let layout = layout_output_entries(op, &[names]).map_err(ZipError::Malformed)?;
    let size = |p: &Planned| entries[p.entry].compressed_size;
    let process = |p: &Planned| {
        let e = &entries[p.entry];
        let region = unpacked.region(&bytes, p.entry);
        if e.is_symlink() {
            check_symlink(e, &p.plan, &compressed_data(e, &region)?)?;
        }
        let too_big = check_transform_size(e, max_transform_size).is_err();
        if too_big && streamable(op, &p.plan, e) {
            return stream_entry(e, &region, op, &p.plan);
        }
        process_entry(e, region, op, &p.plan, max_transform_size).map(Done::Entry)
    };
    if op.format == OutputFormat::TarGz {
        let mut tar = TarAssembler::new(op, layout.dropped);
        process_in_order(&layout.entries, size, process, &mut tar)?;
        return tar.finish();
    }
    let mut zip = ZipAssembler::new(op, &layout, archive.len());
    process_in_order(&layout.entries, size, process, &mut zip)?;
    zip.finish()
}

/// A batch of [`process_in_order`] ends once it holds this many input bytes...
const BATCH_BYTES: u64 = 4 << 20;
/// ...or this many entries. Each batch ends in a join (both threads wait for its
/// slowest entry), so batches are large; the first batch's processing and the last
/// one's writing do not overlap anything, so they are not too large either.
const BATCH_ENTRIES: usize = 256;

/// Processes `planned` on the current rayon pool a batch at a time, handing each
/// finished batch to `out` in order while the pool processes the next one: writing
/// the output (copies, headers, a tar's gzip) is serial, and this way it overlaps the
/// parallel work instead of following it. `size` is an entry's input bytes.
fn process_in_order<A: Assemble>(
    planned: &[Planned],
    size: impl Fn(&Planned) -> u64,
    process: impl Fn(&Planned) -> Result<Done, EntryError> + Sync,
    out: &mut A,
) -> Result<(), EntryError> {
    let mut ready: Vec<Done> = Vec::new();
    let mut rest = planned;
    while !rest.is_empty() {
        let (mut n, mut bytes) = (0, 0);
        while n < rest.len() && n < BATCH_ENTRIES && bytes < BATCH_BYTES {
            bytes += size(&rest[n]);
            n += 1;
        }
        let (batch, after) = rest.split_at(n);
        rest = after;
        let (written, next) = rayon::join(
            || ready.drain(..).try_for_each(|d| out.push(d)),
            || {
                batch
                    .par_iter()
                    .map(&process)
                    .collect::<Result<Vec<_>, _>>()
            },
        );
        written?;
        ready = next?;
    }
    ready.into_iter().try_for_each(|d| out.push(d))
}

/// An output being written from its finished entries, in output order.
trait Assemble: Send {
    fn push(&mut self, done: Done) -> Result<(), EntryError>;
}

/// A zip output: entries, the zip entries `zip` steps make, added files.
struct ZipAssembler<'a> {
    op: &'a OutputPlan,
    inner: &'a [InnerZip],
    w: ZipWriter,
    out: Vec<u8>,
    stats: RewriteStats,
    rows: Vec<ManifestRow>,
    /// The zip entry being filled: its writer, its bytes so far, members still to come.
    nest: Option<(&'a InnerZip, ZipWriter, Vec<u8>, usize)>,
    /// The index in the layout of the next entry pushed.
    next: usize,
}

impl<'a> ZipAssembler<'a> {
    fn new(op: &'a OutputPlan, layout: &'a OutputLayout, capacity: usize) -> Self {
        ZipAssembler {
            op,
            inner: &layout.inner,
            w: ZipWriter::new(),
            out: Vec::with_capacity(capacity),
            stats: RewriteStats {
                dropped: layout.dropped,
                ..Default::default()
            },
            rows: Vec::new(),
            nest: None,
            next: 0,
        }
    }

    /// Closes the zip entry being filled: its members' directory, deflated.
    fn close_nested(
        &mut self,
        z: &InnerZip,
        zw: ZipWriter,
        mut buf: Vec<u8>,
    ) -> Result<(), EntryError> {
        buf.extend_from_slice(&zw.finish(b"")?);
        let mut d = StreamDeflater::new(self.op.inner_zip_meta(z).1, self.op.has_manifest());
        self.out.extend_from_slice(&d.push(&buf));
        let (tail, done) = d.finish();
        self.out.extend_from_slice(&tail);
        let end = self
            .w
            .end_streamed(done.crc32, done.compressed, done.uncompressed)?;
        self.out.extend_from_slice(&end);
        self.stats.entries += 1;
        if let Some(sha256) = done.sha256 {
            self.rows.push(ManifestRow {
                path: z.path.clone(),
                size: done.uncompressed,
                sha256,
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(Vec<u8>, RewriteStats), EntryError> {
        debug_assert!(
            self.nest.is_none(),
            "a zip step's members did not all arrive"
        );
        let missing = self.op.missing_exports(&self.stats.exports)?;
        self.stats.exports.extend(missing);
        for (meta, data) in crate::entry::extras(self.op, &mut self.rows) {
            self.out.extend_from_slice(&self.w.local_header(&meta)?);
            self.out.extend_from_slice(&data);
            self.w.end_entry(data.len() as u64)?;
            self.stats.entries += 1;
        }
        self.out.extend_from_slice(&self.w.finish(b"")?);
        Ok((self.out, self.stats))
    }
}

impl Assemble for ZipAssembler<'_> {
    fn push(&mut self, done: Done) -> Result<(), EntryError> {
        let i = self.next;
        self.next += 1;
        if let Some(z) = self.inner.iter().find(|z| z.first == i) {
            let header = self.w.local_header_streamed(&self.op.inner_zip_meta(z).0)?;
            self.out.extend_from_slice(&header);
            self.nest = Some((z, ZipWriter::new(), Vec::new(), z.members));
        }
        match &mut self.nest {
            // A member is counted through its zip.
            Some((_, zw, buf, _)) => write_done(zw, buf, done, &mut self.stats, &mut self.rows)?,
            None => {
                self.stats.entries += 1;
                let (w, out) = (&mut self.w, &mut self.out);
                write_done(w, out, done, &mut self.stats, &mut self.rows)?
            }
        }
        match self.nest.take() {
            Some((z, zw, buf, 1)) => self.close_nested(z, zw, buf),
            Some((z, zw, buf, left)) => {
                self.nest = Some((z, zw, buf, left - 1));
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A tar.gz output, as the streaming worker writes it (see [`crate::tar`]): every
/// entry arrives stored from [`process_entry`].
struct TarAssembler<'a> {
    op: &'a OutputPlan,
    gz: GzipStream,
    out: Vec<u8>,
    stats: RewriteStats,
    rows: Vec<ManifestRow>,
}

impl<'a> TarAssembler<'a> {
    fn new(op: &'a OutputPlan, dropped: u64) -> Self {
        TarAssembler {
            op,
            gz: GzipStream::new(op.gzip_level),
            out: Vec::new(),
            stats: RewriteStats {
                dropped,
                ..Default::default()
            },
            rows: Vec::new(),
        }
    }

    fn put(&mut self, pieces: Vec<Bytes>) {
        for p in pieces {
            self.out.extend_from_slice(&self.gz.push(&p));
        }
    }

    fn finish(mut self) -> Result<(Vec<u8>, RewriteStats), EntryError> {
        let missing = self.op.missing_exports(&self.stats.exports)?;
        self.stats.exports.extend(missing);
        let mut rows = std::mem::take(&mut self.rows);
        for (meta, data) in crate::entry::extras(self.op, &mut rows) {
            self.put(record(&meta, data)?);
            self.stats.entries += 1;
        }
        self.put(vec![Bytes::from_static(&END)]);
        self.out.extend_from_slice(&self.gz.finish());
        Ok((self.out, self.stats))
    }
}

impl Assemble for TarAssembler<'_> {
    fn push(&mut self, done: Done) -> Result<(), EntryError> {
        let Done::Entry(p) = done else {
            return Err(ZipError::Limit(
                "an entry over the whole-entry limit would be transformed as it streams; a \
                 tar.gz output writes each entry's size before its content"
                    .to_string(),
            )
            .into());
        };
        self.put(record(&p.output.meta, p.output.data)?);
        self.stats.entries += 1;
        self.stats.raw += p.output.raw as u64;
        self.stats.exports.extend(p.exports);
        self.rows.extend(p.manifest);
        Ok(())
    }
}

/// An archive's entries followed by the members of its unpacked zip entries.
struct Unpacked {
    entries: Vec<CdEntry>,
    /// Each entry's region end.
    ends: Vec<u64>,
    /// For each member (after the archive's own entries), its zip entry's index.
    member_of: Vec<usize>,
    /// The bytes of each deflated zip entry unpacked, inflated: its members' offsets
    /// are in these.
    inflated: HashMap<usize, Bytes>,
}

impl Unpacked {
    /// Entry `i`'s region: in the archive, or in its inflated zip entry.
    fn region(&self, archive: &Bytes, i: usize) -> Bytes {
        let own = self.entries.len() - self.member_of.len();
        let from = i
            .checked_sub(own)
            .and_then(|m| self.inflated.get(&self.member_of[m]))
            .unwrap_or(archive);
        from.slice(self.entries[i].header_offset as usize..self.ends[i] as usize)
    }
}

/// `entries` and their region `ends`, followed by the members of the zip entries
/// `op`'s `unzip` steps unpack (read in place, see [`crate::zip::inner`]).
fn unzip_members(
    archive: &[u8],
    op: &OutputPlan,
    mut entries: Vec<CdEntry>,
    mut ends: Vec<u64>,
    max_transform_size: u64,
) -> Result<Unpacked, ZipError> {
    let names: Vec<EntryInfo<'_>> = entries.iter().map(EntryInfo::of).collect();
    let mut containers: Vec<usize> = op
        .unzip_containers(&[names])
        .into_iter()
        .map(|(_, j)| j)
        .collect();
    containers.sort_unstable();
    containers.dedup();
    let (mut member_of, mut inflated) = (Vec::new(), HashMap::new());
    for c in containers {
        let e = &entries[c];
        let deflated = inner::check_container(e)?;
        let at = e.header_offset as usize;
        let probe = archive
            .get(at..at + inner::header_probe_len(e) as usize)
            .unwrap_or_default();
        let r = inner::inner_range(e, probe, ends[c])?;
        let data = &archive[r.start as usize..r.end as usize];
        let in_zip = |err| inner::in_zip(&e.name, err);
        if deflated && e.uncompressed_size > max_transform_size {
            return Err(inner::in_zip(
                &e.name,
                ZipError::Limit(format!(
                    "{} bytes inflated; an in-memory rewrite holds at most {max_transform_size}",
                    e.uncompressed_size
                )),
            ));
        }
        let plain = match deflated {
            true => Some(Bytes::from(crate::entry::decompress(e, data)?)),
            false => None,
        };
        let bytes = plain.as_deref().unwrap_or(data);
        let (eocd, mut members) = index_bytes_with(bytes, &op.name_rules).map_err(in_zip)?;
        let mut member_ends = region_ends(&members, eocd.cd_offset).map_err(in_zip)?;
        inner::sort_by_offset(&mut members, &mut member_ends);
        match plain {
            Some(b) => _ = inflated.insert(c, b),
            None => inner::rebase(&mut members, &mut member_ends, r.start),
        }
        member_of.extend(std::iter::repeat_n(c, members.len()));
        entries.extend(members);
        ends.extend(member_ends);
    }
    Ok(Unpacked {
        entries,
        ends,
        member_of,
        inflated,
    })
}

/// The largest `merge` patch file read.
pub const MAX_PATCH_FILE: u64 = 1 << 20;

/// Reads the `merge` patch files `plan` needs from the archive's own entries.
fn read_patch_files(
    plan: &mut Plan,
    entries: &[CdEntry],
    ends: &[u64],
    bytes: &Bytes,
) -> Result<(), EntryError> {
    let find = |path: &str| entries.iter().position(|e| e.name == path && !e.is_dir());
    let wanted = plan.patch_files(|_, path| find(path).is_some())?;
    let mut texts = Vec::new();
    for (_, path, at) in &wanted {
        let i = find(path).expect("patch_files checked it");
        let e = &entries[i];
        if e.uncompressed_size > MAX_PATCH_FILE || e.compressed_size > MAX_PATCH_FILE + (64 << 10) {
            return Err(crate::PlanError {
                path: at.clone(),
                message: format!(
                    "patch file {path:?}: {} bytes; at most {MAX_PATCH_FILE} are read",
                    e.uncompressed_size
                ),
            }
            .into());
        }
        let region = bytes.slice(e.header_offset as usize..ends[i] as usize);
        let data = crate::entry::decompress(e, &compressed_data(e, &region)?)?;
        let text = String::from_utf8(data).map_err(|_| crate::PlanError {
            path: at.clone(),
            message: format!("patch file {path:?}: not UTF-8 text"),
        })?;
        texts.push((path.clone(), text));
    }
    plan.provide_patch_files(|_, path| {
        texts
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.as_str())
    })?;
    Ok(())
}

/// Writes one finished entry with `w` into `out`, counting it as raw when it is.
fn write_done(
    w: &mut ZipWriter,
    out: &mut Vec<u8>,
    done: Done,
    stats: &mut RewriteStats,
    rows: &mut Vec<ManifestRow>,
) -> Result<(), EntryError> {
    let p = match done {
        Done::Entry(p) => p,
        Done::Streamed(meta, data, s) => {
            out.extend_from_slice(&w.local_header_streamed(&meta)?);
            out.extend_from_slice(&data);
            out.extend_from_slice(&w.end_streamed(s.crc32, s.compressed, s.uncompressed)?);
            return Ok(());
        }
    };
    out.extend_from_slice(&w.local_header(&p.output.meta)?);
    out.extend_from_slice(&p.output.data);
    w.end_entry(p.output.data.len() as u64)?;
    stats.raw += p.output.raw as u64;
    stats.exports.extend(p.exports);
    rows.extend(p.manifest);
    Ok(())
}

/// An entry ready for the writer: processed whole, or transformed as it streamed
/// (written with a data descriptor).
enum Done {
    Entry(Processed),
    Streamed(EntryMeta, Vec<u8>, StreamedEntry),
}

/// Transforms an entry too large to hold whole as the streaming worker does (the
/// in-memory path feeds it in one piece; the steps cannot tell the difference).
fn stream_entry(
    e: &CdEntry,
    region: &Bytes,
    op: &OutputPlan,
    ep: &EntryPlan,
) -> Result<Done, EntryError> {
    let steps = op
        .stream_steps(&ep.ops, e.uncompressed_size)
        .expect("streamable checked the steps");
    let mut s = EntryStreamer::new(e, &ep.name, steps, ep.level.unwrap_or(6))?;
    let mut data = s.push(&compressed_data(e, region)?)?.to_vec();
    let (tail, summary) = s.finish()?;
    data.extend_from_slice(&tail);
    Ok(Done::Streamed(planned_meta(e, ep), data, summary))
}
