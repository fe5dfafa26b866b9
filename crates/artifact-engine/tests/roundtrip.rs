//! Round trips through the engine, read back with the independent `zip` crate.

mod support;

use std::io::{Cursor, Read, Write};

use artifact_engine::memory::rewrite;
use artifact_engine::plan::{JobContext, Plan, PlanSpec};
use artifact_engine::zip::{EntryMeta, ZipWriter};
use proptest::prelude::*;
use support::read_with_zip_crate;
use zip::write::SimpleFileOptions;

fn plan(json: &str) -> Plan {
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    Plan::compile(&PlanSpec::parse(Some(json)).unwrap(), &ctx).unwrap()
}

fn make_zip(entries: &[(String, Vec<u8>, bool)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, deflate) in entries {
        let m = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        if name.ends_with('/') {
            w.add_directory(name.as_str(), SimpleFileOptions::default())
                .unwrap();
        } else {
            w.start_file(
                name.as_str(),
                SimpleFileOptions::default().compression_method(m),
            )
            .unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn copy_transform_and_drop() {
    let input = make_zip(&[
        ("dir/".into(), vec![], false),
        (
            "dir/app.json".into(),
            br#"{"v":"${VERSION}"}"#.to_vec(),
            true,
        ),
        ("dir/app.js.map".into(), b"map".to_vec(), true),
        (
            "bin/blob".into(),
            (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect(),
            false,
        ),
        ("ünïcode/名前.txt".into(), b"x".repeat(1000), true),
    ]);
    let p = plan(
        r#"{"variables":{"VERSION":"9"},"steps":[{"exclude":["*.map"]},{"template":{"files":["*.json"]}}]}"#,
    );
    let (out, stats) = rewrite(&input, &p, 1 << 30).unwrap();
    assert_eq!(stats.entries, 4);
    assert_eq!(stats.dropped, 1);
    assert_eq!(stats.raw, 3);
    let got = read_with_zip_crate(&out);
    let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["dir/", "dir/app.json", "bin/blob", "ünïcode/名前.txt"]
    );
    assert_eq!(got[1].1, br#"{"v":"9"}"#);
    // Deterministic.
    assert_eq!(rewrite(&input, &p, 1 << 30).unwrap().0, out);
}

#[test]
fn corrupt_crc_is_caught_on_transform() {
    let mut input = make_zip(&[("a.txt".into(), b"hello world".to_vec(), false)]);
    // Flip a data byte (stored entry data begins after the 30-byte header and name).
    input[30 + 5] ^= 0xFF;
    let err = rewrite(
        &input,
        &plan(r#"{"steps":[{"replace":{"files":["*"],"find":"w","with":"W"}}]}"#),
        1 << 30,
    )
    .unwrap_err();
    assert!(err.to_string().contains("CRC"), "{err}");
}

#[test]
fn writer_zip64_entry_over_4gib_into_counting_sink() {
    // An entry > 4 GiB: header + trailer only; data counted, not stored.
    let size = (1u64 << 32) + 10;
    let mut w = ZipWriter::new();
    let meta = EntryMeta::file("huge.bin", 0, 0x1234_5678, size, size);
    let h = w.local_header(&meta).unwrap();
    assert_eq!(h.len(), 30 + 8 + 20);
    w.end_entry(size).unwrap();
    let small = EntryMeta::file("after.txt", 0, 0, 0, 0);
    w.local_header(&small).unwrap();
    w.end_entry(0).unwrap();
    let tail = w.finish(b"").unwrap();
    // The tail alone must be parseable as the end of an archive of this length.
    let total = size + h.len() as u64 + 30 + 9 + tail.len() as u64;
    let parsed = artifact_engine::zip::read::parse_tail(&tail, total).unwrap();
    let artifact_engine::zip::TailParse::NeedEocd64 { offset, .. } = parsed else {
        panic!("expected zip64")
    };
    let rec_start = (offset - (total - tail.len() as u64)) as usize;
    let artifact_engine::zip::TailParse::NeedEocd64 { partial, .. } = parsed else {
        unreachable!()
    };
    let eocd =
        artifact_engine::zip::read::parse_eocd64(&tail[rec_start..], partial, offset).unwrap();
    let cd_start = (eocd.cd_offset - (total - tail.len() as u64)) as usize;
    let entries = artifact_engine::zip::read::parse_central_directory(
        &tail[cd_start..cd_start + eocd.cd_size as usize],
        &eocd,
    )
    .unwrap();
    assert_eq!(entries[0].compressed_size, size);
    assert_eq!(entries[1].header_offset, size + 58);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_entry_sets_round_trip(
        files in proptest::collection::btree_map("[a-z]{1,8}(/[a-zé]{1,8}){0,2}", (proptest::collection::vec(any::<u8>(), 0..3000), any::<bool>()), 0..20),
        edit in any::<bool>(),
    ) {
        let entries: Vec<(String, Vec<u8>, bool)> = files.into_iter().map(|(n, (d, c))| (format!("{n}.txt"), d, c)).collect();
        // Names like "a" and "a/b" can collide as file vs dir; zip allows both.
        let input = make_zip(&entries);
        let p = if edit { plan(r#"{"steps":[{"replace":{"files":["**"],"find":"a","with":"bb"}}]}"#) } else { plan("{}") };
        let (out, _) = rewrite(&input, &p, 1 << 30).unwrap();
        let got = read_with_zip_crate(&out);
        prop_assert_eq!(got.len(), entries.len());
        for ((n, d, _), (gn, gd)) in entries.iter().zip(&got) {
            prop_assert_eq!(n, gn);
            if edit {
                let want: Vec<u8> = d.iter().flat_map(|&b| if b == b'a' { b"bb".to_vec() } else { vec![b] }).collect();
                prop_assert_eq!(&want, gd);
            } else {
                prop_assert_eq!(d, gd);
            }
        }
    }
}

#[test]
fn raw_copies_are_verified_unless_turned_off() {
    let text: Vec<u8> = (0..5000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    for deflate in [false, true] {
        let good = make_zip(&[("x.txt".to_string(), text.clone(), deflate)]);
        let mut bad = good.clone();
        // Flip a byte in the middle of the entry's data (after its 30 + 5 byte header).
        bad[35 + 300] ^= 0x55;
        assert!(rewrite(&good, &plan("{}"), 1 << 20).is_ok());
        let err = rewrite(&bad, &plan("{}"), 1 << 20).unwrap_err().to_string();
        assert!(err.contains("x.txt"), "{err}");
        let (out, stats) = rewrite(&bad, &plan(r#"{"verify": false}"#), 1 << 20).unwrap();
        assert_eq!(stats.raw, 1, "copied raw, unread");
        assert!(out.windows(40).any(|w| w == &bad[35 + 280..35 + 320]));
    }
}

#[test]
fn a_ratio_bomb_is_refused_before_inflation() {
    let zeros = make_zip(&[("zeros.bin".to_string(), vec![0u8; 64 << 20], true)]);
    assert!(zeros.len() < 1 << 20);
    let err = rewrite(&zeros, &plan("{}"), 1 << 20)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("zeros.bin") && err.contains("max_ratio"),
        "{err}"
    );
    let lenient = r#"{"limits": {"max_ratio": 2000}}"#;
    assert!(rewrite(&zeros, &plan(lenient), 1 << 20).is_ok());
}

#[test]
fn entries_past_the_limit_stream_through_template_and_are_refused_by_whole_steps() {
    let text: Vec<u8> = (0..5000)
        .flat_map(|i| format!("v{i}=${{V}}\n").into_bytes())
        .collect();
    let z = make_zip(&[("big.txt".to_string(), text.clone(), true)]);
    let streaming = plan(r#"{"variables":{"V":"9"},"steps":[{"template":{"files":["*.txt"]}}]}"#);
    let (out, stats) = rewrite(&z, &streaming, 1024).unwrap();
    assert_eq!(stats.raw, 0);
    let mut a = zip::ZipArchive::new(Cursor::new(out)).unwrap();
    let mut got = String::new();
    a.by_index(0).unwrap().read_to_string(&mut got).unwrap();
    assert_eq!(got, String::from_utf8(text).unwrap().replace("${V}", "9"));
    let whole =
        plan(r#"{"steps":[{"replace":{"files":["*.txt"],"regex":"v(\\d)","with":"w$1"}}]}"#);
    let err = rewrite(&z, &whole, 1024).unwrap_err().to_string();
    assert!(
        err.contains("big.txt") && err.contains("cannot be"),
        "{err}"
    );
}

/// Writes `names` as stored entries into `w`, returning the bytes.
fn write_stored(w: &mut ZipWriter, names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        let data = name.repeat(3).into_bytes();
        let crc = crc32fast::hash(&data);
        let meta = EntryMeta::file(*name, 0, crc, data.len() as u64, data.len() as u64);
        out.extend_from_slice(&w.local_header(&meta).unwrap());
        out.extend_from_slice(&data);
        w.end_entry(data.len() as u64).unwrap();
    }
    out
}

#[test]
fn a_writer_resumed_from_its_state_writes_the_same_archive() {
    let names = ["a.txt", "b/c.json", "d.bin"];
    let mut whole = ZipWriter::new();
    let mut expected = write_stored(&mut whole, &names);
    expected.extend_from_slice(&whole.finish(b"").unwrap());

    let mut first = ZipWriter::new();
    let mut got = write_stored(&mut first, &names[..1]);
    let mut open = ZipWriter::resume(first.state().unwrap());
    open.local_header(&EntryMeta::file("open", 0, 0, 0, 0))
        .unwrap();
    assert!(open.state().is_none(), "no state while an entry is open");
    let mut second = ZipWriter::resume(first.state().unwrap());
    got.extend_from_slice(&write_stored(&mut second, &names[1..]));
    got.extend_from_slice(&second.finish(b"").unwrap());
    assert_eq!(got, expected);
    assert_eq!(read_with_zip_crate(&got).len(), 3);
}

/// `add` takes a `mode` (an executable `bootstrap`), and `pack` rules (compression,
/// time, file mode) apply to added files and manifests too; the added file's own mode
/// wins over `pack`'s.
#[test]
fn added_files_take_a_mode_and_the_pack_rules() {
    let input = make_zip(&[("app.js".into(), b"x".to_vec(), true)]);
    let p = plan(
        r##"{"steps":[
            {"add":{"path":"bootstrap","text":"#!/bin/sh\n","mode":"755"}},
            {"add":{"path":"hooks/start.sh","text":"echo hi\n"}},
            {"manifest":{"path":"manifest.json"}},
            {"pack":{"files":["*.sh","manifest.json"],"compression":"store","mtime":"2020-02-03T04:05:06","file_mode":"750"}},
            {"pack":{"files":["bootstrap"],"file_mode":"600"}}
        ]}"##,
    );
    let (out, _) = rewrite(&input, &p, 1 << 20).unwrap();
    let mut z = zip::ZipArchive::new(Cursor::new(out)).unwrap();
    let mode = |z: &mut zip::ZipArchive<_>, n: &str| z.by_name(n).unwrap().unix_mode().unwrap();
    assert_eq!(mode(&mut z, "bootstrap"), 0o100755);
    assert_eq!(mode(&mut z, "hooks/start.sh"), 0o100750);
    assert_eq!(mode(&mut z, "manifest.json"), 0o100750);
    let sh = z.by_name("hooks/start.sh").unwrap();
    assert_eq!(sh.compression(), zip::CompressionMethod::Stored);
    let t = sh.last_modified().unwrap();
    assert_eq!(
        (t.year(), t.month(), t.day(), t.hour(), t.minute()),
        (2020, 2, 3, 4, 5)
    );
    drop(sh);
    let boot = z.by_name("bootstrap").unwrap();
    assert_eq!(boot.compression(), zip::CompressionMethod::Deflated);
    let mut text = String::new();
    { boot }.read_to_string(&mut text).unwrap();
    assert_eq!(text, "#!/bin/sh\n");
    // A bad mode names the field.
    let spec = PlanSpec::parse(Some(
        r#"{"steps":[{"add":{"path":"a","text":"","mode":"rwx"}}]}"#,
    ))
    .unwrap();
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    assert_eq!(
        Plan::compile(&spec, &ctx).unwrap_err().path,
        "steps[0].add.mode"
    );
}
