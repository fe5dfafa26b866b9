//! Proof that an in-place edit of JSON or YAML text changed exactly what it meant to:
//! the original text is parsed (serde_json; yaml-rust2 for YAML 1.2) into a tree, the
//! edit is applied to that tree, and the edited text must read back as exactly the
//! result ([`check_tree`]).
//!
//! Invariant: `structured::edit` returns edited text only after [`check_tree`]
//! accepted it, so a mis-located byte range, an alias sharing the edited node, a
//! duplicate key or a scalar that re-reads as another type refuses the edit instead of
//! corrupting the file. YAML alias expansion is measured on the event stream before the
//! loader clones anything: documents that expand past 100,000 nodes plus one per two
//! bytes of text are refused without being expanded.

use std::collections::HashMap;

use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::{Yaml, YamlLoader};

const CHANGED_MORE: &str =
    "the edit would also change other values, or does not read back as the new value \
     (duplicate keys, an anchor shared through aliases, or syntax the in-place editor does \
     not handle); the file is left unchanged";

/// The tree of a JSON or YAML document, in YAML's model (JSON through [`to_yaml`]),
/// for structured edits to be applied to and checked against.
pub(super) fn load_tree(text: &str, format: super::spec::Format) -> Result<Yaml, String> {
    match format {
        super::spec::Format::Json => serde_json::from_str::<Value>(text)
            .map(|v| to_yaml(&v))
            .map_err(|e| format!("not valid JSON: {e}")),
        super::spec::Format::Yaml => load_one(text),
    }
}

/// Checks that `after` reads as exactly `expected`.
pub(super) fn check_tree(
    after: &str,
    format: super::spec::Format,
    expected: &Yaml,
) -> Result<(), String> {
    match load_tree(after, format) {
        Ok(edited) if &edited == expected => Ok(()),
        _ => Err(CHANGED_MORE.into()),
    }
}

/// How a plain scalar reads in YAML 1.2 (the core schema).
pub fn plain_reads_as_string(s: &str) -> bool {
    Yaml::from_str(s) == Yaml::String(s.to_string())
}

/// Deepest nesting of sequences and mappings loaded: the loaded tree is dropped (and
/// converted) recursively, so a hostile document must not reach the stack's limit.
const MAX_DEPTH: usize = 128;

/// The YAML documents of `text`, refused without being expanded when their aliases
/// expand past 100,000 nodes plus one per two bytes of text, or when they nest
/// deeper than [`MAX_DEPTH`].
pub(super) fn load_documents(text: &str) -> Result<Vec<Yaml>, String> {
    let mut budget = AliasBudget {
        limit: 100_000 + text.len() as u64 / 2,
        ..AliasBudget::default()
    };
    // Event by event (yaml-rust2's `load` recurses once per nesting level, so a
    // hostile document would overflow the stack before any limit could be checked).
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| format!("not valid YAML: {e}"))?;
        if event == Event::StreamEnd || budget.over || budget.deepest > MAX_DEPTH {
            break;
        }
        budget.on_event(event, mark);
    }
    if budget.over {
        return Err(format!(
            "the YAML's aliases expand to more than {} nodes; refused",
            budget.limit
        ));
    }
    if budget.deepest > MAX_DEPTH {
        return Err(format!(
            "the YAML nests deeper than {MAX_DEPTH} levels; refused"
        ));
    }
    YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))
}

fn load_one(text: &str) -> Result<Yaml, String> {
    let mut docs = load_documents(text)?;
    if docs.len() != 1 {
        return Err(format!(
            "the file has {} YAML documents; structured edits need exactly one",
            docs.len()
        ));
    }
    Ok(docs.remove(0))
}

/// Counts the nodes of the documents with every alias expanded, and how deep the
/// loaded tree nests (an alias puts its anchor's whole height under its own level).
#[derive(Default)]
struct AliasBudget {
    /// Each anchor's node count and height.
    anchors: HashMap<usize, (u64, usize)>,
    /// Open collections: nodes so far, anchor, tallest child.
    stack: Vec<(u64, usize, usize)>,
    total: u64,
    limit: u64,
    over: bool,
    deepest: usize,
}

impl AliasBudget {
    /// A finished node of `n` nodes and height `h`, anchored as `anchor` (0: none).
    fn node(&mut self, n: u64, h: usize, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (n, h));
        }
        self.deepest = self.deepest.max(self.stack.len().saturating_add(h));
        let sum = match self.stack.last_mut() {
            Some(top) => {
                top.0 = top.0.saturating_add(n);
                top.2 = top.2.max(h);
                top.0
            }
            None => {
                self.total = self.total.saturating_add(n);
                self.total
            }
        };
        self.over |= sum > self.limit;
    }
}

impl MarkedEventReceiver for AliasBudget {
    fn on_event(&mut self, ev: Event, _mark: Marker) {
        match ev {
            Event::Scalar(_, _, anchor, _) => self.node(1, 1, anchor),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.stack.push((0, anchor, 0));
                self.deepest = self.deepest.max(self.stack.len());
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((n, anchor, tallest)) = self.stack.pop() {
                    self.node(n.saturating_add(1), tallest.saturating_add(1), anchor);
                }
            }
            Event::Alias(id) => {
                let (n, h) = self.anchors.get(&id).copied().unwrap_or((1, 1));
                self.node(n, h, 0);
            }
            _ => {}
        }
    }
}

pub(super) fn key_text(k: &Yaml) -> Option<String> {
    match k {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn slot<'a>(mut node: &'a mut Yaml, pointer: &[String]) -> Option<&'a mut Yaml> {
    for t in pointer {
        node = match node {
            Yaml::Hash(h) => {
                let key = h
                    .keys()
                    .find(|k| key_text(k).as_deref() == Some(t.as_str()))?
                    .clone();
                h.get_mut(&key)?
            }
            Yaml::Array(a) => a.get_mut(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

pub(super) fn to_yaml(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(to_yaml).collect()),
        Value::Object(o) => Yaml::Hash(
            o.iter()
                .map(|(k, v)| (Yaml::String(k.clone()), to_yaml(v)))
                .collect(),
        ),
    }
}
