//! `artifact-runner validate`: a UserParameters document checked offline, by the
//! code the job runs before any data moves, with the message the job would report.

use std::path::PathBuf;

use anyhow::{Context, Result};
use artifact_core::job::dry_run::validate_user_parameters;
use artifact_core::StepRegistry;

pub const HELP: &str = concat!(
    "Examples:
  artifact-runner validate params.json
  # For an action with two inputs and two outputs (routes name artifacts):
  artifact-runner validate params.json --input Source --input Config --output Web --output Api
  # With the artifact names of an event:
  artifact-runner validate params.json --event event.json

Without --input/--output/--event the action is taken to have one input,
SourceArtifact, and one output, BuildArtifact.

",
    crate::exit_codes!()
);

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// The UserParameters document (the text of the action's UserParameters field).
    params: PathBuf,
    /// An input artifact name of the action (repeat for each, in order).
    #[arg(long = "input", value_name = "NAME")]
    inputs: Vec<String>,
    /// An output artifact name of the action (repeat for each, in order).
    #[arg(long = "output", value_name = "NAME")]
    outputs: Vec<String>,
    /// Take the artifact names from this event instead.
    #[arg(long, conflicts_with_all = ["inputs", "outputs"])]
    event: Option<PathBuf>,
}

/// The action's artifact names: from the event, the options, or the defaults.
fn artifact_names(args: &ValidateArgs) -> Result<(Vec<String>, Vec<String>)> {
    if let Some(path) = &args.event {
        let event = crate::stores::read_event(path)?;
        let names = |field: &str| -> Vec<String> {
            event
                .pointer(&format!("/CodePipeline.job/data/{field}"))
                .and_then(|v| v.as_array())
                .map(|list| {
                    list.iter()
                        .filter_map(|a| a["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        return Ok((names("inputArtifacts"), names("outputArtifacts")));
    }
    let or = |given: &[String], default: &str| {
        if given.is_empty() {
            vec![default.to_string()]
        } else {
            given.to_vec()
        }
    };
    Ok((
        or(&args.inputs, "SourceArtifact"),
        or(&args.outputs, "BuildArtifact"),
    ))
}

pub fn validate(args: ValidateArgs) -> Result<u8> {
    let text = std::fs::read_to_string(&args.params)
        .with_context(|| format!("reading {}", args.params.display()))?;
    let (inputs, outputs) = artifact_names(&args)?;
    match validate_user_parameters(&text, &inputs, &outputs, &StepRegistry::new()) {
        Ok(None) => {
            println!(
                "{}: valid for inputs [{}] and outputs [{}]",
                args.params.display(),
                inputs.join(", "),
                outputs.join(", ")
            );
            Ok(0)
        }
        Ok(Some(file)) => {
            println!(
                "{}: valid; the plan is read from {file} when the job runs: validate that \
                 file too (artifact-runner validate <the file>)",
                args.params.display()
            );
            Ok(0)
        }
        Err(e) => {
            println!(
                "{}: {}: {}",
                args.params.display(),
                e.failure_type().as_str(),
                e.report_message()
            );
            Ok(crate::EXIT_JOB_FAILED)
        }
    }
}
