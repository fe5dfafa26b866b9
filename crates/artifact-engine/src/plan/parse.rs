//! `UserParameters` text to a [`PlanSpec`]: absent or blank is the empty plan; a
//! document starting with `{` is JSON; anything else is YAML (1.2, one document, a
//! mapping), as CloudFormation users write it. Either is deserialized into the same
//! types, and a malformed one is refused with the path of the field
//! (`steps[1].replace`) and what the field accepts.
//!
//! YAML is loaded with yaml-rust2 under the alias budget of [`super::verify`] (no
//! billion-laughs expansion) and converted to a JSON value: plain scalars follow the
//! YAML 1.2 core schema (`1.10` is a number, `yes` a string), keys must be scalars.

use serde_json::{Map, Number, Value};
use yaml_rust2::Yaml;

use super::spec::PlanSpec;
use super::{perr, verify, PlanError};

impl PlanSpec {
    /// Parses `UserParameters` (a JSON object or a YAML mapping); absent or blank is
    /// the empty plan.
    pub fn parse(user_parameters: Option<&str>) -> Result<PlanSpec, PlanError> {
        let text = user_parameters.unwrap_or("").trim();
        if text.is_empty() {
            return Ok(PlanSpec::default());
        }
        if text.starts_with('{') {
            let de = &mut serde_json::Deserializer::from_str(text);
            return serde_path_to_error::deserialize(de).map_err(|e| spec_error(e, false));
        }
        let value = yaml_document(text)?;
        if !value.is_object() {
            let shown: String = text.chars().take(60).collect();
            return Err(perr(
                "(document)",
                format!(
                    "must be a JSON object such as {{\"steps\": [...]}} or a YAML mapping \
                     such as `steps: [...]`, got {shown:?}"
                ),
            ));
        }
        serde_path_to_error::deserialize(value).map_err(|e| spec_error(e, true))
    }
}

/// Where a `plan_file` is: the input artifact and the entry path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    /// Input artifact name.
    pub input: String,
    /// Entry path in that input.
    pub path: String,
}

impl std::fmt::Display for PlanFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.input, self.path)
    }
}

impl PlanSpec {
    /// The plan file this document points at, checked: `Input::path`, and nothing
    /// beside it but `variables` (and `$schema`). `None` when the plan is inline.
    pub fn plan_file(&self) -> Result<Option<PlanFile>, PlanError> {
        let Some(reference) = &self.plan_file else {
            return Ok(None);
        };
        let only_variables = PlanSpec {
            schema: self.schema.clone(),
            plan_file: self.plan_file.clone(),
            variables: self.variables.clone(),
            ..PlanSpec::default()
        };
        if *self != only_variables {
            return Err(perr(
                "plan_file",
                "with a plan file, UserParameters may only add `variables`: put steps, \
                 outputs and the other settings in the file",
            ));
        }
        let Some((input, path)) = reference.split_once("::") else {
            return Err(perr(
                "plan_file",
                format!("{reference:?} is not INPUT::PATH, e.g. \"SourceArtifact::ci/artifact-plan.yml\""),
            ));
        };
        crate::zip::read::validate_name(path).map_err(|w| perr("plan_file", w))?;
        if input.is_empty() || path.ends_with('/') {
            return Err(perr("plan_file", format!("{reference:?} names no file")));
        }
        Ok(Some(PlanFile {
            input: input.to_string(),
            path: path.to_string(),
        }))
    }

    /// The plan in `text`, the content of `file`, with this document's variables over
    /// the file's. Errors name the file: `SourceArtifact::ci/plan.yml steps[1]...`.
    pub fn from_plan_file(&self, file: &PlanFile, text: &str) -> Result<PlanSpec, PlanError> {
        let in_file = |e: PlanError| perr(format!("{file} {}", e.path), e.message);
        let mut spec = PlanSpec::parse(Some(text)).map_err(in_file)?;
        if spec.plan_file.is_some() {
            return Err(in_file(perr(
                "plan_file",
                "a plan file cannot point at another",
            )));
        }
        spec.variables.extend(self.variables.clone());
        Ok(spec)
    }
}

/// A deserialization error as a [`PlanError`] at the field's path, with plainer words
/// for the untagged enums (and, for YAML, a hint on quoting).
fn spec_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>, yaml: bool) -> PlanError {
    let path = e.path().to_string();
    let path = if path == "." || path.is_empty() {
        "(document)".to_string()
    } else {
        path
    };
    let mut message = e.into_inner().to_string();
    if message.contains("did not match any variant of untagged enum Selector") {
        message =
            "expected a list of globs, or {\"files\": [globs], \"inputs\": [input names], \
             \"type\": file|directory|symlink|executable, \"size\": {\"min\": bytes, \"max\": bytes}}"
                .into();
    } else if message.contains("did not match any variant of untagged enum SourceSpec") {
        message =
            "expected an input artifact name, or {\"input\": name, \"prefix\": \"dir/\"}".into();
    } else if yaml && message.contains("expected a string") {
        message
            .push_str(" (in YAML, quote values that would read as numbers or booleans: \"1.10\")");
    }
    perr(path, message)
}

/// The one YAML document of `text`, as a JSON value.
fn yaml_document(text: &str) -> Result<Value, PlanError> {
    let yaml_err = |m: String| perr("(document)", m);
    let mut docs = verify::load_documents(text).map_err(yaml_err)?;
    if docs.len() != 1 {
        return Err(yaml_err(format!(
            "holds {} YAML documents; give exactly one",
            docs.len()
        )));
    }
    to_json(docs.remove(0), "").map_err(yaml_err)
}

/// `y` (at `path`, for messages) as a JSON value.
pub(super) fn to_json(y: Yaml, path: &str) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(r) => match r.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(r),
        },
        Yaml::String(s) => Value::String(s),
        Yaml::Array(a) => Value::Array(
            a.into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(h) => {
            let mut map = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => return Err(format!("{path}: mapping keys must be plain text")),
                };
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let value = to_json(v, &at)?;
                if map.insert(key, value).is_some() {
                    return Err(format!("{at}: duplicate key"));
                }
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err(format!("{path}: unreadable YAML value")),
    })
}
