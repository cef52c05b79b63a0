//! Rprop, as `torch.optim.Rprop`.
//!
//! Update rule, per element (torch's `_single_tensor_rprop`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! s ← g·prev:  η ← η₊ if s > 0,  η₋ if s < 0,  1 if s = 0
//! step_size ← clamp(step_size·η, step_size_min, step_size_max)
//! if η = η₋:  g ← 0          (the sign flipped: skip this step)
//! θ ← θ − sign(g)·step_size
//! prev ← g
//! ```
//!
//! State: scalar `step`; buffers `prev` (starts at 0) and `step_size` (starts at lr).

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check_at_least_zero, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of Rprop, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RpropHyper {
    /// The step size every element starts with (torch's `lr`).
    pub lr: f64,
    /// (η₋, η₊)
    pub etas: (f64, f64),
    /// (step_size_min, step_size_max)
    pub step_sizes: (f64, f64),
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for RpropHyper {
    fn default() -> Self {
        RpropHyper { lr: 1e-2, etas: (0.5, 1.2), step_sizes: (1e-6, 50.0), maximize: false }
    }
}

#[derive(Clone, Copy)]
struct Coef<T> {
    etaminus: T,
    etaplus: T,
    min: T,
    max: T,
}

/// `torch.sign(x)`: 0 for 0 and for NaN.
#[inline(always)]
fn sign<T: Element>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        T::zero()
    }
}

simd_targets! {
fn rprop_loop<T: Element, const MAXIMIZE: bool>(c: &Coef<T>, param: &mut [T], grad: &[T], prev: &mut [T], step_size: &mut [T]) {
    let n = param.len();
    let (grad, prev, step_size) = (&grad[..n], &mut prev[..n], &mut step_size[..n]);
    for i in 0..n {
        let g = if MAXIMIZE { -grad[i] } else { grad[i] };
        let s = g * prev[i];
        // torch's sign() of a NaN product is 0, so its factor is 1
        let eta = if s > T::zero() {
            c.etaplus
        } else if s < T::zero() {
            c.etaminus
        } else {
            T::one()
        };
        let x = step_size[i] * eta;
        let x = if x < c.min { c.min } else { x };
        let x = if x > c.max { c.max } else { x };
        step_size[i] = x;
        let g = if eta == c.etaminus { T::zero() } else { g };
        param[i] = param[i] - sign(g) * x;
        prev[i] = g;
    }
}
}

impl Validate for RpropHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        let (minus, plus) = self.etas;
        if 0.0 < minus && minus < 1.0 && 1.0 < plus {
            return Ok(());
        }
        let message = format!("Invalid eta values: {minus}, {plus}");
        Err(HyperError::quoting(message, &[("etas", Some(0), minus), ("etas", Some(1), plus)]))
    }
}

impl Elementwise for RpropHyper {
    /// `step`
    const SCALARS: usize = 1;
    /// Whether the state is fresh (`step_size` is filled with lr first).
    type Step = bool;

    /// `prev`, `step_size`
    fn buffers(&self) -> usize {
        2
    }

    fn begin(&self, scalars: &mut [f64], fresh: bool) -> bool {
        scalars[0] += 1.0;
        fresh
    }

    fn update<T: Element>(&self, fresh: &bool, t: TensorSlices<'_, T>) {
        let [prev, step_size, _, _] = t.buffers;
        if *fresh {
            step_size.fill(T::of(self.lr)); // torch.full_like(grad, lr)
        }
        let c = Coef {
            etaminus: T::of(self.etas.0),
            etaplus: T::of(self.etas.1),
            min: T::of(self.step_sizes.0),
            max: T::of(self.step_sizes.1),
        };
        with_const_bool!(self.maximize, MAX => rprop_loop::<T, MAX>(&c, t.param, t.grad, prev, step_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_all, ops};

    /// torch's `_single_tensor_rprop`, one whole-tensor operation at a time.
    fn reference<T: Element>(
        h: &RpropHyper,
        scalars: &mut [f64],
        fresh: bool,
        p: &mut [T],
        g: &[T],
        bufs: &mut [Vec<T>],
    ) {
        let (prev, step_size) = bufs.split_at_mut(1);
        let (prev, step_size) = (&mut prev[0], &mut step_size[0]);
        if fresh {
            step_size.fill(T::of(h.lr));
        }
        let mut grad = ops::signed(g, h.maximize);
        scalars[0] += 1.0;
        let (etaminus, etaplus) = (T::of(h.etas.0), T::of(h.etas.1));
        // sign = grad.mul(prev).sign(); then the masked assignments, in torch's order
        let mut sign: Vec<T> = grad.iter().zip(prev.iter()).map(|(&a, &b)| super::sign(a * b)).collect();
        sign.iter_mut().filter(|x| **x > T::zero()).for_each(|x| *x = etaplus);
        sign.iter_mut().filter(|x| **x < T::zero()).for_each(|x| *x = etaminus);
        sign.iter_mut().filter(|x| **x == T::zero()).for_each(|x| *x = T::one());
        ops::mul_elementwise(step_size, &sign);
        let (lo, hi) = (T::of(h.step_sizes.0), T::of(h.step_sizes.1));
        step_size.iter_mut().for_each(|x| {
            *x = if *x < lo {
                lo
            } else if *x > hi {
                hi
            } else {
                *x
            }
        });
        for (gi, s) in grad.iter_mut().zip(&sign) {
            if *s == etaminus {
                *gi = T::zero();
            }
        }
        let gs: Vec<T> = grad.iter().map(|&x| super::sign(x)).collect();
        ops::addcmul(p, &gs, step_size, -1.0);
        prev.copy_from_slice(&grad);
    }

    #[test]
    fn matches_the_scalar_reference() {
        let configs = [
            RpropHyper::default(),
            RpropHyper { maximize: true, ..Default::default() },
            RpropHyper { etas: (0.3, 1.5), step_sizes: (1e-3, 0.02), ..Default::default() },
        ];
        check_all(&configs, reference, reference);
    }

    #[test]
    fn validates_like_torch() {
        let bad = RpropHyper { etas: (1.0, 0.5), ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid eta values: 1, 0.5");
    }
}
