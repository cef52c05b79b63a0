//! `_core.grad_norms`, `_core.grad_scale_`, `_core.grad_clamp_`: the kernels of
//! `ferroptim.utils` (see `ferroptim::kernels::grad_norm`), one call over every
//! gradient, float32 and float64 mixed.

use ferroptim::kernels::grad_norm::{clamp, norms, scale, NormType};
use ferroptim::Element;
use numpy::PyUntypedArrayMethods;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{param_operand, read_operand, Dtype};
use crate::held::slice;
use crate::held::Held;
use crate::step::KERNEL_LOCK;

/// (dtype, pointer, length) of each array of one call, in order.
struct Items(Vec<(Dtype, usize, usize)>);

// SAFETY: the pointers point into arrays a `Held` keeps alive until the kernels are
// done, and `KERNEL_LOCK` keeps other Rust code off them while the GIL is released.
unsafe impl Send for Items {}

impl Items {
    /// The positions and slices of the arrays of one dtype.
    ///
    /// # Safety
    /// The arrays are still held and nothing else touches them meanwhile; where they
    /// are written, no two overlap (checked by `gather`).
    unsafe fn of<'a, T: Element>(&self, dtype: Dtype) -> (Vec<usize>, Vec<&'a mut [T]>) {
        let pick = self.0.iter().enumerate().filter(|(_, it)| it.0 == dtype);
        // SAFETY: the caller's contract; each pointer is the data of a held array of
        // `len` elements whose dtype is `T` (checked when it was gathered).
        pick.map(|(i, &(_, ptr, len))| (i, unsafe { slice::<T>(ptr as *mut u8, len) })).unzip()
    }
}

/// Checks every array (float32 / float64; writeable and not overlapping another when
/// `write`) and holds it.
fn gather(py: Python<'_>, arrays: Vec<Bound<'_, PyAny>>, write: bool) -> PyResult<(Held, Items)> {
    let mut held = Held::default();
    let mut items = Vec::with_capacity(arrays.len());
    for (i, a) in arrays.into_iter().enumerate() {
        let what = || format!("grads[{i}]");
        let (op, dtype) = if write { param_operand(a, &what)? } else { read_operand(a, &what)? };
        let len = op.array.len();
        let ptr = held.hold(op, write, i as u32);
        items.push((dtype, ptr as usize, len));
    }
    if write {
        if let Some((a, b)) = held.find_overlap(py)? {
            return Err(PyValueError::new_err(format!("grads[{a}] and grads[{b}] share memory")));
        }
    }
    Ok((held, Items(items)))
}

/// The `norm_type` norm of each array (±inf for the ∞-norms), in f64.
#[pyfunction]
pub(crate) fn grad_norms(py: Python<'_>, grads: Vec<Bound<'_, PyAny>>, norm_type: f64) -> PyResult<Vec<f64>> {
    let (_held, items) = gather(py, grads, false)?;
    let norm = NormType::of(norm_type);
    Ok(py.detach(move || {
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: `_held` keeps the arrays alive; the norms only read them.
        let ((p32, s32), (p64, s64)) = unsafe { (items.of::<f32>(Dtype::F32), items.of::<f64>(Dtype::F64)) };
        let r32 = norms(&s32.iter().map(|s| &**s).collect::<Vec<_>>(), norm);
        let r64 = norms(&s64.iter().map(|s| &**s).collect::<Vec<_>>(), norm);
        let mut out = vec![0.0; items.0.len()];
        for (i, v) in p32.into_iter().zip(r32).chain(p64.into_iter().zip(r64)) {
            out[i] = v;
        }
        out
    }))
}

/// Runs `f32_op` / `f64_op` over the written arrays of each dtype, then copies
/// scratch copies back.
fn in_place(
    py: Python<'_>,
    grads: Vec<Bound<'_, PyAny>>,
    op32: impl Fn(&mut [&mut [f32]]) + Send,
    op64: impl Fn(&mut [&mut [f64]]) + Send,
) -> PyResult<()> {
    let (held, items) = gather(py, grads, true)?;
    py.detach(move || {
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: `held` keeps the arrays alive; `gather` checked no two written
        // arrays overlap.
        let ((_, mut s32), (_, mut s64)) = unsafe { (items.of::<f32>(Dtype::F32), items.of::<f64>(Dtype::F64)) };
        op32(&mut s32);
        op64(&mut s64);
    });
    held.copy_back(py)
}

/// `g ← g · factor` for every array (`factor` rounded to each one's dtype).
#[pyfunction]
pub(crate) fn grad_scale_(py: Python<'_>, grads: Vec<Bound<'_, PyAny>>, factor: f64) -> PyResult<()> {
    in_place(py, grads, |s| scale(s, factor as f32), |s| scale(s, factor))
}

/// `g ← clamp(g, lo, hi)` for every array; NaN stays NaN.
#[pyfunction]
pub(crate) fn grad_clamp_(py: Python<'_>, grads: Vec<Bound<'_, PyAny>>, lo: f64, hi: f64) -> PyResult<()> {
    in_place(py, grads, |s| clamp(s, lo as f32, hi as f32), |s| clamp(s, lo, hi))
}
