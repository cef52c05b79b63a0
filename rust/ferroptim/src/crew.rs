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
//! pieces a helper is still finishing, without sleeping. A crew may share several
//! times (a replayed step shares its checks, then its kernels); its helpers wait awake
//! in between, and a helper late for one share never takes a piece of the next. A
//! crew that is dropped sends its helpers away; they linger awake for a while, and
//! the next crew takes them on instead of waking sleeping pool threads (the private
//! `standby` module). Which thread runs which piece never changes a result.

mod standby;

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::threads;
pub(crate) use standby::Standby;

/// How long a helper waits for work before it goes (a step drops its crew when done,
/// which sends the helpers away at once; this only bounds a forgotten one).
const PATIENCE: Duration = Duration::from_millis(50);

/// Spins a helper makes between two yields of its thread while it waits.
const SPINS: u32 = 64;

/// The work posted to a crew: `run(i)` for each piece `i < total`.
struct Posted<'a> {
    run: &'a (dyn Fn(usize) + Sync),
}

/// The most pieces one share may have (see [`Board::left`]).
const MAX_PIECES: usize = 1 << 24;

/// What the caller and its helpers share.
#[derive(Default)]
pub(crate) struct Board {
    /// The work of the current share (null until the first). Read by a helper only
    /// after it has taken one of the share's pieces, which the caller waits for
    /// before the work goes out of scope or the next share is posted.
    posted: AtomicPtr<Posted<'static>>,
    /// The pieces of the current share not yet taken, `[front, back)`, and the
    /// share's number (from 1), packed as `front | back << 24 | share << 48`. The
    /// caller takes from the front, helpers from the back, so that a thread tends to
    /// get the same pieces step after step (their memory in its cache); a take names
    /// its share, so a helper late for one never takes a piece of the next.
    left: AtomicU64,
    /// How many pieces taken by a helper in the current share are finished.
    helped: AtomicUsize,
    /// The caller is done with the crew: helpers still waiting go.
    closed: AtomicBool,
    /// The first panic of a helper's piece, for the caller to resume.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// `Board::left` as `(share, front, back)`.
fn unpack(left: u64) -> (u64, usize, usize) {
    const PIECES: u64 = (1 << 24) - 1;
    (left >> 48, (left & PIECES) as usize, ((left >> 24) & PIECES) as usize)
}

/// `Board::left` for `[front, back)` of share `share`.
fn pack(share: u64, front: usize, back: usize) -> u64 {
    front as u64 | (back as u64) << 24 | share << 48
}

impl Board {
    /// Takes a piece of share `share`, if one is left: the first for the caller, the
    /// last for a helper.
    fn take(&self, share: u64, caller: bool) -> Option<usize> {
        let old = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                let (now, front, back) = unpack(v);
                (now == share && front < back).then(|| {
                    if caller {
                        pack(share, front + 1, back)
                    } else {
                        pack(share, front, back - 1)
                    }
                })
            })
            .ok()?;
        let (_, front, back) = unpack(old);
        Some(if caller { front } else { back - 1 })
    }

    /// Stops the taking of share `share` of `total` pieces; returns how many of
    /// them helpers took.
    fn stop(&self, share: u64, total: usize) -> usize {
        let (_, _, back) = unpack(self.left.swap(pack(share, 0, 0), Ordering::AcqRel));
        total - back
    }

    /// A helper: waits for a share (or for the crew to close), takes pieces of it
    /// until none is left, and waits for the next.
    fn help(&self) {
        let mut since = Instant::now();
        let mut done = 0; // the last share this helper took part in (shares count from 1)
        let mut spins = 0u32;
        loop {
            let (share, _, _) = unpack(self.left.load(Ordering::Acquire));
            if share != done {
                while let Some(i) = self.take(share, false) {
                    // SAFETY: piece `i` of the current share is taken and not yet
                    // counted in `helped`, so the caller is still in `share`, waiting,
                    // and the work `posted` points to (stored before the share's pieces
                    // were) is alive.
                    let work = unsafe { &*self.posted.load(Ordering::Acquire) };
                    if let Err(e) = panic::catch_unwind(AssertUnwindSafe(|| (work.run)(i))) {
                        self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
                    }
                    self.helped.fetch_add(1, Ordering::AcqRel);
                }
                done = share;
                since = Instant::now();
                continue;
            }
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
        }
    }
}

thread_local! {
    /// This thread lingers on its pool's standby (see [`serve`]).
    static LINGERING: Cell<bool> = const { Cell::new(false) };
}

/// A helper's life in the pool: it serves `board`'s crew, then lingers on the pool's
/// `standby` and serves each crew handed to it there, until none comes for
/// [`standby::LINGER`]. A helper run from inside another's lingering (which runs the
/// jobs arriving in the pool) serves its crew only: one lingers per thread.
fn serve(board: Arc<Board>, standby: Arc<Standby<Board>>) {
    board.help();
    drop(board);
    if LINGERING.replace(true) {
        return;
    }
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            LINGERING.set(false);
        }
    }
    let _done = Done;
    while let Some(board) = standby.linger(standby::LINGER) {
        board.help();
    }
}

/// Helpers woken in the pool for the [`share`](Crew::share)s of one step (see the
/// module docs).
pub struct Crew {
    board: Arc<Board>,
    /// The number of the last share.
    shares: Cell<u64>,
}

impl Crew {
    /// Sends one helper for each pool thread but one (the caller is the other) to
    /// wait for work, a lingering one if there is one (see the module docs); with one
    /// thread, none.
    pub fn wake() -> Self {
        let board = Arc::new(Board::default());
        let helpers = threads::get_num_threads().saturating_sub(1);
        if helpers > 0 {
            let (pool, standby) = threads::workers();
            for _ in 0..helpers {
                if let Err(board) = standby.hand(Arc::clone(&board)) {
                    let standby = Arc::clone(&standby);
                    pool.spawn(move || serve(board, standby));
                }
            }
        }
        Crew { board, shares: Cell::new(0) }
    }

    /// Runs `run(i)` for every `i < total`, on this thread and on the crew's helpers,
    /// each `i` once; returns when all have run. A panic in any of them is resumed
    /// here, once the others have finished. A crew may share any number of times;
    /// its helpers wait awake in between.
    ///
    /// # Panics
    /// With `MAX_PIECES` (2²⁴) pieces or more, or past 2¹⁶ − 1 shares.
    pub fn share(&self, total: usize, run: &(dyn Fn(usize) + Sync)) {
        assert!(total < MAX_PIECES, "fewer than 2^24 pieces");
        let share = self.shares.get() + 1;
        assert!(share < 1 << 16, "fewer than 2^16 shares per crew");
        self.shares.set(share);
        let board = &*self.board;
        let posted = Posted { run };
        // The last share's pieces are all finished (its `share` waited for them).
        board.helped.store(0, Ordering::Release);
        // The lifetime is erased only for the board; see `Board::posted`.
        board.posted.store((&posted as *const Posted<'_>).cast_mut().cast(), Ordering::Release);
        board.left.store(pack(share, 0, total), Ordering::Release);
        // On the way out, normal or not, no piece is left to take and every piece a
        // helper took is finished: only then may `posted` go out of scope.
        struct Finish<'a>(&'a Board, u64, usize);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                let by_helpers = self.0.stop(self.1, self.2);
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
        let finish = Finish(board, share, total);
        while let Some(i) = board.take(share, true) {
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

/// Whether a crew woken ahead ([`wake_ahead`]) waits on this thread.
pub fn is_ahead() -> bool {
    AHEAD.with(|a| a.borrow().is_some())
}

/// Shares `run(i)` for every `i < total` with the crew [`wake_ahead`] woke on this
/// thread, keeping it for later shares: true once all have run; false, running
/// none, when there is no such crew. `run` must not wake or take crews itself.
pub fn share_ahead(total: usize, run: &(dyn Fn(usize) + Sync)) -> bool {
    AHEAD.with(|a| match a.borrow().as_ref() {
        Some(crew) => {
            crew.share(total, run);
            true
        }
        None => false,
    })
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
    fn a_crew_shares_again_and_again() {
        let _g = lock();
        for threads in [1, 2, 3] {
            set_num_threads(threads).unwrap();
            let crew = Crew::wake();
            for total in [5, 0, 1, 64, 3, 200] {
                let counts: Vec<AtomicUsize> = (0..total).map(|_| AtomicUsize::new(0)).collect();
                crew.share(total, &|i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "{threads} threads, {total} pieces");
            }
        }
    }

    #[test]
    fn a_crew_woken_ahead_shares_in_place_until_taken() {
        let _g = lock();
        set_num_threads(2).unwrap();
        let counts: Vec<AtomicUsize> = (0..30).map(|_| AtomicUsize::new(0)).collect();
        assert!(!share_ahead(30, &|i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
        }));
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 0), "no crew: nothing runs");
        let ahead = wake_ahead();
        for _ in 0..3 {
            assert!(share_ahead(30, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            }));
        }
        woken().share(30, &|i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 4));
        assert!(AHEAD.with(|a| a.borrow().is_none()), "taken by the last share");
        drop(ahead);
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
