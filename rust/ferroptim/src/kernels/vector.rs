//! Whole-vector operations on long flat vectors (L-BFGS's history, direction and
//! gradient): dot products, sums, the largest magnitude and `x + a·y`.
//!
//! Each runs on the pool in chunks of [`CHUNK`] elements. A reduction sums each chunk in
//! `LANES` interleaved lanes (so it vectorizes) and then adds the chunks' sums in
//! chunk order: the result depends on the length alone, never on the thread count or
//! the instruction set (no fused multiply-add), like torch's own blocked BLAS dot.

use crate::element::Element;
use crate::exec::{map_jobs, CHUNK};
use crate::kernels::simd_targets;

/// Partial sums kept per chunk.
const LANES: usize = 8;

/// `Σ f(aᵢ, bᵢ)` over one chunk, in lanes.
#[inline(always)]
fn lane_sum<T: Element>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let n = a.len();
    let b = &b[..n];
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] = acc[k] + f(x[k], y[k]);
        }
    }
    for k in 0..ta.len() {
        acc[k] = acc[k] + f(ta[k], tb[k]);
    }
    acc.iter().fold(T::zero(), |s, &v| s + v)
}

simd_targets! {
fn dot_chunk<T: Element>(a: &[T], b: &[T]) -> T {
    lane_sum(a, b, |x, y| x * y)
}
}

simd_targets! {
fn sum_abs_chunk<T: Element>(a: &[T]) -> T {
    lane_sum(a, a, |x, _| x.abs())
}
}

simd_targets! {
fn abs_max_chunk<T: Element>(a: &[T]) -> T {
    a.iter().fold(T::zero(), |m, &x| m.nan_max(x.abs()))
}
}

simd_targets! {
fn axpy_chunk<T: Element>(x: &mut [T], a: T, y: &[T]) {
    let y = &y[..x.len()];
    for i in 0..x.len() {
        x[i] = a.mul_add(y[i], x[i]);
    }
}
}

/// The chunks' results of `f`, in order.
fn by_chunk<T: Element, R: Send>(a: &[T], b: &[T], f: impl Fn(&[T], &[T]) -> R + Sync + Send) -> Vec<R> {
    assert_eq!(a.len(), b.len(), "vectors of {} and {} elements", a.len(), b.len());
    let jobs: Vec<_> = a.chunks(CHUNK).zip(b.chunks(CHUNK)).collect();
    map_jobs(a.len(), jobs, |(x, y)| f(x, y))
}

/// `Σ aᵢ·bᵢ`.
///
/// # Panics
/// If the lengths differ.
pub fn dot<T: Element>(a: &[T], b: &[T]) -> T {
    by_chunk(a, b, dot_chunk).into_iter().fold(T::zero(), |s, v| s + v)
}

/// `Σ |aᵢ|`.
pub fn sum_abs<T: Element>(a: &[T]) -> T {
    by_chunk(a, a, |x, _| sum_abs_chunk(x)).into_iter().fold(T::zero(), |s, v| s + v)
}

/// `max |aᵢ|` (0 for an empty vector, NaN if any element is NaN), as an `f64`.
pub fn abs_max<T: Element>(a: &[T]) -> f64 {
    let m = by_chunk(a, a, |x, _| abs_max_chunk(x)).into_iter().fold(T::zero(), |m, v| m.nan_max(v));
    m.to_f64().unwrap()
}

/// `x ← x + alpha·y`, with `alpha` rounded to `T`, one fused multiply-add per element
/// as torch's (2.15) `add_(y, alpha=...)`.
///
/// # Panics
/// If the lengths differ.
pub fn axpy<T: Element>(x: &mut [T], alpha: f64, y: &[T]) {
    assert_eq!(x.len(), y.len(), "vectors of {} and {} elements", x.len(), y.len());
    let a = T::of(alpha);
    let n = x.len();
    let jobs: Vec<_> = x.chunks_mut(CHUNK).zip(y.chunks(CHUNK)).collect();
    map_jobs(n, jobs, |(x, y)| axpy_chunk(x, a, y));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{Rng, LENGTHS, THREADS};
    use crate::threads::{set_num_threads, tests::THREADS_LOCK};

    /// The plain loops, summing in f64 (a closer sum than any order in `T`).
    fn exact_dot<T: Element>(a: &[T], b: &[T]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x.to_f64().unwrap() * y.to_f64().unwrap()).sum()
    }

    fn check<T: Element>(tolerance: f64) {
        let mut rng = Rng::new(7);
        for n in LENGTHS {
            let (a, b): (Vec<T>, Vec<T>) = (rng.vec(n), rng.vec(n));
            let mut results = Vec::new();
            for threads in THREADS {
                set_num_threads(threads).unwrap();
                let mut x = a.clone();
                axpy(&mut x, -0.3, &b);
                let plain: Vec<T> = a.iter().zip(&b).map(|(&p, &q)| T::of(-0.3).mul_add(q, p)).collect();
                assert_eq!(x, plain, "axpy, n = {n}");
                results.push((dot(&a, &b), sum_abs(&a), abs_max(&a)));
            }
            assert!(results.windows(2).all(|w| w[0] == w[1]), "thread count changed a result, n = {n}");
            let (d, s, m) = results[0];
            let scale: f64 = a.iter().zip(&b).map(|(x, y)| (x.to_f64().unwrap() * y.to_f64().unwrap()).abs()).sum();
            assert!((d.to_f64().unwrap() - exact_dot(&a, &b)).abs() <= tolerance * scale.max(1e-300), "dot, n = {n}");
            let exact_s: f64 = a.iter().map(|x| x.to_f64().unwrap().abs()).sum();
            assert!((s.to_f64().unwrap() - exact_s).abs() <= tolerance * exact_s.max(1e-300), "sum_abs, n = {n}");
            let exact_m = a.iter().fold(0.0f64, |m, x| m.max(x.to_f64().unwrap().abs()));
            assert_eq!(m, exact_m, "abs_max, n = {n}");
        }
        assert!(abs_max(&[T::one(), T::nan(), T::zero()]).is_nan());
    }

    #[test]
    fn match_plain_loops_whatever_the_thread_count() {
        let _g = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        check::<f32>(1e-5);
        check::<f64>(1e-13);
    }
}
