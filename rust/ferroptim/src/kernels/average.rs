//! Weight averaging, as `torch.optim.swa_utils` does it: an averaged copy `a` of each
//! parameter follows the model's current values `c`, in place.
//!
//! ```text
//! Mean { count }:  a ← a + (c − a) / count        (get_swa_avg_fn: count = n_averaged + 1)
//! Lerp { weight }: a ← lerp(a, c, weight)         (_foreach_lerp_: get_swa_multi_avg_fn with
//!                                                  weight 1/(n_averaged + 1), get_ema_multi_avg_fn
//!                                                  with weight 1 − decay)
//! ```
//!
//! `count` and `weight` are rounded to the element type first, as torch rounds a scalar
//! to a float32 tensor's type.

use crate::element::{lerp, Element, Lerp};
use crate::exec::{Elementwise, TensorSlices};
use crate::kernels::simd_targets;

/// How an averaged parameter follows the current one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Average {
    /// The running mean: `a + (c − a) / count`.
    Mean {
        /// The number of parameters averaged so far, this one included.
        count: f64,
    },
    /// torch's `lerp(a, c, weight)`.
    Lerp {
        /// The weight of the current parameter (`1 − decay` of an EMA).
        weight: f64,
    },
}

simd_targets! {
fn mean_loop<T: Element>(count: T, avg: &mut [T], cur: &[T]) {
    let cur = &cur[..avg.len()];
    for i in 0..avg.len() {
        avg[i] = avg[i] + (cur[i] - avg[i]) / count;
    }
}
}

simd_targets! {
fn lerp_loop<T: Element>(w: Lerp<T>, avg: &mut [T], cur: &[T]) {
    let cur = &cur[..avg.len()];
    for i in 0..avg.len() {
        avg[i] = lerp(avg[i], cur[i], w);
    }
}
}

impl Elementwise for Average {
    const SCALARS: usize = 0;
    type Step = ();

    fn buffers(&self) -> usize {
        0
    }

    fn begin(&self, _scalars: &mut [f64], _fresh: bool) {}

    /// The averaged values are the "parameter", the current ones the "gradient".
    fn update<T: Element>(&self, _step: &(), t: TensorSlices<'_, T>) {
        match *self {
            Average::Mean { count } => mean_loop(T::of(count), t.param, t.grad),
            Average::Lerp { weight } => lerp_loop(Lerp::new(weight), t.param, t.grad),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_against_reference, ops};

    fn reference<T: Element>(h: &Average, _: &mut [f64], _: bool, a: &mut [T], c: &[T], _: &mut [Vec<T>]) {
        match *h {
            // torch: averaged + (current − averaged) / (n + 1)
            Average::Mean { count } => {
                let mut diff = c.to_vec();
                ops::add_scaled(&mut diff, a, -1.0);
                ops::div(&mut diff, count);
                ops::add_scaled(a, &diff, 1.0);
            }
            Average::Lerp { weight } => ops::lerp(a, c, weight),
        }
    }

    #[test]
    fn matches_the_scalar_reference() {
        for h in [
            Average::Mean { count: 1.0 },
            Average::Mean { count: 7.0 },
            Average::Lerp { weight: 1.0 / 3.0 },
            Average::Lerp { weight: 1.0 - 0.999 },
            Average::Lerp { weight: 0.75 },
        ] {
            check_against_reference::<_, f32>(&h, reference);
            check_against_reference::<_, f64>(&h, reference);
        }
    }
}
