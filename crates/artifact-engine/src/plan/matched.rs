//! Across outputs, after every output is laid out: no content, `export`, `copy`, `zip`
//! or `unzip` step may have matched nothing unless it says `"optional": true` — a
//! mistyped glob must not ship yesterday's artifact silently.

use super::{perr, OutputPlan, Plan, PlanError, Step};

impl Plan {
    /// Refuses a `template`, `replace`, `set` or `export` step that matched no entry
    /// in any output it applies to (a top-level step applies to every output), unless
    /// it is optional: a mistyped glob fails the job before data moves instead of
    /// shipping the file unchanged. `step_hits[o]` is output `o`'s
    /// [`OutputLayout::step_hits`].
    pub fn check_steps_matched(&self, step_hits: &[Vec<u64>]) -> Result<(), PlanError> {
        // Field path -> (entries matched, outputs it applies to, output and step index).
        let mut steps: Vec<(&str, u64, Vec<&str>, usize, usize)> = Vec::new();
        for (o, (op, hits)) in self.outputs.iter().zip(step_hits).enumerate() {
            for (i, field) in op.fields.iter().enumerate() {
                if !op.must_match(i) {
                    continue;
                }
                let hits = hits[i];
                match steps.iter_mut().find(|s| s.0 == field) {
                    Some(s) => {
                        s.1 += hits;
                        s.2.push(&op.name);
                    }
                    None => steps.push((field, hits, vec![&op.name], o, i)),
                }
            }
        }
        match steps.into_iter().find(|s| s.1 == 0) {
            Some((_, _, outputs, o, i)) => {
                Err(self.in_origin(self.outputs[o].unmatched(i, &outputs)))
            }
            None => Ok(()),
        }
    }
}

impl OutputPlan {
    /// True for a step that must match at least one entry.
    fn must_match(&self, i: usize) -> bool {
        self.step_active(i)
            && matches!(
                self.steps[i],
                Step::Content {
                    optional: false,
                    ..
                } | Step::Export {
                    optional: false,
                    ..
                } | Step::Copy {
                    optional: false,
                    ..
                } | Step::Zip {
                    optional: false,
                    ..
                } | Step::Unzip {
                    optional: false,
                    ..
                }
            )
    }

    /// The error for step `i`, which matched no entry of `outputs`.
    fn unmatched(&self, i: usize, outputs: &[&str]) -> PlanError {
        let field = &self.fields[i];
        let whose = match outputs {
            [one] => format!("output {one:?}"),
            all => format!("any output {all:?}"),
        };
        match &self.steps[i] {
            Step::Export { file, .. } => perr(
                format!("{field}.file"),
                format!(
                    "{file:?} is not an entry of {whose} at this step (after earlier steps \
                     renamed or dropped entries); give a \"default\" or set \"optional\": true"
                ),
            ),
            Step::Content { globs, .. } => perr(
                format!("{field}.files"),
                format!(
                    "matched no entry of {whose} (files {:?}); check the globs against the \
                     artifact (`artifact-runner plan` lists every entry and the steps that \
                     matched it) or set \"optional\": true",
                    globs.written()
                ),
            ),
            Step::Copy { from, .. } => perr(
                format!("{field}.from"),
                format!(
                    "{from:?} is not an entry of {whose} at this step (after earlier steps \
                     renamed or dropped entries); set \"optional\": true if it may be absent"
                ),
            ),
            Step::Zip { globs, .. } => perr(
                format!("{field}.files"),
                format!(
                    "matched no entry of {whose} (files {:?}); set \"optional\": true if \
                     the subtree may be absent",
                    globs.written()
                ),
            ),
            Step::Unzip { globs, .. } => perr(
                format!("{field}.files"),
                format!(
                    "matched no zip entry of {whose} (files {:?}); set \"optional\": true \
                     if the zip may be absent",
                    globs.written()
                ),
            ),
            _ => unreachable!("only content, export, copy, zip and unzip steps must match"),
        }
    }
}
