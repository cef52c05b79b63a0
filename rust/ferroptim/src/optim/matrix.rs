//! torch's shape-aware rules behind [`Optimizer`]: Adafactor (a factored second
//! moment for parameters of two dims or more) and Muon (matrices only). Both read
//! each parameter's shape: give it with [`Optimizer::set_shape`] for a slice, or step
//! `ndarray` arrays (`step_ndarray`); a slice of unknown shape is a vector.
//!
//! ```
//! use ferroptim::optim::matrix::Muon;
//! use ferroptim::{MuonHyper, Optimizer};
//!
//! let mut w = vec![0.5f32; 12];
//! let mut opt: Muon<f32> = Optimizer::new(MuonHyper::default()).unwrap();
//! assert!(opt.step(&mut [&mut w], &[&[0.1; 12]]).is_err()); // a vector: refused
//! opt.set_shape(0, &[3, 4]);
//! opt.step(&mut [&mut w], &[&[0.1; 12]]).unwrap();
//! ```

use crate::element::Element;
use crate::state_dict::Value;
use crate::{adafactor, muon, AdafactorHyper, AdafactorTensor, AdjustLr, MuonHyper, MuonTensor, Variance};

use super::rule::no_group_values;
use super::state_dict::{read_entries, torch_layout, Entry, TorchLayout};
use super::{GroupStep, Optimizer, Rule};

/// torch's Adafactor over parameters of type `T`.
pub type Adafactor<T> = Optimizer<AdafactorHyper, T>;
/// torch's Muon over parameters of type `T` (matrices).
pub type Muon<T> = Optimizer<MuonHyper, T>;

impl Rule for AdafactorHyper {
    no_group_values!();
    const SCALARS: usize = 1;
    fn buffers(&self) -> usize {
        3
    }
    /// A parameter of two dims or more keeps `row_var` (slot 0: its last dim
    /// dropped to 1) and `col_var` (slot 1: its second to last); a vector or scalar
    /// keeps `variance` (slot 2), shaped like it.
    fn buffer_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
        let n = shape.len();
        let mut s = shape.to_vec();
        match k {
            0 if n >= 2 => s[n - 1] = 1,
            1 if n >= 2 => s[n - 2] = 1,
            2 if n < 2 => {}
            _ => return None,
        }
        Some(s)
    }
    /// `[..., rows, 1]` and `[..., 1, cols]` tell `[..., rows, cols]`.
    fn param_shape(&self, buffers: &[Option<Vec<usize>>], _codes: &[Option<Vec<usize>>]) -> Option<Vec<usize>> {
        match buffers {
            [Some(row), Some(col), ..] if row.len() == col.len() && row.len() >= 2 => {
                let n = row.len();
                let mut s = row.clone();
                s[n - 1] = col[n - 1];
                Some(s)
            }
            [_, _, Some(variance), ..] => Some(variance.clone()),
            _ => None,
        }
    }
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
        for g in groups {
            let tensors = g.tensors.iter_mut().map(|t| {
                let [row_var, col_var, variance, _] = &mut t.buffers;
                let variance = match *t.shape {
                    [.., rows, cols] => {
                        Variance::Factored { row_var: &mut row_var[..], col_var: &mut col_var[..], rows, cols }
                    }
                    _ => Variance::Full(&mut variance[..]),
                };
                AdafactorTensor { step: &mut t.scalars[0], param: &mut t.param[..], grad: t.grad, variance }
            });
            adafactor(g.hyper, tensors.collect());
        }
    }
}

impl Rule for MuonHyper {
    no_group_values!();
    const SCALARS: usize = 0;
    fn buffers(&self) -> usize {
        1
    }
    /// `momentum_buffer`, shaped as the parameter.
    fn buffer_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
        (k == 0).then(|| shape.to_vec())
    }
    /// torch's Muon steps matrices only.
    fn check_param(&self, _index: usize, shape: &[usize]) -> Result<(), String> {
        if shape.len() != 2 {
            return Err(format!("Muon only supports 2D parameters whereas we found a parameter with shape {shape:?}"));
        }
        Ok(())
    }
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
        for g in groups {
            let tensors = g.tensors.iter_mut().map(|t| {
                let (rows, cols) = (t.shape[0], t.shape[1]);
                let [momentum_buffer, ..] = &mut t.buffers;
                MuonTensor {
                    param: &mut t.param[..],
                    grad: t.grad,
                    momentum_buffer: &mut momentum_buffer[..],
                    rows,
                    cols,
                }
            });
            muon(g.hyper, tensors.collect());
        }
    }
}

/// Adafactor's `eps`: (ε₁ or None, ε₂).
impl Entry for (Option<f64>, f64) {
    fn to_value(&self) -> Value {
        Value::Tuple(vec![self.0.to_value(), Value::Float(self.1)])
    }
    fn from_value(v: &Value) -> Option<Self> {
        match v.items()? {
            [a, b] => Some((Option::<f64>::from_value(a)?, b.as_f64()?)),
            _ => None,
        }
    }
}

/// Muon's `adjust_lr_fn`: None (torch's default, the original rule) or its name.
impl Entry for AdjustLr {
    fn to_value(&self) -> Value {
        match self {
            AdjustLr::Original => Value::None,
            AdjustLr::MatchRmsAdamw => Value::Str("match_rms_adamw".into()),
            AdjustLr::SpectralUnclamped => Value::Str("spectral_unclamped".into()),
        }
    }
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::None => Some(AdjustLr::Original),
            Value::Str(s) => match s.as_str() {
                "original" => Some(AdjustLr::Original),
                "match_rms_adamw" => Some(AdjustLr::MatchRmsAdamw),
                "spectral_unclamped" => Some(AdjustLr::SpectralUnclamped),
                _ => None,
            },
            _ => None,
        }
    }
}

torch_layout! {
    AdafactorHyper: ["step"] ["row_var", "col_var", "variance"] { lr, beta2_decay, eps, d, weight_decay, maximize }
    MuonHyper: [] ["momentum_buffer"]
        { lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn }
}
