//! LAMB ("Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
//! You et al. 2019, arXiv:1904.00962), as `timm.optim.Lamb` (NVIDIA's NvLamb variant;
//! its single-tensor path).
//!
//! Update rule, with `t` the group's step count after this step:
//!
//! ```text
//! global: c ← max(‖(‖g₁‖, ‖g₂‖, …)‖ / max_grad_norm, 1) over every gradient of every
//!         group ([`lamb_clip`]; no clipping if max_grad_norm is None);  g ← g / c
//! m ← lerp(m, g, 1 − β₁) if grad_averaging, else β₁·m + g
//! v ← β₂·v + (1 − β₂)·g²
//! u ← (m / bc₁) / (√v/√bc₂ + ε)      bc = 1 − βᵗ, or 1 without bias_correction
//! u ← u masked as Lion's if caution
//! weight_decay ≠ 0: θ ← θ − s·wd·θ if decoupled_decay (s = lr or lr²/max_lr), else u ← u + wd·θ
//! weight_decay ≠ 0 or always_adapt: u ← u·r,  r = ‖θ‖/‖u‖ (1 if either is 0), min(r, 1) if trust_clip
//! θ ← θ − lr·u
//! ```
//!
//! State: `exp_avg` (m, slot 0), `exp_avg_sq` (v, slot 1); the step count is the
//! group's. Passes: the global norm (`grad_norm::norms`, when clipping), the caution
//! count (with caution), then either the whole update in one pass (no trust ratio)
//! or two: the two norms of the trust ratio (the new moments stored), and the update
//! computed again from the stored moments (the gradient read only for the caution
//! mask).

use crate::element::{lerp, Element, Lerp};
use crate::exec::TensorSlices;
use crate::kernels::div_by::{checked_blocks, checked_lane_sums, in_window, sqrt_in_window, ClipBy, DivBy, Route};
use crate::kernels::lion::decay_scale;
use crate::kernels::passes::{agrees, caution_scale, norm, over_chunks, reduce_then_update, total};
use crate::kernels::{check_arg, check_max_lr, not_below, simd_targets, with_const_bool, with_decay, Decay};
use crate::{HyperError, Validate};

/// The hyperparameters of LAMB (timm's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LambHyper {
    /// Learning rate.
    pub lr: f64,
    /// Divide the moments by `1 − βᵗ`.
    pub bias_correction: bool,
    /// Coefficients of the running averages of the gradient and of its square.
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Weight decay (0 for none), decoupled or added to the update as `decoupled_decay` says.
    pub weight_decay: f64,
    /// `m ← lerp(m, g, 1 − β₁)`; otherwise `m ← β₁·m + g`.
    pub grad_averaging: bool,
    /// Clip the trust ratio at 1 (LAMBC).
    pub trust_clip: bool,
    /// Apply the trust ratio even without weight decay.
    pub always_adapt: bool,
    /// The "Cautious Optimizers" mask (arXiv:2411.16085): update elements whose sign disagrees with
    /// the gradient's are zeroed, the rest rescaled.
    pub caution: bool,
    /// Decoupled decay `θ ← θ − s·wd·θ`; otherwise `wd·θ` is added to the update.
    pub decoupled_decay: bool,
    /// `Some(max_lr)` with decoupled decay and `corrected_weight_decay`.
    pub max_lr: Option<f64>,
    /// The largest global gradient norm before the gradients are scaled down (None:
    /// no clipping). timm reads it from the optimizer's defaults, the Rust
    /// `Optimizer` from the first group's; the kernels take it through
    /// [`lamb_clip`].
    pub max_grad_norm: Option<f64>,
}

impl LambHyper {
    /// `timm.optim.Lamb`'s defaults.
    pub const fn timm() -> Self {
        LambHyper {
            lr: 1e-3,
            bias_correction: true,
            betas: (0.9, 0.999),
            eps: 1e-6,
            weight_decay: 0.01,
            grad_averaging: true,
            trust_clip: false,
            always_adapt: false,
            caution: false,
            decoupled_decay: false,
            max_lr: None,
            max_grad_norm: Some(1.0),
        }
    }

    fn adapts(&self) -> bool {
        self.weight_decay != 0.0 || self.always_adapt
    }
}

impl Default for LambHyper {
    fn default() -> Self {
        Self::timm()
    }
}

impl Validate for LambHyper {
    /// timm's checks, with its messages.
    fn validate(&self) -> Result<(), HyperError> {
        let (lr, eps, wd) = (self.lr, self.eps, self.weight_decay);
        check_arg(not_below(lr, 0.0), "lr", None, lr, || format!("Invalid learning rate: {lr}"))?;
        check_arg(not_below(eps, 0.0), "eps", None, eps, || format!("Invalid epsilon: {eps}"))?;
        check_arg(not_below(wd, 0.0), "weight_decay", None, wd, || format!("Invalid weight_decay: {wd}"))?;
        check_max_lr(self.max_lr)
    }
}

/// The global clipping divisor `max(‖(‖g₁‖, ‖g₂‖, …)‖ / max_grad_norm, 1)` from each
/// gradient's norm (`grad_norm::norms`, over every group), or None without clipping
/// or without gradients (timm then leaves the gradients as they are).
pub fn lamb_clip(max_grad_norm: Option<f64>, grad_norms: &[f64]) -> Option<f64> {
    let max = max_grad_norm?;
    if grad_norms.is_empty() {
        return None;
    }
    let global = grad_norms.iter().map(|n| n * n).sum::<f64>().sqrt();
    let c = global / max;
    Some(if c < 1.0 { 1.0 } else { c })
}

#[derive(Clone, Copy)]
struct Coef<T> {
    clip: ClipBy<T>,
    beta1: Lerp<T>,
    beta1_mul: T,
    beta3: T,
    beta2: T,
    one_minus_beta2: T,
    bias_correction1: DivBy<T>,
    bias_correction2_sqrt: DivBy<T>,
    /// how the loops divide by the three divisors
    route: Route,
    eps: T,
    weight_decay: T,
    decay: T,
    neg_lr: T,
}

/// One LAMB step over each tensor of a group, `step` being the group's step count
/// after this step and `clip` the global divisor from [`lamb_clip`].
///
/// # Panics
/// If a tensor lacks `exp_avg` or `exp_avg_sq`.
pub fn lamb<T: Element>(h: &LambHyper, step: f64, clip: Option<f64>, tensors: &mut [TensorSlices<'_, T>]) {
    for t in tensors.iter() {
        assert!(t.buffers[0].len() == t.len() && t.buffers[1].len() == t.len(), "LAMB needs exp_avg and exp_avg_sq");
    }
    let (b1, b2) = h.betas;
    let (bc1, bc2) = if h.bias_correction { (1.0 - b1.powf(step), 1.0 - b2.powf(step)) } else { (1.0, 1.0) };
    let beta3 = if h.grad_averaging { 1.0 - b1 } else { 1.0 };
    let (clip, bias_correction1, bias_correction2_sqrt) =
        (ClipBy::new(T::of(clip.unwrap_or(1.0))), DivBy::new(T::of(bc1)), DivBy::new(T::of(bc2.powf(0.5))));
    let c = Coef {
        clip, // dividing by 1 leaves every value as it is
        beta1: Lerp::new(beta3),
        beta1_mul: T::of(b1),
        beta3: T::of(beta3),
        beta2: T::of(b2),
        one_minus_beta2: T::of(1.0 - b2),
        bias_correction1,
        bias_correction2_sqrt,
        route: Route::of::<T>(&[clip.usable(), bias_correction1.usable(), bias_correction2_sqrt.usable()]),
        eps: T::of(h.eps),
        weight_decay: T::of(h.weight_decay),
        decay: T::of(if h.decoupled_decay { -decay_scale(h.lr, h.max_lr) * h.weight_decay } else { 0.0 }),
        neg_lr: T::of(-h.lr),
    };
    let lerp_m = beta3 == 1.0 - b1;
    let decay = Decay::of(h.weight_decay, h.decoupled_decay);
    let scales: Vec<T> = if h.caution {
        let counts = with_const_bool!(lerp_m, LERP => over_chunks(tensors, |_, s| count_loop::<T, LERP>(&c, s.grad, s.buffers[0], s.buffers[1])));
        counts.iter().zip(tensors.iter()).map(|(n, t)| caution_scale(total(n)[0], t.len())).collect()
    } else {
        vec![T::one(); tensors.len()]
    };
    if !h.adapts() {
        with_const_bool!(lerp_m, LERP => with_decay!(decay, D => with_const_bool!(h.caution, CAU =>
        over_chunks(tensors, |i, s| {
            let [m, v, ..] = s.buffers;
            apply_loop::<T, LERP, D, CAU>(&c, scales[i], s.param, s.grad, m, v)
        }))));
        return;
    }
    let ratio = |[w, u]: [f64; 2]| {
        let (w, u) = (norm::<T>(w), norm::<T>(u));
        let r = if w > T::zero() && u > T::zero() { w / u } else { T::one() };
        if h.trust_clip && r > T::one() {
            T::one()
        } else {
            r
        }
    };
    with_const_bool!(lerp_m, LERP => with_decay!(decay, D => with_const_bool!(h.caution, CAU =>
    reduce_then_update(
        tensors,
        |i, s| {
            let [m, v, ..] = s.buffers;
            norms_loop::<T, LERP, D, CAU>(&c, scales[i], s.param, s.grad, m, v)
        },
        |_, sums| ratio(sums),
        |i, ratio, s| {
            let [m, v, ..] = s.buffers;
            stored_loop::<T, D, CAU>(&c, scales[i], ratio, s.param, s.grad, m, v)
        },
    ))));
}

/// The clipped gradient, the new m and v of one element (`fast`: the division as
/// [`DivBy::div`]).
#[inline(always)]
fn moments<T: Element, const LERP: bool>(c: &Coef<T>, grad: T, m: T, v: T, fast: bool) -> (T, T, T) {
    let g = c.clip.div(grad, fast);
    let m = if LERP { lerp(m, g, c.beta1) } else { c.beta3.mul_add(g, m * c.beta1_mul) };
    let v = (c.one_minus_beta2 * g).mul_add(g, v * c.beta2);
    (g, m, v)
}

/// Whether the divisions of [`moments`] and [`update`] of this element are in
/// [`DivBy::fast`]'s window (read before the block writes the moments; asked on
/// [`Route::Checked`] only).
#[inline(always)]
fn moments_in_window<T: Element, const LERP: bool>(c: &Coef<T>, grad: T, m: T, v: T) -> bool {
    let (_, m, v) = moments::<T, LERP>(c, grad, m, v, true); // exact when grad is in the window
    in_window(grad) & in_window(m) & sqrt_in_window(v)
}

/// The update u of one element (before decay and trust ratio), from the new m and v.
#[inline(always)]
fn update<T: Element>(c: &Coef<T>, m: T, v: T, fast: bool) -> T {
    let denom = c.bias_correction2_sqrt.div(v.sqrt(), fast) + c.eps;
    c.bias_correction1.div(m, fast) / denom
}

/// The decayed parameter and the update of one element, after the caution mask
/// (`scale`) and the L2 term.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one element's values and the block's path
fn decayed<T: Element, const DECAY: u8, const CAUTION: bool>(
    c: &Coef<T>,
    scale: T,
    p: T,
    g: T,
    m: T,
    v: T,
    fast: bool,
) -> (T, T) {
    let mut u = update(c, m, v, fast);
    if CAUTION {
        u = u * if agrees(u, g) { scale } else { T::zero() };
    }
    if DECAY == Decay::Decoupled as u8 {
        (c.decay.mul_add(p, p), u)
    } else if DECAY == Decay::L2 as u8 {
        (p, c.weight_decay.mul_add(p, u))
    } else {
        (p, u)
    }
}

simd_targets! {
/// The caution count: elements whose update has the gradient's sign.
fn count_loop<T: Element, const LERP: bool>(c: &Coef<T>, grad: &[T], m: &[T], v: &[T]) -> [f64; 1] {
    let n = grad.len();
    let (m, v) = (&m[..n], &v[..n]);
    checked_lane_sums(
        n,
        c.route,
        &mut (),
        |_, i| moments_in_window::<T, LERP>(c, grad[i], m[i], v[i]),
        |_, i, fast| {
            let (g, mi, vi) = moments::<T, LERP>(c, grad[i], m[i], v[i], fast);
            [if agrees(update(c, mi, vi, fast), g) { 1.0 } else { 0.0 }]
        },
    )
}
}

simd_targets! {
/// `[Σ θ², Σ u²]` of the decayed parameter and the update; stores the new moments
/// (the update is computed again, from them, by [`stored_loop`]).
fn norms_loop<T: Element, const LERP: bool, const DECAY: u8, const CAUTION: bool>(
    c: &Coef<T>,
    scale: T,
    param: &[T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) -> [f64; 2] {
    let n = param.len();
    let grad = &grad[..n];
    checked_lane_sums(
        n,
        c.route,
        &mut (&mut m[..n], &mut v[..n]),
        |(m, v), i| moments_in_window::<T, LERP>(c, grad[i], m[i], v[i]),
        |(m, v), i, fast| {
            let (g, mi, vi) = moments::<T, LERP>(c, grad[i], m[i], v[i], fast);
            m[i] = mi;
            v[i] = vi;
            let (p, u) = decayed::<T, DECAY, CAUTION>(c, scale, param[i], g, mi, vi, fast);
            let (p, u) = (p.to_f64().unwrap_or(f64::NAN), u.to_f64().unwrap_or(f64::NAN));
            [p * p, u * u]
        },
    )
}
}

simd_targets! {
/// The update with the moments stored by [`norms_loop`] (the gradient read only for
/// the caution mask).
fn stored_loop<T: Element, const DECAY: u8, const CAUTION: bool>(
    c: &Coef<T>,
    scale: T,
    ratio: T,
    param: &mut [T],
    grad: &[T],
    m: &[T],
    v: &[T],
) {
    let n = param.len();
    let (m, v) = (&m[..n], &v[..n]);
    let grad = if CAUTION { &grad[..n] } else { grad };
    checked_blocks(
        n,
        c.route,
        &mut param[..n],
        |_, i| in_window(m[i]) & sqrt_in_window(v[i]) & (!CAUTION || in_window(grad[i])),
        |param, i, fast| {
            let g = if CAUTION { c.clip.div(grad[i], fast) } else { T::zero() }; // only its sign is used
            let (p, u) = decayed::<T, DECAY, CAUTION>(c, scale, param[i], g, m[i], v[i], fast);
            param[i] = c.neg_lr.mul_add(u * ratio, p);
        },
    );
}
}

simd_targets! {
/// The whole update in one pass (no trust ratio to wait for): moments stored.
fn apply_loop<T: Element, const LERP: bool, const DECAY: u8, const CAUTION: bool>(
    c: &Coef<T>,
    scale: T,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let n = param.len();
    let grad = &grad[..n];
    checked_blocks(
        n,
        c.route,
        &mut (&mut param[..n], &mut m[..n], &mut v[..n]),
        |(_, m, v), i| moments_in_window::<T, LERP>(c, grad[i], m[i], v[i]),
        |(param, m, v), i, fast| {
            let (g, mi, vi) = moments::<T, LERP>(c, grad[i], m[i], v[i], fast);
            m[i] = mi;
            v[i] = vi;
            let (p, u) = decayed::<T, DECAY, CAUTION>(c, scale, param[i], g, mi, vi, fast);
            param[i] = c.neg_lr.mul_add(u, p);
        },
    );
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::grad_norm::{norms, NormType};
    use crate::kernels::testing::{check_tensors_with, ops, zeros, RefTensor, Rng};

    /// timm's `Lamb.step` and `_single_tensor_lamb`, one tensor operation at a time
    /// (norms in the reductions' order).
    fn reference<T: Element>(
        h: &LambHyper,
        max_grad_norm: Option<f64>,
        ts: &mut [RefTensor<T>],
        gs: &[Vec<T>],
        step: f64,
    ) {
        let grads: Vec<&[T]> = gs.iter().map(|g| &g[..]).collect();
        let clip = lamb_clip(max_grad_norm, &norms(&grads, NormType::P(2.0)));
        let (b1, b2) = h.betas;
        let (bc1, bc2) = if h.bias_correction { (1.0 - b1.powf(step), 1.0 - b2.powf(step)) } else { (1.0, 1.0) };
        let beta3 = if h.grad_averaging { 1.0 - b1 } else { 1.0 };
        for (t, g) in ts.iter_mut().zip(gs) {
            let mut grad = g.to_vec();
            if let Some(c) = clip {
                ops::div(&mut grad, c);
            }
            let p = &mut t.param;
            let [exp_avg, exp_avg_sq] = &mut t.state[..] else { unreachable!() };
            if beta3 == 1.0 - b1 {
                ops::lerp(exp_avg, &grad, beta3);
            } else {
                ops::mul(exp_avg, b1);
                ops::add_scaled(exp_avg, &grad, beta3);
            }
            ops::mul(exp_avg_sq, b2);
            ops::addcmul(exp_avg_sq, &grad, &grad, 1.0 - b2);
            let mut denom = ops::sqrt(exp_avg_sq);
            ops::div(&mut denom, bc2.powf(0.5));
            ops::add(&mut denom, h.eps);
            let mut update = exp_avg.clone();
            ops::div(&mut update, bc1);
            ops::div_elementwise(&mut update, &denom);
            if h.caution {
                ops::caution(&mut update, &grad);
            }
            if h.weight_decay != 0.0 {
                if h.decoupled_decay {
                    let q = p.clone();
                    ops::add_scaled(p, &q, -decay_scale(h.lr, h.max_lr) * h.weight_decay);
                } else {
                    ops::add_scaled(&mut update, p, h.weight_decay);
                }
            }
            if h.adapts() {
                let (w, u) = (norm::<T>(ops::sum_sq(p)), norm::<T>(ops::sum_sq(&update)));
                let mut r = if w > T::zero() && u > T::zero() { w / u } else { T::one() };
                if h.trust_clip && r > T::one() {
                    r = T::one();
                }
                update.iter_mut().for_each(|x| *x = *x * r);
            }
            ops::add_scaled(p, &update, -h.lr);
        }
    }

    fn check<T: Element>(h: &LambHyper, max_grad_norm: Option<f64>) {
        check_with::<T>(h, max_grad_norm, |rng, n| rng.vec(n));
    }

    fn check_with<T: Element>(h: &LambHyper, max_grad_norm: Option<f64>, grads: impl Fn(&mut Rng, usize) -> Vec<T>) {
        check_tensors_with::<T>(
            grads,
            zeros(2),
            |t, _, step| {
                let grads: Vec<&[T]> = t.iter().map(|s| s.grad).collect();
                let clip = lamb_clip(max_grad_norm, &norms(&grads, NormType::P(2.0)));
                lamb(h, step as f64 + 1.0, clip, t)
            },
            |ts, gs, step| reference(h, max_grad_norm, ts, gs, step as f64 + 1.0),
        );
    }

    #[test]
    fn matches_the_scalar_reference() {
        let base = LambHyper { lr: 0.01, ..LambHyper::timm() };
        let configs = [
            (base, Some(1.0)),
            (LambHyper { weight_decay: 0.0, ..base }, None),
            (LambHyper { trust_clip: true, always_adapt: true, bias_correction: false, ..base }, Some(1.0)),
            (LambHyper { decoupled_decay: true, grad_averaging: false, max_lr: Some(0.02), ..base }, Some(100.0)),
            (LambHyper { caution: true, ..base }, Some(1.0)),
            (LambHyper { caution: true, weight_decay: 0.0, ..base }, None),
            // timm does not check the betas: bias corrections of 1 − 1.9ᵗ reach −12 at
            // the fourth step, where the float32 product is refused and every loop divides
            (LambHyper { betas: (1.9, 0.999), ..base }, Some(1.0)),
        ];
        for (h, clip) in configs {
            check::<f32>(&h, clip);
            check::<f64>(&h, clip);
        }
    }

    /// Gradients with now and then a zero, a tiny, subnormal or huge value: in
    /// float64 the blocks that hold one divide by the instruction, the others by
    /// DivBy's fast path; in float32 every block takes it (the bias corrections'
    /// product is exact for every value). The same bits. `infinite` adds ±∞ and NaN.
    fn sprinkled<T: Element>(infinite: bool) -> impl Fn(&mut Rng, usize) -> Vec<T> {
        move |rng, n| {
            let mut specials = vec![0.0, -0.0, 1e-30, -1e-42, 3e-310, -5e-324, 1e30, -1e200, 1e300];
            if infinite {
                specials.extend([f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
            }
            (0..n)
                .map(|i| if i % 301 == 7 { T::of(specials[(i / 301) % specials.len()]) } else { T::of(rng.uniform()) })
                .collect()
        }
    }

    #[test]
    fn matches_the_scalar_reference_beyond_the_fast_divisions_window() {
        let base = LambHyper { lr: 0.01, ..LambHyper::timm() };
        // the trust ratio's two passes, and the one pass with the caution count
        let configs = [(base, Some(1.0)), (LambHyper { caution: true, weight_decay: 0.0, ..base }, None)];
        for (h, clip) in configs {
            for infinite in [false, true] {
                check_with::<f32>(&h, clip, sprinkled(infinite));
                check_with::<f64>(&h, clip, sprinkled(infinite));
            }
        }
    }
}
