//! The runner's daily-use commands, through the binary: `pack` a real folder and
//! run it, `validate` parameters offline, `plan` a dry run, `--help` examples on
//! every command, and the documented exit codes (0 done, 1 the runner could not
//! work, 2 usage, 3 the job failed or would fail).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use artifact_suite::*;

fn runner(args: &[&str]) -> Output {
    Command::new(runner_binary()).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small build output: JSON with a placeholder, an executable hook script, a
/// source map, a symbolic link and an empty directory.
fn build_output(root: &Path) {
    std::fs::create_dir_all(root.join("dist/empty")).unwrap();
    std::fs::create_dir_all(root.join("hooks")).unwrap();
    std::fs::write(root.join("package.json"), br#"{"version":"${VERSION}"}"#).unwrap();
    std::fs::write(root.join("dist/app.js"), b"console.log(1)\n").unwrap();
    std::fs::write(root.join("dist/app.js.map"), b"{}").unwrap();
    std::fs::write(root.join("hooks/start.sh"), b"#!/bin/sh\necho up\n").unwrap();
    let hook = root.join("hooks/start.sh");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("app.js", root.join("dist/current.js")).unwrap();
}

const PARAMS: &str = r#"{"variables":{"VERSION":"3.1","STAGE":"dev"},"steps":[{"exclude":["**/*.map"]},{"template":{"files":["*.json"]}},{"copy":{"from":"package.json","to":"meta/package.json"}},{"exclude":["hooks/"],"when":{"variable":"STAGE","equals":"prod"}}]}"#;

#[test]
fn pack_a_folder_then_plan_and_run_it() {
    let work = scratch("pack");
    let (dir, store) = (work.join("build"), work.join("store"));
    build_output(&dir);
    let params = work.join("params.json");
    std::fs::write(&params, PARAMS).unwrap();
    let event = work.join("event.json");
    let out = runner(&[
        "pack",
        dir.to_str().unwrap(),
        "--store-dir",
        store.to_str().unwrap(),
        "--out",
        event.to_str().unwrap(),
        "--params",
        params.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("artifact-runner run"),
        "{}",
        stdout(&out)
    );
    let packed = std::fs::read(store.join("artifacts/in/SourceArtifact.zip")).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(packed.clone())).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    assert_eq!(
        names,
        [
            "dist/",
            "dist/app.js",
            "dist/app.js.map",
            "dist/current.js",
            "dist/empty/",
            "hooks/",
            "hooks/start.sh",
            "package.json"
        ]
    );
    let hook = zip.by_name("hooks/start.sh").unwrap();
    assert_eq!(hook.unix_mode().unwrap() & 0o777, 0o755);
    drop(hook);
    let link = zip.by_name("dist/current.js").unwrap();
    assert!(link.is_symlink());
    drop(link);

    // The dry run: every entry's fate, nothing written.
    let store_arg = store.to_str().unwrap();
    let ev = event.to_str().unwrap();
    let plan = runner(&["plan", ev, "--store-dir", store_arg, "--json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    let v: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let o = &v["outputs"][0];
    let fate = |entry: &str| {
        o["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["entry"] == entry)
            .unwrap_or_else(|| panic!("{entry} not listed: {o}"))
            .clone()
    };
    assert_eq!(fate("package.json")["fate"], "transformed");
    assert_eq!(fate("package.json")["steps"][0], "steps[1] (template)");
    assert_eq!(fate("dist/app.js")["fate"], "raw");
    assert_eq!(fate("dist/app.js.map")["fate"], "dropped");
    assert_eq!(
        fate("dist/app.js.map")["reason"],
        "dropped by steps[0] (exclude)"
    );
    assert_eq!(o["steps"][0]["matched"], 1);
    assert_eq!(o["steps"][1]["matched"], 1);
    assert_eq!(o["steps"][2]["matched"], 1);
    // A step its `when` turns off is shown as such, and keeps what it would drop.
    assert_eq!(o["steps"][3]["active"], false, "{o}");
    assert_eq!(fate("hooks/start.sh")["fate"], "raw");
    // A copy is listed as a row of its own, from the same input entry.
    let copies: Vec<&serde_json::Value> = o["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"] == "package.json")
        .collect();
    assert_eq!(copies.len(), 2, "{o}");
    assert_eq!(copies[1]["path"], "meta/package.json");
    assert_eq!(copies[1]["fate"], "transformed");
    assert!(
        !store.join("artifacts/out").exists(),
        "a dry run writes nothing"
    );
    let text = stdout(&runner(&["plan", ev, "--store-dir", store_arg]));
    assert!(
        text.contains("dropped      SourceArtifact:dist/app.js.map"),
        "{text}"
    );
    assert!(
        text.contains("steps[3] (exclude): 0 matched  (skipped: its `when` does not hold)"),
        "{text}"
    );

    // The job itself, with no progress bars when stderr is not a terminal.
    let run = runner(&["run", ev, "--store-dir", store_arg]);
    assert_eq!(run.status.code(), Some(0), "{}", stdout(&run));
    assert!(!String::from_utf8_lossy(&run.stderr).contains("entries processed"));
    let built = std::fs::read(store.join("artifacts/out/BuildArtifact.zip")).unwrap();
    let entries = read_zip(&built);
    let json = entries.iter().find(|(n, _)| n == "package.json").unwrap();
    assert_eq!(json.1, br#"{"version":"3.1"}"#);
    let copy = entries
        .iter()
        .find(|(n, _)| n == "meta/package.json")
        .unwrap();
    assert_eq!(copy.1, br#"{"version":"3.1"}"#);
    assert!(entries.iter().all(|(n, _)| !n.ends_with(".map")));
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn validate_checks_parameters_with_the_jobs_messages() {
    let work = scratch("validate");
    let good = work.join("good.json");
    std::fs::write(&good, PARAMS).unwrap();
    let out = runner(&["validate", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("valid for inputs [SourceArtifact]"));

    let bad = work.join("bad.json");
    std::fs::write(&bad, r#"{"steps":[{"template":{"files":["["]}}]}"#).unwrap();
    let out = runner(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ConfigurationError") && text.contains("steps[0]"),
        "{text}"
    );

    // Routes name artifacts: an unknown one is refused, a declared one accepted.
    let routed = work.join("routed.json");
    std::fs::write(&routed, r#"{"outputs":{"Web":{"from":["Site"]}}}"#).unwrap();
    let path = routed.to_str().unwrap();
    let out = runner(&["validate", path, "--input", "Site", "--output", "Web"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = runner(&["validate", path, "--input", "Other", "--output", "Web"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("Site"), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn every_command_documents_examples_and_exit_codes() {
    for command in [&[][..], &["run"], &["pack"], &["validate"], &["plan"]] {
        let mut args = command.to_vec();
        args.push("--help");
        let out = runner(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = stdout(&out);
        assert!(text.contains("Examples:"), "{args:?}: {text}");
        assert!(text.contains("Exit codes:"), "{args:?}: {text}");
        assert!(text.contains("3  the job failed"), "{args:?}: {text}");
    }
}

#[test]
fn exit_codes_are_as_documented() {
    let work = scratch("exit-codes");
    // 2: usage.
    assert_eq!(runner(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(runner(&["run"]).status.code(), Some(2));
    // 1: the runner could not do its work (no such event file; no store).
    let missing = work.join("missing.json");
    assert_eq!(
        runner(&["run", missing.to_str().unwrap()]).status.code(),
        Some(1)
    );
    let sample = repo_root().join("events/sample.json");
    let nowhere = work.join("no-store");
    let out = runner(&[
        "run",
        sample.to_str().unwrap(),
        "--store-dir",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    // 3: the job failed, and the plan of a job that would fail.
    let store = work.join("store");
    copy_tree(&repo_root().join("events/store"), &store);
    let mut ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sample).unwrap()).unwrap();
    ev["CodePipeline.job"]["data"]["inputArtifacts"][0]["location"]["s3Location"]["objectKey"] =
        "in/absent.zip".into();
    let failing = work.join("failing.json");
    std::fs::write(&failing, ev.to_string()).unwrap();
    let (f, s) = (failing.to_str().unwrap(), store.to_str().unwrap());
    let out = runner(&["run", f, "--store-dir", s]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let out = runner(&["plan", f, "--store-dir", s]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("The job would fail"),
        "{}",
        stdout(&out)
    );
    // 0: done.
    let out = runner(&["run", sample.to_str().unwrap(), "--store-dir", s]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&work);
}

/// A copy that loses a clash is listed as dropped with its own path in the reason,
/// not the path of the entry it was copied from.
#[test]
fn a_copy_that_loses_a_clash_names_its_own_path() {
    let work = scratch("plancopy");
    let (dir, store) = (work.join("build"), work.join("store"));
    build_output(&dir);
    let params = work.join("params.json");
    std::fs::write(
        &params,
        r#"{"outputs":{"BuildArtifact":{"from":["SourceArtifact"],"on_conflict":"last","steps":[{"copy":{"from":"dist/app.js","to":"package.json"}}]}}}"#,
    )
    .unwrap();
    let event = work.join("event.json");
    let packed = runner(&[
        "pack",
        dir.to_str().unwrap(),
        "--store-dir",
        store.to_str().unwrap(),
        "--out",
        event.to_str().unwrap(),
        "--params",
        params.to_str().unwrap(),
    ]);
    assert_eq!(packed.status.code(), Some(0), "{}", stdout(&packed));
    let plan = runner(&[
        "plan",
        event.to_str().unwrap(),
        "--store-dir",
        store.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    let v: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let rows: Vec<&serde_json::Value> = v["outputs"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"] == "dist/app.js")
        .collect();
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(rows[0]["fate"], "raw");
    assert_eq!(rows[1]["fate"], "dropped");
    assert_eq!(
        rows[1]["reason"],
        "another entry has the output path \"package.json\" (on_conflict: Last)"
    );
}
