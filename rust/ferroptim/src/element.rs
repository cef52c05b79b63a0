//! The element types the kernels run on: `f32` and `f64`.

use num_traits::Float;

/// A floating-point element type of parameters, gradients and state buffers.
///
/// torch computes a float32 tensor's update in float32, with every Python-float
/// hyperparameter first rounded to float32; [`Element::of`] is that rounding.
pub trait Element: Float + Default + Send + Sync + std::fmt::Debug + 'static {
    /// Rounds an `f64` hyperparameter (or step-dependent constant) to this type.
    fn of(x: f64) -> Self;

    /// Rounds to `f32` (torch's `.float()`).
    fn narrow(self) -> f32;

    /// An `f32` in this type (exact).
    fn widen(x: f32) -> Self;

    /// The slice as `f32`s, if this type is `f32` (for the kernels whose state is
    /// float32 whatever the parameter's type: the 8-bit ones).
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]>;

    /// `torch.maximum`: the larger of the two, NaN if either is NaN.
    #[inline(always)]
    fn nan_max(self, other: Self) -> Self {
        if self > other || self.is_nan() {
            self
        } else {
            other
        }
    }
}

impl Element for f32 {
    #[inline(always)]
    fn of(x: f64) -> f32 {
        x as f32
    }
    #[inline(always)]
    fn narrow(self) -> f32 {
        self
    }
    #[inline(always)]
    fn widen(x: f32) -> f32 {
        x
    }
    fn as_f32_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
}

impl Element for f64 {
    #[inline(always)]
    fn of(x: f64) -> f64 {
        x
    }
    #[inline(always)]
    fn narrow(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn widen(x: f32) -> f64 {
        x as f64
    }
    fn as_f32_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }
}

/// `torch.lerp(start, end, weight)` as torch's (2.15) CPU kernel computes it: from the
/// nearer end, so that `weight` close to 1 keeps its precision, each formula one fused
/// multiply-add (`fma(w, end − start, start)`, `fma(−(end − start), 1 − w, end)`), so
/// one rounding where the plain formula has two. On a target without FMA hardware
/// `mul_add` is the C library's exact `fma`: the same bits, only slower.
#[inline(always)]
pub(crate) fn lerp<T: Element>(start: T, end: T, w: Lerp<T>) -> T {
    if w.small {
        w.weight.mul_add(end - start, start)
    } else {
        (start - end).mul_add(w.one_minus, end)
    }
}

/// A lerp weight rounded to `T`, with torch's choice of formula.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lerp<T> {
    weight: T,
    one_minus: T,
    small: bool,
}

impl<T: Element> Lerp<T> {
    #[inline(always)]
    pub(crate) fn new(weight: f64) -> Self {
        let weight = T::of(weight);
        Lerp { weight, one_minus: T::one() - weight, small: weight.abs() < T::of(0.5) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maximum_propagates_nan_like_torch() {
        assert!(1.0f32.nan_max(f32::NAN).is_nan());
        assert!(f32::NAN.nan_max(1.0).is_nan());
        assert_eq!(2.0f64.nan_max(1.0), 2.0);
        assert_eq!(1.0f64.nan_max(2.0), 2.0);
    }

    #[test]
    fn lerp_uses_the_nearer_end() {
        let small = Lerp::<f64>::new(0.1);
        assert_eq!(lerp(1.0, 3.0, small), 0.1f64.mul_add(2.0, 1.0));
        let large = Lerp::<f64>::new(0.9);
        assert_eq!(lerp(1.0, 3.0, large), (-2.0f64).mul_add(1.0 - 0.9, 3.0));
    }

    #[test]
    fn lerp_rounds_once_like_torch() {
        // torch 2.15: tensor([-0.482]).lerp_(tensor([0.599]), 0.1) is -0.37389999999999995;
        // the unfused product and sum round twice, to -0.3739.
        let w = Lerp::<f64>::new(0.1);
        assert_eq!(lerp(-0.482, 0.599, w), -0.37389999999999995);
        assert_eq!(-0.482 + 0.1 * (0.599f64 - -0.482), -0.3739);
    }
}
