//! The verified plan of one step, kept for the next (`_core.StepPlan`).
//!
//! A step over many small parameters spends most of its time checking arrays that
//! have not changed since the step before. A `StepPlan`, owned by the optimizer and
//! handed to each step, remembers what the last fully checked step found, for every
//! parameter with a gradient: the parameter, its `.data` array, its state dict and
//! each state array it used, with the layout each array was checked in (data pointer,
//! dtype descriptor, flags, shape), the kernel-ready entry built from them, and the
//! address-ordered memory of every written array (found disjoint).
//!
//! The next step ([`StepPlan::replay`]) looks everything up again, as a full step
//! does, and compares: an array that is the same object with the same pointer,
//! descriptor, flags and shape is the array that was checked, so it needs no check.
//! A dict that has not changed since the recording (the state mapping, a parameter's
//! state dict), told by its version tag ([`DictVersions`]), is not looked into: it
//! holds what it held then. The plan holds every object it remembers, so an address
//! it compares cannot be a new object's. Gradients, usually new arrays each step, are
//! checked every step (and never held past it: `zero_grad` frees them) — one with its parameter's own
//! dtype object, shape and C layout in a few comparisons ([`Seen::twin`]), any other
//! in full — and located among the written arrays for the overlap check. A
//! `Parameter`'s `.data` and `.grad` are read from its slots ([`crate::slots`]).
//! Anything else that differs — a new `.data`, a state entry replaced, resized or
//! made read-only, a parameter gaining or losing its gradient, a group added or
//! reconfigured, another state dict — sends the step through the full checks
//! ([`crate::step`]), which record a new plan.
//!
//! A replay whose kernels will share their work with the pool's threads also shares
//! its comparisons with them, in pieces of parameters ([`shared`]), as long as they
//! are plain reads of memory.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use numpy::npyffi::{self, NPY_ARRAY_ALIGNED, NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_WRITEABLE};
use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::arrays::{grad_operand, same_shape, span, Dtype, Origin};
use crate::dict_version::DictVersions;
use crate::held::Held;
use crate::slots::{ParamSlots, Slot};
use crate::step::{Entry, Sizes, StateKeys, NONE};

mod shared;

/// The plan of an optimizer's last fully checked step (see the module docs). Empty
/// until a step records one; steps with nothing to reuse record none.
#[pyclass(module = "ferroptim._core")]
#[derive(Default)]
pub(crate) struct StepPlan {
    recorded: Option<Recorded>,
}

#[pymethods]
impl StepPlan {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Forgets the recorded plan (and releases the arrays it holds).
    pub(crate) fn clear(&mut self) {
        self.recorded = None;
    }

    /// Whether a plan is recorded (for tests).
    #[getter]
    fn recorded(&self) -> bool {
        self.recorded.is_some()
    }

    /// How many replays of the recorded plan shared their gather with the pool's
    /// threads (see `shared`; for tests).
    #[getter]
    fn shared_replays(&self) -> u64 {
        self.recorded.as_ref().map_or(0, |r| r.shared_replays.load(Ordering::Relaxed))
    }

    /// How many of those ran their kernels with the GIL kept (see `step::Dispatch`;
    /// for tests).
    #[getter]
    fn attached_replays(&self) -> u64 {
        self.recorded.as_ref().map_or(0, |r| r.attached_replays.load(Ordering::Relaxed))
    }

    /// Whether a replay tells unchanged dicts by their version tags on this Python
    /// (see `DictVersions`; for tests).
    #[getter]
    fn dict_versions(&self, py: Python<'_>) -> bool {
        DictVersions::current(py).is_some()
    }
}

/// An array a kernel reads in place: the array, its elements, and its memory `[lo, hi)`
/// (None when it has none).
type InPlace<'py> = (Bound<'py, PyUntypedArray>, *mut u8, Option<(usize, usize)>);

/// One array as a step checked it; its shape is kept in [`Recorded::dims`].
struct Seen {
    array: Py<PyUntypedArray>,
    data: usize,
    descr: usize,
    /// C-contiguity, alignment and writeability.
    flags: c_int,
    ndim: u32,
    /// Where its shape starts in `Recorded::dims`.
    dims_at: u32,
}

const FLAGS: c_int = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_WRITEABLE;

/// An ndarray's data pointer, descriptor and flags.
fn layout(a: &Bound<'_, PyUntypedArray>) -> (usize, usize, c_int) {
    // SAFETY: `a` is a live ndarray, read with the GIL held.
    unsafe { layout_at(a.as_ptr()) }
}

/// The data pointer, descriptor and flags of the ndarray at `obj`.
///
/// # Safety
/// `obj` is a live ndarray whose fields no one writes meanwhile (numpy keeps them
/// valid while it is alive); they are only read.
#[inline(always)]
unsafe fn layout_at(obj: *mut ffi::PyObject) -> (usize, usize, c_int) {
    // SAFETY: the function's contract.
    let f = unsafe { &*npyffi::_PyArray_GET_ITEM_DATA(obj.cast()) };
    (f.data as usize, f.descr as usize, f.flags & FLAGS)
}

/// The shape of the ndarray at `obj`.
///
/// # Safety
/// As [`layout_at`]; the slice is used before anything can change the array.
#[inline(always)]
unsafe fn shape_at<'a>(obj: *mut ffi::PyObject) -> &'a [usize] {
    // SAFETY: the function's contract; numpy keeps `nd` dimensions (non-negative
    // `npy_intp`s, the size of `usize`) at `dimensions`, which is dangling only when
    // `nd` is 0.
    unsafe {
        let f = &*npyffi::_PyArray_GET_ITEM_DATA(obj.cast());
        match f.nd {
            0 => &[],
            nd => std::slice::from_raw_parts(f.dimensions.cast::<usize>(), nd as usize),
        }
    }
}

impl Seen {
    /// `a` as it is now, its shape appended to `dims`.
    fn of(a: &Bound<'_, PyUntypedArray>, dims: &mut Vec<usize>) -> Self {
        let (data, descr, flags) = layout(a);
        let dims_at = dims.len() as u32;
        dims.extend_from_slice(a.shape());
        Seen { array: a.clone().unbind(), data, descr, flags, ndim: a.ndim() as u32, dims_at }
    }

    fn shape<'a>(&self, dims: &'a [usize]) -> &'a [usize] {
        &dims[self.dims_at as usize..][..self.ndim as usize]
    }

    /// `grad` (`ndarray`: numpy's array type), with its elements and memory, if it
    /// can stand in for this array (a parameter's `.data`) in a kernel as it is: an
    /// ndarray with the same dtype descriptor (so the same native float type),
    /// C-contiguous and aligned, of the same shape — what `grad_operand` accepts
    /// without a copy, found without its general checks.
    #[inline]
    fn twin<'py>(
        &self,
        py: Python<'py>,
        ndarray: *mut ffi::PyTypeObject,
        grad: &Bound<'py, PyAny>,
        dims: &[usize],
        dtype: Dtype,
    ) -> Option<InPlace<'py>> {
        // SAFETY: Py_TYPE and PyArray_Check read the type of a live object.
        if unsafe { ffi::Py_TYPE(grad.as_ptr()) != ndarray && npyffi::PyArray_Check(py, grad.as_ptr()) == 0 } {
            return None;
        }
        // SAFETY: checked to be an ndarray just above; read with the GIL held.
        let (ptr, span) = unsafe { self.twin_at(grad.as_ptr(), dims, dtype) }?;
        // SAFETY: an ndarray, as above.
        Some((unsafe { grad.cast_unchecked::<PyUntypedArray>() }.clone(), ptr, span))
    }

    /// [`twin`](Self::twin) for an object known to be an ndarray: its elements and
    /// memory.
    ///
    /// # Safety
    /// `grad` is a live ndarray whose fields no one writes meanwhile.
    #[inline(always)]
    unsafe fn twin_at(
        &self,
        grad: *mut ffi::PyObject,
        dims: &[usize],
        dtype: Dtype,
    ) -> Option<(*mut u8, Option<(usize, usize)>)> {
        const READ: c_int = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED;
        // SAFETY: the function's contract.
        let (data, descr, flags) = unsafe { layout_at(grad) };
        let shape = self.shape(dims);
        // SAFETY: as above.
        if descr != self.descr || flags & READ != READ || !same_shape(unsafe { shape_at(grad) }, shape) {
            return None;
        }
        // C-contiguous and of the parameter's dtype and shape: its bytes are the
        // parameter's count times the element size (none when empty)
        let bytes = shape.iter().product::<usize>() * dtype.size();
        Some((data as *mut u8, (bytes > 0).then_some((data, data + bytes))))
    }

    /// Whether `obj` is this array, unchanged. Reads only memory of objects the plan
    /// holds: callable wherever no one writes them meanwhile (see [`shared`]).
    #[inline(always)]
    fn holds(&self, obj: *mut ffi::PyObject, dims: &[usize]) -> bool {
        if obj != self.array.as_ptr() {
            return false;
        }
        // SAFETY: `obj` is the array the plan holds (alive); nothing writes its fields
        // while a step gathers (the GIL is held and only this code runs).
        unsafe { layout_at(obj) == (self.data, self.descr, self.flags) && same_shape(shape_at(obj), self.shape(dims)) }
    }
}

/// `dict[key]`, borrowed (null when absent): only compared with objects the plan
/// holds, before any other Python code runs.
#[inline]
fn lookup(py: Python<'_>, dict: &Py<PyDict>, key: *mut ffi::PyObject) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `dict` is held by the plan, `key` by the caller; the result is a
    // borrowed reference (or null, with or without an error set).
    let v = unsafe { ffi::PyDict_GetItemWithError(dict.as_ptr(), key) };
    if v.is_null() {
        if let Some(e) = PyErr::take(py) {
            return Err(e);
        }
    }
    Ok(v)
}

/// A parameter with a gradient, as the recorded step used it. Its arrays are the
/// next ones in [`Recorded::seen`]: its `.data`, then (with a state dict) its scalar
/// state and the state arrays of the slots its entry uses, in slot order.
struct Param {
    param: Py<PyAny>,
    /// Where its arrays start in `Recorded::seen`.
    seen_at: u32,
    /// Its state dict (None: the kernel keeps no state, and the step looks none up).
    dict: Option<Py<PyDict>>,
    /// The parameter has no hash: its state is looked up through the mapping.
    by_identity: bool,
    /// The version tag of its state dict ([`DictVersions`]; 0 without them).
    version: u64,
    /// Its entry, gradient pointer aside.
    entry: Template,
}

/// An entry whose pointers point into arrays the plan holds.
struct Template(Entry);

// SAFETY: the pointers are never dereferenced through the plan: a replayed step
// copies them into its own entries only after finding every array they point into
// unchanged (and the plan keeps those arrays alive), with the GIL held.
unsafe impl Send for Template {}
// SAFETY: as above; shared access only reads the pointer values.
unsafe impl Sync for Template {}

/// The arrays, in the order a step visits them, kept in flat lists: a replay
/// walks them front to back.
struct Recorded {
    /// The kernel's type: a plan replays only for the kernel that recorded it.
    kernel: &'static str,
    state: Py<PyDict>,
    groups: Py<PyList>,
    /// Each group's dict, its `params` list (and length), its kernel's layout key.
    group_dicts: Vec<(Py<PyDict>, Py<PyList>, usize, u64)>,
    scalar_keys: Vec<Py<PyString>>,
    buffer_keys: Vec<Py<PyString>>,
    /// For each parameter of each group in order: its index in `params`, or NONE
    /// when it had no gradient.
    positions: Vec<u32>,
    params: Vec<Param>,
    seen: Vec<Seen>,
    /// The shapes of `seen`.
    dims: Vec<usize>,
    /// The version tag of `state` ([`DictVersions`]; 0 without them).
    state_version: u64,
    /// The memory of every written array, `[lo, hi)`, disjoint, in address order
    /// (with the scalars' homes, when the kernels write them: `homes_apart`).
    writes: Vec<(usize, usize)>,
    /// The float32 and float64 elements of the entries: the work a replay hands the
    /// kernels.
    elements: [usize; 2],
    /// Each entry's length, in order.
    lens: Vec<usize>,
    /// No two entries' scalar homes are the same memory, and none lies in a written
    /// array: the kernels may store the scalar state as they go (`Sizes::homes`).
    homes_apart: bool,
    /// Whether a replay shares its gather with a crew woken ahead ([`shared`]):
    /// until one found something that needs more than reads.
    shared: AtomicBool,
    /// How many replays did.
    shared_replays: AtomicU64,
    /// How many of those kept the GIL for their kernels.
    attached_replays: AtomicU64,
}

impl Recorded {
    /// Compares the state arrays of the parameter whose entry's template is
    /// `template` — the next in `seen`: its scalar state, then each buffer the entry
    /// uses — with the objects `now(array, key)` finds under their keys now (the
    /// array itself from a dict unchanged since the recording), and reads the scalar
    /// state into `entry`. Ok(false) at the first that changed.
    #[inline(always)]
    fn state_unchanged<E>(
        &self,
        seen: &mut std::slice::Iter<'_, Seen>,
        template: &Entry,
        entry: &mut Entry,
        mut now: impl FnMut(&Seen, *mut ffi::PyObject) -> Result<*mut ffi::PyObject, E>,
    ) -> Result<bool, E> {
        let dims = &self.dims[..];
        for (k, key) in self.scalar_keys.iter().enumerate() {
            let Some(a) = seen.next() else { return Ok(false) };
            if !a.holds(now(a, key.as_ptr())?, dims) {
                return Ok(false);
            }
            // SAFETY: the 0-d float64 array the recorded step checked (aligned),
            // unchanged and held by the plan.
            entry.scalars[k] = unsafe { *(a.data as *const f64) };
        }
        for (key, b) in self.buffer_keys.iter().zip(&template.buffers) {
            if b.is_null() {
                continue;
            }
            let Some(a) = seen.next() else { return Ok(false) };
            if !a.holds(now(a, key.as_ptr())?, dims) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// What a recording collects, parameter by parameter (see [`Recorded`]).
#[derive(Default)]
struct Parts {
    seen: Vec<Seen>,
    dims: Vec<usize>,
    writes: Vec<(usize, usize)>,
}

/// What the step function hands the plan: the step's objects, each group's dict,
/// `params` list and layout key (None: not replayable).
pub(crate) struct StepView<'a, 'py> {
    pub(crate) kernel: &'static str,
    pub(crate) state: &'a Bound<'py, PyDict>,
    pub(crate) groups: &'a Bound<'py, PyList>,
    pub(crate) dicts: &'a [Bound<'py, PyDict>],
    pub(crate) lists: &'a [Bound<'py, PyList>],
    pub(crate) layouts: &'a [Option<u64>],
    pub(crate) keys: &'a StateKeys<'py>,
    pub(crate) grads: Option<&'a Bound<'py, PyList>>,
}

/// `state[p]`, and whether it was found by identity: a parameter with a hash is
/// looked up in the dict itself; one without (which the dict refuses with a
/// TypeError) through the mapping's `get` (see `_state.py`).
pub(crate) fn state_of<'py>(
    state: &Bound<'py, PyDict>,
    p: &Bound<'py, PyAny>,
) -> PyResult<(Option<Bound<'py, PyAny>>, bool)> {
    match state.get_item(p) {
        Ok(found) => Ok((found, false)),
        Err(e) if e.is_instance_of::<PyTypeError>(p.py()) => {
            let found = state.call_method1("get", (p,))?;
            Ok((if found.is_none() { None } else { Some(found) }, true))
        }
        Err(e) => Err(e),
    }
}

impl<'py> StepView<'_, 'py> {
    /// The gradient of parameter `p`, the `flat`-th of the step.
    fn grad(&self, p: &Bound<'py, PyAny>, flat: usize, slots: Option<&ParamSlots>) -> PyResult<Bound<'py, PyAny>> {
        match self.grads {
            Some(grads) => grads.get_item(flat),
            None => attr(p, slots, Slot::Grad),
        }
    }
}

/// `p.data` or `p.grad`: read from the slot when `p` is a `Parameter`, else `getattr`.
#[inline]
fn attr<'py>(p: &Bound<'py, PyAny>, slots: Option<&ParamSlots>, slot: Slot) -> PyResult<Bound<'py, PyAny>> {
    if let Some(v) = slots.and_then(|s| s.read(p, slot)) {
        return Ok(v);
    }
    p.getattr(match slot {
        Slot::Data => intern!(p.py(), "data"),
        Slot::Grad => intern!(p.py(), "grad"),
    })
}

impl StepPlan {
    /// Counts a replay whose kernels keep the GIL.
    pub(crate) fn count_attached(&self) {
        if let Some(r) = &self.recorded {
            r.attached_replays.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The work a replay of the recorded plan hands the kernels (none without one).
    pub(crate) fn sizes(&self) -> Sizes<'_> {
        self.recorded.as_ref().map_or_else(Sizes::default, |r| Sizes {
            n32: r.elements[0],
            n64: r.elements[1],
            lens: Some(&r.lens),
            homes: r.homes_apart,
        })
    }

    /// Gathers this step's entries into `entries` (and the gradients they read into
    /// `held`) from the recorded plan, if nothing it recorded has changed. False, with
    /// `entries` and `held` to be cleared, sends the step through the full checks.
    pub(crate) fn replay(&self, s: &StepView<'_, '_>, entries: &mut Vec<Entry>, held: &mut Held) -> bool {
        let Some(r) = &self.recorded else {
            return false;
        };
        let same_keys = |got: &[Bound<'_, PyString>], want: &[Py<PyString>]| {
            got.len() == want.len() && got.iter().zip(want).all(|(a, b)| a.as_ptr() == b.as_ptr())
        };
        if !std::ptr::eq(r.kernel, s.kernel)
            || s.state.as_ptr() != r.state.as_ptr()
            || s.groups.as_ptr() != r.groups.as_ptr()
            || s.dicts.len() != r.group_dicts.len()
            || !same_keys(&s.keys.scalars, &r.scalar_keys)
            || !same_keys(&s.keys.buffers, &r.buffer_keys)
        {
            return false;
        }
        for (g, (dict, list, len, key)) in r.group_dicts.iter().enumerate() {
            if s.dicts[g].as_ptr() != dict.as_ptr()
                || s.lists[g].as_ptr() != list.as_ptr()
                || s.lists[g].len() != *len
                || s.layouts[g] != Some(*key)
            {
                return false;
            }
        }
        match shared::gather(r, s, entries, held) {
            shared::Shared::Gathered => {
                r.shared_replays.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            shared::Shared::Unsure => r.shared.store(false, Ordering::Relaxed),
            shared::Shared::Skipped => {}
        }
        self.gather(r, s, entries, held).unwrap_or(false)
    }

    fn gather(&self, r: &Recorded, s: &StepView<'_, '_>, entries: &mut Vec<Entry>, held: &mut Held) -> PyResult<bool> {
        let py = s.state.py();
        let slots = ParamSlots::current(py);
        let versions = DictVersions::current(py);
        // SAFETY: reads numpy's ndarray type object (numpy is imported: the step holds arrays)
        let ndarray = unsafe { npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type) };
        let dims = &r.dims[..];
        let mut seen = r.seen.iter();
        let (mut flat, mut finger) = (0, 0);
        for (g, (_, _, len, _)) in r.group_dicts.iter().enumerate() {
            for i in 0..*len {
                let at = r.positions[flat];
                if at == NONE {
                    let p = s.lists[g].get_item(i)?;
                    if !s.grad(&p, flat, slots)?.is_none() {
                        return Ok(false);
                    }
                    flat += 1;
                    continue;
                }
                let rec = &r.params[at as usize];
                // SAFETY: the list is alive (the step holds it) and has `len` items
                // (compared by `replay`, and no Python code ran since); the borrowed
                // item is only compared with the parameter the plan holds.
                if unsafe { ffi::PyList_GetItem(s.lists[g].as_ptr(), i as ffi::Py_ssize_t) } != rec.param.as_ptr() {
                    return Ok(false);
                }
                let p = rec.param.bind(py);
                let grad = s.grad(p, flat, slots)?;
                flat += 1;
                let data = seen.next().expect("a parameter's .data is recorded");
                // `p.data` is only compared with the array the plan holds
                let now = match slots.and_then(|slots| slots.peek(p, Slot::Data)) {
                    Some(now) => now,
                    None => attr(p, slots, Slot::Data)?.as_ptr(),
                };
                if grad.is_none() || !data.holds(now, dims) {
                    return Ok(false);
                }
                // One copy, in place. What the step reads of the entry it reads from the
                // plan's: a read of the fresh copy would wait for the copy's stores to reach
                // the cache (they are wider than the field and cannot be forwarded to it).
                entries.extend_from_slice(std::slice::from_ref(&rec.entry.0));
                let entry = entries.last_mut().expect("just pushed");
                let recorded = &rec.entry.0;
                // The gradient: an array of the parameter's own dtype object, shape and
                // layout is used as it is; anything else is checked as a full step
                // checks it (errors: the full step raises them, naming the parameter).
                let (array, ptr, span) = match data.twin(py, ndarray, &grad, dims, recorded.dtype) {
                    Some(twin) => twin,
                    None => {
                        let Ok(op) = grad_operand(grad, data.shape(dims), recorded.dtype, &String::new) else {
                            return Ok(false);
                        };
                        let span = match op.origin {
                            Origin::Caller => span(&op.array).map(|(lo, hi, _)| (lo, hi)),
                            _ => None,
                        };
                        (op.array, op.ptr, span)
                    }
                };
                if span.is_some_and(|(lo, hi)| overlaps(&r.writes, lo, hi, &mut finger)) {
                    return Ok(false); // the full step names the two arrays
                }
                entry.grad = ptr;
                held.keep.push(array.unbind());
                let Some(dict) = &rec.dict else {
                    continue;
                };
                // Its state dict: with the mapping unchanged since the recording (asked
                // after the parameter's attributes are read, as a full step looks its
                // state up after them), `state[p]` is what it was.
                let same_state = versions.is_some_and(|v| v.of(s.state) == r.state_version);
                let found = if rec.by_identity {
                    state_of(s.state, p)?.0.map_or(std::ptr::null_mut(), |d| d.as_ptr())
                } else if same_state {
                    dict.as_ptr()
                } else {
                    lookup(py, &r.state, p.as_ptr())?
                };
                if found != dict.as_ptr() {
                    return Ok(false);
                }
                // Each state array: the one the dict holds under its key, unchanged. In a
                // dict that has not changed since the recording, the one found then.
                let same_dict = versions.is_some_and(|v| v.of(dict.bind(py)) == rec.version);
                let now = |a: &Seen, key| if same_dict { Ok(a.array.as_ptr()) } else { lookup(py, dict, key) };
                if !r.state_unchanged(&mut seen, recorded, entry, now)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Records the plan of a step whose entries passed the full checks (and the
    /// overlap check), before its kernels run; a step that creates state, copies an
    /// array or has a kernel whose layout cannot be compared records none (and the
    /// plan is empty until one does).
    pub(crate) fn record(&mut self, s: &StepView<'_, '_>, entries: &[Entry]) {
        self.recorded = None;
        if s.layouts.iter().any(Option::is_none) {
            return;
        }
        self.recorded = Self::recording(s, entries).ok().flatten();
    }

    fn recording(s: &StepView<'_, '_>, entries: &[Entry]) -> PyResult<Option<Recorded>> {
        let mut positions = Vec::new();
        let mut params = Vec::with_capacity(entries.len());
        let mut parts = Parts::default();
        let mut next = entries.iter().peekable();
        for (g, list) in s.lists.iter().enumerate() {
            for i in 0..list.len() {
                let entry = match next.peek() {
                    Some(e) if e.group as usize == g && e.index as usize == i => next.next().unwrap(),
                    _ => {
                        positions.push(NONE);
                        continue;
                    }
                };
                let p = list.get_item(i)?;
                let Some(param) = Self::param_of(s, &p, entry, &mut parts)? else {
                    return Ok(None);
                };
                positions.push(params.len() as u32);
                params.push(param);
            }
        }
        if next.next().is_some() {
            return Ok(None);
        }
        let Parts { seen, dims, mut writes } = parts;
        writes.sort_unstable();
        if writes.windows(2).any(|w| w[1].0 < w[0].1) {
            return Ok(None); // cannot be: the overlap check passed
        }
        // The scalars' homes, written by the kernels if apart from each other and from
        // the written arrays; then counted among them, so that a replay's gradient
        // read there (which a kernel would read as it is written) needs a full step.
        let mut homes: Vec<(usize, usize)> = (entries.iter().flat_map(|e| e.homes))
            .filter(|h| !h.is_null())
            .map(|h| (h as usize, h as usize + std::mem::size_of::<f64>()))
            .collect();
        homes.sort_unstable();
        let mut finger = 0;
        let homes_apart = homes.windows(2).all(|w| w[0].1 <= w[1].0)
            && homes.iter().all(|&(lo, hi)| !overlaps(&writes, lo, hi, &mut finger));
        if homes_apart && !homes.is_empty() {
            writes.extend(homes);
            writes.sort_unstable();
        }
        let unbind = |keys: &[Bound<'_, PyString>]| keys.iter().map(|k| k.clone().unbind()).collect();
        Ok(Some(Recorded {
            kernel: s.kernel,
            state: s.state.clone().unbind(),
            groups: s.groups.clone().unbind(),
            group_dicts: (s.dicts.iter().zip(s.lists).zip(s.layouts))
                .map(|((d, l), k)| (d.clone().unbind(), l.clone().unbind(), l.len(), k.unwrap_or(0)))
                .collect(),
            scalar_keys: unbind(&s.keys.scalars),
            buffer_keys: unbind(&s.keys.buffers),
            positions,
            params,
            seen,
            dims,
            writes,
            elements: {
                let sizes = Sizes::of(entries);
                [sizes.n32, sizes.n64]
            },
            lens: entries.iter().map(|e| e.len).collect(),
            homes_apart,
            state_version: DictVersions::current(s.state.py()).map_or(0, |v| v.of(s.state)),
            shared: AtomicBool::new(true),
            shared_replays: AtomicU64::new(0),
            attached_replays: AtomicU64::new(0),
        }))
    }

    /// One parameter's record (its arrays appended to `seen`, their memory to
    /// `writes`), if its entry points into the arrays its objects hold now (which
    /// proves them used in place) and its state needs nothing stored.
    fn param_of(
        s: &StepView<'_, '_>,
        p: &Bound<'_, PyAny>,
        entry: &Entry,
        parts: &mut Parts,
    ) -> PyResult<Option<Param>> {
        let Parts { seen, dims, writes } = parts;
        if entry.target != NONE || entry.fresh {
            return Ok(None);
        }
        let seen_at = seen.len() as u32;
        // `v`, if it is a writeable array whose elements are at `ptr`
        let mut array = |v: Option<Bound<'_, PyAny>>, ptr: *mut u8, written: bool| -> bool {
            let Some(a) = v.as_ref().and_then(|v| v.cast::<PyUntypedArray>().ok()) else {
                return false;
            };
            let (data, _, flags) = layout(a);
            if data != ptr as usize || flags & NPY_ARRAY_WRITEABLE == 0 {
                return false;
            }
            if let (true, Some((lo, hi, _))) = (written, span(a)) {
                writes.push((lo, hi));
            }
            seen.push(Seen::of(a, dims));
            true
        };
        if !array(Some(p.getattr(intern!(p.py(), "data"))?), entry.param, true) {
            return Ok(None);
        }
        let mut template = *entry;
        template.grad = std::ptr::null_mut();
        let (param, entry) = (p.clone().unbind(), Template(template));
        if s.keys.scalars.is_empty() && entry.0.buffers.iter().all(|b| b.is_null()) {
            return Ok(Some(Param { param, seen_at, dict: None, by_identity: false, version: 0, entry }));
        }
        let (Some(found), by_identity) = state_of(s.state, p)? else {
            return Ok(None);
        };
        let Ok(dict) = found.cast_into::<PyDict>() else {
            return Ok(None);
        };
        for (k, key) in s.keys.scalars.iter().enumerate() {
            let home = entry.0.homes[k];
            if home.is_null() || !array(dict.get_item(key)?, home.cast(), false) {
                return Ok(None);
            }
        }
        for (key, &b) in s.keys.buffers.iter().zip(&entry.0.buffers) {
            if !b.is_null() && !array(dict.get_item(key)?, b, true) {
                return Ok(None); // a shared read-only array, or a scratch copy
            }
        }
        let version = DictVersions::current(p.py()).map_or(0, |v| v.of(&dict));
        Ok(Some(Param { param, seen_at, dict: Some(dict.unbind()), by_identity, version, entry }))
    }
}

/// Whether the memory `[lo, hi)` of an array read in place overlaps a written array.
/// `finger`: where the last array was found among the writes, searched from first (a
/// step's gradients often lie next to each other, or each next to its parameter),
/// then updated.
fn overlaps(writes: &[(usize, usize)], lo: usize, hi: usize, finger: &mut usize) -> bool {
    let first = first_ending_above(writes, lo, *finger);
    *finger = first;
    first < writes.len() && writes[first].0 < hi
}

/// The first write ending above `lo` (the writes are disjoint and in address order,
/// so their ends are too): `writes.partition_point(|w| w.1 <= lo)`, galloping out
/// from `at`, in about 2·log₂(d) comparisons for an answer d places from it (one or
/// two when the answer is `at` or its neighbour).
fn first_ending_above(writes: &[(usize, usize)], lo: usize, at: usize) -> usize {
    let n = writes.len();
    let below = |k: usize| writes[k].1 <= lo;
    let at = at.min(n);
    let mut step = 1;
    // the answer lies in lo_i..=hi_i
    let (lo_i, hi_i) = if at < n && below(at) {
        let mut lo_i = at + 1;
        loop {
            let probe = lo_i + step - 1;
            if probe >= n || !below(probe) {
                break (lo_i, probe.min(n));
            }
            lo_i = probe + 1;
            step *= 2;
        }
    } else {
        let mut hi_i = at;
        loop {
            if step > hi_i {
                break (0, hi_i);
            }
            let probe = hi_i - step;
            if below(probe) {
                break (probe + 1, hi_i);
            }
            hi_i = probe;
            step *= 2;
        }
    };
    lo_i + writes[lo_i..hi_i].partition_point(|w| w.1 <= lo)
}

#[cfg(test)]
mod tests {
    use super::first_ending_above;

    #[test]
    fn galloping_finds_the_partition_point_from_any_finger() {
        for n in [0usize, 1, 2, 3, 7, 33, 100] {
            // disjoint spans [10k, 10k + 4), every third [10k, 10k + 10): touching the next
            let writes: Vec<(usize, usize)> =
                (0..n).map(|k| (10 * k, 10 * k + 4 + (k % 3 == 0) as usize * 6)).collect();
            for lo in (0..10 * n + 12).step_by(3) {
                let want = writes.partition_point(|w| w.1 <= lo);
                for at in 0..=n + 2 {
                    assert_eq!(first_ending_above(&writes, lo, at), want, "n = {n}, lo = {lo}, at = {at}");
                }
            }
        }
    }
}
