//! `artifact-runner run`: one job event through the worker, as the Lambda runs it,
//! following continuations as CodePipeline does (a new job id per invocation, the
//! token passed in); prints what was reported.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use artifact_core::clients::codepipeline_client;
use artifact_core::report::Reporter;
use artifact_core::stats::JobStats;
use artifact_core::Handled;
use codepipeline_local::{LocalCodePipeline, Outcome, RecordedResult};

use crate::progress::Progress;
use crate::stores::{base_config, read_event, StoreArgs};

pub const HELP: &str = concat!(
    "Examples:
  # The sample job on the embedded store (events/store):
  artifact-runner run events/sample.json
  # Against MinIO or SeaweedFS, with the event's credentials and a KMS key check:
  artifact-runner run event.json --s3-endpoint http://127.0.0.1:9000 --kms-endpoint http://127.0.0.1:4566
  # As a 512 MB function with a 60 s timeout, one invocation only, JSON result:
  artifact-runner run event.json --memory-mb 512 --timeout 60 --once --json

Progress bars (read, transform, upload) show on a terminal, never with --json.

",
    crate::exit_codes!()
);

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The event file.
    event: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// CodePipeline job-API endpoint to report to (default: an in-process one).
    #[arg(long, env = "ARTIFACT_RUNNER_CODEPIPELINE_ENDPOINT")]
    codepipeline_endpoint: Option<String>,
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
    /// No progress bars, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

pub async fn run(args: RunArgs) -> Result<u8> {
    let event = read_event(&args.event)?;
    let base = base_config(&args.store.region).await;
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
    let worker = args.store.worker(&base, reporter)?;
    let show_progress = !args.json && !args.no_progress;

    let timeout = Duration::from_secs_f64(args.timeout);
    let mut event = event;
    let mut invocations = Vec::new();
    let started = Instant::now();
    let (handled, recorded) = loop {
        let invoked = Instant::now();
        let stats = Arc::new(JobStats::default());
        let bars = show_progress.then(|| Progress::start(stats.clone()));
        let handled = worker
            .handle_counted(
                event.clone(),
                invoked + timeout,
                Some("artifact-runner"),
                stats,
            )
            .await;
        if let Some(bars) = bars {
            bars.finish().await;
        }
        let handled = handled?;
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
                "copiedBytes": o.object.copied,
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
        return Ok(crate::EXIT_JOB_FAILED);
    }
    Ok(0)
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
                    "  output {} -> {} ({} bytes, {} parts, {} copied server-side)",
                    o.name, o.location, o.object.bytes, o.object.parts, o.object.copied
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
