//! `UserParameters` as pipeline authors write them: the serde and JSON Schema types.
//! Every struct denies unknown fields; every field is documented (the docs become the
//! schema's descriptions, shown by editors).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

pub use super::step_doc::StepDoc;

/// The transform plan: variables, steps for every output, and per-output routing.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
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

fn yes() -> bool {
    true
}

impl Default for PlanSpec {
    /// The empty plan (what blank UserParameters mean): copy everything, verified.
    fn default() -> Self {
        PlanSpec {
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
    /// Add a file with inline content.
    Add(AddSpec),
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

/// Templating: placeholders `${NAME}` (or between `delimiters`), optionally with a
/// filter that escapes the value for its place: `|json` and `|yaml` (a quoted string
/// literal), `|url` (percent-encoded), `|sh` (one single-quoted shell word).
/// `$${` writes a literal `${`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Globs of the files.
    pub files: Vec<String>,
    /// An undefined variable: `error` (default, or what `on_unknown_variable` says),
    /// `keep` the placeholder, or make it `empty`.
    #[serde(default)]
    pub missing: Option<Missing>,
    /// Open and close delimiters instead of `${` and `}`, e.g. `["{{", "}}"]` so that
    /// CloudFormation's `!Sub ${AWS::Region}` is left alone; spaces inside are trimmed.
    #[serde(default)]
    pub delimiters: Option<[String; 2]>,
    /// Let the step match no entry. By default a step that matches nothing in every
    /// output it applies to fails the job before data moves (a mistyped glob must not
    /// ship an unchanged file).
    #[serde(default)]
    pub optional: bool,
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
    /// Let the step match no entry. By default a step that matches nothing in every
    /// output it applies to fails the job before data moves (a mistyped glob must not
    /// ship an unchanged file).
    #[serde(default)]
    pub optional: bool,
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
    /// Let the step match no entry. By default a step that matches nothing in every
    /// output it applies to fails the job before data moves (a mistyped glob must not
    /// ship an unchanged file).
    #[serde(default)]
    pub optional: bool,
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
    /// Unix permissions, octal string such as `"755"` for an executable (`bootstrap`,
    /// hook scripts); default `"644"`, or what a matching `pack` step's `file_mode` says.
    #[serde(default)]
    pub mode: Option<String>,
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
    /// Let `file` be absent from the output: the variable is then not set (or set to
    /// `default`). By default an absent file fails the job before data moves.
    #[serde(default)]
    pub optional: bool,
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

/// Text normalization: by default LF line endings and no UTF-8 BOM (a CRLF hook script
/// fails with "bad interpreter"; a BOM breaks JSON parsers). A matching file with a NUL
/// byte (binary, or UTF-16) fails the job instead of being damaged.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NormalizeSpec {
    /// Globs of the files.
    pub files: Vec<String>,
    /// `lf` (default), `crlf`, or `keep`. A lone CR is left as it is.
    #[serde(default)]
    pub line_endings: LineEndings,
    /// Remove a leading UTF-8 byte-order mark (default `true`).
    #[serde(default = "yes")]
    pub strip_bom: bool,
    /// Let the step match no entry. By default a step that matches nothing in every
    /// output it applies to fails the job before data moves (a mistyped glob must not
    /// ship an unchanged file).
    #[serde(default)]
    pub optional: bool,
}

/// Line endings written by `normalize`.
#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LineEndings {
    /// `\n`.
    #[default]
    Lf,
    /// `\r\n`.
    Crlf,
    /// Unchanged.
    Keep,
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
