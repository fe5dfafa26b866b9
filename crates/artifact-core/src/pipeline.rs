//! One output artifact, end to end: plan entries from the inputs' central directories,
//! stream their data from the store, process entries on the rayon pool (raw copies stay
//! on the async side: no CPU work), write the zip in input order, and upload it.
//!
//! Output order is deterministic (route order, then central-directory order), so the
//! same inputs and plan always give a byte-identical output.

use std::sync::Arc;

use artifact_engine::entry::{
    check_transform_size, extras, planned_meta, process_entry, ManifestRow, Processed, StreamHash,
};
use artifact_engine::plan::{layout_output, Export, Plan};
use artifact_engine::zip::read::{METHOD_DEFLATED, METHOD_STORED};
use artifact_engine::zip::{EntryMeta, ZipWriter};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OwnedSemaphorePermit;

use crate::bridge::on_pool;
use crate::config::Settings;
use crate::error::{ArtifactCause, JobError, Side};
use crate::event::S3Location;
use crate::sink::{Cleanup, Sink, SinkSummary};
use crate::source::{stream_entries, Budgets, Piece, ReadPlan, Want, ZipIndex};
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

/// A large raw entry being streamed to the writer.
struct BigEntry {
    meta: EntryMeta,
    /// Inflates the data as it passes, checking size and CRC (and hashing for the
    /// manifest when `sha` is set); `None` when verification is off.
    check: Option<StreamHash>,
    sha: bool,
    /// The input it comes from (errors name it).
    input: usize,
}

enum Out {
    /// A processed entry, with its share of the transform budget (released once the
    /// entry is written).
    Entry(Box<Processed>, Option<OwnedSemaphorePermit>),
    BigStart(Box<BigEntry>),
    Data(Bytes),
    End,
    /// One input's entries were all sent.
    InputDone,
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

    // Decide every entry before any data moves: renames, selection, name clashes.
    let names: Vec<Vec<(&str, bool)>> = inputs
        .iter()
        .map(|i| {
            i.index
                .entries
                .iter()
                .map(|e| (e.name.as_str(), e.is_dir()))
                .collect()
        })
        .collect();
    let layout = layout_output(op, &names).map_err(|m| out_err(ArtifactCause::NameClash(m)))?;
    let dropped = layout.dropped;
    let settings = ctx.settings;
    let mut wants: Vec<Vec<Want>> = vec![Vec::new(); inputs.len()];
    for (tag, p) in layout.entries.iter().enumerate() {
        let input = &inputs[p.source];
        let e = &input.index.entries[p.entry];
        let ep = &p.plan;
        let whole =
            !ep.ops.is_empty() || ep.level.is_some() || ep.method.is_some_and(|m| m != e.method);
        if whole {
            // Refused from its declared sizes, before any byte of it is read.
            check_transform_size(e, settings.max_transform_size).map_err(|err| {
                JobError::artifact(Side::Input, &input.name, &input.index.location, err)
            })?;
        }
        wants[p.source].push(Want {
            entry: p.entry,
            whole: whole
                .then(|| settings.transform_footprint(e.compressed_size, e.uncompressed_size)),
            tag,
        });
    }
    let planned = Arc::new(layout.entries);

    let budgets = Budgets::new(settings.read_budget, settings.transform_budget);
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
                    budgets.clone(),
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
                let (tag, region, permit) = match piece {
                    Piece::BigData(b) => return Ok(Out::Data(b)),
                    Piece::BigEnd => return Ok(Out::End),
                    Piece::End => return Ok(Out::InputDone),
                    Piece::BigStart { tag } => {
                        let p = &planned[tag];
                        let input = &inputs[p.source];
                        let e = &input.index.entries[p.entry];
                        let verifiable = matches!(e.method, METHOD_STORED | METHOD_DEFLATED);
                        let check = if p.plan.hash {
                            Some(StreamHash::new(e))
                        } else if p.plan.verify && verifiable {
                            Some(StreamHash::verifier(e))
                        } else {
                            None
                        };
                        let check = check.transpose().map_err(|err| {
                            JobError::artifact(Side::Input, &input.name, &input.index.location, err)
                        })?;
                        return Ok(Out::BigStart(Box::new(BigEntry {
                            meta: planned_meta(e, &p.plan),
                            check,
                            sha: p.plan.hash,
                            input: p.source,
                        })));
                    }
                    Piece::Whole {
                        tag,
                        region,
                        permit,
                    } => (tag, region, permit),
                };
                let p = &planned[tag];
                let input = &inputs[p.source];
                let in_err = |c: ArtifactCause| {
                    JobError::artifact(Side::Input, &input.name, &input.index.location, c)
                };
                let e = &input.index.entries[p.entry];
                if !p.plan.needs_cpu(e.method) {
                    let op = plan.output(o);
                    return process_entry(e, region, op, &p.plan, max)
                        .map(|x| Out::Entry(Box::new(x), permit))
                        .map_err(|err| in_err(err.into()));
                }
                let index = input.index.clone();
                let planned2 = planned.clone();
                let r = on_pool(&pool, move || {
                    let p = &planned2[tag];
                    process_entry(
                        &index.entries[p.entry],
                        region,
                        plan.output(o),
                        &p.plan,
                        max,
                    )
                })
                .await
                .map_err(|panic| {
                    JobError::Internal(format!("transforming an entry panicked: {panic}"))
                })?;
                r.map(|x| Out::Entry(Box::new(x), permit))
                    .map_err(|err| in_err(err.into()))
            }
        })
        .buffered(settings.entry_window());
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
    let mut inputs_done = 0;
    let big_err = |input: usize, e: artifact_engine::ZipError| {
        let i = &inputs[input];
        JobError::artifact(Side::Input, &i.name, &i.index.location, e)
    };
    let mut big: Option<BigEntry> = None;
    let mut exports: Vec<Export> = Vec::new();
    let mut rows: Vec<ManifestRow> = Vec::new();
    while let Some(item) = processed.next().await {
        match item? {
            Out::InputDone => inputs_done += 1,
            Out::Entry(p, permit) => {
                let o = p.output;
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
                exports.extend(p.exports);
                rows.extend(p.manifest);
                drop(permit);
            }
            Out::BigStart(b) => {
                let h = writer
                    .local_header(&b.meta)
                    .map_err(|e| out_err(e.into()))?;
                sink.write(h).await.map_err(|e| out_err(e.into()))?;
                big_written = 0;
                big = Some(*b);
            }
            Out::Data(b) => {
                big_written += b.len() as u64;
                let entry = big.as_mut().expect("data follows a BigStart");
                // Inflate and check on the pool while the same bytes go to the sink.
                let (checked, written) = match entry.check.take() {
                    Some(mut check) => {
                        let data = b.clone();
                        let update = on_pool(&ctx.pool, move || check.update(&data).map(|_| check));
                        let (c, w) = tokio::join!(update, sink.write(b));
                        (Some(c), w)
                    }
                    None => (None, sink.write(b).await),
                };
                if let Some(c) = checked {
                    let c = c.map_err(|panic| {
                        JobError::Internal(format!("checking an entry panicked: {panic}"))
                    })?;
                    entry.check = Some(c.map_err(|e| big_err(entry.input, e))?);
                }
                written.map_err(|e| out_err(e.into()))?;
            }
            Out::End => {
                writer
                    .end_entry(big_written)
                    .map_err(|e| out_err(e.into()))?;
                let entry = big.take().expect("end follows a BigStart");
                if let Some(check) = entry.check {
                    let sha256 = check.finish().map_err(|e| big_err(entry.input, e))?;
                    if entry.sha {
                        rows.push(ManifestRow {
                            path: entry.meta.name,
                            size: entry.meta.uncompressed_size,
                            sha256,
                        });
                    }
                }
                raw += 1;
            }
        }
    }
    // A reader that died early must not pass for a finished, shorter archive.
    if inputs_done != inputs.len() || raw + transformed != planned.len() as u64 {
        return Err(out_err(ArtifactCause::Verify(format!(
            "{} of {} entries arrived from {inputs_done} of {} inputs; the output was not \
             completed",
            raw + transformed,
            planned.len(),
            inputs.len()
        ))));
    }
    let missing = op
        .missing_exports(&exports)
        .map_err(|e| out_err(ArtifactCause::Entry(e.into())))?;
    exports.extend(missing);
    let mut added = 0;
    for (meta, data) in extras(op, &mut rows) {
        let h = writer.local_header(&meta).map_err(|e| out_err(e.into()))?;
        let n = data.len() as u64;
        sink.write(h).await.map_err(|e| out_err(e.into()))?;
        sink.write(data).await.map_err(|e| out_err(e.into()))?;
        writer.end_entry(n).map_err(|e| out_err(e.into()))?;
        added += 1;
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
        added_entries: added,
        exports,
        object,
    })
}
