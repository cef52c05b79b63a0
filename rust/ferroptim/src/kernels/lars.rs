//! LARS ("Large Batch Training of Convolutional Networks", You et al. 2017,
//! arXiv:1708.03888) and LARC (`trust_clip`), as `timm.optim.Lars` (its single-tensor path).
//!
//! Update rule, per tensor, then per element:
//!
//! ```text
//! if weight_decay ≠ 0 or always_adapt:
//!     r ← trust_coeff·‖θ‖ / (‖g‖ + weight_decay·‖θ‖ + ε)   (1 if ‖θ‖ = 0 or ‖g‖ = 0)
//!     r ← min(r / lr, 1) if trust_clip
//!     g ← (g + weight_decay·θ)·r
//! if momentum ≠ 0:
//!     b ← g on the first step, else momentum·b + (1 − dampening)·g
//!     g ← g + momentum·b if nesterov, else b
//! θ ← θ − lr·g
//! ```
//!
//! State: `momentum_buffer` (b, slot 0) when momentum ≠ 0. The two norms are one
//! pass over θ and g (`norms_loop`), summed as `grad_norm::norms` sums (float64, the
//! same chunks and lanes) and rounded to the element type.

use crate::element::Element;
use crate::exec::TensorSlices;
use crate::kernels::passes::{lane_sums, norm, over_chunks, reduce_then_update};
use crate::kernels::sgd::Momentum;
use crate::kernels::{check, check_arg, not_below, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of LARS (timm's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LarsHyper {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0: no `momentum_buffer`).
    pub momentum: f64,
    /// Dampening of the momentum: the gradient enters the buffer times `1 − dampening`.
    pub dampening: f64,
    /// Weight decay, added to the gradient before it is scaled by the trust ratio.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// The trust coefficient the ratio `‖θ‖ / (‖g‖ + wd·‖θ‖ + ε)` is scaled by.
    pub trust_coeff: f64,
    /// Added to the trust ratio's denominator.
    pub eps: f64,
    /// LARC: the trust ratio over `lr`, clipped at 1.
    pub trust_clip: bool,
    /// Apply the trust ratio even without weight decay.
    pub always_adapt: bool,
}

impl LarsHyper {
    /// `timm.optim.Lars`'s defaults.
    pub const fn timm() -> Self {
        LarsHyper {
            lr: 1.0,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            trust_coeff: 0.001,
            eps: 1e-8,
            trust_clip: false,
            always_adapt: false,
        }
    }

    fn adapts(&self) -> bool {
        self.weight_decay != 0.0 || self.always_adapt
    }
}

impl Default for LarsHyper {
    fn default() -> Self {
        Self::timm()
    }
}

impl Validate for LarsHyper {
    /// timm's checks, with its messages.
    fn validate(&self) -> Result<(), HyperError> {
        let (lr, m, wd) = (self.lr, self.momentum, self.weight_decay);
        check_arg(not_below(lr, 0.0), "lr", None, lr, || format!("Invalid learning rate: {lr}"))?;
        check_arg(not_below(m, 0.0), "momentum", None, m, || format!("Invalid momentum value: {m}"))?;
        check_arg(not_below(wd, 0.0), "weight_decay", None, wd, || format!("Invalid weight_decay value: {wd}"))?;
        check(!(self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0)), || {
            "Nesterov momentum requires a momentum and zero dampening".into()
        })
    }
}

/// The trust ratio of one tensor, from its norms, in the element type.
pub(crate) fn lars_trust_ratio<T: Element>(h: &LarsHyper, w: T, g: T) -> T {
    let r = T::of(h.trust_coeff) * w / (g + w * T::of(h.weight_decay) + T::of(h.eps));
    let r = if w > T::zero() && g > T::zero() { r } else { T::one() };
    if h.trust_clip {
        let q = r / T::of(h.lr);
        if q > T::one() {
            T::one()
        } else {
            q
        }
    } else {
        r
    }
}

#[derive(Clone, Copy)]
struct Coef<T> {
    weight_decay: T,
    momentum: Momentum<T>,
    neg_lr: T,
}

/// One LARS step over each tensor; `fresh[i]`: tensor i's momentum buffer was just
/// created (it becomes the gradient). State slot 0 is `momentum_buffer` when
/// momentum ≠ 0.
///
/// # Panics
/// If `fresh` is not one per tensor, or a tensor lacks its momentum buffer.
pub fn lars<T: Element>(h: &LarsHyper, tensors: &mut [TensorSlices<'_, T>], fresh: &[bool]) {
    assert_eq!(fresh.len(), tensors.len(), "one flag per tensor");
    let momentum = h.momentum != 0.0;
    for t in tensors.iter() {
        assert!(!momentum || t.buffers[0].len() == t.len(), "LARS with momentum needs momentum_buffer");
    }
    let c = Coef {
        weight_decay: T::of(h.weight_decay),
        momentum: Momentum::new(h.momentum, h.dampening),
        neg_lr: T::of(-h.lr),
    };
    with_const_bool!(momentum, MOM => with_const_bool!(h.nesterov, NEST => {
        if h.adapts() {
            reduce_then_update(
                tensors,
                |_, s| norms_loop(s.param, s.grad),
                |_, [w, g]| lars_trust_ratio(h, norm(w), norm(g)),
                |i, ratio, s| {
                    let [b, ..] = s.buffers;
                    lars_loop::<T, true, MOM, NEST>(&c, ratio, fresh[i], s.param, s.grad, b)
                },
            )
        } else {
            over_chunks(tensors, |i, s| {
                let [b, ..] = s.buffers;
                lars_loop::<T, false, MOM, NEST>(&c, T::one(), fresh[i], s.param, s.grad, b)
            });
        }
    }));
}

simd_targets! {
/// `[Σ θ², Σ g²]` in one pass (both read together: one pass that reads two arrays
/// streams faster than two that read one each).
fn norms_loop<T: Element>(param: &[T], grad: &[T]) -> [f64; 2] {
    let n = param.len();
    let grad = &grad[..n];
    lane_sums(n, |i| {
        let (p, g) = (param[i].to_f64().unwrap_or(f64::NAN), grad[i].to_f64().unwrap_or(f64::NAN));
        [p * p, g * g]
    })
}
}

simd_targets! {
fn lars_loop<T: Element, const ADAPT: bool, const MOMENTUM: bool, const NESTEROV: bool>(
    c: &Coef<T>,
    ratio: T,
    fresh: bool,
    param: &mut [T],
    grad: &[T],
    b: &mut [T],
) {
    let n = param.len();
    let grad = &grad[..n];
    let b = if MOMENTUM { &mut b[..n] } else { b };
    for i in 0..n {
        let mut g = grad[i];
        if ADAPT {
            g = c.weight_decay.mul_add(param[i], g) * ratio; // grad.add(p, alpha=wd).mul_(trust_ratio)
        }
        if MOMENTUM {
            g = c.momentum.step::<NESTEROV>(g, &mut b[i], fresh); // torch's SGD momentum, as timm
        }
        param[i] = c.neg_lr.mul_add(g, param[i]);
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::grad_norm::{norms, NormType};
    use crate::kernels::testing::{check_each, ops, zeros, RefTensor};

    /// timm's `_single_tensor_lars` for one tensor (the norms in the reductions' order).
    fn reference<T: Element>(h: &LarsHyper, t: &mut RefTensor<T>, g: &[T], first: bool) {
        let p = &mut t.param;
        let mut grad = g.to_vec();
        if h.adapts() {
            let norm = |x: &[T]| T::of(norms(&[x], NormType::P(2.0))[0]); // p.norm(2.0)
            let r = lars_trust_ratio(h, norm(p), norm(g));
            ops::add_scaled(&mut grad, p, h.weight_decay);
            grad.iter_mut().for_each(|x| *x = *x * r);
        }
        if h.momentum != 0.0 {
            let buf = &mut t.state[0];
            if first {
                buf.copy_from_slice(&grad);
            } else {
                ops::mul(buf, h.momentum);
                ops::add_scaled(buf, &grad, 1.0 - h.dampening);
            }
            if h.nesterov {
                ops::add_scaled(&mut grad, buf, h.momentum);
            } else {
                grad = buf.clone();
            }
        }
        ops::add_scaled(p, &grad, -h.lr);
    }

    #[test]
    fn matches_the_scalar_reference() {
        let base = LarsHyper { lr: 0.1, ..LarsHyper::timm() };
        let configs = [
            base,
            LarsHyper { momentum: 0.9, weight_decay: 0.01, ..base },
            LarsHyper { momentum: 0.9, nesterov: true, trust_clip: true, weight_decay: 0.01, ..base },
            LarsHyper { momentum: 0.5, dampening: 0.1, always_adapt: true, ..base },
        ];
        for h in configs {
            let kernel =
                |t: &mut [TensorSlices<'_, _>], _: &mut [f64], step: usize| lars(&h, t, &vec![step == 0; t.len()]);
            check_each::<f32>(zeros(1), kernel, |t, g, step| reference(&h, t, g, step == 0));
            let kernel =
                |t: &mut [TensorSlices<'_, _>], _: &mut [f64], step: usize| lars(&h, t, &vec![step == 0; t.len()]);
            check_each::<f64>(zeros(1), kernel, |t, g, step| reference(&h, t, g, step == 0));
        }
    }
}
