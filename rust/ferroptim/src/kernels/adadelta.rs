//! Adadelta, as `torch.optim.Adadelta`.
//!
//! Update rule, per element (torch's `_single_tensor_adadelta`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! if weight_decay ≠ 0:  g ← g + weight_decay·θ
//! v ← ρ·v + (1 − ρ)·g²
//! δ ← √(u + ε) / √(v + ε) · g
//! u ← ρ·u + (1 − ρ)·δ²
//! θ ← θ − lr·δ
//! ```
//!
//! State: scalar `step`; buffers `square_avg` (v) and `acc_delta` (u).

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check_arg, check_at_least_zero, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of Adadelta, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdadeltaHyper {
    /// Coefficient that scales the delta before it is applied (torch's `lr`, default 1).
    pub lr: f64,
    /// Coefficient of the running averages of the squared gradients and deltas.
    pub rho: f64,
    /// Added to the denominator for numerical stability (torch's `eps`).
    pub eps: f64,
    /// Weight decay: `weight_decay·θ` added to the gradient (torch's `weight_decay`; 0 for none).
    pub weight_decay: f64,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for AdadeltaHyper {
    fn default() -> Self {
        AdadeltaHyper { lr: 1.0, rho: 0.9, eps: 1e-6, weight_decay: 0.0, maximize: false }
    }
}

#[derive(Clone, Copy)]
struct Coef<T> {
    weight_decay: T,
    rho: T,
    one_minus_rho: T,
    eps: T,
    neg_lr: T,
}

simd_targets! {
/// The update of every element of each tensor (buffers: square_avg, acc_delta), set up
/// once for all of them.
fn adadelta_tensors<T: Element, const MAXIMIZE: bool, const DECAY: bool>(
    c: &Coef<T>,
    tensors: &mut [TensorSlices<'_, T>],
) {
    for t in tensors {
        let (param, grad, square_avg, acc_delta) = t.with_two_buffers();
        let n = param.len();
        for i in 0..n {
            let mut g = if MAXIMIZE { -grad[i] } else { grad[i] };
            if DECAY {
                g = c.weight_decay.mul_add(param[i], g); // grad.add(param, alpha=wd): one fma
            }
            // torch 2.15's addcmul_ and add_(alpha=...) are fused multiply-adds
            let v = (c.one_minus_rho * g).mul_add(g, square_avg[i] * c.rho);
            square_avg[i] = v;
            let delta = (acc_delta[i] + c.eps).sqrt() / (v + c.eps).sqrt() * g;
            acc_delta[i] = (c.one_minus_rho * delta).mul_add(delta, acc_delta[i] * c.rho);
            param[i] = c.neg_lr.mul_add(delta, param[i]);
        }
    }
}
}

impl Validate for AdadeltaHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        check_arg((0.0..=1.0).contains(&self.rho), "rho", None, self.rho, || {
            format!("Invalid rho value: {}", self.rho)
        })?;
        check_at_least_zero("eps", self.eps, "epsilon value")?;
        check_at_least_zero("weight_decay", self.weight_decay, "weight_decay value")
    }
}

impl Elementwise for AdadeltaHyper {
    /// `step`
    const SCALARS: usize = 1;
    type Step = ();

    /// `square_avg`, `acc_delta`
    fn buffers(&self) -> usize {
        2
    }

    fn begin(&self, scalars: &mut [f64], _fresh: bool) {
        scalars[0] += 1.0;
    }

    fn update<T: Element>(&self, step: &(), mut t: TensorSlices<'_, T>) {
        self.update_all(step, std::slice::from_mut(&mut t));
    }

    fn update_all<T: Element>(&self, _: &(), tensors: &mut [TensorSlices<'_, T>]) {
        let c = Coef {
            weight_decay: T::of(self.weight_decay),
            rho: T::of(self.rho),
            one_minus_rho: T::of(1.0 - self.rho),
            eps: T::of(self.eps),
            neg_lr: T::of(-self.lr),
        };
        with_const_bool!(self.maximize, MAX => with_const_bool!(self.weight_decay != 0.0, DECAY =>
            adadelta_tensors::<T, MAX, DECAY>(&c, tensors)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_all, ops};

    /// torch's `_single_tensor_adadelta`, one whole-tensor operation at a time.
    fn reference<T: Element>(
        h: &AdadeltaHyper,
        scalars: &mut [f64],
        _: bool,
        p: &mut [T],
        g: &[T],
        bufs: &mut [Vec<T>],
    ) {
        let mut grad = ops::signed(g, h.maximize);
        scalars[0] += 1.0;
        if h.weight_decay != 0.0 {
            ops::add_scaled(&mut grad, p, h.weight_decay);
        }
        let (v, u) = bufs.split_at_mut(1);
        let (v, u) = (&mut v[0], &mut u[0]);
        ops::mul(v, h.rho);
        ops::addcmul(v, &grad, &grad, 1.0 - h.rho);
        let mut std = v.clone();
        ops::add(&mut std, h.eps); // square_avg.add(eps).sqrt_()
        let std = ops::sqrt(&std);
        let mut delta = u.clone();
        ops::add(&mut delta, h.eps); // acc_delta.add(eps).sqrt_()
        let mut delta = ops::sqrt(&delta);
        ops::div_elementwise(&mut delta, &std); // delta.div_(std).mul_(grad)
        ops::mul_elementwise(&mut delta, &grad);
        ops::mul(u, h.rho);
        ops::addcmul(u, &delta, &delta, 1.0 - h.rho);
        ops::add_scaled(p, &delta, -h.lr);
    }

    #[test]
    fn matches_the_scalar_reference() {
        let mut configs = vec![];
        for maximize in [false, true] {
            for weight_decay in [0.0, 0.1] {
                configs.push(AdadeltaHyper { weight_decay, maximize, rho: 0.95, ..Default::default() });
            }
        }
        check_all(&configs, reference, reference);
    }

    #[test]
    fn validates_like_torch() {
        let bad = AdadeltaHyper { rho: 1.1, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid rho value: 1.1");
    }
}
