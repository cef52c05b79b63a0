//! A list's items read where they are, without a call per item.
//!
//! A replayed step over many small parameters compares each item of each group's
//! `params` list with the parameter its plan recorded there. Through
//! `PyList_GetItem` that is one call into the interpreter per item, on the calling
//! thread alone, before the work can be shared: about 6% of a replay over 2000
//! parameters. A `list` keeps its items in one array of object pointers, `ob_item`,
//! right after its variable-size header, in every CPython this extension loads (the
//! limited API does not name the field); so the threads sharing the gather
//! ([`crate::plan`]) read the items there, each those of its own parameters.
//!
//! The field is checked rather than assumed: on the Pythons whose lists are known to
//! be laid out so (CPython 3.9 to 3.14), the word after the header of a probe list
//! must point to its items, in order, and follow them as the list is changed and
//! grows. Elsewhere, or where it does not, [`ListItems::current`] is None and a
//! replay gathers on the calling thread alone, as it does without a crew.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyListMethods};

/// Where a list keeps its items (see the module docs).
pub(crate) struct ListItems {
    /// The offset of `ob_item` in a list object.
    at: usize,
}

impl ListItems {
    /// Where this Python's lists keep their items, if found (found once).
    pub(crate) fn current(py: Python<'_>) -> Option<&'static ListItems> {
        static ITEMS: PyOnceLock<Option<ListItems>> = PyOnceLock::new();
        ITEMS.get_or_init(py, || Self::find(py).ok().flatten()).as_ref()
    }

    fn find(py: Python<'_>) -> PyResult<Option<ListItems>> {
        let version = py.version_info();
        if !((3, 9)..(3, 15)).contains(&(version.major, version.minor)) {
            return Ok(None);
        }
        // PyListObject: the variable-size header, then `ob_item`
        let found = ListItems { at: std::mem::size_of::<ffi::PyObject>() + std::mem::size_of::<ffi::Py_ssize_t>() };
        let list = PyList::empty(py);
        let mut ok = true;
        for n in 0..40 {
            list.append(n)?;
            if n % 3 == 0 {
                list.set_item(0, n)?; // an item replaced
            }
            // SAFETY: `list` is a live list, laid out on these versions as the header,
            // then `ob_item`, its items' array; only its first `len` items are read.
            ok &= list.iter().enumerate().all(|(i, item)| unsafe { found.item(list.as_ptr(), i) } == item.as_ptr());
        }
        Ok(ok.then_some(found))
    }

    /// The items array of the list at `list`.
    ///
    /// # Safety
    /// `list` is a live `list` (exactly, or a subclass: which begins as one) that no
    /// one changes while the array is used; it has as many items as it had when its
    /// length was read.
    #[inline]
    pub(crate) unsafe fn items(&self, list: *mut ffi::PyObject) -> *const *mut ffi::PyObject {
        // SAFETY: the function's contract; `ob_item` is at `at` on this Python (found
        // by `find`).
        unsafe { *list.cast::<u8>().add(self.at).cast::<*const *mut ffi::PyObject>() }
    }

    /// Item `i` of the list at `list`, borrowed.
    ///
    /// # Safety
    /// As [`items`](Self::items), and `i` is less than its length.
    #[inline]
    pub(crate) unsafe fn item(&self, list: *mut ffi::PyObject, i: usize) -> *mut ffi::PyObject {
        // SAFETY: the function's contract.
        unsafe { *self.items(list).add(i) }
    }
}
