//! Whether a dict has changed since a step looked into it: its version tag (PEP 509).
//!
//! A replayed step ([`crate::plan`]) has to know that `optimizer.state[p]` is still
//! the dict it recorded and that the dict still holds the arrays it recorded under
//! each state name. Looking every key up again costs about a quarter of a replayed
//! step on many small parameters. CPython 3.9 to 3.13 give every dict a version tag,
//! `ma_version_tag`, which every change to the dict replaces by a larger value, from
//! one counter for the whole interpreter ("incremented at each dictionary change",
//! PEP 509; from 3.12 the low bits hold the dict's watchers and the counter sits
//! above them, bumped by the same event every change reports to the watchers). A
//! lookup never changes it. So a dict held since a recorded step with the same tag
//! as then holds the same key and value objects, and every lookup in it finds what it
//! found then (for keys whose hash and equality do not change, which Python requires
//! of every dict key).
//!
//! The field is not part of the limited API, so it is found rather than assumed: on
//! a Python whose version has it, a probe dict is changed in each way a dict can be
//! (set, replace, delete, update, pop, setdefault, clear) and the word after
//! `ma_used` must grow each time and stay put on a lookup. Elsewhere (3.14, which
//! dropped the tag, a debug build) [`DictVersions::current`] is None and a replayed
//! step looks every key up.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyAnyMethods, PyDict, PyDictMethods};

/// Where a dict keeps its version tag.
pub(crate) struct DictVersions {
    at: usize,
}

impl DictVersions {
    /// The version tags of this Python's dicts, if it has them (found once).
    pub(crate) fn current(py: Python<'_>) -> Option<&'static DictVersions> {
        static VERSIONS: PyOnceLock<Option<DictVersions>> = PyOnceLock::new();
        VERSIONS.get_or_init(py, || Self::find(py).ok().flatten()).as_ref()
    }

    fn find(py: Python<'_>) -> PyResult<Option<DictVersions>> {
        let version = py.version_info();
        if !((3, 9)..(3, 14)).contains(&(version.major, version.minor)) {
            return Ok(None);
        }
        // PyDictObject: the object header, `ma_used`, then `ma_version_tag`
        let used_at = std::mem::size_of::<ffi::PyObject>();
        let found = DictVersions { at: used_at + std::mem::size_of::<ffi::Py_ssize_t>() };
        let d = PyDict::new(py);
        // SAFETY: `d` is a live dict, at least as large as the header, `ma_used`
        // and the version tag on every Python this runs on (checked above); the
        // word is only read and compared.
        let used = |d: &Bound<'_, PyDict>| unsafe { *d.as_ptr().cast::<u8>().add(used_at).cast::<isize>() };
        let mut last = found.of(&d);
        let mut grew = |d: &Bound<'_, PyDict>| {
            let now = found.of(d);
            let ok = now > last && used(d) == d.len() as isize;
            last = now;
            ok
        };
        // each kind of change, each checked as it is made
        let mut ok = true;
        d.set_item("a", 1)?;
        ok &= grew(&d);
        d.set_item("a", 2)?;
        ok &= grew(&d);
        d.del_item("a")?;
        ok &= grew(&d);
        d.call_method1("update", ((("b", 1),),))?;
        ok &= grew(&d);
        d.call_method1("pop", ("b",))?;
        ok &= grew(&d);
        d.call_method1("setdefault", ("c", 3))?;
        ok &= grew(&d);
        d.call_method0("clear")?;
        ok &= grew(&d);
        if !ok {
            return Ok(None);
        }
        d.set_item("k", 0)?;
        let before = found.of(&d);
        let _ = (d.get_item("k")?, d.contains("k")?, d.len());
        Ok((found.of(&d) == before).then_some(found))
    }

    /// The version tag of `dict`: the same value as before if and only if nothing
    /// changed the dict in between (for a dict held meanwhile).
    #[inline]
    pub(crate) fn of(&self, dict: &Bound<'_, PyDict>) -> u64 {
        // SAFETY: `dict` is a live dict, read with the GIL held.
        unsafe { self.at(dict.as_ptr()) }
    }

    /// [`of`](Self::of) for the dict at `dict`.
    ///
    /// # Safety
    /// `dict` is a live dict (or a subclass, which begins as one) that no one
    /// changes meanwhile.
    #[inline]
    pub(crate) unsafe fn at(&self, dict: *mut ffi::PyObject) -> u64 {
        // SAFETY: the function's contract; the version tag is at `at` on this Python
        // (found by `find`), only read and compared.
        unsafe { *dict.cast::<u8>().add(self.at).cast::<u64>() }
    }
}
