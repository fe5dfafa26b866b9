//! What is known of an entry before its data is read ([`EntryInfo`], [`EntryKind`]),
//! and what the plan decides for it in one output ([`EntryPlan`]): the types
//! [`super::decide`] produces and the writers consume.
//!
//! Invariant: an [`EntryPlan`] of a symbolic link has no content steps, exports or
//! forced compression (see [`EntryPlan::symlink`]).

use super::Symlinks;
use crate::zip::read::CdEntry;

/// What happens to one entry in one output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPlan {
    /// Path in the output.
    pub name: String,
    /// Content and export steps, in order (indices into the output's steps).
    pub ops: Vec<usize>,
    /// Forced compression method (0 or 8).
    pub method: Option<u16>,
    /// Forced deflate level (forces recompression).
    pub level: Option<u32>,
    /// Forced DOS (date, time).
    pub mtime: Option<(u16, u16)>,
    /// Forced Unix permission bits.
    pub mode: Option<u32>,
    /// The manifest needs this entry's SHA-256 (for a link: of its target path, the
    /// entry's data).
    pub hash: bool,
    /// A raw copy must still be inflated to check its CRC-32 and size.
    pub verify: bool,
    /// `Some(step)` when the entry is a member of the zip entry that `zip` step `step`
    /// makes ([`super::InnerZip`]); `name` is then its path inside that zip.
    pub inner: Option<usize>,
    /// `Some(mode)` when the entry is a symbolic link (planned with
    /// [`OutputPlan::decide_kind`] or [`layout_output_kinds`]), with the plan's
    /// `symlinks` mode: such an entry has no content steps, exports or forced
    /// compression, and its target must be checked with [`crate::links::check_symlink`]
    /// before it is written. `None` for files and directories.
    pub symlink: Option<Symlinks>,
}

/// What kind of entry is being planned: decides which steps may touch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (the default for entries without a Unix mode).
    File,
    /// A directory (name ending in `/`).
    Dir,
    /// A symbolic link (Unix mode `S_IFLNK`); its data is the target.
    Symlink,
}

/// What is known of an entry before its data is read: enough to decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo<'a> {
    /// Its name in its input.
    pub name: &'a str,
    /// File, directory or link.
    pub kind: EntryKind,
    /// Declared uncompressed size.
    pub size: u64,
    /// A file with an execute permission bit (Unix mode).
    pub executable: bool,
    /// For a member of a zip entry of the same input (read by `unzip`): that entry's
    /// index; `name` is then the member's path inside the zip.
    pub inner_of: Option<usize>,
}

impl<'a> EntryInfo<'a> {
    /// A central-directory entry as the plan sees it.
    pub fn of(e: &'a CdEntry) -> EntryInfo<'a> {
        let kind = EntryKind::of(e);
        EntryInfo {
            name: &e.name,
            kind,
            size: e.uncompressed_size,
            executable: kind == EntryKind::File && e.unix_mode().is_some_and(|m| m & 0o111 != 0),
            inner_of: None,
        }
    }

    /// This entry as a member of zip entry `container` of the same input.
    pub fn member_of(self, container: usize) -> EntryInfo<'a> {
        EntryInfo {
            inner_of: Some(container),
            ..self
        }
    }

    /// An entry known only by name and kind (size 0, not executable).
    pub fn named(name: &'a str, kind: EntryKind) -> EntryInfo<'a> {
        EntryInfo {
            name,
            kind,
            size: 0,
            executable: false,
            inner_of: None,
        }
    }
}

impl EntryKind {
    /// The kind of a central-directory entry: a link when its Unix mode says so
    /// (whatever its name), else a directory when its name ends in `/`, else a file.
    pub fn of(e: &CdEntry) -> EntryKind {
        if e.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::from_is_dir(e.is_dir())
        }
    }

    /// `Dir` or `File`.
    pub fn from_is_dir(is_dir: bool) -> EntryKind {
        if is_dir {
            EntryKind::Dir
        } else {
            EntryKind::File
        }
    }

    /// True for `Dir`.
    pub fn is_dir(self) -> bool {
        self == EntryKind::Dir
    }
}

impl EntryPlan {
    /// An entry named `name` that no step has touched yet.
    pub(super) fn untouched(name: String, verify: bool, symlink: Option<Symlinks>) -> EntryPlan {
        EntryPlan {
            name,
            ops: Vec::new(),
            method: None,
            level: None,
            mtime: None,
            mode: None,
            hash: false,
            verify,
            symlink,
            inner: None,
        }
    }

    /// True when processing the entry needs CPU: its content is needed, or a raw
    /// copy must be verified (stored or deflated entries; other methods cannot be
    /// inflated here and are copied as they are).
    pub fn needs_cpu(&self, current_method: u16) -> bool {
        self.needs_content(current_method)
            || (self.verify
                && matches!(
                    current_method,
                    crate::zip::read::METHOD_STORED | crate::zip::read::METHOD_DEFLATED
                ))
    }

    /// True when the entry's content must be decompressed (content steps, exports,
    /// manifest hashing, or a compression change).
    pub fn needs_content(&self, current_method: u16) -> bool {
        !self.ops.is_empty()
            || self.hash
            || self.level.is_some()
            || self.method.is_some_and(|m| m != current_method)
    }
}
