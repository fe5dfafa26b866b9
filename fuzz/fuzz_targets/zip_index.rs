//! Arbitrary bytes → `index_bytes` → `region_ends` (→ `check_local_header` on each
//! region). Nothing may panic, and whatever the reader accepts must satisfy the
//! invariants its module documentation promises.
#![no_main]

use std::collections::HashSet;

use artifact_engine::zip::read::{
    check_local_header, index_bytes, region_ends, validate_name, LOCAL_HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((eocd, entries)) = index_bytes(data) else {
        return;
    };
    let len = data.len() as u64;

    // The end records and the central directory lie inside the archive.
    assert!(eocd.eocd_offset + 22 <= len, "EOCD past the end: {eocd:?}");
    // (Not asserted: that the central directory ends before the end record. The
    // reader accepts a zip64 record placed after the EOCD, and so a directory there;
    // reported separately as a parser-differential finding.)
    let cd_end = eocd.cd_offset.checked_add(eocd.cd_size);
    assert!(
        cd_end.is_some_and(|e| e <= len),
        "central directory outside the archive: {eocd:?}"
    );
    assert!(
        eocd.prefix <= eocd.cd_offset,
        "prefix past the CD: {eocd:?}"
    );
    assert_eq!(entries.len() as u64, eocd.entries, "entry count");

    let mut names = HashSet::new();
    for e in &entries {
        // The local header fits before the central directory (checked without
        // overflowing: an offset near u64::MAX must have been rejected).
        let hdr_end = e.header_offset.checked_add(LOCAL_HEADER_LEN);
        assert!(
            hdr_end.is_some_and(|h| h <= eocd.cd_offset),
            "entry {:?}: header_offset {} + 30 > cd_offset {}",
            e.name,
            e.header_offset,
            eocd.cd_offset
        );
        assert!(
            validate_name(&e.name).is_ok(),
            "accepted an unsafe name {:?}",
            e.name
        );
        assert!(!e.name.contains('\0'));
        assert!(names.insert(e.name.as_str()), "duplicate name {:?}", e.name);
        assert!(e.compressed_size <= eocd.cd_offset, "{e:?}");
        if e.method == 0 {
            assert_eq!(
                e.compressed_size, e.uncompressed_size,
                "stored sizes: {e:?}"
            );
        }
        assert_eq!(e.flags & (1 | 1 << 6), 0, "encrypted entry accepted: {e:?}");
        let _ = e.is_dir();
        let _ = e.has_data_descriptor();
    }

    let Ok(ends) = region_ends(&entries, eocd.cd_offset) else {
        return;
    };
    assert_eq!(ends.len(), entries.len());
    let mut regions: Vec<(u64, u64)> = Vec::with_capacity(entries.len());
    for (e, &end) in entries.iter().zip(&ends) {
        let min_end =
            e.header_offset + LOCAL_HEADER_LEN + e.raw_name.len() as u64 + e.compressed_size;
        assert!(
            min_end <= end && end <= eocd.cd_offset,
            "entry {:?}: region [{}, {end}) too small for header+name+data ({min_end}) or past the CD at {}",
            e.name,
            e.header_offset,
            eocd.cd_offset
        );
        regions.push((e.header_offset, end));
        // The region is a valid slice of the archive; checking its local header
        // must not panic, and an accepted header lies inside the region.
        let region = &data[e.header_offset as usize..end as usize];
        if let Ok(Some(h)) = check_local_header(region, e) {
            assert!(h.len >= LOCAL_HEADER_LEN + e.raw_name.len() as u64);
        }
    }
    // Regions are disjoint and each ends where the next begins.
    regions.sort_unstable();
    for w in regions.windows(2) {
        assert_eq!(w[0].1, w[1].0, "regions not contiguous: {w:?}");
    }
});
