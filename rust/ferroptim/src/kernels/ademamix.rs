//! AdEMAMix ("The AdEMAMix Optimizer: Better, Faster, Older", Pagliardini et al.
//! 2024, arXiv:2409.03137), as `pytorch_optimizer.AdEMAMix`.
//!
//! Update rule, per element, with `t` the group's step count after this step:
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! weight_decay: θ ← θ·(1 − wd·(1 if fixed_decay else lr)) if weight_decouple, else g ← g + wd·θ
//! m₁ ← lerp(m₁, g, 1 − β₁);  v ← β₂·v + (1 − β₂)·g²;  m₂ ← lerp(m₂, g, 1 − β₃(t))
//! θ ← θ − lr · (m₁/(1 − β₁ᵗ) + α(t)·m₂) / (√v/√(1 − β₂ᵗ) + ε)
//! ```
//!
//! With `t_alpha_beta3 = T`, `α(t) = min(t·α/T, α)` and
//! `β₃(t) = min(exp(ln β₁·ln β₃ / ((1 − t/T)·ln β₃ + (t/T)·ln β₁)), β₃)`; without, α and β₃.
//!
//! State: `exp_avg` (m₁), `exp_avg_sq` (v), `exp_avg_slow` (m₂), slots 0–2; the step
//! count is the group's.

use crate::element::{lerp, Element, Lerp};
use crate::exec::TensorSlices;
use crate::kernels::passes::over_chunks;
use crate::kernels::{check, check_arg, not_below, simd_targets, with_decay, Decay};
use crate::{HyperError, Validate};

/// The hyperparameters of AdEMAMix (pytorch-optimizer's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdemamixHyper {
    /// Learning rate.
    pub lr: f64,
    /// (β₁, β₂, β₃): of the fast average, of the squared gradient's average, of the slow average.
    pub betas: (f64, f64, f64),
    /// Weight decay (0 for none), decoupled or added to the gradient as `weight_decouple` says.
    pub weight_decay: f64,
    /// Decoupled decay `θ ← θ·(1 − wd·lr)`; otherwise `g ← g + wd·θ`.
    pub weight_decouple: bool,
    /// With `weight_decouple`: decay by `wd` alone, not `wd·lr`.
    pub fixed_decay: bool,
    /// The weight `α` of the slow average in the update.
    pub alpha: f64,
    /// `Some(T)`: warm `α` and `β₃` up over `T` steps (see the module docs); `None`: constant.
    pub t_alpha_beta3: Option<f64>,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl AdemamixHyper {
    /// `pytorch_optimizer.AdEMAMix`'s defaults.
    pub const fn pytorch_optimizer() -> Self {
        AdemamixHyper {
            lr: 1e-3,
            betas: (0.9, 0.999, 0.9999),
            weight_decay: 0.0,
            weight_decouple: false,
            fixed_decay: false,
            alpha: 5.0,
            t_alpha_beta3: None,
            eps: 1e-8,
            maximize: false,
        }
    }

    /// α(t), the weight of the slow EMA at step `t`.
    pub fn alpha_at(&self, t: f64) -> f64 {
        match self.t_alpha_beta3 {
            None => self.alpha,
            Some(tt) => (t * self.alpha / tt).min(self.alpha),
        }
    }

    /// β₃(t), the decay of the slow EMA at step `t`.
    pub fn beta3_at(&self, t: f64) -> f64 {
        let (b1, _, b3) = self.betas;
        match self.t_alpha_beta3 {
            None => b3,
            Some(tt) => {
                let (l1, l3) = (b1.ln(), b3.ln());
                (l1 * l3 / ((1.0 - t / tt) * l3 + (t / tt) * l1)).exp().min(b3)
            }
        }
    }
}

impl Default for AdemamixHyper {
    fn default() -> Self {
        Self::pytorch_optimizer()
    }
}

impl Validate for AdemamixHyper {
    /// pytorch-optimizer's checks, with its messages.
    fn validate(&self) -> Result<(), HyperError> {
        let lr = self.lr;
        check_arg(not_below(lr, 0.0), "lr", None, lr, || format!("learning rate must be positive. ({lr} > 0)"))?;
        let (b1, b2, b3) = self.betas;
        check((0.0..1.0).contains(&b1), || "beta1 must be in the range [0.0, 1.0)".into())?;
        check((0.0..1.0).contains(&b2), || "beta2 must be in the range [0.0, 1.0)".into())?;
        check((0.0..=1.0).contains(&b3), || "beta3 must be in the range [0.0, 1.0]".into())?;
        check(not_below(self.alpha, 0.0), || "alpha must be non-negative".into())?;
        check(!self.t_alpha_beta3.is_some_and(|t| t < 0.0), || "t_alpha_beta3 must be non-negative".into())?;
        check(not_below(self.weight_decay, 0.0), || "weight_decay must be non-negative".into())?;
        check(not_below(self.eps, 0.0), || "eps must be non-negative".into())
    }
}

#[derive(Clone, Copy)]
struct Coef<T> {
    decay: T,
    weight_decay: T,
    beta1: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
    beta3: Lerp<T>,
    bias_correction1: T,
    bias_correction2_sqrt: T,
    alpha: T,
    eps: T,
    neg_lr: T,
}

/// One AdEMAMix step over each tensor, `step` being the group's step count after
/// this step (1 on the first).
///
/// # Panics
/// If a tensor lacks one of its three state arrays.
pub fn ademamix<T: Element>(h: &AdemamixHyper, step: f64, tensors: &mut [TensorSlices<'_, T>]) {
    for t in tensors.iter() {
        assert!(t.buffers[..3].iter().all(|s| s.len() == t.len()), "AdEMAMix needs three state arrays");
    }
    let (b1, b2, _) = h.betas;
    let c = Coef {
        decay: T::of(1.0 - h.weight_decay * if h.fixed_decay { 1.0 } else { h.lr }),
        weight_decay: T::of(h.weight_decay),
        beta1: Lerp::new(1.0 - b1),
        beta2: T::of(b2),
        one_minus_beta2: T::of(1.0 - b2),
        beta3: Lerp::new(1.0 - h.beta3_at(step)),
        bias_correction1: T::of(1.0 - b1.powf(step)),
        bias_correction2_sqrt: T::of((1.0 - b2.powf(step)).sqrt()),
        alpha: T::of(h.alpha_at(step)),
        eps: T::of(h.eps),
        neg_lr: T::of(-h.lr),
    };
    let decay = Decay::of(h.weight_decay, h.weight_decouple);
    crate::kernels::with_const_bool!(h.maximize, MAX => with_decay!(decay, D => {
        over_chunks(tensors, |_, s| {
            let [m, v, slow, _] = s.buffers;
            ademamix_loop::<T, MAX, D>(&c, s.param, s.grad, m, v, slow)
        })
    }));
}

simd_targets! {
fn ademamix_loop<T: Element, const MAXIMIZE: bool, const DECAY: u8>(
    c: &Coef<T>,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    slow: &mut [T],
) {
    let n = param.len();
    let grad = &grad[..n];
    let (m, v, slow) = (&mut m[..n], &mut v[..n], &mut slow[..n]);
    for i in 0..n {
        let mut g = if MAXIMIZE { -grad[i] } else { grad[i] };
        let mut p = param[i];
        if DECAY == Decay::L2 as u8 {
            g = c.weight_decay.mul_add(p, g);
        } else if DECAY == Decay::Decoupled as u8 {
            p = p * c.decay;
        }
        let mi = lerp(m[i], g, c.beta1);
        m[i] = mi;
        let vi = (c.one_minus_beta2 * g).mul_add(g, v[i] * c.beta2);
        v[i] = vi;
        let si = lerp(slow[i], g, c.beta3);
        slow[i] = si;
        let denom = vi.sqrt() / c.bias_correction2_sqrt + c.eps;
        let u = c.alpha.mul_add(si, mi / c.bias_correction1);
        param[i] = p + c.neg_lr * u / denom;
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_each, ops, zeros, RefTensor};

    /// pytorch-optimizer's `AdEMAMix.step` (its foreach path, as on CPU) for one tensor.
    fn reference<T: Element>(h: &AdemamixHyper, t: &mut RefTensor<T>, g: &[T], step: f64) {
        let (b1, b2, _) = h.betas;
        let mut grad = ops::signed(g, h.maximize);
        let p = &mut t.param;
        let [exp_avg, exp_avg_sq, slow] = &mut t.state[..] else { unreachable!() };
        if h.weight_decay != 0.0 {
            if h.weight_decouple {
                ops::mul(p, 1.0 - h.weight_decay * if h.fixed_decay { 1.0 } else { h.lr });
            } else {
                ops::add_scaled(&mut grad, p, h.weight_decay);
            }
        }
        ops::lerp(exp_avg, &grad, 1.0 - b1);
        ops::mul(exp_avg_sq, b2);
        ops::addcmul(exp_avg_sq, &grad, &grad, 1.0 - b2);
        ops::lerp(slow, &grad, 1.0 - h.beta3_at(step));
        let mut denom = ops::sqrt(exp_avg_sq);
        ops::div(&mut denom, (1.0 - b2.powf(step)).sqrt());
        ops::add(&mut denom, h.eps);
        let mut update = exp_avg.clone();
        ops::div(&mut update, 1.0 - b1.powf(step));
        ops::add_scaled(&mut update, slow, h.alpha_at(step));
        ops::addcdiv(p, &update, &denom, -h.lr);
    }

    #[test]
    fn matches_the_scalar_reference() {
        let base = AdemamixHyper { lr: 0.01, ..AdemamixHyper::pytorch_optimizer() };
        let configs = [
            base,
            AdemamixHyper { t_alpha_beta3: Some(3.0), alpha: 8.0, maximize: true, ..base },
            AdemamixHyper { weight_decay: 0.1, ..base },
            AdemamixHyper { weight_decay: 0.1, weight_decouple: true, ..base },
            AdemamixHyper { weight_decay: 0.1, weight_decouple: true, fixed_decay: true, ..base },
        ];
        for h in configs {
            let kernel = |t: &mut [TensorSlices<'_, _>], _: &mut [f64], step: usize| ademamix(&h, step as f64 + 1.0, t);
            check_each::<f32>(zeros(3), kernel, |t, g, step| reference(&h, t, g, step as f64 + 1.0));
            let kernel = |t: &mut [TensorSlices<'_, _>], _: &mut [f64], step: usize| ademamix(&h, step as f64 + 1.0, t);
            check_each::<f64>(zeros(3), kernel, |t, g, step| reference(&h, t, g, step as f64 + 1.0));
        }
    }
}
