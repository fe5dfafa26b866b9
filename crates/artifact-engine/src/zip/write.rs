//! Zip writing as a stream of byte blocks: [`ZipWriter::local_header`] returns the
//! header for an entry whose CRC and sizes are already known, the caller then emits
//! exactly `compressed_size` data bytes, and [`ZipWriter::finish`] returns the central
//! directory and end records.
//!
//! Invariants of every archive written:
//! - sizes and CRC are in every local header, except for entries whose content is
//!   produced as it streams ([`ZipWriter::local_header_streamed`]): those are always
//!   DEFLATED and carry a data descriptor after their data (java.util.zip readers,
//!   e.g. the ECS blue/green action, reject only STORED entries with descriptors);
//! - zip64 fields only where a value does not fit (entry sizes or offsets ≥ 4 GiB,
//!   more than 65,535 entries), so small archives are plain zip 2.0;
//! - DOS timestamps are clamped to 1980-01-01..2107-12-31;
//! - the UTF-8 flag is set exactly when a name is not pure ASCII.
//!
//! Why not `async_zip`'s writer: it owns the output stream (we hand blocks to a
//! multipart sink with backpressure), its streaming entry writer writes data
//! descriptors and mishandles zip64 sizes (rs-async-zip #147, #158), and raw
//! pass-through of already-compressed data needs exactly this "header from known CRC
//! and sizes" primitive. The format is small and fully tested against three
//! independent readers (zip crate, async_zip, Python's zipfile, `unzip -t`).

use bytes::{BufMut, Bytes, BytesMut};

use super::read::{CDH_SIG, EOCD64_LOCATOR_SIG, EOCD64_SIG, EOCD_SIG, FLAG_UTF8, LFH_SIG};
use crate::zip::ZipError;

const U32_MAX: u64 = 0xFFFF_FFFF;
const FLAG_DATA_DESCRIPTOR: u16 = 0x0008;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;

/// What the writer needs to know about an entry before its data is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// Name in the output (validated; `/` separators, directories end in `/`).
    pub name: String,
    /// Compression method of the data that follows.
    pub method: u16,
    /// CRC-32 of the uncompressed data.
    pub crc32: u32,
    /// Bytes of data that follow the header.
    pub compressed_size: u64,
    /// Uncompressed size.
    pub uncompressed_size: u64,
    /// DOS time and date (clamped on write).
    pub dos_time: u16,
    /// DOS date.
    pub dos_date: u16,
    /// Host system (high byte of "version made by"; 3 = Unix, 0 = DOS).
    pub host: u8,
    /// Lowest "version needed" the method requires (raised for zip64 automatically).
    pub min_version: u16,
    /// External attributes (Unix mode in the high 16 bits for host 3).
    pub external_attrs: u32,
    /// Internal attributes.
    pub internal_attrs: u16,
}

impl EntryMeta {
    /// A minimal file entry, for generated content.
    pub fn file(name: impl Into<String>, method: u16, crc32: u32, csize: u64, usize: u64) -> Self {
        EntryMeta {
            name: name.into(),
            method,
            crc32,
            compressed_size: csize,
            uncompressed_size: usize,
            dos_time: 0,
            dos_date: DOS_DATE_MIN,
            host: 3,
            min_version: if method == 0 { 10 } else { 20 },
            external_attrs: 0o100644 << 16,
            internal_attrs: 0,
        }
    }
}

/// 1980-01-01, the earliest DOS date.
pub const DOS_DATE_MIN: u16 = 1 << 5 | 1;
/// 2107-12-31, the latest DOS date.
pub const DOS_DATE_MAX: u16 = 127 << 9 | 12 << 5 | 31;

/// Clamps a DOS date/time pair into the representable, valid range.
pub fn clamp_dos(date: u16, time: u16) -> (u16, u16) {
    let month = (date >> 5) & 0xF;
    let day = date & 0x1F;
    if month == 0 || month > 12 || day == 0 {
        return (DOS_DATE_MIN, 0);
    }
    let (h, m, s2) = (time >> 11, (time >> 5) & 0x3F, time & 0x1F);
    let time = if h > 23 || m > 59 || s2 > 29 { 0 } else { time };
    (date.clamp(DOS_DATE_MIN, DOS_DATE_MAX), time)
}

/// What [`ZipWriter::resume`] needs to go on with an archive: the bytes written so
/// far, the entries started, and their central-directory records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipWriterState {
    /// Bytes of the archive written so far.
    pub offset: u64,
    /// Entries written so far.
    pub entries: u64,
    /// Their central-directory records, in order.
    pub central: Vec<u8>,
}

/// Writes the headers and trailer of one archive; entry data goes between headers.
#[derive(Debug, Default)]
pub struct ZipWriter {
    offset: u64,
    entries: u64,
    central: BytesMut,
    open_entry: Option<(String, u64)>,
    /// A streamed entry in progress: its header fields, where its header starts,
    /// and whether its descriptor uses zip64 sizes.
    open_streamed: Option<(EntryMeta, u64, bool)>,
}

impl ZipWriter {
    /// A writer for an archive starting at offset 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes written so far (headers plus the data the caller promised to write).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The writer's state between entries, to go on with the same archive later
    /// (another process: see `artifact-core`'s continuation checkpoints). `None` while
    /// an entry is open: a checkpoint is only ever taken at an entry boundary.
    pub fn state(&self) -> Option<ZipWriterState> {
        if self.open_entry.is_some() || self.open_streamed.is_some() {
            return None;
        }
        Some(ZipWriterState {
            offset: self.offset,
            entries: self.entries,
            central: self.central.to_vec(),
        })
    }

    /// A writer that goes on from `state`: the next entry starts at `state.offset`,
    /// and the central directory already holds the records written before.
    pub fn resume(state: ZipWriterState) -> Self {
        ZipWriter {
            offset: state.offset,
            entries: state.entries,
            central: BytesMut::from(&state.central[..]),
            open_entry: None,
            open_streamed: None,
        }
    }

    /// Bytes of central-directory records so far.
    pub fn central_len(&self) -> usize {
        self.central.len()
    }

    /// Entries started so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The local header for `meta`; the caller must follow it with exactly
    /// `meta.compressed_size` data bytes and then call [`Self::end_entry`].
    pub fn local_header(&mut self, meta: &EntryMeta) -> Result<Bytes, ZipError> {
        self.check_can_start(meta)?;
        let name = meta.name.as_bytes();
        let (date, time) = clamp_dos(meta.dos_date, meta.dos_time);
        let flags = if meta.name.is_ascii() { 0 } else { FLAG_UTF8 };
        let big_sizes = meta.compressed_size >= U32_MAX || meta.uncompressed_size >= U32_MAX;
        let big_offset = self.offset >= U32_MAX;
        let version = if big_sizes || big_offset {
            meta.min_version.max(45)
        } else {
            meta.min_version.max(10)
        };

        let mut h = BytesMut::with_capacity(30 + name.len() + 20);
        h.put_u32_le(LFH_SIG);
        h.put_u16_le(version);
        h.put_u16_le(flags);
        h.put_u16_le(meta.method);
        h.put_u16_le(time);
        h.put_u16_le(date);
        h.put_u32_le(meta.crc32);
        if big_sizes {
            h.put_u32_le(U32_MAX as u32);
            h.put_u32_le(U32_MAX as u32);
        } else {
            h.put_u32_le(meta.compressed_size as u32);
            h.put_u32_le(meta.uncompressed_size as u32);
        }
        h.put_u16_le(name.len() as u16);
        h.put_u16_le(if big_sizes { 20 } else { 0 });
        h.put_slice(name);
        if big_sizes {
            h.put_u16_le(0x0001);
            h.put_u16_le(16);
            h.put_u64_le(meta.uncompressed_size);
            h.put_u64_le(meta.compressed_size);
        }

        self.central_record(meta, flags, version, self.offset);

        self.offset += h.len() as u64;
        self.entries += 1;
        self.open_entry = Some((meta.name.clone(), self.offset + meta.compressed_size));
        Ok(h.freeze())
    }

    /// Refuses to start `meta` while another entry is open, or under a name the
    /// rules or the format do not allow.
    fn check_can_start(&self, meta: &EntryMeta) -> Result<(), ZipError> {
        let open = self
            .open_entry
            .as_ref()
            .map(|(n, _)| n)
            .or(self.open_streamed.as_ref().map(|(m, _, _)| &m.name));
        if let Some(name) = open {
            return Err(ZipError::Writer(format!(
                "entry {name:?} was not ended before {:?}",
                meta.name
            )));
        }
        crate::zip::read::validate_name(&meta.name).map_err(|why| ZipError::BadName {
            name: meta.name.clone(),
            why,
        })?;
        if meta.name.len() > u16::MAX as usize {
            return Err(ZipError::BadName {
                name: meta.name.clone(),
                why: "longer than 65,535 bytes".into(),
            });
        }
        Ok(())
    }

    /// Records an entry the caller writes verbatim from its input (see
    /// [`super::verbatim`]): `len` bytes of header, data and descriptor, whose local
    /// header has `flags`. Only its central-directory record is made here.
    pub fn verbatim_entry(
        &mut self,
        meta: &EntryMeta,
        flags: u16,
        len: u64,
    ) -> Result<(), ZipError> {
        self.check_can_start(meta)?;
        let big_offset = self.offset >= U32_MAX;
        let version = if big_offset || meta.compressed_size >= U32_MAX {
            meta.min_version.max(45)
        } else {
            meta.min_version.max(10)
        };
        self.central_record(meta, flags, version, self.offset);
        self.offset += len;
        self.entries += 1;
        Ok(())
    }

    /// Appends the central-directory record of an entry whose local header is at
    /// `offset`: zip64 fields only for values that overflow.
    fn central_record(&mut self, meta: &EntryMeta, flags: u16, version: u16, offset: u64) {
        let name = meta.name.as_bytes();
        let (date, time) = clamp_dos(meta.dos_date, meta.dos_time);
        let big_offset = offset >= U32_MAX;
        let mut extra = BytesMut::new();
        if meta.uncompressed_size >= U32_MAX {
            extra.put_u64_le(meta.uncompressed_size);
        }
        if meta.compressed_size >= U32_MAX {
            extra.put_u64_le(meta.compressed_size);
        }
        if big_offset {
            extra.put_u64_le(offset);
        }
        let c = &mut self.central;
        c.put_u32_le(CDH_SIG);
        c.put_u16_le((meta.host as u16) << 8 | version.max(20));
        c.put_u16_le(version);
        c.put_u16_le(flags);
        c.put_u16_le(meta.method);
        c.put_u16_le(time);
        c.put_u16_le(date);
        c.put_u32_le(meta.crc32);
        c.put_u32_le(meta.compressed_size.min(U32_MAX) as u32);
        c.put_u32_le(meta.uncompressed_size.min(U32_MAX) as u32);
        c.put_u16_le(name.len() as u16);
        c.put_u16_le(if extra.is_empty() {
            0
        } else {
            4 + extra.len() as u16
        });
        c.put_u16_le(0); // comment
        c.put_u16_le(0); // disk
        c.put_u16_le(meta.internal_attrs);
        c.put_u32_le(meta.external_attrs);
        c.put_u32_le(offset.min(U32_MAX) as u32);
        c.put_slice(name);
        if !extra.is_empty() {
            c.put_u16_le(0x0001);
            c.put_u16_le(extra.len() as u16);
            c.put_slice(&extra);
        }
    }

    /// The local header of a DEFLATED entry whose CRC and sizes are known only after
    /// its data: flag bit 3 set, zeros in their place; `meta.uncompressed_size` is
    /// an upper-bound hint that decides zip64 (its CRC and sizes are ignored). The
    /// caller writes the data, then calls [`Self::end_streamed`] for the descriptor.
    pub fn local_header_streamed(&mut self, meta: &EntryMeta) -> Result<Bytes, ZipError> {
        self.check_can_start(meta)?;
        let name = meta.name.as_bytes();
        let (date, time) = clamp_dos(meta.dos_date, meta.dos_time);
        let flags = FLAG_DATA_DESCRIPTOR | if meta.name.is_ascii() { 0 } else { FLAG_UTF8 };
        // Output may grow past the input (steps are capped at 4x + 1 MiB).
        let zip64 = meta.uncompressed_size >= U32_MAX / 5;
        let mut h = BytesMut::with_capacity(30 + name.len() + 20);
        h.put_u32_le(LFH_SIG);
        h.put_u16_le(if zip64 { 45 } else { 20 });
        h.put_u16_le(flags);
        h.put_u16_le(super::read::METHOD_DEFLATED);
        h.put_u16_le(time);
        h.put_u16_le(date);
        h.put_u32_le(0);
        let size_field = if zip64 { U32_MAX as u32 } else { 0 };
        h.put_u32_le(size_field);
        h.put_u32_le(size_field);
        h.put_u16_le(name.len() as u16);
        h.put_u16_le(if zip64 { 20 } else { 0 });
        h.put_slice(name);
        if zip64 {
            h.put_u16_le(0x0001);
            h.put_u16_le(16);
            h.put_u64_le(0);
            h.put_u64_le(0);
        }
        let mut meta = meta.clone();
        meta.method = super::read::METHOD_DEFLATED;
        self.open_streamed = Some((meta, self.offset, zip64));
        self.offset += h.len() as u64;
        self.entries += 1;
        Ok(h.freeze())
    }

    /// Ends a streamed entry after `compressed` data bytes were written: returns the
    /// data descriptor and records the entry with its real CRC and sizes.
    pub fn end_streamed(
        &mut self,
        crc32: u32,
        compressed: u64,
        uncompressed: u64,
    ) -> Result<Bytes, ZipError> {
        let (mut meta, header_at, zip64) = self
            .open_streamed
            .take()
            .ok_or_else(|| ZipError::Writer("end_streamed without a streamed entry".into()))?;
        if !zip64 && (compressed >= U32_MAX || uncompressed >= U32_MAX) {
            return Err(ZipError::Limit(format!(
                "entry {:?} grew to {uncompressed} bytes, past what its header allowed",
                meta.name
            )));
        }
        let mut d = BytesMut::with_capacity(24);
        d.put_u32_le(DATA_DESCRIPTOR_SIG);
        d.put_u32_le(crc32);
        if zip64 {
            d.put_u64_le(compressed);
            d.put_u64_le(uncompressed);
        } else {
            d.put_u32_le(compressed as u32);
            d.put_u32_le(uncompressed as u32);
        }
        meta.crc32 = crc32;
        meta.compressed_size = compressed;
        meta.uncompressed_size = uncompressed;
        let flags = FLAG_DATA_DESCRIPTOR | if meta.name.is_ascii() { 0 } else { FLAG_UTF8 };
        let version = if zip64 || header_at >= U32_MAX {
            45
        } else {
            20
        };
        self.central_record(&meta, flags, version, header_at);
        self.offset += compressed + d.len() as u64;
        Ok(d.freeze())
    }

    /// Records that the data for the open entry was written; `written` is the number
    /// of data bytes emitted, which must equal the declared compressed size.
    pub fn end_entry(&mut self, written: u64) -> Result<(), ZipError> {
        let (name, end) = self
            .open_entry
            .take()
            .ok_or_else(|| ZipError::Writer("end_entry without an open entry".into()))?;
        if self.offset + written != end {
            return Err(ZipError::Writer(format!(
                "entry {name:?}: wrote {written} data bytes, header declared {}",
                end - self.offset
            )));
        }
        self.offset = end;
        Ok(())
    }

    /// The central directory and end records. `comment` is the archive comment.
    pub fn finish(mut self, comment: &[u8]) -> Result<Bytes, ZipError> {
        if let Some((name, _)) = &self.open_entry {
            return Err(ZipError::Writer(format!("entry {name:?} was not ended")));
        }
        if let Some((meta, _, _)) = &self.open_streamed {
            return Err(ZipError::Writer(format!(
                "entry {:?} was not ended",
                meta.name
            )));
        }
        let comment = &comment[..comment.len().min(u16::MAX as usize)];
        let cd_offset = self.offset;
        let cd_size = self.central.len() as u64;
        let mut out = std::mem::take(&mut self.central);
        let zip64 = self.entries >= 0xFFFF || cd_offset >= U32_MAX || cd_size >= U32_MAX;
        if zip64 {
            let eocd64_offset = cd_offset + cd_size;
            out.put_u32_le(EOCD64_SIG);
            out.put_u64_le(44);
            out.put_u16_le(3 << 8 | 45);
            out.put_u16_le(45);
            out.put_u32_le(0);
            out.put_u32_le(0);
            out.put_u64_le(self.entries);
            out.put_u64_le(self.entries);
            out.put_u64_le(cd_size);
            out.put_u64_le(cd_offset);
            out.put_u32_le(EOCD64_LOCATOR_SIG);
            out.put_u32_le(0);
            out.put_u64_le(eocd64_offset);
            out.put_u32_le(1);
        }
        out.put_u32_le(EOCD_SIG);
        out.put_u16_le(0);
        out.put_u16_le(0);
        let n = self.entries.min(0xFFFF) as u16;
        out.put_u16_le(n);
        out.put_u16_le(n);
        out.put_u32_le(cd_size.min(U32_MAX) as u32);
        out.put_u32_le(cd_offset.min(U32_MAX) as u32);
        out.put_u16_le(comment.len() as u16);
        out.put_slice(comment);
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times_are_clamped() {
        assert_eq!(clamp_dos(0, 0), (DOS_DATE_MIN, 0));
        assert_eq!(clamp_dos(DOS_DATE_MIN, 0xFFFF), (DOS_DATE_MIN, 0));
        let d2024 = (44 << 9) | (6 << 5) | 15;
        assert_eq!(clamp_dos(d2024, 0x6000), (d2024, 0x6000));
    }

    #[test]
    fn wrong_data_length_is_caught() {
        let mut w = ZipWriter::new();
        w.local_header(&EntryMeta::file("a", 0, 0, 3, 3)).unwrap();
        assert!(w.end_entry(2).is_err());
    }
}
