//! Reading and editing values in JSON and YAML text by JSON pointer — set (creating
//! missing keys on request), delete, append, JSON Merge Patch — editing only the bytes
//! of the nodes that change, so the rest of the file (formatting, comments, key order)
//! stays exactly as it was.
//!
//! JSON: any valid document. YAML: block-style mappings and sequences (including
//! sequences written at their key's indent, as PyYAML and `cloudformation package`
//! write them). A scalar is replaced in place only when it is a one-line plain or
//! quoted scalar; everything else there is refused with its line number, never guessed
//! at: multi-line plain or quoted scalars, block scalars (`|`, `>`), tagged values
//! (`!Sub`, `!Ref`: refused, so the tag's meaning is never silently kept or dropped),
//! flow collections, anchors and aliases. A mapping or sequence is replaced, extended
//! or shortened by whole lines, new values written in block style at their siblings'
//! indent.
//!
//! Invariant: [`edit`] (and [`set`]) return text only after [`super::verify`] re-parsed
//! it and found it equal to the original tree with the edit applied.

use super::spec::Format;
use super::verify;

mod edit;
mod json;
mod yaml;
mod yaml_edit;

pub use edit::{edit, Edit};

/// Splits a JSON pointer (`/a/b~1c/0`) into tokens.
pub fn parse_pointer(p: &str) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!("JSON pointer {p:?} must start with `/`"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// The format of `path` (by extension) unless forced.
pub fn format_of(path: &str, forced: Option<Format>) -> Option<Format> {
    forced.or_else(|| {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".json") {
            Some(Format::Json)
        } else if lower.ends_with(".yml") || lower.ends_with(".yaml") {
            Some(Format::Yaml)
        } else {
            None
        }
    })
}

/// The value at `pointer`: strings unquoted, other values as JSON text.
pub fn get(text: &str, format: Format, pointer: &[String]) -> Result<String, String> {
    match format {
        Format::Json => {
            let r = json::locate(text, pointer)?;
            let v: serde_json::Value = serde_json::from_str(&text[r]).map_err(|e| e.to_string())?;
            Ok(match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
        }
        Format::Yaml => {
            let r = yaml::yaml_locate(text, pointer)?;
            Ok(yaml::yaml_unquote(&text[r]))
        }
    }
}

/// `text` with the value at `pointer` (which exists) replaced by `value`.
pub fn set(
    text: &str,
    format: Format,
    pointer: &[String],
    value: &serde_json::Value,
) -> Result<String, String> {
    edit(
        text,
        format,
        &Edit::Set {
            pointer: pointer.to_vec(),
            value: value.clone(),
            create: false,
        },
    )
}

/// `text` with the bytes in `r` replaced by `new`.
fn splice(text: &str, r: std::ops::Range<usize>, new: &str) -> String {
    let mut out = String::with_capacity(text.len() + new.len());
    out.push_str(&text[..r.start]);
    out.push_str(new);
    out.push_str(&text[r.end..]);
    out
}

fn show(pointer: &[String]) -> String {
    if pointer.is_empty() {
        "(root)".into()
    } else {
        pointer
            .iter()
            .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
            .collect()
    }
}

#[cfg(test)]
mod edit_tests;
#[cfg(test)]
mod tests;
