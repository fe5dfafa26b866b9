//! The `copy` step through `memory::rewrite`: copies take the entry as it is at the
//! step and go through the later steps on their own; a copy that finds nothing or
//! clashes fails before data moves.

mod support;

use artifact_engine::plan::{layout_output_entries, EntryInfo, EntryKind};
use support::{compile, run, text_of};

const APPSPEC_PROD: &str =
    "version: 0.0\nhooks:\n  AfterInstall:\n    - location: scripts/${STAGE}.sh\n";

fn names(got: &[(String, String)]) -> Vec<&str> {
    got.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn a_copy_goes_through_the_later_steps_on_its_own() {
    let plan = r#"{"variables": {"STAGE": "prod"}, "steps": [
        {"copy": {"from": "deploy/appspec-prod.yml", "to": "appspec.yml"}},
        {"template": {"files": ["appspec.yml"]}},
        {"exclude": ["deploy/"]}
    ]}"#;
    let got = run(
        &[("deploy/appspec-prod.yml", APPSPEC_PROD), ("app.js", "x")],
        plan,
    )
    .unwrap();
    assert_eq!(names(&got), ["appspec.yml", "app.js"]);
    assert_eq!(
        text_of(&got, "appspec.yml"),
        APPSPEC_PROD.replace("${STAGE}", "prod")
    );
}

#[test]
fn one_entry_to_several_paths_with_earlier_steps_applied() {
    let plan = r#"{"variables": {"V": "7"}, "steps": [
        {"template": {"files": ["config.json"]}},
        {"copy": {"from": "config.json", "to": ["a/config.json", "b/config.json"]}},
        {"set": {"files": ["b/config.json"], "pointer": "/who", "value": "b"}}
    ]}"#;
    let got = run(&[("config.json", r#"{"v": "${V}", "who": "base"}"#)], plan).unwrap();
    assert_eq!(
        names(&got),
        ["config.json", "a/config.json", "b/config.json"]
    );
    assert_eq!(text_of(&got, "config.json"), r#"{"v": "7", "who": "base"}"#);
    assert_eq!(
        text_of(&got, "a/config.json"),
        r#"{"v": "7", "who": "base"}"#
    );
    assert_eq!(text_of(&got, "b/config.json"), r#"{"v": "7", "who": "b"}"#);
}

#[test]
fn copies_are_checked_before_data_moves() {
    // Nothing to copy: the step's `from` is named.
    let plan =
        compile(r#"{"steps": [{"copy": {"from": "appspec-prod.yml", "to": "appspec.yml"}}]}"#)
            .unwrap();
    let op = plan.output(0);
    let layout =
        layout_output_entries(op, &[vec![EntryInfo::named("other.yml", EntryKind::File)]]).unwrap();
    let e = plan.check_steps_matched(&[layout.step_hits]).unwrap_err();
    assert_eq!(e.path, "steps[0].copy.from");
    assert!(
        e.message.contains("\"appspec-prod.yml\" is not an entry"),
        "{}",
        e.message
    );
    // ... unless optional.
    let plan = compile(
        r#"{"steps": [{"copy": {"from": "appspec-prod.yml", "to": "appspec.yml", "optional": true}}]}"#,
    )
    .unwrap();
    let layout = layout_output_entries(
        plan.output(0),
        &[vec![EntryInfo::named("x", EntryKind::File)]],
    )
    .unwrap();
    plan.check_steps_matched(&[layout.step_hits]).unwrap();
    // A copy onto an existing entry is a clash like any other.
    let e = run(
        &[("appspec-prod.yml", "a"), ("appspec.yml", "b")],
        r#"{"steps": [{"copy": {"from": "appspec-prod.yml", "to": "appspec.yml"}}]}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("two entries would be written as \"appspec.yml\""),
        "{e}"
    );
    // Bad paths are refused when the plan is compiled.
    for (json, path, words) in [
        (
            r#"{"steps": [{"copy": {"from": "a", "to": "../b"}}]}"#,
            "steps[0].copy.to",
            "..",
        ),
        (
            r#"{"steps": [{"copy": {"from": "a", "to": ["b", "b"]}}]}"#,
            "steps[0].copy.to[1]",
            "already",
        ),
        (
            r#"{"steps": [{"copy": {"from": "a", "to": "a"}}]}"#,
            "steps[0].copy.to",
            "already",
        ),
        (
            r#"{"steps": [{"copy": {"from": "d/", "to": "e"}}]}"#,
            "steps[0].copy.from",
            "directory",
        ),
        (
            r#"{"steps": [{"copy": {"from": "a", "to": []}}]}"#,
            "steps[0].copy.to",
            "at least one",
        ),
    ] {
        let e = compile(json).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
        assert!(e.message.contains(words), "{json}: {}", e.message);
    }
}
