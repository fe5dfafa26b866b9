//! Symbolic-link entries: a zip entry whose Unix mode has the `S_IFLNK` type
//! ([`CdEntry::is_symlink`]) stores its link *target* as its data. Extracted by
//! `unzip`, `bsdtar` or Python's `shutil.unpack_archive` on Unix, it becomes a real
//! link, so a target such as `/etc/passwd` or `../../x` lets a later reader of the
//! extracted tree (a deploy script, a web server) reach files outside it.
//!
//! The plan never applies content steps, `export` or recompression to a link
//! ([`crate::plan::OutputPlan::decide_kind`]); `"symlinks"` in UserParameters
//! ([`crate::plan::Symlinks`]) keeps, drops or refuses them. Kept links must pass
//! [`check_symlink`], which reads the target (the entry's data, so not known from
//! the central directory) and checks it with [`check_link_target`] against the
//! link's *final* output path (after `move`, `flatten` and merge prefixes).

use crate::entry::decompress;
use crate::plan::{EntryPlan, Symlinks};
use crate::zip::read::CdEntry;
use crate::zip::ZipError;

/// Longest link target accepted, in bytes (Linux `PATH_MAX`).
pub const MAX_LINK_TARGET: usize = 4096;

/// Checks that the link target `target`, of a link written at `link_path` (an
/// output path, `/`-separated, relative to the artifact root), stays inside the
/// artifact. Refused, with the reason:
/// - an empty target, one over [`MAX_LINK_TARGET`] bytes, one that is not UTF-8, or
///   one holding NUL, another control character or `\` (a separator on Windows);
/// - an absolute target (`/etc/passwd`) or one with a drive letter (`C:/x`, `C:x`);
/// - a target that, resolved from the directory holding the link, leaves the root
///   (`../../x` from `a/link`);
/// - a `..` after a name (`d/..`): if `d` is itself a link, the kernel resolves `..`
///   from where `d` points, not lexically, so such targets are refused even when
///   they look contained. `.` and empty components (`a//b`, `x/`) are harmless.
///
/// Together with [`crate::plan::layout_output_kinds`] refusing entries under a link,
/// this keeps every link, and every chain of links, inside the artifact.
pub fn check_link_target(link_path: &str, target: &[u8]) -> Result<(), String> {
    if target.is_empty() {
        return Err("the target is empty".into());
    }
    if target.len() > MAX_LINK_TARGET {
        return Err(format!(
            "the target is {} bytes; link targets are limited to {MAX_LINK_TARGET} bytes",
            target.len()
        ));
    }
    let t = std::str::from_utf8(target).map_err(|_| "the target is not UTF-8".to_string())?;
    if t.contains('\0') {
        return Err("the target contains a NUL byte".into());
    }
    if t.chars().any(char::is_control) {
        return Err("the target contains a control character".into());
    }
    if t.contains('\\') {
        return Err("the target contains `\\` (a path separator on Windows)".into());
    }
    if t.starts_with('/') {
        return Err("the target is an absolute path".into());
    }
    let b = t.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err("the target starts with a drive letter".into());
    }
    // The directory holding the link, as a stack of components.
    let mut dir: Vec<&str> = link_path
        .trim_end_matches('/')
        .split('/')
        .filter(|c| !c.is_empty())
        .collect();
    dir.pop();
    let mut named = false;
    let mut after_name = false;
    for c in t.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                after_name |= named;
                if dir.pop().is_none() {
                    return Err(format!(
                        "the target, resolved from {link_path:?}, points outside the artifact"
                    ));
                }
            }
            name => {
                named = true;
                dir.push(name);
            }
        }
    }
    if after_name {
        return Err(
            "the target has `..` after a name (if that name is a link, `..` leaves from where \
             it points); write the target with leading `..` only, e.g. `../c`"
                .into(),
        );
    }
    Ok(())
}

/// Checks a symbolic-link entry against the plan: **callers must call it for every
/// entry `e` with [`CdEntry::is_symlink`] before writing it** (it returns `Ok(())` at
/// once for other entries, so calling it for every entry is fine too).
///
/// `ep` is the entry's plan from [`crate::plan::OutputPlan::decide_kind`] or
/// [`crate::plan::layout_output_kinds`] (which record that it is a link in
/// [`EntryPlan::symlink`], with the plan's [`Symlinks`] mode); `data` is the entry's
/// data as stored (compressed), e.g. [`crate::entry::compressed_data`] of its
/// region. The target is inflated when needed, at most [`MAX_LINK_TARGET`] bytes
/// (larger declared sizes are refused before any inflating), its CRC verified, and
/// checked with [`check_link_target`] against `ep.name`, the link's final path.
///
/// Errors: [`ZipError::Symlink`] naming the output path and the target;
/// [`ZipError::Data`]/[`ZipError::Unsupported`] when the target cannot be read;
/// [`ZipError::Writer`] when `ep` was planned without knowing the entry is a link
/// (through `decide`/`layout_output`, which take only `is_dir`): a caller bug.
pub fn check_symlink(e: &CdEntry, ep: &EntryPlan, data: &[u8]) -> Result<(), ZipError> {
    if !e.is_symlink() {
        return Ok(());
    }
    let refuse = |target: &[u8], why: String| ZipError::Symlink {
        name: ep.name.clone(),
        target: String::from_utf8_lossy(target).into_owned(),
        why: if e.name == ep.name {
            why
        } else {
            format!("{why} (input entry {:?})", e.name)
        },
    };
    let mode = ep.symlink.ok_or_else(|| {
        ZipError::Writer(format!(
            "entry {:?} is a symbolic link but was planned as a regular file; plan with \
             OutputPlan::decide_kind or layout_output_kinds",
            e.name
        ))
    })?;
    let max = MAX_LINK_TARGET as u64;
    // A deflated target of 4,096 bytes takes a few bytes more than that at worst.
    if e.uncompressed_size > max || e.compressed_size > max + 64 {
        return Err(refuse(
            b"",
            format!(
                "its target is {} bytes; link targets are limited to {MAX_LINK_TARGET} bytes",
                e.uncompressed_size.max(e.compressed_size)
            ),
        ));
    }
    let target = decompress(e, data)?;
    match mode {
        Symlinks::Keep => check_link_target(&ep.name, &target).map_err(|why| refuse(&target, why)),
        Symlinks::Fail => Err(refuse(
            &target,
            "symbolic links are refused (\"symlinks\": \"fail\")".into(),
        )),
        Symlinks::Drop => Err(refuse(
            &target,
            "symbolic links are dropped (\"symlinks\": \"drop\") but this one was planned".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(link: &str, target: &str) {
        if let Err(why) = check_link_target(link, target.as_bytes()) {
            panic!("{link} -> {target} refused: {why}");
        }
    }

    fn bad(link: &str, target: &[u8], want: &str) {
        match check_link_target(link, target) {
            Ok(()) => panic!("{link} -> {:?} accepted", String::from_utf8_lossy(target)),
            Err(why) => assert!(why.contains(want), "{link}: {why:?} lacks {want:?}"),
        }
    }

    #[test]
    fn targets_inside_the_root_are_accepted() {
        ok("a/b", "../c");
        ok("a", ".");
        ok("a", "b");
        ok("a", "./b/c");
        ok("a/b", "..");
        ok("a/b/c", "../../x/y/");
        ok("a/b", "x//y");
        ok("a/b/", "../c"); // a trailing `/` on the link path is not a level
        ok("a", "..x"); // a name, not `..`
        ok("a", "ab:c"); // a colon elsewhere than after one letter
        ok("ünï/l", "../ćode");
        ok("a", &"x".repeat(MAX_LINK_TARGET));
    }

    #[test]
    fn escapes_are_refused() {
        bad("a/b", b"../../c", "outside");
        bad("a", b"..", "outside");
        bad("a/b", b"c/../../..", "outside");
        bad("a/b", b"./../../c", "outside");
        bad("l", b"../x", "outside");
        bad("a/b/l", b"../../../etc", "outside");
    }

    #[test]
    fn dot_dot_after_a_name_is_refused() {
        // `d` may be a link elsewhere: `d/..` is not `.` for the kernel.
        bad("a/b", b"d/..", "after a name");
        bad("a/b", b"../d/../c", "after a name");
    }

    #[test]
    fn absolute_drive_and_odd_targets_are_refused() {
        bad("a", b"/abs", "absolute");
        bad("a", b"/", "absolute");
        bad("a", b"//server/share", "absolute");
        bad("a", b"C:/x", "drive letter");
        bad("a", b"c:x", "drive letter");
        bad("a", b"x\\y", "`\\`");
        bad("a", b"..\\..\\x", "`\\`");
        bad("a", b"x\0y", "NUL");
        bad("a", b"x\ny", "control");
        bad("a", b"", "empty");
        bad("a", &[0xff, 0xfe], "UTF-8");
        bad("a", "x".repeat(MAX_LINK_TARGET + 1).as_bytes(), "4096");
    }
}
