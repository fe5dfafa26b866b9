//! Per-entry processing, run on a rayon worker: raw pass-through (compressed bytes,
//! CRC and sizes copied unchanged) or decompress → CRC check → content steps →
//! recompress. Input is the entry's *region*: its bytes from the local header on.
//!
//! Limits: a transformed entry is held in memory whole (decompressed and
//! recompressed), so its declared size must not exceed `max_transform_size`;
//! inflation stops at the declared size (zip bombs cannot expand past it).
//!
//! Verification: unless the plan says `"verify": false`, a raw copy of a stored or
//! deflated entry is inflated into a counting CRC sink ([`verify_data`]; for large
//! streamed entries [`StreamHash::verifier`]) and must match its declared size and
//! CRC-32, so a corrupt input never leaves inside a "successful" output.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::{read::DeflateDecoder, write::DeflateEncoder, Compression};

use sha2::{Digest, Sha256};

use crate::plan::{EntryPlan, Export, Extra, OutputFormat, OutputPlan, TransformError};
use crate::zip::read::{check_local_header, CdEntry, METHOD_DEFLATED, METHOD_STORED};
use crate::zip::EntryMeta;
use crate::zip::ZipError;

/// One processed entry, ready for the writer.
#[derive(Debug, Clone)]
pub struct EntryOutput {
    /// Header fields for the output archive.
    pub meta: EntryMeta,
    /// Exactly `meta.compressed_size` bytes.
    pub data: Bytes,
    /// True when the compressed bytes were copied unchanged.
    pub raw: bool,
}

/// Why an entry could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Bad zip structure or data.
    #[error(transparent)]
    Zip(#[from] ZipError),
    /// A content step failed (e.g. undefined template variable).
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// The plan cannot run on this archive (e.g. a `merge` patch file it lacks).
    #[error(transparent)]
    Plan(#[from] crate::PlanError),
}

/// The output header fields for `e` written under `name`, data unchanged.
pub fn meta_for(e: &CdEntry, name: &str) -> EntryMeta {
    EntryMeta {
        name: name.to_string(),
        method: e.method,
        crc32: e.crc32,
        compressed_size: e.compressed_size,
        uncompressed_size: e.uncompressed_size,
        dos_time: e.dos_time,
        dos_date: e.dos_date,
        host: (e.version_made_by >> 8) as u8,
        min_version: match e.method {
            METHOD_STORED => 10,
            METHOD_DEFLATED => 20,
            _ => (e.version_needed & 0xFF).max(20),
        },
        external_attrs: e.external_attrs,
        internal_attrs: e.internal_attrs,
    }
}

/// Checks the local header at the start of `region` against `e` and returns the
/// length of the header; `region` must hold at least the header.
pub fn header_len(e: &CdEntry, region: &[u8]) -> Result<u64, ZipError> {
    match check_local_header(region, e)? {
        Some(h) if h.len <= region.len() as u64 => Ok(h.len),
        _ => Err(ZipError::Malformed(format!(
            "entry {:?}: local header runs past the space before the next entry",
            e.name
        ))),
    }
}

/// Slices the compressed data out of `region` after checking the local header.
pub fn compressed_data(e: &CdEntry, region: &Bytes) -> Result<Bytes, ZipError> {
    let start = header_len(e, region)?;
    let end = start + e.compressed_size;
    if end > region.len() as u64 {
        return Err(ZipError::Malformed(format!(
            "entry {:?}: {} compressed bytes at offset {} overlap the next entry or the \
             central directory",
            e.name,
            e.compressed_size,
            e.header_offset + start
        )));
    }
    Ok(region.slice(start as usize..end as usize))
}

/// A manifest line: path, uncompressed size, SHA-256 of the content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestRow {
    /// Path in the output.
    pub path: String,
    /// Uncompressed size.
    pub size: u64,
    /// Hex SHA-256 of the uncompressed content.
    pub sha256: String,
}

/// An entry after processing.
#[derive(Debug, Clone)]
pub struct Processed {
    /// What the writer writes.
    pub output: EntryOutput,
    /// Values exported by export steps.
    pub exports: Vec<Export>,
    /// The entry's manifest line, when the output has a manifest.
    pub manifest: Option<ManifestRow>,
}

const S_IFMT: u32 = 0o170000;

/// Header fields for `e` as planned (name, time, permissions), data unchanged.
pub fn planned_meta(e: &CdEntry, ep: &EntryPlan) -> EntryMeta {
    let mut meta = meta_for(e, &ep.name);
    if let Some((date, time)) = ep.mtime {
        meta.dos_date = date;
        meta.dos_time = time;
    }
    if let Some(mode) = ep.mode {
        let is_dir = ep.name.ends_with('/');
        // The file type (link, directory, file) is kept: a mode never turns a link
        // into a regular file. OS X hosts (19) carry a Unix mode too.
        let unix = e.unix_mode().unwrap_or(0);
        let kind = match unix & S_IFMT {
            0 if is_dir => 0o040000,
            0 => 0o100000,
            k => k,
        };
        meta.host = 3;
        meta.external_attrs = ((kind | mode) << 16) | if is_dir { 0x10 } else { 0 };
    }
    meta
}

/// Refuses, from its declared sizes, an entry too large to be held whole for a
/// content step (or recompression) within `max` bytes.
pub fn check_transform_size(e: &CdEntry, max: u64) -> Result<(), ZipError> {
    if e.uncompressed_size > max || e.compressed_size > max {
        return Err(ZipError::Limit(format!(
            "entry {:?} is {} bytes uncompressed; entries larger than {max} bytes cannot be \
             transformed, exported from or recompressed (raise the function memory or leave \
             the entry out of those steps)",
            e.name,
            e.uncompressed_size.max(e.compressed_size)
        )));
    }
    Ok(())
}

/// Processes one entry of an output according to its plan.
pub fn process_entry(
    e: &CdEntry,
    region: Bytes,
    op: &OutputPlan,
    ep: &EntryPlan,
    max_transform_size: u64,
) -> Result<Processed, EntryError> {
    let data = compressed_data(e, &region)?;
    let mut meta = planned_meta(e, ep);
    // A tar.gz output holds content, not zip data: deflated entries are inflated.
    let tar = op.format == OutputFormat::TarGz;
    let inflate_for_tar = tar && e.method != METHOD_STORED;
    if !ep.needs_content(e.method) && !inflate_for_tar {
        if ep.verify && matches!(e.method, METHOD_STORED | METHOD_DEFLATED) {
            verify_data(e, &data)?;
        }
        return Ok(Processed {
            output: EntryOutput {
                meta,
                data,
                raw: true,
            },
            exports: Vec::new(),
            manifest: None,
        });
    }
    check_transform_size(e, max_transform_size)?;
    let plain = decompress(e, &data)?;
    let (new, exports, unchanged) = if ep.ops.is_empty() {
        (plain, Vec::new(), true)
    } else {
        // No copy of the original is kept to compare with: the check re-reads the
        // compressed bytes, and only when size and CRC already match.
        let (new, exports) = op.apply(&ep.ops, &ep.name, plain)?;
        let same = same_content(e, &data, &new);
        (new, exports, same)
    };
    let manifest = ep.hash.then(|| ManifestRow {
        path: ep.name.clone(),
        size: new.len() as u64,
        sha256: hex::encode(Sha256::digest(&new)),
    });
    let can_keep = e.method == METHOD_STORED || e.method == METHOD_DEFLATED;
    let target = match ep.method {
        _ if tar => METHOD_STORED,
        Some(m) => m,
        None if can_keep => e.method,
        None => METHOD_DEFLATED,
    };
    if unchanged && target == e.method && (tar || ep.level.is_none()) {
        return Ok(Processed {
            output: EntryOutput {
                meta,
                data,
                raw: true,
            },
            exports,
            manifest,
        });
    }
    let crc = crc32fast::hash(&new);
    let body = if target == METHOD_STORED {
        new.clone()
    } else {
        deflate(&new, ep.level.unwrap_or(6))
    };
    meta.method = target;
    meta.min_version = if target == METHOD_STORED { 10 } else { 20 };
    meta.crc32 = crc;
    meta.compressed_size = body.len() as u64;
    meta.uncompressed_size = new.len() as u64;
    Ok(Processed {
        output: EntryOutput {
            meta,
            data: Bytes::from(body),
            raw: false,
        },
        exports,
        manifest,
    })
}

/// Hashes an entry from its compressed data fed in pieces (large entries that are
/// copied raw but listed in a manifest): inflates on the fly, checks size and CRC.
pub struct StreamHash {
    name: String,
    crc: u32,
    size: u64,
    inflate: Option<flate2::write::DeflateDecoder<HashSink>>,
    stored: Option<HashSink>,
}

/// Counts, CRCs and (optionally) hashes what is written to it; refuses more than
/// `limit` bytes.
pub struct HashSink {
    sha: Option<Sha256>,
    /// The inflated bytes, kept until taken, when the caller wants them.
    keep: Option<Vec<u8>>,
    crc: crc32fast::Hasher,
    n: u64,
    limit: u64,
}

impl Write for HashSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.n += b.len() as u64;
        if self.n > self.limit {
            return Err(std::io::Error::other("inflates beyond its declared size"));
        }
        if let Some(sha) = &mut self.sha {
            sha.update(b);
        }
        if let Some(keep) = &mut self.keep {
            keep.extend_from_slice(b);
        }
        self.crc.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl StreamHash {
    /// A hasher for `e` (stored or deflated) that also computes the SHA-256.
    pub fn new(e: &CdEntry) -> Result<Self, ZipError> {
        Self::with_sha(e, true)
    }

    /// A checker of `e`'s size and CRC-32 only.
    pub fn verifier(e: &CdEntry) -> Result<Self, ZipError> {
        Self::with_sha(e, false)
    }

    /// A checker of a deflated `e` that also hands out what it inflates
    /// ([`Self::take_inflated`]), and computes the SHA-256 when `sha`.
    pub fn inflater(e: &CdEntry, sha: bool) -> Result<Self, ZipError> {
        let mut s = Self::with_sha(e, sha)?;
        if let Some(d) = &mut s.inflate {
            d.get_mut().keep = Some(Vec::new());
        }
        Ok(s)
    }

    /// The bytes inflated since the last call (always empty for a stored entry or a
    /// checker made without [`Self::inflater`]).
    pub fn take_inflated(&mut self) -> Vec<u8> {
        self.inflate
            .as_mut()
            .and_then(|d| d.get_mut().keep.as_mut())
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn with_sha(e: &CdEntry, sha: bool) -> Result<Self, ZipError> {
        let sink = HashSink {
            sha: sha.then(Sha256::new),
            keep: None,
            crc: crc32fast::Hasher::new(),
            n: 0,
            limit: e.uncompressed_size,
        };
        let (inflate, stored) = match e.method {
            METHOD_STORED => (None, Some(sink)),
            METHOD_DEFLATED => (Some(flate2::write::DeflateDecoder::new(sink)), None),
            m => {
                return Err(ZipError::Unsupported(format!(
                    "entry {:?} uses compression method {m}; it cannot be hashed for the manifest",
                    e.name
                )))
            }
        };
        Ok(StreamHash {
            name: e.name.clone(),
            crc: e.crc32,
            size: e.uncompressed_size,
            inflate,
            stored,
        })
    }

    /// Feeds the next compressed bytes.
    pub fn update(&mut self, b: &[u8]) -> Result<(), ZipError> {
        let r = match (&mut self.inflate, &mut self.stored) {
            (Some(d), _) => d.write_all(b),
            (_, Some(s)) => s.write_all(b),
            _ => Ok(()),
        };
        r.map_err(|err| ZipError::Data {
            name: self.name.clone(),
            why: err.to_string(),
        })
    }

    /// Checks size and CRC; returns the hex SHA-256 (empty for a verifier).
    pub fn finish(self) -> Result<String, ZipError> {
        self.finish_inflated().map(|(sha, _)| sha)
    }

    /// Checks size and CRC; returns the hex SHA-256 (empty for a verifier) and the
    /// last inflated bytes not yet taken (see [`Self::inflater`]).
    pub fn finish_inflated(self) -> Result<(String, Vec<u8>), ZipError> {
        let mut sink = match (self.inflate, self.stored) {
            (Some(d), _) => d.finish().map_err(|err| ZipError::Data {
                name: self.name.clone(),
                why: format!("deflate stream: {err}"),
            })?,
            (_, Some(s)) => s,
            _ => unreachable!(),
        };
        let crc = sink.crc.clone().finalize();
        if sink.n != self.size || crc != self.crc {
            return Err(ZipError::Data {
                name: self.name,
                why: format!(
                    "inflates to {} bytes with CRC-32 {crc:08x}; the central directory says \
                     {} bytes with CRC-32 {:08x}",
                    sink.n, self.size, self.crc
                ),
            });
        }
        let rest = sink.keep.take().unwrap_or_default();
        let sha = sink
            .sha
            .map(|s| hex::encode(s.finalize()))
            .unwrap_or_default();
        Ok((sha, rest))
    }
}

/// Checks that a raw-copied entry's data inflates to its declared size and CRC-32,
/// without keeping the inflated bytes (inflation stops past the declared size).
pub fn verify_data(e: &CdEntry, data: &[u8]) -> Result<(), ZipError> {
    let mut v = StreamHash::verifier(e)?;
    v.update(data)?;
    v.finish().map(|_| ())
}

/// True when `new` is exactly the entry's original content: same size and CRC-32,
/// then confirmed byte for byte against the compressed data (re-inflated as a
/// stream, never held whole).
fn same_content(e: &CdEntry, data: &[u8], new: &[u8]) -> bool {
    if new.len() as u64 != e.uncompressed_size || crc32fast::hash(new) != e.crc32 {
        return false;
    }
    match e.method {
        METHOD_STORED => data == new,
        METHOD_DEFLATED => {
            let mut cmp = CompareSink { rest: new };
            let mut d = flate2::write::DeflateDecoder::new(&mut cmp);
            d.write_all(data).is_ok() && d.finish().is_ok() && cmp.rest.is_empty()
        }
        _ => false,
    }
}

/// Accepts exactly the bytes of `rest`, in order.
struct CompareSink<'a> {
    rest: &'a [u8],
}

impl Write for CompareSink<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self.rest.strip_prefix(b) {
            Some(r) => {
                self.rest = r;
                Ok(b.len())
            }
            None => Err(std::io::Error::other("content differs")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Entries declared up to this size are inflated in one call into a buffer of their
/// declared size (libdeflate: about 1.5x zlib-rs on whole text entries, see the
/// `deflate_backends` bench); larger ones stream through flate2, whose buffer grows
/// only with what the data really holds.
const WHOLE_INFLATE_MAX: u64 = 256 << 20;

/// Raw deflate `data` that must inflate to exactly `size` bytes (a longer stream is
/// cut at `size + 1` bytes for the caller's size check, a shorter one is returned
/// short).
fn inflate_whole(data: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; size];
    let mut d = libdeflater::Decompressor::new();
    match d.deflate_decompress(data, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Ok(out)
        }
        Err(libdeflater::DecompressionError::InsufficientSpace) => {
            // Longer than declared: report it as such.
            out.push(0);
            Ok(out)
        }
        Err(libdeflater::DecompressionError::BadData) => {
            Err("deflate stream: corrupt deflate stream".to_string())
        }
    }
}

/// Decompresses an entry's data, stopping at its declared size, and checks the CRC.
pub fn decompress(e: &CdEntry, data: &[u8]) -> Result<Vec<u8>, ZipError> {
    let corrupt = |why: String| ZipError::Data {
        name: e.name.clone(),
        why,
    };
    let out = match e.method {
        METHOD_STORED => data.to_vec(),
        METHOD_DEFLATED if e.uncompressed_size <= WHOLE_INFLATE_MAX => {
            inflate_whole(data, e.uncompressed_size as usize).map_err(corrupt)?
        }
        METHOD_DEFLATED => {
            let mut out = Vec::with_capacity(64 << 20);
            let mut dec = DeflateDecoder::new(data).take(e.uncompressed_size + 1);
            dec.read_to_end(&mut out)
                .map_err(|err| corrupt(format!("deflate stream: {err}")))?;
            out
        }
        m => {
            return Err(ZipError::Unsupported(format!(
                "entry {:?} uses compression method {m}; only stored (0) and deflate (8) \
                 entries can be transformed (others are copied unchanged)",
                e.name
            )))
        }
    };
    if out.len() as u64 != e.uncompressed_size {
        return Err(corrupt(format!(
            "inflates to {}{} bytes, central directory says {}",
            if out.len() as u64 > e.uncompressed_size {
                "more than "
            } else {
                ""
            },
            out.len().min(e.uncompressed_size as usize),
            e.uncompressed_size
        )));
    }
    let crc = crc32fast::hash(&out);
    if crc != e.crc32 {
        return Err(corrupt(format!(
            "CRC-32 is {crc:08x}, central directory says {:08x}",
            e.crc32
        )));
    }
    Ok(out)
}

/// Raw deflate at `level` (0-9).
pub fn deflate(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        Compression::new(level),
    );
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// The added files and manifests of an output, encoded in step order (deflate at
/// level 6, 1980-01-01, mode 0644, unless the output's `pack` steps or the `add`
/// step's own `mode` say otherwise); each manifest lists `rows` plus the files
/// added before it, and added files are appended to `rows`.
pub fn extras(op: &OutputPlan, rows: &mut Vec<ManifestRow>) -> Vec<(EntryMeta, Bytes)> {
    let mut out = Vec::new();
    for x in op.extras() {
        let (path, content) = match x {
            Extra::Add { path, data, .. } => (path, data.to_vec()),
            Extra::Manifest { path } => (path, manifest_json(rows)),
        };
        let own_mode = match x {
            Extra::Add { mode, .. } => mode,
            Extra::Manifest { .. } => None,
        };
        rows.push(ManifestRow {
            path: path.to_string(),
            size: content.len() as u64,
            sha256: hex::encode(Sha256::digest(&content)),
        });
        let packing = op.packing_of_added(path);
        let method = match packing.method {
            // A tar.gz output holds content; its gzip stream compresses it.
            _ if op.format == OutputFormat::TarGz => METHOD_STORED,
            Some(m) => m,
            None => METHOD_DEFLATED,
        };
        let body = match method {
            METHOD_STORED => content.clone(),
            _ => deflate(&content, packing.level.unwrap_or(6)),
        };
        let mut meta = EntryMeta::file(
            path,
            method,
            crc32fast::hash(&content),
            body.len() as u64,
            content.len() as u64,
        );
        if let Some((date, time)) = packing.mtime {
            (meta.dos_date, meta.dos_time) = (date, time);
        }
        let mode = own_mode.or(packing.mode).unwrap_or(0o644);
        meta.external_attrs = (0o100000 | mode) << 16;
        out.push((meta, Bytes::from(body)));
    }
    out
}

/// `{"entries": [{"path", "size", "sha256"}, ...]}`, one entry per line.
pub fn manifest_json(rows: &[ManifestRow]) -> Vec<u8> {
    let mut s = String::from("{\n  \"entries\": [");
    for (i, r) in rows.iter().enumerate() {
        s.push_str(if i == 0 { "\n    " } else { ",\n    " });
        let path = serde_json::to_string(&r.path).expect("strings serialise");
        s.push_str(&format!(
            "{{\"path\": {path}, \"size\": {}, \"sha256\": \"{}\"}}",
            r.size, r.sha256
        ));
    }
    s.push_str(if rows.is_empty() {
        "]\n}\n"
    } else {
        "\n  ]\n}\n"
    });
    s.into_bytes()
}
