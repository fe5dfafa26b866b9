//! Compiling the structured-edit steps (`set`, `delete`, `append`, `merge`) into
//! [`ContentOp::Edit`]: pointers parsed, values templated, the format known for every
//! file the step can match (or forced), and a `patch_file` split into its input and
//! path (read before data moves: [`super::Plan::patch_files`]).

use serde_json::Value;

use super::compile_step::{compile_globs, template_str, StepEnv};
use super::spec::{self, Format};
use super::structured::{self, Edit};
use super::{perr, ContentOp, PatchFile, PlanError, Step};
use crate::zip::read::validate_name;

/// `v` with every string in it (keys excepted) templated; `at` is its field path.
fn template_value(v: &Value, env: &StepEnv<'_>, at: &str) -> Result<Value, PlanError> {
    Ok(match v {
        Value::String(s) => Value::String(template_str(s, env.vars, env.strict, at)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| template_value(x, env, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), template_value(x, env, &format!("{at}.{k}"))?)))
                .collect::<Result<_, PlanError>>()?,
        ),
        other => other.clone(),
    })
}

fn pointer(at: &str, p: &str, inside: bool) -> Result<Vec<String>, PlanError> {
    let tokens = structured::parse_pointer(p).map_err(|m| perr(at, m))?;
    if inside && tokens.is_empty() {
        return Err(perr(
            at,
            "must point inside the document (e.g. /Parameters/ImageTag)",
        ));
    }
    Ok(tokens)
}

fn edit_step(
    at: &str,
    kind: &str,
    files: &[String],
    format: Option<Format>,
    edit: Edit,
    patch_file: Option<PatchFile>,
    optional: bool,
) -> Result<Step, PlanError> {
    Ok(Step::Content {
        globs: compile_globs(&format!("{at}.{kind}.files"), files)?,
        op: ContentOp::Edit {
            edit,
            format,
            patch_file,
        },
        optional,
    })
}

/// `set`.
pub(super) fn set(at: &str, st: &spec::SetSpec, env: &StepEnv<'_>) -> Result<Step, PlanError> {
    let f = |k: &str| format!("{at}.set.{k}");
    let edit = Edit::Set {
        pointer: pointer(&f("pointer"), &st.pointer, true)?,
        value: template_value(&st.value, env, &f("value"))?,
        create: st.create,
    };
    edit_step(at, "set", &st.files, st.format, edit, None, st.optional)
}

/// `delete`.
pub(super) fn delete(at: &str, d: &spec::DeleteSpec) -> Result<Step, PlanError> {
    let edit = Edit::Delete {
        pointer: pointer(&format!("{at}.delete.pointer"), &d.pointer, true)?,
    };
    edit_step(at, "delete", &d.files, d.format, edit, None, d.optional)
}

/// `append`.
pub(super) fn append(at: &str, a: &spec::AppendSpec, env: &StepEnv<'_>) -> Result<Step, PlanError> {
    let f = |k: &str| format!("{at}.append.{k}");
    let values = match (&a.value, &a.values) {
        (Some(v), None) => vec![template_value(v, env, &f("value"))?],
        (None, Some(vs)) if !vs.is_empty() => vs
            .iter()
            .enumerate()
            .map(|(i, v)| template_value(v, env, &format!("{}[{i}]", f("values"))))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(perr(
                format!("{at}.append"),
                "give exactly one of `value` and `values` (a non-empty list)",
            ))
        }
    };
    let edit = Edit::Append {
        pointer: pointer(&f("pointer"), &a.pointer, false)?,
        values,
    };
    edit_step(at, "append", &a.files, a.format, edit, None, a.optional)
}

/// `merge`: an inline patch now, or a `patch_file` to read before data moves.
pub(super) fn merge(at: &str, m: &spec::MergeSpec, env: &StepEnv<'_>) -> Result<Step, PlanError> {
    let f = |k: &str| format!("{at}.merge.{k}");
    let at_pointer = match &m.pointer {
        Some(p) => pointer(&f("pointer"), p, false)?,
        None => Vec::new(),
    };
    let (patch, file) = match (&m.patch, &m.patch_file) {
        (Some(p), None) => (template_value(p, env, &f("patch"))?, None),
        (None, Some(file)) => {
            let file = template_str(file, env.vars, env.strict, &f("patch_file"))?;
            (Value::Null, Some(patch_file(&f("patch_file"), &file, env)?))
        }
        _ => {
            return Err(perr(
                format!("{at}.merge"),
                "give exactly one of `patch` and `patch_file`",
            ))
        }
    };
    let edit = Edit::Merge {
        pointer: at_pointer,
        patch,
    };
    edit_step(at, "merge", &m.files, m.format, edit, file, m.optional)
}

/// `"path"` or `"Input::path"` (field `at`): a valid entry name of a JSON or YAML file,
/// in an input of the job.
fn patch_file(at: &str, s: &str, env: &StepEnv<'_>) -> Result<PatchFile, PlanError> {
    let (input, path) = match s.split_once("::") {
        Some((input, path)) => {
            let i = env
                .ctx
                .inputs
                .iter()
                .position(|n| n == input)
                .ok_or_else(|| {
                    perr(
                        at,
                        format!(
                            "no input artifact named {input:?}; the job has {:?}",
                            env.ctx.inputs
                        ),
                    )
                })?;
            (Some(i), path)
        }
        None => (None, s),
    };
    validate_name(path).map_err(|w| perr(at, w))?;
    if structured::format_of(path, None).is_none() {
        return Err(perr(
            at,
            format!("{path:?} is not a .json, .yml or .yaml file"),
        ));
    }
    Ok(PatchFile {
        at: at.to_string(),
        input,
        path: path.to_string(),
        read: false,
    })
}
