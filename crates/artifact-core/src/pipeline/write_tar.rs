//! Stage 3 for a `tar.gz` output: processed entries become tar records (header,
//! content, padding) deflated into one gzip stream on the pool, then into the sink.
//!
//! Entries arrive as content: whole entries were inflated by the processor (a
//! tar.gz output stores them, see `process_entry`), and a large deflated entry
//! copied raw carries an inflater ([`StreamHash::inflater`]) that checks its size
//! and CRC-32 while handing out its content. A record's header holds its size, so
//! `decide` refuses what would be known only at the end (a transform as it streams,
//! a `zip` step's entry).
//!
//! Invariants: the gzip stream is out of the struct only while a pool task holds
//! it; a whole entry's transform-budget permit is released once its record is in
//! the sink; the output is completed only when every input sent its end marker and
//! every planned entry arrived. A tar.gz output is written within one invocation
//! (its deflate state is not checkpointed).

use std::sync::Arc;

use artifact_engine::entry::{extras, ManifestRow};
use artifact_engine::plan::{Export, Plan};
use artifact_engine::tar::{header, padding, GzipStream, Kind, END};
use artifact_engine::zip::read::METHOD_STORED;
use artifact_engine::zip::EntryMeta;
use artifact_engine::ZipError;
use bytes::Bytes;

use super::process::{BigEntry, Out};
use super::write::Written;
use super::InputRef;
use crate::bridge::on_pool;
use crate::error::{ArtifactCause, JobError, Side};
use crate::event::S3Location;
use crate::sink::Sink;

/// Deflate level of the gzip stream.
const GZIP_LEVEL: u32 = 6;

/// The tar.gz being written and where it goes.
pub(super) struct TarWriter<'a> {
    sink: Sink,
    pool: Arc<rayon::ThreadPool>,
    inputs: &'a [InputRef],
    name: &'a str,
    location: &'a S3Location,
    /// `None` only while a pool task holds it.
    gz: Option<GzipStream>,
    entries: u64,
    raw: u64,
    transformed: u64,
    inputs_done: usize,
    /// The large entry being streamed, and the content bytes written of it.
    big: Option<(BigEntry, u64)>,
    exports: Vec<Export>,
    rows: Vec<ManifestRow>,
}

impl<'a> TarWriter<'a> {
    /// A writer for the output `name` at `location`, fed from `inputs`.
    pub fn new(
        sink: Sink,
        pool: Arc<rayon::ThreadPool>,
        inputs: &'a [InputRef],
        name: &'a str,
        location: &'a S3Location,
    ) -> Self {
        TarWriter {
            sink,
            pool,
            inputs,
            name,
            location,
            gz: Some(GzipStream::new(GZIP_LEVEL)),
            entries: 0,
            raw: 0,
            transformed: 0,
            inputs_done: 0,
            big: None,
            exports: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn out_err(&self, cause: impl Into<ArtifactCause>) -> JobError {
        JobError::artifact(Side::Output, self.name, self.location, cause)
    }

    /// Deflates `pieces` (tar bytes, in order) on the pool and writes the result.
    async fn put(&mut self, pieces: Vec<Bytes>) -> Result<(), JobError> {
        let mut gz = self.gz.take().expect("the stream is back after each put");
        let (gz, out) = on_pool(&self.pool, move || {
            let out: Vec<Bytes> = pieces.iter().map(|p| gz.push(p)).collect();
            (gz, out)
        })
        .await
        .map_err(|panic| JobError::Internal(format!("gzip panicked: {panic}")))?;
        self.gz = Some(gz);
        for b in out.into_iter().filter(|b| !b.is_empty()) {
            self.sink.write(b).await.map_err(|e| self.out_err(e))?;
        }
        Ok(())
    }

    /// The record of an entry held whole: header, content, padding.
    fn record(&self, meta: &EntryMeta, content: Bytes) -> Result<Vec<Bytes>, JobError> {
        if meta.method != METHOD_STORED {
            return Err(JobError::Internal(format!(
                "entry {:?} reached a tar.gz output compressed",
                meta.name
            )));
        }
        let kind = Kind::of(meta, content.len() as u64);
        let link = match kind {
            Kind::Symlink => Some(std::str::from_utf8(&content).map_err(|_| {
                self.out_err(ZipError::Writer(format!(
                    "link {:?}: its target is not UTF-8, which a tar header cannot name",
                    meta.name
                )))
            })?),
            _ => None,
        };
        let h = header(meta, kind, link).map_err(|e| self.out_err(e))?;
        let mut pieces = vec![Bytes::from(h)];
        if let Kind::File(n) = kind {
            pieces.push(content);
            pieces.push(Bytes::from_static(padding(n)));
        }
        Ok(pieces)
    }

    /// Writes one item.
    pub async fn write(&mut self, item: Out) -> Result<(), JobError> {
        match item {
            Out::InputDone => self.inputs_done += 1,
            Out::Entry(p, permit) => {
                let o = p.output;
                let pieces = self.record(&o.meta, o.data)?;
                self.put(pieces).await?;
                if o.raw {
                    self.raw += 1
                } else {
                    self.transformed += 1
                }
                self.entries += 1;
                self.exports.extend(p.exports);
                self.rows.extend(p.manifest);
                drop(permit);
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
            Out::End => self.big_end().await?,
        }
        Ok(())
    }

    /// The next compressed bytes of a large entry: checked (and inflated when
    /// deflated) and deflated into the stream, in one pool task.
    async fn big_data(&mut self, b: Bytes) -> Result<(), JobError> {
        let (mut entry, written) = self.big.take().expect("data follows a BigStart");
        let (mut check, mut gz) = (entry.check.take(), self.gz.take().expect("back"));
        let deflated = entry.meta.method != METHOD_STORED;
        let (check, gz, done) = on_pool(&self.pool, move || {
            let done = match &mut check {
                Some(c) => c.update(&b).map(|_| {
                    let content = if deflated {
                        c.take_inflated().into()
                    } else {
                        b
                    };
                    (content.len() as u64, gz.push(&content))
                }),
                None => Ok((b.len() as u64, gz.push(&b))),
            };
            (check, gz, done)
        })
        .await
        .map_err(|panic| JobError::Internal(format!("gzip panicked: {panic}")))?;
        self.gz = Some(gz);
        entry.check = check;
        let (n, out) = done.map_err(|e| self.inputs[entry.input].error(entry.entry, e))?;
        if !out.is_empty() {
            self.sink.write(out).await.map_err(|e| self.out_err(e))?;
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
        self.entries += 1;
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
        let op = plan.output(output);
        let arrived = self.raw + self.transformed;
        if self.inputs_done != self.inputs.len() || arrived != planned as u64 {
            return Err(self.out_err(ArtifactCause::Verify(format!(
                "{arrived} of {planned} entries arrived from {} of {} inputs; the output was \
                 not completed",
                self.inputs_done,
                self.inputs.len()
            ))));
        }
        let missing = op
            .missing_exports(&self.exports)
            .map_err(|e| self.out_err(ArtifactCause::Entry(e.into())))?;
        self.exports.extend(missing);
        let mut rows = std::mem::take(&mut self.rows);
        let files = on_pool(&self.pool, move || extras(plan.output(output), &mut rows))
            .await
            .map_err(|panic| {
                JobError::Internal(format!("building added files panicked: {panic}"))
            })?;
        let added = files.len() as u64;
        for (meta, data) in files {
            let pieces = self.record(&meta, data)?;
            self.put(pieces).await?;
        }
        self.put(vec![Bytes::from_static(&END)]).await?;
        let gz = self.gz.take().expect("back");
        let trailer = on_pool(&self.pool, move || gz.finish())
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
            entries: self.entries + added,
            raw: self.raw,
            transformed: self.transformed,
            added,
            exports: self.exports,
            object,
        })
    }
}
