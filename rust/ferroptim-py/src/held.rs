//! The arrays one step uses, held alive until its kernels are done, with what the
//! overlap check and the copy-backs need to know about them.

use numpy::PyUntypedArray;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::arrays::{copy_back, Operand, Origin, Overlaps};

#[derive(Default)]
pub(crate) struct Held {
    /// Every array a pointer points into; the overlap check refers to arrays by their
    /// index here.
    pub(crate) keep: Vec<Py<PyUntypedArray>>,
    /// Scratch copies to write back into the caller's arrays (indices into `keep`).
    pub(crate) copy_backs: Vec<(usize, usize)>,
    pub(crate) overlaps: Overlaps,
    /// Gradients a shared replay read in place without taking a reference to them
    /// (see `plan::shared`): alive only while the step holds the GIL and runs no
    /// Python code, as it does when its kernels keep the GIL.
    pub(crate) unheld: Vec<*mut ffi::PyObject>,
}

impl Held {
    /// Empties the lists (keeping their memory); the GIL must be held.
    pub(crate) fn clear(&mut self) {
        self.keep.clear();
        self.copy_backs.clear();
        self.overlaps.clear();
        self.unheld.clear();
    }

    /// Takes a reference to every gradient in `unheld`, into `keep`, for kernels that
    /// release the GIL.
    pub(crate) fn hold_unheld(&mut self, py: Python<'_>) {
        for grad in self.unheld.drain(..) {
            // SAFETY: an ndarray that a parameter's slot held when the step read it,
            // with the GIL held since and no Python code run (see `unheld`).
            let grad = unsafe { Bound::from_borrowed_ptr(py, grad).cast_into_unchecked::<PyUntypedArray>() };
            self.keep.push(grad.unbind());
        }
    }

    /// Keeps an operand alive for the kernels and records the memory it touches for
    /// the overlap check (the caller's array, which a scratch copy is written back
    /// to; a read-only scratch copy touches nothing of the caller's). `who` labels it.
    pub(crate) fn hold(&mut self, op: Operand<'_>, write: bool, who: u32) -> *mut u8 {
        let scratch = self.keep.len();
        match op.origin {
            Origin::Caller => self.overlaps.add(&op.array, scratch, write, who),
            Origin::Fresh => {}
            Origin::CopyOf(original) => {
                self.overlaps.add(&original, scratch + 1, write, who);
                self.copy_backs.push((scratch + 1, scratch));
                self.keep.push(op.array.unbind());
                self.keep.push(original.unbind());
                return op.ptr;
            }
        }
        self.keep.push(op.array.unbind());
        op.ptr
    }

    /// The labels of two held arrays that share memory where one is written, in the
    /// order the step met them (whatever the order of their addresses, so that the
    /// same step refuses with the same message every time).
    pub(crate) fn find_overlap(&mut self, py: Python<'_>) -> PyResult<Option<(u32, u32)>> {
        Ok(self.overlaps.find(py, &self.keep)?.map(|(a, b)| (a.min(b), a.max(b))))
    }

    /// Writes the scratch copies back into the caller's arrays.
    pub(crate) fn copy_back(&self, py: Python<'_>) -> PyResult<()> {
        for &(original, scratch) in &self.copy_backs {
            copy_back(self.keep[original].bind(py), self.keep[scratch].bind(py))?;
        }
        Ok(())
    }
}

/// The pointer-holding records of a step (entries, tensors), handed to the thread
/// that runs the kernels while the GIL is released.
pub(crate) struct Work<'a, E>(pub(crate) &'a mut [E]);

// SAFETY: the records' raw pointers point into arrays a `Held` keeps alive until the
// kernels are done, and no other Rust code touches those arrays meanwhile
// (`step::KERNEL_LOCK`).
unsafe impl<E> Send for Work<'_, E> {}

impl<'a, E> Work<'a, E> {
    /// Taking `self` whole makes a closure capture the wrapper, not its field.
    pub(crate) fn into_inner(self) -> &'a mut [E] {
        self.0
    }
}

/// The `len` elements at `ptr` that a kernel writes (empty when `ptr` is null or
/// `len` is 0: a slot the tensor does not use).
///
/// # Safety
/// `ptr` is null or points to `len` elements of `T` in an array a [`Held`] keeps
/// alive (or a fresh scratch copy), checked to hold `T`, C-contiguous and aligned,
/// overlapping no other array the step reads or writes; no other Rust code uses it
/// meanwhile (`KERNEL_LOCK`).
pub(crate) unsafe fn slice<'a, T>(ptr: *mut u8, len: usize) -> &'a mut [T] {
    if len == 0 || ptr.is_null() {
        &mut []
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(ptr.cast::<T>(), len) }
    }
}

/// The `len` elements at `ptr` that a kernel only reads (a gradient, which other
/// parameters may read too), empty as [`slice`].
///
/// # Safety
/// As [`slice`], but the memory may be read by others meanwhile; nothing writes it.
pub(crate) unsafe fn read_slice<'a, T>(ptr: *const u8, len: usize) -> &'a [T] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(ptr.cast::<T>(), len) }
    }
}
