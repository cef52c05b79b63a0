//! The bandwidth probe the benchmark divides optimizer times by (see
//! `ferroptim::Stream`): the same traffic as a step over the same arrays, with none
//! of a step's bookkeeping.

use ferroptim::{Batch, Stream, MAX_BUFFERS};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{buffer_operand, grad_operand, param_operand, Dtype, Operand, Overlaps};
use crate::step::{slices, KERNEL_LOCK};
use numpy::PyUntypedArrayMethods;

/// `θ ← θ + g; bᵢ ← bᵢ + g` over `params`, `grads` and each parameter's `buffers`
/// (C-contiguous arrays of one dtype), on the kernels' thread pool.
#[pyfunction]
pub(crate) fn stream(
    py: Python<'_>,
    params: Vec<Bound<'_, PyAny>>,
    grads: Vec<Bound<'_, PyAny>>,
    buffers: Vec<Vec<Bound<'_, PyAny>>>,
) -> PyResult<()> {
    if grads.len() != params.len() || buffers.len() != params.len() {
        return Err(PyValueError::new_err("params, grads and buffers differ in length"));
    }
    let nb = buffers.first().map_or(0, Vec::len);
    if nb > MAX_BUFFERS || buffers.iter().any(|b| b.len() != nb) {
        return Err(PyValueError::new_err(format!("every parameter needs the same number (≤ {MAX_BUFFERS}) of buffers")));
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
    for (i, (_, arrays)) in ops.iter().enumerate() {
        for (k, op) in arrays.iter().enumerate() {
            keep.push(op.array.clone().unbind());
            overlaps.add(&op.array, keep.len() - 1, k != 1, (i * 8 + k) as u32);
        }
    }
    if let Some((a, b)) = overlaps.find(py, &keep)? {
        return Err(PyValueError::new_err(format!("arrays {} and {} of the probe share memory", a, b)));
    }
    let kernel = Stream { buffers: nb };
    let total = |d: Dtype| ops.iter().filter(|(t, _)| *t == d).map(|(_, a)| a[0].array.len()).sum();
    let (n32, n64): (usize, usize) = (total(Dtype::F32), total(Dtype::F64));
    let ptrs: Vec<(Dtype, usize, Vec<usize>)> =
        ops.iter().map(|(d, a)| (*d, a[0].array.len(), a.iter().map(|o| o.ptr as usize).collect())).collect();
    py.detach(move || {
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut b32 = Batch::<Stream, f32>::with_size(n32);
        let mut b64 = Batch::<Stream, f64>::with_size(n64);
        for (dtype, len, p) in &ptrs {
            let p: Vec<*mut u8> = p.iter().map(|&a| a as *mut u8).collect();
            // SAFETY: each pointer addresses `len` elements of the checked dtype in a
            // C-contiguous array kept alive by `ops` (`keep`); none of the written
            // arrays overlaps another (`overlaps`) and no other kernel runs
            // (`KERNEL_LOCK`).
            unsafe {
                match dtype {
                    Dtype::F32 => b32.push(&kernel, &mut [], false, slices::<f32>(*len, p[0], p[1], &p[2..])),
                    Dtype::F64 => b64.push(&kernel, &mut [], false, slices::<f64>(*len, p[0], p[1], &p[2..])),
                }
            }
        }
        b32.run();
        b64.run();
    });
    Ok(())
}
