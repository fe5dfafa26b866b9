//! One job's work, without reporting: validate → compile the plan → check the key →
//! index the inputs (bomb and index limits before data moves) → write each output →
//! output variables and summary. Each step is one function here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_engine::plan::{JobContext, Plan, PlanSpec, StepRegistry};
use artifact_engine::PlanError;
use futures::future::try_join_all;

use super::patch_files::read_patch_files;
use super::plan_file::{check_plan_pinned, read_plan_file};
use super::unzip::add_unzipped_members;
use super::{expired_ms_ago, Continued, JobSuccess};
use crate::config::{KmsCheck, Settings};
use crate::continuation::{
    self, Checkpoint, Clock, ContinuationError, Loaded, Token, MAX_TOKEN_CHARS,
};
use crate::error::{JobError, Side};
use crate::event::{Job, S3Location};
use crate::kms::KeyChecker;
use crate::pipeline::decide::{output_inputs, preflight};
use crate::pipeline::{write_output, Ctx, OutputOutcome, OutputProgress, OutputSummary};
use crate::report::{validate_variables, variable_key_part};
use crate::sink::Cleanup;
use crate::source::{load_index, IndexLimits, ZipIndex};
use crate::stats::JobStats;
use crate::store::{Encryption, ObjectStore};

/// What a job needs from its worker (cheap to clone into the job's task).
pub(super) struct WorkerParts {
    pub settings: Settings,
    pub pool: Arc<rayon::ThreadPool>,
    pub kms: Option<KeyChecker>,
    pub steps: StepRegistry,
}

impl WorkerParts {
    pub(super) async fn run_with(
        &self,
        job: &Job,
        store: Arc<dyn ObjectStore>,
        cleanup: Arc<Cleanup>,
        clock: Option<Arc<Clock>>,
        stats: Arc<JobStats>,
    ) -> Result<JobSuccess, JobError> {
        let started = Instant::now();
        job.validate()?;
        if let Some(ms) = expired_ms_ago(job.data.artifact_credentials.expiration_time) {
            return Err(JobError::CredentialsExpired(ms));
        }
        // UserParameters are checked before any I/O, the continuation's included.
        let user_parameters = job
            .data
            .action_configuration
            .configuration
            .user_parameters
            .as_deref();
        PlanSpec::parse(user_parameters)?.plan_file()?;
        let resumed = self.load_checkpoint(job, store.as_ref(), &cleanup).await?;
        let mut settings = self.settings.clone();
        let first_job_id = match &resumed {
            Some(l) => {
                settings.max_transform_size =
                    resumed_transform_limit(&l.checkpoint, &self.settings)?;
                l.checkpoint.first_job_id.clone()
            }
            None => job.id.clone(),
        };
        let (mut plan, plan_etag) = self
            .compile_plan(job, &first_job_id, store.as_ref())
            .await?;
        let encryption = Encryption {
            kms_key_id: job.data.encryption_key.as_ref().map(|k| k.id.clone()),
        };
        self.check_key(&encryption).await?;
        let indexing = Instant::now();
        let indexes = self.index_inputs(job, &plan, &store).await?;
        if let Some(f) = plan.origin() {
            let i = input_index(job, &f.input);
            check_plan_pinned(job, f, &plan_etag, &indexes[&i].etag)?;
        }
        resolve_conditions(&mut plan, &indexes);
        if let Some(l) = &resumed {
            // Before anything is read from them (patch files included).
            check_input_etags(job, &l.checkpoint, &indexes)?;
        }
        let indexes =
            add_unzipped_members(store.as_ref(), job, &plan, indexes, &self.settings).await?;
        read_patch_files(store.as_ref(), job, &mut plan, &indexes).await?;
        let plan = Arc::new(plan);
        stats.add_index(indexing.elapsed());
        stats.set_input_size(indexes.values().map(|i| i.size).sum());
        if let (Some(l), Some(clock)) = (&resumed, &clock) {
            prime_clock(clock, l);
        }
        preflight(&plan, &indexes, &settings, |o, cause| {
            let a = &job.data.output_artifacts[o];
            JobError::artifact(Side::Output, &a.name, Job::location(a), cause)
        })?;
        let ctx = Ctx {
            store: store.clone(),
            settings: &settings,
            pool: self.pool.clone(),
            plan: plan.clone(),
            encryption: encryption.clone(),
            cleanup,
            clock: clock.clone(),
            stats,
        };
        let (done, current, invocations) = match &resumed {
            Some(l) => (
                l.checkpoint.done.clone(),
                l.checkpoint.current.clone(),
                l.checkpoint.invocations + 1,
            ),
            None => (Vec::new(), None, 1),
        };
        let mut writing = Writing {
            job,
            store: store.as_ref(),
            encryption: &encryption,
            first_job_id,
            invocations,
            indexes: &indexes,
            settings: &settings,
            previous: resumed.map(|l| l.location),
            started,
            clock,
        };
        writing.outputs(&ctx, done, current).await
    }

    /// The checkpoint the event's continuation token names, checked against the job;
    /// its upload and state object are recorded for removal should this job fail.
    async fn load_checkpoint(
        &self,
        job: &Job,
        store: &dyn ObjectStore,
        cleanup: &Cleanup,
    ) -> Result<Option<Loaded>, JobError> {
        let Some(text) = &job.data.continuation_token else {
            return Ok(None);
        };
        let token = Token::decode(text)?;
        if !continuation::action_fingerprint(job).starts_with(&token.action) {
            // Another action's checkpoint: nothing of it is this job's to remove.
            return Err(ContinuationError::OtherArtifacts.into());
        }
        // From here on the token names this action's upload and state object: should
        // the job fail, both are removed (after the failure report, see Cleanup).
        if let Some((o, id)) = &token.upload {
            if let Some(a) = job.data.output_artifacts.get(*o) {
                cleanup.add_continued_upload(Job::location(a), id);
            }
        }
        if let Some(state) = continuation::state_location(job, &token.nonce) {
            cleanup.add_continued_state(&state);
        }
        let loaded = continuation::load(store, job, &token).await?;
        if let Some(c) = &loaded.checkpoint.current {
            let out = job.data.output_artifacts.get(c.output);
            let id = c.sink.upload_id.as_deref();
            if let (Some(a), Some(id)) = (out, id) {
                cleanup.add_continued_upload(Job::location(a), id);
            }
        }
        tracing::info!(
            job_id = %job.id,
            first_job_id = %loaded.checkpoint.first_job_id,
            invocation = loaded.checkpoint.invocations + 1,
            outputs_done = loaded.checkpoint.done.len(),
            "continuing from a checkpoint"
        );
        Ok(Some(loaded))
    }

    /// The plan from UserParameters, with the job's built-in variables; validated
    /// before any data moves.
    /// `first_job_id` is the job id of the action's first invocation (the same in
    /// every continuation, so a templated job id does not change mid-output).
    pub(super) async fn compile_plan(
        &self,
        job: &Job,
        first_job_id: &str,
        store: &dyn ObjectStore,
    ) -> Result<(Plan, Option<String>), JobError> {
        let data = &job.data;
        let config = &data.action_configuration.configuration;
        let user_spec = PlanSpec::parse(config.user_parameters.as_deref())?;
        let file = user_spec.plan_file()?;
        let (spec, etag) = match &file {
            Some(f) => {
                let (text, etag) = read_plan_file(store, job, f, &self.settings).await?;
                (user_spec.from_plan_file(f, &text)?, etag)
            }
            None => (user_spec, None),
        };
        let mut builtins = BTreeMap::from([
            ("CODEPIPELINE_JOB_ID".to_string(), first_job_id.to_string()),
            (
                "CODEPIPELINE_ACCOUNT_ID".to_string(),
                job.account_id.clone(),
            ),
        ]);
        for a in &data.input_artifacts {
            if let Some(rev) = &a.revision {
                let key = variable_key_part(&a.name).replace(['-', '@'], "_");
                builtins.insert(format!("{key}_REVISION"), rev.clone());
            }
        }
        let names = |list: &[crate::event::Artifact]| list.iter().map(|a| a.name.clone()).collect();
        let ctx = JobContext {
            inputs: names(&data.input_artifacts),
            outputs: names(&data.output_artifacts),
            builtins,
        };
        let compiled = Plan::compile_with(&spec, &ctx, &self.steps);
        match file {
            None => Ok((compiled?, None)),
            Some(f) => {
                let in_file = |e: PlanError| PlanError {
                    path: format!("{f} {}", e.path),
                    message: e.message,
                };
                let mut plan = compiled.map_err(in_file)?;
                plan.set_origin(f);
                Ok((plan, etag))
            }
        }
    }

    /// The key check, with the function's own credentials: a denied DescribeKey
    /// only warns unless the check is strict.
    async fn check_key(&self, encryption: &Encryption) -> Result<(), JobError> {
        let (Some(key), Some(kms)) = (&encryption.kms_key_id, &self.kms) else {
            return Ok(());
        };
        if self.settings.kms_check == KmsCheck::Off {
            return Ok(());
        }
        match kms.check(key).await {
            Ok(()) => Ok(()),
            Err(e) if self.settings.kms_check == KmsCheck::Warn && KeyChecker::is_denied(&e) => {
                tracing::warn!(error = %e, "KMS key check skipped");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Indexes the inputs that feed some output, within the job's index memory and
    /// the plan's bomb limits (both from declared values, before data moves).
    pub(super) async fn index_inputs(
        &self,
        job: &Job,
        plan: &Plan,
        store: &Arc<dyn ObjectStore>,
    ) -> Result<BTreeMap<usize, Arc<ZipIndex>>, JobError> {
        let mut needed: Vec<usize> = plan
            .outputs()
            .iter()
            .flat_map(|o| o.sources.iter().map(|s| s.input))
            .collect();
        // The plan file's input is pinned too, whether or not it feeds an output: a
        // continuation must not go on with a changed plan.
        needed.extend(plan.origin().map(|f| input_index(job, &f.input)));
        // So is an input holding a `merge` patch file.
        needed.extend(plan.patch_file_inputs());
        needed.sort_unstable();
        needed.dedup();
        let rules = plan.name_rules();
        let index_limits = IndexLimits {
            cd_bytes: self.settings.max_cd_size,
            entries: self.settings.max_entries / needed.len().max(1) as u64,
        };
        let limits = plan.limits();
        let indexes = try_join_all(needed.iter().map(|&i| {
            let a = &job.data.input_artifacts[i];
            let loc = Job::location(a);
            async move {
                let idx = load_index(store.as_ref(), loc, &rules, index_limits)
                    .await
                    .and_then(|idx| Ok(limits.check(&idx.entries).map(|_| idx)?))
                    .map_err(|c| JobError::artifact(Side::Input, &a.name, loc, c))?;
                Ok::<_, JobError>((i, Arc::new(idx)))
            }
        }))
        .await?;
        Ok(indexes.into_iter().collect())
    }
}

/// The index of input artifact `name` (known to exist: the plan was compiled with it).
fn input_index(job: &Job, name: &str) -> usize {
    job.data
        .input_artifacts
        .iter()
        .position(|a| a.name == name)
        .expect("the plan names inputs of the job")
}

/// Decides the plan's `when` entry tests from the inputs' central directories.
pub(super) fn resolve_conditions(plan: &mut Plan, indexes: &BTreeMap<usize, Arc<ZipIndex>>) {
    plan.resolve_conditions(|i, globs| {
        indexes[&i]
            .own_entries()
            .iter()
            .any(|e| globs.is_match(&e.name, e.is_dir()))
    });
}

/// A resumed job's clock starts from what the last invocation measured.
fn prime_clock(clock: &Clock, l: &Loaded) {
    clock.set_latency(l.read_time / 2);
    clock.set_transfer(l.size, l.read_time);
    let before_save = Duration::from_millis(l.checkpoint.checkpoint_ms);
    clock.set_previous_cost(l.saved_in.max(before_save + l.read_time));
}

/// Writing the outputs, and what a checkpoint needs when the job stops early.
struct Writing<'a> {
    job: &'a Job,
    store: &'a dyn ObjectStore,
    encryption: &'a Encryption,
    first_job_id: String,
    invocations: u32,
    indexes: &'a BTreeMap<usize, Arc<ZipIndex>>,
    settings: &'a Settings,
    /// The state object this invocation went on from (superseded by the new one).
    previous: Option<S3Location>,
    started: Instant,
    clock: Option<Arc<Clock>>,
}

impl Writing<'_> {
    /// Writes the outputs after the `done` ones, going on with `current`; ends in
    /// the final success, or in a checkpoint when the clock says so.
    async fn outputs(
        &mut self,
        ctx: &Ctx<'_>,
        mut done: Vec<OutputSummary>,
        mut current: Option<OutputProgress>,
    ) -> Result<JobSuccess, JobError> {
        let outputs = &self.job.data.output_artifacts;
        for (o, a) in outputs.iter().enumerate().skip(done.len()) {
            let between_outputs = current.is_none() && o > 0;
            let clock = self.clock.as_ref();
            if between_outputs && clock.is_some_and(|c| c.should_checkpoint(0, 0, 0)) {
                return self.checkpoint(ctx, done, None).await;
            }
            let inputs = output_inputs(&ctx.plan, o, self.indexes);
            let resume = current.take();
            match write_output(ctx, o, Job::location(a), &inputs, resume).await? {
                OutputOutcome::Done(summary) => done.push(summary),
                OutputOutcome::Suspended(progress) => {
                    return self.checkpoint(ctx, done, Some(progress)).await
                }
            }
        }
        let output_variables = output_variables(&done)?;
        let secs = self.started.elapsed().as_secs_f64();
        let figures = ctx.stats.figures(Duration::ZERO).short();
        let summary = format!("{}; {figures}", summary(&done, self.indexes.len(), secs));
        Ok(JobSuccess {
            outputs: done,
            output_variables,
            summary,
            continuation: None,
            superseded_state: self.previous.take(),
            invocations: self.invocations,
        })
    }

    /// Saves a checkpoint of `done` outputs and the `current` one, and returns the
    /// continuation the job reports.
    async fn checkpoint(
        &mut self,
        ctx: &Ctx<'_>,
        done: Vec<OutputSummary>,
        current: Option<OutputProgress>,
    ) -> Result<JobSuccess, JobError> {
        let saving = Instant::now();
        let mut checkpoint = Checkpoint {
            first_job_id: self.first_job_id.clone(),
            invocations: self.invocations,
            input_etags: self
                .indexes
                .iter()
                .map(|(i, idx)| (*i, idx.etag.clone()))
                .collect(),
            max_transform_size: self.settings.max_transform_size,
            checkpoint_ms: 0,
            done,
            current,
        };
        // What it cost so far (confirming parts), plus the state PUT, estimated by
        // the previous save; the next invocation keeps at least that back.
        let before_save = self
            .clock
            .as_ref()
            .and_then(|c| c.cost_so_far())
            .unwrap_or_default();
        checkpoint.checkpoint_ms = before_save.as_millis() as u64;
        let (mut token, state) =
            continuation::save(self.store, self.job, &checkpoint, self.encryption).await?;
        let cost = before_save + saving.elapsed();
        token.cost_ms = cost.as_millis() as u64;
        let text = token.encode();
        if text.len() > MAX_TOKEN_CHARS {
            return Err(JobError::Internal(format!(
                "the continuation token has {} characters, more than CodePipeline's {MAX_TOKEN_CHARS}",
                text.len()
            )));
        }
        let outputs = self.job.data.output_artifacts.len();
        let upload = checkpoint.current.as_ref().and_then(|c| {
            let loc = Job::location(&self.job.data.output_artifacts[c.output]).clone();
            Some((loc, c.sink.upload_id.clone()?))
        });
        let planned = checkpoint
            .current
            .as_ref()
            .map_or(0, |c| c.planned as usize);
        let percent = checkpoint.percent(outputs, planned);
        let figures = ctx.stats.figures(Duration::ZERO).short();
        let summary = format!(
            "{}; {figures}",
            progress_summary(self.job, &checkpoint, percent, self.started)
        );
        tracing::info!(
            job_id = %self.job.id,
            invocation = self.invocations,
            percent,
            state = %state,
            state_save_ms = saving.elapsed().as_millis() as u64,
            checkpoint_ms = cost.as_millis() as u64,
            "checkpoint saved"
        );
        Ok(JobSuccess {
            outputs: checkpoint.done,
            output_variables: BTreeMap::new(),
            summary,
            continuation: Some(Continued {
                token: text,
                percent,
                state,
                upload,
            }),
            superseded_state: self.previous.take(),
            invocations: self.invocations,
        })
    }
}

/// The whole-entry limit a continued job keeps (it decides which entries stream,
/// so the output bytes): the checkpoint's, unless this function has less memory.
fn resumed_transform_limit(checkpoint: &Checkpoint, settings: &Settings) -> Result<u64, JobError> {
    let (was, now) = (checkpoint.max_transform_size, settings.max_transform_size);
    if was > now {
        return Err(ContinuationError::LessMemory { was, now }.into());
    }
    Ok(was)
}

/// Inputs must be the revisions the checkpoint read.
fn check_input_etags(
    job: &Job,
    checkpoint: &Checkpoint,
    indexes: &BTreeMap<usize, Arc<ZipIndex>>,
) -> Result<(), JobError> {
    for (i, idx) in indexes {
        let was = checkpoint.input_etags.get(i).cloned().flatten();
        if was != idx.etag {
            let show = |e: Option<String>| e.unwrap_or_else(|| "(none)".into());
            return Err(ContinuationError::InputChanged {
                name: job.data.input_artifacts[*i].name.clone(),
                was: show(was),
                now: show(idx.etag.clone()),
            }
            .into());
        }
    }
    Ok(())
}

/// The executionDetails summary of a checkpoint.
fn progress_summary(job: &Job, c: &Checkpoint, percent: i32, started: Instant) -> String {
    let outputs = job.data.output_artifacts.len();
    let mut s = format!(
        "Checkpoint after invocation {} ({:.1} s): {percent}% done, {} of {outputs} output(s) complete",
        c.invocations,
        started.elapsed().as_secs_f64(),
        c.done.len()
    );
    if let Some(p) = &c.current {
        let name = &job.data.output_artifacts[p.output].name;
        s.push_str(&format!(
            "; {name}: {} of {} entries, {} bytes written",
            p.arrived, p.planned, p.sink.total
        ));
    }
    s.push_str("; continuing in a new invocation");
    s
}

/// The built-in output variables of every output, and the exported ones.
fn output_variables(outputs: &[OutputSummary]) -> Result<BTreeMap<String, String>, JobError> {
    let mut vars = BTreeMap::new();
    for o in outputs {
        let k = variable_key_part(&o.name);
        vars.insert(format!("{k}_entries"), o.entries.to_string());
        vars.insert(format!("{k}_bytes"), o.object.bytes.to_string());
        vars.insert(format!("{k}_sha256"), o.object.sha256.clone());
        vars.insert(
            format!("{k}_transformed"),
            o.transformed_entries.to_string(),
        );
    }
    let plan_err = |path: &str, message: String| {
        JobError::Plan(PlanError {
            path: path.into(),
            message,
        })
    };
    for e in outputs.iter().flat_map(|o| &o.exports) {
        if vars.contains_key(&e.variable) {
            let m = format!("{:?} clashes with a built-in output variable", e.variable);
            return Err(plan_err("export.variable", m));
        }
        vars.insert(e.variable.clone(), e.value.clone());
    }
    validate_variables(&vars).map_err(|m| plan_err("export", m))?;
    Ok(vars)
}

/// The human summary for executionDetails.
fn summary(outputs: &[OutputSummary], inputs: usize, secs: f64) -> String {
    if outputs.is_empty() {
        return format!("No output artifacts; checked {inputs} input(s) in {secs:.1} s");
    }
    let parts: Vec<String> = outputs
        .iter()
        .map(|o| {
            format!(
                "{}: {} entries ({} transformed, {} dropped, {} added), {} bytes",
                o.name,
                o.entries,
                o.transformed_entries,
                o.dropped_entries,
                o.added_entries,
                o.object.bytes
            )
        })
        .collect();
    format!("{} in {secs:.1} s", parts.join("; "))
}
