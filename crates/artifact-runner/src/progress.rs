//! Progress bars for `run` on a terminal: bytes read (of the indexed inputs'
//! size), entries processed on the transform pool, bytes uploaded. They watch the
//! job's [`JobStats`] from a ticker task and never touch the job. indicatif draws
//! on stderr and draws nothing when stderr is not a terminal, so piped or CI
//! output stays clean.

use std::sync::Arc;
use std::time::Duration;

use artifact_core::stats::JobStats;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bars being drawn for one invocation.
pub struct Progress {
    stop: oneshot::Sender<()>,
    ticker: JoinHandle<()>,
}

fn bar(multi: &MultiProgress, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    multi.add(ProgressBar::no_length().with_style(style))
}

impl Progress {
    /// Starts drawing `stats` (every 100 ms) until [`Self::finish`].
    pub fn start(stats: Arc<JobStats>) -> Progress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let read = bar(
            &multi,
            "read      [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        );
        let transform = bar(&multi, "transform {spinner} {pos} entries processed");
        let upload = bar(&multi, "upload    {spinner} {bytes} {bytes_per_sec}");
        let (stop, mut stopped) = oneshot::channel();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                let f = stats.figures(Duration::ZERO);
                if f.input_size > 0 {
                    // Reads also fetch the central directories: never past 100%.
                    read.set_length(f.input_size.max(f.bytes_in));
                }
                read.set_position(f.bytes_in);
                transform.set_position(f.entries_processed);
                upload.set_position(f.bytes_out);
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => break,
                }
            }
            for b in [&read, &transform, &upload] {
                b.finish_and_clear();
            }
            let _ = multi.clear();
        });
        Progress { stop, ticker }
    }

    /// Stops drawing and clears the bars.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.ticker.await;
    }
}
