//! Stage 2: turn the source's pieces into what the writer writes. Entries that need
//! CPU (content steps, recompression, verification of a raw copy, manifest hashing)
//! are processed on the rayon pool; entries that need none stay on the async side.
//! Large raw entries pass through as slices, with a checker that the writer feeds on
//! the pool.
//!
//! Invariants: the transform-budget permit of a whole entry travels with it until
//! the writer has written it; every error names the input artifact and entry.

use std::sync::Arc;

use artifact_engine::entry::{compressed_data, planned_meta, process_entry, Processed, StreamHash};
use artifact_engine::plan::{OutputFormat, Plan, Planned};
use artifact_engine::streamed::EntryStreamer;
use artifact_engine::zip::read::{METHOD_DEFLATED, METHOD_STORED};
use artifact_engine::zip::verbatim::{self, Verbatim};
use artifact_engine::zip::EntryMeta;
use artifact_engine::{check_symlink, ZipError};
use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;

use super::InputRef;
use crate::bridge::on_pool;
use crate::error::{ArtifactCause, JobError};
use crate::source::Piece;
use crate::stats::JobStats;

/// A large raw entry being streamed to the writer.
pub(super) struct BigEntry {
    pub meta: EntryMeta,
    /// Inflates the data as it passes, checking size and CRC (and hashing for the
    /// manifest when `sha` is set); `None` when verification is off.
    pub check: Option<StreamHash>,
    pub sha: bool,
    /// Set when the entry is transformed as it streams (the streamer also checks the
    /// input's size and CRC, so `check` is then `None`).
    pub transform: Option<EntryStreamer>,
    /// The input it comes from, and its index there (errors name them).
    pub input: usize,
    pub entry: usize,
    /// Where it lies in its input, when it can be written verbatim.
    pub verbatim: Option<Span>,
}

/// Where an entry that can be written verbatim lies in its input (see
/// `artifact_engine::zip::verbatim`).
pub(super) struct Span {
    /// Its input, and its index there.
    pub input: usize,
    pub entry: usize,
    /// Where its local header starts in the input.
    pub offset: u64,
    /// Its header, data and descriptor lengths.
    pub layout: Verbatim,
    /// Its local header's bytes.
    pub header: Bytes,
    /// The bytes after its data (a large entry's arrive with [`Out::End`]).
    pub tail: Bytes,
}

/// What the writer receives, in output order.
pub(super) enum Out {
    /// A processed entry, with its share of the transform budget (released once the
    /// entry is written), and where it lies in its input when it can be written
    /// verbatim.
    Entry(
        Box<Processed>,
        Option<OwnedSemaphorePermit>,
        Option<Box<Span>>,
    ),
    /// A large raw entry starts.
    BigStart(Box<BigEntry>),
    /// Its next compressed bytes.
    Data(Bytes),
    /// It ended; the region's bytes after its data.
    End(Bytes),
    /// One input's entries were all sent.
    InputDone,
}

/// What processing a piece needs, shared by every piece of one output.
#[derive(Clone)]
pub(super) struct Processor {
    pub planned: Arc<Vec<Planned>>,
    pub inputs: Arc<Vec<InputRef>>,
    pub plan: Arc<Plan>,
    pub output: usize,
    pub pool: Arc<rayon::ThreadPool>,
    pub max_transform_size: u64,
    pub stats: Arc<JobStats>,
    /// Untouched entries may be written verbatim (server-side copy is on and the
    /// output is a zip).
    pub verbatim: bool,
}

impl Processor {
    /// Processes one piece.
    pub async fn process(self, piece: Piece) -> Result<Out, JobError> {
        let (tag, region, permit) = match piece {
            Piece::BigData(b) => return Ok(Out::Data(b)),
            Piece::BigEnd { tail } => return Ok(Out::End(tail)),
            Piece::End => return Ok(Out::InputDone),
            Piece::BigStart {
                tag,
                header,
                region_len,
            } => return self.big_start(tag, header, region_len),
            Piece::Whole {
                tag,
                region,
                permit,
            } => (tag, region, permit),
        };
        let p = &self.planned[tag];
        let input = &self.inputs[p.source];
        let in_err = |c: ArtifactCause| input.error(p.entry, c);
        let e = &input.index.entries[p.entry];
        if e.is_symlink() {
            // A link's target (a few bytes) is checked from its final path first.
            let data = compressed_data(e, &region).map_err(|err| in_err(err.into()))?;
            check_symlink(e, &p.plan, &data).map_err(|err| in_err(err.into()))?;
        }
        let tar = self.plan.output(self.output).format == OutputFormat::TarGz;
        let whole = region.clone();
        let result = if p.plan.needs_cpu(e.method) || (tar && e.method != METHOD_STORED) {
            let this = self.clone();
            on_pool(&self.pool, move || {
                let started = std::time::Instant::now();
                let p = &this.planned[tag];
                let e = &this.inputs[p.source].index.entries[p.entry];
                let op = this.plan.output(this.output);
                let done = process_entry(e, region, op, &p.plan, this.max_transform_size);
                this.stats.add_transform(started.elapsed());
                done
            })
            .await
            .map_err(|panic| {
                JobError::Internal(format!("transforming an entry panicked: {panic}"))
            })?
        } else {
            let op = self.plan.output(self.output);
            process_entry(e, region, op, &p.plan, self.max_transform_size)
        };
        let x = result.map_err(|err| in_err(err.into()))?;
        let span = if x.output.raw {
            self.span(tag, &x.output.meta, whole.clone(), whole.len() as u64)
                .map(|mut s| {
                    let data_end = (s.layout.header_len + e.compressed_size) as usize;
                    s.tail = whole.slice(data_end..);
                    Box::new(s)
                })
        } else {
            None
        };
        Ok(Out::Entry(Box::new(x), permit, span))
    }

    /// Where planned entry `tag`, written with `meta`, lies in its input, when it
    /// can be written verbatim: `header` starts its region of `region_len` bytes.
    fn span(&self, tag: usize, meta: &EntryMeta, header: Bytes, region_len: u64) -> Option<Span> {
        let p = &self.planned[tag];
        let index = &self.inputs[p.source].index;
        if !self.verbatim || p.entry >= index.own {
            return None; // a member of an unpacked zip is no range of the input
        }
        let e = &index.entries[p.entry];
        let layout = verbatim::layout(e, meta, &header, region_len)?;
        Some(Span {
            input: p.source,
            entry: p.entry,
            offset: e.header_offset,
            layout,
            header: header.slice(..layout.header_len as usize),
            tail: Bytes::new(),
        })
    }

    /// A large raw entry: its header fields, and a checker when it is verified or
    /// hashed for the manifest.
    fn big_start(&self, tag: usize, header: Bytes, region_len: u64) -> Result<Out, JobError> {
        let p = &self.planned[tag];
        let input = &self.inputs[p.source];
        let e = &input.index.entries[p.entry];
        let in_err = |err: ZipError| input.error(p.entry, err);
        if !p.plan.ops.is_empty() {
            // Planned to stream (see `decide::streamable`).
            let op = self.plan.output(self.output);
            let steps = op
                .stream_steps(&p.plan.ops, e.uncompressed_size)
                .expect("decide planned only streamable steps to stream");
            let level = p.plan.level.unwrap_or(6);
            let streamer = EntryStreamer::new(e, &p.plan.name, steps, level).map_err(in_err)?;
            return Ok(Out::BigStart(Box::new(BigEntry {
                meta: planned_meta(e, &p.plan),
                check: None,
                sha: false,
                transform: Some(streamer),
                input: p.source,
                entry: p.entry,
                verbatim: None,
            })));
        }
        let verifiable = matches!(e.method, METHOD_STORED | METHOD_DEFLATED);
        let tar = self.plan.output(self.output).format == OutputFormat::TarGz;
        let check = if tar && e.method == METHOD_DEFLATED {
            // A tar.gz output writes the content: inflated (and so checked) as it passes.
            Some(StreamHash::inflater(e, p.plan.hash))
        } else if p.plan.hash {
            Some(StreamHash::new(e))
        } else if p.plan.verify && verifiable {
            Some(StreamHash::verifier(e))
        } else {
            None
        };
        let check = check.transpose().map_err(in_err)?;
        let meta = planned_meta(e, &p.plan);
        let verbatim = if tar {
            None
        } else {
            self.span(tag, &meta, header, region_len)
        };
        Ok(Out::BigStart(Box::new(BigEntry {
            meta,
            check,
            sha: p.plan.hash,
            transform: None,
            input: p.source,
            entry: p.entry,
            verbatim,
        })))
    }
}
