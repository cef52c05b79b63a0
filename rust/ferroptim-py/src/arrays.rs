//! The NumPy boundary: what an array is allowed to be before a kernel touches it.
//!
//! Every array a step uses is checked here, with the GIL held, before anything is
//! changed: it must be an ndarray of float32/float64 (parameters), of the right shape,
//! writeable if the step writes it. An array the kernels cannot use in place (not
//! C-contiguous, misaligned, non-native byte order, or a gradient of another dtype)
//! gets a contiguous scratch copy; a written one is copied back after the kernel.
//! [`Overlaps`] then refuses any two arrays that share memory where one is written.

use std::os::raw::c_int;

use numpy::npyffi::{self, NPY_ARRAY_WRITEABLE, NPY_TYPES, PY_ARRAY_API};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

/// The element types the kernels run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn type_num(self) -> c_int {
        match self {
            Dtype::F32 => NPY_TYPES::NPY_FLOAT as c_int,
            Dtype::F64 => NPY_TYPES::NPY_DOUBLE as c_int,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    fn descr(self, py: Python<'_>) -> Bound<'_, numpy::PyArrayDescr> {
        match self {
            Dtype::F32 => numpy::dtype::<f32>(py),
            Dtype::F64 => numpy::dtype::<f64>(py),
        }
    }
}

/// The raw layout of an ndarray, read from its struct.
struct Layout {
    data: *mut u8,
    flags: c_int,
}

fn layout(a: &Bound<'_, PyUntypedArray>) -> Layout {
    // SAFETY: `a` is an ndarray (its type was checked by the cast that produced it), so
    // its object is a PyArrayObject whose fields numpy keeps valid while it is alive.
    let fields = unsafe { &*npyffi::_PyArray_GET_ITEM_DATA(a.as_array_ptr()) };
    Layout { data: fields.data.cast(), flags: fields.flags }
}

/// float32 or float64 in native byte order, else `None`.
fn native_float(a: &Bound<'_, PyUntypedArray>) -> Option<Dtype> {
    let d = a.dtype();
    if d.is_native_byteorder() == Some(false) {
        return None;
    }
    [Dtype::F32, Dtype::F64].into_iter().find(|t| t.type_num() == d.num())
}

fn dtype_str(a: &Bound<'_, PyAny>) -> String {
    a.getattr("dtype").map_or_else(|_| "?".into(), |d| d.to_string())
}

fn numpy_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    NUMPY.get_or_try_init(py, || py.import("numpy").map(Bound::unbind)).map(|m| m.bind(py))
}

/// An array a kernel may use in place: C-contiguous, aligned, native `dtype`.
fn direct(a: &Bound<'_, PyUntypedArray>, dtype: Dtype) -> bool {
    a.is_c_contiguous() && a.is_aligned() && native_float(a) == Some(dtype)
}

/// An array ready for a kernel: a pointer to `len` elements of `dtype`.
pub(crate) struct Operand<'py> {
    /// The array the pointer points into (the caller's, or a scratch copy).
    pub array: Bound<'py, PyUntypedArray>,
    /// The caller's array, when `array` is a scratch copy of it.
    pub original: Option<Bound<'py, PyAny>>,
    pub ptr: *mut u8,
}

impl<'py> Operand<'py> {
    /// An array the kernels can use in place (C-contiguous, aligned, native).
    pub(crate) fn new(array: Bound<'py, PyUntypedArray>) -> Self {
        Self::of(array, None)
    }

    fn of(array: Bound<'py, PyUntypedArray>, original: Option<Bound<'py, PyAny>>) -> Self {
        let ptr = layout(&array).data;
        Operand { array, original, ptr }
    }
}

/// A parameter's array, which the step writes: an ndarray of float32/float64,
/// writeable; `what` names it in errors.
pub(crate) fn param_operand<'py>(data: &Bound<'py, PyAny>, what: &dyn Fn() -> String) -> PyResult<(Operand<'py>, Dtype)> {
    let a = data.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!("{}: .data must be a numpy.ndarray, got {}", what(), type_name(data)))
    })?;
    let dtype = dtype_of_param(a).ok_or_else(|| {
        PyTypeError::new_err(format!(
            "{}: unsupported dtype {}; ferroptim optimizes float32 and float64 arrays",
            what(),
            dtype_str(data)
        ))
    })?;
    writeable_operand(a, dtype, what).map(|op| (op, dtype))
}

/// float32/float64 in any byte order.
fn dtype_of_param(a: &Bound<'_, PyUntypedArray>) -> Option<Dtype> {
    let num = a.dtype().num();
    [Dtype::F32, Dtype::F64].into_iter().find(|t| t.type_num() == num)
}

/// A state buffer, which the step writes: an ndarray of the parameter's dtype and
/// shape, writeable.
pub(crate) fn buffer_operand<'py>(
    value: &Bound<'py, PyAny>,
    shape: &[usize],
    dtype: Dtype,
    what: &dyn Fn() -> String,
) -> PyResult<Operand<'py>> {
    let a = value.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!("{} must be a numpy.ndarray, got {}", what(), type_name(value)))
    })?;
    if dtype_of_param(a) != Some(dtype) {
        return Err(PyTypeError::new_err(format!(
            "{} has dtype {} but its parameter {}",
            what(),
            dtype_str(value),
            dtype.name()
        )));
    }
    check_shape(a, shape, what)?;
    writeable_operand(a, dtype, what)
}

/// An array the step writes: must be writeable; used in place when it can be, else
/// through a scratch copy written back after the kernel.
fn writeable_operand<'py>(
    a: &Bound<'py, PyUntypedArray>,
    dtype: Dtype,
    what: &dyn Fn() -> String,
) -> PyResult<Operand<'py>> {
    if layout(a).flags & NPY_ARRAY_WRITEABLE == 0 {
        return Err(PyValueError::new_err(format!("{}: the array is read-only", what())));
    }
    if direct(a, dtype) {
        return Ok(Operand::of(a.clone(), None));
    }
    let copy = contiguous_copy(a.as_any(), dtype)?;
    Ok(Operand::of(copy, Some(a.clone().into_any())))
}

/// A gradient, which the step only reads: anything NumPy can turn into a real array
/// of the parameter's `shape`; cast to the parameter's dtype when it differs.
pub(crate) fn grad_operand<'py>(grad: &Bound<'py, PyAny>, shape: &[usize], dtype: Dtype, what: &dyn Fn() -> String) -> PyResult<Operand<'py>> {
    if let Ok(a) = grad.cast::<PyUntypedArray>() {
        check_real(a, what)?;
        check_shape(a, shape, what)?;
        if direct(a, dtype) {
            return Ok(Operand::of(a.clone(), None));
        }
    }
    let copy = contiguous_copy(grad, dtype)
        .map_err(|e| PyTypeError::new_err(format!("{}: cannot be read as an array: {e}", what())))?;
    check_real(&copy, what)?;
    check_shape(&copy, shape, what)?;
    Ok(Operand::of(copy, None))
}

fn check_real(a: &Bound<'_, PyUntypedArray>, what: &dyn Fn() -> String) -> PyResult<()> {
    match a.dtype().kind() {
        b'f' | b'i' | b'u' => Ok(()),
        _ => Err(PyTypeError::new_err(format!("{}: dtype {} is not a real number type", what(), dtype_str(a.as_any())))),
    }
}

/// The array's shape must be `shape`.
pub(crate) fn check_shape(a: &Bound<'_, PyUntypedArray>, shape: &[usize], what: &dyn Fn() -> String) -> PyResult<()> {
    if a.shape() != shape {
        return Err(PyValueError::new_err(format!(
            "{}: shape {} does not match the parameter's shape {}",
            what(),
            shape_str(a.shape()),
            shape_str(shape)
        )));
    }
    Ok(())
}

/// A shape as Python prints it: `(3, 2)`, `(3,)`, `()`.
fn shape_str(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// `np.array(a, dtype=dtype, order="C")`: a fresh, aligned, native copy.
fn contiguous_copy<'py>(a: &Bound<'py, PyAny>, dtype: Dtype) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = a.py();
    let kwargs = [("dtype", dtype.descr(py).into_any()), ("order", "C".into_pyobject(py)?.into_any())];
    let copy = numpy_module(py)?.call_method("array", (a,), Some(&pyo3::types::IntoPyDict::into_py_dict(kwargs, py)?))?;
    Ok(copy.cast_into::<PyUntypedArray>()?)
}

/// Copies a scratch array back into the caller's array (`np.copyto`).
pub(crate) fn copy_back(original: &Bound<'_, PyAny>, scratch: &Bound<'_, PyUntypedArray>) -> PyResult<()> {
    numpy_module(original.py())?.call_method1("copyto", (original, scratch))?;
    Ok(())
}

/// A new C-contiguous array of zeros.
pub(crate) fn zeros<'py>(py: Python<'py>, shape: &[usize], dtype: Dtype) -> PyResult<Bound<'py, PyUntypedArray>> {
    let mut dims: Vec<npyffi::npy_intp> = shape.iter().map(|&d| d as npyffi::npy_intp).collect();
    // SAFETY: `dims` holds `shape.len()` dimensions; PyArray_Zeros steals the descr
    // reference `into_dtype_ptr` hands over and returns a new reference or NULL.
    let ptr = unsafe {
        PY_ARRAY_API.PyArray_Zeros(py, dims.len() as c_int, dims.as_mut_ptr(), dtype.descr(py).into_dtype_ptr(), 0)
    };
    if ptr.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a non-NULL result of PyArray_Zeros is a new reference to an ndarray.
    Ok(unsafe { Bound::from_owned_ptr(py, ptr).cast_into_unchecked() })
}

/// A scalar state value kept as a 0-d float64 array (as torch keeps `step` as a
/// 0-d tensor), read and written in place.
pub(crate) fn scalar_slot(value: &Bound<'_, PyAny>) -> Option<*mut f64> {
    let a = value.cast::<PyUntypedArray>().ok()?;
    let l = layout(a);
    let usable = a.ndim() == 0 && native_float(a) == Some(Dtype::F64) && a.is_aligned() && l.flags & NPY_ARRAY_WRITEABLE != 0;
    usable.then_some(l.data.cast())
}

/// A new 0-d float64 array holding `value`.
pub(crate) fn scalar_array(py: Python<'_>, value: f64) -> PyResult<Bound<'_, PyUntypedArray>> {
    let a = zeros(py, &[], Dtype::F64)?;
    // SAFETY: a fresh 0-d float64 array owns 8 aligned bytes nobody else sees yet.
    unsafe { *layout(&a).data.cast::<f64>() = value };
    Ok(a)
}

pub(crate) fn type_name(o: &Bound<'_, PyAny>) -> String {
    o.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string())
}

/// The byte range an array's elements lie in.
fn extent(a: &Bound<'_, PyUntypedArray>) -> Option<(usize, usize)> {
    if a.is_empty() {
        return None;
    }
    let base = layout(a).data as isize;
    let (mut lo, mut hi) = (base, base);
    for (&dim, &stride) in a.shape().iter().zip(a.strides()) {
        let span = (dim as isize - 1) * stride;
        if span < 0 {
            lo += span;
        } else {
            hi += span;
        }
    }
    Some((lo as usize, hi as usize + a.dtype().itemsize()))
}

struct Span {
    lo: usize,
    hi: usize,
    write: bool,
    /// Whether the range is exactly the array's memory (contiguous).
    dense: bool,
    who: usize,
}

/// The memory of every array a step touches, to refuse aliasing before any write.
#[derive(Default)]
pub(crate) struct Overlaps<'py> {
    spans: Vec<Span>,
    arrays: Vec<Bound<'py, PyUntypedArray>>,
}

impl<'py> Overlaps<'py> {
    /// Records an array the step reads (`write == false`) or writes; `who` is the
    /// caller's label for it.
    pub(crate) fn add(&mut self, a: &Bound<'py, PyAny>, write: bool, who: usize) {
        let Ok(a) = a.cast::<PyUntypedArray>() else { return };
        if let Some((lo, hi)) = extent(a) {
            let dense = a.is_c_contiguous() || a.is_fortran_contiguous();
            self.spans.push(Span { lo, hi, write, dense, who });
            self.arrays.push(a.clone());
        }
    }

    /// The labels of two arrays that share memory where one of them is written.
    pub(crate) fn find(&mut self) -> PyResult<Option<(usize, usize)>> {
        let mut order: Vec<usize> = (0..self.spans.len()).collect();
        order.sort_unstable_by_key(|&i| self.spans[i].lo);
        let mut active: Vec<usize> = Vec::new();
        for &i in &order {
            let s = &self.spans[i];
            active.retain(|&j| self.spans[j].hi > s.lo);
            for &j in &active {
                let t = &self.spans[j];
                if (s.write || t.write) && self.really_shared(i, j)? {
                    return Ok(Some((t.who, s.who)));
                }
            }
            active.push(i);
        }
        Ok(None)
    }

    /// Overlapping ranges of two contiguous arrays share memory; strided arrays may
    /// interleave without sharing, which `np.shares_memory` decides exactly.
    fn really_shared(&self, i: usize, j: usize) -> PyResult<bool> {
        if self.spans[i].dense && self.spans[j].dense {
            return Ok(true);
        }
        let a = &self.arrays[i];
        numpy_module(a.py())?.call_method1("shares_memory", (a, &self.arrays[j]))?.extract()
    }
}
