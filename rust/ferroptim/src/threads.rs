//! The thread pool every kernel runs on.
//!
//! One rayon pool, sized by [`set_num_threads`], else by the environment variable
//! `FERROPTIM_NUM_THREADS`, else by the number of CPUs (both read once, when first
//! needed). Results never depend on the thread count: every element takes the same
//! arithmetic path whichever thread runs it.
//!
//! A forked child process cannot use its parent's worker threads (they do not exist
//! in the child), so the pool remembers the process id that built it and is rebuilt,
//! with the same size, the first time a child uses it.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::crew::{Board, Standby};

/// The environment variable that sets the default number of threads.
pub const NUM_THREADS_ENV: &str = "FERROPTIM_NUM_THREADS";

struct Pool {
    pool: Arc<ThreadPool>,
    /// The pool's helpers lingering for the next crew.
    standby: Arc<Standby<Board>>,
    threads: usize,
    pid: u32,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// Why the number of threads could not be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadsError {
    /// Zero threads were asked for.
    Zero,
    /// The operating system refused to start the worker threads.
    Spawn(String),
}

impl fmt::Display for ThreadsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadsError::Zero => write!(f, "the number of threads must be at least 1"),
            ThreadsError::Spawn(e) => write!(f, "could not start the worker threads: {e}"),
        }
    }
}

impl std::error::Error for ThreadsError {}

/// The thread count used when none was set: `FERROPTIM_NUM_THREADS` if it holds a
/// positive integer, else the number of CPUs available to this process. Read afresh
/// on each call; the pool reads it once, when first asked for its size.
pub fn default_num_threads() -> usize {
    std::env::var(NUM_THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n >= 1)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// [`default_num_threads`], found on first use and kept: asking how many CPUs the
/// process may use reads several files (its CPU set, its cgroup's quota), which costs
/// far more than a small step.
fn default_threads() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    *DEFAULT.get_or_init(default_num_threads)
}

fn build(threads: usize) -> Result<Pool, ThreadsError> {
    let pool = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ferroptim-{i}"))
        .build()
        .map_err(|e| ThreadsError::Spawn(e.to_string()))?;
    Ok(Pool { pool: Arc::new(pool), standby: Arc::new(Standby::new(threads)), threads, pid: std::process::id() })
}

fn lock() -> MutexGuard<'static, Option<Pool>> {
    // A panic while the lock was held cannot leave the Option half-written.
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the number of threads every later step uses.
pub fn set_num_threads(threads: usize) -> Result<(), ThreadsError> {
    if threads == 0 {
        return Err(ThreadsError::Zero);
    }
    let new = build(threads)?;
    let old = lock().replace(new);
    forget_if_foreign(old);
    Ok(())
}

/// The number of threads steps run on.
pub fn get_num_threads() -> usize {
    match lock().as_ref() {
        Some(p) => p.threads,
        None => default_threads(),
    }
}

/// A pool inherited through `fork` has no worker threads in this process: dropping
/// it would signal threads that do not exist, so it is leaked instead.
fn forget_if_foreign(old: Option<Pool>) {
    if let Some(old) = old {
        if old.pid != std::process::id() {
            std::mem::forget(old);
        }
    }
}

pub(crate) fn current() -> Arc<ThreadPool> {
    workers().0
}

/// The pool, and its helpers lingering for the next crew.
pub(crate) fn workers() -> (Arc<ThreadPool>, Arc<Standby<Board>>) {
    let mut guard = lock();
    let pid = std::process::id();
    match guard.as_ref() {
        Some(p) if p.pid == pid => return (Arc::clone(&p.pool), Arc::clone(&p.standby)),
        _ => {}
    }
    let threads = guard.as_ref().map_or_else(default_threads, |p| p.threads);
    // Building can only fail if the OS refuses threads; fall back to one thread,
    // which rayon builds without spawning more than it must.
    let fresh = build(threads).or_else(|_| build(1)).expect("cannot start a worker thread");
    let workers = (Arc::clone(&fresh.pool), Arc::clone(&fresh.standby));
    let old = guard.replace(fresh);
    drop(guard);
    forget_if_foreign(old);
    workers
}

/// Runs `f` inside the pool, so that rayon's parallel iterators in it use the pool.
pub(crate) fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    current().install(f)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Tests that change the thread count take this lock so they do not race.
    pub(crate) static THREADS_LOCK: Mutex<()> = Mutex::new(());

    #[test]
    fn set_and_get() {
        let _g = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        set_num_threads(3).unwrap();
        assert_eq!(get_num_threads(), 3);
        assert_eq!(install(rayon::current_num_threads), 3);
        set_num_threads(1).unwrap();
        assert_eq!(install(rayon::current_num_threads), 1);
        assert_eq!(set_num_threads(0), Err(ThreadsError::Zero));
        assert_eq!(get_num_threads(), 1);
    }
}
