//! [`ZipError`]: every way reading or writing a zip can fail, each naming the entry
//! where there is one. Defined here, beside the format code, and re-exported at the
//! crate root for callers.

/// Errors from reading or writing zip structures and entry data.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// The bytes are not a zip archive at all (or truncated before the end record).
    #[error("not a zip archive: {0}")]
    NotZip(String),
    /// The archive's structures contradict each other.
    #[error("malformed zip: {0}")]
    Malformed(String),
    /// A valid zip feature the worker does not handle (multi-disk, encryption...).
    #[error("unsupported zip feature: {0}")]
    Unsupported(String),
    /// A safety limit was hit (entry count, entry size).
    #[error("zip limit exceeded: {0}")]
    Limit(String),
    /// An entry name is unsafe or invalid.
    #[error("entry {name:?}: unsafe or invalid name: {why}")]
    BadName {
        /// The name as stored (lossily decoded).
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// The local header of an entry disagrees with the central directory.
    #[error("entry {name:?}: local header disagrees with the central directory: {why}")]
    LocalHeader {
        /// Entry name.
        name: String,
        /// The disagreement.
        why: String,
    },
    /// A problem inside a zip entry that is itself a zip (read by `unzip`).
    #[error("inner zip {zip:?}: {source}")]
    Inner {
        /// The zip entry's name in its archive.
        zip: String,
        /// What is wrong inside it.
        source: Box<ZipError>,
    },
    /// Entry data is corrupt (CRC mismatch, bad deflate stream, wrong size).
    #[error("entry {name:?}: corrupt data: {why}")]
    Data {
        /// Entry name.
        name: String,
        /// What was found.
        why: String,
    },
    /// A symbolic-link entry refused: its target is absolute, escapes the artifact,
    /// is malformed, or the plan refuses links (`"symlinks": "fail"`).
    #[error("entry {name:?}: symbolic link to {target:?} refused: {why}")]
    Symlink {
        /// The link's path in the output.
        name: String,
        /// The link target (lossily decoded; empty when it could not be read).
        target: String,
        /// Why it is refused.
        why: String,
    },
    /// The writer was driven incorrectly (a bug, not bad input).
    #[error("zip writer: {0}")]
    Writer(String),
}
