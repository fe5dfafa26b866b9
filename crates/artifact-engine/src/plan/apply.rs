//! Applying an entry's content and export steps to its bytes (on the transform pool),
//! and the exports whose file never came.
//!
//! Invariant: a step's output never exceeds [`text::output_limit`] of the entry's
//! input size; going past it is [`TransformErrorKind::OutputTooLarge`], not an
//! allocation.

use super::template::TemplateError;
use super::{
    structured, text, ContentOp, Export, ExportHow, OutputPlan, Step, TransformError,
    TransformErrorKind,
};

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
            ContentOp::Template(t) => t.apply(data, limit).map_err(|e| match e {
                TemplateError::TooLarge => StepFailure::TooLarge,
                e => StepFailure::Message(e.message()),
            })?,
            ContentOp::Edit {
                edit,
                format,
                patch_file,
            } => {
                if let Some(f) = patch_file.as_ref().filter(|f| !f.read) {
                    return Err(StepFailure::Message(format!(
                        "patch file {:?} was not read before data moved",
                        f.path
                    )));
                }
                let Some(fmt) = structured::format_of(name, *format) else {
                    return Err(StepFailure::Message(
                        "not a .json/.yml/.yaml file: set \"format\"".into(),
                    ));
                };
                let text = String::from_utf8(data)
                    .map_err(|_| StepFailure::Message("not UTF-8 text".into()))?;
                structured::edit(&text, fmt, edit)
                    .map_err(StepFailure::Message)?
                    .into_bytes()
            }
            ContentOp::Normalize {
                line_endings,
                strip_bom,
            } => text::normalize(data, *line_endings, *strip_bom).map_err(StepFailure::Message)?,
            ContentOp::Custom(step) => step.apply(name, data).map_err(StepFailure::Message)?,
        };
        if out.len() > limit {
            return Err(StepFailure::TooLarge);
        }
        Ok(out)
    }

    /// Exports whose file was not in the output: their defaults, or an error naming
    /// the step. `found` lists the variables already exported.
    pub fn missing_exports(&self, found: &[Export]) -> Result<Vec<Export>, TransformError> {
        let mut out = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            if !self.step_active(i) {
                continue;
            }
            if let Step::Export {
                variable,
                file,
                default,
                optional,
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
                    None if *optional => {}
                    None => {
                        return Err(TransformError {
                            kind: TransformErrorKind::Step,
                            entry: file.clone(),
                            step: self.labels[i].clone(),
                            message: format!(
                            "no such file in output {:?} (give a \"default\" or set \"optional\": true)",
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
