//! The deployment templates: both lint clean with the pinned cfn-lint, and the
//! example pipeline's transform action (its UserParameters, as CloudFormation
//! substitutes them) does what the template says, run through the runner.

use std::process::Command;

use artifact_suite::*;

/// The `UserParameters: !Sub >-` folded scalar of the example pipeline, with
/// `${Version}` substituted as CloudFormation would.
fn example_user_parameters(version: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("deploy/example-pipeline.yaml")).unwrap();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains("UserParameters: !Sub >-"));
    let head = lines
        .next()
        .expect("the example pipeline has UserParameters");
    let indent = head.len() - head.trim_start().len();
    let folded: Vec<&str> = lines
        .take_while(|l| l.len() - l.trim_start().len() > indent)
        .map(str::trim)
        .collect();
    folded.join(" ").replace("${Version}", version)
}

#[test]
fn the_templates_lint_clean_with_cfn_lint() {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/lambda-tools"))
        .arg("lint")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_example_pipelines_transform_does_what_it_says() {
    let params = example_user_parameters("2.7.1");
    let store = std::env::temp_dir().join(unique("example-pipeline"));
    std::fs::create_dir_all(store.join("artifacts/in")).unwrap();
    let source = zip_of(&[
        (
            "package.json",
            br#"{"name":"web","version":"${VERSION}"}"#,
            true,
        ),
        ("config/app.yml", b"release: ${VERSION}\n", true),
        ("dist/app.js", b"console.log(1)", true),
        ("dist/app.js.map", b"{}", true),
    ]);
    std::fs::write(store.join("artifacts/in/SourceArtifact.zip"), source).unwrap();
    let creds = artifact_core::event::ArtifactCredentials {
        access_key_id: "local".into(),
        secret_access_key: "local".into(),
        session_token: None,
        expiration_time: None,
    };
    let ev = event(
        &job_id(),
        &[("SourceArtifact", "artifacts", "in/SourceArtifact.zip")],
        &[("BuildArtifact", "artifacts", "out/BuildArtifact.zip")],
        Some(&params),
        &creds,
        None,
    );
    let path = store.join("event.json");
    std::fs::write(&path, serde_json::to_vec(&ev).unwrap()).unwrap();
    let out = Command::new(runner_binary())
        .arg("run")
        .arg(&path)
        .arg("--json")
        .arg("--store-dir")
        .arg(&store)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["status"], "Succeeded", "{params}\n{v}");
    assert_eq!(v["outputVariables"]["AppVersion"], "2.7.1", "{v}");
    let zip = std::fs::read(store.join("artifacts/out/BuildArtifact.zip")).unwrap();
    let entries = read_zip(&zip);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["package.json", "config/app.yml", "dist/app.js"]);
    assert_eq!(entries[0].1, br#"{"name":"web","version":"2.7.1"}"#);
    assert_eq!(entries[1].1, b"release: 2.7.1\n");
    let _ = std::fs::remove_dir_all(&store);
}
