//! `unzip` in real jobs against the local S3 stack: the members of a stored inner zip
//! are read by range with the job's session credentials (a large one streamed raw in
//! pieces, one templated), written into the output as entries of their own and read
//! back with Python, unzip and Java; the dry run lists them as `zip:member`. A deflated
//! inner zip is inflated to find its directory, then its members are cut from it as it
//! inflates again. An inner zip that is not one, or that hides a hostile name, fails
//! the job naming it, and no output is written.

use std::time::{Duration, Instant};

use artifact_core::Settings;
use artifact_suite::*;

const PARAMS: &str = r#"{"variables": {"V": "3"}, "steps": [
    {"unzip": {"files": ["dist/*.zip"]}},
    {"template": {"files": ["**/*.json"]}}]}"#;

fn site_zip(big: &[u8]) -> Vec<u8> {
    zip_of(&[
        ("config.json", br#"{"v": "${V}"}"#, true),
        ("assets/", b"", false),
        ("assets/big.bin", big, false),
    ])
}

/// Runs `params` on an input holding `dist/site.zip` (`inner`, stored when `stored`)
/// and returns the handled result and the output's bytes, if any.
async fn run_job(
    inner: &[u8],
    stored: bool,
    params: &str,
) -> (
    Result<(), (String, String)>,
    Option<Vec<u8>>,
    serde_json::Value,
) {
    let s = stack();
    let bucket = unique("unzip");
    s.create_bucket(&bucket).await;
    let input = zip_of(&[
        ("README.md", b"readme", true),
        ("dist/site.zip", inner, !stored),
    ]);
    s.put(&bucket, "in.zip", input, None).await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let ev = |job: &str| {
        event(
            job,
            &[("In", &bucket, "in.zip")],
            &[("Out", &bucket, "out.zip")],
            Some(params),
            &creds,
            None,
        )
    };
    let dry = worker
        .dry_run(ev(&job_id()))
        .await
        .map(|d| serde_json::to_value(d).unwrap())
        .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
    let handled = worker
        .handle(
            ev(&job_id()),
            Instant::now() + Duration::from_secs(120),
            None,
        )
        .await
        .unwrap();
    let result = handled
        .result
        .map(|_| ())
        .map_err(|(t, m)| (t.as_str().to_string(), m));
    let out = s.get(&bucket, "out.zip").await.map(|(b, _, _)| b);
    s.remove_bucket(&bucket).await;
    (result, out, dry)
}

/// The files of a job's output, after checking it succeeded and that Python, unzip
/// and Java read the output.
fn succeeded(result: Result<(), (String, String)>, out: Option<Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    result.expect("the job succeeds");
    let out = out.expect("an output");
    check_with_external_readers(&out);
    read_zip(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_a_stored_inner_zip_become_entries() {
    let big = noise(9 << 20, 7);
    let (result, out, dry) = run_job(&site_zip(&big), true, PARAMS).await;
    let files = succeeded(result, out);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "README.md",
            "dist/site/config.json",
            "dist/site/assets/",
            "dist/site/assets/big.bin"
        ]
    );
    assert_eq!(files[1].1, br#"{"v": "3"}"#);
    assert!(files[3].1 == big, "the large member is copied exactly");
    // The dry run names members through their zip, and says why the zip is gone.
    let entries = dry["outputs"][0]["entries"].as_array().unwrap();
    let find = |name: &str| {
        entries
            .iter()
            .find(|e| e["entry"] == name)
            .unwrap_or_else(|| panic!("{name} in {dry}"))
    };
    assert_eq!(find("dist/site.zip:assets/big.bin")["fate"], "raw");
    assert_eq!(
        find("dist/site.zip:config.json")["path"],
        "dist/site/config.json"
    );
    let zip = find("dist/site.zip");
    assert_eq!(zip["fate"], "dropped");
    assert!(
        zip["reason"]
            .as_str()
            .unwrap()
            .contains("unpacked by steps[0] (unzip)"),
        "{zip}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_a_deflated_inner_zip_are_cut_from_it_as_it_inflates() {
    // Raw, templated and large members, a copy that goes back to an earlier member
    // (a second inflation), and members of one zip interleaved with an own entry by
    // a zip step: every order the producer and the read plan must agree on.
    let big = noise(9 << 20, 8);
    let params = r#"{"variables": {"V": "4"}, "steps": [
        {"unzip": {"files": ["dist/*.zip"]}},
        {"copy": {"from": "dist/site/config.json", "to": "config.json"}},
        {"template": {"files": ["**/*.json"]}},
        {"zip": {"files": ["README.md", "dist/site/assets/"], "to": "bundle.zip"}}]}"#;
    let (result, out, dry) = run_job(&site_zip(&big), false, params).await;
    let files = succeeded(result, out);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["bundle.zip", "dist/site/config.json", "config.json"]
    );
    assert_eq!(files[1].1, br#"{"v": "4"}"#);
    assert_eq!(files[2].1, br#"{"v": "4"}"#);
    let bundle = read_zip(&files[0].1);
    let names: Vec<&str> = bundle.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["README.md", "dist/site/assets/", "dist/site/assets/big.bin"]
    );
    assert!(bundle[2].1 == big, "the large member is copied exactly");
    let entries = dry["outputs"][0]["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["entry"] == "dist/site.zip:assets/big.bin"),
        "{dry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deflated_inner_zip_that_is_not_a_zip_fails_naming_it() {
    let (result, out, _) = run_job(&noise(100_000, 9), false, PARAMS).await;
    let (t, m) = result.expect_err("not a zip");
    assert_eq!(t, "JobFailed");
    assert!(m.contains("inner zip \"dist/site.zip\""), "{m}");
    assert!(m.contains("input artifact \"In\""), "{m}");
    assert!(out.is_none(), "no output is written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_inner_zip_fails_naming_it() {
    // A name that climbs out of the extraction directory (same length as the original
    // in both the local header and the central directory).
    let mut inner = zip_of(&[("aa/evil.sh", b"#!/bin/sh", true)]);
    let mut patched = 0;
    for w in 0..inner.len() - 10 {
        if &inner[w..w + 10] == b"aa/evil.sh" {
            inner[w..w + 3].copy_from_slice(b"../");
            patched += 1;
        }
    }
    assert_eq!(patched, 2);
    let (result, out, _) = run_job(&inner, true, PARAMS).await;
    let (t, m) = result.expect_err("refused");
    assert_eq!(t, "JobFailed");
    assert!(
        m.contains("inner zip \"dist/site.zip\"") && m.contains("../evil.sh"),
        "{m}"
    );
    assert!(out.is_none());
    // A central directory that claims to lie past the inner zip's end is refused
    // without reading outside it.
    let mut inner = zip_of(&[("a.txt", b"a", true)]);
    let n = inner.len();
    inner[n - 6..n - 2].copy_from_slice(&(n as u32 * 4).to_le_bytes());
    let (result, out, _) = run_job(&inner, true, PARAMS).await;
    let (_, m) = result.expect_err("refused");
    assert!(m.contains("inner zip \"dist/site.zip\""), "{m}");
    assert!(out.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unzip_matching_nothing_fails_before_data_moves_unless_optional() {
    let params = r#"{"steps": [{"unzip": {"files": ["nothing/*.zip"]}}]}"#;
    let (result, out, _) = run_job(&site_zip(b"x"), true, params).await;
    let (t, m) = result.expect_err("refused");
    assert_eq!(t, "ConfigurationError");
    assert!(m.contains("steps[0].unzip.files"), "{m}");
    assert!(out.is_none());
    let params = r#"{"steps": [{"unzip": {"files": ["nothing/*.zip"], "optional": true}}]}"#;
    let (result, out, _) = run_job(&site_zip(b"x"), true, params).await;
    result.expect("optional");
    assert_eq!(read_zip(&out.unwrap()).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_member_fails_naming_the_member_and_its_zip() {
    // A stored member whose data no longer matches its CRC-32.
    let mut inner = zip_of(&[("ok.txt", b"fine", true), ("bad.txt", b"0123456789", false)]);
    let at = inner.windows(10).position(|w| w == b"0123456789").unwrap();
    inner[at] = b'X';
    let params = r#"{"steps": [{"unzip": {"files": ["dist/*.zip"]}}]}"#;
    let (result, out, _) = run_job(&inner, false, params).await;
    let (t, m) = result.expect_err("corrupt");
    assert_eq!(t, "JobFailed");
    assert!(
        m.contains("inner zip \"dist/site.zip\": entry \"bad.txt\""),
        "{m}"
    );
    assert!(m.contains("CRC-32"), "{m}");
    assert!(out.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_wanted_out_of_order_too_often_are_refused_before_data_moves() {
    // Each copy of a member goes back to it: a new pass over the deflated zip.
    let names: Vec<String> = (0..20).map(|i| format!("f{i:02}.txt")).collect();
    let files: Vec<(&str, &[u8], bool)> = names
        .iter()
        .map(|n| (n.as_str(), &b"data"[..], true))
        .collect();
    let inner = zip_of(&files);
    let copies: Vec<String> = names
        .iter()
        .map(|n| format!(r#"{{"copy": {{"from": "dist/site/{n}", "to": "copy/{n}"}}}}"#))
        .collect();
    let params = format!(
        r#"{{"steps": [{{"unzip": {{"files": ["dist/site.zip"]}}}}, {}]}}"#,
        copies.join(", ")
    );
    let (result, out, _) = run_job(&inner, false, &params).await;
    let (t, m) = result.expect_err("too many passes");
    assert_eq!(t, "JobFailed");
    assert!(
        m.contains("inner zip \"dist/site.zip\"") && m.contains("inflate it 21 times"),
        "{m}"
    );
    assert!(out.is_none());
    // Stored, the same plan reads each member by range: no passes at all.
    let (result, out, _) = run_job(&inner, true, &params).await;
    result.expect("stored inner zips are read by range");
    assert_eq!(read_zip(&out.unwrap()).len(), 41);
    // Two unzips of one deflated zip take its members in turn: two passes.
    let params = r#"{"steps": [{"unzip": {"files": ["dist/site.zip"], "keep": true}},
        {"unzip": {"files": ["dist/site.zip"], "to": "again/"}}]}"#;
    let (result, out, _) = run_job(&inner, false, params).await;
    result.expect("two passes");
    let files = read_zip(&out.unwrap());
    assert_eq!(files.len(), 41);
    assert_eq!(files[1].0, "dist/site/f00.txt");
    assert_eq!(files[21].0, "again/f00.txt");
}
