//! Adam and AdamW, as `torch.optim.Adam` / `torch.optim.AdamW` (AdamW is Adam with
//! `decoupled_weight_decay`).
//!
//! Update rule, per element, with `t` the step count after this step (torch's
//! `_single_tensor_adam`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! if weight_decay ≠ 0:  θ ← θ·(1 − lr·weight_decay)   if decoupled_weight_decay (AdamW)
//!                       g ← g + weight_decay·θ          otherwise (L2)
//! m ← lerp(m, g, 1 − β₁)
//! v ← β₂·v + (1 − β₂)·g²
//! v̂ ← max(v̂, v) if amsgrad, else v
//! θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
//! ```
//!
//! State: scalar `step`; buffers `exp_avg` (m), `exp_avg_sq` (v) and, with amsgrad,
//! `max_exp_avg_sq` (v̂).

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check_at_least_zero, check_betas, simd_targets, with_const_bool, with_decay, Decay, Moments};
use crate::{HyperError, Validate};

/// The hyperparameters of Adam / AdamW.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamHyper {
    /// Learning rate (torch's `lr`).
    pub lr: f64,
    /// Coefficients of the running averages of the gradient and of its square (torch's `betas`).
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability (torch's `eps`).
    pub eps: f64,
    /// Weight decay (0 for none): added to the gradient as `weight_decay·θ`, or decoupled (AdamW).
    pub weight_decay: f64,
    /// The AMSGrad variant: the running maximum of `exp_avg_sq` in the denominator.
    pub amsgrad: bool,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
    /// AdamW's decay: `θ ← θ·(1 − lr·weight_decay)` instead of adding it to the gradient.
    pub decoupled_weight_decay: bool,
}

impl AdamHyper {
    /// `torch.optim.Adam`'s defaults.
    pub const fn adam() -> Self {
        AdamHyper {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled_weight_decay: false,
        }
    }

    /// `torch.optim.AdamW`'s defaults: weight decay 1e-2, decoupled.
    pub const fn adamw() -> Self {
        AdamHyper { weight_decay: 1e-2, decoupled_weight_decay: true, ..Self::adam() }
    }

    /// The step-dependent constants of step `t` (the count after this step), computed
    /// in `f64` as torch computes them in Python floats.
    pub fn at_step(&self, t: f64) -> AdamStep {
        let bias_correction1 = 1.0 - self.betas.0.powf(t);
        let bias_correction2 = 1.0 - self.betas.1.powf(t);
        AdamStep { step_size: self.lr / bias_correction1, bias_correction2_sqrt: bias_correction2.powf(0.5) }
    }
}

impl Default for AdamHyper {
    fn default() -> Self {
        Self::adam()
    }
}

/// The constants of one Adam step: `lr / (1 − β₁ᵗ)` and `√(1 − β₂ᵗ)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// `lr / (1 − β₁ᵗ)`.
    pub step_size: f64,
    /// `√(1 − β₂ᵗ)`.
    pub bias_correction2_sqrt: f64,
}

/// One Adam step over one tensor; `step` is the step count after this step (1 on
/// the first). `max_exp_avg_sq` is required with amsgrad and ignored otherwise.
///
/// # Panics
/// If the slices differ in length, or `max_exp_avg_sq` is missing with amsgrad.
pub fn adam<T: Element>(
    h: &AdamHyper,
    step: f64,
    param: &mut [T],
    grad: &[T],
    exp_avg: &mut [T],
    exp_avg_sq: &mut [T],
    max_exp_avg_sq: Option<&mut [T]>,
) {
    adam_with(h, &h.at_step(step), param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)
}

fn adam_with<T: Element>(
    h: &AdamHyper,
    s: &AdamStep,
    param: &mut [T],
    grad: &[T],
    exp_avg: &mut [T],
    exp_avg_sq: &mut [T],
    max_exp_avg_sq: Option<&mut [T]>,
) {
    let n = param.len();
    for (name, len) in [("gradient", grad.len()), ("exp_avg", exp_avg.len()), ("exp_avg_sq", exp_avg_sq.len())] {
        assert_eq!(len, n, "the {name} has {len} elements, the parameter {n}");
    }
    let max = if h.amsgrad {
        let m = max_exp_avg_sq.expect("Adam with amsgrad needs max_exp_avg_sq");
        assert_eq!(m.len(), n, "max_exp_avg_sq has {} elements, the parameter {n}", m.len());
        m
    } else {
        &mut []
    };
    let tensor = TensorSlices { param, grad, buffers: [exp_avg, exp_avg_sq, max, &mut []] };
    adam_all(h, &Coef::new(h, s), &mut [tensor]);
}

/// [`adam_tensors`] with the configuration's flags as constants.
fn adam_all<T: Element>(h: &AdamHyper, c: &Coef<T>, tensors: &mut [TensorSlices<'_, T>]) {
    with_const_bool!(h.maximize, MAX => with_const_bool!(h.amsgrad, AMS => {
        with_decay!(Decay::of(h.weight_decay, h.decoupled_weight_decay), D =>
            adam_tensors::<T, MAX, D, AMS>(c, tensors))
    }))
}

/// The hyperparameters and step constants rounded to the element type.
#[derive(Clone, Copy)]
struct Coef<T> {
    moments: Moments<T>,
    bias_correction2_sqrt: T,
    eps: T,
    neg_step_size: T,
}

impl<T: Element> Coef<T> {
    fn new(h: &AdamHyper, s: &AdamStep) -> Self {
        Coef {
            moments: Moments::new(h.lr, h.weight_decay, h.betas),
            bias_correction2_sqrt: T::of(s.bias_correction2_sqrt),
            eps: T::of(h.eps),
            neg_step_size: T::of(-s.step_size),
        }
    }
}

simd_targets! {
/// The update of every element of each tensor (buffers: exp_avg, exp_avg_sq,
/// max_exp_avg_sq), set up once for all of them.
fn adam_tensors<T: Element, const MAXIMIZE: bool, const DECAY: u8, const AMSGRAD: bool>(
    c: &Coef<T>,
    tensors: &mut [TensorSlices<'_, T>],
) {
    for t in tensors {
        let n = t.param.len();
        let [exp_avg, exp_avg_sq, max_exp_avg_sq, _] = &mut t.buffers;
        let (param, grad) = (&mut t.param[..], &t.grad[..n]);
        let (exp_avg, exp_avg_sq) = (&mut exp_avg[..n], &mut exp_avg_sq[..n]);
        let max_exp_avg_sq = if AMSGRAD { &mut max_exp_avg_sq[..n] } else { &mut [] };
        for i in 0..n {
            let (p, _, m, v) =
                c.moments.step::<MAXIMIZE, DECAY>(param[i], grad[i], &mut exp_avg[i], &mut exp_avg_sq[i]);
            let v = if AMSGRAD {
                let v = max_exp_avg_sq[i].nan_max(v);
                max_exp_avg_sq[i] = v;
                v
            } else {
                v
            };
            let denom = v.sqrt() / c.bias_correction2_sqrt + c.eps;
            param[i] = p + c.neg_step_size * m / denom;
        }
    }
}
}

impl Validate for AdamHyper {
    /// torch's argument checks, with its messages.
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        check_at_least_zero("eps", self.eps, "epsilon value")?;
        check_betas(self.betas)?;
        check_at_least_zero("weight_decay", self.weight_decay, "weight_decay value")
    }
}

impl Elementwise for AdamHyper {
    /// `step`
    const SCALARS: usize = 1;
    type Step = AdamStep;

    fn buffers(&self) -> usize {
        if self.amsgrad {
            3
        } else {
            2
        }
    }

    fn begin(&self, scalars: &mut [f64], _fresh: bool) -> AdamStep {
        scalars[0] += 1.0;
        self.at_step(scalars[0])
    }

    fn update<T: Element>(&self, step: &AdamStep, t: TensorSlices<'_, T>) {
        let [m, v, max, _] = t.buffers;
        adam_with(self, step, t.param, t.grad, m, v, self.amsgrad.then_some(max));
    }

    fn update_all<T: Element>(&self, step: &AdamStep, tensors: &mut [TensorSlices<'_, T>]) {
        adam_all(self, &Coef::new(self, step), tensors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_against_reference, ops};

    /// torch's `_single_tensor_adam`, one whole-tensor operation at a time.
    fn reference<T: Element>(
        h: &AdamHyper,
        scalars: &mut [f64],
        _fresh: bool,
        p: &mut [T],
        g: &[T],
        bufs: &mut [Vec<T>],
    ) {
        let mut grad = ops::signed(g, h.maximize);
        scalars[0] += 1.0; // step_t += 1
        if h.weight_decay != 0.0 {
            if h.decoupled_weight_decay {
                ops::mul(p, 1.0 - h.lr * h.weight_decay); // param.mul_(1 - lr * weight_decay)
            } else {
                ops::add_scaled(&mut grad, p, h.weight_decay); // grad.add(param, alpha=wd)
            }
        }
        let (beta1, beta2) = h.betas;
        let (head, tail) = bufs.split_at_mut(2);
        let (exp_avg, exp_avg_sq) = head.split_at_mut(1);
        let (exp_avg, exp_avg_sq) = (&mut exp_avg[0], &mut exp_avg_sq[0]);
        ops::lerp(exp_avg, &grad, 1.0 - beta1); // exp_avg.lerp_(grad, 1 - beta1)
        ops::mul(exp_avg_sq, beta2); // exp_avg_sq.mul_(beta2)
        ops::addcmul(exp_avg_sq, &grad, &grad, 1.0 - beta2); // .addcmul_(grad, grad, value=1 - beta2)
        let step = scalars[0];
        let bias_correction1 = 1.0 - beta1.powf(step);
        let bias_correction2 = 1.0 - beta2.powf(step);
        let step_size = h.lr / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.powf(0.5);
        let mut denom = if h.amsgrad {
            let max = &mut tail[0];
            ops::maximum(max, exp_avg_sq); // torch.nan_max(max_exp_avg_sqs[i], exp_avg_sq, out=...)
            ops::sqrt(max)
        } else {
            ops::sqrt(exp_avg_sq)
        };
        ops::div(&mut denom, bias_correction2_sqrt);
        ops::add(&mut denom, h.eps);
        ops::addcdiv(p, exp_avg, &denom, -step_size); // param.addcdiv_(exp_avg, denom, value=-step_size)
    }

    fn configs() -> Vec<AdamHyper> {
        let mut out = Vec::new();
        for maximize in [false, true] {
            for amsgrad in [false, true] {
                for (weight_decay, decoupled_weight_decay) in [(0.0, false), (0.1, false), (0.1, true)] {
                    out.push(AdamHyper {
                        lr: 0.01,
                        weight_decay,
                        amsgrad,
                        maximize,
                        decoupled_weight_decay,
                        ..AdamHyper::adam()
                    });
                }
            }
        }
        // β₁ below 1/2: torch's lerp takes its other formula.
        out.push(AdamHyper { betas: (0.3, 0.9), ..AdamHyper::adam() });
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
        let bad = AdamHyper { betas: (1.0, 0.0), ..AdamHyper::adam() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid beta parameter at index 0: 1");
        assert!(AdamHyper::adamw().validate().is_ok());
    }
}
