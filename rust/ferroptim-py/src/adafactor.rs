//! `_core.adafactor_step`: one Adafactor step over every param group, through the
//! step of the elementwise optimizers (`step`): its checks and its verified plan.

use ferroptim::{adafactor, AdafactorHyper, AdafactorTensor, Element, Rule, Variance};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::arrays::{type_name, Dtype};
use crate::beyond::step_function;
use crate::held::{read_slice, slice};
use crate::hyper::{FromGroup, Group};
use crate::step::{Entry, Init, Layout, Slot};

impl FromGroup for AdafactorHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
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
}

/// The state of a parameter of ≥ 2 dims is `row_var` (slot 0: the last dim
/// dropped to 1) and `col_var` (slot 1: the second to last); of a vector or scalar,
/// `variance` (slot 2), shaped like it. Each starts at zero.
impl Layout for AdafactorHyper {
    const SCALARS: usize = 1;
    fn buffers(&self) -> usize {
        3
    }
    fn slot(
        &self,
        k: usize,
        shape: &[usize],
        dtype: Dtype,
        _found: Option<&Bound<'_, PyAny>>,
        _first: Option<&Bound<'_, PyAny>>,
        _what: &dyn Fn() -> String,
    ) -> PyResult<Option<Slot>> {
        // the shapes the core crate's rule gives (`Rule::buffer_shape`)
        let Some(s) = Rule::buffer_shape(self, k, shape) else { return Ok(None) };
        Ok(Some(Slot { shape: s, elem: dtype.into(), init: Init::Zeros, write: true }))
    }
}

/// The kernel's view of one entry.
///
/// # Safety
/// The entry comes from `step::step` (see `beyond::slices`) and holds `T`.
unsafe fn view<T: Element>(e: &mut Entry) -> AdafactorTensor<'_, T> {
    // SAFETY: the caller's contract.
    unsafe {
        let variance = if e.buffers[2].is_null() {
            let [rows, cols] = e.matrix;
            Variance::Factored {
                row_var: slice(e.buffers[0], e.lens[0]),
                col_var: slice(e.buffers[1], e.lens[1]),
                rows,
                cols,
            }
        } else {
            Variance::Full(slice(e.buffers[2], e.lens[2]))
        };
        AdafactorTensor {
            param: slice(e.param, e.len),
            grad: read_slice(e.grad, e.len),
            variance,
            step: &mut e.scalars[0],
        }
    }
}

step_function! {
    /// `_core.adafactor_step(state, param_groups, scalar_keys, buffer_keys, grads=None,
    /// plan=None)`: one Adafactor step over every param group (see `step`); state
    /// `(step,) + (row_var, col_var, variance)`.
    adafactor_step () |call| {
        call.each_bucket(|h: &AdafactorHyper, b| {
            let tensors = b.entries.iter_mut().map(|e| &mut **e);
            // SAFETY: entries gathered and checked by `step::step`, of the bucket's dtype.
            unsafe {
                match b.dtype {
                    Dtype::F32 => adafactor::<f32>(h, tensors.map(|e| view(e)).collect()),
                    Dtype::F64 => adafactor::<f64>(h, tensors.map(|e| view(e)).collect()),
                }
            }
        })?;
        Ok(())
    }
}
