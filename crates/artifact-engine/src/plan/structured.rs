//! Reading and setting values in JSON and YAML text by JSON pointer, editing only the
//! bytes of the value so the rest of the file (formatting, comments, key order) stays
//! exactly as it was.
//!
//! JSON: any valid document. YAML: block-style mappings and sequences (including
//! sequences written at their key's indent, as PyYAML and `cloudformation package`
//! write them) whose target is a one-line plain or quoted scalar. Everything else at
//! the pointer is refused with its line number, never guessed at: multi-line plain or
//! quoted scalars, block scalars (`|`, `>`), tagged values (`!Sub`, `!Ref`: refused, so
//! the tag's meaning is never silently kept or dropped), flow collections, anchors and
//! aliases.
//!
//! Invariant: [`set`] returns text only after [`super::verify`] re-parsed it and found
//! the new value at the pointer and everything else unchanged.

use std::ops::Range;

use super::spec::Format;
use super::verify;

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
            let r = json_locate(text, pointer)?;
            let v: serde_json::Value = serde_json::from_str(&text[r]).map_err(|e| e.to_string())?;
            Ok(match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
        }
        Format::Yaml => {
            let r = yaml_locate(text, pointer)?;
            Ok(yaml_unquote(&text[r]))
        }
    }
}

/// `text` with the value at `pointer` replaced by `value`.
pub fn set(
    text: &str,
    format: Format,
    pointer: &[String],
    value: &serde_json::Value,
) -> Result<String, String> {
    let (r, new) = match format {
        Format::Json => (json_locate(text, pointer)?, value.to_string()),
        Format::Yaml => {
            let r = yaml_locate(text, pointer)?;
            let new = yaml_scalar(value, text[r.clone()].chars().next());
            (r, new)
        }
    };
    let mut out = String::with_capacity(text.len() + new.len());
    out.push_str(&text[..r.start]);
    out.push_str(&new);
    out.push_str(&text[r.end..]);
    match format {
        Format::Json => verify::json(text, &out, &show(pointer), value)?,
        Format::Yaml => verify::yaml(text, &out, pointer, value)?,
    }
    Ok(out)
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

// ---------------------------------------------------------------- JSON

struct Json<'a> {
    b: &'a [u8],
    i: usize,
}

impl Json<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn err(&self, what: &str) -> String {
        format!("invalid JSON at byte {}: {what}", self.i)
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected `{}`", c as char)))
        }
    }
    /// Skips a string starting at `self.i` (a quote), returns its decoded value.
    fn string(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let raw =
                        std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
                    return serde_json::from_str(raw).map_err(|e| self.err(&e.to_string()));
                }
                _ => self.i += 1,
            }
        }
        Err(self.err("unterminated string"))
    }
    /// Skips one value; returns its byte range.
    fn value(&mut self) -> Result<Range<usize>, String> {
        self.ws();
        let start = self.i;
        match self.b.get(self.i) {
            Some(b'"') => {
                self.string()?;
            }
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.b.get(self.i) != Some(&b'"') {
                            return Err(self.err("expected a key"));
                        }
                        self.string()?;
                        self.expect(b':')?;
                        self.value()?;
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected `,` or `}`")),
                        }
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.value()?;
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected `,` or `]`")),
                        }
                    }
                }
            }
            Some(_) => {
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.err("expected a value"));
                }
            }
            None => return Err(self.err("unexpected end")),
        }
        Ok(start..self.i)
    }
    fn find(&mut self, pointer: &[String], depth: usize) -> Result<Range<usize>, String> {
        self.ws();
        let Some(token) = pointer.get(depth) else {
            return self.value();
        };
        let here = show(&pointer[..depth]);
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    return Err(format!("no key {token:?} in the object at {here}"));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a key"));
                    }
                    let key = self.string()?;
                    self.expect(b':')?;
                    if &key == token {
                        return self.find(pointer, depth + 1);
                    }
                    self.value()?;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            return Err(format!("no key {token:?} in the object at {here}"))
                        }
                        _ => return Err(self.err("expected `,` or `}`")),
                    }
                }
            }
            Some(b'[') => {
                let n: usize = token
                    .parse()
                    .map_err(|_| format!("{token:?} is not an array index (at {here})"))?;
                self.i += 1;
                let mut k = 0;
                loop {
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        return Err(format!("index {n} is past the end of the array at {here}"));
                    }
                    if k == n {
                        return self.find(pointer, depth + 1);
                    }
                    self.value()?;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            return Err(format!("index {n} is past the end of the array at {here}"))
                        }
                        _ => return Err(self.err("expected `,` or `]`")),
                    }
                    k += 1;
                }
            }
            _ => Err(format!("the value at {here} is not an object or array")),
        }
    }
}

fn json_locate(text: &str, pointer: &[String]) -> Result<Range<usize>, String> {
    // The locator below recurses once per nesting level: let serde_json (nesting limit
    // 128) reject hostile documents first.
    serde_json::from_str::<serde_json::Value>(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut p = Json {
        b: text.as_bytes(),
        i: 0,
    };
    p.find(pointer, 0)
}

// ---------------------------------------------------------------- YAML

#[derive(Debug, Clone)]
struct Line {
    /// Byte offset of `content` in the text.
    at: usize,
    /// 1-based line number in the text.
    line: usize,
    indent: usize,
    content: String,
}

/// Logical lines: blank and comment lines dropped, `- x` split into a `-` line and an
/// `x` line indented past the dash.
fn yaml_lines(text: &str) -> Result<Vec<Line>, String> {
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
            if !content.is_empty() {
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
fn yaml_key(content: &str) -> Option<(String, usize)> {
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
fn yaml_refuse_syntax(line: usize, value: &str) -> Result<(), String> {
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

fn yaml_locate(text: &str, pointer: &[String]) -> Result<Range<usize>, String> {
    let lines = yaml_lines(text)?;
    let (mut lo, mut hi) = (0, lines.len());
    for (depth, token) in pointer.iter().enumerate() {
        let here = show(&pointer[..depth]);
        let (k, inline) = yaml_child(&lines, lo, hi, token, &here)?;
        let end = yaml_value_end(&lines, k, hi);
        if let Some(off) = inline {
            let l = &lines[k];
            if depth + 1 == pointer.len() {
                return yaml_inline_scalar(l, off, end > k + 1);
            }
            let value = &l.content[off..];
            let value = &value[..yaml_scalar_len(value)];
            // `key: &anchor` followed by a block: descend (aliases are checked after the edit).
            let anchor_only = value.starts_with('&') && !value.contains(' ');
            if !anchor_only {
                yaml_refuse_syntax(l.line, value)?;
                return Err(format!(
                    "line {}: the value at {} is a scalar; cannot descend",
                    l.line,
                    show(&pointer[..=depth])
                ));
            }
        }
        (lo, hi) = (k + 1, end);
    }
    yaml_block_scalar(&lines, lo, hi, &show(pointer))
}

fn yaml_unquote(s: &str) -> String {
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
fn yaml_scalar(v: &serde_json::Value, old_first: Option<char>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        parse_pointer(s).unwrap()
    }

    #[test]
    fn json_set_keeps_formatting() {
        let text = "{\n  \"Parameters\": {\n    \"ImageTag\": \"old\",  \"N\": [1, 2, {\"x\": true}]\n  },\n  \"Tags\": {}\n}\n";
        let out = set(
            text,
            Format::Json,
            &p("/Parameters/ImageTag"),
            &"v1.2".into(),
        )
        .unwrap();
        assert_eq!(out, text.replace("\"old\"", "\"v1.2\""));
        assert_eq!(
            get(text, Format::Json, &p("/Parameters/N/2/x")).unwrap(),
            "true"
        );
        assert_eq!(
            get(text, Format::Json, &p("/Parameters/ImageTag")).unwrap(),
            "old"
        );
        assert!(get(text, Format::Json, &p("/Parameters/Nope"))
            .unwrap_err()
            .contains("no key \"Nope\""));
        assert!(get(text, Format::Json, &p("/Parameters/N/7"))
            .unwrap_err()
            .contains("past the end"));
        assert!(get("{\"a\": 1", Format::Json, &p("/b")).is_err());
        assert_eq!(
            get(r#"{"a/b": {"~": 5}}"#, Format::Json, &p("/a~1b/~0")).unwrap(),
            "5"
        );
    }

    #[test]
    fn yaml_get_and_set_in_place() {
        let text = "# app config\nservice: orders   # the name\nimage:\n  repo: \"ecr/orders\"\n  tag: 'v1'\nports:\n  - 80\n  - name: https\n    port: 443\nenv: [a, b]\n";
        assert_eq!(get(text, Format::Yaml, &p("/service")).unwrap(), "orders");
        assert_eq!(
            get(text, Format::Yaml, &p("/image/repo")).unwrap(),
            "ecr/orders"
        );
        assert_eq!(get(text, Format::Yaml, &p("/image/tag")).unwrap(), "v1");
        assert_eq!(get(text, Format::Yaml, &p("/ports/0")).unwrap(), "80");
        assert_eq!(get(text, Format::Yaml, &p("/ports/1/port")).unwrap(), "443");
        let out = set(text, Format::Yaml, &p("/image/tag"), &"2.0.1".into()).unwrap();
        assert_eq!(
            out,
            text.replace("'v1'", "'2.0.1'"),
            "quoting style is kept"
        );
        let out = set(text, Format::Yaml, &p("/image/repo"), &"it's".into()).unwrap();
        assert!(out.contains("  repo: \"it's\"\n"), "{out}");
        let out = set(text, Format::Yaml, &p("/service"), &"billing".into()).unwrap();
        assert_eq!(out, text.replace("orders   #", "billing   #"));
        let out = set(text, Format::Yaml, &p("/ports/1/port"), &8443.into()).unwrap();
        assert!(out.contains("    port: 8443\n"));
        assert!(get(text, Format::Yaml, &p("/env/0"))
            .unwrap_err()
            .contains("line 10: flow collection"));
        assert!(get(text, Format::Yaml, &p("/image"))
            .unwrap_err()
            .contains("not a scalar"));
        assert!(get(text, Format::Yaml, &p("/nope"))
            .unwrap_err()
            .contains("no key"));
    }

    fn refused(text: &str, pointer: &str, words: &str) {
        let e = set(text, Format::Yaml, &p(pointer), &"new".into()).unwrap_err();
        assert!(e.contains(words), "{pointer}: {e}");
    }

    #[test]
    fn yaml_multi_line_plain_scalars_are_refused() {
        let text = "a:\n  b: first line\n    continued here\n  c: x\nlist:\n- one\n  more\n- two\n";
        refused(text, "/a/b", "line 2: multi-line");
        refused(text, "/list/0", "line 6: multi-line");
        let out = set(text, Format::Yaml, &p("/a/c"), &"y".into()).unwrap();
        assert_eq!(out, text.replace("c: x", "c: y"));
        let out = set(text, Format::Yaml, &p("/list/1"), &"2".into()).unwrap();
        assert_eq!(out, text.replace("- two", "- \"2\""));
        refused("a: \"open\n  close\"\n", "/a", "line 1: multi-line");
        refused("a:\n  first\n  second\n", "/a", "line 2: multi-line");
    }

    #[test]
    fn yaml_block_scalars_tags_flows_and_anchors_are_refused() {
        let text = "lit: |\n  b: 1\nfold: >-\n  x\nsub: !Sub \"${AWS::Region}-x\"\nref: !Ref Bucket\nflowm: {a: 1}\nflows: [1, 2]\nanc: &a v\nali: *a\nseq:\n- !Ref X\n";
        refused(text, "/lit", "line 1: block scalar (`|`)");
        refused(text, "/lit/b", "line 1");
        refused(text, "/fold", "line 3: block scalar (`>`)");
        refused(text, "/sub", "line 5: tagged value (`!Sub`)");
        refused(text, "/ref", "line 6: tagged value (`!Ref`)");
        refused(text, "/flowm", "line 7: flow collection");
        refused(text, "/flowm/a", "line 7: flow collection");
        refused(text, "/flows", "line 8: flow collection");
        refused(text, "/anc", "line 9: values with an anchor");
        refused(text, "/ali", "line 10: alias");
        refused(text, "/seq/0", "line 12: tagged value (`!Ref`)");
    }

    #[test]
    fn yaml_sequences_at_the_indent_of_their_key() {
        let text = "Resources:\n  Fn:\n    Properties:\n      Layers:\n      - arn:1\n      - arn:2\n      Runtime: python3.12\n  Other:\n    Type: X\n";
        let out = set(
            text,
            Format::Yaml,
            &p("/Resources/Fn/Properties/Layers/1"),
            &"arn:9".into(),
        )
        .unwrap();
        assert_eq!(out, text.replace("- arn:2", "- \"arn:9\""));
        assert_eq!(
            get(text, Format::Yaml, &p("/Resources/Fn/Properties/Runtime")).unwrap(),
            "python3.12"
        );
        assert_eq!(
            get(text, Format::Yaml, &p("/Resources/Other/Type")).unwrap(),
            "X"
        );
        assert!(
            get(text, Format::Yaml, &p("/Resources/Fn/Properties/Layers/2"))
                .unwrap_err()
                .contains("past the end")
        );
        let nested = "- a:\n  - 1\n  - 2\n  b: 3\n";
        let out = set(nested, Format::Yaml, &p("/0/a/1"), &5.into()).unwrap();
        assert_eq!(out, "- a:\n  - 1\n  - 5\n  b: 3\n");
    }

    #[test]
    fn yaml_edits_are_verified_by_reparsing() {
        // The anchored mapping is also used through an alias: editing it in place
        // would change /other too, so the edit is refused.
        let text = "base: &b\n  x: 1\nother: *b\n";
        let e = set(text, Format::Yaml, &p("/base/x"), &2.into()).unwrap_err();
        assert!(e.contains("would also change"), "{e}");
        // Without an alias the anchored mapping can be edited.
        let text = "base: &b\n  x: 1\n";
        assert_eq!(
            set(text, Format::Yaml, &p("/base/x"), &2.into()).unwrap(),
            "base: &b\n  x: 2\n"
        );
        // Values of every JSON type round-trip.
        let text = "a: 1\n";
        for v in [
            serde_json::json!(null),
            serde_json::json!(true),
            serde_json::json!(1.5),
            serde_json::json!(-7),
            serde_json::json!("multi\nline 'q'"),
            serde_json::json!("yes"),
            serde_json::json!([1, "two", {"k": null}]),
            serde_json::json!({"a b": [true]}),
        ] {
            let out = set(text, Format::Yaml, &p("/a"), &v).unwrap();
            assert!(out.starts_with("a: "), "{out}");
        }
        let text = "a: 'x'\n";
        let out = set(text, Format::Yaml, &p("/a"), &"l1\nl2".into()).unwrap();
        assert_eq!(out, "a: \"l1\\nl2\"\n");
        // Duplicate JSON keys: the first is edited, the parser keeps the last: refused.
        let e = set("{\"a\": 1, \"a\": 2}", Format::Json, &p("/a"), &3.into()).unwrap_err();
        assert!(
            e.contains("would also change") || e.contains("duplicate"),
            "{e}"
        );
        let e = set("a: 1\n---\nb: 2\n", Format::Yaml, &p("/a"), &3.into()).unwrap_err();
        assert!(e.contains("documents"), "{e}");
    }

    #[test]
    fn yaml_alias_bombs_are_refused_before_expansion() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        text.push_str("v: 1\n");
        let e = set(&text, Format::Yaml, &p("/v"), &2.into()).unwrap_err();
        assert!(e.contains("aliases"), "{e}");
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(1_000_000);
        assert!(get(&text, Format::Json, &p("/0"))
            .unwrap_err()
            .contains("invalid JSON"));
        let text = format!("{{\"a\": {}1{}}}", "[".repeat(200), "]".repeat(200));
        assert!(set(&text, Format::Json, &p("/a"), &1.into()).is_err());
    }

    #[test]
    fn yaml_cloudformation_template_with_tags_elsewhere() {
        let text = "AWSTemplateFormatVersion: '2010-09-09'\nParameters:\n  ImageTag:\n    Type: String\n    Default: latest # set by the pipeline\nResources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      Role: !GetAtt Role.Arn\n      Code:\n        ImageUri: !Sub '${Repo}:${ImageTag}'\n      Environment:\n        Variables:\n          SCRIPT: |\n            echo: hi\n            - not a list\n          STAGE: prod\nOutputs:\n  Arn:\n    Value: !Ref Fn\n";
        let out = set(
            text,
            Format::Yaml,
            &p("/Parameters/ImageTag/Default"),
            &"v1.4.2".into(),
        )
        .unwrap();
        assert_eq!(out, text.replace("Default: latest #", "Default: v1.4.2 #"));
        let out = set(
            text,
            Format::Yaml,
            &p("/Resources/Fn/Properties/Environment/Variables/STAGE"),
            &"dev".into(),
        )
        .unwrap();
        assert_eq!(out, text.replace("STAGE: prod", "STAGE: dev"));
        refused(
            text,
            "/Resources/Fn/Properties/Code/ImageUri",
            "line 12: tagged value (`!Sub`)",
        );
        refused(
            text,
            "/Resources/Fn/Properties/Environment/Variables/SCRIPT",
            "line 15: block scalar",
        );
        refused(text, "/Outputs/Arn/Value", "line 21: tagged value (`!Ref`)");
    }

    #[test]
    fn yaml_merge_keys_share_the_anchored_mapping() {
        let text = "defaults: &d\n  image: app:1\nweb:\n  <<: *d\n  port: 80\n";
        // Editing web's own key is fine; editing the anchored mapping would also change web.
        let out = set(text, Format::Yaml, &p("/web/port"), &8080.into()).unwrap();
        assert_eq!(out, text.replace("port: 80", "port: 8080"));
        let e = set(text, Format::Yaml, &p("/defaults/image"), &"app:2".into()).unwrap_err();
        assert!(e.contains("would also change"), "{e}");
    }
}
