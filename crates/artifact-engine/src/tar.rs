//! `tar.gz` outputs: POSIX tar records for entries described as zip entries
//! ([`EntryMeta`]), and a gzip stream (RFC 1952) the records are deflated into as
//! they are produced.
//!
//! The ustar header fields come from the `tar` crate ([`::tar::Header`]); what it
//! leaves to its `Builder`, which wants each entry's data as one `Read`, is written
//! here: a pax extended header (`x`) before any entry whose path or link target does
//! not fit ustar's fields or whose size does not fit 11 octal digits, the padding to
//! 512-byte blocks, and the two zero blocks that end the archive. The gzip framing
//! is the 10-byte header and the CRC-32 / size trailer around a raw deflate stream
//! ([`StreamDeflater`]), so the stream needs nothing held but the deflate window.
//!
//! Invariants: output is deterministic (no wall-clock time, user or host name: uid
//! and gid 0, the entry's own time and mode); an entry's header carries its final
//! size, so only entries whose size is known before their data can be written.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::streamed::StreamDeflater;
use crate::zip::read::METHOD_STORED;
use crate::zip::write::EntryMeta;
use crate::zip::ZipError;

/// Deflate level of a tar.gz output's gzip stream.
pub const GZIP_LEVEL: u32 = 6;

/// Tar's block size.
pub const BLOCK: u64 = 512;

/// The end of an archive: two zero blocks.
pub const END: [u8; 1024] = [0; 1024];

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

/// What a tar record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file of this many bytes.
    File(u64),
    /// A directory (its name ends in `/`).
    Directory,
    /// A symbolic link (its target is given to [`header`]).
    Symlink,
}

impl Kind {
    /// The kind of `meta`'s entry, whose content is `size` bytes.
    pub fn of(meta: &EntryMeta, size: u64) -> Kind {
        if meta.name.ends_with('/') {
            Kind::Directory
        } else if unix_mode(meta).is_some_and(|m| m & S_IFMT == S_IFLNK) {
            Kind::Symlink
        } else {
            Kind::File(size)
        }
    }
}

/// The Unix mode of an entry made on a Unix-like host (3, or OS X: 19).
fn unix_mode(meta: &EntryMeta) -> Option<u32> {
    matches!(meta.host, 3 | 19).then_some(meta.external_attrs >> 16)
}

/// Permission bits for the record: the entry's own, else 0755 for directories and
/// 0644 for files.
fn permissions(meta: &EntryMeta, kind: Kind) -> u32 {
    match unix_mode(meta).map(|m| m & 0o7777) {
        Some(bits) if bits != 0 => bits,
        _ if kind == Kind::Directory => 0o755,
        _ if kind == Kind::Symlink => 0o777,
        _ => 0o644,
    }
}

/// Seconds since 1970 (UTC) of a DOS date and time, which carry no time zone.
pub fn unix_time(dos_date: u16, dos_time: u16) -> u64 {
    let year = 1980 + i64::from(dos_date >> 9);
    let month = i64::from((dos_date >> 5) & 0xf).clamp(1, 12);
    let day = i64::from(dos_date & 0x1f).max(1);
    let (h, m, s) = (
        i64::from(dos_time >> 11),
        i64::from((dos_time >> 5) & 0x3f),
        i64::from(dos_time & 0x1f) * 2,
    );
    // Days from 1970-01-01 to year-month-day (proleptic Gregorian, Howard Hinnant's
    // days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + h * 3600 + m * 60 + s).max(0) as u64
}

/// The header blocks of an entry: a pax extended header when needed, then the ustar
/// header. `link` is a symbolic link's target.
pub fn header(meta: &EntryMeta, kind: Kind, link: Option<&str>) -> Result<Vec<u8>, ZipError> {
    let refuse = |why: String| ZipError::Writer(format!("tar header for {:?}: {why}", meta.name));
    let mut h = ::tar::Header::new_ustar();
    let mut pax = Vec::new();
    let size = match kind {
        Kind::File(n) => n,
        _ => 0,
    };
    h.set_entry_type(match kind {
        Kind::File(_) => ::tar::EntryType::Regular,
        Kind::Directory => ::tar::EntryType::Directory,
        Kind::Symlink => ::tar::EntryType::Symlink,
    });
    if h.set_path(&meta.name).is_err() {
        // Too long for ustar's name and prefix: the pax record carries it whole and
        // the header keeps the start of its last component (readers without pax
        // support extract that name).
        pax_record(&mut pax, "path", &meta.name);
        h.set_path(short_name(&meta.name, 99))
            .map_err(|e| refuse(e.to_string()))?;
    }
    if let Some(target) = link {
        if h.set_link_name(target).is_err() {
            pax_record(&mut pax, "linkpath", target);
            h.set_link_name(tail_of(target, 99))
                .map_err(|e| refuse(e.to_string()))?;
        }
    }
    if size >= 1 << 33 {
        pax_record(&mut pax, "size", &size.to_string());
    }
    h.set_size(size);
    h.set_mode(permissions(meta, kind));
    h.set_mtime(unix_time(meta.dos_date, meta.dos_time));
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    let mut out = Vec::with_capacity(3 * BLOCK as usize + pax.len());
    if !pax.is_empty() {
        let mut x = ::tar::Header::new_ustar();
        x.set_entry_type(::tar::EntryType::XHeader);
        x.set_path(format!("PaxHeaders/{}", short_name(&meta.name, 80)))
            .map_err(|e| refuse(e.to_string()))?;
        x.set_size(pax.len() as u64);
        x.set_mode(0o644);
        x.set_mtime(0);
        x.set_cksum();
        out.extend_from_slice(x.as_bytes());
        out.extend_from_slice(&pax);
        out.extend_from_slice(padding(pax.len() as u64));
    }
    out.extend_from_slice(h.as_bytes());
    Ok(out)
}

/// The first bytes (at most `max`, cut at a character boundary) of the last
/// component of `name`, a validated entry name: never empty, `.` or `..`, since no
/// component of a valid name is.
fn short_name(name: &str, max: usize) -> String {
    let last = name
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(name);
    let mut end = last.len().min(max);
    while !last.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &last[..end];
    if name.ends_with('/') && cut.len() < max {
        format!("{cut}/")
    } else {
        cut.to_string()
    }
}

/// The record of an entry whose content is held whole (stored: a tar.gz output
/// holds content): header, content, padding; a link's content is its target.
pub fn record(meta: &EntryMeta, content: Bytes) -> Result<Vec<Bytes>, ZipError> {
    if meta.method != METHOD_STORED {
        return Err(ZipError::Writer(format!(
            "entry {:?} reached a tar.gz output compressed",
            meta.name
        )));
    }
    let kind = Kind::of(meta, content.len() as u64);
    let link = match kind {
        Kind::Symlink => Some(std::str::from_utf8(&content).map_err(|_| {
            ZipError::Writer(format!(
                "link {:?}: its target is not UTF-8, which a tar header cannot name",
                meta.name
            ))
        })?),
        _ => None,
    };
    let mut pieces = vec![Bytes::from(header(meta, kind, link)?)];
    if let Kind::File(n) = kind {
        pieces.push(content);
        pieces.push(Bytes::from_static(padding(n)));
    }
    Ok(pieces)
}

/// The last bytes of `s` (at most `max`), starting at a character boundary and not
/// with `/`.
fn tail_of(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].trim_start_matches('/')
}

/// Appends the pax record `key=value`: `"<len> key=value\n"`, where `len` counts
/// the whole record, its own digits included.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

/// Zero bytes that fill `size` bytes of data up to a whole block.
pub fn padding(size: u64) -> &'static [u8] {
    const ZEROS: [u8; BLOCK as usize] = [0; BLOCK as usize];
    let rem = (size % BLOCK) as usize;
    if rem == 0 {
        &[]
    } else {
        &ZEROS[..BLOCK as usize - rem]
    }
}

/// A gzip member being written: tar bytes in, compressed bytes out.
pub struct GzipStream {
    deflate: StreamDeflater,
    started: bool,
}

/// A gzip stream stopped at a flush, to go on in a later invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GzipState {
    /// CRC-32 of the bytes compressed so far.
    pub crc32: u32,
    /// Bytes compressed so far.
    pub uncompressed: u64,
    /// Compressed bytes written so far (the header not counted).
    pub compressed: u64,
    /// The header was written.
    pub started: bool,
}

/// The gzip header: deflate, no flags, no time, no extra flags, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

impl GzipStream {
    /// A stream deflating at `level` (0-9).
    pub fn new(level: u32) -> Self {
        GzipStream {
            deflate: StreamDeflater::new(level, false),
            started: false,
        }
    }

    fn framed(&mut self, body: Bytes) -> Bytes {
        if self.started {
            return body;
        }
        self.started = true;
        let mut out = BytesMut::with_capacity(GZIP_HEADER.len() + body.len());
        out.extend_from_slice(&GZIP_HEADER);
        out.extend_from_slice(&body);
        out.freeze()
    }

    /// Flushes the stream to a byte boundary: the bytes to write, and the state a
    /// stream [`Self::resume`]d from it needs to go on exactly where this one stops.
    pub fn suspend(mut self) -> (Bytes, GzipState) {
        let body = self.deflate.flush();
        let out = if body.is_empty() {
            body
        } else {
            self.framed(body)
        };
        let (crc32, uncompressed, compressed) = self.deflate.totals();
        let state = GzipState {
            crc32,
            uncompressed,
            compressed,
            started: self.started,
        };
        (out, state)
    }

    /// A stream going on from `state`, deflating at `level`.
    pub fn resume(level: u32, state: GzipState) -> Self {
        GzipStream {
            deflate: StreamDeflater::resume(
                level,
                state.crc32,
                state.uncompressed,
                state.compressed,
            ),
            started: state.started,
        }
    }

    /// Compresses the next bytes: what is ready to write (possibly nothing).
    pub fn push(&mut self, data: &[u8]) -> Bytes {
        let body = self.deflate.push(data);
        if body.is_empty() {
            return body;
        }
        self.framed(body)
    }

    /// The last bytes of the stream: the deflate tail and the CRC-32 and size trailer.
    pub fn finish(mut self) -> Bytes {
        let d = std::mem::replace(&mut self.deflate, StreamDeflater::new(0, false));
        let (tail, done) = d.finish();
        let mut out = BytesMut::from(&self.framed(tail)[..]);
        out.extend_from_slice(&done.crc32.to_le_bytes());
        out.extend_from_slice(&(done.uncompressed as u32).to_le_bytes());
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for v in ["", "a", &"x".repeat(90), &"y".repeat(95), &"z".repeat(994)] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", v);
            let text = String::from_utf8(out.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "{text:?}");
        }
    }

    #[test]
    fn dos_times_read_as_utc() {
        // 1980-01-01 00:00:00
        assert_eq!(unix_time(1 << 5 | 1, 0), 315_532_800);
        // 2024-02-29 13:45:58
        let date = (44 << 9) | (2 << 5) | 29;
        let time = (13 << 11) | (45 << 5) | 29;
        assert_eq!(unix_time(date, time), 1_709_214_358);
    }

    /// A stream suspended and resumed (as across invocations) is one valid gzip
    /// member holding everything pushed, in order.
    #[test]
    fn a_resumed_stream_continues_the_same_member() {
        use std::io::Read;
        let text: Vec<u8> = (0..50_000)
            .flat_map(|i| format!("{i} ").into_bytes())
            .collect();
        let mut out = Vec::new();
        let mut gz = GzipStream::new(6);
        for (i, chunk) in text.chunks(7_000).enumerate() {
            out.extend_from_slice(&gz.push(chunk));
            if i % 3 == 1 {
                let (flushed, state) = gz.suspend();
                out.extend_from_slice(&flushed);
                gz = GzipStream::resume(6, state);
            }
        }
        out.extend_from_slice(&gz.finish());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == text);
        // The trailer's CRC and size are checked by the decoder; a single member.
        let mut one = flate2::read::GzDecoder::new(&out[..]);
        std::io::copy(&mut one, &mut std::io::sink()).unwrap();
        assert!(one.into_inner().is_empty(), "nothing after the member");
    }

    #[test]
    fn padding_fills_to_a_block() {
        assert_eq!(padding(0).len(), 0);
        assert_eq!(padding(1).len(), 511);
        assert_eq!(padding(512).len(), 0);
        assert_eq!(padding(1000).len(), 24);
    }

    #[test]
    fn short_names_are_the_start_of_the_last_component() {
        assert_eq!(short_name("a/b/file.txt", 99), "file.txt");
        assert_eq!(short_name("a/dir/", 99), "dir/");
        // A component ending in `..`, cut, never becomes `..` itself.
        let name = format!("{}/x{}..", "d".repeat(200), "y".repeat(150));
        let short = short_name(&name, 99);
        assert_eq!(short.len(), 99);
        assert!(short.starts_with("xy"));
        assert_eq!(short_name("é".repeat(60).as_str(), 99).len(), 98);
    }

    #[test]
    fn tails_start_at_a_character_and_not_a_slash() {
        assert_eq!(tail_of("ab/cd", 3), "cd");
        assert_eq!(tail_of("ééé", 3), "é");
    }
}
