//! Every recipe of `docs/recipes.md`, run as the document states it: the input zips
//! are built from its `input` blocks (`input:ZIP!PATH` is a file inside a stored inner
//! zip entry), uploaded SSE-KMS to the real local S3
//! (SeaweedFS + moto) with session credentials, the job runs through the
//! `artifact-runner` binary against that server, and the outputs are checked against
//! the `entries`, `output` and `variables` blocks (names in order, contents, modes,
//! KMS key), and read by Python, unzip and Java. The document is the single source
//! of the recipes; this file only knows its block syntax.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::process::Command;

use artifact_suite::*;
use serde_json::Value;

const DEFAULT_INPUT: &str = "SourceArtifact";
const DEFAULT_OUTPUT: &str = "BuildArtifact";

/// One recipe: its title and blocks.
#[derive(Debug, Default)]
struct Recipe {
    title: String,
    params: String,
    /// (artifact, path, bytes), in document order.
    inputs: Vec<(String, String, Vec<u8>)>,
    /// Output artifact -> every file path, in order.
    entries: BTreeMap<String, Vec<String>>,
    /// Output artifact order, as the document first names them.
    outputs: Vec<String>,
    /// (artifact, path, content, mode).
    files: Vec<(String, String, Vec<u8>, Option<u32>)>,
    /// (artifact, path of a zip entry, the files inside it in order).
    members: Vec<(String, String, Vec<String>)>,
    variables: Option<Value>,
}

/// `tag` is `kind:PATH` or `kind@Artifact:PATH` (or `kind` / `kind@Artifact`).
fn artifact_and_rest<'a>(tag: &'a str, kind: &str, default: &'a str) -> (&'a str, &'a str) {
    let rest = &tag[kind.len()..];
    let (artifact, rest) = match rest.strip_prefix('@') {
        Some(r) => r.split_once(':').unwrap_or((r, "")),
        None => (default, rest.strip_prefix(':').unwrap_or(rest)),
    };
    (artifact, rest)
}

/// An input zip of `files` (deflated); a path `ZIP!PATH` is a file inside the inner zip
/// entry `ZIP`, which is stored, as Info-ZIP's `zip` stores `.zip` files.
fn input_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    type ZipFiles<'a> = Vec<(&'a str, &'a [u8], bool)>;
    let mut inner: Vec<(&str, ZipFiles)> = Vec::new();
    let mut outer: Vec<(&str, Vec<u8>, bool)> = Vec::new();
    for &(path, bytes) in files {
        match path.split_once('!') {
            Some((zip, member)) => match inner.iter_mut().find(|(z, _)| *z == zip) {
                Some((_, list)) => list.push((member, bytes, true)),
                None => {
                    inner.push((zip, vec![(member, bytes, true)]));
                    outer.push((zip, Vec::new(), false));
                }
            },
            None => outer.push((path, bytes.to_vec(), true)),
        }
    }
    for (zip, list) in &inner {
        let slot = outer.iter_mut().find(|(p, _, _)| p == zip).unwrap();
        slot.1 = zip_of(list);
    }
    let refs: Vec<(&str, &[u8], bool)> = outer
        .iter()
        .map(|(p, b, d)| (*p, b.as_slice(), *d))
        .collect();
    zip_of(&refs)
}

/// The file content of a block marked with `flags` (`crlf`, `bom`).
fn stored(text: &str, flags: &[&str]) -> Vec<u8> {
    let mut bytes = Vec::new();
    if flags.contains(&"bom") {
        bytes.extend_from_slice(b"\xEF\xBB\xBF");
    }
    if flags.contains(&"crlf") {
        bytes.extend_from_slice(text.replace('\n', "\r\n").as_bytes());
    } else {
        bytes.extend_from_slice(text.as_bytes());
    }
    bytes
}

fn parse_recipes(doc: &str) -> Vec<Recipe> {
    let mut recipes: Vec<Recipe> = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix("## ") {
            recipes.push(Recipe {
                title: title.to_string(),
                ..Recipe::default()
            });
            continue;
        }
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let words: Vec<&str> = info.split_whitespace().collect();
        let (Some(r), Some(tag)) = (recipes.last_mut(), words.get(1)) else {
            continue;
        };
        add_block(r, tag, &words[2..], body);
    }
    recipes
}

fn add_block(r: &mut Recipe, tag: &str, flags: &[&str], body: String) {
    let mode = flags
        .iter()
        .find_map(|f| f.strip_prefix("mode="))
        .map(|m| u32::from_str_radix(m, 8).expect("octal mode"));
    let note_output = |r: &mut Recipe, a: &str| {
        if !r.outputs.iter().any(|o| o == a) {
            r.outputs.push(a.to_string());
        }
    };
    if tag == "params" {
        r.params = body;
    } else if tag == "variables" {
        r.variables = Some(serde_json::from_str(&body).expect("variables block is JSON"));
    } else if tag.starts_with("input") {
        let (a, path) = artifact_and_rest(tag, "input", DEFAULT_INPUT);
        r.inputs.push((a.into(), path.into(), stored(&body, flags)));
    } else if tag.starts_with("entries") {
        let (a, _) = artifact_and_rest(tag, "entries", DEFAULT_OUTPUT);
        note_output(r, a);
        r.entries
            .insert(a.into(), body.lines().map(str::to_string).collect());
    } else if tag.starts_with("members") {
        let (a, path) = artifact_and_rest(tag, "members", DEFAULT_OUTPUT);
        note_output(r, a);
        let names = body.lines().map(str::to_string).collect();
        r.members.push((a.into(), path.into(), names));
    } else if tag.starts_with("output") {
        let (a, path) = artifact_and_rest(tag, "output", DEFAULT_OUTPUT);
        note_output(r, a);
        r.files
            .push((a.into(), path.into(), body.into_bytes(), mode));
    } else {
        panic!("recipe {:?}: unknown block tag {tag:?}", r.title);
    }
}

/// Runs `event` through the runner binary against the stack: exit code and the
/// `--json` report.
fn runner(event: &Value) -> (Option<i32>, Value) {
    let s = stack();
    let path = std::env::temp_dir().join(format!("{}.json", unique("recipe")));
    std::fs::write(&path, serde_json::to_vec(event).unwrap()).unwrap();
    let out = Command::new(runner_binary())
        .arg("run")
        .arg(&path)
        .args(["--json", "--s3-endpoint", &s.s3_endpoint])
        .args(["--kms-endpoint", &s.kms_endpoint])
        .env("AWS_ACCESS_KEY_ID", AMBIENT_UNKNOWN_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "nope")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

/// [`runner`] for a job that must succeed.
fn run_runner(event: &Value) -> Value {
    let (code, report) = runner(event);
    assert_eq!(code, Some(0), "{report}");
    report
}

/// The files of an output (directories left out): (name, content, Unix mode), read
/// as a tar.gz when it is a gzip stream (and checked with GNU tar), else as a zip
/// (and checked with Python, unzip and Java).
fn output_files(bytes: &[u8]) -> Vec<(String, Vec<u8>, Option<u32>)> {
    if !bytes.starts_with(b"\x1f\x8b") {
        check_with_external_readers(bytes);
        return files_of(bytes);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.tgz");
    std::fs::write(&file, bytes).unwrap();
    let listed = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&file)
        .output()
        .unwrap();
    assert!(listed.status.success(), "GNU tar lists the output");
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    a.entries()
        .unwrap()
        .filter_map(|e| {
            let mut e = e.unwrap();
            if e.header().entry_type() == tar::EntryType::Directory {
                return None;
            }
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            Some((name, data, e.header().mode().ok()))
        })
        .collect()
}

/// The files of `zip` (directories left out): (name, content, Unix mode).
fn files_of(zip: &[u8]) -> Vec<(String, Vec<u8>, Option<u32>)> {
    let mut z = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    (0..z.len())
        .filter_map(|i| {
            let mut f = z.by_index(i).unwrap();
            if f.is_dir() {
                return None;
            }
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            Some((f.name().to_string(), data, f.unix_mode()))
        })
        .collect()
}

fn check_recipe(r: &Recipe, rt: &tokio::runtime::Runtime, key: &str) {
    let s = stack();
    let bucket = unique("recipe");
    let creds = rt.block_on(async {
        s.create_bucket(&bucket).await;
        s.session_credentials().await
    });
    let mut input_names: Vec<&str> = Vec::new();
    for (a, _, _) in &r.inputs {
        if !input_names.contains(&a.as_str()) {
            input_names.push(a);
        }
    }
    for a in &input_names {
        let files: Vec<(&str, &[u8])> = r
            .inputs
            .iter()
            .filter(|(x, _, _)| x == a)
            .map(|(_, p, b)| (p.as_str(), b.as_slice()))
            .collect();
        rt.block_on(s.put(
            &bucket,
            &format!("in/{a}.zip"),
            input_zip(&files),
            Some(key),
        ));
    }
    let in_keys: Vec<String> = input_names.iter().map(|a| format!("in/{a}.zip")).collect();
    let out_keys: Vec<String> = r.outputs.iter().map(|a| format!("out/{a}.zip")).collect();
    let inputs: Vec<Art> = input_names
        .iter()
        .zip(&in_keys)
        .map(|(a, k)| (*a, bucket.as_str(), k.as_str()))
        .collect();
    let outputs: Vec<Art> = r
        .outputs
        .iter()
        .zip(&out_keys)
        .map(|(a, k)| (a.as_str(), bucket.as_str(), k.as_str()))
        .collect();
    let ev = event(
        &job_id(),
        &inputs,
        &outputs,
        Some(&r.params),
        &creds,
        Some(key),
    );
    let report = run_runner(&ev);
    assert_eq!(report["status"], "Succeeded", "{report}");
    for (a, k) in r.outputs.iter().zip(&out_keys) {
        let (zip, sse, kms) = rt.block_on(s.get(&bucket, k)).expect("output written");
        assert_eq!(
            (sse.as_deref(), kms.as_deref()),
            (Some("aws:kms"), Some(key))
        );
        if r.params.contains("tar.gz") {
            assert!(zip.starts_with(b"\x1f\x8b"), "output {a} is a tar.gz");
        }
        let got = output_files(&zip);
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, r.entries[a], "output {a}");
        for (_, path, want, mode) in r.files.iter().filter(|f| &f.0 == a) {
            let (_, data, got_mode) = got.iter().find(|(n, _, _)| n == path).expect(path);
            assert_eq!(
                String::from_utf8_lossy(data),
                String::from_utf8_lossy(want),
                "output {a} file {path}"
            );
            if let Some(m) = mode {
                assert_eq!(got_mode.map(|g| g & 0o7777), Some(*m), "mode of {path}");
            }
        }
        for (_, path, want) in r.members.iter().filter(|m| &m.0 == a) {
            let (_, inner, _) = got.iter().find(|(n, _, _)| n == path).expect(path);
            check_with_external_readers(inner);
            let inside = files_of(inner);
            let names: Vec<&str> = inside.iter().map(|(n, _, _)| n.as_str()).collect();
            assert_eq!(&names, want, "output {a} zip {path}");
        }
    }
    if let Some(Value::Object(want)) = &r.variables {
        let vars = &report["recorded"]["outputVariables"];
        for (k, v) in want {
            assert_eq!(&vars[k], v, "output variable {k}: {vars}");
        }
    }
    rt.block_on(s.remove_bucket(&bucket));
}

#[test]
fn every_recipe_runs_as_documented() {
    let doc = std::fs::read_to_string(repo_root().join("docs/recipes.md")).unwrap();
    let recipes = parse_recipes(&doc);
    assert!(recipes.len() >= 12, "{} recipes", recipes.len());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = rt.block_on(stack().create_key());
    for r in &recipes {
        assert!(!r.params.is_empty() && !r.inputs.is_empty(), "{}", r.title);
        assert!(!r.entries.is_empty(), "{}: no entries block", r.title);
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_recipe(r, &rt, &key)));
        if let Err(e) = run {
            eprintln!("recipe {:?} failed", r.title);
            std::panic::resume_unwind(e);
        }
    }
}

/// Every plan the documentation shows validates against the committed JSON Schema
/// (`docs/user-parameters.schema.json`), as an editor would check it: each recipe's
/// `UserParameters` and plan file, and the `UserParameters` of every example event.
/// Validated by Python's `jsonschema` (draft 2020-12) from the local stack's venv,
/// an implementation independent of the Rust types the schema is generated from.
#[test]
fn every_documented_plan_follows_the_schema() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/recipes.md")).unwrap();
    let mut docs: Vec<(String, String)> = Vec::new();
    for r in parse_recipes(&doc) {
        docs.push((format!("recipe {:?} params", r.title), r.params.clone()));
        let spec = artifact_engine::plan::PlanSpec::parse(Some(&r.params)).unwrap();
        if let Some(file) = spec.plan_file().unwrap() {
            let (_, _, bytes) = r
                .inputs
                .iter()
                .find(|(a, p, _)| *a == file.input && *p == file.path)
                .unwrap_or_else(|| panic!("{}: no input holds {file}", r.title));
            let text = String::from_utf8(bytes.clone()).unwrap();
            docs.push((format!("recipe {:?} plan file", r.title), text));
        }
    }
    let mut events: Vec<_> = std::fs::read_dir(root.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        // AWS's own example event: its UserParameters ("input_parameter") is no plan.
        .filter(|p| !p.ends_with("doc-example.json"))
        .collect();
    events.sort();
    for path in events {
        let event: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let config = &event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"];
        if let Some(params) = config["UserParameters"].as_str() {
            docs.push((path.display().to_string(), params.to_string()));
        }
    }
    assert!(docs.len() >= 30, "{} documents", docs.len());
    stack(); // installs the venv
    let python = root.join(".local-stack/venv/bin/python");
    let mut child = Command::new(python)
        .arg("-c")
        .arg(VALIDATE)
        .arg(root.join("docs/user-parameters.schema.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running the venv's python");
    let input = serde_json::to_vec(&docs).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(checked, docs.len());
}

/// Validates `[[label, text], ...]` on stdin against the schema at argv[1]; prints
/// how many were checked, or each failure and exits 1. Text that does not start
/// with `{` is YAML, as for the worker (every example quotes what YAML 1.1 and 1.2
/// read differently).
const VALIDATE: &str = r#"
import json, sys, yaml
from jsonschema import Draft202012Validator
v = Draft202012Validator(json.load(open(sys.argv[1])))
bad = 0
docs = json.load(sys.stdin)
for label, text in docs:
    d = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    for e in v.iter_errors(d):
        bad += 1
        print(f"{label}: {'/'.join(map(str, e.absolute_path))}: {e.message}", file=sys.stderr)
if bad:
    sys.exit(1)
print(len(docs))
"#;

/// A plan file that is missing, in a missing input, or wrong fails the job as a
/// `ConfigurationError` naming it, before any data moves (no output, no upload).
#[test]
fn a_bad_plan_file_fails_before_data_moves() {
    let s = stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = unique("planfile");
    let creds = rt.block_on(async {
        s.create_bucket(&bucket).await;
        s.session_credentials().await
    });
    let input = zip_of(&[
        (
            "ci/plan.yml",
            b"steps:\n  - template: {files: ['*.jsn']}\n",
            true,
        ),
        ("a.json", b"{}", true),
    ]);
    rt.block_on(s.put(&bucket, "in.zip", input, None));
    let cases = [
        (
            r#"{"plan_file":"Source::ci/nope.yml"}"#,
            r#"has no entry "ci/nope.yml""#,
        ),
        (
            r#"{"plan_file":"Other::ci/plan.yml"}"#,
            r#"no input artifact named "Other""#,
        ),
        // The file's own error, found when its steps meet the artifact.
        (
            r#"{"plan_file":"Source::ci/plan.yml"}"#,
            "Source::ci/plan.yml steps[0].template.files: matched no entry",
        ),
    ];
    for (params, words) in cases {
        let ev = event(
            &job_id(),
            &[("Source", &bucket, "in.zip")],
            &[("Out", &bucket, "out.zip")],
            Some(params),
            &creds,
            None,
        );
        let (code, v) = runner(&ev);
        assert_eq!(code, Some(3), "{params}");
        assert_eq!(v["failure"]["type"], "ConfigurationError", "{v}");
        let message = v["failure"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{params}: {message}");
        assert_eq!(rt.block_on(s.keys(&bucket)), ["in.zip"], "no data moved");
        assert!(rt.block_on(s.open_uploads(&bucket)).is_empty());
    }
    rt.block_on(s.remove_bucket(&bucket));
}

/// A plan file may live in an input that feeds no output (a "config" artifact): it is
/// read, pinned with the other inputs, and the job runs from it.
#[test]
fn a_plan_file_from_an_input_that_feeds_no_output() {
    let s = stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = unique("planinput");
    let creds = rt.block_on(async {
        s.create_bucket(&bucket).await;
        s.session_credentials().await
    });
    let plan = b"outputs:\n  Out:\n    from: [Source]\n    steps:\n      - template: {files: ['*.json']}\n";
    rt.block_on(async {
        s.put(
            &bucket,
            "plans.zip",
            zip_of(&[("ci/plan.yml", plan, true)]),
            None,
        )
        .await;
        s.put(
            &bucket,
            "src.zip",
            zip_of(&[("a.json", br#"{"v":"${V}"}"#, true)]),
            None,
        )
        .await;
    });
    let ev = event(
        &job_id(),
        &[
            ("Source", &bucket, "src.zip"),
            ("Plans", &bucket, "plans.zip"),
        ],
        &[("Out", &bucket, "out.zip")],
        Some(r#"{"plan_file":"Plans::ci/plan.yml","variables":{"V":"7"}}"#),
        &creds,
        None,
    );
    let report = run_runner(&ev);
    assert_eq!(report["status"], "Succeeded", "{report}");
    let (zip, _, _) = rt.block_on(s.get(&bucket, "out.zip")).unwrap();
    assert_eq!(
        read_zip(&zip),
        [("a.json".to_string(), br#"{"v":"7"}"#.to_vec())]
    );
    rt.block_on(s.remove_bucket(&bucket));
}
