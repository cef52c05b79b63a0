//! The bandwidth probe: the cheapest loop that moves the bytes an optimizer moves.
//!
//! An elementwise optimizer with `k` state buffers reads the parameter, the gradient
//! and the `k` buffers and writes back the parameter and the buffers: for Adam
//! (k = 2) in float32 that is 28 bytes per element. [`Stream::step`] does exactly
//! that traffic with one addition per array,
//!
//! ```text
//! θ ← θ + s·g;   bᵢ ← bᵢ + s·g   for each buffer
//! ```
//!
//! on the same thread pool and chunks as the optimizers, so its time is the memory
//! bound that the benchmark divides every optimizer's time by. The benchmark runs it
//! on the optimizer's own arrays (so both see the same pages: huge or not, which
//! moves a pass's time by tens of percent) with `s = 0`, which leaves every finite
//! value as it was.
//!
//! A step that makes several passes, or whose passes read arrays they do not write
//! back (Adafactor's read θ, g and its variance and write back one of them; LAMB's
//! first pass only reads the gradients), is not measured against that pattern: a
//! pass that writes back fewer of the arrays it reads is not cheaper per byte on
//! every machine (a write-back overlaps the reads; a read waits for memory). Each of
//! its passes is probed with its own [`Touch`] of every array:
//!
//! ```text
//! a = Σ of the arrays read only (g first, then θ and the buffers);
//! w ← w + s·a   for each array updated
//! ```
//!
//! (with nothing updated, `a` is summed over the tensor in lanes and kept from being
//! optimized away). Only how many arrays are updated and how many read matters to
//! the loop, not which: it takes the updated ones first, then those read, so one
//! loop per count covers every pattern, with every array advancing together (a loop
//! taking one array at a time, in tiles, was 15–45 % slower on a 2-vCPU VM: memory
//! serves several streams at once faster than one after another).

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices, MAX_BUFFERS};
use crate::kernels::passes::{add_lanes, LANES};
use crate::kernels::{simd_targets, with_const_bool};

/// What a probed pass does with one of its arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// Not touched.
    Skip,
    /// Read only.
    Read,
    /// Read and written back.
    Update,
}

impl Touch {
    /// `'-'`, `'r'` or `'w'` (read and written back).
    pub fn of(c: char) -> Option<Touch> {
        match c {
            '-' => Some(Touch::Skip),
            'r' => Some(Touch::Read),
            'w' => Some(Touch::Update),
            _ => None,
        }
    }
}

/// The streaming kernel over a parameter, its gradient and `buffers` state buffers,
/// touching array `k` (θ, g, then the buffers) as `touch[k]`; `scale` multiplies what
/// is added.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stream {
    /// The state buffers the rule keeps.
    pub buffers: usize,
    /// How each array is touched: θ, g, then each buffer.
    pub touch: [Touch; 2 + MAX_BUFFERS],
    /// The factor of what is added to the arrays written.
    pub scale: f64,
}

impl Stream {
    /// An elementwise step's traffic: θ and the buffers read and written back, g read.
    pub fn step(buffers: usize, scale: f64) -> Stream {
        let mut touch = [Touch::Skip; 2 + MAX_BUFFERS];
        touch[..2 + buffers.min(MAX_BUFFERS)].fill(Touch::Update);
        touch[1] = Touch::Read;
        Stream { buffers: buffers.min(MAX_BUFFERS), touch, scale }
    }

    /// A pass's traffic written one character per array, θ, g, then the buffers:
    /// `'-'` untouched, `'r'` read, `'w'` read and written back (`"wrww"` is Adam's
    /// step, `"-r--"` a gradient norm over Adam's arrays).
    ///
    /// # Errors
    /// A pattern shorter than 2 or longer than `2 + MAX_BUFFERS`, a character other
    /// than those three, or a gradient written back.
    pub fn pattern(pattern: &str, scale: f64) -> Result<Stream, String> {
        let chars: Vec<char> = pattern.chars().collect();
        if !(2..=2 + MAX_BUFFERS).contains(&chars.len()) {
            return Err(format!(
                "a pattern names θ, g and at most {MAX_BUFFERS} buffers: {pattern:?} has {} characters",
                chars.len()
            ));
        }
        let mut touch = [Touch::Skip; 2 + MAX_BUFFERS];
        for (k, &c) in chars.iter().enumerate() {
            touch[k] = Touch::of(c).ok_or_else(|| format!("{c:?} in {pattern:?} is not one of '-', 'r', 'w'"))?;
        }
        if touch[1] == Touch::Update {
            return Err(format!("the gradient is only read: {pattern:?}"));
        }
        Ok(Stream { buffers: chars.len() - 2, touch, scale })
    }
}

/// The arrays a pass may update or read besides the gradient: θ and the buffers.
const SLOTS: usize = 1 + MAX_BUFFERS;

simd_targets! {
/// `U` arrays updated from the sum of the `R` after them (and of the gradient if
/// `G`), element by element.
fn stream_loop<T: Element, const U: usize, const R: usize, const G: bool>(
    scale: T,
    grad: &[T],
    arrays: [&mut [T]; SLOTS],
    n: usize,
) {
    let grad = if G { &grad[..n] } else { grad };
    let [a0, a1, a2, a3, a4] = arrays;
    let used = |k: usize| k < U + R;
    let (a0, a1, a2, a3, a4) = (
        if used(0) { &mut a0[..n] } else { a0 },
        if used(1) { &mut a1[..n] } else { a1 },
        if used(2) { &mut a2[..n] } else { a2 },
        if used(3) { &mut a3[..n] } else { a3 },
        if used(4) { &mut a4[..n] } else { a4 },
    );
    let sum = |a: [&[T]; SLOTS], i: usize| sum_at::<T, U, R, G>(grad, a, i);
    if U == 0 {
        // nothing written back: the sums go to lanes, kept from being optimized away
        let mut lanes = [[T::zero(); LANES]; 1];
        add_lanes(&mut lanes, n, 0, n, |i| [sum([&*a0, &*a1, &*a2, &*a3, &*a4], i)]);
        std::hint::black_box(lanes);
        return;
    }
    for i in 0..n {
        let sa = scale * sum([a0, a1, a2, a3, a4], i);
        update::<T, U>(0, a0, i, sa);
        update::<T, U>(1, a1, i, sa);
        update::<T, U>(2, a2, i, sa);
        update::<T, U>(3, a3, i, sa);
        update::<T, U>(4, a4, i, sa);
    }
}
}

/// Element `i` of the gradient (if `G`) plus those of the `R` slots read, after the
/// `U` updated.
#[inline(always)]
fn sum_at<T: Element, const U: usize, const R: usize, const G: bool>(grad: &[T], a: [&[T]; SLOTS], i: usize) -> T {
    let mut acc = if G { grad[i] } else { T::zero() };
    for (k, a) in a.iter().enumerate() {
        if (U..U + R).contains(&k) {
            acc = acc + a[i];
        }
    }
    acc
}

/// `a[i] ← a[i] + sa` if slot `k` is one of the `U` updated.
#[inline(always)]
fn update<T: Element, const U: usize>(k: usize, a: &mut [T], i: usize, sa: T) {
    if k < U {
        a[i] = a[i] + sa;
    }
}

/// Calls `stream_loop::<T, U, R, G>` for the runtime `(u, r)`, `u + r ≤ SLOTS`.
macro_rules! counts {
    ($u:expr, $r:expr, $call:ident; $(($U:literal, $R:literal))*) => {
        match ($u, $r) {
            $(($U, $R) => $call!($U, $R),)*
            _ => unreachable!("more than {SLOTS} arrays besides the gradient"),
        }
    };
}

impl Elementwise for Stream {
    const SCALARS: usize = 0;
    type Step = ();

    fn buffers(&self) -> usize {
        self.buffers
    }

    fn begin(&self, _scalars: &mut [f64], _fresh: bool) {}

    fn update<T: Element>(&self, _step: &(), t: TensorSlices<'_, T>) {
        let n = t.len();
        let TensorSlices { param, grad, buffers } = t;
        let [b0, b1, b2, b3] = buffers;
        // θ and the buffers, the updated ones first, then those read (in order); a
        // slot past `buffers` is not there to touch
        let touch = |k: usize| if k < 2 + self.buffers { self.touch[k] } else { Touch::Skip };
        let mut slots: [(Touch, &mut [T]); SLOTS] =
            [(touch(0), param), (touch(2), b0), (touch(3), b1), (touch(4), b2), (touch(5), b3)];
        slots.sort_by_key(|(t, _)| match t {
            Touch::Update => 0,
            Touch::Read => 1,
            Touch::Skip => 2,
        });
        let u = slots.iter().filter(|(t, _)| *t == Touch::Update).count();
        let r = slots.iter().filter(|(t, _)| *t == Touch::Read).count();
        let arrays = slots.map(|(_, a)| a);
        let s = T::of(self.scale);
        with_const_bool!(self.touch[1] == Touch::Read, G => {
            macro_rules! call {
                ($U:literal, $R:literal) => {
                    stream_loop::<T, $U, $R, G>(s, grad, arrays, n)
                };
            }
            counts!(u, r, call;
                (0, 0) (0, 1) (0, 2) (0, 3) (0, 4) (0, 5)
                (1, 0) (1, 1) (1, 2) (1, 3) (1, 4)
                (2, 0) (2, 1) (2, 2) (2, 3)
                (3, 0) (3, 1) (3, 2)
                (4, 0) (4, 1)
                (5, 0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_against_reference, ops};

    fn reference<T: Element>(h: &Stream, _: &mut [f64], _: bool, p: &mut [T], g: &[T], bufs: &mut [Vec<T>]) {
        let mut acc = vec![T::zero(); p.len()];
        if h.touch[1] == Touch::Read {
            ops::add_scaled(&mut acc, g, 1.0);
        }
        if h.touch[0] == Touch::Read {
            ops::add_scaled(&mut acc, p, 1.0);
        }
        for (k, b) in bufs[..h.buffers].iter().enumerate() {
            if h.touch[2 + k] == Touch::Read {
                ops::add_scaled(&mut acc, b, 1.0);
            }
        }
        ops::mul(&mut acc, h.scale);
        if h.touch[0] == Touch::Update {
            ops::add_scaled(p, &acc, 1.0);
        }
        for (k, b) in bufs[..h.buffers].iter_mut().enumerate() {
            if h.touch[2 + k] == Touch::Update {
                ops::add_scaled(b, &acc, 1.0);
            }
        }
    }

    #[test]
    fn matches_the_scalar_reference() {
        let mut patterns: Vec<Stream> = (0..=MAX_BUFFERS).map(|b| Stream::step(b, 0.5)).collect();
        // Adafactor's passes, LAMB's three, LARS's two, Prodigy's two; only reads;
        // nothing at all
        for p in ["wrr", "-r--", "rrww", "w-rr", "rr-", "wrw", "rrwwwr", "w-rr--", "rr", "--", "r-wr"] {
            patterns.push(Stream::pattern(p, -0.25).unwrap());
        }
        for h in &patterns {
            check_against_reference::<_, f32>(h, reference);
            check_against_reference::<_, f64>(h, reference);
        }
    }

    #[test]
    fn the_step_is_its_pattern() {
        for (b, p) in ["wr", "wrw", "wrww", "wrwww", "wrwwww"].iter().enumerate() {
            assert_eq!(Stream::step(b, 1.0), Stream::pattern(p, 1.0).unwrap());
        }
    }

    #[test]
    fn refuses_what_is_not_a_pattern() {
        for p in ["", "w", "wrwwwww", "ww", "wx", "w r"] {
            assert!(Stream::pattern(p, 1.0).is_err(), "{p:?}");
        }
    }
}
