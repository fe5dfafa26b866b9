//! `merge` steps with a `patch_file`: the patch is an entry of an input artifact,
//! read with the job's credentials once the inputs are indexed and before any output
//! data moves (the same bounded, CRC-checked read as a plan file).
//!
//! Invariants: each file is read once per invocation, from the object version the
//! job's reads are pinned to (the index's ETag); a missing or oversized file, or one
//! that is not a JSON/YAML patch, is a `ConfigurationError` naming the step's field;
//! a corrupt entry is the input's `JobFailed`.

use std::collections::BTreeMap;
use std::sync::Arc;

use artifact_engine::memory::MAX_PATCH_FILE;
use artifact_engine::plan::Plan;
use artifact_engine::PlanError;
use futures::future::try_join_all;

use super::plan_file::{read_small_entry, SmallRead};
use crate::error::{JobError, Side};
use crate::event::Job;
use crate::source::ZipIndex;
use crate::store::ObjectStore;

/// Reads the patch files `plan` needs from `indexes` and hands them to it.
pub(super) async fn read_patch_files(
    store: &dyn ObjectStore,
    job: &Job,
    plan: &mut Plan,
    indexes: &BTreeMap<usize, Arc<ZipIndex>>,
) -> Result<(), JobError> {
    let find = |input: usize, path: &str| {
        indexes.get(&input).and_then(|idx| {
            idx.own_entries()
                .iter()
                .position(|e| e.name == path && !e.is_dir())
        })
    };
    let wanted = plan
        .patch_files(|input, path| find(input, path).is_some())
        .map_err(JobError::Plan)?;
    let texts = try_join_all(wanted.iter().map(|(input, path, at)| async move {
        let index = &indexes[input];
        let i = find(*input, path).expect("patch_files checked it");
        let a = &job.data.input_artifacts[*input];
        let what = format!("patch file {}::{path}", a.name);
        read_small_entry(store, index, i, MAX_PATCH_FILE, &what)
            .await
            .map(|t| ((*input, path.clone()), t))
            .map_err(|err| match err {
                SmallRead::Plan(message) => JobError::Plan(PlanError {
                    path: at.clone(),
                    message,
                }),
                SmallRead::Input(c) => {
                    JobError::artifact(Side::Input, &a.name, Job::location(a), c)
                }
            })
    }))
    .await?;
    let texts: BTreeMap<(usize, String), String> = texts.into_iter().collect();
    plan.provide_patch_files(|input, path| {
        texts.get(&(input, path.to_string())).map(String::as_str)
    })
    .map_err(JobError::Plan)
}
