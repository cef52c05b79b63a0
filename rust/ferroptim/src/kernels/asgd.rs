//! ASGD (averaged SGD), as `torch.optim.ASGD`.
//!
//! Update rule, per element, with `t` the step count after this step and η, μ the
//! values from before it (torch's `_single_tensor_asgd`):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! if weight_decay ≠ 0:  g ← g + weight_decay·θ
//! θ ← θ·(1 − λ·η) − η·g
//! ā ← ā + μ·(θ − ā)          (ā ← θ while μ = 1)
//! then, per parameter:  η ← lr / (1 + λ·lr·t)^α,   μ ← 1 / max(1, t − t₀)
//! ```
//!
//! State: scalars `step`, `eta` (starts at lr) and `mu` (starts at 1); buffer `ax` (ā).

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::{check_at_least_zero, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of ASGD, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AsgdHyper {
    /// Learning rate (torch's `lr`).
    pub lr: f64,
    /// Decay term.
    pub lambd: f64,
    /// Power for the `eta` update.
    pub alpha: f64,
    /// The step at which averaging starts.
    pub t0: f64,
    /// Weight decay: `weight_decay·θ` added to the gradient (torch's `weight_decay`; 0 for none).
    pub weight_decay: f64,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for AsgdHyper {
    fn default() -> Self {
        AsgdHyper { lr: 1e-2, lambd: 1e-4, alpha: 0.75, t0: 1e6, weight_decay: 0.0, maximize: false }
    }
}

/// The η and μ one ASGD step uses (the values from before the step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AsgdStep {
    /// The step size of this step (torch's state `eta`).
    pub eta: f64,
    /// The averaging coefficient of this step (torch's state `mu`).
    pub mu: f64,
}

#[derive(Clone, Copy)]
struct Coef<T> {
    weight_decay: T,
    decay: T,
    neg_eta: T,
    mu: T,
}

simd_targets! {
fn asgd_loop<T: Element, const MAXIMIZE: bool, const DECAY: bool, const AVERAGE: bool>(
    c: &Coef<T>,
    param: &mut [T],
    grad: &[T],
    ax: &mut [T],
) {
    let n = param.len();
    let (grad, ax) = (&grad[..n], &mut ax[..n]);
    for i in 0..n {
        let mut g = if MAXIMIZE { -grad[i] } else { grad[i] };
        if DECAY {
            g = c.weight_decay.mul_add(param[i], g); // grad.add(param, alpha=wd): one fma
        }
        let p = c.neg_eta.mul_add(g, param[i] * c.decay); // mul_, then add_(g, alpha=−η): one fma
        param[i] = p;
        ax[i] = if AVERAGE { ax[i] + (p - ax[i]) * c.mu } else { p };
    }
}
}

impl Validate for AsgdHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        check_at_least_zero("lambd", self.lambd, "lambd value")?;
        check_at_least_zero("alpha", self.alpha, "alpha value")?;
        check_at_least_zero("weight_decay", self.weight_decay, "weight_decay value")
    }
}

impl Elementwise for AsgdHyper {
    /// `step`, `eta`, `mu`
    const SCALARS: usize = 3;
    type Step = AsgdStep;

    /// `ax`
    fn buffers(&self) -> usize {
        1
    }

    fn begin(&self, scalars: &mut [f64], fresh: bool) -> AsgdStep {
        if fresh {
            scalars[1] = self.lr; // torch.as_tensor(lr)
            scalars[2] = 1.0; // torch.ones(())
        }
        let used = AsgdStep { eta: scalars[1], mu: scalars[2] };
        scalars[0] += 1.0;
        let step = scalars[0];
        scalars[1] = self.lr / (1.0 + self.lambd * self.lr * step).powf(self.alpha);
        scalars[2] = 1.0 / f64::max(1.0, step - self.t0);
        used
    }

    fn update<T: Element>(&self, s: &AsgdStep, t: TensorSlices<'_, T>) {
        let [ax, ..] = t.buffers;
        let c = Coef {
            weight_decay: T::of(self.weight_decay),
            decay: T::of(1.0 - self.lambd * s.eta),
            neg_eta: T::of(-s.eta),
            mu: T::of(s.mu),
        };
        with_const_bool!(self.maximize, MAX => with_const_bool!(self.weight_decay != 0.0, DECAY =>
            with_const_bool!(s.mu != 1.0, AVG => asgd_loop::<T, MAX, DECAY, AVG>(&c, t.param, t.grad, ax))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_all, ops};

    /// torch's `_single_tensor_asgd`, one whole-tensor operation at a time.
    fn reference<T: Element>(
        h: &AsgdHyper,
        scalars: &mut [f64],
        fresh: bool,
        p: &mut [T],
        g: &[T],
        bufs: &mut [Vec<T>],
    ) {
        if fresh {
            scalars[1] = h.lr;
            scalars[2] = 1.0;
        }
        let mut grad = ops::signed(g, h.maximize);
        scalars[0] += 1.0;
        let step = scalars[0];
        if h.weight_decay != 0.0 {
            ops::add_scaled(&mut grad, p, h.weight_decay);
        }
        let (eta, mu) = (scalars[1], scalars[2]);
        ops::mul(p, 1.0 - h.lambd * eta);
        ops::add_scaled(p, &grad, -eta);
        let ax = &mut bufs[0];
        if mu != 1.0 {
            let mut diff: Vec<T> = p.iter().zip(ax.iter()).map(|(&a, &b)| a - b).collect(); // param.sub(ax).mul_(mu)
            ops::mul(&mut diff, mu);
            ops::add_scaled(ax, &diff, 1.0);
        } else {
            ax.copy_from_slice(p);
        }
        scalars[1] = h.lr / (1.0 + h.lambd * h.lr * step).powf(h.alpha);
        scalars[2] = 1.0 / f64::max(1.0, step - h.t0);
    }

    #[test]
    fn matches_the_scalar_reference() {
        let mut configs = vec![AsgdHyper { t0: 2.0, lambd: 0.1, ..Default::default() }];
        for maximize in [false, true] {
            for weight_decay in [0.0, 0.1] {
                configs.push(AsgdHyper { weight_decay, maximize, ..Default::default() });
            }
        }
        check_all(&configs, reference, reference);
    }
}
