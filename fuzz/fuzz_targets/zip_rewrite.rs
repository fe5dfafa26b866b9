//! Arbitrary bytes → `memory::rewrite` with (a) the empty plan and (b) a plan whose
//! template and replace steps apply to every file, with a 1 MiB `max_transform_size`.
//!
//! Must never panic or allocate without bound (run with `-malloc_limit_mb`: a zip bomb
//! has to be stopped by the declared-size limit, not by running out of memory). When a
//! rewrite succeeds, its output must:
//! - index cleanly with `index_bytes` + `region_ends`, with every local header valid;
//! - hold the same entries, in the same order, under the same names (neither plan
//!   drops or renames anything); entries the plan leaves alone (everything for (a),
//!   directories and symbolic links for (b)) are copied raw: same method, CRC, sizes
//!   and bytes;
//! - be readable by the independent `zip` crate, whose metadata matches, and whose
//!   decompressed data has the declared size and CRC wherever the engine itself can
//!   decompress the entry. For (b) that is every file: each was decompressed and
//!   CRC-checked on the way in. Its content is checked against the plan without
//!   calling the plan's own code: no byte `a` survives `replace a → bb` (no variable
//!   value contains one), and input without `${` becomes exactly `a → bb` of itself;
//! - be a fixed point: rewriting it again with the empty plan gives the same bytes.
//!
//! (c) A plan unpacking every `*.zip` entry in place (`unzip`, then a template over
//! everything): members are read at offsets taken from an inner central directory,
//! so hostile inner zips must fail cleanly; a success must index cleanly and be read
//! by the `zip` crate with every entry's data matching its CRC.
//!
//! (d) The empty plan writing a tar.gz: when it and (a) both succeed, the `tar` crate
//! reads every record of the tar.gz, and each holds the name and content the `zip`
//! crate reads from (a)'s zip (directories as directory records).
//!
//! Only the engine's stable surface is used (`rewrite`, `index_bytes`, `region_ends`,
//! `compressed_data`, `decompress`, `PlanSpec::parse`, `Plan::compile`), so plan
//! internals can change without touching this target.
#![no_main]

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::sync::OnceLock;

use artifact_engine::entry::{compressed_data, decompress};
use artifact_engine::memory::{rewrite, RewriteStats};
use artifact_engine::plan::{JobContext, Plan, PlanSpec};
use artifact_engine::zip::read::{
    index_bytes, region_ends, CdEntry, METHOD_DEFLATED, METHOD_STORED,
};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const MAX_TRANSFORM: u64 = 1 << 20;
/// How large an entry the checks decompress themselves: past `MAX_TRANSFORM`,
/// `template` and literal `replace` stream, so transformed entries can be larger
/// (fuzz inputs are a few KiB, so nothing real exceeds this).
const ORACLE_LIMIT: u64 = 16 << 20;

/// The content plan: every file goes through a template step (with a variable whose
/// value looks like a reference, and a built-in) and a replace step that grows data.
const CONTENT_PLAN: &str = r#"{
  "variables": { "VERSION": "1.4.2", "A": "${A}${A}" },
  "steps": [
    { "template": { "files": ["*"] } },
    { "replace": { "files": ["*"], "find": "a", "with": "bb" } }
  ]
}"#;

/// The unzip plan: every zip entry unpacked where it is, the members templated.
const UNZIP_PLAN: &str = r#"{
  "variables": { "VERSION": "1.4.2" },
  "steps": [
    { "unzip": { "files": ["*.zip"], "optional": true } },
    { "template": { "files": ["*"], "optional": true, "missing": "keep" } }
  ]
}"#;

/// The tar.gz plan: everything copied into a tar.gz.
const TAR_PLAN: &str = r#"{"outputs": {"BuildOut": {"from": ["SourceOut"], "format": "tar.gz"}}}"#;

struct Plans {
    empty: Plan,
    content: Plan,
    unzip: Plan,
    tar: Plan,
}

fn plans() -> &'static Plans {
    static PLANS: OnceLock<Plans> = OnceLock::new();
    PLANS.get_or_init(|| {
        // One worker thread: deterministic, and gentle on a busy machine.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global();
        let ctx = JobContext {
            inputs: vec!["SourceOut".into()],
            outputs: vec!["BuildOut".into()],
            builtins: BTreeMap::from([("JOB_ID".into(), "job-1".into())]),
        };
        Plans {
            empty: Plan::compile(&PlanSpec::parse(None).unwrap(), &ctx).unwrap(),
            content: Plan::compile(&PlanSpec::parse(Some(CONTENT_PLAN)).unwrap(), &ctx).unwrap(),
            unzip: Plan::compile(&PlanSpec::parse(Some(UNZIP_PLAN)).unwrap(), &ctx).unwrap(),
            tar: Plan::compile(&PlanSpec::parse(Some(TAR_PLAN)).unwrap(), &ctx).unwrap(),
        }
    })
}

fn region(archive: &[u8], e: &CdEntry, end: u64) -> Bytes {
    Bytes::copy_from_slice(&archive[e.header_offset as usize..end as usize])
}

/// The engine's own decompression of an entry, where it is small enough to try.
fn engine_plain(archive: &[u8], e: &CdEntry, end: u64) -> Option<Vec<u8>> {
    if e.uncompressed_size > ORACLE_LIMIT {
        return None;
    }
    let data = compressed_data(e, &region(archive, e, end)).ok()?;
    decompress(e, &data).ok()
}

fn check_output(input: &[u8], out: &[u8], stats: &RewriteStats, is_content: bool) {
    let (_, in_entries) =
        index_bytes(input).expect("rewrite accepted an archive index_bytes rejects");
    let in_ends = region_ends(&in_entries, index_bytes(input).unwrap().0.cd_offset).unwrap();

    // (1) The engine reads its own output.
    let (out_eocd, out_entries) =
        index_bytes(out).unwrap_or_else(|e| panic!("rewrite output does not index: {e}"));
    let out_ends = region_ends(&out_entries, out_eocd.cd_offset)
        .unwrap_or_else(|e| panic!("rewrite output has overlapping regions: {e}"));

    // (2) Same entries, same order, same names; nothing is dropped by these plans.
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.entries, in_entries.len() as u64, "stats.entries");
    assert_eq!(out_entries.len(), in_entries.len(), "entry count changed");
    if !is_content {
        assert_eq!(stats.raw, stats.entries, "empty plan transformed something");
    }

    // (3) The zip crate reads it too.
    let mut za = zip::ZipArchive::new(Cursor::new(out))
        .unwrap_or_else(|e| panic!("zip crate rejects rewrite output: {e}"));
    assert_eq!(za.len(), out_entries.len(), "zip crate entry count");

    for (i, ((ie, &iend), (oe, &oend))) in in_entries
        .iter()
        .zip(&in_ends)
        .zip(out_entries.iter().zip(&out_ends))
        .enumerate()
    {
        assert_eq!(oe.name, ie.name, "entry #{i} renamed");
        let odata = compressed_data(oe, &region(out, oe, oend))
            .unwrap_or_else(|e| panic!("output entry #{i}: {e}"));
        let copied_raw = oe.method == ie.method
            && oe.crc32 == ie.crc32
            && oe.compressed_size == ie.compressed_size
            && oe.uncompressed_size == ie.uncompressed_size;
        // Links are never content (their data is the target path): copied raw.
        let transformable = is_content && !ie.is_dir() && !ie.is_symlink();
        if !transformable {
            assert!(
                copied_raw,
                "entry #{i} {:?} not copied raw: {ie:?} -> {oe:?}",
                ie.name
            );
            let idata = compressed_data(ie, &region(input, ie, iend)).unwrap();
            assert_eq!(idata, odata, "raw entry #{i} data changed");
        }

        {
            let zf = za
                .by_index_raw(i)
                .unwrap_or_else(|e| panic!("zip crate: entry #{i}: {e}"));
            assert_eq!(zf.name_raw(), oe.raw_name.as_slice(), "zip crate name #{i}");
            assert_eq!(zf.crc32(), oe.crc32, "zip crate CRC #{i}");
            assert_eq!(
                zf.compressed_size(),
                oe.compressed_size,
                "zip crate csize #{i}"
            );
            assert_eq!(zf.size(), oe.uncompressed_size, "zip crate size #{i}");
        }

        // Data: wherever the engine can decompress the output entry, the zip crate
        // must produce the same bytes (and check the same CRC).
        let out_plain = if oe.method == METHOD_STORED || oe.method == METHOD_DEFLATED {
            engine_plain(out, oe, oend)
        } else {
            None
        };
        if transformable {
            // Plan (b): the entry was decompressed and CRC-checked on the way in, so
            // its output must decode, and show the plan's effect.
            let in_plain = engine_plain(input, ie, iend).unwrap_or_else(|| {
                panic!(
                    "transformed entry #{i} {:?} does not decode in the input",
                    ie.name
                )
            });
            let got = out_plain.as_deref().unwrap_or_else(|| {
                panic!(
                    "transformed entry #{i} {:?} does not decode in the output",
                    oe.name
                )
            });
            assert!(
                !got.contains(&b'a'),
                "entry #{i} {:?}: `a` survived replace",
                oe.name
            );
            if !in_plain.windows(2).any(|w| w == b"${") {
                assert!(
                    got == replace_a(&in_plain),
                    "entry #{i} {:?}: output is not the input with a → bb",
                    oe.name
                );
            }
        }
        if let Some(plain) = out_plain {
            let mut zf = za
                .by_index(i)
                .unwrap_or_else(|e| panic!("zip crate cannot open entry #{i} {:?}: {e}", oe.name));
            let mut buf = Vec::with_capacity(plain.len());
            (&mut zf)
                .take(ORACLE_LIMIT + 1)
                .read_to_end(&mut buf)
                .unwrap_or_else(|e| panic!("zip crate cannot read entry #{i} {:?}: {e}", oe.name));
            assert!(
                buf == plain,
                "zip crate and engine disagree on entry #{i} {:?}",
                oe.name
            );
            assert_eq!(crc32(&buf), oe.crc32);
        }
    }

    // (4) Output is canonical: a second pass with the empty plan changes nothing.
    // Entries transformed as they streamed carry a data descriptor, which a raw copy
    // rewrites with sizes in the local header: then the second pass is canonical.
    let (again, _) = rewrite(out, &plans().empty, MAX_TRANSFORM)
        .unwrap_or_else(|e| panic!("rewriting the output again fails: {e}"));
    if out_entries.iter().any(|e| e.has_data_descriptor()) {
        let (third, _) = rewrite(&again, &plans().empty, MAX_TRANSFORM)
            .unwrap_or_else(|e| panic!("rewriting the output twice fails: {e}"));
        assert!(third == again, "rewrite is not idempotent after one pass");
    } else {
        assert!(again == out, "rewrite is not idempotent on its own output");
    }
}

/// `replace a → bb`, written independently of the engine.
fn replace_a(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() * 2);
    for &x in b {
        if x == b'a' {
            out.extend_from_slice(b"bb");
        } else {
            out.push(x);
        }
    }
    out
}

fn crc32(b: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), independent of the engine's crc32fast.
    let mut c = !0u32;
    for &x in b {
        c ^= x as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn run(data: &[u8], plan: &Plan, is_content: bool) {
    if let Ok((out, stats)) = rewrite(data, plan, MAX_TRANSFORM) {
        // Debugging aid: `ZIP_REWRITE_DUMP=dir cargo fuzz run zip_rewrite <input>` saves
        // each successful output as dir/{empty,content}.zip before it is checked.
        if let Some(dir) = dump_dir() {
            let name = if is_content {
                "content.zip"
            } else {
                "empty.zip"
            };
            std::fs::write(std::path::Path::new(dir).join(name), &out).unwrap();
        }
        check_output(data, &out, &stats, is_content);
    }
}

/// (c): a successful unpacking reads back whole with the `zip` crate.
fn run_unzip(data: &[u8], plan: &Plan) {
    let Ok((out, _)) = rewrite(data, plan, MAX_TRANSFORM) else {
        return;
    };
    let (eocd, entries) =
        index_bytes(&out).unwrap_or_else(|e| panic!("unzip output does not index: {e}"));
    region_ends(&entries, eocd.cd_offset)
        .unwrap_or_else(|e| panic!("unzip output has overlapping regions: {e}"));
    let mut za = zip::ZipArchive::new(Cursor::new(&out))
        .unwrap_or_else(|e| panic!("zip crate rejects unzip output: {e}"));
    for i in 0..za.len() {
        let mut f = za.by_index(i).unwrap();
        if f.size() > ORACLE_LIMIT || !matches!(f.compression(), zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated) {
            continue;
        }
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .unwrap_or_else(|e| panic!("entry {i} of the unzip output does not read: {e}"));
    }
}

/// (name, content) of every entry of a zip, read by the `zip` crate; `None` when
/// some entry does not read.
fn zip_contents(zip: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut za = zip::ZipArchive::new(Cursor::new(zip)).ok()?;
    (0..za.len())
        .map(|i| {
            let mut f = za.by_index(i).ok()?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).ok()?;
            Some((f.name().to_string(), buf))
        })
        .collect()
}

/// (d): a tar.gz holds what the zip of the same entries holds.
fn run_tar(data: &[u8], empty: &Plan, tar: &Plan) {
    let Ok((tgz, _)) = rewrite(data, tar, MAX_TRANSFORM) else {
        return;
    };
    let Some(want) = rewrite(data, empty, MAX_TRANSFORM)
        .ok()
        .and_then(|(zip, _)| zip_contents(&zip))
    else {
        return;
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]));
    let records = archive
        .entries()
        .unwrap_or_else(|e| panic!("tar crate rejects the tar.gz: {e}"));
    let mut got = Vec::new();
    for r in records {
        let mut r = r.unwrap_or_else(|e| panic!("a tar record does not read: {e}"));
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)
            .unwrap_or_else(|e| panic!("a tar record's content does not read: {e}"));
        let path = r.path().unwrap().to_string_lossy().into_owned();
        let is_dir = r.header().entry_type() == tar::EntryType::Directory;
        let is_link = r.header().entry_type() == tar::EntryType::Symlink;
        if is_link {
            // A link's content in the zip is its target.
            buf = r.link_name_bytes().map(|l| l.to_vec()).unwrap_or_default();
        }
        got.push((path, buf, is_dir));
    }
    assert_eq!(got.len(), want.len(), "the tar.gz has as many entries as the zip");
    for ((gn, gd, dir), (wn, wd)) in got.iter().zip(&want) {
        assert_eq!(gn, wn);
        assert_eq!(*dir, wn.ends_with('/'), "{wn}: directory records");
        if !dir {
            assert!(gd == wd, "{wn}: same content");
        }
    }
}

fn dump_dir() -> Option<&'static str> {
    static DIR: OnceLock<Option<String>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var("ZIP_REWRITE_DUMP").ok())
        .as_deref()
}

fuzz_target!(|data: &[u8]| {
    let p = plans();
    run(data, &p.empty, false);
    run(data, &p.content, true);
    run_unzip(data, &p.unzip);
    run_tar(data, &p.empty, &p.tar);
});
