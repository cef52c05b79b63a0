//! SGD, as `torch.optim.SGD`: momentum, dampening, Nesterov, weight decay, maximize.
//!
//! Update rule, per element (torch's `_single_tensor_sgd`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! if weight_decay ≠ 0:  g ← g + weight_decay·θ
//! if momentum ≠ 0:      b ← g                              on the buffer's first step
//!                       b ← momentum·b + (1 − dampening)·g  afterwards
//!                       g ← g + momentum·b if nesterov, else b
//! θ ← θ − lr·g
//! ```
//!
//! State: one buffer, `momentum_buffer`, only when momentum ≠ 0; no scalars.

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check, check_arg, not_below, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of SGD, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdHyper {
    /// Learning rate (torch's `lr`).
    pub lr: f64,
    /// Momentum factor (0: plain SGD, no `momentum_buffer`).
    pub momentum: f64,
    /// Dampening of the momentum: the gradient enters the buffer times `1 − dampening`.
    pub dampening: f64,
    /// Weight decay: `weight_decay·θ` added to the gradient (torch's `weight_decay`; 0 for none).
    pub weight_decay: f64,
    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for SgdHyper {
    fn default() -> Self {
        SgdHyper { lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false, maximize: false }
    }
}

impl SgdHyper {
    /// Whether this configuration keeps a momentum buffer.
    pub fn uses_momentum(&self) -> bool {
        self.momentum != 0.0
    }
}

/// One SGD step over one tensor.
///
/// `momentum_buffer` is required when `momentum ≠ 0` and ignored otherwise; `first`
/// says it holds no history yet (torch then copies the gradient into it).
///
/// # Panics
/// If the slices differ in length, or the buffer is missing while momentum ≠ 0.
pub fn sgd<T: Element>(h: &SgdHyper, param: &mut [T], grad: &[T], momentum_buffer: Option<&mut [T]>, first: bool) {
    let n = param.len();
    assert_eq!(grad.len(), n, "the gradient has {} elements, the parameter {n}", grad.len());
    let buf = if h.uses_momentum() {
        let buf = momentum_buffer.expect("SGD with momentum needs a momentum buffer");
        assert_eq!(buf.len(), n, "the momentum buffer has {} elements, the parameter {n}", buf.len());
        buf
    } else {
        &mut []
    };
    let tensor = TensorSlices { param, grad, buffers: [buf, &mut [], &mut [], &mut []] };
    sgd_all(h, first, &mut [tensor]);
}

/// [`sgd_tensors`] with the configuration's flags as constants.
fn sgd_all<T: Element>(h: &SgdHyper, first: bool, tensors: &mut [TensorSlices<'_, T>]) {
    let c = Coef::new(h);
    with_const_bool!(h.maximize, MAX => with_const_bool!(h.weight_decay != 0.0, DECAY => {
        if h.uses_momentum() {
            with_const_bool!(h.nesterov, NESTEROV => with_const_bool!(first, FIRST =>
                sgd_tensors::<T, MAX, DECAY, true, NESTEROV, FIRST>(&c, tensors)))
        } else {
            sgd_tensors::<T, MAX, DECAY, false, false, false>(&c, tensors)
        }
    }))
}

/// The hyperparameters rounded to the element type.
#[derive(Clone, Copy)]
struct Coef<T> {
    weight_decay: T,
    momentum: Momentum<T>,
    neg_lr: T,
}

impl<T: Element> Coef<T> {
    fn new(h: &SgdHyper) -> Self {
        Coef {
            weight_decay: T::of(h.weight_decay),
            momentum: Momentum::new(h.momentum, h.dampening),
            neg_lr: T::of(-h.lr),
        }
    }
}

/// torch's heavy-ball momentum for one element, shared with LARS:
/// `b ← g` on the first step, else `momentum·b + (1 − dampening)·g` (one fused
/// multiply-add, as torch 2.15's `add_`); the step direction is `g + momentum·b`
/// with Nesterov, else `b`.
#[derive(Clone, Copy)]
pub(crate) struct Momentum<T> {
    momentum: T,
    one_minus_dampening: T,
}

impl<T: Element> Momentum<T> {
    pub(crate) fn new(momentum: f64, dampening: f64) -> Self {
        Momentum { momentum: T::of(momentum), one_minus_dampening: T::of(1.0 - dampening) }
    }

    /// Updates `buf` with `g` and returns the step direction.
    #[inline(always)]
    pub(crate) fn step<const NESTEROV: bool>(&self, g: T, buf: &mut T, first: bool) -> T {
        let b = if first { g } else { self.one_minus_dampening.mul_add(g, *buf * self.momentum) };
        *buf = b;
        if NESTEROV {
            self.momentum.mul_add(b, g)
        } else {
            b
        }
    }
}

simd_targets! {
/// The update of every element of each tensor (buffer: the momentum buffer), set up
/// once for all of them.
fn sgd_tensors<
    T: Element,
    const MAXIMIZE: bool,
    const DECAY: bool,
    const MOMENTUM: bool,
    const NESTEROV: bool,
    const FIRST: bool,
>(c: &Coef<T>, tensors: &mut [TensorSlices<'_, T>]) {
    for t in tensors {
        let n = t.param.len();
        let (param, grad) = (&mut t.param[..], &t.grad[..n]);
        let buf = if MOMENTUM { &mut t.buffers[0][..n] } else { &mut [] };
        for i in 0..n {
            let mut g = if MAXIMIZE { -grad[i] } else { grad[i] };
            // torch 2.15's add_(x, alpha=a) is one fused multiply-add: fma(a, x, self)
            if DECAY {
                g = c.weight_decay.mul_add(param[i], g);
            }
            if MOMENTUM {
                g = c.momentum.step::<NESTEROV>(g, &mut buf[i], FIRST);
            }
            param[i] = c.neg_lr.mul_add(g, param[i]);
        }
    }
}
}

impl Validate for SgdHyper {
    /// torch's argument checks, with its messages: SGD's are `if x < 0.0: raise`,
    /// which lets NaN through (the other optimizers' `not 0.0 <= x` does not).
    fn validate(&self) -> Result<(), HyperError> {
        check_arg(not_below(self.lr, 0.0), "lr", None, self.lr, || format!("Invalid learning rate: {}", self.lr))?;
        let m = self.momentum;
        check_arg(not_below(m, 0.0), "momentum", None, m, || format!("Invalid momentum value: {m}"))?;
        let wd = self.weight_decay;
        check_arg(not_below(wd, 0.0), "weight_decay", None, wd, || format!("Invalid weight_decay value: {wd}"))?;
        check(!(self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0)), || {
            "Nesterov momentum requires a momentum and zero dampening".into()
        })
    }
}

impl Elementwise for SgdHyper {
    const SCALARS: usize = 0;
    /// Whether the momentum buffer is on its first step.
    type Step = bool;

    fn buffers(&self) -> usize {
        usize::from(self.uses_momentum())
    }

    fn begin(&self, _scalars: &mut [f64], fresh: bool) -> bool {
        fresh
    }

    fn update<T: Element>(&self, first: &bool, t: TensorSlices<'_, T>) {
        let [buf, ..] = t.buffers;
        sgd(self, t.param, t.grad, self.uses_momentum().then_some(buf), *first);
    }

    fn update_all<T: Element>(&self, first: &bool, tensors: &mut [TensorSlices<'_, T>]) {
        sgd_all(self, *first, tensors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_against_reference, ops};

    /// torch's `_single_tensor_sgd`, one whole-tensor operation at a time.
    fn reference<T: Element>(
        h: &SgdHyper,
        _scalars: &mut [f64],
        first: bool,
        p: &mut [T],
        g: &[T],
        bufs: &mut [Vec<T>],
    ) {
        let mut grad = ops::signed(g, h.maximize);
        if h.weight_decay != 0.0 {
            ops::add_scaled(&mut grad, p, h.weight_decay); // grad.add(param, alpha=wd)
        }
        if h.momentum != 0.0 {
            let buf = &mut bufs[0];
            if first {
                buf.copy_from_slice(&grad); // torch.clone(grad)
            } else {
                ops::mul(buf, h.momentum); // buf.mul_(momentum)
                ops::add_scaled(buf, &grad, 1.0 - h.dampening); // .add_(grad, alpha=1-dampening)
            }
            if h.nesterov {
                ops::add_scaled(&mut grad, buf, h.momentum); // grad.add(buf, alpha=momentum)
            } else {
                grad.copy_from_slice(buf);
            }
        }
        ops::add_scaled(p, &grad, -h.lr); // param.add_(grad, alpha=-lr)
    }

    fn configs() -> Vec<SgdHyper> {
        let mut out = Vec::new();
        for maximize in [false, true] {
            for weight_decay in [0.0, 0.1] {
                for (momentum, dampening, nesterov) in
                    [(0.0, 0.0, false), (0.9, 0.0, false), (0.9, 0.3, false), (0.9, 0.0, true)]
                {
                    out.push(SgdHyper { lr: 0.05, momentum, dampening, weight_decay, nesterov, maximize });
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_scalar_reference_f32() {
        for h in configs() {
            check_against_reference::<_, f32>(&h, reference);
        }
    }

    #[test]
    fn matches_the_scalar_reference_f64() {
        for h in configs() {
            check_against_reference::<_, f64>(&h, reference);
        }
    }

    #[test]
    fn validates_like_torch() {
        let bad = SgdHyper { momentum: -0.5, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid momentum value: -0.5");
        let bad = SgdHyper { nesterov: true, ..Default::default() };
        assert!(bad.validate().is_err());
        assert!(SgdHyper::default().validate().is_ok());
    }
}
