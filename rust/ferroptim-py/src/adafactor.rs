//! `_core.adafactor_step`: one Adafactor step over one param group.

use ferroptim::{adafactor, AdafactorHyper, AdafactorTensor, Element, Variance};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::type_name;
use crate::hyper::Group;
use crate::tensorwise::{gather, hypers, run_by_group, slice, zip_given, Tensor};

fn hyper(g: &Group<'_, '_>) -> PyResult<AdafactorHyper> {
    let eps = g.item("eps")?;
    let bad = || {
        PyTypeError::new_err(format!(
            "param_groups[{}]['eps'] must be a pair (None or a real number, a real number), got {}",
            g.index,
            type_name(&eps)
        ))
    };
    let pair: (Option<f64>, f64) = eps.extract().map_err(|_| bad())?;
    Ok(AdafactorHyper {
        lr: g.f64("lr")?,
        beta2_decay: g.f64("beta2_decay")?,
        eps: pair,
        d: g.f64("d")?,
        weight_decay: g.f64("weight_decay")?,
        maximize: g.flag("maximize")?,
    })
}

/// The shape of a state array: `row_var` drops the last dim to 1, `col_var` the
/// second to last; `variance` is shaped like the parameter.
fn state_shape(shape: &[usize], key: &str) -> Vec<usize> {
    let mut s = shape.to_vec();
    let n = s.len();
    match key {
        "row_var" if n >= 2 => s[n - 1] = 1,
        "col_var" if n >= 2 => s[n - 2] = 1,
        _ => {}
    }
    s
}

/// The kernel's view of one checked tensor.
///
/// # Safety
/// `t` comes from `gather` and its arrays are still held; see `tensorwise::slice`.
unsafe fn view<'a, T: Element>(t: &'a mut Tensor) -> AdafactorTensor<'a, T> {
    // SAFETY: the caller's contract.
    unsafe {
        let variance = match t.state[..] {
            [(r, nr), (c, nc)] => {
                let n = t.shape.len();
                Variance::Factored {
                    row_var: slice(r, nr),
                    col_var: slice(c, nc),
                    rows: t.shape[n - 2],
                    cols: t.shape[n - 1],
                }
            }
            [(v, nv)] => Variance::Full(slice(v, nv)),
            _ => unreachable!("checked by adafactor_step"),
        };
        AdafactorTensor {
            step: &mut *t.step.expect("Adafactor keeps a step"),
            param: slice(t.param, t.len),
            grad: slice(t.grad, t.len),
            variance,
        }
    }
}

/// One Adafactor step over every param group; the lists hold, per parameter with a
/// gradient, its (group, index in the group), `.data`, `.grad`, its state arrays
/// (`row_var`, `col_var` for ≥ 2 dims, else `variance`) and `step`.
#[pyfunction]
pub(crate) fn adafactor_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    steps: Vec<Bound<'py, PyAny>>,
) -> PyResult<()> {
    let hypers = hypers(&groups, hyper)?;
    let given = zip_given(indices, data, grads, states, Some(steps))?;
    for item in &given {
        let keys: Vec<&str> = item.state.iter().map(|(k, _)| k.as_str()).collect();
        if keys != ["row_var", "col_var"] && keys != ["variance"] {
            return Err(PyTypeError::new_err(format!(
                "Adafactor keeps row_var and col_var, or variance; got {keys:?}"
            )));
        }
    }
    let mut gathered = gather(py, &groups, given, &|_, s| s.to_vec(), &state_shape)?;
    for t in &gathered.tensors {
        let (ndim, kept) = (t.shape.len(), t.state.len());
        if (ndim >= 2) != (kept == 2) {
            return Err(PyValueError::new_err(format!(
                "a {ndim}-d parameter's Adafactor state is {}",
                if ndim >= 2 { "row_var and col_var" } else { "variance" }
            )));
        }
    }
    run_by_group(py, &hypers, &mut gathered, |h, t32, t64| {
        // SAFETY: every tensor was checked by `gather`; `gathered.held` keeps its
        // arrays alive until the kernels are done.
        unsafe {
            adafactor::<f32>(h, t32.into_iter().map(|t| view(t)).collect());
            adafactor::<f64>(h, t64.into_iter().map(|t| view(t)).collect());
        }
    })
}
