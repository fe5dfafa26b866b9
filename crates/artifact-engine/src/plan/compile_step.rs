//! Compiling one step of a [`super::PlanSpec`] into a [`Step`]: every field validated
//! (globs, regexes and their group references, pointers, paths, modes, times, output
//! variable names) with errors naming the field (`steps[2].set.pointer`). One
//! function per step kind; [`compile_step`] dispatches.

use std::collections::BTreeMap;

use regex::bytes::Regex as BytesRegex;
use regex::Regex;

use super::glob::Globs;
use super::spec::{self, Compression, Missing, Selector, StepSpec};
use super::template::{check_delimiters, Templater};
use super::{compile_edit, compile_files};
use super::{
    perr, structured, text, ContentOp, ExportHow, JobContext, PlanError, Step, StepRegistry,
};
use crate::zip::read::{validate_name, METHOD_DEFLATED, METHOD_STORED};

/// What every step's compilation may need besides its own spec.
#[derive(Clone, Copy)]
pub(super) struct StepEnv<'a> {
    pub ctx: &'a JobContext,
    /// Variables for `${NAME}` in values compiled now (`set.value`, `add.text`).
    pub vars: &'a BTreeMap<String, String>,
    /// Unknown variables are an error (else kept as written).
    pub strict: bool,
    pub registry: &'a StepRegistry,
}

pub(super) fn compile_globs(path: &str, globs: &[String]) -> Result<Globs, PlanError> {
    if globs.is_empty() {
        return Err(perr(path, "needs at least one glob"));
    }
    Globs::new(globs).map_err(|(i, m)| perr(format!("{path}[{i}]"), m))
}

pub(super) fn parse_mode(path: &str, s: &str) -> Result<u32, PlanError> {
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

/// `s` (a `set` value or `add` text, at field `path`) with its placeholders filled.
pub(super) fn template_str(
    s: &str,
    vars: &BTreeMap<String, String>,
    strict: bool,
    path: &str,
) -> Result<String, PlanError> {
    let missing = if strict {
        Missing::Error
    } else {
        Missing::Keep
    };
    let out = Templater::new(vars.clone(), missing)
        .apply(s.as_bytes().to_vec(), usize::MAX)
        .map_err(|e| perr(path, e.message()))?;
    Ok(String::from_utf8(out).expect("UTF-8 in, UTF-8 out"))
}

/// A `template` step: its syntax, and what an undefined variable does (the step's
/// `missing`, else the plan's `on_unknown_variable`, else an error).
fn compile_template(
    at: &str,
    t: &spec::TemplateSpec,
    env: &StepEnv<'_>,
) -> Result<Step, PlanError> {
    let missing = t.missing.unwrap_or(if env.strict {
        Missing::Error
    } else {
        Missing::Keep
    });
    let mut templater = Templater::new(env.vars.clone(), missing);
    if let Some([open, close]) = &t.delimiters {
        check_delimiters(open, close).map_err(|m| perr(format!("{at}.template.delimiters"), m))?;
        templater = templater.with_delimiters(open, close);
    }
    Ok(Step::Content {
        globs: compile_globs(&format!("{at}.template.files"), &t.files)?,
        op: ContentOp::Template(templater),
        optional: t.optional,
    })
}

/// The step's kind, as labels name it (`steps[2] (template)`).
pub(super) fn step_kind(s: &StepSpec) -> &'static str {
    match s {
        StepSpec::Include(_) => "include",
        StepSpec::Exclude(_) => "exclude",
        StepSpec::Move(_) => "move",
        StepSpec::Replace(_) => "replace",
        StepSpec::Template(_) => "template",
        StepSpec::Set(_) => "set",
        StepSpec::Delete(_) => "delete",
        StepSpec::Append(_) => "append",
        StepSpec::Merge(_) => "merge",
        StepSpec::Add(_) => "add",
        StepSpec::Copy(_) => "copy",
        StepSpec::Zip(_) => "zip",
        StepSpec::Unzip(_) => "unzip",
        StepSpec::Manifest(_) => "manifest",
        StepSpec::Export(_) => "export",
        StepSpec::Pack(_) => "pack",
        StepSpec::Normalize(_) => "normalize",
        StepSpec::Custom(_) => "custom",
    }
}

/// Compiles step `s`, found at field path `at` (`steps[3]`, `outputs.X.steps[0]`).
pub(super) fn compile_step(at: &str, s: &StepSpec, env: &StepEnv<'_>) -> Result<Step, PlanError> {
    match s {
        StepSpec::Include(sel) => compile_select(at, "include", sel, env.ctx),
        StepSpec::Exclude(sel) => compile_select(at, "exclude", sel, env.ctx),
        StepSpec::Move(m) => compile_move(at, m),
        StepSpec::Replace(r) => compile_replace(at, r),
        StepSpec::Template(t) => compile_template(at, t, env),
        StepSpec::Set(st) => compile_edit::set(at, st, env),
        StepSpec::Delete(d) => compile_edit::delete(at, d),
        StepSpec::Append(a) => compile_edit::append(at, a, env),
        StepSpec::Merge(m) => compile_edit::merge(at, m, env),
        StepSpec::Add(a) => compile_files::add(at, a, env),
        StepSpec::Copy(c) => compile_files::copy(at, c, env),
        StepSpec::Zip(z) => compile_files::zip(at, z, env),
        StepSpec::Unzip(u) => compile_files::unzip(at, u, env),
        StepSpec::Manifest(m) => compile_files::manifest(at, m),
        StepSpec::Export(e) => compile_export(at, e),
        StepSpec::Pack(p) => compile_pack(at, p),
        StepSpec::Normalize(n) => Ok(Step::Content {
            globs: compile_globs(&format!("{at}.normalize.files"), &n.files)?,
            op: ContentOp::Normalize {
                line_endings: n.line_endings,
                strip_bom: n.strip_bom,
            },
            optional: n.optional,
        }),
        StepSpec::Custom(c) => compile_custom(at, c, env.registry),
    }
}

/// `include` / `exclude` (`key`), optionally for some inputs only, or by type and size.
fn compile_select(
    at: &str,
    key: &str,
    sel: &Selector,
    ctx: &JobContext,
) -> Result<Step, PlanError> {
    let every = vec!["**".to_string()];
    let (files, opts, files_at) = match sel {
        Selector::Files(g) => (g, None, format!("{at}.{key}")),
        Selector::Full(o) => (
            o.files.as_ref().unwrap_or(&every),
            Some(o),
            format!("{at}.{key}.files"),
        ),
    };
    if opts.is_some_and(|o| o.files.is_none() && o.types.is_none() && o.size.is_none()) {
        return Err(perr(
            format!("{at}.{key}"),
            "selects by nothing: give `files`, `type` or `size`",
        ));
    }
    let globs = compile_globs(&files_at, files)?;
    let inputs = match opts.map(|o| &o.inputs[..]).unwrap_or_default() {
        [] => None,
        names => Some(select_inputs(&format!("{at}.{key}"), names, ctx)?),
    };
    let types = opts.and_then(|o| o.types.clone()).map(|t| match t {
        spec::OneOrMany::One(t) => vec![t],
        spec::OneOrMany::Many(v) => v,
    });
    let size = match opts.and_then(|o| o.size) {
        None => None,
        Some(r) => {
            let (min, max) = (r.min.unwrap_or(0), r.max.unwrap_or(u64::MAX));
            if min > max || (r.min.is_none() && r.max.is_none()) {
                return Err(perr(
                    format!("{at}.{key}.size"),
                    "give `min` and/or `max` (bytes), with min <= max",
                ));
            }
            Some((min, max))
        }
    };
    Ok(Step::Select {
        include: key == "include",
        globs,
        inputs,
        types,
        size,
    })
}

/// The job's indexes of input artifacts `names` (field `at.inputs`).
fn select_inputs(at: &str, names: &[String], ctx: &JobContext) -> Result<Vec<usize>, PlanError> {
    names
        .iter()
        .enumerate()
        .map(|(j, n)| {
            ctx.inputs.iter().position(|x| x == n).ok_or_else(|| {
                perr(
                    format!("{at}.inputs[{j}]"),
                    format!(
                        "no input artifact named {n:?}; the job has {:?}",
                        ctx.inputs
                    ),
                )
            })
        })
        .collect()
}

fn compile_export(at: &str, e: &spec::ExportSpec) -> Result<Step, PlanError> {
    let f = |k: &str| format!("{at}.export.{k}");
    if !valid_variable(&e.variable) {
        return Err(perr(
            f("variable"),
            "output variable names match [A-Za-z0-9@_-]+",
        ));
    }
    validate_name(&e.file).map_err(|w| perr(f("file"), w))?;
    let how = match (&e.pointer, &e.regex) {
        (Some(p), None) => ExportHow::Pointer(
            structured::parse_pointer(p).map_err(|m| perr(f("pointer"), m))?,
            e.format,
        ),
        (None, Some(r)) => ExportHow::Regex(
            Regex::new(r).map_err(|er| perr(f("regex"), format!("invalid regex: {er}")))?,
        ),
        (None, None) => ExportHow::Whole,
        _ => {
            return Err(perr(
                format!("{at}.export"),
                "give at most one of `pointer` and `regex`",
            ))
        }
    };
    if matches!(how, ExportHow::Pointer(..))
        && e.format.is_none()
        && structured::format_of(&e.file, None).is_none()
    {
        return Err(perr(
            f("format"),
            format!(
                "cannot tell the format of {:?}: set \"format\": \"json\" or \"yaml\"",
                e.file
            ),
        ));
    }
    Ok(Step::Export {
        variable: e.variable.clone(),
        file: e.file.clone(),
        how,
        default: e.default.clone(),
        optional: e.optional || e.default.is_some(),
    })
}

fn compile_pack(at: &str, p: &spec::PackSpec) -> Result<Step, PlanError> {
    let f = |k: &str| format!("{at}.pack.{k}");
    if let Some(l) = p.level {
        if l > 9 {
            return Err(perr(f("level"), "deflate levels are 0 to 9"));
        }
        if p.compression == Some(Compression::Store) {
            return Err(perr(f("level"), "a level only applies to deflate"));
        }
    }
    let mode = |field: &str, m: &Option<String>| {
        m.as_deref().map(|m| parse_mode(&f(field), m)).transpose()
    };
    Ok(Step::Pack {
        globs: p
            .files
            .as_ref()
            .map(|g| compile_globs(&f("files"), g))
            .transpose()?,
        compression: p.compression.map(|c| match c {
            Compression::Store => METHOD_STORED,
            Compression::Deflate => METHOD_DEFLATED,
        }),
        level: p.level,
        mtime: p
            .mtime
            .as_deref()
            .map(|m| parse_mtime(&f("mtime"), m))
            .transpose()?,
        file_mode: mode("file_mode", &p.file_mode)?,
        dir_mode: mode("dir_mode", &p.dir_mode)?,
    })
}

fn compile_custom(
    at: &str,
    c: &spec::CustomSpec,
    registry: &StepRegistry,
) -> Result<Step, PlanError> {
    let globs = compile_globs(&format!("{at}.custom.files"), &c.files)?;
    let step = match registry.build(&c.name, &c.options) {
        None => {
            return Err(perr(
                format!("{at}.custom.name"),
                format!(
                    "no custom step named {:?}; this function registers {:?}",
                    c.name,
                    registry.names()
                ),
            ))
        }
        Some(Err(m)) => return Err(perr(format!("{at}.custom.options"), m)),
        Some(Ok(s)) => s,
    };
    Ok(Step::Content {
        globs,
        op: ContentOp::Custom(step),
        optional: true,
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
    Ok(Step::Content {
        globs,
        op,
        optional: r.optional,
    })
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
