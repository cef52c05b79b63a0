//! The optimizer kernels: stateless functions over slices, one file per optimizer.
//!
//! Each kernel is written once, generically over [`Element`], and
//! compiled several times by `multiversion` (AVX-512, AVX2+FMA, NEON and a portable
//! fallback), the best version being picked at run time. The loops are plain Rust
//! that the compiler vectorizes; they use no fused multiply-add, so every version
//! gives the same bits as the scalar reference the tests compare them with.

pub mod adadelta;
pub mod adafactor;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod adan;
pub mod ademamix;
pub mod adopt;
pub mod asgd;
pub mod average;
pub mod blockwise;
pub mod bucket;
pub(crate) mod div_by;
pub mod eight_bit;
pub mod grad_norm;
pub mod lamb;
pub mod lars;
pub mod lbfgs;
pub mod lion;
pub mod muon;
pub mod nadam;
pub mod passes;
pub mod prodigy;
pub mod radam;
pub mod rmsprop;
pub mod rprop;
pub(crate) mod scalar;
pub mod schedule_free;
pub mod sgd;
pub mod sparse_adam;
pub mod stream;
pub mod vector;

#[cfg(test)]
pub(crate) mod testing;

use crate::element::{lerp, Element, Lerp};
use crate::HyperError;

/// One of torch's argument checks: `Err(message)` unless `ok`. Written so that NaN
/// fails, as torch's `not 0.0 <= lr` does: pass the comparison that must hold.
pub(crate) fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), HyperError> {
    if ok {
        Ok(())
    } else {
        Err(HyperError::new(message()))
    }
}

/// timm's `_max_lr_snapshot` check: corrected weight decay (`Some(max_lr)`) needs a
/// positive peak LR (`max_lr <= 0` refused: NaN passes).
pub(crate) fn check_max_lr(max_lr: Option<f64>) -> Result<(), HyperError> {
    let Some(m) = max_lr else { return Ok(()) };
    check_arg(m > 0.0 || m.is_nan(), "max_lr_snapshot", None, m, || {
        format!("Corrected weight decay requires a positive max lr, got {m}. Construct the optimizer with the peak lr.")
    })
}

/// torch's check `if not 0.0 <= value: raise ValueError(f"Invalid {what}: {value}")`
/// of argument `name` (NaN fails it).
pub(crate) fn check_at_least_zero(name: &'static str, value: f64, what: &str) -> Result<(), HyperError> {
    check_arg(0.0 <= value, name, None, value, || format!("Invalid {what}: {value}"))
}

/// [`check`] of a message that spells the value of argument `name` (entry `index`
/// of a pair), quoted for callers that spell it their own way ([`HyperError::quoting`]).
pub(crate) fn check_arg(
    ok: bool,
    name: &'static str,
    index: Option<usize>,
    value: f64,
    message: impl FnOnce() -> String,
) -> Result<(), HyperError> {
    if ok {
        Ok(())
    } else {
        Err(HyperError::quoting(message(), &[(name, index, value)]))
    }
}

/// `x ≥ lo`, or NaN: the check `if x < lo: raise` of the implementations beyond torch,
/// which lets NaN through.
pub(crate) fn not_below(x: f64, lo: f64) -> bool {
    !matches!(x.partial_cmp(&lo), Some(std::cmp::Ordering::Less))
}

/// torch's check of an Adam-style `betas` pair.
pub(crate) fn check_betas(betas: (f64, f64)) -> Result<(), HyperError> {
    for (i, b) in [betas.0, betas.1].into_iter().enumerate() {
        check_arg((0.0..1.0).contains(&b), "betas", Some(i), b, || {
            format!("Invalid beta parameter at index {i}: {b}")
        })?;
    }
    Ok(())
}

/// How an Adam-family kernel applies weight decay (a const parameter of its loop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decay {
    None = 0,
    /// `g ← g + weight_decay·θ`
    L2 = 1,
    /// `θ ← θ·(1 − lr·weight_decay)`
    Decoupled = 2,
}

impl Decay {
    pub(crate) fn of(weight_decay: f64, decoupled: bool) -> Self {
        match (weight_decay != 0.0, decoupled) {
            (false, _) => Decay::None,
            (true, false) => Decay::L2,
            (true, true) => Decay::Decoupled,
        }
    }
}

/// Calls `$body` with `$d` a const `u8` equal to the runtime [`Decay`] `$decay`.
macro_rules! with_decay {
    ($decay:expr, $d:ident => $body:expr) => {
        match $decay {
            $crate::kernels::Decay::None => {
                const $d: u8 = $crate::kernels::Decay::None as u8;
                $body
            }
            $crate::kernels::Decay::L2 => {
                const $d: u8 = $crate::kernels::Decay::L2 as u8;
                $body
            }
            $crate::kernels::Decay::Decoupled => {
                const $d: u8 = $crate::kernels::Decay::Decoupled as u8;
                $body
            }
        }
    };
}
pub(crate) use with_decay;

/// The first steps every Adam-family update (Adam, NAdam, RAdam) takes per element,
/// with its hyperparameters rounded to the element type.
#[derive(Clone, Copy)]
pub(crate) struct Moments<T> {
    decay: T,
    weight_decay: T,
    beta1: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
}

impl<T: Element> Moments<T> {
    pub(crate) fn new(lr: f64, weight_decay: f64, betas: (f64, f64)) -> Self {
        Moments {
            decay: T::of(1.0 - lr * weight_decay),
            weight_decay: T::of(weight_decay),
            beta1: Lerp::new(1.0 - betas.0),
            beta2: T::of(betas.1),
            one_minus_beta2: T::of(1.0 - betas.1),
        }
    }

    /// For one element: g (negated if `MAXIMIZE`), weight decay (`DECAY`, a [`Decay`]),
    /// then `m ← lerp(m, g, 1 − β₁)` and `v ← β₂·v + (1 − β₂)·g²` (torch 2.15's fused
    /// multiply-adds: `fma(wd, θ, g)`, `fma((1 − β₂)·g, g, β₂·v)`), stored. Returns the
    /// decayed parameter value, g, m and v.
    #[inline(always)]
    pub(crate) fn step<const MAXIMIZE: bool, const DECAY: u8>(
        &self,
        param: T,
        grad: T,
        m: &mut T,
        v: &mut T,
    ) -> (T, T, T, T) {
        let mut g = if MAXIMIZE { -grad } else { grad };
        let mut p = param;
        if DECAY == Decay::L2 as u8 {
            g = self.weight_decay.mul_add(p, g); // grad.add(param, alpha=wd): one fma
        } else if DECAY == Decay::Decoupled as u8 {
            p = p * self.decay;
        }
        *m = lerp(*m, g, self.beta1);
        *v = (self.one_minus_beta2 * g).mul_add(g, *v * self.beta2); // addcmul_: fma((1 − β₂)·g, g, β₂·v)
        (p, g, *m, *v)
    }
}

/// Expands to a `#[multiversion]` attribute with the instruction sets ferroptim
/// dispatches between. (multiversion asks for Ice Lake-class AVX-512 before it takes
/// the 512-bit version, to avoid the clock penalties of earlier AVX-512 CPUs; those
/// run the AVX2 version.)
///
/// A loop compiled this way takes each array it touches as a slice argument of its
/// own, not inside a struct (`TensorSlices`): `&mut` arguments tell the compiler that
/// the arrays do not overlap, so it vectorizes without runtime overlap checks. Behind a
/// struct it compares every pair of arrays before the loop and, when two lie close,
/// runs the scalar loop: for a 64-element tensor that cost more than its update
/// (Prodigy's first pass on 2000 × 64 was about 25 % faster with separate slices).
macro_rules! simd_targets {
    ($item:item) => {
        #[multiversion::multiversion(targets(
            "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
            "x86_64+avx2+fma+avx+sse4.2+sse4.1+ssse3+sse3",
            "aarch64+neon",
        ))]
        $item
    };
}
pub(crate) use simd_targets;

/// Calls `$f::<.., FLAG>` with `FLAG` a const bool equal to the runtime `$b`, so a
/// flag tested in a hot loop is decided once, at compile time, per instantiation.
macro_rules! with_const_bool {
    ($b:expr, $flag:ident => $body:expr) => {
        if $b {
            const $flag: bool = true;
            $body
        } else {
            const $flag: bool = false;
            $body
        }
    };
}
pub(crate) use with_const_bool;
