//! ADOPT ("ADOPT: Modified Adam Can Converge with Any β₂ with the Optimal Rate",
//! Taniguchi et al., NeurIPS 2024, arXiv:2411.02853), as `timm.optim.Adopt`
//! (its single-tensor path).
//!
//! Update rule, per element, with `t` the parameter's step count after this step:
//!
//! ```text
//! g ← ∇θ, negated if maximize;   g ← g + weight_decay·θ unless decoupled
//! first step (state just created):  v ← v + g²;  nothing else
//! otherwise:
//!   θ ← θ − s·weight_decay·θ if decoupled  (s = lr, or lr²/max_lr)
//!   n ← g / max(√v, ε), clamped to ±(t − 1)^clip_exp unless clip_exp is None
//!   m ← lerp(m, n, 1 − β₁)
//!   θ ← θ − lr·m   (m masked as Lion's when caution)
//!   v ← β₂·v + (1 − β₂)·g²
//! ```
//!
//! State: scalar `step`; `exp_avg` (m, slot 0), `exp_avg_sq` (v, slot 1).

use crate::element::{lerp, Element, Lerp};
use crate::exec::TensorSlices;
use crate::kernels::lion::decay_scale;
use crate::kernels::passes::{agrees, caution_scale, lane_sums, over_chunks, total};
use crate::kernels::{check_at_least_zero, check_betas, check_max_lr, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of ADOPT (timm's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdoptHyper {
    /// Learning rate.
    pub lr: f64,
    /// (β₁, β₂): of the normalized gradient's average and of the squared gradient's average.
    pub betas: (f64, f64),
    /// The floor of `√v` the gradient is divided by.
    pub eps: f64,
    /// `Some(c)`: the normalized gradient is clamped to `±(t − 1)^c`; `None`: no clamping.
    pub clip_exp: Option<f64>,
    /// Weight decay (0 for none), decoupled or added to the gradient as `decoupled` says.
    pub weight_decay: f64,
    /// Decoupled decay `θ ← θ − s·weight_decay·θ`; otherwise `g ← g + weight_decay·θ`.
    pub decoupled: bool,
    /// `Some(max_lr)` with `corrected_weight_decay`.
    pub max_lr: Option<f64>,
    /// The "Cautious Optimizers" mask (arXiv:2411.16085): update elements whose sign disagrees with
    /// the gradient's are zeroed, the rest rescaled.
    pub caution: bool,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl AdoptHyper {
    /// `timm.optim.Adopt`'s defaults.
    pub const fn timm() -> Self {
        AdoptHyper {
            lr: 1e-3,
            betas: (0.9, 0.9999),
            eps: 1e-6,
            clip_exp: Some(0.333),
            weight_decay: 0.0,
            decoupled: false,
            max_lr: None,
            caution: false,
            maximize: false,
        }
    }
}

impl Default for AdoptHyper {
    fn default() -> Self {
        Self::timm()
    }
}

impl Validate for AdoptHyper {
    /// timm's checks, with its messages.
    fn validate(&self) -> Result<(), HyperError> {
        check_at_least_zero("lr", self.lr, "learning rate")?;
        check_at_least_zero("eps", self.eps, "epsilon value")?;
        check_betas(self.betas)?;
        check_at_least_zero("weight_decay", self.weight_decay, "weight_decay value")?;
        check_max_lr(self.max_lr)
    }
}

#[derive(Clone, Copy)]
struct Coef<T> {
    l2: T,
    decay: T,
    eps: T,
    clip: T,
    beta1: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
    neg_lr: T,
}

/// One ADOPT step over each tensor; `steps[i]` is tensor i's step count (advanced
/// here), `fresh[i]` whether its state was created for this step.
///
/// # Panics
/// If the lists differ in length or a tensor lacks `exp_avg` / `exp_avg_sq`.
pub fn adopt<T: Element>(h: &AdoptHyper, tensors: &mut [TensorSlices<'_, T>], steps: &mut [f64], fresh: &[bool]) {
    assert!(steps.len() == tensors.len() && fresh.len() == tensors.len(), "one step and flag per tensor");
    for t in tensors.iter() {
        assert!(t.buffers[0].len() == t.len() && t.buffers[1].len() == t.len(), "ADOPT needs exp_avg and exp_avg_sq");
    }
    let coefs: Vec<Coef<T>> = steps
        .iter_mut()
        .map(|s| {
            *s += 1.0;
            Coef {
                l2: T::of(if h.decoupled { 0.0 } else { h.weight_decay }),
                decay: T::of(if h.decoupled { -decay_scale(h.lr, h.max_lr) * h.weight_decay } else { 0.0 }),
                eps: T::of(h.eps),
                clip: T::of(h.clip_exp.map_or(f64::INFINITY, |e| (*s - 1.0).powf(e))),
                beta1: Lerp::new(1.0 - h.betas.0),
                beta2: T::of(h.betas.1),
                one_minus_beta2: T::of(1.0 - h.betas.1),
                neg_lr: T::of(-h.lr),
            }
        })
        .collect();
    let clip = h.clip_exp.is_some();
    let scales: Vec<T> = if h.caution {
        let counts = with_const_bool!(h.maximize, MAX => with_const_bool!(clip, CLIP =>
        over_chunks(tensors, |i, s| {
            let [m, v, ..] = s.buffers;
            if fresh[i] { [0.0] } else { count::<T, MAX, CLIP>(&coefs[i], s.param, s.grad, m, v) }
        })));
        counts.iter().zip(tensors.iter()).map(|(c, t)| caution_scale(total(c)[0], t.len())).collect()
    } else {
        vec![T::one(); tensors.len()]
    };
    with_const_bool!(h.maximize, MAX => with_const_bool!(clip, CLIP => with_const_bool!(h.caution, CAU => {
        over_chunks(tensors, |i, s| {
            let [m, v, ..] = s.buffers;
            if fresh[i] {
                first_loop::<T, MAX>(&coefs[i], s.param, s.grad, v)
            } else {
                adopt_loop::<T, MAX, CLIP, CAU>(&coefs[i], scales[i], s.param, s.grad, m, v)
            }
        })
    })));
}

#[inline(always)]
fn gradient<T: Element, const MAXIMIZE: bool>(c: &Coef<T>, param: T, grad: T) -> T {
    let g = if MAXIMIZE { -grad } else { grad };
    c.l2.mul_add(param, g) // grad.add(param, alpha=weight_decay); by 0: g itself
}

/// The new m of one element, and g.
#[inline(always)]
fn moment<T: Element, const MAXIMIZE: bool, const CLIP: bool>(c: &Coef<T>, p: T, grad: T, m: T, v: T) -> (T, T) {
    let g = gradient::<T, MAXIMIZE>(c, p, grad);
    let r = v.sqrt();
    let denom = if r < c.eps { c.eps } else { r }; // torch.clamp(√v, ε): NaN stays
    let mut n = g / denom;
    if CLIP {
        n = if n < -c.clip {
            -c.clip
        } else if n > c.clip {
            c.clip
        } else {
            n
        };
    }
    (lerp(m, n, c.beta1), g)
}

simd_targets! {
fn first_loop<T: Element, const MAXIMIZE: bool>(c: &Coef<T>, param: &[T], grad: &[T], v: &mut [T]) {
    let n = param.len();
    let (grad, v) = (&grad[..n], &mut v[..n]);
    for i in 0..n {
        let g = gradient::<T, MAXIMIZE>(c, param[i], grad[i]);
        v[i] = g.mul_add(g, v[i]); // exp_avg_sq.addcmul_(grad, grad)
    }
}
}

simd_targets! {
fn count<T: Element, const MAXIMIZE: bool, const CLIP: bool>(
    c: &Coef<T>,
    param: &[T],
    grad: &[T],
    m: &[T],
    v: &[T],
) -> [f64; 1] {
    let n = param.len();
    let (grad, m, v) = (&grad[..n], &m[..n], &v[..n]);
    lane_sums(n, |i| {
        let (m, g) = moment::<T, MAXIMIZE, CLIP>(c, param[i], grad[i], m[i], v[i]);
        [if agrees(m, g) { 1.0 } else { 0.0 }]
    })
}
}

simd_targets! {
fn adopt_loop<T: Element, const MAXIMIZE: bool, const CLIP: bool, const CAUTION: bool>(
    c: &Coef<T>,
    scale: T,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let n = param.len();
    let (grad, m, v) = (&grad[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let (mi, g) = moment::<T, MAXIMIZE, CLIP>(c, param[i], grad[i], m[i], v[i]);
        m[i] = mi;
        let u = if CAUTION { mi * if agrees(mi, g) { scale } else { T::zero() } } else { mi };
        let p = c.decay.mul_add(param[i], param[i]); // param.add_(param, alpha=-s·wd); by 0: θ
        param[i] = c.neg_lr.mul_add(u, p);
        v[i] = (c.one_minus_beta2 * g).mul_add(g, v[i] * c.beta2);
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_each, ops, zeros, RefTensor};

    /// timm's `_single_tensor_adopt`, one tensor operation at a time.
    fn reference<T: Element>(h: &AdoptHyper, t: &mut RefTensor<T>, g: &[T]) {
        let mut grad = ops::signed(g, h.maximize);
        t.scalar += 1.0;
        let step = t.scalar;
        let p = &mut t.param;
        let (head, tail) = t.state.split_at_mut(1);
        let (exp_avg, exp_avg_sq) = (&mut head[0], &mut tail[0]);
        if h.weight_decay != 0.0 && !h.decoupled {
            ops::add_scaled(&mut grad, p, h.weight_decay);
        }
        if step == 1.0 {
            ops::addcmul(exp_avg_sq, &grad, &grad, 1.0);
            return;
        }
        if h.weight_decay != 0.0 && h.decoupled {
            let q = p.clone();
            ops::add_scaled(p, &q, -decay_scale(h.lr, h.max_lr) * h.weight_decay);
        }
        let mut denom = ops::sqrt(exp_avg_sq);
        ops::clamp_min(&mut denom, h.eps);
        let mut normed = grad.clone();
        ops::div_elementwise(&mut normed, &denom);
        if let Some(e) = h.clip_exp {
            ops::clamp_abs(&mut normed, (step - 1.0).powf(e));
        }
        ops::lerp(exp_avg, &normed, 1.0 - h.betas.0);
        let mut update = exp_avg.clone();
        if h.caution {
            ops::caution(&mut update, &grad);
        }
        ops::add_scaled(p, &update, -h.lr);
        ops::mul(exp_avg_sq, h.betas.1);
        ops::addcmul(exp_avg_sq, &grad, &grad, 1.0 - h.betas.1);
    }

    fn configs() -> Vec<AdoptHyper> {
        let mut out = vec![AdoptHyper::timm()];
        for maximize in [false, true] {
            for caution in [false, true] {
                for (decoupled, clip_exp) in [(false, None), (true, Some(0.25)), (false, Some(0.333))] {
                    out.push(AdoptHyper {
                        lr: 0.01,
                        weight_decay: 0.1,
                        decoupled,
                        clip_exp,
                        caution,
                        maximize,
                        max_lr: decoupled.then_some(0.02),
                        ..AdoptHyper::timm()
                    });
                }
            }
        }
        out
    }

    fn kernel<T: Element>(h: &AdoptHyper) -> impl Fn(&mut [TensorSlices<'_, T>], &mut [f64], usize) + '_ {
        move |t, steps, _| {
            let fresh: Vec<bool> = steps.iter().map(|&s| s == 0.0).collect();
            adopt(h, t, steps, &fresh)
        }
    }

    #[test]
    fn matches_the_scalar_reference() {
        for h in configs() {
            check_each::<f32>(zeros(2), kernel(&h), |t, g, _| reference(&h, t, g));
            check_each::<f64>(zeros(2), kernel(&h), |t, g, _| reference(&h, t, g));
        }
    }
}
