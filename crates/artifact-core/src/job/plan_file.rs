//! A plan versioned with the code: `"plan_file": "Input::path"` in UserParameters
//! names an entry of an input artifact holding the plan (JSON or YAML). It is read
//! with the job's credentials before any other data moves: the input's central
//! directory, then that one entry, inflated and CRC-checked.
//!
//! Invariants: the file is at most [`MAX_PLAN_FILE`] bytes (refused from its declared
//! size before it is read); a missing input, entry or an unreadable file is a
//! `ConfigurationError` naming `plan_file`; a corrupt entry is the input's `JobFailed`.

use artifact_engine::entry::{compressed_data, decompress};
use artifact_engine::names::NameRules;
use artifact_engine::plan::PlanFile;
use artifact_engine::PlanError;

use crate::config::Settings;
use crate::error::ArtifactCause;
use crate::error::{JobError, Side};
use crate::event::Job;
use crate::source::{load_index, IndexLimits, ZipIndex};
use crate::store::{ObjectStore, StoreError, StoreErrorKind};

/// The largest plan file read.
pub const MAX_PLAN_FILE: u64 = 1 << 20;

fn plan_error(message: String) -> JobError {
    JobError::Plan(PlanError {
        path: "plan_file".into(),
        message,
    })
}

/// The text of `file`, read from the job's input artifact it names, and the ETag of
/// the object it was read from (the job pins that input to it).
pub(super) async fn read_plan_file(
    store: &dyn ObjectStore,
    job: &Job,
    file: &PlanFile,
    settings: &Settings,
) -> Result<(String, Option<String>), JobError> {
    let inputs = &job.data.input_artifacts;
    let Some(artifact) = inputs.iter().find(|a| a.name == file.input) else {
        let names: Vec<&str> = inputs.iter().map(|a| a.name.as_str()).collect();
        return Err(plan_error(format!(
            "{file}: no input artifact named {:?}; the job has {names:?}",
            file.input
        )));
    };
    let loc = Job::location(artifact);
    let in_err = |c| JobError::artifact(Side::Input, &artifact.name, loc, c);
    // Only this entry is looked up here; the plan's own name rules apply when the
    // job indexes its inputs.
    let lax = NameRules {
        allow_case_duplicates: true,
    };
    let limits = IndexLimits {
        cd_bytes: settings.max_cd_size,
        entries: settings.max_entries,
    };
    let index = load_index(store, loc, &lax, limits).await.map_err(in_err)?;
    let Some(i) = index.own_entries().iter().position(|e| e.name == file.path) else {
        return Err(plan_error(format!(
            "{file}: input {:?} has no entry {:?}",
            file.input, file.path
        )));
    };
    let text = read_small_entry(store, &index, i, MAX_PLAN_FILE, &file.to_string())
        .await
        .map_err(|err| match err {
            SmallRead::Plan(m) => plan_error(m),
            SmallRead::Input(c) => in_err(c),
        })?;
    Ok((text, index.etag))
}

/// Why a small entry could not be read: the plan's fault (`what` is not a small text
/// file) or the input's (store error, corrupt data).
pub(super) enum SmallRead {
    Plan(String),
    Input(ArtifactCause),
}

/// The text of entry `i` of `index`, a regular file of at most `max` bytes (`what`
/// names it in messages), inflated and CRC-checked.
pub(super) async fn read_small_entry(
    store: &dyn ObjectStore,
    index: &ZipIndex,
    i: usize,
    max: u64,
    what: &str,
) -> Result<String, SmallRead> {
    let e = &index.entries[i];
    if e.is_dir() || e.is_symlink() {
        return Err(SmallRead::Plan(format!("{what}: is not a regular file")));
    }
    if e.uncompressed_size > max || e.compressed_size > max + (64 << 10) {
        return Err(SmallRead::Plan(format!(
            "{what}: {} bytes; at most {max} are read",
            e.uncompressed_size
        )));
    }
    // The local header (30 bytes, name and extra field of up to 64 KiB each), the
    // data and a data descriptor: never more, whatever lies before the next entry.
    let most = e.header_offset + 30 + 2 * 0xFFFF + e.compressed_size + 24;
    let region = store
        .get_range(
            &index.location,
            e.header_offset..index.ends[i].min(most),
            index.etag.as_deref(),
        )
        .await
        .map_err(|s| SmallRead::Input(s.into()))?;
    let data = compressed_data(e, &region).map_err(|z| SmallRead::Input(z.into()))?;
    let text = decompress(e, &data).map_err(|z| SmallRead::Input(z.into()))?;
    String::from_utf8(text).map_err(|_| SmallRead::Plan(format!("{what}: not UTF-8 text")))
}

/// Refuses a job whose plan file's input changed between reading the plan and
/// indexing the inputs (`indexed`: the ETag the job's reads are pinned to).
pub(super) fn check_plan_pinned(
    job: &Job,
    file: &PlanFile,
    read_from: &Option<String>,
    indexed: &Option<String>,
) -> Result<(), JobError> {
    if read_from == indexed {
        return Ok(());
    }
    let a = job
        .data
        .input_artifacts
        .iter()
        .find(|a| a.name == file.input)
        .expect("the plan file's input was found when it was read");
    let loc = Job::location(a);
    let cause = StoreError::new(
        StoreErrorKind::Changed,
        "GetObject",
        loc,
        format!("{file} was read from ETag {read_from:?}, the input is now {indexed:?}"),
    );
    Err(JobError::artifact(Side::Input, &a.name, loc, cause))
}
