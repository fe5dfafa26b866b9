//! `artifact-runner`: runs a CodePipeline job event locally, exactly as the Lambda
//! would, and prints the reported result.
//!
//! By default everything is embedded: a local directory is the artifact store
//! (`--store-dir`, bucket = sub-directory) and an in-process CodePipeline endpoint
//! records the report, so no server or AWS account is needed. `--s3-endpoint` switches
//! to a real S3-compatible server (MinIO, SeaweedFS; path-style), `--kms-endpoint`
//! enables the KMS key check there, and `--codepipeline-endpoint` sends the report to
//! another job-API endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use artifact_core::clients::{
    codepipeline_client, kms_client, FixedStore, S3StoreFactory, StoreFactory,
};
use artifact_core::config::KmsCheck;
use artifact_core::kms::KeyChecker;
use artifact_core::report::Reporter;
use artifact_core::store::local::LocalStore;
use artifact_core::{Handled, Settings, Worker};
use aws_config::BehaviorVersion;
use clap::{Parser, Subcommand};
use codepipeline_local::{LocalCodePipeline, Outcome, RecordedResult};

#[derive(Parser, Debug)]
#[command(
    name = "artifact-runner",
    version,
    about = "Run a CodePipeline artifact job locally"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the job in EVENT (a `CodePipeline.job` JSON file) and print its result.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The event file.
    event: PathBuf,
    /// Directory used as the artifact store when no S3 endpoint is given
    /// (`<dir>/<bucket>/<key>`).
    #[arg(
        long,
        env = "ARTIFACT_RUNNER_STORE_DIR",
        default_value = "events/store"
    )]
    store_dir: PathBuf,
    /// S3-compatible endpoint (e.g. http://127.0.0.1:9000 for MinIO); path-style.
    /// The event's artifactCredentials are used for it.
    #[arg(long, env = "ARTIFACT_RUNNER_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// KMS endpoint for the key check (the check is skipped without S3 and KMS endpoints).
    #[arg(long, env = "ARTIFACT_RUNNER_KMS_ENDPOINT")]
    kms_endpoint: Option<String>,
    /// CodePipeline job-API endpoint to report to (default: an in-process one).
    #[arg(long, env = "ARTIFACT_RUNNER_CODEPIPELINE_ENDPOINT")]
    codepipeline_endpoint: Option<String>,
    /// Region for the clients.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Memory to plan for, in MB (as AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
    #[arg(long, env = "ARTIFACT_WORKER_MEMORY_MB")]
    memory_mb: Option<u64>,
    /// Transform threads.
    #[arg(long, env = "ARTIFACT_WORKER_THREADS")]
    threads: Option<usize>,
    /// Seconds each invocation may run (as the Lambda timeout; fractions allowed).
    /// A job that needs longer checkpoints and continues in a new invocation.
    #[arg(long, default_value_t = 900.0, value_parser = positive_seconds)]
    timeout: f64,
    /// Stop after one invocation, even if the job reported a continuation (its
    /// token is printed); by default the runner follows continuations as CodePipeline
    /// does: a new job id per invocation, the token passed in.
    #[arg(long)]
    once: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Run(args) => rt.block_on(run(args)),
    }
}

/// The function's own credentials: from the environment when set, else a fixed local
/// identity (local servers accept any; the embedded endpoint ignores them).
async fn base_config(region: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()));
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            "local",
            "local",
            None,
            None,
            "artifact-runner",
        ));
    }
    loader.load().await
}

async fn run(args: RunArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.event)
        .with_context(|| format!("reading {}", args.event.display()))?;
    let event: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.event.display()))?;

    let mut settings = Settings::from_env();
    if let Some(mb) = args.memory_mb {
        let threads = settings.threads;
        settings = Settings {
            kms_check: settings.kms_check,
            deadline_margin: settings.deadline_margin,
            ..Settings::for_memory(mb, threads)
        };
    }
    if let Some(t) = args.threads {
        settings.threads = t;
    }
    let base = base_config(&args.region).await;

    let (stores, kms): (Arc<dyn StoreFactory>, _) = match &args.s3_endpoint {
        Some(ep) => (
            Arc::new(S3StoreFactory::new(&base, Some(ep.clone()))),
            args.kms_endpoint
                .as_deref()
                .map(|k| KeyChecker::new(kms_client(&base, Some(k)))),
        ),
        None => {
            if !args.store_dir.is_dir() {
                bail!(
                    "store directory {} does not exist (run from the repository root, or pass --store-dir)",
                    args.store_dir.display()
                );
            }
            (
                Arc::new(FixedStore(Arc::new(LocalStore::new(&args.store_dir)))),
                None,
            )
        }
    };
    if kms.is_none() {
        settings.kms_check = KmsCheck::Off;
    }

    let mut local_cp = None;
    let cp_endpoint = match &args.codepipeline_endpoint {
        Some(ep) => ep.clone(),
        None => {
            let server = LocalCodePipeline::start(SocketAddr::from(([127, 0, 0, 1], 0)))
                .context("starting the in-process CodePipeline endpoint")?;
            let url = server.endpoint_url();
            local_cp = Some(server);
            url
        }
    };
    let reporter = Reporter::new(codepipeline_client(&base, Some(&cp_endpoint)));
    let worker = Worker::new(settings, stores, kms, reporter);

    let timeout = Duration::from_secs_f64(args.timeout);
    let mut event = event;
    let mut invocations = Vec::new();
    let started = Instant::now();
    let (handled, recorded) = loop {
        let invoked = Instant::now();
        let handled = worker
            .handle(event.clone(), invoked + timeout, Some("artifact-runner"))
            .await?;
        // What the endpoint recorded (the embedded one), else what was sent.
        let recorded = match &local_cp {
            Some(s) => s.result_for(&handled.job_id),
            None => sent_result(&handled),
        };
        invocations.push(invocation_json(&handled, invoked.elapsed()));
        if !args.json {
            print_invocation(&handled, invoked.elapsed());
        }
        let next = recorded
            .as_ref()
            .and_then(|r| codepipeline_local::next_job_event(&event, r));
        match next {
            Some(next) if !args.once => event = next,
            _ => break (handled, recorded),
        }
    };
    let elapsed = started.elapsed();

    if args.json {
        let out = serde_json::json!({
            "jobId": handled.job_id,
            "status": status(&handled),
            "reported": format!("{:?}", handled.reported),
            "recorded": recorded,
            "outputs": handled.result.as_ref().ok().map(|s| s.outputs.iter().map(|o| serde_json::json!({
                "name": o.name, "location": o.location.to_string(), "entries": o.entries,
                "transformedEntries": o.transformed_entries, "droppedEntries": o.dropped_entries,
                "bytes": o.object.bytes, "sha256": o.object.sha256, "parts": o.object.parts,
            })).collect::<Vec<_>>()),
            "outputVariables": handled.result.as_ref().ok().map(|s| &s.output_variables),
            "continuationToken": continuation_token(&handled),
            "failure": handled.result.as_ref().err().map(|(t, m)| serde_json::json!({"type": t.as_str(), "message": m})),
            "invocations": invocations,
            "elapsedSeconds": elapsed.as_secs_f64(),
            "peakRssKib": peak_rss_kib(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if invocations.len() > 1 {
            println!(
                "{} invocations in {:.2} s",
                invocations.len(),
                elapsed.as_secs_f64()
            );
        }
        if let Some(r) = &recorded {
            let what = match &r.outcome {
                Outcome::Success { .. } => "PutJobSuccessResult",
                Outcome::Failure { .. } => "PutJobFailureResult",
            };
            println!("  recorded by the CodePipeline endpoint: {what}");
        }
    }
    if handled.result.is_err() {
        std::process::exit(3);
    }
    Ok(())
}

fn continuation_token(handled: &Handled) -> Option<&str> {
    let success = handled.result.as_ref().ok()?;
    success.continuation.as_ref().map(|c| c.token.as_str())
}

fn status(handled: &Handled) -> &'static str {
    match (&handled.result, continuation_token(handled)) {
        (Err(_), _) => "Failed",
        (Ok(_), Some(_)) => "Continued",
        (Ok(_), None) => "Succeeded",
    }
}

/// The result as sent (for an external endpoint, whose records we cannot read).
fn sent_result(handled: &Handled) -> Option<RecordedResult> {
    let token = continuation_token(handled)?;
    Some(RecordedResult {
        job_id: handled.job_id.clone(),
        outcome: Outcome::Success {
            continuation_token: Some(token.to_string()),
            output_variables: Default::default(),
            execution_details: None,
            current_revision: None,
        },
    })
}

/// One element of `--json`'s `invocations`.
fn invocation_json(handled: &Handled, took: Duration) -> serde_json::Value {
    let continued = handled
        .result
        .as_ref()
        .ok()
        .and_then(|s| s.continuation.as_ref());
    serde_json::json!({
        "jobId": handled.job_id,
        "outcome": status(handled),
        "continuationToken": continued.map(|c| &c.token),
        "percentComplete": match (&handled.result, continued) {
            (Ok(_), Some(c)) => Some(c.percent),
            (Ok(_), None) => Some(100),
            (Err(_), _) => None,
        },
        "failure": handled.result.as_ref().err().map(|(t, m)| serde_json::json!({"type": t.as_str(), "message": m})),
        "seconds": took.as_secs_f64(),
    })
}

fn print_invocation(handled: &Handled, took: Duration) {
    let secs = took.as_secs_f64();
    match &handled.result {
        Ok(s) if s.continuation.is_some() => {
            let c = s.continuation.as_ref().expect("checked");
            println!(
                "Job {} CONTINUED at {}% in {secs:.2} s ({:?})",
                handled.job_id, c.percent, handled.reported
            );
            println!("  {}", s.summary);
            println!("  continuation token: {}", c.token);
        }
        Ok(s) => {
            println!(
                "Job {} SUCCEEDED in {secs:.2} s ({:?})",
                handled.job_id, handled.reported
            );
            println!("  {}", s.summary);
            for o in &s.outputs {
                println!(
                    "  output {} -> {} ({} bytes, {} parts)",
                    o.name, o.location, o.object.bytes, o.object.parts
                );
            }
            println!("  output variables:");
            for (k, v) in &s.output_variables {
                println!("    {k} = {v}");
            }
        }
        Err((t, m)) => {
            println!(
                "Job {} FAILED ({}) in {secs:.2} s ({:?})",
                handled.job_id,
                t.as_str(),
                handled.reported
            );
            println!("  {m}");
        }
    }
}

/// The process's peak resident set size in KiB (Linux `VmHWM`), for memory checks
/// and benchmarks; `None` where /proc is not available.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
