//! The bandwidth probe the benchmark divides optimizer times by (see
//! `ferroptim::Stream`): the same traffic as a step over the same arrays, with none
//! of a step's bookkeeping.

use ferroptim::{Batch, Stream, MAX_BUFFERS};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{buffer_operand, grad_operand, param_operand, Dtype, Operand};
use crate::step::slices;
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
    let kernel = Stream { buffers: nb };
    let (mut b32, mut b64) = (Batch::<Stream, f32>::new(), Batch::<Stream, f64>::new());
    for (dtype, arrays) in &ops {
        let len = arrays[0].array.len();
        let ptrs: Vec<*mut u8> = arrays.iter().map(|o| o.ptr).collect();
        // SAFETY: each pointer addresses `len` elements of the checked dtype in a
        // C-contiguous array kept alive by `ops`; the caller passes distinct arrays
        // (this is a benchmark probe, not a public API).
        unsafe {
            match dtype {
                Dtype::F32 => b32.push(&kernel, &mut [], false, slices::<f32>(len, ptrs[0], ptrs[1], &ptrs[2..])),
                Dtype::F64 => b64.push(&kernel, &mut [], false, slices::<f64>(len, ptrs[0], ptrs[1], &ptrs[2..])),
            }
        }
    }
    py.detach(move || {
        b32.run();
        b64.run();
    });
    Ok(())
}
