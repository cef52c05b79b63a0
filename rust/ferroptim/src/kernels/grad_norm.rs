//! Gradient norms, scaling and clamping over many tensors at once (torch's
//! `clip_grad_norm_`, `get_total_norm`, `clip_grad_value_`).
//!
//! ```text
//! ‖g‖_p = (Σ |gᵢ|^p)^(1/p)   p = 2 (Σ gᵢ² then √), 1, any p > 0
//! ‖g‖_∞ = max |gᵢ|,  ‖g‖_−∞ = min |gᵢ|,  ‖g‖_0 = #{gᵢ ≠ 0}
//! ```
//!
//! Norms are accumulated in f64, tensor by tensor, each cut into chunks of
//! [`CHUNK`] elements summed in lanes and added in chunk order: a norm depends on
//! the values alone, never on the thread count. NaN propagates (into sums, and into
//! the max and min of the ∞-norms, as torch's).

use crate::element::Element;
use crate::exec::{map_jobs, CHUNK};
use crate::kernels::simd_targets;

use crate::kernels::passes::{add_lanes, fold_lanes, LANES};

/// The order of a norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormType {
    /// Σ|x|^p, then ^(1/p); `P(2.0)` is the Euclidean norm, `P(0.0)` counts non-zeros.
    P(f64),
    /// max |x|
    Inf,
    /// min |x|
    NegInf,
}

impl NormType {
    /// torch's `norm_type` as a float (±inf for the ∞-norms).
    pub fn of(p: f64) -> Self {
        if p == f64::INFINITY {
            NormType::Inf
        } else if p == f64::NEG_INFINITY {
            NormType::NegInf
        } else {
            NormType::P(p)
        }
    }

    /// The partial results of two chunks (a sum of |x|^p terms, or a max / min of
    /// |x|), each as if alone: the sums' loops run together, so that two streams are
    /// read at once (one alone leaves the memory system idle between its requests:
    /// 12 GB/s on two threads against 18 for two, Intel Xeon VM). Inlined into
    /// `partials_of`, so that it is compiled for each instruction set.
    #[inline(always)]
    fn partials<T: Element>(self, a: &[T], b: &[T]) -> [f64; 2] {
        let max = |x: &[T]| x.iter().fold(0.0f64, |m, v| nan_max(m, v.to_f64().unwrap().abs()));
        let min = |x: &[T]| x.iter().fold(f64::INFINITY, |m, v| nan_min(m, v.to_f64().unwrap().abs()));
        match self {
            NormType::P(2.0) => lanes(a, b, |v| v * v),
            NormType::P(1.0) => lanes(a, b, f64::abs),
            NormType::P(0.0) => lanes(a, b, |v| if v != 0.0 { 1.0 } else { 0.0 }), // NaN counts, as in torch
            NormType::P(p) => lanes(a, b, |v| v.abs().powf(p)),
            NormType::Inf => [max(a), max(b)],
            NormType::NegInf => [min(a), min(b)],
        }
    }

    /// Combines the chunks' partial results of one tensor, in order, into its norm.
    fn finish(self, partials: impl Iterator<Item = f64>, empty: bool) -> f64 {
        match self {
            NormType::Inf => partials.fold(0.0, nan_max),
            NormType::NegInf if empty => 0.0,
            NormType::NegInf => partials.fold(f64::INFINITY, nan_min),
            NormType::P(p) => {
                let s: f64 = partials.sum();
                if p == 2.0 {
                    s.sqrt()
                } else if p == 1.0 || p == 0.0 {
                    s
                } else {
                    s.powf(1.0 / p)
                }
            }
        }
    }
}

fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `[Σ f(aᵢ), Σ f(bᵢ)]` in f64, each in [`LANES`] interleaved lanes added by
/// [`fold_lanes`]; the two loops run together as long as both have whole rows of lanes.
#[inline(always)]
fn lanes<T: Element>(a: &[T], b: &[T], f: impl Fn(f64) -> f64) -> [f64; 2] {
    let mut acc = [[0.0f64; LANES]; 2];
    let both = a.len().min(b.len()) / LANES * LANES;
    for (ra, rb) in a[..both].chunks_exact(LANES).zip(b[..both].chunks_exact(LANES)) {
        for k in 0..LANES {
            acc[0][k] += f(ra[k].to_f64().unwrap());
            acc[1][k] += f(rb[k].to_f64().unwrap());
        }
    }
    // each one's rest (`both` is a whole number of rows: its lanes go on)
    for (acc, x) in acc.iter_mut().zip([&a[both..], &b[both..]]) {
        add_lanes(std::array::from_mut(acc), x.len(), 0, x.len(), |i| [f(x[i].to_f64().unwrap())]);
    }
    acc.map(fold_lanes)
}

simd_targets! {
fn partials_of<T: Element>(norm: NormType, a: &[T], b: &[T]) -> [f64; 2] {
    norm.partials(a, b)
}
}

/// The `norm` of each tensor, in f64 (torch rounds it to the tensor's dtype).
pub fn norms<T: Element>(tensors: &[&[T]], norm: NormType) -> Vec<f64> {
    let jobs: Vec<(usize, &[T])> =
        tensors.iter().enumerate().flat_map(|(t, x)| x.chunks(CHUNK).map(move |c| (t, c))).collect();
    let elements = tensors.iter().map(|x| x.len()).sum();
    // two chunks per job, taken together (an odd last one with an empty slice)
    let pairs: Vec<&[(usize, &[T])]> = jobs.chunks(2).collect();
    let partials = map_jobs(elements, pairs, |pair| {
        let (a, b) = (pair[0], pair.get(1));
        let [pa, pb] = partials_of(norm, a.1, b.map_or(&[], |b| b.1));
        [Some((a.0, pa)), b.map(|b| (b.0, pb))]
    });
    let partials = partials.into_iter().flatten().flatten();
    let mut out = Vec::with_capacity(tensors.len());
    let mut rest = partials.peekable();
    for (t, x) in tensors.iter().enumerate() {
        let mine = std::iter::from_fn(|| rest.next_if(|(k, _)| *k == t).map(|(_, v)| v));
        out.push(norm.finish(mine, x.is_empty()));
    }
    out
}

simd_targets! {
fn scale_chunk<T: Element>(x: &mut [T], factor: T) {
    for v in x.iter_mut() {
        *v = *v * factor;
    }
}
}

simd_targets! {
fn clamp_chunk<T: Element>(x: &mut [T], lo: T, hi: T) {
    for v in x.iter_mut() {
        // torch.clamp: NaN stays NaN
        *v = if *v < lo { lo } else if *v > hi { hi } else { *v };
    }
}
}

fn each_chunk<T: Element>(tensors: &mut [&mut [T]], f: impl Fn(&mut [T]) + Sync + Send) {
    let elements = tensors.iter().map(|x| x.len()).sum();
    let jobs: Vec<&mut [T]> = tensors.iter_mut().flat_map(|x| x.chunks_mut(CHUNK)).collect();
    map_jobs(elements, jobs, f);
}

/// `x ← x · factor` for every tensor (`factor` already in `T`).
pub fn scale<T: Element>(tensors: &mut [&mut [T]], factor: T) {
    each_chunk(tensors, |c| scale_chunk(c, factor));
}

/// `x ← clamp(x, lo, hi)` for every tensor; NaN stays NaN.
pub fn clamp<T: Element>(tensors: &mut [&mut [T]], lo: T, hi: T) {
    each_chunk(tensors, |c| clamp_chunk(c, lo, hi));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{Rng, LENGTHS, THREADS};
    use crate::threads::{set_num_threads, tests::THREADS_LOCK};

    fn plain(x: &[f64], norm: NormType) -> f64 {
        match norm {
            NormType::P(0.0) => x.iter().filter(|v| **v != 0.0).count() as f64,
            NormType::P(p) => x.iter().map(|v| v.abs().powf(p)).sum::<f64>().powf(1.0 / p),
            NormType::Inf => x.iter().fold(0.0, |m, v| m.max(v.abs())),
            NormType::NegInf if x.is_empty() => 0.0,
            NormType::NegInf => x.iter().fold(f64::INFINITY, |m, v| m.min(v.abs())),
        }
    }

    fn check<T: Element>(tolerance: f64) {
        let mut rng = Rng::new(11);
        let tensors: Vec<Vec<T>> = LENGTHS.iter().map(|&n| rng.vec(n)).collect();
        let views: Vec<&[T]> = tensors.iter().map(|v| v.as_slice()).collect();
        for norm in
            [NormType::P(2.0), NormType::P(1.0), NormType::P(0.0), NormType::P(3.5), NormType::Inf, NormType::NegInf]
        {
            let mut seen = Vec::new();
            for threads in THREADS {
                set_num_threads(threads).unwrap();
                seen.push(norms(&views, norm));
            }
            assert!(seen.windows(2).all(|w| w[0] == w[1]), "{norm:?}: the thread count changed a norm");
            for (x, got) in tensors.iter().zip(&seen[0]) {
                let x64: Vec<f64> = x.iter().map(|v| v.to_f64().unwrap()).collect();
                let want = plain(&x64, norm);
                assert!((got - want).abs() <= tolerance * want.abs(), "{norm:?}, n = {}: {got} vs {want}", x.len());
            }
        }
        for threads in THREADS {
            set_num_threads(threads).unwrap();
            let mut a = tensors.clone();
            let mut views: Vec<&mut [T]> = a.iter_mut().map(|v| v.as_mut_slice()).collect();
            scale(&mut views, T::of(0.25));
            clamp(&mut views, T::of(-0.1), T::of(0.1));
            for (x, y) in tensors.iter().zip(&a) {
                for (u, v) in x.iter().zip(y) {
                    let s = *u * T::of(0.25);
                    let c = if s < T::of(-0.1) {
                        T::of(-0.1)
                    } else if s > T::of(0.1) {
                        T::of(0.1)
                    } else {
                        s
                    };
                    assert_eq!(*v, c);
                }
            }
        }
    }

    /// The documented order, one element at a time: chunks of CHUNK elements, each
    /// summed in LANES lanes (element i in lane i % LANES) folded pairwise, the
    /// chunks added in order.
    fn in_lane_order(x: &[f64], f: impl Fn(f64) -> f64) -> f64 {
        x.chunks(CHUNK)
            .map(|c| {
                let mut lanes = [0.0; LANES];
                for (i, v) in c.iter().enumerate() {
                    lanes[i % LANES] += f(*v);
                }
                fold_lanes(lanes)
            })
            .sum()
    }

    #[test]
    fn sums_are_the_lane_order_bit_for_bit_whichever_chunks_are_read_together() {
        let _g = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = Rng::new(12);
        // odd and even chunk counts, so that chunks of different tensors (and a last
        // chunk alone) are read together
        let lengths = [LENGTHS.to_vec(), vec![CHUNK + 1, 3 * CHUNK, 5, 2 * CHUNK - 1]].concat();
        let tensors: Vec<Vec<f64>> = lengths.iter().map(|&n| rng.vec(n)).collect();
        for skip in 0..3 {
            let views: Vec<&[f64]> = tensors[skip..].iter().map(|v| v.as_slice()).collect();
            for threads in THREADS {
                set_num_threads(threads).unwrap();
                let got = norms(&views, NormType::P(2.0));
                let l1 = norms(&views, NormType::P(1.0));
                for ((x, g), a) in views.iter().zip(got).zip(l1) {
                    assert_eq!(g.to_bits(), in_lane_order(x, |v| v * v).sqrt().to_bits(), "n = {}", x.len());
                    assert_eq!(a.to_bits(), in_lane_order(x, f64::abs).to_bits(), "n = {}", x.len());
                }
            }
        }
    }

    #[test]
    fn matches_plain_loops_whatever_the_thread_count() {
        let _g = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        check::<f32>(1e-12);
        check::<f64>(1e-12);
        let nan = [1.0f64, f64::NAN];
        for norm in [NormType::P(2.0), NormType::Inf, NormType::NegInf] {
            assert!(norms(&[&nan[..]], norm)[0].is_nan(), "{norm:?}");
        }
    }
}
