//! The optimizer kernels: stateless functions over slices, one file per optimizer.
//!
//! Each kernel is written once, generically over [`Element`](crate::Element), and
//! compiled several times by `multiversion` (AVX-512, AVX2+FMA, NEON and a portable
//! fallback), the best version being picked at run time. The loops are plain Rust
//! that the compiler vectorizes; they use no fused multiply-add, so every version
//! gives the same bits as the scalar reference the tests compare them with.

pub mod adam;
pub mod sgd;
pub mod stream;

#[cfg(test)]
pub(crate) mod testing;

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
