//! Stage 3 for a `tar.gz` output: processed entries become tar records (header,
//! content, padding) deflated into one gzip stream on a blocking thread (not the
//! pool, whose queue holds the transforms running ahead: see
//! [`crate::bridge::on_blocking`]), then into the sink.
//!
//! Entries arrive as content: whole entries were inflated by the processor (a
//! tar.gz output stores them, see `process_entry`), and a large deflated entry
//! copied raw carries an inflater ([`StreamHash::inflater`]) that checks its size
//! and CRC-32 while handing out its content. A record's header holds its size, so
//! `decide` refuses what would be known only at the end (a transform as it streams,
//! a `zip` step's entry).
//!
//! Invariants: the gzip stream is out of the struct only while a blocking task holds
//! it; a whole entry's transform-budget permit is released once its record is in
//! the sink; the output is completed only when every input sent its end marker and
//! every planned entry arrived. A checkpoint is taken only between entries: the
//! gzip stream is flushed to a byte boundary, and the next invocation goes on with a
//! fresh deflater from its CRC-32 and sizes
//! ([`artifact_engine::tar::GzipState`]).

use std::sync::Arc;
use std::time::Duration;

use artifact_engine::entry::ManifestRow;
use artifact_engine::entry::StreamHash;
use artifact_engine::plan::{Export, Plan};
use artifact_engine::tar::{header, padding, record, GzipStream, Kind, END};
use artifact_engine::zip::read::METHOD_STORED;
use artifact_engine::zip::{EntryMeta, ZipWriterState};
use artifact_engine::ZipError;
use bytes::{Bytes, BytesMut};

use super::process::{BigEntry, Out};
use super::write::{closing_files, Arrived, Written, COMPLETE_RATE};
use super::{InputRef, OutputProgress};
use crate::bridge::on_blocking;
use crate::continuation::Clock;
use crate::error::{ArtifactCause, JobError, Side};
use crate::event::S3Location;
use crate::sink::Sink;

/// The tar.gz being written and where it goes.
pub(super) struct TarWriter<'a> {
    sink: Sink,
    pool: Arc<rayon::ThreadPool>,
    inputs: &'a [InputRef],
    name: &'a str,
    location: &'a S3Location,
    /// `None` only while a blocking task holds it.
    gz: Option<GzipStream>,
    raw: u64,
    transformed: u64,
    inputs_done: usize,
    /// The large entry being streamed, and the content bytes written of it.
    big: Option<(BigEntry, u64)>,
    exports: Vec<Export>,
    rows: Vec<ManifestRow>,
    clock: Option<Arc<Clock>>,
}

impl<'a> TarWriter<'a> {
    /// A writer for the output `name` at `location`, fed from `inputs`, gzipping at
    /// `level`.
    pub fn new(
        sink: Sink,
        pool: Arc<rayon::ThreadPool>,
        inputs: &'a [InputRef],
        name: &'a str,
        location: &'a S3Location,
        level: u32,
    ) -> Self {
        TarWriter {
            sink,
            pool,
            inputs,
            name,
            location,
            gz: Some(GzipStream::new(level)),
            raw: 0,
            transformed: 0,
            inputs_done: 0,
            big: None,
            exports: Vec::new(),
            rows: Vec::new(),
            clock: None,
        }
    }

    /// A writer that goes on from a checkpoint's `progress` (the sink resumed from
    /// the same checkpoint); `None` when the checkpoint holds no gzip stream.
    pub fn resume(
        sink: Sink,
        pool: Arc<rayon::ThreadPool>,
        inputs: &'a [InputRef],
        name: &'a str,
        location: &'a S3Location,
        level: u32,
        progress: OutputProgress,
    ) -> Option<Self> {
        Some(TarWriter {
            gz: Some(GzipStream::resume(level, progress.gzip?)),
            raw: progress.raw,
            transformed: progress.transformed,
            exports: progress.exports,
            rows: progress.rows,
            ..TarWriter::new(sink, pool, inputs, name, location, level)
        })
    }

    /// Checkpoints when `clock` says so (see [`Self::should_checkpoint`]).
    pub fn with_clock(mut self, clock: Option<Arc<Clock>>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether to stop before `next` and checkpoint: only where an entry starts,
    /// when the clock says the time left is what a checkpoint costs.
    pub fn should_checkpoint(&self, next: &Out) -> bool {
        let Some(clock) = &self.clock else {
            return false;
        };
        let next_entry = match next {
            Out::Entry(..) => 0,
            Out::BigStart(b) => b.meta.uncompressed_size,
            _ => return false,
        };
        // The state object holds the pending part, base64.
        let state = self.sink.pending() * 4 / 3;
        clock.should_checkpoint(self.sink.in_flight(), state, next_entry)
    }

    /// Whether to checkpoint instead of finishing (the added files, priced like an
    /// entry of their size, and the store assembling the object).
    pub fn should_checkpoint_before_finish(&self) -> bool {
        let Some(clock) = &self.clock else {
            return false;
        };
        let finish = self.sink.pending() + self.rows.len() as u64 * 100;
        let state = self.sink.pending() * 4 / 3;
        let assemble = Duration::from_secs_f64(self.sink.written() as f64 / COMPLETE_RATE);
        clock.should_checkpoint_after(self.sink.in_flight(), state, finish, assemble)
    }

    /// Stops between entries: flushes the gzip stream into the sink, confirms the
    /// parts in flight and returns the output's progress for the checkpoint.
    pub async fn suspend(
        mut self,
        output: usize,
        planned: u64,
    ) -> Result<OutputProgress, JobError> {
        if self.big.is_some() {
            return Err(JobError::Internal(
                "a checkpoint was taken inside an entry".to_string(),
            ));
        }
        let gz = self.gz.take().expect("back");
        let (flushed, gzip) = on_blocking(move || gz.suspend())
            .await
            .map_err(|panic| JobError::Internal(format!("gzip panicked: {panic}")))?;
        self.sink
            .write(flushed)
            .await
            .map_err(|e| self.out_err(e))?;
        let (name, location) = (self.name, self.location);
        let sink = self.sink.suspend().await.map_err(|e| {
            JobError::artifact(Side::Output, name, location, ArtifactCause::from(e))
        })?;
        Ok(OutputProgress {
            output,
            arrived: self.raw + self.transformed,
            planned,
            raw: self.raw,
            transformed: self.transformed,
            exports: self.exports,
            rows: self.rows,
            zip: ZipWriterState {
                offset: 0,
                entries: 0,
                central: Vec::new(),
            },
            gzip: Some(gzip),
            sink,
        })
    }

    fn entry_done(&self) {
        if let Some(clock) = &self.clock {
            clock.entry_written();
        }
    }

    fn out_err(&self, cause: impl Into<ArtifactCause>) -> JobError {
        JobError::artifact(Side::Output, self.name, self.location, cause)
    }

    /// Deflates `pieces` (tar bytes, in order) and writes the result.
    async fn put(&mut self, pieces: Vec<Bytes>) -> Result<(), JobError> {
        let mut gz = self.gz.take().expect("the stream is back after each put");
        let (gz, out) = on_blocking(move || {
            let out: Vec<Bytes> = pieces.iter().map(|p| gz.push(p)).collect();
            (gz, out)
        })
        .await
        .map_err(|panic| JobError::Internal(format!("gzip panicked: {panic}")))?;
        self.gz = Some(gz);
        for b in out.into_iter().filter(|b| !b.is_empty()) {
            self.send(b).await?;
        }
        Ok(())
    }

    /// Writes compressed bytes to the sink.
    async fn send(&mut self, b: Bytes) -> Result<(), JobError> {
        if let Some(clock) = &self.clock {
            clock.wrote(b.len() as u64);
        }
        self.sink.write(b).await.map_err(|e| self.out_err(e))
    }

    /// The record of an entry held whole: header, content, padding.
    fn record(&self, meta: &EntryMeta, content: Bytes) -> Result<Vec<Bytes>, JobError> {
        record(meta, content).map_err(|e| self.out_err(e))
    }

    /// Writes one item.
    pub async fn write(&mut self, item: Out) -> Result<(), JobError> {
        match item {
            Out::InputDone => self.inputs_done += 1,
            Out::Entry(p, permit, _) => {
                let o = p.output;
                let pieces = self.record(&o.meta, o.data)?;
                self.put(pieces).await?;
                if o.raw {
                    self.raw += 1
                } else {
                    self.transformed += 1
                }
                self.exports.extend(p.exports);
                self.rows.extend(p.manifest);
                drop(permit);
                self.entry_done();
            }
            Out::BigStart(b) => {
                if b.transform.is_some() {
                    return Err(JobError::Internal(
                        "an entry transformed as it streams reached a tar.gz output".into(),
                    ));
                }
                let kind = Kind::File(b.meta.uncompressed_size);
                let h = header(&b.meta, kind, None).map_err(|e| self.out_err(e))?;
                self.put(vec![Bytes::from(h)]).await?;
                self.big = Some((*b, 0));
            }
            Out::Data(b) => self.big_data(b).await?,
            Out::End(_) => self.big_end().await?,
        }
        Ok(())
    }

    /// The next compressed bytes of a large entry: checked (and inflated when
    /// deflated) and deflated into the stream, in one blocking task.
    async fn big_data(&mut self, b: Bytes) -> Result<(), JobError> {
        let (mut entry, written) = self.big.take().expect("data follows a BigStart");
        let (mut check, mut gz) = (entry.check.take(), self.gz.take().expect("back"));
        let deflated = entry.meta.method != METHOD_STORED;
        let (check, gz, done) = on_blocking(move || {
            let done = feed(check.as_mut(), &mut gz, &b, deflated);
            (check, gz, done)
        })
        .await
        .map_err(|panic| JobError::Internal(format!("gzip panicked: {panic}")))?;
        self.gz = Some(gz);
        entry.check = check;
        let (n, out) = done.map_err(|e| self.inputs[entry.input].error(entry.entry, e))?;
        if !out.is_empty() {
            self.send(out).await?;
        }
        self.big = Some((entry, written + n));
        Ok(())
    }

    /// A large entry ended: its checker agrees, its content filled its declared
    /// size, and its record is padded to a block.
    async fn big_end(&mut self) -> Result<(), JobError> {
        let (entry, mut written) = self.big.take().expect("end follows a BigStart");
        let in_err = |e: ZipError| self.inputs[entry.input].error(entry.entry, e);
        let mut rest = Vec::new();
        if let Some(check) = entry.check {
            let (sha256, tail) = check.finish_inflated().map_err(in_err)?;
            written += tail.len() as u64;
            rest = tail;
            if entry.sha {
                self.rows.push(ManifestRow {
                    path: entry.meta.name.clone(),
                    size: entry.meta.uncompressed_size,
                    sha256,
                });
            }
        }
        let size = entry.meta.uncompressed_size;
        if written != size {
            return Err(in_err(ZipError::Data {
                name: entry.meta.name.clone(),
                why: format!("{written} bytes of content, the central directory says {size}"),
            }));
        }
        self.put(vec![Bytes::from(rest), Bytes::from_static(padding(size))])
            .await?;
        self.raw += 1;
        self.entry_done();
        Ok(())
    }

    /// Checks that everything arrived, writes the added files, the end of the
    /// archive and of the gzip stream, and completes the object.
    pub async fn finish(
        mut self,
        plan: Arc<Plan>,
        output: usize,
        planned: usize,
    ) -> Result<Written, JobError> {
        let arrived = Arrived {
            entries: self.raw + self.transformed,
            planned,
            inputs_done: self.inputs_done,
            inputs: self.inputs.len(),
        };
        let (name, location) = (self.name, self.location);
        let rows = std::mem::take(&mut self.rows);
        let files = closing_files(
            &self.pool,
            plan,
            output,
            arrived,
            &mut self.exports,
            rows,
            |c| JobError::artifact(Side::Output, name, location, c),
        )
        .await?;
        let added = files.len() as u64;
        for (meta, data) in files {
            let pieces = self.record(&meta, data)?;
            self.put(pieces).await?;
        }
        self.put(vec![Bytes::from_static(&END)]).await?;
        let gz = self.gz.take().expect("back");
        let trailer = on_blocking(move || gz.finish())
            .await
            .map_err(|panic| JobError::Internal(format!("gzip panicked: {panic}")))?;
        self.sink
            .write(trailer)
            .await
            .map_err(|e| self.out_err(e))?;
        let (name, location) = (self.name, self.location);
        let object = self.sink.finish().await.map_err(|e| {
            JobError::artifact(Side::Output, name, location, ArtifactCause::from(e))
        })?;
        Ok(Written {
            entries: self.raw + self.transformed + added,
            raw: self.raw,
            transformed: self.transformed,
            added,
            exports: self.exports,
            object,
        })
    }
}

/// Compressed bytes of a large deflated entry inflated at a time: deflate expands at
/// most ~1,032:1, so no more than ~16 MiB of content is held at once however
/// compressible the entry (a whole 8 MiB read inflated at once could be gigabytes
/// under the ratio limit).
const INFLATE_SLICE: usize = 16 << 10;

/// The next compressed bytes `b` of a large entry into the gzip stream: checked by
/// `check` and, when `deflated`, inflated by it slice by slice. Returns the content
/// bytes written and the compressed output.
fn feed(
    check: Option<&mut StreamHash>,
    gz: &mut GzipStream,
    b: &Bytes,
    deflated: bool,
) -> Result<(u64, Bytes), ZipError> {
    match check {
        Some(c) if deflated => {
            let (mut n, mut out) = (0, BytesMut::new());
            for slice in b.chunks(INFLATE_SLICE) {
                c.update(slice)?;
                let content = c.take_inflated();
                n += content.len() as u64;
                out.extend_from_slice(&gz.push(&content));
            }
            Ok((n, out.freeze()))
        }
        Some(c) => {
            c.update(b)?;
            Ok((b.len() as u64, gz.push(b)))
        }
        None => Ok((b.len() as u64, gz.push(b))),
    }
}

impl super::ArchiveWriter for TarWriter<'_> {
    fn should_checkpoint(&self, next: &Out) -> bool {
        TarWriter::should_checkpoint(self, next)
    }
    fn should_checkpoint_before_finish(&self) -> bool {
        TarWriter::should_checkpoint_before_finish(self)
    }
    async fn write(&mut self, item: Out) -> Result<(), JobError> {
        TarWriter::write(self, item).await
    }
    async fn suspend(self, output: usize, planned: u64) -> Result<OutputProgress, JobError> {
        TarWriter::suspend(self, output, planned).await
    }
}
