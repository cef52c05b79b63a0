//! `_core.muon_step`: one Muon step over every param group.

use ferroptim::{muon, AdjustLr, Element, MuonHyper, MuonTensor};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::type_name;
use crate::hyper::Group;
use crate::tensorwise::{gather, hypers, run_by_group, slice, zip_given, Tensor};

fn hyper(g: &Group<'_, '_>) -> PyResult<MuonHyper> {
    let coefficients = g.item("ns_coefficients")?;
    let ns_coefficients = coefficients.extract::<(f64, f64, f64)>().map_err(|_| {
        PyTypeError::new_err(format!(
            "param_groups[{}]['ns_coefficients'] must be three real numbers, got {}",
            g.index,
            type_name(&coefficients)
        ))
    })?;
    let steps = g.item("ns_steps")?;
    let ns_steps = steps.extract::<usize>().map_err(|_| {
        PyTypeError::new_err(format!("param_groups[{}]['ns_steps'] must be a non-negative int", g.index))
    })?;
    let adjust = g.item("adjust_lr_fn")?;
    let adjust_lr_fn = match adjust.extract::<Option<String>>()?.as_deref() {
        None | Some("original") => AdjustLr::Original,
        Some("match_rms_adamw") => AdjustLr::MatchRmsAdamw,
        Some("spectral_unclamped") => AdjustLr::SpectralUnclamped,
        Some(other) => {
            return Err(PyValueError::new_err(format!("Adjust learning rate function {other} is not supported")))
        }
    };
    let h = MuonHyper {
        lr: g.f64("lr")?,
        weight_decay: g.f64("weight_decay")?,
        momentum: g.f64("momentum")?,
        nesterov: g.flag("nesterov")?,
        ns_coefficients,
        eps: g.f64("eps")?,
        ns_steps,
        adjust_lr_fn,
    };
    if ns_steps >= 100 {
        return Err(PyValueError::new_err("Number of steps must be less than 100 for computational efficiency"));
    }
    Ok(h)
}

/// The kernel's view of one checked tensor.
///
/// # Safety
/// `t` comes from `gather` and its arrays are still held; see `tensorwise::slice`.
unsafe fn view<'a, T: Element>(t: &'a mut Tensor) -> MuonTensor<'a, T> {
    let (buf, n) = t.state[0];
    // SAFETY: the caller's contract.
    unsafe {
        MuonTensor {
            param: slice(t.param, t.len),
            grad: slice(t.grad, t.len),
            momentum_buffer: slice(buf, n),
            rows: t.shape[0],
            cols: t.shape[1],
        }
    }
}

/// One Muon step over every param group; the lists hold, per parameter with a
/// gradient, its (group, index in the group), `.data`, `.grad` and its state
/// (`momentum_buffer`).
#[pyfunction]
pub(crate) fn muon_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
) -> PyResult<()> {
    let hypers = hypers(&groups, hyper)?;
    let given = zip_given(indices, data, grads, states, None)?;
    if let Some(item) = given.iter().find(|i| i.state.len() != 1 || i.state[0].0 != "momentum_buffer") {
        let keys: Vec<&str> = item.state.iter().map(|(k, _)| k.as_str()).collect();
        return Err(PyTypeError::new_err(format!("Muon keeps momentum_buffer; got {keys:?}")));
    }
    let mut gathered = gather(py, &groups, given, &|_, s| s.to_vec(), &|s, _| s.to_vec())?;
    if let Some(t) = gathered.tensors.iter().find(|t| t.shape.len() != 2) {
        return Err(PyValueError::new_err(format!(
            "Muon only supports 2D parameters whereas we found a parameter with shape {:?}",
            t.shape
        )));
    }
    run_by_group(py, &hypers, &mut gathered, |h, t32, t64| {
        // SAFETY: every tensor was checked by `gather`; `gathered.held` keeps its
        // arrays alive until the kernels are done.
        unsafe {
            muon::<f32>(h, t32.into_iter().map(|t| view(t)).collect());
            muon::<f64>(h, t64.into_iter().map(|t| view(t)).collect());
        }
    })
}
