//! Sharing a step's work between the calling thread and pool threads woken ahead.
//!
//! A step over a few hundred thousand elements takes a few hundred microseconds. Handed
//! to the pool the usual way (`install`), it pays twice for threads that fell asleep:
//! once to wake a worker, once to wake the caller, which sleeps while the pool works.
//! On a virtual machine each wake-up can cost as much as the step itself.
//!
//! A [`Crew`] avoids both: [`Crew::wake`] sends helpers to the pool *before* the work is
//! known (while the step is still checking its arrays, say), where they wait awake;
//! [`Crew::share`] then posts the work as numbered pieces that the caller and the
//! helpers take one at a time, the caller included, and the caller waits only for the
//! pieces a helper is still finishing, without sleeping. A helper that wakes too late
//! finds nothing left and goes; a crew that is dropped unused sends its helpers away.
//! Which thread runs which piece never changes a result.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::threads;

/// How long a helper waits for work before it goes (a step that posts none drops
/// its crew, which sends the helpers away at once; this only bounds a forgotten one).
const PATIENCE: Duration = Duration::from_millis(50);

/// Spins a helper makes between two yields of its thread while it waits.
const SPINS: u32 = 64;

/// The work posted to a crew: `run(i)` for each piece `i < total`.
struct Posted<'a> {
    run: &'a (dyn Fn(usize) + Sync),
}

/// What the caller and its helpers share.
#[derive(Default)]
struct Board {
    /// The posted work (null until posted). Read by a helper only after it has taken
    /// a piece, which the caller waits for before the work goes out of scope.
    posted: AtomicPtr<Posted<'static>>,
    /// How many pieces there are (set before `posted`).
    total: AtomicUsize,
    /// The pieces not yet taken, `[front, back)`, packed as `front | back << 32`:
    /// the caller takes from the front, helpers from the back, so that a thread
    /// tends to get the same pieces step after step (their memory in its cache).
    left: AtomicU64,
    /// How many pieces taken by a helper are finished.
    helped: AtomicUsize,
    /// The caller is done with the crew: helpers still waiting go.
    closed: AtomicBool,
    /// The first panic of a helper's piece, for the caller to resume.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// `Board::left` as `(front, back)`.
fn unpack(left: u64) -> (usize, usize) {
    (left as u32 as usize, (left >> 32) as usize)
}

impl Board {
    /// Takes a piece, if one is left: the first for the caller, the last for a helper.
    fn take(&self, caller: bool) -> Option<usize> {
        let old = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                let (front, back) = unpack(v);
                (front < back).then(|| if caller { v + 1 } else { v - (1 << 32) })
            })
            .ok()?;
        let (front, back) = unpack(old);
        Some(if caller { front } else { back - 1 })
    }

    /// Stops the taking; returns how many pieces were taken.
    fn stop(&self) -> usize {
        let (front, back) = unpack(self.left.swap(0, Ordering::AcqRel));
        front + self.total.load(Ordering::Acquire) - back
    }

    /// A helper: waits for work (or for the crew to close), then takes pieces until
    /// none is left.
    fn help(&self) {
        let since = Instant::now();
        let mut posted = self.posted.load(Ordering::Acquire);
        let mut spins = 0u32;
        while posted.is_null() {
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            spins += 1;
            if spins.is_multiple_of(SPINS) {
                if since.elapsed() > PATIENCE {
                    return;
                }
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
            posted = self.posted.load(Ordering::Acquire);
        }
        while let Some(i) = self.take(false) {
            // SAFETY: piece `i` is taken and not yet counted in `helped`, so the caller
            // is still in `share`, waiting, and the work `posted` points to is alive.
            let work = unsafe { &*posted };
            if let Err(e) = panic::catch_unwind(AssertUnwindSafe(|| (work.run)(i))) {
                self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
            }
            self.helped.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Helpers woken in the pool for one [`share`](Crew::share) (see the module docs).
pub struct Crew {
    board: Arc<Board>,
}

impl Crew {
    /// Sends one helper for each pool thread but one (the caller is the other) to
    /// wait for work; with one thread, none.
    pub fn wake() -> Self {
        let board = Arc::new(Board::default());
        let helpers = threads::get_num_threads().saturating_sub(1);
        if helpers > 0 {
            let pool = threads::current();
            for _ in 0..helpers {
                let board = Arc::clone(&board);
                pool.spawn(move || board.help());
            }
        }
        Crew { board }
    }

    /// Runs `run(i)` for every `i < total`, on this thread and on the crew's helpers,
    /// each `i` once; returns when all have run. A panic in any of them is resumed
    /// here, once the others have finished.
    pub fn share(self, total: usize, run: &(dyn Fn(usize) + Sync)) {
        let board = &*self.board;
        let posted = Posted { run };
        let total32 = u32::try_from(total).expect("fewer than 2^32 pieces");
        board.total.store(total, Ordering::Release);
        board.left.store(u64::from(total32) << 32, Ordering::Release);
        // The lifetime is erased only for the board; see `Board::posted`.
        board.posted.store((&posted as *const Posted<'_>).cast_mut().cast(), Ordering::Release);
        // On the way out, normal or not, no piece is left to take and every piece a
        // helper took is finished: only then may `posted` go out of scope.
        struct Finish<'a>(&'a Board, usize);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                let by_helpers = self.0.stop() - self.1;
                let mut spins = 0u32;
                while self.0.helped.load(Ordering::Acquire) < by_helpers {
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(SPINS) {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        }
        let mut finish = Finish(board, 0);
        while let Some(i) = board.take(true) {
            finish.1 += 1; // taken by the caller (counted before it runs: a panic leaves it unfinished)
            run(i);
        }
        drop(finish);
        if let Some(e) = board.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            panic::resume_unwind(e);
        }
    }
}

thread_local! {
    /// The crew woken ahead on this thread ([`wake_ahead`]), until a batch takes it.
    static AHEAD: std::cell::RefCell<Option<Crew>> = const { std::cell::RefCell::new(None) };
}

/// Wakes a crew now for the next batch this thread shares: a step that
/// expects enough work calls it before it checks its arrays, so that the helpers
/// are awake when the work is ready. The crew goes (its helpers with it) when the
/// returned guard is dropped, if no batch took it.
#[must_use = "the crew is sent away when the guard is dropped"]
pub fn wake_ahead() -> Ahead {
    AHEAD.with(|a| *a.borrow_mut() = Some(Crew::wake()));
    Ahead(())
}

/// Sends away the crew [`wake_ahead`] woke, if no batch took it.
pub struct Ahead(());

impl Drop for Ahead {
    fn drop(&mut self) {
        AHEAD.with(|a| a.borrow_mut().take());
    }
}

/// The crew woken ahead on this thread, else one woken now.
pub fn woken() -> Crew {
    AHEAD.with(|a| a.borrow_mut().take()).unwrap_or_else(Crew::wake)
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.board.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threads::set_num_threads;
    use crate::threads::tests::THREADS_LOCK;

    fn lock() -> std::sync::MutexGuard<'static, ()> {
        THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn every_piece_runs_once_whatever_the_threads() {
        let _g = lock();
        for threads in [1, 2, 3] {
            set_num_threads(threads).unwrap();
            for total in [0, 1, 2, 7, 100] {
                let counts: Vec<AtomicUsize> = (0..total).map(|_| AtomicUsize::new(0)).collect();
                Crew::wake().share(total, &|i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "{threads} threads, {total} pieces");
            }
        }
    }

    #[test]
    fn a_crew_dropped_unused_lets_its_helpers_go() {
        let _g = lock();
        set_num_threads(2).unwrap();
        for _ in 0..100 {
            drop(Crew::wake());
        }
        let counts: Vec<AtomicUsize> = (0..10).map(|_| AtomicUsize::new(0)).collect();
        Crew::wake().share(10, &|i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn a_crew_woken_ahead_serves_one_share_on_its_thread() {
        let _g = lock();
        set_num_threads(2).unwrap();
        let ahead = wake_ahead();
        assert!(AHEAD.with(|a| a.borrow().is_some()));
        let counts: Vec<AtomicUsize> = (0..50).map(|_| AtomicUsize::new(0)).collect();
        woken().share(50, &|i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(AHEAD.with(|a| a.borrow().is_none()), "taken by the share");
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        drop(ahead);
        let unused = wake_ahead();
        drop(unused);
        assert!(AHEAD.with(|a| a.borrow().is_none()), "sent away with its guard");
    }

    #[test]
    fn a_panic_in_any_piece_reaches_the_caller_after_the_others() {
        let _g = lock();
        set_num_threads(2).unwrap();
        for bad in [0, 5, 9] {
            let finished = AtomicUsize::new(0);
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                Crew::wake().share(10, &|i| {
                    std::thread::sleep(Duration::from_micros(200));
                    assert_ne!(i, bad, "piece {i}");
                    finished.fetch_add(1, Ordering::Relaxed);
                })
            }));
            assert!(result.is_err(), "the panic of piece {bad} is resumed");
            // no piece is running once share has returned: the count stays put
            let now = finished.load(Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(finished.load(Ordering::Relaxed), now);
        }
    }
}
