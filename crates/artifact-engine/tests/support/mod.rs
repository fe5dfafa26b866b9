//! Helpers for the plan tests that run archives through `memory::rewrite`: stored
//! zips from (name, text) pairs, plans compiled for one input `In` and one output
//! `Out`, and the output read back as (name, text) — or, with the independent `zip`
//! crate, as (name, bytes).
#![allow(dead_code)]

use artifact_engine::entry::{decompress, EntryError};
use artifact_engine::memory::rewrite;
use artifact_engine::plan::{JobContext, Plan, PlanSpec};
use artifact_engine::zip::read::{index_bytes, METHOD_STORED};
use artifact_engine::zip::{EntryMeta, ZipWriter};
use artifact_engine::PlanError;

pub fn make_zip(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut w = ZipWriter::new();
    let mut out = Vec::new();
    for (name, data) in entries {
        let d = data.as_bytes();
        let meta = EntryMeta::file(
            *name,
            METHOD_STORED,
            crc32fast::hash(d),
            d.len() as u64,
            d.len() as u64,
        );
        out.extend_from_slice(&w.local_header(&meta).unwrap());
        out.extend_from_slice(d);
        w.end_entry(d.len() as u64).unwrap();
    }
    out.extend_from_slice(&w.finish(b"").unwrap());
    out
}

pub fn compile(json: &str) -> Result<Plan, PlanError> {
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    Plan::compile(&PlanSpec::parse(Some(json)).unwrap(), &ctx)
}

/// (name, text) of every output entry.
pub fn run(entries: &[(&str, &str)], json: &str) -> Result<Vec<(String, String)>, EntryError> {
    let (out, _) = rewrite(&make_zip(entries), &compile(json).unwrap(), 1 << 20)?;
    let (_, cd) = index_bytes(&out).unwrap();
    Ok(cd
        .into_iter()
        .map(|c| {
            let at = c.header_offset as usize + 30 + c.name.len();
            let data = decompress(&c, &out[at..at + c.compressed_size as usize]).unwrap();
            (c.name.clone(), String::from_utf8_lossy(&data).into_owned())
        })
        .collect())
}

pub fn text_of(got: &[(String, String)], name: &str) -> String {
    got.iter().find(|(n, _)| n == name).unwrap().1.clone()
}

/// Every entry of `bytes` as the `zip` crate reads it: (name, data), in order.
pub fn read_with_zip_crate(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..a.len())
        .map(|i| {
            let mut f = a.by_index(i).unwrap();
            let mut v = Vec::new();
            f.read_to_end(&mut v).unwrap();
            (f.name().to_string(), v)
        })
        .collect()
}
