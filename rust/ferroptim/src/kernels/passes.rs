//! What the optimizers beyond torch.optim share: passes over many tensors
//! ([`TensorSlices`]) cut into chunks on the pool (`over_chunks`), and sums taken in
//! lanes (`lane_sums`).
//!
//! Some of these optimizers need a reduction before their elementwise update: a norm
//! per tensor (LAMB, LARS), a count per tensor (the cautious mask of Lion, ADOPT,
//! Adan, LAMB), a sum over every tensor of every group (LAMB's global gradient norm,
//! Prodigy's D estimate). A reduction sums each chunk of [`CHUNK`] elements in
//! `LANES` interleaved float64 lanes and then the chunks in order, so its value
//! depends on the tensor's length alone, never on the thread count.

use std::mem::MaybeUninit;

use crate::element::Element;
use crate::exec::{map_jobs, serial, TensorSlices, CHUNK};

/// Partial sums kept per chunk by [`lane_sums`] (and the gradient norms): four
/// AVX-512 vectors of float64, so that the additions do not wait on each other.
pub(crate) const LANES: usize = 32;

/// The total of the lanes, added pairwise (lane k and lane k + w, for w = 16, 8, 4,
/// 2, 1): a fixed order, so a sum still depends on its inputs alone, in five vector
/// additions instead of 31 dependent ones (which a small tensor's norm waits on).
#[inline(always)]
pub(crate) fn fold_lanes(mut lanes: [f64; LANES]) -> f64 {
    let mut w = LANES / 2;
    while w > 0 {
        for k in 0..w {
            lanes[k] += lanes[k + w];
        }
        w /= 2;
    }
    lanes[0]
}

/// Runs `f(i, chunk)` over every tensor `i`, cut into chunks of [`CHUNK`] elements
/// (counted from the tensor's start), on the pool when the work is worth it, and
/// returns each tensor's results in chunk order (an empty tensor: no chunk).
pub(crate) fn over_chunks<T: Element, R: Send>(
    tensors: &mut [TensorSlices<'_, T>],
    f: impl Fn(usize, TensorSlices<'_, T>) -> R + Sync + Send,
) -> PerTensor<R> {
    let elements: usize = tensors.iter().map(TensorSlices::len).sum();
    let mut starts = Vec::with_capacity(tensors.len() + 1);
    if serial(elements) {
        // on the calling thread: each chunk as it is cut, with no list of work items
        let mut results = Vec::with_capacity(tensors.len() + elements / CHUNK);
        for (i, t) in tensors.iter_mut().enumerate() {
            starts.push(results.len());
            each_chunk(t, |s| results.push(f(i, s)));
        }
        starts.push(results.len());
        return PerTensor { results, starts };
    }
    let mut jobs = Vec::with_capacity(tensors.len() + elements / CHUNK);
    for (i, t) in tensors.iter_mut().enumerate() {
        starts.push(jobs.len());
        each_chunk(t, |s| jobs.push((i, s)));
    }
    starts.push(jobs.len());
    // map_jobs keeps the jobs' order: each tensor's chunks stay together, in order
    let results = map_jobs(elements, jobs, |(i, s)| f(i, s));
    PerTensor { results, starts }
}

/// A reduction of each tensor, then an update of it that uses the result:
/// `reduce(i, chunk)` over each chunk of tensor i, the chunks' sums added in chunk
/// order ([`total`]) and made tensor i's value by `finish(i, sums)`, then
/// `update(i, value, chunk)` over its chunks. On the pool, the reduction of every
/// tensor before the updates (a big tensor's chunks on several threads); on the
/// calling thread (a step too small for the pool), tensor by tensor, each update
/// right after its reduction, while the tensor's arrays are in cache. The same values
/// either way.
pub(crate) fn reduce_then_update<T: Element, const R: usize, V: Copy + Send + Sync>(
    tensors: &mut [TensorSlices<'_, T>],
    reduce: impl Fn(usize, TensorSlices<'_, T>) -> [f64; R] + Sync + Send,
    finish: impl Fn(usize, [f64; R]) -> V,
    update: impl Fn(usize, V, TensorSlices<'_, T>) + Sync + Send,
) {
    let elements: usize = tensors.iter().map(TensorSlices::len).sum();
    if serial(elements) {
        for (i, t) in tensors.iter_mut().enumerate() {
            let mut sums = [0.0; R];
            each_chunk(t, |s| add_sums(&mut sums, &reduce(i, s)));
            let value = finish(i, sums);
            each_chunk(t, |s| update(i, value, s));
        }
        return;
    }
    let sums = over_chunks(tensors, reduce);
    let values: Vec<V> = sums.iter().enumerate().map(|(i, n)| finish(i, total(n))).collect();
    over_chunks(tensors, |i, s| update(i, values[i], s));
}

/// Runs `f` over the chunks of one tensor as [`over_chunks`] cuts it (in order, on
/// the calling thread).
pub(crate) fn each_chunk<'a, T: Element>(t: &'a mut TensorSlices<'_, T>, mut f: impl FnMut(TensorSlices<'a, T>)) {
    let mut rest = t.reborrow();
    while rest.len() > CHUNK {
        let (head, tail) = rest.split_at(CHUNK);
        f(head);
        rest = tail;
    }
    if !rest.is_empty() {
        f(rest);
    }
}

/// The results of [`over_chunks`]: tensor i's, in chunk order, are
/// `results[starts[i]..starts[i + 1]]` (one vector for every tensor, not one each).
pub(crate) struct PerTensor<R> {
    results: Vec<R>,
    starts: Vec<usize>,
}

impl<R> PerTensor<R> {
    /// Each tensor's results, in tensor order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[R]> {
        self.starts.windows(2).map(|w| &self.results[w[0]..w[1]])
    }
}

/// `R` sums over `0..n` of `f(i)`, each kept in [`LANES`] lanes (element `i` in lane
/// `i % LANES`) and the lanes added at the end ([`fold_lanes`]): the order is fixed by `n`,
/// and the loop vectorizes.
#[inline(always)]
pub(crate) fn lane_sums<const R: usize>(n: usize, f: impl FnMut(usize) -> [f64; R]) -> [f64; R] {
    let mut acc = [[0.0f64; LANES]; R];
    add_lanes(&mut acc, n, 0, n, f);
    acc.map(fold_lanes)
}

/// Adds `f(i)` for `i` in `start..end` (`start` a multiple of [`LANES`]; `end`
/// taken at most `n`) to lane `i % LANES` (float64 for the reductions; the
/// bandwidth probe sums in the element type).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // k indexes the lanes of every one of the R sums
pub(crate) fn add_lanes<V: Copy + std::ops::Add<Output = V>, const R: usize>(
    acc: &mut [[V; LANES]; R],
    n: usize,
    start: usize,
    end: usize,
    mut f: impl FnMut(usize) -> [V; R],
) {
    let end = end.min(n);
    let mut base = start;
    while base + LANES <= end {
        for k in 0..LANES {
            // SAFETY: the loop condition gives base + k < base + LANES <= end <= n.
            // Telling the optimizer lets it drop the bounds checks of callers' slices
            // of length n, which would otherwise keep the loop from vectorizing.
            unsafe { std::hint::assert_unchecked(base + k < n) };
            let v = f(base + k);
            for r in 0..R {
                acc[r][k] = acc[r][k] + v[r];
            }
        }
        base += LANES;
    }
    for i in below(n, base, end) {
        let (k, v) = (i - base, f(i));
        for r in 0..R {
            acc[r][k] = acc[r][k] + v[r];
        }
    }
}

/// `start..end` (`end` taken at most `n`), each index known to the optimizer to be
/// below `n`.
#[inline(always)]
pub(crate) fn below(n: usize, start: usize, end: usize) -> impl Iterator<Item = usize> {
    (start..end.min(n)).inspect(move |&i| {
        // SAFETY: i < min(end, n). Telling the optimizer lets it drop the bounds
        // checks of the callers' slices of length n, which would otherwise keep their
        // loops from vectorizing.
        unsafe { std::hint::assert_unchecked(i < n) };
    })
}

/// Elements per block of [`block_lane_sums`]: its values wait in buffers on the stack
/// (in L1) until they are added to the lanes. A multiple of [`LANES`], so that an
/// element's lane does not depend on the blocks.
const BLOCK: usize = 256;
const _: () = assert!(BLOCK.is_multiple_of(LANES));

/// `lane_sums(n, |i| f(i).map(to_f64).map(g))`, the same sums in the same order, a
/// block at a time: `f` (the update, in the element type) runs over a block and its
/// R values per element are kept, then each is widened to f64, mapped by `g` (e.g.
/// squared) and added to its lane. Two simple loops vectorize where one mixing
/// lanes of the element type and of f64 does not.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // k indexes the lanes of every one of the R sums
pub(crate) fn block_lane_sums<T: Element, const R: usize>(
    n: usize,
    mut f: impl FnMut(usize) -> [T; R],
    g: impl Fn(f64) -> f64,
) -> [f64; R] {
    let mut acc = [[0.0f64; LANES]; R];
    // not zeroed (a small tensor's step would spend more on clearing R·BLOCK values
    // than on its update): each block writes its first `len` values before reading them
    let mut kept = [[MaybeUninit::<T>::uninit(); BLOCK]; R];
    let mut start = 0;
    while start < n {
        let len = BLOCK.min(n - start);
        for j in 0..len {
            // SAFETY: j < len = min(BLOCK, n − start). Telling the optimizer lets it
            // drop the bounds checks of the callers' slices of length n, which would
            // otherwise leave the last vector's worth of a block to a scalar loop.
            unsafe { std::hint::assert_unchecked(start + j < n) };
            let v = f(start + j);
            for r in 0..R {
                kept[r][j] = MaybeUninit::new(v[r]);
            }
        }
        for r in 0..R {
            // SAFETY: the loop above wrote kept[r][..len], and MaybeUninit<T> has T's layout.
            let block = unsafe { &*(std::ptr::from_ref(&kept[r][..len]) as *const [T]) };
            let (full, tail) = block.split_at(len - len % LANES);
            for chunk in full.chunks_exact(LANES) {
                for k in 0..LANES {
                    acc[r][k] += g(chunk[k].to_f64().unwrap_or(f64::NAN));
                }
            }
            for (k, x) in tail.iter().enumerate() {
                acc[r][k] += g(x.to_f64().unwrap_or(f64::NAN));
            }
        }
        start += len;
    }
    acc.map(fold_lanes)
}

/// A float64 sum of squares as a norm in the element type (a trust ratio's norms).
pub(crate) fn norm<T: Element>(sum_sq: f64) -> T {
    T::of(sum_sq.sqrt())
}

/// The per-chunk sums of one tensor added in chunk order.
pub(crate) fn total<const R: usize>(chunks: &[[f64; R]]) -> [f64; R] {
    let mut out = [0.0; R];
    chunks.iter().for_each(|c| add_sums(&mut out, c));
    out
}

/// Adds one chunk's sums to a tensor's running sums (the order [`total`] adds them in).
#[inline(always)]
pub(crate) fn add_sums<const R: usize>(sums: &mut [f64; R], chunk: &[f64; R]) {
    for r in 0..R {
        sums[r] += chunk[r];
    }
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
            let (mut empty, mut one) = ([0.0f32; 0], [0.0f32; 1]);
            let mut t = [
                TensorSlices::new(&mut p, &g, []),
                TensorSlices::new(&mut empty, &[], []),
                TensorSlices::new(&mut one, &[2.0], []),
            ];
            let results = over_chunks(&mut t, |_, s| lane_sums(s.len(), |i| [f64::from(s.grad[i]).powi(2)]));
            let per_tensor: Vec<&[[f64; 1]]> = results.iter().collect();
            assert_eq!(per_tensor.iter().map(|c| c.len()).collect::<Vec<_>>(), [4, 0, 1]); // chunks of each
            assert_eq!(per_tensor[2], [[4.0]]);
            sums.push(total(per_tensor[0])[0]);
        }
        assert_eq!(sums[0].to_bits(), sums[1].to_bits());
        let plain: f64 = g.iter().map(|&x| f64::from(x).powi(2)).sum();
        assert!((sums[0] - plain).abs() <= 1e-12 * plain);
    }

    #[test]
    fn block_lane_sums_are_lane_sums() {
        let mut rng = crate::kernels::testing::Rng::new(9);
        for n in [0, 1, 7, 33, BLOCK - 1, BLOCK, BLOCK + 5, 3 * BLOCK + 40, 1_000_003] {
            let x: Vec<f32> = rng.vec(n);
            let y: Vec<f32> = rng.vec(n);
            let f = |i: usize| [x[i] * y[i], (x[i] - y[i]).abs()];
            let plain = lane_sums(n, |i| f(i).map(|v| f64::from(v) * f64::from(v)));
            let blocked = block_lane_sums(n, f, |v| v * v);
            assert_eq!(plain.map(f64::to_bits), blocked.map(f64::to_bits), "n = {n}");
        }
    }

    #[test]
    fn sign_keeps_zero_and_nan() {
        assert_eq!(sign(2.0f64), 1.0);
        assert_eq!(sign(-0.5f32), -1.0);
        assert_eq!(sign(0.0f64), 0.0);
        assert!(sign(f64::NAN).is_nan());
    }
}
