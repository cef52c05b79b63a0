//! Adafactor, as `torch.optim.Adafactor`.
//!
//! Update rule, per parameter, with `t` its step count after this step (torch's
//! `_single_tensor_adafactor`; RMS(x) = ‖x‖₂/√numel):
//!
//! ```text
//! g ← ∇θ, negated if maximize
//! β̂ ← t^beta2_decay;   ρ ← min(lr, 1/√t);   α ← max(ε₂, RMS(θ))·ρ
//! θ ← θ·(1 − lr·weight_decay)
//! if θ has ≥ 2 dims (factored, over its last two, per leading index):
//!     R ← lerp(R, mean over columns of g², β̂)       (row_var, shape …×m×1)
//!     C ← lerp(C, mean over rows of g², β̂)          (col_var, shape …×1×n)
//!     V̂ ← R·C / max(mean(R), ε₁)
//! else:
//!     V ← lerp(V, g², β̂);   V̂ ← V                  (variance)
//! U ← g / √max(V̂, ε₁²)
//! θ ← θ − α / max(1, RMS(U)/d) · U
//! ```
//!
//! ε₁ defaults (None) to the machine epsilon of the parameter's dtype. Sums of
//! squares are accumulated in f64 in a fixed order (chunk by chunk), so the thread
//! count never changes a result. A big vector is cut into chunks shared by the
//! threads; other tensors are handed out whole.

use crate::element::{lerp, Element, Lerp};
use crate::exec::{map_jobs, serial, CHUNK};
use crate::kernels::{check_arg, simd_targets};
use crate::{HyperError, Validate};

/// The hyperparameters of Adafactor, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdafactorHyper {
    /// Learning rate; the relative step is `min(lr, 1/√t)`.
    pub lr: f64,
    /// The exponent of the second-moment decay `β̂ = t^beta2_decay`.
    pub beta2_decay: f64,
    /// (ε₁, ε₂); ε₁ `None` means the dtype's machine epsilon.
    pub eps: (Option<f64>, f64),
    /// The clipping threshold.
    pub d: f64,
    /// Decoupled weight decay: `θ ← θ·(1 − lr·weight_decay)`.
    pub weight_decay: f64,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for AdafactorHyper {
    fn default() -> Self {
        AdafactorHyper { lr: 1e-2, beta2_decay: -0.8, eps: (None, 1e-3), d: 1.0, weight_decay: 0.0, maximize: false }
    }
}

impl Validate for AdafactorHyper {
    fn validate(&self) -> Result<(), HyperError> {
        let (lr, decay, d, wd) = (self.lr, self.beta2_decay, self.d, self.weight_decay);
        check_arg(lr >= 0.0, "lr", None, lr, || format!("Learning rate should be >= 0 but is: {lr}"))?;
        check_arg(decay <= 0.0, "beta2_decay", None, decay, || format!("beta2_decay should be <= 0 but is: {decay}"))?;
        if let Some(eps1) = self.eps.0 {
            check_arg(eps1 >= 0.0, "eps", Some(0), eps1, || format!("epsilon1 should be >= 0 but is: {eps1}"))?;
        }
        let eps2 = self.eps.1;
        check_arg(eps2 >= 0.0, "eps", Some(1), eps2, || format!("epsilon2 should be >= 0 but is: {eps2}"))?;
        check_arg(d >= 1.0, "d", None, d, || format!("Clipping threshold d should be >= 1 but is: {d}"))?;
        check_arg(wd >= 0.0, "weight_decay", None, wd, || format!("weight_decay should be >= 0 but is: {wd}"))
    }
}

/// The second-moment state of one parameter.
pub enum Variance<'a, T> {
    /// A parameter of ≥ 2 dims seen as `numel / (rows·cols)` matrices of `rows × cols`:
    /// `row_var` holds one value per row, `col_var` one per column of each matrix.
    Factored {
        /// One value per row of each matrix: `numel / cols` values.
        row_var: &'a mut [T],
        /// One value per column of each matrix: `numel / rows` values.
        col_var: &'a mut [T],
        /// The rows of each matrix (the parameter's second-to-last dim).
        rows: usize,
        /// The columns of each matrix (the parameter's last dim).
        cols: usize,
    },
    /// A vector: one value per element.
    Full(&'a mut [T]),
}

/// One parameter of an Adafactor step: its `step` count, values, gradient and state.
pub struct AdafactorTensor<'a, T> {
    /// Its `step` count, advanced by the step.
    pub step: &'a mut f64,
    /// The parameter, updated in place.
    pub param: &'a mut [T],
    /// Its gradient.
    pub grad: &'a [T],
    /// Its second-moment state: factored (`row_var`, `col_var`) or full (`variance`).
    pub variance: Variance<'a, T>,
}

impl<T> AdafactorTensor<'_, T> {
    /// Checks that the slices fit together.
    ///
    /// # Panics
    /// If a length does not match the parameter's.
    fn check(&self) {
        let n = self.param.len();
        if n == 0 {
            return; // nothing to update (see `adafactor`)
        }
        assert_eq!(self.grad.len(), n, "the gradient has {} elements, the parameter {n}", self.grad.len());
        match &self.variance {
            Variance::Full(v) => assert_eq!(v.len(), n, "variance has {} elements, the parameter {n}", v.len()),
            Variance::Factored { row_var, col_var, rows, cols } => {
                let per = rows * cols;
                assert!(per > 0 && n.is_multiple_of(per), "{n} elements are not {rows} × {cols} matrices");
                let batch = n / per;
                assert_eq!(row_var.len(), batch * rows, "row_var has {} elements", row_var.len());
                assert_eq!(col_var.len(), batch * cols, "col_var has {} elements", col_var.len());
            }
        }
    }
}

/// The powers a tensor's constants take of its step count `t` and element count `n`:
/// `t^beta2_decay`, `1/√t` as `1/t^0.5` and `√n` as `n^0.5` (torch's `**`, so `pow`).
/// The tensors of a step mostly share `t` and often `n`: [`Powers::reuse`] computes
/// only what differs from the powers at hand.
#[derive(Clone, Copy)]
struct Powers {
    step: f64,
    beta: f64,
    inv_sqrt_step: f64,
    numel: usize,
    sqrt_numel: f64,
}

impl Powers {
    fn of(h: &AdafactorHyper, step: f64, numel: usize) -> Self {
        Powers {
            step,
            beta: step.powf(h.beta2_decay),
            inv_sqrt_step: 1.0 / step.powf(0.5),
            numel,
            sqrt_numel: (numel as f64).powf(0.5),
        }
    }

    /// The powers of `step` and `numel`: these, where they are the same.
    fn reuse(&self, h: &AdafactorHyper, step: f64, numel: usize) -> Self {
        let mut p = *self;
        if p.step.to_bits() != step.to_bits() {
            (p.step, p.beta, p.inv_sqrt_step) = (step, step.powf(h.beta2_decay), 1.0 / step.powf(0.5));
        }
        if p.numel != numel {
            (p.numel, p.sqrt_numel) = (numel, (numel as f64).powf(0.5));
        }
        p
    }
}

/// The per-parameter constants, from the step count and RMS(θ), computed in f64 as torch does.
#[derive(Clone, Copy)]
struct Consts<T> {
    one_minus_beta2: Lerp<T>,
    alpha: f64,
    decay: T,
    eps1_sq: T,
    eps1: T,
}

impl<T: Element> Consts<T> {
    /// Sets `α = max(ε₂, RMS(θ))·min(lr, 1/√t)` from Σθ² (before weight decay, as torch).
    fn with_rms(mut self, h: &AdafactorHyper, pw: &Powers, param_sq_sum: f64) -> Self {
        let rho = f64::min(h.lr, pw.inv_sqrt_step);
        let rms = T::of(param_sq_sum.sqrt()).to_f64().unwrap() / pw.sqrt_numel;
        self.alpha = f64::max(h.eps.1, rms) * rho;
        self
    }
}

impl AdafactorHyper {
    /// The constants of a step; `alpha` is set by [`Consts::with_rms`] once Σθ² is known.
    fn consts<T: Element>(&self, pw: &Powers) -> Consts<T> {
        let eps1 = self.eps.0.unwrap_or_else(|| T::epsilon().to_f64().unwrap());
        Consts {
            one_minus_beta2: Lerp::new(pw.beta),
            alpha: f64::NAN,
            decay: T::of(1.0 - self.lr * self.weight_decay),
            eps1_sq: T::of(eps1 * eps1),
            eps1: T::of(eps1),
        }
    }

    /// The factor of `U` in the final update: `−α / max(1, RMS(U)/d)`.
    fn scale(&self, c: &Consts<impl Element>, pw: &Powers, update_sq_sum: f64) -> f64 {
        let norm = update_sq_sum.sqrt();
        -c.alpha / f64::max(1.0, norm / (pw.sqrt_numel * self.d))
    }
}

/// One Adafactor step over every tensor; each tensor's `step` is advanced.
///
/// # Panics
/// If a tensor's slices do not fit together (see [`Variance`]).
pub fn adafactor<T: Element>(h: &AdafactorHyper, tensors: Vec<AdafactorTensor<'_, T>>) {
    tensors.iter().for_each(AdafactorTensor::check);
    // An empty parameter only counts the step (its norms would be 0/0).
    let (empty, tensors): (Vec<_>, Vec<_>) = tensors.into_iter().partition(|t| t.param.is_empty());
    empty.into_iter().for_each(|t| *t.step += 1.0);
    let (big, small): (Vec<_>, Vec<_>) =
        tensors.into_iter().partition(|t| matches!(t.variance, Variance::Full(_)) && !serial(t.param.len()));
    for t in big {
        vector_chunked(h, t);
    }
    let elements = small.iter().map(|t| t.param.len()).sum();
    // the powers of the first tensor's step count (after this step) and size
    let Some(first) = small.first() else { return };
    let first = Powers::of(h, *first.step + 1.0, first.param.len());
    map_jobs(elements, small, |t| one_tensor(h, &first, t));
}

/// A whole tensor on the calling thread (`first`: powers to reuse where they fit).
fn one_tensor<T: Element>(h: &AdafactorHyper, first: &Powers, t: AdafactorTensor<'_, T>) {
    let AdafactorTensor { step, param, grad, variance } = t;
    *step += 1.0;
    let n = param.len();
    let pw = first.reuse(h, *step, n);
    let neg = h.maximize;
    let c = h.consts::<T>(&pw);
    match variance {
        Variance::Full(v) => {
            let (p_sq, u_sq) = update_variance(&c, neg, param, grad, v);
            let c = c.with_rms(h, &pw, p_sq);
            let s = T::of(h.scale(&c, &pw, u_sq));
            apply_full(&c, neg, s, param, grad, v);
        }
        Variance::Factored { row_var, col_var, rows, cols } => {
            let c = c.with_rms(h, &pw, sum_sq(param));
            let batch = n / (rows * cols);
            let mut means = Vec::with_capacity(batch);
            for b in 0..batch {
                let g = &grad[b * rows * cols..(b + 1) * rows * cols];
                let (r, cv) = (&mut row_var[b * rows..(b + 1) * rows], &mut col_var[b * cols..(b + 1) * cols]);
                update_factors(&c, g, r, cv, cols);
                // row_var.mean(dim=-2).clamp_(min=eps1)
                let mean = T::of(r.iter().map(|x| x.to_f64().unwrap()).sum::<f64>()) / T::of(rows as f64);
                means.push(if mean < c.eps1 { c.eps1 } else { mean });
            }
            let mut u_sq = 0.0;
            for b in 0..batch {
                let at = b * rows * cols..(b + 1) * rows * cols;
                u_sq += factored_update_sq(
                    &c,
                    neg,
                    &grad[at],
                    &row_var[b * rows..(b + 1) * rows],
                    &col_var[b * cols..(b + 1) * cols],
                    means[b],
                );
            }
            let s = T::of(h.scale(&c, &pw, u_sq));
            for b in 0..batch {
                let at = b * rows * cols..(b + 1) * rows * cols;
                let (r, cv) = (&row_var[b * rows..(b + 1) * rows], &col_var[b * cols..(b + 1) * cols]);
                apply_factored(&c, neg, s, &mut param[at.clone()], &grad[at], r, cv, means[b]);
            }
        }
    }
}

/// A big vector, cut into chunks shared by the pool.
fn vector_chunked<T: Element>(h: &AdafactorHyper, t: AdafactorTensor<'_, T>) {
    let AdafactorTensor { step, param, grad, variance: Variance::Full(v) } = t else { unreachable!() };
    *step += 1.0;
    let n = param.len();
    let pw = Powers::of(h, *step, n);
    let c = h.consts::<T>(&pw);
    let jobs: Vec<_> = param.chunks(CHUNK).zip(grad.chunks(CHUNK)).zip(v.chunks_mut(CHUNK)).collect();
    let sums = map_jobs(n, jobs, |((p, g), v)| update_variance(&c, h.maximize, p, g, v));
    let (p_sq, u_sq) = sums.iter().fold((0.0, 0.0), |(a, b), &(x, y)| (a + x, b + y));
    let c = c.with_rms(h, &pw, p_sq);
    let s = T::of(h.scale(&c, &pw, u_sq));
    // Backwards: the chunks the first pass touched last are still in cache.
    let jobs: Vec<_> = param.chunks_mut(CHUNK).zip(grad.chunks(CHUNK)).zip(v.chunks(CHUNK)).rev().collect();
    map_jobs(n, jobs, |((p, g), v)| apply_full(&c, h.maximize, s, p, g, v));
}

/// Partial sums kept in this many interleaved lanes, so that the additions of a
/// reduction vectorize; the lanes are added in a fixed order, so results never
/// depend on the machine or thread count.
const LANES: usize = 8;

/// Adds the lanes, in order.
fn lanes_total(acc: [f64; LANES]) -> f64 {
    acc.iter().sum()
}

/// `acc[i mod LANES] += f(x[i])` in f64, for `x` starting on lane 0.
#[inline(always)]
fn add_lanes<T: Element>(acc: &mut [f64; LANES], x: &[T], f: impl Fn(f64) -> f64) {
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for k in 0..LANES {
            acc[k] += f(chunk[k].to_f64().unwrap());
        }
    }
    for (k, &v) in tail.iter().enumerate() {
        acc[k] += f(v.to_f64().unwrap());
    }
}

simd_targets! {
/// Σx², accumulated in f64.
fn sum_sq<T: Element>(x: &[T]) -> f64 {
    let mut acc = [0.0f64; LANES];
    add_lanes(&mut acc, x, |v| v * v);
    lanes_total(acc)
}
}

#[inline(always)]
fn signed<T: Element>(neg: bool, g: T) -> T {
    if neg {
        -g
    } else {
        g
    }
}

/// Elements per block of [`update_variance`]: a block's U² wait in a buffer on the
/// stack (in L1) until they are added to the lanes. A multiple of [`LANES`], so the
/// lane of an element does not depend on the blocks.
const BLOCK: usize = 512;

simd_targets! {
/// `V ← lerp(V, g², β̂)` for a vector; returns Σθ² and ΣU² of the update this
/// variance gives (one pass over θ, g and V). The update runs in `T`, a block at a
/// time, and its U² are summed in f64 afterwards: two simple loops vectorize where
/// one mixing f32 and f64 lanes does not.
fn update_variance<T: Element>(c: &Consts<T>, neg: bool, param: &[T], grad: &[T], v: &mut [T]) -> (f64, f64) {
    let n = v.len();
    let (param, grad) = (&param[..n], &grad[..n]);
    let (mut p_acc, mut u_acc) = ([0.0f64; LANES], [0.0f64; LANES]);
    let mut u_sq = [T::zero(); BLOCK];
    for ((p, g), v) in param.chunks(BLOCK).zip(grad.chunks(BLOCK)).zip(v.chunks_mut(BLOCK)) {
        let u_sq = &mut u_sq[..v.len()];
        for ((u, &g), v) in u_sq.iter_mut().zip(g).zip(v.iter_mut()) {
            let g = signed(neg, g);
            let var = lerp(*v, g * g, c.one_minus_beta2);
            *v = var;
            // U² = g²/max(V, ε₁²): torch squares the rounded U = g·rsqrt(·); the two
            // differ by a rounding or two per element, which only the norm of U (a
            // scale) sees.
            *u = g * g / if var < c.eps1_sq { c.eps1_sq } else { var };
        }
        add_lanes(&mut p_acc, p, |x| x * x);
        add_lanes(&mut u_acc, u_sq, |x| x);
    }
    (lanes_total(p_acc), lanes_total(u_acc))
}
}

simd_targets! {
/// `θ ← θ·(1 − lr·wd) + s·U` for a vector.
fn apply_full<T: Element>(c: &Consts<T>, neg: bool, s: T, param: &mut [T], grad: &[T], v: &[T]) {
    let n = param.len();
    let (grad, v) = (&grad[..n], &v[..n]);
    for i in 0..n {
        let g = signed(neg, grad[i]);
        let var = if v[i] < c.eps1_sq { c.eps1_sq } else { v[i] };
        let u = T::one() / var.sqrt() * g;
        param[i] = param[i] * c.decay + s * u;
    }
}
}

/// Row and column means of g² of one matrix, folded into its factors.
fn update_factors<T: Element>(c: &Consts<T>, grad: &[T], row_var: &mut [T], col_var: &mut [T], cols: usize) {
    let rows = row_var.len();
    let mut col_sq = vec![0.0f64; cols];
    for (i, row) in grad.chunks(cols).enumerate() {
        let mut acc = 0.0f64;
        for (j, &g) in row.iter().enumerate() {
            let g = g.to_f64().unwrap();
            acc += g * g;
            col_sq[j] += g * g;
        }
        // vector_norm(grad, dim=-1).square_().div_(cols): the norm in T, then squared in T
        let norm = T::of(acc.sqrt());
        row_var[i] = lerp(row_var[i], norm * norm / T::of(cols as f64), c.one_minus_beta2);
    }
    for (j, cv) in col_var.iter_mut().enumerate() {
        let norm = T::of(col_sq[j].sqrt());
        *cv = lerp(*cv, norm * norm / T::of(rows as f64), c.one_minus_beta2);
    }
}

/// `U` of one element of a factored matrix.
#[inline(always)]
fn factored_u<T: Element>(c: &Consts<T>, g: T, r: T, col: T, mean: T) -> T {
    let var = r * col / mean;
    let var = if var < c.eps1_sq { c.eps1_sq } else { var };
    T::one() / var.sqrt() * g
}

fn factored_update_sq<T: Element>(c: &Consts<T>, neg: bool, grad: &[T], row_var: &[T], col_var: &[T], mean: T) -> f64 {
    let mut acc = 0.0f64;
    for (row, &r) in grad.chunks(col_var.len()).zip(row_var) {
        for (&g, &col) in row.iter().zip(col_var) {
            let u = factored_u(c, signed(neg, g), r, col, mean).to_f64().unwrap();
            acc += u * u;
        }
    }
    acc
}

#[allow(clippy::too_many_arguments)]
fn apply_factored<T: Element>(
    c: &Consts<T>,
    neg: bool,
    s: T,
    param: &mut [T],
    grad: &[T],
    row_var: &[T],
    col_var: &[T],
    mean: T,
) {
    let cols = col_var.len();
    for ((prow, grow), &r) in param.chunks_mut(cols).zip(grad.chunks(cols)).zip(row_var) {
        for ((p, &g), &col) in prow.iter_mut().zip(grow).zip(col_var) {
            *p = *p * c.decay + s * factored_u(c, signed(neg, g), r, col, mean);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{Rng, LENGTHS};
    use crate::threads::{set_num_threads, tests::THREADS_LOCK};

    /// torch's `_single_tensor_adafactor` for a vector, one operation at a time.
    fn reference_vector(h: &AdafactorHyper, step: &mut f64, p: &mut [f64], g: &[f64], v: &mut [f64]) {
        let g: Vec<f64> = g.iter().map(|&x| if h.maximize { -x } else { x }).collect();
        *step += 1.0;
        let n = p.len() as f64;
        let beta = step.powf(h.beta2_decay);
        let rho = f64::min(h.lr, 1.0 / step.powf(0.5));
        let norm = p.iter().map(|x| x * x).sum::<f64>().sqrt();
        let alpha = f64::max(h.eps.1, norm / n.powf(0.5)) * rho;
        p.iter_mut().for_each(|x| *x *= 1.0 - h.lr * h.weight_decay);
        let eps1 = h.eps.0.unwrap_or(f64::EPSILON);
        let lerp = Lerp::new(beta);
        let u: Vec<f64> = v
            .iter_mut()
            .zip(&g)
            .map(|(v, &g)| {
                *v = super::lerp(*v, g * g, lerp);
                1.0 / v.max(eps1 * eps1).sqrt() * g
            })
            .collect();
        let unorm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        let denom = f64::max(1.0, unorm / (n.powf(0.5) * h.d));
        p.iter_mut().zip(&u).for_each(|(x, u)| *x += -alpha / denom * u);
    }

    /// The same for a batch of matrices (`r.len() / rows` of rows × cols), with their
    /// row and column factors.
    fn reference_factored(
        h: &AdafactorHyper,
        step: &mut f64,
        p: &mut [f64],
        g: &[f64],
        r: &mut [f64],
        c: &mut [f64],
        rows: usize,
    ) {
        let cols = c.len() / (r.len() / rows);
        let g: Vec<f64> = g.iter().map(|&x| if h.maximize { -x } else { x }).collect();
        *step += 1.0;
        let n = p.len() as f64;
        let lerp = Lerp::new(step.powf(h.beta2_decay));
        let rho = f64::min(h.lr, 1.0 / step.powf(0.5));
        let alpha = f64::max(h.eps.1, p.iter().map(|x| x * x).sum::<f64>().sqrt() / n.powf(0.5)) * rho;
        p.iter_mut().for_each(|x| *x *= 1.0 - h.lr * h.weight_decay);
        let eps1 = h.eps.0.unwrap_or(f64::EPSILON);
        let mut u = vec![0.0; g.len()];
        for b in 0..r.len() / rows {
            let at = |i: usize, j: usize| b * rows * cols + i * cols + j;
            for i in 0..rows {
                let mean = (0..cols).map(|j| g[at(i, j)].powi(2)).sum::<f64>().sqrt().powi(2) / cols as f64;
                r[b * rows + i] = super::lerp(r[b * rows + i], mean, lerp);
            }
            for j in 0..cols {
                let mean = (0..rows).map(|i| g[at(i, j)].powi(2)).sum::<f64>().sqrt().powi(2) / rows as f64;
                c[b * cols + j] = super::lerp(c[b * cols + j], mean, lerp);
            }
            let rmean = (r[b * rows..(b + 1) * rows].iter().sum::<f64>() / rows as f64).max(eps1);
            for i in 0..rows {
                for j in 0..cols {
                    let var = r[b * rows + i] * c[b * cols + j] / rmean;
                    u[at(i, j)] = 1.0 / var.max(eps1 * eps1).sqrt() * g[at(i, j)];
                }
            }
        }
        let unorm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        let denom = f64::max(1.0, unorm / (n.powf(0.5) * h.d));
        p.iter_mut().zip(&u).for_each(|(x, u)| *x += -alpha / denom * u);
    }

    fn close(a: &[f64], b: &[f64], what: &str) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            // relative to the values' scale (about 1): sums differ in order only
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{what}[{i}]: {x:e} vs {y:e}");
        }
    }

    /// Vectors at every test length (and a longer one) and a batch of two 3×5 matrices, against the
    /// reference, with one and three threads; sums may differ in order only.
    #[test]
    fn matches_the_reference() {
        let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let configs = [
            AdafactorHyper::default(),
            AdafactorHyper { maximize: true, weight_decay: 0.1, d: 1.5, eps: (Some(1e-6), 1e-3), ..Default::default() },
        ];
        for h in configs {
            for threads in [1, 3] {
                set_num_threads(threads).unwrap();
                let mut rng = Rng::new(5);
                // and one vector long enough to be cut into chunks for the pool
                let mut ps: Vec<Vec<f64>> = LENGTHS.iter().chain(&[(1 << 20) + 3]).map(|&n| rng.vec(n)).collect();
                let mut vs: Vec<Vec<f64>> = ps.iter().map(|p| vec![0.0; p.len()]).collect();
                let mut steps = vec![0.0; ps.len()];
                let (mut m, mut rv, mut cv, mut m_step) = (rng.vec(30), vec![0.0; 6], vec![0.0; 10], 0.0);
                let (mut ps_ref, mut vs_ref, mut steps_ref) = (ps.clone(), vs.clone(), steps.clone());
                let (mut m_ref, mut rv_ref, mut cv_ref, mut m_step_ref) = (m.clone(), rv.clone(), cv.clone(), 0.0f64);
                for step in 0..3 {
                    let gs: Vec<Vec<f64>> = ps.iter().map(|p| rng.vec(p.len())).collect();
                    let gm: Vec<f64> = rng.vec(30);
                    let mut tensors: Vec<AdafactorTensor<'_, f64>> = ps
                        .iter_mut()
                        .zip(&gs)
                        .zip(vs.iter_mut())
                        .zip(steps.iter_mut())
                        .map(|(((p, g), v), step)| AdafactorTensor {
                            step,
                            param: p,
                            grad: g,
                            variance: Variance::Full(v),
                        })
                        .collect();
                    tensors.push(AdafactorTensor {
                        step: &mut m_step,
                        param: &mut m,
                        grad: &gm,
                        variance: Variance::Factored { row_var: &mut rv, col_var: &mut cv, rows: 3, cols: 5 },
                    });
                    adafactor(&h, tensors);
                    for k in 0..ps.len() {
                        reference_vector(&h, &mut steps_ref[k], &mut ps_ref[k], &gs[k], &mut vs_ref[k]);
                        let at = format!("step {step}, {threads} threads, length {}", ps[k].len());
                        close(&ps[k], &ps_ref[k], &format!("param ({at})"));
                        close(&vs[k], &vs_ref[k], &format!("variance ({at})"));
                    }
                    reference_factored(&h, &mut m_step_ref, &mut m_ref, &gm, &mut rv_ref, &mut cv_ref, 3);
                    assert_eq!(steps, steps_ref);
                    assert_eq!(m_step, m_step_ref);
                    close(&rv, &rv_ref, "row_var");
                    close(&cv, &cv_ref, "col_var");
                    close(&m, &m_ref, "factored param");
                }
            }
        }
    }
}
