//! Optimizers that own their state, for Rust programs.
//!
//! [`Optimizer`] pairs an elementwise kernel's hyperparameters (one param group) with
//! the state of each parameter, created on its first step as torch creates it. Its
//! `step` runs the same kernels, chunks and thread pool as the Python package, so a
//! Rust program and a Python one get the same numbers.
//!
//! ```
//! use ferroptim::{Adam, AdamHyper};
//!
//! let mut w = vec![0.5f32; 4];
//! let mut opt = Adam::new(AdamHyper { lr: 0.1, ..AdamHyper::adam() }).unwrap();
//! for _ in 0..100 {
//!     let grad: Vec<f32> = w.iter().map(|x| 2.0 * (x - 3.0)).collect(); // d/dw (w - 3)²
//!     opt.step(&mut [&mut w], &[&grad]).unwrap();
//! }
//! assert!(w.iter().all(|x| (x - 3.0).abs() < 0.1));
//! ```

use std::fmt;

use crate::element::Element;
use crate::exec::{Batch, Elementwise, TensorSlices, MAX_SCALARS};
use crate::{
    AdadeltaHyper, AdagradHyper, AdamHyper, AdamaxHyper, AsgdHyper, HyperError, NadamHyper, RadamHyper, RmspropHyper,
    RpropHyper, SgdHyper, Validate,
};

/// The state of one parameter: its scalars (e.g. Adam's `step`) and its buffers, in
/// the order the kernel documents (Adam: `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamState<T> {
    /// The scalars, in the kernel's order; the unused ones 0.
    pub scalars: [f64; MAX_SCALARS],
    /// The buffers, each as long as the parameter.
    pub buffers: Vec<Vec<T>>,
}

/// Why a step was refused; nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// `params` and `grads` differ in length.
    Count {
        /// The parameters given.
        params: usize,
        /// The gradients given.
        grads: usize,
    },
    /// A gradient is not as long as its parameter.
    GradLength {
        /// The parameter's position.
        index: usize,
        /// Its length.
        param: usize,
        /// The gradient's length.
        grad: usize,
    },
    /// A gradient's shape is not its parameter's (`step_ndarray`).
    GradShape {
        /// The parameter's position.
        index: usize,
        /// Its shape.
        param: Vec<usize>,
        /// The gradient's shape.
        grad: Vec<usize>,
    },
    /// A parameter or gradient is not in standard layout (C order, contiguous), so it
    /// is not one slice (`step_ndarray`).
    Layout {
        /// The parameter's position.
        index: usize,
    },
    /// A parameter's length changed since its state was created.
    StateLength {
        /// The parameter's position.
        index: usize,
        /// Its length now.
        param: usize,
        /// Its state buffers' length.
        state: usize,
    },
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StepError::GradShape { index, ref param, ref grad } => {
                write!(f, "parameter {index} has shape {param:?} but its gradient {grad:?}")
            }
            StepError::Layout { index } => {
                write!(f, "parameter {index} or its gradient is not in standard (C-contiguous) layout")
            }
            StepError::Count { params, grads } => {
                write!(f, "{params} parameters but {grads} gradients")
            }
            StepError::GradLength { index, param, grad } => {
                write!(f, "parameter {index} has {param} elements but its gradient {grad}")
            }
            StepError::StateLength { index, param, state } => {
                write!(f, "parameter {index} has {param} elements but its state {state}")
            }
        }
    }
}

impl std::error::Error for StepError {}

/// One param group of an elementwise optimizer: hyperparameters and per-parameter state.
#[derive(Clone, Debug)]
pub struct Optimizer<K, T> {
    /// The hyperparameters; change `hyper.lr` between steps to schedule it.
    pub hyper: K,
    state: Vec<Option<ParamState<T>>>,
}

/// SGD over parameters of type `T` (see [`SgdHyper`]).
pub type Sgd<T> = Optimizer<SgdHyper, T>;
/// Adam or AdamW over parameters of type `T` (see [`AdamHyper::adam`], [`AdamHyper::adamw`]).
pub type Adam<T> = Optimizer<AdamHyper, T>;
/// Adagrad over parameters of type `T` (see [`AdagradHyper`]).
pub type Adagrad<T> = Optimizer<AdagradHyper, T>;
/// Adadelta over parameters of type `T` (see [`AdadeltaHyper`]).
pub type Adadelta<T> = Optimizer<AdadeltaHyper, T>;
/// Adamax over parameters of type `T` (see [`AdamaxHyper`]).
pub type Adamax<T> = Optimizer<AdamaxHyper, T>;
/// NAdam over parameters of type `T` (see [`NadamHyper`]).
pub type Nadam<T> = Optimizer<NadamHyper, T>;
/// RAdam over parameters of type `T` (see [`RadamHyper`]).
pub type Radam<T> = Optimizer<RadamHyper, T>;
/// RMSprop over parameters of type `T` (see [`RmspropHyper`]).
pub type Rmsprop<T> = Optimizer<RmspropHyper, T>;
/// Rprop over parameters of type `T` (see [`RpropHyper`]).
pub type Rprop<T> = Optimizer<RpropHyper, T>;
/// ASGD over parameters of type `T` (see [`AsgdHyper`]).
pub type Asgd<T> = Optimizer<AsgdHyper, T>;

impl<K: Elementwise + Validate, T: Element> Optimizer<K, T> {
    /// An optimizer with no state yet; refuses hyperparameters torch refuses.
    pub fn new(hyper: K) -> Result<Self, HyperError> {
        hyper.validate()?;
        Ok(Optimizer { hyper, state: Vec::new() })
    }

    /// The state of parameter `index`, if it has had a step.
    pub fn state(&self, index: usize) -> Option<&ParamState<T>> {
        self.state.get(index).and_then(Option::as_ref)
    }

    /// One step over every parameter (all have gradients).
    pub fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<(), StepError> {
        let grads: Vec<Option<&[T]>> = grads.iter().map(|&g| Some(g)).collect();
        self.step_some(params, &grads)
    }

    /// One step; parameters whose gradient is `None` are skipped and keep their state,
    /// as torch skips parameters whose `.grad` is None.
    pub fn step_some(&mut self, params: &mut [&mut [T]], grads: &[Option<&[T]>]) -> Result<(), StepError> {
        if params.len() != grads.len() {
            return Err(StepError::Count { params: params.len(), grads: grads.len() });
        }
        for (index, (p, g)) in params.iter().zip(grads).enumerate() {
            if let Some(g) = g {
                if g.len() != p.len() {
                    return Err(StepError::GradLength { index, param: p.len(), grad: g.len() });
                }
            }
            if let Some(Some(st)) = self.state.get(index) {
                if let Some(b) = st.buffers.iter().find(|b| !b.is_empty()) {
                    if b.len() != p.len() {
                        return Err(StepError::StateLength { index, param: p.len(), state: b.len() });
                    }
                }
            }
        }
        if self.state.len() < params.len() {
            self.state.resize(params.len(), None);
        }
        let Optimizer { hyper, state } = self;
        let nb = hyper.buffers();
        let elements = params.iter().zip(grads).filter(|(_, g)| g.is_some()).map(|(p, _)| p.len()).sum();
        let mut batch = Batch::with_size(elements);
        for ((p, g), st) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            let Some(g) = g else { continue };
            let fresh = st.is_none();
            let st = st.get_or_insert_with(|| ParamState { scalars: [0.0; MAX_SCALARS], buffers: Vec::new() });
            let fresh = fresh || st.buffers.is_empty();
            st.buffers.resize(st.buffers.len().max(nb), Vec::new());
            for (k, b) in st.buffers[..nb].iter_mut().enumerate() {
                // A slot this configuration uses and the state lacks starts at zero.
                if hyper.uses_buffer(k) && b.len() != p.len() {
                    *b = vec![T::zero(); p.len()];
                }
            }
            let ParamState { scalars, buffers } = st;
            let used = buffers[..nb].iter_mut().enumerate();
            let slices = TensorSlices::new(
                p,
                g,
                used.map(|(k, b)| if hyper.uses_buffer(k) { b.as_mut_slice() } else { &mut [] }),
            );
            batch.push(&*hyper, &mut scalars[..K::SCALARS], fresh, slices);
        }
        batch.run();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_params_without_grad_and_keeps_their_state_empty() {
        let mut a = vec![1.0f64; 3];
        let mut b = vec![2.0f64; 2];
        let mut opt = Sgd::new(SgdHyper { lr: 0.1, momentum: 0.9, ..Default::default() }).unwrap();
        opt.step_some(&mut [&mut a, &mut b], &[Some(&[1.0; 3]), None]).unwrap();
        assert_eq!(a, vec![0.9; 3]);
        assert_eq!(b, vec![2.0; 2]);
        assert!(opt.state(1).is_none());
        assert_eq!(opt.state(0).unwrap().buffers, vec![vec![1.0; 3]]);
    }

    #[test]
    fn refuses_bad_input_without_changing_anything() {
        let mut a = vec![1.0f32; 3];
        let mut opt = Adam::new(AdamHyper::adam()).unwrap();
        let err = opt.step(&mut [&mut a], &[&[1.0; 2]]).unwrap_err();
        assert_eq!(err, StepError::GradLength { index: 0, param: 3, grad: 2 });
        assert_eq!(a, vec![1.0; 3]);
        assert!(opt.state(0).is_none());
        assert!(Adam::<f32>::new(AdamHyper { lr: -1.0, ..AdamHyper::adam() }).is_err());
    }

    #[test]
    fn counts_steps_per_parameter() {
        let mut a = vec![1.0f32; 3];
        let mut opt = Adam::new(AdamHyper::adamw()).unwrap();
        for _ in 0..4 {
            opt.step(&mut [&mut a], &[&[0.5; 3]]).unwrap();
        }
        assert_eq!(opt.state(0).unwrap().scalars[0], 4.0);
    }
}
