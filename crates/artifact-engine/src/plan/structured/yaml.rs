//! Locating values in block-style YAML text by JSON pointer, and editing the text
//! around them (see the parent module for what is supported and refused).
//!
//! Text is read as logical lines ([`yaml_lines`]): blank and comment lines dropped,
//! `- x` split into a `-` line and an `x` line indented past the dash. A node is its
//! header (the document root, a `key:` line, or a `-` line) and the more-indented lines
//! after it. Edits replace, insert or remove whole node texts and render new values in
//! block style at the indent of their siblings.

use std::ops::Range;

use super::{show, verify};

#[derive(Debug, Clone)]
pub(super) struct Line {
    /// Byte offset of `content` in the text.
    pub at: usize,
    /// 1-based line number in the text.
    pub line: usize,
    pub indent: usize,
    pub content: String,
}

/// Logical lines: blank and comment lines dropped, `- x` split into a `-` line and an
/// `x` line indented past the dash.
pub(super) fn yaml_lines(text: &str) -> Result<Vec<Line>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        let indent = line.len() - line.trim_start_matches(' ').len();
        let mut content = &line[indent..];
        let mut col = indent;
        if content.starts_with('\t') {
            return Err(format!(
                "line {}: YAML with tab indentation is not supported",
                n + 1
            ));
        }
        if !(content.is_empty() || content.starts_with('#') || content == "---" || content == "...")
        {
            while content == "-" || content.starts_with("- ") {
                out.push(Line {
                    at: at + col,
                    line: n + 1,
                    indent: col,
                    content: "-".into(),
                });
                let rest = content[1..].trim_start_matches(' ');
                col += content.len() - rest.len();
                content = rest;
                if content.is_empty() {
                    break;
                }
            }
            // `- # comment`: an item whose value starts on the next line.
            if !content.is_empty() && !content.starts_with('#') {
                out.push(Line {
                    at: at + col,
                    line: n + 1,
                    indent: col,
                    content: content.to_string(),
                });
            }
        }
        at += raw.len();
    }
    Ok(out)
}

/// `key: value` → (key, byte offset of value within content, value) if the line is a
/// mapping entry.
pub(super) fn yaml_key(content: &str) -> Option<(String, usize)> {
    let (key, after) = if let Some(q) = content.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = content[1..].find(q)? + 1;
        let key = yaml_unquote(&content[..=end]);
        (key, end + 1)
    } else {
        let colon = content.match_indices(':').find(|(i, _)| {
            let next = content.as_bytes().get(i + 1);
            next.is_none() || next == Some(&b' ')
        })?;
        (content[..colon.0].trim_end().to_string(), colon.0)
    };
    let rest = &content[after..];
    let rest = rest.strip_prefix(':')?;
    let value_off = after + 1 + (rest.len() - rest.trim_start().len());
    Some((key, value_off))
}

/// The scalar at the start of `s`, without a trailing comment or spaces.
fn yaml_scalar_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.first() == Some(&b'#') {
        // `key:  # comment`: no value on this line.
        return 0;
    }
    if let Some(&q) = b.first().filter(|c| **c == b'"' || **c == b'\'') {
        let mut i = 1;
        while i < b.len() {
            if b[i] == b'\\' && q == b'"' {
                i += 2;
                continue;
            }
            if b[i] == q {
                if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            i += 1;
        }
        return s.len();
    }
    let end = s.find(" #").unwrap_or(s.len());
    s[..end].trim_end().len()
}

/// False for a quoted scalar that does not close on its line.
fn yaml_quote_closed(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(&q) if q == b'"' || q == b'\'' => {
            let n = yaml_scalar_len(s);
            n >= 2 && s.as_bytes()[n - 1] == q && !(q == b'"' && s[..n].ends_with("\\\""))
        }
        _ => true,
    }
}

/// Refuses a value (text from its first character) that is not one plain or quoted
/// scalar: block scalars, tags, flow collections, anchors and aliases.
pub(super) fn yaml_refuse_syntax(line: usize, value: &str) -> Result<(), String> {
    let what = match value.as_bytes().first() {
        Some(b'|') => "block scalar (`|`) values".to_string(),
        Some(b'>') => "block scalar (`>`) values".to_string(),
        Some(b'!') => {
            let tag = value.split([' ', '\t']).next().unwrap_or(value);
            format!("tagged value (`{tag}`) values")
        }
        Some(b'{') | Some(b'[') => "flow collection (`{...}`, `[...]`) values".to_string(),
        Some(b'&') => "values with an anchor (`&name`)".to_string(),
        Some(b'*') => "alias (`*name`) values".to_string(),
        _ => return Ok(()),
    };
    Err(format!(
        "line {line}: {what} cannot be set in place (only one-line plain or quoted scalars can)"
    ))
}

fn yaml_multi_line(line: usize) -> String {
    format!("line {line}: multi-line scalar values cannot be set in place (only one-line plain or quoted scalars can)")
}

/// The end (exclusive) of the lines of the value introduced by `lines[k]` (a `-` or a
/// key line): the more-indented lines after it and, for a key, a sequence written at
/// the key's own indent (`key:` / `- a` / `- b`, as PyYAML writes it).
fn yaml_value_end(lines: &[Line], k: usize, hi: usize) -> usize {
    let indent = lines[k].indent;
    let key = lines[k].content != "-";
    let mut j = k + 1;
    while j < hi
        && (lines[j].indent > indent
            || (key && lines[j].indent == indent && lines[j].content == "-"))
    {
        j += 1;
    }
    j
}

/// The line in `lines[lo..hi]` (one block mapping or sequence) for `token`, and the
/// offset of the value when it is on the key line.
fn yaml_child(
    lines: &[Line],
    lo: usize,
    hi: usize,
    token: &str,
    here: &str,
) -> Result<(usize, Option<usize>), String> {
    if lo >= hi {
        return Err(format!("nothing at {here}"));
    }
    let indent = lines[lo].indent;
    let children = (lo..hi).filter(|&k| lines[k].indent == indent);
    if lines[lo].content == "-" {
        let n: usize = token
            .parse()
            .map_err(|_| format!("{token:?} is not a sequence index (at {here})"))?;
        return children
            .filter(|&k| lines[k].content == "-")
            .nth(n)
            .map(|k| (k, None))
            .ok_or_else(|| format!("index {n} is past the end of the sequence at {here}"));
    }
    for k in children {
        let content = &lines[k].content;
        if let Some((key, off)) = yaml_key(content) {
            if key == token {
                let value = &content[off..];
                let inline = yaml_scalar_len(value) > 0;
                return Ok((k, inline.then_some(off)));
            }
        }
    }
    Err(format!("no key {token:?} in the mapping at {here}"))
}

/// The byte range of a scalar written on the key line `l` at `off`; `more` says
/// whether more-indented lines follow it.
fn yaml_inline_scalar(l: &Line, off: usize, more: bool) -> Result<Range<usize>, String> {
    let value = &l.content[off..];
    yaml_refuse_syntax(l.line, value)?;
    if more || !yaml_quote_closed(value) {
        return Err(yaml_multi_line(l.line));
    }
    Ok(l.at + off..l.at + off + yaml_scalar_len(value))
}

/// The byte range of a scalar written on the lines `lines[lo..hi]` after its key.
fn yaml_block_scalar(
    lines: &[Line],
    lo: usize,
    hi: usize,
    here: &str,
) -> Result<Range<usize>, String> {
    let Some(l) = lines.get(lo).filter(|_| lo < hi) else {
        return Err(format!("nothing at {here}"));
    };
    if l.content == "-" || yaml_key(&l.content).is_some() {
        return Err(format!(
            "the value at {here} is a mapping or sequence, not a scalar"
        ));
    }
    yaml_refuse_syntax(l.line, &l.content)?;
    if hi - lo > 1 || !yaml_quote_closed(&l.content) {
        return Err(yaml_multi_line(l.line));
    }
    Ok(l.at..l.at + yaml_scalar_len(&l.content))
}

/// Where a node's text starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Head {
    /// The document itself.
    Root,
    /// A `key:` line, `lines[k]`; `inline` is the value's offset in its content when the
    /// value starts on the key line.
    Key { k: usize, inline: Option<usize> },
    /// A `-` line, `lines[k]`.
    Dash { k: usize },
}

/// A node: its head, and the lines of its value below the head, `lines[lo..hi]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    pub head: Head,
    pub lo: usize,
    pub hi: usize,
}

/// The node at `pointer`. Descends only through block mappings and sequences (and
/// `key: &anchor` followed by a block: aliases are checked after any edit).
pub(super) fn find(lines: &[Line], pointer: &[String]) -> Result<Node, String> {
    let mut node = Node {
        head: Head::Root,
        lo: 0,
        hi: lines.len(),
    };
    for (depth, token) in pointer.iter().enumerate() {
        if let Head::Key {
            k,
            inline: Some(off),
        } = node.head
        {
            let l = &lines[k];
            let value = &l.content[off..];
            let value = &value[..yaml_scalar_len(value)];
            let anchor_only = value.starts_with('&') && !value.contains(' ');
            if !anchor_only {
                yaml_refuse_syntax(l.line, value)?;
                return Err(format!(
                    "line {}: the value at {} is a scalar; cannot descend",
                    l.line,
                    show(&pointer[..depth])
                ));
            }
        }
        let here = show(&pointer[..depth]);
        let (k, inline) = yaml_child(lines, node.lo, node.hi, token, &here)?;
        let end = yaml_value_end(lines, k, node.hi);
        let head = if lines[k].content == "-" {
            Head::Dash { k }
        } else {
            Head::Key { k, inline }
        };
        node = Node {
            head,
            lo: k + 1,
            hi: end,
        };
    }
    Ok(node)
}

/// The byte range of the one-line scalar at `pointer`; anything else is refused with
/// its line number.
pub(super) fn yaml_locate(text: &str, pointer: &[String]) -> Result<Range<usize>, String> {
    let lines = yaml_lines(text)?;
    let node = find(&lines, pointer)?;
    match node.head {
        Head::Key {
            k,
            inline: Some(off),
        } => yaml_inline_scalar(&lines[k], off, node.hi > node.lo),
        _ => yaml_block_scalar(&lines, node.lo, node.hi, &show(pointer)),
    }
}

pub(super) fn yaml_unquote(s: &str) -> String {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        serde_json::from_str(s).unwrap_or_else(|_| s[1..s.len() - 1].to_string())
    } else if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        s[1..s.len() - 1].replace("''", "'")
    } else {
        s.to_string()
    }
}

/// A YAML scalar for `v`; strings keep the quoting style of the value they replace
/// (`old_first` is its first character).
pub(super) fn yaml_scalar(v: &serde_json::Value, old_first: Option<char>) -> String {
    match v {
        serde_json::Value::String(s)
            if old_first == Some('\'') && !s.chars().any(char::is_control) =>
        {
            format!("'{}'", s.replace('\'', "''"))
        }
        serde_json::Value::String(s) if old_first == Some('"') => {
            serde_json::to_string(s).expect("strings serialise")
        }
        serde_json::Value::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || "-_./@+".contains(c))
                && !s.starts_with(['-', '.', '@'])
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
                )
                && s.parse::<f64>().is_err()
                && !reads_as_other_in_yaml_1_1(s)
                && verify::plain_reads_as_string(s);
            if plain {
                s.clone()
            } else {
                serde_json::to_string(s).expect("strings serialise")
            }
        }
        other => other.to_string(),
    }
}

/// True when a YAML 1.1 reader (PyYAML, cfn-lint, SAM) would read plain `s` as
/// something other than a string: an integer (`1_000`, `0o17`, `1:30`), a float, or a
/// timestamp (`2024-05-01`). yaml-rust2 reads YAML 1.2, where these are strings.
fn reads_as_other_in_yaml_1_1(s: &str) -> bool {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(concat!(
            // int
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
            r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
            // float
            r"|[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?",
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
            // timestamp
            r"|[0-9]{4}-[0-9]{2}-[0-9]{2}",
            r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?",
            r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?",
            r")$"
        ))
        .expect("a valid regex")
    })
    .is_match(s)
}
