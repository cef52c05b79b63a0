//! Division by a step's constant (a bias correction, a clipping divisor) without a
//! division instruction, to the same bits as `a / b`.
//!
//! A division costs a vector unit about ten times what a fused multiply-add does, and
//! the optimizers that follow torch's tensor operations divide every element by
//! step constants (`exp_avg / bias_correction1`, `grad / clip`, ...). With `y = 1/b`
//! rounded to nearest, Markstein's correction
//!
//! ```text
//! q = a·y;   r = fma(−q, b, a)  (exact);   q' = fma(r, y, q)
//! ```
//!
//! gives `a / b` correctly rounded (Markstein 1990, "Computation of elementary
//! functions on the IBM RISC System/6000 processor"; Theorem 5.8 of the Handbook of
//! Floating-Point Arithmetic) as long as no intermediate underflows or overflows:
//! for `b` in [2⁻³², 2³²] and `|a|` in [`window`] (a zero keeps its sign by a
//! copysign). Outside the window — a tiny, subnormal, huge, infinite or NaN value —
//! the division instruction is the only safe answer, so the loops that use
//! [`DivBy::fast`] run in blocks ([`checked_blocks`], [`checked_lane_sums`]): a block
//! whose every value is in the window takes the fast path, any other the plain
//! division. Either way the result is `a / b` to the bit; `cargo test` checks every
//! significand of `a` for thousands of `b`.

use crate::element::Element;
use crate::kernels::passes::{add_lanes, below, fold_lanes, LANES};

/// A divisor `b`, with its reciprocal rounded to nearest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DivBy<T> {
    b: T,
    y: T,
    /// b is a positive normal number in [2⁻³², 2³²], so the fast path is exact (in
    /// the window), and T is float64
    usable: bool,
}

impl<T: Element> DivBy<T> {
    /// The fast path is taken for float64 only: there a division costs twice what it
    /// does in float32 and LAMB's step on one 16.8M parameter is 10–25 % faster with
    /// it; in float32 the division is not what bounds the step and the blocks' checks
    /// made it 7–10 % slower (Intel Xeon, AVX-512; both exact either way).
    pub(crate) fn new(b: T) -> Self {
        let float64 = std::mem::size_of::<T>() == 8;
        DivBy { b, y: T::one() / b, usable: float64 && Self::in_range(b) }
    }

    /// Whether `b` is in [2⁻³², 2³²] (not NaN).
    fn in_range(b: T) -> bool {
        b >= T::of(2f64.powi(-32)) && b <= T::of(2f64.powi(32))
    }

    /// Whether the fast path may be taken at all (else every block divides).
    pub(crate) fn usable(&self) -> bool {
        self.usable
    }

    /// `a / b`, by the division instruction.
    #[inline(always)]
    pub(crate) fn exact(&self, a: T) -> T {
        a / self.b
    }

    /// `a / b` by Markstein's correction: the same bits as [`DivBy::exact`] when the
    /// divisor is [`usable`](DivBy::usable) and `a` is in [`window`] (else anything).
    #[inline(always)]
    pub(crate) fn fast(&self, a: T) -> T {
        let q = a * self.y;
        let r = (-q).mul_add(self.b, a);
        r.mul_add(self.y, q).copysign(a)
    }

    /// [`fast`](DivBy::fast) or [`exact`](DivBy::exact) (`fast` is a block's
    /// constant: the loops that pass it are compiled once for each value).
    #[inline(always)]
    pub(crate) fn div(&self, a: T, fast: bool) -> T {
        if fast {
            self.fast(a)
        } else {
            self.exact(a)
        }
    }
}

/// The magnitudes `[lo, hi]` for which [`DivBy::fast`] is exact (and zero): far
/// enough from the subnormal range and from overflow that neither the quotient
/// (divisors up to 2³² either way) nor the residual `r` leaves the normal numbers.
/// float32: [2⁻⁹⁰, 2⁹⁰]; float64: [2⁻⁹⁵⁷, 2⁹⁵⁷].
#[inline(always)]
fn window<T: Element>() -> (T, T) {
    let lo = T::min_positive_value() * T::of(2f64.powi(13)) / T::epsilon(); // 2^(emin + 13 + p − 1)
    (lo, T::one() / lo)
}

/// Whether `a` is zero or in the fast path's window (NaN and ±∞ are not).
#[inline(always)]
pub(crate) fn in_window<T: Element>(a: T) -> bool {
    let (lo, hi) = window::<T>();
    let m = a.abs();
    (a == T::zero()) | ((m >= lo) & (m <= hi)) // no short circuit: the check vectorizes
}

/// Whether `√v` is zero or in the window: `v` zero or positive and finite, as the
/// square root of a finite float is in the window.
#[inline(always)]
pub(crate) fn sqrt_in_window<T: Element>(v: T) -> bool {
    (v >= T::zero()) & (v <= T::max_value())
}

/// Elements per block: a block's arrays stay in L1 between its check and its update.
/// A multiple of [`LANES`], so an element's lane in [`checked_lane_sums`] is its
/// lane in `lane_sums`.
pub(crate) const BLOCK: usize = 256;
const _: () = assert!(BLOCK % LANES == 0);

/// Whether `ok(s, i)` holds for every `i` in `start..end` (a count of the others,
/// with no early exit: it vectorizes).
#[inline(always)]
fn all<S: ?Sized>(s: &S, n: usize, start: usize, end: usize, ok: &impl Fn(&S, usize) -> bool) -> bool {
    below(n, start, end).map(|i| u32::from(!ok(s, i))).sum::<u32>() == 0
}

/// Runs `f(arrays, i, fast)` over `0..n` a block at a time, `fast` true in each block
/// in which `ok(arrays, i)` holds for every `i` (and `usable`), false in the others:
/// `ok` reads the block's values before `f` writes them (`arrays`: the slices `f`
/// writes, which `ok` reads).
#[inline(always)]
pub(crate) fn checked_blocks<S: ?Sized>(
    n: usize,
    usable: bool,
    arrays: &mut S,
    ok: impl Fn(&S, usize) -> bool,
    mut f: impl FnMut(&mut S, usize, bool),
) {
    let mut start = 0;
    while start < n {
        let end = n.min(start + BLOCK);
        // two loops, each with its constant `fast`, which the inlined `f` folds
        if usable && all(arrays, n, start, end, &ok) {
            below(n, start, end).for_each(|i| f(arrays, i, true));
        } else {
            below(n, start, end).for_each(|i| f(arrays, i, false));
        }
        start = end;
    }
}

/// `lane_sums(n, |i| f(arrays, i, fast))` with `fast` as [`checked_blocks`] gives
/// it: the same lanes and order as `lane_sums`.
#[inline(always)]
pub(crate) fn checked_lane_sums<S: ?Sized, const R: usize>(
    n: usize,
    usable: bool,
    arrays: &mut S,
    ok: impl Fn(&S, usize) -> bool,
    mut f: impl FnMut(&mut S, usize, bool) -> [f64; R],
) -> [f64; R] {
    let mut acc = [[0.0f64; LANES]; R];
    let mut start = 0;
    while start < n {
        let end = n.min(start + BLOCK);
        if usable && all(arrays, n, start, end, &ok) {
            add_lanes(&mut acc, n, start, end, |i| f(arrays, i, true));
        } else {
            add_lanes(&mut acc, n, start, end, |i| f(arrays, i, false));
        }
        start = end;
    }
    acc.map(fold_lanes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::passes::lane_sums;
    use crate::kernels::testing::Rng;

    /// Divisors: random significands at several scales, the extreme significands, and
    /// the bias corrections `1 − βᵗ`, `√(1 − βᵗ)` of the usual betas.
    fn divisors<T: Element>(rng: &mut Rng, random: usize) -> Vec<T> {
        let mut bs = Vec::new();
        for k in 0..random {
            let scale = 2f64.powi([0, -31, 31, -4, 12][k % 5]);
            bs.push(T::of((1.5 + 0.5 * rng.uniform()) * scale));
        }
        for e in [-32, -5, 0, 7, 31] {
            let one = T::of(2f64.powi(e));
            bs.extend([one, (one + one) * (T::one() - T::epsilon()), one * (T::one() + T::epsilon())]);
        }
        for t in (1..=20).chain([50, 100, 1000, 5000]) {
            for beta in [0.9f64, 0.99, 0.999, 0.95] {
                bs.push(T::of(1.0 - beta.powi(t)));
                bs.push(T::of((1.0 - beta.powi(t)).sqrt()));
            }
        }
        bs
    }

    /// Every `stride`-th float32 significand of `a`, at the exponents `es`.
    fn significands(es: &[i32], stride: usize) -> impl Iterator<Item = f32> + '_ {
        es.iter().flat_map(move |&e| {
            (0..1u32 << 23).step_by(stride).map(move |m| f32::from_bits(0x3f80_0000 | m) * 2f32.powi(e))
        })
    }

    #[test]
    fn fast_is_the_division_for_every_float32_significand() {
        let mut rng = Rng::new(3);
        let bs: Vec<(usize, f32)> = divisors::<f32>(&mut rng, 40).into_iter().enumerate().collect();
        let bad: Vec<String> = crate::exec::map_jobs(bs.len() << 23, bs, |(k, b)| {
            let d = DivBy::new(b);
            assert!(DivBy::in_range(b), "{b:e}");
            // the rounding depends on the significands alone, away from the window's
            // ends: exponent 0 is the general case; −90 and 89 are the ends (with the
            // extreme divisors, quotients near 2^−122 and 2^122). Every significand
            // for the random and extreme divisors, every 5th for the bias corrections.
            let extreme = !(2f32.powi(-20)..2f32.powi(20)).contains(&b);
            let es: &[i32] = if extreme { &[0, -90, 89] } else { &[0] };
            significands(es, if k < 55 { 1 } else { 5 })
                .chain([0.0, -0.0, -1.25, -3.0e-27])
                .find(|&a| in_window(a) && d.fast(a).to_bits() != (a / b).to_bits())
                .map(|a| format!("{a:e} / {b:e}"))
        })
        .into_iter()
        .flatten()
        .collect();
        assert!(bad.is_empty(), "fast differs from the division: {bad:?}");
    }

    #[test]
    fn fast_is_the_division_for_random_float64() {
        let mut rng = Rng::new(4);
        for b in divisors::<f64>(&mut rng, 200) {
            let d = DivBy::new(b);
            for k in 0..20_000 {
                let e = [0, -957, 956, -40, 300][k % 5];
                let a = (1.0 + rng.uniform().abs()) * 2f64.powi(e) * if k % 2 == 0 { 1.0 } else { -1.0 };
                assert!(in_window(a), "{a:e}");
                assert_eq!(d.fast(a).to_bits(), (a / b).to_bits(), "{a:e} / {b:e}");
            }
        }
    }

    #[test]
    fn the_window_leaves_out_what_it_must() {
        let (lo, hi) = window::<f32>();
        assert_eq!((lo, hi), (2f32.powi(-90), 2f32.powi(90)));
        let (lo, hi) = window::<f64>();
        assert_eq!((lo, hi), (2f64.powi(-957), 2f64.powi(957)));
        for a in [f32::NAN, f32::INFINITY, -f32::INFINITY, 1e-30, -1e-30, f32::MIN_POSITIVE, 1e-45, 1e30, f32::MAX] {
            assert!(!in_window(a), "{a:e}");
        }
        assert!(in_window(0.0f32) && in_window(-0.0f32) && in_window(1e-27f32) && in_window(-1.2e27f32));
        for v in [0.0f32, 1e-45, f32::MIN_POSITIVE, 1.0, f32::MAX] {
            assert!(sqrt_in_window(v) && in_window(v.sqrt()), "{v:e}");
        }
        assert!(!sqrt_in_window(f32::INFINITY) && !sqrt_in_window(f32::NAN) && !sqrt_in_window(-1.0f32));
        assert!(sqrt_in_window(f64::from_bits(1)) && in_window(f64::from_bits(1).sqrt()));
        // divisors beyond 2^±32, or not positive, never take the fast path; float32 never does
        for b in [2f64.powi(33), 2f64.powi(-33), 0.0, -1.0, f64::INFINITY, f64::NAN] {
            assert!(!DivBy::new(b).usable(), "{b:e}");
        }
        assert!(DivBy::new(0.1f64).usable() && !DivBy::new(0.1f32).usable());
    }

    /// Values outside the (float64) window now and then, so that some blocks divide.
    fn sprinkled(rng: &mut Rng, n: usize) -> Vec<f64> {
        let specials = [0.0, -0.0, 1e-300, -5e-324, 1e300, f64::INFINITY, f64::NAN];
        (0..n).map(|i| if i % 397 == 5 { specials[i % specials.len()] } else { rng.uniform() * 8.0 }).collect()
    }

    #[test]
    fn blocked_loops_are_the_plain_division() {
        let mut rng = Rng::new(8);
        for n in [0, 1, 7, 33, BLOCK - 1, BLOCK, BLOCK + 5, 3 * BLOCK + 40, 1_000_003] {
            let a = sprinkled(&mut rng, n);
            for b in [0.1f64, 3.7, 2f64.powi(40)] {
                let d = DivBy::new(b);
                let want: Vec<f64> = a.iter().map(|&x| x / b).collect();
                let mut got = vec![0.0f64; n];
                checked_blocks(
                    n,
                    d.usable(),
                    &mut got,
                    |_, i| in_window(a[i]),
                    |got, i, fast| got[i] = d.div(a[i], fast),
                );
                crate::kernels::testing::assert_same_bits(&format!("n = {n}, b = {b}"), &got, &want);
                let f = |x: f64| [x, x.abs()];
                let plain = lane_sums(n, |i| f(a[i] / b));
                let blocked = checked_lane_sums(
                    n,
                    d.usable(),
                    &mut (),
                    |_, i| in_window(a[i]),
                    |_, i, fast| f(d.div(a[i], fast)),
                );
                assert_eq!(plain.map(f64::to_bits), blocked.map(f64::to_bits), "n = {n}, b = {b}");
            }
        }
    }
}
