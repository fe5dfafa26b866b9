//! Arbitrary UTF-8 → `PlanSpec::parse` → `Plan::compile` against fixed job contexts.
//! Never panics; every error names the offending field (non-empty `path`) and says
//! something (non-empty `message`).
//!
//! A plan that compiles for the one-input/one-output job is then run: `memory::rewrite`
//! over a small fixed archive (JSON, YAML, text, a directory, stored and deflated
//! entries), 1 MiB transform limit. Errors are fine (undefined variables, missing
//! keys...); panics are not, and a successful output must index cleanly (no duplicate
//! or unsafe names, whatever the plan renamed or added).
//!
//! Only the engine's stable surface is used (`PlanSpec::parse`, `Plan::compile`,
//! `PlanError`, `JobContext`, `memory::rewrite`, `ZipWriter`, `index_bytes_with`,
//! `Plan::name_rules`).
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use artifact_engine::entry::deflate;
use artifact_engine::memory::rewrite;
use artifact_engine::plan::{JobContext, Plan, PlanError, PlanSpec};
use artifact_engine::zip::read::{index_bytes_with, region_ends, validate_name};
use artifact_engine::zip::{EntryMeta, ZipWriter};
use libfuzzer_sys::fuzz_target;

fn ctx(i: &[&str], o: &[&str]) -> JobContext {
    JobContext {
        inputs: i.iter().map(|s| s.to_string()).collect(),
        outputs: o.iter().map(|s| s.to_string()).collect(),
        builtins: BTreeMap::from([
            (
                "JOB_ID".into(),
                "11111111-2222-3333-4444-555555555555".into(),
            ),
            ("ACCOUNT_ID".into(), "123456789012".into()),
        ]),
    }
}

struct Fixture {
    /// One input, one output: the plan is also run over `archive`.
    single: JobContext,
    /// Two inputs, two outputs: compile only (routing and its errors).
    double: JobContext,
    archive: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global();
        Fixture {
            single: ctx(&["SourceOut"], &["BuildOut"]),
            double: ctx(&["SourceOut", "Extra"], &["BuildOut", "Other"]),
            archive: archive(),
        }
    })
}

fn archive() -> Vec<u8> {
    let files: &[(&str, &[u8], bool)] = &[
        ("config/", b"", false),
        (
            "config/app.json",
            br#"{"image": "${IMAGE}", "version": "${VERSION}", "nested": {"tag": "old", "list": [1, 2]}}"#,
            true,
        ),
        ("deploy/values.yml", b"image:\n  tag: old # pinned\nlist:\n  - a\n  - b\n", false),
        ("src/a.txt", b"staging aaa ${JOB_ID} ${UNDEFINED} $${ESC}\n", true),
        ("src/app.js.map", b"{}", false),
        ("bin/tool.sh", b"#!/bin/sh\necho staging\n", false),
        ("\u{fc}n\u{ef}/c\u{f3}de.txt", b"unicode name\n", true),
    ];
    let mut w = ZipWriter::new();
    let mut out = Vec::new();
    for &(name, data, deflated) in files {
        let body = if deflated {
            deflate(data, 6)
        } else {
            data.to_vec()
        };
        let mut meta = EntryMeta::file(
            name,
            if deflated { 8 } else { 0 },
            crc32(data),
            body.len() as u64,
            data.len() as u64,
        );
        if name.ends_with('/') {
            meta.external_attrs = (0o40755 << 16) | 0x10;
        }
        out.extend_from_slice(&w.local_header(&meta).unwrap());
        out.extend_from_slice(&body);
        w.end_entry(body.len() as u64).unwrap();
    }
    out.extend_from_slice(&w.finish(b"").unwrap());
    out
}

fn crc32(b: &[u8]) -> u32 {
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

fn check_err(e: &PlanError) {
    assert!(!e.path.is_empty(), "PlanError without a path: {e:?}");
    assert!(!e.message.is_empty(), "PlanError without a message: {e:?}");
    let _ = e.to_string();
}

fn compile(spec: &PlanSpec, ctx: &JobContext) -> Option<Plan> {
    match Plan::compile(spec, ctx) {
        Ok(p) => Some(p),
        Err(e) => {
            check_err(&e);
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let spec = match PlanSpec::parse(Some(text)) {
        Ok(s) => s,
        Err(e) => return check_err(&e),
    };
    let f = fixture();
    let _ = compile(&spec, &f.double);
    let Some(plan) = compile(&spec, &f.single) else {
        return;
    };
    if let Ok((out, _stats)) = rewrite(&f.archive, &plan, 1 << 20) {
        let (eocd, entries) = index_bytes_with(&out, &plan.name_rules())
            .unwrap_or_else(|e| panic!("plan output does not index: {e}\nplan: {text}"));
        region_ends(&entries, eocd.cd_offset)
            .unwrap_or_else(|e| panic!("plan output has overlapping entries: {e}\nplan: {text}"));
        for e in &entries {
            assert!(
                validate_name(&e.name).is_ok(),
                "unsafe output name {:?}",
                e.name
            );
        }
    }
});
