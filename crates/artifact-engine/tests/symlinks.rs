//! Symbolic-link entries through `memory::rewrite`: archives crafted with the engine's
//! own writer (host 3 or 19, `S_IFLNK` in the high 16 bits of the external attributes),
//! read back with the engine's reader to see names, data and attributes.

use artifact_engine::entry::{decompress, deflate, EntryError};
use artifact_engine::memory::{rewrite, RewriteStats};
use artifact_engine::plan::{JobContext, Plan, PlanSpec};
use artifact_engine::zip::read::{index_bytes, METHOD_DEFLATED, METHOD_STORED};
use artifact_engine::zip::{CdEntry, EntryMeta, ZipWriter};
use artifact_engine::ZipError;

const LINK: u32 = 0o120777;
const EXEC: u32 = 0o100755;
const FILE: u32 = 0o100644;

/// One input entry: name, data, Unix mode, host, deflated?
struct E<'a> {
    name: &'a str,
    data: &'a [u8],
    mode: u32,
    host: u8,
    deflate: bool,
}

fn e<'a>(name: &'a str, data: &'a [u8], mode: u32) -> E<'a> {
    E {
        name,
        data,
        mode,
        host: 3,
        deflate: false,
    }
}

fn link<'a>(name: &'a str, target: &'a str) -> E<'a> {
    e(name, target.as_bytes(), LINK)
}

fn make_zip(entries: &[E<'_>]) -> Vec<u8> {
    let mut w = ZipWriter::new();
    let mut out = Vec::new();
    for x in entries {
        let (method, body) = if x.deflate {
            (METHOD_DEFLATED, deflate(x.data, 6))
        } else {
            (METHOD_STORED, x.data.to_vec())
        };
        let mut meta = EntryMeta::file(
            x.name,
            method,
            crc32fast::hash(x.data),
            body.len() as u64,
            x.data.len() as u64,
        );
        meta.host = x.host;
        meta.external_attrs = x.mode << 16;
        out.extend_from_slice(&w.local_header(&meta).unwrap());
        out.extend_from_slice(&body);
        w.end_entry(body.len() as u64).unwrap();
    }
    out.extend_from_slice(&w.finish(b"").unwrap());
    out
}

fn plan(json: &str) -> Plan {
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    Plan::compile(&PlanSpec::parse(Some(json)).unwrap(), &ctx).unwrap()
}

fn run(entries: &[E<'_>], json: &str) -> Result<(Vec<u8>, RewriteStats), EntryError> {
    rewrite(&make_zip(entries), &plan(json), 1 << 20)
}

/// (entry, uncompressed data) of every entry of `archive`.
fn read_back(archive: &[u8]) -> Vec<(CdEntry, Vec<u8>)> {
    let (_, entries) = index_bytes(archive).unwrap();
    entries
        .into_iter()
        .map(|c| {
            let start = c.header_offset as usize;
            let name_len = u16::from_le_bytes([archive[start + 26], archive[start + 27]]) as usize;
            let extra_len = u16::from_le_bytes([archive[start + 28], archive[start + 29]]) as usize;
            let data_at = start + 30 + name_len + extra_len;
            let data = &archive[data_at..data_at + c.compressed_size as usize];
            let plain = decompress(&c, data).unwrap();
            (c, plain)
        })
        .collect()
}

fn find<'a>(got: &'a [(CdEntry, Vec<u8>)], name: &str) -> &'a (CdEntry, Vec<u8>) {
    got.iter()
        .find(|(c, _)| c.name == name)
        .unwrap_or_else(|| panic!("no {name:?} in {:?}", names(got)))
}

fn names(got: &[(CdEntry, Vec<u8>)]) -> Vec<&str> {
    got.iter().map(|(c, _)| c.name.as_str()).collect()
}

fn mode_of(c: &CdEntry) -> u32 {
    c.external_attrs >> 16
}

/// The refusal of a link: (entry, target).
fn refused(r: Result<(Vec<u8>, RewriteStats), EntryError>) -> (String, String, String) {
    match r {
        Err(EntryError::Zip(ZipError::Symlink { name, target, why })) => (name, target, why),
        Err(other) => panic!("refused with the wrong error: {other}"),
        Ok((out, _)) => panic!(
            "accepted; output holds {:?}",
            names(&read_back(&out))
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        ),
    }
}

#[test]
fn links_inside_the_artifact_are_kept_with_their_type_and_target() {
    let (out, stats) = run(
        &[
            e("a/", b"", 0o040755),
            e("a/run.sh", b"#!/bin/sh\n", EXEC),
            link("a/l", "../b/c"),
            link("top", "."),
            e("b/c", b"x", FILE),
        ],
        "",
    )
    .unwrap();
    assert_eq!(stats.entries, 5);
    let got = read_back(&out);
    let (l, target) = find(&got, "a/l");
    assert_eq!(mode_of(l), LINK);
    assert_eq!(l.version_made_by >> 8, 3);
    assert!(l.is_symlink());
    assert_eq!(target, b"../b/c");
    let (x, _) = find(&got, "a/run.sh");
    assert_eq!(mode_of(x), EXEC);
    assert!(!x.is_symlink());
    assert_eq!(mode_of(&find(&got, "a/").0), 0o040755);
}

#[test]
fn escaping_absolute_and_odd_targets_are_refused_naming_entry_and_target() {
    for (name, target) in [
        ("a/l", "../../x"),
        ("l", "/etc/passwd"),
        ("l", "C:/Windows"),
        ("l", "x\\..\\..\\y"),
        ("a/b/l", "c/../../../.."),
    ] {
        let (n, t, why) = refused(run(&[link(name, target)], ""));
        assert_eq!((n.as_str(), t.as_str()), (name, target), "{why}");
    }
    let (_, _, why) = refused(run(&[link("l", "")], ""));
    assert!(why.contains("empty"), "{why}");
    let long = "a/".repeat(2100);
    let (_, _, why) = refused(run(&[link("l", &long)], ""));
    assert!(why.contains("4096"), "{why}");
}

#[test]
fn a_deflated_link_is_inflated_and_checked() {
    let mut l = link("l", "../../../etc/shadow");
    l.deflate = true;
    let (n, t, _) = refused(run(&[l], ""));
    assert_eq!((n.as_str(), t.as_str()), ("l", "../../../etc/shadow"));
    let mut ok = link("d/l", "../f");
    ok.deflate = true;
    run(&[ok, e("f", b"1", FILE)], "").unwrap();
}

#[test]
fn os_x_hosts_are_unix_too() {
    let mut l = link("l", "/etc/passwd");
    l.host = 19;
    refused(run(&[l], ""));
}

#[test]
fn the_check_uses_the_final_path() {
    // Flattened from a/b/ to the root, "../c" now leaves the artifact.
    let flat = r#"{"steps":[{"move":{"flatten":true}}]}"#;
    let (n, t, why) = refused(run(&[link("a/b/link", "../c"), e("a/c", b"", FILE)], flat));
    assert_eq!((n.as_str(), t.as_str()), ("link", "../c"));
    assert!(why.contains("outside"), "{why}");
    // Without the move it stays inside.
    run(&[link("a/b/link", "../c"), e("a/c", b"", FILE)], "").unwrap();
    // Moved deeper, a link that escaped at the root is fine.
    let deeper = r#"{"steps":[{"move":{"add_prefix":"site/"}}]}"#;
    refused(run(&[link("l", "../x")], ""));
    run(&[link("l", "../x")], deeper).unwrap();
    // The same through the merge prefix of a source.
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    let spec = r#"{"outputs":{"Out":{"from":[{"input":"In","prefix":"app/"}]}}}"#;
    let p = Plan::compile(&PlanSpec::parse(Some(spec)).unwrap(), &ctx).unwrap();
    let (out, _) = rewrite(&make_zip(&[link("l", "../x")]), &p, 1 << 20).unwrap();
    assert_eq!(names(&read_back(&out)), ["app/l"]);
}

#[test]
fn content_steps_and_recompression_leave_links_alone() {
    let json = r#"{
        "variables": {"V": "7"},
        "steps": [
            {"replace": {"files": ["*"], "find": "target", "with": "../../../../etc"}},
            {"replace": {"files": ["*"], "regex": "t.*", "with": "/abs"}},
            {"template": {"files": ["*"]}},
            {"pack": {"compression": "deflate", "level": 9}}
        ]
    }"#;
    let (out, stats) = run(
        &[link("l", "target"), e("target", b"target ${V}", FILE)],
        json,
    )
    .unwrap();
    let got = read_back(&out);
    let (l, data) = find(&got, "l");
    assert_eq!(data, b"target");
    assert_eq!(l.method, METHOD_STORED, "a link is never recompressed");
    assert_eq!(mode_of(l), LINK);
    // The regular file went through every step.
    assert_eq!(find(&got, "target").1, b"../../../../e/abs");
    assert_eq!(stats.raw, 1);
}

#[test]
fn set_and_export_do_not_read_links() {
    let set = r#"{"steps":[{"set":{"files":["*.json"],"pointer":"/a","value":1}}]}"#;
    let (out, _) = run(
        &[link("x.json", "y.json"), e("y.json", br#"{"a":0}"#, FILE)],
        set,
    )
    .unwrap();
    let got = read_back(&out);
    assert_eq!(find(&got, "x.json").1, b"y.json");
    assert_eq!(find(&got, "y.json").1, br#"{"a":1}"#);

    let export = r#"{"steps":[{"export":{"variable":"V","file":"VERSION"}}]}"#;
    let err = run(
        &[link("VERSION", "v.txt"), e("v.txt", b"1.0", FILE)],
        export,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("VERSION") && msg.contains("symbolic link"),
        "{msg}"
    );
}

#[test]
fn pack_modes_keep_the_link_type() {
    let json = r#"{"steps":[{"pack":{"file_mode":"600","dir_mode":"700"}}]}"#;
    let mut l19 = link("m", "l");
    l19.host = 19;
    let (out, _) = run(
        &[
            link("l", "run.sh"),
            l19,
            e("run.sh", b"x", EXEC),
            e("d/", b"", 0o040755),
        ],
        json,
    )
    .unwrap();
    let got = read_back(&out);
    assert_eq!(mode_of(&find(&got, "l").0), 0o120600);
    assert_eq!(mode_of(&find(&got, "m").0), 0o120600);
    assert!(find(&got, "m").0.is_symlink());
    assert_eq!(mode_of(&find(&got, "run.sh").0), 0o100600);
    assert_eq!(mode_of(&find(&got, "d/").0), 0o040700);
}

#[test]
fn drop_and_fail_modes() {
    let input = [link("l", "f"), e("f", b"1", FILE), e("g", b"2", EXEC)];
    let (out, stats) = run(&input, r#"{"symlinks":"drop"}"#).unwrap();
    assert_eq!(stats.dropped, 1);
    let got = read_back(&out);
    assert_eq!(names(&got), ["f", "g"]);
    assert_eq!(mode_of(&find(&got, "g").0), EXEC);

    let err = run(&input, r#"{"symlinks":"fail"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"l\"") && err.contains("symbolic link"),
        "{err}"
    );
    // Excluded links do not fail the job.
    run(&input, r#"{"symlinks":"fail","steps":[{"exclude":["l"]}]}"#).unwrap();
    // Keep refuses only bad links; drop drops bad ones too.
    let bad = [link("l", "/etc/passwd"), e("f", b"1", FILE)];
    refused(run(&bad, r#"{"symlinks":"keep"}"#));
    run(&bad, r#"{"symlinks":"drop"}"#).unwrap();
}

#[test]
fn manifest_lists_a_link_with_the_hash_of_its_target_path() {
    use sha2::{Digest, Sha256};
    let (out, _) = run(
        &[link("l", "f"), e("f", b"content", FILE)],
        r#"{"steps":[{"manifest":{}}]}"#,
    )
    .unwrap();
    let got = read_back(&out);
    let m: serde_json::Value = serde_json::from_slice(&find(&got, "manifest.json").1).unwrap();
    let row = &m["entries"][0];
    assert_eq!(row["path"], "l");
    assert_eq!(row["size"], 1);
    assert_eq!(row["sha256"], hex::encode(Sha256::digest(b"f")));
}

#[test]
fn entries_under_a_link_are_refused() {
    // Extracting `d/x` after the link `d -> ..` would write outside the artifact.
    let err = run(&[link("d", "sub"), e("d/x", b"1", FILE)], "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"d/x\"") && err.contains("link"), "{err}");
    let err = run(
        &[link("d", "sub")],
        r#"{"steps":[{"add":{"path":"d/added","text":"x"}}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("d/added"), "{err}");
}
