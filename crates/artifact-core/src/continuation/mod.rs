//! Long jobs across invocations: checkpoints and continuation tokens.
//!
//! When the time left will not finish a job, the writer stops at an entry boundary
//! ([`Clock`] decides when), and the job saves a [`Checkpoint`] in a state object
//! beside its first output (written with the job's credentials and KMS key,
//! [`state`]) and reports success with a continuation token ([`Token`]) instead of
//! output variables. CodePipeline then starts a new job for the same action with the
//! token; that job loads the state, checks its digest and that it belongs to the same
//! artifacts, parameters and input ETags, and goes on exactly where the last one
//! stopped: the same multipart upload, the same part boundaries, the same SHA-256
//! state, the same central directory. The output is byte-identical to an
//! uninterrupted run's, and so are the output variables.
//!
//! Invariants:
//! - A checkpoint is taken only between entries, after the parts in flight are
//!   confirmed; the bytes of the part being filled go into the state object, never
//!   into an early short part, so part boundaries depend only on the output bytes.
//! - The built-in `CODEPIPELINE_JOB_ID` stays the first job's id in every invocation.
//! - State objects are deleted once the report that supersedes them was taken: the
//!   previous one after a continuation report, the last one after the final report.
//!   Uploads and state objects of a continued job that fails are removed only after
//!   CodePipeline took the failure report, so a duplicate delivery of an event that
//!   was already handled cannot damage the invocation that goes on.

mod clock;
mod state;
mod token;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

pub use self::clock::Clock;
pub use self::state::{load, save, Loaded};
pub use self::token::{Token, MAX_TOKEN_CHARS};
use crate::event::{Job, S3Location};
use crate::pipeline::{OutputProgress, OutputSummary};
use crate::store::{StoreError, StoreErrorKind};

/// Everything a later invocation needs to go on with a job.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The first invocation's job id (the built-in `CODEPIPELINE_JOB_ID`).
    pub first_job_id: String,
    /// Invocations so far, this one included.
    pub invocations: u32,
    /// The ETag each indexed input had (by input position).
    pub input_etags: BTreeMap<usize, Option<String>>,
    /// The whole-entry limit the job planned with (it decides which entries stream,
    /// and so the output bytes).
    pub max_transform_size: u64,
    /// What saving the last checkpoint cost, from deciding to stop to the state
    /// object written (the next invocation keeps at least this much back).
    pub checkpoint_ms: u64,
    /// Outputs completed, in event order.
    pub done: Vec<OutputSummary>,
    /// The output in progress, if one was started.
    pub current: Option<OutputProgress>,
}

impl Checkpoint {
    /// Progress, in percent of outputs (the current one by entries), 1..=99.
    pub fn percent(&self, outputs: usize, planned_in_current: usize) -> i32 {
        let mut done = self.done.len() as f64;
        if let Some(c) = &self.current {
            done += c.arrived as f64 / planned_in_current.max(1) as f64;
        }
        ((done / outputs.max(1) as f64) * 100.0).clamp(1.0, 99.0) as i32
    }
}

/// Why a continuation could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ContinuationError {
    /// The token is not one this worker wrote.
    #[error("the continuation token is not valid ({0}); it was not written by this worker or was altered")]
    BadToken(String),
    /// The token was written for another action's artifacts or parameters.
    #[error(
        "the continuation token belongs to other artifacts or UserParameters than this job's; \
         a checkpoint can only be continued by the same action with the same inputs, outputs \
         and parameters"
    )]
    OtherArtifacts,
    /// The state object is gone.
    #[error(
        "the checkpoint state object {0} is missing (already finished by another delivery of \
         this job, or deleted); the job cannot go on: retry the pipeline execution"
    )]
    Missing(S3Location),
    /// The state object does not match the token, or does not parse.
    #[error("the checkpoint state object {0} was altered: {1}")]
    Altered(S3Location, String),
    /// An input changed between invocations.
    #[error(
        "input artifact {name:?} changed between invocations (ETag {was} at the checkpoint, \
         {now} now); the output cannot mix two revisions"
    )]
    InputChanged {
        /// Input artifact name.
        name: String,
        /// ETag at the checkpoint.
        was: String,
        /// ETag now.
        now: String,
    },
    /// The function has less memory than the invocation that started the job.
    #[error(
        "the job was started with a whole-entry limit of {was} bytes and this invocation \
         allows {now}: give the function back the memory it started with"
    )]
    LessMemory {
        /// Limit at the checkpoint.
        was: u64,
        /// Limit now.
        now: u64,
    },
    /// The state object could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ContinuationError {
    /// The failure type CodePipeline gets.
    pub fn failure_type(&self) -> crate::FailureType {
        use crate::FailureType::*;
        match self {
            ContinuationError::InputChanged { .. } => RevisionOutOfSync,
            ContinuationError::Store(e) => match e.kind {
                StoreErrorKind::AccessDenied => PermissionError,
                StoreErrorKind::Unavailable => SystemUnavailable,
                StoreErrorKind::Changed => RevisionOutOfSync,
                _ => ConfigurationError,
            },
            _ => ConfigurationError,
        }
    }
}

/// A digest of what makes two jobs the same action's: the artifacts' names and
/// locations and the UserParameters text (hex SHA-256).
pub fn action_fingerprint(job: &Job) -> String {
    let data = &job.data;
    let side = |list: &[crate::event::Artifact]| -> Vec<(String, S3Location)> {
        list.iter()
            .map(|a| (a.name.clone(), Job::location(a).clone()))
            .collect()
    };
    let doc = serde_json::json!({
        "inputs": side(&data.input_artifacts),
        "outputs": side(&data.output_artifacts),
        "userParameters": data.action_configuration.configuration.user_parameters,
    });
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

/// Where the state object named `nonce` lives: beside the first output.
pub fn state_location(job: &Job, nonce: &str) -> Option<S3Location> {
    let first = job.data.output_artifacts.first()?;
    let out = Job::location(first);
    Some(S3Location {
        bucket_name: out.bucket_name.clone(),
        object_key: format!("{}.checkpoint-{nonce}", out.object_key),
    })
}
