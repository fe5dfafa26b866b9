//! Stage 3: write processed entries into the output zip and the sink, in order.
//!
//! Invariants: a whole entry's transform-budget permit is released only once its
//! bytes are in the sink; a large raw entry's bytes are checked on the pool while
//! the same bytes go to the sink; the output is completed only when every input
//! sent its end marker and every planned entry arrived (a reader that died early
//! cannot pass for a shorter archive).

use std::sync::Arc;
use std::time::Duration;

use artifact_engine::entry::{extras, ManifestRow};
use artifact_engine::plan::{Export, InnerZip, Plan};
use artifact_engine::zip::{EntryMeta, ZipWriter};
use artifact_engine::ZipError;
use bytes::Bytes;

use super::nest::{Nest, NestError};
use super::process::{BigEntry, Out};
use super::{InputRef, OutputProgress};
use crate::bridge::on_pool;
use crate::continuation::Clock;
use crate::error::{ArtifactCause, JobError, Side};
use crate::event::S3Location;
use crate::sink::{CopySource, Sink, SinkSummary};

mod verbatim;

/// Bytes per second a store is assumed to assemble a completed multipart object at
/// (CompleteMultipartUpload of a large object takes seconds on S3, and an embedded
/// store copies the parts).
pub(super) const COMPLETE_RATE: f64 = 128.0 * 1024.0 * 1024.0;

/// Entry counts of a finished output.
pub(super) struct Written {
    pub entries: u64,
    pub raw: u64,
    pub transformed: u64,
    pub added: u64,
    pub exports: Vec<Export>,
    pub object: SinkSummary,
}

/// The zip being written and where it goes.
pub(super) struct OutputWriter<'a> {
    pub sink: Sink,
    pub zip: ZipWriter,
    pub pool: Arc<rayon::ThreadPool>,
    pub inputs: &'a [InputRef],
    pub name: &'a str,
    pub location: &'a S3Location,
    raw: u64,
    transformed: u64,
    inputs_done: usize,
    big: Option<(BigEntry, u64)>,
    exports: Vec<Export>,
    rows: Vec<ManifestRow>,
    clock: Option<Arc<Clock>>,
    /// The zip entries `zip` steps make, with their headers and deflate levels.
    zips: Vec<(InnerZip, EntryMeta, u32)>,
    /// Zip entries are listed in the manifest.
    manifest: bool,
    /// The zip entry being filled, if one is open.
    nest: Option<Nest>,
    /// The inputs as sources of server-side copies.
    sources: Vec<Arc<CopySource>>,
}

impl<'a> OutputWriter<'a> {
    /// A writer for the output `name` at `location`, fed from `inputs`.
    pub fn new(
        sink: Sink,
        pool: Arc<rayon::ThreadPool>,
        inputs: &'a [InputRef],
        name: &'a str,
        location: &'a S3Location,
    ) -> Self {
        OutputWriter {
            sink,
            zip: ZipWriter::new(),
            pool,
            inputs,
            name,
            location,
            raw: 0,
            transformed: 0,
            inputs_done: 0,
            big: None,
            exports: Vec::new(),
            rows: Vec::new(),
            clock: None,
            zips: Vec::new(),
            manifest: false,
            nest: None,
            sources: inputs
                .iter()
                .map(|i| {
                    Arc::new(CopySource {
                        location: i.index.location.clone(),
                        etag: i.index.etag.clone(),
                    })
                })
                .collect(),
        }
    }

    /// Writes the zip entries `zips` (their members are the planned entries from
    /// `first` on), listing them in the manifest when `manifest`.
    pub fn with_zips(mut self, zips: Vec<(InnerZip, EntryMeta, u32)>, manifest: bool) -> Self {
        self.zips = zips;
        self.manifest = manifest;
        self
    }

    /// A writer that goes on from a checkpoint's `progress` (the sink resumed from
    /// the same checkpoint).
    pub fn resume(
        sink: Sink,
        pool: Arc<rayon::ThreadPool>,
        inputs: &'a [InputRef],
        name: &'a str,
        location: &'a S3Location,
        progress: OutputProgress,
    ) -> Self {
        OutputWriter {
            zip: ZipWriter::resume(progress.zip),
            raw: progress.raw,
            transformed: progress.transformed,
            exports: progress.exports,
            rows: progress.rows,
            ..OutputWriter::new(sink, pool, inputs, name, location)
        }
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
        if self.nest.is_some() {
            // A zip entry is written whole within one invocation.
            return false;
        }
        let next_entry = match next {
            Out::Entry(..) => 0,
            Out::BigStart(b) => b.meta.compressed_size,
            _ => return false,
        };
        // A zip entry is written whole: price all of it before opening it.
        let next_index = (self.raw + self.transformed) as usize;
        let next_entry = self
            .zips
            .iter()
            .find(|(z, _, _)| z.first == next_index)
            .map_or(next_entry, |(z, _, _)| z.bytes.max(next_entry));
        // The state object holds the central directory and the pending part, base64.
        let state = (self.zip.central_len() as u64 + self.sink.pending()) * 4 / 3;
        clock.should_checkpoint(self.sink.in_flight(), state, next_entry)
    }

    /// Whether to checkpoint instead of finishing: finishing sends the pending part
    /// and the central directory, writes the added files (a manifest line per
    /// entry), all priced like an entry of that size, and has the store assemble the
    /// object (priced at [`COMPLETE_RATE`]). An invocation that has written no entry
    /// never stops here (the clock's progress rule), so finishing always gets a
    /// whole invocation when it needs one.
    pub fn should_checkpoint_before_finish(&self) -> bool {
        let Some(clock) = &self.clock else {
            return false;
        };
        let finish =
            self.sink.pending() + self.zip.central_len() as u64 + self.rows.len() as u64 * 100;
        let state = (self.zip.central_len() as u64 + self.sink.pending()) * 4 / 3;
        let assemble = Duration::from_secs_f64(self.sink.written() as f64 / COMPLETE_RATE);
        clock.should_checkpoint_after(self.sink.in_flight(), state, finish, assemble)
    }

    /// Stops between entries: confirms the parts in flight and returns the output's
    /// progress for the checkpoint.
    pub async fn suspend(self, output: usize, planned: u64) -> Result<OutputProgress, JobError> {
        let zip = self.zip.state().ok_or_else(|| {
            JobError::Internal("a checkpoint was taken inside an entry".to_string())
        })?;
        let (name, location) = (self.name, self.location);
        let sink = self
            .sink
            .suspend()
            .await
            .map_err(|e| JobError::artifact(Side::Output, name, location, e))?;
        Ok(OutputProgress {
            output,
            arrived: self.raw + self.transformed,
            planned,
            raw: self.raw,
            transformed: self.transformed,
            exports: self.exports,
            rows: self.rows,
            zip,
            gzip: None,
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

    fn input_err(&self, input: usize, entry: usize, e: ZipError) -> JobError {
        self.inputs[input].error(entry, e)
    }

    async fn put(&mut self, b: Bytes) -> Result<(), JobError> {
        let b = self.deflate_nested(b).await?;
        if b.is_empty() {
            return Ok(());
        }
        if let Some(clock) = &self.clock {
            clock.wrote(b.len() as u64);
        }
        self.sink.write(b).await.map_err(|e| self.out_err(e))
    }

    /// `b` as it goes into the output: deflated on the pool when it belongs to the
    /// open zip entry (what the deflater has ready, possibly nothing), else as is.
    async fn deflate_nested(&mut self, b: Bytes) -> Result<Bytes, JobError> {
        let pool = self.pool.clone();
        match &mut self.nest {
            Some(n) => n.deflate(&pool, b).await.map_err(|e| self.nest_err(e)),
            None => Ok(b),
        }
    }

    fn nest_err(&self, e: NestError) -> JobError {
        match e {
            NestError::Zip(z) => self.out_err(z),
            NestError::Panic(p) => {
                JobError::Internal(format!("deflating a zip entry panicked: {p}"))
            }
        }
    }

    /// The writer the next entry goes through: the open zip entry's, or the output's.
    fn target(&mut self) -> &mut ZipWriter {
        match &mut self.nest {
            Some(n) => n.zip(),
            None => &mut self.zip,
        }
    }

    /// Opens the zip entry whose first member is the next planned entry, if any.
    async fn open_zip(&mut self) -> Result<(), JobError> {
        let next = (self.raw + self.transformed) as usize;
        let Some((z, meta, level)) = self.zips.iter().find(|(z, _, _)| z.first == next) else {
            return Ok(());
        };
        let (path, members, level) = (z.path.clone(), z.members, *level);
        let h = self
            .zip
            .local_header_streamed(meta)
            .map_err(|e| self.out_err(e))?;
        self.put(h).await?;
        self.nest = Some(Nest::new(path, members, level, self.manifest));
        Ok(())
    }

    /// After an entry: closes the open zip entry when that was its last member (its
    /// central directory, the rest of its deflate stream, then its data descriptor).
    async fn member_done(&mut self) -> Result<(), JobError> {
        let last = self.nest.as_mut().is_some_and(Nest::member_done);
        if !last {
            return Ok(());
        }
        let n = self.nest.take().expect("open above");
        let path = n.path.clone();
        let (last, done) = n.finish(&self.pool).await.map_err(|e| self.nest_err(e))?;
        self.put(last).await?;
        let descriptor = self
            .zip
            .end_streamed(done.crc32, done.compressed, done.uncompressed)
            .map_err(|e| self.out_err(e))?;
        self.put(descriptor).await?;
        if let Some(sha256) = done.sha256 {
            self.rows.push(ManifestRow {
                path,
                size: done.uncompressed,
                sha256,
            });
        }
        Ok(())
    }

    /// Writes one item.
    pub async fn write(&mut self, item: Out) -> Result<(), JobError> {
        match item {
            Out::InputDone => self.inputs_done += 1,
            Out::Entry(p, permit, span) => {
                self.open_zip().await?;
                if let Some(span) = span.filter(|_| self.verbatim_ok()) {
                    self.write_verbatim(*p, *span).await?;
                    drop(permit);
                    self.entry_done();
                    return Ok(());
                }
                let o = p.output;
                let h = self
                    .target()
                    .local_header(&o.meta)
                    .map_err(|e| self.out_err(e))?;
                let n = o.data.len() as u64;
                self.put(h).await?;
                self.put(o.data).await?;
                self.target().end_entry(n).map_err(|e| self.out_err(e))?;
                if o.raw {
                    self.raw += 1
                } else {
                    self.transformed += 1
                }
                self.exports.extend(p.exports);
                self.rows.extend(p.manifest);
                drop(permit);
                self.entry_done();
                self.member_done().await?;
            }
            Out::BigStart(mut b) => {
                self.open_zip().await?;
                if !self.verbatim_ok() {
                    b.verbatim = None;
                }
                if let Some(span) = b.verbatim.take() {
                    self.start_verbatim(&b.meta, &span)?;
                    let (header, input, at) = (span.header.clone(), span.input, span.offset);
                    b.verbatim = Some(span);
                    self.put_copyable(header, input, at).await?;
                    self.big = Some((*b, 0));
                    return Ok(());
                }
                let h = if b.transform.is_some() {
                    self.target().local_header_streamed(&b.meta)
                } else {
                    self.target().local_header(&b.meta)
                };
                self.put(h.map_err(|e| self.out_err(e))?).await?;
                self.big = Some((*b, 0));
            }
            Out::Data(b) if self.streaming() => self.streamed_data(b).await?,
            Out::Data(b) => self.big_data(b).await?,
            Out::End(_) if self.streaming() => {
                self.streamed_end().await?;
                self.member_done().await?;
            }
            Out::End(tail) => {
                self.big_end(tail).await?;
                self.member_done().await?;
            }
        }
        Ok(())
    }

    /// The next bytes of a large entry: checked on the pool while written.
    async fn big_data(&mut self, b: Bytes) -> Result<(), JobError> {
        let (mut entry, written) = self.big.take().expect("data follows a BigStart");
        let n = b.len() as u64;
        if self.nest.is_some() {
            // Inside a zip entry the bytes are deflated first: check, then write.
            if let Some(mut check) = entry.check.take() {
                let data = b.clone();
                let checked = on_pool(&self.pool, move || check.update(&data).map(|_| check))
                    .await
                    .map_err(|panic| {
                        JobError::Internal(format!("checking an entry panicked: {panic}"))
                    })?;
                entry.check =
                    Some(checked.map_err(|e| self.input_err(entry.input, entry.entry, e))?);
            }
            self.put(b).await?;
        } else if let Some(mut check) = entry.check.take() {
            let data = b.clone();
            let pool = self.pool.clone();
            let update = on_pool(&pool, move || check.update(&data).map(|_| check));
            let at = entry
                .verbatim
                .as_ref()
                .map(|s| (s.input, verbatim::data_at(s, written)));
            let (checked, sent) = tokio::join!(update, self.send_big(b, at));
            sent.map_err(|e| self.out_err(e))?;
            let checked = checked.map_err(|panic| {
                JobError::Internal(format!("checking an entry panicked: {panic}"))
            })?;
            entry.check = Some(checked.map_err(|e| self.input_err(entry.input, entry.entry, e))?);
        } else if let Some(span) = &entry.verbatim {
            let at = verbatim::data_at(span, written);
            self.put_copyable(b, span.input, at).await?;
        } else {
            self.put(b).await?;
        }
        self.big = Some((entry, written + n));
        Ok(())
    }

    /// True while an entry transformed as it streams is open.
    fn streaming(&self) -> bool {
        self.big
            .as_ref()
            .is_some_and(|(e, _)| e.transform.is_some())
    }

    /// The next input bytes of an entry transformed as it streams: transformed on
    /// the pool, then written.
    async fn streamed_data(&mut self, b: Bytes) -> Result<(), JobError> {
        let (mut entry, written) = self.big.take().expect("data follows a BigStart");
        let mut streamer = entry.transform.take().expect("a streamed entry");
        let done = on_pool(&self.pool, move || {
            streamer.push(&b).map(|out| (out, streamer))
        })
        .await
        .map_err(|panic| JobError::Internal(format!("transforming an entry panicked: {panic}")))?;
        let (out, streamer) = done.map_err(|e| self.entry_err(entry.input, entry.entry, e))?;
        let n = out.len() as u64;
        self.put(out).await?;
        entry.transform = Some(streamer);
        self.big = Some((entry, written + n));
        Ok(())
    }

    /// A streamed entry ended: the last output, then its data descriptor.
    async fn streamed_end(&mut self) -> Result<(), JobError> {
        let (mut entry, _) = self.big.take().expect("end follows a BigStart");
        let streamer = entry.transform.take().expect("a streamed entry");
        let done = on_pool(&self.pool, move || streamer.finish())
            .await
            .map_err(|panic| {
                JobError::Internal(format!("transforming an entry panicked: {panic}"))
            })?;
        let (tail, summary) = done.map_err(|e| self.entry_err(entry.input, entry.entry, e))?;
        self.put(tail).await?;
        let descriptor = self
            .target()
            .end_streamed(summary.crc32, summary.compressed, summary.uncompressed)
            .map_err(|e| self.out_err(e))?;
        self.put(descriptor).await?;
        self.transformed += 1;
        self.entry_done();
        Ok(())
    }

    fn entry_err(
        &self,
        input: usize,
        entry: usize,
        e: artifact_engine::entry::EntryError,
    ) -> JobError {
        self.inputs[input].error(entry, e)
    }

    /// A large entry ended: its size is final, its checker must agree.
    async fn big_end(&mut self, tail: Bytes) -> Result<(), JobError> {
        let (entry, written) = self.big.take().expect("end follows a BigStart");
        match &entry.verbatim {
            Some(span) => self.end_verbatim(span, written, tail).await?,
            None => self
                .target()
                .end_entry(written)
                .map_err(|e| self.out_err(e))?,
        }
        if let Some(check) = entry.check {
            let sha256 = check
                .finish()
                .map_err(|e| self.input_err(entry.input, entry.entry, e))?;
            if entry.sha {
                self.rows.push(ManifestRow {
                    path: entry.meta.name,
                    size: entry.meta.uncompressed_size,
                    sha256,
                });
            }
        }
        self.raw += 1;
        self.entry_done();
        Ok(())
    }

    /// Checks that everything arrived, writes the added files and the central
    /// directory, and completes the object.
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
        let mut added = 0;
        for (meta, data) in files {
            let h = self.zip.local_header(&meta).map_err(|e| self.out_err(e))?;
            let n = data.len() as u64;
            self.put(h).await?;
            self.put(data).await?;
            self.zip.end_entry(n).map_err(|e| self.out_err(e))?;
            added += 1;
        }
        let (name, location) = (self.name, self.location);
        let err = |e: ArtifactCause| JobError::artifact(Side::Output, name, location, e);
        let entries = self.zip.entries();
        let trailer = self.zip.finish(b"").map_err(|e| err(e.into()))?;
        self.sink.write(trailer).await.map_err(|e| err(e.into()))?;
        let object = self.sink.finish().await.map_err(|e| err(e.into()))?;
        Ok(Written {
            entries,
            raw: self.raw,
            transformed: self.transformed,
            added,
            exports: self.exports,
            object,
        })
    }
}

/// How far an output got when its writer finishes.
pub(super) struct Arrived {
    /// Planned entries written.
    pub entries: u64,
    /// Of the planned entries.
    pub planned: usize,
    /// Inputs that sent their end marker.
    pub inputs_done: usize,
    /// Inputs feeding the output.
    pub inputs: usize,
}

/// What every writer does before its last bytes: checks that every planned entry
/// arrived from every input, adds the exports no entry defined to `exports`, and
/// builds the added files and manifests (hashing, JSON, deflate) on the pool.
pub(super) async fn closing_files(
    pool: &Arc<rayon::ThreadPool>,
    plan: Arc<Plan>,
    output: usize,
    arrived: Arrived,
    exports: &mut Vec<Export>,
    mut rows: Vec<ManifestRow>,
    out_err: impl Fn(ArtifactCause) -> JobError,
) -> Result<Vec<(EntryMeta, Bytes)>, JobError> {
    let Arrived {
        entries,
        planned,
        inputs_done,
        inputs,
    } = arrived;
    if inputs_done != inputs || entries != planned as u64 {
        return Err(out_err(ArtifactCause::Verify(format!(
            "{entries} of {planned} entries arrived from {inputs_done} of {inputs} inputs; \
             the output was not completed"
        ))));
    }
    let missing = plan
        .output(output)
        .missing_exports(exports)
        .map_err(|e| out_err(ArtifactCause::Entry(e.into())))?;
    exports.extend(missing);
    on_pool(pool, move || extras(plan.output(output), &mut rows))
        .await
        .map_err(|panic| JobError::Internal(format!("building added files panicked: {panic}")))
}

impl super::ArchiveWriter for OutputWriter<'_> {
    fn should_checkpoint(&self, next: &Out) -> bool {
        OutputWriter::should_checkpoint(self, next)
    }
    fn should_checkpoint_before_finish(&self) -> bool {
        OutputWriter::should_checkpoint_before_finish(self)
    }
    async fn write(&mut self, item: Out) -> Result<(), JobError> {
        OutputWriter::write(self, item).await
    }
    async fn suspend(self, output: usize, planned: u64) -> Result<OutputProgress, JobError> {
        OutputWriter::suspend(self, output, planned).await
    }
}
