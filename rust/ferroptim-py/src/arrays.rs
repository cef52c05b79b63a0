//! The NumPy boundary: what an array is allowed to be before a kernel touches it.
//!
//! Every array a step uses is checked here, with the GIL held, before anything is
//! changed: it must be an ndarray of float32/float64 (parameters), of the right shape,
//! writeable if the step writes it. An array the kernels cannot use in place (not
//! C-contiguous, misaligned, non-native byte order, or a gradient of another dtype)
//! gets a contiguous scratch copy; a written one is copied back after the kernel.
//! [`Overlaps`] then refuses any two arrays that share memory where one is written.

use std::os::raw::c_int;
use std::sync::Mutex;

use numpy::npyffi::{self, NPY_ARRAY_ALIGNED, NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_F_CONTIGUOUS, NPY_ARRAY_WRITEABLE};
use numpy::npyffi::{NPY_TYPES, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{IntoPyDict, PyModule};
use pyo3::Borrowed;

/// The element types the kernels run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// The element types of state arrays: a parameter's float type, or the bytes of
/// 8-bit optimizer state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    Float(Dtype),
    U8,
}

impl From<Dtype> for Elem {
    fn from(d: Dtype) -> Self {
        Elem::Float(d)
    }
}

impl Elem {
    fn descr(self, py: Python<'_>) -> Bound<'_, numpy::PyArrayDescr> {
        match self {
            Elem::Float(Dtype::F32) => numpy::dtype::<f32>(py),
            Elem::Float(Dtype::F64) => numpy::dtype::<f64>(py),
            Elem::U8 => numpy::dtype::<u8>(py),
        }
    }
}

/// One ndarray's layout, read once from its struct.
pub(crate) struct Array<'a, 'py> {
    pub obj: &'a Bound<'py, PyUntypedArray>,
    data: *mut u8,
    flags: c_int,
    /// float32/float64 in either byte order, else None.
    float: Option<Dtype>,
    /// uint8
    byte: bool,
    native: bool,
    kind: u8,
    itemsize: usize,
}

impl<'a, 'py> Array<'a, 'py> {
    pub(crate) fn read(obj: &'a Bound<'py, PyUntypedArray>) -> Self {
        // SAFETY: `obj` is an ndarray (its type was checked by the cast that produced
        // it), so its object is a PyArrayObject whose fields numpy keeps valid while
        // it is alive.
        let fields = unsafe { &*npyffi::_PyArray_GET_ITEM_DATA(obj.as_array_ptr()) };
        // SAFETY: an ndarray always holds a reference to its (non-NULL) descriptor, so
        // borrowing it for the duration of this call needs no reference of our own.
        let d = unsafe {
            Borrowed::<'_, 'py, PyAny>::from_ptr(obj.py(), fields.descr.cast()).cast_unchecked::<PyArrayDescr>()
        };
        let num = d.num();
        let float = if num == NPY_TYPES::NPY_FLOAT as c_int {
            Some(Dtype::F32)
        } else if num == NPY_TYPES::NPY_DOUBLE as c_int {
            Some(Dtype::F64)
        } else {
            None
        };
        Array {
            obj,
            data: fields.data.cast(),
            flags: fields.flags,
            float,
            byte: num == NPY_TYPES::NPY_UBYTE as c_int,
            native: d.is_native_byteorder() != Some(false),
            kind: d.kind(),
            itemsize: d.itemsize(),
        }
    }

    fn flag(&self, f: c_int) -> bool {
        self.flags & f != 0
    }

    pub(crate) fn shape(&self) -> &'a [usize] {
        self.obj.shape()
    }

    /// Usable by a kernel in place: C-contiguous, aligned, native `elem`.
    fn direct(&self, elem: impl Into<Elem>) -> bool {
        self.flag(NPY_ARRAY_C_CONTIGUOUS)
            && self.flag(NPY_ARRAY_ALIGNED)
            && self.native
            && self.elem() == Some(elem.into())
    }

    fn elem(&self) -> Option<Elem> {
        if self.byte {
            Some(Elem::U8)
        } else {
            self.float.map(Elem::Float)
        }
    }

    fn dtype_str(&self) -> String {
        dtype_str(self.obj.as_any())
    }

    /// The byte range the elements lie in (None when empty), and whether that range
    /// is exactly the array's memory.
    fn span(&self) -> Option<(usize, usize, bool)> {
        let shape = self.shape();
        if shape.contains(&0) {
            return None;
        }
        let (mut lo, mut hi) = (self.data as isize, self.data as isize);
        for (&dim, &stride) in shape.iter().zip(self.obj.strides()) {
            let span = (dim as isize - 1) * stride;
            if span < 0 {
                lo += span;
            } else {
                hi += span;
            }
        }
        let dense = self.flag(NPY_ARRAY_C_CONTIGUOUS) || self.flag(NPY_ARRAY_F_CONTIGUOUS);
        Some((lo as usize, hi as usize + self.itemsize, dense))
    }
}

fn dtype_str(a: &Bound<'_, PyAny>) -> String {
    a.getattr("dtype").map_or_else(|_| "?".into(), |d| d.to_string())
}

pub(crate) fn type_name(o: &Bound<'_, PyAny>) -> String {
    o.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string())
}

fn numpy_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    NUMPY.get_or_try_init(py, || py.import("numpy").map(Bound::unbind)).map(|m| m.bind(py))
}

/// Where an operand's memory comes from.
pub(crate) enum Origin<'py> {
    /// The caller's array, used in place.
    Caller,
    /// Memory this step created (zeros, a read-only scratch copy): nobody else's.
    Fresh,
    /// A scratch copy of the caller's array, written back after the kernels.
    CopyOf(Bound<'py, PyUntypedArray>),
}

/// An array ready for a kernel: `ptr` to its elements, in `array`.
pub(crate) struct Operand<'py> {
    pub array: Bound<'py, PyUntypedArray>,
    pub origin: Origin<'py>,
    pub ptr: *mut u8,
}

impl<'py> Operand<'py> {
    /// An array this step created.
    pub(crate) fn fresh(array: Bound<'py, PyUntypedArray>) -> Self {
        Self::of(array, Origin::Fresh)
    }

    fn of(array: Bound<'py, PyUntypedArray>, origin: Origin<'py>) -> Self {
        let ptr = Array::read(&array).data;
        Operand { array, origin, ptr }
    }
}

/// `value` as an ndarray, else a TypeError saying what it should have been.
fn ndarray<'py>(value: Bound<'py, PyAny>, what: &dyn Fn() -> String) -> PyResult<Bound<'py, PyUntypedArray>> {
    value.cast_into::<PyUntypedArray>().map_err(|e| {
        let value = e.into_inner();
        PyTypeError::new_err(format!("{} must be a numpy.ndarray, got {}", what(), type_name(&value)))
    })
}

/// A parameter's `.data`, which the step writes: an ndarray of float32/float64,
/// writeable; `what` names it in errors.
pub(crate) fn param_operand<'py>(
    data: Bound<'py, PyAny>,
    what: &dyn Fn() -> String,
) -> PyResult<(Operand<'py>, Dtype)> {
    let a = ndarray(data, &|| format!("{}: .data", what()))?;
    let info = Array::read(&a);
    let dtype = info.float.ok_or_else(|| {
        PyTypeError::new_err(format!(
            "{}: unsupported dtype {}; ferroptim optimizes float32 and float64 arrays",
            what(),
            info.dtype_str()
        ))
    })?;
    let op = writeable_operand(&info, dtype, what)?;
    Ok((op, dtype))
}

/// An array a kernel only reads, in its own dtype (float32 or float64); a scratch
/// copy where it cannot be read in place (non-contiguous, misaligned, byte-swapped).
pub(crate) fn read_operand<'py>(
    value: Bound<'py, PyAny>,
    what: &dyn Fn() -> String,
) -> PyResult<(Operand<'py>, Dtype)> {
    let a = ndarray(value, what)?;
    let info = Array::read(&a);
    let dtype = info.float.ok_or_else(|| {
        PyTypeError::new_err(format!("{}: unsupported dtype {}; float32 and float64 are", what(), info.dtype_str()))
    })?;
    let shape = info.shape().to_vec();
    Ok((grad_operand(a.into_any(), &shape, dtype, what)?, dtype))
}

/// A state buffer, which the step writes: an ndarray of `elem` (the parameter's dtype,
/// or uint8 codes) and `shape`, writeable.
pub(crate) fn buffer_operand<'py>(
    value: Bound<'py, PyAny>,
    shape: &[usize],
    elem: impl Into<Elem>,
    what: &dyn Fn() -> String,
) -> PyResult<Operand<'py>> {
    let elem = elem.into();
    let a = ndarray(value, what)?;
    let info = Array::read(&a);
    if info.elem() != Some(elem) {
        return Err(PyTypeError::new_err(match elem {
            Elem::Float(d) => format!("{} has dtype {} but its parameter {}", what(), info.dtype_str(), d.name()),
            Elem::U8 => format!("{} has dtype {}, not uint8", what(), info.dtype_str()),
        }));
    }
    check_shape(info.shape(), shape, what)?;
    writeable_operand(&info, elem, what)
}

/// An array the step writes: must be writeable; used in place when it can be, else
/// through a scratch copy written back after the kernel.
fn writeable_operand<'py>(
    info: &Array<'_, 'py>,
    dtype: impl Into<Elem> + Copy,
    what: &dyn Fn() -> String,
) -> PyResult<Operand<'py>> {
    if !info.flag(NPY_ARRAY_WRITEABLE) {
        return Err(PyValueError::new_err(format!("{}: the array is read-only", what())));
    }
    if info.direct(dtype) {
        return Ok(Operand { array: info.obj.clone(), origin: Origin::Caller, ptr: info.data });
    }
    let copy = contiguous_copy(info.obj.as_any(), dtype)?;
    Ok(Operand::of(copy, Origin::CopyOf(info.obj.clone())))
}

/// A gradient, which the step only reads: anything NumPy can turn into a real array
/// of the parameter's `shape`; cast to the parameter's dtype when it differs.
pub(crate) fn grad_operand<'py>(
    grad: Bound<'py, PyAny>,
    shape: &[usize],
    dtype: Dtype,
    what: &dyn Fn() -> String,
) -> PyResult<Operand<'py>> {
    let grad = match grad.cast_into::<PyUntypedArray>() {
        Ok(a) => {
            let info = Array::read(&a);
            check_real(&info, what)?;
            check_shape(info.shape(), shape, what)?;
            if info.direct(dtype) {
                return Ok(Operand { ptr: info.data, array: a, origin: Origin::Caller });
            }
            a.into_any()
        }
        Err(e) => e.into_inner(),
    };
    let copy = contiguous_copy(&grad, dtype)
        .map_err(|e| PyTypeError::new_err(format!("{}: cannot be read as an array: {e}", what())))?;
    let info = Array::read(&copy);
    check_real(&info, what)?;
    check_shape(info.shape(), shape, what)?;
    Ok(Operand::fresh(copy))
}

fn check_real(a: &Array<'_, '_>, what: &dyn Fn() -> String) -> PyResult<()> {
    match a.kind {
        b'f' | b'i' | b'u' => Ok(()),
        _ => Err(PyTypeError::new_err(format!("{}: dtype {} is not a real number type", what(), a.dtype_str()))),
    }
}

/// An array's shape must be its parameter's.
fn check_shape(got: &[usize], shape: &[usize], what: &dyn Fn() -> String) -> PyResult<()> {
    if !same_shape(got, shape) {
        return Err(PyValueError::new_err(format!(
            "{}: shape {} does not match the parameter's shape {}",
            what(),
            shape_str(got),
            shape_str(shape)
        )));
    }
    Ok(())
}

/// Whether two shapes are equal, compared element by element: shapes are short, and
/// `==` on slices calls memcmp.
#[inline]
pub(crate) fn same_shape(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A shape as Python prints it: `(3, 2)`, `(3,)`, `()`.
fn shape_str(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// `np.array(a, dtype=dtype, order="C")`: a fresh, aligned, native copy.
fn contiguous_copy<'py>(a: &Bound<'py, PyAny>, dtype: impl Into<Elem>) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = a.py();
    let kwargs = [("dtype", dtype.into().descr(py).into_any()), ("order", "C".into_pyobject(py)?.into_any())];
    let copy = numpy_module(py)?.call_method("array", (a,), Some(&kwargs.into_py_dict(py)?))?;
    Ok(copy.cast_into::<PyUntypedArray>()?)
}

/// Copies a scratch array back into the caller's array (`np.copyto`).
pub(crate) fn copy_back(original: &Bound<'_, PyUntypedArray>, scratch: &Bound<'_, PyUntypedArray>) -> PyResult<()> {
    numpy_module(original.py())?.call_method1("copyto", (original, scratch))?;
    Ok(())
}

/// A new C-contiguous array of zeros.
pub(crate) fn zeros<'py>(
    py: Python<'py>,
    shape: &[usize],
    dtype: impl Into<Elem>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let mut dims: Vec<npyffi::npy_intp> = shape.iter().map(|&d| d as npyffi::npy_intp).collect();
    // SAFETY: `dims` holds `shape.len()` dimensions; PyArray_Zeros steals the descr
    // reference `into_dtype_ptr` hands over and returns a new reference or NULL.
    let ptr = unsafe {
        PY_ARRAY_API.PyArray_Zeros(
            py,
            dims.len() as c_int,
            dims.as_mut_ptr(),
            dtype.into().descr(py).into_dtype_ptr(),
            0,
        )
    };
    if ptr.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a non-NULL result of PyArray_Zeros is a new reference to an ndarray.
    Ok(unsafe { Bound::from_owned_ptr(py, ptr).cast_into_unchecked() })
}

/// The byte range an array's elements lie in (None when empty), and whether that
/// range is exactly the array's memory.
pub(crate) fn span(a: &Bound<'_, PyUntypedArray>) -> Option<(usize, usize, bool)> {
    Array::read(a).span()
}

/// Whether `value` is an ndarray of uint8 (8-bit optimizer state).
pub(crate) fn is_uint8(value: &Bound<'_, PyAny>) -> bool {
    value.cast::<PyUntypedArray>().is_ok_and(|a| Array::read(a).byte)
}

/// A scalar state value kept as a 0-d float64 array (as torch keeps `step` as a 0-d
/// tensor): the array and a pointer to its value, when it can be written in place.
pub(crate) fn scalar_slot<'py>(value: &Bound<'py, PyAny>) -> Option<(Bound<'py, PyUntypedArray>, *mut f64)> {
    let a = value.cast::<PyUntypedArray>().ok()?;
    let info = Array::read(a);
    let usable = a.ndim() == 0
        && info.native
        && info.float == Some(Dtype::F64)
        && info.flag(NPY_ARRAY_ALIGNED)
        && info.flag(NPY_ARRAY_WRITEABLE);
    usable.then(|| (a.clone(), info.data.cast()))
}

/// A new 0-d float64 array holding `value`.
pub(crate) fn scalar_array(py: Python<'_>, value: f64) -> PyResult<Bound<'_, PyUntypedArray>> {
    let a = zeros(py, &[], Dtype::F64)?;
    // SAFETY: a fresh 0-d float64 array owns 8 aligned bytes nobody else sees yet.
    unsafe { *Array::read(&a).data.cast::<f64>() = value };
    Ok(a)
}

/// The memory of one array: `[lo, hi)`, the caller's label, the array's index in the
/// caller's list of arrays, and whether the range is exactly the array's memory.
#[derive(Clone, Copy)]
struct Span {
    lo: usize,
    hi: usize,
    who: u32,
    array: u32,
    dense: bool,
}

/// The memory of every array a step touches, to refuse aliasing before any write.
///
/// Written arrays must not overlap anything; read-only ones (gradients) may overlap
/// each other. The written spans are ordered by address (then, being disjoint, by
/// end too), and each read span is located among them by binary search.
#[derive(Default)]
pub(crate) struct Overlaps {
    writes: Vec<Span>,
    reads: Vec<Span>,
    /// Indices into `writes`, in address order.
    order: Vec<u32>,
}

impl Overlaps {
    pub(crate) fn clear(&mut self) {
        self.writes.clear();
        self.reads.clear();
        self.order.clear();
    }

    /// Records `array`, which the step writes (or only reads) and holds at `index` of
    /// its list of arrays; `who` is the caller's label for it.
    pub(crate) fn add(&mut self, array: &Bound<'_, PyUntypedArray>, index: usize, write: bool, who: u32) {
        let Some((lo, hi, dense)) = Array::read(array).span() else {
            return;
        };
        let span = Span { lo, hi, who, array: index as u32, dense };
        if write {
            self.writes.push(span);
        } else {
            self.reads.push(span);
        }
    }

    /// The labels of two arrays that share memory where one of them is written;
    /// `arrays` is the list the spans were added from.
    pub(crate) fn find(&mut self, py: Python<'_>, arrays: &[Py<PyUntypedArray>]) -> PyResult<Option<(u32, u32)>> {
        if self.writes.iter().any(|s| !s.dense) {
            return self.find_among_interleaved(py, arrays);
        }
        let writes = &self.writes;
        let mut verified = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
        if !verified.order_of(writes, &mut self.order) {
            self.order.clear();
            self.order.extend(0..writes.len() as u32);
            self.order.sort_unstable_by_key(|&i| writes[i as usize].lo);
            for pair in self.order.windows(2) {
                let (a, b) = (writes[pair[0] as usize], writes[pair[1] as usize]);
                if b.lo < a.hi {
                    return Ok(Some((a.who, b.who)));
                }
            }
            verified.remember(writes, &self.order);
        }
        drop(verified);
        // The written spans are disjoint: in address order, their ends are ordered too.
        for &r in &self.reads {
            let first = self.order.partition_point(|&i| writes[i as usize].hi <= r.lo);
            for &i in &self.order[first..] {
                let w = writes[i as usize];
                if w.lo >= r.hi {
                    break;
                }
                if shared(py, arrays, w, r)? {
                    return Ok(Some((w.who, r.who)));
                }
            }
        }
        Ok(None)
    }

    /// The general sweep, for when written strided arrays may interleave.
    fn find_among_interleaved(&self, py: Python<'_>, arrays: &[Py<PyUntypedArray>]) -> PyResult<Option<(u32, u32)>> {
        let mut all: Vec<(Span, bool)> = self.writes.iter().map(|&s| (s, true)).collect();
        all.extend(self.reads.iter().map(|&s| (s, false)));
        all.sort_unstable_by_key(|(s, _)| s.lo);
        let mut active: Vec<(Span, bool)> = Vec::new();
        for &(s, write) in &all {
            active.retain(|(t, _)| t.hi > s.lo);
            for &(t, t_write) in &active {
                if (write || t_write) && shared(py, arrays, t, s)? {
                    return Ok(Some((t.who, s.who)));
                }
            }
            active.push((s, write));
        }
        Ok(None)
    }
}

/// The last set of dense written spans found disjoint, with its order by address.
///
/// From one step to the next the arrays a step writes (parameters and their state)
/// rarely move, so a step whose written spans, in gathering order, equal the last
/// verified ones reuses that order and verdict instead of sorting again. The verdict
/// depends on nothing but the spans, so reusing it is exact.
struct Verified {
    /// (lo, hi) of each written span, in gathering order.
    spans: Vec<(usize, usize)>,
    /// Indices into `spans`, in address order.
    order: Vec<u32>,
}

static VERIFIED: Mutex<Verified> = Mutex::new(Verified { spans: Vec::new(), order: Vec::new() });

impl Verified {
    /// Copies the address order of `writes` into `order` if they are the last
    /// verified set; false otherwise.
    fn order_of(&self, writes: &[Span], order: &mut Vec<u32>) -> bool {
        let same = self.spans.len() == writes.len()
            && self.spans.iter().zip(writes).all(|(&(lo, hi), w)| lo == w.lo && hi == w.hi);
        if same {
            order.clear();
            order.extend_from_slice(&self.order);
        }
        same
    }

    /// Remembers `writes`, found disjoint, and their address order.
    fn remember(&mut self, writes: &[Span], order: &[u32]) {
        self.spans.clear();
        self.spans.extend(writes.iter().map(|w| (w.lo, w.hi)));
        self.order.clear();
        self.order.extend_from_slice(order);
    }
}

/// Overlapping ranges of two dense arrays share memory; a strided array may
/// interleave with another without sharing, which `np.shares_memory` decides.
fn shared(py: Python<'_>, arrays: &[Py<PyUntypedArray>], a: Span, b: Span) -> PyResult<bool> {
    if a.dense && b.dense {
        return Ok(true);
    }
    let (x, y) = (arrays[a.array as usize].bind(py), arrays[b.array as usize].bind(py));
    numpy_module(py)?.call_method1("shares_memory", (x, y))?.extract()
}
