//! What the in-memory-store tests share: a worker that reports to the project's
//! local job-API endpoint, the job event, and seeded noise.

#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_core::clients::{codepipeline_client, FixedStore};
use artifact_core::report::Reporter;
use artifact_core::store::memory::MemoryStore;
use artifact_core::{FailureType, JobSuccess, Settings, Worker};
use codepipeline_local::LocalCodePipeline;

/// A worker on `store` that reports to `cp`.
pub fn worker(settings: Settings, store: &Arc<MemoryStore>, cp: &LocalCodePipeline) -> Worker {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("local", "local", None, None, "test"),
            ),
        )
        .build();
    Worker::new(
        settings,
        Arc::new(FixedStore(store.clone())),
        None,
        Reporter::new(codepipeline_client(&sdk, Some(&cp.endpoint_url()))),
    )
}

/// A failed job as CodePipeline saw it.
#[derive(Debug)]
pub struct Failed(pub FailureType, pub String);

impl Failed {
    pub fn failure_type(&self) -> FailureType {
        self.0
    }
    pub fn report_message(&self) -> String {
        self.1.clone()
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.as_str(), self.1)
    }
}

/// Handles the job through `Worker::handle`; checks exactly one report was taken.
pub async fn handle(
    store: &Arc<MemoryStore>,
    params: &str,
    settings: Settings,
) -> Result<JobSuccess, Failed> {
    let cp = LocalCodePipeline::start(([127, 0, 0, 1], 0).into()).unwrap();
    let w = worker(settings, store, &cp);
    let deadline = Instant::now() + Duration::from_secs(600);
    let handled = w
        .handle(event(params), deadline, None)
        .await
        .expect("reported");
    assert_eq!(cp.results().len(), 1, "exactly one report");
    handled.result.map_err(|(t, m)| Failed(t, m))
}

pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn event(params: &str) -> serde_json::Value {
    serde_json::json!({"CodePipeline.job": {"id": "0a1b2c3d-0000-4000-8000-00000000000f", "accountId": "1", "data": {
        "actionConfiguration": {"configuration": {"FunctionName": "f", "UserParameters": params}},
        "inputArtifacts": [{"name": "In", "revision": null, "location": {"type": "S3", "s3Location": {"bucketName": "b", "objectKey": "in.zip"}}}],
        "outputArtifacts": [{"name": "Out", "revision": null, "location": {"type": "S3", "s3Location": {"bucketName": "b", "objectKey": "out.zip"}}}],
        "artifactCredentials": {"accessKeyId": "A", "secretAccessKey": "S", "sessionToken": "T"},
        "encryptionKey": {"id": "alias/pipeline", "type": "KMS"}
    }}})
}
