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
}

/// What the writer receives, in output order.
pub(super) enum Out {
    /// A processed entry, with its share of the transform budget (released once the
    /// entry is written).
    Entry(Box<Processed>, Option<OwnedSemaphorePermit>),
    /// A large raw entry starts.
    BigStart(Box<BigEntry>),
    /// Its next compressed bytes.
    Data(Bytes),
    /// It ended.
    End,
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
}

impl Processor {
    /// Processes one piece.
    pub async fn process(self, piece: Piece) -> Result<Out, JobError> {
        let (tag, region, permit) = match piece {
            Piece::BigData(b) => return Ok(Out::Data(b)),
            Piece::BigEnd => return Ok(Out::End),
            Piece::End => return Ok(Out::InputDone),
            Piece::BigStart { tag } => return self.big_start(tag),
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
        result
            .map(|x| Out::Entry(Box::new(x), permit))
            .map_err(|err| in_err(err.into()))
    }

    /// A large raw entry: its header fields, and a checker when it is verified or
    /// hashed for the manifest.
    fn big_start(&self, tag: usize) -> Result<Out, JobError> {
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
        Ok(Out::BigStart(Box::new(BigEntry {
            meta: planned_meta(e, &p.plan),
            check,
            sha: p.plan.hash,
            transform: None,
            input: p.source,
            entry: p.entry,
        })))
    }
}
