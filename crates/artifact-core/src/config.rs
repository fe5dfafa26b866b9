//! Tuning knobs, all derived from the function's memory unless set explicitly.
//!
//! Every environment variable the worker reads is listed here (the runner also
//! exposes them as flags):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ARTIFACT_WORKER_MEMORY_MB` | `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, else 512 | memory to plan for |
//! | `ARTIFACT_WORKER_THREADS` | available CPUs | rayon threads for entry transforms |
//! | `ARTIFACT_WORKER_KMS_CHECK` | `warn` | `warn`: a missing, disabled, pending-deletion or asymmetric key fails the job up front, but a DescribeKey denied to the function's role is only logged (the job's own credentials do the crypto); `strict`: a denied DescribeKey fails the job too; `off`: no check |
//! | `ARTIFACT_WORKER_SERVER_SIDE_COPY` | `on` | `off`: untouched entries are rewritten with fresh headers and every byte is uploaded by the worker; `on`: they are kept verbatim and runs of them of 15 MiB or more are copied server-side (UploadPartCopy) where the store allows |
//! | `ARTIFACT_WORKER_DEADLINE_MARGIN_MS` | 3000 | time kept back from the Lambda deadline for cleanup and reporting; a checkpoint's measured cost is kept back on top (see `continuation::Clock`) |

use std::time::Duration;

const MIB: u64 = 1 << 20;

/// How strictly the job's KMS key is checked before data moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsCheck {
    /// DescribeKey must succeed and show an enabled symmetric key.
    Strict,
    /// As strict, but a denied DescribeKey is only logged.
    Warn,
    /// No check.
    Off,
}

/// Resource settings for one worker (shared by all jobs it runs).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Rayon threads for entry transforms.
    pub threads: usize,
    /// Bytes of input that may be in flight between the source and the sink.
    pub read_budget: u64,
    /// Size of one ranged GET.
    pub read_chunk: u64,
    /// Ranged GETs in flight.
    pub read_concurrency: usize,
    /// First multipart part size (grows so 10,000 parts cover any object).
    pub part_size: u64,
    /// Parts uploading at once.
    pub upload_concurrency: usize,
    /// Largest entry (uncompressed) a content step may transform.
    pub max_transform_size: u64,
    /// Bytes that entries being transformed may hold at once, from assembly until
    /// written (compressed input, inflated text, step output, recompressed body).
    pub transform_budget: u64,
    /// Largest central directory loaded per input (the parsed index takes about
    /// three to four times its size).
    pub max_cd_size: u64,
    /// Most entries all inputs of a job may declare together: an entry costs about
    /// 1 KiB while the job runs (its index record, its plan, its output record), so
    /// this is 60% of the memory at 1 KiB each, never above 2,000,000.
    pub max_entries: u64,
    /// Time kept back from the deadline to clean up and report.
    pub deadline_margin: Duration,
    /// KMS key check mode.
    pub kms_check: KmsCheck,
    /// Untouched entries are written verbatim and runs of them copied server-side
    /// (UploadPartCopy) where the store allows; see `sink::copy`.
    pub server_side_copy: bool,
}

/// Parts in flight for a function with `mem` bytes of memory: S3 caps each
/// connection well below a function's bandwidth (tens of MB/s each), so throughput
/// comes from parallel parts; 256 MB functions keep 3 (each part in flight is held
/// in memory).
fn upload_concurrency(mem: u64) -> usize {
    match mem {
        m if m >= 1024 * MIB => 8,
        m if m >= 512 * MIB => 6,
        _ => 3,
    }
}

impl Settings {
    /// Settings for a function with `memory_mb` of memory and `threads` CPUs.
    ///
    /// The network model behind the S3 figures (measured with `E2E_SHAPE` in
    /// `benches/e2e.sh`): each request waits ~30 ms for its first byte and each
    /// connection moves ~40 MB/s, so a function needs many requests in flight. Reads
    /// keep 8 GETs of `read_budget / 16` (1–8 MiB) in flight — half the read budget,
    /// leaving the rest for bytes on their way to the writer — and uploads 3–8 parts.
    pub fn for_memory(memory_mb: u64, threads: usize) -> Settings {
        let mem = memory_mb.max(128) * MIB;
        let read_budget = (mem / 8).clamp(32 * MIB, 512 * MIB);
        let part_size = if mem >= 2048 * MIB { 16 * MIB } else { 8 * MIB };
        Settings {
            threads: threads.max(1),
            read_budget,
            read_chunk: (read_budget / 16).clamp(MIB, 8 * MIB),
            read_concurrency: 8,
            part_size,
            upload_concurrency: upload_concurrency(mem),
            max_transform_size: (mem / 8).clamp(16 * MIB, 1024 * MIB),
            transform_budget: (mem / 2).clamp(64 * MIB, 4096 * MIB),
            max_cd_size: (mem / 8).clamp(16 * MIB, 1024 * MIB),
            max_entries: (mem / 10 * 6 / 1024).min(2_000_000),
            deadline_margin: Duration::from_secs(3),
            kms_check: KmsCheck::Warn,
            server_side_copy: true,
        }
    }

    /// Settings from the environment (see the module table).
    pub fn from_env() -> Settings {
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let memory = num("ARTIFACT_WORKER_MEMORY_MB")
            .or_else(|| num("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
            .unwrap_or(512);
        let threads = num("ARTIFACT_WORKER_THREADS")
            .map(|t| t as usize)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            });
        let mut s = Settings::for_memory(memory, threads);
        if let Some(ms) = num("ARTIFACT_WORKER_DEADLINE_MARGIN_MS") {
            s.deadline_margin = Duration::from_millis(ms);
        }
        s.server_side_copy =
            std::env::var("ARTIFACT_WORKER_SERVER_SIDE_COPY").as_deref() != Ok("off");
        s.kms_check = match std::env::var("ARTIFACT_WORKER_KMS_CHECK").as_deref() {
            Ok("off") => KmsCheck::Off,
            Ok("strict") => KmsCheck::Strict,
            _ => KmsCheck::Warn,
        };
        s
    }

    /// Entries processed ahead of the writer (derived from `threads`, so it follows
    /// an override).
    pub fn entry_window(&self) -> usize {
        8 * self.threads.max(1)
    }

    /// Memory an entry being transformed holds, as counted against
    /// `transform_budget`: its compressed bytes, the inflated text, the step output
    /// and the recompressed body (each at most the uncompressed size, steps capped).
    pub fn transform_footprint(&self, compressed: u64, uncompressed: u64) -> u64 {
        compressed.saturating_add(uncompressed.saturating_mul(3))
    }

    /// Size of multipart part `n` (1-based): doubles every 1,000 parts, so 10,000
    /// parts reach far beyond S3's 5 TiB object limit; never above 5 GiB.
    pub fn part_size_for(&self, n: i32) -> u64 {
        let doublings = ((n.max(1) - 1) / 1000) as u32;
        (self.part_size.max(5 * MIB) << doublings.min(12)).min(5 << 30)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::for_memory(
            512,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_parts_cover_five_tib() {
        let s = Settings::for_memory(128, 1);
        let total: u64 = (1..=10_000).map(|n| s.part_size_for(n)).sum();
        assert!(total > 5 << 40, "{total}");
        assert!((1..=10_000).all(|n| s.part_size_for(n) <= 5 << 30));
    }
}
