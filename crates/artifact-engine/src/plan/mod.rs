//! The transform plan: `UserParameters` ([`spec`]) parsed ([`parse`]), validated and
//! compiled before any data moves ([`compile`]), then asked per entry what to do
//! ([`decide`]), laid out per output against the other entries ([`layout`]) and
//! applied to entry content on the transform pool ([`apply`]).
//!
//! Every error names the offending field (`steps[2].replace.files[0]: …`) and says
//! what is allowed. Steps run in order for each entry; an entry that no content step
//! touches, whose compression is unchanged, is copied raw (its compressed bytes are
//! never decompressed). Cross-entry work is planned from the central directories
//! (renames, conflicts) or gathered from per-entry results (exports, manifest), so
//! entries are still processed in parallel.
//!
//! This module holds the compiled types every stage shares; a new step is a spec type
//! ([`spec`]), one compile arm ([`compile`]), one decide or apply arm and its docs.

mod apply;
mod compile;
mod compile_edit;
mod compile_files;
mod compile_step;
pub mod custom;
mod decide;
mod entry_plan;
pub mod glob;
mod layout;
mod matched;
mod nested;
mod parse;
mod patch_files;
pub mod spec;
mod spec_steps;
mod step_doc;
pub mod stream;
pub mod structured;
pub mod template;
pub mod text;
mod verify;
mod when;

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::bytes::Regex as BytesRegex;
use regex::Regex;

pub use custom::{CustomStep, StepRegistry};
pub use decide::{EntryInfo, EntryKind, EntryPlan, Trace, Unzip};
use glob::Globs;
pub use layout::{
    layout_output, layout_output_entries, layout_output_kinds, OutputLayout, Planned,
};
pub use nested::InnerZip;
pub use parse::PlanFile;
pub use patch_files::PatchFile;
use spec::Format;
pub use spec::{
    CaseDuplicates, NamesSpec, OnConflict, OnUnknownVariable, OutputFormat, PlanSpec, Symlinks,
};

use crate::names::NameRules;

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

/// A compiled plan: cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Plan {
    outputs: Vec<OutputPlan>,
    name_rules: NameRules,
    limits: crate::limits::Limits,
    /// The plan file it was read from, which errors found later name.
    origin: Option<PlanFile>,
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
#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// Output artifact name.
    pub name: String,
    /// Inputs, in order.
    pub sources: Vec<Source>,
    /// Name clash rule.
    pub on_conflict: OnConflict,
    /// The archive written (`zip` or `tar.gz`).
    pub format: OutputFormat,
    /// A tar.gz output's gzip level.
    pub gzip_level: u32,
    /// Name rules for the output's entries (from UserParameters `names`).
    pub name_rules: NameRules,
    /// Raw copies are CRC- and size-checked (UserParameters `verify`).
    pub verify: bool,
    /// What happens to symbolic-link entries (from UserParameters `symlinks`).
    pub symlinks: Symlinks,
    steps: Vec<Step>,
    labels: Vec<String>,
    /// Each step's field path with its kind (`steps[2].template`), as errors name it.
    fields: Vec<String>,
    manifest: bool,
    /// Each step's compiled `when`, if it has one.
    conditions: Vec<Option<when::Condition>>,
    /// Whether each step applies (its `when` holds).
    active: Vec<bool>,
    /// Some `when` entry test is not resolved yet ([`Plan::resolve_conditions`]).
    pending: bool,
}

#[derive(Debug, Clone)]
enum Step {
    Select {
        include: bool,
        globs: Globs,
        inputs: Option<Vec<usize>>,
        /// Only entries of these types (any of them).
        types: Option<Vec<spec::EntryType>>,
        /// Only files whose size is within (min, max), inclusive.
        size: Option<(u64, u64)>,
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
        /// May match no entry (`"optional": true`).
        optional: bool,
    },
    Export {
        variable: String,
        file: String,
        how: ExportHow,
        default: Option<String>,
        /// The file may be absent (`"optional": true` or a `default`).
        optional: bool,
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
        mode: Option<u32>,
    },
    Copy {
        from: String,
        to: Vec<String>,
        /// `from` may be absent (`"optional": true`).
        optional: bool,
    },
    /// Matching entries become members of a new zip entry at `to`.
    Zip {
        globs: Globs,
        to: String,
        strip: Option<String>,
        /// May match no entry.
        optional: bool,
    },
    /// Matching zip entries are replaced by their members, under `to` (default: the
    /// entry's path without its extension, and `/`); `keep` keeps the entry too.
    Unzip {
        globs: Globs,
        to: Option<String>,
        keep: bool,
        /// May match no entry.
        optional: bool,
    },
    Manifest {
        path: String,
    },
}

#[derive(Clone)]
enum ContentOp {
    Literal {
        find: Vec<u8>,
        with: Vec<u8>,
    },
    Regex {
        re: BytesRegex,
        with: Vec<u8>,
    },
    Template(template::Templater),
    Normalize {
        line_endings: spec::LineEndings,
        strip_bom: bool,
    },
    Edit {
        edit: structured::Edit,
        format: Option<Format>,
        /// Where a `merge` patch is read from; the patch is in `edit` once
        /// [`Plan::provide_patch_files`] has read it.
        patch_file: Option<PatchFile>,
    },
    Custom(Arc<dyn CustomStep>),
}

impl std::fmt::Debug for ContentOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContentOp::Literal { .. } => "Literal",
            ContentOp::Regex { .. } => "Regex",
            ContentOp::Template(_) => "Template",
            ContentOp::Normalize { .. } => "Normalize",
            ContentOp::Edit { .. } => "Edit",
            ContentOp::Custom(_) => "Custom",
        })
    }
}

#[derive(Debug, Clone)]
enum ExportHow {
    Pointer(Vec<String>, Option<Format>),
    Regex(Regex),
    Whole,
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
        /// Unix permissions the step asks for (else `pack`'s, else 0644).
        mode: Option<u32>,
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

impl Plan {
    /// Records that the plan came from `file`: errors found from here on name it.
    pub fn set_origin(&mut self, file: PlanFile) {
        self.origin = Some(file);
    }

    /// The plan file the plan was read from, if any.
    pub fn origin(&self) -> Option<&PlanFile> {
        self.origin.as_ref()
    }

    /// `e`, naming the plan file when the plan came from one.
    pub fn in_origin(&self, e: PlanError) -> PlanError {
        match &self.origin {
            Some(file) => perr(format!("{file} {}", e.path), e.message),
            None => e,
        }
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

impl OutputPlan {
    /// The label of step `i` (`steps[2] (template)`), as errors name it.
    pub fn step_label(&self, i: usize) -> &str {
        &self.labels[i]
    }

    /// How many steps the output has (indexes for [`Self::step_label`]).
    pub fn step_count(&self) -> usize {
        self.steps.len()
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
            .filter(|(i, _)| self.step_active(*i))
            .filter_map(|(i, s)| match s {
                Step::Add { path, data, mode } => Some((
                    i,
                    Extra::Add {
                        path,
                        data,
                        mode: *mode,
                    },
                )),
                Step::Manifest { path } => Some((i, Extra::Manifest { path })),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
