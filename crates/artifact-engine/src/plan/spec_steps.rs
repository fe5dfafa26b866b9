//! The options of each step kind, as pipeline authors write them (re-exported by
//! [`super::spec`], which holds the plan-level types). Every struct denies unknown
//! fields; every field is documented (the docs become the schema's descriptions).

use schemars::JsonSchema;
use serde::Deserialize;

use super::spec::{yes, Missing};

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
    /// Default: every entry (give `type` or `size` then).
    #[serde(default)]
    pub files: Option<Vec<String>>,
    /// Only entries from these input artifacts (default: all).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Only entries of this type, or of any of these types.
    #[serde(default, rename = "type")]
    pub types: Option<OneOrMany<EntryType>>,
    /// Only files whose uncompressed size (as the central directory declares it) is
    /// within this range, in bytes (directories never match).
    #[serde(default)]
    pub size: Option<SizeRange>,
}

/// One value or a list of them.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// One.
    One(T),
    /// Several.
    Many(Vec<T>),
}

/// Entry types a selection can ask for.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    /// A regular file.
    File,
    /// A directory entry.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A regular file with an execute bit in its Unix mode.
    Executable,
}

/// A size range in bytes, both ends inclusive.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SizeRange {
    /// At least this many bytes.
    #[serde(default)]
    pub min: Option<u64>,
    /// At most this many bytes.
    #[serde(default)]
    pub max: Option<u64>,
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
    /// The new value: any JSON value (strings in it are templated with `${NAME}`).
    pub value: serde_json::Value,
    /// Create the key (and missing mappings on the way) when it is absent; by
    /// default a missing key fails the job.
    #[serde(default)]
    pub create: bool,
    /// Force the file format.
    #[serde(default)]
    pub format: Option<Format>,
    /// Let the step match no entry. By default a step that matches nothing in every
    /// output it applies to fails the job before data moves (a mistyped glob must not
    /// ship an unchanged file).
    #[serde(default)]
    pub optional: bool,
}

/// Removing a key or list item from JSON or YAML files (its lines, or its member
/// text, go; the rest is kept as is). A pointer that finds nothing fails the job (use
/// `merge` with `null` to remove a key only where present).
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeleteSpec {
    /// Globs of the files.
    pub files: Vec<String>,
    /// JSON pointer to the key or item, e.g. `/Parameters/DebugMode` or `/steps/0`.
    pub pointer: String,
    /// Force the file format.
    #[serde(default)]
    pub format: Option<Format>,
    /// Let the step match no entry. By default a step that matches nothing in every
    /// output it applies to fails the job before data moves (a mistyped glob must not
    /// ship an unchanged file).
    #[serde(default)]
    pub optional: bool,
}

/// Appending to a list in JSON or YAML files: exactly one of `value` and `values`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppendSpec {
    /// Globs of the files.
    pub files: Vec<String>,
    /// JSON pointer to an existing list, e.g. `/containerDefinitions/0/environment`.
    pub pointer: String,
    /// One item to append (strings in it are templated with `${NAME}`).
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// Items to append, in order.
    #[serde(default)]
    pub values: Option<Vec<serde_json::Value>>,
    /// Force the file format.
    #[serde(default)]
    pub format: Option<Format>,
    /// Let the step match no entry. By default a step that matches nothing in every
    /// output it applies to fails the job before data moves (a mistyped glob must not
    /// ship an unchanged file).
    #[serde(default)]
    pub optional: bool,
}

/// A JSON Merge Patch (RFC 7396) applied to JSON or YAML files: objects merge key by
/// key, `null` removes a key, anything else replaces the value (lists are replaced
/// whole). Exactly one of `patch` and `patch_file`.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MergeSpec {
    /// Globs of the files.
    pub files: Vec<String>,
    /// The patch, inline (strings in it are templated with `${NAME}`).
    #[serde(default)]
    pub patch: Option<serde_json::Value>,
    /// The patch is an entry of the inputs feeding the output (its path as the input
    /// names it, JSON or YAML by extension, at most 1 MiB), e.g.
    /// `"config/overlays/${STAGE}.yml"` (the path is templated, the file is not);
    /// `"Input::path"` names the input. Read before data moves.
    #[serde(default)]
    pub patch_file: Option<String>,
    /// Apply the patch at this JSON pointer instead of the document's root.
    #[serde(default)]
    pub pointer: Option<String>,
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

/// Copying an entry to new paths (e.g. `appspec-prod.yml` to `appspec.yml`). Each copy
/// is the entry as it is at this step (earlier content steps included) and goes
/// through the later steps on its own; the entry itself stays unless a later step
/// moves or drops it. The data is read once per copy.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CopySpec {
    /// Path of the entry to copy (exact, after earlier renames; templated with
    /// `${NAME}`, e.g. `"appspec-${STAGE}.yml"`); a file or link.
    pub from: String,
    /// The new path, or a list of new paths (templated).
    pub to: OneOrMany<String>,
    /// Let `from` be absent. By default a copy whose entry is in no output it applies
    /// to fails the job before data moves.
    #[serde(default)]
    pub optional: bool,
}

/// Packing a subtree into a zip entry of its own, e.g. one Lambda function's code out
/// of a monorepo artifact. Matching entries leave the output's tree and become the
/// members of a new zip entry at `to` (deflated as it streams; its members are raw
/// copies or their transformed bytes), under their path with `strip_prefix`
/// removed; steps after this one see only the new entry.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ZipSpec {
    /// Globs of the entries to pack, e.g. `["services/api/"]`.
    pub files: Vec<String>,
    /// Path of the new zip entry, e.g. `"services/api.zip"` (templated with `${NAME}`).
    pub to: String,
    /// Removed from the members' paths where present, e.g. `"services/api/"` (the
    /// directory entry of the prefix itself is left out).
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// Let the step match no entry (no zip is written then). By default a zip step
    /// that matches nothing fails the job before data moves.
    #[serde(default)]
    pub optional: bool,
}

/// Unpacking zip entries into the tree, e.g. a build's `dist/site.zip` whose files a
/// later stage wants loose. Each matching entry is replaced by its members, at `to`
/// followed by their path inside the zip (default: the entry's path without its
/// extension, and `/`: `dist/site.zip` gives `dist/site/index.html`); the members go
/// through the steps after this one, the zip entry itself only with `keep`. The inner
/// zip's central directory is read (and its names checked like the input's) before
/// data moves; its members then stream and are copied raw when untouched: read by
/// range when the inner zip is stored in the input, cut from it as it is inflated
/// again when it is deflated.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnzipSpec {
    /// Globs of the zip entries to unpack, e.g. `["dist/*.zip"]`.
    pub files: Vec<String>,
    /// Directory the members go under, e.g. `"site/"` (templated with `${NAME}`; `""`
    /// for the root). Default: the zip entry's path without its extension, and `/`.
    #[serde(default)]
    pub to: Option<String>,
    /// Keep the zip entry too (it goes through the later steps like any entry).
    #[serde(default)]
    pub keep: bool,
    /// Let the step match no entry. By default an unzip step that matches nothing
    /// fails the job before data moves.
    #[serde(default)]
    pub optional: bool,
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
