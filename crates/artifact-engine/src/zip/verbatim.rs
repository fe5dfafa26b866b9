//! Entries written byte for byte as the input has them: local header, data and data
//! descriptor. A run of such entries that lie next to each other in the input is one
//! byte range of the input in the output too, which an object store can copy
//! server-side (`artifact-core`'s sink does, with UploadPartCopy); only the central
//! directory, written by [`ZipWriter`](super::ZipWriter), says where they now are.
//!
//! An entry qualifies only when nothing about it changes and its local header is
//! plain ([`layout`]): the same name bytes (valid UTF-8, flagged as such when not
//! ASCII) and flags as the central directory, no encryption, no descriptor after a
//! STORED entry (java.util.zip readers reject those), sizes and CRC in the header
//! (unless a descriptor follows), and nothing in the region after the data but the
//! descriptor its flags call for. Anything else is written the ordinary way, with a
//! header made here, so a hostile local header (odd extra fields, bytes hidden
//! between entries) never reaches an output. A descriptor whose values disagree with
//! the central directory is replaced by a correct one of the same length
//! ([`descriptor`]), so the entry's layout is the same either way.

use bytes::{BufMut, Bytes, BytesMut};

use super::read::{CdEntry, FLAG_UTF8, LFH_SIG, LOCAL_HEADER_LEN, METHOD_STORED};
use super::EntryMeta;
use crate::entry::meta_for;

const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
/// Flags a verbatim entry may carry: the descriptor, UTF-8 names, and the deflate
/// options (bits 1–2, informational).
const PLAIN_FLAGS: u16 = FLAG_DATA_DESCRIPTOR | FLAG_UTF8 | 0b110;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const U32_MAX: u64 = 0xFFFF_FFFF;

/// Where an entry's parts lie in its region, when it can be written verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbatim {
    /// Local header length (data starts here).
    pub header_len: u64,
    /// The data descriptor's length after the data (0 without one).
    pub tail_len: u64,
    /// The local header's flags (the central-directory record repeats them).
    pub flags: u16,
}

impl Verbatim {
    /// Bytes of the whole entry: header, data, descriptor.
    pub fn len(&self, e: &CdEntry) -> u64 {
        self.header_len + e.compressed_size + self.tail_len
    }

    /// Always false: an entry has at least a header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Whether `e`, written with header fields `meta` into a region of `region_len`
/// bytes that starts with `header` (at least the local header), can be written
/// verbatim, and how its region is laid out. See the module doc for the rules.
pub fn layout(e: &CdEntry, meta: &EntryMeta, header: &[u8], region_len: u64) -> Option<Verbatim> {
    if *meta != meta_for(e, &e.name) || e.raw_name != e.name.as_bytes() {
        return None; // renamed, re-timed, re-moded, or a name decoded from CP437
    }
    if header.len() < LOCAL_HEADER_LEN as usize || u32le(header, 0) != LFH_SIG {
        return None;
    }
    let flags = u16le(header, 6);
    let descriptor = flags & FLAG_DATA_DESCRIPTOR != 0;
    let plain = flags == e.flags
        && flags & !PLAIN_FLAGS == 0
        && (e.name.is_ascii() || flags & FLAG_UTF8 != 0)
        && !(descriptor && e.method == METHOD_STORED);
    if !plain || u16le(header, 8) != e.method {
        return None;
    }
    let name_len = u16le(header, 26) as u64;
    let extra_len = u16le(header, 28) as u64;
    let header_len = LOCAL_HEADER_LEN + name_len + extra_len;
    if header.len() < (LOCAL_HEADER_LEN + name_len) as usize
        || &header[30..30 + name_len as usize] != e.raw_name.as_slice()
    {
        return None;
    }
    let (crc, csize, usize_) = (u32le(header, 14), u32le(header, 18), u32le(header, 22));
    let tail_len = region_len.checked_sub(header_len.checked_add(e.compressed_size)?)?;
    let exact =
        crc == e.crc32 && csize as u64 == e.compressed_size && usize_ as u64 == e.uncompressed_size;
    if descriptor {
        let zeros = crc == 0 && csize == 0 && usize_ == 0;
        let big = e.compressed_size >= U32_MAX || e.uncompressed_size >= U32_MAX;
        let lens: &[u64] = if big { &[20, 24] } else { &[12, 16] };
        if !(zeros || exact) || extra_len != 0 || !lens.contains(&tail_len) {
            return None;
        }
    } else if !exact || tail_len != 0 || e.compressed_size >= U32_MAX {
        return None;
    }
    Some(Verbatim {
        header_len,
        tail_len,
        flags,
    })
}

/// The descriptor to write after `e`'s data in a verbatim entry: `tail` itself when
/// it states the central directory's CRC and sizes, else a correct one of the same
/// length (with a signature when 16 or 24 bytes long).
pub fn descriptor(e: &CdEntry, tail: Bytes) -> Bytes {
    let n = tail.len();
    let body = if n == 16 || n == 24 {
        &tail[4..]
    } else {
        &tail[..]
    };
    let signed_ok = !(n == 16 || n == 24) || u32le(&tail, 0) == DESCRIPTOR_SIG;
    let ok = match body.len() {
        12 => {
            u32le(body, 0) == e.crc32
                && u32le(body, 4) as u64 == e.compressed_size
                && u32le(body, 8) as u64 == e.uncompressed_size
        }
        20 => {
            u32le(body, 0) == e.crc32
                && u64le(body, 4) == e.compressed_size
                && u64le(body, 12) == e.uncompressed_size
        }
        _ => true, // no descriptor
    };
    if ok && signed_ok {
        return tail;
    }
    let mut d = BytesMut::with_capacity(n);
    if n == 16 || n == 24 {
        d.put_u32_le(DESCRIPTOR_SIG);
    }
    d.put_u32_le(e.crc32);
    if n >= 20 {
        d.put_u64_le(e.compressed_size);
        d.put_u64_le(e.uncompressed_size);
    } else {
        d.put_u32_le(e.compressed_size as u32);
        d.put_u32_le(e.uncompressed_size as u32);
    }
    d.freeze()
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zip::read::METHOD_DEFLATED;
    use proptest::prelude::Just;

    fn entry(flags: u16, method: u16) -> CdEntry {
        CdEntry {
            name: "a.txt".into(),
            raw_name: b"a.txt".to_vec(),
            version_made_by: 3 << 8 | 20,
            version_needed: 20,
            flags,
            method,
            dos_time: 0,
            dos_date: 0x21,
            crc32: 0xdead_beef,
            compressed_size: 7,
            uncompressed_size: 9,
            header_offset: 0,
            internal_attrs: 0,
            external_attrs: 0o100644 << 16,
        }
    }

    fn header(e: &CdEntry, flags: u16, zeros: bool) -> Vec<u8> {
        let mut h = BytesMut::new();
        h.put_u32_le(LFH_SIG);
        h.put_u16_le(20);
        h.put_u16_le(flags);
        h.put_u16_le(e.method);
        h.put_u16_le(0);
        h.put_u16_le(0x21);
        let (c, s, u) = if zeros {
            (0, 0, 0)
        } else {
            (
                e.crc32,
                e.compressed_size as u32,
                e.uncompressed_size as u32,
            )
        };
        h.put_u32_le(c);
        h.put_u32_le(s);
        h.put_u32_le(u);
        h.put_u16_le(5);
        h.put_u16_le(0);
        h.put_slice(b"a.txt");
        h.to_vec()
    }

    #[test]
    fn plain_entries_qualify_with_their_descriptor() {
        let e = entry(0, METHOD_DEFLATED);
        let meta = meta_for(&e, "a.txt");
        let v = layout(&e, &meta, &header(&e, 0, false), 35 + 7).unwrap();
        assert_eq!((v.header_len, v.tail_len, v.len(&e)), (35, 0, 42));
        let e = entry(FLAG_DATA_DESCRIPTOR, METHOD_DEFLATED);
        let h = header(&e, FLAG_DATA_DESCRIPTOR, true);
        assert_eq!(layout(&e, &meta, &h, 35 + 7 + 16).unwrap().tail_len, 16);
        assert_eq!(layout(&e, &meta, &h, 35 + 7 + 12).unwrap().tail_len, 12);
    }

    #[test]
    fn anything_unusual_is_written_the_ordinary_way() {
        let e = entry(0, METHOD_DEFLATED);
        let meta = meta_for(&e, "a.txt");
        let h = header(&e, 0, false);
        // Bytes hidden after the data, a rename, a changed mode, a flags mismatch.
        assert!(layout(&e, &meta, &h, 35 + 7 + 1).is_none());
        assert!(layout(&e, &meta_for(&e, "b.txt"), &h, 42).is_none());
        let mut moded = meta.clone();
        moded.external_attrs = 0o100755 << 16;
        assert!(layout(&e, &moded, &h, 42).is_none());
        assert!(layout(&e, &meta, &header(&e, FLAG_DATA_DESCRIPTOR, true), 42 + 16).is_none());
        // Encrypted, and a STORED entry with a descriptor.
        let enc = entry(1, METHOD_DEFLATED);
        assert!(layout(&enc, &meta, &header(&enc, 1, false), 42).is_none());
        let stored = entry(FLAG_DATA_DESCRIPTOR, METHOD_STORED);
        let h = header(&stored, FLAG_DATA_DESCRIPTOR, true);
        assert!(layout(&stored, &meta_for(&stored, "a.txt"), &h, 42 + 16).is_none());
        // A descriptor of a length its flags do not allow.
        let e = entry(FLAG_DATA_DESCRIPTOR, METHOD_DEFLATED);
        assert!(layout(&e, &meta, &header(&e, FLAG_DATA_DESCRIPTOR, true), 42 + 20).is_none());
    }

    #[test]
    fn wrong_descriptors_are_replaced_by_right_ones_of_the_same_length() {
        let e = entry(FLAG_DATA_DESCRIPTOR, METHOD_DEFLATED);
        let mut good = BytesMut::new();
        good.put_u32_le(DESCRIPTOR_SIG);
        good.put_u32_le(e.crc32);
        good.put_u32_le(7);
        good.put_u32_le(9);
        let good = good.freeze();
        assert_eq!(descriptor(&e, good.clone()), good);
        assert_eq!(descriptor(&e, good.slice(4..)), good.slice(4..));
        let mut bad = good.to_vec();
        bad[8] = 8;
        assert_eq!(descriptor(&e, Bytes::from(bad)), good);
        assert_eq!(descriptor(&e, Bytes::new()), Bytes::new());
    }

    proptest::proptest! {
        /// Hostile headers, sizes and tails: `layout` never panics (no overflow, no
        /// out-of-range slice), and what it accepts is exactly what it promises —
        /// the header's own name and flags, the whole entry inside its region, a
        /// descriptor of a length the flags allow. `descriptor` keeps the length.
        #[test]
        fn layout_and_descriptor_hold_on_any_input(
            flags in proptest::prop_oneof![proptest::prelude::Just(0u16), Just(8u16), proptest::prelude::any::<u16>()],
            method in proptest::prop_oneof![Just(0u16), Just(8u16)],
            csize in proptest::prop_oneof![0u64..64, Just(U32_MAX), Just(u64::MAX - 3), proptest::prelude::any::<u64>()],
            usize_ in proptest::prop_oneof![0u64..64, Just(U32_MAX), proptest::prelude::any::<u64>()],
            region_len in proptest::prop_oneof![0u64..200, proptest::prelude::any::<u64>()],
            zeros in proptest::prelude::any::<bool>(),
            cut in 0usize..80,
            patch in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..4),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..30),
        ) {
            let mut e = entry(flags, method);
            (e.compressed_size, e.uncompressed_size) = (csize, usize_);
            let meta = meta_for(&e, "a.txt");
            let mut h = header(&e, flags, zeros);
            for (at, b) in patch {
                if let Some(x) = h.get_mut(at) {
                    *x = b;
                }
            }
            h.truncate(cut.max(1).min(h.len()));
            if let Some(v) = layout(&e, &meta, &h, region_len) {
                proptest::prop_assert_eq!(v.flags, e.flags);
                proptest::prop_assert_eq!(v.flags & !PLAIN_FLAGS, 0);
                proptest::prop_assert!(v.header_len >= LOCAL_HEADER_LEN + e.raw_name.len() as u64);
                proptest::prop_assert_eq!(&h[30..35], e.raw_name.as_slice());
                proptest::prop_assert_eq!(Some(v.len(&e)), Some(region_len));
                let lens: &[u64] = if v.flags & FLAG_DATA_DESCRIPTOR != 0 { &[12, 16, 20, 24] } else { &[0] };
                proptest::prop_assert!(lens.contains(&v.tail_len));
            }
            let d = descriptor(&e, Bytes::from(tail.clone()));
            proptest::prop_assert_eq!(d.len(), tail.len());
        }

        /// Well-formed headers in regions of every plausible length: accepted exactly
        /// when the module doc's rules say so, checked here independently of `layout`.
        #[test]
        fn well_formed_entries_are_accepted_exactly_by_the_rules(
            descriptor_flag in proptest::prelude::any::<bool>(),
            utf8 in proptest::prelude::any::<bool>(),
            stored in proptest::prelude::any::<bool>(),
            zeros in proptest::prelude::any::<bool>(),
            csize in 0u64..40,
            tail in proptest::prop_oneof![Just(0u64), Just(12), Just(16), Just(20), Just(24), 1u64..30],
        ) {
            let flags = (descriptor_flag as u16) << 3 | (utf8 as u16) << 11;
            let method = if stored { METHOD_STORED } else { METHOD_DEFLATED };
            let mut e = entry(flags, method);
            e.compressed_size = csize;
            e.uncompressed_size = if stored { csize } else { 9 };
            let h = header(&e, flags, zeros);
            let got = layout(&e, &meta_for(&e, "a.txt"), &h, 35 + csize + tail);
            let want = if descriptor_flag {
                !stored && [12, 16].contains(&tail)
            } else {
                !zeros && tail == 0
            };
            proptest::prop_assert_eq!(got.is_some(), want, "{:?}", got);
            if let Some(v) = got {
                proptest::prop_assert_eq!((v.header_len, v.tail_len, v.flags), (35, tail, flags));
            }
        }
    }
}
