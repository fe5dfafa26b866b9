//! The job lifecycle: parse → validate → plan → check the key → index inputs →
//! write outputs → report. Every job ends in exactly one report: success, a typed
//! failure, a caught panic, or a deadline that came too close. On failure, open
//! multipart uploads are aborted (completed objects are never deleted: see [`crate::sink`]) before the
//! failure is reported.
//!
//! [`Worker::run`] does the work without reporting (library use, tests);
//! [`Worker::handle`] is what the Lambda and the runner call.

pub mod dry_run;
mod patch_files;
mod plan_file;
mod run;
mod unzip;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use artifact_engine::plan::StepRegistry;

use self::run::WorkerParts;
use crate::clients::StoreFactory;
use crate::config::Settings;
use crate::continuation::Clock;
use crate::error::{FailureType, JobError};
use crate::event::{Event, Job, S3Location};
use crate::kms::KeyChecker;
use crate::pipeline::OutputSummary;
use crate::report::{ReportError, ReportErrorKind, Reported, Reporter};
use crate::sink::Cleanup;
use crate::stats::{JobStats, Metered};
use crate::store::ObjectStore;

/// Time kept back from the invocation deadline when reporting, so the last report
/// attempt is not cut off by the runtime.
const REPORT_SAFETY: Duration = Duration::from_millis(500);

/// A finished job's results.
#[derive(Debug, Clone)]
pub struct JobSuccess {
    /// One summary per output artifact, in event order.
    pub outputs: Vec<OutputSummary>,
    /// Variables for PutJobSuccessResult.
    pub output_variables: BTreeMap<String, String>,
    /// Human summary for executionDetails.
    pub summary: String,
    /// Set when the job stopped at a checkpoint: it is reported with this
    /// continuation token (and no output variables), and CodePipeline goes on in a new
    /// job. `outputs` then lists only the outputs completed so far.
    pub continuation: Option<Continued>,
    /// The state object this result supersedes (deleted once the report is taken).
    pub superseded_state: Option<S3Location>,
    /// Invocations of the action so far, this one included.
    pub invocations: u32,
}

/// A job stopped at a checkpoint.
#[derive(Debug, Clone)]
pub struct Continued {
    /// The continuation token reported.
    pub token: String,
    /// `executionDetails.percentComplete`.
    pub percent: i32,
    /// The state object the token names.
    pub state: S3Location,
    /// The multipart upload the checkpoint left open, if any.
    pub upload: Option<(S3Location, String)>,
}

/// What a job that ran leaves for after its report.
struct Ran {
    store: Arc<dyn ObjectStore>,
    cleanup: Arc<Cleanup>,
}

/// How a handled event ended.
#[derive(Debug, Clone)]
pub struct Handled {
    /// The job id.
    pub job_id: String,
    /// Success, or the failure type and message reported.
    pub result: Result<JobSuccess, (FailureType, String)>,
    /// Whether CodePipeline took the report or had one already.
    pub reported: Reported,
}

/// Why an event could not be handled at all.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The event has no job id, so nothing can be reported.
    #[error("not a CodePipeline job event (no CodePipeline.job.id): {0}")]
    NoJobId(String),
    /// The report could not be sent; the invocation should be retried.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// Runs jobs. Build once per process; share between invocations.
pub struct Worker {
    settings: Settings,
    pool: Arc<rayon::ThreadPool>,
    stores: Arc<dyn StoreFactory>,
    kms: Option<KeyChecker>,
    reporter: Reporter,
    steps: StepRegistry,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker. `kms` is `None` where there is no KMS (the embedded local store).
    pub fn new(
        settings: Settings,
        stores: Arc<dyn StoreFactory>,
        kms: Option<KeyChecker>,
        reporter: Reporter,
    ) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(settings.threads)
            .thread_name(|i| format!("artifact-transform-{i}"))
            .build()
            .expect("building the transform thread pool");
        Worker {
            settings,
            pool: Arc::new(pool),
            stores,
            kms,
            reporter,
            steps: StepRegistry::new(),
        }
    }

    /// Makes the custom steps in `steps` available to `UserParameters`
    /// (`{"custom": {"name": ...}}`).
    pub fn with_steps(mut self, steps: StepRegistry) -> Self {
        self.steps = steps;
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Handles one event end to end and reports it. `deadline` is when the
    /// invocation is killed; `execution_id` (e.g. the Lambda request id) becomes
    /// the report's externalExecutionId.
    pub async fn handle(
        &self,
        event: serde_json::Value,
        deadline: Instant,
        execution_id: Option<&str>,
    ) -> Result<Handled, HandleError> {
        let stats = Arc::new(JobStats::default());
        self.handle_counted(event, deadline, execution_id, stats)
            .await
    }

    /// [`Self::handle`], counting into `stats` (which a caller may watch for
    /// progress while the job runs).
    pub async fn handle_counted(
        &self,
        event: serde_json::Value,
        deadline: Instant,
        execution_id: Option<&str>,
        stats: Arc<JobStats>,
    ) -> Result<Handled, HandleError> {
        let (job_id, result, ran) = self.run_event(event, deadline, &stats).await?;
        let external = execution_id.unwrap_or(&job_id).to_string();
        // Reports may retry until just before the invocation is killed.
        let report_by = deadline
            .checked_sub(REPORT_SAFETY)
            .unwrap_or_else(Instant::now);
        let reporting = Instant::now();
        let failure = match result {
            Ok(success) => {
                match self
                    .report_success(&job_id, &success, &external, report_by, ran.as_ref())
                    .await?
                {
                    Ok(reported) => {
                        if let Some(ran) = &ran {
                            after_success(ran, &success, reported, deadline).await;
                        }
                        let outcome = match success.continuation {
                            Some(_) => "continued",
                            None => "succeeded",
                        };
                        let entries = success.outputs.iter().map(|o| o.entries).sum();
                        stats.log_finished(&job_id, outcome, entries, reporting.elapsed());
                        return Ok(Handled {
                            job_id,
                            result: Ok(success),
                            reported,
                        });
                    }
                    Err(failure) => failure,
                }
            }
            Err(err) => (err.failure_type(), err.report_message()),
        };
        let (kind, message) = failure;
        tracing::error!(job_id = %job_id, failure_type = kind.as_str(), error = %message, "job failed");
        let reported = self
            .reporter
            .failure(&job_id, kind, &message, &external, report_by)
            .await?;
        if let Some(ran) = &ran {
            after_failure(ran, reported, deadline).await;
        }
        stats.log_finished(&job_id, "failed", 0, reporting.elapsed());
        Ok(Handled {
            job_id,
            result: Err((kind, message)),
            reported,
        })
    }

    /// Reports a success (or a continuation). A report CodePipeline rejects for good
    /// becomes the failure to report instead (and a checkpoint it carried will never
    /// be continued, so its upload and state are removed after that report).
    async fn report_success(
        &self,
        job_id: &str,
        success: &JobSuccess,
        external: &str,
        report_by: Instant,
        ran: Option<&Ran>,
    ) -> Result<Result<Reported, (FailureType, String)>, HandleError> {
        let continuation = success
            .continuation
            .as_ref()
            .map(|c| (c.token.as_str(), c.percent));
        let sent = self
            .reporter
            .success(
                job_id,
                &success.output_variables,
                &success.summary,
                external,
                continuation,
                report_by,
            )
            .await;
        match sent {
            Ok(reported) => {
                tracing::info!(job_id = %job_id, ?reported, summary = %success.summary, "job succeeded");
                Ok(Ok(reported))
            }
            Err(e) if e.kind == ReportErrorKind::Rejected => {
                tracing::error!(job_id = %job_id, error = %e, "success report rejected; reporting a failure instead");
                if let (Some(ran), Some(c)) = (ran, &success.continuation) {
                    ran.cleanup.add_continued_state(&c.state);
                    if let Some((loc, id)) = &c.upload {
                        ran.cleanup.add_continued_upload(loc, id);
                    }
                }
                Ok(Err((
                    FailureType::JobFailed,
                    format!(
                        "the job finished, but CodePipeline rejected its success report: {}",
                        e.message
                    ),
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Parses the event and runs its job; an event with a job id but invalid fields
    /// is a failure to report, one without a job id cannot be handled.
    async fn run_event(
        &self,
        event: serde_json::Value,
        deadline: Instant,
        stats: &Arc<JobStats>,
    ) -> Result<(String, Result<JobSuccess, JobError>, Option<Ran>), HandleError> {
        match Event::parse(event) {
            Ok(ev) => {
                let id = ev.job.id.clone();
                let (result, ran) = self.run_guarded(ev.job, deadline, stats).await;
                Ok((id, result, ran))
            }
            Err((e, Some(id))) if !id.trim().is_empty() => {
                tracing::error!(job_id = %id, error = %e, "invalid event");
                Ok((id, Err(JobError::from(e)), None))
            }
            Err((e, _)) => Err(HandleError::NoJobId(e.to_string())),
        }
    }

    /// Runs the job in its own task until the stop time (see [`stop_time`]), catching
    /// panics; after any failure the task is awaited (so no upload completes behind
    /// cleanup's back) and open uploads are aborted within their own time budget.
    async fn run_guarded(
        &self,
        job: Job,
        deadline: Instant,
        stats: &Arc<JobStats>,
    ) -> (Result<JobSuccess, JobError>, Option<Ran>) {
        let store = self.stores.store_for(&job.data.artifact_credentials);
        let store: Arc<dyn ObjectStore> = Arc::new(Metered::new(store, stats.clone()));
        let cleanup = Arc::new(Cleanup::default());
        let result = self
            .run_until_stop(job, deadline, &store, &cleanup, stats)
            .await;
        (result, Some(Ran { store, cleanup }))
    }

    async fn run_until_stop(
        &self,
        job: Job,
        deadline: Instant,
        store: &Arc<dyn ObjectStore>,
        cleanup: &Arc<Cleanup>,
        stats: &Arc<JobStats>,
    ) -> Result<JobSuccess, JobError> {
        let margin = self.settings.deadline_margin;
        if let Some(ms) = expired_ms_ago(job.data.artifact_credentials.expiration_time) {
            return Err(JobError::CredentialsExpired(ms));
        }
        let stop = stop_time(deadline, job.data.artifact_credentials.expiration_time);
        let stop_at = stop.at.checked_sub(margin).unwrap_or(stop.at);
        if Instant::now() >= stop_at {
            return Err(JobError::Deadline(format!(
                "{} left {} ms, less than the {} ms kept for cleanup and reporting; {}",
                stop.what,
                stop.at
                    .saturating_duration_since(Instant::now())
                    .as_millis(),
                margin.as_millis(),
                stop.advice
            )));
        }
        let clock = (!job.data.output_artifacts.is_empty()).then(|| Arc::new(Clock::new(stop_at)));
        if let Some(clock) = clock.as_ref().filter(|c| !c.can_start()) {
            return Err(JobError::Deadline(format!(
                "{} left {} ms: after the {} ms kept for cleanup and reporting, too little \
                 to make progress and save a checkpoint (about {} ms); {}",
                stop.what,
                stop.at
                    .saturating_duration_since(Instant::now())
                    .as_millis(),
                margin.as_millis(),
                clock.minimum().as_millis(),
                stop.advice
            )));
        }
        let started = Instant::now();
        let mut task = {
            let this = self.clone_parts();
            let (store, cleanup, stats) = (store.clone(), cleanup.clone(), stats.clone());
            tokio::spawn(async move { this.run_with(&job, store, cleanup, clock, stats).await })
        };
        let result = match tokio::time::timeout_at(stop_at.into(), &mut task).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) if join.is_panic() => Err(JobError::Internal(format!(
                "the job panicked: {}",
                crate::bridge::panic_message(&*join.into_panic())
            ))),
            Ok(Err(join)) => Err(JobError::Internal(format!("the job task failed: {join}"))),
            Err(_) => {
                task.abort();
                // Wait for the abort to land: every await point in the job is a
                // cancellation point, so this is quick, and afterwards nothing the
                // job started can complete an upload.
                let _ = task.await;
                Err(JobError::Deadline(format!(
                    "the job ran {:.1} s and would not finish before {}; {}",
                    started.elapsed().as_secs_f64(),
                    stop.what,
                    stop.advice
                )))
            }
        };
        if result.is_err() {
            // Cleanup may use the margin, less what the report needs.
            let cleanup_by = deadline
                .checked_sub(margin / 2)
                .unwrap_or(deadline)
                .max(Instant::now());
            let run = cleanup.run(store.as_ref());
            match tokio::time::timeout_at(cleanup_by.into(), run).await {
                Ok(problems) => {
                    for problem in problems {
                        tracing::warn!(error = %problem, "cleanup after a failed job");
                    }
                }
                Err(_) => tracing::warn!(
                    open_uploads = ?cleanup.open_uploads(),
                    "cleanup ran out of time; reporting first (a bucket lifecycle rule \
                     aborting incomplete multipart uploads removes what is left)"
                ),
            }
        }
        result
    }

    fn clone_parts(&self) -> WorkerParts {
        WorkerParts {
            settings: self.settings.clone(),
            pool: self.pool.clone(),
            kms: self.kms.clone(),
            steps: self.steps.clone(),
        }
    }

    /// Runs a job against `store` without reporting it. On error, the caller should
    /// run `cleanup` (as [`Worker::handle`] does).
    pub async fn run(
        &self,
        job: &Job,
        store: Arc<dyn ObjectStore>,
        cleanup: Arc<Cleanup>,
    ) -> Result<JobSuccess, JobError> {
        let stats = Arc::new(JobStats::default());
        self.clone_parts()
            .run_with(job, store, cleanup, None, stats)
            .await
    }
}

/// When a job must stop, and why.
struct StopTime {
    at: Instant,
    what: &'static str,
    advice: &'static str,
}

/// The earlier of the invocation deadline and the artifact credentials' expiry
/// (`expirationTime`, epoch ms): after either, no call the job makes can succeed.
fn stop_time(deadline: Instant, credentials_expire_ms: Option<i64>) -> StopTime {
    let lambda = StopTime {
        at: deadline,
        what: "the Lambda deadline",
        advice: "raise the function timeout or memory, or split the work",
    };
    let Some(exp) = credentials_expire_ms else {
        return lambda;
    };
    let now_ms = now_epoch_ms();
    let left = Duration::from_millis(exp.saturating_sub(now_ms).max(0) as u64);
    let at = Instant::now() + left;
    if at < deadline {
        StopTime {
            at,
            what: "the artifact credentials expire",
            advice: "the action can be retried with fresh credentials",
        }
    } else {
        lambda
    }
}

fn now_epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

/// How long ago the credentials expired, if they have.
fn expired_ms_ago(expiration_ms: Option<i64>) -> Option<i64> {
    let now = now_epoch_ms();
    expiration_ms.filter(|&exp| exp <= now).map(|exp| now - exp)
}

/// After a success report was taken: the state object it supersedes is deleted
/// (the previous checkpoint after a continuation, the last one after the final
/// report). Within the invocation's deadline; a state object left behind costs
/// only storage.
async fn after_success(ran: &Ran, success: &JobSuccess, reported: Reported, deadline: Instant) {
    let Some(state) = &success.superseded_state else {
        return;
    };
    if reported == Reported::JobNotFound {
        return;
    }
    let delete = ran.store.delete(state);
    match tokio::time::timeout_at(deadline.into(), delete).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "deleting a superseded checkpoint state"),
        Err(_) => {
            tracing::warn!(state = %state, "no time left to delete a superseded checkpoint state")
        }
    }
}

/// After a failure report: a continued job's upload and state objects are removed
/// only when this delivery's report was the one taken (a duplicate of an event
/// already handled gets AlreadyReported and must touch nothing).
async fn after_failure(ran: &Ran, reported: Reported, deadline: Instant) {
    if reported != Reported::Sent {
        return;
    }
    let run = ran.cleanup.run_continued(ran.store.as_ref());
    match tokio::time::timeout_at(deadline.into(), run).await {
        Ok(problems) => {
            for problem in problems {
                tracing::warn!(error = %problem, "removing a failed continuation's upload or state");
            }
        }
        Err(_) => tracing::warn!("no time left to remove a failed continuation's upload or state"),
    }
}
