//! An entry transformed as it streams: compressed input in → inflated (stopping at
//! the declared size, CRC-checked at the end) → streaming content steps
//! ([`crate::plan::stream::StreamSteps`]) → deflated output out, for entries too
//! large to hold whole. Memory per call is bounded by the chunk given and the
//! steps' output cap, never by the entry's size.
//!
//! The output's CRC-32 and sizes are known only at the end, so the writer emits the
//! entry with a data descriptor ([`crate::zip::ZipWriter::local_header_streamed`]).

use std::io::Write;

use bytes::Bytes;
use flate2::write::{DeflateDecoder, DeflateEncoder};
use flate2::Compression;

use crate::entry::EntryError;
use crate::plan::stream::StreamSteps;
use crate::plan::{EntryPlan, OutputPlan};
use crate::zip::read::{CdEntry, METHOD_DEFLATED, METHOD_STORED};
use crate::zip::ZipError;

/// True when entry `e`, planned as `ep`, can be transformed as it streams: every
/// step is `template` or a literal `replace`, the output is deflated (a data
/// descriptor is fine there), and nothing needs the whole new content (a manifest
/// hash) or is a link. Callers stream such an entry when it is too large to hold.
pub fn streamable(op: &OutputPlan, ep: &EntryPlan, e: &CdEntry) -> bool {
    !ep.ops.is_empty()
        && !ep.hash
        && !e.is_symlink()
        && matches!(e.method, METHOD_STORED | METHOD_DEFLATED)
        && ep.method.is_none_or(|m| m == METHOD_DEFLATED)
        && op.stream_steps(&ep.ops, e.uncompressed_size).is_some()
}

/// What a streamed entry became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamedEntry {
    /// CRC-32 of the new content.
    pub crc32: u32,
    /// Deflated bytes written.
    pub compressed: u64,
    /// New content size.
    pub uncompressed: u64,
}

/// Receives inflated input: checks it, transforms it, deflates the result.
struct Inner {
    name: String,
    steps: StreamSteps,
    in_crc: crc32fast::Hasher,
    in_n: u64,
    in_limit: u64,
    out_crc: crc32fast::Hasher,
    out_n: u64,
    encoder: DeflateEncoder<Vec<u8>>,
    /// The real error behind an `io::Error` returned from `write`.
    failed: Option<EntryError>,
}

impl Inner {
    fn take(&mut self, out: Vec<u8>) -> std::io::Result<()> {
        self.out_crc.update(&out);
        self.out_n += out.len() as u64;
        self.encoder.write_all(&out)
    }
}

impl Write for Inner {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.in_n += b.len() as u64;
        if self.in_n > self.in_limit {
            self.failed = Some(
                ZipError::Data {
                    name: self.name.clone(),
                    why: format!("inflates beyond its declared size of {}", self.in_limit),
                }
                .into(),
            );
            return Err(std::io::Error::other("inflates beyond its declared size"));
        }
        self.in_crc.update(b);
        match self.steps.push(&self.name, b) {
            Ok(out) => self.take(out)?,
            Err(e) => {
                self.failed = Some(e.into());
                return Err(std::io::Error::other("a step failed"));
            }
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An entry being transformed as it streams.
pub struct EntryStreamer {
    inflate: Option<DeflateDecoder<Inner>>,
    stored: Option<Inner>,
    expected_crc: u32,
    compressed: u64,
}

impl EntryStreamer {
    /// A streamer for input entry `e` (stored or deflated) written as `out_name`,
    /// through `steps`, deflating at `level`.
    pub fn new(
        e: &CdEntry,
        out_name: &str,
        steps: StreamSteps,
        level: u32,
    ) -> Result<Self, ZipError> {
        let inner = Inner {
            name: out_name.to_string(),
            steps,
            in_crc: crc32fast::Hasher::new(),
            in_n: 0,
            in_limit: e.uncompressed_size,
            out_crc: crc32fast::Hasher::new(),
            out_n: 0,
            encoder: DeflateEncoder::new(Vec::new(), Compression::new(level)),
            failed: None,
        };
        let (inflate, stored) = match e.method {
            METHOD_DEFLATED => (Some(DeflateDecoder::new(inner)), None),
            METHOD_STORED => (None, Some(inner)),
            m => {
                return Err(ZipError::Unsupported(format!(
                    "entry {:?} uses compression method {m}; only stored and deflated \
                     entries can be transformed",
                    e.name
                )))
            }
        };
        Ok(EntryStreamer {
            inflate,
            stored,
            expected_crc: e.crc32,
            compressed: 0,
        })
    }

    fn inner(&mut self) -> &mut Inner {
        match (&mut self.inflate, &mut self.stored) {
            (Some(d), _) => d.get_mut(),
            (_, Some(s)) => s,
            _ => unreachable!("one of the two is set"),
        }
    }

    fn drain(&mut self) -> Bytes {
        let out = std::mem::take(self.inner().encoder.get_mut());
        self.compressed += out.len() as u64;
        Bytes::from(out)
    }

    /// Feeds the entry's next compressed bytes; returns deflated output to write.
    pub fn push(&mut self, compressed: &[u8]) -> Result<Bytes, EntryError> {
        let r = match (&mut self.inflate, &mut self.stored) {
            (Some(d), _) => d.write_all(compressed),
            (_, Some(s)) => s.write_all(compressed),
            _ => unreachable!("one of the two is set"),
        };
        if let Err(io) = r {
            let name = self.inner().name.clone();
            return Err(self.inner().failed.take().unwrap_or_else(|| {
                ZipError::Data {
                    name,
                    why: format!("deflate stream: {io}"),
                }
                .into()
            }));
        }
        Ok(self.drain())
    }

    /// Ends the entry: checks the input's size and CRC, flushes the steps and the
    /// deflater; returns the last output bytes and what the entry became.
    pub fn finish(mut self) -> Result<(Bytes, StreamedEntry), EntryError> {
        let mut inner = match (self.inflate.take(), self.stored.take()) {
            (Some(mut d), _) => {
                // Flush the inflater while it is still ours, so a step's own error
                // (stashed in `failed`) is the one reported.
                if let Err(io) = d.try_finish() {
                    let inner = d.get_mut();
                    return Err(inner.failed.take().unwrap_or_else(|| {
                        ZipError::Data {
                            name: inner.name.clone(),
                            why: format!("deflate stream: {io}"),
                        }
                        .into()
                    }));
                }
                let name = d.get_ref().name.clone();
                d.finish().map_err(|io| ZipError::Data {
                    name,
                    why: format!("deflate stream: {io}"),
                })?
            }
            (_, Some(s)) => s,
            _ => unreachable!("one of the two is set"),
        };
        let crc = inner.in_crc.clone().finalize();
        if inner.in_n != inner.in_limit || crc != self.expected_crc {
            return Err(ZipError::Data {
                name: inner.name,
                why: format!(
                    "inflates to {} bytes with CRC-32 {crc:08x}; the central directory says \
                     {} bytes with CRC-32 {:08x}",
                    inner.in_n, inner.in_limit, self.expected_crc
                ),
            }
            .into());
        }
        let name = inner.name.clone();
        let tail = inner.steps.finish(&name)?;
        inner
            .take(tail)
            .map_err(|io| ZipError::Writer(format!("deflating {name:?}: {io}")))?;
        let out = inner
            .encoder
            .finish()
            .map_err(|io| ZipError::Writer(format!("deflating {name:?}: {io}")))?;
        let summary = StreamedEntry {
            crc32: inner.out_crc.finalize(),
            compressed: self.compressed + out.len() as u64,
            uncompressed: inner.out_n,
        };
        Ok((Bytes::from(out), summary))
    }
}

/// Deflates bytes as they are produced (a zip entry made by a `zip` step: its members
/// are written into it one after another), counting the CRC-32, both sizes and, when
/// asked, the SHA-256 of what goes in. Memory is the deflate window plus what one
/// `push` returns.
pub struct StreamDeflater {
    enc: DeflateEncoder<Vec<u8>>,
    crc: crc32fast::Hasher,
    sha: Option<sha2::Sha256>,
    n_in: u64,
    n_out: u64,
}

/// What a [`StreamDeflater`] wrote, once finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deflated {
    /// CRC-32 of the bytes pushed.
    pub crc32: u32,
    /// Bytes pushed.
    pub uncompressed: u64,
    /// Deflated bytes returned.
    pub compressed: u64,
    /// SHA-256 (hex) of the bytes pushed, when asked for.
    pub sha256: Option<String>,
}

impl StreamDeflater {
    /// A deflater at `level` (0-9), hashing what goes in when `sha256`.
    pub fn new(level: u32, sha256: bool) -> Self {
        StreamDeflater {
            enc: DeflateEncoder::new(Vec::new(), Compression::new(level)),
            crc: crc32fast::Hasher::new(),
            sha: sha256.then(<sha2::Sha256 as sha2::Digest>::new),
            n_in: 0,
            n_out: 0,
        }
    }

    /// Deflates `data`; returns the compressed bytes ready so far.
    pub fn push(&mut self, data: &[u8]) -> Bytes {
        self.crc.update(data);
        if let Some(sha) = &mut self.sha {
            sha2::Digest::update(sha, data);
        }
        self.n_in += data.len() as u64;
        self.enc
            .write_all(data)
            .expect("writing to a Vec cannot fail");
        self.drain()
    }

    /// A deflater going on from a stream whose input so far had CRC-32 `crc32` and
    /// `uncompressed` bytes, and that was [`Self::flush`]ed before it stopped (no
    /// SHA-256: it cannot be resumed).
    pub fn resume(level: u32, crc32: u32, uncompressed: u64, compressed: u64) -> Self {
        StreamDeflater {
            crc: crc32fast::Hasher::new_with_initial_len(crc32, uncompressed),
            n_in: uncompressed,
            n_out: compressed,
            ..StreamDeflater::new(level, false)
        }
    }

    /// Ends the blocks so far at a byte boundary (a sync flush) and returns what that
    /// releases: a fresh deflater ([`Self::resume`]) can continue the stream from here,
    /// since nothing after a flush needs what came before it.
    pub fn flush(&mut self) -> Bytes {
        self.enc.flush().expect("writing to a Vec cannot fail");
        self.drain()
    }

    /// CRC-32 and size of what went in, and the compressed bytes returned, so far.
    pub fn totals(&self) -> (u32, u64, u64) {
        (self.crc.clone().finalize(), self.n_in, self.n_out)
    }

    /// The last compressed bytes, and the totals.
    pub fn finish(mut self) -> (Bytes, Deflated) {
        self.enc.try_finish().expect("writing to a Vec cannot fail");
        let tail = self.drain();
        let sha256 = self.sha.map(|s| hex::encode(sha2::Digest::finalize(s)));
        let done = Deflated {
            crc32: self.crc.finalize(),
            uncompressed: self.n_in,
            compressed: self.n_out,
            sha256,
        };
        (tail, done)
    }

    fn drain(&mut self) -> Bytes {
        let out = Bytes::from(std::mem::take(self.enc.get_mut()));
        self.n_out += out.len() as u64;
        out
    }
}
