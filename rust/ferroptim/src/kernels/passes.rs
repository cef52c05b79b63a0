//! What the optimizers beyond torch.optim share: a parameter's slices with up to
//! [`MAX_STATE`] state arrays ([`Slices`]), passes over many tensors cut into chunks
//! on the pool ([`over_chunks`]), and sums taken in lanes ([`lane_sums`]).
//!
//! Some of these optimizers need a reduction before their elementwise update: a norm
//! per tensor (LAMB, LARS), a count per tensor (the cautious mask of Lion, ADOPT,
//! Adan, LAMB), a sum over every tensor of every group (LAMB's global gradient norm,
//! Prodigy's D estimate). A reduction sums each chunk of [`CHUNK`] elements in
//! [`LANES`] interleaved float64 lanes and then the chunks in order, so its value
//! depends on the tensor's length alone, never on the thread count.

use crate::element::Element;
use crate::exec::{map_jobs, CHUNK};

/// The most state arrays shaped like the parameter these optimizers keep (Adan: 4).
pub const MAX_STATE: usize = 4;
/// Partial sums kept per chunk by [`lane_sums`].
pub(crate) const LANES: usize = 8;

/// One parameter (or one chunk of it): its elements, its gradient's and those of its
/// state arrays, in the order the optimizer documents; unused slots are empty.
pub struct Slices<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub state: [&'a mut [T]; MAX_STATE],
}

impl<'a, T> Slices<'a, T> {
    /// Groups a parameter's slices.
    ///
    /// # Panics
    /// If the gradient or a non-empty state slice is not as long as the parameter, or
    /// if more than [`MAX_STATE`] state slices are given.
    pub fn new(param: &'a mut [T], grad: &'a [T], state: impl IntoIterator<Item = &'a mut [T]>) -> Self {
        let n = param.len();
        assert_eq!(grad.len(), n, "the gradient has {} elements, the parameter {n}", grad.len());
        let mut slots: [&'a mut [T]; MAX_STATE] = Default::default();
        for (k, s) in state.into_iter().enumerate() {
            assert!(k < MAX_STATE, "more than {MAX_STATE} state arrays");
            assert!(s.is_empty() || s.len() == n, "state array {k} has {} elements, the parameter {n}", s.len());
            slots[k] = s;
        }
        Slices { param, grad, state: slots }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.param.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.param.is_empty()
    }

    /// The same slices, borrowed for a shorter time (one pass of several).
    pub fn reborrow(&mut self) -> Slices<'_, T> {
        let mut state: [&mut [T]; MAX_STATE] = Default::default();
        for (slot, s) in state.iter_mut().zip(self.state.iter_mut()) {
            *slot = &mut s[..];
        }
        Slices { param: &mut self.param[..], grad: self.grad, state }
    }

    /// Splits into the first `mid` elements and the rest.
    pub fn split_at(self, mid: usize) -> (Self, Self) {
        let (p0, p1) = self.param.split_at_mut(mid);
        let (g0, g1) = self.grad.split_at(mid);
        let mut s0: [&'a mut [T]; MAX_STATE] = Default::default();
        let mut s1: [&'a mut [T]; MAX_STATE] = Default::default();
        for (k, s) in self.state.into_iter().enumerate() {
            if !s.is_empty() {
                let (x, y) = s.split_at_mut(mid);
                s0[k] = x;
                s1[k] = y;
            }
        }
        (Slices { param: p0, grad: g0, state: s0 }, Slices { param: p1, grad: g1, state: s1 })
    }
}

/// Runs `f(i, chunk)` over every tensor `i`, cut into chunks of [`CHUNK`] elements
/// (counted from the tensor's start), on the pool when the work is worth it, and
/// returns each tensor's results in chunk order (an empty tensor: no chunk).
pub(crate) fn over_chunks<T: Element, R: Send>(
    tensors: &mut [Slices<'_, T>],
    f: impl Fn(usize, Slices<'_, T>) -> R + Sync + Send,
) -> Vec<Vec<R>> {
    let elements: usize = tensors.iter().map(Slices::len).sum();
    let mut jobs = Vec::with_capacity(tensors.len() + elements / CHUNK);
    for (i, t) in tensors.iter_mut().enumerate() {
        let mut rest = t.reborrow();
        while rest.len() > CHUNK {
            let (head, tail) = rest.split_at(CHUNK);
            jobs.push((i, head));
            rest = tail;
        }
        if !rest.is_empty() {
            jobs.push((i, rest));
        }
    }
    let results = map_jobs(elements, jobs, |(i, s)| (i, f(i, s)));
    let mut out: Vec<Vec<R>> = (0..tensors.len()).map(|_| Vec::new()).collect();
    for (i, r) in results {
        out[i].push(r);
    }
    out
}

/// `R` sums over `0..n` of `f(i)`, each kept in [`LANES`] lanes (element `i` in lane
/// `i % LANES`) and the lanes added in order at the end: the order is fixed by `n`,
/// and the loop vectorizes.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // k indexes the lanes of every one of the R sums
pub(crate) fn lane_sums<const R: usize>(n: usize, mut f: impl FnMut(usize) -> [f64; R]) -> [f64; R] {
    let mut acc = [[0.0f64; LANES]; R];
    let blocks = n / LANES;
    for b in 0..blocks {
        for k in 0..LANES {
            let v = f(b * LANES + k);
            for r in 0..R {
                acc[r][k] += v[r];
            }
        }
    }
    for k in 0..n % LANES {
        let v = f(blocks * LANES + k);
        for r in 0..R {
            acc[r][k] += v[r];
        }
    }
    acc.map(|lanes| lanes.iter().sum())
}

/// The per-chunk sums of one tensor added in chunk order.
pub(crate) fn total<const R: usize>(chunks: &[[f64; R]]) -> [f64; R] {
    let mut out = [0.0; R];
    for c in chunks {
        for r in 0..R {
            out[r] += c[r];
        }
    }
    out
}

/// `torch.sign`: 1, −1, or the value itself for ±0 and NaN.
#[inline(always)]
pub(crate) fn sign<T: Element>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        x
    }
}

/// The scale of the cautious mask ("Cautious Optimizers", Liang et al. 2024,
/// arXiv:2411.16085) of a tensor of `n` elements of which `agree` have an update of
/// the gradient's sign: `mask / max(mean(mask), 1e-3)`, as timm computes it (the mean
/// and the clamp in the element type).
pub(crate) fn caution_scale<T: Element>(agree: f64, n: usize) -> T {
    let mean = T::of(agree) / T::of(n as f64);
    T::one() / mean.max(T::of(1e-3))
}

/// Whether the cautious mask keeps an element: `update·grad > 0`.
#[inline(always)]
pub(crate) fn agrees<T: Element>(update: T, grad: T) -> bool {
    update * grad > T::zero()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threads::{set_num_threads, tests::THREADS_LOCK};

    #[test]
    fn sums_do_not_depend_on_the_thread_count() {
        let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = crate::kernels::testing::Rng::new(5);
        let mut p: Vec<f32> = rng.vec(3 * CHUNK + 11);
        let g = p.clone();
        let mut sums = Vec::new();
        for threads in [1, 3] {
            set_num_threads(threads).unwrap();
            let mut t = [Slices::new(&mut p, &g, [])];
            let per_chunk = over_chunks(&mut t, |_, s| lane_sums(s.len(), |i| [f64::from(s.grad[i]).powi(2)]));
            assert_eq!(per_chunk[0].len(), 4);
            sums.push(total(&per_chunk[0])[0]);
        }
        assert_eq!(sums[0].to_bits(), sums[1].to_bits());
        let plain: f64 = g.iter().map(|&x| f64::from(x).powi(2)).sum();
        assert!((sums[0] - plain).abs() <= 1e-12 * plain);
    }

    #[test]
    fn sign_keeps_zero_and_nan() {
        assert_eq!(sign(2.0f64), 1.0);
        assert_eq!(sign(-0.5f32), -1.0);
        assert_eq!(sign(0.0f64), 0.0);
        assert!(sign(f64::NAN).is_nan());
    }
}
