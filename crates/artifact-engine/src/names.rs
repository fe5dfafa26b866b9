//! Entry-name rules shared by the zip reader (names stored in archives) and the plan
//! (names it produces by renaming, prefixing or adding files).
//!
//! Invariants: a name accepted by [`check_name`]
//! - is 1 to [`MAX_NAME_LEN`] bytes of UTF-8 using `/` as the only separator, with at
//!   most one trailing `/` (which marks a directory);
//! - holds no control character (U+0000–U+001F, U+007F) and no `\` (a separator on
//!   Windows, so a name with one means different paths to different extractors);
//! - is relative: no leading `/`, no drive letter (`C:x`, `C:/x`);
//! - has no empty, `.` or `..` component, so it names exactly one path under the
//!   extraction directory and every tool normalises it the same way (`...` and `a..b`
//!   are ordinary names).
//!
//! Two names of one archive or output may also not be equal after Unicode lowercasing
//! ([`fold_case`]) unless [`NameRules::allow_case_duplicates`] is set: they would
//! overwrite each other when extracted on Windows or macOS.

use std::collections::HashMap;

/// Longest entry name accepted, in bytes (UTF-8).
pub const MAX_NAME_LEN: usize = 4096;

/// Options for the name checks that compare names with each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameRules {
    /// Accept names that differ only in letter case (`README.md` and `readme.md`).
    /// Off by default: they collide on case-insensitive file systems.
    pub allow_case_duplicates: bool,
}

/// Checks one name against the rules in the module docs; the error says which rule.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{} bytes long (names are limited to {MAX_NAME_LEN} bytes)",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_ascii_control()) {
        return Err(if c == '\0' {
            "contains a NUL byte".into()
        } else {
            format!("contains the control character U+{:04X}", c as u32)
        });
    }
    if name.contains('\\') {
        return Err("contains a backslash (`\\`), a path separator on Windows".into());
    }
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Err("starts with a drive letter".into());
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    for part in trimmed.split('/') {
        match part {
            "" => return Err("contains an empty path component (`//`)".into()),
            "." => return Err("contains a `.` path component".into()),
            ".." => return Err("contains a `..` component".into()),
            _ => {}
        }
    }
    Ok(())
}

/// The key under which names collide on case-insensitive or normalization-
/// insensitive file systems (Windows, and macOS, where `é` written precomposed (NFC)
/// and decomposed (NFD) name the same file): lowercase of the NFC form.
pub fn fold_case(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().collect::<String>().to_lowercase()
}

/// Remembers names by [`fold_case`] key to find names differing only in case.
#[derive(Debug, Default)]
pub struct CaseIndex<T> {
    seen: HashMap<String, (String, T)>,
}

impl<T: Clone> CaseIndex<T> {
    /// An empty index.
    pub fn new() -> Self {
        CaseIndex {
            seen: HashMap::new(),
        }
    }

    /// Records `name` (with a caller's tag); returns the earlier name and tag when one
    /// with the same folded key but different spelling is already recorded. Exact
    /// duplicates are the caller's business and just replace the record.
    pub fn insert(&mut self, name: &str, tag: T) -> Option<(String, T)> {
        let key = fold_case(name);
        if let Some((prev, t)) = self.seen.get(&key) {
            if prev != name {
                return Some((prev.clone(), t.clone()));
            }
        }
        self.seen.insert(key, (name.to_string(), tag));
        None
    }
}

/// The explanation attached to a case-only name clash.
pub fn case_clash_why(other: &str) -> String {
    format!(
        "differs only in letter case or Unicode normalization from {other:?}; the two \
         overwrite each other when \
         extracted on Windows or macOS (set UserParameters \"names\": \
         {{\"case_duplicates\": \"allow\"}} to accept this)"
    )
}

#[cfg(test)]
mod fold_tests {
    use super::*;

    #[test]
    fn composed_and_decomposed_names_collide() {
        assert_eq!(
            fold_case("re\u{301}sume\u{301}.txt"),
            fold_case("résumé.txt")
        );
        assert_eq!(fold_case("README.md"), fold_case("readme.md"));
        assert_ne!(fold_case("a.txt"), fold_case("b.txt"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A component as tools write them: not empty, `.` or `..`.
    fn component() -> impl Strategy<Value = String> {
        "[A-Za-z0-9 ._@+~-]{1,12}|[é日ü]{1,3}".prop_filter("not . or ..", |c| c != "." && c != "..")
    }

    proptest! {
        #[test]
        fn joined_components_pass_and_one_bad_part_fails(
            parts in prop::collection::vec(component(), 1..6),
            dir in any::<bool>(),
            bad in prop::sample::select(vec!["", ".", "..", "a\\b", "a\u{1}b", "x\u{7f}"]),
            at in any::<prop::sample::Index>(),
        ) {
            let name = parts.join("/") + if dir { "/" } else { "" };
            prop_assert_eq!(check_name(&name), Ok(()));
            let mut broken = parts.clone();
            // Not last: a trailing empty component is the directory marker `/`.
            broken.insert(at.index(parts.len()), bad.to_string());
            let broken = broken.join("/");
            prop_assert!(check_name(&broken).is_err(), "{:?} accepted", broken);
        }
    }

    #[test]
    fn each_rule_refuses_its_names() {
        let long = "a/".repeat(2048) + "b";
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("a\0b", "NUL"),
            ("a\u{1}b", "U+0001"),
            ("a\u{1f}b", "U+001F"),
            ("a\nb", "U+000A"),
            ("a\u{7f}b", "U+007F"),
            ("..\\..\\evil.txt", "backslash"),
            ("a\\b", "backslash"),
            ("/x", "absolute"),
            ("/", "absolute"),
            ("C:x", "drive letter"),
            ("C:/x", "drive letter"),
            ("z:\\x", "backslash"),
            ("a//b", "empty path component"),
            ("a/b//", "empty path component"),
            ("a/./b.txt", "`.` path component"),
            ("./a", "`.` path component"),
            ("a/.", "`.` path component"),
            ("./", "`.` path component"),
            ("..", "`..`"),
            ("a/../../b", "`..`"),
            ("a/../", "`..`"),
            (&long, "limited to 4096"),
        ];
        for (name, rule) in cases {
            let why = check_name(name).expect_err(name);
            assert!(why.contains(rule), "{name:?}: {why}");
        }
    }

    #[test]
    fn names_real_tools_write_are_accepted() {
        let max = "x".repeat(MAX_NAME_LEN);
        for good in [
            "a",
            "a/b.txt",
            "dir/",
            "a/b/",
            ".github/workflows/x.yml",
            "node_modules/.bin/x",
            ".hidden",
            "my file with spaces.txt",
            "dir with space/ file .txt",
            "résumé.txt",
            "ünï/ćode.txt",
            "日本語/ファイル.md",
            "a..b",
            "...",
            "a/.../b",
            "..a",
            "a..",
            "~/x",
            "ab:c",
            "1:x",
            "C",
            "$(x)/@scope/pkg@1.0.0/index.js",
            "no\u{a0}break space",
            &max,
        ] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn case_index_finds_case_only_duplicates() {
        let mut ix = CaseIndex::new();
        assert_eq!(ix.insert("README.md", 1), None);
        assert_eq!(
            ix.insert("README.md", 2),
            None,
            "exact duplicates pass through"
        );
        assert_eq!(ix.insert("readme.md", 3), Some(("README.md".into(), 2)));
        assert_eq!(ix.insert("ÉTÉ.txt", 4), None);
        assert_eq!(ix.insert("été.txt", 5), Some(("ÉTÉ.txt".into(), 4)));
        assert_eq!(ix.insert("Dir/", 6), None);
        assert_eq!(
            ix.insert("dir", 7),
            None,
            "a file and a directory fold apart"
        );
    }
}
