//! The scalars of torch's Python-level optimizer code (L-BFGS and its line search): a
//! Python float, or a 0-d tensor of the parameters' dtype — what `dot`, `abs().max()`
//! and arithmetic with them give. torch computes with the two as its type promotion
//! says, and for float32 parameters that decides results: `f + c1·t·gtd` is a float32
//! sum when `gtd` is a float32 tensor, and the line search compares the new loss with
//! it in float32.
//!
//! - float ∘ float: in f64 (Python);
//! - anything ∘ tensor: in the tensor's dtype, the float rounded to it first;
//! - `float / tensor` is `tensor.reciprocal() * float` (torch's `__rtruediv__`);
//! - comparisons likewise (in f64 between floats, else in the tensor's dtype);
//! - `max` / `min` are Python's: the first argument unless the second is greater
//!   (smaller).

use std::cmp::Ordering;
use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::element::Element;

/// A Python float or a 0-d tensor of `T`, as torch's L-BFGS holds its scalars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Scalar<T> {
    Float(f64),
    Tensor(T),
}

use Scalar::{Float, Tensor};

impl<T: Element> Scalar<T> {
    /// The value, exactly.
    pub(crate) fn value(self) -> f64 {
        match self {
            Float(x) => x,
            Tensor(x) => x.to_f64().unwrap(),
        }
    }

    /// The value rounded to `T` (as torch rounds a float that meets a tensor).
    fn in_t(self) -> T {
        match self {
            Float(x) => T::of(x),
            Tensor(x) => x,
        }
    }

    fn map(self, f: impl Fn(f64) -> f64, g: impl Fn(T) -> T) -> Self {
        match self {
            Float(x) => Float(f(x)),
            Tensor(x) => Tensor(g(x)),
        }
    }

    fn zip(self, other: Self, f: impl Fn(f64, f64) -> f64, g: impl Fn(T, T) -> T) -> Self {
        match (self, other) {
            (Float(a), Float(b)) => Float(f(a, b)),
            (a, b) => Tensor(g(a.in_t(), b.in_t())),
        }
    }

    /// Python's `abs`.
    pub(crate) fn abs(self) -> Self {
        self.map(f64::abs, T::abs)
    }

    /// `tensor.sqrt()` (or `math.sqrt`).
    pub(crate) fn sqrt(self) -> Self {
        self.map(f64::sqrt, T::sqrt)
    }

    fn compare(self, other: Self) -> Option<Ordering> {
        match (self, other) {
            (Float(a), Float(b)) => a.partial_cmp(&b),
            (a, b) => a.in_t().partial_cmp(&b.in_t()),
        }
    }

    pub(crate) fn lt(self, other: Self) -> bool {
        self.compare(other) == Some(Ordering::Less)
    }

    pub(crate) fn gt(self, other: Self) -> bool {
        self.compare(other) == Some(Ordering::Greater)
    }

    pub(crate) fn le(self, other: Self) -> bool {
        matches!(self.compare(other), Some(Ordering::Less | Ordering::Equal))
    }

    pub(crate) fn ge(self, other: Self) -> bool {
        matches!(self.compare(other), Some(Ordering::Greater | Ordering::Equal))
    }

    /// Python's `max(self, other)`.
    pub(crate) fn py_max(self, other: Self) -> Self {
        if other.gt(self) {
            other
        } else {
            self
        }
    }

    /// Python's `min(self, other)`.
    pub(crate) fn py_min(self, other: Self) -> Self {
        if other.lt(self) {
            other
        } else {
            self
        }
    }
}

impl<T: Element> Add for Scalar<T> {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        self.zip(other, |a, b| a + b, |a, b| a + b)
    }
}

impl<T: Element> Sub for Scalar<T> {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        self.zip(other, |a, b| a - b, |a, b| a - b)
    }
}

impl<T: Element> Mul for Scalar<T> {
    type Output = Self;
    fn mul(self, other: Self) -> Self {
        self.zip(other, |a, b| a * b, |a, b| a * b)
    }
}

impl<T: Element> Div for Scalar<T> {
    type Output = Self;
    fn div(self, other: Self) -> Self {
        match (self, other) {
            (Float(a), Tensor(b)) => Tensor((T::one() / b) * T::of(a)), // tensor.reciprocal() * float
            (a, b) => a.zip(b, |a, b| a / b, |a, b| a / b),
        }
    }
}

impl<T: Element> Neg for Scalar<T> {
    type Output = Self;
    fn neg(self) -> Self {
        self.map(|a| -a, |a| -a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotes_as_torch() {
        let (f, t) = (Scalar::<f32>::Float(0.1), Scalar::<f32>::Tensor(3.0));
        assert_eq!(f + f, Float(0.1 + 0.1));
        assert_eq!(f * t, Tensor(0.1f32 * 3.0)); // the float rounded to f32 first
        assert_eq!(Float(1.0) / t, Tensor(1.0 / 3.0f32)); // reciprocal() * 1
        assert_eq!(Float(2.0) / t, Tensor((1.0 / 3.0f32) * 2.0));
        // 1 + 1e-9 is > 1 in f64, not in f32
        assert!(Scalar::<f32>::Float(1.0 + 1e-9).gt(Float(1.0)));
        assert!(!Float(1.0 + 1e-9).gt(Tensor(1.0f32)));
        let nan = Scalar::<f32>::Float(f64::NAN);
        assert!(!nan.lt(Float(1.0)) && !nan.ge(Float(1.0)));
    }

    #[test]
    fn max_and_min_are_pythons() {
        let (a, b) = (Scalar::<f64>::Float(1.0), Scalar::<f64>::Tensor(1.0));
        assert_eq!(a.py_max(b), a); // equal: the first
        assert_eq!(b.py_min(a), b);
        assert_eq!(a.py_max(Tensor(2.0)), Tensor(2.0));
        assert_eq!(a.py_min(Float(f64::NAN)), a);
    }
}
