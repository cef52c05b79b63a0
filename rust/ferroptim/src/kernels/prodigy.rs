//! Prodigy ("Prodigy: An Expeditiously Adaptive Parameter-Free Learner", Mishchenko &
//! Defazio 2023, arXiv:2306.06101), as `prodigyopt.Prodigy`.
//!
//! Prodigy is Adam whose step size `d·lr` is estimated as it goes. With `d` the current
//! estimate, `dlr = d·lr·bc` (`bc = √(1 − β₂ᵏ⁺¹)/(1 − β₁ᵏ⁺¹)` with
//! `use_bias_correction`, else 1) and `ŝ`, `θ₀` the parameter's and its initial
//! value's every `slice_p`-th element, a step is two passes over every parameter of
//! every group:
//!
//! ```text
//! pass 1, per element:  g ← g + wd·θ unless decouple
//!                       m ← β₁·m + d(1 − β₁)·g;   v ← β₂·v + d²(1 − β₂)·g²
//!                       s ← β₃·s + (d/d₀)·(d if safeguard_warmup else dlr)·ĝ
//!         and the sums  Σ ĝ·(θ₀ − θ̂) (times (d/d₀)·dlr),  Σ |s|
//! then, globally:       d_num ← β₃·d_num + Σ (d/d₀)·dlr·ĝ·(θ₀ − θ̂);   d_den = Σ |s|
//!                       d̂ = d_coef·d_num/d_den;  d ← max(d, d̂) while d = d₀
//!                       d_max ← max(d_max, d̂);   d ← min(d_max, d·growth_rate)
//! pass 2, per element:  θ ← θ − wd·dlr·θ if decouple
//!                       θ ← θ − dlr·m / (√v + d·ε)     (β₁ = 0: −dlr·d·g instead of m)
//! ```
//!
//! (`β₃` defaults to √β₂.) As in prodigyopt, `betas`, `beta3`, `d_coef`,
//! `growth_rate` and `use_bias_correction` are group 0's, for every group. A step
//! with `d_den = 0` ends after pass 1. Groups with lr 0 take no part in pass 1. The
//! sums are float64, in fixed chunks.

use crate::element::Element;
use crate::exec::{map_jobs, serial, CHUNK};
use crate::kernels::passes::{add_sums, block_lane_sums, lane_sums};
use crate::kernels::{check, check_arg, check_betas, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of one Prodigy param group (prodigyopt's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProdigyHyper {
    /// Learning rate, a multiplier of the estimated step size `d` (1 in the paper).
    pub lr: f64,
    /// (β₁, β₂): of the gradient's and the squared gradient's running averages.
    pub betas: (f64, f64),
    /// Of the running averages in the `d` estimate; `None`: √β₂.
    pub beta3: Option<f64>,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Weight decay (0 for none), decoupled or added to the gradient as `decouple` says.
    pub weight_decay: f64,
    /// AdamW-style decoupled decay; otherwise added to the gradient.
    pub decouple: bool,
    /// Adam's bias correction of the step size.
    pub use_bias_correction: bool,
    /// Leave the learning rate out of the `d` estimate's denominator (for warm-up schedules).
    pub safeguard_warmup: bool,
    /// The initial estimate of `d`.
    pub d0: f64,
    /// A multiplier of the estimated `d`.
    pub d_coef: f64,
    /// The most `d` may grow by in one step.
    pub growth_rate: f64,
    /// Estimate `d` from every `slice_p`-th element (1: all).
    pub slice_p: usize,
}

impl ProdigyHyper {
    /// `prodigyopt.Prodigy`'s defaults.
    pub const fn prodigyopt() -> Self {
        ProdigyHyper {
            lr: 1.0,
            betas: (0.9, 0.999),
            beta3: None,
            eps: 1e-8,
            weight_decay: 0.0,
            decouple: true,
            use_bias_correction: false,
            safeguard_warmup: false,
            d0: 1e-6,
            d_coef: 1.0,
            growth_rate: f64::INFINITY,
            slice_p: 1,
        }
    }

    fn beta3(&self) -> f64 {
        self.beta3.unwrap_or_else(|| self.betas.1.sqrt())
    }
}

impl Default for ProdigyHyper {
    fn default() -> Self {
        Self::prodigyopt()
    }
}

impl Validate for ProdigyHyper {
    /// prodigyopt's checks, with its messages.
    fn validate(&self) -> Result<(), HyperError> {
        check_arg(self.d0 > 0.0, "d0", None, self.d0, || format!("Invalid d0 value: {}", self.d0))?;
        check_arg(self.lr > 0.0, "lr", None, self.lr, || format!("Invalid learning rate: {}", self.lr))?;
        check_arg(self.eps > 0.0, "eps", None, self.eps, || format!("Invalid epsilon value: {}", self.eps))?;
        check_betas(self.betas)?;
        check(self.slice_p >= 1, || format!("Invalid slice_p value: {}", self.slice_p))
    }
}

/// The D-adaptation values prodigyopt keeps in every param group (group 0's are the
/// ones it reads).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProdigyGlobal {
    /// The current step size estimate `d`.
    pub d: f64,
    /// The largest `d` so far.
    pub d_max: f64,
    /// The running numerator of the `d` estimate.
    pub d_numerator: f64,
    /// The denominator of the last `d` estimate.
    pub d_denom: f64,
    /// The last unclamped `d` estimate.
    pub d_hat: f64,
    /// Steps taken (group 0's `k`).
    pub k: f64,
}

impl ProdigyGlobal {
    /// The values before the first step.
    pub fn new(d0: f64) -> Self {
        ProdigyGlobal { d: d0, d_max: d0, d_numerator: 0.0, d_denom: 0.0, d_hat: 0.0, k: 0.0 }
    }
}

/// One parameter: `s` and `p0` hold every `slice_p`-th element (`p0` may instead be
/// one value: prodigyopt's 0-d `p0` of a parameter that was all zeros); `exp_avg`
/// is empty when β₁ = 0.
pub struct ProdigyTensor<'a, T> {
    /// The parameter, updated in place.
    pub param: &'a mut [T],
    /// Its gradient.
    pub grad: &'a [T],
    /// Its `exp_avg`, updated in place.
    pub exp_avg: &'a mut [T],
    /// Its `exp_avg_sq`, updated in place.
    pub exp_avg_sq: &'a mut [T],
    /// Its `s` (the weighted sum of gradients for the `d` estimate), every `slice_p`-th element.
    pub s: &'a mut [T],
    /// Its initial value `p0`, every `slice_p`-th element.
    pub p0: &'a [T],
    /// Its `step` count, advanced by pass 2.
    pub step: &'a mut f64,
}

/// The elements a work item of a pass covers: a multiple of `slice_p`, so that the
/// sliced arrays split at the same points.
fn span(slice_p: usize) -> usize {
    CHUNK * slice_p
}

/// A work item: one chunk of one tensor's arrays.
struct Piece<'a, T> {
    param: &'a mut [T],
    grad: &'a [T],
    exp_avg: &'a mut [T],
    exp_avg_sq: &'a mut [T],
    s: &'a mut [T],
    p0: &'a [T],
}

/// Cuts each tensor into pieces of [`span`] elements, handing each to `sink` in order
/// with its tensor's group index.
fn cut<'b, T>(
    tensors: &'b mut [(usize, ProdigyTensor<'_, T>)],
    hypers: &[ProdigyHyper],
    mut sink: impl FnMut(usize, Piece<'b, T>),
) {
    for (g, t) in tensors.iter_mut() {
        let sp = hypers[*g].slice_p;
        let n = t.param.len();
        let (mut param, mut grad) = (&mut t.param[..], t.grad);
        let (mut m, mut v, mut s) = (&mut t.exp_avg[..], &mut t.exp_avg_sq[..], &mut t.s[..]);
        let scalar_p0 = t.p0.len() == 1 && n > 1;
        let mut p0 = t.p0;
        let mut start = 0;
        while start < n {
            let len = span(sp).min(n - start);
            let sliced = len.div_ceil(sp);
            let (a, b) = param.split_at_mut(len);
            let (ga, gb) = grad.split_at(len);
            let (va, vb) = v.split_at_mut(len);
            let (ma, mb) = if m.is_empty() { (&mut [][..], &mut [][..]) } else { m.split_at_mut(len) };
            let (sa, sb) = s.split_at_mut(sliced);
            let (pa, pb) = if scalar_p0 { (p0, p0) } else { p0.split_at(sliced) };
            sink(*g, Piece { param: a, grad: ga, exp_avg: ma, exp_avg_sq: va, s: sa, p0: pa });
            (param, grad, m, v, s, p0) = (b, gb, mb, vb, sb, pb);
            start += len;
        }
    }
}

/// `f` over every piece of every tensor, its results handed to `each` in piece
/// order: on the pool when the work is worth it, else on the calling thread, each
/// piece as it is cut (no list of pieces).
fn over_pieces<T: Element, R: Send>(
    tensors: &mut [(usize, ProdigyTensor<'_, T>)],
    hypers: &[ProdigyHyper],
    f: impl Fn(usize, Piece<'_, T>) -> R + Sync + Send,
    mut each: impl FnMut(R),
) {
    let elements: usize = tensors.iter().map(|(_, t)| t.param.len()).sum();
    if serial(elements) {
        cut(tensors, hypers, |g, p| each(f(g, p)));
    } else {
        let mut jobs = Vec::new();
        cut(tensors, hypers, |g, p| jobs.push((g, p)));
        map_jobs(elements, jobs, |(g, p)| f(g, p)).into_iter().for_each(each);
    }
}

#[derive(Clone, Copy)]
struct Accumulate<T> {
    l2: T,
    beta1: T,
    m_alpha: T,
    beta2: T,
    v_value: T,
    beta3: T,
    s_alpha: T,
    slice_p: usize,
}

#[derive(Clone, Copy)]
struct Apply<T> {
    l2: T,
    decay: T,
    d_eps: T,
    neg_dlr: T,
    neg_dlr_d: T,
}

/// prodigyopt's rule on the groups' LRs, checked before a step changes anything:
/// every group's LR the largest, or 0 (Err: prodigyopt's message).
pub fn check_lrs(lrs: impl Iterator<Item = f64> + Clone) -> Result<(), &'static str> {
    let lr = lrs.clone().fold(f64::NEG_INFINITY, f64::max);
    if lrs.into_iter().any(|l| l != lr && l != 0.0) {
        return Err("Setting different lr values in different parameter groups is only supported for values of 0");
    }
    Ok(())
}

/// One Prodigy step over every param group: `t32` and `t64` are (group index,
/// tensor) of one element type each (the Python package's float32 and float64
/// tensors; either may be empty, and both may be of one type); `global` holds the D-adaptation values (see
/// [`ProdigyGlobal`]), updated here. Returns whether the step updated the
/// parameters (false: `d_den` was 0, and only pass 1 ran, as in prodigyopt).
///
/// The two element types run their passes in turn and share the sums.
///
/// # Panics
/// If a tensor's arrays do not fit its shape and `slice_p`, or no hyperparameters
/// are given.
pub fn prodigy<A: Element, B: Element>(
    hypers: &[ProdigyHyper],
    global: &mut ProdigyGlobal,
    t32: &mut [(usize, ProdigyTensor<'_, A>)],
    t64: &mut [(usize, ProdigyTensor<'_, B>)],
) -> bool {
    let h0 = hypers[0];
    let lr = hypers.iter().map(|h| h.lr).fold(f64::NEG_INFINITY, f64::max);
    let (beta1, beta2) = h0.betas;
    let beta3 = h0.beta3();
    let k = global.k;
    let bias_correction =
        if h0.use_bias_correction { (1.0 - beta2.powf(k + 1.0)).powf(0.5) / (1.0 - beta1.powf(k + 1.0)) } else { 1.0 };
    let d = global.d;
    let dlr = d * lr * bias_correction;
    let d_numerator = global.d_numerator * beta3;
    let [a32, b32] = accumulate(hypers, d, dlr, beta3, t32);
    let [a64, b64] = accumulate(hypers, d, dlr, beta3, t64);
    let (delta_numerator, d_denom) = (a32 + a64, b32 + b64);
    if d_denom == 0.0 {
        return false;
    }
    let mut d_new = d;
    let mut d_max = global.d_max;
    let global_numerator = d_numerator + delta_numerator;
    let d_hat = h0.d_coef * global_numerator / d_denom;
    if lr > 0.0 {
        if d == h0.d0 {
            d_new = d.max(d_hat);
        }
        d_max = d_max.max(d_hat);
        d_new = d_max.min(d_new * h0.growth_rate);
    }
    *global = ProdigyGlobal { d: d_new, d_max, d_numerator: global_numerator, d_denom, d_hat, k: k + 1.0 };
    apply(hypers, d_new, dlr, beta1, t32);
    apply(hypers, d_new, dlr, beta1, t64);
    true
}

/// Pass 1 over the tensors of one element type: `[Σ (d/d₀)·dlr·ĝ·(θ₀ − θ̂), Σ |s|]`.
fn accumulate<T: Element>(
    hypers: &[ProdigyHyper],
    d: f64,
    dlr: f64,
    beta3: f64,
    tensors: &mut [(usize, ProdigyTensor<'_, T>)],
) -> [f64; 2] {
    let (b1, b2) = hypers[0].betas; // group 0's, for every group, as prodigyopt
    for (g, t) in tensors.iter() {
        check_shapes(&hypers[*g], b1, t);
    }
    let coefs: Vec<Accumulate<T>> = hypers
        .iter()
        .map(|h| Accumulate {
            l2: T::of(if h.decouple { 0.0 } else { h.weight_decay }),
            beta1: T::of(b1),
            m_alpha: T::of(d * (1.0 - b1)),
            beta2: T::of(b2),
            v_value: T::of(d * d * (1.0 - b2)),
            beta3: T::of(beta3),
            s_alpha: T::of((d / h.d0) * if h.safeguard_warmup { d } else { dlr }),
            slice_p: h.slice_p,
        })
        .collect();
    let mut total = [0.0; 2];
    // prodigyopt adds one `.item()` per parameter; here one value per piece, in order
    over_pieces(
        tensors,
        hypers,
        |g, p| {
            if hypers[g].lr > 0.0 {
                let scalar_p0 = p.p0.len() == 1 && p.s.len() > 1;
                let c = &coefs[g];
                let [dot, abs] = with_const_bool!(!p.exp_avg.is_empty(), M => accumulate_loop::<T, M>(
                    c, scalar_p0, p.param, p.grad, p.exp_avg, p.exp_avg_sq, p.s, p.p0,
                ));
                [(d / hypers[g].d0) * dlr * dot, abs]
            } else {
                [0.0, 0.0]
            }
        },
        |sums| add_sums(&mut total, &sums),
    );
    total
}

/// Pass 2 over the tensors of one element type.
fn apply<T: Element>(
    hypers: &[ProdigyHyper],
    d: f64,
    dlr: f64,
    beta1: f64,
    tensors: &mut [(usize, ProdigyTensor<'_, T>)],
) {
    let coefs: Vec<Apply<T>> = hypers
        .iter()
        .map(|h| Apply {
            l2: T::of(if h.decouple { 0.0 } else { h.weight_decay }),
            decay: T::of(if h.decouple && h.weight_decay != 0.0 { -h.weight_decay * dlr } else { 0.0 }),
            d_eps: T::of(d * h.eps),
            neg_dlr: T::of(-dlr),
            neg_dlr_d: T::of(-dlr * d),
        })
        .collect();
    for (_, t) in tensors.iter_mut() {
        *t.step += 1.0;
    }
    let apply = |g: usize, p: Piece<'_, T>| with_const_bool!(beta1 > 0.0, M => apply_loop::<T, M>(&coefs[g], p.param, p.grad, p.exp_avg, p.exp_avg_sq));
    over_pieces(tensors, hypers, apply, |()| {});
}

fn check_shapes<T>(h: &ProdigyHyper, beta1: f64, t: &ProdigyTensor<'_, T>) {
    let n = t.param.len();
    let sliced = n.div_ceil(h.slice_p);
    assert_eq!(t.grad.len(), n, "the gradient has {} elements, the parameter {n}", t.grad.len());
    assert_eq!(t.exp_avg_sq.len(), n, "exp_avg_sq has {} elements, the parameter {n}", t.exp_avg_sq.len());
    assert!(t.exp_avg.is_empty() || t.exp_avg.len() == n, "exp_avg has {} elements", t.exp_avg.len());
    assert!(n == 0 || (beta1 > 0.0) != t.exp_avg.is_empty(), "exp_avg is kept exactly when β₁ > 0");
    assert_eq!(t.s.len(), sliced, "s has {} elements, the sliced parameter {sliced}", t.s.len());
    assert!(t.p0.len() == sliced || t.p0.len() == 1, "p0 has {} elements", t.p0.len());
}

simd_targets! {
#[allow(clippy::too_many_arguments)] // one slice per array (see `simd_targets`)
fn accumulate_loop<T: Element, const MOMENTUM: bool>(
    c: &Accumulate<T>,
    scalar_p0: bool,
    param: &[T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    s: &mut [T],
    p0: &[T],
) -> [f64; 2] {
    let n = param.len();
    let (param, grad, v) = (&param[..n], &grad[..n], &mut v[..n]);
    let m = if MOMENTUM { &mut m[..n] } else { m };
    let sp = c.slice_p;
    // one element of s and its terms of the two sums (in T), at parameter index i
    let sliced = |i: usize, g: T, s: &mut T, theta0: T| {
        *s = c.s_alpha.mul_add(g, *s * c.beta3);
        [g * (theta0 - param[i]), s.abs()]
    };
    if sp == 1 && !scalar_p0 {
        // every element is sliced: one pass
        let (s, p0) = (&mut s[..n], &p0[..n]);
        return block_lane_sums(
            n,
            |i| {
                let g = c.l2.mul_add(param[i], grad[i]); // grad.add_(p, alpha=decay); by 0: g
                if MOMENTUM {
                    m[i] = c.m_alpha.mul_add(g, m[i] * c.beta1);
                }
                v[i] = (c.v_value * g).mul_add(g, v[i] * c.beta2);
                sliced(i, g, &mut s[i], p0[i])
            },
            |x| x,
        );
    }
    for i in 0..n {
        let g = c.l2.mul_add(param[i], grad[i]);
        if MOMENTUM {
            m[i] = c.m_alpha.mul_add(g, m[i] * c.beta1);
        }
        v[i] = (c.v_value * g).mul_add(g, v[i] * c.beta2);
    }
    lane_sums(s.len(), |j| {
        let i = j * sp;
        let g = c.l2.mul_add(param[i], grad[i]);
        sliced(i, g, &mut s[j], if scalar_p0 { p0[0] } else { p0[j] }).map(|x| x.to_f64().unwrap_or(f64::NAN))
    })
}
}

simd_targets! {
fn apply_loop<T: Element, const MOMENTUM: bool>(c: &Apply<T>, param: &mut [T], grad: &[T], m: &[T], v: &[T]) {
    let n = param.len();
    let (grad, v) = (&grad[..n], &v[..n]);
    let m = if MOMENTUM { &m[..n] } else { m };
    for i in 0..n {
        let denom = v[i].sqrt() + c.d_eps;
        let x = c.decay.mul_add(param[i], param[i]); // p.add_(p, alpha=-decay·dlr); by 0: θ
        param[i] = if MOMENTUM {
            x + c.neg_dlr * m[i] / denom
        } else {
            x + c.neg_dlr_d * c.l2.mul_add(x, grad[i]) / denom
        };
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_tensors_per_run, ops, RefTensor, THREADS};

    /// prodigyopt's `Prodigy.step` for one group, one tensor operation at a time
    /// (the sums in the kernel's order: float64, per piece).
    fn reference<T: Element>(h: &ProdigyHyper, g: &mut ProdigyGlobal, ts: &mut [RefTensor<T>], gs: &[Vec<T>]) {
        let (beta1, beta2) = h.betas;
        let beta3 = h.beta3();
        let k = g.k;
        let bc = if h.use_bias_correction {
            (1.0 - beta2.powf(k + 1.0)).powf(0.5) / (1.0 - beta1.powf(k + 1.0))
        } else {
            1.0
        };
        let d = g.d;
        let dlr = d * h.lr * bc;
        let mut delta = 0.0;
        let mut d_denom = 0.0;
        let grads: Vec<Vec<T>> = ts
            .iter()
            .zip(gs)
            .map(|(t, grad)| {
                let mut grad = grad.clone();
                if h.weight_decay != 0.0 && !h.decouple {
                    ops::add_scaled(&mut grad, &t.param, h.weight_decay);
                }
                grad
            })
            .collect();
        for (t, grad) in ts.iter_mut().zip(&grads) {
            let [m, v, s, p0] = &mut t.state[..] else { unreachable!() };
            let n = t.param.len();
            let span = span(h.slice_p);
            for start in (0..n).step_by(span) {
                let end = n.min(start + span);
                let dot = ops::ordered_sum(end.div_ceil(h.slice_p) - start / h.slice_p, |j| {
                    let i = start + j * h.slice_p;
                    (grad[i] * (p0[i / h.slice_p] - t.param[i])).to_f64().unwrap()
                });
                delta += (d / h.d0) * dlr * dot;
                let sp = &mut s[start / h.slice_p..end.div_ceil(h.slice_p)];
                ops::mul(sp, beta3);
                let sliced: Vec<T> = (start..end).step_by(h.slice_p).map(|i| grad[i]).collect();
                ops::add_scaled(sp, &sliced, (d / h.d0) * if h.safeguard_warmup { d } else { dlr });
                d_denom += ops::ordered_sum(sp.len(), |j| sp[j].abs().to_f64().unwrap());
            }
            ops::mul(m, beta1);
            ops::add_scaled(m, grad, d * (1.0 - beta1));
            ops::mul(v, beta2);
            ops::addcmul(v, grad, grad, d * d * (1.0 - beta2));
        }
        if d_denom == 0.0 {
            return;
        }
        let num = g.d_numerator * beta3 + delta;
        let d_hat = h.d_coef * num / d_denom;
        let mut dn = d;
        if d == h.d0 {
            dn = d.max(d_hat);
        }
        let d_max = g.d_max.max(d_hat);
        dn = d_max.min(dn * h.growth_rate);
        *g = ProdigyGlobal { d: dn, d_max, d_numerator: num, d_denom, d_hat, k: k + 1.0 };
        for t in ts.iter_mut() {
            let [m, v, ..] = &mut t.state[..] else { unreachable!() };
            let mut denom = ops::sqrt(v);
            ops::add(&mut denom, dn * h.eps);
            if h.weight_decay != 0.0 && h.decouple {
                let q = t.param.clone();
                ops::add_scaled(&mut t.param, &q, -h.weight_decay * dlr);
            }
            ops::addcdiv(&mut t.param, m, &denom, -dlr);
            t.scalar += 1.0;
        }
    }

    type Run<T> = fn(&[ProdigyHyper], &mut ProdigyGlobal, &mut [(usize, ProdigyTensor<'_, T>)]) -> bool;

    fn check<T: Element>(h: &ProdigyHyper, run: Run<T>) {
        let init = |p: &[T]| {
            let sliced: Vec<T> = p.iter().step_by(h.slice_p).copied().collect();
            vec![vec![T::zero(); p.len()], vec![T::zero(); p.len()], vec![T::zero(); sliced.len()], sliced]
        };
        // one group state per thread count (see check_tensors_per_run)
        let mine = std::cell::RefCell::new(vec![ProdigyGlobal::new(h.d0); THREADS.len()]);
        let theirs = std::cell::Cell::new(ProdigyGlobal::new(h.d0));
        check_tensors_per_run::<T>(
            init,
            |ts, steps, _, k| {
                let mut g = mine.borrow()[k];
                let mut list: Vec<(usize, ProdigyTensor<'_, T>)> = ts
                    .iter_mut()
                    .zip(steps.iter_mut())
                    .map(|(t, step)| {
                        let [m, v, s, p0] = &mut t.buffers;
                        let t = ProdigyTensor {
                            param: &mut t.param[..],
                            grad: t.grad,
                            exp_avg: m,
                            exp_avg_sq: v,
                            s,
                            p0,
                            step,
                        };
                        (0, t)
                    })
                    .collect();
                run(&[*h], &mut g, &mut list);
                mine.borrow_mut()[k] = g;
            },
            |ts, gs, step| {
                if step == 0 {
                    theirs.set(ProdigyGlobal::new(h.d0));
                }
                let mut g = theirs.get();
                reference(h, &mut g, ts, gs);
                theirs.set(g);
            },
        );
        for g in mine.into_inner() {
            assert_eq!(g, theirs.get());
        }
    }

    #[test]
    fn matches_the_scalar_reference() {
        let base = ProdigyHyper::prodigyopt();
        let configs = [
            base,
            ProdigyHyper { weight_decay: 0.1, use_bias_correction: true, ..base },
            ProdigyHyper { weight_decay: 0.1, decouple: false, ..base },
            ProdigyHyper { safeguard_warmup: true, d_coef: 0.5, growth_rate: 1.02, ..base },
        ];
        for h in configs {
            check::<f32>(&h, |h, g, t| prodigy::<f32, f64>(h, g, t, &mut []));
            check::<f64>(&h, |h, g, t| prodigy::<f32, f64>(h, g, &mut [], t));
        }
    }
}
