//! The transform plan: what `UserParameters` say, validated and compiled before any
//! data moves.
//!
//! `UserParameters` is a JSON document (empty or absent = copy every input entry):
//!
//! ```json
//! {
//!   "variables": { "VERSION": "1.4.2" },
//!   "on_unknown_variable": "keep",
//!   "steps": [
//!     { "exclude": ["**/*.map"] },
//!     { "template": { "files": ["**/*.json", "**/*.yml"] } },
//!     { "replace": { "files": ["config/*.txt"], "find": "staging", "with": "prod" } }
//!   ],
//!   "outputs": { "BuildOut": { "from": ["SourceOut"] } }
//! }
//! ```
//!
//! Globs are gitignore-like: `*` stays within one path segment, `**` crosses them, and
//! a pattern without `/` matches the file name at any depth (`*.map` = `**/*.map`).
//! Steps run in order for each entry; an entry no step changes is copied raw.
//!
//! Routing (`outputs`): each output names the inputs it takes, in order. Without it:
//! one input goes to every output; otherwise input *i* goes to output *i* when the
//! counts match, and several inputs merge into a single output.

use std::collections::BTreeMap;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use memchr::memmem;
use serde::Deserialize;

/// `UserParameters` as written by the pipeline author.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// Values for `${NAME}` in `template` steps.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// What a `template` step does with `${NAME}` when `NAME` is not defined.
    #[serde(default)]
    pub on_unknown_variable: OnUnknownVariable,
    /// Steps applied to every entry, in order.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// Which inputs feed each output (by artifact name).
    #[serde(default)]
    pub outputs: BTreeMap<String, RouteSpec>,
}

/// Behaviour for undefined template variables.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnUnknownVariable {
    /// Leave `${NAME}` as it is.
    #[default]
    Keep,
    /// Fail the job, naming the entry and the variable.
    Fail,
}

/// One step.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    /// Keep only entries matching one of these globs (directories included).
    Include(Vec<String>),
    /// Drop entries matching one of these globs.
    Exclude(Vec<String>),
    /// Replace a literal string in matching files.
    Replace(ReplaceSpec),
    /// Substitute `${NAME}` in matching files from `variables` and job metadata.
    Template(TemplateSpec),
}

/// A literal replacement.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplaceSpec {
    /// Files the replacement applies to.
    pub files: Vec<String>,
    /// Text to find (non-empty).
    pub find: String,
    /// Replacement text.
    #[serde(rename = "with")]
    pub with: String,
}

/// A template substitution.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Files the substitution applies to.
    pub files: Vec<String>,
}

/// The inputs of one output.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Input artifact names, in the order their entries are written.
    pub from: Vec<String>,
}

/// A `UserParameters` problem, with the path of the offending field.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("UserParameters {path}: {message}")]
pub struct PlanError {
    /// Where: `steps[2].replace.files[0]`, `outputs.Out.from`, or `(document)`.
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

/// Names known when the plan is compiled.
#[derive(Debug, Clone, Default)]
pub struct JobContext {
    /// Input artifact names, in event order.
    pub inputs: Vec<String>,
    /// Output artifact names, in event order.
    pub outputs: Vec<String>,
    /// Built-in template variables (job id, account, artifact revisions...).
    pub builtins: BTreeMap<String, String>,
}

impl PlanSpec {
    /// Parses `UserParameters`; an absent or blank string is the empty plan.
    pub fn parse(user_parameters: Option<&str>) -> Result<PlanSpec, PlanError> {
        let text = user_parameters.unwrap_or("").trim();
        if text.is_empty() {
            return Ok(PlanSpec::default());
        }
        if !text.starts_with('{') {
            return Err(perr(
                "(document)",
                format!(
                    "must be a JSON object such as {{\"steps\": [...]}}, got {:?}",
                    truncate(text, 60)
                ),
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
            perr(path, e.into_inner().to_string())
        })
    }
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[derive(Debug)]
enum Step {
    Include(GlobSet),
    Exclude(GlobSet),
    Content(GlobSet, ContentOp),
}

#[derive(Debug)]
enum ContentOp {
    Replace { find: Vec<u8>, with: Vec<u8> },
    Template,
}

/// A compiled plan: cheap to share between threads.
#[derive(Debug)]
pub struct Plan {
    steps: Vec<Step>,
    variables: BTreeMap<String, String>,
    on_unknown: OnUnknownVariable,
    routes: Vec<Vec<usize>>,
}

/// What the plan does to one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Leave it out of the output.
    Drop,
    /// Copy its compressed bytes unchanged.
    Raw,
    /// Run these content steps (indices into the plan) over its data.
    Transform(Vec<usize>),
}

/// A problem applying a content step to an entry.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("entry {entry:?}: {message}")]
pub struct TransformError {
    /// Entry name.
    pub entry: String,
    /// What went wrong.
    pub message: String,
}

fn compile_globs(path: &str, globs: &[String]) -> Result<GlobSet, PlanError> {
    if globs.is_empty() {
        return Err(perr(path, "needs at least one glob"));
    }
    let mut b = GlobSetBuilder::new();
    for (i, g) in globs.iter().enumerate() {
        b.add(compile_glob(g).map_err(|m| perr(format!("{path}[{i}]"), m))?);
    }
    b.build().map_err(|e| perr(path, e.to_string()))
}

fn compile_glob(g: &str) -> Result<Glob, String> {
    if g.is_empty() {
        return Err("empty glob".into());
    }
    let g = g.strip_prefix('/').unwrap_or(g);
    let pattern = if g.contains('/') {
        g.to_string()
    } else {
        format!("**/{g}")
    };
    GlobBuilder::new(&pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("invalid glob {g:?}: {}", e.kind()))
}

impl Plan {
    /// Validates `spec` against the job and compiles globs and routes.
    pub fn compile(spec: &PlanSpec, ctx: &JobContext) -> Result<Plan, PlanError> {
        let mut steps = Vec::with_capacity(spec.steps.len());
        for (i, s) in spec.steps.iter().enumerate() {
            let at = |k: &str| format!("steps[{i}].{k}");
            steps.push(match s {
                StepSpec::Include(g) => Step::Include(compile_globs(&at("include"), g)?),
                StepSpec::Exclude(g) => Step::Exclude(compile_globs(&at("exclude"), g)?),
                StepSpec::Replace(r) => {
                    if r.find.is_empty() {
                        return Err(perr(at("replace.find"), "must not be empty"));
                    }
                    Step::Content(
                        compile_globs(&at("replace.files"), &r.files)?,
                        ContentOp::Replace {
                            find: r.find.as_bytes().to_vec(),
                            with: r.with.as_bytes().to_vec(),
                        },
                    )
                }
                StepSpec::Template(t) => Step::Content(
                    compile_globs(&at("template.files"), &t.files)?,
                    ContentOp::Template,
                ),
            });
        }
        for k in spec.variables.keys() {
            if !valid_var_name(k) {
                return Err(perr(
                    format!("variables.{k}"),
                    "variable names are letters, digits and `_`, not starting with a digit",
                ));
            }
        }
        let mut variables = ctx.builtins.clone();
        variables.extend(spec.variables.clone());

        let input_index = |name: &str| ctx.inputs.iter().position(|n| n == name);
        let mut routes = vec![Vec::new(); ctx.outputs.len()];
        if spec.outputs.is_empty() {
            let (ni, no) = (ctx.inputs.len(), ctx.outputs.len());
            if ni == 1 {
                routes.iter_mut().for_each(|r| r.push(0));
            } else if ni == no {
                routes.iter_mut().enumerate().for_each(|(i, r)| r.push(i));
            } else if no == 1 {
                routes[0] = (0..ni).collect();
            } else if no > 0 {
                return Err(perr(
                    "outputs",
                    format!(
                        "{ni} inputs and {no} outputs: say which inputs feed each output, \
                         e.g. {{\"outputs\": {{\"{}\": {{\"from\": [\"{}\"]}}}}}}",
                        ctx.outputs[0],
                        ctx.inputs.first().map(String::as_str).unwrap_or("Input")
                    ),
                ));
            }
        } else {
            for (out, route) in &spec.outputs {
                let Some(o) = ctx.outputs.iter().position(|n| n == out) else {
                    return Err(perr(
                        format!("outputs.{out}"),
                        format!(
                            "no output artifact named {out:?}; the job has {:?}",
                            ctx.outputs
                        ),
                    ));
                };
                if route.from.is_empty() {
                    return Err(perr(
                        format!("outputs.{out}.from"),
                        "needs at least one input",
                    ));
                }
                for (j, inp) in route.from.iter().enumerate() {
                    let Some(i) = input_index(inp) else {
                        return Err(perr(
                            format!("outputs.{out}.from[{j}]"),
                            format!(
                                "no input artifact named {inp:?}; the job has {:?}",
                                ctx.inputs
                            ),
                        ));
                    };
                    if routes[o].contains(&i) {
                        return Err(perr(
                            format!("outputs.{out}.from[{j}]"),
                            format!("input {inp:?} listed twice"),
                        ));
                    }
                    routes[o].push(i);
                }
            }
            if let Some(o) = routes.iter().position(Vec::is_empty) {
                return Err(perr(
                    "outputs",
                    format!(
                        "output {:?} has no route; every output needs one",
                        ctx.outputs[o]
                    ),
                ));
            }
        }
        Ok(Plan {
            steps,
            variables,
            on_unknown: spec.on_unknown_variable,
            routes,
        })
    }

    /// The input indices feeding output `output`, in order.
    pub fn route(&self, output: usize) -> &[usize] {
        &self.routes[output]
    }

    /// Decides what happens to the entry `name` (directory entries are never
    /// transformed, only selected).
    pub fn decide(&self, name: &str, is_dir: bool) -> Decision {
        let mut ops = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            match s {
                Step::Include(g) => {
                    if !matches(g, name, is_dir) {
                        return Decision::Drop;
                    }
                }
                Step::Exclude(g) => {
                    if matches(g, name, is_dir) {
                        return Decision::Drop;
                    }
                }
                Step::Content(g, _) => {
                    if !is_dir && g.is_match(name) {
                        ops.push(i);
                    }
                }
            }
        }
        if ops.is_empty() {
            Decision::Raw
        } else {
            Decision::Transform(ops)
        }
    }

    /// Applies the content steps `ops` (from [`Plan::decide`]) to `data`.
    pub fn apply(
        &self,
        ops: &[usize],
        name: &str,
        mut data: Vec<u8>,
    ) -> Result<Vec<u8>, TransformError> {
        for &i in ops {
            let Step::Content(_, op) = &self.steps[i] else {
                continue;
            };
            data = match op {
                ContentOp::Replace { find, with } => replace_all(data, find, with),
                ContentOp::Template => self.template(data, name)?,
            };
        }
        Ok(data)
    }

    fn template(&self, data: Vec<u8>, name: &str) -> Result<Vec<u8>, TransformError> {
        let finder = memmem::Finder::new(b"${");
        let mut out: Option<Vec<u8>> = None;
        let mut last = 0;
        let mut at = 0;
        while let Some(p) = finder.find(&data[at..]) {
            let start = at + p;
            let rest = &data[start + 2..];
            let end = rest.iter().position(|&b| b == b'}');
            let var = end
                .and_then(|e| std::str::from_utf8(&rest[..e]).ok())
                .filter(|v| valid_var_name(v));
            let Some(var) = var else {
                at = start + 2;
                continue;
            };
            let close = start + 2 + var.len() + 1;
            match self.variables.get(var) {
                Some(v) => {
                    let o = out.get_or_insert_with(|| Vec::with_capacity(data.len() + 64));
                    o.extend_from_slice(&data[last..start]);
                    o.extend_from_slice(v.as_bytes());
                    last = close;
                }
                None if self.on_unknown == OnUnknownVariable::Fail => {
                    return Err(TransformError {
                        entry: name.to_string(),
                        message: format!(
                            "template variable ${{{var}}} is not defined (define it in \
                             UserParameters \"variables\" or set \"on_unknown_variable\": \"keep\")"
                        ),
                    });
                }
                None => {}
            }
            at = close;
        }
        Ok(match out {
            None => data,
            Some(mut o) => {
                o.extend_from_slice(&data[last..]);
                o
            }
        })
    }
}

/// Directories match with or without their trailing `/`.
fn matches(g: &GlobSet, name: &str, is_dir: bool) -> bool {
    g.is_match(name) || (is_dir && g.is_match(name.trim_end_matches('/')))
}

fn valid_var_name(v: &str) -> bool {
    let mut c = v.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn replace_all(data: Vec<u8>, find: &[u8], with: &[u8]) -> Vec<u8> {
    let mut it = memmem::find_iter(&data, find).peekable();
    if it.peek().is_none() {
        return data;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut last = 0;
    for p in it {
        if p < last {
            continue; // overlapping match
        }
        out.extend_from_slice(&data[last..p]);
        out.extend_from_slice(with);
        last = p + find.len();
    }
    out.extend_from_slice(&data[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(i: &[&str], o: &[&str]) -> JobContext {
        JobContext {
            inputs: i.iter().map(|s| s.to_string()).collect(),
            outputs: o.iter().map(|s| s.to_string()).collect(),
            builtins: BTreeMap::from([("JOB_ID".into(), "j-1".into())]),
        }
    }

    fn plan(json: &str, c: &JobContext) -> Result<Plan, PlanError> {
        Plan::compile(&PlanSpec::parse(Some(json))?, c)
    }

    #[test]
    fn empty_parameters_copy_everything() {
        let p = Plan::compile(&PlanSpec::parse(None).unwrap(), &ctx(&["A"], &["X", "Y"])).unwrap();
        assert_eq!(p.decide("a/b.txt", false), Decision::Raw);
        assert_eq!(p.route(1), &[0]);
    }

    #[test]
    fn errors_name_the_field() {
        let c = ctx(&["A"], &["X"]);
        let e = plan(
            r#"{"steps":[{"exclude":["a"]},{"replace":{"files":["["],"find":"a","with":"b"}}]}"#,
            &c,
        )
        .unwrap_err();
        assert_eq!(e.path, "steps[1].replace.files[0]");
        let e = plan(r#"{"steps":[{"exclude":["a"]},{"replce":{}}]}"#, &c).unwrap_err();
        assert_eq!(e.path, "steps[1]");
        assert!(e.message.contains("replace"), "{e}");
        let e = plan(r#"{"stepz":[]}"#, &c).unwrap_err();
        assert!(e.message.contains("stepz"), "{e}");
        let e = plan(r#"{"outputs":{"X":{"from":["Nope"]}}}"#, &c).unwrap_err();
        assert_eq!(e.path, "outputs.X.from[0]");
        let e = PlanSpec::parse(Some("input_parameter")).unwrap_err();
        assert_eq!(e.path, "(document)");
        let e = plan(
            r#"{"steps":[{"replace":{"files":["*"],"find":"","with":"b"}}]}"#,
            &c,
        )
        .unwrap_err();
        assert_eq!(e.path, "steps[0].replace.find");
    }

    #[test]
    fn globs_are_gitignore_like() {
        let p = plan(
            r#"{"steps":[{"exclude":["*.map","docs/**"]},{"include":["src/**","README.md"]}]}"#,
            &ctx(&["A"], &["X"]),
        )
        .unwrap();
        assert_eq!(p.decide("src/deep/x.js.map", false), Decision::Drop);
        assert_eq!(p.decide("docs/a.md", false), Decision::Drop);
        assert_eq!(p.decide("src/deep/x.js", false), Decision::Raw);
        assert_eq!(p.decide("README.md", false), Decision::Raw);
        assert_eq!(p.decide("other/README.md", false), Decision::Raw);
        assert_eq!(p.decide("other.txt", false), Decision::Drop);
        assert_eq!(p.decide("src/", true), Decision::Raw);
    }

    #[test]
    fn template_and_replace() {
        let p = plan(
            r#"{"variables":{"VERSION":"1.2.3"},"steps":[{"template":{"files":["*.json"]}},{"replace":{"files":["*.json"],"find":"aa","with":"b"}}]}"#,
            &ctx(&["A"], &["X"]),
        )
        .unwrap();
        let Decision::Transform(ops) = p.decide("x/p.json", false) else {
            panic!()
        };
        let out = p
            .apply(
                &ops,
                "x/p.json",
                br#"{"v":"${VERSION}","j":"${JOB_ID}","u":"${NOPE}","x":"aaa", "$":"${"}"#.to_vec(),
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"v":"1.2.3","j":"j-1","u":"${NOPE}","x":"ba", "$":"${"}"#
        );
        let p = plan(
            r#"{"on_unknown_variable":"fail","steps":[{"template":{"files":["*"]}}]}"#,
            &ctx(&["A"], &["X"]),
        )
        .unwrap();
        let e = p.apply(&[0], "f", b"${NOPE}".to_vec()).unwrap_err();
        assert!(e.to_string().contains("NOPE") && e.to_string().contains("\"f\""));
    }

    #[test]
    fn routing_defaults_and_errors() {
        assert_eq!(
            plan("{}", &ctx(&["A", "B"], &["X"])).unwrap().route(0),
            &[0, 1]
        );
        assert_eq!(
            plan("{}", &ctx(&["A", "B"], &["X", "Y"])).unwrap().route(1),
            &[1]
        );
        assert_eq!(
            plan("{}", &ctx(&["A", "B", "C"], &["X", "Y"]))
                .unwrap_err()
                .path,
            "outputs"
        );
        let p = plan(
            r#"{"outputs":{"X":{"from":["B","A"]},"Y":{"from":["C"]}}}"#,
            &ctx(&["A", "B", "C"], &["X", "Y"]),
        )
        .unwrap();
        assert_eq!(p.route(0), &[1, 0]);
    }
}
