//! What a job did and where its time went: one structured log line per job
//! ([`JobStats::log_finished`]) and a short form for `executionDetails.summary`
//! ([`Figures::short`]).
//!
//! Figures are counted as the job runs, with no effect on it:
//! - `index`: wall time to read and check the inputs' central directories;
//! - `read`, `upload`: time spent in GET (ranged reads) and in upload requests
//!   (UploadPart, PutObject, CompleteMultipartUpload), summed over requests in
//!   flight together, so they can add up to more than the wall time;
//! - `transform`: CPU time of entry processing on the transform pool, summed over
//!   its threads;
//! - `report`: wall time of the PutJob*Result call(s), retries included;
//! - bytes in/out: bytes read from and written to the store by this job (the
//!   checkpoint's state object included);
//! - peak memory: the process's resident high-water mark (`VmHWM`), the figure that
//!   Lambda's "Max Memory Used" also reports: since the process started, so after a
//!   larger job in the same execution environment it may exceed this job's own.
//!
//! [`Metered`] counts reads and uploads by wrapping the job's store.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::event::S3Location;
use crate::store::{CompletedPart, Encryption, ObjectInfo, ObjectStore, StoreError};

/// Counters of one job (shared by its tasks).
#[derive(Debug)]
pub struct JobStats {
    started: Instant,
    index_ns: AtomicU64,
    read_ns: AtomicU64,
    transform_ns: AtomicU64,
    upload_ns: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    input_size: AtomicU64,
    transformed: AtomicU64,
}

impl Default for JobStats {
    fn default() -> Self {
        JobStats {
            started: Instant::now(),
            index_ns: AtomicU64::new(0),
            read_ns: AtomicU64::new(0),
            transform_ns: AtomicU64::new(0),
            upload_ns: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            input_size: AtomicU64::new(0),
            transformed: AtomicU64::new(0),
        }
    }
}

fn add(counter: &AtomicU64, d: Duration) {
    counter.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> Duration {
    Duration::from_nanos(counter.load(Ordering::Relaxed))
}

impl JobStats {
    /// Indexing the inputs took `d`.
    pub fn add_index(&self, d: Duration) {
        add(&self.index_ns, d);
    }

    /// One entry's processing on the pool took `d`.
    pub fn add_transform(&self, d: Duration) {
        add(&self.transform_ns, d);
        self.transformed.fetch_add(1, Ordering::Relaxed);
    }

    /// The inputs to read are `bytes` in all (set once they are indexed).
    pub fn set_input_size(&self, bytes: u64) {
        self.input_size.store(bytes, Ordering::Relaxed);
    }

    fn add_read(&self, d: Duration, bytes: u64) {
        add(&self.read_ns, d);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    fn add_upload(&self, d: Duration, bytes: u64) {
        add(&self.upload_ns, d);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The figures so far (`report`: the time reporting took, if it is done).
    pub fn figures(&self, report: Duration) -> Figures {
        Figures {
            wall: self.started.elapsed(),
            index: get(&self.index_ns),
            read: get(&self.read_ns),
            transform: get(&self.transform_ns),
            upload: get(&self.upload_ns),
            report,
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            peak_rss: peak_rss_bytes(),
            input_size: self.input_size.load(Ordering::Relaxed),
            entries_processed: self.transformed.load(Ordering::Relaxed),
        }
    }

    /// The one line per job: outcome, entries, bytes, rate, memory, stage times.
    pub fn log_finished(&self, job_id: &str, outcome: &str, entries: u64, report: Duration) {
        let f = self.figures(report);
        let ms = |d: Duration| d.as_millis() as u64;
        tracing::info!(
            job_id,
            outcome,
            entries,
            bytes_in = f.bytes_in,
            bytes_out = f.bytes_out,
            mb_per_s = (f.mb_per_s() * 10.0).round() / 10.0,
            peak_rss_mb = f.peak_rss.map(|b| b >> 20),
            wall_ms = ms(f.wall),
            index_ms = ms(f.index),
            read_ms = ms(f.read),
            transform_ms = ms(f.transform),
            upload_ms = ms(f.upload),
            report_ms = ms(f.report),
            "job finished"
        );
    }
}

/// A snapshot of [`JobStats`].
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Since the job started.
    pub wall: Duration,
    /// See the module doc for what each stage counts.
    pub index: Duration,
    /// Summed GET time.
    pub read: Duration,
    /// Summed pool time.
    pub transform: Duration,
    /// Summed upload time.
    pub upload: Duration,
    /// Reporting.
    pub report: Duration,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// The process's peak resident memory, where the OS tells it.
    pub peak_rss: Option<u64>,
    /// The indexed inputs' size (0 until they are indexed).
    pub input_size: u64,
    /// Entries processed on the transform pool so far.
    pub entries_processed: u64,
}

impl Figures {
    /// Input megabytes (10^6) per wall second.
    pub fn mb_per_s(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.bytes_in as f64 / 1e6 / secs
        } else {
            0.0
        }
    }

    /// The figures for `executionDetails.summary`, e.g.
    /// `in 12.0 MB, out 11.9 MB, 85.3 MB/s, peak 48 MiB; index 0.02 s, read 0.10 s,
    /// transform 0.05 s, upload 0.08 s`.
    pub fn short(&self) -> String {
        let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        let peak = self
            .peak_rss
            .map_or(String::new(), |b| format!(", peak {} MiB", b >> 20));
        format!(
            "in {}, out {}, {:.1} MB/s{peak}; index {}, read {}, transform {}, upload {}",
            human_bytes(self.bytes_in),
            human_bytes(self.bytes_out),
            self.mb_per_s(),
            s(self.index),
            s(self.read),
            s(self.transform),
            s(self.upload),
        )
    }
}

/// `532 B`, `4.9 kB`, `12.3 MB`, `1.20 GB` (powers of 1,000, as S3 and Lambda
/// count).
pub fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// The process's resident high-water mark (`VmHWM` in `/proc/self/status`), in
/// bytes; `None` where there is no procfs.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib << 10)
}

/// A store that counts what passes through it into a job's [`JobStats`].
pub struct Metered {
    inner: Arc<dyn ObjectStore>,
    stats: Arc<JobStats>,
}

impl Metered {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>, stats: Arc<JobStats>) -> Self {
        Metered { inner, stats }
    }
}

#[async_trait]
impl ObjectStore for Metered {
    async fn head(&self, loc: &S3Location) -> Result<ObjectInfo, StoreError> {
        self.inner.head(loc).await
    }

    async fn get_range(
        &self,
        loc: &S3Location,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<Bytes, StoreError> {
        let t = Instant::now();
        let got = self.inner.get_range(loc, range, if_match).await;
        let bytes = got.as_ref().map_or(0, |b| b.len() as u64);
        self.stats.add_read(t.elapsed(), bytes);
        got
    }

    async fn put_object(
        &self,
        loc: &S3Location,
        body: Bytes,
        enc: &Encryption,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let (t, n) = (Instant::now(), body.len() as u64);
        let put = self.inner.put_object(loc, body, enc, content_type).await;
        self.stats
            .add_upload(t.elapsed(), if put.is_ok() { n } else { 0 });
        put
    }

    async fn create_multipart(
        &self,
        loc: &S3Location,
        enc: &Encryption,
        content_type: &str,
    ) -> Result<String, StoreError> {
        self.inner.create_multipart(loc, enc, content_type).await
    }

    async fn upload_part(
        &self,
        loc: &S3Location,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let (t, n) = (Instant::now(), body.len() as u64);
        let put = self.inner.upload_part(loc, upload_id, number, body).await;
        self.stats
            .add_upload(t.elapsed(), if put.is_ok() { n } else { 0 });
        put
    }

    async fn upload_part_copy(
        &self,
        loc: &S3Location,
        upload_id: &str,
        number: i32,
        source: &S3Location,
        source_etag: Option<&str>,
        range: Range<u64>,
    ) -> Result<String, StoreError> {
        let t = Instant::now();
        let copy = self
            .inner
            .upload_part_copy(loc, upload_id, number, source, source_etag, range)
            .await;
        self.stats.add_upload(t.elapsed(), 0);
        copy
    }

    async fn complete_multipart(
        &self,
        loc: &S3Location,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), StoreError> {
        let t = Instant::now();
        let done = self.inner.complete_multipart(loc, upload_id, parts).await;
        self.stats.add_upload(t.elapsed(), 0);
        done
    }

    async fn abort_multipart(&self, loc: &S3Location, upload_id: &str) -> Result<(), StoreError> {
        self.inner.abort_multipart(loc, upload_id).await
    }

    async fn delete(&self, loc: &S3Location) -> Result<(), StoreError> {
        self.inner.delete(loc).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn the_metered_store_counts_reads_and_uploads() {
        let mem = Arc::new(MemoryStore::new());
        let stats = Arc::new(JobStats::default());
        let store = Metered::new(mem.clone(), stats.clone());
        let loc = S3Location {
            bucket_name: "b".into(),
            object_key: "k".into(),
        };
        store
            .put_object(
                &loc,
                Bytes::from(vec![7u8; 1000]),
                &Encryption::default(),
                "application/zip",
            )
            .await
            .unwrap();
        let got = store.get_range(&loc, 10..110, None).await.unwrap();
        assert_eq!(got.len(), 100);
        let f = stats.figures(Duration::from_millis(3));
        assert_eq!((f.bytes_in, f.bytes_out), (100, 1000));
        assert_eq!(f.report, Duration::from_millis(3));
        let short = f.short();
        assert!(short.starts_with("in 100 B, out 1.0 kB, "), "{short}");
        assert_eq!(human_bytes(12_345_678), "12.3 MB");
        assert_eq!(human_bytes(1_200_000_000), "1.20 GB");
        if cfg!(target_os = "linux") {
            assert!(f.peak_rss.unwrap() > 1 << 20);
        }
    }
}
