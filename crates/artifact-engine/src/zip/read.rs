//! Zip reading without I/O: locate the end of central directory (zip64 too), parse the
//! central directory into [`CdEntry`] values, and check a local file header against it.
//!
//! The caller fetches bytes (ranged reads from S3, a file, memory) and hands slices in;
//! nothing here reads the whole archive. Invariants enforced for every entry:
//! - single-disk archives only; offsets and sizes must lie inside the archive and before
//!   the central directory;
//! - names are decoded (UTF-8 flag, Info-ZIP Unicode path field, else UTF-8 if valid,
//!   else CP437), backslashes from DOS/Windows hosts become `/`, and the result must
//!   pass [`crate::names::check_name`] (no `\`, control characters, absolute or drive
//!   paths, empty/`.`/`..` components, at most 4,096 bytes); with a Unicode path field
//!   the stored name must pass too, since readers ignoring the field use it;
//! - no two names are equal, nor (unless [`NameRules`] allow it) equal after Unicode
//!   lowercasing;
//! - the end record is the one every common reader picks (see `find_end_record`), and
//!   nothing zip-like follows it;
//! - encrypted entries are rejected (they cannot be transformed or verified);
//! - the local header's name and method must match the central directory, and so must
//!   its CRC and sizes unless the entry uses a data descriptor.
//!
//! Why our own reader rather than `async_zip` or `zip`: both want to own the byte source
//! and decompress; the worker needs the raw compressed bytes of each entry (to copy them
//! unchanged) and must plan coalesced ranged reads from the central directory alone.

use crate::names::{case_clash_why, check_name, CaseIndex, NameRules};
use crate::zip::ZipError;

pub(crate) const EOCD_SIG: u32 = 0x0605_4b50;
pub(crate) const EOCD64_SIG: u32 = 0x0606_4b50;
pub(crate) const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
pub(crate) const CDH_SIG: u32 = 0x0201_4b50;
pub(crate) const LFH_SIG: u32 = 0x0403_4b50;

/// Size of the fixed part of an end-of-central-directory record.
pub const EOCD_LEN: u64 = 22;
/// Largest possible EOCD record (fixed part plus a maximal comment) plus the zip64
/// locator in front of it: fetching this many trailing bytes always finds the EOCD.
pub const TAIL_LEN: u64 = EOCD_LEN + 65_535 + 20;
/// Size of a zip64 end-of-central-directory record without extensible data.
pub const EOCD64_LEN: u64 = 56;
/// Size of the fixed part of a local file header.
pub const LOCAL_HEADER_LEN: u64 = 30;
/// Upper bound on entries accepted in one archive (memory guard for the index).
pub const MAX_ENTRIES: u64 = 2_000_000;

/// Compression methods understood by the transform engine.
pub const METHOD_STORED: u16 = 0;
/// Deflate.
pub const METHOD_DEFLATED: u16 = 8;

const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
/// General purpose flag bit 11: names are UTF-8.
pub const FLAG_UTF8: u16 = 1 << 11;

/// Where the central directory is, as read from the end of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eocd {
    /// Offset of the EOCD record in the archive.
    pub eocd_offset: u64,
    /// Declared number of entries.
    pub entries: u64,
    /// Offset of the central directory (already corrected for prepended data).
    pub cd_offset: u64,
    /// Size of the central directory in bytes.
    pub cd_size: u64,
    /// Bytes prepended before the archive proper (self-extractors, stubs); added to
    /// every offset the archive declares.
    pub prefix: u64,
    /// Archive comment.
    pub comment: Vec<u8>,
    /// True when the counts, size and offset come from the zip64 end record (64-bit
    /// fields); false when from the classic record, whose 16-bit entry count some old
    /// tools let wrap (see [`parse_central_directory`]).
    pub zip64: bool,
}

/// Result of looking at the tail of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailParse {
    /// The central directory location is known.
    Done(Eocd),
    /// A zip64 archive: the zip64 EOCD record at `offset` (`EOCD64_LEN` bytes) is needed;
    /// pass it to [`parse_eocd64`] together with the partial result.
    NeedEocd64 {
        /// Where the record is when it has no extensible data (it then ends right
        /// before the locator); correct even with prepended bytes. Try this first.
        offset: u64,
        /// Where the locator says it is (differs only with prepended bytes or an
        /// extensible data sector); try this if `offset` holds no record. Never past
        /// `offset` (a larger value cannot be right and is replaced by `offset`), so
        /// `declared + EOCD64_LEN` cannot overflow.
        declared: u64,
        /// The EOCD fields read so far.
        partial: Eocd,
    },
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Finds the end-of-central-directory record in `tail`, the last `tail.len()` bytes of
/// an archive of `file_len` bytes. Fetch `min(file_len, TAIL_LEN)` bytes for `tail`.
pub fn parse_tail(tail: &[u8], file_len: u64) -> Result<TailParse, ZipError> {
    let tail_start = file_len
        .checked_sub(tail.len() as u64)
        .ok_or_else(|| ZipError::Malformed("tail longer than the archive".into()))?;
    if (tail.len() as u64) < EOCD_LEN {
        return Err(ZipError::NotZip(format!(
            "{file_len} bytes is too short to be a zip archive"
        )));
    }
    let pos = find_end_record(tail)?;
    let rec = &tail[pos..];
    let disk = u16le(rec, 4);
    let cd_disk = u16le(rec, 6);
    let entries_this_disk = u16le(rec, 8) as u64;
    let entries = u16le(rec, 10) as u64;
    let cd_size = u32le(rec, 12) as u64;
    let cd_offset = u32le(rec, 16) as u64;
    let comment_len = u16le(rec, 20) as usize;
    let comment = rec[22..22 + comment_len].to_vec();
    let eocd_offset = tail_start + pos as u64;
    let mut partial = Eocd {
        eocd_offset,
        entries,
        cd_offset,
        cd_size,
        prefix: 0,
        comment,
        zip64: false,
    };
    // Zip64 locator sits right before the EOCD.
    if pos >= 20 && u32le(tail, pos - 20) == EOCD64_LOCATOR_SIG {
        let loc = &tail[pos - 20..pos];
        let eocd64_offset = u64le(loc, 8);
        let total_disks = u32le(loc, 16);
        if total_disks > 1 {
            return Err(ZipError::Unsupported(
                "multi-disk (spanned) archives".into(),
            ));
        }
        // The zip64 record sits right before the locator; its declared offset may be
        // shifted by prepended data, which parse_eocd64 detects.
        let actual = eocd_offset.checked_sub(20 + EOCD64_LEN).ok_or_else(|| {
            ZipError::Malformed("zip64 locator without room for a zip64 record".into())
        })?;
        return Ok(TailParse::NeedEocd64 {
            offset: actual,
            declared: eocd64_offset.min(actual),
            partial,
        });
    }
    if disk != 0 || cd_disk != 0 || entries_this_disk != entries {
        return Err(ZipError::Unsupported(
            "multi-disk (spanned) archives".into(),
        ));
    }
    fix_prefix(&mut partial, eocd_offset)?;
    Ok(TailParse::Done(partial))
}

/// Zip signatures that must not appear after the end record's fixed part (in its
/// comment or in trailing bytes): a reader searching differently would find them.
const TRAILER_FORBIDDEN: [u32; 5] = [LFH_SIG, CDH_SIG, EOCD_SIG, EOCD64_SIG, EOCD64_LOCATOR_SIG];

/// Position in `tail` of the end record every common reader agrees on, or an error
/// when they would disagree.
///
/// The record chosen is the *last* signature with room for the fixed 22 bytes: what
/// Python's `zipfile` (exact match at `len - 22`, else the last signature), Go (the
/// last one whose comment fits) and Info-ZIP find. Refused, because some reader would
/// pick another record or see other structures:
/// - its comment length runs past the end of the file (Go and Java skip it, Python
///   takes it with a truncated comment);
/// - its comment or the bytes after it hold a zip signature (local, central, end,
///   zip64 end or locator);
/// - an earlier signature's comment length ends exactly at the end of the file, which
///   readers that prefer an exact comment match would choose instead.
fn find_end_record(tail: &[u8]) -> Result<usize, ZipError> {
    let fixed = EOCD_LEN as usize;
    let last_start = tail.len() - fixed;
    let candidates = (0..=last_start)
        .rev()
        .filter(|&p| u32le(tail, p) == EOCD_SIG);
    let mut candidates = candidates.map(|p| (p, p + fixed + u16le(tail, p + 20) as usize));
    let Some((pos, comment_end)) = candidates.next() else {
        return Err(ZipError::NotZip(
            "no end-of-central-directory record in the last 64 KiB (not a zip, or truncated)"
                .into(),
        ));
    };
    if comment_end > tail.len() {
        return Err(ZipError::Malformed(format!(
            "the end-of-central-directory record's comment ({} bytes) runs past the end of \
             the file ({} bytes left): zip readers disagree on where such an archive ends",
            comment_end - pos - fixed,
            tail.len() - pos - fixed
        )));
    }
    // Other readers take the last end-record signature; zip structures in the comment
    // or after it would make some tool see a different archive than we do.
    let after = &tail[pos + fixed..];
    if TRAILER_FORBIDDEN
        .iter()
        .any(|sig| after.windows(4).any(|w| w == sig.to_le_bytes()))
    {
        return Err(ZipError::Malformed(
            "the archive comment or the bytes after the end record contain zip headers (an \
             ambiguous archive that other tools would read differently)"
                .into(),
        ));
    }
    if let Some((other, _)) = candidates.find(|&(_, end)| end == tail.len()) {
        return Err(ZipError::Malformed(format!(
            "another end record, {} bytes before the last one, has a comment reaching the \
             end of the file (an ambiguous archive that other tools would read differently)",
            pos - other
        )));
    }
    Ok(pos)
}

/// Completes a zip64 archive's [`Eocd`] from the 56-byte zip64 EOCD record found at
/// the offset [`parse_tail`] asked for.
pub fn parse_eocd64(rec: &[u8], mut partial: Eocd, rec_offset: u64) -> Result<Eocd, ZipError> {
    // The record must come before its locator, which sits right before the EOCD.
    if rec_offset.saturating_add(EOCD64_LEN) > partial.eocd_offset.saturating_sub(20) {
        return Err(ZipError::Malformed(
            "zip64 end record does not precede its locator".into(),
        ));
    }
    if rec.len() < EOCD64_LEN as usize || u32le(rec, 0) != EOCD64_SIG {
        return Err(ZipError::Malformed(
            "zip64 end-of-central-directory record missing where the locator points".into(),
        ));
    }
    let disk = u32le(rec, 16);
    let cd_disk = u32le(rec, 20);
    let entries_this_disk = u64le(rec, 24);
    let entries = u64le(rec, 32);
    if disk != 0 || cd_disk != 0 || entries_this_disk != entries {
        return Err(ZipError::Unsupported(
            "multi-disk (spanned) archives".into(),
        ));
    }
    partial.entries = entries;
    partial.zip64 = true;
    partial.cd_size = u64le(rec, 40);
    partial.cd_offset = u64le(rec, 48);
    fix_prefix(&mut partial, rec_offset)?;
    Ok(partial)
}

/// The central directory ends where the (zip64) EOCD starts; if the declared offset
/// disagrees, the difference is data prepended to the archive.
fn fix_prefix(e: &mut Eocd, cd_end: u64) -> Result<(), ZipError> {
    let actual_start = cd_end.checked_sub(e.cd_size).ok_or_else(|| {
        ZipError::Malformed(format!(
            "central directory size {} exceeds the space before its end record",
            e.cd_size
        ))
    })?;
    if actual_start < e.cd_offset {
        return Err(ZipError::Malformed(format!(
            "central directory offset {} lies past its end record",
            e.cd_offset
        )));
    }
    e.prefix = actual_start - e.cd_offset;
    e.cd_offset = actual_start;
    if e.entries > MAX_ENTRIES {
        return Err(ZipError::Limit(format!(
            "{} entries (the limit is {MAX_ENTRIES})",
            e.entries
        )));
    }
    // Each central directory header takes at least 46 bytes.
    if e.entries.saturating_mul(46) > e.cd_size {
        return Err(ZipError::Malformed(format!(
            "{} entries cannot fit in a {}-byte central directory",
            e.entries, e.cd_size
        )));
    }
    Ok(())
}

/// Mask of the file-type bits of a Unix mode.
pub const S_IFMT: u32 = 0o170000;
/// File type of a symbolic link.
pub const S_IFLNK: u32 = 0o120000;

/// Hosts whose external attributes carry a Unix mode in their high 16 bits: Unix (3)
/// and OS X (19).
pub fn unix_host(host: u16) -> bool {
    matches!(host, 3 | 19)
}

/// One entry of the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdEntry {
    /// Decoded, normalised, validated name (`/` separators; directories end in `/`).
    pub name: String,
    /// Name bytes exactly as stored (compared with the local header).
    pub raw_name: Vec<u8>,
    /// "Version made by" (high byte: host system, 3 = Unix).
    pub version_made_by: u16,
    /// "Version needed to extract".
    pub version_needed: u16,
    /// General purpose flags.
    pub flags: u16,
    /// Compression method (0 stored, 8 deflate; others are copied raw only).
    pub method: u16,
    /// DOS modification time.
    pub dos_time: u16,
    /// DOS modification date.
    pub dos_date: u16,
    /// CRC-32 of the uncompressed data.
    pub crc32: u32,
    /// Compressed size.
    pub compressed_size: u64,
    /// Uncompressed size.
    pub uncompressed_size: u64,
    /// Offset of the local header in the archive (prefix-corrected).
    pub header_offset: u64,
    /// Internal attributes.
    pub internal_attrs: u16,
    /// External attributes (Unix mode in the high 16 bits when made on Unix).
    pub external_attrs: u32,
}

impl CdEntry {
    /// True for directory entries (name ends in `/`).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
    /// The Unix mode (file type and permission bits) from the high 16 bits of the
    /// external attributes, when the entry was made on a Unix-like host: Unix (3) or
    /// OS X (19, which Go's `archive/zip` also reads as Unix). `None` for other hosts
    /// (DOS, NTFS...), whose attributes hold no Unix mode.
    pub fn unix_mode(&self) -> Option<u32> {
        unix_host(self.version_made_by >> 8).then_some(self.external_attrs >> 16)
    }
    /// True for symbolic links: a Unix mode whose file type is `S_IFLNK` (0o120000).
    /// Their data is the link target, not file content.
    pub fn is_symlink(&self) -> bool {
        self.unix_mode().is_some_and(|m| m & S_IFMT == S_IFLNK)
    }
    /// True when the entry's sizes and CRC follow its data in a data descriptor.
    pub fn has_data_descriptor(&self) -> bool {
        self.flags & FLAG_DATA_DESCRIPTOR != 0
    }
}

/// Parses the central directory bytes (exactly `eocd.cd_size` bytes starting at
/// `eocd.cd_offset`) with the default [`NameRules`] (names differing only in case are
/// refused). See [`parse_central_directory_with`].
pub fn parse_central_directory(cd: &[u8], eocd: &Eocd) -> Result<Vec<CdEntry>, ZipError> {
    parse_central_directory_with(cd, eocd, &NameRules::default())
}

/// Parses the central directory bytes (exactly `eocd.cd_size` bytes starting at
/// `eocd.cd_offset`). Checks entry count, offsets, names (each against
/// [`crate::names::check_name`], and against each other: exact duplicates always,
/// case-only duplicates unless `rules` allow them) and encryption.
///
/// A classic (non-zip64) end record whose 16-bit entry count wrapped — more than
/// 65,535 entries written without zip64 — is accepted as Info-ZIP and Java do: the
/// directory is walked to its end and the count must match modulo 65,536.
pub fn parse_central_directory_with(
    cd: &[u8],
    eocd: &Eocd,
    rules: &NameRules,
) -> Result<Vec<CdEntry>, ZipError> {
    let mut entries = Vec::with_capacity(eocd.entries.min(1 << 20) as usize);
    let mut at = 0usize;
    let mut seen = std::collections::HashSet::with_capacity(entries.capacity());
    let mut folded = CaseIndex::new();
    while at < cd.len() {
        if cd.len() - at < 4 || u32le(cd, at) != CDH_SIG {
            if count_matches(eocd, entries.len()) {
                break; // trailing bytes (digital signature record etc.)
            }
            return Err(ZipError::Malformed(format!(
                "bad central directory header signature for entry #{}",
                entries.len() + 1
            )));
        }
        if entries.len() as u64 >= MAX_ENTRIES {
            return Err(ZipError::Limit(format!(
                "more than {MAX_ENTRIES} entries in the central directory"
            )));
        }
        let (e, total) = parse_cd_header(&cd[at..], eocd, entries.len() + 1)?;
        if !seen.insert(e.name.clone()) {
            return Err(ZipError::BadName {
                name: e.name,
                why: "appears twice in the archive".into(),
            });
        }
        if !rules.allow_case_duplicates {
            if let Some((other, ())) = folded.insert(&e.name, ()) {
                return Err(ZipError::BadName {
                    why: case_clash_why(&other),
                    name: e.name,
                });
            }
        }
        entries.push(e);
        at += total;
    }
    if !count_matches(eocd, entries.len()) {
        return Err(ZipError::Malformed(format!(
            "end record declares {} entries but the central directory holds {}",
            eocd.entries,
            entries.len()
        )));
    }
    Ok(entries)
}

/// The declared count matches `found`, or is its 16-bit wrap in a classic end record.
fn count_matches(eocd: &Eocd, found: usize) -> bool {
    let found = found as u64;
    found == eocd.entries || (!eocd.zip64 && found > 0xFFFF && found % 0x1_0000 == eocd.entries)
}

/// Parses the central directory header at the start of `h` (entry number `nth`,
/// for messages); returns the entry and the header's length.
fn parse_cd_header(h: &[u8], eocd: &Eocd, nth: usize) -> Result<(CdEntry, usize), ZipError> {
    if h.len() < 46 {
        return Err(ZipError::Malformed(format!(
            "central directory truncated in entry #{nth}"
        )));
    }
    let name_len = u16le(h, 28) as usize;
    let extra_len = u16le(h, 30) as usize;
    let comment_len = u16le(h, 32) as usize;
    let total = 46 + name_len + extra_len + comment_len;
    if h.len() < total {
        return Err(ZipError::Malformed(format!(
            "central directory entry #{nth} runs past the directory"
        )));
    }
    let raw_name = h[46..46 + name_len].to_vec();
    let extra = &h[46 + name_len..46 + name_len + extra_len];
    let version_made_by = u16le(h, 4);
    let flags = u16le(h, 8);
    let mut e = CdEntry {
        name: String::new(),
        raw_name,
        version_made_by,
        version_needed: u16le(h, 6),
        flags,
        method: u16le(h, 10),
        dos_time: u16le(h, 12),
        dos_date: u16le(h, 14),
        crc32: u32le(h, 16),
        compressed_size: u32le(h, 20) as u64,
        uncompressed_size: u32le(h, 24) as u64,
        header_offset: u32le(h, 42) as u64,
        internal_attrs: u16le(h, 36),
        external_attrs: u32le(h, 38),
    };
    let disk_start = u16le(h, 34) as u32;
    let mut unicode_name = None;
    apply_extra(&mut e, extra, disk_start, &mut unicode_name)?;
    e.name = checked_name(&e.raw_name, flags, version_made_by >> 8, unicode_name)?;
    if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 {
        return Err(ZipError::Unsupported(format!(
            "entry {:?} is encrypted",
            e.name
        )));
    }
    check_entry_bounds(&mut e, eocd)?;
    Ok((e, total))
}

/// Decodes and checks an entry's name. With an Info-ZIP Unicode path field, the
/// stored name is checked as well: readers that ignore the field extract under it.
fn checked_name(
    raw: &[u8],
    flags: u16,
    host: u16,
    unicode: Option<String>,
) -> Result<String, ZipError> {
    let bad = |name: String, why: String| ZipError::BadName { name, why };
    let stored = decode_name(raw, flags, host, None)
        .map_err(|why| bad(String::from_utf8_lossy(raw).into_owned(), why))?;
    validate_name(&stored).map_err(|why| bad(stored.clone(), why))?;
    let Some(u) = unicode else {
        return Ok(stored);
    };
    let name = decode_name(raw, flags, host, Some(u)).map_err(|why| bad(stored.clone(), why))?;
    validate_name(&name).map_err(|why| {
        bad(
            name.clone(),
            format!("(the Unicode path extra field of {stored:?}) {why}"),
        )
    })?;
    Ok(name)
}

/// Applies the archive prefix to the entry's offset and checks that its header and
/// data lie before the central directory.
fn check_entry_bounds(e: &mut CdEntry, eocd: &Eocd) -> Result<(), ZipError> {
    e.header_offset = e
        .header_offset
        .checked_add(eocd.prefix)
        .ok_or_else(|| ZipError::Malformed("entry offset overflows".into()))?;
    if e.header_offset.saturating_add(LOCAL_HEADER_LEN) > eocd.cd_offset {
        return Err(ZipError::Malformed(format!(
            "entry {:?} starts at {} which is inside or past the central directory at {}",
            e.name, e.header_offset, eocd.cd_offset
        )));
    }
    if e.compressed_size > eocd.cd_offset {
        return Err(ZipError::Malformed(format!(
            "entry {:?} claims {} compressed bytes, more than the archive holds",
            e.name, e.compressed_size
        )));
    }
    if e.method == METHOD_STORED && e.compressed_size != e.uncompressed_size {
        return Err(ZipError::Malformed(format!(
            "stored entry {:?} has compressed size {} but uncompressed size {}",
            e.name, e.compressed_size, e.uncompressed_size
        )));
    }
    Ok(())
}

fn apply_extra(
    e: &mut CdEntry,
    mut extra: &[u8],
    disk_start: u32,
    unicode_name: &mut Option<String>,
) -> Result<(), ZipError> {
    let mut disk = disk_start;
    while extra.len() >= 4 {
        let id = u16le(extra, 0);
        let len = u16le(extra, 2) as usize;
        if extra.len() < 4 + len {
            break; // tolerate a truncated trailing field, as Info-ZIP does
        }
        let data = &extra[4..4 + len];
        match id {
            0x0001 => {
                let mut d = data;
                let mut take = |field: &mut u64| -> Result<(), ZipError> {
                    if d.len() < 8 {
                        return Err(ZipError::Malformed(
                            "zip64 extra field shorter than the fields it must hold".into(),
                        ));
                    }
                    *field = u64le(d, 0);
                    d = &d[8..];
                    Ok(())
                };
                if e.uncompressed_size == 0xFFFF_FFFF {
                    take(&mut e.uncompressed_size)?;
                }
                if e.compressed_size == 0xFFFF_FFFF {
                    take(&mut e.compressed_size)?;
                }
                if e.header_offset == 0xFFFF_FFFF {
                    take(&mut e.header_offset)?;
                }
                if disk == 0xFFFF && d.len() >= 4 {
                    disk = u32le(d, 0);
                }
            }
            0x7075 if len >= 5 && data[0] == 1 => {
                let crc = u32le(data, 1);
                if crc == crc32fast::hash(&e.raw_name) {
                    if let Ok(s) = std::str::from_utf8(&data[5..]) {
                        *unicode_name = Some(s.to_owned());
                    }
                }
            }
            _ => {}
        }
        extra = &extra[4 + len..];
    }
    if disk != 0 {
        return Err(ZipError::Unsupported(
            "multi-disk (spanned) archives".into(),
        ));
    }
    Ok(())
}

/// Host systems whose tools write `\` as the path separator.
fn dos_like_host(host: u16) -> bool {
    matches!(host, 0 | 11 | 14)
}

fn decode_name(
    raw: &[u8],
    flags: u16,
    host: u16,
    unicode: Option<String>,
) -> Result<String, String> {
    let mut name = if let Some(u) = unicode {
        u
    } else if flags & FLAG_UTF8 != 0 {
        String::from_utf8(raw.to_vec()).map_err(|_| "flagged UTF-8 but is not valid UTF-8")?
    } else {
        match std::str::from_utf8(raw) {
            Ok(s) => s.to_owned(),
            Err(_) => raw.iter().map(|&b| cp437(b)).collect(),
        }
    };
    if dos_like_host(host) && name.contains('\\') {
        name = name.replace('\\', "/");
    }
    Ok(name)
}

/// Rejects unsafe or invalid names: the rules of [`crate::names::check_name`] (empty,
/// too long, control characters, `\`, absolute, drive letter, empty, `.` or `..`
/// components). The error says which rule.
pub fn validate_name(name: &str) -> Result<(), String> {
    check_name(name)
}

fn cp437(b: u8) -> char {
    const HIGH: [char; 128] = [
        'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', 'É', 'æ',
        'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', 'á', 'í', 'ó', 'ú',
        'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', '░', '▒', '▓', '│', '┤', '╡',
        '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', '└', '┴', '┬', '├', '─', '┼', '╞', '╟',
        '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘',
        '┌', '█', '▄', '▌', '▐', '▀', 'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ',
        '∞', 'φ', 'ε', '∩', '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²',
        '■', '\u{a0}',
    ];
    if b < 0x80 {
        b as char
    } else {
        HIGH[(b - 0x80) as usize]
    }
}

/// The fixed fields of a local file header.
#[derive(Debug, Clone, Copy)]
pub struct LocalHeader {
    /// Total header length (fixed part, name and extra field): entry data starts here.
    pub len: u64,
}

/// Parses the local header at the start of `buf` and checks it against the central
/// directory entry. `buf` must hold at least the fixed 30 bytes; returns
/// `Ok(None)` when more bytes are needed to see the whole name (call again with more).
pub fn check_local_header(buf: &[u8], e: &CdEntry) -> Result<Option<LocalHeader>, ZipError> {
    if buf.len() < LOCAL_HEADER_LEN as usize {
        return Ok(None);
    }
    let bad = |why: String| ZipError::LocalHeader {
        name: e.name.clone(),
        why,
    };
    if u32le(buf, 0) != LFH_SIG {
        return Err(bad(format!(
            "no local header signature at offset {}",
            e.header_offset
        )));
    }
    let flags = u16le(buf, 6);
    let method = u16le(buf, 8);
    let crc = u32le(buf, 14);
    let csize = u32le(buf, 18) as u64;
    let usize_ = u32le(buf, 22) as u64;
    let name_len = u16le(buf, 26) as usize;
    let extra_len = u16le(buf, 28) as usize;
    let len = LOCAL_HEADER_LEN + name_len as u64 + extra_len as u64;
    if buf.len() < LOCAL_HEADER_LEN as usize + name_len {
        return Ok(None);
    }
    let name = &buf[30..30 + name_len];
    if name != e.raw_name.as_slice() {
        return Err(bad(format!(
            "local header names {:?}, central directory names {:?}",
            String::from_utf8_lossy(name),
            e.name
        )));
    }
    if method != e.method {
        return Err(bad(format!(
            "local header method {method}, central directory method {}",
            e.method
        )));
    }
    if flags & FLAG_DATA_DESCRIPTOR == 0 && e.flags & FLAG_DATA_DESCRIPTOR == 0 {
        if crc != e.crc32 {
            return Err(bad(format!(
                "local header CRC {crc:08x}, central directory CRC {:08x}",
                e.crc32
            )));
        }
        // 0xFFFFFFFF means "in the zip64 extra field"; the central directory is
        // authoritative for those.
        if csize != 0xFFFF_FFFF && csize != e.compressed_size {
            return Err(bad(format!(
                "local header compressed size {csize}, central directory {}",
                e.compressed_size
            )));
        }
        if usize_ != 0xFFFF_FFFF && usize_ != e.uncompressed_size {
            return Err(bad(format!(
                "local header size {usize_}, central directory {}",
                e.uncompressed_size
            )));
        }
    }
    Ok(Some(LocalHeader { len }))
}

/// For each entry (same order as `entries`), the end of its *region*: the offset of
/// the next local header in the archive, or the central directory, whichever comes
/// first; and never past the largest header + data + descriptor the entry can have.
/// An entry's local header, data and any data descriptor must fit in
/// `[header_offset, end)`; this is what stops overlapping-entry zip bombs and lets a reader fetch exact ranges.
pub fn region_ends(entries: &[CdEntry], cd_offset: u64) -> Result<Vec<u64>, ZipError> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_unstable_by_key(|&i| entries[i].header_offset);
    let mut ends = vec![0u64; entries.len()];
    for (k, &i) in order.iter().enumerate() {
        let next = match order.get(k + 1) {
            Some(&j) => {
                if entries[j].header_offset == entries[i].header_offset {
                    return Err(ZipError::Malformed(format!(
                        "entries {:?} and {:?} share one local header (overlapping entries)",
                        entries[i].name, entries[j].name
                    )));
                }
                entries[j].header_offset
            }
            None => cd_offset,
        };
        let min_end = entries[i]
            .header_offset
            .saturating_add(LOCAL_HEADER_LEN + entries[i].raw_name.len() as u64)
            .saturating_add(entries[i].compressed_size);
        if min_end > next {
            return Err(ZipError::Malformed(format!(
                "entry {:?} ({} compressed bytes at offset {}) overlaps the next entry or the \
                 central directory at {next}",
                entries[i].name, entries[i].compressed_size, entries[i].header_offset
            )));
        }
        // The most the entry itself can span: its header (the local name equals the
        // central one; the extra field is at most 64 KiB), its data and a zip64 data
        // descriptor. Bytes past that belong to no entry and are never read.
        let max_end = min_end
            .saturating_add(0xFFFF)
            .saturating_add(MAX_DESCRIPTOR_LEN);
        ends[i] = next.min(max_end);
    }
    Ok(ends)
}

/// A data descriptor with signature and zip64 sizes.
const MAX_DESCRIPTOR_LEN: u64 = 24;

/// Reads the end records and central directory of an archive held in memory, with
/// the default [`NameRules`].
pub fn index_bytes(archive: &[u8]) -> Result<(Eocd, Vec<CdEntry>), ZipError> {
    index_bytes_with(archive, &NameRules::default())
}

/// Reads the end records and central directory of an archive held in memory. A
/// wrapped 16-bit entry count is corrected in the returned [`Eocd`].
pub fn index_bytes_with(
    archive: &[u8],
    rules: &NameRules,
) -> Result<(Eocd, Vec<CdEntry>), ZipError> {
    let len = archive.len() as u64;
    let tail_len = len.min(TAIL_LEN) as usize;
    let eocd = match parse_tail(&archive[archive.len() - tail_len..], len)? {
        TailParse::Done(e) => e,
        TailParse::NeedEocd64 {
            offset,
            declared,
            partial,
        } => {
            let rec = |o: u64| {
                let end = usize::try_from(o.checked_add(EOCD64_LEN)?).ok()?;
                archive.get(o as usize..end)
            };
            match rec(offset).map(|r| parse_eocd64(r, partial.clone(), offset)) {
                Some(Ok(e)) => e,
                _ => {
                    let r = rec(declared).ok_or_else(|| {
                        ZipError::Malformed("zip64 end record lies outside the archive".into())
                    })?;
                    parse_eocd64(r, partial, declared)?
                }
            }
        }
    };
    let cd = cd_range(&eocd, archive.len())
        .and_then(|r| archive.get(r))
        .ok_or_else(|| ZipError::Malformed("central directory lies outside the archive".into()))?;
    let entries = parse_central_directory_with(cd, &eocd, rules)?;
    check_start(archive.get(..4).unwrap_or(archive), &entries)?;
    // A wrapped 16-bit count was accepted by walking the directory: report the truth.
    let eocd = Eocd {
        entries: entries.len() as u64,
        ..eocd
    };
    Ok((eocd, entries))
}

/// Refuses an archive whose first bytes (`start`, at least 4 when the object has
/// them) are a local file header that no central-directory entry points at: another
/// archive, or hidden entries, before the first listed entry. Readers that scan
/// local headers from the start of the file would see different entries than
/// readers of the central directory. (Self-extracting stubs start with an
/// executable header, not a zip signature, and still pass.)
pub fn check_start(start: &[u8], entries: &[CdEntry]) -> Result<(), ZipError> {
    let starts_with_entry = start.len() >= 4 && u32le(start, 0) == LFH_SIG;
    if starts_with_entry && !entries.iter().any(|e| e.header_offset == 0) {
        return Err(ZipError::Malformed(
            "the file starts with a zip entry that the central directory does not list \
             (another archive or hidden entries come first); readers that scan from the \
             start would see different entries"
                .into(),
        ));
    }
    Ok(())
}

/// The byte range of the central directory in an archive of `len` bytes, if it fits
/// (checked arithmetic: the offsets come from the file).
fn cd_range(eocd: &Eocd, len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(eocd.cd_offset).ok()?;
    let end = usize::try_from(eocd.cd_offset.checked_add(eocd.cd_size)?).ok()?;
    (end <= len).then_some(start..end)
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod hostile;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_rejected() {
        for bad in ["", "/etc/passwd", "a/../../b", "..", "C:/x", "a//b", "a\0b"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "a/b/", "dir/", "ünï/ćode.txt", "a..b", ".hidden"] {
            assert!(validate_name(good).is_ok(), "{good:?} rejected");
        }
    }

    #[test]
    fn dos_backslashes_are_normalised_and_cp437_decoded() {
        assert_eq!(decode_name(b"a\\b.txt", 0, 0, None).unwrap(), "a/b.txt");
        assert_eq!(decode_name(b"a\\b.txt", 0, 3, None).unwrap(), "a\\b.txt");
        assert_eq!(decode_name(&[0x81, b'x'], 0, 0, None).unwrap(), "üx");
        assert!(decode_name(&[0xff, 0xfe], FLAG_UTF8, 3, None).is_err());
    }

    #[test]
    fn unix_modes_and_links_come_from_unix_hosts_only() {
        let mut e = CdEntry {
            name: "l".into(),
            raw_name: b"l".to_vec(),
            version_made_by: 3 << 8 | 30,
            version_needed: 10,
            flags: 0,
            method: 0,
            dos_time: 0,
            dos_date: 0,
            crc32: 0,
            compressed_size: 0,
            uncompressed_size: 0,
            header_offset: 0,
            internal_attrs: 0,
            external_attrs: 0o120777 << 16,
        };
        assert_eq!(e.unix_mode(), Some(0o120777));
        assert!(e.is_symlink());
        e.version_made_by = 19 << 8 | 30; // OS X
        assert!(e.is_symlink());
        e.version_made_by = 20; // DOS: the high bits are no Unix mode
        assert_eq!(e.unix_mode(), None);
        assert!(!e.is_symlink());
        e.version_made_by = 3 << 8 | 30;
        for (mode, link) in [
            (0o100755, false),
            (0o040755, false),
            (0o140777, false),
            (0, false),
        ] {
            e.external_attrs = mode << 16;
            assert_eq!(e.is_symlink(), link, "{mode:o}");
        }
    }

    #[test]
    fn garbage_is_not_a_zip() {
        assert!(matches!(parse_tail(b"hello", 5), Err(ZipError::NotZip(_))));
        let junk = vec![7u8; 1000];
        assert!(matches!(parse_tail(&junk, 1000), Err(ZipError::NotZip(_))));
    }
}
