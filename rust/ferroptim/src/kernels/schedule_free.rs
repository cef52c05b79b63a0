//! Schedule-Free SGD, AdamW and RAdam ("The Road Less Scheduled", Defazio et al. 2024,
//! arXiv:2405.15682; AlgoPerf 2024), as the `schedulefree` package's
//! `SGDScheduleFree`, `AdamWScheduleFree` and `RAdamScheduleFree` (their foreach paths).
//!
//! The parameter holds y, the point gradients are taken at; the state holds z, and
//! x (the point to evaluate) is recovered by `eval()`: `x = lerp(y, z, 1 − 1/β₁)`
//! (`train()` goes back: `y = lerp(x, z, 1 − β₁)`). Per step, per group, with
//! k the group's count before the step:
//!
//! ```text
//! lr_t    = lr · warmup(k)  (SGD, AdamW: min(1, (k+1)/warmup_steps));  lr · rect(k+1)  (RAdam)
//! lr_max  ← max(lr_max, lr_t);   w = (k+1)^r · lr_max^weight_lr_power
//! weight_sum ← weight_sum + w;   c = w / weight_sum  (0 if weight_sum is 0)
//! ```
//!
//! and per element, with β the momentum (SGD) or β₁:
//!
//! ```text
//! AdamW, RAdam: v ← β₂·v + (1 − β₂)·g²;  g ← g / (√(v/(1 − β₂^(k+1))) + ε)
//!               (RAdam: only once its rectification applies, ρ_t > 4)
//! g ← g + weight_decay·y
//! y ← lerp(y, z, c);   y ← y + lr_t·(β·(1 − c) − 1)·g
//! z ← z − lr_t·g
//! ```
//!
//! State: `z` (slot 0) and, for AdamW and RAdam, `exp_avg_sq` (slot 1).

use crate::element::{lerp, Element, Lerp};
use crate::exec::TensorSlices;
use crate::kernels::passes::over_chunks;
use crate::kernels::{check_arg, not_below, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// Which of the three optimizers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScheduleFreeKind {
    /// `SGDScheduleFree`: β is `momentum`.
    Sgd {
        /// The interpolation β between the iterate and the average.
        momentum: f64,
        /// The steps of the linear LR warm-up.
        warmup_steps: f64,
    },
    /// `AdamWScheduleFree`.
    AdamW {
        /// (β₁, the interpolation; β₂, the second moment's decay).
        betas: (f64, f64),
        /// Added to the denominator.
        eps: f64,
        /// The steps of the linear LR warm-up.
        warmup_steps: f64,
    },
    /// `RAdamScheduleFree`: learning rate rectified as RAdam's; during the first steps
    /// (ρ_t ≤ 4) an SGD step of lr, or none (`silent_sgd_phase`).
    RAdam {
        /// (β₁, the interpolation; β₂, the second moment's decay).
        betas: (f64, f64),
        /// Added to the denominator.
        eps: f64,
        /// No step at all while ρ_t ≤ 4 (else an SGD step).
        silent_sgd_phase: bool,
    },
}

/// The hyperparameters of a schedule-free optimizer (the package's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleFreeHyper {
    /// SGD, AdamW or RAdam, with their own hyperparameters.
    pub kind: ScheduleFreeKind,
    /// Learning rate.
    pub lr: f64,
    /// Weight decay: `weight_decay·y` added to the (normalized) gradient.
    pub weight_decay: f64,
    /// The power of the step count in the averaging weights (0: uniform).
    pub r: f64,
    /// The power of the learning rate in the averaging weights.
    pub weight_lr_power: f64,
}

impl ScheduleFreeHyper {
    /// `SGDScheduleFree`'s defaults.
    pub const fn sgd() -> Self {
        ScheduleFreeHyper {
            kind: ScheduleFreeKind::Sgd { momentum: 0.9, warmup_steps: 0.0 },
            lr: 1.0,
            weight_decay: 0.0,
            r: 0.0,
            weight_lr_power: 2.0,
        }
    }

    /// `AdamWScheduleFree`'s defaults.
    pub const fn adamw() -> Self {
        ScheduleFreeHyper {
            kind: ScheduleFreeKind::AdamW { betas: (0.9, 0.999), eps: 1e-8, warmup_steps: 0.0 },
            lr: 0.0025,
            weight_decay: 0.0,
            r: 0.0,
            weight_lr_power: 2.0,
        }
    }

    /// `RAdamScheduleFree`'s defaults.
    pub const fn radam() -> Self {
        ScheduleFreeHyper {
            kind: ScheduleFreeKind::RAdam { betas: (0.9, 0.999), eps: 1e-8, silent_sgd_phase: true },
            ..Self::adamw()
        }
    }

    /// β: the momentum or β₁, which `eval()` / `train()` interpolate with.
    pub fn beta(&self) -> f64 {
        match self.kind {
            ScheduleFreeKind::Sgd { momentum, .. } => momentum,
            ScheduleFreeKind::AdamW { betas, .. } | ScheduleFreeKind::RAdam { betas, .. } => betas.0,
        }
    }

    /// Advances the group's `k`, `lr_max` and `weight_sum` by one step and returns the
    /// constants of the step, computed in float64 in the package's order.
    pub fn begin(&self, g: &mut ScheduleFreeGroup) -> ScheduleFreeStep {
        let k = g.k;
        let step = k + 1.0;
        let warmup = |w: f64| if k < w { step / w } else { 1.0 };
        let (lr, normalize, beta2_eps) = match self.kind {
            ScheduleFreeKind::Sgd { warmup_steps, .. } => (self.lr * warmup(warmup_steps), false, None),
            ScheduleFreeKind::AdamW { betas, eps, warmup_steps } => {
                (self.lr * warmup(warmup_steps), true, Some((betas.1, eps, 1.0 - betas.1.powf(step))))
            }
            ScheduleFreeKind::RAdam { betas, eps, silent_sgd_phase } => {
                let beta2_t = betas.1.powf(step);
                let bias_correction2 = 1.0 - beta2_t;
                let rho_inf = 2.0 / (1.0 - betas.1) - 1.0;
                let rho_t = rho_inf - 2.0 * step * beta2_t / bias_correction2;
                let rect = if rho_t > 4.0 {
                    ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).powf(0.5)
                } else if silent_sgd_phase {
                    0.0
                } else {
                    1.0
                };
                (self.lr * rect, rho_t > 4.0, Some((betas.1, eps, bias_correction2)))
            }
        };
        g.scheduled_lr = lr;
        g.lr_max = lr.max(g.lr_max);
        let weight = step.powf(self.r) * g.lr_max.powf(self.weight_lr_power);
        g.weight_sum += weight;
        let ckp1 = if g.weight_sum == 0.0 { 0.0 } else { weight / g.weight_sum };
        g.k = step;
        let (beta2, eps, bias_correction2) = beta2_eps.unwrap_or((0.0, 0.0, 1.0));
        ScheduleFreeStep {
            adaptive: beta2_eps.is_some(),
            normalize,
            beta2,
            eps,
            bias_correction2,
            ckp1,
            y_lr: lr * (self.beta() * (1.0 - ckp1) - 1.0),
            z_lr: lr,
            weight_decay: self.weight_decay,
        }
    }
}

impl Validate for ScheduleFreeHyper {
    /// schedulefree's checks, with its messages: `SGDScheduleFree`'s (`lr < 0`,
    /// `weight_decay < 0`: NaN passes); the AdamW and RAdam rules check nothing.
    fn validate(&self) -> Result<(), HyperError> {
        let ScheduleFreeKind::Sgd { momentum, .. } = self.kind else { return Ok(()) };
        let (lr, wd) = (self.lr, self.weight_decay);
        check_arg(not_below(lr, 0.0), "lr", None, lr, || format!("Invalid learning rate: {lr}"))?;
        check_arg(not_below(wd, 0.0), "weight_decay", None, wd, || format!("Invalid weight_decay value: {wd}"))?;
        check_arg(!(momentum <= 0.0 || momentum >= 1.0), "momentum", None, momentum, || {
            format!("Momentum must be between 0 and 1 exclusive: {momentum}")
        })
    }
}

/// A group's running values, kept in its param group as the package keeps them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleFreeGroup {
    /// Steps taken by the group.
    pub k: f64,
    /// The sum of the averaging weights so far.
    pub weight_sum: f64,
    /// The largest `lr_t` so far.
    pub lr_max: f64,
    /// `lr_t` of the last step: after warm-up, or rectified (RAdam).
    pub scheduled_lr: f64,
}

impl Default for ScheduleFreeGroup {
    /// The package's initial values.
    fn default() -> Self {
        ScheduleFreeGroup { k: 0.0, weight_sum: 0.0, lr_max: -1.0, scheduled_lr: 0.0 }
    }
}

/// The constants of one step of one group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleFreeStep {
    /// Keeps `exp_avg_sq` (AdamW, RAdam).
    pub adaptive: bool,
    /// Divides the gradient by the second moment this step.
    pub normalize: bool,
    /// β₂ of `exp_avg_sq`.
    pub beta2: f64,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// `1 − β₂ᵗ`.
    pub bias_correction2: f64,
    /// `c`, the weight of this step's point in the average.
    pub ckp1: f64,
    /// `lr_t·(β·(1 − c) − 1)`, the gradient's coefficient in `y`'s update.
    pub y_lr: f64,
    /// `lr_t`, the step of `z`.
    pub z_lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
}

#[derive(Clone, Copy)]
struct Coef<T> {
    beta2: T,
    one_minus_beta2: T,
    bias_correction2: T,
    eps: T,
    weight_decay: T,
    ckp1: Lerp<T>,
    y_lr: T,
    neg_z_lr: T,
}

/// One step over each tensor of a group, with the constants `s` from
/// [`ScheduleFreeHyper::begin`]; the parameter is y, state slot 0 is z, slot 1
/// `exp_avg_sq` when `s.adaptive`.
///
/// # Panics
/// If a tensor lacks its state arrays.
pub fn schedule_free<T: Element>(s: &ScheduleFreeStep, tensors: &mut [TensorSlices<'_, T>]) {
    for t in tensors.iter() {
        let ok = t.buffers[0].len() == t.len() && (!s.adaptive || t.buffers[1].len() == t.len());
        assert!(ok, "a schedule-free optimizer needs z (and exp_avg_sq)");
    }
    let c = Coef {
        beta2: T::of(s.beta2),
        one_minus_beta2: T::of(1.0 - s.beta2),
        bias_correction2: T::of(s.bias_correction2),
        eps: T::of(s.eps),
        weight_decay: T::of(s.weight_decay),
        ckp1: Lerp::new(s.ckp1),
        y_lr: T::of(s.y_lr),
        neg_z_lr: T::of(-s.z_lr),
    };
    with_const_bool!(s.adaptive, ADA => with_const_bool!(s.normalize, NORM => with_const_bool!(s.weight_decay != 0.0, WD => {
        over_chunks(tensors, |_, t| {
            let [z, v, ..] = t.buffers;
            schedule_free_loop::<T, ADA, NORM, WD>(&c, t.param, t.grad, z, v)
        })
    })));
}

simd_targets! {
fn schedule_free_loop<T: Element, const ADAPTIVE: bool, const NORMALIZE: bool, const DECAY: bool>(
    c: &Coef<T>,
    y: &mut [T],
    grad: &[T],
    z: &mut [T],
    v: &mut [T],
) {
    let n = y.len();
    let (grad, z) = (&grad[..n], &mut z[..n]);
    let v = if ADAPTIVE { &mut v[..n] } else { v };
    for i in 0..n {
        let mut g = grad[i];
        if ADAPTIVE {
            let vi = (c.one_minus_beta2 * g).mul_add(g, v[i] * c.beta2);
            v[i] = vi;
            if NORMALIZE {
                g = g / ((vi / c.bias_correction2).sqrt() + c.eps);
            }
        }
        if DECAY {
            g = c.weight_decay.mul_add(y[i], g);
        }
        let yi = lerp(y[i], z[i], c.ckp1);
        y[i] = c.y_lr.mul_add(g, yi);
        z[i] = c.neg_z_lr.mul_add(g, z[i]);
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_tensors_per_run, ops, RefTensor, THREADS};

    /// The packages' foreach paths, one tensor operation at a time (the group's
    /// constants from the same `begin`, checked against the package's recorded
    /// param groups in the Python suite).
    fn reference<T: Element>(s: &ScheduleFreeStep, t: &mut RefTensor<T>, g: &[T]) {
        let mut grad = g.to_vec();
        let y = &mut t.param;
        let (z, rest) = t.state.split_first_mut().unwrap();
        if s.adaptive {
            let v = &mut rest[0];
            ops::mul(v, s.beta2);
            ops::addcmul(v, &grad, &grad, 1.0 - s.beta2);
            if s.normalize {
                let mut denom = v.clone();
                ops::div(&mut denom, s.bias_correction2);
                denom = ops::sqrt(&denom);
                ops::add(&mut denom, s.eps);
                ops::div_elementwise(&mut grad, &denom);
            }
        }
        if s.weight_decay != 0.0 {
            ops::add_scaled(&mut grad, y, s.weight_decay);
        }
        ops::lerp(y, z, s.ckp1);
        ops::add_scaled(y, &grad, s.y_lr);
        ops::add_scaled(z, &grad, -s.z_lr);
    }

    fn check<T: Element>(h: &ScheduleFreeHyper) {
        let init = |p: &[T]| vec![p.iter().map(|&x| x * T::of(0.5)).collect(), vec![T::zero(); p.len()]];
        // one group state per thread count (see check_tensors_per_run); the first
        // run's step values are the reference's
        let groups = std::cell::RefCell::new(vec![ScheduleFreeGroup::default(); THREADS.len()]);
        let steps = std::cell::RefCell::new(Vec::new());
        check_tensors_per_run::<T>(
            init,
            |t, _, _, run| {
                let s = h.begin(&mut groups.borrow_mut()[run]);
                if run == 0 {
                    steps.borrow_mut().push(s);
                }
                schedule_free(&s, t)
            },
            |ts, gs, step| {
                let s = steps.borrow()[step];
                ts.iter_mut().zip(gs).for_each(|(t, g)| reference(&s, t, g))
            },
        );
    }

    #[test]
    fn matches_the_scalar_reference() {
        let sgd = ScheduleFreeHyper {
            kind: ScheduleFreeKind::Sgd { momentum: 0.5, warmup_steps: 3.0 },
            ..ScheduleFreeHyper::sgd()
        };
        let configs = [
            ScheduleFreeHyper::sgd(),
            ScheduleFreeHyper { weight_decay: 0.01, r: 0.5, ..sgd },
            ScheduleFreeHyper::adamw(),
            ScheduleFreeHyper {
                weight_decay: 0.1,
                r: 0.5,
                weight_lr_power: 1.0,
                kind: ScheduleFreeKind::AdamW { betas: (0.9, 0.999), eps: 1e-8, warmup_steps: 2.0 },
                ..ScheduleFreeHyper::adamw()
            },
            ScheduleFreeHyper::radam(),
            ScheduleFreeHyper {
                kind: ScheduleFreeKind::RAdam { betas: (0.9, 0.5), eps: 1e-8, silent_sgd_phase: false },
                weight_decay: 0.1,
                ..ScheduleFreeHyper::radam()
            },
        ];
        for h in configs {
            check::<f32>(&h);
            check::<f64>(&h);
        }
    }

    #[test]
    fn group_values_follow_the_package() {
        // AdamWScheduleFree() after 12 steps (tests/reference/beyond): k 12,
        // weight_sum 7.500000000000002e-05, lr_max = scheduled_lr = 0.0025.
        let h = ScheduleFreeHyper::adamw();
        let mut g = ScheduleFreeGroup::default();
        for _ in 0..12 {
            h.begin(&mut g);
        }
        assert_eq!(
            g,
            ScheduleFreeGroup { k: 12.0, weight_sum: 7.500000000000002e-05, lr_max: 0.0025, scheduled_lr: 0.0025 }
        );
    }
}
