//! The bandwidth probe: the cheapest loop that moves the bytes an optimizer moves.
//!
//! An elementwise optimizer with `k` state buffers reads the parameter, the gradient
//! and the `k` buffers and writes back the parameter and the buffers: for Adam
//! (k = 2) in float32 that is 28 bytes per element. [`Stream`] does exactly that
//! traffic with one addition per array,
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
//! A step whose buffers are only read in a pass (Adafactor's passes read θ, g and
//! its variance and write back one of them) is probed with `read_only` buffers:
//! `θ ← θ + g + Σᵢ bᵢ`. A pass that writes back fewer of the arrays it reads is not
//! cheaper per byte on every machine (a write-back overlaps the reads; a read waits
//! for memory), so such a step is measured against its own pattern.

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices, MAX_BUFFERS};
use crate::kernels::{simd_targets, with_const_bool};

/// The streaming kernel over a parameter, its gradient and `buffers` state buffers,
/// written back unless `read_only`; `scale` multiplies what is added.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stream {
    pub buffers: usize,
    pub read_only: bool,
    pub scale: f64,
}

simd_targets! {
fn stream_loop<T: Element, const B: usize, const RO: bool>(
    scale: T,
    param: &mut [T],
    grad: &[T],
    bufs: [&mut [T]; MAX_BUFFERS],
) {
    let n = param.len();
    let grad = &grad[..n];
    let [b0, b1, b2, b3] = bufs;
    let (b0, b1, b2, b3) = (
        if B > 0 { &mut b0[..n] } else { b0 },
        if B > 1 { &mut b1[..n] } else { b1 },
        if B > 2 { &mut b2[..n] } else { b2 },
        if B > 3 { &mut b3[..n] } else { b3 },
    );
    for i in 0..n {
        let g = grad[i];
        let sg = scale * g;
        // read-only buffers are summed with g, then scaled; written ones get s·g
        let mut acc = if RO { g } else { sg };
        if B > 0 {
            touch::<T, RO>(&mut b0[i], sg, &mut acc);
        }
        if B > 1 {
            touch::<T, RO>(&mut b1[i], sg, &mut acc);
        }
        if B > 2 {
            touch::<T, RO>(&mut b2[i], sg, &mut acc);
        }
        if B > 3 {
            touch::<T, RO>(&mut b3[i], sg, &mut acc);
        }
        param[i] = param[i] + if RO { scale * acc } else { acc };
    }
}
}

/// One buffer element: added to `acc` if `RO`, else `b ← b + s·g`.
#[inline(always)]
fn touch<T: Element, const RO: bool>(b: &mut T, sg: T, acc: &mut T) {
    if RO {
        *acc = *acc + *b;
    } else {
        *b = *b + sg;
    }
}

impl Elementwise for Stream {
    const SCALARS: usize = 0;
    type Step = ();

    fn buffers(&self) -> usize {
        self.buffers
    }

    fn begin(&self, _scalars: &mut [f64], _fresh: bool) {}

    fn update<T: Element>(&self, _step: &(), t: TensorSlices<'_, T>) {
        let s = T::of(self.scale);
        with_const_bool!(self.read_only, RO => match self.buffers {
            0 => stream_loop::<T, 0, RO>(s, t.param, t.grad, t.buffers),
            1 => stream_loop::<T, 1, RO>(s, t.param, t.grad, t.buffers),
            2 => stream_loop::<T, 2, RO>(s, t.param, t.grad, t.buffers),
            3 => stream_loop::<T, 3, RO>(s, t.param, t.grad, t.buffers),
            _ => stream_loop::<T, 4, RO>(s, t.param, t.grad, t.buffers),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_against_reference, ops};

    fn reference<T: Element>(h: &Stream, _: &mut [f64], _: bool, p: &mut [T], g: &[T], bufs: &mut [Vec<T>]) {
        let mut acc: Vec<T> = g.to_vec();
        if !h.read_only {
            ops::mul(&mut acc, h.scale);
        }
        for b in &mut bufs[..h.buffers] {
            if h.read_only {
                ops::add_scaled(&mut acc, b, 1.0);
            } else {
                ops::add_scaled(b, &acc, 1.0);
            }
        }
        if h.read_only {
            ops::mul(&mut acc, h.scale);
        }
        ops::add_scaled(p, &acc, 1.0);
    }

    #[test]
    fn matches_the_scalar_reference() {
        for buffers in 0..=MAX_BUFFERS {
            for (read_only, scale) in [(false, 1.0), (true, 1.0), (false, 0.5), (true, -0.25)] {
                let h = Stream { buffers, read_only, scale };
                check_against_reference::<_, f32>(&h, reference);
                check_against_reference::<_, f64>(&h, reference);
            }
        }
    }
}
