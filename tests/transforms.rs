//! Every example of `docs/transforms.md` is an event in `events/`; each runs through
//! the `artifact-runner` binary on the embedded store, and through the worker against
//! the real local S3 stack (SeaweedFS + moto), and its output is checked.

use std::process::Command;
use std::time::{Duration, Instant};

use artifact_core::Settings;
use artifact_suite::*;
use codepipeline_local::Outcome;

fn load(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(repo_root().join("events").join(name)).unwrap())
        .unwrap()
}

#[test]
fn docs_examples_through_the_runner_binary() {
    let docs = std::fs::read_to_string(repo_root().join("docs/transforms.md")).unwrap();
    let bin = runner_binary();
    let store = std::env::temp_dir().join(unique("transforms-store"));
    copy_tree(&repo_root().join("events/store"), &store);
    for (event, check) in transform_examples() {
        assert!(
            docs.contains(&format!("events/{event}")),
            "docs/transforms.md shows {event}"
        );
        let out = Command::new(&bin)
            .arg("run")
            .arg(repo_root().join("events").join(event))
            .arg("--json")
            .arg("--store-dir")
            .arg(&store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{event}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut p = Produced::default();
        for o in v["outputs"].as_array().unwrap() {
            let loc = o["location"]
                .as_str()
                .unwrap()
                .strip_prefix("s3://")
                .unwrap();
            let zip = std::fs::read(store.join(loc)).unwrap();
            check_with_external_readers(&zip);
            p.add_output(o["name"].as_str().unwrap(), zip);
        }
        p.vars = serde_json::from_value(v["recorded"]["outputVariables"].clone()).unwrap();
        check(&p);
    }
    let _ = std::fs::remove_dir_all(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_examples_against_real_s3() {
    let s = stack();
    let bucket = unique("transforms");
    s.create_bucket(&bucket).await;
    let key = s.create_key().await;
    for f in ["SourceArtifact.zip", "Templates.zip"] {
        let body =
            std::fs::read(repo_root().join("events/store/artifact-bucket/in").join(f)).unwrap();
        s.put(&bucket, &format!("in/{f}"), body, Some(&key)).await;
    }
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    for (event, check) in transform_examples() {
        let mut ev = load(event);
        let data = &mut ev["CodePipeline.job"]["data"];
        data["artifactCredentials"] = serde_json::to_value(&creds).unwrap();
        data["encryptionKey"]["id"] = key.clone().into();
        for side in ["inputArtifacts", "outputArtifacts"] {
            for a in data[side].as_array_mut().unwrap() {
                a["location"]["s3Location"]["bucketName"] = bucket.clone().into();
            }
        }
        let outputs: Vec<(String, String)> = data["outputArtifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["location"]["s3Location"]["objectKey"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        let handled = worker
            .handle(ev, Instant::now() + Duration::from_secs(300), None)
            .await
            .unwrap();
        let job = handled.job_id.clone();
        handled.result.unwrap_or_else(|e| panic!("{event}: {e:?}"));
        let mut p = Produced::default();
        for (name, k) in outputs {
            let (zip, sse, kid) = s.get(&bucket, &k).await.unwrap();
            assert_eq!(
                (sse.as_deref(), kid.as_deref()),
                (Some("aws:kms"), Some(key.as_str())),
                "{event}"
            );
            p.add_output(&name, zip);
        }
        let Outcome::Success {
            output_variables, ..
        } = cp.result_for(&job).unwrap().outcome
        else {
            panic!()
        };
        p.vars = output_variables;
        check(&p);
    }
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_parameters_fail_with_the_field_named() {
    let s = stack();
    let bucket = unique("badparams");
    s.create_bucket(&bucket).await;
    s.put(
        &bucket,
        "in.zip",
        zip_of(&[("a.json", br#"{"a": 1}"#, true)]),
        None,
    )
    .await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let cases = [
        (r#"{"steps":[{"explode":["*"]}]}"#, "steps[0].explode"),
        (
            r#"{"steps":[{"include":["a"]},{"replace":{"files":["**/["],"find":"a","with":"b"}}]}"#,
            "steps[1].replace.files[0]",
        ),
        (
            r#"{"steps":[{"replace":{"files":["*"],"regex":"(unclosed","with":"b"}}]}"#,
            "steps[0].replace.regex",
        ),
        (
            r#"{"steps":[{"set":{"files":["*.json"],"pointer":"/a","value":1,"colour":"red"}}]}"#,
            "steps[0].set.colour",
        ),
        (
            r#"{"outputs":{"Out":{"from":["Missing"]}}}"#,
            "outputs.Out.from[0]",
        ),
        (r#"{"outputs":{"Nope":{"from":["In"]}}}"#, "outputs.Nope"),
        (
            r#"{"outputs":{"Out":{"from":["In"],"format":"tgz"}}}"#,
            "outputs.Out.format",
        ),
        (
            r#"{"outputs":{"Out":{"from":["In"],"format":"tar.gz","gzip_level":10}}}"#,
            "outputs.Out.gzip_level",
        ),
        (
            r#"{"outputs":{"Out":{"from":["In"],"format":"tar.gz","steps":[{"zip":{"files":["*"],"to":"a.zip"}}]}}}"#,
            "outputs.Out.steps[0].zip",
        ),
        (
            r#"{"steps":[{"pack":{"level":"max"}}]}"#,
            "steps[0].pack.level",
        ),
        (
            r#"{"steps":[{"export":{"variable":"has space","file":"a.json"}}]}"#,
            "steps[0].export.variable",
        ),
        (
            r#"{"steps":[{"custom":{"name":"minify","files":["*"]}}]}"#,
            "steps[0].custom.name",
        ),
        (r#"["not", "an", "object"]"#, "(document)"),
        (r#"{"variables": {"V": 3}}"#, "variables.V"),
        (
            r#"{"steps":[{"template":{"files":["*.json"],"missing":"maybe"}}]}"#,
            "steps[0].template.missing",
        ),
        (
            r#"{"steps":[{"template":{"files":["*.json"],"delimiters":["","}}"]}}]}"#,
            "steps[0].template.delimiters",
        ),
        (
            r#"{"steps":[{"normalize":{"files":["*.json"],"line_endings":"cr"}}]}"#,
            "steps[0].normalize.line_endings",
        ),
        (
            r#"{"steps":[{"add":{"path":"x","text":"","mode":"999"}}]}"#,
            "steps[0].add.mode",
        ),
        (
            r#"{"steps":[{"exclude":["a"],"when":{"variable":"NOPE","equals":"x"}}]}"#,
            "steps[0].when.variable",
        ),
        (
            r#"{"steps":[{"exclude":["a"],"when":{"exists":"a","not_exists":"b"}}]}"#,
            "steps[0].when",
        ),
        // A step that matches nothing, found from the central directory.
        (
            r#"{"steps":[{"template":{"files":["*.jsn"]}}]}"#,
            "steps[0].template.files",
        ),
        (r#"{"plan_file":"In:a.json"}"#, "plan_file"),
        (r#"{"plan_file":"In::a.json","verify":false}"#, "plan_file"),
        ("steps:\n  - exclude: 3\n", "steps[0].exclude"),
        (
            r#"{"steps":[{"merge":{"files":["a.json"]}}]}"#,
            "steps[0].merge",
        ),
        // Found only once the input's central directory is read.
        (
            r#"{"steps":[{"merge":{"files":["a.json"],"patch_file":"overlay.json"}}]}"#,
            "steps[0].merge.patch_file",
        ),
        (
            r#"{"steps":[{"append":{"files":["a.json"],"pointer":"/a"}}]}"#,
            "steps[0].append",
        ),
        (
            r#"{"steps":[{"delete":{"files":["a.json"],"pointer":"a"}}]}"#,
            "steps[0].delete.pointer",
        ),
        (
            r#"{"steps":[{"set":{"files":["a.json"],"pointer":"/a","value":1,"create":"yes"}}]}"#,
            "steps[0].set.create",
        ),
        (
            r#"{"steps":[{"copy":{"from":"b.json","to":"c.json"}}]}"#,
            "steps[0].copy.from",
        ),
        (
            r#"{"steps":[{"copy":{"from":"a.json","to":"/abs.json"}}]}"#,
            "steps[0].copy.to",
        ),
        (
            r#"{"steps":[{"unzip":{"files":["*.zip"]}}]}"#,
            "steps[0].unzip.files",
        ),
        (
            r#"{"steps":[{"unzip":{"files":["*.zip"],"to":"../up/","optional":true}}]}"#,
            "steps[0].unzip.to",
        ),
        (
            r#"{"steps":[{"unzip":{"files":["*.zip"],"keep":"yes"}}]}"#,
            "steps[0].unzip.keep",
        ),
        ("variables:\n  V: 1.10\n", "variables.V"),
        // Selection by property.
        (
            r#"{"steps":[{"exclude":{"size":{"min":5,"max":4}}}]}"#,
            "steps[0].exclude.size",
        ),
        (
            r#"{"steps":[{"include":{"type":"socket"}}]}"#,
            "steps[0].include",
        ),
        // Conditions on variables.
        (
            r#"{"variables":{"S":"a"},"steps":[{"exclude":["a"],"when":{"variable":"S","matches":"("}}]}"#,
            "steps[0].when.matches",
        ),
        (
            r#"{"variables":{"S":"a"},"steps":[{"exclude":["a"],"when":{"variable":"S","in":"a"}}]}"#,
            "steps[0].when.in",
        ),
        // Nested zips.
        (
            r#"{"steps":[{"zip":{"files":["*"],"to":"/abs.zip"}}]}"#,
            "steps[0].zip.to",
        ),
        (
            r#"{"steps":[{"zip":{"files":["*"],"to":"a.zip","strip_prefix":"/x/"}}]}"#,
            "steps[0].zip.strip_prefix",
        ),
        (
            r#"{"steps":[{"zip":{"files":["**/["],"to":"a.zip"}}]}"#,
            "steps[0].zip.files[0]",
        ),
        // The rest of the v3 fields.
        (
            r#"{"steps":[{"normalize":{"files":["*.json"],"strip_bom":"yes"}}]}"#,
            "steps[0].normalize.strip_bom",
        ),
        (
            r#"{"steps":[{"merge":{"files":["a.json"],"patch":{"b":2},"pointer":"b"}}]}"#,
            "steps[0].merge.pointer",
        ),
        (
            r#"{"steps":[{"append":{"files":["a.json"],"pointer":"/a","values":3}}]}"#,
            "steps[0].append.values",
        ),
        (
            r#"{"steps":[{"export":{"variable":"V","file":"a.json","pointer":"/a","default":3}}]}"#,
            "steps[0].export.default",
        ),
    ];
    for (params, field) in cases {
        let job = job_id();
        let ev = event(
            &job,
            &[("In", &bucket, "in.zip")],
            &[("Out", &bucket, "out.zip")],
            Some(params),
            &creds,
            None,
        );
        worker
            .handle(ev, Instant::now() + Duration::from_secs(60), None)
            .await
            .unwrap();
        let Outcome::Failure { type_, message, .. } = cp.result_for(&job).unwrap().outcome else {
            panic!("{params}")
        };
        assert_eq!(type_, "ConfigurationError", "{params}");
        assert!(
            message.contains(&format!("UserParameters {field}:")),
            "{params}: {message}"
        );
    }
    // Runtime problems in steps are ConfigurationErrors naming the entry and step.
    let job = job_id();
    let params = r#"{"steps":[{"set":{"files":["a.json"],"pointer":"/missing/key","value":2}}]}"#;
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        Some(params),
        &creds,
        None,
    );
    worker
        .handle(ev, Instant::now() + Duration::from_secs(60), None)
        .await
        .unwrap();
    let Outcome::Failure { type_, message, .. } = cp.result_for(&job).unwrap().outcome else {
        panic!()
    };
    assert_eq!(type_, "ConfigurationError");
    assert!(
        message.contains("\"a.json\"")
            && message.contains("steps[0] (set)")
            && message.contains("no key \"missing\""),
        "{message}"
    );
    assert_eq!(s.keys(&bucket).await, ["in.zip"]);
    s.remove_bucket(&bucket).await;
}

#[test]
fn committed_schema_matches_the_types() {
    let path = repo_root().join("docs/user-parameters.schema.json");
    let generated = artifact_engine::plan::spec::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == generated, "docs/user-parameters.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test --test transforms committed_schema`");
    // tests/recipes.rs validates every documented plan against it.
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(schema["title"], "PlanSpec");
    assert_eq!(schema["properties"]["$schema"]["type"][0], "string");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_steps_run_in_a_real_job() {
    use std::sync::Arc;
    let s = stack();
    let bucket = unique("custom");
    s.create_bucket(&bucket).await;
    s.put(
        &bucket,
        "in.zip",
        zip_of(&[
            ("run.sh", b"#!/bin/sh\n# comment\necho hi\n", true),
            ("data.bin", &noise(5000, 3), false),
        ]),
        None,
    )
    .await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let mut steps = artifact_core::StepRegistry::new();
    steps.register("strip-comments", |o: &serde_json::Value| {
        let marker = o
            .get("marker")
            .and_then(|m| m.as_str())
            .unwrap_or("#")
            .to_string();
        Ok(Arc::new(move |_: &str, d: Vec<u8>| {
            let t = String::from_utf8(d).map_err(|_| "not UTF-8".to_string())?;
            Ok(t.lines()
                .filter(|l| !l.starts_with(&format!("{marker} ")))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes())
        }) as Arc<dyn artifact_core::CustomStep>)
    });
    let worker = s.worker(&cp, Settings::default()).await.with_steps(steps);
    let params = r##"{"steps":[{"custom":{"name":"strip-comments","files":["*.sh"],"options":{"marker":"#"}}}]}"##;
    let ev = event(
        &job_id(),
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        Some(params),
        &creds,
        None,
    );
    let ok = worker
        .handle(ev, Instant::now() + Duration::from_secs(60), None)
        .await
        .unwrap()
        .result
        .unwrap();
    assert_eq!(
        (ok.outputs[0].transformed_entries, ok.outputs[0].raw_entries),
        (1, 1),
        "only declared files are touched"
    );
    let (zip, _, _) = s.get(&bucket, "out.zip").await.unwrap();
    let files = read_zip(&zip);
    assert_eq!(files[0].1, b"#!/bin/sh\necho hi\n");
    assert_eq!(files[1].1, noise(5000, 3));
    s.remove_bucket(&bucket).await;
}

/// A `zip` step in a real job: large raw members (streamed in pieces, CRC-checked on
/// the way) and a templated one go into a nested zip deflated as it streams; the
/// outer and the inner archive read back with Python, unzip and Java, and the
/// manifest lists the nested zip by its own SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_step_streams_large_members_into_a_nested_zip() {
    use sha2::{Digest, Sha256};
    let s = stack();
    let bucket = unique("nested");
    s.create_bucket(&bucket).await;
    let (big1, big2) = (noise(9 << 20, 1), noise(6 << 20, 2));
    let input = zip_of(&[
        ("app/big1.bin", &big1, false),
        ("app/config.json", br#"{"v": "${V}"}"#, true),
        ("README.md", b"readme", true),
        ("app/big2.bin", &big2, true),
    ]);
    s.put(&bucket, "in.zip", input, None).await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let params = r#"{"variables": {"V": "2"}, "steps": [
        {"template": {"files": ["app/config.json"]}},
        {"zip": {"files": ["app/"], "to": "app.zip", "strip_prefix": "app/"}},
        {"manifest": {}}]}"#;
    let job = job_id();
    let ev = event(
        &job,
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        Some(params),
        &creds,
        None,
    );
    let handled = worker
        .handle(ev, Instant::now() + Duration::from_secs(120), None)
        .await
        .unwrap();
    assert!(handled.result.is_ok(), "{:?}", handled.result);
    let (out, _, _) = s.get(&bucket, "out.zip").await.expect("output");
    check_with_external_readers(&out);
    let outer = read_zip(&out);
    let names: Vec<&str> = outer.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["app.zip", "README.md", "manifest.json"]);
    let inner_bytes = &outer[0].1;
    check_with_external_readers(inner_bytes);
    let inner = read_zip(inner_bytes);
    let names: Vec<&str> = inner.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["big1.bin", "config.json", "big2.bin"]);
    assert!(
        inner[0].1 == big1 && inner[2].1 == big2,
        "members copied exactly"
    );
    assert_eq!(inner[1].1, br#"{"v": "2"}"#);
    let manifest = String::from_utf8(outer[2].1.clone()).unwrap();
    let sha = hex::encode(Sha256::digest(inner_bytes));
    assert!(manifest.contains(&sha), "{manifest}");
    assert!(!manifest.contains("big1.bin"), "{manifest}");
    s.remove_bucket(&bucket).await;
}
