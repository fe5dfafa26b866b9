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

mod decide;
mod process;
mod write;

use artifact_engine::plan::{Export, Plan};
use futures::{StreamExt, TryStreamExt};

use self::process::Processor;
use self::write::OutputWriter;
use crate::config::Settings;
use crate::error::{ArtifactCause, JobError, Side};
use crate::event::S3Location;
use crate::sink::{Cleanup, Sink, SinkSummary};
use crate::source::{stream_entries, Budgets, ReadPlan, ZipIndex};
use crate::store::{Encryption, ObjectStore};

/// An input as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct InputRef {
    /// Artifact name.
    pub name: String,
    /// Its central directory.
    pub index: Arc<ZipIndex>,
}

/// What one output got.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// Writes output `o` of the plan at `location` from `inputs` (one per source of the
/// output, in order).
pub async fn write_output(
    ctx: &Ctx<'_>,
    o: usize,
    location: &S3Location,
    inputs: &[InputRef],
) -> Result<OutputSummary, JobError> {
    let op = ctx.plan.output(o);
    let name = op.name.as_str();
    let out_err = |cause: ArtifactCause| JobError::artifact(Side::Output, name, location, cause);
    let settings = ctx.settings;
    let decided = decide::decide(op, inputs, settings, out_err)?;
    let planned = decided.planned.len();

    // Read: every input's wanted entries, in order, within the budgets.
    let budgets = Budgets::new(settings.read_budget, settings.transform_budget);
    let read_plan = ReadPlan {
        chunk: settings.read_chunk,
        concurrency: settings.read_concurrency,
        max_gap: 256 << 10,
    };
    let sources: Vec<_> = inputs.iter().cloned().zip(decided.wants).collect();
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
    };
    let processed = pieces
        .map(move |piece| {
            let processor = processor.clone();
            async move { processor.process(piece?).await }
        })
        .buffered(settings.entry_window());
    futures::pin_mut!(processed);

    // Write: in order, into the sink.
    let sink = Sink::new(
        ctx.store.clone(),
        location.clone(),
        ctx.encryption.clone(),
        settings.clone(),
        ctx.cleanup.clone(),
        ctx.pool.clone(),
    );
    let mut writer = OutputWriter::new(sink, ctx.pool.clone(), inputs, name, location);
    while let Some(item) = processed.next().await {
        writer.write(item?).await?;
    }
    let w = writer.finish(ctx.plan.clone(), o, planned).await?;
    Ok(OutputSummary {
        name: name.to_string(),
        location: location.clone(),
        entries: w.entries,
        raw_entries: w.raw,
        transformed_entries: w.transformed,
        dropped_entries: decided.dropped,
        added_entries: w.added,
        exports: w.exports,
        object: w.object,
    })
}
