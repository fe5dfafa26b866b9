//! `UserParameters` text to a [`PlanSpec`]: absent or blank is the empty plan;
//! anything else must be a JSON object, and a malformed one is refused with the path
//! of the field (`steps[1].replace`) and what the field accepts.

use super::spec::PlanSpec;
use super::{perr, PlanError};

impl PlanSpec {
    /// Parses `UserParameters` (JSON); absent or blank is the empty plan.
    pub fn parse(user_parameters: Option<&str>) -> Result<PlanSpec, PlanError> {
        let text = user_parameters.unwrap_or("").trim();
        if text.is_empty() {
            return Ok(PlanSpec::default());
        }
        if !text.starts_with('{') {
            let shown: String = text.chars().take(60).collect();
            return Err(perr(
                "(document)",
                format!("must be a JSON object such as {{\"steps\": [...]}}, got {shown:?}"),
            ));
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." || path.is_empty() {
                "(document)".to_string()
            } else {
                path
            };
            let mut message = e.into_inner().to_string();
            if message.contains("did not match any variant of untagged enum Selector") {
                message =
                    "expected a list of globs, or {\"files\": [globs], \"inputs\": [input names]}"
                        .into();
            } else if message.contains("did not match any variant of untagged enum SourceSpec") {
                message =
                    "expected an input artifact name, or {\"input\": name, \"prefix\": \"dir/\"}"
                        .into();
            }
            perr(path, message)
        })
    }
}
