//! Every file in `events/` parses, and drives the real handler against the embedded
//! local store (a scratch copy of `events/store`) with reports going through the real
//! CodePipeline SDK to the local endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_core::clients::{codepipeline_client, FixedStore};
use artifact_core::config::KmsCheck;
use artifact_core::report::Reporter;
use artifact_core::store::local::LocalStore;
use artifact_core::{Event, Settings, Worker};
use artifact_suite::*;
use codepipeline_local::Outcome;

fn event_files() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    assert!(
        v.len() >= 6,
        "events/ holds the doc example and its variants"
    );
    v
}

#[test]
fn every_event_parses() {
    for p in event_files() {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let ev = Event::parse(v).unwrap_or_else(|(e, _)| panic!("{}: {e}", p.display()));
        // Debug output never carries the secret or the token.
        let dbg = format!("{ev:?}");
        let c = &ev.job.data.artifact_credentials;
        assert!(
            !dbg.contains(&format!("{:?}", c.secret_access_key)),
            "{}",
            p.display()
        );
        if let Some(t) = &c.session_token {
            assert!(!dbg.contains(&format!("{t:?}")), "{}", p.display());
        }
    }
}

#[test]
fn doc_example_is_modelled_field_by_field() {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/doc-example.json")).unwrap(),
    )
    .unwrap();
    let ev = Event::parse(v).unwrap();
    let d = &ev.job.data;
    assert_eq!(ev.job.id, "11111111-abcd-1111-abcd-111111abcdef");
    assert_eq!(ev.job.account_id, "111111111111");
    assert_eq!(
        d.action_configuration.configuration.function_name,
        "MyLambdaFunction"
    );
    assert_eq!(
        d.action_configuration
            .configuration
            .user_parameters
            .as_deref(),
        Some("input_parameter")
    );
    assert_eq!(d.input_artifacts[0].name, "ArtifactName");
    assert_eq!(d.input_artifacts[0].revision, None);
    assert_eq!(
        d.input_artifacts[0]
            .location
            .s3_location
            .as_ref()
            .unwrap()
            .object_key,
        "filename"
    );
    assert!(d.output_artifacts.is_empty());
    assert_eq!(d.continuation_token.as_deref(), Some("token_ID"));
    assert_eq!(d.encryption_key.as_ref().unwrap().kind, "KMS");
    assert_eq!(
        d.artifact_credentials.session_token.as_deref(),
        Some("session_token")
    );
}

#[test]
fn invalid_events_are_rejected_with_the_reason() {
    let base: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/sample.json")).unwrap(),
    )
    .unwrap();
    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        f(&mut v);
        Event::parse(v).unwrap_err()
    };
    let (e, id) = mutate(&|v| {
        v["CodePipeline.job"]["data"]["inputArtifacts"][0]["location"]["type"] = "GitHub".into()
    });
    assert!(e.0.contains("only \"S3\""), "{e}");
    assert_eq!(
        id.as_deref(),
        Some("5f0c3e2a-8d41-4b7e-9a6c-0e1f2a3b4c5d"),
        "the job can still be reported"
    );
    let (e, _) = mutate(&|v| {
        let a = v["CodePipeline.job"]["data"]["inputArtifacts"][0].clone();
        v["CodePipeline.job"]["data"]["inputArtifacts"] = serde_json::json!([a.clone(), a]);
    });
    assert!(e.0.contains("used twice"), "{e}");
    let (e, _) = mutate(&|v| {
        let a = v["CodePipeline.job"]["data"]["outputArtifacts"][0].clone();
        let many: Vec<_> = (0..6)
            .map(|i| {
                let mut x = a.clone();
                x["name"] = format!("O{i}").into();
                x
            })
            .collect();
        v["CodePipeline.job"]["data"]["outputArtifacts"] = many.into();
    });
    assert!(e.0.contains("at most 5"), "{e}");
    let (e, _) = mutate(&|v| {
        v["CodePipeline.job"]["data"]["inputArtifacts"][0]["location"]["s3Location"]["bucketName"] =
            "".into()
    });
    assert!(e.0.contains("no bucket"), "{e}");
    // Unknown fields are tolerated.
    let mut v = base.clone();
    v["CodePipeline.job"]["data"]["someNewField"] = 1.into();
    v["CodePipeline.job"]["data"]["artifactCredentials"]["extra"] = "x".into();
    assert!(Event::parse(v).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_drives_the_handler() {
    let store_dir = std::env::temp_dir().join(unique("events-store"));
    copy_tree(&repo_root().join("events/store"), &store_dir);
    let cp = codepipeline();
    let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .load()
        .await;
    let settings = Settings {
        kms_check: KmsCheck::Off,
        ..Settings::default()
    };
    let store = Arc::new(LocalStore::new(&store_dir));
    let worker = Worker::new(
        settings,
        Arc::new(FixedStore(store)),
        None,
        Reporter::new(codepipeline_client(&base, Some(&cp.endpoint_url()))),
    );
    for p in event_files() {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let handled = worker
            .handle(v, Instant::now() + Duration::from_secs(300), None)
            .await
            .unwrap();
        let recorded = cp
            .result_for(&handled.job_id)
            .expect("every event is reported");
        match name.as_str() {
            // UserParameters "input_parameter" is not a plan.
            "doc-example.json" => {
                let Outcome::Failure { type_, message, .. } = recorded.outcome else {
                    panic!("{name}")
                };
                assert_eq!(type_, "ConfigurationError");
                assert!(message.contains("UserParameters"), "{message}");
            }
            // A token some other worker wrote (an AWS sample's base64 JSON): refused,
            // naming it, rather than silently starting over.
            "with-continuation-token.json" => {
                let Outcome::Failure { type_, message, .. } = recorded.outcome else {
                    panic!("{name}")
                };
                assert_eq!(type_, "ConfigurationError");
                assert!(
                    message.contains("continuation token is not valid"),
                    "{message}"
                );
            }
            _ => assert!(
                matches!(recorded.outcome, Outcome::Success { .. }),
                "{name}: {recorded:?}"
            ),
        }
    }
    // The sample's output has the plan applied.
    let out = std::fs::read(store_dir.join("artifact-bucket/out/BuildArtifact.zip")).unwrap();
    let entries = read_zip(&out);
    assert!(entries.iter().all(|(n, _)| !n.ends_with(".map")));
    let pkg = &entries.iter().find(|(n, _)| n == "package.json").unwrap().1;
    assert!(String::from_utf8_lossy(pkg).contains("\"version\": \"1.4.2\""));
    check_with_external_readers(&out);
    // Two inputs, two outputs: DeployBundle merges Templates then SourceArtifact.
    let deploy =
        read_zip(&std::fs::read(store_dir.join("artifact-bucket/out/DeployBundle.zip")).unwrap());
    assert_eq!(deploy[0].0, "template.yml");
    assert_eq!(deploy.len(), 2 + 7);
    let _ = std::fs::remove_dir_all(&store_dir);
}
