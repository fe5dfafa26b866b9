//! Structured-edit steps (`set` with `create`, `delete`, `append`, `merge` inline and
//! from a `patch_file`) through `memory::rewrite`: what the pipeline author writes, and
//! what the files become. The text-level rules are unit-tested in `plan::structured`.

mod support;

use artifact_engine::entry::EntryError;
use support::{compile, run, text_of};

const BASE: &str =
    "service:\n  name: web\n  replicas: 1\ndatabase:\n  host: localhost\n  port: 5432\n";
const PROD: &str = "service:\n  replicas: 4\ndatabase:\n  host: db.prod.internal\n";

#[test]
fn overlay_from_a_patch_file_picked_by_a_variable() {
    let plan = r#"{
        "variables": {"STAGE": "prod"},
        "steps": [
            {"merge": {"files": ["config/app.yml"], "patch_file": "config/overlays/${STAGE}.yml"}},
            {"exclude": ["config/overlays/"]}
        ]
    }"#;
    let got = run(
        &[
            ("config/app.yml", BASE),
            ("config/overlays/prod.yml", PROD),
            ("config/overlays/dev.yml", "service:\n  replicas: 0\n"),
        ],
        plan,
    )
    .unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        text_of(&got, "config/app.yml"),
        "service:\n  name: web\n  replicas: 4\ndatabase:\n  host: db.prod.internal\n  port: 5432\n"
    );
}

#[test]
fn a_missing_patch_file_fails_naming_the_field() {
    let plan = r#"{"variables": {"STAGE": "qa"}, "steps": [
        {"merge": {"files": ["config/app.yml"], "patch_file": "config/overlays/${STAGE}.yml"}}]}"#;
    let e = run(&[("config/app.yml", BASE)], plan).unwrap_err();
    let EntryError::Plan(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.path, "steps[0].merge.patch_file");
    assert!(
        e.message.contains("no file \"config/overlays/qa.yml\""),
        "{}",
        e.message
    );
    // A step its `when` turns off needs no file.
    let plan = r#"{"variables": {"STAGE": "qa"}, "steps": [
        {"merge": {"files": ["config/app.yml"], "patch_file": "config/overlays/${STAGE}.yml"},
         "when": {"variable": "STAGE", "equals": "prod"}}]}"#;
    assert_eq!(
        text_of(
            &run(&[("config/app.yml", BASE)], plan).unwrap(),
            "config/app.yml"
        ),
        BASE
    );
}

#[test]
fn a_bad_patch_file_fails_naming_the_field() {
    let plan = r#"{"steps": [{"merge": {"files": ["a.json"], "patch_file": "p.json"}}]}"#;
    let e = run(&[("a.json", "{}"), ("p.json", "{not json")], plan).unwrap_err();
    let EntryError::Plan(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.path, "steps[0].merge.patch_file");
    assert!(e.message.contains("not valid JSON"), "{}", e.message);
}

#[test]
fn set_create_delete_and_append_on_a_task_definition() {
    let taskdef = "{\n  \"family\": \"web\",\n  \"containerDefinitions\": [\n    {\n      \"name\": \"web\",\n      \"image\": \"<IMAGE>\",\n      \"environment\": [\n        {\"name\": \"MODE\", \"value\": \"debug\"}\n      ],\n      \"linuxParameters\": {\"initProcessEnabled\": true}\n    }\n  ]\n}\n";
    let plan = r#"{
        "variables": {"TAG": "1.4.2"},
        "steps": [
            {"set": {"files": ["taskdef.json"], "pointer": "/containerDefinitions/0/image", "value": "repo/web:${TAG}"}},
            {"set": {"files": ["taskdef.json"], "pointer": "/tags/release", "value": "${TAG}", "create": true}},
            {"delete": {"files": ["taskdef.json"], "pointer": "/containerDefinitions/0/linuxParameters"}},
            {"append": {"files": ["taskdef.json"], "pointer": "/containerDefinitions/0/environment",
                        "value": {"name": "VERSION", "value": "${TAG}"}}}
        ]
    }"#;
    let got = run(&[("taskdef.json", taskdef)], plan).unwrap();
    assert_eq!(
        text_of(&got, "taskdef.json"),
        "{\n  \"family\": \"web\",\n  \"containerDefinitions\": [\n    {\n      \"name\": \"web\",\n      \"image\": \"repo/web:1.4.2\",\n      \"environment\": [\n        {\"name\": \"MODE\", \"value\": \"debug\"},\n        {\n          \"name\": \"VERSION\",\n          \"value\": \"1.4.2\"\n        }\n      ]\n    }\n  ],\n  \"tags\": {\n    \"release\": \"1.4.2\"\n  }\n}\n"
    );
}

#[test]
fn edit_steps_are_checked_before_data_moves() {
    let bad = [
        (
            r#"{"steps": [{"merge": {"files": ["a.json"]}}]}"#,
            "steps[0].merge",
            "exactly one of `patch` and `patch_file`",
        ),
        (
            r#"{"steps": [{"merge": {"files": ["a.json"], "patch": {}, "patch_file": "p.json"}}]}"#,
            "steps[0].merge",
            "exactly one",
        ),
        (
            r#"{"steps": [{"merge": {"files": ["a.json"], "patch_file": "p.txt"}}]}"#,
            "steps[0].merge.patch_file",
            "not a .json, .yml or .yaml file",
        ),
        (
            r#"{"steps": [{"merge": {"files": ["a.json"], "patch_file": "Nope::p.json"}}]}"#,
            "steps[0].merge.patch_file",
            "no input artifact named \"Nope\"",
        ),
        (
            r#"{"steps": [{"merge": {"files": ["a.json"], "patch_file": "../p.json"}}]}"#,
            "steps[0].merge.patch_file",
            "..",
        ),
        (
            r#"{"steps": [{"append": {"files": ["a.json"], "pointer": "/l"}}]}"#,
            "steps[0].append",
            "exactly one of `value` and `values`",
        ),
        (
            r#"{"steps": [{"append": {"files": ["a.json"], "pointer": "/l", "values": []}}]}"#,
            "steps[0].append",
            "non-empty",
        ),
        (
            r#"{"steps": [{"delete": {"files": ["a.json"], "pointer": ""}}]}"#,
            "steps[0].delete.pointer",
            "inside the document",
        ),
        (
            r#"{"steps": [{"delete": {"files": ["a.json"], "pointer": "x"}}]}"#,
            "steps[0].delete.pointer",
            "must start with `/`",
        ),
        (
            r#"{"steps": [{"set": {"files": ["a.json"], "pointer": "/a", "value": {"k": "${NOPE}"}}}]}"#,
            "steps[0].set.value.k",
            "NOPE",
        ),
    ];
    for (json, path, words) in bad {
        let e = compile(json).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
        assert!(e.message.contains(words), "{json}: {}", e.message);
    }
}

#[test]
fn an_edit_that_finds_nothing_fails_the_entry() {
    let plan = r#"{"steps": [{"delete": {"files": ["a.json"], "pointer": "/missing"}}]}"#;
    let e = run(&[("a.json", "{\"a\": 1}")], plan).unwrap_err();
    let EntryError::Transform(t) = e else {
        panic!("{e:?}")
    };
    assert_eq!(t.entry, "a.json");
    assert!(t.step.contains("delete"), "{}", t.step);
    assert!(t.message.contains("nothing at /missing"), "{}", t.message);
}
