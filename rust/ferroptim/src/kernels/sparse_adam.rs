//! SparseAdam, as `torch.optim.SparseAdam`: Adam on the rows a sparse gradient touches.
//!
//! A sparse gradient of a dense parameter of `R` rows (its first dim) lists rows by
//! index, each with its values, as an embedding's gradient does; an index may repeat.
//! Update rule, per parameter with `t` its step count after this step (torch's
//! `_functional.sparse_adam`):
//!
//! ```text
//! t ← t + 1                      (also when the gradient lists no rows)
//! g ← the gradient coalesced: one row per index, duplicates summed; negated if maximize
//! for every listed row r, elementwise, with m = exp_avg[r], v = exp_avg_sq[r]:
//!     Δm ← (g − m)·(1 − β₁);      m ← m + Δm
//!     Δv ← (g² − v)·(1 − β₂);     v ← v + Δv
//!     θ[r] ← θ[r] + (−lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ))·((Δm + m_old) / (√(Δv + v_old) + eps))
//! ```
//!
//! Rows the gradient does not list keep their parameter values and moments (their
//! moments do not decay), which is what makes SparseAdam cheap for embeddings.
//! Duplicate rows are summed in the order they appear (torch sums them in the order
//! of its sort, which may differ in the last bit for three or more duplicates).
//! The listed rows are shared between threads; every row's numbers are independent of
//! the thread count.

use crate::element::Element;
use crate::exec::{map_jobs, CHUNK};
use crate::kernels::{check_arg, check_betas, simd_targets, with_const_bool};
use crate::{HyperError, Validate};

/// The hyperparameters of SparseAdam, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseAdamHyper {
    /// Learning rate.
    pub lr: f64,
    /// Coefficients of the running averages of the gradient and of its square.
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Maximize the objective instead of minimizing it: the gradient is negated.
    pub maximize: bool,
}

impl Default for SparseAdamHyper {
    fn default() -> Self {
        SparseAdamHyper { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, maximize: false }
    }
}

impl Validate for SparseAdamHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check_arg(self.lr > 0.0, "lr", None, self.lr, || format!("Invalid learning rate: {}", self.lr))?;
        check_arg(self.eps > 0.0, "eps", None, self.eps, || format!("Invalid epsilon value: {}", self.eps))?;
        check_betas(self.betas)
    }
}

/// A sparse gradient of a dense parameter: `values` holds `indices.len()` rows of the
/// parameter's row length, row `k` belonging to parameter row `indices[k]`.
#[derive(Clone, Copy, Debug)]
pub struct SparseRows<'a, T> {
    /// The row of each slice of values (repeats are summed, as torch coalesces).
    pub indices: &'a [i64],
    /// The rows of values, one per index.
    pub values: &'a [T],
}

/// One parameter of a SparseAdam step: its `step` count, values, state and gradient.
/// `param`, `exp_avg` and `exp_avg_sq` hold `rows` rows of equal length (the product
/// of the parameter's dims after the first).
pub struct SparseAdamTensor<'a, T> {
    /// Its `step` count, advanced by the step.
    pub step: &'a mut f64,
    /// The parameter, updated in place.
    pub param: &'a mut [T],
    /// Its `exp_avg`, updated in place (the rows the gradient touches).
    pub exp_avg: &'a mut [T],
    /// Its `exp_avg_sq`, updated in place (the rows the gradient touches).
    pub exp_avg_sq: &'a mut [T],
    /// The parameter's first dim.
    pub rows: usize,
    /// Its gradient, as rows.
    pub grad: SparseRows<'a, T>,
}

/// Why a SparseAdam tensor cannot be updated; nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SparseError {
    /// The parameter, `exp_avg` and `exp_avg_sq` do not hold the same whole number of rows.
    Shape {
        /// The tensor's position in the step.
        tensor: usize,
    },
    /// `values` does not hold one row per index.
    Values {
        /// The tensor's position in the step.
        tensor: usize,
        /// The number of row indices.
        indices: usize,
        /// The number of values given.
        values: usize,
    },
    /// A row index outside `0..rows`.
    Index {
        /// The tensor's position in the step.
        tensor: usize,
        /// The index out of range.
        index: i64,
        /// The tensor's rows.
        rows: usize,
    },
}

impl std::fmt::Display for SparseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            SparseError::Shape { tensor } => {
                write!(f, "tensor {tensor}: the parameter and its moments are not the same whole number of rows")
            }
            SparseError::Values { tensor, indices, values } => {
                write!(f, "tensor {tensor}: {values} gradient values are not one row for each of {indices} indices")
            }
            SparseError::Index { tensor, index, rows } => {
                write!(f, "tensor {tensor}: row index {index} is out of range for {rows} rows")
            }
        }
    }
}

impl std::error::Error for SparseError {}

impl<T> SparseAdamTensor<'_, T> {
    /// Elements per row.
    fn row_len(&self) -> usize {
        self.param.len().checked_div(self.rows).unwrap_or(0)
    }

    /// Checks that the slices fit together and every index names a row (`tensor`:
    /// the position the error names), as [`sparse_adam`] checks every tensor first.
    pub fn check(&self, tensor: usize) -> Result<(), SparseError> {
        let (n, rows) = (self.param.len(), self.rows);
        let fits =
            self.exp_avg.len() == n && self.exp_avg_sq.len() == n && if rows == 0 { n == 0 } else { n % rows == 0 };
        if !fits {
            return Err(SparseError::Shape { tensor });
        }
        if let Some(&index) = self.grad.indices.iter().find(|&&i| i < 0 || i as u64 >= rows as u64) {
            return Err(SparseError::Index { tensor, index, rows });
        }
        let (indices, values) = (self.grad.indices.len(), self.grad.values.len());
        if indices.checked_mul(self.row_len()) != Some(values) {
            return Err(SparseError::Values { tensor, indices, values });
        }
        Ok(())
    }
}

/// The constants of one tensor's step, rounded to `T` as torch rounds a Python float.
#[derive(Clone, Copy)]
struct Consts<T> {
    one_minus_beta1: T,
    one_minus_beta2: T,
    eps: T,
    /// `−lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`
    neg_step_size: T,
}

/// One SparseAdam step over every tensor; each tensor's `step` is advanced. Every
/// tensor is checked first: on an error nothing has changed. The listed rows of all
/// tensors are shared by the pool.
pub fn sparse_adam<T: Element>(h: &SparseAdamHyper, tensors: Vec<SparseAdamTensor<'_, T>>) -> Result<(), SparseError> {
    for (k, t) in tensors.iter().enumerate() {
        t.check(k)?;
    }
    let mut plans = Vec::with_capacity(tensors.len());
    let mut slices = Vec::with_capacity(tensors.len());
    for t in tensors {
        let row_len = t.row_len();
        let SparseAdamTensor { step, param, exp_avg, exp_avg_sq, rows, grad } = t;
        *step += 1.0;
        if grad.indices.is_empty() {
            continue; // torch skips the update of an empty gradient, after counting the step
        }
        plans.push(Plan::new(h, *step, rows, row_len, grad));
        slices.push((param, exp_avg, exp_avg_sq));
    }
    let mut jobs = Vec::new();
    for (plan, (param, exp_avg, exp_avg_sq)) in plans.iter().zip(slices) {
        plan.split(param, exp_avg, exp_avg_sq, &mut jobs);
    }
    let elements = plans.iter().map(|p| p.units() * p.row_len).sum();
    map_jobs(elements, jobs, |job| with_const_bool!(h.maximize, MAXIMIZE => update_rows::<T, MAXIMIZE>(job)));
    Ok(())
}

/// The listed rows of one tensor, in ascending order, with the gradient rows that add
/// up to each.
enum Listing {
    /// Every row listed once, in ascending order: gradient row `k` is parameter row
    /// `indices[k]` (the common case, which needs no sorting and no memory).
    Ascending,
    /// `(row, start, end)`: gradient rows `order[start..end]` (positions sorted by
    /// row, stable) add up to parameter row `row`.
    Grouped { order: Vec<usize>, runs: Vec<(usize, usize, usize)> },
}

impl Listing {
    /// Groups the gradient rows of a tensor of `rows` rows by index: nothing to do
    /// when the indices ascend strictly; by counting when the tensor has not many
    /// more rows than the gradient; else by sorting (index, position) pairs.
    fn of(indices: &[i64], rows: usize) -> Self {
        if indices.windows(2).all(|w| w[0] < w[1]) {
            return Listing::Ascending;
        }
        let nnz = indices.len();
        let order: Vec<usize> = if rows <= 8 * nnz {
            // a stable counting sort: start of each row's positions, then the positions
            let mut start = vec![0usize; rows + 1];
            indices.iter().for_each(|&i| start[i as usize + 1] += 1);
            (0..rows).for_each(|r| start[r + 1] += start[r]);
            let mut order = vec![0usize; nnz];
            for (k, &i) in indices.iter().enumerate() {
                order[start[i as usize]] = k;
                start[i as usize] += 1;
            }
            order
        } else {
            let mut pairs: Vec<(i64, usize)> = indices.iter().copied().zip(0..).collect();
            pairs.sort_unstable(); // the pairs are distinct, so the order is unique
            pairs.into_iter().map(|(_, k)| k).collect()
        };
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (at, &k) in order.iter().enumerate() {
            let row = indices[k] as usize;
            match runs.last_mut() {
                Some(last) if last.0 == row => last.2 = at + 1,
                _ => runs.push((row, at, at + 1)),
            }
        }
        Listing::Grouped { order, runs }
    }
}

/// One tensor's step: its constants, rows and gradient.
struct Plan<'a, T> {
    c: Consts<T>,
    rows: usize,
    row_len: usize,
    grad: SparseRows<'a, T>,
    listing: Listing,
}

impl<'a, T: Element> Plan<'a, T> {
    fn new(h: &SparseAdamHyper, step: f64, rows: usize, row_len: usize, grad: SparseRows<'a, T>) -> Self {
        let (beta1, beta2) = h.betas;
        let step_size = h.lr * (1.0 - beta2.powf(step)).sqrt() / (1.0 - beta1.powf(step));
        let c = Consts {
            one_minus_beta1: T::of(1.0 - beta1),
            one_minus_beta2: T::of(1.0 - beta2),
            eps: T::of(h.eps),
            neg_step_size: T::of(-step_size),
        };
        Plan { c, rows, row_len, grad, listing: Listing::of(grad.indices, rows) }
    }

    /// The number of distinct listed rows.
    fn units(&self) -> usize {
        match &self.listing {
            Listing::Ascending => self.grad.indices.len(),
            Listing::Grouped { runs, .. } => runs.len(),
        }
    }

    /// The parameter row of listed row `u`.
    fn row(&self, u: usize) -> usize {
        match &self.listing {
            Listing::Ascending => self.grad.indices[u] as usize,
            Listing::Grouped { runs, .. } => runs[u].0,
        }
    }

    /// Cuts the listed rows into jobs of about [`CHUNK`] elements, each with the part
    /// of the parameter and moments from its first row up to the next job's first row.
    fn split<'s>(
        &'s self,
        mut param: &'s mut [T],
        mut exp_avg: &'s mut [T],
        mut exp_avg_sq: &'s mut [T],
        jobs: &mut Vec<Job<'s, T>>,
    ) {
        let row_len = self.row_len;
        let per_job = (CHUNK / row_len.max(1)).max(1);
        let units = self.units();
        let mut at_row = 0;
        for start in (0..units).step_by(per_job) {
            let end_unit = (start + per_job).min(units);
            let first = self.row(start);
            let end = if end_unit < units { self.row(end_unit) } else { self.rows };
            // Drop the rows before this job's first row (no listed row lies there).
            let skip = (first - at_row) * row_len;
            let take = (end - first) * row_len;
            let (p, rest) = std::mem::take(&mut param)[skip..].split_at_mut(take);
            param = rest;
            let (m, rest) = std::mem::take(&mut exp_avg)[skip..].split_at_mut(take);
            exp_avg = rest;
            let (v, rest) = std::mem::take(&mut exp_avg_sq)[skip..].split_at_mut(take);
            exp_avg_sq = rest;
            jobs.push(Job { plan: self, first, units: start..end_unit, param: p, exp_avg: m, exp_avg_sq: v });
            at_row = end;
        }
    }
}

/// The listed rows `units` of one tensor, which one thread updates: `param`,
/// `exp_avg` and `exp_avg_sq` from row `first` on.
struct Job<'a, T> {
    plan: &'a Plan<'a, T>,
    first: usize,
    units: std::ops::Range<usize>,
    param: &'a mut [T],
    exp_avg: &'a mut [T],
    exp_avg_sq: &'a mut [T],
}

/// The update of one listed row, elementwise (see the module docs).
#[inline(always)]
fn update_row<T: Element, const MAXIMIZE: bool>(c: &Consts<T>, grad: &[T], param: &mut [T], m: &mut [T], v: &mut [T]) {
    let n = param.len();
    let (grad, m, v) = (&grad[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let g = if MAXIMIZE { -grad[i] } else { grad[i] };
        let (old_m, old_v) = (m[i], v[i]);
        let dm = (g - old_m) * c.one_minus_beta1;
        let dv = (g * g - old_v) * c.one_minus_beta2;
        m[i] = old_m + dm;
        v[i] = old_v + dv;
        let numer = dm + old_m;
        let denom = (dv + old_v).sqrt() + c.eps;
        param[i] = param[i] + c.neg_step_size * (numer / denom);
    }
}

simd_targets! {
    /// Updates the rows of one job: consecutive listed rows as one slice; a row listed
    /// more than once is summed into a scratch row first.
    fn update_rows<T: Element, const MAXIMIZE: bool>(job: Job<'_, T>) {
        let Job { plan, first, units, param, exp_avg, exp_avg_sq } = job;
        let (row_len, values, indices) = (plan.row_len, plan.grad.values, plan.grad.indices);
        let value_rows = |k: std::ops::Range<usize>| &values[k.start * row_len..k.end * row_len];
        let mut scratch = Vec::new();
        let mut u = units.start;
        while u < units.end {
            // rows `row..row + count` get the values of `g`
            let (row, count, g) = match &plan.listing {
                Listing::Ascending => {
                    let row = indices[u] as usize;
                    let mut end = u + 1;
                    while end < units.end && indices[end] as usize == row + (end - u) {
                        end += 1;
                    }
                    (row, end - u, value_rows(u..end))
                }
                Listing::Grouped { order, runs } => {
                    let (row, start, end) = runs[u];
                    if end - start == 1 {
                        (row, 1, value_rows(order[start]..order[start] + 1))
                    } else {
                        scratch.clear();
                        scratch.extend_from_slice(value_rows(order[start]..order[start] + 1));
                        for &k in &order[start + 1..end] {
                            scratch.iter_mut().zip(value_rows(k..k + 1)).for_each(|(s, &x)| *s = *s + x);
                        }
                        (row, 1, &scratch[..])
                    }
                }
            };
            u += count;
            let at = (row - first) * row_len..(row - first + count) * row_len;
            update_row::<T, MAXIMIZE>(
                &plan.c,
                g,
                &mut param[at.clone()],
                &mut exp_avg[at.clone()],
                &mut exp_avg_sq[at],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{Rng, LENGTHS, THREADS};
    use crate::threads::{set_num_threads, tests::THREADS_LOCK};

    /// torch's `_functional.sparse_adam` for one tensor, one tensor operation at a time
    /// on the coalesced values (`sparse_mask` gathers, `add_` of a sparse tensor scatters).
    #[allow(clippy::too_many_arguments)]
    fn reference<T: Element>(
        h: &SparseAdamHyper,
        step: &mut f64,
        param: &mut [T],
        m: &mut [T],
        v: &mut [T],
        (rows, row_len): (usize, usize),
        indices: &[i64],
        values: &[T],
    ) {
        *step += 1.0;
        // grad = -grad if maximize; grad = grad.coalesce(): one row per index (the
        // order of the rows does not matter here), duplicates summed in order
        let mut slot: Vec<Option<usize>> = vec![None; rows];
        let (mut listed, mut g): (Vec<usize>, Vec<T>) = (Vec::new(), Vec::new());
        for (k, &i) in indices.iter().enumerate() {
            let value = values[k * row_len..(k + 1) * row_len].iter().map(|&x| if h.maximize { -x } else { x });
            match slot[i as usize] {
                Some(j) => g[j * row_len..(j + 1) * row_len].iter_mut().zip(value).for_each(|(a, b)| *a = *a + b),
                None => {
                    slot[i as usize] = Some(listed.len());
                    listed.push(i as usize);
                    g.extend(value);
                }
            }
        }
        if listed.is_empty() {
            return;
        }
        let (b1, b2) = h.betas;
        let gather = |dense: &[T]| -> Vec<T> {
            let mut out = Vec::with_capacity(g.len());
            listed.iter().for_each(|&r| out.extend_from_slice(&dense[r * row_len..(r + 1) * row_len]));
            out
        };
        let scatter_add = |dense: &mut [T], vals: &[T]| {
            for (j, &r) in listed.iter().enumerate() {
                for c in 0..row_len {
                    dense[r * row_len + c] = dense[r * row_len + c] + vals[j * row_len + c];
                }
            }
        };
        let old_m = gather(m);
        let mut dm: Vec<T> = g.iter().zip(&old_m).map(|(&g, &o)| g - o).collect();
        dm.iter_mut().for_each(|x| *x = *x * T::of(1.0 - b1));
        scatter_add(m, &dm);
        let old_v = gather(v);
        let mut dv: Vec<T> = g.iter().zip(&old_v).map(|(&g, &o)| g * g - o).collect();
        dv.iter_mut().for_each(|x| *x = *x * T::of(1.0 - b2));
        scatter_add(v, &dv);
        let numer: Vec<T> = dm.iter().zip(&old_m).map(|(&a, &b)| a + b).collect();
        let denom: Vec<T> = dv.iter().zip(&old_v).map(|(&a, &b)| (a + b).sqrt() + T::of(h.eps)).collect();
        let step_size = h.lr * (1.0 - b2.powf(*step)).sqrt() / (1.0 - b1.powf(*step));
        let update: Vec<T> = numer.iter().zip(&denom).map(|(&n, &d)| T::of(-step_size) * (n / d)).collect();
        scatter_add(param, &update);
    }

    /// Random row indices into `rows` rows, unsorted and with duplicates.
    fn random_indices(rng: &mut Rng, rows: usize, nnz: usize) -> Vec<i64> {
        (0..nnz).map(|_| (((rng.uniform() + 1.0) / 2.0 * rows as f64) as i64).min(rows as i64 - 1)).collect()
    }

    fn check_type<T: Element>(h: &SparseAdamHyper) {
        // (rows, row length): every length of LENGTHS as rows of 3, and rows of 1 and 0
        let shapes: Vec<(usize, usize)> = LENGTHS.iter().map(|&n| (n, 3)).chain([(40, 1), (5, 0)]).collect();
        for threads in THREADS {
            set_num_threads(threads).unwrap();
            let mut rng = Rng::new(threads as u64 + 3);
            let mut ps: Vec<Vec<T>> = shapes.iter().map(|&(r, c)| rng.vec(r * c)).collect();
            let mut ms: Vec<Vec<T>> = ps.iter().map(|p| vec![T::zero(); p.len()]).collect();
            let mut vs = ms.clone();
            let mut steps = vec![0.0; shapes.len()];
            let (mut ps_ref, mut ms_ref, mut vs_ref, mut steps_ref) =
                (ps.clone(), ms.clone(), vs.clone(), steps.clone());
            for step in 0..4 {
                // list about as many rows as there are (duplicates included), or two rows in three
                // in order on step 2, every row in order on step 3 (one run across all
                // jobs); none on step 1 of length 1
                let idx: Vec<Vec<i64>> = shapes
                    .iter()
                    .enumerate()
                    .map(|(k, &(r, _))| {
                        if r == 0 || (step == 1 && k == 1) {
                            vec![]
                        } else if step == 2 {
                            (0..r as i64).filter(|i| i % 3 != 1).collect() // ascending, no duplicates
                        } else if step == 3 {
                            (0..r as i64).collect()
                        } else {
                            random_indices(&mut rng, r, r)
                        }
                    })
                    .collect();
                let vals: Vec<Vec<T>> = idx.iter().zip(&shapes).map(|(i, &(_, c))| rng.vec(i.len() * c)).collect();
                let tensors = ps
                    .iter_mut()
                    .zip(ms.iter_mut())
                    .zip(vs.iter_mut())
                    .zip(steps.iter_mut())
                    .enumerate()
                    .map(|(k, (((param, exp_avg), exp_avg_sq), step))| SparseAdamTensor {
                        step,
                        param,
                        exp_avg,
                        exp_avg_sq,
                        rows: shapes[k].0,
                        grad: SparseRows { indices: &idx[k], values: &vals[k] },
                    })
                    .collect();
                sparse_adam(h, tensors).unwrap();
                for k in 0..shapes.len() {
                    let (p, m, v) = (&mut ps_ref[k], &mut ms_ref[k], &mut vs_ref[k]);
                    reference(h, &mut steps_ref[k], p, m, v, shapes[k], &idx[k], &vals[k]);
                    let at = format!("step {step}, {threads} threads, shape {:?}", shapes[k]);
                    let same = |a: &[T], b: &[T]| {
                        a.iter().zip(b).all(|(x, y)| x.to_f64().unwrap().to_bits() == y.to_f64().unwrap().to_bits())
                    };
                    assert!(same(&ps[k], &ps_ref[k]), "param ({at})");
                    assert!(same(&ms[k], &ms_ref[k]), "exp_avg ({at})");
                    assert!(same(&vs[k], &vs_ref[k]), "exp_avg_sq ({at})");
                    assert_eq!(steps[k], steps_ref[k], "step ({at})");
                }
            }
        }
    }

    #[test]
    fn matches_the_reference() {
        let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for h in
            [SparseAdamHyper::default(), SparseAdamHyper { lr: 0.05, betas: (0.5, 0.9), eps: 1e-6, maximize: true }]
        {
            check_type::<f32>(&h);
            check_type::<f64>(&h);
        }
    }

    #[test]
    fn a_bad_tensor_changes_nothing() {
        let h = SparseAdamHyper::default();
        let (mut p0, mut m0, mut v0, mut s0) = (vec![1.0f64; 6], vec![0.0; 6], vec![0.0; 6], 0.0);
        let (mut p1, mut m1, mut v1, mut s1) = (vec![1.0f64; 6], vec![0.0; 6], vec![0.0; 6], 0.0);
        let good = [1.0, 2.0];
        let cases: [(&[i64], &[f64], SparseError); 3] = [
            (&[3], &good, SparseError::Index { tensor: 1, index: 3, rows: 3 }),
            (&[-1], &good, SparseError::Index { tensor: 1, index: -1, rows: 3 }),
            (&[0, 1], &good, SparseError::Values { tensor: 1, indices: 2, values: 2 }),
        ];
        for (indices, values, error) in cases {
            let tensors = vec![
                SparseAdamTensor {
                    step: &mut s0,
                    param: &mut p0,
                    exp_avg: &mut m0,
                    exp_avg_sq: &mut v0,
                    rows: 3,
                    grad: SparseRows { indices: &[0], values: &good },
                },
                SparseAdamTensor {
                    step: &mut s1,
                    param: &mut p1,
                    exp_avg: &mut m1,
                    exp_avg_sq: &mut v1,
                    rows: 3,
                    grad: SparseRows { indices, values },
                },
            ];
            assert_eq!(sparse_adam(&h, tensors).unwrap_err(), error);
            assert_eq!((s0, s1), (0.0, 0.0));
            assert!(p0.iter().chain(&p1).all(|&x| x == 1.0) && m0.iter().all(|&x| x == 0.0));
        }
        let tensors = vec![SparseAdamTensor {
            step: &mut s0,
            param: &mut p0,
            exp_avg: &mut m0,
            exp_avg_sq: &mut v0[..5],
            rows: 3,
            grad: SparseRows { indices: &[], values: &[] },
        }];
        assert_eq!(sparse_adam(&h, tensors).unwrap_err(), SparseError::Shape { tensor: 0 });
    }

    #[test]
    fn untouched_rows_keep_their_values() {
        let h = SparseAdamHyper::default();
        let (mut p, mut m, mut v, mut s) = (vec![1.0f32; 8], vec![0.5; 8], vec![0.25; 8], 3.0);
        let tensors = vec![SparseAdamTensor {
            step: &mut s,
            param: &mut p,
            exp_avg: &mut m,
            exp_avg_sq: &mut v,
            rows: 4,
            grad: SparseRows { indices: &[2, 2], values: &[1.0, 1.0, -1.0, 3.0] },
        }];
        sparse_adam(&h, tensors).unwrap();
        assert_eq!(s, 4.0);
        for r in [0, 1, 3] {
            assert_eq!((&p[2 * r..2 * r + 2], &m[2 * r..2 * r + 2]), (&[1.0f32; 2][..], &[0.5f32; 2][..]));
        }
        assert!(p[4] != 1.0 && p[5] != 1.0);
        // row 2's gradient is the sum (0, 4): m ← 0.5 + (g − 0.5)·0.1
        assert_eq!(&m[4..6], &[0.5 + (0.0 - 0.5) * 0.1f32, 0.5 + (4.0 - 0.5) * 0.1f32][..]);
    }
}
