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
