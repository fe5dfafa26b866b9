//! `merge` steps whose patch is an entry of an input (`patch_file`): which entries a
//! job must read before data moves ([`Plan::patch_files`]), and handing each step its
//! parsed patch ([`Plan::provide_patch_files`]).
//!
//! Invariants: a bare path is looked up in the inputs feeding the step's output and
//! must be in exactly one of them; `"Input::path"` names the input. Steps that their
//! `when` turns off need no file. A patch is JSON or YAML by its extension, parsed with
//! the same limits as any structured edit (nesting, YAML aliases), and errors name
//! the step's `patch_file` field.

use std::collections::{BTreeMap, BTreeSet};

use super::structured::{self, Edit};
use super::{perr, verify, ContentOp, Plan, PlanError, Step};

/// Where a `merge` patch is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchFile {
    /// The field that named it (`steps[1].merge.patch_file`).
    pub at: String,
    /// The input it was named in (`Input::path`), as an index of the job's inputs.
    pub input: Option<usize>,
    /// The entry's path, as its input names it.
    pub path: String,
    /// The patch has been read into the step ([`Plan::provide_patch_files`]).
    pub read: bool,
}

impl Plan {
    /// True when some `merge` step reads its patch from a file.
    pub fn has_patch_files(&self) -> bool {
        self.outputs.iter().flat_map(|o| &o.steps).any(|s| {
            matches!(
                s,
                Step::Content {
                    op: ContentOp::Edit {
                        patch_file: Some(_),
                        ..
                    },
                    ..
                }
            )
        })
    }

    /// Inputs named by `"Input::path"` patch files (to index them even when they feed
    /// no output).
    pub fn patch_file_inputs(&self) -> Vec<usize> {
        let mut out = BTreeSet::new();
        for op in &self.outputs {
            for s in &op.steps {
                if let Step::Content {
                    op:
                        ContentOp::Edit {
                            patch_file: Some(PatchFile { input: Some(i), .. }),
                            ..
                        },
                    ..
                } = s
                {
                    out.insert(*i);
                }
            }
        }
        out.into_iter().collect()
    }

    /// The (input index, path, field of the first step naming it) of every patch file
    /// the job must read, each once; `has(input, path)` says whether that input has
    /// such a file entry. Call after [`Plan::resolve_conditions`].
    pub fn patch_files(
        &mut self,
        has: impl Fn(usize, &str) -> bool,
    ) -> Result<Vec<(usize, String, String)>, PlanError> {
        let mut wanted: BTreeMap<(usize, String), String> = BTreeMap::new();
        self.each_patch_step(|f, _, sources| {
            let input = match f.input {
                Some(input) if has(input, &f.path) => input,
                Some(_) => {
                    return Err(perr(
                        &f.at,
                        format!("the input it names has no file {:?}", f.path),
                    ))
                }
                None => one_source(f, sources, &has)?,
            };
            f.input = Some(input);
            wanted
                .entry((input, f.path.clone()))
                .or_insert_with(|| f.at.clone());
            Ok(())
        })?;
        Ok(wanted.into_iter().map(|((i, p), at)| (i, p, at)).collect())
    }

    /// Gives every active `merge` step with a patch file its patch: `text(input, path)`
    /// is the text of an entry [`Plan::patch_files`] listed.
    pub fn provide_patch_files<'t>(
        &mut self,
        text: impl Fn(usize, &str) -> Option<&'t str>,
    ) -> Result<(), PlanError> {
        self.each_patch_step(|f, edit, _| {
            let Edit::Merge { patch, .. } = edit else {
                unreachable!("only merge steps have a patch file")
            };
            let input = f.input.expect("Plan::patch_files resolved the input");
            let t = text(input, &f.path)
                .ok_or_else(|| perr(&f.at, format!("{:?} was not read", f.path)))?;
            *patch = parse_patch(&f.path, t).map_err(|m| perr(&f.at, m))?;
            f.read = true;
            Ok(())
        })
    }

    /// Calls `visit` on every `merge` step with a patch file that applies (its `when`
    /// holds), with its edit and its output's sources (input index and name).
    fn each_patch_step(
        &mut self,
        mut visit: impl FnMut(&mut PatchFile, &mut Edit, &[(usize, String)]) -> Result<(), PlanError>,
    ) -> Result<(), PlanError> {
        for op in &mut self.outputs {
            let sources: Vec<(usize, String)> = op
                .sources
                .iter()
                .map(|s| (s.input, s.input_name.clone()))
                .collect();
            for (i, s) in op.steps.iter_mut().enumerate() {
                if let Step::Content {
                    op:
                        ContentOp::Edit {
                            edit,
                            patch_file: Some(f),
                            ..
                        },
                    ..
                } = s
                {
                    if op.active[i] {
                        visit(f, edit, &sources)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The one input of `sources` (index, name) that has `f.path`.
fn one_source(
    f: &PatchFile,
    sources: &[(usize, String)],
    has: &impl Fn(usize, &str) -> bool,
) -> Result<usize, PlanError> {
    let found: Vec<&(usize, String)> = sources.iter().filter(|(i, _)| has(*i, &f.path)).collect();
    match found[..] {
        [(i, _)] => Ok(*i),
        [] => {
            let names: Vec<&str> = sources.iter().map(|(_, n)| n.as_str()).collect();
            Err(perr(
                &f.at,
                format!(
                    "no file {:?} in the inputs feeding the output ({names:?})",
                    f.path
                ),
            ))
        }
        _ => {
            let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
            Err(perr(
                &f.at,
                format!(
                    "{:?} is in several inputs ({names:?}): write \"{}::{}\"",
                    f.path, names[0], f.path
                ),
            ))
        }
    }
}

/// A patch file's text as a JSON value.
fn parse_patch(path: &str, text: &str) -> Result<serde_json::Value, String> {
    match structured::format_of(path, None) {
        Some(super::spec::Format::Json) => {
            serde_json::from_str(text).map_err(|e| format!("{path:?}: not valid JSON: {e}"))
        }
        Some(super::spec::Format::Yaml) => {
            let mut docs = verify::load_documents(text).map_err(|e| format!("{path:?}: {e}"))?;
            if docs.len() != 1 {
                return Err(format!(
                    "{path:?} holds {} YAML documents; a patch is exactly one",
                    docs.len()
                ));
            }
            super::parse::to_json(docs.remove(0), "").map_err(|e| format!("{path:?}: {e}"))
        }
        None => Err(format!("{path:?} is not a .json, .yml or .yaml file")),
    }
}
