//! Adagrad, as `torch.optim.Adagrad`.
//!
//! Update rule, per element, with `t` the step count after this step (torch's
//! `_single_tensor_adagrad`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! if weight_decay ≠ 0:  g ← g + weight_decay·θ
//! clr ← lr / (1 + (t − 1)·lr_decay)
//! s ← s + g²
//! θ ← θ − clr · g / (√s + ε)
//! ```
//!
//! State: scalar `step`; buffer `sum` (s), which starts at `initial_accumulator_value`.

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check_at_least_zero, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of Adagrad, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradHyper {
    /// Learning rate (torch's `lr`).
    pub lr: f64,
    /// Learning rate decay: step `t` uses `lr / (1 + (t − 1)·lr_decay)`.
    pub lr_decay: f64,
    /// Weight decay: `weight_decay·θ` added to the gradient (torch's `weight_decay`; 0 for none).
    pub weight_decay: f64,
    /// The value `sum` starts at.
    pub initial_accumulator_value: f64,
    /// Added to the denominator for numerical stability (torch's `eps`).
    pub eps: f64,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for AdagradHyper {
    fn default() -> Self {
        AdagradHyper {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// The constants of one Adagrad step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradStep {
    /// `−lr / (1 + (t − 1)·lr_decay)`
    pub neg_clr: f64,
    /// The state was created for this step: `sum` is filled first.
    pub fresh: bool,
}

#[derive(Clone, Copy)]
struct Coef<T> {
    weight_decay: T,
    eps: T,
    neg_clr: T,
}

simd_targets! {
/// The update of every element of each tensor (buffer: sum), set up once for all of them.
fn adagrad_tensors<T: Element, const MAXIMIZE: bool, const DECAY: bool>(
    c: &Coef<T>,
    tensors: &mut [TensorSlices<'_, T>],
) {
    for t in tensors {
        let n = t.param.len();
        let (param, grad, sum) = (&mut t.param[..], &t.grad[..n], &mut t.buffers[0][..n]);
        for i in 0..n {
            let mut g = if MAXIMIZE { -grad[i] } else { grad[i] };
            if DECAY {
                g = c.weight_decay.mul_add(param[i], g); // grad.add(param, alpha=wd): one fma
            }
            let s = g.mul_add(g, sum[i]); // addcmul_(g, g, value=1): one fma
            sum[i] = s;
            param[i] = param[i] + c.neg_clr * g / (s.sqrt() + c.eps);
        }
    }
}
}

impl Validate for AdagradHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        check_at_least_zero("lr_decay", self.lr_decay, "lr_decay value")?;
        check_at_least_zero("weight_decay", self.weight_decay, "weight_decay value")?;
        check_at_least_zero(
            "initial_accumulator_value",
            self.initial_accumulator_value,
            "initial_accumulator_value value",
        )?;
        check_at_least_zero("eps", self.eps, "epsilon value")
    }
}

impl Elementwise for AdagradHyper {
    /// `step`
    const SCALARS: usize = 1;
    type Step = AdagradStep;

    /// `sum`
    fn buffers(&self) -> usize {
        1
    }

    fn begin(&self, scalars: &mut [f64], fresh: bool) -> AdagradStep {
        scalars[0] += 1.0;
        AdagradStep { neg_clr: -(self.lr / (1.0 + (scalars[0] - 1.0) * self.lr_decay)), fresh }
    }

    fn update<T: Element>(&self, step: &AdagradStep, mut t: TensorSlices<'_, T>) {
        self.update_all(step, std::slice::from_mut(&mut t));
    }

    fn update_all<T: Element>(&self, step: &AdagradStep, tensors: &mut [TensorSlices<'_, T>]) {
        if step.fresh {
            for t in tensors.iter_mut() {
                t.buffers[0].fill(T::of(self.initial_accumulator_value));
            }
        }
        let c = Coef { weight_decay: T::of(self.weight_decay), eps: T::of(self.eps), neg_clr: T::of(step.neg_clr) };
        with_const_bool!(self.maximize, MAX => with_const_bool!(self.weight_decay != 0.0, DECAY =>
            adagrad_tensors::<T, MAX, DECAY>(&c, tensors)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_all, ops};

    /// torch's `_single_tensor_adagrad`, one whole-tensor operation at a time.
    fn reference<T: Element>(
        h: &AdagradHyper,
        scalars: &mut [f64],
        fresh: bool,
        p: &mut [T],
        g: &[T],
        bufs: &mut [Vec<T>],
    ) {
        let sum = &mut bufs[0];
        if fresh {
            sum.fill(T::of(h.initial_accumulator_value)); // torch.full_like(p, initial_accumulator_value)
        }
        let mut grad = ops::signed(g, h.maximize);
        scalars[0] += 1.0;
        if h.weight_decay != 0.0 {
            ops::add_scaled(&mut grad, p, h.weight_decay);
        }
        let clr = h.lr / (1.0 + (scalars[0] - 1.0) * h.lr_decay);
        ops::addcmul(sum, &grad, &grad, 1.0); // state_sum.addcmul_(grad, grad, value=1)
        let mut std = ops::sqrt(sum);
        ops::add(&mut std, h.eps);
        ops::addcdiv(p, &grad, &std, -clr);
    }

    #[test]
    fn matches_the_scalar_reference() {
        let mut configs = vec![];
        for maximize in [false, true] {
            for weight_decay in [0.0, 0.1] {
                configs.push(AdagradHyper {
                    weight_decay,
                    maximize,
                    lr_decay: 0.5,
                    initial_accumulator_value: 0.1,
                    ..Default::default()
                });
            }
        }
        check_all(&configs, reference, reference);
    }

    #[test]
    fn validates_like_torch() {
        let bad = AdagradHyper { lr_decay: -0.5, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid lr_decay value: -0.5");
    }
}
