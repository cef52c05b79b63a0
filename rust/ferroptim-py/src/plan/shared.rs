//! A replay's gather shared with the crew woken for the step's kernels.
//!
//! A replay over many small parameters ([`super`]) spends its time reading memory:
//! for each parameter its two slots, its state dict's version tag and the fields of
//! four or five arrays, most of them out of cache. A step whose kernels will share
//! their work with the pool's threads has woken them already
//! ([`crew::wake_ahead`]), and they would wait while the calling thread checks. Here
//! they check too: the parameters are cut into pieces, and each thread compares its
//! pieces' objects with the plan and builds their entries in place.
//!
//! Only what is a plain read of memory is done this way: a `Parameter`'s slots
//! ([`ParamSlots`]), array fields, dict version tags ([`DictVersions`]), the items of
//! the groups' `params` lists ([`ListItems`]), the plan's own records. The calling
//! thread holds the GIL throughout and runs no Python code while the pieces are
//! checked, so no object changes under the readers and none is freed (each is held
//! by the plan, by a list the step holds, or by the slot of a parameter the plan
//! holds).
//! No thread changes a reference count: the gradients found are listed in
//! `Held::unheld`, without references, and the step runs its kernels with the GIL
//! kept, which keeps them alive (see `step::Dispatch`). A reference to each of
//! thousands of gradients read on other threads would cost the calling thread a
//! cache miss apiece, about a fifth of the step; a step that must release the GIL
//! takes them then. (The extension is built for the limited API, which
//! free-threaded Pythons do not load: there is always a GIL.)
//!
//! Anything else — a parameter that is not exactly a `Parameter`, a gradient that is
//! not an ndarray of its parameter's layout, a state mapping or state dict that
//! changed (which needs lookups), a parameter without a hash — ends the shared
//! gather: the replay checks every parameter again on the calling thread, as it does
//! without a crew, and a plan that needed that once is not shared again.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use ferroptim::{crew, threads};
use numpy::npyffi;
use pyo3::ffi;

use super::{overlaps, Param, Recorded, Seen, StepView};
use crate::dict_version::DictVersions;
use crate::held::Held;
use crate::list_items::ListItems;
use crate::slots::{ParamSlots, Slot};
use crate::step::{Entry, NONE};

/// The fewest parameters in a piece.
const PIECE_MIN: usize = 64;
/// Pieces per thread: enough for the threads to even out.
const PIECES_PER_THREAD: usize = 6;

/// How a shared gather ended.
pub(super) enum Shared {
    /// Every entry gathered, every gradient listed in `held.unheld`.
    Gathered,
    /// Something needs more than reads of memory, or has changed: the calling
    /// thread checks alone (and finds which).
    Unsure,
    /// Not tried (no crew woken, gradients given as a list, a plan not shared).
    Skipped,
}

/// Gathers the step's entries into `entries` (empty) and its gradients, without
/// references, into `held.unheld` (empty), with the crew woken ahead on this thread
/// (see the module docs).
pub(super) fn gather(r: &Recorded, s: &StepView<'_, '_>, entries: &mut Vec<Entry>, held: &mut Held) -> Shared {
    let py = s.state.py();
    if !r.shared.load(Ordering::Relaxed) || s.grads.is_some() || !crew::is_ahead() {
        return Shared::Skipped;
    }
    let (Some(slots), Some(versions), Some(list_items)) =
        (ParamSlots::current(py), DictVersions::current(py), ListItems::current(py))
    else {
        return Shared::Unsure;
    };
    // The state mapping as recorded: no parameter's state needs a lookup.
    // SAFETY: the mapping is alive (the step holds it), read with the GIL held.
    if unsafe { versions.at(s.state.as_ptr()) } != r.state_version {
        return Shared::Unsure;
    }
    let none = py.None();
    let n = r.params.len();
    // Each group's items, for the pieces to compare with the plan's parameters.
    // SAFETY: each list is alive (the step holds it), has the length the plan
    // recorded (compared by `replay`) and does not change while the GIL is held
    // and no Python code runs.
    let lists: Vec<_> = s.lists.iter().map(|l| unsafe { list_items.items(l.as_ptr()) }).collect();
    // The parameters without a gradient last step must have none still.
    if n < r.positions.len() {
        let mut flat = 0;
        for (g, (_, _, len, _)) in r.group_dicts.iter().enumerate() {
            for i in 0..*len {
                // SAFETY: as above, `i` < `len`; the item is only compared, and read
                // as a `Parameter` only if it is one (`peek_at`).
                if r.positions[flat] == NONE
                    && unsafe { slots.peek_at(*lists[g].add(i), Slot::Grad) } != Some(none.as_ptr())
                {
                    return Shared::Unsure; // a gradient now, or not a `Parameter`
                }
                flat += 1;
            }
        }
    }
    let size = (n / (PIECES_PER_THREAD * threads::get_num_threads())).max(PIECE_MIN);
    assert!(entries.is_empty() && held.unheld.is_empty(), "a replay gathers into empty lists");
    entries.reserve(n);
    held.unheld.reserve(n);
    let outs: Vec<Mutex<Option<Out<'_>>>> = (entries.spare_capacity_mut()[..n].chunks_mut(size))
        .zip(held.unheld.spare_capacity_mut()[..n].chunks_mut(size))
        .map(|(entries, grads)| Mutex::new(Some(Out { entries, grads })))
        .collect();
    // Per piece: whether it gathered every parameter.
    let done: Vec<AtomicBool> = outs.iter().map(|_| AtomicBool::new(false)).collect();
    let context = Context {
        r,
        lists: &lists,
        slots,
        versions,
        // SAFETY: reads numpy's ndarray type object (numpy is imported: the plan holds arrays)
        ndarray: unsafe { npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type) },
        none: none.as_ptr(),
    };
    let shared = crew::share_ahead(outs.len(), &|k| {
        let Some(mut out) = outs[k].lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let start = k * size;
        // SAFETY: this thread's piece, while the calling thread holds the GIL and
        // waits in `share_ahead` (see `Context::piece`).
        let got = unsafe { context.piece(start..(start + size).min(n), &mut out) };
        done[k].store(got == out.entries.len(), Ordering::Release);
    });
    drop(outs);
    if !shared || !done.iter().all(|d| d.load(Ordering::Acquire)) {
        return Shared::Unsure;
    }
    // SAFETY: every piece wrote each of its slots.
    unsafe {
        entries.set_len(n);
        held.unheld.set_len(n);
    }
    Shared::Gathered
}

/// What the threads read besides the plan.
struct Context<'a> {
    r: &'a Recorded,
    /// Each group's `params` list's items.
    lists: &'a [*const *mut ffi::PyObject],
    slots: &'a ParamSlots,
    versions: &'a DictVersions,
    ndarray: *mut ffi::PyTypeObject,
    none: *mut ffi::PyObject,
}

// SAFETY: the pointers are of objects alive through the gather (numpy's type, None),
// only compared, and of the groups' lists' items, only read, unchanged meanwhile;
// the rest is only read (see `Context::piece`).
unsafe impl Sync for Context<'_> {}

/// Where a piece writes: one entry and one gradient per parameter.
struct Out<'a> {
    entries: &'a mut [MaybeUninit<Entry>],
    grads: &'a mut [MaybeUninit<*mut ffi::PyObject>],
}

// SAFETY: the thread that takes a piece only stores pointer values into it; nothing
// is dereferenced through them until the step has every piece back.
unsafe impl Send for Out<'_> {}

impl Context<'_> {
    /// Gathers the parameters `range` of the plan into `out`, in order; returns how
    /// many it gathered before one that needs more than reads (or has changed).
    ///
    /// # Safety
    /// The step's thread holds the GIL from before the call until after it returns,
    /// and runs no Python code and changes no object meanwhile: every object read is
    /// alive and unchanged (see the module docs).
    unsafe fn piece(&self, range: Range<usize>, out: &mut Out<'_>) -> usize {
        let mut finger = 0;
        for (j, rec) in self.r.params[range].iter().enumerate() {
            let (g, i) = (rec.entry.0.group as usize, rec.entry.0.index as usize);
            // SAFETY: the function's contract; the recorded step found the parameter
            // at `i` of its group's list, which has the length it had then.
            if unsafe { *self.lists[g].add(i) } != rec.param.as_ptr() {
                return j;
            }
            // Built in its slot: a copy made on the stack and moved would be read back
            // in other widths than it was written, which stalls (measured: a third of
            // this loop's time).
            let entry = out.entries[j].write(rec.entry.0);
            // SAFETY: the function's contract.
            let Some(grad) = (unsafe { self.param(rec, entry, &mut finger) }) else {
                return j;
            };
            out.grads[j].write(grad);
        }
        out.entries.len()
    }

    /// One parameter's gradient, its pointer and scalar state written into `entry`
    /// (a copy of its template), as `StepPlan::gather` finds them along its fast
    /// path; None wherever it would do more or find a change.
    ///
    /// # Safety
    /// As [`piece`](Self::piece).
    #[inline(always)]
    unsafe fn param(&self, rec: &Param, entry: &mut Entry, finger: &mut usize) -> Option<*mut ffi::PyObject> {
        let (r, p) = (self.r, rec.param.as_ptr());
        let dims = &r.dims[..];
        // SAFETY (all below): the function's contract; `p` is held by the plan.
        let now = unsafe { self.slots.peek_at(p, Slot::Data) }?;
        let grad = unsafe { self.slots.peek_at(p, Slot::Grad) }?;
        let mut seen = r.seen[rec.seen_at as usize..].iter();
        let data = seen.next()?;
        if grad == self.none || !data.holds(now, dims) || unsafe { ffi::Py_TYPE(grad) } != self.ndarray {
            return None;
        }
        let template = &rec.entry.0;
        // an ndarray (its exact type), held by the parameter's slot
        let (ptr, span) = unsafe { data.twin_at(grad, dims, template.dtype) }?;
        if span.is_some_and(|(lo, hi)| overlaps(&r.writes, lo, hi, finger)) {
            return None;
        }
        entry.grad = ptr;
        if let Some(dict) = &rec.dict {
            if rec.by_identity || unsafe { self.versions.at(dict.as_ptr()) } != rec.version {
                return None;
            }
            // the dict unchanged: it holds the arrays the recording found
            let now = |a: &Seen, _| Ok::<_, ()>(a.array.as_ptr());
            if r.state_unchanged(&mut seen, template, entry, now) != Ok(true) {
                return None;
            }
        }
        Some(grad)
    }
}
