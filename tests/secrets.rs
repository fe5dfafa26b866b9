//! Credentials never reach logs, errors or Debug output: run a successful and a
//! failing job against the real stack with every log target at DEBUG captured, then
//! search everything for the secret key and the session token.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artifact_core::Settings;
use artifact_suite::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_logs_errors_and_debug() {
    let cap = Capture::default();
    let writer = cap.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .init();

    let s = stack();
    let bucket = unique("secrets");
    s.create_bucket(&bucket).await;
    s.put(&bucket, "in.zip", zip_of(&[("a.txt", b"a", true)]), None)
        .await;
    let creds = s.session_credentials().await;
    let secret = creds.secret_access_key.clone();
    let token = creds.session_token.clone().unwrap();
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let deadline = Instant::now() + Duration::from_secs(300);

    let ok = event(
        &job_id(),
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "o.zip")],
        None,
        &creds,
        None,
    );
    let h1 = worker.handle(ok, deadline, None).await.unwrap();
    assert!(h1.result.is_ok());
    let missing = event(
        &job_id(),
        &[("In", &bucket, "missing.zip")],
        &[("Out", &bucket, "o2.zip")],
        None,
        &creds,
        None,
    );
    let h2 = worker.handle(missing, deadline, None).await.unwrap();
    let mut wrong = creds.clone();
    wrong.access_key_id = "ASIAWRONGWRONGWRONG1".into();
    let denied = event(
        &job_id(),
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "o3.zip")],
        None,
        &wrong,
        None,
    );
    let h3 = worker.handle(denied, deadline, None).await.unwrap();

    let logs = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    assert!(logs.len() > 1000, "logs were captured");
    let everything = format!(
        "{logs}\n{h1:?}\n{h2:?}\n{h3:?}\n{:?}\n{:?}\n{worker:?}",
        cp.results(),
        artifact_core::Event::parse(event(&job_id(), &[], &[], None, &creds, None)).unwrap()
    );
    assert!(!everything.contains(&secret), "secret key leaked");
    assert!(!everything.contains(&token), "session token leaked");
    s.remove_bucket(&bucket).await;
}
