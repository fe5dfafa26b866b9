//! One output artifact, end to end, in three stages with one module each:
//! [`decide`] (every entry planned from the inputs' central directories before any
//! data moves) → read ([`crate::source::stream_entries`]) → [`process`] (CPU work on
//! the rayon pool) → [`write`] (the zip, in order, into the multipart sink).
//!
//! Memory: fetched chunks hold the read budget until dropped; an entry assembled
//! whole for a transform holds its footprint of the transform budget from before
//! assembly until the writer has written it; the sink holds at most
//! `upload_concurrency` parts plus the one filling.
//!
//! Output order is deterministic (route order, then central-directory order), so the
//! same inputs and plan always give a byte-identical output.

use std::sync::Arc;

pub(crate) mod decide;
mod nest;
mod process;
mod write;
mod write_tar;

use artifact_engine::entry::ManifestRow;
use artifact_engine::plan::{Export, OutputFormat, Plan};
use artifact_engine::tar::GzipState;
use artifact_engine::zip::ZipWriterState;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use self::process::{Out, Processor};
use self::write::OutputWriter;
use self::write_tar::TarWriter;
use crate::config::Settings;
use crate::continuation::{Clock, ContinuationError};
use crate::error::{ArtifactCause, JobError, Side};
use crate::event::S3Location;
use crate::sink::{Cleanup, Sink, SinkState, SinkSummary};
use crate::source::{stream_entries, Budgets, ReadPlan, Want, ZipIndex};
use crate::stats::JobStats;
use crate::store::{Encryption, ObjectStore};

/// An input as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct InputRef {
    /// Artifact name.
    pub name: String,
    /// Its central directory.
    pub index: Arc<ZipIndex>,
}

impl InputRef {
    /// The input-side error for `cause`, found processing entry `entry`: a member of
    /// an unpacked zip entry is named through that zip.
    pub fn error(&self, entry: usize, cause: impl Into<ArtifactCause>) -> JobError {
        let idx = &self.index;
        let cause = match entry.checked_sub(idx.own) {
            Some(m) => ArtifactCause::Inner {
                zip: idx.entries[idx.member_of[m]].name.clone(),
                cause: Box::new(cause.into()),
            },
            None => cause.into(),
        };
        JobError::artifact(Side::Input, &self.name, &idx.location, cause)
    }
}

/// What one output got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSummary {
    /// Output artifact name.
    pub name: String,
    /// Where it was written.
    pub location: S3Location,
    /// Entries written.
    pub entries: u64,
    /// Entries copied without recompression.
    pub raw_entries: u64,
    /// Entries changed by content steps.
    pub transformed_entries: u64,
    /// Entries left out by the plan.
    pub dropped_entries: u64,
    /// Files added by `add` and `manifest` steps.
    pub added_entries: u64,
    /// Output variables exported by `export` steps.
    pub exports: Vec<Export>,
    /// Object as written.
    pub object: SinkSummary,
}

/// Shared machinery for writing outputs.
pub struct Ctx<'a> {
    /// Store with the job's credentials.
    pub store: Arc<dyn ObjectStore>,
    /// Resource settings.
    pub settings: &'a Settings,
    /// Transform pool.
    pub pool: Arc<rayon::ThreadPool>,
    /// The compiled plan.
    pub plan: Arc<Plan>,
    /// Output encryption.
    pub encryption: Encryption,
    /// Undo log for failures.
    pub cleanup: Arc<Cleanup>,
    /// When to checkpoint (`None`: the output is always finished in one go).
    pub clock: Option<Arc<Clock>>,
    /// The job's counters (see [`crate::stats`]).
    pub stats: Arc<JobStats>,
}

/// An output stopped between entries by a checkpoint (see [`crate::continuation`]).
#[derive(Debug, Clone)]
pub struct OutputProgress {
    /// Output index.
    pub output: usize,
    /// Planned entries written, in output order.
    pub arrived: u64,
    /// Planned entries in all (input entries the output gets).
    pub planned: u64,
    /// Of those, copied raw.
    pub raw: u64,
    /// Of those, transformed.
    pub transformed: u64,
    /// Exports found so far.
    pub exports: Vec<Export>,
    /// Manifest rows so far.
    pub rows: Vec<ManifestRow>,
    /// The zip writer between entries (empty for a tar.gz output).
    pub zip: ZipWriterState,
    /// A tar.gz output's gzip stream, flushed between entries.
    pub gzip: Option<GzipState>,
    /// The sink between entries.
    pub sink: SinkState,
}

/// How writing an output ended.
#[derive(Debug)]
pub enum OutputOutcome {
    /// The object is complete.
    Done(OutputSummary),
    /// A checkpoint stopped it; a later invocation goes on from here.
    Suspended(OutputProgress),
}

/// Writes output `o` of the plan at `location` from `inputs` (one per source of the
/// output, in order), going on from `resume` when a checkpoint stopped it before.
pub async fn write_output(
    ctx: &Ctx<'_>,
    o: usize,
    location: &S3Location,
    inputs: &[InputRef],
    resume: Option<OutputProgress>,
) -> Result<OutputOutcome, JobError> {
    let op = ctx.plan.output(o);
    let name = op.name.as_str();
    let out_err = |cause: ArtifactCause| JobError::artifact(Side::Output, name, location, cause);
    let settings = ctx.settings;
    let decided = decide::decide(op, inputs, settings, out_err)?;
    let planned = decided.planned.len();
    let zips: Vec<_> = decided
        .inner
        .iter()
        .map(|z| {
            let (meta, level) = op.inner_zip_meta(z);
            (z.clone(), meta, level)
        })
        .collect();

    // Read: every input's wanted entries, in order, within the budgets.
    let budgets = Budgets::new(settings.read_budget, settings.transform_budget);
    let read_plan = ReadPlan {
        chunk: settings.read_chunk,
        concurrency: settings.read_concurrency,
        max_gap: 256 << 10,
    };
    let skip = resume.as_ref().map_or(0, |r| r.arrived);
    let wants = skip_written(decided.wants, skip);
    let sources: Vec<_> = inputs.iter().cloned().zip(wants).collect();
    let pieces = futures::stream::iter(sources)
        .map({
            let store = ctx.store.clone();
            move |(input, wants)| {
                let (loc, iname) = (input.index.location.clone(), input.name.clone());
                stream_entries(
                    store.clone(),
                    input.index,
                    wants,
                    read_plan.clone(),
                    budgets.clone(),
                )
                .map_err(move |c| JobError::artifact(Side::Input, &iname, &loc, c))
            }
        })
        .flatten();

    // Process: a window of entries ahead of the writer, CPU work on the pool.
    let processor = Processor {
        planned: decided.planned,
        inputs: Arc::new(inputs.to_vec()),
        plan: ctx.plan.clone(),
        output: o,
        pool: ctx.pool.clone(),
        max_transform_size: settings.max_transform_size,
        stats: ctx.stats.clone(),
        verbatim: settings.server_side_copy && op.format == OutputFormat::Zip,
    };
    let processed = pieces
        .map(move |piece| {
            let processor = processor.clone();
            async move { processor.process(piece?).await }
        })
        .buffered(settings.entry_window());
    let processed = Box::pin(processed);

    // Write: in order, into the sink.
    let sink = Sink::new(
        ctx.store.clone(),
        location.clone(),
        ctx.encryption.clone(),
        settings.clone(),
        ctx.cleanup.clone(),
        ctx.pool.clone(),
    )
    .with_server_side_copy(settings.server_side_copy);
    let altered = |why| ContinuationError::Altered(location.clone(), why);
    let w = if op.format == OutputFormat::TarGz {
        let (sink, pool) = (sink.with_content_type("application/gzip"), ctx.pool.clone());
        let writer = match resume {
            None => TarWriter::new(sink, pool, inputs, name, location, op.gzip_level),
            Some(r) => {
                let sink = sink.resume(r.sink.clone()).map_err(altered)?;
                TarWriter::resume(sink, pool, inputs, name, location, op.gzip_level, r)
                    .ok_or_else(|| altered("the checkpoint holds no gzip stream".into()))?
            }
        };
        let writer = writer.with_clock(ctx.clock.clone());
        match drive(writer, processed, o, planned as u64).await? {
            Driven::Suspended(p) => return Ok(OutputOutcome::Suspended(*p)),
            Driven::Finished(w) => w.finish(ctx.plan.clone(), o, planned).await?,
        }
    } else {
        let writer = match resume {
            None => OutputWriter::new(sink, ctx.pool.clone(), inputs, name, location),
            Some(r) => {
                let sink = sink.resume(r.sink.clone()).map_err(altered)?;
                OutputWriter::resume(sink, ctx.pool.clone(), inputs, name, location, r)
            }
        }
        .with_clock(ctx.clock.clone())
        .with_zips(zips, op.has_manifest());
        match drive(writer, processed, o, planned as u64).await? {
            Driven::Suspended(p) => return Ok(OutputOutcome::Suspended(*p)),
            Driven::Finished(w) => w.finish(ctx.plan.clone(), o, planned).await?,
        }
    };
    Ok(OutputOutcome::Done(OutputSummary {
        name: name.to_string(),
        location: location.clone(),
        entries: w.entries,
        raw_entries: w.raw,
        transformed_entries: w.transformed,
        dropped_entries: decided.dropped,
        added_entries: w.added,
        exports: w.exports,
        object: w.object,
    }))
}

/// What drives an output's writer, the zip's and the tar.gz's alike.
trait ArchiveWriter: Sized {
    /// Whether to stop before `next` and checkpoint.
    fn should_checkpoint(&self, next: &Out) -> bool;
    /// Whether to checkpoint instead of finishing.
    fn should_checkpoint_before_finish(&self) -> bool;
    /// Writes one item.
    async fn write(&mut self, item: Out) -> Result<(), JobError>;
    /// Stops between entries and returns the output's progress.
    async fn suspend(self, output: usize, planned: u64) -> Result<OutputProgress, JobError>;
}

/// How [`drive`] ended.
enum Driven<W> {
    /// A checkpoint stopped the output.
    Suspended(Box<OutputProgress>),
    /// Every entry is written; the writer is ready to finish.
    Finished(W),
}

/// Writes every processed item with `writer`, stopping for a checkpoint where its
/// clock says so.
async fn drive<W: ArchiveWriter>(
    mut writer: W,
    mut processed: impl futures::Stream<Item = Result<Out, JobError>> + Unpin,
    output: usize,
    planned: u64,
) -> Result<Driven<W>, JobError> {
    while let Some(item) = processed.next().await {
        let item = item?;
        if writer.should_checkpoint(&item) {
            drop(processed); // stops the reads ahead
            return Ok(Driven::Suspended(Box::new(
                writer.suspend(output, planned).await?,
            )));
        }
        writer.write(item).await?;
    }
    if writer.should_checkpoint_before_finish() {
        // Every entry is in; the added files, the end of the archive and the
        // completion are left to the next invocation.
        return Ok(Driven::Suspended(Box::new(
            writer.suspend(output, planned).await?,
        )));
    }
    Ok(Driven::Finished(writer))
}

/// The reads left after the first `skip` planned entries (in arrival order: input
/// by input, each in its own order) were written by an earlier invocation. Every
/// input still sends its end marker, so the writer's completeness check holds.
fn skip_written(wants: Vec<Vec<Want>>, mut skip: u64) -> Vec<Vec<Want>> {
    wants
        .into_iter()
        .map(|list| {
            let n = (skip.min(list.len() as u64)) as usize;
            skip -= n as u64;
            list.into_iter().skip(n).collect()
        })
        .collect()
}
