//! Entries transformed as they stream, written with a data descriptor, read back by
//! the independent `zip` crate; output equals the whole-entry transform.

use std::io::{Cursor, Read, Write};

use artifact_engine::plan::{JobContext, Plan, PlanSpec};
use artifact_engine::streamed::EntryStreamer;
use artifact_engine::zip::read::index_bytes;
use artifact_engine::zip::{EntryMeta, ZipWriter};

fn plan(json: &str) -> Plan {
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    Plan::compile(&PlanSpec::parse(Some(json)).unwrap(), &ctx).unwrap()
}

fn input(text: &[u8], deflate: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let m = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    w.start_file(
        "big.json",
        zip::write::SimpleFileOptions::default().compression_method(m),
    )
    .unwrap();
    w.write_all(text).unwrap();
    w.finish().unwrap().into_inner()
}

/// Streams entry 0 of `archive` through the plan's steps in `chunk`-byte pieces.
fn stream(archive: &[u8], plan: &Plan, chunk: usize) -> Result<Vec<u8>, String> {
    let (_, entries) = index_bytes(archive).unwrap();
    let e = &entries[0];
    let op = plan.output(0);
    let ep = op.decide(0, &e.name, false).unwrap().unwrap();
    let steps = op
        .stream_steps(&ep.ops, e.uncompressed_size)
        .expect("streamable");
    let data_start = e.header_offset as usize + 30 + e.raw_name.len();
    let data = &archive[data_start..data_start + e.compressed_size as usize];
    let mut s = EntryStreamer::new(e, &ep.name, steps, 6).map_err(|x| x.to_string())?;
    let mut w = ZipWriter::new();
    let mut out = Vec::new();
    let mut meta = EntryMeta::file(&ep.name, 8, 0, 0, e.uncompressed_size);
    meta.host = 3;
    out.extend_from_slice(&w.local_header_streamed(&meta).unwrap());
    for piece in data.chunks(chunk) {
        out.extend_from_slice(&s.push(piece).map_err(|x| x.to_string())?);
    }
    let (tail, done) = s.finish().map_err(|x| x.to_string())?;
    out.extend_from_slice(&tail);
    let d = w
        .end_streamed(done.crc32, done.compressed, done.uncompressed)
        .unwrap();
    out.extend_from_slice(&d);
    out.extend_from_slice(&w.finish(b"").unwrap());
    Ok(out)
}

fn read_back(zip_bytes: Vec<u8>) -> Vec<u8> {
    let mut a = zip::ZipArchive::new(Cursor::new(zip_bytes)).unwrap();
    let mut v = Vec::new();
    a.by_index(0).unwrap().read_to_end(&mut v).unwrap();
    v
}

#[test]
fn streamed_template_and_replace_match_the_whole_entry_result() {
    let text: Vec<u8> = (0..60_000)
        .flat_map(|i| format!("  \"k{i}\": \"img:${{VERSION}} env=dev\",\n").into_bytes())
        .collect();
    let p = plan(
        r#"{"variables":{"VERSION":"2.0"},"steps":[{"template":{"files":["*.json"]}},
            {"replace":{"files":["*.json"],"find":"env=dev","with":"env=production"}}]}"#,
    );
    let want = String::from_utf8(text.clone())
        .unwrap()
        .replace("${VERSION}", "2.0")
        .replace("env=dev", "env=production")
        .into_bytes();
    for deflate in [false, true] {
        let archive = input(&text, deflate);
        for chunk in [1, 7, 4096, 1 << 20] {
            if chunk == 1 && text.len() > 100_000 && deflate {
                continue; // byte-at-a-time through deflate is slow and adds nothing
            }
            let out = stream(&archive, &p, chunk).unwrap();
            assert!(read_back(out) == want, "deflate={deflate} chunk={chunk}");
        }
    }
}

#[test]
fn a_corrupt_input_or_an_undefined_variable_fails_the_stream() {
    let text = b"a ${VERSION} b ${MISSING} c".repeat(1000);
    let strict = plan(
        r#"{"variables":{"VERSION":"1"},"on_unknown_variable":"fail","steps":[{"template":{"files":["*.json"]}}]}"#,
    );
    let err = stream(&input(&text, true), &strict, 512).unwrap_err();
    assert!(err.contains("MISSING"), "{err}");
    let lenient = plan(
        r#"{"variables":{"VERSION":"1"},"steps":[{"template":{"files":["*.json"],"missing":"keep"}}]}"#,
    );
    let mut bad = input(&text, false);
    bad[30 + 8 + 500] ^= 1; // a byte of the stored data
    let err = stream(&bad, &lenient, 512).unwrap_err();
    assert!(err.contains("CRC-32"), "{err}");
}
