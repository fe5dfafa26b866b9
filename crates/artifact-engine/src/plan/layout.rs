//! Laying out one output from its sources' central directories: every entry decided,
//! then checked against the others — exact clashes follow `on_conflict`, case and
//! Unicode-normalization clashes are refused unless allowed, and nothing may land
//! under a kept symbolic link. Members of zip entries that `unzip` steps unpack follow
//! their zip entry's own decision (see [`super::matched`] for the check across
//! outputs that no step matched nothing).

use std::collections::HashMap;

use super::{EntryInfo, EntryKind, EntryPlan, Extra, OnConflict, OutputPlan, Step, Trace, Unzip};
use crate::names::{case_clash_why, fold_case, CaseIndex};

/// An entry of an input chosen for an output.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Index into the output's sources.
    pub source: usize,
    /// Index into that source's entries.
    pub entry: usize,
    /// What to do with it.
    pub plan: EntryPlan,
}

/// The outcome of planning one output from its sources' central directories.
#[derive(Debug, Clone, Default)]
pub struct OutputLayout {
    /// Entries to write, in order.
    pub entries: Vec<Planned>,
    /// Entries left out (by selection, or by a conflict rule).
    pub dropped: u64,
    /// How many input entries each step of the output matched (by step index).
    pub step_hits: Vec<u64>,
    /// The zip entries `zip` steps make, each with its members (consecutive in
    /// `entries`), in output order.
    pub inner: Vec<super::InnerZip>,
    /// The zip entries `unzip` steps unpacked, as (source, entry): their members
    /// must be listed (with [`EntryInfo::inner_of`]) for the output to be complete.
    pub unzipped: Vec<(usize, usize)>,
}

/// Decides every entry of an output before data moves, applying the conflict rule.
/// `sources[k]` lists source k's entries as (name, is_dir).
///
/// Produced names are checked by [`OutputPlan::decide`]; here they are checked
/// against each other: an exact clash follows `on_conflict` (the same directory from
/// two inputs is kept once), a clash in letter case only (files added by `add` and
/// `manifest` included) is an error unless the plan's `names` rules allow it.
///
/// Knows only files and directories: for archives that may hold symbolic links, use
/// [`layout_output_kinds`].
pub fn layout_output(
    op: &OutputPlan,
    sources: &[Vec<(&str, bool)>],
) -> Result<OutputLayout, String> {
    let kinds: Vec<Vec<(&str, EntryKind)>> = sources
        .iter()
        .map(|l| {
            l.iter()
                .map(|&(n, d)| (n, EntryKind::from_is_dir(d)))
                .collect()
        })
        .collect();
    layout_output_kinds(op, &kinds)
}

/// [`layout_output`] with each entry's [`EntryKind`] (use [`EntryKind::of`] on the
/// central-directory entries): symbolic links are planned by
/// [`OutputPlan::decide_kind`] (kept, dropped or refused by the plan's `symlinks`
/// mode). Also refused: an entry or added file whose output path lies under a kept
/// link (`d/x` with a link `d`), which extraction would write wherever the link
/// points. Each kept link's target must still be checked, from its data, with
/// [`crate::links::check_symlink`].
///
/// Selections by size or type see these entries as empty and not executable: use
/// [`layout_output_entries`] for central-directory entries.
pub fn layout_output_kinds(
    op: &OutputPlan,
    sources: &[Vec<(&str, EntryKind)>],
) -> Result<OutputLayout, String> {
    let infos: Vec<Vec<EntryInfo<'_>>> = sources
        .iter()
        .map(|l| l.iter().map(|&(n, k)| EntryInfo::named(n, k)).collect())
        .collect();
    layout_output_entries(op, &infos)
}

/// [`layout_output_kinds`] with all an entry's selection may ask (size, mode): use
/// [`EntryInfo::of`] on the central-directory entries.
pub fn layout_output_entries(
    op: &OutputPlan,
    sources: &[Vec<EntryInfo<'_>>],
) -> Result<OutputLayout, String> {
    let mut b = LayoutBuilder {
        op,
        sources,
        entries: Vec::new(),
        spaces: HashMap::new(),
        zip_sources: HashMap::new(),
        dropped: 0,
    };
    let mut step_hits = vec![0u64; op.step_count()];
    let mut unzipped = Vec::new();
    for (k, list) in sources.iter().enumerate() {
        // The `unzip` records of this source's zip entries, by entry.
        let mut unpacked: HashMap<usize, Vec<Unzip>> = HashMap::new();
        let mut j = 0;
        while j < list.len() {
            let Some(c) = list[j].inner_of else {
                let trace = op.trace_entry(k, list[j]);
                if !trace.unzips.is_empty() {
                    unpacked.entry(j).or_default().extend(trace.unzips.clone());
                    unzipped.push((k, j));
                }
                b.take(k, j, trace, &mut step_hits)?;
                j += 1;
                continue;
            };
            // A zip entry's members follow one another (in the order of their data):
            // each unzip of it takes them all in turn, so one pass reads them.
            let end = j + list[j..]
                .iter()
                .take_while(|i| i.inner_of == Some(c))
                .count();
            for u in unpacked.get(&c).cloned().unwrap_or_default() {
                for m in j..end {
                    let trace = op.trace_member(k, list[m], &u);
                    if !trace.unzips.is_empty() {
                        return Err(format!(
                            "{}: is a zip inside an unpacked zip; unzip unpacks zip entries \
                             of the input only (narrow the later unzip step's `files`)",
                            entry_label(op, list, k, &list[m])
                        ));
                    }
                    b.take(k, m, trace, &mut step_hits)?;
                }
            }
            j = end;
        }
    }
    let zips = b.inner_zip_paths();
    for (_, path) in &zips {
        b.claim_added(path, "zip")?;
    }
    for e in op.extras() {
        let (Extra::Add { path, .. } | Extra::Manifest { path }) = e;
        b.claim_added(path, "added file")?;
    }
    b.check_under_links(&zips)?;
    let size = |p: &Planned| sources[p.source][p.entry].size;
    let (entries, inner) = super::nested::group(b.entries.into_iter().flatten(), &zips, size);
    Ok(OutputLayout {
        entries,
        dropped: b.dropped,
        step_hits,
        inner,
        unzipped,
    })
}

impl OutputPlan {
    /// True when an active `unzip` step may unpack entries of this output.
    pub fn unzips(&self) -> bool {
        (0..self.steps.len())
            .any(|i| self.step_active(i) && matches!(self.steps[i], Step::Unzip { .. }))
    }

    /// The zip entries (source, entry) of `sources` that `unzip` steps unpack, whose
    /// members must be listed before the output is laid out. Empty when the sources
    /// do not lay out (the full layout reports why).
    pub fn unzip_containers(&self, sources: &[Vec<EntryInfo<'_>>]) -> Vec<(usize, usize)> {
        if !self.unzips() {
            return Vec::new();
        }
        layout_output_entries(self, sources).map_or_else(|_| Vec::new(), |l| l.unzipped)
    }
}

/// `entry "a" of input "X"`, or for a member of an unpacked zip entry
/// `entry "m" of zip "dist/a.zip" of input "X"`.
fn entry_label(op: &OutputPlan, list: &[EntryInfo<'_>], k: usize, info: &EntryInfo<'_>) -> String {
    let input = &op.sources[k].input_name;
    match info.inner_of {
        None => format!("entry {:?} of input {input:?}", info.name),
        Some(c) => format!(
            "entry {:?} of zip {:?} of input {input:?}",
            info.name, list[c].name
        ),
    }
}

/// The state of [`layout_output`]: entries kept so far (`None` once replaced), and
/// the names of each namespace (the output's, or one inner zip's).
struct LayoutBuilder<'a> {
    op: &'a OutputPlan,
    sources: &'a [Vec<EntryInfo<'a>>],
    entries: Vec<Option<Planned>>,
    spaces: HashMap<Option<usize>, Names>,
    /// The source each zip entry's members come from, by `zip` step.
    zip_sources: HashMap<usize, usize>,
    dropped: u64,
}

/// The paths of one namespace: by exact name and by case-folded name (`None` tags an
/// added file or a zip entry).
#[derive(Default)]
struct Names {
    by_name: HashMap<String, usize>,
    by_case: CaseIndex<Option<usize>>,
    /// Paths claimed by added files and zip entries.
    claimed: std::collections::HashSet<String>,
}

impl LayoutBuilder<'_> {
    /// `"name" from input "X"`: a planned entry as its input names it.
    fn describe(&self, p: &Planned) -> String {
        let list = &self.sources[p.source];
        let input = &self.op.sources[p.source].input_name;
        match list[p.entry].inner_of {
            None => format!("{:?} from input {input:?}", list[p.entry].name),
            Some(c) => format!(
                "{:?} from zip {:?} of input {input:?}",
                list[p.entry].name, list[c].name
            ),
        }
    }

    /// Entry `j` of source `k` as `trace` decided it (and its copies): counted,
    /// kept or dropped.
    fn take(
        &mut self,
        k: usize,
        j: usize,
        trace: Trace,
        step_hits: &mut [u64],
    ) -> Result<(), String> {
        for &i in &trace.matched {
            step_hits[i] += 1;
        }
        let list = &self.sources[k];
        let decided = trace
            .decided
            .map_err(|m| format!("{}: {m}", entry_label(self.op, list, k, &list[j])))?;
        match decided {
            Some(plan) => self.add_entry(Planned {
                source: k,
                entry: j,
                plan,
            })?,
            None => self.dropped += 1,
        }
        for plan in trace.copies {
            self.add_entry(Planned {
                source: k,
                entry: j,
                plan,
            })?;
        }
        Ok(())
    }

    fn add_entry(&mut self, new: Planned) -> Result<(), String> {
        if let Some(step) = new.plan.inner {
            // Inputs are read one after another: a zip's members come from one.
            let first = *self.zip_sources.entry(step).or_insert(new.source);
            if first != new.source {
                return Err(format!(
                    "the zip {:?} would take entries from inputs {:?} and {:?} (entry {}); \
                     a zip step packs entries of one input: narrow its `files`",
                    self.op.zip_path(step).unwrap_or_default(),
                    self.op.sources[first].input_name,
                    self.op.sources[new.source].input_name,
                    self.describe(&new)
                ));
            }
        }
        let is_dir = self.sources[new.source][new.entry].kind.is_dir();
        let space = new.plan.inner;
        let prev = self
            .spaces
            .entry(space)
            .or_default()
            .by_name
            .get(&new.plan.name)
            .copied();
        if let Some(prev) = prev {
            let p = self.entries[prev]
                .as_ref()
                .expect("indexed entries are present");
            if is_dir && p.plan.name.ends_with('/') {
                self.dropped += 1; // the same directory from two places
                return Ok(());
            }
            match self.op.on_conflict {
                OnConflict::Error => {
                    return Err(format!(
                        "two entries would be written as {:?}: {} and {} (set \"on_conflict\": \"first\" or \"last\", or rename one)",
                        new.plan.name, self.describe(p), self.describe(&new)
                    ))
                }
                OnConflict::First => {
                    self.dropped += 1;
                    return Ok(());
                }
                OnConflict::Last => {
                    self.entries[prev] = None;
                    self.dropped += 1;
                }
            }
        }
        let at = self.entries.len();
        let names = self.spaces.get_mut(&space).expect("made above");
        if let Some((other, Some(i))) = names.by_case.insert(&new.plan.name, Some(at)) {
            if !self.op.name_rules.allow_case_duplicates {
                let p = self.entries[i]
                    .as_ref()
                    .expect("indexed entries are present");
                return Err(format!(
                    "entry {} would be written as {:?}, which {} (written for entry {})",
                    self.describe(&new),
                    new.plan.name,
                    case_clash_why(&other),
                    self.describe(p)
                ));
            }
        }
        names.by_name.insert(new.plan.name.clone(), at);
        self.entries.push(Some(new));
        Ok(())
    }

    /// Refuses an entry, added file or zip entry whose path lies under a kept link's
    /// path in the same archive (the output, or one inner zip), compared without
    /// letter case (a case-insensitive file system extracts `D/x` through a link `d`).
    fn check_under_links(&self, zips: &[(usize, String)]) -> Result<(), String> {
        let mut spaces: Vec<Option<usize>> = vec![None];
        spaces.extend(zips.iter().map(|(step, _)| Some(*step)));
        for space in spaces {
            let in_space = || {
                self.entries
                    .iter()
                    .flatten()
                    .filter(move |p| p.plan.inner == space)
            };
            let links: HashMap<String, &Planned> = in_space()
                .filter(|p| p.plan.symlink.is_some())
                .map(|p| (fold_case(p.plan.name.trim_end_matches('/')), p))
                .collect();
            if links.is_empty() {
                continue;
            }
            let under = |path: &str| {
                let path = fold_case(path);
                path.match_indices('/')
                    .find_map(|(at, _)| links.get(&path[..at]).copied())
            };
            for p in in_space() {
                if let Some(l) = under(&p.plan.name) {
                    return Err(format!(
                        "entry {} would be written as {:?}, under the symbolic link {:?} \
                         (entry {}): extracting it would write wherever the link points",
                        self.describe(p),
                        p.plan.name,
                        l.plan.name,
                        self.describe(l)
                    ));
                }
            }
            if space.is_some() {
                continue;
            }
            let added = self.op.extras().into_iter().map(|e| match e {
                Extra::Add { path, .. } | Extra::Manifest { path } => ("added file", path),
            });
            let made = zips.iter().map(|(_, p)| ("zip", p.as_str()));
            for (what, path) in added.chain(made) {
                if let Some(l) = under(path) {
                    return Err(format!(
                        "{what} {path:?} would be written under the symbolic link {:?} (entry \
                         {}): extracting it would write wherever the link points",
                        l.plan.name,
                        self.describe(l)
                    ));
                }
            }
        }
        Ok(())
    }

    /// The path of each zip entry that has members, by its step, in step order.
    fn inner_zip_paths(&self) -> Vec<(usize, String)> {
        let mut steps: Vec<usize> = self.spaces.keys().flatten().copied().collect();
        steps.sort_unstable();
        steps
            .into_iter()
            .filter_map(|step| Some((step, self.op.zip_path(step)?.to_string())))
            .collect()
    }

    /// Claims `path` in the output for an added file or a zip entry (`what`): an
    /// entry of the same path follows `on_conflict` ("last" replaces it), a case clash
    /// follows the name rules.
    fn claim_added(&mut self, p: &str, what: &str) -> Result<(), String> {
        let names = self.spaces.entry(None).or_default();
        if let Some(&i) = names.by_name.get(p) {
            match self.op.on_conflict {
                OnConflict::Error => return Err(format!("{what} {p:?} is also an entry of the output (set \"on_conflict\": \"last\" to replace it)")),
                OnConflict::First => return Err(format!("{what} {p:?} is also an entry of the output; \"first\" would drop the {what}: rename it")),
                OnConflict::Last => {
                    self.entries[i] = None;
                    self.dropped += 1;
                }
            }
        }
        // Claimed: a later claim of the same path is refused (the compiler refuses
        // two steps writing one path; this keeps the layout honest on its own).
        if let Some(prev) = names.claimed.replace(p.to_string()) {
            return Err(format!("{what} {prev:?} is written twice"));
        }
        let clash = names.by_case.insert(p, None);
        if let (Some((other, tag)), false) = (clash, self.op.name_rules.allow_case_duplicates) {
            let whose = match tag.and_then(|i| self.entries[i].as_ref()) {
                Some(q) => format!(" (written for entry {})", self.describe(q)),
                None => String::new(),
            };
            return Err(format!("{what} {p:?} {}{whose}", case_clash_why(&other)));
        }
        Ok(())
    }
}
