//! Glob lists with gitignore semantics (git-scm.com/docs/gitignore, "PATTERN FORMAT"),
//! applied to archive entry paths.
//!
//! Each pattern is translated to one [`globset`] glob (`*`, `?` and `[...]` stay within a
//! path segment; `**` crosses segments; `\` escapes); the gitignore rules around it are
//! implemented here:
//!
//! - `!pattern` negates: a path matched by it is *not* selected. The last pattern (in
//!   list order) that matches a path decides; `\!` is a literal `!`.
//! - A trailing `/` (`node_modules/`) matches only directories; the slash does not
//!   count for anchoring.
//! - A pattern with no other `/` matches the name at any depth (`*.map` = `**/*.map`);
//!   a pattern with a `/` at the start or in the middle is anchored to the root
//!   (`/*.c`, `doc/frotz`); `**/x`, `x/**` and `a/**/b` work as in git.
//! - One deliberate addition: `x/**` also matches the directory `x` itself (an archive
//!   can hold an empty directory entry; git never shows the difference), so
//!   `include: ["dist/**"]` keeps the entry `dist/` and `exclude: ["dist/**"]` drops it.
//! - A selected directory selects everything under it, and a path under a selected
//!   directory cannot be deselected again (git does not descend into an excluded
//!   directory, so `!dir/file` after `dir/` has no effect). Directories need not exist
//!   as entries: every parent of a path is tested as a directory.
//! - `#` and trailing spaces are literal (there are no comment lines in a JSON list).
//!
//! Invariant: [`Globs::is_match`] for a path is decided only by the path and its
//! parents, so it can be asked per entry in any order and from any thread.
//!
//! The `ignore` crate's `gitignore` module implements the same rules, but it matches
//! file-system paths against a root and leaves the "parent directory selected" rule to a
//! directory walker; over archive entry names the translation to globset is shorter and
//! adds no dependency.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// One translated pattern.
#[derive(Debug, Clone, Copy)]
struct Pattern {
    negated: bool,
    dir_only: bool,
}

/// A compiled glob list (see the module documentation for the rules).
#[derive(Debug, Clone)]
pub struct Globs {
    set: GlobSet,
    patterns: Vec<Pattern>,
    written: Vec<String>,
}

impl Globs {
    /// Compiles `patterns`; `Err((index, message))` names the bad pattern.
    pub fn new(patterns: &[String]) -> Result<Globs, (usize, String)> {
        let mut b = GlobSetBuilder::new();
        let mut out = Vec::with_capacity(patterns.len());
        for (i, p) in patterns.iter().enumerate() {
            for (glob, pat) in translate(p).map_err(|m| (i, m))? {
                let g = GlobBuilder::new(&glob)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| (i, format!("invalid glob {p:?}: {}", e.kind())))?;
                b.add(g);
                out.push(pat);
            }
        }
        let set = b.build().map_err(|e| (0, e.to_string()))?;
        Ok(Globs {
            set,
            patterns: out,
            written: patterns.to_vec(),
        })
    }

    /// The patterns as the plan wrote them.
    pub fn written(&self) -> &[String] {
        &self.written
    }

    /// True when `path` (an entry name; a trailing `/` marks a directory, as does
    /// `is_dir`) is selected: it, or one of its parent directories, is matched by a
    /// non-negated pattern that no later negated pattern matches.
    pub fn is_match(&self, path: &str, is_dir: bool) -> bool {
        let is_dir = is_dir || path.ends_with('/');
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return false;
        }
        for (i, _) in path.match_indices('/') {
            if i > 0 && self.verdict(&path[..i], true) == Some(true) {
                return true;
            }
        }
        self.verdict(path, is_dir) == Some(true)
    }

    /// The decision of the last pattern matching `path` itself: `Some(true)` selected,
    /// `Some(false)` re-included by a negation, `None` no pattern matches.
    fn verdict(&self, path: &str, is_dir: bool) -> Option<bool> {
        self.set
            .matches(path)
            .into_iter()
            .filter(|&i| is_dir || !self.patterns[i].dir_only)
            .max()
            .map(|i| !self.patterns[i].negated)
    }
}

/// A gitignore pattern as globset globs over the whole path (two for `x/**`: the
/// contents, and the directory `x` itself).
fn translate(p: &str) -> Result<Vec<(String, Pattern)>, String> {
    if p.is_empty() {
        return Err("empty glob".into());
    }
    let (negated, rest) = match p.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, p),
    };
    let dir_only = rest.ends_with('/') && !rest.ends_with("\\/");
    let body = if dir_only {
        &rest[..rest.len() - 1]
    } else {
        rest
    };
    let anchored = body.contains('/');
    let body = body.strip_prefix('/').unwrap_or(body);
    if body.is_empty() || body.split('/').any(str::is_empty) {
        return Err(format!(
            "glob {p:?} has an empty path segment (`//`, or nothing but `/`)"
        ));
    }
    let glob = if anchored {
        body.to_string()
    } else {
        format!("**/{body}")
    };
    let mut out = vec![(glob.clone(), Pattern { negated, dir_only })];
    if let Some(dir) = glob.strip_suffix("/**").filter(|d| !d.is_empty()) {
        let pat = Pattern {
            negated,
            dir_only: true,
        };
        out.push((dir.to_string(), pat));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &[&str]) -> Globs {
        Globs::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    /// (patterns, path, selected); a path ending in `/` is a directory.
    fn check(cases: &[(&[&str], &str, bool)]) {
        for (pats, path, want) in cases {
            assert_eq!(
                g(pats).is_match(path, false),
                *want,
                "patterns {pats:?} on {path:?}"
            );
        }
    }

    /// The examples of git-scm.com/docs/gitignore, PATTERN FORMAT and EXAMPLES.
    #[test]
    fn gitignore_documentation_examples() {
        check(&[
            // "doc/frotz/" matches the directory doc/frotz but not a/doc/frotz;
            // "frotz/" matches frotz and a/frotz, directories only.
            (&["doc/frotz/"], "doc/frotz/", true),
            (&["doc/frotz/"], "doc/frotz/x.txt", true),
            (&["doc/frotz/"], "a/doc/frotz/", false),
            (&["doc/frotz/"], "a/doc/frotz/x.txt", false),
            (&["doc/frotz/"], "doc/frotz", false), // a file
            (&["frotz/"], "frotz/", true),
            (&["frotz/"], "a/frotz/", true),
            (&["frotz/"], "a/frotz/b/c.txt", true),
            (&["frotz/"], "a/frotz", false), // a file
            // "*.html" at any depth; "/*.c" only at the root.
            (&["*.html"], "index.html", true),
            (&["*.html"], "a/b/index.html", true),
            (&["*.html"], "index.htm", false),
            (&["/*.c"], "cat-file.c", true),
            (&["/*.c"], "mozilla-sha1/sha1.c", false),
            // "foo/*" matches foo/test.json and the directory foo/bar (hence its files).
            (&["foo/*"], "foo/test.json", true),
            (&["foo/*"], "foo/bar/", true),
            (&["foo/*"], "foo/bar/hello.c", true),
            (&["foo/*"], "x/foo/test.json", false),
            (&["foo/*"], "foo", false),
            // Leading "**/": in all directories.
            (&["**/foo"], "foo", true),
            (&["**/foo"], "a/b/foo", true),
            (&["**/foo/bar"], "x/foo/bar", true),
            (&["**/foo/bar"], "foo/bar", true),
            (&["**/foo/bar"], "foo/x/bar", false),
            // Trailing "/**": everything inside, not the directory itself.
            (&["abc/**"], "abc/x", true),
            (&["abc/**"], "abc/x/y.txt", true),
            (&["abc/**"], "abc", false), // a file
            (&["abc/**"], "abc/", true), // the directory: see the module docs
            (&["abc/**"], "x/abc/y", false),
            // "a/**/b" matches a/b, a/x/b, a/x/y/b.
            (&["a/**/b"], "a/b", true),
            (&["a/**/b"], "a/x/b", true),
            (&["a/**/b"], "a/x/y/b", true),
            (&["a/**/b"], "a/x/c", false),
            (&["a/**/b"], "x/a/b", false),
            // "!" re-includes; the last matching pattern wins.
            (&["*.txt", "!keep.txt"], "a/drop.txt", true),
            (&["*.txt", "!keep.txt"], "a/keep.txt", false),
            (&["!keep.txt", "*.txt"], "a/keep.txt", true),
            (&["\\!important!.txt"], "!important!.txt", true),
            // "Exclude everything except directory foo/bar".
            (
                &["/*", "!/foo", "/foo/*", "!/foo/bar"],
                "foo/bar/a.c",
                false,
            ),
            (&["/*", "!/foo", "/foo/*", "!/foo/bar"], "foo/baz/a.c", true),
            (&["/*", "!/foo", "/foo/*", "!/foo/bar"], "top.txt", true),
            // A file cannot be re-included when a parent directory is excluded.
            (&["build/", "!build/keep.txt"], "build/keep.txt", true),
            (&["build/*", "!build/keep.txt"], "build/keep.txt", false),
        ]);
    }

    #[test]
    fn directories_and_literal_characters() {
        check(&[
            (&["node_modules/"], "node_modules/", true),
            (&["node_modules/"], "node_modules/left-pad/index.js", true),
            (&["node_modules/"], "app/node_modules/x/y.js", true),
            (&["node_modules/"], "my_node_modules/x.js", false),
            (&["dist"], "dist/app.js", true), // a matched directory selects its files
            (&["*.map"], "a/b.js", false),
            (&["#notes"], "#notes", true),
            (&["a b "], "a b ", true),
        ]);
        assert!(g(&["cache/"]).is_match("cache", true));
        assert!(!g(&["cache/"]).is_match("cache", false));
    }

    #[test]
    fn bad_patterns_are_reported_by_index() {
        let bad = |p: &[&str]| {
            Globs::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap_err()
        };
        assert_eq!(bad(&["a", ""]).0, 1);
        assert!(bad(&["["]).1.contains("invalid glob"));
        assert!(bad(&["/"]).1.contains("empty path segment"));
        assert!(bad(&["!"]).1.contains("empty path segment"));
        assert!(bad(&["a//b"]).1.contains("empty path segment"));
    }
}
