//! NAdam, as `torch.optim.NAdam`.
//!
//! Update rule, per element, with `t` the step count after this step (torch's
//! `_single_tensor_nadam`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! if weight_decay ≠ 0:  θ ← θ·(1 − lr·weight_decay)   if decoupled_weight_decay
//!                       g ← g + weight_decay·θ          otherwise
//! μₜ ← β₁·(1 − ½·0.96^(t·momentum_decay)),  μₜ₊₁ likewise with t + 1
//! Π ← Π·μₜ                                  (mu_product)
//! m ← lerp(m, g, 1 − β₁)
//! v ← β₂·v + (1 − β₂)·g²
//! d ← √(v / (1 − β₂ᵗ)) + ε
//! θ ← θ − lr·(1 − μₜ)/(1 − Π) · g / d
//! θ ← θ − lr·μₜ₊₁/(1 − Π·μₜ₊₁) · m / d
//! ```
//!
//! State: scalars `step` and `mu_product` (Π, starting at 1); buffers `exp_avg` (m)
//! and `exp_avg_sq` (v).

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check_at_least_zero, check_betas, simd_targets, with_const_bool, with_decay, Decay, Moments};
use crate::{HyperError, Validate};

/// The hyperparameters of NAdam, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NadamHyper {
    /// Learning rate (torch's `lr`).
    pub lr: f64,
    /// Coefficients of the running averages of the gradient and of its square (torch's `betas`).
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability (torch's `eps`).
    pub eps: f64,
    /// Weight decay (0 for none): added to the gradient as `weight_decay·θ`, or decoupled.
    pub weight_decay: f64,
    /// Momentum decay `ψ` of the momentum schedule `μₜ = β₁·(1 − ½·0.96^(t·ψ))`.
    pub momentum_decay: f64,
    /// Decoupled decay (NAdamW): `θ ← θ·(1 − lr·weight_decay)` instead of adding it to
    /// the gradient.
    pub decoupled_weight_decay: bool,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for NadamHyper {
    fn default() -> Self {
        NadamHyper {
            lr: 2e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

/// The constants of one NAdam step, computed in `f64` as torch computes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NadamStep {
    /// `1 − β₂ᵗ`.
    pub bias_correction2: f64,
    /// `−lr·(1 − μₜ)/(1 − Π)`
    pub grad_step: f64,
    /// `−lr·μₜ₊₁/(1 − Π·μₜ₊₁)`
    pub exp_avg_step: f64,
}

#[derive(Clone, Copy)]
struct Coef<T> {
    moments: Moments<T>,
    bias_correction2: T,
    eps: T,
    grad_step: T,
    exp_avg_step: T,
}

simd_targets! {
/// The update of every element of each tensor (buffers: exp_avg, exp_avg_sq), set up
/// once for all of them.
fn nadam_tensors<T: Element, const MAXIMIZE: bool, const DECAY: u8>(
    c: &Coef<T>,
    tensors: &mut [TensorSlices<'_, T>],
) {
    for t in tensors {
        let (param, grad, exp_avg, exp_avg_sq) = t.with_two_buffers();
        let n = param.len();
        for i in 0..n {
            let (mut p, g, m, v) =
                c.moments.step::<MAXIMIZE, DECAY>(param[i], grad[i], &mut exp_avg[i], &mut exp_avg_sq[i]);
            let denom = (v / c.bias_correction2).sqrt() + c.eps;
            p = p + c.grad_step * g / denom;
            param[i] = p + c.exp_avg_step * m / denom;
        }
    }
}
}

impl Validate for NadamHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        check_at_least_zero("eps", self.eps, "epsilon value")?;
        check_betas(self.betas)?;
        check_at_least_zero("weight_decay", self.weight_decay, "weight_decay value")?;
        check_at_least_zero("momentum_decay", self.momentum_decay, "momentum_decay value")
    }
}

impl Elementwise for NadamHyper {
    /// `step`, `mu_product`
    const SCALARS: usize = 2;
    type Step = NadamStep;

    /// `exp_avg`, `exp_avg_sq`
    fn buffers(&self) -> usize {
        2
    }

    fn begin(&self, scalars: &mut [f64], fresh: bool) -> NadamStep {
        if fresh {
            scalars[1] = 1.0; // torch.ones(()) for mu_product
        }
        scalars[0] += 1.0;
        let step = scalars[0];
        let beta1 = self.betas.0;
        let mu = beta1 * (1.0 - 0.5 * 0.96f64.powf(step * self.momentum_decay));
        let mu_next = beta1 * (1.0 - 0.5 * 0.96f64.powf((step + 1.0) * self.momentum_decay));
        scalars[1] *= mu;
        let mu_product = scalars[1];
        let mu_product_next = mu_product * mu_next;
        NadamStep {
            bias_correction2: 1.0 - self.betas.1.powf(step),
            grad_step: -self.lr * (1.0 - mu) / (1.0 - mu_product),
            exp_avg_step: (-self.lr * mu_next) / (1.0 - mu_product_next),
        }
    }

    fn update<T: Element>(&self, step: &NadamStep, mut t: TensorSlices<'_, T>) {
        self.update_all(step, std::slice::from_mut(&mut t));
    }

    fn update_all<T: Element>(&self, s: &NadamStep, tensors: &mut [TensorSlices<'_, T>]) {
        let c = Coef {
            moments: Moments::new(self.lr, self.weight_decay, self.betas),
            bias_correction2: T::of(s.bias_correction2),
            eps: T::of(self.eps),
            grad_step: T::of(s.grad_step),
            exp_avg_step: T::of(s.exp_avg_step),
        };
        with_const_bool!(self.maximize, MAX => with_decay!(Decay::of(self.weight_decay, self.decoupled_weight_decay), D =>
            nadam_tensors::<T, MAX, D>(&c, tensors)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_all, ops};

    /// torch's `_single_tensor_nadam`, one whole-tensor operation at a time.
    fn reference<T: Element>(
        h: &NadamHyper,
        scalars: &mut [f64],
        fresh: bool,
        p: &mut [T],
        g: &[T],
        bufs: &mut [Vec<T>],
    ) {
        if fresh {
            scalars[1] = 1.0;
        }
        let mut grad = ops::signed(g, h.maximize);
        scalars[0] += 1.0;
        let step = scalars[0];
        let (beta1, beta2) = h.betas;
        let bias_correction2 = 1.0 - beta2.powf(step);
        if h.weight_decay != 0.0 {
            if h.decoupled_weight_decay {
                ops::mul(p, 1.0 - h.lr * h.weight_decay);
            } else {
                ops::add_scaled(&mut grad, p, h.weight_decay);
            }
        }
        let mu = beta1 * (1.0 - 0.5 * 0.96f64.powf(step * h.momentum_decay));
        let mu_next = beta1 * (1.0 - 0.5 * 0.96f64.powf((step + 1.0) * h.momentum_decay));
        scalars[1] *= mu;
        let (m, v) = bufs.split_at_mut(1);
        let (m, v) = (&mut m[0], &mut v[0]);
        ops::lerp(m, &grad, 1.0 - beta1);
        ops::mul(v, beta2);
        ops::addcmul(v, &grad, &grad, 1.0 - beta2);
        let mut denom = v.clone();
        ops::div(&mut denom, bias_correction2); // exp_avg_sq.div(bias_correction2).sqrt()
        let mut denom = ops::sqrt(&denom);
        let mu_product_next = scalars[1] * mu_next;
        ops::add(&mut denom, h.eps);
        ops::addcdiv(p, &grad, &denom, -h.lr * (1.0 - mu) / (1.0 - scalars[1]));
        ops::addcdiv(p, m, &denom, (-h.lr * mu_next) / (1.0 - mu_product_next));
    }

    #[test]
    fn matches_the_scalar_reference() {
        let mut configs = vec![];
        for maximize in [false, true] {
            for (weight_decay, decoupled_weight_decay) in [(0.0, false), (0.1, false), (0.1, true)] {
                configs.push(NadamHyper { weight_decay, decoupled_weight_decay, maximize, ..Default::default() });
            }
        }
        check_all(&configs, reference, reference);
    }

    #[test]
    fn validates_like_torch() {
        let bad = NadamHyper { momentum_decay: -0.2, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid momentum_decay value: -0.2");
    }
}
