//! Adamax, as `torch.optim.Adamax`.
//!
//! Update rule, per element, with `t` the step count after this step (torch's
//! `_single_tensor_adamax`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! if weight_decay ≠ 0:  g ← g + weight_decay·θ
//! m ← lerp(m, g, 1 − β₁)
//! u ← max(β₂·u, |g| + ε)
//! θ ← θ − lr / (1 − β₁ᵗ) · m / u
//! ```
//!
//! State: scalar `step`; buffers `exp_avg` (m) and `exp_inf` (u).

use crate::element::{lerp, Element, Lerp};
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check_at_least_zero, check_betas, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of Adamax, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamaxHyper {
    /// Learning rate (torch's `lr`).
    pub lr: f64,
    /// Coefficients of the running average of the gradient and of the infinity norm (torch's `betas`).
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability (torch's `eps`).
    pub eps: f64,
    /// Weight decay: `weight_decay·θ` added to the gradient (torch's `weight_decay`; 0 for none).
    pub weight_decay: f64,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for AdamaxHyper {
    fn default() -> Self {
        AdamaxHyper { lr: 2e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0, maximize: false }
    }
}

#[derive(Clone, Copy)]
struct Coef<T> {
    weight_decay: T,
    beta1: Lerp<T>,
    beta2: T,
    eps: T,
    neg_clr: T,
}

simd_targets! {
/// The update of every element of each tensor (buffers: exp_avg, exp_inf), set up
/// once for all of them.
fn adamax_tensors<T: Element, const MAXIMIZE: bool, const DECAY: bool>(
    c: &Coef<T>,
    tensors: &mut [TensorSlices<'_, T>],
) {
    for t in tensors {
        let (param, grad, exp_avg, exp_inf) = t.with_two_buffers();
        let n = param.len();
        for i in 0..n {
            let mut g = if MAXIMIZE { -grad[i] } else { grad[i] };
            if DECAY {
                g = c.weight_decay.mul_add(param[i], g); // grad.add(param, alpha=wd): one fma
            }
            let m = lerp(exp_avg[i], g, c.beta1);
            exp_avg[i] = m;
            let u = (exp_inf[i] * c.beta2).nan_max(g.abs() + c.eps);
            exp_inf[i] = u;
            param[i] = param[i] + c.neg_clr * m / u;
        }
    }
}
}

impl Validate for AdamaxHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        check_at_least_zero("eps", self.eps, "epsilon value")?;
        check_betas(self.betas)?;
        check_at_least_zero("weight_decay", self.weight_decay, "weight_decay value")
    }
}

impl Elementwise for AdamaxHyper {
    /// `step`
    const SCALARS: usize = 1;
    /// `−lr / (1 − β₁ᵗ)`
    type Step = f64;

    /// `exp_avg`, `exp_inf`
    fn buffers(&self) -> usize {
        2
    }

    fn begin(&self, scalars: &mut [f64], _fresh: bool) -> f64 {
        scalars[0] += 1.0;
        -(self.lr / (1.0 - self.betas.0.powf(scalars[0])))
    }

    fn update<T: Element>(&self, step: &f64, mut t: TensorSlices<'_, T>) {
        self.update_all(step, std::slice::from_mut(&mut t));
    }

    fn update_all<T: Element>(&self, neg_clr: &f64, tensors: &mut [TensorSlices<'_, T>]) {
        let c = Coef {
            weight_decay: T::of(self.weight_decay),
            beta1: Lerp::new(1.0 - self.betas.0),
            beta2: T::of(self.betas.1),
            eps: T::of(self.eps),
            neg_clr: T::of(*neg_clr),
        };
        with_const_bool!(self.maximize, MAX => with_const_bool!(self.weight_decay != 0.0, DECAY =>
            adamax_tensors::<T, MAX, DECAY>(&c, tensors)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_all, ops};

    /// torch's `_single_tensor_adamax`, one whole-tensor operation at a time.
    fn reference<T: Element>(h: &AdamaxHyper, scalars: &mut [f64], _: bool, p: &mut [T], g: &[T], bufs: &mut [Vec<T>]) {
        let mut grad = ops::signed(g, h.maximize);
        scalars[0] += 1.0;
        if h.weight_decay != 0.0 {
            ops::add_scaled(&mut grad, p, h.weight_decay);
        }
        let (m, u) = bufs.split_at_mut(1);
        let (m, u) = (&mut m[0], &mut u[0]);
        ops::lerp(m, &grad, 1.0 - h.betas.0);
        ops::mul(u, h.betas.1); // torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps), out=exp_inf)
        let mut abs: Vec<T> = grad.iter().map(|x| x.abs()).collect();
        ops::add(&mut abs, h.eps);
        ops::maximum(u, &abs);
        let clr = h.lr / (1.0 - h.betas.0.powf(scalars[0]));
        ops::addcdiv(p, m, u, -clr);
    }

    #[test]
    fn matches_the_scalar_reference() {
        let mut configs = vec![AdamaxHyper { betas: (0.3, 0.9), ..Default::default() }];
        for maximize in [false, true] {
            for weight_decay in [0.0, 0.1] {
                configs.push(AdamaxHyper { weight_decay, maximize, ..Default::default() });
            }
        }
        check_all(&configs, reference, reference);
    }

    #[test]
    fn validates_like_torch() {
        let bad = AdamaxHyper { betas: (0.0, 1.0), ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid beta parameter at index 1: 1");
    }
}
