//! Structured edits of a whole document: set (optionally creating missing keys),
//! delete, append, and JSON Merge Patch (RFC 7396). Each is carried out as a series
//! of primitive text edits (replace a node, add a member, remove a member or item,
//! append items) in the document's format, while the same operation is applied to the
//! parsed tree; the edited text must then read back as exactly that tree.
//!
//! Invariant: [`edit`] returns text only after [`verify::check_tree`] accepted it, so
//! text outside the edited nodes is kept byte for byte and nothing else changes.

use serde_json::Value;
use yaml_rust2::Yaml;

use super::super::spec::Format;
use super::super::verify;
use super::{json, show, yaml, yaml_edit};

/// One structured edit.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Set the value at `pointer`; with `create`, missing mapping keys on the way are
    /// created (as mappings, then the value).
    Set {
        pointer: Vec<String>,
        value: Value,
        create: bool,
    },
    /// Remove the key or item at `pointer`.
    Delete { pointer: Vec<String> },
    /// Append `values` to the sequence at `pointer`.
    Append {
        pointer: Vec<String>,
        values: Vec<Value>,
    },
    /// Apply `patch` as a JSON Merge Patch to the value at `pointer`.
    Merge { pointer: Vec<String>, patch: Value },
}

/// `text` with `e` applied.
pub fn edit(text: &str, format: Format, e: &Edit) -> Result<String, String> {
    let mut doc = Doc {
        text: text.to_string(),
        format,
        tree: verify::load_tree(text, format)?,
        work: 0,
    };
    match e {
        Edit::Set {
            pointer,
            value,
            create,
        } => doc.set(pointer, value, *create)?,
        Edit::Delete { pointer } => {
            let (token, parent) = pointer.split_last().ok_or("cannot delete the root")?;
            if doc.node(pointer).is_none() {
                return Err(format!("nothing at {}", show(pointer)));
            }
            doc.remove(parent, token)?;
        }
        Edit::Append { pointer, values } => match doc.node(pointer) {
            Some(Yaml::Array(_)) => doc.append(pointer, values)?,
            Some(_) => return Err(format!("the value at {} is not a list", show(pointer))),
            None => return Err(format!("nothing at {}", show(pointer))),
        },
        Edit::Merge { pointer, patch } => {
            if doc.node(pointer).is_none() {
                return Err(format!("nothing at {}", show(pointer)));
            }
            doc.merge(&mut pointer.clone(), patch)?;
        }
    }
    verify::check_tree(&doc.text, format, &doc.tree)?;
    Ok(doc.text)
}

/// Bytes of text the primitive edits of one [`edit`] may go through (each primitive
/// re-reads the whole text): a large patch on a large file is refused, not left to
/// run for minutes.
#[cfg(not(test))]
const WORK_LIMIT: u64 = 1 << 30;
#[cfg(test)]
const WORK_LIMIT: u64 = 1 << 20;

/// A document being edited: its text, the tree the text must read as, and the bytes
/// of text read so far.
struct Doc {
    text: String,
    format: Format,
    tree: Yaml,
    work: u64,
}

impl Doc {
    fn node(&mut self, pointer: &[String]) -> Option<&mut Yaml> {
        verify::slot(&mut self.tree, pointer)
    }

    /// Counts one primitive edit's pass over the text.
    fn spend(&mut self) -> Result<(), String> {
        self.work += self.text.len() as u64 + 1024;
        if self.work > WORK_LIMIT {
            return Err(format!(
                "the edit needs more than {} MiB of passes over a {} byte file (a patch with \
                 very many keys); split it, or edit a smaller file",
                WORK_LIMIT >> 20,
                self.text.len()
            ));
        }
        Ok(())
    }

    fn replace(&mut self, pointer: &[String], v: &Value) -> Result<(), String> {
        self.spend()?;
        let scalar = !matches!(self.node(pointer), Some(Yaml::Hash(_) | Yaml::Array(_)));
        self.text = match self.format {
            Format::Json => json::replace(&self.text, pointer, v)?,
            Format::Yaml if scalar && !pointer.is_empty() => {
                // A scalar keeps the strict in-place rules (and its quoting style).
                match yaml::yaml_locate(&self.text, pointer) {
                    Ok(r) if !matches!(v, Value::Object(_) | Value::Array(_)) => {
                        let old = self.text[r.clone()].chars().next();
                        let mut out = self.text.clone();
                        out.replace_range(r, &yaml::yaml_scalar(v, old));
                        out
                    }
                    Ok(_) => yaml_edit::replace(&self.text, pointer, v)?,
                    // `key:` with nothing after it.
                    Err(_) if matches!(self.node(pointer), Some(Yaml::Null)) => {
                        yaml_edit::replace(&self.text, pointer, v)?
                    }
                    Err(e) => return Err(e),
                }
            }
            Format::Yaml => yaml_edit::replace(&self.text, pointer, v)?,
        };
        // The text and the tree name keys the same way except for YAML keys that do
        // not read as text (`True:`, `007:`): refused rather than guessed.
        let slot = self.node(pointer).ok_or_else(|| {
            format!(
                "nothing at {} (a key that YAML does not read as text?)",
                show(pointer)
            )
        })?;
        *slot = verify::to_yaml(v);
        Ok(())
    }

    fn insert(&mut self, pointer: &[String], key: &str, v: &Value) -> Result<(), String> {
        self.spend()?;
        self.text = match self.format {
            Format::Json => json::insert_member(&self.text, pointer, key, v)?,
            Format::Yaml => yaml_edit::insert_member(&self.text, pointer, key, v)?,
        };
        if let Some(Yaml::Hash(h)) = self.node(pointer) {
            h.insert(Yaml::String(key.to_string()), verify::to_yaml(v));
        }
        Ok(())
    }

    fn remove(&mut self, pointer: &[String], token: &str) -> Result<(), String> {
        self.spend()?;
        self.text = match self.format {
            Format::Json => json::remove(&self.text, pointer, token)?,
            Format::Yaml => yaml_edit::remove(&self.text, pointer, token)?,
        };
        match self.node(pointer) {
            Some(Yaml::Hash(h)) => {
                let key = h
                    .keys()
                    .find(|k| verify::key_text(k).as_deref() == Some(token))
                    .cloned();
                if let Some(key) = key {
                    h.remove(&key);
                }
            }
            Some(Yaml::Array(a)) => {
                if let Some(n) = token.parse::<usize>().ok().filter(|&n| n < a.len()) {
                    a.remove(n);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn append(&mut self, pointer: &[String], values: &[Value]) -> Result<(), String> {
        self.spend()?;
        self.text = match self.format {
            Format::Json => json::append(&self.text, pointer, values)?,
            Format::Yaml => yaml_edit::append(&self.text, pointer, values)?,
        };
        if let Some(Yaml::Array(a)) = self.node(pointer) {
            a.extend(values.iter().map(verify::to_yaml));
        }
        Ok(())
    }

    fn set(&mut self, pointer: &[String], v: &Value, create: bool) -> Result<(), String> {
        if self.node(pointer).is_some() {
            return self.replace(pointer, v);
        }
        if !create {
            // The text lookup names what is missing ("no key ... in the mapping at ...").
            return match self.format {
                Format::Json => json::locate(&self.text, pointer).map(|_| ()),
                Format::Yaml => yaml::yaml_lines(&self.text)
                    .and_then(|lines| yaml::find(&lines, pointer).map(|_| ())),
            }
            .and(Err(format!("nothing at {}", show(pointer))));
        }
        // The deepest existing node on the way, and what is missing below it.
        let have = (0..pointer.len())
            .rev()
            .find(|&n| self.node(&pointer[..n]).is_some())
            .unwrap_or(0);
        let (parent, missing) = pointer.split_at(have);
        let nested = missing[1..].iter().rev().fold(v.clone(), |inner, k| {
            Value::Object([(k.clone(), inner)].into_iter().collect())
        });
        match self.node(parent) {
            Some(Yaml::Hash(_)) => self.insert(parent, &missing[0], &nested),
            Some(Yaml::Null) => {
                let one = Value::Object([(missing[0].clone(), nested)].into_iter().collect());
                self.replace(parent, &one)
            }
            Some(Yaml::Array(_)) => Err(format!(
                "index {:?} is not in the list at {} (`set` creates mapping keys only; \
                 use `append` to add to a list)",
                missing[0],
                show(parent)
            )),
            _ => Err(format!(
                "the value at {} is a scalar; cannot create {:?} in it",
                show(parent),
                missing[0]
            )),
        }
    }

    /// RFC 7396 at `pointer` (which exists).
    fn merge(&mut self, pointer: &mut Vec<String>, patch: &Value) -> Result<(), String> {
        let Value::Object(members) = patch else {
            return self.replace(pointer, patch);
        };
        if !matches!(self.node(pointer), Some(Yaml::Hash(_))) {
            return self.replace(pointer, &without_nulls(patch));
        }
        for (k, v) in members {
            pointer.push(k.clone());
            let present = self.node(pointer).is_some();
            pointer.pop();
            match (v, present) {
                (Value::Null, true) => self.remove(pointer, k)?,
                (Value::Null, false) => {}
                (_, false) => self.insert(pointer, k, &without_nulls(v))?,
                (_, true) => {
                    pointer.push(k.clone());
                    self.merge(pointer, v)?;
                    pointer.pop();
                }
            }
        }
        Ok(())
    }
}

/// A patch value as RFC 7396 writes it where nothing was: object members that are
/// `null` left out, at every depth.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), without_nulls(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}
