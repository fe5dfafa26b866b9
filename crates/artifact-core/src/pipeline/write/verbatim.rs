//! Entries written verbatim (see `artifact_engine::zip::verbatim`): their local
//! header, data and descriptor go to the sink as bytes of their input
//! ([`crate::sink::Sink::write_copyable`]), so that runs of them can be copied
//! server-side; the zip writer only makes their central-directory records.
//!
//! Invariants: only entries at the output's top level (never inside a zip entry a
//! `zip` step makes); a descriptor that disagrees with the central directory is
//! replaced by a right one of the same length, written as ordinary bytes; a large
//! entry must deliver exactly its compressed size.

use artifact_engine::zip::verbatim::descriptor;
use artifact_engine::zip::{CdEntry, EntryMeta};
use artifact_engine::{entry::Processed, ZipError};
use bytes::Bytes;

use super::OutputWriter;
use crate::error::JobError;
use crate::pipeline::process::Span;

/// Where byte `written` of a verbatim entry's data lies in its input.
pub(super) fn data_at(span: &Span, written: u64) -> u64 {
    span.offset + span.layout.header_len + written
}

impl OutputWriter<'_> {
    /// Entries may be written verbatim here: not inside a zip entry.
    pub(super) fn verbatim_ok(&self) -> bool {
        self.nest.is_none()
    }

    fn input_entry(&self, span: &Span) -> &CdEntry {
        &self.inputs[span.input].index.entries[span.entry]
    }

    /// Records a verbatim entry in the central directory.
    pub(super) fn start_verbatim(&mut self, meta: &EntryMeta, span: &Span) -> Result<(), JobError> {
        let len = span.layout.len(self.input_entry(span));
        let flags = span.layout.flags;
        self.zip
            .verbatim_entry(meta, flags, len)
            .map_err(|e| self.out_err(e))
    }

    /// Writes a whole entry verbatim.
    pub(super) async fn write_verbatim(
        &mut self,
        p: Processed,
        span: Span,
    ) -> Result<(), JobError> {
        let o = p.output;
        self.start_verbatim(&o.meta, &span)?;
        self.put_copyable(span.header.clone(), span.input, span.offset)
            .await?;
        self.put_copyable(o.data, span.input, data_at(&span, 0))
            .await?;
        self.put_tail(&span, span.tail.clone()).await?;
        self.raw += 1;
        self.exports.extend(p.exports);
        self.rows.extend(p.manifest);
        Ok(())
    }

    /// Ends a large verbatim entry after `written` data bytes; `tail` is its region's
    /// rest.
    pub(super) async fn end_verbatim(
        &mut self,
        span: &Span,
        written: u64,
        tail: Bytes,
    ) -> Result<(), JobError> {
        let declared = self.input_entry(span).compressed_size;
        if written != declared {
            return Err(self.out_err(ZipError::Writer(format!(
                "entry {:?}: wrote {written} data bytes, its header declared {declared}",
                self.input_entry(span).name
            ))));
        }
        self.put_tail(span, tail).await
    }

    /// The descriptor after a verbatim entry's data: its own bytes when right.
    async fn put_tail(&mut self, span: &Span, tail: Bytes) -> Result<(), JobError> {
        let e = self.input_entry(span);
        if tail.len() as u64 != span.layout.tail_len {
            return Err(JobError::Internal(format!(
                "entry {:?}: {} bytes after its data, {} planned",
                e.name,
                tail.len(),
                span.layout.tail_len
            )));
        }
        let right = descriptor(e, tail.clone());
        if right == tail {
            let at = data_at(span, e.compressed_size);
            self.put_copyable(tail, span.input, at).await
        } else {
            self.put(right).await
        }
    }

    /// Appends bytes that are also bytes `at..` of input `input`.
    pub(super) async fn put_copyable(
        &mut self,
        b: Bytes,
        input: usize,
        at: u64,
    ) -> Result<(), JobError> {
        if let Some(clock) = &self.clock {
            clock.wrote(b.len() as u64);
        }
        let source = self.sources[input].clone();
        self.sink
            .write_copyable(b, &source, at)
            .await
            .map_err(|e| self.out_err(e))
    }

    /// Sends a large entry's next bytes: as bytes of input `at.0` from `at.1` when
    /// it is written verbatim.
    pub(super) async fn send_big(
        &mut self,
        b: Bytes,
        at: Option<(usize, u64)>,
    ) -> Result<(), crate::store::StoreError> {
        match at {
            Some((input, at)) => {
                let source = self.sources[input].clone();
                self.sink.write_copyable(b, &source, at).await
            }
            None => self.sink.write(b).await,
        }
    }
}
