//! Structural edits of block-style YAML text: replacing a node's whole text, adding a
//! key to a mapping, removing a key or item, appending items to a sequence. New
//! values are written in block style at the indent of their siblings (two spaces
//! deeper for a new nesting level); empty collections as `{}` and `[]`; scalars as
//! plain text when that reads back as the same string, else double-quoted.
//!
//! Invariant: these functions only produce candidate text; the caller
//! ([`super::edit`]) re-parses it and compares it with the expected tree before it is
//! used, so a mis-placed line refuses the edit instead of corrupting the file.

use std::ops::Range;

use serde_json::Value;

use super::show;
use super::yaml::{find, yaml_key, yaml_lines, yaml_refuse_syntax, yaml_scalar, Head, Line, Node};

/// The offset of the line holding byte `at`.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |n| n + 1)
}

/// The end of the line holding byte `at` (before its `\n` or `\r\n`).
fn line_end(text: &str, at: usize) -> usize {
    let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
    if end > at && text.as_bytes()[end - 1] == b'\r' && end < text.len() {
        end - 1
    } else {
        end
    }
}

/// The start of the line after the one holding byte `at` (or the text's end).
fn next_line(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |n| at + n + 1)
}

/// `new` (written with `\n`) spliced into `text` at `r`, in the text's line endings
/// (`\r\n` when the text uses them).
fn splice(text: &str, r: Range<usize>, new: &str) -> String {
    if text.contains("\r\n") {
        super::splice(text, r, &new.replace('\n', "\r\n"))
    } else {
        super::splice(text, r, new)
    }
}

/// `v` on one line: a scalar or an empty collection; `None` for a block.
fn flat(v: &Value) -> Option<String> {
    match v {
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(_) | Value::Array(_) => None,
        s => Some(yaml_scalar(s, None)),
    }
}

fn key_text(k: &str) -> String {
    yaml_scalar(&Value::String(k.to_string()), None)
}

/// A non-empty collection as block lines at `indent` (no final newline).
fn block(v: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let lines: Vec<String> = match v {
        Value::Object(o) => o
            .iter()
            .map(|(k, val)| format!("{pad}{}:{}", key_text(k), after_key(val, indent)))
            .collect(),
        Value::Array(a) => a
            .iter()
            .map(|item| format!("{pad}-{}", after_dash(item, indent)))
            .collect(),
        s => vec![format!("{pad}{}", yaml_scalar(s, None))],
    };
    lines.join("\n")
}

/// `v` as a whole YAML document (block style), ending in a newline.
#[cfg(test)]
pub(super) fn document(v: &Value) -> String {
    format!("{}\n", flat(v).unwrap_or_else(|| block(v, 0)))
}

/// `v` written after `key:` (the key at `indent`).
fn after_key(v: &Value, indent: usize) -> String {
    match flat(v) {
        Some(s) => format!(" {s}"),
        None => format!("\n{}", block(v, indent + 2)),
    }
}

/// `v` written after a `-` at column `col`: a collection starts on the dash's line.
fn after_dash(v: &Value, col: usize) -> String {
    match flat(v) {
        Some(s) => format!(" {s}"),
        None => format!(" {}", &block(v, col + 2)[col + 2..]),
    }
}

fn is_mapping_line(l: &Line) -> bool {
    l.content != "-" && yaml_key(&l.content).is_some()
}

/// Refuses replacing a tagged value (`!Ref x`): the tag's meaning would be dropped
/// silently. Anything else is replaced whole (an anchor still used by an alias makes
/// the result unreadable, which the caller's check refuses).
fn refuse_tag(line: usize, value: &str) -> Result<(), String> {
    if value.starts_with('!') {
        yaml_refuse_syntax(line, value)?;
    }
    Ok(())
}

/// The text range of `node`'s value (from just after `key:` or `-`).
fn value_range(text: &str, lines: &[Line], node: &Node) -> Result<Range<usize>, String> {
    let end_of_block = |start: usize| {
        if node.hi > node.lo {
            line_end(text, lines[node.hi - 1].at)
        } else {
            start
        }
    };
    match node.head {
        Head::Root => {
            if lines.is_empty() {
                return Ok(0..text.len());
            }
            Ok(line_start(text, lines[0].at)..end_of_block(0))
        }
        Head::Key { k, inline } => {
            let l = &lines[k];
            let (_, off) = yaml_key(&l.content).expect("a key line");
            let colon = l.content[..off].trim_end().len();
            if let Some(off) = inline {
                refuse_tag(l.line, &l.content[off..])?;
            }
            let start = l.at + colon;
            let inline_end = inline.map_or(start, |_| line_end(text, l.at));
            Ok(start..end_of_block(inline_end).max(inline_end))
        }
        Head::Dash { k } => {
            if let Some(first) = lines.get(node.lo).filter(|_| node.hi > node.lo) {
                if first.content != "-" && !is_mapping_line(first) {
                    refuse_tag(first.line, &first.content)?;
                }
            }
            let start = lines[k].at + 1;
            Ok(start..end_of_block(start))
        }
    }
}

/// `text` with the whole value at `pointer` replaced by `v`.
pub(super) fn replace(text: &str, pointer: &[String], v: &Value) -> Result<String, String> {
    let lines = yaml_lines(text)?;
    let node = find(&lines, pointer)?;
    let r = value_range(text, &lines, &node)?;
    let new = match node.head {
        Head::Root => flat(v).unwrap_or_else(|| block(v, 0)),
        Head::Key { k, .. } => after_key(v, lines[k].indent),
        Head::Dash { k } => after_dash(v, lines[k].indent),
    };
    Ok(splice(text, r, &new))
}

/// `text` with key `key` (absent) added to the mapping at `pointer`, set to `v`.
pub(super) fn insert_member(
    text: &str,
    pointer: &[String],
    key: &str,
    v: &Value,
) -> Result<String, String> {
    let lines = yaml_lines(text)?;
    let node = find(&lines, pointer)?;
    if node.hi <= node.lo || !is_mapping_line(&lines[node.lo]) {
        // An empty (`{}`) mapping is replaced whole.
        let one = Value::Object([(key.to_string(), v.clone())].into_iter().collect());
        return replace(text, pointer, &one);
    }
    let indent = lines[node.lo].indent;
    let at = line_end(text, lines[node.hi - 1].at);
    let add = format!(
        "\n{}{}:{}",
        " ".repeat(indent),
        key_text(key),
        after_key(v, indent)
    );
    Ok(splice(text, at..at, &add))
}

/// `text` with `values` appended to the sequence at `pointer`.
pub(super) fn append(text: &str, pointer: &[String], values: &[Value]) -> Result<String, String> {
    let lines = yaml_lines(text)?;
    let node = find(&lines, pointer)?;
    if node.hi <= node.lo || lines[node.lo].content != "-" {
        // An empty (`[]`) sequence is replaced whole.
        return replace(text, pointer, &Value::Array(values.to_vec()));
    }
    let indent = lines[node.lo].indent;
    let at = line_end(text, lines[node.hi - 1].at);
    let add: String = values
        .iter()
        .map(|v| format!("\n{}-{}", " ".repeat(indent), after_dash(v, indent)))
        .collect();
    Ok(splice(text, at..at, &add))
}

/// `text` without the key or item `token` of the collection at `pointer`.
pub(super) fn remove(text: &str, pointer: &[String], token: &str) -> Result<String, String> {
    let lines = yaml_lines(text)?;
    let parent = find(&lines, pointer)?;
    let mut full = pointer.to_vec();
    full.push(token.to_string());
    let child = find(&lines, &full)?;
    let k = match child.head {
        Head::Key { k, .. } | Head::Dash { k } => k,
        Head::Root => unreachable!("a child has a head line"),
    };
    let indent = lines[k].indent;
    let siblings = (parent.lo..parent.hi)
        .filter(|&j| {
            lines[j].indent == indent && (lines[j].content == "-") == (lines[k].content == "-")
        })
        .count();
    if siblings == 1 {
        let empty = if lines[k].content == "-" {
            Value::Array(Vec::new())
        } else {
            Value::Object(Default::default())
        };
        return replace(text, pointer, &empty);
    }
    let start = line_start(text, lines[k].at);
    if text[start..lines[k].at].trim().is_empty() {
        // The node owns its lines: remove them with their newline.
        let end = next_line(text, lines[child.hi - 1].at);
        return Ok(splice(text, start..end, ""));
    }
    // The first key of a `- key: v` item: the next sibling moves up onto the dash line.
    match lines
        .get(child.hi)
        .filter(|l| child.hi < parent.hi && l.indent == indent)
    {
        Some(next) => Ok(splice(text, lines[k].at..next.at, "")),
        None => Err(format!(
            "line {}: cannot remove {} in place",
            lines[k].line,
            show(&full)
        )),
    }
}
