//! `.data` and `.grad` of a `ferroptim.Parameter`, read from its slots.
//!
//! A replayed step ([`crate::plan`]) reads two attributes of every parameter. Through
//! the attribute protocol that is two type lookups, two descriptor calls and the
//! generic machinery around them: about a sixth of a replayed step's instructions per
//! parameter on 2000 × 64. `Parameter` keeps both in `__slots__`, so for an object
//! whose type is exactly `Parameter` they are two pointers at fixed offsets in it.
//!
//! The offsets are not taken from CPython's layout rules but found: a `Parameter`
//! made without `__init__` gets two distinct sentinel objects through
//! `object.__setattr__`, and the words of the object are searched for them (each must
//! appear exactly once). Each step then checks, once, that what the attribute
//! protocol would do is still a plain slot read: the class's `data` and `grad` are
//! still the member descriptors found then, and its `tp_getattro` is unchanged (no
//! `__getattribute__` assigned since). Anything else — a subclass, a duck-typed
//! parameter, an empty slot — goes through `getattr`.

use std::os::raw::c_void;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};

/// Where `Parameter` keeps `.data` and `.grad`, and what its class looked like then.
pub(crate) struct ParamSlots {
    ty: Py<PyType>,
    data_descr: Py<PyAny>,
    grad_descr: Py<PyAny>,
    getattro: usize,
    data_at: usize,
    grad_at: usize,
}

/// Which slot to read.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Data,
    Grad,
}

impl ParamSlots {
    /// The slots of `ferroptim.Parameter`, if they could be found and its class is
    /// still as it was then (checked on every call: once per step).
    pub(crate) fn current(py: Python<'_>) -> Option<&'static ParamSlots> {
        static SLOTS: PyOnceLock<Option<ParamSlots>> = PyOnceLock::new();
        let slots = SLOTS.get_or_init(py, || Self::find(py).ok().flatten()).as_ref()?;
        slots.unchanged(py).then_some(slots)
    }

    fn find(py: Python<'_>) -> PyResult<Option<ParamSlots>> {
        let ty = py.import("ferroptim.parameter")?.getattr("Parameter")?.cast_into::<PyType>()?;
        let (data_descr, grad_descr) = (Self::descr(&ty, "data")?, Self::descr(&ty, "grad")?);
        let member = py.import("types")?.getattr("MemberDescriptorType")?;
        if !data_descr.get_type().is(&member) || !grad_descr.get_type().is(&member) {
            return Ok(None); // not member descriptors (slots) any more
        }
        let basicsize: usize = ty.getattr("__basicsize__")?.extract()?;
        let probe = ty.call_method1("__new__", (&ty,))?;
        let (a, b) = (PyList::empty(py).into_any(), PyDict::new(py).into_any());
        let set = py.import("builtins")?.getattr("object")?.getattr("__setattr__")?;
        set.call1((&probe, "data", &a))?;
        set.call1((&probe, "grad", &b))?;
        let at = |target: &Bound<'_, PyAny>| -> Option<usize> {
            let word = std::mem::size_of::<usize>();
            let mut found = (std::mem::size_of::<ffi::PyObject>()..basicsize)
                .step_by(word)
                // SAFETY: `probe` is alive and at least `basicsize` bytes long (its
                // type's instance size), and object words are pointer-aligned; the
                // words are only read and compared.
                .filter(|&off| unsafe { *(probe.as_ptr().cast::<u8>().add(off).cast::<usize>()) } == target.as_ptr() as usize);
            let first = found.next()?;
            found.next().is_none().then_some(first)
        };
        let (Some(data_at), Some(grad_at)) = (at(&a), at(&b)) else {
            return Ok(None);
        };
        let slots = ParamSlots {
            getattro: Self::getattro(&ty),
            ty: ty.unbind(),
            data_descr: data_descr.unbind(),
            grad_descr: grad_descr.unbind(),
            data_at,
            grad_at,
        };
        // what was found reads back what the attribute protocol gives
        let ok = slots.read(&probe, Slot::Data).is_some_and(|v| v.is(&a))
            && slots.read(&probe, Slot::Grad).is_some_and(|v| v.is(&b));
        Ok(ok.then_some(slots))
    }

    fn descr<'py>(ty: &Bound<'py, PyType>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        ty.getattr("__dict__")?.get_item(name)
    }

    fn getattro(ty: &Bound<'_, PyType>) -> usize {
        // SAFETY: `ty` is a heap type (a class), for which PyType_GetSlot is defined;
        // the slot's value is only compared.
        unsafe { ffi::PyType_GetSlot(ty.as_type_ptr(), ffi::Py_tp_getattro) as *const c_void as usize }
    }

    /// Whether `Parameter`'s attribute lookup is still the slot read found.
    fn unchanged(&self, py: Python<'_>) -> bool {
        let ty = self.ty.bind(py);
        let same = |name: &str, d: &Py<PyAny>| Self::descr(ty, name).is_ok_and(|x| x.is(d.bind(py)));
        Self::getattro(ty) == self.getattro && same("data", &self.data_descr) && same("grad", &self.grad_descr)
    }

    /// `p.data` or `p.grad` if `p` is exactly a `Parameter` with that slot set; None
    /// otherwise (the caller asks `getattr`).
    #[inline]
    pub(crate) fn read<'py>(&self, p: &Bound<'py, PyAny>, slot: Slot) -> Option<Bound<'py, PyAny>> {
        let word = self.peek(p, slot)?;
        // SAFETY: a live object `p` holds (see `peek`), read with the GIL held;
        // `from_borrowed_ptr` takes a new reference to it.
        Some(unsafe { Bound::from_borrowed_ptr(p.py(), word) })
    }

    /// As [`read`](Self::read), borrowed: valid only while `p` keeps it (no Python
    /// code may run before it is used).
    #[inline]
    pub(crate) fn peek(&self, p: &Bound<'_, PyAny>, slot: Slot) -> Option<*mut ffi::PyObject> {
        // SAFETY: `p` is alive, read with the GIL held.
        unsafe { self.peek_at(p.as_ptr(), slot) }
    }

    /// [`peek`](Self::peek) for the object at `p`.
    ///
    /// # Safety
    /// `p` is a live object that no one changes meanwhile.
    #[inline]
    pub(crate) unsafe fn peek_at(&self, p: *mut ffi::PyObject, slot: Slot) -> Option<*mut ffi::PyObject> {
        // SAFETY: Py_TYPE reads the type of a live object.
        if unsafe { ffi::Py_TYPE(p) } != self.ty.as_ptr().cast() {
            return None;
        }
        let at = match slot {
            Slot::Data => self.data_at,
            Slot::Grad => self.grad_at,
        };
        // SAFETY: `p`'s type is exactly `Parameter`, whose instances hold the slot at
        // `at` (found inside its instance size, on an instance of it); the word is a
        // borrowed reference or null (slot unset), only read.
        let word = unsafe { *(p.cast::<u8>().add(at).cast::<*mut ffi::PyObject>()) };
        (!word.is_null()).then_some(word)
    }
}
