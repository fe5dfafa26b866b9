//! The transform plan: `UserParameters` ([`spec`]) validated and compiled before any
//! data moves, then asked per entry what to do ([`OutputPlan::decide`]) and applied to
//! entry content on the transform pool ([`OutputPlan::apply`]).
//!
//! Every error names the offending field (`steps[2].replace.files[0]: …`) and says
//! what is allowed. Steps run in order for each entry; an entry that no content step
//! touches, whose compression is unchanged, is copied raw (its compressed bytes are
//! never decompressed). Cross-entry work is planned from the central directories
//! (renames, conflicts) or gathered from per-entry results (exports, manifest), so
//! entries are still processed in parallel.

pub mod custom;
pub mod glob;
pub mod spec;
pub mod stream;
pub mod structured;
pub mod text;
mod verify;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use regex::bytes::Regex as BytesRegex;
use regex::Regex;

pub use custom::{CustomStep, StepRegistry};
use glob::Globs;
pub use spec::{CaseDuplicates, NamesSpec, OnConflict, OnUnknownVariable, PlanSpec, Symlinks};
use spec::{Compression, Format, Selector, SourceSpec, StepSpec};

use crate::names::{case_clash_why, fold_case, CaseIndex, NameRules};
use crate::zip::read::{validate_name, CdEntry, METHOD_DEFLATED, METHOD_STORED};

/// A `UserParameters` problem, with the path of the offending field.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("UserParameters {path}: {message}")]
pub struct PlanError {
    /// Where: `steps[2].replace.files[0]`, `outputs.Out.from[1]`, or `(document)`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

fn perr(path: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        path: path.into(),
        message: message.into(),
    }
}

/// A problem applying a step to an entry (undefined variable, missing JSON key...).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("entry {entry:?}: {step}: {message}")]
pub struct TransformError {
    /// Entry path in the output.
    pub entry: String,
    /// Which step (`steps[3] (set)`).
    pub step: String,
    /// What went wrong.
    pub message: String,
    /// The kind of failure.
    pub kind: TransformErrorKind,
}

/// Kinds of [`TransformError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformErrorKind {
    /// The step cannot be applied to this entry (missing key, undefined variable...).
    Step,
    /// The step's output would exceed `limit` bytes ([`text::output_limit`] of the
    /// entry's size).
    OutputTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
}

/// Names known when the plan is compiled.
#[derive(Debug, Clone, Default)]
pub struct JobContext {
    /// Input artifact names, in event order.
    pub inputs: Vec<String>,
    /// Output artifact names, in event order.
    pub outputs: Vec<String>,
    /// Built-in template variables (job id, account, revisions...).
    pub builtins: BTreeMap<String, String>,
}

impl PlanSpec {
    /// Parses `UserParameters` (JSON); absent or blank is the empty plan.
    pub fn parse(user_parameters: Option<&str>) -> Result<PlanSpec, PlanError> {
        let text = user_parameters.unwrap_or("").trim();
        if text.is_empty() {
            return Ok(PlanSpec::default());
        }
        if !text.starts_with('{') {
            let shown: String = text.chars().take(60).collect();
            return Err(perr(
                "(document)",
                format!("must be a JSON object such as {{\"steps\": [...]}}, got {shown:?}"),
            ));
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." || path.is_empty() {
                "(document)".to_string()
            } else {
                path
            };
            let mut message = e.into_inner().to_string();
            if message.contains("did not match any variant of untagged enum Selector") {
                message =
                    "expected a list of globs, or {\"files\": [globs], \"inputs\": [input names]}"
                        .into();
            } else if message.contains("did not match any variant of untagged enum SourceSpec") {
                message =
                    "expected an input artifact name, or {\"input\": name, \"prefix\": \"dir/\"}"
                        .into();
            }
            perr(path, message)
        })
    }
}

/// A compiled plan: cheap to share between threads.
#[derive(Debug)]
pub struct Plan {
    outputs: Vec<OutputPlan>,
    name_rules: NameRules,
    limits: crate::limits::Limits,
}

/// Where an output's entries come from.
#[derive(Debug, Clone)]
pub struct Source {
    /// Index of the input artifact.
    pub input: usize,
    /// Its name.
    pub input_name: String,
    /// Prefix put in front of its entries.
    pub prefix: String,
}

/// One output's compiled steps.
#[derive(Debug)]
pub struct OutputPlan {
    /// Output artifact name.
    pub name: String,
    /// Inputs, in order.
    pub sources: Vec<Source>,
    /// Name clash rule.
    pub on_conflict: OnConflict,
    /// Name rules for the output's entries (from UserParameters `names`).
    pub name_rules: NameRules,
    /// Raw copies are CRC- and size-checked (UserParameters `verify`).
    pub verify: bool,
    /// What happens to symbolic-link entries (from UserParameters `symlinks`).
    pub symlinks: Symlinks,
    steps: Vec<Step>,
    labels: Vec<String>,
    vars: BTreeMap<String, String>,
    strict_vars: bool,
    manifest: bool,
}

#[derive(Debug)]
enum Step {
    Select {
        include: bool,
        globs: Globs,
        inputs: Option<Vec<usize>>,
    },
    Move {
        globs: Option<Globs>,
        strip: Option<String>,
        regex: Option<(Regex, String)>,
        flatten: bool,
        add: Option<String>,
    },
    Content {
        globs: Globs,
        op: ContentOp,
    },
    Export {
        variable: String,
        file: String,
        how: ExportHow,
        default: Option<String>,
    },
    Pack {
        globs: Option<Globs>,
        compression: Option<u16>,
        level: Option<u32>,
        mtime: Option<(u16, u16)>,
        file_mode: Option<u32>,
        dir_mode: Option<u32>,
    },
    Add {
        path: String,
        data: Vec<u8>,
    },
    Manifest {
        path: String,
    },
}

enum ContentOp {
    Literal {
        find: Vec<u8>,
        with: Vec<u8>,
    },
    Regex {
        re: BytesRegex,
        with: Vec<u8>,
    },
    Template,
    Set {
        pointer: Vec<String>,
        value: serde_json::Value,
        format: Option<Format>,
    },
    Custom(Arc<dyn CustomStep>),
}

impl std::fmt::Debug for ContentOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContentOp::Literal { .. } => "Literal",
            ContentOp::Regex { .. } => "Regex",
            ContentOp::Template => "Template",
            ContentOp::Set { .. } => "Set",
            ContentOp::Custom(_) => "Custom",
        })
    }
}

#[derive(Debug)]
enum ExportHow {
    Pointer(Vec<String>, Option<Format>),
    Regex(Regex),
    Whole,
}

/// What happens to one entry in one output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPlan {
    /// Path in the output.
    pub name: String,
    /// Content and export steps, in order (indices into the output's steps).
    pub ops: Vec<usize>,
    /// Forced compression method (0 or 8).
    pub method: Option<u16>,
    /// Forced deflate level (forces recompression).
    pub level: Option<u32>,
    /// Forced DOS (date, time).
    pub mtime: Option<(u16, u16)>,
    /// Forced Unix permission bits.
    pub mode: Option<u32>,
    /// The manifest needs this entry's SHA-256 (for a link: of its target path, the
    /// entry's data).
    pub hash: bool,
    /// A raw copy must still be inflated to check its CRC-32 and size.
    pub verify: bool,
    /// `Some(mode)` when the entry is a symbolic link (planned with
    /// [`OutputPlan::decide_kind`] or [`layout_output_kinds`]), with the plan's
    /// `symlinks` mode: such an entry has no content steps, exports or forced
    /// compression, and its target must be checked with [`crate::links::check_symlink`]
    /// before it is written. `None` for files and directories.
    pub symlink: Option<Symlinks>,
}

/// What kind of entry is being planned: decides which steps may touch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (the default for entries without a Unix mode).
    File,
    /// A directory (name ending in `/`).
    Dir,
    /// A symbolic link (Unix mode `S_IFLNK`); its data is the target.
    Symlink,
}

impl EntryKind {
    /// The kind of a central-directory entry: a link when its Unix mode says so
    /// (whatever its name), else a directory when its name ends in `/`, else a file.
    pub fn of(e: &CdEntry) -> EntryKind {
        if e.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::from_is_dir(e.is_dir())
        }
    }

    /// `Dir` or `File`.
    pub fn from_is_dir(is_dir: bool) -> EntryKind {
        if is_dir {
            EntryKind::Dir
        } else {
            EntryKind::File
        }
    }

    /// True for `Dir`.
    pub fn is_dir(self) -> bool {
        self == EntryKind::Dir
    }
}

impl EntryPlan {
    /// True when processing the entry needs CPU: its content is needed, or a raw
    /// copy must be verified (stored or deflated entries; other methods cannot be
    /// inflated here and are copied as they are).
    pub fn needs_cpu(&self, current_method: u16) -> bool {
        self.needs_content(current_method)
            || (self.verify
                && matches!(
                    current_method,
                    crate::zip::read::METHOD_STORED | crate::zip::read::METHOD_DEFLATED
                ))
    }

    /// True when the entry's content must be decompressed (content steps, exports,
    /// manifest hashing, or a compression change).
    pub fn needs_content(&self, current_method: u16) -> bool {
        !self.ops.is_empty()
            || self.hash
            || self.level.is_some()
            || self.method.is_some_and(|m| m != current_method)
    }
}

/// What [`OutputPlan::trace_kind`] found for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Steps that matched the entry, in order.
    pub matched: Vec<usize>,
    /// What [`OutputPlan::decide_kind`] decides.
    pub decided: Result<Option<EntryPlan>, String>,
}

/// Something written after the streamed entries.
#[derive(Debug, Clone)]
pub enum Extra<'a> {
    /// A file with fixed content.
    Add {
        /// Path.
        path: &'a str,
        /// Content.
        data: &'a [u8],
    },
    /// The manifest of everything written before it.
    Manifest {
        /// Path.
        path: &'a str,
    },
}

/// An exported output variable value, or the fact that it was not found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Export {
    /// Variable name.
    pub variable: String,
    /// Value.
    pub value: String,
}

fn compile_globs(path: &str, globs: &[String]) -> Result<Globs, PlanError> {
    if globs.is_empty() {
        return Err(perr(path, "needs at least one glob"));
    }
    Globs::new(globs).map_err(|(i, m)| perr(format!("{path}[{i}]"), m))
}

fn parse_mode(path: &str, s: &str) -> Result<u32, PlanError> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            perr(
                path,
                format!("{s:?} is not an octal permission such as \"644\""),
            )
        })
}

fn parse_mtime(path: &str, s: &str) -> Result<(u16, u16), PlanError> {
    let bad = || {
        perr(
            path,
            format!("{s:?} is not a time YYYY-MM-DDTHH:MM:SS between 1980 and 2107"),
        )
    };
    let (d, t) = s.split_once('T').unwrap_or((s, "00:00:00"));
    let d: Vec<u16> = d
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let t: Vec<u16> = t
        .trim_end_matches('Z')
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if d.len() != 3
        || t.len() != 3
        || !(1980..=2107).contains(&d[0])
        || !(1..=12).contains(&d[1])
        || !(1..=31).contains(&d[2])
        || t[0] > 23
        || t[1] > 59
        || t[2] > 59
    {
        return Err(bad());
    }
    Ok((
        ((d[0] - 1980) << 9) | (d[1] << 5) | d[2],
        (t[0] << 11) | (t[1] << 5) | (t[2] / 2),
    ))
}

fn valid_variable(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'@' || b == b'-' || b == b'_')
}

fn template_str(
    s: &str,
    vars: &BTreeMap<String, String>,
    strict: bool,
    path: &str,
) -> Result<String, PlanError> {
    let out = text::template(s.as_bytes().to_vec(), vars, strict)
        .map_err(|v| perr(path, format!("template variable ${{{v}}} is not defined")))?;
    Ok(String::from_utf8(out).expect("UTF-8 in, UTF-8 out"))
}

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
        for k in spec.variables.keys() {
            if !text::valid_var_name(k) {
                return Err(perr(
                    format!("variables.{k}"),
                    "variable names are letters, digits and `_`, not starting with a digit",
                ));
            }
        }
        let mut vars = ctx.builtins.clone();
        vars.extend(spec.variables.clone());
        let strict = spec.on_unknown_variable == OnUnknownVariable::Fail;
        let name_rules = NameRules {
            allow_case_duplicates: spec.names.case_duplicates == CaseDuplicates::Allow,
        };
        let input_index = |name: &str| ctx.inputs.iter().position(|n| n == name);

        // Routes.
        let mut routes: Vec<Option<Route<'_>>> = vec![None; ctx.outputs.len()];
        let src = |i: usize| Source {
            input: i,
            input_name: ctx.inputs[i].clone(),
            prefix: String::new(),
        };
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
            if o.from.is_empty() {
                return Err(perr(
                    format!("outputs.{out}.from"),
                    "needs at least one input",
                ));
            }
            let mut sources = Vec::new();
            for (j, f) in o.from.iter().enumerate() {
                let (name, prefix) = match f {
                    SourceSpec::Name(n) => (n.as_str(), ""),
                    SourceSpec::Full(x) => (x.input.as_str(), x.prefix.as_str()),
                };
                let at = format!("outputs.{out}.from[{j}]");
                let Some(i) = input_index(name) else {
                    return Err(perr(
                        at,
                        format!(
                            "no input artifact named {name:?}; the job has {:?}",
                            ctx.inputs
                        ),
                    ));
                };
                if sources.iter().any(|s: &Source| s.input == i) {
                    return Err(perr(at, format!("input {name:?} listed twice")));
                }
                if !prefix.is_empty() {
                    validate_name(&format!("{prefix}x"))
                        .map_err(|w| perr(format!("{at}.prefix"), w))?;
                }
                sources.push(Source {
                    input: i,
                    input_name: name.to_string(),
                    prefix: prefix.to_string(),
                });
            }
            routes[k] = Some((sources, &o.steps, o.on_conflict));
        }
        let (ni, no) = (ctx.inputs.len(), ctx.outputs.len());
        for (k, r) in routes.iter_mut().enumerate() {
            if r.is_some() {
                continue;
            }
            let sources = if !spec.outputs.is_empty() {
                return Err(perr(
                    "outputs",
                    format!(
                        "output {:?} has no entry; once `outputs` is given, every output needs one",
                        ctx.outputs[k]
                    ),
                ));
            } else if ni == 1 {
                vec![src(0)]
            } else if ni == no {
                vec![src(k)]
            } else if no == 1 {
                (0..ni).map(src).collect()
            } else {
                return Err(perr(
                    "outputs",
                    format!(
                        "{ni} inputs and {no} outputs: say which inputs feed each output, e.g. {{\"outputs\": {{\"{}\": {{\"from\": [\"{}\"]}}}}}}",
                        ctx.outputs[0],
                        ctx.inputs.first().map(String::as_str).unwrap_or("Input")
                    ),
                ));
            };
            *r = Some((sources, &[], OnConflict::Error));
        }

        let mut outputs = Vec::new();
        let mut exported: HashMap<String, String> = HashMap::new();
        for (k, r) in routes.into_iter().enumerate() {
            let (sources, own, on_conflict) = r.expect("every route filled");
            let name = ctx.outputs[k].clone();
            let mut steps = Vec::new();
            let mut labels = Vec::new();
            let mut added = Vec::new();
            let all = spec
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("steps[{i}]"), s));
            let own = own
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("outputs.{name}.steps[{i}]"), s));
            for (at, s) in all.chain(own) {
                let step = compile_step(&at, s, ctx, &vars, strict, registry)?;
                if let Step::Export { variable, .. } = &step {
                    if let Some(prev) = exported.get(variable) {
                        if prev != &at {
                            return Err(perr(
                                format!("{at}.export.variable"),
                                format!("variable {variable:?} is already exported by {prev}"),
                            ));
                        }
                    }
                    exported.insert(variable.clone(), at.clone());
                }
                added.extend(added_path(&at, &step));
                labels.push(format!("{at} ({})", step_kind(s)));
                steps.push(step);
            }
            check_added_paths(&added, &name_rules)?;
            let manifest = steps.iter().any(|s| matches!(s, Step::Manifest { .. }));
            outputs.push(OutputPlan {
                name,
                sources,
                on_conflict,
                name_rules,
                verify: spec.verify,
                symlinks: spec.symlinks,
                steps,
                labels,
                vars: vars.clone(),
                strict_vars: strict,
                manifest,
            });
        }
        // A top-level export step in a plan with several outputs would define the
        // variable once per output; only allow that with a single output.
        if ctx.outputs.len() > 1 {
            for (i, s) in spec.steps.iter().enumerate() {
                if matches!(s, StepSpec::Export(_)) {
                    return Err(perr(
                        format!("steps[{i}].export"),
                        "with several outputs, put export steps under outputs.<name>.steps",
                    ));
                }
            }
        }
        Ok(Plan {
            outputs,
            name_rules,
            limits: spec.limits,
        })
    }

    /// The zip-bomb limits every input must pass before data moves.
    pub fn limits(&self) -> crate::limits::Limits {
        self.limits
    }

    /// The name rules the plan asks for: pass them to
    /// [`crate::zip::read::parse_central_directory_with`] when reading the inputs.
    pub fn name_rules(&self) -> NameRules {
        self.name_rules
    }

    /// The compiled outputs, in event order.
    pub fn outputs(&self) -> &[OutputPlan] {
        &self.outputs
    }

    /// Output `o`.
    pub fn output(&self, o: usize) -> &OutputPlan {
        &self.outputs[o]
    }
}

/// The (field path, file path) of an `add` or `manifest` step.
fn added_path(at: &str, step: &Step) -> Option<(String, String)> {
    match step {
        Step::Add { path, .. } => Some((format!("{at}.add.path"), path.clone())),
        Step::Manifest { path } => Some((format!("{at}.manifest.path"), path.clone())),
        _ => None,
    }
}

/// Refuses `add`/`manifest` steps of one output writing the same path (two entries
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

/// An output's sources, own steps and conflict rule.
type Route<'a> = (Vec<Source>, &'a [StepSpec], OnConflict);

fn step_kind(s: &StepSpec) -> &'static str {
    match s {
        StepSpec::Include(_) => "include",
        StepSpec::Exclude(_) => "exclude",
        StepSpec::Move(_) => "move",
        StepSpec::Replace(_) => "replace",
        StepSpec::Template(_) => "template",
        StepSpec::Set(_) => "set",
        StepSpec::Add(_) => "add",
        StepSpec::Manifest(_) => "manifest",
        StepSpec::Export(_) => "export",
        StepSpec::Pack(_) => "pack",
        StepSpec::Custom(_) => "custom",
    }
}

fn compile_step(
    at: &str,
    s: &StepSpec,
    ctx: &JobContext,
    vars: &BTreeMap<String, String>,
    strict: bool,
    registry: &StepRegistry,
) -> Result<Step, PlanError> {
    let f = |k: &str| format!("{at}.{k}");
    Ok(match s {
        StepSpec::Include(sel) | StepSpec::Exclude(sel) => {
            let include = matches!(s, StepSpec::Include(_));
            let key = if include { "include" } else { "exclude" };
            let (files, inputs, files_at) = match sel {
                Selector::Files(g) => (g, &[][..], f(key)),
                Selector::Full(o) => (&o.files, &o.inputs[..], f(&format!("{key}.files"))),
            };
            let globs = compile_globs(&files_at, files)?;
            let inputs = if inputs.is_empty() {
                None
            } else {
                let mut v = Vec::new();
                for (j, n) in inputs.iter().enumerate() {
                    let Some(i) = ctx.inputs.iter().position(|x| x == n) else {
                        return Err(perr(
                            f(&format!("{key}.inputs[{j}]")),
                            format!(
                                "no input artifact named {n:?}; the job has {:?}",
                                ctx.inputs
                            ),
                        ));
                    };
                    v.push(i);
                }
                Some(v)
            };
            Step::Select {
                include,
                globs,
                inputs,
            }
        }
        StepSpec::Move(m) => compile_move(at, m)?,
        StepSpec::Replace(r) => compile_replace(at, r)?,
        StepSpec::Template(t) => Step::Content {
            globs: compile_globs(&f("template.files"), &t.files)?,
            op: ContentOp::Template,
        },
        StepSpec::Set(st) => {
            let globs = compile_globs(&f("set.files"), &st.files)?;
            let pointer =
                structured::parse_pointer(&st.pointer).map_err(|m| perr(f("set.pointer"), m))?;
            if pointer.is_empty() {
                return Err(perr(
                    f("set.pointer"),
                    "must point inside the document (e.g. /Parameters/ImageTag)",
                ));
            }
            let value = match &st.value {
                serde_json::Value::String(s) => {
                    serde_json::Value::String(template_str(s, vars, strict, &f("set.value"))?)
                }
                v => v.clone(),
            };
            Step::Content {
                globs,
                op: ContentOp::Set {
                    pointer,
                    value,
                    format: st.format,
                },
            }
        }
        StepSpec::Add(a) => {
            validate_name(&a.path).map_err(|w| perr(f("add.path"), w))?;
            if a.path.ends_with('/') {
                return Err(perr(f("add.path"), "must be a file path, not a directory"));
            }
            let data = match (&a.text, &a.base64) {
                (Some(t), None) => template_str(t, vars, strict, &f("add.text"))?.into_bytes(),
                (None, Some(b)) => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .map_err(|e| perr(f("add.base64"), format!("invalid base64: {e}")))?
                }
                _ => return Err(perr(f("add"), "give exactly one of `text` and `base64`")),
            };
            Step::Add {
                path: a.path.clone(),
                data,
            }
        }
        StepSpec::Manifest(m) => {
            validate_name(&m.path).map_err(|w| perr(f("manifest.path"), w))?;
            if m.path.ends_with('/') {
                return Err(perr(
                    f("manifest.path"),
                    "must be a file path, not a directory",
                ));
            }
            Step::Manifest {
                path: m.path.clone(),
            }
        }
        StepSpec::Export(e) => {
            if !valid_variable(&e.variable) {
                return Err(perr(
                    f("export.variable"),
                    "output variable names match [A-Za-z0-9@_-]+",
                ));
            }
            validate_name(&e.file).map_err(|w| perr(f("export.file"), w))?;
            let how = match (&e.pointer, &e.regex) {
                (Some(p), None) => ExportHow::Pointer(
                    structured::parse_pointer(p).map_err(|m| perr(f("export.pointer"), m))?,
                    e.format,
                ),
                (None, Some(r)) => ExportHow::Regex(
                    Regex::new(r)
                        .map_err(|er| perr(f("export.regex"), format!("invalid regex: {er}")))?,
                ),
                (None, None) => ExportHow::Whole,
                _ => {
                    return Err(perr(
                        f("export"),
                        "give at most one of `pointer` and `regex`",
                    ))
                }
            };
            if matches!(how, ExportHow::Pointer(..))
                && e.format.is_none()
                && structured::format_of(&e.file, None).is_none()
            {
                return Err(perr(
                    f("export.format"),
                    format!(
                        "cannot tell the format of {:?}: set \"format\": \"json\" or \"yaml\"",
                        e.file
                    ),
                ));
            }
            Step::Export {
                variable: e.variable.clone(),
                file: e.file.clone(),
                how,
                default: e.default.clone(),
            }
        }
        StepSpec::Pack(p) => {
            if let Some(l) = p.level {
                if l > 9 {
                    return Err(perr(f("pack.level"), "deflate levels are 0 to 9"));
                }
                if p.compression == Some(Compression::Store) {
                    return Err(perr(f("pack.level"), "a level only applies to deflate"));
                }
            }
            Step::Pack {
                globs: p
                    .files
                    .as_ref()
                    .map(|g| compile_globs(&f("pack.files"), g))
                    .transpose()?,
                compression: p.compression.map(|c| match c {
                    Compression::Store => METHOD_STORED,
                    Compression::Deflate => METHOD_DEFLATED,
                }),
                level: p.level,
                mtime: p
                    .mtime
                    .as_deref()
                    .map(|m| parse_mtime(&f("pack.mtime"), m))
                    .transpose()?,
                file_mode: p
                    .file_mode
                    .as_deref()
                    .map(|m| parse_mode(&f("pack.file_mode"), m))
                    .transpose()?,
                dir_mode: p
                    .dir_mode
                    .as_deref()
                    .map(|m| parse_mode(&f("pack.dir_mode"), m))
                    .transpose()?,
            }
        }
        StepSpec::Custom(c) => {
            let globs = compile_globs(&f("custom.files"), &c.files)?;
            let step = match registry.build(&c.name, &c.options) {
                None => {
                    return Err(perr(
                        f("custom.name"),
                        format!(
                            "no custom step named {:?}; this function registers {:?}",
                            c.name,
                            registry.names()
                        ),
                    ))
                }
                Some(Err(m)) => return Err(perr(f("custom.options"), m)),
                Some(Ok(s)) => s,
            };
            Step::Content {
                globs,
                op: ContentOp::Custom(step),
            }
        }
    })
}

fn compile_move(at: &str, m: &spec::MoveSpec) -> Result<Step, PlanError> {
    let f = |k: &str| format!("{at}.{k}");
    let globs = m
        .files
        .as_ref()
        .map(|g| compile_globs(&f("move.files"), g))
        .transpose()?;
    let regex = match (&m.regex, &m.to) {
        (Some(r), Some(to)) => {
            let re = Regex::new(&format!("^(?:{r})$"))
                .map_err(|e| perr(f("move.regex"), format!("invalid regex: {e}")))?;
            text::check_replacement(to, re.captures_len(), re.capture_names().flatten())
                .map_err(|m| perr(f("move.to"), m))?;
            Some((re, to.clone()))
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(perr(
                f("move.to"),
                "`regex` needs `to` (the new path, with $1 for captures)",
            ))
        }
        (None, Some(_)) => return Err(perr(f("move.regex"), "`to` needs `regex`")),
    };
    if m.strip_prefix.is_none() && regex.is_none() && !m.flatten && m.add_prefix.is_none() {
        return Err(perr(
            f("move"),
            "does nothing: give strip_prefix, regex+to, flatten or add_prefix",
        ));
    }
    if let Some(p) = &m.add_prefix {
        validate_name(&format!("{p}x")).map_err(|w| perr(f("move.add_prefix"), w))?;
    }
    Ok(Step::Move {
        globs,
        strip: m.strip_prefix.clone(),
        regex,
        flatten: m.flatten,
        add: m.add_prefix.clone(),
    })
}

fn compile_replace(at: &str, r: &spec::ReplaceSpec) -> Result<Step, PlanError> {
    let f = |k: &str| format!("{at}.{k}");
    let globs = compile_globs(&f("replace.files"), &r.files)?;
    let op = match (&r.find, &r.regex) {
        (Some(find), None) if !find.is_empty() => ContentOp::Literal {
            find: find.as_bytes().to_vec(),
            with: r.with.as_bytes().to_vec(),
        },
        (Some(_), None) => return Err(perr(f("replace.find"), "must not be empty")),
        (None, Some(re)) => ContentOp::Regex {
            re: compile_replace_regex(at, re, &r.with)?,
            with: r.with.as_bytes().to_vec(),
        },
        _ => {
            return Err(perr(
                f("replace"),
                "give exactly one of `find` (literal text) and `regex`",
            ))
        }
    };
    Ok(Step::Content { globs, op })
}

/// The regex of a `replace` step at `at`: valid, unable to match the empty string, and
/// with every group that `with` refers to.
fn compile_replace_regex(at: &str, re: &str, with: &str) -> Result<BytesRegex, PlanError> {
    let compiled = BytesRegex::new(re)
        .map_err(|e| perr(format!("{at}.replace.regex"), format!("invalid regex: {e}")))?;
    text::refuse_empty_match(re).map_err(|m| perr(format!("{at}.replace.regex"), m))?;
    text::check_replacement(
        with,
        compiled.captures_len(),
        compiled.capture_names().flatten(),
    )
    .map_err(|m| perr(format!("{at}.replace.with"), m))?;
    Ok(compiled)
}

fn apply_move(
    name: &str,
    strip: &Option<String>,
    regex: &Option<(Regex, String)>,
    flatten: bool,
    add: &Option<String>,
) -> String {
    let mut n = name.to_string();
    if let Some(p) = strip {
        if let Some(rest) = n.strip_prefix(p.as_str()) {
            n = rest.to_string();
        }
    }
    if let Some((re, to)) = regex {
        if let Some(c) = re.captures(&n) {
            let mut out = String::new();
            c.expand(to, &mut out);
            n = out;
        }
    }
    if flatten {
        n = n.rsplit('/').next().unwrap_or("").to_string();
    }
    if let Some(p) = add {
        n = format!("{p}{n}");
    }
    n
}

/// Why a content step failed on an entry.
enum StepFailure {
    Message(String),
    TooLarge,
}

impl From<text::TooLarge> for StepFailure {
    fn from(_: text::TooLarge) -> Self {
        StepFailure::TooLarge
    }
}

/// The value an export step reads from `data` (entry `name`).
fn export_value(how: &ExportHow, name: &str, data: &[u8]) -> Result<String, String> {
    let text = || std::str::from_utf8(data).map_err(|_| "not UTF-8 text".to_string());
    match how {
        ExportHow::Whole => text().map(|s| s.trim().to_string()),
        ExportHow::Regex(re) => text().and_then(|s| {
            re.captures(s)
                .map(|c| {
                    c.get(1)
                        .or_else(|| c.get(0))
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default()
                })
                .ok_or_else(|| format!("regex {:?} does not match", re.as_str()))
        }),
        ExportHow::Pointer(p, forced) => {
            let fmt = structured::format_of(name, *forced).expect("checked at compile time");
            text().and_then(|s| structured::get(s, fmt, p))
        }
    }
}

impl OutputPlan {
    /// What happens to entry `name` of source `source` (index into [`Self::sources`]).
    /// `Ok(None)`: dropped. `Err`: the entry's new path is invalid.
    ///
    /// Knows only files and directories: for archives that may hold symbolic links,
    /// use [`Self::decide_kind`] with [`EntryKind::of`].
    pub fn decide(
        &self,
        source: usize,
        name: &str,
        is_dir: bool,
    ) -> Result<Option<EntryPlan>, String> {
        self.decide_kind(source, name, EntryKind::from_is_dir(is_dir))
    }

    /// [`Self::decide`] for an entry of kind `kind`. A symbolic link is renamed,
    /// selected and given a time and permissions like a file (its type stays a link),
    /// but no content step, `export` or compression change applies to it: its data is
    /// the target path. An `export` naming it fails; under `"symlinks": "drop"` it is
    /// dropped, under `"fail"` refused; under `"keep"` it is planned with
    /// [`EntryPlan::symlink`] set, and its target must pass
    /// [`crate::links::check_symlink`].
    pub fn decide_kind(
        &self,
        source: usize,
        name: &str,
        kind: EntryKind,
    ) -> Result<Option<EntryPlan>, String> {
        self.decide_traced(source, name, kind, None)
    }

    /// [`Self::decide_kind`], also telling which steps matched the entry on its way
    /// (in step order; a `select` step that dropped it is the last), for dry runs.
    pub fn trace_kind(&self, source: usize, name: &str, kind: EntryKind) -> Trace {
        let mut matched = Vec::new();
        let decided = self.decide_traced(source, name, kind, Some(&mut matched));
        Trace { matched, decided }
    }

    /// The label of step `i` (`steps[2] (template)`), as errors name it.
    pub fn step_label(&self, i: usize) -> &str {
        &self.labels[i]
    }

    /// How many steps the output has (indexes for [`Self::step_label`]).
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    fn decide_traced(
        &self,
        source: usize,
        name: &str,
        kind: EntryKind,
        mut trace: Option<&mut Vec<usize>>,
    ) -> Result<Option<EntryPlan>, String> {
        let mut matched = |i: usize| {
            if let Some(t) = trace.as_deref_mut() {
                t.push(i);
            }
        };
        let is_dir = kind.is_dir();
        let is_link = kind == EntryKind::Symlink;
        let src = &self.sources[source];
        let mut path = format!("{}{name}", src.prefix);
        let mut ep = EntryPlan {
            name: String::new(),
            ops: Vec::new(),
            method: None,
            level: None,
            mtime: None,
            mode: None,
            hash: false,
            verify: self.verify,
            symlink: is_link.then_some(self.symlinks),
        };
        // Directory paths keep their trailing `/`; globs match them with or without it.
        let matches = |g: &Globs, p: &str| g.is_match(p, is_dir);
        for (i, s) in self.steps.iter().enumerate() {
            match s {
                Step::Select {
                    include,
                    globs,
                    inputs,
                } => {
                    if inputs.as_ref().is_some_and(|v| !v.contains(&src.input)) {
                        continue;
                    }
                    let hit = matches(globs, &path);
                    if hit {
                        matched(i);
                    }
                    if hit != *include {
                        return Ok(None);
                    }
                }
                Step::Move {
                    globs,
                    strip,
                    regex,
                    flatten,
                    add,
                } => {
                    if globs.as_ref().is_none_or(|g| matches(g, &path)) {
                        matched(i);
                        if is_dir && *flatten {
                            return Ok(None);
                        }
                        path = apply_move(&path, strip, regex, *flatten, add);
                        if path.is_empty() || path == "/" {
                            return Ok(None); // e.g. the stripped prefix directory itself
                        }
                        validate_name(&path).map_err(|why| {
                            format!(
                                "{} produces {path:?}, which is invalid: {why}",
                                self.labels[i]
                            )
                        })?;
                    }
                }
                Step::Content { globs, .. } => {
                    if !is_dir && !is_link && globs.is_match(&path, false) {
                        matched(i);
                        ep.ops.push(i);
                    }
                }
                Step::Export { file, .. } => {
                    if !is_dir && file == &path {
                        if is_link {
                            return Err(format!(
                                "{} reads {path:?}, which is a symbolic link (its data is the \
                                 link target, not file content): export a regular file",
                                self.labels[i]
                            ));
                        }
                        matched(i);
                        ep.ops.push(i);
                    }
                }
                Step::Pack {
                    globs,
                    compression,
                    level,
                    mtime,
                    file_mode,
                    dir_mode,
                } => {
                    if globs.as_ref().is_none_or(|g| matches(g, &path)) {
                        matched(i);
                        if is_link {
                            // The target is stored as is; the mode keeps the link type.
                            ep.mode = file_mode.or(ep.mode);
                        } else if !is_dir {
                            ep.method = compression.or(ep.method);
                            ep.level = level.or(ep.level);
                            ep.mode = file_mode.or(ep.mode);
                        } else {
                            ep.mode = dir_mode.or(ep.mode);
                        }
                        ep.mtime = mtime.or(ep.mtime);
                    }
                }
                Step::Add { .. } | Step::Manifest { .. } => {}
            }
        }
        if is_dir && !path.ends_with('/') {
            path.push('/');
        }
        validate_name(&path).map_err(|why| format!("new path {path:?} is invalid: {why}"))?;
        if is_link {
            match self.symlinks {
                Symlinks::Keep => {}
                Symlinks::Drop => return Ok(None),
                Symlinks::Fail => {
                    return Err(format!(
                        "is a symbolic link, which \"symlinks\": \"fail\" refuses (output path \
                         {path:?}; \"drop\" leaves links out, \"keep\" keeps those inside \
                         the artifact)"
                    ))
                }
            }
        }
        ep.hash = self.manifest && !is_dir;
        ep.name = path;
        Ok(Some(ep))
    }

    /// Runs the content and export steps `ops` over `data` (the entry's uncompressed
    /// content); returns the new content and the exported values. A content step whose
    /// output would exceed [`text::output_limit`] of the entry's input size fails with
    /// [`TransformErrorKind::OutputTooLarge`].
    pub fn apply(
        &self,
        ops: &[usize],
        name: &str,
        mut data: Vec<u8>,
    ) -> Result<(Vec<u8>, Vec<Export>), TransformError> {
        let mut exports = Vec::new();
        let limit = text::output_limit(data.len());
        for &i in ops {
            let err = |kind: TransformErrorKind, message: String| TransformError {
                entry: name.to_string(),
                step: self.labels[i].clone(),
                message,
                kind,
            };
            match &self.steps[i] {
                Step::Content { op, .. } => {
                    data = self.apply_content(op, name, data, limit).map_err(|e| match e {
                        StepFailure::Message(m) => err(TransformErrorKind::Step, m),
                        StepFailure::TooLarge => err(
                            TransformErrorKind::OutputTooLarge { limit: limit as u64 },
                            format!(
                                "the output would exceed {limit} bytes (4 times the input plus 1 MiB); \
                                 check the step for a replacement that repeats without end"
                            ),
                        ),
                    })?;
                }
                Step::Export {
                    variable,
                    how,
                    default,
                    ..
                } => {
                    let value = match (export_value(how, name, &data), default) {
                        (Ok(v), _) => v,
                        (Err(_), Some(d)) => d.clone(),
                        (Err(m), None) => return Err(err(TransformErrorKind::Step, m)),
                    };
                    if value.len() > 4096 {
                        return Err(err(
                            TransformErrorKind::Step,
                            format!(
                                "the value is {} bytes; exported values are limited to 4096",
                                value.len()
                            ),
                        ));
                    }
                    exports.push(Export {
                        variable: variable.clone(),
                        value,
                    });
                }
                _ => {}
            }
        }
        Ok((data, exports))
    }

    /// One content step over `data`, its output capped at `limit` bytes.
    fn apply_content(
        &self,
        op: &ContentOp,
        name: &str,
        data: Vec<u8>,
        limit: usize,
    ) -> Result<Vec<u8>, StepFailure> {
        let out = match op {
            ContentOp::Literal { find, with } => text::replace_all_capped(data, find, with, limit)?,
            ContentOp::Regex { re, with } => text::regex_replace_capped(data, re, with, limit)?,
            ContentOp::Template => text::template_capped(data, &self.vars, self.strict_vars, limit)
                .map_err(|e| match e {
                    text::TemplateError::TooLarge => StepFailure::TooLarge,
                    text::TemplateError::Unknown(v) => StepFailure::Message(format!(
                        "template variable ${{{v}}} is not defined (define it in UserParameters \"variables\" or set \"on_unknown_variable\": \"keep\")"
                    )),
                })?,
            ContentOp::Set {
                pointer,
                value,
                format,
            } => {
                let Some(fmt) = structured::format_of(name, *format) else {
                    return Err(StepFailure::Message(
                        "not a .json/.yml/.yaml file: set \"format\"".into(),
                    ));
                };
                let text = String::from_utf8(data)
                    .map_err(|_| StepFailure::Message("not UTF-8 text".into()))?;
                structured::set(&text, fmt, pointer, value)
                    .map_err(StepFailure::Message)?
                    .into_bytes()
            }
            ContentOp::Custom(step) => step.apply(name, data).map_err(StepFailure::Message)?,
        };
        if out.len() > limit {
            return Err(StepFailure::TooLarge);
        }
        Ok(out)
    }

    /// Files written after the streamed entries, in step order.
    pub fn extras(&self) -> Vec<Extra<'_>> {
        self.extra_steps().into_iter().map(|(_, e)| e).collect()
    }

    /// [`Self::extras`], each with the index of the step that adds it.
    pub fn extra_steps(&self) -> Vec<(usize, Extra<'_>)> {
        self.steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Step::Add { path, data } => Some((i, Extra::Add { path, data })),
                Step::Manifest { path } => Some((i, Extra::Manifest { path })),
                _ => None,
            })
            .collect()
    }

    /// Exports whose file was not in the output: their defaults, or an error naming
    /// the step. `found` lists the variables already exported.
    pub fn missing_exports(&self, found: &[Export]) -> Result<Vec<Export>, TransformError> {
        let mut out = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            if let Step::Export {
                variable,
                file,
                default,
                ..
            } = s
            {
                if found.iter().any(|e| &e.variable == variable) {
                    continue;
                }
                match default {
                    Some(d) => out.push(Export {
                        variable: variable.clone(),
                        value: d.clone(),
                    }),
                    None => {
                        return Err(TransformError {
                            kind: TransformErrorKind::Step,
                            entry: file.clone(),
                            step: self.labels[i].clone(),
                            message: format!(
                            "no such file in output {:?} (give a \"default\" to make it optional)",
                            self.name
                        ),
                        })
                    }
                }
            }
        }
        Ok(out)
    }
}

/// An entry of an input chosen for an output.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Index into the output's sources.
    pub source: usize,
    /// Index into that source's entries.
    pub entry: usize,
    /// What to do with it.
    pub plan: EntryPlan,
}

/// The outcome of planning one output from its sources' central directories.
#[derive(Debug, Clone, Default)]
pub struct OutputLayout {
    /// Entries to write, in order.
    pub entries: Vec<Planned>,
    /// Entries left out (by selection, or by a conflict rule).
    pub dropped: u64,
}

/// Decides every entry of an output before data moves, applying the conflict rule.
/// `sources[k]` lists source k's entries as (name, is_dir).
///
/// Produced names are checked by [`OutputPlan::decide`]; here they are checked
/// against each other: an exact clash follows `on_conflict` (the same directory from
/// two inputs is kept once), a clash in letter case only (files added by `add` and
/// `manifest` included) is an error unless the plan's `names` rules allow it.
///
/// Knows only files and directories: for archives that may hold symbolic links, use
/// [`layout_output_kinds`].
pub fn layout_output(
    op: &OutputPlan,
    sources: &[Vec<(&str, bool)>],
) -> Result<OutputLayout, String> {
    let kinds: Vec<Vec<(&str, EntryKind)>> = sources
        .iter()
        .map(|l| {
            l.iter()
                .map(|&(n, d)| (n, EntryKind::from_is_dir(d)))
                .collect()
        })
        .collect();
    layout_output_kinds(op, &kinds)
}

/// [`layout_output`] with each entry's [`EntryKind`] (use [`EntryKind::of`] on the
/// central-directory entries): symbolic links are planned by
/// [`OutputPlan::decide_kind`] (kept, dropped or refused by the plan's `symlinks`
/// mode). Also refused: an entry or added file whose output path lies under a kept
/// link (`d/x` with a link `d`), which extraction would write wherever the link
/// points. Each kept link's target must still be checked, from its data, with
/// [`crate::links::check_symlink`].
pub fn layout_output_kinds(
    op: &OutputPlan,
    sources: &[Vec<(&str, EntryKind)>],
) -> Result<OutputLayout, String> {
    let mut b = LayoutBuilder {
        op,
        sources,
        entries: Vec::new(),
        by_name: HashMap::new(),
        by_case: CaseIndex::new(),
        dropped: 0,
    };
    for (k, list) in sources.iter().enumerate() {
        for (j, (name, kind)) in list.iter().enumerate() {
            let Some(plan) = op.decide_kind(k, name, *kind).map_err(|m| {
                format!(
                    "entry {name:?} of input {:?}: {m}",
                    op.sources[k].input_name
                )
            })?
            else {
                b.dropped += 1;
                continue;
            };
            b.add_entry(Planned {
                source: k,
                entry: j,
                plan,
            })?;
        }
    }
    b.add_extras()?;
    b.check_under_links()?;
    Ok(OutputLayout {
        entries: b.entries.into_iter().flatten().collect(),
        dropped: b.dropped,
    })
}

/// The state of [`layout_output`]: entries kept so far (`None` once replaced), by
/// exact name and by case-folded name (`None` tags an added file).
struct LayoutBuilder<'a> {
    op: &'a OutputPlan,
    sources: &'a [Vec<(&'a str, EntryKind)>],
    entries: Vec<Option<Planned>>,
    by_name: HashMap<String, usize>,
    by_case: CaseIndex<Option<usize>>,
    dropped: u64,
}

impl LayoutBuilder<'_> {
    /// `"name" from input "X"`: a planned entry as its input names it.
    fn describe(&self, p: &Planned) -> String {
        format!(
            "{:?} from input {:?}",
            self.sources[p.source][p.entry].0, self.op.sources[p.source].input_name
        )
    }

    fn add_entry(&mut self, new: Planned) -> Result<(), String> {
        let is_dir = self.sources[new.source][new.entry].1.is_dir();
        if let Some(&prev) = self.by_name.get(&new.plan.name) {
            let p = self.entries[prev]
                .as_ref()
                .expect("indexed entries are present");
            if is_dir && p.plan.name.ends_with('/') {
                self.dropped += 1; // the same directory from two places
                return Ok(());
            }
            match self.op.on_conflict {
                OnConflict::Error => {
                    return Err(format!(
                        "two entries would be written as {:?}: {} and {} (set \"on_conflict\": \"first\" or \"last\", or rename one)",
                        new.plan.name, self.describe(p), self.describe(&new)
                    ))
                }
                OnConflict::First => {
                    self.dropped += 1;
                    return Ok(());
                }
                OnConflict::Last => {
                    self.entries[prev] = None;
                    self.dropped += 1;
                }
            }
        }
        let at = self.entries.len();
        if let Some((other, Some(i))) = self.by_case.insert(&new.plan.name, Some(at)) {
            if !self.op.name_rules.allow_case_duplicates {
                let p = self.entries[i]
                    .as_ref()
                    .expect("indexed entries are present");
                return Err(format!(
                    "entry {} would be written as {:?}, which {} (written for entry {})",
                    self.describe(&new),
                    new.plan.name,
                    case_clash_why(&other),
                    self.describe(p)
                ));
            }
        }
        self.by_name.insert(new.plan.name.clone(), at);
        self.entries.push(Some(new));
        Ok(())
    }

    /// Refuses an entry or added file whose path lies under a kept link's path,
    /// compared without letter case (a case-insensitive file system extracts `D/x`
    /// through a link `d`).
    fn check_under_links(&self) -> Result<(), String> {
        let links: HashMap<String, &Planned> = self
            .entries
            .iter()
            .flatten()
            .filter(|p| p.plan.symlink.is_some())
            .map(|p| (fold_case(p.plan.name.trim_end_matches('/')), p))
            .collect();
        if links.is_empty() {
            return Ok(());
        }
        let under = |path: &str| {
            let path = fold_case(path);
            path.match_indices('/')
                .find_map(|(at, _)| links.get(&path[..at]).copied())
        };
        for p in self.entries.iter().flatten() {
            if let Some(l) = under(&p.plan.name) {
                return Err(format!(
                    "entry {} would be written as {:?}, under the symbolic link {:?} (entry {}): \
                     extracting it would write wherever the link points",
                    self.describe(p),
                    p.plan.name,
                    l.plan.name,
                    self.describe(l)
                ));
            }
        }
        for e in self.op.extras() {
            let (Extra::Add { path, .. } | Extra::Manifest { path }) = e;
            if let Some(l) = under(path) {
                return Err(format!(
                    "added file {path:?} would be written under the symbolic link {:?} (entry \
                     {}): extracting it would write wherever the link points",
                    l.plan.name,
                    self.describe(l)
                ));
            }
        }
        Ok(())
    }

    fn add_extras(&mut self) -> Result<(), String> {
        for e in self.op.extras() {
            let p = match e {
                Extra::Add { path, .. } | Extra::Manifest { path } => path,
            };
            if let Some(&i) = self.by_name.get(p) {
                match self.op.on_conflict {
                    OnConflict::Error => return Err(format!("added file {p:?} is also an entry of the output (set \"on_conflict\": \"last\" to replace it)")),
                    OnConflict::First => return Err(format!("added file {p:?} is also an entry of the output; \"first\" would drop the added file: rename it")),
                    OnConflict::Last => {
                        self.entries[i] = None;
                        self.dropped += 1;
                    }
                }
            }
            let clash = self.by_case.insert(p, None);
            if let (Some((other, tag)), false) = (clash, self.op.name_rules.allow_case_duplicates) {
                let whose = match tag.and_then(|i| self.entries[i].as_ref()) {
                    Some(q) => format!(" (written for entry {})", self.describe(q)),
                    None => String::new(),
                };
                return Err(format!(
                    "added file {p:?} {}{whose}",
                    case_clash_why(&other)
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
