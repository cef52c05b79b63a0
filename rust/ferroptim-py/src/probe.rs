//! The bandwidth probe the benchmark divides optimizer times by (see
//! `ferroptim::Stream`): the same traffic as a step over the same arrays, with none
//! of a step's bookkeeping.

use ferroptim::{Stream, Touch, MAX_BUFFERS};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{buffer_operand, grad_operand, param_operand, Dtype, Operand, Overlaps};
use crate::step::{run_entries, Entry, Sizes};
use numpy::PyUntypedArrayMethods;

/// A pass's access pattern, or several passes', run in turn.
#[derive(FromPyObject)]
pub(crate) enum Access {
    One(String),
    Passes(Vec<String>),
}

/// `θ ← θ + s·g; bᵢ ← bᵢ + s·g` over `params`, `grads` and each parameter's
/// `buffers` (C-contiguous arrays of one dtype), on the kernels' thread pool; `s` is
/// `scale`. With `access` (one of `'-'`, `'r'`, `'w'` per array: θ, g, then the
/// buffers), a pass that touches them so: `a` = the sum of the arrays read only, and
/// `w ← w + s·a` for each one marked `'w'` (see `ferroptim::Stream::pattern`); with a
/// list of them, those passes one after the other, as a step of several passes
/// makes them in one call.
#[pyfunction]
#[pyo3(signature = (params, grads, buffers, access = None, scale = 1.0))]
pub(crate) fn stream(
    py: Python<'_>,
    params: Vec<Bound<'_, PyAny>>,
    grads: Vec<Bound<'_, PyAny>>,
    buffers: Vec<Vec<Bound<'_, PyAny>>>,
    access: Option<Access>,
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
    let passes = match access {
        None => vec![Stream::step(nb, scale)],
        Some(Access::One(a)) => vec![pass(&a, scale, nb)?],
        Some(Access::Passes(a)) => a.iter().map(|a| pass(a, scale, nb)).collect::<PyResult<_>>()?,
    };
    let written = |k: usize| passes.iter().any(|p| p.touch[k] == Touch::Update);
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
            overlaps.add(&op.array, keep.len(), written(k), (i * 8 + k) as u32);
            keep.push(op.array.unbind());
        }
        entries.push(entry);
    }
    if let Some((a, b)) = overlaps.find(py, &keep)? {
        return Err(PyValueError::new_err(format!("arrays {a} and {b} of the probe share memory")));
    }
    let sizes = Sizes::of(&entries);
    for kernel in passes {
        // SAFETY: the arrays were checked (dtype, contiguity via the operands' copies,
        // overlap above) and `keep` holds them alive until this function returns.
        unsafe { run_entries(py, &[kernel], &mut entries, sizes.into()) };
    }
    Ok(())
}

/// The pass `access` names, over θ, g and `buffers` buffers.
fn pass(access: &str, scale: f64, buffers: usize) -> PyResult<Stream> {
    let kernel = Stream::pattern(access, scale).map_err(|e| PyValueError::new_err(format!("access: {e}")))?;
    if kernel.buffers != buffers {
        return Err(PyValueError::new_err(format!(
            "access {access:?} names {} buffers, each parameter has {buffers}",
            kernel.buffers
        )));
    }
    Ok(kernel)
}
