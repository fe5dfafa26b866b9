//! `when`: steps that apply only under a condition. Variable tests (`equals`,
//! `not_equals`, `in`, `matches`) are decided when the plan is compiled, from the
//! plan's variables and the job's built-ins; entry tests (`exists`, `not_exists`)
//! from the central directories of the inputs feeding each output, by
//! [`Plan::resolve_conditions`], before any entry is decided.
//!
//! Invariants: an inactive step does nothing to any entry (no match, no added file,
//! no export, no must-match check); entries are never decided while an entry test
//! is unresolved (a bug, so it panics rather than guess).

use std::collections::BTreeMap;

use regex::Regex;

use super::glob::Globs;
use super::spec::WhenSpec;
use super::{perr, OutputPlan, Plan, PlanError, Step};

/// A compiled `when`.
#[derive(Debug, Clone)]
pub(super) struct Condition {
    /// The variable test holds (true without one).
    vars_hold: bool,
    /// The entry test: globs, and whether a match is wanted (`exists`) or not.
    entries: Option<(Globs, bool)>,
}

impl Condition {
    /// Whether the step applies, when that needs no entry listing.
    pub(super) fn known(&self) -> Option<bool> {
        match (&self.entries, self.vars_hold) {
            (_, false) => Some(false),
            (None, true) => Some(true),
            (Some(_), true) => None,
        }
    }
}

/// Compiles `w`, found at field `at` (`steps[2].when`).
pub(super) fn compile_when(
    at: &str,
    w: &WhenSpec,
    vars: &BTreeMap<String, String>,
) -> Result<Condition, PlanError> {
    let f = |k: &str| format!("{at}.{k}");
    let vars_hold = match &w.variable {
        Some(name) => variable_test(at, w, name, vars)?,
        None => {
            let stray = [
                ("equals", w.equals.is_some()),
                ("not_equals", w.not_equals.is_some()),
                ("in", w.one_of.is_some()),
                ("matches", w.matches.is_some()),
            ];
            if let Some((k, _)) = stray.iter().find(|(_, given)| *given) {
                return Err(perr(f(k), "tests a variable: give `variable` too"));
            }
            true
        }
    };
    let entries = match (&w.exists, &w.not_exists) {
        (Some(_), Some(_)) => return Err(perr(at, "give one of `exists` and `not_exists`")),
        (Some(g), None) => Some((entry_globs(&f("exists"), g)?, true)),
        (None, Some(g)) => Some((entry_globs(&f("not_exists"), g)?, false)),
        (None, None) => None,
    };
    if w.variable.is_none() && entries.is_none() {
        return Err(perr(
            at,
            "tests nothing: give `variable` with `equals`, `not_equals`, `in` or `matches`, \
             or `exists` / `not_exists`",
        ));
    }
    Ok(Condition { vars_hold, entries })
}

fn entry_globs(at: &str, glob: &str) -> Result<Globs, PlanError> {
    Globs::new(&[glob.to_string()]).map_err(|(_, m)| perr(at, m))
}

/// The variable test of `w` on variable `name`.
fn variable_test(
    at: &str,
    w: &WhenSpec,
    name: &str,
    vars: &BTreeMap<String, String>,
) -> Result<bool, PlanError> {
    let Some(value) = vars.get(name) else {
        return Err(perr(
            format!("{at}.variable"),
            format!(
                "{name:?} is not defined: define it in `variables` (CodePipeline fills \
                 #{{Namespace.Name}} there) or use a built-in such as CODEPIPELINE_JOB_ID"
            ),
        ));
    };
    let tests = [
        w.equals.as_ref().map(|e| Ok(value == e)),
        w.not_equals.as_ref().map(|e| Ok(value != e)),
        w.one_of.as_ref().map(|l| Ok(l.contains(value))),
        w.matches.as_ref().map(|re| {
            Regex::new(re)
                .map(|re| re.is_match(value))
                .map_err(|e| perr(format!("{at}.matches"), format!("invalid regex: {e}")))
        }),
    ];
    let mut given = tests.into_iter().flatten();
    match (given.next(), given.next()) {
        (Some(result), None) => result,
        _ => Err(perr(
            at,
            "give exactly one of `equals`, `not_equals`, `in` and `matches` with `variable`",
        )),
    }
}

impl Plan {
    /// Decides the entry tests of every output's `when` conditions: `any_entry(input,
    /// globs)` says whether some entry of input artifact `input` (its index in the
    /// job) matches. Call once the inputs are indexed, before deciding any entry.
    pub fn resolve_conditions(&mut self, any_entry: impl Fn(usize, &Globs) -> bool) {
        for op in &mut self.outputs {
            for (i, c) in op.conditions.iter().enumerate() {
                let Some(c) = c else { continue };
                op.active[i] = c.known().unwrap_or_else(|| {
                    let (globs, want) = c.entries.as_ref().expect("unknown only with a test");
                    op.sources.iter().any(|s| any_entry(s.input, globs)) == *want
                });
            }
            op.pending = false;
            let manifest = op
                .active_steps()
                .any(|s| matches!(s, Step::Manifest { .. }));
            op.manifest = manifest;
        }
    }

    /// True when some `when` has an entry test to resolve.
    pub fn has_entry_conditions(&self) -> bool {
        self.outputs.iter().any(|o| o.pending)
    }
}

impl OutputPlan {
    /// Whether step `i` applies (its `when` holds). Panics while entry tests are
    /// unresolved.
    pub fn step_active(&self, i: usize) -> bool {
        assert!(
            !self.pending,
            "when.exists is resolved (Plan::resolve_conditions) before steps are used"
        );
        self.active[i]
    }

    /// The steps that apply, in order.
    pub(super) fn active_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .zip(&self.active)
            .filter(|(_, a)| **a)
            .map(|(s, _)| s)
    }
}
