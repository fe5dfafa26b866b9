//! Zip entries made by `zip` steps (nested archives) in an output's layout. An entry a
//! `zip` step matches becomes a member ([`super::EntryPlan::inner`]) of the zip entry
//! the step makes, under its path inside that zip; the zip entry itself is deflated as
//! it streams, with a data descriptor, its members written into it one after another.
//!
//! Invariants: the members of one zip are consecutive in the layout, starting where its
//! first member was in input order (members of one zip are read together, so writing
//! needs only one zip open at a time); a zip with no member is not written; member
//! paths are checked against each other with the output's rules (clashes,
//! `on_conflict`, case, links), and the zip's own path against the output's paths like
//! an added file.

use std::collections::HashMap;

use super::{OutputPlan, Planned, Step};
use crate::zip::read::METHOD_DEFLATED;
use crate::zip::EntryMeta;

/// A zip entry made by a `zip` step, and where its members are in the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerZip {
    /// The `zip` step that makes it.
    pub step: usize,
    /// Its path in the output.
    pub path: String,
    /// Its first member's index in the layout's entries.
    pub first: usize,
    /// How many members follow from `first` on (at least one).
    pub members: usize,
    /// Its members' declared sizes, summed (what writing it costs, roughly).
    pub bytes: u64,
    /// An upper bound of its size (its members' declared sizes, as transforms may
    /// grow them, plus headers): decides whether its header is ZIP64.
    pub size_hint: u64,
}

/// `entries` in output order with each zip's members moved together to where its first
/// member was, and the zips (`zips`: step and path) in that order.
/// `size(p)` is a planned entry's declared size.
pub(super) fn group(
    entries: impl Iterator<Item = Planned>,
    zips: &[(usize, String)],
    size: impl Fn(&Planned) -> u64,
) -> (Vec<Planned>, Vec<InnerZip>) {
    enum Slot {
        Entry(Planned),
        Zip(usize),
    }
    let mut slots = Vec::new();
    let mut members: HashMap<usize, Vec<Planned>> = HashMap::new();
    for p in entries {
        match p.plan.inner {
            None => slots.push(Slot::Entry(p)),
            Some(step) => {
                let list = members.entry(step).or_default();
                if list.is_empty() {
                    slots.push(Slot::Zip(step));
                }
                list.push(p);
            }
        }
    }
    let mut out = Vec::new();
    let mut inner = Vec::new();
    for slot in slots {
        match slot {
            Slot::Entry(p) => out.push(p),
            Slot::Zip(step) => {
                let list = members.remove(&step).expect("a zip slot has members");
                let path = zips
                    .iter()
                    .find(|(s, _)| *s == step)
                    .map(|(_, p)| p.clone())
                    .expect("every zip with members has a path");
                let bytes = list.iter().map(&size).fold(0u64, u64::saturating_add);
                let size_hint = list
                    .iter()
                    .map(|p| member_bound(p, size(p)))
                    .fold(0u64, u64::saturating_add);
                inner.push(InnerZip {
                    step,
                    path,
                    first: out.len(),
                    members: list.len(),
                    bytes,
                    size_hint,
                });
                out.extend(list);
            }
        }
    }
    (out, inner)
}

/// The most bytes member `p` of declared size `size` can take in its zip: its data
/// (a content step may make it up to 4x + 1 MiB, stored data is at most its size) and
/// its local header, data descriptor and central-directory record.
fn member_bound(p: &Planned, size: u64) -> u64 {
    let data = if p.plan.ops.is_empty() {
        size
    } else {
        size.saturating_mul(4).saturating_add(1 << 20)
    };
    data.saturating_add(150 + 2 * p.plan.name.len() as u64)
}

impl OutputPlan {
    /// True when the output has a manifest (zip entries are listed in it whole).
    pub fn has_manifest(&self) -> bool {
        self.manifest
    }

    /// The path of the zip entry that step `step` makes, if it is a `zip` step.
    pub fn zip_path(&self, step: usize) -> Option<&str> {
        match self.steps.get(step) {
            Some(Step::Zip { to, .. }) => Some(to),
            _ => None,
        }
    }
}

impl OutputPlan {
    /// The local header of zip entry `z`, written before its members: deflated as it
    /// streams, with a data descriptor (its CRC-32 and sizes follow it; a stored entry
    /// with a descriptor breaks streaming readers such as Java's `ZipInputStream`),
    /// time and mode from the `pack` steps matching its path (default 1980-01-01 and
    /// 0644), and the deflate level they set (default 1: members are mostly deflated
    /// already).
    pub fn inner_zip_meta(&self, z: &InnerZip) -> (EntryMeta, u32) {
        let packing = self.packing_of_added(&z.path);
        let mut meta = EntryMeta::file(z.path.as_str(), METHOD_DEFLATED, 0, 0, z.size_hint);
        if let Some((date, time)) = packing.mtime {
            (meta.dos_date, meta.dos_time) = (date, time);
        }
        meta.external_attrs = (0o100000 | packing.mode.unwrap_or(0o644)) << 16;
        (meta, packing.level.unwrap_or(1))
    }
}
