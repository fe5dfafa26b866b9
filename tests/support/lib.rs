//! Test support: the real local S3 stack (SeaweedFS with moto as its KMS, started by
//! `scripts/local-stack`), session credentials from its STS, zip builders, events,
//! and checks with independent zip readers (Python's zipfile, `unzip -t`).

pub mod lambda;
pub mod proxy;

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use artifact_core::clients::{codepipeline_client, kms_client, PayloadSigning, S3StoreFactory};
use artifact_core::event::ArtifactCredentials;
use artifact_core::kms::KeyChecker;
use artifact_core::report::Reporter;
use artifact_core::{Settings, Worker};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use codepipeline_local::LocalCodePipeline;
use serde_json::{json, Value};

/// The ambient key tests run under: unknown to the S3 server, so any artifact call
/// that used ambient credentials instead of the job's would fail.
pub const AMBIENT_UNKNOWN_KEY: &str = "AKIAAMBIENTUNKNOWN01";

/// Repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Endpoints and admin identity of the running local stack.
#[derive(Debug, Clone)]
pub struct Stack {
    /// SeaweedFS S3 (and STS) endpoint.
    pub s3_endpoint: String,
    /// moto KMS endpoint.
    pub kms_endpoint: String,
    /// Admin key (bucket setup, inspection).
    pub admin_key: String,
    /// Admin secret.
    pub admin_secret: String,
    /// Region.
    pub region: String,
}

/// Starts the local stack once per test process (reusing a running one) and points
/// the ambient AWS variables at an unknown key.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        set_ambient_credentials();
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/local-stack"))
            .arg("start")
            .output()
            .expect("running scripts/local-stack start");
        assert!(
            out.status.success(),
            "scripts/local-stack start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(repo_root().join(".local-stack/env"))
            .expect("reading .local-stack/env");
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{k} missing from .local-stack/env"))
                .trim()
                .trim_matches('"')
                .to_string()
        };
        Stack {
            s3_endpoint: get("LOCAL_STACK_S3_ENDPOINT"),
            kms_endpoint: get("LOCAL_STACK_KMS_ENDPOINT"),
            admin_key: get("LOCAL_STACK_ADMIN_ACCESS_KEY"),
            admin_secret: get("LOCAL_STACK_ADMIN_SECRET_KEY"),
            region: get("LOCAL_STACK_REGION"),
        }
    })
}

/// Sets `AWS_*` to an unknown key, once, before any client is built.
pub fn set_ambient_credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Every test in the process sets the same values through this Once, first thing.
        std::env::set_var("AWS_ACCESS_KEY_ID", AMBIENT_UNKNOWN_KEY);
        std::env::set_var(
            "AWS_SECRET_ACCESS_KEY",
            "ambient-secret-that-no-server-knows-000",
        );
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
}

/// A unique lowercase name for buckets, keys and job ids in this run.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    format!(
        "{prefix}-{:x}-{}-{}",
        t & 0xffff_ffff,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh job id in CodePipeline's format (lowercase hex UUID).
pub fn job_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::process::id() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 16) as u32,
        (t & 0xffff) as u16,
        (p & 0xfff) as u16,
        (n & 0xfff) as u16,
        (t ^ (n << 20) ^ p) & 0xffff_ffff_ffff
    )
}

impl Stack {
    /// The function's own base config (ambient credentials = the unknown key).
    pub async fn base_config(&self) -> aws_config::SdkConfig {
        set_ambient_credentials();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .load()
            .await
    }

    /// An S3 client with the admin identity (setup and inspection only).
    pub fn admin_s3(&self) -> aws_sdk_s3::Client {
        self.s3_with(Credentials::new(
            &self.admin_key,
            &self.admin_secret,
            None,
            None,
            "admin",
        ))
    }

    /// An S3 client with the given credentials.
    pub fn s3_with(&self, creds: Credentials) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(self.region.clone()))
            .endpoint_url(&self.s3_endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// A KMS client on moto.
    pub fn kms(&self) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(self.region.clone()))
            .endpoint_url(&self.kms_endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// Creates a symmetric KMS key; returns its ARN.
    pub async fn create_key(&self) -> String {
        let out = self
            .kms()
            .create_key()
            .description("artifact-worker test")
            .send()
            .await
            .expect("CreateKey");
        out.key_metadata.unwrap().arn.unwrap()
    }

    /// Creates a bucket (admin).
    pub async fn create_bucket(&self, name: &str) {
        self.admin_s3()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("CreateBucket");
    }

    /// Uploads an object with SSE-KMS (admin).
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, kms_key: Option<&str>) {
        let mut req = self
            .admin_s3()
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body));
        if let Some(k) = kms_key {
            req = req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(k);
        }
        req.send().await.expect("PutObject (admin)");
    }

    /// Reads an object (admin): body, SSE algorithm and KMS key id as HEAD reports them.
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Option<(Vec<u8>, Option<String>, Option<String>)> {
        let s3 = self.admin_s3();
        let head = s3.head_object().bucket(bucket).key(key).send().await.ok()?;
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?
            .body
            .collect()
            .await
            .ok()?
            .to_vec();
        Some((
            body,
            head.server_side_encryption()
                .map(|s| s.as_str().to_string()),
            head.ssekms_key_id().map(str::to_string),
        ))
    }

    /// Deletes every object and open upload in a bucket, then the bucket (admin).
    /// Tests call it at their end so runs do not pile up buckets.
    pub async fn remove_bucket(&self, bucket: &str) {
        let s3 = self.admin_s3();
        for key in self.keys(bucket).await {
            let _ = s3.delete_object().bucket(bucket).key(key).send().await;
        }
        if let Ok(out) = s3.list_multipart_uploads().bucket(bucket).send().await {
            for u in out.uploads() {
                let (Some(k), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                let _ = s3
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(k)
                    .upload_id(id)
                    .send()
                    .await;
            }
        }
        let _ = s3.delete_bucket().bucket(bucket).send().await;
    }

    /// Objects under a bucket (admin).
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self
            .admin_s3()
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .expect("ListObjectsV2");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    /// Multipart uploads still open in a bucket (admin).
    pub async fn open_uploads(&self, bucket: &str) -> Vec<String> {
        let out = self
            .admin_s3()
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .expect("ListMultipartUploads");
        out.uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_string))
            .collect()
    }

    /// Session credentials from the server's STS (AssumeRole signed by the admin).
    pub async fn session_credentials(&self) -> ArtifactCredentials {
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new(self.region.clone()))
            .endpoint_url(&self.s3_endpoint)
            .credentials_provider(Credentials::new(
                &self.admin_key,
                &self.admin_secret,
                None,
                None,
                "admin",
            ))
            .build();
        let out = aws_sdk_sts::Client::from_conf(conf)
            .assume_role()
            .role_arn("")
            .role_session_name(unique("job"))
            .duration_seconds(3600)
            .send()
            .await
            .expect("STS AssumeRole on the local S3 endpoint");
        let c = out.credentials.expect("credentials");
        assert!(
            c.access_key_id.starts_with("ASIA"),
            "expected session credentials"
        );
        ArtifactCredentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: Some(c.session_token),
            expiration_time: Some(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64
                    + 3_600_000,
            ),
        }
    }

    /// A worker whose artifact S3 calls go to `s3_endpoint` (e.g. a fault proxy in
    /// front of the stack), with GET bodies re-read after `stall` without bytes.
    pub async fn worker_via(
        &self,
        cp: &LocalCodePipeline,
        settings: Settings,
        s3_endpoint: &str,
        stall: std::time::Duration,
    ) -> Worker {
        self.worker_signing_via(cp, settings, s3_endpoint, stall, PayloadSigning::Auto)
            .await
    }

    /// [`Self::worker_via`] with upload bodies signed as `signing` says.
    pub async fn worker_signing_via(
        &self,
        cp: &LocalCodePipeline,
        settings: Settings,
        s3_endpoint: &str,
        stall: std::time::Duration,
        signing: PayloadSigning,
    ) -> Worker {
        let base = self.base_config().await;
        let stores = S3StoreFactory::new(&base, Some(s3_endpoint.to_string()))
            .with_stall_timeout(stall)
            .with_payload_signing(signing);
        Worker::new(
            settings,
            Arc::new(stores),
            Some(KeyChecker::new(kms_client(&base, Some(&self.kms_endpoint)))),
            Reporter::new(codepipeline_client(&base, Some(&cp.endpoint_url()))),
        )
    }

    /// A worker as the Lambda builds it: function clients on ambient credentials (the
    /// unknown key), S3 from the job's credentials, KMS on moto, reports to `cp`.
    pub async fn worker(&self, cp: &LocalCodePipeline, settings: Settings) -> Worker {
        let base = self.base_config().await;
        Worker::new(
            settings,
            Arc::new(S3StoreFactory::new(&base, Some(self.s3_endpoint.clone()))),
            Some(KeyChecker::new(kms_client(&base, Some(&self.kms_endpoint)))),
            Reporter::new(codepipeline_client(&base, Some(&cp.endpoint_url()))),
        )
    }
}

/// A job-API endpoint for one test.
pub fn codepipeline() -> LocalCodePipeline {
    LocalCodePipeline::start(([127, 0, 0, 1], 0).into())
        .expect("starting the local CodePipeline endpoint")
}

/// An artifact for [`event`]: (name, bucket, key).
pub type Art<'a> = (&'a str, &'a str, &'a str);

/// A `CodePipeline.job` event.
pub fn event(
    job_id: &str,
    inputs: &[Art],
    outputs: &[Art],
    params: Option<&str>,
    creds: &ArtifactCredentials,
    kms_key: Option<&str>,
) -> Value {
    let art = |(name, bucket, key): &Art| json!({"name": name, "revision": null, "location": {"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}}});
    let mut data = json!({
        "actionConfiguration": {"configuration": {"FunctionName": "artifact-worker"}},
        "inputArtifacts": inputs.iter().map(art).collect::<Vec<_>>(),
        "outputArtifacts": outputs.iter().map(art).collect::<Vec<_>>(),
        "artifactCredentials": serde_json::to_value(creds).unwrap(),
    });
    if let Some(p) = params {
        data["actionConfiguration"]["configuration"]["UserParameters"] = json!(p);
    }
    if let Some(k) = kms_key {
        data["encryptionKey"] = json!({"id": k, "type": "KMS"});
    }
    json!({"CodePipeline.job": {"id": job_id, "accountId": "123456789012", "data": data}})
}

/// Builds a zip with the `zip` crate: (name, data, deflate). Names ending in `/` are
/// directories.
pub fn zip_of(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, deflate) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, SimpleFileOptions::default())
                .unwrap();
            continue;
        }
        let m = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = SimpleFileOptions::default()
            .compression_method(m)
            .large_file(data.len() as u64 >= u32::MAX as u64);
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Reads every entry with the `zip` crate: (name, data).
pub fn read_zip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = zip::ZipArchive::new(Cursor::new(bytes)).expect("output is a readable zip");
    (0..a.len())
        .map(|i| {
            let mut f = a.by_index(i).unwrap();
            let mut v = Vec::new();
            f.read_to_end(&mut v).unwrap();
            (f.name().to_string(), v)
        })
        .collect()
}

/// Deterministic pseudo-random bytes (incompressible).
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

/// Checks `bytes` with Python's zipfile (`testzip` reads every entry and checks CRCs)
/// and `unzip -t`; returns Python's list of (name, size).
pub fn check_with_external_readers(bytes: &[u8]) -> Vec<(String, u64)> {
    let dir = tempfile_dir();
    let path = dir.join("out.zip");
    std::fs::write(&path, bytes).unwrap();
    let py = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile, json\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             bad = z.testzip()\n\
             assert bad is None, f'bad entry {bad}'\n\
             print(json.dumps([[i.filename, i.file_size] for i in z.infolist()]))",
        )
        .arg(&path)
        .output()
        .expect("running python3");
    assert!(
        py.status.success(),
        "python zipfile rejected the output: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let unzip = Command::new("unzip")
        .arg("-tqq")
        .arg(&path)
        .output()
        .expect("running unzip");
    assert!(
        unzip.status.success(),
        "unzip -t rejected the output: {}{}",
        String::from_utf8_lossy(&unzip.stdout),
        String::from_utf8_lossy(&unzip.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_slice(&py.stdout).expect("python output")
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(unique("artifact-suite"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Copies a directory tree (for running events against a scratch copy of the store).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Reads `bytes` with java.util.zip (streaming and central directory) through
/// `tests/support/ZipCheck.java`; returns the entry count.
pub fn check_with_java(bytes: &[u8]) -> usize {
    let dir = tempfile_dir();
    let path = dir.join("out.zip");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("java")
        .arg(repo_root().join("tests/support/ZipCheck.java"))
        .arg(&path)
        .output()
        .expect("running java");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "java.util.zip rejected the output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Builds archives with real tools (Info-ZIP, JDK jar, Python zipfile) into a fresh
/// directory; see `tests/support/make_tool_zips.py`.
pub fn tool_zips() -> PathBuf {
    let dir = tempfile_dir();
    let out = Command::new("python3")
        .arg(repo_root().join("tests/support/make_tool_zips.py"))
        .arg(&dir)
        .output()
        .expect("running make_tool_zips.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// What a transform example produced: entries (path → content) per output artifact,
/// the raw zip per output, and the reported output variables.
#[derive(Debug, Default)]
pub struct Produced {
    /// Output name → path → content (directories included, empty).
    pub files: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<u8>>>,
    /// Output name → zip bytes.
    pub zips: std::collections::BTreeMap<String, Vec<u8>>,
    /// Output variables as recorded by the CodePipeline endpoint.
    pub vars: std::collections::BTreeMap<String, String>,
}

impl Produced {
    /// Records an output zip.
    pub fn add_output(&mut self, name: &str, zip: Vec<u8>) {
        self.files
            .insert(name.to_string(), read_zip(&zip).into_iter().collect());
        self.zips.insert(name.to_string(), zip);
    }
    /// Paths of an output, in archive order.
    pub fn paths(&self, output: &str) -> Vec<String> {
        read_zip(&self.zips[output])
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }
    /// One file's text.
    pub fn text(&self, output: &str, path: &str) -> String {
        let f = self.files[output]
            .get(path)
            .unwrap_or_else(|| panic!("{output} has no {path:?}: {:?}", self.paths(output)));
        String::from_utf8(f.clone()).unwrap()
    }
}

/// A documented transform example: its event file and what its output must hold.
pub type Example = (&'static str, fn(&Produced));

/// The examples of `docs/transforms.md`, each an event in `events/`, with checks.
pub fn transform_examples() -> Vec<Example> {
    vec![
        ("transform-select.json", |p| {
            assert_eq!(
                p.paths("Bundle"),
                [
                    "package.json",
                    "dist/",
                    "dist/app.js",
                    "template.yml",
                    "template-config.json"
                ]
            );
        }),
        ("transform-move.json", |p| {
            assert_eq!(
                p.paths("Site"),
                [
                    "site/package.json",
                    "site/",
                    "site/app.js",
                    "site/conf/app.yaml",
                    "site/img/logo.png"
                ]
            );
        }),
        ("transform-replace.json", |p| {
            assert!(p
                .text("Patched", "config/app.yml")
                .starts_with("service: orders-api-blue\n"));
            assert!(p
                .text("Patched", "dist/app.js")
                .starts_with("console.info('[orders-api] ${VERSION}');"));
        }),
        ("transform-template.json", |p| {
            assert!(p
                .text("Rendered", "package.json")
                .contains("\"version\": \"1.4.2\""));
            assert!(p
                .text("Rendered", "dist/app.js")
                .starts_with("console.log('orders-api 1.4.2');"));
            let yml = p.text("Rendered", "config/app.yml");
            assert!(
                yml.contains("image_tag: 1.4.2\nbuild: 7e500000-0000-4000-8000-000000000004\n"),
                "{yml}"
            );
        }),
        ("transform-set.json", |p| {
            let t = p.text("Deploy", "template-config.json");
            assert_eq!(t, "{\n  \"Parameters\": {\n    \"ImageTag\": \"v1.4.2\",\n    \"Stage\": \"prod\"\n  },\n  \"Tags\": {\n    \"team\": \"orders\"\n  }\n}\n");
        }),
        ("transform-add-manifest.json", |p| {
            let paths = p.paths("Release");
            assert_eq!(
                &paths[paths.len() - 3..],
                ["build-info.json", "static/pixel.gif", "MANIFEST.json"]
            );
            assert_eq!(p.text("Release", "build-info.json"), "{\"version\": \"1.4.2\", \"job\": \"7e500000-0000-4000-8000-000000000006\", \"commit\": \"3f7c9a1e2b4d\"}\n");
            assert_eq!(p.files["Release"]["static/pixel.gif"][..6], *b"GIF89a");
            let m: serde_json::Value =
                serde_json::from_str(&p.text("Release", "MANIFEST.json")).unwrap();
            let rows = m["entries"].as_array().unwrap();
            assert_eq!(rows.len(), 7, "every file before the manifest");
            use sha2::Digest;
            for r in rows {
                let path = r["path"].as_str().unwrap();
                let data = &p.files["Release"][path];
                assert_eq!(r["size"], data.len());
                assert_eq!(
                    r["sha256"],
                    hex::encode(sha2::Sha256::digest(data)),
                    "{path}"
                );
            }
        }),
        ("transform-export.json", |p| {
            assert_eq!(p.vars["AppVersion"], "1.4.2");
            assert_eq!(p.vars["ServiceName"], "orders-api");
            assert_eq!(p.vars["Entrypoint"], "dist/app.js");
            assert_eq!(p.vars["Changelog"], "none");
        }),
        ("transform-merge.json", |p| {
            let paths = p.paths("Everything");
            assert_eq!(paths.len(), 9);
            assert_eq!(paths[0], "app/package.json");
            assert_eq!(
                &paths[7..],
                ["infra/template.yml", "infra/template-config.json"]
            );
        }),
        ("transform-split.json", |p| {
            assert_eq!(p.paths("Web"), ["dist/", "dist/app.js", "static/logo.png"]);
            assert_eq!(p.paths("Config"), ["app.yml"]);
        }),
        ("transform-pack.json", |p| {
            let zip = &p.zips["Reproducible"];
            let mut a = zip::ZipArchive::new(Cursor::new(zip.as_slice())).unwrap();
            for i in 0..a.len() {
                let f = a.by_index(i).unwrap();
                let dt = f.last_modified().unwrap();
                assert_eq!(
                    (dt.year(), dt.month(), dt.day(), dt.hour()),
                    (1980, 1, 1, 0),
                    "{}",
                    f.name()
                );
                let mode = f.unix_mode().unwrap() & 0o777;
                assert_eq!(mode, if f.is_dir() { 0o755 } else { 0o644 }, "{}", f.name());
                if f.name().ends_with(".png") {
                    assert_eq!(f.compression(), zip::CompressionMethod::Stored);
                }
            }
        }),
    ]
}

/// Builds the `artifact-runner` binary (once per test process) and returns its path.
pub fn runner_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_binary("artifact-runner", "artifact-runner"))
        .clone()
}

/// Builds the Lambda's `bootstrap` binary (debug, once per test process) and returns
/// its path; `ARTIFACT_TEST_BOOTSTRAP` names another one instead (e.g. the packaged
/// release binary, or a wrapper running the arm64 one under qemu-user).
pub fn bootstrap_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("ARTIFACT_TEST_BOOTSTRAP") {
        Some(path) => PathBuf::from(path),
        None => workspace_binary("artifact-lambda", "bootstrap"),
    })
    .clone()
}

/// Builds binary `bin` of workspace package `package` (debug) and returns its path.
fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", package, "--bin", bin])
        .current_dir(repo_root())
        .status()
        .unwrap_or_else(|e| panic!("cargo build -p {package}: {e}"));
    assert!(status.success(), "building {package} failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("debug")
        .join(bin)
}
