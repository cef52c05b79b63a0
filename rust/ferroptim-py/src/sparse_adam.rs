//! `_core.sparse_adam_step`: one SparseAdam step over every param group.

use ferroptim::{sparse_adam, Element, SparseAdamHyper, SparseAdamTensor, SparseRows, Validate};
use numpy::PyReadonlyArray1;
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::type_name;
use crate::held::{read_slice, slice};
use crate::hyper::Group;
use crate::step::param_label;
use crate::tensorwise::{gather, hypers, run_by_group, zip_given, Tensor};

pub(crate) fn hyper(g: &Group<'_, '_>) -> PyResult<SparseAdamHyper> {
    let h = SparseAdamHyper {
        lr: g.f64("lr")?,
        betas: g.pair("betas")?,
        eps: g.f64("eps")?,
        maximize: g.flag("maximize")?,
    };
    h.validate().map_err(|e| PyValueError::new_err(e.message))?;
    Ok(h)
}

/// The row indices of a `SparseGrad`, copied (the kernel sorts positions by them).
fn row_indices(grad: &Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<Vec<i64>> {
    let indices = grad.getattr("indices")?;
    let array = indices.extract::<PyReadonlyArray1<'_, i64>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{}: indices must be a 1-d numpy array of int64, got {}",
            what(),
            type_name(&indices)
        ))
    })?;
    Ok(array.as_array().iter().copied().collect())
}

/// The kernel's view of one checked tensor.
///
/// # Safety
/// `t` comes from `gather` and its arrays are still held; see `held::slice`.
unsafe fn view<'a, T: Element>(t: &'a mut Tensor, indices: &'a [i64]) -> SparseAdamTensor<'a, T> {
    let (&[(m, nm), (v, nv)], Some(step)) = (&t.state[..], t.step) else { unreachable!("checked by sparse_adam_step") };
    let values = indices.len() * (t.len.checked_div(t.shape[0]).unwrap_or(0));
    // SAFETY: the caller's contract.
    unsafe {
        SparseAdamTensor {
            step: &mut *step,
            param: slice(t.param, t.len),
            exp_avg: slice(m, nm),
            exp_avg_sq: slice(v, nv),
            rows: t.shape[0],
            grad: SparseRows { indices, values: read_slice(t.grad, values) },
        }
    }
}

/// One SparseAdam step over every param group; the lists hold, per parameter with a
/// gradient, its (group, index in the group), `.data`, `.grad` (a `SparseGrad`), its
/// state arrays (`exp_avg`, `exp_avg_sq`) and `step`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sparse_adam_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    positions: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    steps: Vec<Bound<'py, PyAny>>,
) -> PyResult<()> {
    let hypers = hypers(&groups, hyper)?;
    let mut given = zip_given(positions, data, grads, states, Some(steps))?;
    let mut indices = Vec::with_capacity(given.len());
    for item in &mut given {
        let keys: Vec<&str> = item.state.iter().map(|(k, _)| k.as_str()).collect();
        if keys != ["exp_avg", "exp_avg_sq"] {
            return Err(PyTypeError::new_err(format!("SparseAdam keeps exp_avg and exp_avg_sq; got {keys:?}")));
        }
        let (g, i) = (item.group, item.index);
        let what = || match groups.get(g) {
            Some(group) => format!("the gradient of {}", param_label(group, g, i)),
            None => format!("the gradient of param_groups[{g}]['params'][{i}]"),
        };
        indices.push(row_indices(&item.grad, &what)?);
        item.grad = item.grad.getattr("values")?;
    }
    let grad_shape = |e: usize, shape: &[usize]| {
        let mut s = shape.to_vec();
        if let Some(rows) = s.first_mut() {
            *rows = indices[e].len();
        }
        s
    };
    let mut gathered = gather(py, &groups, given, &grad_shape, &|s, _| s.to_vec())?;
    for t in &gathered.tensors {
        let what = || param_label(&groups[t.group], t.group, t.index);
        let Some(&rows) = t.shape.first() else {
            return Err(PyValueError::new_err(format!(
                "{}: SparseAdam updates rows, and a 0-d parameter has none",
                what()
            )));
        };
        if let Some(&bad) = indices[t.position].iter().find(|&&i| i < 0 || i as u64 >= rows as u64) {
            return Err(PyIndexError::new_err(format!(
                "the gradient of {}: row index {bad} is out of range for {rows} rows",
                what()
            )));
        }
    }
    let indices = &indices;
    run_by_group(py, &hypers, &mut gathered, |h, t32, t64| {
        // SAFETY: every tensor was checked by `gather`; `gathered.held` keeps its
        // arrays alive until the kernels are done. The indices were checked above,
        // so the kernel's own checks pass.
        unsafe {
            let rows32 = t32.into_iter().map(|t| {
                let at = t.position;
                view::<f32>(t, &indices[at])
            });
            sparse_adam::<f32>(h, rows32.collect()).expect("checked by sparse_adam_step");
            let rows64 = t64.into_iter().map(|t| {
                let at = t.position;
                view::<f64>(t, &indices[at])
            });
            sparse_adam::<f64>(h, rows64.collect()).expect("checked by sparse_adam_step");
        }
    })
}
