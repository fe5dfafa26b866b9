//! `artifact-runner plan`: the dry run. Reads only the inputs' central
//! directories, writes nothing, reports nothing (see
//! `artifact_core::job::dry_run`).

use std::path::PathBuf;

use anyhow::Result;
use artifact_core::clients::codepipeline_client;
use artifact_core::job::dry_run::{DryRun, Fate, OutputDryRun};
use artifact_core::report::Reporter;

use crate::stores::{base_config, read_event, StoreArgs};

pub const HELP: &str = concat!(
    "Examples:
  artifact-runner plan events/sample.json
  artifact-runner plan event.json --store-dir /tmp/store --json
  artifact-runner plan event.json --s3-endpoint http://127.0.0.1:9000

Lists, per output, every input entry with its fate (raw, transformed,
recompressed, dropped and why, added) and the steps that matched it, then how many
entries each step matched. A step that matched nothing is flagged.

",
    crate::exit_codes!()
);

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The event file.
    event: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn plan(args: PlanArgs) -> Result<u8> {
    let event = read_event(&args.event)?;
    let base = base_config(&args.store.region).await;
    // Nothing is reported: the reporter's endpoint is never called.
    let reporter = Reporter::new(codepipeline_client(&base, Some("http://127.0.0.1:9")));
    let worker = args.store.worker(&base, reporter)?;
    match worker.dry_run(event).await {
        Ok(plan) if args.json => {
            println!("{}", serde_json::to_string_pretty(&plan)?);
            Ok(0)
        }
        Ok(plan) => {
            print_plan(&plan);
            Ok(0)
        }
        Err(e) => {
            let (kind, message) = (e.failure_type(), e.report_message());
            if args.json {
                let failure =
                    serde_json::json!({"failure": {"type": kind.as_str(), "message": message}});
                println!("{}", serde_json::to_string_pretty(&failure)?);
            } else {
                println!("The job would fail: {}: {message}", kind.as_str());
            }
            Ok(crate::EXIT_JOB_FAILED)
        }
    }
}

fn fate_name(f: Fate) -> &'static str {
    match f {
        Fate::Raw => "raw",
        Fate::Transformed => "transformed",
        Fate::Recompressed => "recompressed",
        Fate::Dropped => "dropped",
        Fate::Added => "added",
    }
}

fn print_plan(plan: &DryRun) {
    println!("Job {} (dry run: nothing written)", plan.job_id);
    if plan.outputs.is_empty() {
        println!("  no output artifacts");
    }
    for o in &plan.outputs {
        print_output(o);
    }
}

fn print_output(o: &OutputDryRun) {
    println!("\nOutput {} from {}", o.name, o.sources.join(", "));
    for e in &o.entries {
        let from = match (&e.input, &e.entry) {
            (Some(i), Some(n)) => format!("{i}:{n}"),
            _ => "(new)".to_string(),
        };
        let to = e
            .path
            .as_deref()
            .map_or(String::new(), |p| format!(" -> {p}"));
        let why = match (&e.reason, e.steps.is_empty()) {
            (Some(r), _) => format!("  {r}"),
            (None, false) => format!("  [{}]", e.steps.join(", ")),
            (None, true) => String::new(),
        };
        println!("  {:<12} {from}{to}{why}", fate_name(e.fate));
    }
    println!("  steps:");
    for s in &o.steps {
        let flag = match (s.active, s.matched) {
            (false, _) => "  (skipped: its `when` does not hold)",
            (true, 0) => "  <- matched nothing",
            _ => "",
        };
        println!("    {}: {} matched{flag}", s.step, s.matched);
    }
    let count = |f| o.counts.get(&f).copied().unwrap_or(0);
    println!(
        "  {} raw, {} transformed, {} recompressed, {} dropped, {} added",
        count(Fate::Raw),
        count(Fate::Transformed),
        count(Fate::Recompressed),
        count(Fate::Dropped),
        count(Fate::Added)
    );
}
