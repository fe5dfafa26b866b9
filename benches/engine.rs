//! In-memory engine throughput: `artifact_engine::memory::rewrite_bytes` over a
//! deterministically generated archive (no S3, no I/O), so the numbers are the CPU
//! cost of the zip work alone. The archive is handed over as `Bytes`, as the worker
//! holds what it reads, so no run copies the input first.
//!
//! Input (built once with the `zip` crate, same seed every run): 2,000 entries,
//! ~40 MB — 25% text (`.json`/`.yml` = 15% of all entries, each holding `${VERSION}`;
//! `.js`/`.md` = 10%), 5% `.map`, 70% incompressible binary (half stored, half
//! deflated).
//!
//! Groups (throughput = input archive bytes, so criterion prints MB/s):
//! - `pass_through`: empty plan, every entry copied raw.
//! - `recompress_all`: a `replace` on every entry whose `find` occurs in all of them,
//!   so every entry is inflated, CRC-checked, changed and re-deflated (stored entries
//!   stay stored); on the global pool and inside rayon pools of 1 and 2 threads
//!   (scaling needs idle cores: anything else running on the machine hides it).
//! - `text_substitution`: `${VERSION}` in `*.json`/`*.yml` (~15% of entries), `*.map`
//!   excluded; everything else raw — the common CodePipeline case.
//! - `deflate_backends`: whole-buffer raw deflate of the text mix (600 files, 2-28 KiB,
//!   json/yml/js/md), flate2 on zlib-rs against libdeflate (`libdeflater`), compress
//!   at levels 1, 6 and 9 and decompress; throughput = uncompressed bytes. The
//!   compressed sizes of each are printed first.
//!
//! Run: `cargo bench --bench engine` (a few minutes; `-- <filter>` to pick groups).

use std::io::{Cursor, Write};
use std::time::Duration;

use artifact_engine::memory::rewrite_bytes;
use artifact_engine::plan::{JobContext, Plan, PlanSpec};
use bytes::Bytes;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime};

const ENTRIES: usize = 2_000;
const SEED: u64 = 0x5eed_a27f_ac75_0001;
const MAX_TRANSFORM: u64 = 64 << 20;

/// splitmix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "service", "orders", "deploy", "region", "image", "handler", "timeout", "memory", "queue",
    "bucket", "release", "stage", "artifact", "pipeline", "config", "build", "runtime", "version",
    "lambda", "template", "output", "input", "cache", "policy",
];

/// Compressible text with `${VERSION}` in it, shaped by extension.
fn text(rng: &mut Rng, ext: &str, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 128);
    let mut line = 0usize;
    while s.len() < len {
        let (a, b) = (
            WORDS[rng.range(0, WORDS.len())],
            WORDS[rng.range(0, WORDS.len())],
        );
        match ext {
            "json" => s.push_str(&format!(
                "  \"{a}_{line}\": {{\"{b}\": \"{a}-{b}-{}\", \"version\": \"${{VERSION}}\"}},\n",
                rng.range(0, 10_000)
            )),
            "yml" => s.push_str(&format!(
                "{a}_{line}:\n  {b}: {a}-{}\n  image_tag: ${{VERSION}}\n",
                rng.range(0, 10_000)
            )),
            "js" => s.push_str(&format!(
                "export const {a}{line} = ({b}) => {b}.{a}({}); // ${{VERSION}}\n",
                rng.range(0, 10_000)
            )),
            _ => s.push_str(&format!(
                "The {a} {b} ({}) ships in release ${{VERSION}}.\n",
                rng.range(0, 10_000)
            )),
        }
        line += 1;
    }
    s.into_bytes()
}

/// A source map: one long line of VLQ-like mappings (compresses moderately).
fn source_map(rng: &mut Rng, len: usize) -> Vec<u8> {
    const VLQ: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut v = br#"{"version":3,"sources":["src/app.ts"],"mappings":""#.to_vec();
    while v.len() < len {
        for _ in 0..rng.range(2, 7) {
            v.push(VLQ[rng.range(0, 24)]);
        }
        v.push(if rng.range(0, 8) == 0 { b';' } else { b',' });
    }
    v.extend_from_slice(b"\"}\n");
    v
}

struct Input {
    zip: Vec<u8>,
    text: usize,
    maps: usize,
    binary_stored: usize,
    binary_deflated: usize,
}

/// Builds the benchmark archive; the same bytes on every run.
fn build_input() -> Input {
    let mut rng = Rng(SEED);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let ts = DateTime::from_date_and_time(2024, 5, 17, 12, 0, 0).expect("valid timestamp");
    let (mut text_n, mut maps, mut stored, mut deflated) = (0, 0, 0, 0);
    for i in 0..ENTRIES {
        // Per 20 entries: 2 json + 1 yml (15%), 1 js + 1 md (10%), 1 map (5%),
        // 14 binaries (70%), every other one stored.
        let (ext, data, method) = match i % 20 {
            k @ 0..=4 => {
                let ext = ["json", "yml", "json", "js", "md"][k];
                let len = rng.range(2 << 10, 14 << 10);
                text_n += 1;
                (ext, text(&mut rng, ext, len), CompressionMethod::Deflated)
            }
            5 => {
                let len = rng.range(8 << 10, 24 << 10);
                maps += 1;
                (
                    "js.map",
                    source_map(&mut rng, len),
                    CompressionMethod::Deflated,
                )
            }
            k => {
                let mut b = vec![0u8; rng.range(4 << 10, 52 << 10)];
                rng.fill(&mut b);
                let m = if k % 2 == 0 {
                    stored += 1;
                    CompressionMethod::Stored
                } else {
                    deflated += 1;
                    CompressionMethod::Deflated
                };
                (["png", "bin", "woff2", "jar"][k % 4], b, m)
            }
        };
        let name = format!("pkg{:02}/mod{}/file{i:05}.{ext}", i / 100, i % 7);
        let opts = SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(ts)
            .unix_permissions(0o644);
        w.start_file(name, opts).expect("start_file");
        w.write_all(&data).expect("write entry");
    }
    Input {
        zip: w.finish().expect("finish zip").into_inner(),
        text: text_n,
        maps,
        binary_stored: stored,
        binary_deflated: deflated,
    }
}

fn plan(json: &str) -> Plan {
    let ctx = JobContext {
        inputs: vec!["SourceArtifact".into()],
        outputs: vec!["BuildArtifact".into()],
        builtins: Default::default(),
    };
    let spec = PlanSpec::parse(Some(json)).expect("valid UserParameters");
    Plan::compile(&spec, &ctx).expect("plan compiles")
}

const RECOMPRESS_ALL: &str = r#"{"steps":[{"replace":{"files":["**"],"find":"e","with":"E"}}]}"#;
const TEXT_SUBSTITUTION: &str = r#"{"variables":{"VERSION":"1.2.3"},"steps":[{"exclude":["*.map"]},{"template":{"files":["**/*.json","**/*.yml"]}}]}"#;

/// Small, flat samples: one iteration of `recompress_all` takes ~0.5 s on 2 vCPUs.
fn configure<M: criterion::measurement::Measurement>(
    g: &mut criterion::BenchmarkGroup<'_, M>,
    input_len: usize,
    seconds: u64,
) {
    g.throughput(Throughput::Bytes(input_len as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds));
}

fn engine(c: &mut Criterion) {
    let input = build_input();
    let zip = &input.zip;
    // Handed over as `Bytes`, as the worker holds what it reads: no input copy.
    let owned = Bytes::from(zip.clone());
    let rewrite = |_: &Vec<u8>, plan: &Plan, max: u64| rewrite_bytes(owned.clone(), plan, max);
    eprintln!(
        "engine bench input: {} entries, {:.1} MB ({} text, {} map, {} binary stored, {} binary deflated)",
        ENTRIES,
        zip.len() as f64 / 1e6,
        input.text,
        input.maps,
        input.binary_stored,
        input.binary_deflated,
    );

    let empty = plan("");
    let all = plan(RECOMPRESS_ALL);
    let subst = plan(TEXT_SUBSTITUTION);

    // Check each plan does what its name says before timing it.
    let (_, s) = rewrite(zip, &empty, MAX_TRANSFORM).expect("pass-through rewrite");
    assert_eq!((s.entries, s.raw), (ENTRIES as u64, ENTRIES as u64));
    let (_, s) = rewrite(zip, &all, MAX_TRANSFORM).expect("recompress rewrite");
    assert_eq!(
        (s.entries, s.raw),
        (ENTRIES as u64, 0),
        "every entry must be rewritten"
    );
    let (_, s) = rewrite(zip, &subst, MAX_TRANSFORM).expect("substitution rewrite");
    assert_eq!(s.dropped as usize, input.maps);
    assert_eq!(
        (s.entries - s.raw) as usize,
        ENTRIES * 3 / 20,
        "json + yml entries are rewritten"
    );

    let mut g = c.benchmark_group("pass_through");
    configure(&mut g, zip.len(), 3);
    g.bench_function("empty_plan", |b| {
        b.iter(|| rewrite(zip, &empty, MAX_TRANSFORM).expect("rewrite"))
    });
    g.finish();

    let mut g = c.benchmark_group("recompress_all");
    configure(&mut g, zip.len(), 8);
    g.bench_function("global_pool", |b| {
        b.iter(|| rewrite(zip, &all, MAX_TRANSFORM).expect("rewrite"))
    });
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("rayon pool");
        g.bench_with_input(BenchmarkId::new("threads", threads), &pool, |b, pool| {
            b.iter(|| pool.install(|| rewrite(zip, &all, MAX_TRANSFORM).expect("rewrite")))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("text_substitution");
    configure(&mut g, zip.len(), 3);
    g.bench_function("version_json_yml", |b| {
        b.iter(|| rewrite(zip, &subst, MAX_TRANSFORM).expect("rewrite"))
    });
    g.finish();
}

/// The text mix for `deflate_backends`: 600 files of 2-28 KiB.
fn text_mix() -> Vec<Vec<u8>> {
    let mut rng = Rng(SEED ^ 0xdef1a7e);
    (0..600)
        .map(|i| {
            let len = rng.range(2 << 10, 28 << 10);
            text(&mut rng, ["json", "yml", "js", "md"][i % 4], len)
        })
        .collect()
}

fn flate2_compress(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(data).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}

fn flate2_decompress(data: &[u8], size: usize) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::with_capacity(size);
    flate2::read::DeflateDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid deflate");
    out
}

fn libdeflate_compress(c: &mut libdeflater::Compressor, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; c.deflate_compress_bound(data.len())];
    let n = c.deflate_compress(data, &mut out).expect("bound is enough");
    out.truncate(n);
    out
}

fn libdeflate_decompress(d: &mut libdeflater::Decompressor, data: &[u8], size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    let n = d.deflate_decompress(data, &mut out).expect("valid deflate");
    assert_eq!(n, size);
    out
}

fn deflate_backends(c: &mut Criterion) {
    let files = text_mix();
    let total: usize = files.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("deflate_backends");
    configure(&mut g, total, 3);
    for level in [1u32, 6, 9] {
        let mut comp = libdeflater::Compressor::new(
            libdeflater::CompressionLvl::new(level as i32).expect("level 1-12"),
        );
        let zlib: usize = files.iter().map(|f| flate2_compress(f, level).len()).sum();
        let libd: usize = files
            .iter()
            .map(|f| libdeflate_compress(&mut comp, f).len())
            .sum();
        eprintln!(
            "deflate level {level}: {:.1} MB text -> zlib-rs {:.3} MB ({:.2}%), libdeflate {:.3} MB ({:.2}%)",
            total as f64 / 1e6,
            zlib as f64 / 1e6,
            100.0 * zlib as f64 / total as f64,
            libd as f64 / 1e6,
            100.0 * libd as f64 / total as f64,
        );
        g.bench_function(BenchmarkId::new("compress_zlib_rs", level), |b| {
            b.iter(|| {
                files
                    .iter()
                    .map(|f| flate2_compress(f, level).len())
                    .sum::<usize>()
            })
        });
        g.bench_function(BenchmarkId::new("compress_libdeflate", level), |b| {
            b.iter(|| {
                files
                    .iter()
                    .map(|f| libdeflate_compress(&mut comp, f).len())
                    .sum::<usize>()
            })
        });
    }
    let packed: Vec<(Vec<u8>, usize)> = files
        .iter()
        .map(|f| (flate2_compress(f, 6), f.len()))
        .collect();
    let mut dec = libdeflater::Decompressor::new();
    for (p, n) in &packed {
        assert_eq!(
            flate2_decompress(p, *n),
            libdeflate_decompress(&mut dec, p, *n)
        );
    }
    g.bench_function("decompress_zlib_rs", |b| {
        b.iter(|| {
            packed
                .iter()
                .map(|(p, n)| flate2_decompress(p, *n).len())
                .sum::<usize>()
        })
    });
    g.bench_function("decompress_libdeflate", |b| {
        b.iter(|| {
            packed
                .iter()
                .map(|(p, n)| libdeflate_decompress(&mut dec, p, *n).len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, engine, deflate_backends);
criterion_main!(benches);
