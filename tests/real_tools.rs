//! Archives made by real tools (Info-ZIP, JDK `jar`, Python's zipfile streaming with
//! data descriptors, forced zip64, a self-extractor stub) go through a real job on
//! SeaweedFS; every output is checked with Python's zipfile, `unzip -t` and
//! java.util.zip (streaming and central-directory reads), entry by entry against
//! what Python reads from the input. Also: more than 65,535 entries (zip64) in and out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use artifact_core::Settings;
use artifact_suite::*;

fn b64(s: &str) -> Vec<u8> {
    // Small standard base64 decoder (test-only; avoids a dependency).
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        } as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_from_real_tools_round_trip() {
    let s = stack();
    let dir = tool_zips();
    let bucket = unique("tools");
    s.create_bucket(&bucket).await;
    let key = s.create_key().await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let params = r#"{"variables":{"VERSION":"5.0"},"steps":[{"template":{"files":["*.json","*.yml","*.txt"]}}]}"#;
    for tool in ["infozip", "jar", "python-stream", "python-zip64", "sfx"] {
        let input = std::fs::read(dir.join(format!("{tool}.zip"))).unwrap();
        s.put(&bucket, &format!("{tool}.zip"), input, Some(&key))
            .await;
        let out_key = format!("out/{tool}.zip");
        let ev = event(
            &job_id(),
            &[("In", &bucket, &format!("{tool}.zip"))],
            &[("Out", &bucket, &out_key)],
            Some(params),
            &creds,
            Some(&key),
        );
        let handled = worker
            .handle(ev, Instant::now() + Duration::from_secs(300), None)
            .await
            .unwrap();
        if let Err(e) = &handled.result {
            panic!("{tool}: {e:?}");
        }
        let (body, _, _) = s.get(&bucket, &out_key).await.unwrap();
        let listed = check_with_external_readers(&body);
        assert_eq!(check_with_java(&body), listed.len(), "{tool}");

        let expect: BTreeMap<String, String> = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{tool}.expect.json"))).unwrap(),
        )
        .unwrap();
        let got: BTreeMap<String, Vec<u8>> = read_zip(&body)
            .into_iter()
            .filter(|(n, _)| !n.ends_with('/'))
            .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expect.keys().collect::<Vec<_>>(),
            "{tool}"
        );
        for (name, data) in &expect {
            let mut want = b64(data);
            if [".json", ".yml", ".txt"].iter().any(|x| name.ends_with(x)) {
                want = String::from_utf8(want)
                    .unwrap()
                    .replace("${VERSION}", "5.0")
                    .into_bytes();
            }
            assert_eq!(&got[name], &want, "{tool}: {name}");
        }
    }
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_65535_entries_round_trip_as_zip64() {
    let s = stack();
    let bucket = unique("many");
    s.create_bucket(&bucket).await;
    let names: Vec<String> = (0..70_000)
        .map(|i| format!("d{}/f{i}.txt", i % 100))
        .collect();
    let entries: Vec<(&str, &[u8], bool)> = names
        .iter()
        .map(|n| (n.as_str(), n.as_bytes(), false))
        .collect();
    let input = zip_of(&entries);
    s.put(&bucket, "in.zip", input, None).await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    let ev = event(
        &job_id(),
        &[("In", &bucket, "in.zip")],
        &[("Out", &bucket, "out.zip")],
        Some(r#"{"steps":[{"exclude":["d99/**"]}]}"#),
        &creds,
        None,
    );
    let handled = worker
        .handle(ev, Instant::now() + Duration::from_secs(600), None)
        .await
        .unwrap();
    let ok = handled.result.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(ok.outputs[0].entries, 69_300);
    let (body, _, _) = s.get(&bucket, "out.zip").await.unwrap();
    // The end record says 0xFFFF: the count is in the zip64 record.
    let eocd = &body[body.len() - 22..];
    assert_eq!(&eocd[8..10], &[0xFF, 0xFF]);
    let listed = check_with_external_readers(&body);
    assert_eq!(listed.len(), 69_300);
    assert_eq!(listed[12_345].0, names[12_345 + 12_345 / 99]);
    s.remove_bucket(&bucket).await;
}

/// Builds a tree with an executable and links, zipped by Info-ZIP with `-y` (store
/// links as links), into `name` under a fresh directory; returns the zip bytes.
fn zip_y(name: &str, with_escaping_link: bool) -> Vec<u8> {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let root = std::env::temp_dir().join(unique(name));
    let tree = root.join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/run.sh"), "#!/bin/sh\necho ${VERSION}\n").unwrap();
    std::fs::set_permissions(tree.join("bin/run.sh"), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(tree.join("version.txt"), "v=${VERSION}\n").unwrap();
    symlink("bin/run.sh", tree.join("current")).unwrap();
    symlink("../version.txt", tree.join("bin/version")).unwrap();
    if with_escaping_link {
        symlink("/etc/passwd", tree.join("passwd")).unwrap();
    }
    let out = std::process::Command::new("zip")
        .current_dir(&tree)
        .args(["-q", "-r", "-y", "../out.zip", "."])
        .status()
        .expect("running zip");
    assert!(out.success());
    let bytes = std::fs::read(root.join("out.zip")).unwrap();
    let _ = std::fs::remove_dir_all(&root);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_modes_from_zip_y_are_kept_and_escaping_links_refused() {
    let s = stack();
    let bucket = unique("links");
    s.create_bucket(&bucket).await;
    let creds = s.session_credentials().await;
    let cp = codepipeline();
    let worker = s.worker(&cp, Settings::default()).await;
    // Templating every file must leave the links' targets alone.
    let params = r#"{"variables":{"VERSION":"5.0"},"steps":[{"template":{"files":["*"]}}]}"#;
    let run = |key: &'static str, out: &'static str| {
        let ev = event(
            &job_id(),
            &[("In", &bucket, key)],
            &[("Out", &bucket, out)],
            Some(params),
            &creds,
            None,
        );
        worker.handle(ev, Instant::now() + Duration::from_secs(600), None)
    };
    s.put(&bucket, "ok.zip", zip_y("links-ok", false), None)
        .await;
    let ok = run("ok.zip", "out/ok.zip").await.unwrap();
    assert!(ok.result.is_ok(), "{:?}", ok.result);
    let (body, _, _) = s.get(&bucket, "out/ok.zip").await.unwrap();
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
    let mode = |a: &mut zip::ZipArchive<_>, n: &str| a.by_name(n).unwrap().unix_mode().unwrap();
    assert_eq!(
        mode(&mut a, "bin/run.sh") & 0o170777,
        0o100755,
        "executable kept"
    );
    assert_eq!(
        mode(&mut a, "current") & 0o170000,
        0o120000,
        "link kept as a link"
    );
    let mut target = String::new();
    std::io::Read::read_to_string(&mut a.by_name("bin/version").unwrap(), &mut target).unwrap();
    assert_eq!(target, "../version.txt", "link target not templated");
    let mut script = String::new();
    std::io::Read::read_to_string(&mut a.by_name("bin/run.sh").unwrap(), &mut script).unwrap();
    assert!(script.contains("echo 5.0"), "{script}");

    s.put(&bucket, "evil.zip", zip_y("links-evil", true), None)
        .await;
    let bad = run("evil.zip", "out/evil.zip").await.unwrap();
    let (t, m) = bad.result.expect_err("an absolute link is refused");
    assert_eq!(t.as_str(), "JobFailed", "{m}");
    assert!(m.contains("passwd") && m.contains("/etc/passwd"), "{m}");
    assert!(s.get(&bucket, "out/evil.zip").await.is_none());
    s.remove_bucket(&bucket).await;
}
