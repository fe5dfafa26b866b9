//! The `artifact-runner` binary as a user runs it: the embedded default (README's
//! first command) and a real S3 server with the ambient key unknown to it.

use std::process::Command;

use artifact_suite::*;

#[test]
fn embedded_default_runs_the_sample_event() {
    let store = std::env::temp_dir().join(unique("runner-store"));
    copy_tree(&repo_root().join("events/store"), &store);
    let out = Command::new(runner_binary())
        .current_dir(repo_root())
        .args(["run", "events/sample.json", "--store-dir"])
        .arg(&store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("SUCCEEDED") && stdout.contains("BuildArtifact_sha256"),
        "{stdout}"
    );
    assert!(stdout.contains("PutJobSuccessResult"), "{stdout}");

    let out = Command::new(runner_binary())
        .current_dir(repo_root())
        .args(["run", "events/doc-example.json", "--json", "--store-dir"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "a failed job exits 3");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(v["status"], "Failed");
    assert_eq!(v["failure"]["type"], "ConfigurationError");
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn runner_against_real_s3_uses_the_event_credentials() {
    let s = stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (bucket, key, creds) = rt.block_on(async {
        let bucket = unique("cli");
        s.create_bucket(&bucket).await;
        let key = s.create_key().await;
        s.put(
            &bucket,
            "in.zip",
            zip_of(&[("a.json", br#"{"v":"${V}"}"#, true)]),
            Some(&key),
        )
        .await;
        (bucket, key, s.session_credentials().await)
    });
    let job = job_id();
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        Some(r#"{"variables":{"V":"9"},"steps":[{"template":{"files":["*.json"]}}]}"#),
        &creds,
        Some(&key),
    );
    let path = std::env::temp_dir().join(format!("{}.json", unique("event")));
    std::fs::write(&path, serde_json::to_vec(&ev).unwrap()).unwrap();
    let out = Command::new(runner_binary())
        .arg("run")
        .arg(&path)
        .args([
            "--json",
            "--s3-endpoint",
            &s.s3_endpoint,
            "--kms-endpoint",
            &s.kms_endpoint,
        ])
        .env("AWS_ACCESS_KEY_ID", AMBIENT_UNKNOWN_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "nope")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "Succeeded");
    assert_eq!(v["recorded"]["outputVariables"]["Out_entries"], "1");
    let (body, sse, kid) = rt.block_on(s.get(&bucket, "out.zip")).unwrap();
    assert_eq!(
        (sse.as_deref(), kid.as_deref()),
        (Some("aws:kms"), Some(key.as_str()))
    );
    assert_eq!(read_zip(&body)[0].1, br#"{"v":"9"}"#);
    let _ = std::fs::remove_file(&path);
}
