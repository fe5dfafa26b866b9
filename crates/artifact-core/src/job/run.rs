//! One job's work, without reporting: validate → compile the plan → check the key →
//! index the inputs (bomb and index limits before data moves) → write each output →
//! output variables and summary. Each step is one function here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use artifact_engine::plan::{JobContext, Plan, PlanSpec, StepRegistry};
use artifact_engine::PlanError;
use futures::future::try_join_all;

use super::{expired_ms_ago, JobSuccess};
use crate::config::{KmsCheck, Settings};
use crate::error::{JobError, Side};
use crate::event::Job;
use crate::kms::KeyChecker;
use crate::pipeline::{write_output, Ctx, InputRef, OutputSummary};
use crate::report::{validate_variables, variable_key_part};
use crate::sink::Cleanup;
use crate::source::{load_index, IndexLimits, ZipIndex};
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
    ) -> Result<JobSuccess, JobError> {
        let started = Instant::now();
        job.validate()?;
        if let Some(ms) = expired_ms_ago(job.data.artifact_credentials.expiration_time) {
            return Err(JobError::CredentialsExpired(ms));
        }
        let plan = Arc::new(self.compile_plan(job)?);
        let encryption = Encryption {
            kms_key_id: job.data.encryption_key.as_ref().map(|k| k.id.clone()),
        };
        self.check_key(&encryption).await?;
        let indexes = self.index_inputs(job, &plan, &store).await?;
        let ctx = Ctx {
            store: store.clone(),
            settings: &self.settings,
            pool: self.pool.clone(),
            plan: plan.clone(),
            encryption,
            cleanup,
        };
        let mut outputs = Vec::new();
        for (o, a) in job.data.output_artifacts.iter().enumerate() {
            let inputs: Vec<InputRef> = plan
                .output(o)
                .sources
                .iter()
                .map(|s| InputRef {
                    name: s.input_name.clone(),
                    index: indexes[&s.input].clone(),
                })
                .collect();
            outputs.push(write_output(&ctx, o, Job::location(a), &inputs).await?);
        }
        let output_variables = output_variables(&outputs)?;
        let summary = summary(&outputs, indexes.len(), started.elapsed().as_secs_f64());
        Ok(JobSuccess {
            outputs,
            output_variables,
            summary,
        })
    }

    /// The plan from UserParameters, with the job's built-in variables; validated
    /// before any data moves.
    fn compile_plan(&self, job: &Job) -> Result<Plan, JobError> {
        let data = &job.data;
        let config = &data.action_configuration.configuration;
        let spec = PlanSpec::parse(config.user_parameters.as_deref())?;
        let mut builtins = BTreeMap::from([
            ("CODEPIPELINE_JOB_ID".to_string(), job.id.clone()),
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
        Ok(Plan::compile_with(&spec, &ctx, &self.steps)?)
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
    async fn index_inputs(
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
