//! Adan ("Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
//! Models", Xie et al. 2022, arXiv:2208.06677), as `timm.optim.Adan` (its
//! single-tensor path).
//!
//! Update rule, per element, with `t` the group's step count after this step and
//! `g₋` the previous gradient (`neg_pre_grad` holds −g₋; it is −g on a parameter's
//! first step and at t = 1, so the difference starts at 0):
//!
//! ```text
//! d ← g − g₋
//! m ← lerp(m, g, 1 − β₁)
//! Δ ← β₂·Δ + (1 − β₂)·d
//! n ← β₂·d + g
//! v ← β₃·v + (1 − β₃)·n²
//! u ← lr/(1 − β₁ᵗ)·m + lr·β₂/(1 − β₂ᵗ)·Δ, each over √v/√(1 − β₃ᵗ) + ε  (m masked when caution)
//! θ ← θ·(1 − lr·wd) − u   if no_prox,   else (θ − u)/(1 + lr·wd)
//! neg_pre_grad ← −g
//! ```
//!
//! State: `exp_avg` (m), `exp_avg_sq` (v), `exp_avg_diff` (Δ), `neg_pre_grad`,
//! slots 0–3; the step count is the group's.

use crate::element::{lerp, Element, Lerp};
use crate::exec::TensorSlices;
use crate::kernels::passes::{agrees, caution_scale, lane_sums, over_chunks, total};
use crate::kernels::{check_arg, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of Adan (timm's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdanHyper {
    /// Learning rate.
    pub lr: f64,
    /// (β₁, β₂, β₃): of the gradient's average, of the gradient difference's average, of the
    /// squared term's average.
    pub betas: (f64, f64, f64),
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Weight decay, applied as `no_prox` says.
    pub weight_decay: f64,
    /// Decay as `θ·(1 − lr·wd)` before the update; otherwise the proximal form `(θ − u)/(1 +
    /// lr·wd)`.
    pub no_prox: bool,
    /// The "Cautious Optimizers" mask (arXiv:2411.16085): update elements whose sign disagrees with
    /// the gradient's are zeroed, the rest rescaled.
    pub caution: bool,
}

impl AdanHyper {
    /// `timm.optim.Adan`'s defaults.
    pub const fn timm() -> Self {
        AdanHyper { lr: 1e-3, betas: (0.98, 0.92, 0.99), eps: 1e-8, weight_decay: 0.0, no_prox: false, caution: false }
    }
}

impl Default for AdanHyper {
    fn default() -> Self {
        Self::timm()
    }
}

impl Validate for AdanHyper {
    /// timm's checks, with its messages.
    fn validate(&self) -> Result<(), HyperError> {
        check_arg(self.lr >= 0.0, "lr", None, self.lr, || format!("Invalid learning rate: {}", self.lr))?;
        check_arg(self.eps >= 0.0, "eps", None, self.eps, || format!("Invalid epsilon value: {}", self.eps))?;
        let (b0, b1, b2) = self.betas;
        for (k, b) in [b0, b1, b2].into_iter().enumerate() {
            check_arg((0.0..1.0).contains(&b), "betas", Some(k), b, || {
                format!("Invalid beta parameter at index {k}: {b}")
            })?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Coef<T> {
    beta1: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
    beta3: T,
    one_minus_beta3: T,
    bias_correction3_sqrt: T,
    eps: T,
    neg_step_size: T,
    neg_step_size_diff: T,
    decay: T,
    prox: T,
}

/// One Adan step over each tensor, `step` being the group's step count after this
/// step (1 on the first); `reset[i]`: tensor i's `neg_pre_grad` starts from −g (its
/// state was just created). timm resets every tensor's at step 1.
///
/// # Panics
/// If a tensor lacks one of its four state arrays, or `reset` is not one per tensor.
pub fn adan<T: Element>(h: &AdanHyper, step: f64, tensors: &mut [TensorSlices<'_, T>], reset: &[bool]) {
    assert_eq!(reset.len(), tensors.len(), "one reset flag per tensor");
    for t in tensors.iter() {
        assert!(t.buffers.iter().all(|s| s.len() == t.len()), "Adan needs four state arrays");
    }
    let (b1, b2, b3) = h.betas;
    let (bc1, bc2, bc3) = (1.0 - b1.powf(step), 1.0 - b2.powf(step), 1.0 - b3.powf(step));
    let c = Coef {
        beta1: Lerp::new(1.0 - b1),
        beta2: T::of(b2),
        one_minus_beta2: T::of(1.0 - b2),
        beta3: T::of(b3),
        one_minus_beta3: T::of(1.0 - b3),
        bias_correction3_sqrt: T::of(bc3.sqrt()),
        eps: T::of(h.eps),
        neg_step_size: T::of(-(h.lr / bc1)),
        neg_step_size_diff: T::of(-(h.lr * b2 / bc2)),
        decay: T::of(1.0 - h.lr * h.weight_decay),
        prox: T::of(1.0 + h.lr * h.weight_decay),
    };
    let all = step == 1.0;
    let scales: Vec<T> = if h.caution {
        let counts = over_chunks(tensors, |_, s| count(&c, s.grad, s.buffers[0]));
        counts.iter().zip(tensors.iter()).map(|(n, t)| caution_scale(total(n)[0], t.len())).collect()
    } else {
        vec![T::one(); tensors.len()]
    };
    with_const_bool!(h.no_prox, NO_PROX => with_const_bool!(h.caution, CAU => {
        over_chunks(tensors, |i, s| {
            let [m, v, diff, npg] = s.buffers;
            adan_loop::<T, NO_PROX, CAU>(&c, all || reset[i], scales[i], s.param, s.grad, m, v, diff, npg)
        })
    }));
}

simd_targets! {
fn count<T: Element>(c: &Coef<T>, grad: &[T], m: &[T]) -> [f64; 1] {
    let n = grad.len();
    let m = &m[..n];
    lane_sums(n, |i| [if agrees(lerp(m[i], grad[i], c.beta1), grad[i]) { 1.0 } else { 0.0 }])
}
}

simd_targets! {
#[allow(clippy::too_many_arguments)] // one slice per array (see `simd_targets`)
fn adan_loop<T: Element, const NO_PROX: bool, const CAUTION: bool>(
    c: &Coef<T>,
    reset: bool,
    scale: T,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    diff: &mut [T],
    npg: &mut [T],
) {
    let n = param.len();
    let grad = &grad[..n];
    let (m, v, diff, npg) = (&mut m[..n], &mut v[..n], &mut diff[..n], &mut npg[..n]);
    for i in 0..n {
        let g = grad[i];
        let prev = if reset { -g } else { npg[i] };
        let d = prev + g; // neg_grad_or_diff.add_(grad)
        let mi = lerp(m[i], g, c.beta1);
        m[i] = mi;
        let di = c.one_minus_beta2.mul_add(d, diff[i] * c.beta2);
        diff[i] = di;
        let nd = d * c.beta2 + g; // .mul_(beta2).add_(grad)
        let vi = (c.one_minus_beta3 * nd).mul_add(nd, v[i] * c.beta3);
        v[i] = vi;
        let denom = vi.sqrt() / c.bias_correction3_sqrt + c.eps;
        let mu = if CAUTION { mi * if agrees(mi, g) { scale } else { T::zero() } } else { mi };
        let mut p = param[i];
        if NO_PROX {
            p = p * c.decay;
        }
        p = p + c.neg_step_size * mu / denom;
        p = p + c.neg_step_size_diff * di / denom;
        if !NO_PROX {
            p = p / c.prox;
        }
        param[i] = p;
        npg[i] = -g; // .zero_().add_(grad, alpha=-1.0)
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_each, ops, zeros, RefTensor};

    /// timm's `Adan.step` and `_single_tensor_adan` for one tensor.
    fn reference<T: Element>(h: &AdanHyper, t: &mut RefTensor<T>, grad: &[T], step: f64) {
        let (b1, b2, b3) = h.betas;
        let p = &mut t.param;
        let [exp_avg, exp_avg_sq, exp_avg_diff, neg] = &mut t.state[..] else { unreachable!() };
        if step == 1.0 {
            *neg = grad.to_vec();
            ops::neg(neg); // state['neg_pre_grad'] = -p.grad.clone()
        }
        let (bc1, bc2, bc3) = (1.0 - b1.powf(step), 1.0 - b2.powf(step), 1.0 - b3.powf(step));
        ops::add_scaled(neg, grad, 1.0);
        ops::lerp(exp_avg, grad, 1.0 - b1);
        ops::mul(exp_avg_diff, b2);
        ops::add_scaled(exp_avg_diff, neg, 1.0 - b2);
        ops::mul(neg, b2);
        ops::add_scaled(neg, grad, 1.0);
        ops::mul(exp_avg_sq, b3);
        ops::addcmul(exp_avg_sq, neg, neg, 1.0 - b3);
        let mut denom = ops::sqrt(exp_avg_sq);
        ops::div(&mut denom, bc3.sqrt());
        ops::add(&mut denom, h.eps);
        let mut m = exp_avg.clone();
        if h.caution {
            ops::caution(&mut m, grad);
        }
        if h.no_prox {
            ops::mul(p, 1.0 - h.lr * h.weight_decay);
        }
        ops::addcdiv(p, &m, &denom, -(h.lr / bc1));
        ops::addcdiv(p, exp_avg_diff, &denom, -(h.lr * b2 / bc2));
        if !h.no_prox {
            ops::div(p, 1.0 + h.lr * h.weight_decay);
        }
        *neg = grad.to_vec();
        ops::neg(neg);
    }

    #[test]
    fn matches_the_scalar_reference() {
        for no_prox in [false, true] {
            for caution in [false, true] {
                let h = AdanHyper { lr: 0.01, weight_decay: 0.02, no_prox, caution, ..AdanHyper::timm() };
                let kernel = |t: &mut [TensorSlices<'_, _>], _: &mut [f64], step: usize| {
                    adan(&h, step as f64 + 1.0, t, &vec![false; t.len()])
                };
                check_each::<f32>(zeros(4), kernel, |t, g, step| reference(&h, t, g, step as f64 + 1.0));
                let kernel = |t: &mut [TensorSlices<'_, _>], _: &mut [f64], step: usize| {
                    adan(&h, step as f64 + 1.0, t, &vec![false; t.len()])
                };
                check_each::<f64>(zeros(4), kernel, |t, g, step| reference(&h, t, g, step as f64 + 1.0));
            }
        }
    }
}
