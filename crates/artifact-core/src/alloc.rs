//! The process's memory allocator settings, applied by the binaries before any thread
//! starts ([`limit_malloc_arenas`]).
//!
//! glibc's malloc gives each thread that meets contention an arena of its own (up to
//! eight per core) and returns little of a thread arena's freed memory to the system.
//! The worker's tokio and rayon threads pass multi-MiB buffers (ranged reads, parts,
//! transformed entries) between one another, so freed buffers were stranded in several
//! arenas: on the same 2 GB job at a 256 MB function size peak RSS drifted between 200
//! and 260 MiB from run to run (`benches/memory.sh big`, `tests/memory_bound.rs`). Two
//! arenas hold it near 150 MiB, and the job runs no slower (the worker's hot paths
//! allocate few, large buffers). Invariant: a non-empty `MALLOC_ARENA_MAX` in the
//! environment is left to glibc; other C libraries (musl) are not touched.

/// Limits glibc's malloc to two arenas unless `MALLOC_ARENA_MAX` says otherwise.
/// Call it first thing in `main`, before a runtime or thread pool starts (arenas
/// already made are kept). Returns whether the limit was set.
pub fn limit_malloc_arenas() -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    set_arena_max(2)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(n: i32) -> bool {
    // SAFETY: mallopt only changes malloc's tunables; M_ARENA_MAX takes a count.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_n: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_limit() {
        assert!(super::set_arena_max(2));
    }
}
