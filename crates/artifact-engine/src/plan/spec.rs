//! `UserParameters` as pipeline authors write them: the serde and JSON Schema types.
//! Every struct denies unknown fields; every field is documented (the docs become the
//! schema's descriptions, shown by editors).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// The transform plan: variables, steps for every output, and per-output routing.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// Values for `${NAME}` in `template` steps, `set` values and `add` text.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// What `${NAME}` does when `NAME` is not defined: `keep` it as is (default) or `fail` the job.
    #[serde(default)]
    pub on_unknown_variable: OnUnknownVariable,
    /// Steps applied, in order, to the entries of every output (before the output's own steps).
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// Outputs by artifact name: which inputs feed each one and its own steps.
    /// Without it: one input feeds every output; N inputs feed N outputs pairwise;
    /// several inputs merge into a single output.
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

fn yes() -> bool {
    true
}

impl Default for PlanSpec {
    /// The empty plan (what blank UserParameters mean): copy everything, verified.
    fn default() -> Self {
        PlanSpec {
            variables: BTreeMap::new(),
            on_unknown_variable: OnUnknownVariable::default(),
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
    #[default]
    Keep,
    /// Fail the job with a ConfigurationError naming the entry and variable.
    Fail,
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
    pub steps: Vec<StepSpec>,
    /// Two entries with the same output path: `error` (default), keep the `first`, or the `last`.
    #[serde(default)]
    pub on_conflict: OnConflict,
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
    /// Substitute `${NAME}` in matching files.
    Template(FilesSpec),
    /// Set a value inside JSON or YAML files by JSON pointer, keeping the rest of the text as is.
    Set(SetSpec),
    /// Add a file with inline content.
    Add(AddSpec),
    /// Add a JSON manifest listing every entry written before it (path, size, sha256).
    Manifest(ManifestSpec),
    /// Publish a value read from an entry as a CodePipeline output variable.
    Export(ExportSpec),
    /// Compression, timestamps and permissions of matching entries.
    Pack(PackSpec),
    /// A step registered by the Lambda binary (Rust `CustomStep`).
    Custom(CustomSpec),
}

/// Which entries a selection step matches.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Selector {
    /// Globs only.
    Files(Vec<String>),
    /// Globs, optionally limited to some inputs.
    Full(SelectorOptions),
}

/// A selection with options.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SelectorOptions {
    /// Globs with gitignore rules: `*` within a segment, `**` across, no `/` = any depth,
    /// a leading or middle `/` anchors to the root, a trailing `/` matches a directory and
    /// everything under it, `!glob` re-includes (the last matching glob wins).
    pub files: Vec<String>,
    /// Only entries from these input artifacts (default: all).
    #[serde(default)]
    pub inputs: Vec<String>,
}

/// Files a content step applies to.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilesSpec {
    /// Globs of the files.
    pub files: Vec<String>,
}

/// Renaming.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MoveSpec {
    /// Entries to rename (default: all).
    #[serde(default)]
    pub files: Option<Vec<String>>,
    /// Remove this prefix where present (e.g. `"dist/"`).
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// Regex matched against the whole path; with `to`, the path becomes `to` with
    /// `$1`/`${name}` captures expanded. Paths that do not match are unchanged.
    #[serde(default)]
    pub regex: Option<String>,
    /// Replacement for `regex`: `$1`, `${name}`; `${1}_x` when text follows a group
    /// (`$1_x` would name a group `1_x`); `$$` for a literal `$`.
    #[serde(default)]
    pub to: Option<String>,
    /// Keep only the file name (directories are dropped).
    #[serde(default)]
    pub flatten: bool,
    /// Put this prefix in front (applied last, e.g. `"site/"`).
    #[serde(default)]
    pub add_prefix: Option<String>,
}

/// Text replacement: exactly one of `find` and `regex`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplaceSpec {
    /// Globs of the files.
    pub files: Vec<String>,
    /// Literal text to find.
    #[serde(default)]
    pub find: Option<String>,
    /// Regex to find (Rust `regex` syntax; it must not be able to match the empty string).
    #[serde(default)]
    pub regex: Option<String>,
    /// Replacement. With `regex`: `$1`, `${name}`; `${1}_x` when text follows a group
    /// (`$1_x` would name a group `1_x`); `$$` for a literal `$`. Every group referred to
    /// must exist.
    #[serde(rename = "with")]
    pub with: String,
}

/// Setting a value in JSON or YAML.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SetSpec {
    /// Globs of the files (`.json` files are JSON; `.yml`/`.yaml` are YAML unless `format` says otherwise).
    pub files: Vec<String>,
    /// JSON pointer to an existing value, e.g. `/Parameters/ImageTag` (YAML: same syntax over
    /// mappings and sequences; the target must be a one-line plain or quoted scalar).
    pub pointer: String,
    /// The new value (strings are templated with `${NAME}`).
    pub value: serde_json::Value,
    /// Force the file format.
    #[serde(default)]
    pub format: Option<Format>,
}

/// Structured file formats.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// JSON.
    Json,
    /// YAML (block style).
    Yaml,
}

/// An added file: exactly one of `text` and `base64`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AddSpec {
    /// Path in the output.
    pub path: String,
    /// UTF-8 content (templated with `${NAME}`).
    #[serde(default)]
    pub text: Option<String>,
    /// Binary content, base64.
    #[serde(default)]
    pub base64: Option<String>,
}

/// The manifest file.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    /// Path in the output (default `manifest.json`).
    #[serde(default = "default_manifest")]
    pub path: String,
}

fn default_manifest() -> String {
    "manifest.json".into()
}

/// An exported output variable. Reads `file` as it is at this step; one of `pointer`
/// (JSON/YAML), `regex` (first capture group), or neither (the whole file, trimmed).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// Output variable name (`[A-Za-z0-9@_-]+`).
    pub variable: String,
    /// Path of the entry to read (exact, after earlier renames).
    pub file: String,
    /// JSON pointer into a JSON or YAML file.
    #[serde(default)]
    pub pointer: Option<String>,
    /// Regex whose first capture group (or whole match) is the value.
    #[serde(default)]
    pub regex: Option<String>,
    /// Value when the file or the value is missing (otherwise the job fails).
    #[serde(default)]
    pub default: Option<String>,
    /// Force the file format for `pointer`.
    #[serde(default)]
    pub format: Option<Format>,
}

/// Packing options for matching entries.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackSpec {
    /// Entries affected (default: all).
    #[serde(default)]
    pub files: Option<Vec<String>>,
    /// `store` or `deflate` (entries already in that form are copied raw unless `level` is set).
    #[serde(default)]
    pub compression: Option<Compression>,
    /// Deflate level 0-9 (forces recompression).
    #[serde(default)]
    pub level: Option<u32>,
    /// Fixed modification time `YYYY-MM-DDTHH:MM:SS` (e.g. `1980-01-01T00:00:00`) for reproducible outputs.
    #[serde(default)]
    pub mtime: Option<String>,
    /// Unix permissions for files, octal string such as `"644"`.
    #[serde(default)]
    pub file_mode: Option<String>,
    /// Unix permissions for directories, octal string such as `"755"`.
    #[serde(default)]
    pub dir_mode: Option<String>,
}

/// Compression methods.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    Store,
    /// Deflate.
    Deflate,
}

/// A custom step registered in Rust.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomSpec {
    /// Registered name.
    pub name: String,
    /// Files it applies to (untouched entries stay raw copies).
    pub files: Vec<String>,
    /// Options passed to the step's factory.
    #[serde(default)]
    pub options: serde_json::Value,
}

/// The JSON Schema of `UserParameters`, pretty-printed.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(PlanSpec);
    serde_json::to_string_pretty(&schema).expect("schema serialises") + "\n"
}
