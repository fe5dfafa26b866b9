//! Running CPU work on the rayon pool from async code without blocking tokio:
//! `pool.spawn` + a oneshot channel (as uv does), or on tokio's blocking threads for
//! serial stages that must not wait behind the pool's queue. Panics in the closure are caught
//! and returned as errors, so a bug in one entry fails the job instead of aborting the
//! process (which would leave the pipeline hanging until its timeout).

use std::panic::{catch_unwind, AssertUnwindSafe};

use tokio::sync::oneshot;

/// Runs `f` on `pool` and awaits its result; `Err` carries a panic message.
pub async fn on_pool<T, F>(pool: &rayon::ThreadPool, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    pool.spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&*p));
        let _ = tx.send(r);
    });
    rx.await.map_err(|_| "worker thread vanished".to_string())?
}

/// Runs `f` on tokio's blocking threads and awaits its result; `Err` carries a panic
/// message. For a serial stage of the writer (a tar.gz's gzip stream) that must not
/// queue behind the transforms the pool runs ahead of it: on the pool, every write
/// waited for the window of entries spawned before it, and a checkpoint's flush could
/// miss the deadline the clock had planned for.
pub async fn on_blocking<T, F>(f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&*p))
    })
    .await
    .map_err(|e| format!("blocking task failed: {e}"))?
}

/// The text of a panic payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}
