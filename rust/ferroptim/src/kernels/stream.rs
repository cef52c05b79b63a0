//! The bandwidth probe: the cheapest loop that moves the bytes an optimizer moves.
//!
//! An elementwise optimizer with `k` state buffers reads the parameter, the gradient
//! and the `k` buffers and writes back the parameter and the buffers: for Adam
//! (k = 2) in float32 that is 28 bytes per element. [`Stream`] does exactly that
//! traffic with one addition per array,
//!
//! ```text
//! θ ← θ + g;   bᵢ ← bᵢ + g   for each buffer
//! ```
//!
//! on the same thread pool and chunks as the optimizers, so its time is the memory
//! bound that the benchmark divides every optimizer's time by.

use crate::element::Element;
use crate::exec::{Elementwise, TensorSlices, MAX_BUFFERS};
use crate::kernels::simd_targets;

/// The streaming kernel over a parameter, its gradient and `buffers` state buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    pub buffers: usize,
}

simd_targets! {
fn stream_loop<T: Element, const B: usize>(param: &mut [T], grad: &[T], bufs: [&mut [T]; MAX_BUFFERS]) {
    let n = param.len();
    let grad = &grad[..n];
    let [b0, b1, b2] = bufs;
    let (b0, b1, b2) = (
        if B > 0 { &mut b0[..n] } else { b0 },
        if B > 1 { &mut b1[..n] } else { b1 },
        if B > 2 { &mut b2[..n] } else { b2 },
    );
    for i in 0..n {
        let g = grad[i];
        param[i] = param[i] + g;
        if B > 0 {
            b0[i] = b0[i] + g;
        }
        if B > 1 {
            b1[i] = b1[i] + g;
        }
        if B > 2 {
            b2[i] = b2[i] + g;
        }
    }
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
        match self.buffers {
            0 => stream_loop::<T, 0>(t.param, t.grad, t.buffers),
            1 => stream_loop::<T, 1>(t.param, t.grad, t.buffers),
            2 => stream_loop::<T, 2>(t.param, t.grad, t.buffers),
            _ => stream_loop::<T, 3>(t.param, t.grad, t.buffers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_against_reference, ops};

    fn reference<T: Element>(h: &Stream, _: &mut [f64], _: bool, p: &mut [T], g: &[T], bufs: &mut [Vec<T>]) {
        ops::add_scaled(p, g, 1.0);
        for b in &mut bufs[..h.buffers] {
            ops::add_scaled(b, g, 1.0);
        }
    }

    #[test]
    fn matches_the_scalar_reference() {
        for buffers in 0..=MAX_BUFFERS {
            check_against_reference::<_, f32>(&Stream { buffers }, reference);
            check_against_reference::<_, f64>(&Stream { buffers }, reference);
        }
    }
}
