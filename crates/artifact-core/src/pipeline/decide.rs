//! Stage 1, before any data moves: decide every entry of an output (renames,
//! selection, name clashes, via the plan's layout) and what must be read of it.
//!
//! Entries past the whole-entry limit whose steps can stream (`template`, literal
//! `replace`) are read as pieces and transformed as they pass instead of refused.
//!
//! Invariants: symbolic links are planned as links (no content steps; the plan's
//! `symlinks` mode applies) and read whole so their target can be checked; an
//! entry that a content step or recompression needs whole is refused
//! here, from its declared sizes, when it could not be held within the transform
//! limit; its footprint is attached to its read so the source takes it from the
//! transform budget before assembling a byte.

use std::collections::BTreeMap;
use std::sync::Arc;

use artifact_engine::check_symlink;
use artifact_engine::entry::check_transform_size;
use artifact_engine::links::MAX_LINK_TARGET;
use artifact_engine::plan::{
    layout_output_entries, EntryInfo, InnerZip, OutputFormat, OutputPlan, Plan, Planned,
};
use artifact_engine::streamed::streamable;
use artifact_engine::zip::inner::in_zip;
use artifact_engine::zip::read::{METHOD_DEFLATED, METHOD_STORED};
use artifact_engine::ZipError;

use super::InputRef;
use crate::config::Settings;
use crate::error::{ArtifactCause, JobError, Side};
use crate::source::{inflation_passes, Want, ZipIndex};

/// An output's entries, decided.
pub(crate) struct Decided {
    /// Entries to write, in output order (a read's `tag` indexes this).
    pub planned: Arc<Vec<Planned>>,
    /// What to read of each input, in input order.
    pub wants: Vec<Vec<Want>>,
    /// Entries the plan left out.
    pub dropped: u64,
    /// How many input entries each step of the output matched.
    pub step_hits: Vec<u64>,
    /// The zip entries `zip` steps make, and where their members are in `planned`.
    pub inner: Vec<InnerZip>,
}

/// Decides output `op` over `inputs`; errors name the output (clashes) or the input
/// entry (too large to transform).
pub(crate) fn decide(
    op: &OutputPlan,
    inputs: &[InputRef],
    settings: &Settings,
    out_err: impl Fn(ArtifactCause) -> JobError,
) -> Result<Decided, JobError> {
    let names: Vec<Vec<EntryInfo<'_>>> = inputs.iter().map(|i| i.index.infos()).collect();
    let layout =
        layout_output_entries(op, &names).map_err(|m| out_err(ArtifactCause::NameClash(m)))?;
    let mut wants: Vec<Vec<Want>> = vec![Vec::new(); inputs.len()];
    for (tag, p) in layout.entries.iter().enumerate() {
        let input = &inputs[p.source];
        let e = &input.index.entries[p.entry];
        let ep = &p.plan;
        let in_err = |err| JobError::artifact(Side::Input, &input.name, &input.index.location, err);
        let max_link = MAX_LINK_TARGET as u64;
        if e.is_symlink() && (e.uncompressed_size > max_link || e.compressed_size > max_link + 64) {
            // An oversized "target" is refused from its declared size, before reading
            // (check_symlink refuses it without looking at the data).
            check_symlink(e, ep, &[]).map_err(in_err)?;
        }
        let tar = op.format == OutputFormat::TarGz;
        if tar && !matches!(e.method, METHOD_STORED | METHOD_DEFLATED) {
            return Err(in_err(tar_needs_content(e.method)));
        }
        // Links are assembled whole: their target is checked before they are written.
        let changed = e.is_symlink() || !ep.ops.is_empty();
        let repacked = !tar && (ep.level.is_some() || ep.method.is_some_and(|m| m != e.method));
        // A tar.gz output holds content: deflated entries are inflated whole when
        // they fit the limit, else as they stream by (their size is known).
        let inflated = tar && e.method != METHOD_STORED;
        let mut whole = changed || repacked || inflated;
        let mut pieces = false;
        if whole {
            if let Err(too_big) = check_transform_size(e, settings.max_transform_size) {
                if !changed && !repacked {
                    // Inflated for a tar.gz as it streams: never whole, even when
                    // its compressed bytes fit one chunk.
                    (whole, pieces) = (false, true);
                } else if !tar && streamable(op, ep, e) {
                    // Past the whole-entry limit, `template` and literal `replace` stream.
                    (whole, pieces) = (false, true);
                } else if tar && streamable(op, ep, e) {
                    return Err(in_err(tar_cannot_stream(e, settings.max_transform_size)));
                } else {
                    return Err(in_err(too_big));
                }
            }
        }
        wants[p.source].push(Want {
            entry: p.entry,
            whole: whole
                .then(|| settings.transform_footprint(e.compressed_size, e.uncompressed_size)),
            pieces,
            tag,
        });
    }
    check_inflation_passes(inputs, &wants)?;
    Ok(Decided {
        planned: Arc::new(layout.entries),
        wants,
        dropped: layout.dropped,
        step_hits: layout.step_hits,
        inner: layout.inner,
    })
}

/// Why an entry compressed with `method` cannot go into a tar.gz output.
fn tar_needs_content(method: u16) -> ZipError {
    ZipError::Unsupported(format!(
        "it uses compression method {method}; a tar.gz output holds entries' content, and \
         only stored (0) and deflated (8) entries can be read for it"
    ))
}

/// Why entry `e`, too large to hold for its content steps, cannot stream into a
/// tar.gz output.
fn tar_cannot_stream(e: &artifact_engine::zip::read::CdEntry, max: u64) -> ZipError {
    ZipError::Limit(format!(
        "entry {:?} is {} bytes uncompressed, over the {max} bytes an entry may have to be \
         transformed whole; a zip output would transform it as it streams, but a tar.gz \
         output writes each entry's size before its content (raise the function memory, \
         leave the entry out of the step, or write a zip output)",
        e.name, e.uncompressed_size
    ))
}

/// The most passes of inflation over one deflated inner zip an output may take.
pub(crate) const MAX_INFLATION_PASSES: u64 = 16;

/// Refuses reads that would inflate a deflated inner zip more than
/// [`MAX_INFLATION_PASSES`] times (its members wanted out of the order of their data).
fn check_inflation_passes(inputs: &[InputRef], wants: &[Vec<Want>]) -> Result<(), JobError> {
    for (input, wants) in inputs.iter().zip(wants) {
        for (c, n) in inflation_passes(&input.index, wants) {
            if n > MAX_INFLATION_PASSES {
                let why = ZipError::Limit(format!(
                    "writing its members would inflate it {n} times (at most \
                     {MAX_INFLATION_PASSES}): they are wanted out of the order of their \
                     data, by copies of members, zip steps mixing them with other \
                     entries, or several unzips of it"
                ));
                let cause = in_zip(&input.index.entries[c].name, why);
                return Err(JobError::artifact(
                    Side::Input,
                    &input.name,
                    &input.index.location,
                    cause,
                ));
            }
        }
    }
    Ok(())
}

/// The inputs feeding output `o` of `plan`, from the job's `indexes` (by input index).
pub(crate) fn output_inputs(
    plan: &Plan,
    o: usize,
    indexes: &BTreeMap<usize, Arc<ZipIndex>>,
) -> Vec<InputRef> {
    plan.output(o)
        .sources
        .iter()
        .map(|s| InputRef {
            name: s.input_name.clone(),
            index: indexes[&s.input].clone(),
        })
        .collect()
}

/// Decides every output before any data moves, so that a clash, an entry too large
/// to transform or a step that matches nothing fails the job before the first byte
/// is written, whichever output it is in. Each output's decision is dropped once its
/// figures are taken (outputs are decided again, one at a time, as they are
/// written), so memory holds one output's plan at a time.
pub(crate) fn preflight(
    plan: &Plan,
    indexes: &BTreeMap<usize, Arc<ZipIndex>>,
    settings: &Settings,
    out_err: impl Fn(usize, ArtifactCause) -> JobError,
) -> Result<(), JobError> {
    let mut step_hits = Vec::with_capacity(plan.outputs().len());
    for o in 0..plan.outputs().len() {
        let inputs = output_inputs(plan, o, indexes);
        let decided = decide(plan.output(o), &inputs, settings, |c| out_err(o, c))?;
        step_hits.push(decided.step_hits);
    }
    Ok(plan.check_steps_matched(&step_hits)?)
}
