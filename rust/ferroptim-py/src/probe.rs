//! The bandwidth probe the benchmark divides optimizer times by (see
//! `ferroptim::Stream`): the same traffic as a step over the same arrays, with none
//! of a step's bookkeeping.

use ferroptim::{Stream, MAX_BUFFERS};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{buffer_operand, grad_operand, param_operand, Dtype, Operand, Overlaps};
use crate::step::{run_entries, Entry};
use numpy::PyUntypedArrayMethods;

/// `θ ← θ + s·g; bᵢ ← bᵢ + s·g` over `params`, `grads` and each parameter's
/// `buffers` (C-contiguous arrays of one dtype), on the kernels' thread pool; with
/// `read_only`, the buffers are only read: `θ ← θ + s·(g + Σᵢ bᵢ)`. `s` is `scale`.
#[pyfunction]
#[pyo3(signature = (params, grads, buffers, read_only = false, scale = 1.0))]
pub(crate) fn stream(
    py: Python<'_>,
    params: Vec<Bound<'_, PyAny>>,
    grads: Vec<Bound<'_, PyAny>>,
    buffers: Vec<Vec<Bound<'_, PyAny>>>,
    read_only: bool,
    scale: f64,
) -> PyResult<()> {
    if grads.len() != params.len() || buffers.len() != params.len() {
        return Err(PyValueError::new_err("params, grads and buffers differ in length"));
    }
    let nb = buffers.first().map_or(0, Vec::len);
    if nb > MAX_BUFFERS || buffers.iter().any(|b| b.len() != nb) {
        return Err(PyValueError::new_err(format!(
            "every parameter needs the same number (≤ {MAX_BUFFERS}) of buffers"
        )));
    }
    let mut ops: Vec<(Dtype, Vec<Operand<'_>>)> = Vec::with_capacity(params.len());
    for (i, ((p, g), bs)) in params.into_iter().zip(grads).zip(buffers).enumerate() {
        let what = || format!("params[{i}]");
        let (param, dtype) = param_operand(p, &what)?;
        let shape = param.array.shape().to_vec();
        let mut arrays = vec![param, grad_operand(g, &shape, dtype, &what)?];
        for b in bs {
            arrays.push(buffer_operand(b, &shape, dtype, &what)?);
        }
        ops.push((dtype, arrays));
    }
    let mut keep = Vec::new();
    let mut overlaps = Overlaps::default();
    let mut entries = Vec::with_capacity(ops.len());
    for (i, (dtype, arrays)) in ops.into_iter().enumerate() {
        let mut entry = Entry::plain(i, dtype, arrays[0].array.len(), arrays[0].ptr, arrays[1].ptr);
        for (k, op) in arrays.into_iter().enumerate() {
            if k >= 2 {
                entry.buffers[k - 2] = op.ptr;
            }
            overlaps.add(&op.array, keep.len(), k != 1, (i * 8 + k) as u32);
            keep.push(op.array.unbind());
        }
        entries.push(entry);
    }
    if let Some((a, b)) = overlaps.find(py, &keep)? {
        return Err(PyValueError::new_err(format!("arrays {a} and {b} of the probe share memory")));
    }
    // SAFETY: the arrays were checked (dtype, contiguity via the operands' copies,
    // overlap above) and `keep` holds them alive until this function returns.
    unsafe { run_entries(py, &[Stream { buffers: nb, read_only, scale }], &mut entries) };
    Ok(())
}
