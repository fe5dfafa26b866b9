//! Per-entry processing, run on a rayon worker: raw pass-through (compressed bytes,
//! CRC and sizes copied unchanged) or decompress → CRC check → content steps →
//! recompress. Input is the entry's *region*: its bytes from the local header on.
//!
//! Limits: a transformed entry is held in memory whole (decompressed and
//! recompressed), so its declared size must not exceed `max_transform_size`;
//! inflation stops at the declared size (zip bombs cannot expand past it).

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::{read::DeflateDecoder, write::DeflateEncoder, Compression};

use crate::plan::{Decision, Plan, TransformError};
use crate::zip::read::{check_local_header, CdEntry, METHOD_DEFLATED, METHOD_STORED};
use crate::zip::EntryMeta;
use crate::ZipError;

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

/// Processes one entry according to `decision` (which must not be `Drop`).
pub fn process_entry(
    e: &CdEntry,
    out_name: &str,
    region: Bytes,
    plan: &Plan,
    decision: &Decision,
    max_transform_size: u64,
) -> Result<EntryOutput, EntryError> {
    let data = compressed_data(e, &region)?;
    let ops = match decision {
        Decision::Transform(ops) if !ops.is_empty() => ops,
        _ => {
            return Ok(EntryOutput {
                meta: meta_for(e, out_name),
                data,
                raw: true,
            })
        }
    };
    if e.uncompressed_size > max_transform_size {
        return Err(ZipError::Limit(format!(
            "entry {:?} is {} bytes uncompressed; entries larger than {} bytes cannot be \
             transformed (raise the limit or exclude the entry from content steps)",
            e.name, e.uncompressed_size, max_transform_size
        ))
        .into());
    }
    let plain = decompress(e, &data)?;
    let changed = plan.apply(ops, &e.name, plain.clone())?;
    if changed == plain {
        return Ok(EntryOutput {
            meta: meta_for(e, out_name),
            data,
            raw: true,
        });
    }
    let crc = crc32fast::hash(&changed);
    let (method, body) = if e.method == METHOD_STORED {
        (METHOD_STORED, changed.clone())
    } else {
        (METHOD_DEFLATED, deflate(&changed, 6))
    };
    let mut meta = meta_for(e, out_name);
    meta.method = method;
    meta.min_version = if method == METHOD_STORED { 10 } else { 20 };
    meta.crc32 = crc;
    meta.compressed_size = body.len() as u64;
    meta.uncompressed_size = changed.len() as u64;
    Ok(EntryOutput {
        meta,
        data: Bytes::from(body),
        raw: false,
    })
}

/// Decompresses an entry's data, stopping at its declared size, and checks the CRC.
pub fn decompress(e: &CdEntry, data: &[u8]) -> Result<Vec<u8>, ZipError> {
    let corrupt = |why: String| ZipError::Data {
        name: e.name.clone(),
        why,
    };
    let out = match e.method {
        METHOD_STORED => data.to_vec(),
        METHOD_DEFLATED => {
            let mut out = Vec::with_capacity(e.uncompressed_size.min(64 << 20) as usize);
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
