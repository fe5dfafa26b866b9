//! Locating values in JSON text by JSON pointer, and editing the text around them:
//! replacing a value, adding a member, removing a member or element, appending
//! elements. Every edit touches only the bytes of the node it changes (and the comma
//! and whitespace that separate it from its neighbours); new values are written in
//! the document's own style (compact, or pretty with its indent unit).
//!
//! Invariant: the locator runs only on text serde_json accepted (nesting at most 128),
//! so its recursion is bounded.

use std::ops::Range;

use serde_json::Value;

use super::{show, splice};

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

pub(super) fn locate(text: &str, pointer: &[String]) -> Result<Range<usize>, String> {
    // The locator below recurses once per nesting level: let serde_json (nesting limit
    // 128) reject hostile documents first.
    serde_json::from_str::<serde_json::Value>(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut p = Json {
        b: text.as_bytes(),
        i: 0,
    };
    p.find(pointer, 0)
}

/// One item of a container: a member (its key, and its text from the key's opening
/// quote to the value's end) or an element (no key).
struct Item {
    key: Option<String>,
    /// The key's text and what follows it up to the value (`"name": `).
    key_part: Range<usize>,
    span: Range<usize>,
}

impl Json<'_> {
    /// The items of the object or array at `self.i`.
    fn items(&mut self) -> Result<Vec<Item>, String> {
        self.ws();
        let object = match self.b.get(self.i) {
            Some(b'{') => true,
            Some(b'[') => false,
            _ => return Err(self.err("expected an object or array")),
        };
        let close = if object { b'}' } else { b']' };
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&close) {
            return Ok(items);
        }
        loop {
            self.ws();
            let start = self.i;
            let key = if object {
                let k = self.string()?;
                self.expect(b':')?;
                self.ws();
                Some(k)
            } else {
                None
            };
            let key_part = start..self.i;
            let value = self.value()?;
            items.push(Item {
                key,
                key_part,
                span: start..value.end,
            });
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(c) if *c == close => return Ok(items),
                _ => return Err(self.err("expected `,` or the container's end")),
            }
        }
    }
}

/// The range of the container at `pointer` and its items.
fn container(text: &str, pointer: &[String]) -> Result<(Range<usize>, Vec<Item>), String> {
    let range = locate(text, pointer)?;
    let mut p = Json {
        b: text.as_bytes(),
        i: range.start,
    };
    let items = p
        .items()
        .map_err(|_| format!("the value at {} is not an object or array", show(pointer)))?;
    Ok((range, items))
}

/// How new values are written: compact (a one-line document) or pretty with the
/// document's indent unit.
fn indent_unit(text: &str) -> Option<String> {
    if !text.trim().contains('\n') {
        return None;
    }
    let unit = text
        .lines()
        .map(|l| &l[..l.len() - l.trim_start_matches([' ', '\t']).len()])
        .find(|ws| !ws.is_empty())
        .unwrap_or("  ");
    Some(unit.to_string())
}

/// The whitespace that starts the line holding byte `at`.
fn line_indent(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let line = &text[start..];
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// `v` as JSON text for a place whose line starts with `indent`.
fn render(text: &str, v: &Value, indent: &str) -> String {
    let Some(unit) = indent_unit(text) else {
        return v.to_string();
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(unit.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("values serialise");
    let pretty = String::from_utf8(out).expect("serde_json writes UTF-8");
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    pretty.replace('\n', &format!("{eol}{indent}"))
}

/// `text` with the value at `pointer` replaced by `v`.
pub(super) fn replace(text: &str, pointer: &[String], v: &Value) -> Result<String, String> {
    let r = locate(text, pointer)?;
    let new = render(text, v, line_indent(text, r.start));
    Ok(splice(text, r, &new))
}

/// `text` with `items` (rendered, each with its key part) added at the end of the
/// container at `pointer`, in the separator style of its last item.
fn push_items(
    text: &str,
    pointer: &[String],
    new: &[(Option<&str>, &Value)],
) -> Result<String, String> {
    let (range, items) = container(text, pointer)?;
    let Some(last) = items.last() else {
        // An empty container is replaced whole.
        let v = if new.iter().any(|(k, _)| k.is_some()) {
            Value::Object(
                new.iter()
                    .map(|(k, v)| (k.unwrap_or_default().to_string(), (*v).clone()))
                    .collect(),
            )
        } else {
            Value::Array(new.iter().map(|(_, v)| (*v).clone()).collect())
        };
        let rendered = render(text, &v, line_indent(text, range.start));
        return Ok(splice(text, range, &rendered));
    };
    let before = &text[..last.span.start];
    let sep = &before[before.trim_end().len()..];
    let indent = line_indent(text, last.span.start);
    let colon = last.key.as_ref().map(|_| {
        let kp = &text[last.key_part.clone()];
        let key_len = kp.rfind(':').expect("a member's key part holds its colon");
        kp[key_len..].to_string()
    });
    let mut add = String::new();
    for (k, v) in new {
        add.push(',');
        add.push_str(sep);
        if let (Some(k), Some(colon)) = (k, &colon) {
            add.push_str(&serde_json::to_string(k).expect("strings serialise"));
            add.push_str(colon);
        }
        add.push_str(&render(text, v, indent));
    }
    Ok(splice(text, last.span.end..last.span.end, &add))
}

/// `text` with member `key` (absent) added to the object at `pointer`, set to `v`.
pub(super) fn insert_member(
    text: &str,
    pointer: &[String],
    key: &str,
    v: &Value,
) -> Result<String, String> {
    push_items(text, pointer, &[(Some(key), v)])
}

/// `text` with `values` appended to the array at `pointer`.
pub(super) fn append(text: &str, pointer: &[String], values: &[Value]) -> Result<String, String> {
    let new: Vec<(Option<&str>, &Value)> = values.iter().map(|v| (None, v)).collect();
    push_items(text, pointer, &new)
}

/// `text` without the member or element `token` of the container at `pointer`.
pub(super) fn remove(text: &str, pointer: &[String], token: &str) -> Result<String, String> {
    let (range, items) = container(text, pointer)?;
    let at = match items.first().map(|it| it.key.is_some()) {
        Some(true) => items.iter().position(|it| it.key.as_deref() == Some(token)),
        _ => token.parse::<usize>().ok().filter(|&n| n < items.len()),
    };
    let Some(n) = at else {
        let mut full = pointer.to_vec();
        full.push(token.to_string());
        return Err(format!("nothing at {}", show(&full)));
    };
    let cut = if items.len() == 1 {
        let empty = if text.as_bytes()[range.start] == b'{' {
            "{}"
        } else {
            "[]"
        };
        return Ok(splice(text, range, empty));
    } else if n + 1 < items.len() {
        items[n].span.start..items[n + 1].span.start
    } else {
        items[n - 1].span.end..items[n].span.end
    };
    Ok(splice(text, cut, ""))
}
