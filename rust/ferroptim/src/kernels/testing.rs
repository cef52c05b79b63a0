//! What the kernel tests share: random data, torch-style whole-array operations for
//! the scalar references, and the harness that compares a kernel run through a
//! [`Batch`] (SIMD, chunks, threads) with its reference, bit for bit.

use crate::element::{lerp as lerp_elem, Element, Lerp};
use crate::exec::{Batch, Elementwise, TensorSlices, MAX_SCALARS};
use crate::threads::{set_num_threads, tests::THREADS_LOCK};

/// Tensor lengths every kernel is checked at: empty, shorter than a vector, SIMD
/// tails, and one long enough to be cut into chunks shared between threads.
pub(crate) const LENGTHS: [usize; 5] = [0, 1, 7, 33, 1_000_003];
/// Thread counts every kernel is checked with.
pub(crate) const THREADS: [usize; 2] = [1, 3];
/// Steps per check: the first step (fresh state) and later ones (RAdam rectifies
/// from its fourth).
const STEPS: usize = 5;

/// A small deterministic generator (xorshift64*), so tests need no extra crate.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [-1, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (bits as f64) / ((1u64 << 53) as f64) * 2.0 - 1.0
    }

    pub(crate) fn vec<T: Element>(&mut self, n: usize) -> Vec<T> {
        (0..n).map(|_| T::of(self.uniform())).collect()
    }
}

/// torch's tensor operations, one pass each, with the Python-float scalar rounded
/// to the element type first, as torch's (2.15) CPU kernels do — `add_` / `sub_` with
/// `alpha`, `addcmul_` and `lerp_` as one fused multiply-add each (checked against
/// torch 2.15 element by element), `addcdiv_` as a product, a quotient and a sum.
pub(crate) mod ops {
    use super::*;

    /// `grad = -grad if maximize else grad`, as a copy.
    pub(crate) fn signed<T: Element>(g: &[T], maximize: bool) -> Vec<T> {
        let mut grad = g.to_vec();
        if maximize {
            neg(&mut grad);
        }
        grad
    }

    pub(crate) fn neg<T: Element>(x: &mut [T]) {
        x.iter_mut().for_each(|v| *v = -*v);
    }

    /// `x.mul_(s)`
    pub(crate) fn mul<T: Element>(x: &mut [T], s: f64) {
        let s = T::of(s);
        x.iter_mut().for_each(|v| *v = *v * s);
    }

    /// `x.add_(y, alpha=a)`: fma(a, y, x)
    pub(crate) fn add_scaled<T: Element>(x: &mut [T], y: &[T], alpha: f64) {
        let a = T::of(alpha);
        x.iter_mut().zip(y).for_each(|(v, &w)| *v = a.mul_add(w, *v));
    }

    /// `x.addcmul_(a, b, value=s)`: fma(s·a, b, x)
    pub(crate) fn addcmul<T: Element>(x: &mut [T], a: &[T], b: &[T], value: f64) {
        let s = T::of(value);
        for i in 0..x.len() {
            x[i] = (s * a[i]).mul_add(b[i], x[i]);
        }
    }

    /// `x.addcdiv_(a, b, value=s)`: x + s·a/b
    pub(crate) fn addcdiv<T: Element>(x: &mut [T], a: &[T], b: &[T], value: f64) {
        let s = T::of(value);
        for i in 0..x.len() {
            x[i] = x[i] + s * a[i] / b[i];
        }
    }

    /// `x.lerp_(end, weight)`
    pub(crate) fn lerp<T: Element>(x: &mut [T], end: &[T], weight: f64) {
        let w = Lerp::new(weight);
        x.iter_mut().zip(end).for_each(|(v, &e)| *v = lerp_elem(*v, e, w));
    }

    /// `x.sqrt()`
    pub(crate) fn sqrt<T: Element>(x: &[T]) -> Vec<T> {
        x.iter().map(|v| v.sqrt()).collect()
    }

    /// `x / s` (in place)
    pub(crate) fn div<T: Element>(x: &mut [T], s: f64) {
        let s = T::of(s);
        x.iter_mut().for_each(|v| *v = *v / s);
    }

    /// `x.add_(s)` for a scalar
    pub(crate) fn add<T: Element>(x: &mut [T], s: f64) {
        let s = T::of(s);
        x.iter_mut().for_each(|v| *v = *v + s);
    }

    /// `x.mul_(y)` for a tensor `y`
    pub(crate) fn mul_elementwise<T: Element>(x: &mut [T], y: &[T]) {
        x.iter_mut().zip(y).for_each(|(v, &w)| *v = *v * w);
    }

    /// `x.div_(y)` for a tensor `y`
    pub(crate) fn div_elementwise<T: Element>(x: &mut [T], y: &[T]) {
        x.iter_mut().zip(y).for_each(|(v, &w)| *v = *v / w);
    }

    /// `x.sign_()`
    pub(crate) fn sign<T: Element>(x: &mut [T]) {
        x.iter_mut().for_each(|v| *v = crate::kernels::passes::sign(*v));
    }

    /// timm's cautious mask: `mask = (u * g > 0).to(dtype)`,
    /// `mask.div_(mask.mean().clamp_(min=1e-3))`, `u.mul_(mask)`.
    pub(crate) fn caution<T: Element>(u: &mut [T], g: &[T]) {
        let mask: Vec<T> =
            u.iter().zip(g).map(|(&a, &b)| if a * b > T::zero() { T::one() } else { T::zero() }).collect();
        let sum = ordered_sum(mask.len(), |i| mask[i].to_f64().unwrap());
        let mean = T::of(sum) / T::of(mask.len() as f64);
        let clamped = mean.max(T::of(1e-3));
        for (v, m) in u.iter_mut().zip(&mask) {
            *v = *v * (*m / clamped);
        }
    }

    /// `torch.clamp(x, min=lo)` (NaN stays NaN)
    pub(crate) fn clamp_min<T: Element>(x: &mut [T], lo: f64) {
        let lo = T::of(lo);
        x.iter_mut().for_each(|v| *v = if *v < lo { lo } else { *v });
    }

    /// `x.clamp_(-c, c)` (NaN stays NaN)
    pub(crate) fn clamp_abs<T: Element>(x: &mut [T], c: f64) {
        let c = T::of(c);
        x.iter_mut().for_each(|v| {
            *v = if *v < -c {
                -c
            } else if *v > c {
                c
            } else {
                *v
            }
        });
    }

    /// `Σ f(i)` over `0..n` in the reductions' order, as a plain loop: chunks of
    /// `CHUNK` elements, each in `LANES` lanes (element j of a chunk in lane j % LANES),
    /// the lanes then the chunks added in order.
    pub(crate) fn ordered_sum(n: usize, f: impl Fn(usize) -> f64) -> f64 {
        use crate::exec::CHUNK;
        use crate::kernels::passes::LANES;
        let mut total = 0.0;
        for start in (0..n).step_by(CHUNK) {
            let mut lanes = [0.0f64; LANES];
            for i in start..n.min(start + CHUNK) {
                lanes[(i - start) % LANES] += f(i);
            }
            total += crate::kernels::passes::fold_lanes(lanes);
        }
        total
    }

    /// `Σ x²` in float64, in the reductions' order (a norm's square)
    pub(crate) fn sum_sq<T: Element>(x: &[T]) -> f64 {
        ordered_sum(x.len(), |i| x[i].to_f64().unwrap().powi(2))
    }

    /// `torch.nan_max(x, y, out=x)`
    pub(crate) fn maximum<T: Element>(x: &mut [T], y: &[T]) {
        x.iter_mut().zip(y).for_each(|(v, &w)| *v = v.nan_max(w));
    }
}

pub(crate) fn assert_same_bits<T: Element>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let (a, b) = (a.to_f64().unwrap(), b.to_f64().unwrap());
        assert!(a.to_bits() == b.to_bits(), "{what}[{i}] of {}: kernel {a:e}, reference {b:e}", got.len());
    }
}

/// The signature of a scalar reference: one step of one tensor, given the kernel's
/// hyperparameters, the scalar state, whether the state is fresh, the parameter,
/// its gradient and the state buffers.
pub(crate) type Reference<K, T> = fn(&K, &mut [f64], bool, &mut [T], &[T], &mut [Vec<T>]);

/// Runs a few steps of `kernel` on tensors of every length in [`LENGTHS`], all in one
/// [`Batch`], with each thread count in [`THREADS`], and checks that parameters,
/// buffers and scalars equal the scalar reference's bit for bit after every step.
/// Every thread count steps its own copy of the same tensors with the same gradients,
/// so one reference trajectory serves them all.
pub(crate) fn check_against_reference<K: Elementwise, T: Element>(kernel: &K, reference: Reference<K, T>) {
    let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let nb = kernel.buffers();
    let mut rng = Rng::new(17);
    let params: Vec<Vec<T>> = LENGTHS.iter().map(|&n| rng.vec(n)).collect();
    let bufs: Vec<Vec<Vec<T>>> = LENGTHS
        .iter()
        .map(|&n| (0..nb).map(|k| vec![T::zero(); if kernel.uses_buffer(k) { n } else { 0 }]).collect())
        .collect();
    let scalars = vec![[0.0f64; MAX_SCALARS]; LENGTHS.len()];
    let mut runs: Vec<_> = THREADS.iter().map(|&t| (t, params.clone(), bufs.clone(), scalars.clone())).collect();
    let (mut params_ref, mut bufs_ref, mut scalars_ref) = (params, bufs, scalars);
    for step in 0..STEPS {
        let grads: Vec<Vec<T>> = LENGTHS.iter().map(|&n| rng.vec(n)).collect();
        let fresh = step == 0;
        for (threads, params, bufs, scalars) in &mut runs {
            set_num_threads(*threads).unwrap();
            // One thread: updates run on this thread, a run of tensors at a time; more:
            // queued, then shared with a crew of the pool's threads (even steps) or
            // handed to the pool (odd steps).
            let mut batch = if *threads == 1 { Batch::with_size(0) } else { Batch::new() };
            for (((p, g), b), s) in params.iter_mut().zip(&grads).zip(bufs.iter_mut()).zip(scalars.iter_mut()) {
                let slices = TensorSlices::new(p.as_mut_slice(), g.as_slice(), b.iter_mut().map(|v| v.as_mut_slice()));
                batch.push(kernel, &mut s[..K::SCALARS], fresh, slices);
            }
            // The lengths add up to less than the serial threshold: ask for the pool.
            if *threads == 1 {
                batch.run();
            } else if step % 2 == 0 {
                batch.run_shared();
            } else {
                batch.run_parallel();
            }
        }
        for t in 0..LENGTHS.len() {
            reference(
                kernel,
                &mut scalars_ref[t][..K::SCALARS],
                fresh,
                &mut params_ref[t],
                &grads[t],
                &mut bufs_ref[t],
            );
        }
        for (threads, params, bufs, scalars) in &runs {
            for t in 0..LENGTHS.len() {
                let at = format!("step {step}, {threads} threads, length {}", LENGTHS[t]);
                assert_same_bits(&format!("param ({at})"), &params[t], &params_ref[t]);
                for k in 0..nb {
                    assert_same_bits(&format!("buffer {k} ({at})"), &bufs[t][k], &bufs_ref[t][k]);
                }
                assert_eq!(scalars[t], scalars_ref[t], "scalars ({at})");
            }
        }
    }
}

/// [`check_against_reference`] for every configuration, in float32 and float64.
pub(crate) fn check_all<K: Elementwise>(configs: &[K], reference32: Reference<K, f32>, reference64: Reference<K, f64>) {
    for kernel in configs {
        check_against_reference(kernel, reference32);
        check_against_reference(kernel, reference64);
    }
}

/// The arrays of one checked tensor: parameter, state arrays, and one scalar.
pub(crate) struct RefTensor<T> {
    pub(crate) param: Vec<T>,
    pub(crate) state: Vec<Vec<T>>,
    pub(crate) scalar: f64,
}

/// [`check_against_reference`] for the kernels over [`Slices`] lists (the optimizers
/// beyond torch.optim): all tensors of [`LENGTHS`] in one call of `kernel(tensors,
/// scalars, step)` (`step` counts from 0; `scalars` holds one value per tensor, such as
/// its step count), with each thread count in [`THREADS`], compared bit for bit after
/// every step with `reference(tensors, grads, step)`. `init(param)` gives a tensor's
/// initial state arrays (zeros, or a copy of the parameter).
pub(crate) fn check_tensors<T: Element>(
    init: impl Fn(&[T]) -> Vec<Vec<T>>,
    kernel: impl Fn(&mut [TensorSlices<'_, T>], &mut [f64], usize),
    reference: impl Fn(&mut [RefTensor<T>], &[Vec<T>], usize),
) {
    check_tensors_with(|rng, n| rng.vec(n), init, kernel, reference)
}

/// [`check_tensors`] with the gradients of length `n` drawn by `grads(rng, n)`.
pub(crate) fn check_tensors_with<T: Element>(
    grads: impl Fn(&mut Rng, usize) -> Vec<T>,
    init: impl Fn(&[T]) -> Vec<Vec<T>>,
    kernel: impl Fn(&mut [TensorSlices<'_, T>], &mut [f64], usize),
    reference: impl Fn(&mut [RefTensor<T>], &[Vec<T>], usize),
) {
    check_runs(grads, init, |ts, scalars, step, _| kernel(ts, scalars, step), reference)
}

/// [`check_tensors`] for a kernel that carries state of its own from step to step
/// (a param group's counters): `kernel(tensors, scalars, step, run)` is called for
/// each thread count in turn within a step, `run` telling which (0, 1, ...), so that
/// each keeps its own.
pub(crate) fn check_tensors_per_run<T: Element>(
    init: impl Fn(&[T]) -> Vec<Vec<T>>,
    kernel: impl Fn(&mut [TensorSlices<'_, T>], &mut [f64], usize, usize),
    reference: impl Fn(&mut [RefTensor<T>], &[Vec<T>], usize),
) {
    check_runs(|rng, n| rng.vec(n), init, kernel, reference)
}

fn check_runs<T: Element>(
    grads: impl Fn(&mut Rng, usize) -> Vec<T>,
    init: impl Fn(&[T]) -> Vec<Vec<T>>,
    kernel: impl Fn(&mut [TensorSlices<'_, T>], &mut [f64], usize, usize),
    reference: impl Fn(&mut [RefTensor<T>], &[Vec<T>], usize),
) {
    let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(29);
    let copy = |ts: &[RefTensor<T>]| -> Vec<RefTensor<T>> {
        ts.iter().map(|t| RefTensor { param: t.param.clone(), state: t.state.clone(), scalar: t.scalar }).collect()
    };
    let mut theirs: Vec<RefTensor<T>> = LENGTHS
        .iter()
        .map(|&n| {
            let param = rng.vec(n);
            RefTensor { state: init(&param), param, scalar: 0.0 }
        })
        .collect();
    // every thread count steps its own copy, with the same gradients: one reference
    let mut runs: Vec<(usize, Vec<RefTensor<T>>)> = THREADS.iter().map(|&t| (t, copy(&theirs))).collect();
    for step in 0..STEPS {
        let grads: Vec<Vec<T>> = LENGTHS.iter().map(|&n| grads(&mut rng, n)).collect();
        for (run, (threads, mine)) in runs.iter_mut().enumerate() {
            set_num_threads(*threads).unwrap();
            let mut scalars: Vec<f64> = mine.iter().map(|t| t.scalar).collect();
            {
                let mut slices: Vec<TensorSlices<'_, T>> = mine
                    .iter_mut()
                    .zip(&grads)
                    .map(|(t, g)| TensorSlices::new(&mut t.param, g, t.state.iter_mut().map(|s| s.as_mut_slice())))
                    .collect();
                kernel(&mut slices, &mut scalars, step, run);
            }
            for (t, s) in mine.iter_mut().zip(&scalars) {
                t.scalar = *s;
            }
        }
        reference(&mut theirs, &grads, step);
        for (threads, mine) in &runs {
            for (k, (a, b)) in mine.iter().zip(&theirs).enumerate() {
                let at = format!("step {step}, {threads} threads, length {}", LENGTHS[k]);
                assert_same_bits(&format!("param ({at})"), &a.param, &b.param);
                for (j, (x, y)) in a.state.iter().zip(&b.state).enumerate() {
                    assert_same_bits(&format!("state {j} ({at})"), x, y);
                }
                assert_eq!(a.scalar.to_bits(), b.scalar.to_bits(), "scalar ({at})");
            }
        }
    }
}

/// `k` zero state arrays shaped like the parameter, for [`check_tensors`].
pub(crate) fn zeros<T: Element>(k: usize) -> impl Fn(&[T]) -> Vec<Vec<T>> {
    move |p| (0..k).map(|_| vec![T::zero(); p.len()]).collect()
}

/// Checks a kernel whose reference is one tensor at a time, `reference(tensor, grad, step)`.
pub(crate) fn check_each<T: Element>(
    init: impl Fn(&[T]) -> Vec<Vec<T>>,
    kernel: impl Fn(&mut [TensorSlices<'_, T>], &mut [f64], usize),
    reference: impl Fn(&mut RefTensor<T>, &[T], usize),
) {
    check_tensors(init, kernel, |ts, gs, step| ts.iter_mut().zip(gs).for_each(|(t, g)| reference(t, g, step)));
}
