//! A zip entry made by a `zip` step, being written: its members go through its own
//! [`ZipWriter`], and every byte of it is deflated on the pool on its way into the
//! output (the output's writer emits the entry's header before and its data
//! descriptor after, see [`super::write`]).
//!
//! Invariant: the deflater is out of the struct only while a pool task holds it; a
//! zip entry is opened and finished within one invocation (no checkpoint inside one).

use std::sync::Arc;

use artifact_engine::streamed::{Deflated, StreamDeflater};
use artifact_engine::zip::ZipWriter;
use artifact_engine::ZipError;
use bytes::{Bytes, BytesMut};

use crate::bridge::on_pool;

/// The open zip entry.
pub(super) struct Nest {
    zip: ZipWriter,
    /// Its path in the output.
    pub path: String,
    /// `None` only while it works on the pool.
    deflate: Option<StreamDeflater>,
    /// Members still to come.
    left: usize,
}

/// Why a nested zip could not be written.
pub(super) enum NestError {
    Zip(ZipError),
    Panic(String),
}

impl Nest {
    /// A zip entry at `path` for `members` members, deflated at `level`, hashed
    /// (SHA-256) when `sha256`.
    pub fn new(path: String, members: usize, level: u32, sha256: bool) -> Nest {
        Nest {
            zip: ZipWriter::new(),
            path,
            deflate: Some(StreamDeflater::new(level, sha256)),
            left: members,
        }
    }

    /// The writer its members go through.
    pub fn zip(&mut self) -> &mut ZipWriter {
        &mut self.zip
    }

    /// Deflates `b`, the next bytes of the zip, on `pool`: what is ready to write.
    pub async fn deflate(
        &mut self,
        pool: &Arc<rayon::ThreadPool>,
        b: Bytes,
    ) -> Result<Bytes, NestError> {
        let mut d = self
            .deflate
            .take()
            .expect("the deflater is back after each push");
        let (d, out) = on_pool(pool, move || {
            let out = d.push(&b);
            (d, out)
        })
        .await
        .map_err(|panic| NestError::Panic(panic.to_string()))?;
        self.deflate = Some(d);
        Ok(out)
    }

    /// Counts a member written; true when it was the last.
    pub fn member_done(&mut self) -> bool {
        self.left -= 1;
        self.left == 0
    }

    /// The zip's central directory deflated and the end of the deflate stream: the
    /// last bytes to write, and the totals for the data descriptor.
    pub async fn finish(
        mut self,
        pool: &Arc<rayon::ThreadPool>,
    ) -> Result<(Bytes, Deflated), NestError> {
        let inner = std::mem::replace(&mut self.zip, ZipWriter::new());
        let trailer = inner.finish(b"").map_err(NestError::Zip)?;
        let d = self.deflate.take().expect("the deflater is back");
        on_pool(pool, move || {
            let mut d = d;
            let mut out = BytesMut::from(&d.push(&trailer)[..]);
            let (tail, done) = d.finish();
            out.extend_from_slice(&tail);
            (out.freeze(), done)
        })
        .await
        .map_err(|panic| NestError::Panic(panic.to_string()))
    }
}
