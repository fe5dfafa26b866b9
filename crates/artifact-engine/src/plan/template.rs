//! The `template` step's placeholders: `${NAME}` (or `NAME` between configured
//! delimiters such as `{{ NAME }}`), with an optional filter that escapes the value
//! for where it lands — `${NAME|json}` and `${NAME|yaml}` (a quoted string literal),
//! `${NAME|url}` (percent-encoded), `${NAME|sh}` (one single-quoted shell word) — and
//! `$${` for a literal `${`. An undefined name is an error, kept, or emptied
//! ([`Missing`]).
//!
//! One scanner serves the whole-entry step and the streaming one
//! ([`Templater::scan`] with `last`), so both decide every placeholder the same way:
//! the streaming caller carries the bytes from where a decision needs more input
//! (an open delimiter whose closing lookahead is incomplete, and the byte before it,
//! which decides an escape). Invariant, property-tested in [`super::stream`]: for any
//! split of the input into chunks, the output equals the whole-entry output.

use std::collections::BTreeMap;

use memchr::memmem;

use super::spec::Missing;
use super::text::valid_var_name;

/// How far past the open delimiter a placeholder's close is looked for.
pub const LOOKAHEAD: usize = 256;

/// A filter escaping a value for its target syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Json,
    Url,
    Sh,
}

/// Why a template failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A placeholder names an undefined variable (with [`Missing::Error`]).
    Unknown(String),
    /// A placeholder names a filter that does not exist.
    BadFilter(String),
    /// The output would exceed the limit.
    TooLarge,
}

impl TemplateError {
    /// The message a job reports for it.
    pub fn message(&self) -> String {
        match self {
            TemplateError::Unknown(v) => format!(
                "template variable {v:?} is not defined (define it in UserParameters \
                 \"variables\", or set the step's \"missing\" to \"keep\" or \"empty\")"
            ),
            TemplateError::BadFilter(f) => {
                format!("unknown template filter {f:?}: the filters are json, yaml, url and sh")
            }
            TemplateError::TooLarge => "the output would exceed the step's output limit".into(),
        }
    }
}

/// A template's syntax, variables and rule for undefined names.
#[derive(Debug, Clone)]
pub struct Templater {
    vars: BTreeMap<String, String>,
    open: Vec<u8>,
    close: Vec<u8>,
    missing: Missing,
}

/// What starts at an open delimiter.
enum At<'b> {
    /// `$${`: a literal `${`.
    Escape,
    /// A placeholder ending before `end`.
    Placeholder {
        name: &'b str,
        filter: Option<&'b str>,
        end: usize,
    },
    /// Not decidable before more input arrives.
    Pending,
    /// Plain text.
    Text,
}

impl Templater {
    /// `${NAME}` placeholders over `vars`.
    pub fn new(vars: BTreeMap<String, String>, missing: Missing) -> Templater {
        Templater {
            vars,
            open: b"${".to_vec(),
            close: b"}".to_vec(),
            missing,
        }
    }

    /// Placeholders between `open` and `close` (e.g. `{{` and `}}`; spaces inside
    /// are trimmed). Only the default `${` has the `$${` escape.
    pub fn with_delimiters(mut self, open: &str, close: &str) -> Templater {
        self.open = open.as_bytes().to_vec();
        self.close = close.as_bytes().to_vec();
        self
    }

    fn default_syntax(&self) -> bool {
        self.open == b"${"
    }

    /// Substitutes every placeholder of `data`, failing once the output would pass
    /// `limit` bytes.
    pub fn apply(&self, data: Vec<u8>, limit: usize) -> Result<Vec<u8>, TemplateError> {
        let (out, _, changed) = self.scan(&data, true, limit)?;
        Ok(if changed { out } else { data })
    }

    /// Substitutes the placeholders of `buf` that can be decided; with `last`, all.
    /// Returns the output, where the undecided rest of `buf` starts (to be carried
    /// in front of the next input), and whether anything changed.
    pub fn scan(
        &self,
        buf: &[u8],
        last: bool,
        limit: usize,
    ) -> Result<(Vec<u8>, usize, bool), TemplateError> {
        let finder = memmem::Finder::new(&self.open);
        let mut out = Vec::with_capacity(buf.len() + 64);
        let (mut done, mut at, mut changed) = (0, 0, false);
        while let Some(off) = finder.find(&buf[at..]) {
            let p = at + off;
            match self.at(buf, p, done, last)? {
                At::Pending => {
                    // With `${`, the byte before decides an escape: carry it too. Other
                    // delimiters have no escape, and carrying a byte before the open
                    // could let the next call find an open one byte early (`__X____Y`
                    // with `__` delimiters).
                    let from = if self.default_syntax() {
                        p.saturating_sub(1)
                    } else {
                        p
                    };
                    let keep_from = from.max(done);
                    out.extend_from_slice(&buf[done..keep_from]);
                    return Ok((out, keep_from, changed));
                }
                At::Text => at = p + 1,
                At::Escape => {
                    out.extend_from_slice(&buf[done..p - 1]);
                    out.extend_from_slice(&self.open);
                    (done, at, changed) = (p + self.open.len(), p + self.open.len(), true);
                }
                At::Placeholder { name, filter, end } => {
                    if let Some(value) = self.value(name, filter)? {
                        out.extend_from_slice(&buf[done..p]);
                        out.extend_from_slice(&value);
                        (done, changed) = (end, true);
                        if out.len() > limit {
                            return Err(TemplateError::TooLarge);
                        }
                    }
                    at = end;
                }
            }
        }
        // An open delimiter may begin in the last bytes, and the byte before it
        // decides an escape: keep as many as the delimiter is long.
        let keep_from = if last {
            buf.len()
        } else {
            at.max(buf.len().saturating_sub(self.open.len())).max(done)
        };
        out.extend_from_slice(&buf[done..keep_from]);
        if out.len() > limit {
            return Err(TemplateError::TooLarge);
        }
        Ok((out, keep_from, changed))
    }

    /// What the open delimiter at `p` starts (`done`: bytes before it are consumed).
    fn at<'b>(
        &self,
        buf: &'b [u8],
        p: usize,
        done: usize,
        last: bool,
    ) -> Result<At<'b>, TemplateError> {
        if self.default_syntax() && p > done && buf[p - 1] == b'$' {
            return Ok(At::Escape);
        }
        let body = p + self.open.len();
        let window_end = (body + LOOKAHEAD + self.close.len()).min(buf.len());
        let close = memmem::find(&buf[body..window_end], &self.close).filter(|&k| k <= LOOKAHEAD);
        let Some(k) = close else {
            let complete = body + LOOKAHEAD + self.close.len() <= buf.len();
            return Ok(if last || complete {
                At::Text
            } else {
                At::Pending
            });
        };
        let Ok(inner) = std::str::from_utf8(&buf[body..body + k]) else {
            return Ok(At::Text);
        };
        let inner = if self.default_syntax() {
            inner
        } else {
            inner.trim_matches(' ')
        };
        let (name, filter) = match inner.split_once('|') {
            Some((n, f)) => (n.trim_end_matches(' '), Some(f.trim_matches(' '))),
            None => (inner, None),
        };
        if !valid_var_name(name) {
            return Ok(At::Text);
        }
        Ok(At::Placeholder {
            name,
            filter,
            end: body + k + self.close.len(),
        })
    }

    /// The bytes replacing placeholder `name|filter`; `None` keeps it as written.
    /// An undefined name follows [`Missing`] before its filter is looked at, so
    /// text that only looks like a placeholder (a JavaScript template literal
    /// `${a|b}`) is kept under `missing: keep`.
    fn value(&self, name: &str, filter: Option<&str>) -> Result<Option<Vec<u8>>, TemplateError> {
        let Some(v) = self.vars.get(name) else {
            return match self.missing {
                Missing::Error => Err(TemplateError::Unknown(name.to_string())),
                Missing::Keep => Ok(None),
                Missing::Empty => Ok(Some(Vec::new())),
            };
        };
        let filter = match filter {
            None => None,
            Some("json" | "yaml") => Some(Filter::Json),
            Some("url") => Some(Filter::Url),
            Some("sh") => Some(Filter::Sh),
            Some(other) => return Err(TemplateError::BadFilter(other.to_string())),
        };
        Ok(Some(match filter {
            None => v.as_bytes().to_vec(),
            Some(Filter::Json) => serde_json::to_string(v)
                .expect("strings serialize")
                .into_bytes(),
            Some(Filter::Url) => percent_encode(v),
            Some(Filter::Sh) => format!("'{}'", v.replace('\'', r"'\''")).into_bytes(),
        }))
    }
}

/// RFC 3986: every byte but the unreserved `A-Z a-z 0-9 - . _ ~` as `%XX`.
fn percent_encode(v: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// Checks configured delimiters: non-empty, at most 8 bytes, no whitespace.
pub fn check_delimiters(open: &str, close: &str) -> Result<(), String> {
    for d in [open, close] {
        if d.is_empty() || d.len() > 8 || d.chars().any(char::is_whitespace) {
            return Err(format!(
                "{d:?}: delimiters are 1 to 8 characters without spaces, e.g. [\"{{{{\", \"}}}}\"]"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(missing: Missing) -> Templater {
        let vars = BTreeMap::from([
            ("V".to_string(), "1.2".to_string()),
            ("Q".to_string(), "it's \"x\" & y/z\n".to_string()),
        ]);
        Templater::new(vars, missing)
    }

    fn run(tp: &Templater, s: &str) -> Result<String, TemplateError> {
        tp.apply(s.as_bytes().to_vec(), usize::MAX)
            .map(|o| String::from_utf8(o).unwrap())
    }

    #[test]
    fn filters_escape_for_their_syntax() {
        let tp = t(Missing::Error);
        assert_eq!(run(&tp, "v=${V}").unwrap(), "v=1.2");
        assert_eq!(
            run(&tp, r#"{"q": ${Q|json}}"#).unwrap(),
            r#"{"q": "it's \"x\" & y/z\n"}"#
        );
        assert_eq!(
            run(&tp, "q: ${Q|yaml}").unwrap(),
            r#"q: "it's \"x\" & y/z\n""#
        );
        assert_eq!(
            run(&tp, "?q=${Q|url}").unwrap(),
            "?q=it%27s%20%22x%22%20%26%20y%2Fz%0A"
        );
        assert_eq!(
            run(&tp, "echo ${Q|sh}").unwrap(),
            "echo 'it'\\''s \"x\" & y/z\n'"
        );
        assert_eq!(
            run(&tp, "${V|nope}"),
            Err(TemplateError::BadFilter("nope".into()))
        );
    }

    #[test]
    fn escapes_missing_and_delimiters() {
        assert_eq!(
            run(&t(Missing::Error), "$${V} $$${V} ${V}").unwrap(),
            "${V} $${V} 1.2"
        );
        assert_eq!(
            run(&t(Missing::Error), "${NOPE}"),
            Err(TemplateError::Unknown("NOPE".into()))
        );
        assert_eq!(
            run(&t(Missing::Keep), "${NOPE}|${V}").unwrap(),
            "${NOPE}|1.2"
        );
        // A JavaScript template literal that only looks like a filtered placeholder.
        assert_eq!(run(&t(Missing::Keep), "`${a|b}`").unwrap(), "`${a|b}`");
        assert_eq!(run(&t(Missing::Empty), "[${NOPE}]").unwrap(), "[]");
        // Not placeholders: CloudFormation's ${AWS::Region}, a name with spaces.
        assert_eq!(
            run(&t(Missing::Error), "${AWS::Region} ${ V }").unwrap(),
            "${AWS::Region} ${ V }"
        );
        let curly = t(Missing::Error).with_delimiters("{{", "}}");
        assert_eq!(
            run(&curly, "!Sub '${AWS::Region}-${V}' {{V}} {{ Q | url }}").unwrap(),
            "!Sub '${AWS::Region}-${V}' 1.2 it%27s%20%22x%22%20%26%20y%2Fz%0A"
        );
        assert!(check_delimiters("{{", "}}").is_ok());
        assert!(check_delimiters("", "}}").is_err() && check_delimiters("{ {", "}").is_err());
    }
}
