//! Zip entries that are zips themselves, read for `unzip`. An inner zip stored (not
//! compressed) in its archive is a contiguous range of the archive's bytes, so its
//! members are entries of the archive at shifted offsets ([`rebase`]): their central
//! directory is read from the end of that range, and their data by range like any
//! entry's, raw when untouched. A deflated inner zip's bytes exist only as they are
//! inflated: its central directory is found by inflating it once, keeping only its
//! tail ([`TailRing`]), and its members are cut from a second inflation as they are
//! written; their offsets stay relative to the inflated zip.
//!
//! Invariants: a member's offsets are checked against the inner zip's own extent
//! (its region ends where the inner zip's central directory starts), so reading a
//! member never runs outside the zip entry it came from; every error inside an inner
//! zip is [`ZipError::Inner`], naming the zip entry.

use std::ops::Range;

use super::read::{check_local_header, CdEntry, METHOD_DEFLATED, METHOD_STORED};
use super::ZipError;

/// `e` as the zip entry named `zip` reports it: [`ZipError::Inner`].
pub fn in_zip(zip: &str, e: ZipError) -> ZipError {
    ZipError::Inner {
        zip: zip.to_string(),
        source: Box::new(e),
    }
}

/// Checks that `e` can be read as an inner zip: a file, stored or deflated
/// (encrypted entries are refused when the directory is parsed). True when deflated.
pub fn check_container(e: &CdEntry) -> Result<bool, ZipError> {
    if e.is_dir() || e.is_symlink() {
        return Err(in_zip(
            &e.name,
            ZipError::NotZip("a directory or symbolic link, not a file".into()),
        ));
    }
    match e.method {
        METHOD_STORED => Ok(false),
        METHOD_DEFLATED => Ok(true),
        m => Err(in_zip(
            &e.name,
            ZipError::Unsupported(format!(
                "it is compressed with method {m} in its archive; unzip reads inner zips \
                 stored or deflated"
            )),
        )),
    }
}

/// How many bytes of `e`'s local header to read for [`inner_range`].
pub fn header_probe_len(e: &CdEntry) -> u64 {
    super::read::LOCAL_HEADER_LEN + e.raw_name.len() as u64
}

/// The range of the archive holding inner zip `e`'s bytes, from the first
/// [`header_probe_len`] bytes of its local header; `region_end` is where its region
/// ends (see [`super::read::region_ends`]).
pub fn inner_range(e: &CdEntry, header: &[u8], region_end: u64) -> Result<Range<u64>, ZipError> {
    let bad = |why: &str| in_zip(&e.name, ZipError::Malformed(why.into()));
    let h = check_local_header(header, e)?.ok_or_else(|| bad("local header cut short"))?;
    let start = e
        .header_offset
        .checked_add(h.len)
        .ok_or_else(|| bad("local header past the end"))?;
    let end = start
        .checked_add(e.compressed_size)
        .filter(|&end| end <= region_end)
        .ok_or_else(|| bad("its data runs past the space before the next entry"))?;
    Ok(start..end)
}

/// Puts members (and their region `ends`) in the order of their data in the inner
/// zip, so that one pass of inflation reaches each in turn, whatever order the
/// inner central directory lists them in.
pub fn sort_by_offset(members: &mut Vec<CdEntry>, ends: &mut Vec<u64>) {
    let mut both: Vec<(CdEntry, u64)> = members.drain(..).zip(ends.drain(..)).collect();
    both.sort_by_key(|(m, _)| m.header_offset);
    (*members, *ends) = both.into_iter().unzip();
}

/// Members read from an inner zip at `base` (directory offsets relative to it) made
/// entries of the outer archive: offsets shifted by `base`.
pub fn rebase(members: &mut [CdEntry], ends: &mut [u64], base: u64) {
    for m in members.iter_mut() {
        m.header_offset += base;
    }
    for end in ends.iter_mut() {
        *end += base;
    }
}

/// The last `cap` bytes of a stream, kept in a ring while it passes (the end of a
/// deflated inner zip, where its central directory is, without holding the rest).
#[derive(Debug)]
pub struct TailRing {
    buf: Vec<u8>,
    cap: usize,
    /// Bytes pushed so far.
    total: u64,
}

impl TailRing {
    /// A ring keeping the last `cap` bytes.
    pub fn new(cap: usize) -> TailRing {
        TailRing {
            buf: Vec::with_capacity(cap.clamp(1, 1 << 20)),
            cap: cap.max(1),
            total: 0,
        }
    }

    /// Appends `data`. The byte at stream offset `x` is kept at `x % cap`.
    pub fn push(&mut self, data: &[u8]) {
        let skip = data.len().saturating_sub(self.cap);
        let (kept, at) = (&data[skip..], (self.total + skip as u64) % self.cap as u64);
        let fits = self.total + data.len() as u64 <= self.cap as u64;
        self.total += data.len() as u64;
        if fits {
            // Not wrapped yet: the ring is the stream so far.
            self.buf.extend_from_slice(kept);
            return;
        }
        // The stream now exceeds the ring: it is full from here on.
        self.buf.resize(self.cap, 0);
        self.overwrite(at as usize, kept);
    }

    fn overwrite(&mut self, at: usize, data: &[u8]) {
        let first = data.len().min(self.cap - at);
        self.buf[at..at + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
    }

    /// Bytes pushed in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept tail, in order, and the stream offset of its first byte.
    pub fn into_tail(mut self) -> (u64, Vec<u8>) {
        if self.total > self.cap as u64 {
            let at = (self.total % self.cap as u64) as usize;
            self.buf.rotate_left(at);
        }
        (self.total - self.buf.len() as u64, self.buf)
    }
}

/// How many leading bytes of an inflated inner zip [`TailInflater`] keeps (its first
/// signature is checked against its directory).
pub const HEAD_LEN: usize = 64;

/// A deflated inner zip inflated once, as it streams by: its first [`HEAD_LEN`] bytes
/// and its last bytes kept, its CRC-32 and size checked against its directory entry.
pub struct TailInflater {
    inflater: Inflater,
    crc: crc32fast::Hasher,
    ring: TailRing,
    head: Vec<u8>,
    out: Vec<u8>,
}

/// What [`TailInflater::finish`] kept of an inner zip.
#[derive(Debug)]
pub struct InflatedTail {
    /// Its inflated size.
    pub size: u64,
    /// Its first bytes.
    pub head: Vec<u8>,
    /// Where `tail` starts in it.
    pub tail_start: u64,
    /// Its last bytes.
    pub tail: Vec<u8>,
}

impl TailInflater {
    /// Keeps the last `tail_cap` bytes.
    pub fn new(tail_cap: usize) -> TailInflater {
        TailInflater {
            inflater: Inflater::new(),
            crc: crc32fast::Hasher::new(),
            ring: TailRing::new(tail_cap),
            head: Vec::with_capacity(HEAD_LEN),
            out: vec![0; 256 << 10],
        }
    }

    /// Inflates the next compressed bytes of zip entry `e`. Bytes after the end of
    /// the deflate stream are ignored, however they are split into calls (as whole
    /// entries inflated in memory ignore them).
    pub fn feed(&mut self, e: &CdEntry, mut input: &[u8]) -> Result<(), ZipError> {
        loop {
            if self.inflater.ended {
                return Ok(());
            }
            let (used, made) = self.inflater.inflate(e, input, &mut self.out)?;
            input = &input[used..];
            let out = &self.out[..made];
            self.crc.update(out);
            let room = HEAD_LEN - self.head.len();
            self.head.extend_from_slice(&out[..room.min(made)]);
            self.ring.push(out);
            if self.ring.total() > e.uncompressed_size {
                return Err(bad_data(e, "inflates past its declared size"));
            }
            if self.inflater.ended || (input.is_empty() && made < self.out.len()) {
                return Ok(());
            }
        }
    }

    /// Checks the whole zip was inflated, to its declared size and CRC-32.
    pub fn finish(self, e: &CdEntry) -> Result<InflatedTail, ZipError> {
        if !self.inflater.ended {
            return Err(bad_data(e, "deflate stream ends early"));
        }
        let size = self.ring.total();
        if size != e.uncompressed_size || self.crc.finalize() != e.crc32 {
            return Err(bad_data(
                e,
                "CRC-32 or size does not match the central directory",
            ));
        }
        let (tail_start, tail) = self.ring.into_tail();
        Ok(InflatedTail {
            size,
            head: self.head,
            tail_start,
            tail,
        })
    }
}

fn bad_data(e: &CdEntry, why: &str) -> ZipError {
    ZipError::Data {
        name: e.name.clone(),
        why: why.into(),
    }
}

/// A raw deflate stream inflated piece by piece (the data of a deflated inner zip).
pub struct Inflater {
    dec: flate2::Decompress,
    /// The stream's end was reached.
    pub ended: bool,
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// A new raw deflate stream.
    pub fn new() -> Inflater {
        Inflater {
            dec: flate2::Decompress::new(false),
            ended: false,
        }
    }

    /// Inflates from `input` into `out`: (input bytes used, output bytes made). Input
    /// left after the stream's end is an error (the entry's data is only the stream).
    pub fn inflate(
        &mut self,
        e: &CdEntry,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), ZipError> {
        if self.ended {
            return match input.is_empty() {
                true => Ok((0, 0)),
                false => Err(bad_data(e, "data continues after the deflate stream ends")),
            };
        }
        let (in0, out0) = (self.dec.total_in(), self.dec.total_out());
        let status = self
            .dec
            .decompress(input, out, flate2::FlushDecompress::None)
            .map_err(|err| bad_data(e, &format!("deflate stream: {err}")))?;
        self.ended = status == flate2::Status::StreamEnd;
        let used = (self.dec.total_in() - in0) as usize;
        let made = (self.dec.total_out() - out0) as usize;
        if used == 0 && made == 0 && !self.ended && !input.is_empty() {
            return Err(bad_data(e, "deflate stream makes no progress"));
        }
        Ok((used, made))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::NameRules;
    use crate::zip::read::index_bytes_with;

    fn zip_of(files: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in files {
            let o = zip::write::SimpleFileOptions::default().compression_method(method);
            w.start_file(*name, o).unwrap();
            std::io::Write::write_all(&mut w, data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn stored_inner_zip_members_are_ranges_of_the_outer_archive() {
        let inner = zip_of(
            &[("a.txt", b"alpha"), ("d/b.txt", b"beta")],
            zip::CompressionMethod::Deflated,
        );
        let outer = zip_of(
            &[("x", b"pad"), ("in.zip", &inner)],
            zip::CompressionMethod::Stored,
        );
        let rules = NameRules::default();
        let (eocd, entries) = index_bytes_with(&outer, &rules).unwrap();
        let ends = crate::zip::read::region_ends(&entries, eocd.cd_offset).unwrap();
        let c = entries.iter().position(|e| e.name == "in.zip").unwrap();
        check_container(&entries[c]).unwrap();
        let h = entries[c].header_offset as usize;
        let probe = &outer[h..h + header_probe_len(&entries[c]) as usize];
        let r = inner_range(&entries[c], probe, ends[c]).unwrap();
        assert_eq!(&outer[r.start as usize..r.end as usize], inner.as_slice());
        let (ieocd, mut members) = index_bytes_with(&inner, &rules).unwrap();
        let mut mends = crate::zip::read::region_ends(&members, ieocd.cd_offset).unwrap();
        rebase(&mut members, &mut mends, r.start);
        let b = members.iter().position(|m| m.name == "d/b.txt").unwrap();
        let region = bytes::Bytes::copy_from_slice(
            &outer[members[b].header_offset as usize..mends[b] as usize],
        );
        let data = crate::entry::compressed_data(&members[b], &region).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(&data[..]), &mut out)
            .unwrap();
        assert_eq!(out, b"beta");
        assert!(mends.iter().all(|&e| e <= r.end));
    }

    #[test]
    fn a_deflated_inner_zip_is_inflated_once_keeping_its_tail() {
        let inner = zip_of(
            &[("a.txt", &[7u8; 100_000]), ("b.txt", b"b")],
            zip::CompressionMethod::Stored,
        );
        let outer = zip_of(&[("in.zip", &inner)], zip::CompressionMethod::Deflated);
        let (eocd, entries) = index_bytes_with(&outer, &NameRules::default()).unwrap();
        let ends = crate::zip::read::region_ends(&entries, eocd.cd_offset).unwrap();
        let e = &entries[0];
        assert!(check_container(e).unwrap());
        let h = e.header_offset as usize;
        let r = inner_range(e, &outer[h..h + header_probe_len(e) as usize], ends[0]).unwrap();
        let data = &outer[r.start as usize..r.end as usize];
        let mut t = TailInflater::new(1000);
        for c in data.chunks(333) {
            t.feed(e, c).unwrap();
        }
        let got = t.finish(e).unwrap();
        assert_eq!(got.size, inner.len() as u64);
        assert_eq!(got.head, &inner[..HEAD_LEN]);
        assert_eq!(got.tail, &inner[inner.len() - 1000..]);
        assert_eq!(got.tail_start, inner.len() as u64 - 1000);
        // A cut stream, or a wrong CRC, is refused.
        let mut t = TailInflater::new(1000);
        t.feed(e, &data[..data.len() / 2]).unwrap();
        assert!(t.finish(e).is_err());
        let mut lying = e.clone();
        lying.crc32 ^= 1;
        let mut t = TailInflater::new(1000);
        t.feed(&lying, data).unwrap();
        assert!(t.finish(&lying).unwrap_err().to_string().contains("CRC-32"));
    }

    #[test]
    fn the_ring_keeps_the_last_bytes_in_order() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for cap in [1, 7, 64, 9_999, 10_000, 20_000] {
            for step in [1, 3, 100, 4096, 10_000] {
                let mut r = TailRing::new(cap);
                for c in data.chunks(step) {
                    r.push(c);
                }
                assert_eq!(r.total(), 10_000);
                let (start, tail) = r.into_tail();
                let keep = cap.min(data.len());
                assert_eq!(start as usize, data.len() - keep, "cap {cap} step {step}");
                assert_eq!(tail, &data[data.len() - keep..], "cap {cap} step {step}");
            }
        }
    }
}
