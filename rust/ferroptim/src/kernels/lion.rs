//! Lion ("Symbolic Discovery of Optimization Algorithms", Chen et al. 2023,
//! arXiv:2302.06675), as `timm.optim.Lion` (its single-tensor path, which timm takes on CPU).
//!
//! Update rule, per element:
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! θ ← θ·(1 − s·weight_decay)      s = lr, or lr²/max_lr with corrected_weight_decay
//! u ← sign(lerp(m, g, 1 − β₁))
//! if caution: u ← u·[u·g > 0] / max(mean([u·g > 0]), 1e-3)    (per tensor)
//! θ ← θ − lr·u
//! m ← lerp(m, g, 1 − β₂)
//! ```
//!
//! State: `exp_avg` (m), slot 0. Weight decay is always applied as a product (by 1
//! when it is 0), as timm does.

use crate::element::{lerp, Element, Lerp};
use crate::exec::TensorSlices;
use crate::kernels::passes::{agrees, caution_scale, lane_sums, over_chunks, sign, total};
use crate::kernels::{check_arg, check_betas, check_max_lr, not_below, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of Lion (timm's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LionHyper {
    /// Learning rate.
    pub lr: f64,
    /// (β₁, β₂): β₁ mixes the momentum and the gradient for the sign, β₂ updates the momentum.
    pub betas: (f64, f64),
    /// Decoupled weight decay: `θ ← θ·(1 − s·weight_decay)`, `s` being lr (or lr²/max_lr).
    pub weight_decay: f64,
    /// The "Cautious Optimizers" mask (arXiv:2411.16085): update elements whose sign disagrees with
    /// the gradient's are zeroed, the rest rescaled.
    pub caution: bool,
    /// `Some(max_lr)`: decay scaled by lr²/max_lr (timm's `corrected_weight_decay`,
    /// `max_lr_snapshot`).
    pub max_lr: Option<f64>,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl LionHyper {
    /// `timm.optim.Lion`'s defaults.
    pub const fn timm() -> Self {
        LionHyper { lr: 1e-4, betas: (0.9, 0.99), weight_decay: 0.0, caution: false, max_lr: None, maximize: false }
    }
}

impl Default for LionHyper {
    fn default() -> Self {
        Self::timm()
    }
}

impl Validate for LionHyper {
    /// timm's checks, with its messages (`float(lr) < 0`: NaN passes).
    fn validate(&self) -> Result<(), HyperError> {
        check_arg(not_below(self.lr, 0.0), "lr", None, self.lr, || format!("Invalid learning rate: {}", self.lr))?;
        check_betas(self.betas)?;
        check_max_lr(self.max_lr)
    }
}

/// The hyperparameters rounded to the element type.
#[derive(Clone, Copy)]
struct Coef<T> {
    decay: T,
    beta1: Lerp<T>,
    beta2: Lerp<T>,
    neg_lr: T,
}

/// The decay scale of weight decay: lr, or lr²/max_lr (timm's corrected weight decay).
pub(crate) fn decay_scale(lr: f64, max_lr: Option<f64>) -> f64 {
    match max_lr {
        None => lr,
        Some(max_lr) => lr.powi(2) / max_lr,
    }
}

/// One Lion step over each tensor; state slot 0 is `exp_avg`.
///
/// # Panics
/// If a tensor's `exp_avg` is missing.
pub fn lion<T: Element>(h: &LionHyper, tensors: &mut [TensorSlices<'_, T>]) {
    for t in tensors.iter() {
        assert_eq!(t.buffers[0].len(), t.len(), "Lion needs exp_avg");
    }
    let c = Coef {
        decay: T::of(1.0 - decay_scale(h.lr, h.max_lr) * h.weight_decay),
        beta1: Lerp::new(1.0 - h.betas.0),
        beta2: Lerp::new(1.0 - h.betas.1),
        neg_lr: T::of(-h.lr),
    };
    let scales: Vec<T> = if h.caution {
        let counts =
            with_const_bool!(h.maximize, MAX => over_chunks(tensors, |_, s| count::<T, MAX>(&c, s.grad, s.buffers[0])));
        counts.iter().zip(tensors.iter()).map(|(c, t)| caution_scale(total(c)[0], t.len())).collect()
    } else {
        vec![T::one(); tensors.len()]
    };
    with_const_bool!(h.maximize, MAX => with_const_bool!(h.caution, CAU => {
        over_chunks(tensors, |i, s| {
            let [m, ..] = s.buffers;
            lion_loop::<T, MAX, CAU>(&c, scales[i], s.param, s.grad, m)
        })
    }));
}

#[inline(always)]
fn update<T: Element, const MAXIMIZE: bool>(c: &Coef<T>, m: T, grad: T) -> (T, T) {
    let g = if MAXIMIZE { -grad } else { grad };
    (sign(lerp(m, g, c.beta1)), g)
}

simd_targets! {
fn count<T: Element, const MAXIMIZE: bool>(c: &Coef<T>, grad: &[T], m: &[T]) -> [f64; 1] {
    let m = &m[..grad.len()];
    lane_sums(m.len(), |i| {
        let (u, g) = update::<T, MAXIMIZE>(c, m[i], grad[i]);
        [if agrees(u, g) { 1.0 } else { 0.0 }]
    })
}
}

simd_targets! {
fn lion_loop<T: Element, const MAXIMIZE: bool, const CAUTION: bool>(
    c: &Coef<T>,
    scale: T,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
) {
    let n = param.len();
    let (grad, m) = (&grad[..n], &mut m[..n]);
    for i in 0..n {
        let (mut u, g) = update::<T, MAXIMIZE>(c, m[i], grad[i]);
        if CAUTION {
            u = u * if agrees(u, g) { scale } else { T::zero() };
        }
        param[i] = c.neg_lr.mul_add(u, param[i] * c.decay);
        m[i] = lerp(m[i], g, c.beta2);
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_each, ops, zeros, RefTensor};

    /// timm's `_single_tensor_lion`, one tensor operation at a time.
    fn reference<T: Element>(h: &LionHyper, t: &mut RefTensor<T>, g: &[T]) {
        let grad = ops::signed(g, h.maximize);
        let (p, exp_avg) = (&mut t.param, &mut t.state[0]);
        ops::mul(p, 1.0 - decay_scale(h.lr, h.max_lr) * h.weight_decay);
        let mut update = exp_avg.clone();
        ops::lerp(&mut update, &grad, 1.0 - h.betas.0);
        ops::sign(&mut update);
        if h.caution {
            ops::caution(&mut update, &grad);
        }
        ops::add_scaled(p, &update, -h.lr);
        ops::lerp(exp_avg, &grad, 1.0 - h.betas.1);
    }

    fn configs() -> Vec<LionHyper> {
        let mut out = vec![LionHyper::timm()];
        for maximize in [false, true] {
            for caution in [false, true] {
                for max_lr in [None, Some(0.02)] {
                    out.push(LionHyper { lr: 0.01, weight_decay: 0.1, betas: (0.95, 0.3), caution, max_lr, maximize });
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_scalar_reference() {
        for h in configs() {
            check_each::<f32>(zeros(1), |t, _, _| lion(&h, t), |t, g, _| reference(&h, t, g));
            check_each::<f64>(zeros(1), |t, _, _| lion(&h, t), |t, g, _| reference(&h, t, g));
        }
    }

    #[test]
    fn validates_like_timm() {
        let bad = LionHyper { betas: (0.9, 1.0), ..LionHyper::timm() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid beta parameter at index 1: 1");
    }
}
