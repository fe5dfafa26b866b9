//! tar.gz outputs through `memory::rewrite`, read back with the independent `tar`
//! crate: for random entry sets (stored and deflated, directories, names past ustar's
//! 100 and 255 bytes, non-ASCII), the tar.gz holds the same entries with the same
//! content as the zip the same plan writes; added files and links keep their mode and
//! target.

use std::io::{Cursor, Read, Write};

use artifact_engine::memory::rewrite;
use artifact_engine::plan::{JobContext, Plan, PlanSpec};
use proptest::prelude::*;
use zip::write::SimpleFileOptions;

fn plan(json: &str) -> Plan {
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    Plan::compile(&PlanSpec::parse(Some(json)).unwrap(), &ctx).unwrap()
}

/// `steps` for an output of `format`.
fn plan_for(format: &str, steps: &str) -> Plan {
    plan(&format!(
        r#"{{"variables": {{"V": "7"}}, "outputs": {{"Out": {{"from": ["In"], "format": "{format}", "steps": {steps}}}}}}}"#
    ))
}

fn make_zip(entries: &[(String, Vec<u8>, bool)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, deflate) in entries {
        if name.ends_with('/') {
            w.add_directory(name.as_str(), SimpleFileOptions::default())
                .unwrap();
            continue;
        }
        let m = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        w.start_file(
            name.as_str(),
            SimpleFileOptions::default().compression_method(m),
        )
        .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn read_zip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..a.len())
        .map(|i| {
            let mut f = a.by_index(i).unwrap();
            let mut v = Vec::new();
            f.read_to_end(&mut v).unwrap();
            (f.name().to_string(), v)
        })
        .collect()
}

/// (path, kind, mode, link target, content) of every record.
type Record = (String, tar::EntryType, u32, Option<String>, Vec<u8>);

fn read_tar_gz(bytes: &[u8]) -> Vec<Record> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
                e.header().mode().unwrap(),
                link,
                data,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn a_tar_gz_holds_what_the_zip_holds(
        files in proptest::collection::btree_map(
            "[a-z]{1,8}(/[a-zé]{1,8}){0,2}",
            (proptest::collection::vec(any::<u8>(), 0..3000), any::<bool>(), 0usize..300),
            0..16,
        ),
        edit in any::<bool>(),
    ) {
        let mut entries: Vec<(String, Vec<u8>, bool)> = files
            .into_iter()
            .map(|(n, (d, c, long))| (format!("{n}{}.txt", "x".repeat(long)), d, c))
            .collect();
        entries.push(("dir/".into(), Vec::new(), false));
        let input = make_zip(&entries);
        let steps = if edit {
            r#"[{"replace": {"files": ["**/*.txt"], "find": "a", "with": "bb", "optional": true}}]"#
        } else {
            "[]"
        };
        let (zip, zs) = rewrite(&input, &plan_for("zip", steps), 1 << 30).unwrap();
        let (tgz, ts) = rewrite(&input, &plan_for("tar.gz", steps), 1 << 30).unwrap();
        prop_assert_eq!(zs.entries, ts.entries);
        let want = read_zip(&zip);
        let got = read_tar_gz(&tgz);
        prop_assert_eq!(want.len(), got.len());
        for ((wn, wd), (gn, kind, _, _, gd)) in want.iter().zip(&got) {
            prop_assert_eq!(wn, gn);
            let dir = wn.ends_with('/');
            prop_assert_eq!(*kind, if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
            prop_assert_eq!(wd, gd);
        }
    }
}

#[test]
fn added_files_links_and_modes_are_kept() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(
        "bin/run",
        SimpleFileOptions::default().unix_permissions(0o755),
    )
    .unwrap();
    w.write_all(b"#!/bin/sh\n").unwrap();
    w.add_symlink("bin/latest", "run", SimpleFileOptions::default())
        .unwrap();
    let input = w.finish().unwrap().into_inner();
    let steps = r#"[{"add": {"path": "VERSION", "text": "${V}", "mode": "0600"}},
                    {"manifest": {"path": "MANIFEST.json"}}]"#;
    let (tgz, stats) = rewrite(&input, &plan_for("tar.gz", steps), 1 << 20).unwrap();
    assert_eq!(stats.entries, 4);
    let got = read_tar_gz(&tgz);
    let paths: Vec<&str> = got.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(paths, ["bin/run", "bin/latest", "VERSION", "MANIFEST.json"]);
    assert_eq!(got[0].2 & 0o777, 0o755);
    assert_eq!(got[1].1, tar::EntryType::Symlink);
    assert_eq!(got[1].3.as_deref(), Some("run"));
    assert_eq!((got[2].2 & 0o777, got[2].4.as_slice()), (0o600, &b"7"[..]));
    let manifest: serde_json::Value = serde_json::from_slice(&got[3].4).unwrap();
    assert_eq!(manifest["entries"].as_array().unwrap().len(), 3);
    // The same inputs and plan give the same bytes.
    let (again, _) = rewrite(&input, &plan_for("tar.gz", steps), 1 << 20).unwrap();
    assert!(again == tgz);
}

#[test]
fn the_gzip_level_is_the_outputs_own() {
    let text: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let input = make_zip(&[("log.txt".into(), text.clone(), true)]);
    let at = |level: u32| {
        let p = plan(&format!(
            r#"{{"outputs": {{"Out": {{"from": ["In"], "format": "tar.gz", "gzip_level": {level}}}}}}}"#
        ));
        rewrite(&input, &p, 1 << 20).unwrap().0
    };
    let (fast, small) = (at(1), at(9));
    assert!(
        fast.len() > small.len(),
        "{} vs {}",
        fast.len(),
        small.len()
    );
    assert!(read_tar_gz(&fast)[0].4 == text && read_tar_gz(&small)[0].4 == text);
    let refused = |json: &str| {
        let ctx = JobContext {
            inputs: vec!["In".into()],
            outputs: vec!["Out".into()],
            ..Default::default()
        };
        Plan::compile(&PlanSpec::parse(Some(json)).unwrap(), &ctx)
            .unwrap_err()
            .to_string()
    };
    let zip_level = refused(r#"{"outputs": {"Out": {"from": ["In"], "gzip_level": 1}}}"#);
    assert!(zip_level.contains("outputs.Out.gzip_level"), "{zip_level}");
    let out_of_range =
        refused(r#"{"outputs": {"Out": {"from": ["In"], "format": "tar.gz", "gzip_level": 10}}}"#);
    assert!(out_of_range.contains("0 to 9"), "{out_of_range}");
}
