//! `artifact-runner`: runs a CodePipeline job event locally, exactly as the Lambda
//! would, and the daily tools around it: `pack` a folder into an input artifact and
//! a ready event, `validate` UserParameters offline, `plan` a dry run.
//!
//! By default everything is embedded: a local directory is the artifact store
//! (`--store-dir`, bucket = sub-directory) and an in-process CodePipeline endpoint
//! records the report, so no server or AWS account is needed. `--s3-endpoint` switches
//! to a real S3-compatible server (MinIO, SeaweedFS; path-style), `--kms-endpoint`
//! enables the KMS key check there, and `--codepipeline-endpoint` sends the report to
//! another job-API endpoint.
//!
//! Exit codes (the same for every command, see `exit_codes!`): 0 done, 1 the runner
//! could not do its work, 2 usage, 3 the job failed or would fail.

/// The exit codes, as every `--help` shows them (a macro, for `concat!`).
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0  done: the job succeeded (or continued, with --once), the parameters are valid,
     the plan was decided, the folder was packed
  1  the runner could not do its work (unreadable file, missing store, unreachable
     endpoint, report not sent)
  2  usage: unknown command or option, missing argument
  3  the job failed (a failure was reported) or would fail (plan), or the
     parameters are invalid (validate)"
    };
}
pub(crate) use exit_codes;

mod pack;
mod plan;
mod progress;
mod run;
mod stores;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The job failed (or would): distinct from the runner failing.
pub const EXIT_JOB_FAILED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "artifact-runner",
    version,
    about = "Run CodePipeline artifact jobs locally, and check them before they run",
    after_help = concat!("\
Examples:
  artifact-runner run events/sample.json
  artifact-runner pack ./dist --store-dir /tmp/store --out /tmp/event.json --params params.json
  artifact-runner validate params.json
  artifact-runner plan /tmp/event.json --store-dir /tmp/store

", exit_codes!())
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the job in EVENT (a `CodePipeline.job` JSON file) and print its result.
    #[command(after_help = run::HELP)]
    Run(run::RunArgs),
    /// Zip a local folder into an input artifact in the store and write a ready event.
    #[command(after_help = pack::HELP)]
    Pack(pack::PackArgs),
    /// Check a UserParameters document offline, with the job's own messages.
    #[command(after_help = validate::HELP)]
    Validate(validate::ValidateArgs),
    /// Dry run: what the job in EVENT would do to every entry, writing nothing.
    #[command(after_help = plan::HELP)]
    Plan(plan::PlanArgs),
}

fn main() -> ExitCode {
    // Before any thread starts (see artifact_core::alloc).
    artifact_core::alloc::limit_malloc_arenas();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let done = match cli.command {
        Command::Validate(args) => validate::validate(args),
        Command::Pack(args) => pack::pack(args),
        command => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| match command {
                Command::Run(args) => rt.block_on(run::run(args)),
                Command::Plan(args) => rt.block_on(plan::plan(args)),
                _ => unreachable!("handled above"),
            }),
    };
    match done {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("artifact-runner: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
