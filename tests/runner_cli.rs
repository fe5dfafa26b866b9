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

#[test]
fn once_stops_after_one_invocation_and_prints_the_token() {
    // 240 MiB in 20,000 entries (several seconds in a debug build) cannot be copied
    // within a 4 s invocation that keeps 300 ms for the report and ~0.5 s for a
    // checkpoint: the first invocation stops.
    let store = std::env::temp_dir().join(unique("runner-once"));
    std::fs::create_dir_all(store.join("b/in")).unwrap();
    let blobs: Vec<(String, Vec<u8>)> = (0..20_000)
        .map(|i| (format!("f/{i:05}.bin"), noise(12 << 10, i)))
        .collect();
    let entries: Vec<(&str, &[u8], bool)> = blobs
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), false))
        .collect();
    std::fs::write(store.join("b/in/in.zip"), zip_of(&entries)).unwrap();
    let creds = artifact_core::event::ArtifactCredentials {
        access_key_id: "local".into(),
        secret_access_key: "local".into(),
        session_token: None,
        expiration_time: None,
    };
    let ev = event(
        &job_id(),
        &[("In", "b", "in/in.zip")],
        &[("Out", "b", "out/out.zip")],
        None,
        &creds,
        None,
    );
    let path = store.join("event.json");
    std::fs::write(&path, serde_json::to_vec(&ev).unwrap()).unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(runner_binary())
            .arg("run")
            .arg(&path)
            .args(["--json", "--timeout", "4", "--store-dir"])
            .arg(&store)
            .args(extra)
            .env("ARTIFACT_WORKER_DEADLINE_MARGIN_MS", "300")
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), v)
    };
    let (code, v) = run(&["--once"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["status"], "Continued", "{v}");
    assert!(v["continuationToken"].as_str().unwrap().starts_with("aw1."));
    assert_eq!(v["invocations"].as_array().unwrap().len(), 1);
    assert!(v["outputVariables"].as_object().unwrap().is_empty());
    assert!(!store.join("b/out/out.zip").exists(), "not completed yet");
    // Without --once the runner follows the continuations to the end.
    let (code, v) = run(&[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["status"], "Succeeded", "{v}");
    assert!(v["invocations"].as_array().unwrap().len() >= 2, "{v}");
    assert_eq!(v["outputVariables"]["Out_entries"], "20000");
    let out = std::fs::read(store.join("b/out/out.zip")).unwrap();
    assert_eq!(read_zip(&out).len(), 20_000);
    // The --once run's state object is still there (its token was never followed);
    // the followed run removed its own.
    let left: Vec<_> = std::fs::read_dir(store.join("b/out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".checkpoint-"))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let _ = std::fs::remove_dir_all(&store);
}
