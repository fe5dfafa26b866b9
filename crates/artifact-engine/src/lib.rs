//! The AWS-free heart of the artifact worker: zip reading and writing, the transform
//! plan that `UserParameters` compile to, and per-entry processing (raw pass-through or
//! decompress → transform → recompress) meant to run on a rayon pool.
//!
//! Nothing here does I/O or knows about S3: callers fetch byte ranges and feed them in,
//! which keeps this crate fast to compile, easy to fuzz and to benchmark.

pub mod entry;
pub mod limits;
pub mod links;
pub mod memory;
pub mod names;
pub mod plan;
pub mod streamed;
pub mod tar;
pub mod zip;

pub use entry::{process_entry, EntryOutput, Processed};
pub use links::{check_link_target, check_symlink};
pub use plan::{Plan, PlanError, PlanSpec};
pub use zip::ZipError;
