//! Reading and setting values in JSON and YAML text by JSON pointer, editing only the
//! bytes of the value so the rest of the file (formatting, comments, key order) stays
//! exactly as it was.
//!
//! JSON: any valid document. YAML: block-style mappings and sequences with plain or
//! quoted scalars (what CloudFormation template configurations, Helm values and
//! buildspecs use); flow collections, block scalars (`|`, `>`), anchors and multi-line
//! plain scalars are reported as unsupported at the pointer.

use std::ops::Range;

use super::spec::Format;

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
    indent: usize,
    content: String,
}

/// Logical lines: blank and comment lines dropped, `- x` split into a `-` line and an
/// `x` line indented past the dash.
fn yaml_lines(text: &str) -> Result<Vec<Line>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        let indent = line.len() - line.trim_start_matches(' ').len();
        let mut content = &line[indent..];
        let mut col = indent;
        if content.starts_with('\t') {
            return Err("YAML with tab indentation is not supported".into());
        }
        if !(content.is_empty() || content.starts_with('#') || content == "---" || content == "...")
        {
            while content == "-" || content.starts_with("- ") {
                out.push(Line {
                    at: at + col,
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

fn yaml_locate(text: &str, pointer: &[String]) -> Result<Range<usize>, String> {
    let lines = yaml_lines(text)?;
    let mut lo = 0;
    let mut hi = lines.len();
    let mut depth = 0;
    // An inline value found for the previous token (mapping value on the key line).
    let mut inline: Option<(usize, String)> = None;
    loop {
        let here = show(&pointer[..depth]);
        if let Some((at, value)) = inline.take() {
            if depth < pointer.len() {
                return Err(format!(
                    "the value at {here} is a scalar or flow collection; cannot descend"
                ));
            }
            if value.starts_with(['{', '[', '|', '>', '&', '*']) {
                return Err(format!("the value at {here} uses YAML syntax that cannot be edited in place (flow collection, block scalar or anchor)"));
            }
            return Ok(at..at + yaml_scalar_len(&value));
        }
        if lo >= hi {
            return Err(format!("nothing at {here}"));
        }
        let indent = lines[lo].indent;
        let children: Vec<usize> = (lo..hi).filter(|&k| lines[k].indent == indent).collect();
        let Some(token) = pointer.get(depth) else {
            if children.len() == 1
                && hi - lo == 1
                && yaml_key(&lines[lo].content).is_none()
                && lines[lo].content != "-"
            {
                let l = &lines[lo];
                return Ok(l.at..l.at + yaml_scalar_len(&l.content));
            }
            return Err(format!(
                "the value at {here} is a mapping or sequence, not a scalar"
            ));
        };
        let block_end = |k: usize| {
            (k + 1..hi)
                .find(|&j| lines[j].indent <= indent)
                .unwrap_or(hi)
        };
        if lines[lo].content == "-" {
            let n: usize = token
                .parse()
                .map_err(|_| format!("{token:?} is not a sequence index (at {here})"))?;
            let Some(&k) = children.get(n) else {
                return Err(format!(
                    "index {n} is past the end of the sequence at {here}"
                ));
            };
            lo = k + 1;
            hi = block_end(k);
        } else {
            let mut found = None;
            for &k in &children {
                if let Some((key, off)) = yaml_key(&lines[k].content) {
                    if &key == token {
                        found = Some((k, off));
                        break;
                    }
                }
            }
            let Some((k, off)) = found else {
                return Err(format!("no key {token:?} in the mapping at {here}"));
            };
            let value = lines[k].content[off..].to_string();
            let value_clean = &value[..yaml_scalar_len(&value)];
            if !value_clean.is_empty() {
                inline = Some((lines[k].at + off, value));
            }
            lo = k + 1;
            hi = block_end(k);
        }
        depth += 1;
    }
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
        serde_json::Value::String(s) if old_first == Some('\'') => {
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
                && s.parse::<f64>().is_err();
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
            .contains("cannot descend"));
        assert!(get(text, Format::Yaml, &p("/image"))
            .unwrap_err()
            .contains("not a scalar"));
        assert!(get(text, Format::Yaml, &p("/nope"))
            .unwrap_err()
            .contains("no key"));
    }
}
