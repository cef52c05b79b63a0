//! Division by a step's constant (a bias correction, a clipping divisor) without a
//! division instruction, to the same bits as `a / b`.
//!
//! A division costs a vector unit about ten times what a fused multiply-add does, and
//! the optimizers that follow torch's tensor operations divide every element by
//! step constants (`exp_avg / bias_correction1`, `grad / clip`, ...).
//!
//! **float64.** With `y = 1/b` rounded to nearest, Markstein's correction
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
//! division ([`Route::Checked`]).
//!
//! **float32.** `a` and `b` are float32, so float64 holds their quotient with 29 bits
//! to spare: `q = a·y` in float64, `y = 1/b` rounded to float64, is within 2⁻⁵²·|a/b|
//! of `a / b`, while a quotient of two float32 that is not itself a float32 is at
//! least 2⁻⁴⁹·|a/b| away from every midpoint between two float32 (`a − M·b` is a
//! nonzero multiple of the grid both lie on). Rounding `q` to float32 is therefore
//! `a / b` — for every `a`, zeros, subnormals, ±∞ and NaN included, with no window
//! and no check ([`Route::Everywhere`]) — unless `a / b` is exactly a midpoint in the
//! subnormal range, which needs `b = odd·2ᵏ` with k ≥ 1 and odd ≥ 3, so `b ≥ 6`. The
//! fast path is taken for `|b| < 6` (a bias correction is at most 1); a divisor that
//! may be larger (a clipping divisor: [`ClipBy`]) divides in float32.
//!
//! Either way the result is `a / b` to the bit; `cargo test` checks every
//! significand of `a` for thousands of `b`.

use crate::element::Element;
use crate::kernels::passes::{add_lanes, below, fold_lanes, LANES};

/// Whether `T` is float64 (a constant the compiler folds).
#[inline(always)]
fn float64<T>() -> bool {
    std::mem::size_of::<T>() == 8
}

/// A divisor `b`, with its reciprocal rounded to nearest (in `T`, and in float64).
///
/// `SMALL`: in float32 the fast path multiplies by the float64 reciprocal, which is
/// exact for `|b| < 6`; a `DivBy<T, false>` ([`ClipBy`]) divides in float32 (its fast
/// path is the division) and takes Markstein's in float64.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DivBy<T, const SMALL: bool = true> {
    b: T,
    y: T,
    y_wide: f64,
    /// the fast path is the division for every value (float32) or every value in the
    /// window (float64)
    usable: bool,
}

/// A divisor that may be large: the fast path is the division in float32.
pub(crate) type ClipBy<T> = DivBy<T, false>;

impl<T: Element, const SMALL: bool> DivBy<T, SMALL> {
    pub(crate) fn new(b: T) -> Self {
        let wide = b.to_f64().unwrap_or(f64::NAN);
        let usable = if float64::<T>() {
            Self::in_range(b)
        } else {
            !SMALL || wide.abs() < 6.0 // not NaN
        };
        DivBy { b, y: T::one() / b, y_wide: 1.0 / wide, usable }
    }

    /// Whether `b` is in [2⁻³², 2³²] (not NaN): Markstein's range.
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

    /// `a / b` without the division instruction (float32 `ClipBy`: with it): the same
    /// bits as [`DivBy::exact`] when the divisor is [`usable`](DivBy::usable) and, in
    /// float64, `a` is in [`window`] (else anything).
    #[inline(always)]
    pub(crate) fn fast(&self, a: T) -> T {
        if float64::<T>() {
            let q = a * self.y;
            let r = (-q).mul_add(self.b, a);
            r.mul_add(self.y, q).copysign(a)
        } else if SMALL {
            T::widen((f64::from(a.narrow()) * self.y_wide) as f32)
        } else {
            self.exact(a)
        }
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

/// How a loop divides by its divisors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// by the division instruction (a divisor is not [`usable`](DivBy::usable))
    Divide,
    /// float64: by the fast path in each block whose values are all in the window
    Checked,
    /// float32: by the fast path everywhere
    Everywhere,
}

impl Route {
    /// The route of a loop whose divisors are `usable` (each [`DivBy::usable`]).
    pub(crate) fn of<T>(usable: &[bool]) -> Route {
        if !usable.iter().all(|&u| u) {
            Route::Divide
        } else if float64::<T>() {
            Route::Checked
        } else {
            Route::Everywhere
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
const _: () = assert!(BLOCK.is_multiple_of(LANES));

/// The blocks `(start, end)` of `0..n` a loop on `route` runs: of [`BLOCK`] elements
/// on [`Route::Checked`], else one.
fn blocks(n: usize, route: Route) -> impl Iterator<Item = (usize, usize)> {
    let size = if route == Route::Checked { BLOCK } else { n.max(1) };
    (0..n).step_by(size).map(move |start| (start, n.min(start + size)))
}

/// Whether a block on `route` takes the fast path (`in_window`: whether its values
/// are all in the window, asked on [`Route::Checked`] only).
#[inline(always)]
fn fast(route: Route, in_window: impl FnOnce() -> bool) -> bool {
    match route {
        Route::Divide => false,
        Route::Everywhere => true,
        Route::Checked => in_window(),
    }
}

/// Whether `ok(s, i)` holds for every `i` in `start..end` (a count of the others,
/// with no early exit: it vectorizes).
#[inline(always)]
fn all<S: ?Sized>(s: &S, n: usize, start: usize, end: usize, ok: &impl Fn(&S, usize) -> bool) -> bool {
    below(n, start, end).map(|i| u32::from(!ok(s, i))).sum::<u32>() == 0
}

/// Runs `f(arrays, i, fast)` over `0..n`: `fast` false everywhere on
/// [`Route::Divide`], true everywhere on [`Route::Everywhere`]; on [`Route::Checked`]
/// a block at a time, true in each block in which `ok(arrays, i)` holds for every
/// `i`, false in the others: `ok` reads the block's values before `f` writes them
/// (`arrays`: the slices `f` writes, which `ok` reads).
#[inline(always)]
pub(crate) fn checked_blocks<S: ?Sized>(
    n: usize,
    route: Route,
    arrays: &mut S,
    ok: impl Fn(&S, usize) -> bool,
    mut f: impl FnMut(&mut S, usize, bool),
) {
    for (start, end) in blocks(n, route) {
        // two loops, each with its constant `fast`, which the inlined `f` folds (two
        // call sites only: more, and `f` is no longer inlined)
        if fast(route, || all(arrays, n, start, end, &ok)) {
            below(n, start, end).for_each(|i| f(arrays, i, true));
        } else {
            below(n, start, end).for_each(|i| f(arrays, i, false));
        }
    }
}

/// `lane_sums(n, |i| f(arrays, i, fast))` with `fast` as [`checked_blocks`] gives
/// it: the same lanes and order as `lane_sums`.
#[inline(always)]
pub(crate) fn checked_lane_sums<S: ?Sized, const R: usize>(
    n: usize,
    route: Route,
    arrays: &mut S,
    ok: impl Fn(&S, usize) -> bool,
    mut f: impl FnMut(&mut S, usize, bool) -> [f64; R],
) -> [f64; R] {
    let mut acc = [[0.0f64; LANES]; R];
    for (start, end) in blocks(n, route) {
        if fast(route, || all(arrays, n, start, end, &ok)) {
            add_lanes(&mut acc, n, start, end, |i| f(arrays, i, true));
        } else {
            add_lanes(&mut acc, n, start, end, |i| f(arrays, i, false));
        }
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

    /// The same bits, or both NaN.
    fn same(x: f32, y: f32) -> bool {
        x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
    }

    #[test]
    fn fast_is_the_division_for_every_float32_significand() {
        let mut rng = Rng::new(3);
        // the divisors below 6, and some odd multiples of powers of two near it
        let mut bs: Vec<f32> = divisors::<f32>(&mut rng, 40).into_iter().filter(|b| b.abs() < 6.0).collect();
        bs.extend([3.0, 5.0, 5.999_999_5, 1.5, 0.75, 3.0 * 2f32.powi(-20), -2.5, -0.3, f32::from_bits(1), 1e-40]);
        let bs: Vec<(usize, f32)> = bs.into_iter().enumerate().collect();
        let bad: Vec<String> = crate::exec::map_jobs(bs.len() << 25, bs, |(k, b)| {
            let d = DivBy::<f32>::new(b);
            assert!(d.usable(), "{b:e}");
            // every significand at exponents 0 (the general case), −126 (the least
            // normal binade, quotients near the subnormals) and 127 (quotients that
            // overflow), and every subnormal; every 7th for the bias corrections
            let stride = if k < 40 { 1 } else { 7 };
            significands(&[0, -126, 127], stride)
                .chain((0..1u32 << 23).step_by(stride).map(f32::from_bits))
                .chain([-0.0, -1.25, -3.0e-27, -1e-45, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX])
                .find(|&a| !same(d.fast(a), a / b))
                .map(|a| format!("{a:e} / {b:e}"))
        })
        .into_iter()
        .flatten()
        .collect();
        assert!(bad.is_empty(), "fast differs from the division: {bad:?}");
    }

    #[test]
    fn the_float32_product_needs_a_divisor_below_six() {
        // 147·2⁻¹⁴⁹ / 98 is 1.5·2⁻¹⁴⁹, the midpoint between two subnormals (to even:
        // 2·2⁻¹⁴⁹); the float64 reciprocal of 98 is off by enough that the product
        // falls below it. So 98 (anything from 6 on) is refused, and the clipping
        // divisor divides.
        let (a, b) = (f32::from_bits(147), 98.0f32);
        assert_eq!((a / b).to_bits(), 2);
        assert_eq!(((f64::from(a) * (1.0 / 98.0f64)) as f32).to_bits(), 1);
        assert!(!DivBy::<f32>::new(b).usable() && !DivBy::<f32>::new(6.0).usable());
        let clip = ClipBy::<f32>::new(b);
        assert!(clip.usable() && clip.fast(a).to_bits() == 2);
        for b in [f32::NAN, f32::INFINITY, -7.0] {
            assert!(!DivBy::<f32>::new(b).usable(), "{b:e}");
        }
    }

    #[test]
    fn fast_is_the_division_for_random_float64() {
        let mut rng = Rng::new(4);
        for b in divisors::<f64>(&mut rng, 200) {
            let d = DivBy::<f64>::new(b);
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
        // float64 divisors beyond 2^±32, or not positive, never take the fast path
        for b in [2f64.powi(33), 2f64.powi(-33), 0.0, -1.0, f64::INFINITY, f64::NAN] {
            assert!(!DivBy::<f64>::new(b).usable() && !ClipBy::<f64>::new(b).usable(), "{b:e}");
        }
        assert!(DivBy::<f64>::new(0.1).usable() && DivBy::<f32>::new(0.1).usable());
        assert_eq!(Route::of::<f64>(&[true, true]), Route::Checked);
        assert_eq!(Route::of::<f32>(&[true, true]), Route::Everywhere);
        assert_eq!(Route::of::<f32>(&[true, false]), Route::Divide);
    }

    /// Values outside the (float64) window now and then, so that some blocks divide.
    fn sprinkled(rng: &mut Rng, n: usize) -> Vec<f64> {
        let specials = [0.0, -0.0, 1e-300, -5e-324, 1e300, f64::INFINITY, f64::NAN];
        (0..n).map(|i| if i % 397 == 5 { specials[i % specials.len()] } else { rng.uniform() * 8.0 }).collect()
    }

    /// Both loops, on each route, against plain division.
    fn blocked_loops_are_the_plain_division_in<T: Element>() {
        let mut rng = Rng::new(8);
        for n in [0, 1, 7, 33, BLOCK - 1, BLOCK, BLOCK + 5, 3 * BLOCK + 40, 1_000_003] {
            let a: Vec<T> = sprinkled(&mut rng, n).into_iter().map(T::of).collect();
            for b in [0.1, 3.7, 2f64.powi(40)].map(T::of) {
                let d = DivBy::<T>::new(b);
                let route = Route::of::<T>(&[d.usable()]);
                let want: Vec<T> = a.iter().map(|&x| x / b).collect();
                let mut got = vec![T::zero(); n];
                checked_blocks(n, route, &mut got, |_, i| in_window(a[i]), |got, i, fast| got[i] = d.div(a[i], fast));
                crate::kernels::testing::assert_same_bits(&format!("n = {n}, b = {b:?}, {route:?}"), &got, &want);
                let f = |x: T| [x.to_f64().unwrap(), x.abs().to_f64().unwrap()];
                let plain = lane_sums(n, |i| f(a[i] / b));
                let blocked =
                    checked_lane_sums(n, route, &mut (), |_, i| in_window(a[i]), |_, i, fast| f(d.div(a[i], fast)));
                assert_eq!(plain.map(f64::to_bits), blocked.map(f64::to_bits), "n = {n}, b = {b:?}, {route:?}");
            }
        }
    }

    #[test]
    fn blocked_loops_are_the_plain_division() {
        blocked_loops_are_the_plain_division_in::<f32>();
        blocked_loops_are_the_plain_division_in::<f64>();
    }
}
