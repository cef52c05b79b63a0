//! The optimizer kernels: stateless functions over slices, one file per optimizer.
//!
//! Each kernel is written once, generically over [`Element`](crate::Element), and
//! compiled several times by `multiversion` (AVX-512, AVX2+FMA, NEON and a portable
//! fallback), the best version being picked at run time. The loops are plain Rust
//! that the compiler vectorizes; they use no fused multiply-add, so every version
//! gives the same bits as the scalar reference the tests compare them with.

pub mod adadelta;
pub mod adafactor;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod asgd;
pub mod lbfgs;
pub mod muon;
pub mod nadam;
pub mod radam;
pub mod rmsprop;
pub mod rprop;
pub mod sgd;
pub mod stream;

#[cfg(test)]
pub(crate) mod testing;

use crate::HyperError;

/// One of torch's argument checks: `Err(message)` unless `ok`. Written so that NaN
/// fails, as torch's `not 0.0 <= lr` does: pass the comparison that must hold.
pub(crate) fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), HyperError> {
    if ok {
        Ok(())
    } else {
        Err(HyperError(message()))
    }
}

/// torch's check of an Adam-style `betas` pair.
pub(crate) fn check_betas(betas: (f64, f64)) -> Result<(), HyperError> {
    check((0.0..1.0).contains(&betas.0), || format!("Invalid beta parameter at index 0: {}", betas.0))?;
    check((0.0..1.0).contains(&betas.1), || format!("Invalid beta parameter at index 1: {}", betas.1))
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

/// Expands to a `#[multiversion]` attribute with the instruction sets ferroptim
/// dispatches between. (multiversion asks for Ice Lake-class AVX-512 before it takes
/// the 512-bit version, to avoid the clock penalties of earlier AVX-512 CPUs; those
/// run the AVX2 version.)
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
