//! `UserParameters` as pipeline authors write them: the serde and JSON Schema types.
//! Every struct denies unknown fields; every field is documented (the docs become the
//! schema's descriptions, shown by editors).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

pub use super::spec_steps::*;
pub use super::step_doc::StepDoc;

/// The transform plan: variables, steps for every output, and per-output routing.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// The JSON Schema the document follows, for editors (e.g.
    /// `"./artifact-plan.schema.json"`, a copy of `docs/user-parameters.schema.json`
    /// kept next to a plan file). The worker ignores it.
    #[serde(default, rename = "$schema")]
    pub schema: Option<String>,
    /// The plan lives in an input artifact, versioned with the code:
    /// `"SourceArtifact::ci/artifact-plan.yml"` (input name, `::`, entry path; JSON or
    /// YAML). It is read and validated before any other data moves. Beside it,
    /// `UserParameters` may only give `variables`, which override the file's.
    #[serde(default)]
    pub plan_file: Option<String>,
    /// Values for `${NAME}` in `template` steps, `set` values and `add` text.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// What `${NAME}` does when `NAME` is not defined, in `template` steps (unless a
    /// step says `missing`), `set` values and `add` text: `fail` the job (default) or
    /// `keep` it as written.
    #[serde(default)]
    pub on_unknown_variable: Option<OnUnknownVariable>,
    /// Steps applied, in order, to the entries of every output (before the output's own steps).
    #[serde(default)]
    pub steps: Vec<StepDoc>,
    /// Outputs by artifact name: which inputs feed each one and its own steps.
    /// Required when the job has more than one input or output (routes never follow
    /// the order of artifacts in the event); optional with one input and one output.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputSpec>,
    /// Rules for entry names, in the inputs and in the outputs.
    #[serde(default)]
    pub names: NamesSpec,
    /// Check the CRC-32 and size of every entry copied unchanged, inflating it on
    /// the way through (default `true`; entries that are transformed are always
    /// checked). `false` copies raw entries without reading them.
    #[serde(default = "yes")]
    pub verify: bool,
    /// Zip-bomb limits for every input, checked before data moves.
    #[serde(default)]
    pub limits: crate::limits::Limits,
    /// Symbolic-link entries (Unix mode `S_IFLNK`; their data is the link target):
    /// `keep` (default) those whose target, resolved from the link's output path, stays
    /// inside the artifact (others fail the job), `drop` them all, or `fail` on any.
    /// Content steps, `export` and recompression never apply to links.
    #[serde(default)]
    pub symlinks: Symlinks,
}

pub(super) fn yes() -> bool {
    true
}

impl Default for PlanSpec {
    /// The empty plan (what blank UserParameters mean): copy everything, verified.
    fn default() -> Self {
        PlanSpec {
            schema: None,
            plan_file: None,
            variables: BTreeMap::new(),
            on_unknown_variable: None,
            steps: Vec::new(),
            outputs: BTreeMap::new(),
            names: NamesSpec::default(),
            verify: true,
            limits: crate::limits::Limits::default(),
            symlinks: Symlinks::default(),
        }
    }
}

/// What happens to symbolic-link entries.
#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Symlinks {
    /// Keep links whose target is relative and stays inside the artifact (checked from
    /// the link's final output path); fail the job on any other link, naming it and
    /// its target.
    #[default]
    Keep,
    /// Leave every link out of the outputs (counted as dropped).
    Drop,
    /// Fail the job on any link that would be written to an output (after `include` /
    /// `exclude`), before any data moves.
    Fail,
}

/// Entry-name rules beyond the fixed safety checks (no `..`, `\`, control
/// characters, absolute paths...), which always apply.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamesSpec {
    /// Names differing only in letter case (`README.md`, `readme.md`), which overwrite
    /// each other when extracted on Windows or macOS: `error` (default) or `allow`.
    #[serde(default)]
    pub case_duplicates: CaseDuplicates,
}

/// Names that differ only in letter case.
#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CaseDuplicates {
    /// Fail the job, naming both entries.
    #[default]
    Error,
    /// Accept them.
    Allow,
}

/// Undefined template variables.
#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnUnknownVariable {
    /// Leave `${NAME}` untouched.
    Keep,
    /// Fail the job with a ConfigurationError naming the entry and variable.
    #[default]
    Fail,
}

/// What a `template` step does with a placeholder whose variable is not defined.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Fail the job, naming the entry, the step and the variable.
    Error,
    /// Leave the placeholder as written.
    Keep,
    /// Replace it with nothing.
    Empty,
}

/// One output artifact.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Inputs merged into this output, in order: an input artifact name, or
    /// `{"input": NAME, "prefix": "dir/"}` to place that input's entries under a prefix.
    pub from: Vec<SourceSpec>,
    /// Steps for this output only, after the top-level steps.
    #[serde(default)]
    pub steps: Vec<StepDoc>,
    /// Two entries with the same output path: `error` (default), keep the `first`, or the `last`.
    #[serde(default)]
    pub on_conflict: OnConflict,
    /// The archive written: `zip` (default) or `tar.gz` (a gzip-compressed POSIX tar,
    /// for consumers that want one). A `tar.gz` output holds every entry's content
    /// uncompressed inside one gzip stream (`pack` compression has no effect there;
    /// times, permissions and links are kept); it takes no `zip` steps.
    #[serde(default)]
    pub format: OutputFormat,
    /// A tar.gz output's gzip level: 1 (fastest) to 9 (smallest), default 6; 0 stores
    /// (gzip framing, no compression). One stream is compressed on one core: on
    /// incompressible content (binaries, images, archives) level 1 is ~1.75x faster
    /// than 6, and 0 costs little more than a copy.
    #[serde(default)]
    pub gzip_level: Option<u32>,
}

/// The archive format of an output.
#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum OutputFormat {
    /// A zip archive.
    #[default]
    #[serde(rename = "zip")]
    Zip,
    /// A POSIX (pax) tar archive compressed with gzip.
    #[serde(rename = "tar.gz")]
    TarGz,
}

/// An input feeding an output.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum SourceSpec {
    /// Just the input artifact name.
    Name(String),
    /// The input with options.
    Full(SourceOptions),
}

/// An input with options.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// Input artifact name.
    pub input: String,
    /// Path prefix put in front of every entry of this input (e.g. `"app/"`).
    #[serde(default)]
    pub prefix: String,
}

/// Name clashes in an output.
#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Fail the job, naming the path and both sources.
    #[default]
    Error,
    /// Keep the entry that comes first (route order, then archive order).
    First,
    /// Keep the entry that comes last.
    Last,
}

/// One step. Written as a single-key object: `{"exclude": ["*.map"]}`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    /// Keep only matching entries (others are dropped).
    Include(Selector),
    /// Drop matching entries.
    Exclude(Selector),
    /// Rename entries: strip or add a prefix, regex rename, flatten.
    Move(MoveSpec),
    /// Replace a literal string or a regex in matching files.
    Replace(ReplaceSpec),
    /// Substitute `${NAME}` (with filters `|json`, `|yaml`, `|url`, `|sh`) in matching files.
    Template(TemplateSpec),
    /// Set a value inside JSON or YAML files by JSON pointer, keeping the rest of the text as is.
    Set(SetSpec),
    /// Remove a key or list item from JSON or YAML files.
    Delete(DeleteSpec),
    /// Append items to a list in JSON or YAML files.
    Append(AppendSpec),
    /// Apply a JSON Merge Patch (RFC 7396), inline or from an entry, to JSON or YAML files.
    Merge(MergeSpec),
    /// Add a file with inline content.
    Add(AddSpec),
    /// Copy an entry to one or more new paths.
    Copy(CopySpec),
    /// Pack matching entries into a new zip entry (a nested archive).
    Zip(ZipSpec),
    /// Unpack matching zip entries into the tree (their members go through the later steps).
    Unzip(UnzipSpec),
    /// Add a JSON manifest listing every entry written before it (path, size, sha256).
    Manifest(ManifestSpec),
    /// Publish a value read from an entry as a CodePipeline output variable.
    Export(ExportSpec),
    /// Compression, timestamps and permissions of matching entries.
    Pack(PackSpec),
    /// Line endings (LF or CRLF) and the UTF-8 byte-order mark of matching text files.
    Normalize(NormalizeSpec),
    /// A step registered by the Lambda binary (Rust `CustomStep`).
    Custom(CustomSpec),
}

/// When a step applies. Every test given must hold: a variable test (`variable` with
/// one of `equals`, `not_equals`, `in`, `matches`), evaluated when the plan is
/// compiled, and/or an entry test (`exists`, `not_exists`) over the entries of the
/// inputs feeding the output, as the inputs name them, evaluated before data moves.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    /// A variable from `variables` or the built-ins (`CODEPIPELINE_JOB_ID`, ...);
    /// CodePipeline fills `#{Namespace.Name}` in `variables` before the job starts.
    #[serde(default)]
    pub variable: Option<String>,
    /// The variable's value is exactly this.
    #[serde(default)]
    pub equals: Option<String>,
    /// The variable's value is not this.
    #[serde(default)]
    pub not_equals: Option<String>,
    /// The variable's value is one of these.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<String>>,
    /// The variable's value matches this regex (anchor it with `^...$` for a whole match).
    #[serde(default)]
    pub matches: Option<String>,
    /// Some input entry matches this glob.
    #[serde(default)]
    pub exists: Option<String>,
    /// No input entry matches this glob.
    #[serde(default)]
    pub not_exists: Option<String>,
}

/// The JSON Schema of `UserParameters`, pretty-printed.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(PlanSpec);
    serde_json::to_string_pretty(&schema).expect("schema serialises") + "\n"
}
