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

    /// `torch.nan_max(x, y, out=x)`
    pub(crate) fn maximum<T: Element>(x: &mut [T], y: &[T]) {
        x.iter_mut().zip(y).for_each(|(v, &w)| *v = v.nan_max(w));
    }
}

fn assert_same_bits<T: Element>(what: &str, got: &[T], want: &[T]) {
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
pub(crate) fn check_against_reference<K: Elementwise, T: Element>(kernel: &K, reference: Reference<K, T>) {
    let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let nb = kernel.buffers();
    for threads in THREADS {
        set_num_threads(threads).unwrap();
        let mut rng = Rng::new(threads as u64 + 17);
        let mut params: Vec<Vec<T>> = LENGTHS.iter().map(|&n| rng.vec(n)).collect();
        let mut bufs: Vec<Vec<Vec<T>>> = LENGTHS
            .iter()
            .map(|&n| (0..nb).map(|k| vec![T::zero(); if kernel.uses_buffer(k) { n } else { 0 }]).collect())
            .collect();
        let mut scalars = vec![[0.0f64; MAX_SCALARS]; LENGTHS.len()];
        let (mut params_ref, mut bufs_ref, mut scalars_ref) = (params.clone(), bufs.clone(), scalars.clone());
        for step in 0..STEPS {
            let grads: Vec<Vec<T>> = LENGTHS.iter().map(|&n| rng.vec(n)).collect();
            let fresh = step == 0;
            // One thread: updates run as they are pushed; more: queued for the pool.
            let mut batch = if threads == 1 { Batch::with_size(0) } else { Batch::new() };
            for (((p, g), b), s) in params.iter_mut().zip(&grads).zip(bufs.iter_mut()).zip(scalars.iter_mut()) {
                let slices = TensorSlices::new(p.as_mut_slice(), g.as_slice(), b.iter_mut().map(|v| v.as_mut_slice()));
                batch.push(kernel, &mut s[..K::SCALARS], fresh, slices);
            }
            // The lengths add up to less than the serial threshold: ask for the pool.
            if threads > 1 {
                batch.run_parallel();
            } else {
                batch.run();
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
