//! Per-entry decisions: what happens to one input entry in one output — its new path
//! (`move`), whether it is kept (`include`/`exclude`, `symlinks`), which content and
//! export steps touch it, and how it is packed — from its name and kind alone, so
//! every entry is decided from the central directories before data moves.
//!
//! Invariant: a decided path has passed [`validate_name`]; a symbolic link never gets
//! content steps, exports or a compression change (its data is the target path).

use regex::Regex;

use super::glob::Globs;
use super::spec::EntryType;
use super::{OutputPlan, Step, Symlinks};
use crate::zip::read::validate_name;

pub use super::entry_plan::{EntryInfo, EntryKind, EntryPlan};

/// What [`OutputPlan::trace_kind`] found for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Steps that matched the entry, in order.
    pub matched: Vec<usize>,
    /// What [`OutputPlan::decide_kind`] decides.
    pub decided: Result<Option<EntryPlan>, String>,
    /// Copies of the entry (`copy` steps) that are kept, in step order.
    pub copies: Vec<EntryPlan>,
    /// `unzip` steps that matched the entry (or a copy of it), in step order: its
    /// members enter the output there (see [`OutputPlan::trace_member`]).
    pub unzips: Vec<Unzip>,
}

/// An `unzip` step that matched a zip entry: its members continue from the next step
/// under `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unzip {
    /// The `unzip` step.
    pub step: usize,
    /// Directory the members go under (`""` or ending in `/`).
    pub prefix: String,
}

/// What walking one entry makes besides the entry itself.
#[derive(Default)]
struct Offspring {
    copies: Vec<EntryPlan>,
    unzips: Vec<Unzip>,
}

impl OutputPlan {
    /// What happens to entry `name` of source `source` (index into [`Self::sources`]).
    /// `Ok(None)`: dropped. `Err`: the entry's new path is invalid.
    ///
    /// Knows only files and directories: for archives that may hold symbolic links,
    /// use [`Self::decide_kind`] with [`EntryKind::of`].
    pub fn decide(
        &self,
        source: usize,
        name: &str,
        is_dir: bool,
    ) -> Result<Option<EntryPlan>, String> {
        self.decide_kind(source, name, EntryKind::from_is_dir(is_dir))
    }

    /// [`Self::decide`] for an entry of kind `kind`. A symbolic link is renamed,
    /// selected and given a time and permissions like a file (its type stays a link),
    /// but no content step, `export` or compression change applies to it: its data is
    /// the target path. An `export` naming it fails; under `"symlinks": "drop"` it is
    /// dropped, under `"fail"` refused; under `"keep"` it is planned with
    /// [`EntryPlan::symlink`] set, and its target must pass
    /// [`crate::links::check_symlink`].
    ///
    /// Selections by size or type see this entry as empty and not executable: use
    /// [`Self::decide_entry`] with [`EntryInfo::of`] for central-directory entries.
    pub fn decide_kind(
        &self,
        source: usize,
        name: &str,
        kind: EntryKind,
    ) -> Result<Option<EntryPlan>, String> {
        self.decide_entry(source, EntryInfo::named(name, kind))
    }

    /// [`Self::decide_kind`] with everything selections may ask: size and mode.
    ///
    /// Copies made by `copy` steps are not returned: see [`Self::trace_entry`].
    pub fn decide_entry(
        &self,
        source: usize,
        info: EntryInfo<'_>,
    ) -> Result<Option<EntryPlan>, String> {
        self.decide_traced(source, info, None, &mut Offspring::default())
    }

    /// [`Self::decide_kind`], also telling which steps matched the entry on its way
    /// (in step order; a `select` step that dropped it is the last), for dry runs.
    pub fn trace_kind(&self, source: usize, name: &str, kind: EntryKind) -> Trace {
        self.trace_entry(source, EntryInfo::named(name, kind))
    }

    /// [`Self::trace_kind`] with size and mode ([`Self::decide_entry`]), and the
    /// entry's copies (steps matched by a copy are counted too).
    pub fn trace_entry(&self, source: usize, info: EntryInfo<'_>) -> Trace {
        let mut matched = Vec::new();
        let mut out = Offspring::default();
        let decided = self.decide_traced(source, info, Some(&mut matched), &mut out);
        Self::traced(matched, decided, out)
    }

    /// [`Self::trace_entry`] for `info`, a member of a zip entry that `unzip` (a
    /// record of the zip entry's [`Trace::unzips`]) unpacked: under its prefix, from
    /// the step after the `unzip` on. Its `name` is its path inside the zip.
    pub fn trace_member(&self, source: usize, info: EntryInfo<'_>, unzip: &Unzip) -> Trace {
        let mut matched = Vec::new();
        let mut out = Offspring::default();
        let mut d = self.deciding(source, info);
        d.path = format!("{}{}", unzip.prefix, info.name);
        let decided = self.walk(d, unzip.step + 1, &mut Some(&mut matched), &mut out);
        Self::traced(matched, decided, out)
    }

    fn traced(
        matched: Vec<usize>,
        decided: Result<Option<EntryPlan>, String>,
        out: Offspring,
    ) -> Trace {
        let out = match &decided {
            Ok(_) => out,
            Err(_) => Offspring::default(),
        };
        Trace {
            matched,
            decided,
            copies: out.copies,
            unzips: out.unzips,
        }
    }

    fn decide_traced(
        &self,
        source: usize,
        info: EntryInfo<'_>,
        mut trace: Option<&mut Vec<usize>>,
        out: &mut Offspring,
    ) -> Result<Option<EntryPlan>, String> {
        let d = self.deciding(source, info);
        self.walk(d, 0, &mut trace, out)
    }

    /// `info` of source `source` before the first step.
    fn deciding(&self, source: usize, info: EntryInfo<'_>) -> Deciding {
        let (name, kind) = (info.name, info.kind);
        let src = &self.sources[source];
        Deciding {
            kind,
            size: info.size,
            executable: info.executable,
            input: src.input,
            path: format!("{}{name}", src.prefix),
            plan: EntryPlan::untouched(
                String::new(),
                self.verify,
                (kind == EntryKind::Symlink).then_some(self.symlinks),
            ),
        }
    }

    /// `d` through the steps from `start` on; copies it makes are walked from the
    /// step after their `copy` and pushed to `out.copies` when kept; `unzip` steps
    /// that match it are pushed to `out.unzips`.
    fn walk(
        &self,
        mut d: Deciding,
        start: usize,
        trace: &mut Option<&mut Vec<usize>>,
        out: &mut Offspring,
    ) -> Result<Option<EntryPlan>, String> {
        let mut record = |i: usize| {
            if let Some(t) = trace.as_deref_mut() {
                t.push(i);
            }
        };
        let mut made = Vec::new();
        for (i, s) in self.steps.iter().enumerate().skip(start) {
            if !self.step_active(i) {
                continue;
            }
            match d.step(i, s, &self.labels[i])? {
                Verdict::Skipped => {}
                Verdict::Matched => record(i),
                Verdict::Copied => {
                    record(i);
                    let Step::Copy { to, .. } = s else {
                        unreachable!("only copy steps copy")
                    };
                    made.extend(to.iter().map(|t| (i + 1, d.copied_to(t))));
                }
                Verdict::Dropped { matched } => {
                    if matched {
                        record(i);
                    }
                    return self.walk_copies(made, trace, out).map(|()| None);
                }
                Verdict::Unzipped { prefix, keep } => {
                    record(i);
                    out.unzips.push(Unzip { step: i, prefix });
                    if !keep {
                        return self.walk_copies(made, trace, out).map(|()| None);
                    }
                }
                Verdict::Packed => {
                    // A member: no later step sees it.
                    record(i);
                    d.plan.inner = Some(i);
                    break;
                }
            }
        }
        let kept = self.finish(d)?;
        self.walk_copies(made, trace, out)?;
        Ok(kept)
    }

    fn walk_copies(
        &self,
        made: Vec<(usize, Deciding)>,
        trace: &mut Option<&mut Vec<usize>>,
        out: &mut Offspring,
    ) -> Result<(), String> {
        for (next, c) in made {
            if let Some(ep) = self.walk(c, next, trace, out)? {
                out.copies.push(ep);
            }
        }
        Ok(())
    }

    /// How the output's `pack` steps whose globs match `path` (an added file or
    /// manifest) pack it, in step order: compression, level, time and mode.
    pub fn packing_of_added(&self, path: &str) -> EntryPlan {
        let mut d = Deciding {
            kind: EntryKind::File,
            size: 0,
            executable: false,
            input: usize::MAX,
            path: path.to_string(),
            plan: EntryPlan::untouched(path.to_string(), false, None),
        };
        for s in self.active_steps() {
            if let Step::Pack { globs, .. } = s {
                if d.matches_all(globs) {
                    d.packed(s);
                }
            }
        }
        d.plan
    }

    /// The entry after every step: its final path checked, its link rule applied.
    fn finish(&self, d: Deciding) -> Result<Option<EntryPlan>, String> {
        let Deciding {
            kind,
            mut path,
            plan: mut ep,
            ..
        } = d;
        if kind.is_dir() && !path.ends_with('/') {
            path.push('/');
        }
        validate_name(&path).map_err(|why| format!("new path {path:?} is invalid: {why}"))?;
        if kind == EntryKind::Symlink {
            match self.symlinks {
                Symlinks::Keep => {}
                Symlinks::Drop => return Ok(None),
                Symlinks::Fail => {
                    return Err(format!(
                        "is a symbolic link, which \"symlinks\": \"fail\" refuses (output path \
                         {path:?}; \"drop\" leaves links out, \"keep\" keeps those inside \
                         the artifact)"
                    ))
                }
            }
        }
        // A member is listed in the manifest through its zip.
        ep.hash = self.manifest && !kind.is_dir() && ep.inner.is_none();
        ep.name = path;
        Ok(Some(ep))
    }
}

/// One entry on its way through an output's steps: its path so far and its plan.
#[derive(Clone)]
struct Deciding {
    kind: EntryKind,
    size: u64,
    executable: bool,
    /// The input artifact it comes from.
    input: usize,
    path: String,
    plan: EntryPlan,
}

/// What one step did to a [`Deciding`] entry.
enum Verdict {
    /// The step does not apply to the entry.
    Skipped,
    /// The step matched and the entry goes on.
    Matched,
    /// The entry is left out (by this step's match, or by not matching an `include`).
    Dropped { matched: bool },
    /// A `copy` step matched: the entry goes on, and so do its copies.
    Copied,
    /// A `zip` step matched: the entry is a member of its zip, at its new path.
    Packed,
    /// An `unzip` step matched: the entry's members go on under `prefix`; the entry
    /// itself only with `keep`.
    Unzipped { prefix: String, keep: bool },
}

impl Deciding {
    /// Directory paths keep their trailing `/`; globs match them with or without it.
    fn matches(&self, globs: &Globs) -> bool {
        globs.is_match(&self.path, self.kind.is_dir())
    }

    /// True when the entry is of type `t`.
    fn is(&self, t: EntryType) -> bool {
        match t {
            EntryType::File => self.kind == EntryKind::File,
            EntryType::Directory => self.kind == EntryKind::Dir,
            EntryType::Symlink => self.kind == EntryKind::Symlink,
            EntryType::Executable => self.executable,
        }
    }

    fn matches_all(&self, globs: &Option<Globs>) -> bool {
        globs.as_ref().is_none_or(|g| self.matches(g))
    }

    /// Step `i` (labelled `label`) applied to the entry.
    fn step(&mut self, i: usize, s: &Step, label: &str) -> Result<Verdict, String> {
        let (is_dir, is_link) = (self.kind.is_dir(), self.kind == EntryKind::Symlink);
        Ok(match s {
            Step::Select {
                include,
                globs,
                inputs,
                types,
                size,
            } => {
                if inputs.as_ref().is_some_and(|v| !v.contains(&self.input)) {
                    return Ok(Verdict::Skipped);
                }
                let hit = self.matches(globs)
                    && types.as_ref().is_none_or(|t| t.iter().any(|t| self.is(*t)))
                    && size.is_none_or(|(min, max)| {
                        self.kind != EntryKind::Dir && (min..=max).contains(&self.size)
                    });
                match (hit, hit == *include) {
                    (_, false) => Verdict::Dropped { matched: hit },
                    (true, true) => Verdict::Matched,
                    (false, true) => Verdict::Skipped,
                }
            }
            Step::Move { globs, .. } if !self.matches_all(globs) => Verdict::Skipped,
            Step::Move { .. } => self.moved(s, label)?,
            Step::Content { globs, .. } => {
                if is_dir || is_link || !globs.is_match(&self.path, false) {
                    return Ok(Verdict::Skipped);
                }
                self.plan.ops.push(i);
                Verdict::Matched
            }
            Step::Export { file, .. } => {
                if is_dir || file != &self.path {
                    return Ok(Verdict::Skipped);
                }
                if is_link {
                    return Err(format!(
                        "{label} reads {:?}, which is a symbolic link (its data is the link \
                         target, not file content): export a regular file",
                        self.path
                    ));
                }
                self.plan.ops.push(i);
                Verdict::Matched
            }
            Step::Pack { globs, .. } if !self.matches_all(globs) => Verdict::Skipped,
            Step::Pack { .. } => {
                self.packed(s);
                Verdict::Matched
            }
            Step::Zip { globs, strip, .. } => {
                if !self.matches(globs) {
                    return Ok(Verdict::Skipped);
                }
                if let Some(rest) = strip.as_deref().and_then(|p| self.path.strip_prefix(p)) {
                    if rest.is_empty() {
                        // The prefix directory itself.
                        return Ok(Verdict::Dropped { matched: true });
                    }
                    self.path = rest.to_string();
                }
                Verdict::Packed
            }
            Step::Copy { from, .. } => {
                if is_dir || from != &self.path {
                    return Ok(Verdict::Skipped);
                }
                Verdict::Copied
            }
            Step::Unzip {
                globs, to, keep, ..
            } => {
                if is_dir || is_link || !self.matches(globs) {
                    return Ok(Verdict::Skipped);
                }
                let prefix = match to {
                    Some(dir) => dir.clone(),
                    None => unzip_dir(&self.path).ok_or_else(|| {
                        format!(
                            "{label} unpacks {:?}, whose name has no extension to take off \
                             for its directory: give \"to\"",
                            self.path
                        )
                    })?,
                };
                Verdict::Unzipped {
                    prefix,
                    keep: *keep,
                }
            }
            Step::Add { .. } | Step::Manifest { .. } => Verdict::Skipped,
        })
    }

    /// A copy of the entry, as it is now, at `path`.
    fn copied_to(&self, path: &str) -> Deciding {
        Deciding {
            path: path.to_string(),
            ..self.clone()
        }
    }

    /// A matching `move` step: the new path, checked.
    fn moved(&mut self, s: &Step, label: &str) -> Result<Verdict, String> {
        let Step::Move {
            strip,
            regex,
            flatten,
            add,
            ..
        } = s
        else {
            unreachable!("moved() is only called for move steps")
        };
        if self.kind.is_dir() && *flatten {
            return Ok(Verdict::Dropped { matched: true });
        }
        self.path = apply_move(&self.path, strip, regex, *flatten, add);
        if self.path.is_empty() || self.path == "/" {
            // e.g. the stripped prefix directory itself
            return Ok(Verdict::Dropped { matched: true });
        }
        validate_name(&self.path)
            .map_err(|why| format!("{label} produces {:?}, which is invalid: {why}", self.path))?;
        Ok(Verdict::Matched)
    }

    /// A matching `pack` step: compression, time and permissions.
    fn packed(&mut self, s: &Step) {
        let Step::Pack {
            compression,
            level,
            mtime,
            file_mode,
            dir_mode,
            ..
        } = s
        else {
            unreachable!("packed() is only called for pack steps")
        };
        let ep = &mut self.plan;
        match self.kind {
            // The target is stored as is; the mode keeps the link type.
            EntryKind::Symlink => ep.mode = file_mode.or(ep.mode),
            EntryKind::File => {
                ep.method = compression.or(ep.method);
                ep.level = level.or(ep.level);
                ep.mode = file_mode.or(ep.mode);
            }
            EntryKind::Dir => ep.mode = dir_mode.or(ep.mode),
        }
        ep.mtime = mtime.or(ep.mtime);
    }
}

/// The default directory of an unpacked zip entry: its path without the extension
/// of its last component, and `/` (`dist/site.zip` → `dist/site/`); `None` without
/// an extension.
fn unzip_dir(path: &str) -> Option<String> {
    let (dir, file) = path.rsplit_once('/').map_or(("", path), |(d, f)| (d, f));
    let stem = file
        .rsplit_once('.')
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty())?;
    Some(match dir {
        "" => format!("{stem}/"),
        d => format!("{d}/{stem}/"),
    })
}

fn apply_move(
    name: &str,
    strip: &Option<String>,
    regex: &Option<(Regex, String)>,
    flatten: bool,
    add: &Option<String>,
) -> String {
    let mut n = name.to_string();
    if let Some(p) = strip {
        if let Some(rest) = n.strip_prefix(p.as_str()) {
            n = rest.to_string();
        }
    }
    if let Some((re, to)) = regex {
        if let Some(c) = re.captures(&n) {
            let mut out = String::new();
            c.expand(to, &mut out);
            n = out;
        }
    }
    if flatten {
        n = n.rsplit('/').next().unwrap_or("").to_string();
    }
    if let Some(p) = add {
        n = format!("{p}{n}");
    }
    n
}
