//! Helpers that finished their crew and stay awake, for a while, for the next one.
//!
//! Steps come back to back in a training loop. A helper sent away when its step's
//! crew is done falls asleep in the pool, and the next step pays to wake it again: on
//! a virtual machine, tens of microseconds, sometimes more than the step itself (its
//! caller then does all the work alone). So a helper whose crew is done *lingers*: it
//! waits awake on its pool's [`Standby`] for up to [`LINGER`], and the next crew
//! [`hand`](Standby::hand)s its work to a lingering helper instead of waking one. A
//! lingering helper runs any job that arrives in the pool meanwhile (a large step's
//! parallel chunks), so it never holds back a thread the pool needs. OpenMP runtimes
//! do the same between parallel regions (libgomp's `GOMP_SPINCOUNT`, Intel's
//! `KMP_BLOCKTIME`), for longer.
//!
//! Which helper takes which crew never changes a result; a crew whose helpers come
//! late, or not at all, is run by its caller.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a helper whose crew is done waits, awake, for the next crew.
pub(crate) const LINGER: Duration = Duration::from_micros(300);

/// Spins a lingering helper makes between two looks for other work in its pool.
const SPINS: u32 = 64;

/// The helpers of one pool lingering for work of type `T` (a crew's board), and the
/// work handed to them. One per pool: a pool rebuilt (another thread count, a forked
/// child) starts with none lingering.
pub(crate) struct Standby<T> {
    /// Lingering helpers that no [`hand`](Self::hand) has claimed.
    free: AtomicUsize,
    /// Work handed to claimed helpers and not yet taken, from `Arc::into_raw` (null:
    /// an empty slot). Every helper lingering in a pool is on its own thread, so the
    /// claimed ones, and the work handed to them, never outnumber the slots: one per
    /// thread of the pool.
    mail: Box<[AtomicPtr<T>]>,
}

impl<T> Standby<T> {
    /// The standby of a pool of `threads` threads.
    pub(crate) fn new(threads: usize) -> Self {
        Standby { free: AtomicUsize::new(0), mail: (0..threads).map(|_| AtomicPtr::new(ptr::null_mut())).collect() }
    }

    /// Hands `work` to a lingering helper, which takes it at once; gives it back if
    /// no helper lingers (the caller then sends a new one).
    pub(crate) fn hand(&self, work: Arc<T>) -> Result<(), Arc<T>> {
        if self.free.fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| f.checked_sub(1)).is_err() {
            return Err(work);
        }
        let raw = Arc::into_raw(work).cast_mut();
        // A claimed helper lingers on until it takes work, so a slot frees up; one is
        // free already unless other hands are filling them at this very moment.
        loop {
            for slot in self.mail.iter() {
                if slot.compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    return Ok(());
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Lingers, this thread being a helper of the pool whose crew is done: returns the
    /// work a [`hand`](Self::hand) gives it, or `None` once `patience` has passed
    /// without any. Meanwhile it runs the jobs that arrive in the pool, if it is in one.
    /// Must not be called again on this thread before it returns.
    pub(crate) fn linger(&self, patience: Duration) -> Option<Arc<T>> {
        self.free.fetch_add(1, Ordering::AcqRel);
        let since = Instant::now();
        let mut spins = 0u32;
        loop {
            for slot in self.mail.iter() {
                if !slot.load(Ordering::Relaxed).is_null() {
                    let raw = slot.swap(ptr::null_mut(), Ordering::AcqRel);
                    if !raw.is_null() {
                        // SAFETY: `raw` came from `Arc::into_raw` in `hand`, and the
                        // swap took it out of the slot: this is its only owner.
                        return Some(unsafe { Arc::from_raw(raw) });
                    }
                }
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(SPINS) {
                std::hint::spin_loop();
                continue;
            }
            // Gone only if not claimed meanwhile: a claimed helper waits for its work.
            if since.elapsed() > patience
                && self.free.fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| f.checked_sub(1)).is_ok()
            {
                return None;
            }
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::yield_now();
            }
        }
    }
}

impl<T> Drop for Standby<T> {
    fn drop(&mut self) {
        // Work is only handed to a helper lingering on this standby, which holds it
        // alive until it has taken the work; this frees what that invariant says is
        // never there.
        for slot in self.mail.iter_mut() {
            let raw = *slot.get_mut();
            if !raw.is_null() {
                // SAFETY: from `Arc::into_raw`, and nobody else can reach the slot.
                drop(unsafe { Arc::from_raw(raw) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_handed_while_nobody_lingers() {
        let standby = Standby::new(2);
        assert_eq!(*standby.hand(Arc::new(7)).unwrap_err(), 7);
    }

    #[test]
    fn a_lingering_helper_takes_what_is_handed() {
        let standby = Arc::new(Standby::new(2));
        let helper = {
            let standby = Arc::clone(&standby);
            std::thread::spawn(move || standby.linger(Duration::from_secs(60)))
        };
        let mut work = Arc::new(5);
        loop {
            match standby.hand(work) {
                Ok(()) => break,
                Err(back) => work = back, // not lingering yet
            }
            std::thread::yield_now();
        }
        assert_eq!(helper.join().unwrap().as_deref(), Some(&5));
        assert_eq!(standby.free.load(Ordering::Relaxed), 0, "the helper was claimed");
    }

    #[test]
    fn a_helper_goes_once_its_patience_has_passed() {
        let standby: Standby<u8> = Standby::new(1);
        let t = Instant::now();
        assert!(standby.linger(Duration::from_millis(2)).is_none());
        assert!(t.elapsed() >= Duration::from_millis(2));
        assert!(standby.hand(Arc::new(1)).is_err(), "gone, not counted as lingering");
    }

    #[test]
    fn every_piece_of_work_reaches_one_helper() {
        // Four helpers linger, again and again, while work is handed as fast as any
        // is free: each piece of work is taken exactly once, none is lost.
        let standby = Arc::new(Standby::new(4));
        let taken = Arc::new(AtomicUsize::new(0));
        let helpers: Vec<_> = (0..4)
            .map(|_| {
                let (standby, taken) = (Arc::clone(&standby), Arc::clone(&taken));
                std::thread::spawn(move || {
                    while let Some(work) = standby.linger(Duration::from_millis(20)) {
                        taken.fetch_add(*work, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut handed = 0;
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            if standby.hand(Arc::new(1)).is_ok() {
                handed += 1;
            }
        }
        for h in helpers {
            h.join().unwrap();
        }
        assert!(handed > 0);
        assert_eq!(taken.load(Ordering::Relaxed), handed);
        assert_eq!(standby.free.load(Ordering::Relaxed), 0);
    }
}
