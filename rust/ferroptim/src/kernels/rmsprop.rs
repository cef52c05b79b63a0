//! RMSprop, as `torch.optim.RMSprop`.
//!
//! Update rule, per element (torch's `_single_tensor_rmsprop`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! if weight_decay ≠ 0:  g ← g + weight_decay·θ
//! v ← α·v + (1 − α)·g²
//! if centered:  ḡ ← lerp(ḡ, g, 1 − α);   a ← √(v − ḡ²) + ε
//! else:         a ← √v + ε
//! if momentum > 0:  b ← momentum·b + g/a;   θ ← θ − lr·b
//! else:             θ ← θ − lr·g/a
//! ```
//!
//! State: scalar `step`; buffers `square_avg` (v), `momentum_buffer` (b, only with
//! momentum) and `grad_avg` (ḡ, only when centered), in the slots 0, 1, 2.

use crate::element::{lerp, Element, Lerp};
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check_at_least_zero, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of RMSprop, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropHyper {
    /// Learning rate (torch's `lr`).
    pub lr: f64,
    /// Smoothing constant of the running average of the squared gradient.
    pub alpha: f64,
    /// Added to the denominator for numerical stability (torch's `eps`).
    pub eps: f64,
    /// Weight decay: `weight_decay·θ` added to the gradient (torch's `weight_decay`; 0 for none).
    pub weight_decay: f64,
    /// Momentum factor (0: no `momentum_buffer`).
    pub momentum: f64,
    /// Centered RMSprop: the variance estimate subtracts the square of the running
    /// average of the gradient (`grad_avg`).
    pub centered: bool,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for RmspropHyper {
    fn default() -> Self {
        RmspropHyper {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

#[derive(Clone, Copy)]
struct Coef<T> {
    weight_decay: T,
    alpha: T,
    one_minus_alpha: T,
    one_minus_alpha_lerp: Lerp<T>,
    eps: T,
    momentum: T,
    neg_lr: T,
}

simd_targets! {
/// The update of every element of each tensor (buffers: square_avg,
/// momentum_buffer, grad_avg), set up once for all of them.
fn rmsprop_tensors<T: Element, const MAXIMIZE: bool, const DECAY: bool, const MOMENTUM: bool, const CENTERED: bool>(
    c: &Coef<T>,
    tensors: &mut [TensorSlices<'_, T>],
) {
    for t in tensors {
        let n = t.param.len();
        let [square_avg, momentum_buffer, grad_avg, _] = &mut t.buffers;
        let (param, grad, square_avg) = (&mut t.param[..], &t.grad[..n], &mut square_avg[..n]);
        let momentum_buffer = if MOMENTUM { &mut momentum_buffer[..n] } else { &mut [] };
        let grad_avg = if CENTERED { &mut grad_avg[..n] } else { &mut [] };
        for i in 0..n {
            let mut g = if MAXIMIZE { -grad[i] } else { grad[i] };
            if DECAY {
                g = c.weight_decay.mul_add(param[i], g); // grad.add(param, alpha=wd): one fma
            }
            let v = (c.one_minus_alpha * g).mul_add(g, square_avg[i] * c.alpha); // mul_ + addcmul_ (fma)
            square_avg[i] = v;
            let avg = if CENTERED {
                let ga = lerp(grad_avg[i], g, c.one_minus_alpha_lerp);
                grad_avg[i] = ga;
                (-ga).mul_add(ga, v).sqrt() + c.eps // addcmul(ga, ga, value=-1): one fma
            } else {
                v.sqrt() + c.eps
            };
            if MOMENTUM {
                let b = momentum_buffer[i] * c.momentum + g / avg;
                momentum_buffer[i] = b;
                param[i] = c.neg_lr.mul_add(b, param[i]);
            } else {
                param[i] = param[i] + c.neg_lr * g / avg;
            }
        }
    }
}
}

impl Validate for RmspropHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        check_at_least_zero("eps", self.eps, "epsilon value")?;
        check_at_least_zero("momentum", self.momentum, "momentum value")?;
        check_at_least_zero("weight_decay", self.weight_decay, "weight_decay value")?;
        check_at_least_zero("alpha", self.alpha, "alpha value")
    }
}

impl Elementwise for RmspropHyper {
    /// `step`
    const SCALARS: usize = 1;
    type Step = ();

    fn buffers(&self) -> usize {
        if self.centered {
            3
        } else if self.momentum > 0.0 {
            2
        } else {
            1
        }
    }

    /// `square_avg` always, `momentum_buffer` with momentum, `grad_avg` when centered.
    fn uses_buffer(&self, k: usize) -> bool {
        match k {
            0 => true,
            1 => self.momentum > 0.0,
            2 => self.centered,
            _ => false,
        }
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
            alpha: T::of(self.alpha),
            one_minus_alpha: T::of(1.0 - self.alpha),
            one_minus_alpha_lerp: Lerp::new(1.0 - self.alpha),
            eps: T::of(self.eps),
            momentum: T::of(self.momentum),
            neg_lr: T::of(-self.lr),
        };
        with_const_bool!(self.maximize, MAX => with_const_bool!(self.weight_decay != 0.0, DECAY =>
            with_const_bool!(self.momentum > 0.0, MOM => with_const_bool!(self.centered, CEN =>
                rmsprop_tensors::<T, MAX, DECAY, MOM, CEN>(&c, tensors)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_all, ops};

    /// torch's `_single_tensor_rmsprop`, one whole-tensor operation at a time.
    fn reference<T: Element>(
        h: &RmspropHyper,
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
        let (v, rest) = bufs.split_first_mut().unwrap();
        let mut rest = rest.iter_mut();
        let (b, ga) = (rest.next(), rest.next());
        ops::mul(v, h.alpha);
        ops::addcmul(v, &grad, &grad, 1.0 - h.alpha);
        let mut avg = if h.centered {
            let ga = ga.unwrap();
            ops::lerp(ga, &grad, 1.0 - h.alpha);
            let mut centered = v.clone();
            ops::addcmul(&mut centered, ga, ga, -1.0); // square_avg.addcmul(grad_avg, grad_avg, value=-1)
            ops::sqrt(&centered)
        } else {
            ops::sqrt(v)
        };
        ops::add(&mut avg, h.eps);
        if h.momentum > 0.0 {
            let b = b.unwrap();
            ops::mul(b, h.momentum);
            ops::addcdiv(b, &grad, &avg, 1.0);
            ops::add_scaled(p, b, -h.lr);
        } else {
            ops::addcdiv(p, &grad, &avg, -h.lr);
        }
    }

    #[test]
    fn matches_the_scalar_reference() {
        let mut configs = vec![];
        for maximize in [false, true] {
            for weight_decay in [0.0, 0.1] {
                for momentum in [0.0, 0.5] {
                    for centered in [false, true] {
                        configs.push(RmspropHyper { weight_decay, maximize, momentum, centered, ..Default::default() });
                    }
                }
            }
        }
        check_all(&configs, reference, reference);
    }

    #[test]
    fn validates_like_torch() {
        let bad = RmspropHyper { momentum: -1.0, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid momentum value: -1");
    }
}
