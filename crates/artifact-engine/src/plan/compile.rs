//! Compiling a [`PlanSpec`] against the job's artifacts into a [`Plan`]: variables,
//! routes (which inputs feed each output) and each output's steps, all validated
//! before any data moves, each error naming its field. One step's compilation is in
//! [`super::compile_step`].
//!
//! Invariants: routes never depend on the order of artifacts in the event — with more
//! than one input or output, `outputs` must name them; every output gets a route;
//! one output variable is exported by one step.

use std::collections::{BTreeMap, HashMap};

use super::compile_step::{compile_step, step_kind, StepEnv};
use super::spec::{OutputFormat, OutputSpec, SourceSpec, StepDoc, StepSpec};
use super::when::compile_when;
use super::{
    perr, text, CaseDuplicates, JobContext, OnConflict, OnUnknownVariable, OutputPlan, Plan,
    PlanError, PlanSpec, Source, Step, StepRegistry,
};
use crate::names::{case_clash_why, CaseIndex, NameRules};
use crate::tar::GZIP_LEVEL;
use crate::zip::read::validate_name;

/// An output's sources, own steps and conflict rule.
type Route<'a> = (Vec<Source>, &'a [StepDoc], OnConflict, (OutputFormat, u32));

impl Plan {
    /// Validates `spec` against the job and compiles it (no custom steps).
    pub fn compile(spec: &PlanSpec, ctx: &JobContext) -> Result<Plan, PlanError> {
        Self::compile_with(spec, ctx, &StepRegistry::new())
    }

    /// Validates `spec` against the job and compiles it, resolving custom steps in
    /// `registry`.
    pub fn compile_with(
        spec: &PlanSpec,
        ctx: &JobContext,
        registry: &StepRegistry,
    ) -> Result<Plan, PlanError> {
        let vars = compile_variables(spec, ctx)?;
        let name_rules = NameRules {
            allow_case_duplicates: spec.names.case_duplicates == CaseDuplicates::Allow,
        };
        let env = StepEnv {
            ctx,
            vars: &vars,
            strict: spec.on_unknown_variable != Some(OnUnknownVariable::Keep),
            registry,
        };
        let routes = compile_routes(spec, ctx)?;
        let mut exported: HashMap<String, String> = HashMap::new();
        let mut outputs = Vec::new();
        for (k, route) in routes.into_iter().enumerate() {
            outputs.push(compile_output(
                spec,
                &ctx.outputs[k],
                route,
                &env,
                &mut exported,
            )?);
        }
        refuse_shared_exports(spec, ctx)?;
        Ok(Plan {
            outputs,
            name_rules,
            limits: spec.limits,
            origin: None,
        })
    }
}

/// The job's built-in variables overlaid with the plan's, whose names are checked.
fn compile_variables(
    spec: &PlanSpec,
    ctx: &JobContext,
) -> Result<BTreeMap<String, String>, PlanError> {
    if let Some(k) = spec.variables.keys().find(|k| !text::valid_var_name(k)) {
        return Err(perr(
            format!("variables.{k}"),
            "variable names are letters, digits and `_`, not starting with a digit",
        ));
    }
    let mut vars = ctx.builtins.clone();
    vars.extend(spec.variables.clone());
    Ok(vars)
}

/// One route per output of the event, in event order: from `outputs`, or — for a job
/// with one input and one output only — that input.
fn compile_routes<'a>(spec: &'a PlanSpec, ctx: &JobContext) -> Result<Vec<Route<'a>>, PlanError> {
    let mut routes: Vec<Option<Route<'a>>> = vec![None; ctx.outputs.len()];
    for (out, o) in &spec.outputs {
        let Some(k) = ctx.outputs.iter().position(|n| n == out) else {
            return Err(perr(
                format!("outputs.{out}"),
                format!(
                    "no output artifact named {out:?}; the job has {:?}",
                    ctx.outputs
                ),
            ));
        };
        routes[k] = Some((
            compile_sources(out, o, ctx)?,
            &o.steps,
            o.on_conflict,
            (o.format, gzip_level(out, o)?),
        ));
    }
    let implicit = |k: usize| -> Result<Route<'a>, PlanError> {
        if !spec.outputs.is_empty() {
            return Err(perr(
                "outputs",
                format!(
                    "output {:?} has no entry; once `outputs` is given, every output needs one",
                    ctx.outputs[k]
                ),
            ));
        }
        if ctx.inputs.len() != 1 || ctx.outputs.len() != 1 {
            return Err(perr("outputs", explicit_routes_needed(ctx)));
        }
        let only = Source {
            input: 0,
            input_name: ctx.inputs[0].clone(),
            prefix: String::new(),
        };
        Ok((
            vec![only],
            &[],
            OnConflict::Error,
            (OutputFormat::Zip, GZIP_LEVEL),
        ))
    };
    routes
        .into_iter()
        .enumerate()
        .map(|(k, r)| r.map_or_else(|| implicit(k), Ok))
        .collect()
}

/// Output `out`'s gzip level, checked: 0-9, and only for a tar.gz output.
fn gzip_level(out: &str, o: &OutputSpec) -> Result<u32, PlanError> {
    let field = format!("outputs.{out}.gzip_level");
    match o.gzip_level {
        None => Ok(GZIP_LEVEL),
        Some(_) if o.format != OutputFormat::TarGz => Err(perr(
            field,
            "applies only to a \"format\": \"tar.gz\" output (a zip's entries are \
             compressed one by one: see `pack`)",
        )),
        Some(l) if l <= 9 => Ok(l),
        Some(l) => Err(perr(field, format!("{l} is not a gzip level (0 to 9)"))),
    }
}

/// Why a job with several inputs or outputs needs `outputs`, with a document to start from.
fn explicit_routes_needed(ctx: &JobContext) -> String {
    let (ni, no) = (ctx.inputs.len(), ctx.outputs.len());
    let inputs = serde_json::to_string(&ctx.inputs).expect("strings serialize");
    let example: serde_json::Map<String, serde_json::Value> = ctx
        .outputs
        .iter()
        .map(|o| (o.clone(), serde_json::json!({ "from": ctx.inputs })))
        .collect();
    format!(
        "the job has {ni} input(s) {inputs} and {no} output(s): with more than one of either, \
         name which inputs feed each output (routes never follow the order of artifacts in \
         the event), e.g. {{\"outputs\": {}}}",
        serde_json::Value::Object(example)
    )
}

/// The inputs named by `outputs.<out>.from`, each once, with valid prefixes.
fn compile_sources(out: &str, o: &OutputSpec, ctx: &JobContext) -> Result<Vec<Source>, PlanError> {
    if o.from.is_empty() {
        return Err(perr(
            format!("outputs.{out}.from"),
            "needs at least one input",
        ));
    }
    let mut sources: Vec<Source> = Vec::new();
    for (j, f) in o.from.iter().enumerate() {
        let (name, prefix) = match f {
            SourceSpec::Name(n) => (n.as_str(), ""),
            SourceSpec::Full(x) => (x.input.as_str(), x.prefix.as_str()),
        };
        let at = format!("outputs.{out}.from[{j}]");
        let Some(i) = ctx.inputs.iter().position(|n| n == name) else {
            return Err(perr(
                at,
                format!(
                    "no input artifact named {name:?}; the job has {:?}",
                    ctx.inputs
                ),
            ));
        };
        if sources.iter().any(|s| s.input == i) {
            return Err(perr(at, format!("input {name:?} listed twice")));
        }
        if !prefix.is_empty() {
            validate_name(&format!("{prefix}x")).map_err(|w| perr(format!("{at}.prefix"), w))?;
        }
        sources.push(Source {
            input: i,
            input_name: name.to_string(),
            prefix: prefix.to_string(),
        });
    }
    Ok(sources)
}

/// Output `name`: the top-level steps then its own, compiled. `exported` maps each
/// output variable to the step exporting it, across outputs.
fn compile_output(
    spec: &PlanSpec,
    name: &str,
    (sources, own, on_conflict, (format, gzip_level)): Route<'_>,
    env: &StepEnv<'_>,
    exported: &mut HashMap<String, String>,
) -> Result<OutputPlan, PlanError> {
    let all = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("steps[{i}]"), s));
    let own = own
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("outputs.{name}.steps[{i}]"), s));
    let (mut steps, mut labels, mut fields, mut added) = (vec![], vec![], vec![], vec![]);
    let (mut conditions, mut active) = (vec![], vec![]);
    for (at, doc) in all.chain(own) {
        let s = &doc.kind;
        let condition = doc
            .when
            .as_ref()
            .map(|w| compile_when(&format!("{at}.when"), w, env.vars))
            .transpose()?;
        // A step a variable test turns off takes no part in the checks below, and
        // its values may name variables only its stage defines: still validated,
        // but undefined names are kept rather than refused.
        let on = condition.as_ref().is_none_or(|c| c.known() != Some(false));
        let step = if on {
            compile_step(&at, s, env)?
        } else {
            compile_step(
                &at,
                s,
                &StepEnv {
                    strict: false,
                    ..*env
                },
            )?
        };
        active.push(on);
        conditions.push(condition);
        if let (Step::Export { variable, .. }, true) = (&step, on) {
            match exported.get(variable) {
                Some(prev) if prev != &at => {
                    return Err(perr(
                        format!("{at}.export.variable"),
                        format!("variable {variable:?} is already exported by {prev}"),
                    ))
                }
                _ => exported.insert(variable.clone(), at.clone()),
            };
        }
        if on {
            added.extend(added_path(&at, &step));
        }
        if on && format == OutputFormat::TarGz && matches!(step, Step::Zip { .. }) {
            return Err(perr(
                format!("{at}.zip"),
                format!(
                    "output {name:?} is a tar.gz, whose entries are written with their size \
                     first: a zip entry made as it streams has none yet (write the zip \
                     into a zip output, or leave the step out)"
                ),
            ));
        }
        labels.push(format!("{at} ({})", step_kind(s)));
        fields.push(format!("{at}.{}", step_kind(s)));
        steps.push(step);
    }
    let name_rules = NameRules {
        allow_case_duplicates: spec.names.case_duplicates == CaseDuplicates::Allow,
    };
    check_added_paths(&added, &name_rules)?;
    let pending = conditions.iter().flatten().any(|c| c.known().is_none());
    let manifest = steps
        .iter()
        .zip(&active)
        .any(|(s, on)| *on && matches!(s, Step::Manifest { .. }));
    Ok(OutputPlan {
        name: name.to_string(),
        sources,
        on_conflict,
        format,
        gzip_level,
        name_rules,
        verify: spec.verify,
        symlinks: spec.symlinks,
        manifest,
        steps,
        labels,
        fields,
        conditions,
        active,
        pending,
    })
}

/// A top-level export step in a plan with several outputs would define the variable
/// once per output; only allow that with a single output.
fn refuse_shared_exports(spec: &PlanSpec, ctx: &JobContext) -> Result<(), PlanError> {
    if ctx.outputs.len() <= 1 {
        return Ok(());
    }
    match spec
        .steps
        .iter()
        .position(|s| matches!(s.kind, StepSpec::Export(_)))
    {
        Some(i) => Err(perr(
            format!("steps[{i}].export"),
            "with several outputs, put export steps under outputs.<name>.steps",
        )),
        None => Ok(()),
    }
}

/// The (field path, file path) of an `add`, `manifest` or `zip` step.
fn added_path(at: &str, step: &Step) -> Option<(String, String)> {
    match step {
        Step::Add { path, .. } => Some((format!("{at}.add.path"), path.clone())),
        Step::Manifest { path } => Some((format!("{at}.manifest.path"), path.clone())),
        Step::Zip { to, .. } => Some((format!("{at}.zip.to"), to.clone())),
        _ => None,
    }
}

/// Refuses `add`/`manifest`/`zip` steps of one output writing the same path (two entries
/// with one name), or paths differing only in case unless `rules` allow it.
/// `added` lists (field path, file path) in step order.
fn check_added_paths(added: &[(String, String)], rules: &NameRules) -> Result<(), PlanError> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let mut case = CaseIndex::new();
    for (at, path) in added {
        if let Some(prev) = seen.insert(path, at) {
            return Err(perr(
                at,
                format!("{path:?} is already added by {prev} (an output cannot hold two entries with one name)"),
            ));
        }
        if let Some((other, prev)) = case.insert(path, at.as_str()) {
            if !rules.allow_case_duplicates {
                return Err(perr(
                    at,
                    format!("{path:?} (also {prev}) {}", case_clash_why(&other)),
                ));
            }
        }
    }
    Ok(())
}
