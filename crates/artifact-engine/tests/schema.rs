//! The committed `docs/user-parameters.schema.json` matches the plan types, checked
//! from this crate alone (the root package has the same test but needs the whole
//! workspace). Regenerate with `UPDATE_SCHEMA=1 cargo test -p artifact-engine --test schema`.

use std::path::Path;

#[test]
fn committed_schema_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/user-parameters.schema.json");
    let generated = artifact_engine::plan::spec::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/user-parameters.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test -p artifact-engine --test schema`"
    );
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path),
    )
    .unwrap()
}

fn schema() -> serde_json::Value {
    serde_json::from_str(&artifact_engine::plan::spec::json_schema()).unwrap()
}

/// Every step kind, with the `$defs` name of its options (none for a selector).
fn step_kinds(schema: &serde_json::Value) -> Vec<(String, Option<String>)> {
    schema["$defs"]["Step"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let kind = k["required"][0].as_str().unwrap().to_string();
            let def = k["properties"][&kind]["$ref"]
                .as_str()
                .map(|r| r.trim_start_matches("#/$defs/").to_string());
            (kind, def)
        })
        .collect()
}

/// The backticked names in the first cell of each row of the README's step table.
fn readme_step_names() -> Vec<String> {
    let readme = repo_file("README.md");
    let table = readme
        .split("| step | does |")
        .nth(1)
        .expect("the README has a step table");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .flat_map(|row| {
            let cell = row.split('|').nth(1).unwrap_or("");
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(|n| n.split_whitespace().next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The README's step table names every step kind and nothing else (besides the
/// plan-level `plan_file` and the per-step `when`).
#[test]
fn readme_step_table_matches_the_step_kinds() {
    let kinds: Vec<String> = step_kinds(&schema()).into_iter().map(|(k, _)| k).collect();
    let names = readme_step_names();
    for k in &kinds {
        assert!(
            names.contains(k),
            "README step table lacks `{k}`: {names:?}"
        );
    }
    for n in &names {
        assert!(
            kinds.contains(n) || n == "plan_file" || n == "when",
            "README step table names `{n}`, which is not a step kind: {kinds:?}"
        );
    }
}

/// docs/transforms.md documents every step kind and every field of its options, and
/// every plan-level field (each written in backticks somewhere in the text).
#[test]
fn transforms_doc_names_every_field() {
    let doc = repo_file("docs/transforms.md");
    let schema = schema();
    let mut missing = Vec::new();
    let mut check = |what: String, name: &str| {
        if !doc.contains(&format!("`{name}`")) && !doc.contains(&format!("\"{name}\"")) {
            missing.push(format!("{what} `{name}`"));
        }
    };
    for (kind, def) in step_kinds(&schema) {
        check("step".into(), &kind);
        let Some(def) = def else { continue };
        let props = schema["$defs"][&def]["properties"].as_object();
        for field in props.into_iter().flat_map(|p| p.keys()) {
            check(format!("{kind} field"), field);
        }
    }
    for field in schema["properties"].as_object().unwrap().keys() {
        check("plan field".into(), field);
    }
    assert!(
        missing.is_empty(),
        "docs/transforms.md does not mention: {missing:?}"
    );
}
