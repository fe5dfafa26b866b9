//! Zip-bomb limits, checked from an input's central directory before any of its data
//! moves: total uncompressed bytes per artifact, the compression ratio of each entry
//! larger than a size floor, and the entry count.
//!
//! Declared sizes can lie; that is caught while streaming: every inflation (raw-copy
//! verification, transforms, manifest hashing) stops with an error as soon as it
//! passes the entry's declared size, so a lie cannot expand past what was checked
//! here.
//!
//! Defaults are chosen so that every archive real tools make in the test corpus
//! passes (deflate cannot exceed about 1,032:1; real build outputs stay far below
//! 100:1 above a few MiB) while the classic single-entry bombs (GiBs of zeros in a
//! few MiB) are refused. Each limit is overridable in UserParameters `limits`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::zip::CdEntry;
use crate::zip::ZipError;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Bomb limits (UserParameters `limits`).
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most uncompressed bytes one input artifact may declare (default 64 GiB).
    pub total_uncompressed_bytes: u64,
    /// Highest uncompressed:compressed ratio for an entry above `ratio_floor_bytes`
    /// (default 200).
    pub max_ratio: u64,
    /// Entries up to this uncompressed size are not ratio-checked (default 16 MiB).
    pub ratio_floor_bytes: u64,
    /// Most entries one input artifact may hold (default and ceiling 2,000,000).
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total_uncompressed_bytes: 64 * GIB,
            max_ratio: 200,
            ratio_floor_bytes: 16 * MIB,
            max_entries: crate::zip::read::MAX_ENTRIES,
        }
    }
}

impl Limits {
    /// Checks an input's entries against the limits; the error names the entry (or
    /// the total) and the limit to raise.
    pub fn check(&self, entries: &[CdEntry]) -> Result<(), ZipError> {
        if entries.len() as u64 > self.max_entries {
            return Err(ZipError::Limit(format!(
                "{} entries; the limit is {} (limits.max_entries)",
                entries.len(),
                self.max_entries
            )));
        }
        let mut total = 0u64;
        for e in entries {
            total = total.saturating_add(e.uncompressed_size);
            if total > self.total_uncompressed_bytes {
                return Err(ZipError::Limit(format!(
                    "the entries up to {:?} declare more than {} uncompressed bytes \
                     (limits.total_uncompressed_bytes)",
                    e.name, self.total_uncompressed_bytes
                )));
            }
            if e.uncompressed_size > self.ratio_floor_bytes
                && e.uncompressed_size / e.compressed_size.max(1) > self.max_ratio
            {
                return Err(ZipError::Limit(format!(
                    "entry {:?} expands {} bytes to {} (more than {}:1, limits.max_ratio): \
                     a zip bomb?",
                    e.name, e.compressed_size, e.uncompressed_size, self.max_ratio
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, c: u64, u: u64) -> CdEntry {
        CdEntry {
            name: name.into(),
            raw_name: name.as_bytes().to_vec(),
            version_made_by: 0x031e,
            version_needed: 20,
            flags: 0,
            method: 8,
            dos_time: 0,
            dos_date: 0x21,
            crc32: 0,
            compressed_size: c,
            uncompressed_size: u,
            header_offset: 0,
            internal_attrs: 0,
            external_attrs: 0,
        }
    }

    #[test]
    fn bombs_are_refused_and_real_ratios_pass() {
        let l = Limits::default();
        // 4 GiB of zeros deflates to about 4 MiB.
        let bomb = entry("zeros.bin", 4 * MIB, 4 * GIB);
        let e = l.check(&[bomb]).unwrap_err().to_string();
        assert!(e.contains("zeros.bin") && e.contains("max_ratio"), "{e}");
        // A 60 MiB log compressing 20:1, and a small highly compressible file.
        let ok = [
            entry("app.log", 3 * MIB, 60 * MIB),
            entry("x", 10, 10 * MIB),
        ];
        l.check(&ok).unwrap();
        let many = vec![entry("a", 1, 1); 11];
        let tight = Limits {
            max_entries: 10,
            ..l
        };
        assert!(tight
            .check(&many)
            .unwrap_err()
            .to_string()
            .contains("max_entries"));
        let total = Limits {
            total_uncompressed_bytes: 100,
            ..l
        };
        let e = total.check(&[entry("a", 60, 60), entry("b", 60, 60)]);
        assert!(e.unwrap_err().to_string().contains("\"b\""));
    }
}
