//! # ferroptim
//!
//! torch.optim's optimizers as vectorized, multi-threaded kernels over slices, with
//! torch's numbers. This crate is the core of the `ferroptim` Python package and is
//! usable on its own, with no Python.
//!
//! Three layers:
//! - [`kernels`]: stateless functions over slices, e.g. [`kernels::adam::adam`], each
//!   compiled for AVX-512, AVX2+FMA, NEON and a portable fallback, picked at run time.
//! - [`exec`]: [`Batch`] runs one step of an [`Elementwise`] optimizer over many
//!   tensors on the thread pool ([`set_num_threads`]), a mid-sized one shared between
//!   the calling thread and a [`crew`] of pool threads woken ahead.
//! - [`optim`]: [`Optimizer`] keeps the per-parameter state for you, for every rule
//!   ([`Sgd`], [`Adam`], ..., [`optim::matrix`], [`optim::lbfgs`], [`optim::sparse`],
//!   [`optim::beyond`], [`optim::eight_bit`]), with param groups, state dicts in the
//!   Python package's layout, and schedulers that drive it;
//!   with the `ndarray` cargo feature, `Optimizer::step_ndarray` steps `ndarray`
//!   arrays of any shape.
//!
//! Every kernel is compared in `cargo test` with a scalar reference written as torch
//! writes it, one tensor operation at a time, bit for bit.

#![deny(missing_docs)]

pub mod checkpoint;
pub mod crew;
pub mod element;
pub mod exec;
pub mod kernels;
pub mod lr_scheduler;
#[cfg(feature = "ndarray")]
pub mod ndarray_params;
pub mod optim;
pub mod state_dict;
pub mod threads;

use std::fmt;

/// The crate README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use element::Element;
pub use exec::{Batch, Elementwise, TensorSlices, MAX_BUFFERS, MAX_SCALARS};
pub use kernels::adadelta::AdadeltaHyper;
pub use kernels::adafactor::{adafactor, AdafactorHyper, AdafactorTensor, Variance};
pub use kernels::adagrad::{AdagradHyper, AdagradStep};
pub use kernels::adam::{adam, AdamHyper, AdamStep};
pub use kernels::adamax::AdamaxHyper;
pub use kernels::adan::{adan, AdanHyper};
pub use kernels::ademamix::{ademamix, AdemamixHyper};
pub use kernels::adopt::{adopt, AdoptHyper};
pub use kernels::asgd::{AsgdHyper, AsgdStep};
pub use kernels::average::Average;
pub use kernels::blockwise::{Quantizer, BLOCK};
pub use kernels::eight_bit::{eight_bit, EightBitHyper, EightBitRule, EightBitState, EightBitTensor, Quantized};
pub use kernels::lamb::{lamb, lamb_clip, LambHyper};
pub use kernels::lars::{lars, LarsHyper};
pub use kernels::lbfgs::{lbfgs, LbfgsHyper, LbfgsState, Objective};
pub use kernels::lion::{lion, LionHyper};
pub use kernels::muon::{muon, AdjustLr, MuonHyper, MuonTensor};
pub use kernels::nadam::{NadamHyper, NadamStep};
pub use kernels::prodigy::{prodigy, ProdigyGlobal, ProdigyHyper, ProdigyTensor};
pub use kernels::radam::{RadamHyper, RadamStep};
pub use kernels::rmsprop::RmspropHyper;
pub use kernels::rprop::RpropHyper;
pub use kernels::schedule_free::{
    schedule_free, ScheduleFreeGroup, ScheduleFreeHyper, ScheduleFreeKind, ScheduleFreeStep,
};
pub use kernels::sgd::{sgd, SgdHyper};
pub use kernels::sparse_adam::{sparse_adam, SparseAdamHyper, SparseAdamTensor, SparseError, SparseRows};
pub use kernels::stream::{Stream, Touch};
pub use optim::{
    Adadelta, Adagrad, Adam, Adamax, Asgd, Group, GroupError, GroupStep, Init, LoadError, Nadam, Optimizer, ParamState,
    ParamTensor, Radam, Rmsprop, Rprop, Rule, Scheduled, Sgd, StepError, TorchLayout,
};
pub use threads::{get_num_threads, set_num_threads, ThreadsError};

/// A hyperparameter torch would refuse, with torch's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HyperError {
    /// torch's message.
    pub message: String,
    /// The arguments whose values the message spells (see [`Quoted`]).
    pub quoted: Vec<Quoted>,
}

/// Where a [`HyperError`]'s message spells an argument's value: a caller in another
/// language spells it as that language does (the Python package writes `-1` for the
/// int `-1`, `-1.0` and `1e-08` for floats, as torch does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// torch's name of the argument (`lr`, `betas`).
    pub name: &'static str,
    /// The entry of a pair (`betas[1]`), if the argument is one.
    pub index: Option<usize>,
    /// The bytes of the message that spell the value.
    pub at: std::ops::Range<usize>,
}

impl HyperError {
    /// An error with `message`, quoting no value.
    pub fn new(message: impl Into<String>) -> Self {
        HyperError { message: message.into(), quoted: Vec::new() }
    }

    /// An error whose `message` spells the values of `args` (name, entry of a pair,
    /// value), each as Rust's `{}` spells it, in the order given, the last one last in
    /// the message (as torch's messages quote values: after their words).
    pub fn quoting(message: String, args: &[(&'static str, Option<usize>, f64)]) -> Self {
        let mut quoted = Vec::with_capacity(args.len());
        let mut upto = message.len();
        for &(name, index, value) in args.iter().rev() {
            let spelled = value.to_string();
            if let Some(k) = message[..upto].rfind(&spelled) {
                quoted.push(Quoted { name, index, at: k..k + spelled.len() });
                upto = k;
            }
        }
        quoted.reverse();
        HyperError { message, quoted }
    }
}

impl fmt::Display for HyperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HyperError {}

/// Hyperparameters that check themselves as torch checks its arguments.
pub trait Validate {
    /// torch's argument checks, with its messages.
    fn validate(&self) -> Result<(), HyperError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_finds_each_value_after_the_words_before_it() {
        let e = HyperError::quoting(format!("Invalid beta parameter at index 1: {}", 1.0), &[("betas", Some(1), 1.0)]);
        assert_eq!(e.quoted, [Quoted { name: "betas", index: Some(1), at: 35..36 }]);
        let e = HyperError::quoting(
            "Invalid eta values: 0.5, 0.5".into(),
            &[("etas", Some(0), 0.5), ("etas", Some(1), 0.5)],
        );
        let at: Vec<_> = e.quoted.iter().map(|q| (q.index, &e.message[q.at.clone()], q.at.start)).collect();
        assert_eq!(at, [(Some(0), "0.5", 20), (Some(1), "0.5", 25)]);
        assert!(HyperError::new("plain").quoted.is_empty());
    }
}
