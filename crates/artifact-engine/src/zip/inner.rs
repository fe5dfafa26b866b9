//! Zip entries that are zips themselves, read in place for `unzip`. An inner zip
//! stored (not compressed) in its archive is a contiguous range of the archive's
//! bytes, so its members are entries of the archive at shifted offsets: their
//! central directory is read from the end of that range, and their data by range
//! like any entry's, raw when untouched.
//!
//! Invariants: a member's offsets are checked against the inner zip's own range
//! (its region ends where the inner zip's central directory starts), so reading a
//! member never runs outside the zip entry it came from; every error inside an inner
//! zip is [`ZipError::Inner`], naming the zip entry.

use std::ops::Range;

use super::read::{check_local_header, CdEntry, METHOD_STORED};
use super::ZipError;

/// `e` as the zip entry named `zip` reports it: [`ZipError::Inner`].
pub fn in_zip(zip: &str, e: ZipError) -> ZipError {
    ZipError::Inner {
        zip: zip.to_string(),
        source: Box::new(e),
    }
}

/// Checks that `e` can be read in place as an inner zip: a file stored without
/// compression (encrypted entries are refused when the directory is parsed).
pub fn check_container(e: &CdEntry) -> Result<(), ZipError> {
    if e.is_dir() || e.is_symlink() {
        return Err(in_zip(
            &e.name,
            ZipError::NotZip("a directory or symbolic link, not a file".into()),
        ));
    }
    if e.method != METHOD_STORED {
        return Err(in_zip(
            &e.name,
            ZipError::Unsupported(format!(
                "it is compressed (method {}) in its archive; unzip reads inner zips stored \
                 without compression, which Info-ZIP `zip` does for .zip files by default \
                 (`zip -0` or `-n .zip` forces it); make the outer archive store it",
                e.method
            )),
        ));
    }
    Ok(())
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
    fn a_deflated_inner_zip_is_refused_by_name() {
        let inner = zip_of(&[("a.txt", b"alpha")], zip::CompressionMethod::Stored);
        let outer = zip_of(&[("in.zip", &inner)], zip::CompressionMethod::Deflated);
        let (_, entries) = index_bytes_with(&outer, &NameRules::default()).unwrap();
        let err = check_container(&entries[0]).unwrap_err().to_string();
        assert!(
            err.starts_with("inner zip \"in.zip\": unsupported"),
            "{err}"
        );
        assert!(err.contains("zip -0"), "{err}");
    }
}
