//! Text operations on entry content: literal and regex replacement, line-ending
//! normalization, and the compile-time checks of regex replacements (templates are
//! in [`super::template`]).
//!
//! Invariants: every operation that can make content grow takes a `limit` and stops
//! (returning [`TooLarge`]) as soon as its output would pass it, so memory stays within
//! `limit` plus one replacement; a regex used by `replace` cannot match the empty string
//! ([`refuse_empty_match`]), and every group reference in a replacement names a group of
//! its regex ([`check_replacement`]).

use memchr::memmem;

/// Output would pass the size limit of a content step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// The most a content step may make of `input_len` bytes: 4 × input + 1 MiB.
pub const fn output_limit(input_len: usize) -> usize {
    input_len.saturating_mul(4).saturating_add(1 << 20)
}

/// Replaces every non-overlapping occurrence of `find`.
pub fn replace_all(data: Vec<u8>, find: &[u8], with: &[u8]) -> Vec<u8> {
    replace_all_capped(data, find, with, usize::MAX).expect("no limit")
}

/// [`replace_all`] that fails once the output would exceed `limit` bytes.
pub fn replace_all_capped(
    data: Vec<u8>,
    find: &[u8],
    with: &[u8],
    limit: usize,
) -> Result<Vec<u8>, TooLarge> {
    let mut it = memmem::find_iter(&data, find).peekable();
    if it.peek().is_none() {
        return Ok(data);
    }
    let mut out = Vec::with_capacity(data.len());
    let mut last = 0;
    for p in it {
        if p < last {
            continue;
        }
        out.extend_from_slice(&data[last..p]);
        out.extend_from_slice(with);
        last = p + find.len();
        if out.len() > limit {
            return Err(TooLarge);
        }
    }
    out.extend_from_slice(&data[last..]);
    if out.len() > limit {
        return Err(TooLarge);
    }
    Ok(out)
}

/// Replaces every match of `re` by `with` (`$1`, `${name}` expanded); fails once the
/// output would exceed `limit` bytes. `re` must not match the empty string.
pub fn regex_replace_capped(
    data: Vec<u8>,
    re: &regex::bytes::Regex,
    with: &[u8],
    limit: usize,
) -> Result<Vec<u8>, TooLarge> {
    let mut out: Option<Vec<u8>> = None;
    let mut last = 0;
    for c in re.captures_iter(&data) {
        let m = c.get(0).expect("group 0 is the match");
        let o = out.get_or_insert_with(|| Vec::with_capacity(data.len()));
        o.extend_from_slice(&data[last..m.start()]);
        c.expand(with, o);
        last = m.end();
        if o.len() > limit {
            return Err(TooLarge);
        }
    }
    let Some(mut o) = out else {
        return Ok(data);
    };
    o.extend_from_slice(&data[last..]);
    if o.len() > limit {
        return Err(TooLarge);
    }
    Ok(o)
}

/// Refuses a regex that can match the empty string (`a*`, `^`, `x?`): `replace` would
/// insert the replacement between every two bytes.
pub fn refuse_empty_match(pattern: &str) -> Result<(), String> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| format!("invalid regex: {e}"))?;
    if hir.properties().minimum_len() == Some(0) {
        return Err(format!(
            "regex {pattern:?} can match the empty string, which would insert the replacement \
             everywhere; make it match at least one character (e.g. `a+` instead of `a*`)"
        ));
    }
    Ok(())
}

/// Checks every group reference in the replacement `with` (`$N`, `$name`, `${name}`;
/// `$$` is a literal `$`) against the groups of `re`: `group_count` groups including
/// group 0, and the named ones in `names`.
pub fn check_replacement<'a>(
    with: &str,
    group_count: usize,
    names: impl Iterator<Item = &'a str> + Clone,
) -> Result<(), String> {
    let b = with.as_bytes();
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'$', &b[i..]) {
        let at = i + p;
        let Some((name, braced, end)) = cap_ref(b, at) else {
            i = at + if b.get(at + 1) == Some(&b'$') { 2 } else { 1 };
            continue;
        };
        let ok = match name.parse::<usize>() {
            Ok(n) => n < group_count,
            Err(_) => names.clone().any(|g| g == name),
        };
        if !ok {
            return Err(unknown_group(&with[at..end], name, braced, group_count));
        }
        i = end;
    }
    Ok(())
}

/// The group reference starting at `b[at] == b'$'`, as the regex crate reads it:
/// (name, written with braces, end offset). `None`: a literal `$` (or `$$`).
fn cap_ref(b: &[u8], at: usize) -> Option<(&str, bool, usize)> {
    let rest = &b[at + 1..];
    if rest.first() == Some(&b'{') {
        let close = rest.iter().position(|&c| c == b'}')?;
        let name = std::str::from_utf8(&rest[1..close]).ok()?;
        return (!name.is_empty()).then_some((name, true, at + 1 + close + 1));
    }
    let len = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    let name = std::str::from_utf8(&rest[..len]).ok()?;
    (len > 0).then_some((name, false, at + 1 + len))
}

fn unknown_group(written: &str, name: &str, braced: bool, group_count: usize) -> String {
    let groups = format!(
        "the regex has groups $0 to ${} and the names it declares with (?P<name>...)",
        group_count - 1
    );
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if !braced && digits > 0 && digits < name.len() {
        let (n, tail) = name.split_at(digits);
        return format!(
            "{written:?} refers to a group named {name:?}, which does not exist ({groups}); \
             to put {tail:?} right after group {n}, write \"${{{n}}}{tail}\""
        );
    }
    format!(
        "{written:?} refers to group {name:?}, which does not exist ({groups}); \
         write \"$$\" for a literal `$`, and braces (\"${{1}}x\") when text follows a reference"
    )
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_var_name(v: &str) -> bool {
    let mut c = v.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// `data` with `line_endings` (CRLF and LF made one kind; a lone CR is kept) and, with
/// `strip_bom`, no leading UTF-8 byte-order mark. Refuses data holding a NUL byte
/// (binary, or UTF-16), which line-ending rewriting would damage.
pub fn normalize(
    mut data: Vec<u8>,
    line_endings: super::spec::LineEndings,
    strip_bom: bool,
) -> Result<Vec<u8>, String> {
    use super::spec::LineEndings;
    if let Some(at) = memchr::memchr(0, &data) {
        return Err(format!(
            "holds a NUL byte at offset {at}: binary or UTF-16, not text to normalize \
             (narrow the step's globs)"
        ));
    }
    if strip_bom && data.starts_with(b"\xEF\xBB\xBF") {
        data.drain(..3);
    }
    Ok(match line_endings {
        LineEndings::Keep => data,
        LineEndings::Lf => replace_all(data, b"\r\n", b"\n"),
        LineEndings::Crlf => replace_all(replace_all(data, b"\r\n", b"\n"), b"\n", b"\r\n"),
    })
}
