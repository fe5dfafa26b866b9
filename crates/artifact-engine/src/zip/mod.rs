//! The zip format: an I/O-free reader of central directories and local headers, and a
//! streaming writer of headers and trailers.

mod error;
pub mod inner;
pub mod read;
pub mod verbatim;
pub mod write;

pub use error::ZipError;
pub use read::{CdEntry, Eocd, TailParse};
pub use write::{EntryMeta, ZipWriter, ZipWriterState};
