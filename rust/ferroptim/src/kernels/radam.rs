//! RAdam, as `torch.optim.RAdam`.
//!
//! Update rule, per element, with `t` the step count after this step (torch's
//! `_single_tensor_radam`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! if weight_decay ≠ 0:  θ ← θ·(1 − lr·weight_decay)   if decoupled_weight_decay
//!                       g ← g + weight_decay·θ          otherwise
//! m ← lerp(m, g, 1 − β₁)
//! v ← β₂·v + (1 − β₂)·g²
//! ρ∞ ← 2/(1 − β₂) − 1;   ρₜ ← ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
//! if ρₜ > 5 (the variance is tractable: rectify):
//!     r ← √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))
//!     θ ← θ − m/(1 − β₁ᵗ) · lr · √(1 − β₂ᵗ)/(√v + ε) · r
//! else:
//!     θ ← θ − m/(1 − β₁ᵗ) · lr
//! ```
//!
//! State: scalar `step`; buffers `exp_avg` (m) and `exp_avg_sq` (v).

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check_at_least_zero, check_betas, simd_targets, with_const_bool, with_decay, Decay, Moments};
use crate::{HyperError, Validate};

/// The hyperparameters of RAdam, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RadamHyper {
    /// Learning rate (torch's `lr`).
    pub lr: f64,
    /// Coefficients of the running averages of the gradient and of its square (torch's `betas`).
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability (torch's `eps`).
    pub eps: f64,
    /// Weight decay (0 for none): added to the gradient as `weight_decay·θ`, or decoupled.
    pub weight_decay: f64,
    /// Decoupled decay: `θ ← θ·(1 − lr·weight_decay)` instead of adding it to the gradient.
    pub decoupled_weight_decay: bool,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for RadamHyper {
    fn default() -> Self {
        RadamHyper {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

/// The constants of one RAdam step, computed in `f64` as torch computes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RadamStep {
    /// `1 − β₁ᵗ`.
    pub bias_correction1: f64,
    /// `√(1 − β₂ᵗ)`.
    pub bias_correction2_sqrt: f64,
    /// The rectification term `r`, when `ρₜ > 5`.
    pub rect: Option<f64>,
}

impl RadamHyper {
    /// The constants of step `t` (the count after this step).
    pub fn at_step(&self, step: f64) -> RadamStep {
        let (beta1, beta2) = self.betas;
        let bias_correction1 = 1.0 - beta1.powf(step);
        let bias_correction2 = 1.0 - beta2.powf(step);
        let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * step * beta2.powf(step) / bias_correction2;
        let rect = (rho_t > 5.0).then(|| {
            (((rho_t - 4.0) * (rho_t - 2.0) * rho_inf) / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).powf(0.5)
        });
        RadamStep { bias_correction1, bias_correction2_sqrt: bias_correction2.powf(0.5), rect }
    }
}

#[derive(Clone, Copy)]
struct Coef<T> {
    moments: Moments<T>,
    bias_correction1: T,
    bias_correction2_sqrt: T,
    eps: T,
    lr: T,
    rect: T,
}

simd_targets! {
/// The update of every element of each tensor (buffers: exp_avg, exp_avg_sq), set up
/// once for all of them.
fn radam_tensors<T: Element, const MAXIMIZE: bool, const DECAY: u8, const RECTIFY: bool>(
    c: &Coef<T>,
    tensors: &mut [TensorSlices<'_, T>],
) {
    for t in tensors {
        let (param, grad, exp_avg, exp_avg_sq) = t.with_two_buffers();
        let n = param.len();
        for i in 0..n {
            let (p, _, m, v) =
                c.moments.step::<MAXIMIZE, DECAY>(param[i], grad[i], &mut exp_avg[i], &mut exp_avg_sq[i]);
            let update = m / c.bias_correction1 * c.lr;
            param[i] = if RECTIFY {
                // torch's `scalar / tensor` is `tensor.reciprocal() * scalar`
                let adaptive = T::one() / (v.sqrt() + c.eps) * c.bias_correction2_sqrt;
                p - update * adaptive * c.rect
            } else {
                p - update
            };
        }
    }
}
}

impl Validate for RadamHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        check_at_least_zero("eps", self.eps, "epsilon value")?;
        check_betas(self.betas)?;
        check_at_least_zero("weight_decay", self.weight_decay, "weight_decay value")
    }
}

impl Elementwise for RadamHyper {
    /// `step`
    const SCALARS: usize = 1;
    type Step = RadamStep;

    /// `exp_avg`, `exp_avg_sq`
    fn buffers(&self) -> usize {
        2
    }

    fn begin(&self, scalars: &mut [f64], _fresh: bool) -> RadamStep {
        scalars[0] += 1.0;
        self.at_step(scalars[0])
    }

    fn update<T: Element>(&self, step: &RadamStep, mut t: TensorSlices<'_, T>) {
        self.update_all(step, std::slice::from_mut(&mut t));
    }

    fn update_all<T: Element>(&self, s: &RadamStep, tensors: &mut [TensorSlices<'_, T>]) {
        let c = Coef {
            moments: Moments::new(self.lr, self.weight_decay, self.betas),
            bias_correction1: T::of(s.bias_correction1),
            bias_correction2_sqrt: T::of(s.bias_correction2_sqrt),
            eps: T::of(self.eps),
            lr: T::of(self.lr),
            rect: T::of(s.rect.unwrap_or(1.0)),
        };
        with_const_bool!(self.maximize, MAX => with_const_bool!(s.rect.is_some(), RECT =>
            with_decay!(Decay::of(self.weight_decay, self.decoupled_weight_decay), D =>
                radam_tensors::<T, MAX, D, RECT>(&c, tensors))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_all, ops};

    /// torch's `_single_tensor_radam`, one whole-tensor operation at a time.
    fn reference<T: Element>(h: &RadamHyper, scalars: &mut [f64], _: bool, p: &mut [T], g: &[T], bufs: &mut [Vec<T>]) {
        let mut grad = ops::signed(g, h.maximize);
        scalars[0] += 1.0;
        let step = scalars[0];
        if h.weight_decay != 0.0 {
            if h.decoupled_weight_decay {
                ops::mul(p, 1.0 - h.lr * h.weight_decay);
            } else {
                ops::add_scaled(&mut grad, p, h.weight_decay);
            }
        }
        let (beta1, beta2) = h.betas;
        let (m, v) = bufs.split_at_mut(1);
        let (m, v) = (&mut m[0], &mut v[0]);
        ops::lerp(m, &grad, 1.0 - beta1);
        ops::mul(v, beta2);
        ops::addcmul(v, &grad, &grad, 1.0 - beta2);
        let bias_correction1 = 1.0 - beta1.powf(step);
        let bias_correction2 = 1.0 - beta2.powf(step);
        let mut update = m.clone();
        ops::div(&mut update, bias_correction1); // exp_avg / bias_correction1
        ops::mul(&mut update, h.lr);
        let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * step * beta2.powf(step) / bias_correction2;
        if rho_t > 5.0 {
            let rect =
                (((rho_t - 4.0) * (rho_t - 2.0) * rho_inf) / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).powf(0.5);
            let mut sq = ops::sqrt(v);
            ops::add(&mut sq, h.eps);
            let mut adaptive: Vec<T> = sq.iter().map(|&x| T::one() / x).collect(); // reciprocal()
            ops::mul(&mut adaptive, bias_correction2.powf(0.5));
            ops::mul_elementwise(&mut update, &adaptive);
            ops::mul(&mut update, rect);
        }
        ops::add_scaled(p, &update, -1.0);
    }

    #[test]
    fn matches_the_scalar_reference() {
        let mut configs = vec![];
        for maximize in [false, true] {
            for (weight_decay, decoupled_weight_decay) in [(0.0, false), (0.1, false), (0.1, true)] {
                configs.push(RadamHyper { weight_decay, decoupled_weight_decay, maximize, ..Default::default() });
            }
        }
        check_all(&configs, reference, reference);
    }

    #[test]
    fn switches_to_the_rectified_update_when_the_variance_is_tractable() {
        let h = RadamHyper::default();
        assert!(h.at_step(5.0).rect.is_none());
        assert!(h.at_step(6.0).rect.is_some());
    }
}
