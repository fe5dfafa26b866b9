//! The state object: a [`Checkpoint`] as JSON (binary fields base64), written beside
//! the first output with the job's credentials and KMS key, and read back only when
//! its SHA-256 matches the token and its action fingerprint matches the job.
//!
//! What it holds: the first job id; per input the pinned ETag; the outputs completed
//! (their summaries); for the output in progress the entries written, the counters
//! and exports for the output variables, the manifest rows so far, the zip writer's
//! offset and central-directory records (or a tar.gz output's gzip CRC-32 and
//! sizes), and the sink's upload id, completed parts
//! (number, ETag, size), the bytes of the part in progress and the SHA-256 state.

use std::collections::BTreeMap;

use artifact_engine::entry::ManifestRow;
use artifact_engine::plan::Export;
use artifact_engine::tar::GzipState;
use artifact_engine::zip::ZipWriterState;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{action_fingerprint, state_location, Checkpoint, ContinuationError, Token};
use crate::event::{Job, S3Location};
use crate::pipeline::{OutputProgress, OutputSummary};
use crate::sink::SinkState;
use crate::store::{CompletedPart, Encryption, ObjectStore, StoreErrorKind};

const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateDoc {
    format: u32,
    action: String,
    first_job_id: String,
    written_by: String,
    invocations: u32,
    input_etags: BTreeMap<usize, Option<String>>,
    max_transform_size: u64,
    checkpoint_ms: u64,
    done: Vec<OutputSummary>,
    current: Option<ProgressDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressDoc {
    output: usize,
    arrived: u64,
    planned: u64,
    raw: u64,
    transformed: u64,
    exports: Vec<Export>,
    rows: Vec<ManifestRow>,
    zip_offset: u64,
    zip_entries: u64,
    central: String,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    next_part: i32,
    total: u64,
    pending: String,
    /// Bytes at the front of `pending` already in `sha256_state` (absent: none).
    #[serde(default)]
    pending_hashed: u64,
    /// Bytes placed by server-side copies so far (absent: none).
    #[serde(default)]
    copied: u64,
    sha256_state: String,
    /// A tar.gz output's gzip stream (absent for a zip output).
    #[serde(default)]
    gzip: Option<GzipState>,
}

impl ProgressDoc {
    fn from(p: &OutputProgress) -> Self {
        ProgressDoc {
            output: p.output,
            arrived: p.arrived,
            planned: p.planned,
            raw: p.raw,
            transformed: p.transformed,
            exports: p.exports.clone(),
            rows: p.rows.clone(),
            zip_offset: p.zip.offset,
            zip_entries: p.zip.entries,
            central: STANDARD.encode(&p.zip.central),
            upload_id: p.sink.upload_id.clone(),
            parts: p.sink.parts.clone(),
            next_part: p.sink.next_part,
            total: p.sink.total,
            pending: STANDARD.encode(&p.sink.pending),
            pending_hashed: p.sink.pending_hashed,
            copied: p.sink.copied,
            sha256_state: STANDARD.encode(&p.sink.sha256_state),
            gzip: p.gzip,
        }
    }

    fn into_progress(self) -> Result<OutputProgress, String> {
        let b64 = |field: &str, s: &str| {
            STANDARD
                .decode(s)
                .map_err(|_| format!("{field} is not base64"))
        };
        Ok(OutputProgress {
            output: self.output,
            arrived: self.arrived,
            planned: self.planned,
            raw: self.raw,
            transformed: self.transformed,
            exports: self.exports,
            rows: self.rows,
            zip: ZipWriterState {
                offset: self.zip_offset,
                entries: self.zip_entries,
                central: b64("central", &self.central)?,
            },
            gzip: self.gzip,
            sink: SinkState {
                upload_id: self.upload_id,
                parts: self.parts,
                next_part: self.next_part,
                total: self.total,
                pending: Bytes::from(b64("pending", &self.pending)?),
                pending_hashed: self.pending_hashed,
                copied: self.copied,
                sha256_state: b64("sha256_state", &self.sha256_state)?,
            },
        })
    }
}

/// A checkpoint read back, and where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Its state object (deleted once superseded).
    pub location: S3Location,
    /// How long reading it took (a HEAD and a GET): a measure of the store's
    /// latency, and of what writing the next state object will cost.
    pub read_time: std::time::Duration,
    /// Its size in bytes.
    pub size: u64,
    /// What the checkpoint cost the invocation that saved it.
    pub saved_in: std::time::Duration,
}

/// Writes `checkpoint` for `job` (invocation `job.id`) and returns the token that
/// names it and where it was written.
pub async fn save(
    store: &dyn ObjectStore,
    job: &Job,
    checkpoint: &Checkpoint,
    enc: &Encryption,
) -> Result<(Token, S3Location), ContinuationError> {
    let action = action_fingerprint(job);
    let doc = StateDoc {
        format: FORMAT,
        action: action.clone(),
        first_job_id: checkpoint.first_job_id.clone(),
        written_by: job.id.clone(),
        invocations: checkpoint.invocations,
        input_etags: checkpoint.input_etags.clone(),
        max_transform_size: checkpoint.max_transform_size,
        checkpoint_ms: checkpoint.checkpoint_ms,
        done: checkpoint.done.clone(),
        current: checkpoint.current.as_ref().map(ProgressDoc::from),
    };
    let bytes = Bytes::from(serde_json::to_vec(&doc).expect("a checkpoint serializes"));
    let nonce = format!("{}-{:08x}", sanitize(&job.id), fastrand::u32(..));
    let location = state_location(job, &nonce).expect("a job with outputs checkpoints");
    let digest = hex::encode(Sha256::digest(&bytes));
    store
        .put_object(&location, bytes, enc, "application/json")
        .await?;
    let upload = checkpoint
        .current
        .as_ref()
        .and_then(|c| Some((c.output, c.sink.upload_id.clone()?)));
    let token = Token {
        nonce,
        digest,
        action: action[..16].to_string(),
        upload,
        cost_ms: 0,
    };
    Ok((token, location))
}

/// Reads the checkpoint `token` names and checks it belongs to `job`.
pub async fn load(
    store: &dyn ObjectStore,
    job: &Job,
    token: &Token,
) -> Result<Loaded, ContinuationError> {
    let action = action_fingerprint(job);
    if !action.starts_with(&token.action) {
        return Err(ContinuationError::OtherArtifacts);
    }
    let location = state_location(job, &token.nonce).ok_or(ContinuationError::OtherArtifacts)?;
    let reading = std::time::Instant::now();
    let bytes = match store.head(&location).await {
        Ok(info) => store.get_range(&location, 0..info.size, None).await?,
        Err(e) if e.kind == StoreErrorKind::NotFound => {
            return Err(ContinuationError::Missing(location))
        }
        Err(e) => return Err(e.into()),
    };
    let read_time = reading.elapsed();
    let altered = |why: String| ContinuationError::Altered(location.clone(), why);
    let digest = hex::encode(Sha256::digest(&bytes));
    if digest != token.digest {
        return Err(altered(format!(
            "its SHA-256 is {digest}, the token says {}",
            token.digest
        )));
    }
    let doc: StateDoc =
        serde_json::from_slice(&bytes).map_err(|e| altered(format!("it does not parse: {e}")))?;
    if doc.format != FORMAT {
        return Err(altered(format!(
            "format {} (this worker reads {FORMAT})",
            doc.format
        )));
    }
    if doc.action != action {
        return Err(ContinuationError::OtherArtifacts);
    }
    let outputs = job.data.output_artifacts.len();
    let next = doc.current.as_ref().map_or(doc.done.len(), |c| c.output);
    if doc.done.len() > outputs || next != doc.done.len() {
        return Err(altered(format!(
            "it says {} output(s) are done and output {next} is in progress, of {outputs}",
            doc.done.len()
        )));
    }
    let current = doc.current.map(ProgressDoc::into_progress).transpose();
    let checkpoint = Checkpoint {
        first_job_id: doc.first_job_id,
        invocations: doc.invocations,
        input_etags: doc.input_etags,
        max_transform_size: doc.max_transform_size,
        checkpoint_ms: doc.checkpoint_ms,
        done: doc.done,
        current: current.map_err(altered)?,
    };
    Ok(Loaded {
        checkpoint,
        location,
        read_time,
        size: bytes.len() as u64,
        saved_in: std::time::Duration::from_millis(token.cost_ms),
    })
}

/// A job id as a key part (ids are UUIDs; anything else is reduced to safe bytes).
fn sanitize(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}
