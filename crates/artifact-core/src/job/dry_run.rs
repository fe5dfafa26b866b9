//! The dry run (`artifact-runner plan`): everything a job decides before data
//! moves, without writing anything. The event is validated and the plan compiled
//! as the job would; the inputs' central directories are read (ranged GETs of the
//! directory only); each output is decided by the same code the job uses, so a
//! name clash or an entry too large to transform fails here as it would there.
//!
//! The result lists, per output, every input entry's fate (raw copy, transformed,
//! recompressed, dropped, and why) with the steps that matched it, the files the
//! plan adds, and how many entries each step matched.

use artifact_engine::plan::{EntryPlan, Extra, OutputFormat, OutputPlan, Unzip};
use serde::Serialize;
use std::collections::HashMap;

use super::Worker;
use crate::error::{ArtifactCause, JobError, Side};
use crate::event::{Event, Job};
use crate::pipeline::decide::{decide, output_inputs};
use crate::pipeline::InputRef;

/// What a job would do.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// The event's job id.
    pub job_id: String,
    /// Per output artifact, in event order.
    pub outputs: Vec<OutputDryRun>,
}

/// What one output would get.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputDryRun {
    /// Output artifact name.
    pub name: String,
    /// Its input artifacts, in order.
    pub sources: Vec<String>,
    /// The archive it would be: `zip` or `tar.gz`.
    pub format: &'static str,
    /// Every step with the number of entries it matched.
    pub steps: Vec<StepMatches>,
    /// Every input entry, and every added file.
    pub entries: Vec<EntryFate>,
    /// Entries per fate.
    pub counts: HashMap<Fate, u64>,
}

/// A step and how many entries it matched.
#[derive(Debug, Clone, Serialize)]
pub struct StepMatches {
    /// As errors name it: `steps[1] (template)`.
    pub step: String,
    /// Entries (or added files) it matched.
    pub matched: u64,
    /// False when its `when` does not hold: the job skips it.
    pub active: bool,
}

/// What happens to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fate {
    /// Copied as it is (compressed bytes unchanged).
    Raw,
    /// Changed by content steps.
    Transformed,
    /// Same content, recompressed (a `pack` compression or level).
    Recompressed,
    /// Left out.
    Dropped,
    /// Added by the plan (`add`, `manifest`).
    Added,
}

/// One entry's fate in one output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryFate {
    /// The input artifact (none for added files).
    pub input: Option<String>,
    /// The entry's name in its input (none for added files); `zip:member` for a member
    /// of a zip entry an `unzip` step unpacks.
    pub entry: Option<String>,
    /// Its path in the output (none when dropped).
    pub path: Option<String>,
    /// What happens to it.
    pub fate: Fate,
    /// The steps that matched it, in order.
    pub steps: Vec<String>,
    /// Why it is dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Worker {
    /// Decides the job in `event` without writing anything (see the module doc).
    /// Errors are the ones the job would fail with, before any data moved.
    pub async fn dry_run(&self, event: serde_json::Value) -> Result<DryRun, JobError> {
        let job = Event::parse(event).map_err(|(e, _)| JobError::from(e))?.job;
        job.validate()?;
        let parts = self.clone_parts();
        let store = self.stores.store_for(&job.data.artifact_credentials);
        let (mut plan, _) = parts.compile_plan(&job, &job.id, store.as_ref()).await?;
        let indexes = parts.index_inputs(&job, &plan, &store).await?;
        super::run::resolve_conditions(&mut plan, &indexes);
        let indexes = super::unzip::add_unzipped_members(
            store.as_ref(),
            &job,
            &plan,
            indexes,
            &self.settings,
        )
        .await?;
        super::patch_files::read_patch_files(store.as_ref(), &job, &mut plan, &indexes).await?;
        let (mut outputs, mut step_hits) = (Vec::new(), Vec::new());
        for (o, artifact) in job.data.output_artifacts.iter().enumerate() {
            let op = plan.output(o);
            let inputs = output_inputs(&plan, o, &indexes);
            let location = Job::location(artifact);
            let out_err =
                |c: ArtifactCause| JobError::artifact(Side::Output, &op.name, location, c);
            let decided = decide(op, &inputs, &self.settings, out_err)?;
            outputs.push(output_dry_run(op, &inputs, &decided.planned));
            step_hits.push(decided.step_hits);
        }
        plan.check_steps_matched(&step_hits)?;
        Ok(DryRun {
            job_id: job.id,
            outputs,
        })
    }
}

/// Every input entry's fate in `op`, given what the job decided (`planned`).
fn output_dry_run(
    op: &OutputPlan,
    inputs: &[InputRef],
    planned: &[artifact_engine::plan::Planned],
) -> OutputDryRun {
    // A copied entry is planned once per path it is written at.
    let kept: HashMap<(usize, usize, Option<usize>, &str), &EntryPlan> = planned
        .iter()
        .map(|p| {
            (
                (p.source, p.entry, p.plan.inner, p.plan.name.as_str()),
                &p.plan,
            )
        })
        .collect();
    let mut matched = vec![0u64; op.step_count()];
    let mut entries = Vec::new();
    for (s, input) in inputs.iter().enumerate() {
        let infos = input.index.infos();
        // The `unzip` records of this input's zip entries, by entry.
        let mut unpacked: HashMap<usize, Vec<Unzip>> = HashMap::new();
        for (i, info) in infos.iter().enumerate() {
            let traces = match info.inner_of {
                None => vec![op.trace_entry(s, *info)],
                Some(c) => unpacked.get(&c).map_or_else(Vec::new, |us| {
                    us.iter().map(|u| op.trace_member(s, *info, u)).collect()
                }),
            };
            let e = &input.index.entries[i];
            let entry = match info.inner_of {
                None => e.name.clone(),
                Some(c) => format!("{}:{}", input.index.entries[c].name, e.name),
            };
            for trace in traces {
                for &step in &trace.matched {
                    matched[step] += 1;
                }
                let steps: Vec<String> = trace.matched.iter().map(|&i| label(op, i)).collect();
                let original = trace.decided.as_ref().ok().and_then(|d| d.as_ref());
                let found = |ep: &EntryPlan| kept.get(&(s, i, ep.inner, ep.name.as_str())).copied();
                let fate = |ep: Option<&EntryPlan>| match ep.and_then(found) {
                    Some(ep) => (kept_fate(op, ep, e.method), Some(output_path(op, ep)), None),
                    None => (Fate::Dropped, None, Some(drop_reason(op, &trace))),
                };
                // A copy that made it through the steps is left out only by a clash
                // at its own path.
                let copies = trace.copies.iter().map(|c| match found(c) {
                    Some(_) => fate(Some(c)),
                    None => (Fate::Dropped, None, Some(clash_reason(op, &c.name))),
                });
                for (fate, path, reason) in std::iter::once(fate(original)).chain(copies) {
                    entries.push(EntryFate {
                        input: Some(input.name.clone()),
                        entry: Some(entry.clone()),
                        path,
                        fate,
                        steps: steps.clone(),
                        reason,
                    });
                }
                if !trace.unzips.is_empty() {
                    unpacked.entry(i).or_default().extend(trace.unzips.clone());
                }
            }
        }
    }
    for (step, extra) in op.extra_steps() {
        matched[step] += 1;
        let path = match extra {
            Extra::Add { path, .. } | Extra::Manifest { path } => path.to_string(),
        };
        entries.push(EntryFate {
            input: None,
            entry: None,
            path: Some(path),
            fate: Fate::Added,
            steps: vec![label(op, step)],
            reason: None,
        });
    }
    let mut counts = HashMap::new();
    for e in &entries {
        *counts.entry(e.fate).or_insert(0) += 1;
    }
    OutputDryRun {
        name: op.name.clone(),
        sources: op.sources.iter().map(|s| s.input_name.clone()).collect(),
        format: match op.format {
            OutputFormat::Zip => "zip",
            OutputFormat::TarGz => "tar.gz",
        },
        steps: (0..op.step_count())
            .map(|i| StepMatches {
                step: label(op, i),
                matched: matched[i],
                active: op.step_active(i),
            })
            .collect(),
        entries,
        counts,
    }
}

/// Where a kept entry lands: its path, or `zip:member` inside a zip a `zip` step makes.
fn output_path(op: &OutputPlan, ep: &EntryPlan) -> String {
    match ep.inner.and_then(|step| op.zip_path(step)) {
        Some(zip) => format!("{zip}:{}", ep.name),
        None => ep.name.clone(),
    }
}

fn label(op: &OutputPlan, i: usize) -> String {
    op.step_label(i).to_string()
}

/// A kept entry's fate: content steps other than `export` (which only reads)
/// transform it; a compression change recompresses it; else it is copied raw.
fn kept_fate(op: &OutputPlan, ep: &EntryPlan, method: u16) -> Fate {
    let changes = ep
        .ops
        .iter()
        .any(|&i| !op.step_label(i).ends_with("(export)"));
    if changes {
        Fate::Transformed
    } else if ep.level.is_some() || ep.method.is_some_and(|m| m != method) {
        Fate::Recompressed
    } else {
        Fate::Raw
    }
}

/// Why an entry the plan would keep on its own is not in the output.
fn drop_reason(op: &OutputPlan, trace: &artifact_engine::plan::Trace) -> String {
    match &trace.decided {
        Ok(None) => match trace.matched.last() {
            Some(&i) if is_select(op, i) => format!("dropped by {}", op.step_label(i)),
            Some(&i) if trace.unzips.iter().any(|u| u.step == i) => {
                format!(
                    "unpacked by {} (its members are listed as zip:member)",
                    op.step_label(i)
                )
            }
            _ if op.sources.is_empty() => "no source".into(),
            _ => "left out (not selected, a symbolic link under \"symlinks\": \"drop\", \
                  or a directory a move flattened)"
                .into(),
        },
        Ok(Some(ep)) => clash_reason(op, &ep.name),
        Err(why) => why.clone(),
    }
}

/// Why an entry planned at `path` was left out: another entry won the path.
fn clash_reason(op: &OutputPlan, path: &str) -> String {
    format!(
        "another entry has the output path {path:?} (on_conflict: {:?})",
        op.on_conflict
    )
}

fn is_select(op: &OutputPlan, i: usize) -> bool {
    let l = op.step_label(i);
    l.ends_with("(include)") || l.ends_with("(exclude)")
}

/// Checks a UserParameters document offline, as the job would before any data
/// moves, for an action with these input and output artifact names (the built-in
/// variables get placeholders). The error is the job's, with the message it would
/// report. `Ok(Some(file))` when the document only points at a plan file
/// (`Input::path`), which is read when the job runs.
pub fn validate_user_parameters(
    text: &str,
    inputs: &[String],
    outputs: &[String],
    steps: &artifact_engine::plan::StepRegistry,
) -> Result<Option<String>, JobError> {
    use artifact_engine::plan::{JobContext, Plan, PlanSpec};
    let spec = PlanSpec::parse(Some(text))?;
    if let Some(file) = spec.plan_file()? {
        // The file is in an artifact: it is read and checked when the job runs
        // (validate the file itself to check it now).
        return Ok(Some(file.to_string()));
    }
    let mut builtins = std::collections::BTreeMap::from([
        (
            "CODEPIPELINE_JOB_ID".to_string(),
            "00000000-0000-0000-0000-000000000000".to_string(),
        ),
        (
            "CODEPIPELINE_ACCOUNT_ID".to_string(),
            "123456789012".to_string(),
        ),
    ]);
    for name in inputs {
        let key = crate::report::variable_key_part(name).replace(['-', '@'], "_");
        builtins.insert(format!("{key}_REVISION"), "0".repeat(40));
    }
    let ctx = JobContext {
        inputs: inputs.to_vec(),
        outputs: outputs.to_vec(),
        builtins,
    };
    Plan::compile_with(&spec, &ctx, steps)?;
    Ok(None)
}
