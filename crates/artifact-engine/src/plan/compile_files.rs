//! Compiling the steps that write files of their own: `add`, `manifest`, `copy`,
//! `zip` and `unzip` — their paths validated (valid entry names, files not directories),
//! templated where the spec says so, with errors naming the field.

use super::compile_step::{compile_globs, parse_mode, template_str, StepEnv};
use super::spec;
use super::{perr, PlanError, Step};
use crate::zip::read::validate_name;

/// A file path written by `add` or `manifest` (field `at`): a valid name, not a directory.
fn added_file_path(at: &str, path: &str) -> Result<String, PlanError> {
    validate_name(path).map_err(|w| perr(at, w))?;
    if path.ends_with('/') {
        return Err(perr(at, "must be a file path, not a directory"));
    }
    Ok(path.to_string())
}

pub(super) fn add(at: &str, a: &spec::AddSpec, env: &StepEnv<'_>) -> Result<Step, PlanError> {
    let path = added_file_path(&format!("{at}.add.path"), &a.path)?;
    let data = match (&a.text, &a.base64) {
        (Some(t), None) => {
            template_str(t, env.vars, env.strict, &format!("{at}.add.text"))?.into_bytes()
        }
        (None, Some(b)) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| perr(format!("{at}.add.base64"), format!("invalid base64: {e}")))?
        }
        _ => {
            return Err(perr(
                format!("{at}.add"),
                "give exactly one of `text` and `base64`",
            ))
        }
    };
    let mode = a
        .mode
        .as_deref()
        .map(|m| parse_mode(&format!("{at}.add.mode"), m))
        .transpose()?;
    Ok(Step::Add { path, data, mode })
}

pub(super) fn copy(at: &str, c: &spec::CopySpec, env: &StepEnv<'_>) -> Result<Step, PlanError> {
    let fill = |s: &str, field: &str| template_str(s, env.vars, env.strict, field);
    let from = &fill(&c.from, &format!("{at}.copy.from"))?;
    validate_name(from).map_err(|w| perr(format!("{at}.copy.from"), w))?;
    if from.ends_with('/') {
        return Err(perr(
            format!("{at}.copy.from"),
            "must be a file path, not a directory",
        ));
    }
    let to = match &c.to {
        spec::OneOrMany::One(t) => vec![fill(t, &format!("{at}.copy.to"))?],
        spec::OneOrMany::Many(v) if !v.is_empty() => v
            .iter()
            .enumerate()
            .map(|(i, t)| fill(t, &format!("{at}.copy.to[{i}]")))
            .collect::<Result<_, _>>()?,
        spec::OneOrMany::Many(_) => {
            return Err(perr(format!("{at}.copy.to"), "needs at least one path"))
        }
    };
    for (i, t) in to.iter().enumerate() {
        let field = match c.to {
            spec::OneOrMany::One(_) => format!("{at}.copy.to"),
            spec::OneOrMany::Many(_) => format!("{at}.copy.to[{i}]"),
        };
        added_file_path(&field, t)?;
        if t == from || to[..i].contains(t) {
            return Err(perr(field, format!("{t:?} is already a path of this copy")));
        }
    }
    Ok(Step::Copy {
        from: from.clone(),
        to,
        optional: c.optional,
    })
}

pub(super) fn zip(at: &str, z: &spec::ZipSpec, env: &StepEnv<'_>) -> Result<Step, PlanError> {
    let to_at = format!("{at}.zip.to");
    let to = added_file_path(&to_at, &template_str(&z.to, env.vars, env.strict, &to_at)?)?;
    let strip = match &z.strip_prefix {
        Some(p) if p.is_empty() || p.starts_with('/') => {
            return Err(perr(
                format!("{at}.zip.strip_prefix"),
                "must be a relative path prefix such as \"services/api/\"",
            ))
        }
        p => p.clone(),
    };
    Ok(Step::Zip {
        globs: compile_globs(&format!("{at}.zip.files"), &z.files)?,
        to,
        strip,
        optional: z.optional,
    })
}

pub(super) fn unzip(at: &str, u: &spec::UnzipSpec, env: &StepEnv<'_>) -> Result<Step, PlanError> {
    let to = match &u.to {
        None => None,
        Some(t) => {
            let to_at = format!("{at}.unzip.to");
            let mut dir = template_str(t, env.vars, env.strict, &to_at)?;
            if !dir.is_empty() {
                if !dir.ends_with('/') {
                    dir.push('/');
                }
                validate_name(&dir).map_err(|why| {
                    perr(
                        &to_at,
                        format!("{dir:?} is not a valid directory path: {why}"),
                    )
                })?;
            }
            Some(dir)
        }
    };
    Ok(Step::Unzip {
        globs: compile_globs(&format!("{at}.unzip.files"), &u.files)?,
        to,
        keep: u.keep,
        optional: u.optional,
    })
}

pub(super) fn manifest(at: &str, m: &spec::ManifestSpec) -> Result<Step, PlanError> {
    Ok(Step::Manifest {
        path: added_file_path(&format!("{at}.manifest.path"), &m.path)?,
    })
}
