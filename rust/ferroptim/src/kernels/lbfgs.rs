//! L-BFGS, as `torch.optim.LBFGS` (its `step(closure)`, ported operation by operation).
//!
//! One step, with g the flattened gradient and θ the flattened parameters:
//!
//! ```text
//! evaluate the loss and g; stop if max|g| ≤ tolerance_grad
//! up to max_iter times:
//!     d ← −g on the very first iteration; afterwards the two-loop recursion over
//!         the last history_size pairs (s = t·d, y = g − g_prev) with ys > 1e-10,
//!         scaled by H = ys/yy
//!     t ← min(1, 1/Σ|g|)·lr on the very first iteration, else lr
//!     stop if g·d > −tolerance_change
//!     θ ← θ + t·d, after a strong-Wolfe line search for t if asked, re-evaluating
//!     stop at max_iter, max_eval evaluations, max|g| ≤ tolerance_grad,
//!     max|t·d| ≤ tolerance_change or |Δloss| < tolerance_change
//! ```
//!
//! With `maximize`, L-BFGS minimizes the negated loss: every loss it compares and the
//! flat gradient are negated (torch 2.15's `maximize`), and `step` still returns the
//! objective's own first value. The strong-Wolfe search may make at most
//! `max_eval − evaluations so far` evaluations, as torch passes `max_ls`.
//!
//! The step's scalars follow torch's Python code exactly: a dot product or a norm is a
//! 0-d tensor of the parameters' dtype, a loss or an lr a Python float, and they mix
//! as torch promotes them (`kernels::scalar`) — so float32 parameters get
//! torch's float32 line-search tests, not sharper float64 ones that branch elsewhere.
//!
//! The loss and gradient come from an [`Objective`] (a Python closure, in the
//! package). The history is kept in [`LbfgsState`] between steps, as torch keeps it
//! in the state of the first parameter; its vectors may be borrowed (a step only reads
//! them), so a caller that keeps them elsewhere lends them without a copy. Dot
//! products and `x + a·y` over the flat vectors run on the pool ([`crate::kernels::vector`]).

use std::borrow::Cow;

use crate::element::Element;
use crate::kernels::check_arg;
use crate::kernels::scalar::Scalar::{self, Float, Tensor};
use crate::kernels::vector::{abs_max, axpy, dot, sum_abs};
use crate::{HyperError, Validate};

/// The hyperparameters of L-BFGS, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LbfgsHyper {
    /// Learning rate: the step length (scaled on the first iteration).
    pub lr: f64,
    /// The most iterations per `step`.
    pub max_iter: u64,
    /// Defaults to `max_iter · 5 / 4`.
    pub max_eval: u64,
    /// Stop when the largest gradient element is at most this.
    pub tolerance_grad: f64,
    /// Stop when the step or the loss changes by at most this.
    pub tolerance_change: f64,
    /// How many curvature pairs are kept.
    pub history_size: usize,
    /// The strong-Wolfe line search (`line_search_fn="strong_wolfe"`), else a fixed step.
    pub strong_wolfe: bool,
    /// Maximize the objective instead (torch 2.15).
    pub maximize: bool,
}

impl Default for LbfgsHyper {
    fn default() -> Self {
        LbfgsHyper {
            lr: 1.0,
            max_iter: 20,
            max_eval: 25,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            strong_wolfe: false,
            maximize: false,
        }
    }
}

impl Validate for LbfgsHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_arg(self.lr >= 0.0, "lr", None, self.lr, || format!("Invalid learning rate: {}", self.lr))
    }
}

/// What L-BFGS keeps between steps (torch's state entries of the same names). A step
/// only reads the vectors it was given: the ones it makes are `Cow::Owned`, so a
/// caller may lend its own (`Cow::Borrowed`) for the length of a step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LbfgsState<'a, T: Clone> {
    /// Objective evaluations so far.
    pub func_evals: u64,
    /// Iterations so far.
    pub n_iter: u64,
    /// The last search direction.
    pub d: Option<Cow<'a, [T]>>,
    /// The last step length.
    pub t: Option<f64>,
    /// The kept differences of gradients (y).
    pub old_dirs: Vec<Cow<'a, [T]>>,
    /// The kept steps (s).
    pub old_stps: Vec<Cow<'a, [T]>>,
    /// `1 / (yᵀs)` of each kept pair.
    pub ro: Vec<T>,
    /// `None` until the first curvature pair (torch's integer 1).
    pub h_diag: Option<T>,
    /// The gradient of the last iteration.
    pub prev_flat_grad: Option<Cow<'a, [T]>>,
    /// The loss of the last iteration.
    pub prev_loss: Option<f64>,
    /// The two-loop coefficients (`history_size` slots), once the recursion ran.
    pub al: Option<Vec<Option<T>>>,
}

/// The function L-BFGS minimizes, over flattened parameters.
pub trait Objective<T> {
    /// What a failed evaluation returns; [`lbfgs`] returns it at once.
    type Error;
    /// Re-evaluates the loss at the current parameters, setting their gradients.
    fn evaluate(&mut self) -> Result<f64, Self::Error>;
    /// The gradients, flattened and concatenated (zeros where a gradient is missing).
    fn flat_grad(&mut self) -> Result<Vec<T>, Self::Error>;
    /// `θ ← θ + t·d`.
    fn add(&mut self, t: f64, d: &[T]) -> Result<(), Self::Error>;
    /// A copy of the parameters.
    fn get(&mut self) -> Result<Vec<T>, Self::Error>;
    /// `θ ← x`.
    fn set(&mut self, x: &[T]) -> Result<(), Self::Error>;
}

/// `v.abs().max()`, a 0-d tensor.
fn norm_inf<T: Element>(v: &[T]) -> Scalar<T> {
    Tensor(T::of(abs_max(v)))
}

/// The objective L-BFGS minimizes: `obj`'s, or with `maximize` its negation (loss and
/// gradient negated, as torch 2.15 negates them).
struct Signed<'o, O> {
    obj: &'o mut O,
    maximize: bool,
}

impl<T: Element, O: Objective<T>> Objective<T> for Signed<'_, O> {
    type Error = O::Error;
    fn evaluate(&mut self) -> Result<f64, O::Error> {
        let loss = self.obj.evaluate()?;
        Ok(if self.maximize { -loss } else { loss })
    }
    fn flat_grad(&mut self) -> Result<Vec<T>, O::Error> {
        let mut g = self.obj.flat_grad()?;
        if self.maximize {
            g.iter_mut().for_each(|v| *v = -*v);
        }
        Ok(g)
    }
    fn add(&mut self, t: f64, d: &[T]) -> Result<(), O::Error> {
        self.obj.add(t, d)
    }
    fn get(&mut self) -> Result<Vec<T>, O::Error> {
        self.obj.get()
    }
    fn set(&mut self, x: &[T]) -> Result<(), O::Error> {
        self.obj.set(x)
    }
}

/// One L-BFGS step; returns the loss of the first evaluation (the objective's own
/// value, also with `maximize`), as torch's `step`.
pub fn lbfgs<T: Element, O: Objective<T>>(
    h: &LbfgsHyper,
    state: &mut LbfgsState<'_, T>,
    obj: &mut O,
) -> Result<f64, O::Error> {
    let obj = &mut Signed { obj, maximize: h.maximize };
    let mut loss = obj.evaluate()?;
    let orig_loss = if h.maximize { -loss } else { loss };
    let mut current_evals = 1;
    state.func_evals += 1;
    let mut flat_grad = obj.flat_grad()?;
    let tolerance_grad = Float(h.tolerance_grad);
    let mut opt_cond = norm_inf(&flat_grad).le(tolerance_grad);
    if opt_cond {
        return Ok(orig_loss);
    }
    let mut d: Cow<'_, [T]> = state.d.take().unwrap_or_default();
    let mut t: Scalar<T> = Float(state.t.unwrap_or(h.lr));
    let mut n_iter = 0;
    while n_iter < h.max_iter {
        n_iter += 1;
        state.n_iter += 1;
        if state.n_iter == 1 {
            d = Cow::Owned(flat_grad.iter().map(|&g| -g).collect());
            state.old_dirs.clear();
            state.old_stps.clear();
            state.ro.clear();
            state.h_diag = None;
        } else {
            let prev = state.prev_flat_grad.as_ref().expect("a previous gradient after the first iteration");
            let y: Vec<T> = flat_grad.iter().zip(prev.iter()).map(|(&g, &p)| g - p).collect();
            let s: Vec<T> = d.iter().map(|&x| x * T::of(t.value())).collect();
            let ys = dot(&y, &s);
            if Tensor(ys).gt(Float(1e-10)) {
                if state.old_dirs.len() == h.history_size {
                    state.old_dirs.remove(0);
                    state.old_stps.remove(0);
                    state.ro.remove(0);
                }
                state.h_diag = Some(ys / dot(&y, &y));
                state.old_dirs.push(Cow::Owned(y));
                state.old_stps.push(Cow::Owned(s));
                state.ro.push(T::one() / ys);
            }
            let num_old = state.old_dirs.len();
            let al = state.al.get_or_insert_with(|| vec![None; h.history_size]);
            if al.len() < num_old {
                al.resize(num_old, None);
            }
            let mut q: Vec<T> = flat_grad.iter().map(|&g| -g).collect();
            for i in (0..num_old).rev() {
                let a = dot(&state.old_stps[i], &q) * state.ro[i];
                al[i] = Some(a);
                axpy(&mut q, (-a).to_f64().unwrap(), &state.old_dirs[i]); // alpha = −al[i]
            }
            let h_diag = state.h_diag.unwrap_or(T::one());
            let mut dir: Vec<T> = q.iter().map(|&x| x * h_diag).collect();
            for (i, a) in al.iter().enumerate().take(num_old) {
                let be_i = dot(&state.old_dirs[i], &dir) * state.ro[i];
                let a = a.expect("set by the first loop");
                axpy(&mut dir, (a - be_i).to_f64().unwrap(), &state.old_stps[i]);
                // alpha = al[i] − be_i
            }
            d = Cow::Owned(dir);
        }
        match &mut state.prev_flat_grad {
            Some(Cow::Owned(p)) => p.copy_from_slice(&flat_grad),
            _ => state.prev_flat_grad = Some(Cow::Owned(flat_grad.clone())),
        }
        let prev_loss = loss;
        state.prev_loss = Some(loss);
        t = if state.n_iter == 1 {
            Float(1.0).py_min(Float(1.0) / Tensor(sum_abs(&flat_grad))) * Float(h.lr)
        // min(1., 1./Σ|g|)·lr
        } else {
            Float(h.lr)
        };
        let gtd = Tensor(dot(&flat_grad, &d));
        if gtd.gt(Float(-h.tolerance_change)) {
            break;
        }
        let mut ls_func_evals = 0;
        if h.strong_wolfe {
            let x_init = obj.get()?;
            let max_ls = h.max_eval.saturating_sub(current_evals);
            let (l, g, step, evals) =
                strong_wolfe(obj, &x_init, t, &d, loss, &flat_grad, gtd, h.tolerance_change, max_ls)?;
            loss = l;
            flat_grad = g;
            t = step;
            ls_func_evals = evals;
            obj.add(t.value(), &d)?;
            opt_cond = norm_inf(&flat_grad).le(tolerance_grad);
        } else {
            obj.add(t.value(), &d)?;
            if n_iter != h.max_iter {
                loss = obj.evaluate()?;
                flat_grad = obj.flat_grad()?;
                opt_cond = norm_inf(&flat_grad).le(tolerance_grad);
                ls_func_evals = 1;
            }
        }
        current_evals += ls_func_evals;
        state.func_evals += ls_func_evals;
        if n_iter == h.max_iter || current_evals >= h.max_eval || opt_cond {
            break;
        }
        let moved = d.iter().fold(T::zero(), |m, &x| m.nan_max((x * T::of(t.value())).abs())); // d.mul(t).abs().max()
        if Tensor(moved).le(Float(h.tolerance_change)) || (loss - prev_loss).abs() < h.tolerance_change {
            break;
        }
    }
    state.d = Some(d);
    state.t = Some(t.value());
    Ok(orig_loss)
}

/// torch's `_cubic_interpolate`: the minimizer of the cubic through two points with
/// their slopes, clamped to `bounds` (default: between the points); in torch's
/// scalars, operation by operation.
#[allow(clippy::too_many_arguments)]
fn cubic_interpolate<T: Element>(
    x1: Scalar<T>,
    f1: f64,
    g1: Scalar<T>,
    x2: Scalar<T>,
    f2: f64,
    g2: Scalar<T>,
    bounds: Option<(Scalar<T>, Scalar<T>)>,
) -> Scalar<T> {
    let (lo, hi) = bounds.unwrap_or(if x1.le(x2) { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - Float(3.0 * (f1 - f2)) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square.ge(Float(0.0)) {
        let d2 = d2_square.sqrt();
        let min_pos = if x1.le(x2) {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + Float(2.0) * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + Float(2.0) * d2))
        };
        min_pos.py_max(lo).py_min(hi)
    } else {
        (lo + hi) / Float(2.0)
    }
}

/// The loss and gradient at `x + t·d`, leaving the parameters at `x`.
fn directional<T: Element, O: Objective<T>>(
    obj: &mut O,
    x: &[T],
    t: Scalar<T>,
    d: &[T],
) -> Result<(f64, Vec<T>), O::Error> {
    obj.add(t.value(), d)?;
    let loss = obj.evaluate()?;
    let g = obj.flat_grad()?;
    obj.set(x)?;
    Ok((loss, g))
}

/// What the line search found: loss, gradient, step, evaluations.
type LineSearch<T> = (f64, Vec<T>, Scalar<T>, u64);

/// torch's `_strong_wolfe` (c1 = 1e-4, c2 = 0.9, `max_ls` iterations at most, which
/// torch's L-BFGS sets to `max_eval − evaluations so far`), in torch's scalars:
/// returns the loss, gradient, step and number of evaluations. (Where torch's budget
/// is negative, only with `max_eval` < 1, torch itself fails; here it counts as no
/// budget.)
#[allow(clippy::too_many_arguments)]
fn strong_wolfe<T: Element, O: Objective<T>>(
    obj: &mut O,
    x: &[T],
    mut t: Scalar<T>,
    d: &[T],
    f0: f64,
    g0: &[T],
    gtd0: Scalar<T>,
    tolerance_change: f64,
    max_ls: u64,
) -> Result<LineSearch<T>, O::Error> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    // f + c1·t·gtd: Armijo's bound, a tensor as soon as gtd is one
    let armijo = |t: Scalar<T>| Float(f0) + Float(C1) * t * gtd0;
    let curvature = Float(-C2) * gtd0; // −c2·gtd
    let d_norm = norm_inf(d);
    let (mut f_new, mut g_new) = directional(obj, x, t, d)?;
    let mut evals = 1;
    let mut gtd_new = Tensor(dot(&g_new, d));
    let (mut t_prev, mut f_prev, mut g_prev, mut gtd_prev) = (Float(0.0), f0, g0.to_vec(), gtd0);
    let mut done = false;
    let mut ls_iter = 0;
    let mut bracket: Vec<Scalar<T>> = Vec::new();
    let mut bracket_f: Vec<f64> = Vec::new();
    let mut bracket_g: Vec<Vec<T>> = Vec::new();
    let mut bracket_gtd: Vec<Scalar<T>> = Vec::new();
    while ls_iter < max_ls {
        if Float(f_new).gt(armijo(t)) || (ls_iter > 1 && f_new >= f_prev) {
            (bracket, bracket_f, bracket_g, bracket_gtd) =
                (vec![t_prev, t], vec![f_prev, f_new], vec![g_prev.clone(), g_new.clone()], vec![gtd_prev, gtd_new]);
            break;
        }
        if gtd_new.abs().le(curvature) {
            (bracket, bracket_f, bracket_g) = (vec![t], vec![f_new], vec![g_new.clone()]);
            done = true;
            break;
        }
        if gtd_new.ge(Float(0.0)) {
            (bracket, bracket_f, bracket_g, bracket_gtd) =
                (vec![t_prev, t], vec![f_prev, f_new], vec![g_prev.clone(), g_new.clone()], vec![gtd_prev, gtd_new]);
            break;
        }
        let min_step = t + Float(0.01) * (t - t_prev);
        let max_step = t * Float(10.0);
        let tmp = t;
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, Some((min_step, max_step)));
        t_prev = tmp;
        f_prev = f_new;
        g_prev = g_new.clone();
        gtd_prev = gtd_new;
        (f_new, g_new) = directional(obj, x, t, d)?;
        evals += 1;
        gtd_new = Tensor(dot(&g_new, d));
        ls_iter += 1;
    }
    if ls_iter == max_ls {
        (bracket, bracket_f, bracket_g) = (vec![Float(0.0), t], vec![f0, f_new], vec![g0.to_vec(), g_new.clone()]);
        // torch keeps the bracket_gtd of the last iteration here
    }
    let mut insuf_progress = false;
    let (mut low, mut high) = if bracket_f[0] <= *bracket_f.last().unwrap() { (0, 1) } else { (1, 0) };
    while !done && ls_iter < max_ls {
        if ((bracket[1] - bracket[0]).abs() * d_norm).lt(Float(tolerance_change)) {
            break;
        }
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1], None);
        let (bmax, bmin) = (bracket[0].py_max(bracket[1]), bracket[0].py_min(bracket[1]));
        let eps = Float(0.1) * (bmax - bmin);
        if (bmax - t).py_min(t - bmin).lt(eps) {
            if insuf_progress || t.ge(bmax) || t.le(bmin) {
                t = if (t - bmax).abs().lt((t - bmin).abs()) { bmax - eps } else { bmin + eps };
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        (f_new, g_new) = directional(obj, x, t, d)?;
        evals += 1;
        gtd_new = Tensor(dot(&g_new, d));
        ls_iter += 1;
        if Float(f_new).gt(armijo(t)) || f_new >= bracket_f[low] {
            bracket[high] = t;
            bracket_f[high] = f_new;
            bracket_g[high] = g_new.clone();
            bracket_gtd[high] = gtd_new;
            (low, high) = if bracket_f[0] <= bracket_f[1] { (0, 1) } else { (1, 0) };
        } else {
            if gtd_new.abs().le(curvature) {
                done = true;
            } else if (gtd_new * (bracket[high] - bracket[low])).ge(Float(0.0)) {
                bracket[high] = bracket[low];
                bracket_f[high] = bracket_f[low];
                bracket_g[high] = bracket_g[low].clone();
                bracket_gtd[high] = bracket_gtd[low];
            }
            bracket[low] = t;
            bracket_f[low] = f_new;
            bracket_g[low] = g_new.clone();
            bracket_gtd[low] = gtd_new;
        }
    }
    let low = low.min(bracket.len() - 1);
    Ok((bracket_f[low], bracket_g.swap_remove(low), bracket[low], evals))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rosenbrock function of the reference data, on a plain vector.
    struct Rosenbrock {
        x: Vec<f64>,
        evals: usize,
    }

    impl Objective<f64> for Rosenbrock {
        type Error = ();
        fn evaluate(&mut self) -> Result<f64, ()> {
            self.evals += 1;
            let x = &self.x;
            Ok(x.iter().map(|v| (1.0 - v).powi(2)).sum::<f64>()
                + x.windows(2).map(|w| 10.0 * (w[1] - w[0] * w[0]).powi(2)).sum::<f64>())
        }
        fn flat_grad(&mut self) -> Result<Vec<f64>, ()> {
            let x = &self.x;
            let mut g: Vec<f64> = x.iter().map(|v| -2.0 * (1.0 - v)).collect();
            for i in 1..x.len() {
                let d = x[i] - x[i - 1] * x[i - 1];
                g[i] += 20.0 * d;
                g[i - 1] += -40.0 * d * x[i - 1];
            }
            Ok(g)
        }
        fn add(&mut self, t: f64, d: &[f64]) -> Result<(), ()> {
            axpy(&mut self.x, t, d);
            Ok(())
        }
        fn get(&mut self) -> Result<Vec<f64>, ()> {
            Ok(self.x.clone())
        }
        fn set(&mut self, x: &[f64]) -> Result<(), ()> {
            self.x.copy_from_slice(x);
            Ok(())
        }
    }

    #[test]
    fn descends_and_with_line_search_reaches_a_stationary_point() {
        for strong_wolfe in [false, true] {
            let h = LbfgsHyper { strong_wolfe, ..Default::default() };
            let mut obj = Rosenbrock { x: vec![-0.5, 0.8, 0.3, -0.2], evals: 0 };
            let mut state = LbfgsState::default();
            let first = lbfgs(&h, &mut state, &mut obj).unwrap();
            let mut last = first;
            for _ in 0..5 {
                last = lbfgs(&h, &mut state, &mut obj).unwrap();
            }
            assert!(last < first, "strong_wolfe={strong_wolfe}: loss {first} → {last}");
            if strong_wolfe {
                // a stationary point (from this start, the local minimum near x₀ = −1)
                let g = obj.flat_grad().unwrap();
                assert!(abs_max(&g) < 1e-4, "{last}: {:?}, gradient {g:?}", obj.x);
            }
            assert_eq!(state.func_evals as usize, obj.evals);
            assert!(state.old_dirs.len() <= h.history_size);
        }
    }

    #[test]
    fn cubic_interpolation_finds_the_minimum_of_a_quadratic() {
        // f(x) = (x − 2)²: f(0) = 4, f'(0) = −4; f(3) = 1, f'(3) = 2
        let x = |v: f64| Scalar::<f64>::Float(v);
        let g = |v: f64| Scalar::<f64>::Tensor(v);
        let min = cubic_interpolate(x(0.0), 4.0, g(-4.0), x(3.0), 1.0, g(2.0), None);
        assert!((min.value() - 2.0).abs() < 1e-12);
    }
}
