//! `artifact-runner pack`: a local folder (e.g. real build output) becomes an
//! input artifact in the embedded store, and a ready event names it, so a user
//! tries their own files in one command.
//!
//! The zip is written with the `zip` crate: entries in sorted path order,
//! directories included, files deflated and streamed from disk (any size; zip64
//! where needed), Unix modes kept (executables stay executable), symbolic links
//! stored as links (never followed), timestamps fixed at 1980-01-01 so the same
//! folder packs to the same bytes. UserParameters given with `--params` are
//! validated before anything is written.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use artifact_core::job::dry_run::validate_user_parameters;
use artifact_core::StepRegistry;
use serde_json::json;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

pub const HELP: &str = concat!(
    "Examples:
  # Pack ./dist, write the event, run it:
  artifact-runner pack ./dist --store-dir /tmp/store --out /tmp/event.json --params params.json
  artifact-runner run /tmp/event.json --store-dir /tmp/store
  # Name the artifacts as your pipeline does:
  artifact-runner pack ./build --store-dir /tmp/store --out ev.json --input-name BuildOutput --output-name DeployBundle

The input goes to <store-dir>/<bucket>/in/<input-name>.zip; the event's output is
<bucket>/out/<output-name>.zip.

",
    crate::exit_codes!()
);

#[derive(clap::Args, Debug)]
pub struct PackArgs {
    /// The folder to pack.
    dir: PathBuf,
    /// The embedded store's directory (created if missing).
    #[arg(long)]
    store_dir: PathBuf,
    /// Where to write the event.
    #[arg(long)]
    out: PathBuf,
    /// A UserParameters document for the event (validated first).
    #[arg(long)]
    params: Option<PathBuf>,
    /// The bucket (a sub-directory of the store).
    #[arg(long, default_value = "artifacts")]
    bucket: String,
    /// The input artifact's name.
    #[arg(long, default_value = "SourceArtifact")]
    input_name: String,
    /// The output artifact's name.
    #[arg(long, default_value = "BuildArtifact")]
    output_name: String,
}

pub fn pack(args: PackArgs) -> Result<u8> {
    if !args.dir.is_dir() {
        bail!("{} is not a directory", args.dir.display());
    }
    let params = match &args.params {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let names = |n: &str| vec![n.to_string()];
            let steps = StepRegistry::new();
            let (i, o) = (names(&args.input_name), names(&args.output_name));
            if let Err(e) = validate_user_parameters(&text, &i, &o, &steps) {
                println!(
                    "{}: {}: {}",
                    p.display(),
                    e.failure_type().as_str(),
                    e.report_message()
                );
                return Ok(crate::EXIT_JOB_FAILED);
            }
            Some(text)
        }
        None => None,
    };
    let in_key = format!("in/{}.zip", args.input_name);
    let zip_path = args.store_dir.join(&args.bucket).join(&in_key);
    std::fs::create_dir_all(zip_path.parent().expect("a key has a parent"))?;
    let (entries, bytes) = zip_dir(&args.dir, &zip_path)?;
    let event = event(&args, &in_key, params.as_deref());
    std::fs::write(&args.out, serde_json::to_vec_pretty(&event)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "packed {} entries ({bytes} bytes) of {} into {}",
        entries,
        args.dir.display(),
        zip_path.display()
    );
    println!("wrote {}; run it with:", args.out.display());
    println!(
        "  artifact-runner run {} --store-dir {}",
        args.out.display(),
        args.store_dir.display()
    );
    Ok(0)
}

/// A `CodePipeline.job` event reading the packed input from the embedded store.
fn event(args: &PackArgs, in_key: &str, params: Option<&str>) -> serde_json::Value {
    let location = |key: String| json!({"type": "S3", "s3Location": {"bucketName": args.bucket, "objectKey": key}});
    let mut configuration = json!({"FunctionName": "artifact-worker"});
    if let Some(p) = params {
        configuration["UserParameters"] = json!(p);
    }
    json!({"CodePipeline.job": {
        "id": codepipeline_local::new_job_id(),
        "accountId": "123456789012",
        "data": {
            "actionConfiguration": {"configuration": configuration},
            "inputArtifacts": [{"name": args.input_name, "revision": null, "location": location(in_key.to_string())}],
            "outputArtifacts": [{"name": args.output_name, "revision": null, "location": location(format!("out/{}.zip", args.output_name))}],
            "artifactCredentials": {"accessKeyId": "local", "secretAccessKey": "local", "sessionToken": ""},
        }
    }})
}

/// Every path under `root` (relative, `/`-separated, directories with a trailing
/// `/`), sorted.
fn walk(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            let rel = path.strip_prefix(root).expect("under root");
            let Some(rel) = rel.to_str() else {
                bail!("{} is not a UTF-8 path", path.display());
            };
            let is_dir = std::fs::symlink_metadata(&path)?.is_dir();
            if is_dir {
                stack.push(path.clone());
                out.push((format!("{rel}/"), path));
            } else {
                out.push((rel.to_string(), path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Zips `root` into `to`; returns the entry count and the zip's size.
fn zip_dir(root: &Path, to: &Path) -> Result<(usize, u64)> {
    let paths = walk(root)?;
    let file = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    for (name, path) in &paths {
        let meta = std::fs::symlink_metadata(path)?;
        let mode = meta.permissions().mode() & 0o7777;
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(mode)
            .large_file(meta.len() >= u32::MAX as u64);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path)?;
            let target = target.to_str().context("a link target is not UTF-8")?;
            zip.add_symlink(name.as_str(), target, options)?;
        } else if meta.is_dir() {
            zip.add_directory(name.as_str(), options)?;
        } else {
            zip.start_file(name.as_str(), options)?;
            let mut src =
                File::open(path).with_context(|| format!("opening {}", path.display()))?;
            std::io::copy(&mut src, &mut zip)?;
        }
    }
    let file = zip.finish()?;
    Ok((paths.len(), file.metadata()?.len()))
}
