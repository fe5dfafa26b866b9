//! Text operations on entry content: literal replacement and `${NAME}` templates.

use std::collections::BTreeMap;

use memchr::memmem;

/// Replaces every non-overlapping occurrence of `find`.
pub fn replace_all(data: Vec<u8>, find: &[u8], with: &[u8]) -> Vec<u8> {
    let mut it = memmem::find_iter(&data, find).peekable();
    if it.peek().is_none() {
        return data;
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
    }
    out.extend_from_slice(&data[last..]);
    out
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_var_name(v: &str) -> bool {
    let mut c = v.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Substitutes `${NAME}`; unknown names are kept, or reported through `Err(name)` when
/// `strict`.
pub fn template(
    data: Vec<u8>,
    vars: &BTreeMap<String, String>,
    strict: bool,
) -> Result<Vec<u8>, String> {
    let finder = memmem::Finder::new(b"${");
    let mut out: Option<Vec<u8>> = None;
    let (mut last, mut at) = (0, 0);
    while let Some(p) = finder.find(&data[at..]) {
        let start = at + p;
        let rest = &data[start + 2..];
        let end = rest.iter().take(256).position(|&b| b == b'}');
        let var = end
            .and_then(|e| std::str::from_utf8(&rest[..e]).ok())
            .filter(|v| valid_var_name(v));
        let Some(var) = var else {
            at = start + 2;
            continue;
        };
        let close = start + 2 + var.len() + 1;
        match vars.get(var) {
            Some(v) => {
                let o = out.get_or_insert_with(|| Vec::with_capacity(data.len() + 64));
                o.extend_from_slice(&data[last..start]);
                o.extend_from_slice(v.as_bytes());
                last = close;
            }
            None if strict => return Err(var.to_string()),
            None => {}
        }
        at = close;
    }
    Ok(match out {
        None => data,
        Some(mut o) => {
            o.extend_from_slice(&data[last..]);
            o
        }
    })
}
