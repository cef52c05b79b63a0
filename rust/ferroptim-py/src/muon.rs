//! `_core.muon_step`: one Muon step over every param group, through the step of
//! the elementwise optimizers (`step`): its checks and its verified plan.

use ferroptim::{muon, AdjustLr, Element, MuonHyper, MuonTensor, Rule};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::arrays::{type_name, Dtype};
use crate::beyond::step_function;
use crate::held::{read_slice, slice};
use crate::hyper::{FromGroup, Group};
use crate::step::{Entry, Init, Layout, Slot};

impl FromGroup for MuonHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
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
        let adjust_lr_fn = adjust_lr_fn(&g.item("adjust_lr_fn")?)?.map_err(PyValueError::new_err)?;
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
}

/// torch's `adjust_lr_fn`: None or one of its names; Err: torch's message.
pub(crate) fn adjust_lr_fn(v: &Bound<'_, PyAny>) -> PyResult<Result<AdjustLr, String>> {
    if v.is_none() {
        return Ok(Ok(AdjustLr::Original));
    }
    Ok(match v.extract::<String>().ok().as_deref() {
        Some("original") => Ok(AdjustLr::Original),
        Some("match_rms_adamw") => Ok(AdjustLr::MatchRmsAdamw),
        Some("spectral_unclamped") => Ok(AdjustLr::SpectralUnclamped),
        _ => Err(format!("Adjust learning rate function {} is not supported", v.str()?)),
    })
}

/// The state of a parameter is `momentum_buffer`, shaped like it, starting at zero;
/// only matrices have it (anything else is refused, as torch does).
impl Layout for MuonHyper {
    const SCALARS: usize = 0;
    fn buffers(&self) -> usize {
        1
    }
    fn slot(
        &self,
        _k: usize,
        shape: &[usize],
        dtype: Dtype,
        _found: Option<&Bound<'_, PyAny>>,
        _first: Option<&Bound<'_, PyAny>>,
        _what: &dyn Fn() -> String,
    ) -> PyResult<Option<Slot>> {
        // the core crate's rule refuses what torch refuses
        Rule::check_param(self, 0, shape).map_err(PyValueError::new_err)?;
        Ok(Some(Slot { shape: shape.to_vec(), elem: dtype.into(), init: Init::Zeros, write: true }))
    }
}

/// The kernel's view of one entry.
///
/// # Safety
/// The entry comes from `step::step` (see `beyond::slices`) and holds `T`.
unsafe fn view<T: Element>(e: &mut Entry) -> MuonTensor<'_, T> {
    let [rows, cols] = e.matrix;
    // SAFETY: the caller's contract.
    unsafe {
        MuonTensor {
            param: slice(e.param, e.len),
            grad: read_slice(e.grad, e.len),
            momentum_buffer: slice(e.buffers[0], e.lens[0]),
            rows,
            cols,
        }
    }
}

step_function! {
    /// `_core.muon_step(state, param_groups, scalar_keys, buffer_keys, grads=None,
    /// plan=None)`: one Muon step over every param group (see `step`); state `() +
    /// (momentum_buffer,)`.
    muon_step () |call| {
        call.each_bucket(|h: &MuonHyper, b| {
            let tensors = b.entries.iter_mut().map(|e| &mut **e);
            // SAFETY: entries gathered and checked by `step::step`, of the bucket's dtype.
            unsafe {
                match b.dtype {
                    Dtype::F32 => muon::<f32>(h, tensors.map(|e| view(e)).collect()),
                    Dtype::F64 => muon::<f64>(h, tensors.map(|e| view(e)).collect()),
                }
            }
        })?;
        Ok(())
    }
}
