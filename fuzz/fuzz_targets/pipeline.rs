//! The whole pipeline: fuzz bytes → a `UserParameters` plan + a zip archive →
//! `PlanSpec::parse` → `Plan::compile` (one input, one output) → `memory::rewrite`.
//!
//! The input is split in two: byte 0 is the length of the *plan section* that
//! follows; the rest is the *archive section*. Each section drives a small generator
//! (`arbitrary::Unstructured`), so most inputs are meaningful:
//! - the plan section picks step kinds, globs, variables, regexes, pointers... from
//!   dictionaries tuned to the archive generator's names and contents, so that most
//!   generated plans compile (rare choices produce known-invalid fragments on purpose);
//! - the archive section picks entries (names, contents, stored/deflated, levels,
//!   sometimes a wrong CRC or size, an unsupported method or an arbitrary name),
//!   written with the engine's own `ZipWriter`, and sometimes mutates the finished
//!   bytes (flips, truncations, insertions).
//!
//! Exhausted input makes every choice 0: the common, valid option.
//!
//! Must never panic. When the rewrite succeeds:
//! - the output indexes with the plan's name rules (`index_bytes_with` + `region_ends`)
//!   and every name passes `check_name`;
//! - its entries are exactly the planned layout (`layout_output`: names, order,
//!   dropped count) followed by the plan's added files and manifests;
//! - entries the plan leaves alone (`!EntryPlan::needs_content`) are raw copies: same
//!   method, CRC, sizes and compressed bytes as in the input;
//! - the independent `zip` crate reads every entry whose data is valid (everything the
//!   engine wrote, and raw copies of input entries that decode), with matching size
//!   and CRC, and the same bytes as the engine's own decompression;
//! - a second rewrite with the empty plan returns the same bytes.
//!
//! `PIPELINE_STATS=1` prints, at every power-of-two run count from 1024 on, how many
//! plans parsed, compiled and rewrote successfully.
#![no_main]

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use artifact_engine::entry::{compressed_data, decompress, deflate};
use artifact_engine::memory::rewrite;
use artifact_engine::names::check_name;
use artifact_engine::plan::{layout_output, Extra, JobContext, Plan, PlanSpec};
use artifact_engine::zip::read::{index_bytes_with, region_ends, CdEntry};
use artifact_engine::zip::{EntryMeta, ZipWriter};
use bytes::Bytes;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const MAX_TRANSFORM: u64 = 1 << 20;

// ---------------------------------------------------------------------------------
// Generator helpers: every choice is 0 once the input is exhausted.

struct G<'a>(Unstructured<'a>);

impl G<'_> {
    /// 0..n (n >= 1).
    fn n(&mut self, n: usize) -> usize {
        self.0.int_in_range(0..=n - 1).unwrap_or(0)
    }
    /// True with probability 1/k (never on exhausted input).
    fn rare(&mut self, k: usize) -> bool {
        self.n(k) == k - 1
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.n(xs.len())]
    }
    /// A short string straight from the input (often not UTF-8 → lossy).
    fn raw_str(&mut self, max: usize) -> String {
        let len = self.n(max + 1);
        let b = self.0.bytes(len).unwrap_or(&[]);
        String::from_utf8_lossy(b).into_owned()
    }
    fn raw_bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.n(max + 1);
        self.0.bytes(len).unwrap_or(&[]).to_vec()
    }
    fn u16(&mut self) -> u16 {
        self.0.arbitrary().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------
// Archive generator.

const NAMES: &[&str] = &[
    "config/app.json",
    "deploy/values.yml",
    "src/a.txt",
    "config/",
    "src/app.js.map",
    "bin/tool.sh",
    "README.md",
    "dist/index.html",
    "deploy/values.yaml",
    "src/",
    "dist/",
    "src/nested/deep.json",
    "VERSION",
    "readme.md",
    "manifest.json",
    "\u{fc}n\u{ef}/c\u{f3}de.txt",
    "a/b/c/d.txt",
    "extra.txt",
    "lib/a.txt",
    "site/x",
];

const JSON_DOC: &[u8] =
    br#"{"image": "${IMAGE}", "version": "${VERSION}", "nested": {"tag": "old", "list": [1, 2]}}"#;
const YAML_DOC: &[u8] =
    b"image:\n  tag: old # pinned\nlist:\n  - a\n  - b\nversion: '1.0'\nnested:\n  tag: \"x\"\n";
const TEXT_DOC: &[u8] = b"staging aaa ${JOB_ID} ${UNDEFINED} $${ESC} ${VERSION}\n";

fn content(g: &mut G) -> Vec<u8> {
    match g.n(10) {
        0 => JSON_DOC.to_vec(),
        1 => YAML_DOC.to_vec(),
        2 => TEXT_DOC.to_vec(),
        3 => b"#!/bin/sh\necho staging\n".to_vec(),
        4 => Vec::new(),
        5 => b"{}".to_vec(),
        6 => (0..=255u8).collect(),
        7 => b"a".repeat(64 << g.n(8)),
        8 => br#"{"version": "1.4.2", "list": [{"a": "${A}"}], "image": {"tag": "t"}}"#.to_vec(),
        _ => g.raw_bytes(64),
    }
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

fn archive(g: &mut G) -> Vec<u8> {
    let count = 1 + g.n(8);
    let mut w = ZipWriter::new();
    let mut out = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for _ in 0..count {
        let name = if g.rare(16) {
            g.raw_str(12)
        } else {
            g.pick(NAMES).to_string()
        };
        // Duplicate names are refused by the reader: keep them rare.
        if used.contains(&name) && !g.rare(16) {
            continue;
        }
        used.push(name.clone());
        let is_dir = name.ends_with('/');
        let data = if is_dir { Vec::new() } else { content(g) };
        let (method, body) = match g.n(16) {
            0..=8 => (8, deflate(&data, g.n(10) as u32)),
            9..=14 => (0, data.clone()),
            _ => (12, data.clone()), // unsupported: raw copies only
        };
        let mut crc = crc32(&data);
        let mut size = data.len() as u64;
        if g.rare(16) {
            crc ^= 1 + g.u16() as u32;
        }
        if g.rare(16) {
            size = size.wrapping_add(g.n(3) as u64).saturating_sub(1);
        }
        let mut meta = EntryMeta::file(&name, method, crc, body.len() as u64, size);
        if is_dir {
            meta.external_attrs = (0o40755 << 16) | 0x10;
        } else if g.rare(4) {
            meta.external_attrs = 0o100755 << 16;
        }
        meta.dos_date = g.u16();
        meta.dos_time = g.u16();
        // The writer refuses what it cannot write (bad names...): skip the entry.
        let Ok(h) = w.local_header(&meta) else {
            return finish(w, out);
        };
        out.extend_from_slice(&h);
        out.extend_from_slice(&body);
        if w.end_entry(body.len() as u64).is_err() {
            return out;
        }
    }
    let mut out = finish(w, out);
    // Sometimes damage the finished archive.
    if g.rare(6) {
        for _ in 0..1 + g.n(4) {
            if out.is_empty() {
                break;
            }
            let at = g.u16() as usize % out.len();
            match g.n(3) {
                0 => out[at] ^= 1 + g.n(255) as u8,
                1 => out.truncate(at),
                _ => {
                    let ins = g.raw_bytes(8);
                    out.splice(at..at, ins);
                }
            }
        }
    }
    out
}

fn finish(w: ZipWriter, mut out: Vec<u8>) -> Vec<u8> {
    if let Ok(tail) = w.finish(b"") {
        out.extend_from_slice(&tail);
    }
    out
}

// ---------------------------------------------------------------------------------
// Plan generator.

const GLOBS: &[&str] = &[
    "*",
    "*.json",
    "**/*.yml",
    "*.txt",
    "config/",
    "src/**",
    "**",
    "*.map",
    "!*.map",
    "/bin/*",
    "README.md",
    "dist/",
    "**/*.json",
    "deploy/values.yml",
    "*.sh",
    "*.yaml",
    "config/*",
    "VERSION",
];

const VAR_NAMES: &[&str] = &["VERSION", "IMAGE", "A", "TAG", "ENV"];

fn globs(g: &mut G) -> Value {
    if g.rare(32) {
        return json!([]); // invalid: needs at least one glob
    }
    if g.rare(32) {
        return json!(["a/[b"]); // invalid glob
    }
    let v: Vec<&str> = (0..1 + g.n(3)).map(|_| g.pick(GLOBS)).collect();
    json!(v)
}

fn opt(g: &mut G, m: &mut Map<String, Value>, key: &str, v: impl FnOnce(&mut G) -> Value) {
    if g.n(2) == 1 {
        let v = v(g);
        m.insert(key.into(), v);
    }
}

fn step(g: &mut G, index: usize) -> Value {
    match g.n(12) {
        0 | 1 => json!({ "template": { "files": globs(g) } }),
        2 | 3 => {
            let files = globs(g);
            if g.n(2) == 0 {
                let find = g.pick(&["staging", "a", "old", "${", "\n", "echo", "tag"]);
                let with = g.pick(&["prod", "bb", "", "new", "$1", "${VERSION}"]);
                json!({ "replace": { "files": files, "find": find, "with": with } })
            } else {
                let (re, with) = g.pick(&[
                    ("st(a+)ging", "prod$1"),
                    ("a+", "x"),
                    ("[0-9]+", "N"),
                    ("(?P<v>old)", "${v}2"),
                    ("^#!.*$", "$$"),
                    ("(?m)^version: .*$", "version: '2'"),
                    ("a*", "x"),   // invalid: matches the empty string
                    ("(a)", "$2"), // invalid: no group 2
                ]);
                json!({ "replace": { "files": files, "regex": re, "with": with } })
            }
        }
        4 => {
            let files = if g.n(2) == 0 {
                json!(["*.json"])
            } else {
                json!(["*.yml", "*.yaml"])
            };
            let pointer = g.pick(&[
                "/image",
                "/version",
                "/nested/tag",
                "/nested/list/0",
                "/image/tag",
                "/list/1",
                "/missing",
                "",
                "/list/-",
            ]);
            let value = match g.n(8) {
                0 => json!("${IMAGE}"),
                1 => json!(42),
                2 => json!(true),
                3 => json!(null),
                4 => json!({"a": 1}),
                5 => json!("new: value # not a comment"),
                6 => json!([1, 2]),
                _ => json!(g.raw_str(8)),
            };
            let mut m = Map::new();
            m.insert("files".into(), files);
            m.insert("pointer".into(), json!(pointer));
            m.insert("value".into(), value);
            if g.rare(4) {
                m.insert("format".into(), json!(g.pick(&["json", "yaml"])));
            }
            json!({ "set": m })
        }
        5 => {
            let mut m = Map::new();
            opt(g, &mut m, "files", globs);
            opt(g, &mut m, "strip_prefix", |g| {
                json!(g.pick(&["src/", "config/", "dist/", "deploy/"]))
            });
            if g.n(2) == 1 {
                let (re, to) = g.pick(&[
                    ("(.*)\\.txt", "$1.md"),
                    ("^src/(?P<rest>.*)$", "lib/${rest}"),
                    ("(.*)", "$1"),
                    ("([^/]+)$", "${1}_x"),
                    ("x(", "y"),       // invalid regex
                    ("(.*)", "../$1"), // produces an unsafe name
                ]);
                m.insert("regex".into(), json!(re));
                m.insert("to".into(), json!(to));
            }
            if g.rare(4) {
                m.insert("flatten".into(), json!(true));
            }
            opt(g, &mut m, "add_prefix", |g| {
                json!(g.pick(&["site/", "app/", "a/b/", "/abs/"]))
            });
            json!({ "move": m })
        }
        6 => {
            let sel = if g.n(3) == 2 {
                json!({ "files": globs(g), "inputs": ["SourceOut"] })
            } else {
                globs(g)
            };
            if g.n(3) == 0 {
                json!({ "include": sel })
            } else {
                json!({ "exclude": sel })
            }
        }
        7 => {
            let path = g.pick(&[
                "extra.txt",
                "config/new.json",
                "VERSION",
                "README.md",
                "site/x",
                "generated/build.txt",
            ]);
            let mut m = Map::new();
            m.insert("path".into(), json!(path));
            match g.n(4) {
                0 | 1 => m.insert("text".into(), json!("v=${VERSION} job=${JOB_ID}\n")),
                2 => m.insert("base64".into(), json!("AAECAwQ=")),
                _ => m.insert("text".into(), json!(g.raw_str(16))),
            };
            json!({ "add": m })
        }
        8 => {
            if g.n(2) == 0 {
                json!({ "manifest": {} })
            } else {
                let p = g.pick(&["build/manifest.json", "MANIFEST", "manifest.json"]);
                json!({ "manifest": { "path": p } })
            }
        }
        9 => {
            let mut m = Map::new();
            m.insert("variable".into(), json!(format!("V{index}")));
            m.insert("file".into(), json!(g.pick(NAMES)));
            match g.n(3) {
                0 => {
                    let p = g.pick(&["/version", "/image", "/nested/tag", "/image/tag"]);
                    m.insert("pointer".into(), json!(p));
                }
                1 => {
                    let r = g.pick(&["v=(\\S+)", "staging", "(a+)", "version: (.*)"]);
                    m.insert("regex".into(), json!(r));
                }
                _ => {}
            }
            if g.n(3) != 0 {
                m.insert("default".into(), json!("none"));
            }
            json!({ "export": m })
        }
        10 => {
            let mut m = Map::new();
            opt(g, &mut m, "files", globs);
            opt(g, &mut m, "compression", |g| {
                json!(g.pick(&["store", "deflate"]))
            });
            if g.rare(3) {
                m.insert("level".into(), json!(g.n(11)));
            }
            opt(g, &mut m, "mtime", |g| {
                json!(g.pick(&[
                    "1980-01-01T00:00:00",
                    "2024-06-15T12:30:00",
                    "2107-12-31T23:59:58",
                    "1979-12-31T00:00:00",
                ]))
            });
            opt(g, &mut m, "file_mode", |g| {
                json!(g.pick(&["644", "755", "600", "999"]))
            });
            opt(g, &mut m, "dir_mode", |g| json!(g.pick(&["755", "700"])));
            json!({ "pack": m })
        }
        _ => {
            if g.rare(4) {
                // No custom steps are registered: always a compile error.
                json!({ "custom": { "name": "nope", "files": ["*"] } })
            } else {
                json!({ "template": { "files": ["**"] } })
            }
        }
    }
}

fn plan_json(g: &mut G) -> String {
    if g.rare(64) {
        // Occasionally hand the raw section to the parser.
        return g.raw_str(64);
    }
    let mut doc = Map::new();
    let nvars = g.n(4);
    if nvars > 0 {
        let mut vars = Map::new();
        for _ in 0..nvars {
            let k = if g.rare(32) {
                "1X".to_string()
            } else {
                g.pick(VAR_NAMES).to_string()
            };
            let v = match g.n(8) {
                0 => "1.4.2".to_string(),
                1 => "repo/app:${VERSION}".to_string(),
                2 => "a".to_string(),
                3 => String::new(),
                4 => "${A}${A}".to_string(),
                5 => "$${X}".to_string(),
                6 => "prod".to_string(),
                _ => g.raw_str(8),
            };
            vars.insert(k, json!(v));
        }
        doc.insert("variables".into(), Value::Object(vars));
    }
    if g.rare(6) {
        doc.insert("on_unknown_variable".into(), json!("fail"));
    }
    let nsteps = g.n(5);
    let steps: Vec<Value> = (0..nsteps).map(|i| step(g, i)).collect();
    if !steps.is_empty() {
        doc.insert("steps".into(), json!(steps));
    }
    if g.rare(4) {
        let from = match g.n(4) {
            0 | 1 => json!(["SourceOut"]),
            2 => json!([{ "input": "SourceOut", "prefix": g.pick(&["app/", "a/b/", ""]) }]),
            _ => json!(["Nope"]),
        };
        let own: Vec<Value> = (0..g.n(3)).map(|i| step(g, 10 + i)).collect();
        let mut o = Map::new();
        o.insert("from".into(), from);
        if !own.is_empty() {
            o.insert("steps".into(), json!(own));
        }
        if g.n(2) == 1 {
            o.insert(
                "on_conflict".into(),
                json!(g.pick(&["first", "last", "error"])),
            );
        }
        doc.insert("outputs".into(), json!({ "BuildOut": o }));
    }
    if g.rare(4) {
        doc.insert("names".into(), json!({ "case_duplicates": "allow" }));
    }
    Value::Object(doc).to_string()
}

// ---------------------------------------------------------------------------------

struct Fixture {
    ctx: JobContext,
    /// The empty plan that accepts names differing only in case (for the fixed-point check).
    empty: Plan,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // One worker thread: deterministic, and gentle on a busy machine.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global();
        let ctx = JobContext {
            inputs: vec!["SourceOut".into()],
            outputs: vec!["BuildOut".into()],
            builtins: BTreeMap::from([
                (
                    "JOB_ID".into(),
                    "11111111-2222-3333-4444-555555555555".into(),
                ),
                ("ACCOUNT_ID".into(), "123456789012".into()),
            ]),
        };
        let spec = PlanSpec::parse(Some(r#"{"names":{"case_duplicates":"allow"}}"#)).unwrap();
        let empty = Plan::compile(&spec, &ctx).unwrap();
        Fixture { ctx, empty }
    })
}

static RUNS: AtomicU64 = AtomicU64::new(0);
static PARSED: AtomicU64 = AtomicU64::new(0);
static COMPILED: AtomicU64 = AtomicU64::new(0);
static INDEXED: AtomicU64 = AtomicU64::new(0);
static REWRITTEN: AtomicU64 = AtomicU64::new(0);

fn stats_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PIPELINE_STATS").is_some())
}

fn report(runs: u64) {
    if stats_enabled() && runs >= 1024 && runs.is_power_of_two() {
        let pct = |n: &AtomicU64| 100.0 * n.load(Relaxed) as f64 / runs as f64;
        eprintln!(
            "pipeline stats: runs {runs}, plan parsed {:.1}%, compiled {:.1}%, archive indexed {:.1}%, rewritten {:.1}%",
            pct(&PARSED),
            pct(&COMPILED),
            pct(&INDEXED),
            pct(&REWRITTEN)
        );
    }
}

fn print_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PIPELINE_PRINT").is_some())
}

fn region(archive: &[u8], e: &CdEntry, end: u64) -> Bytes {
    Bytes::copy_from_slice(&archive[e.header_offset as usize..end as usize])
}

/// The input entry decodes (the engine's decompression with its CRC check).
fn decodes(archive: &[u8], e: &CdEntry, end: u64) -> bool {
    (e.method == 0 || e.method == 8)
        && e.uncompressed_size <= MAX_TRANSFORM
        && compressed_data(e, &region(archive, e, end))
            .ok()
            .is_some_and(|d| decompress(e, &d).is_ok())
}

fn check(
    input: &[u8],
    plan: &Plan,
    plan_text: &str,
    out: &[u8],
    stats: &artifact_engine::memory::RewriteStats,
) {
    let rules = plan.name_rules();
    let op = plan.output(0);
    let (ieocd, ients) =
        index_bytes_with(input, &rules).expect("rewrite read an archive index_bytes_with rejects");
    let iends =
        region_ends(&ients, ieocd.cd_offset).expect("rewrite accepted regions region_ends rejects");
    let names: Vec<(&str, bool)> = ients
        .iter()
        .map(|e| (e.name.as_str(), e.is_dir()))
        .collect();
    let layout = layout_output(op, &[names]).expect("rewrite succeeded, so the layout does");
    let extras = op.extras();

    // (1) The engine reads its own output with the plan's rules.
    let (oeocd, oents) = index_bytes_with(out, &rules)
        .unwrap_or_else(|e| panic!("output does not index: {e}\nplan: {plan_text}"));
    let oends = region_ends(&oents, oeocd.cd_offset)
        .unwrap_or_else(|e| panic!("output regions: {e}\nplan: {plan_text}"));

    // (2) Exactly the planned layout, then the added files.
    assert_eq!(
        oents.len() as u64,
        stats.entries,
        "stats.entries\nplan: {plan_text}"
    );
    assert_eq!(
        stats.dropped, layout.dropped,
        "stats.dropped\nplan: {plan_text}"
    );
    assert_eq!(
        oents.len(),
        layout.entries.len() + extras.len(),
        "entry count\nplan: {plan_text}"
    );

    // (3) The zip crate reads it.
    let mut za = zip::ZipArchive::new(Cursor::new(out))
        .unwrap_or_else(|e| panic!("zip crate rejects the output: {e}\nplan: {plan_text}"));
    assert_eq!(za.len(), oents.len(), "zip crate entry count");

    let mut raw_expected = 0u64;
    for (k, (oe, &oend)) in oents.iter().zip(&oends).enumerate() {
        if let Err(why) = check_name(&oe.name) {
            panic!(
                "output name {:?} is unsafe: {why}\nplan: {plan_text}",
                oe.name
            );
        }
        let odata = compressed_data(oe, &region(out, oe, oend))
            .unwrap_or_else(|e| panic!("output entry #{k}: {e}"));
        let valid = if let Some(p) = layout.entries.get(k) {
            assert_eq!(
                oe.name, p.plan.name,
                "output entry #{k} name\nplan: {plan_text}"
            );
            let ie = &ients[p.entry];
            if p.plan.needs_content(ie.method) {
                true // decompressed and CRC-checked on the way in
            } else {
                raw_expected += 1;
                assert!(
                    oe.method == ie.method
                        && oe.crc32 == ie.crc32
                        && oe.compressed_size == ie.compressed_size
                        && oe.uncompressed_size == ie.uncompressed_size,
                    "untouched entry #{k} {:?} not copied raw: {ie:?} -> {oe:?}\nplan: {plan_text}",
                    ie.name
                );
                let idata = compressed_data(ie, &region(input, ie, iends[p.entry])).unwrap();
                assert!(
                    idata == odata,
                    "untouched entry #{k} {:?}: bytes changed\nplan: {plan_text}",
                    ie.name
                );
                decodes(input, ie, iends[p.entry])
            }
        } else {
            let x = &extras[k - layout.entries.len()];
            let path = match x {
                Extra::Add { path, .. } | Extra::Manifest { path } => *path,
            };
            assert_eq!(oe.name, path, "added entry #{k}\nplan: {plan_text}");
            true
        };
        {
            let zf = za
                .by_index_raw(k)
                .unwrap_or_else(|e| panic!("zip crate: entry #{k}: {e}"));
            assert_eq!(zf.name_raw(), oe.raw_name.as_slice(), "zip crate name #{k}");
            assert_eq!(zf.crc32(), oe.crc32, "zip crate CRC #{k}");
            assert_eq!(
                zf.compressed_size(),
                oe.compressed_size,
                "zip crate csize #{k}"
            );
            assert_eq!(zf.size(), oe.uncompressed_size, "zip crate size #{k}");
        }
        if !valid {
            continue;
        }
        assert!(
            oe.method == 0 || oe.method == 8,
            "entry #{k} {:?}: valid data with method {}",
            oe.name,
            oe.method
        );
        let plain = decompress(oe, &odata).unwrap_or_else(|e| {
            panic!(
                "engine cannot decode its own output entry #{k} {:?}: {e}\nplan: {plan_text}",
                oe.name
            )
        });
        let mut zf = za
            .by_index(k)
            .unwrap_or_else(|e| panic!("zip crate cannot open entry #{k} {:?}: {e}", oe.name));
        let mut buf = Vec::with_capacity(plain.len());
        (&mut zf)
            .take(MAX_TRANSFORM * 4 + 1)
            .read_to_end(&mut buf)
            .unwrap_or_else(|e| {
                panic!(
                    "zip crate cannot read entry #{k} {:?}: {e}\nplan: {plan_text}",
                    oe.name
                )
            });
        assert!(
            buf == plain,
            "zip crate and engine disagree on entry #{k} {:?}",
            oe.name
        );
        assert_eq!(crc32(&buf), oe.crc32, "entry #{k} {:?}: CRC", oe.name);
    }
    assert!(
        stats.raw >= raw_expected,
        "stats.raw {} < untouched entries {raw_expected}",
        stats.raw
    );

    // (4) The output is a fixed point of the empty plan. Entries transformed as they
    // streamed carry a data descriptor, which a raw copy re-writes with sizes in the
    // local header: then the second rewrite is the fixed point.
    let (again, _) = rewrite(out, &fixture().empty, MAX_TRANSFORM)
        .unwrap_or_else(|e| panic!("rewriting the output again fails: {e}\nplan: {plan_text}"));
    let streamed = oents.iter().any(|e| e.has_data_descriptor());
    let fixed = if streamed {
        rewrite(&again, &fixture().empty, MAX_TRANSFORM)
            .unwrap_or_else(|e| panic!("rewriting twice fails: {e}\nplan: {plan_text}"))
            .0
    } else {
        out.to_vec()
    };
    let compare = if streamed { &again[..] } else { out };
    assert!(
        fixed == compare,
        "rewrite is not idempotent on its own output\nplan: {plan_text}"
    );
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let runs = RUNS.fetch_add(1, Relaxed) + 1;
    report(runs);

    let (plan_part, zip_part) = match data.split_first() {
        Some((&n, rest)) => rest.split_at((n as usize).min(rest.len())),
        None => (&[][..], &[][..]),
    };
    let plan_text = plan_json(&mut G(Unstructured::new(plan_part)));
    let input = archive(&mut G(Unstructured::new(zip_part)));

    // Debugging aid: `PIPELINE_PRINT=1 cargo fuzz run pipeline <input>` shows the plan,
    // the archive size and each stage's error.
    let print = print_enabled();
    if print {
        eprintln!("plan: {plan_text}");
        eprintln!("archive: {} bytes", input.len());
    }

    let spec = match PlanSpec::parse(Some(&plan_text)) {
        Ok(s) => s,
        Err(e) => {
            if print {
                eprintln!("parse error: {e}");
            }
            return;
        }
    };
    PARSED.fetch_add(1, Relaxed);
    let plan = match Plan::compile(&spec, &f.ctx) {
        Ok(p) => p,
        Err(e) => {
            if print {
                eprintln!("compile error: {e}");
            }
            return;
        }
    };
    COMPILED.fetch_add(1, Relaxed);
    if index_bytes_with(&input, &plan.name_rules()).is_ok() {
        INDEXED.fetch_add(1, Relaxed);
    }
    // One run in four uses a tiny whole-entry limit, so that `template` and literal
    // `replace` stream (and other steps are refused) as they would for huge entries.
    let limit = if data.last().is_some_and(|b| b % 4 == 0) {
        64
    } else {
        MAX_TRANSFORM
    };
    match rewrite(&input, &plan, limit) {
        Ok((out, stats)) => {
            REWRITTEN.fetch_add(1, Relaxed);
            if print {
                eprintln!(
                    "rewritten: {} entries ({} raw, {} dropped), {} bytes",
                    stats.entries,
                    stats.raw,
                    stats.dropped,
                    out.len()
                );
            }
            check(&input, &plan, &plan_text, &out, &stats);
        }
        Err(e) if print => eprintln!("rewrite error: {e}"),
        Err(_) => {}
    }
});
