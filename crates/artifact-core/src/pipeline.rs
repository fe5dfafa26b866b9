//! One output artifact, end to end: plan entries from the inputs' central directories,
//! stream their data from the store, process entries on the rayon pool (raw copies stay
//! on the async side: no CPU work), write the zip in input order, and upload it.
//!
//! Output order is deterministic (route order, then central-directory order), so the
//! same inputs and plan always give a byte-identical output.

use std::collections::HashMap;
use std::sync::Arc;

use artifact_engine::entry::{meta_for, process_entry, EntryOutput};
use artifact_engine::plan::{Decision, Plan};
use artifact_engine::zip::{EntryMeta, ZipWriter};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use crate::bridge::on_pool;
use crate::config::Settings;
use crate::error::{ArtifactCause, JobError, Side};
use crate::event::S3Location;
use crate::sink::{Cleanup, Sink, SinkSummary};
use crate::source::{stream_entries, Piece, ReadPlan, Want, ZipIndex};
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

struct Planned {
    input: usize,
    entry: usize,
    decision: Decision,
}

enum Out {
    Entry(EntryOutput),
    BigStart(EntryMeta),
    Data(Bytes),
    End,
}

/// Writes output `name` at `location` from `inputs` (in route order).
pub async fn write_output(
    ctx: &Ctx<'_>,
    name: &str,
    location: &S3Location,
    inputs: &[InputRef],
) -> Result<OutputSummary, JobError> {
    let out_err = |cause: ArtifactCause| JobError::artifact(Side::Output, name, location, cause);

    // Decide every entry before any data moves; catch name clashes across inputs.
    let mut planned = Vec::new();
    let mut wants: Vec<Vec<Want>> = vec![Vec::new(); inputs.len()];
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut dropped = 0u64;
    for (i, input) in inputs.iter().enumerate() {
        for (j, e) in input.index.entries.iter().enumerate() {
            let decision = ctx.plan.decide(&e.name, e.is_dir());
            if decision == Decision::Drop {
                dropped += 1;
                continue;
            }
            if let Some(&other) = names.get(e.name.as_str()) {
                if !(e.is_dir() && other != i) {
                    return Err(out_err(ArtifactCause::NameClash(format!(
                        "entry {:?} comes from both input {:?} and input {:?}; route them to \
                         different outputs or exclude one",
                        e.name, inputs[other].name, input.name
                    ))));
                }
                dropped += 1; // the same directory in two inputs: keep the first
                continue;
            }
            names.insert(&e.name, i);
            let whole = matches!(decision, Decision::Transform(_));
            wants[i].push(Want {
                entry: j,
                whole,
                tag: planned.len(),
            });
            planned.push(Planned {
                input: i,
                entry: j,
                decision,
            });
        }
    }
    let planned = Arc::new(planned);

    let settings = ctx.settings;
    let budget = Arc::new(Semaphore::new(settings.read_budget as usize));
    let read_plan = ReadPlan {
        chunk: settings.read_chunk,
        concurrency: settings.read_concurrency,
        max_gap: 256 << 10,
    };
    let pieces = futures::stream::iter(inputs.iter().cloned().zip(wants).collect::<Vec<_>>())
        .map({
            let store = ctx.store.clone();
            move |(input, w)| {
                let loc = input.index.location.clone();
                let iname = input.name.clone();
                stream_entries(
                    store.clone(),
                    input.index.clone(),
                    w,
                    read_plan.clone(),
                    budget.clone(),
                    settings.read_budget,
                )
                .map_err(move |c| JobError::artifact(Side::Input, &iname, &loc, c))
            }
        })
        .flatten();

    let processed = pieces
        .map(|piece| {
            let planned = planned.clone();
            let inputs = inputs.to_vec();
            let plan = ctx.plan.clone();
            let pool = ctx.pool.clone();
            let max = settings.max_transform_size;
            async move {
                let piece = piece?;
                let (tag, region) = match piece {
                    Piece::BigData(b) => return Ok(Out::Data(b)),
                    Piece::BigEnd => return Ok(Out::End),
                    Piece::BigStart { tag } => {
                        let p = &planned[tag];
                        let e = &inputs[p.input].index.entries[p.entry];
                        return Ok(Out::BigStart(meta_for(e, &e.name)));
                    }
                    Piece::Whole { tag, region } => (tag, region),
                };
                let p = &planned[tag];
                let input = &inputs[p.input];
                let in_err = |c: ArtifactCause| {
                    JobError::artifact(Side::Input, &input.name, &input.index.location, c)
                };
                if p.decision == Decision::Raw {
                    let e = &input.index.entries[p.entry];
                    return process_entry(e, &e.name, region, &plan, &p.decision, max)
                        .map(Out::Entry)
                        .map_err(|err| in_err(err.into()));
                }
                let index = input.index.clone();
                let (entry, decision) = (p.entry, p.decision.clone());
                let r = on_pool(&pool, move || {
                    let e = &index.entries[entry];
                    process_entry(e, &e.name, region, &plan, &decision, max)
                })
                .await
                .map_err(|panic| {
                    JobError::Internal(format!("transforming an entry panicked: {panic}"))
                })?;
                r.map(Out::Entry).map_err(|err| in_err(err.into()))
            }
        })
        .buffered(settings.entry_window.max(1));
    futures::pin_mut!(processed);

    let mut sink = Sink::new(
        ctx.store.clone(),
        location.clone(),
        ctx.encryption.clone(),
        settings.clone(),
        ctx.cleanup.clone(),
    );
    let mut writer = ZipWriter::new();
    let (mut raw, mut transformed, mut big_written) = (0u64, 0u64, 0u64);
    while let Some(item) = processed.next().await {
        match item? {
            Out::Entry(o) => {
                let h = writer
                    .local_header(&o.meta)
                    .map_err(|e| out_err(e.into()))?;
                let n = o.data.len() as u64;
                sink.write(h).await.map_err(|e| out_err(e.into()))?;
                sink.write(o.data).await.map_err(|e| out_err(e.into()))?;
                writer.end_entry(n).map_err(|e| out_err(e.into()))?;
                if o.raw {
                    raw += 1
                } else {
                    transformed += 1
                }
            }
            Out::BigStart(meta) => {
                let h = writer.local_header(&meta).map_err(|e| out_err(e.into()))?;
                sink.write(h).await.map_err(|e| out_err(e.into()))?;
                big_written = 0;
            }
            Out::Data(b) => {
                big_written += b.len() as u64;
                sink.write(b).await.map_err(|e| out_err(e.into()))?;
            }
            Out::End => {
                writer
                    .end_entry(big_written)
                    .map_err(|e| out_err(e.into()))?;
                raw += 1;
            }
        }
    }
    let entries = writer.entries();
    let trailer = writer.finish(b"").map_err(|e| out_err(e.into()))?;
    sink.write(trailer).await.map_err(|e| out_err(e.into()))?;
    let object = sink.finish().await.map_err(|e| out_err(e.into()))?;
    Ok(OutputSummary {
        name: name.to_string(),
        location: location.clone(),
        entries,
        raw_entries: raw,
        transformed_entries: transformed,
        dropped_entries: dropped,
        object,
    })
}
