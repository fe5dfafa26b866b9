//! `entry::decompress` on whole entries: libdeflate for entries up to 256 MiB, flate2
//! beyond; both must give the same answers on good, long, short, corrupt and padded
//! deflate data.

use artifact_engine::entry::{decompress, deflate};
use artifact_engine::zip::read::{METHOD_DEFLATED, METHOD_STORED};
use artifact_engine::zip::CdEntry;

fn entry(method: u16, data: &[u8], packed: &[u8], declared: u64) -> CdEntry {
    CdEntry {
        name: "a.txt".into(),
        raw_name: b"a.txt".to_vec(),
        version_made_by: 0x031e,
        version_needed: 20,
        flags: 0,
        method,
        dos_time: 0,
        dos_date: 0x21,
        crc32: crc32fast::hash(data),
        compressed_size: packed.len() as u64,
        uncompressed_size: declared,
        header_offset: 0,
        internal_attrs: 0,
        external_attrs: 0,
    }
}

fn err(e: &CdEntry, packed: &[u8]) -> String {
    decompress(e, packed).unwrap_err().to_string()
}

#[test]
fn whole_entries_inflate_or_fail_with_the_reason() {
    let data: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let packed = deflate(&data, 6);
    let n = data.len() as u64;
    assert_eq!(
        decompress(&entry(METHOD_DEFLATED, &data, &packed, n), &packed).unwrap(),
        data
    );
    // Bytes after the end of the deflate stream are not part of the entry.
    let mut padded = packed.clone();
    padded.extend_from_slice(b"trailing");
    assert_eq!(
        decompress(&entry(METHOD_DEFLATED, &data, &padded, n), &padded).unwrap(),
        data
    );
    let longer = err(&entry(METHOD_DEFLATED, &data, &packed, n - 1), &packed);
    assert!(
        longer.contains(&format!("inflates to more than {} bytes", n - 1)),
        "{longer}"
    );
    let shorter = err(&entry(METHOD_DEFLATED, &data, &packed, n + 10), &packed);
    assert!(
        shorter.contains(&format!(
            "inflates to {n} bytes, central directory says {}",
            n + 10
        )),
        "{shorter}"
    );
    // Past 256 MiB declared, the streaming path answers the same way.
    let huge = err(
        &entry(METHOD_DEFLATED, &data, &packed, 300_000_000),
        &packed,
    );
    assert!(
        huge.contains(&format!(
            "inflates to {n} bytes, central directory says 300000000"
        )),
        "{huge}"
    );
    let mut corrupt = packed.clone();
    corrupt.truncate(packed.len() / 2);
    let e = err(&entry(METHOD_DEFLATED, &data, &corrupt, n), &corrupt);
    assert!(
        e.contains("deflate stream") || e.contains("inflates to"),
        "{e}"
    );
    let mut bad_crc = entry(METHOD_DEFLATED, &data, &packed, n);
    bad_crc.crc32 ^= 1;
    assert!(err(&bad_crc, &packed).contains("CRC-32"));
    assert_eq!(
        decompress(&entry(METHOD_STORED, &data, &data, n), &data).unwrap(),
        data
    );
}
