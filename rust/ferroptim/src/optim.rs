//! Optimizers that own their state, for Rust programs.
//!
//! [`Optimizer`] holds an elementwise rule's param groups (torch's `param_groups`:
//! each its own hyperparameters, for the parameters it holds) and the state of each
//! parameter, created on its first step as torch creates it. Its `step` runs the same
//! kernels, chunks and thread pool as the Python package, so a Rust program and a
//! Python one get the same numbers. A scheduler drives its groups' LRs
//! (`scheduler.step(&mut opt)`, see [`crate::lr_scheduler`]).
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
//!
//! Param groups, as torch's `Adam([{"params": [w]}, {"params": [b], "weight_decay": 0}])`:
//! each group holds the next parameters a step is given, in order.
//!
//! ```
//! use ferroptim::{Adam, AdamHyper};
//!
//! let (mut w, mut b) = (vec![1.0f64; 6], vec![0.5f64; 2]);
//! let decayed = AdamHyper { lr: 0.01, ..AdamHyper::adamw() };
//! let mut opt = Adam::with_params(decayed, 1).unwrap();
//! opt.add_param_group(AdamHyper { weight_decay: 0.0, ..decayed }, 1).unwrap();
//! opt.step(&mut [&mut w, &mut b], &[&[0.1; 6], &[0.2; 2]]).unwrap();
//! opt.groups_mut()[1].hyper.lr = 0.001; // as `opt.param_groups[1]["lr"] = 0.001`
//! assert_eq!(opt.groups().len(), 2);
//! ```

use std::fmt;

pub mod beyond;
pub mod eight_bit;
pub mod lbfgs;
pub mod matrix;
mod rule;
pub mod sparse;
mod state_dict;
pub use rule::{GroupStep, Init, ParamTensor, Rule, MAX_CODES};
pub use state_dict::{LoadError, TorchLayout};

use crate::element::Element;
use crate::exec::{MAX_BUFFERS, MAX_SCALARS};
use crate::lr_scheduler::{ParamGroup, ParamGroups};
use crate::{
    AdadeltaHyper, AdafactorHyper, AdagradHyper, AdamHyper, AdamaxHyper, AdanHyper, AdemamixHyper, AdoptHyper,
    AsgdHyper, HyperError, LambHyper, LarsHyper, LbfgsHyper, LionHyper, MuonHyper, NadamHyper, ProdigyHyper,
    RadamHyper, RmspropHyper, RpropHyper, ScheduleFreeHyper, ScheduleFreeKind, SgdHyper, SparseAdamHyper,
};

/// The state of one parameter: its scalars (e.g. Adam's `step`) and its buffers, in
/// the order the kernel documents (Adam: `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamState<T> {
    /// The scalars, in the kernel's order; the unused ones 0.
    pub scalars: [f64; MAX_SCALARS],
    /// The buffers, in the rule's slots (most as long as the parameter).
    pub buffers: Vec<Vec<T>>,
    /// The 8-bit buffers (the 8-bit rules' codes), in the rule's slots.
    pub codes: Vec<Vec<u8>>,
}

impl<T> ParamState<T> {
    /// No state yet.
    pub(crate) fn empty() -> Self {
        ParamState { scalars: [0.0; MAX_SCALARS], buffers: Vec::new(), codes: Vec::new() }
    }
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
    /// The parameters given are not as many as the optimizer's groups hold.
    Groups {
        /// The parameters given.
        params: usize,
        /// The parameters the groups hold.
        expected: usize,
    },
    /// A parameter's shape (given to `set_shape` or `step_ndarray`) does not have its
    /// number of elements.
    Shape {
        /// The parameter's position.
        index: usize,
        /// Its length.
        param: usize,
        /// The shape.
        shape: Vec<usize>,
    },
    /// The rule cannot step these parameters or groups (Muon: a parameter that is not
    /// a matrix; Prodigy: groups of different nonzero LRs); the message is the one of
    /// the Python package.
    Refused {
        /// Why.
        message: String,
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
            StepError::Shape { index, param, ref shape } => {
                write!(f, "parameter {index} has {param} elements but its shape is {shape:?}")
            }
            StepError::Refused { ref message } => f.write_str(message),
            StepError::Groups { params, expected } => {
                write!(f, "{params} parameters given but the optimizer's param groups hold {expected}")
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

/// Why [`Optimizer::add_param_group`] refused a group; nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupError {
    /// A hyperparameter torch would refuse.
    Hyper(HyperError),
    /// The optimizer's only group holds every parameter a step is given
    /// ([`Optimizer::new`]), so no parameter is left for another group.
    Open,
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Hyper(e) => e.fmt(f),
            GroupError::Open => f.write_str(
                "the optimizer's group holds every parameter a step is given: build it with \
                 Optimizer::with_params to add param groups",
            ),
        }
    }
}

impl std::error::Error for GroupError {}

impl From<HyperError> for GroupError {
    fn from(e: HyperError) -> Self {
        GroupError::Hyper(e)
    }
}

/// One param group (torch's `optimizer.param_groups[i]`): the hyperparameters of the
/// parameters it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Group<K: Rule> {
    /// The hyperparameters; change them between steps (a scheduler sets `lr`, and
    /// CyclicLR / OneCycleLR the momentum: see [`Scheduled`]).
    pub hyper: K,
    /// The values the rule keeps in the group, advanced by each step (see
    /// [`Rule::GroupState`]).
    pub values: K::GroupState,
    /// torch's `initial_lr`: set by the first scheduler built on the optimizer.
    pub initial_lr: Option<f64>,
    /// How many parameters it holds (None: every parameter a step is given).
    params: Option<usize>,
}

impl<K: Rule> Group<K> {
    fn new(hyper: K, params: Option<usize>) -> Self {
        Group { values: hyper.group_state(), hyper, initial_lr: None, params }
    }

    /// How many parameters the group holds: the next ones a step is given, after those
    /// of the groups before it (None: every parameter a step is given).
    pub fn params(&self) -> Option<usize> {
        self.params
    }
}

/// Hyperparameters a scheduler drives: the learning rate and, where the rule has
/// one, the momentum CyclicLR and OneCycleLR cycle (`momentum`, or Adam's `betas.0`).
pub trait Scheduled {
    /// The learning rate.
    fn lr(&self) -> f64;
    /// Sets the learning rate.
    fn set_lr(&mut self, lr: f64);
    /// The momentum a scheduler may cycle (None: the rule has none).
    fn momentum(&self) -> Option<f64> {
        None
    }
    /// Sets that momentum (ignored by a rule without one).
    fn set_momentum(&mut self, momentum: f64) {
        let _ = momentum;
    }
}

macro_rules! scheduled {
    ($($hyper:ty $(=> $($m:tt).+)?;)+) => {$(
        impl Scheduled for $hyper {
            fn lr(&self) -> f64 {
                self.lr
            }
            fn set_lr(&mut self, lr: f64) {
                self.lr = lr;
            }
            $(
                fn momentum(&self) -> Option<f64> {
                    Some(self.$($m).+)
                }
                fn set_momentum(&mut self, momentum: f64) {
                    self.$($m).+ = momentum;
                }
            )?
        }
    )+};
}

scheduled! {
    SgdHyper => momentum;
    RmspropHyper => momentum;
    AdamHyper => betas.0;
    AdamaxHyper => betas.0;
    NadamHyper => betas.0;
    RadamHyper => betas.0;
    AdagradHyper;
    AdadeltaHyper;
    RpropHyper;
    AsgdHyper;
    LionHyper => betas.0;
    LarsHyper => momentum;
    AdoptHyper => betas.0;
    AdanHyper => betas.0;
    AdemamixHyper => betas.0;
    LambHyper => betas.0;
    ProdigyHyper => betas.0;
    AdafactorHyper;
    MuonHyper => momentum;
    SparseAdamHyper => betas.0;
    LbfgsHyper;
}

/// The momentum of Schedule-Free: SGD's `momentum`, else β₁.
impl Scheduled for ScheduleFreeHyper {
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn momentum(&self) -> Option<f64> {
        Some(self.beta())
    }
    fn set_momentum(&mut self, m: f64) {
        match &mut self.kind {
            ScheduleFreeKind::Sgd { momentum, .. } => *momentum = m,
            ScheduleFreeKind::AdamW { betas, .. } | ScheduleFreeKind::RAdam { betas, .. } => betas.0 = m,
        }
    }
}

/// An optimizer: its rule's param groups and the state of each parameter.
#[derive(Clone, Debug)]
pub struct Optimizer<K: Rule, T: Element> {
    groups: Vec<Group<K>>,
    state: Vec<Option<ParamState<T>>>,
    /// What the rule keeps for the whole optimizer (see [`Rule::Global`]).
    global: K::Global<T>,
    /// Each parameter's shape, where known (from `set_shape`, `step_ndarray`, loaded
    /// state, or a step: its length alone for a slice of unknown shape): the shape
    /// the rules read and the state dict saves the state in.
    pub(crate) shapes: Vec<Option<Vec<usize>>>,
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

impl<K: Rule, T: Element> Optimizer<K, T> {
    /// An optimizer of one param group holding every parameter a step is given, with
    /// no state yet; refuses hyperparameters torch refuses.
    pub fn new(hyper: K) -> Result<Self, HyperError> {
        hyper.validate()?;
        Ok(Optimizer {
            groups: vec![Group::new(hyper, None)],
            state: Vec::new(),
            global: Default::default(),
            shapes: Vec::new(),
        })
    }

    /// An optimizer of one param group holding `params` parameters (more groups:
    /// [`add_param_group`](Self::add_param_group)).
    pub fn with_params(hyper: K, params: usize) -> Result<Self, HyperError> {
        let mut opt = Self::new(hyper)?;
        opt.groups[0].params = Some(params);
        Ok(opt)
    }

    /// Adds a param group holding the next `params` parameters (torch's
    /// `add_param_group`): steps then take the parameters of every group, in order.
    pub fn add_param_group(&mut self, hyper: K, params: usize) -> Result<(), GroupError> {
        hyper.validate()?;
        if self.groups.iter().any(|g| g.params.is_none()) {
            return Err(GroupError::Open);
        }
        let values = hyper.group_state_after(&self.groups[0].values);
        self.groups.push(Group { values, ..Group::new(hyper, Some(params)) });
        Ok(())
    }

    /// The param groups.
    pub fn groups(&self) -> &[Group<K>] {
        &self.groups
    }

    /// The param groups, to change their hyperparameters between steps.
    pub fn groups_mut(&mut self) -> &mut [Group<K>] {
        &mut self.groups
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
        self.step_shaped(params, grads, None)
    }

    /// Refuses `params` parameters with `grads` gradients, or not as many as the
    /// groups hold.
    pub(crate) fn check_count(&self, params: usize, grads: usize) -> Result<(), StepError> {
        if params != grads {
            return Err(StepError::Count { params, grads });
        }
        match self.groups.iter().map(|g| g.params).sum::<Option<usize>>() {
            Some(expected) if params != expected => Err(StepError::Groups { params, expected }),
            _ => Ok(()),
        }
    }

    /// Records the shape of parameter `index` (a slice holds its elements in C order):
    /// the rules that need it (Adafactor's factored second moment, Muon's matrices)
    /// read it, and the state dict saves the state in it. `step_ndarray` records the
    /// shapes of the arrays it is given.
    pub fn set_shape(&mut self, index: usize, shape: &[usize]) {
        if self.shapes.len() <= index {
            self.shapes.resize(index + 1, None);
        }
        if self.shapes[index].as_deref() != Some(shape) {
            self.shapes[index] = Some(shape.to_vec());
        }
    }

    /// The step of `step_some`, with the parameters' shapes if given (`step_ndarray`),
    /// else the known ones. Everything is checked, then the missing state created,
    /// then the rule runs; a refusal changes nothing.
    pub(crate) fn step_shaped(
        &mut self,
        params: &mut [&mut [T]],
        grads: &[Option<&[T]>],
        given: Option<&[&[usize]]>,
    ) -> Result<(), StepError> {
        let n = params.len();
        self.check_count(n, grads.len())?;
        let lens: Vec<usize> = params.iter().map(|p| p.len()).collect();
        // each parameter's shape: given, else known, else flat
        let flat: Vec<[usize; 1]> = lens.iter().map(|&l| [l]).collect();
        let shapes: Vec<&[usize]> = (0..n)
            .map(|i| match given {
                Some(s) => s[i],
                None => self.shapes.get(i).and_then(|s| s.as_deref()).unwrap_or(&flat[i]),
            })
            .collect();
        let owners: Vec<usize> = per_param(&self.groups, n).collect();
        let hypers: Vec<&K> = owners.iter().map(|&k| &self.groups[k].hyper).collect();
        K::check_groups(&self.groups).map_err(rule::refused)?;
        for (index, ((&len, g), &shape)) in lens.iter().zip(grads).zip(&shapes).enumerate() {
            if shape.iter().product::<usize>() != len {
                return Err(StepError::Shape { index, param: len, shape: shape.to_vec() });
            }
            let Some(g) = g else { continue };
            if g.len() != len {
                return Err(StepError::GradLength { index, param: len, grad: g.len() });
            }
            let hyper = hypers[index];
            hyper.check_param(index, shape).map_err(rule::refused)?;
            if let Some(Some(st)) = self.state.get(index) {
                for (k, b) in st.buffers.iter().enumerate().take(hyper.buffers()) {
                    if !b.is_empty() && hyper.uses(k, shape) && !hyper.fits(k, shape, b.len()) {
                        return Err(StepError::StateLength { index, param: len, state: b.len() });
                    }
                }
                for (k, c) in st.codes.iter().enumerate().take(hyper.codes()) {
                    let want = hyper.code_shape(k, shape).map(|s| s.iter().product::<usize>());
                    if !c.is_empty() && want.is_some_and(|w| w != c.len()) {
                        return Err(StepError::StateLength { index, param: len, state: c.len() });
                    }
                }
            }
        }
        // nothing can fail from here on
        if self.state.len() < n {
            self.state.resize(n, None);
        }
        let mut fresh = vec![false; n];
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            if g.is_none() {
                continue;
            }
            let (hyper, shape) = (hypers[i], shapes[i]);
            let st = self.state[i].get_or_insert_with(ParamState::empty);
            fresh[i] = st.buffers.iter().all(Vec::is_empty) && st.codes.iter().all(Vec::is_empty);
            st.buffers.resize(st.buffers.len().max(hyper.buffers()), Vec::new());
            for (k, b) in st.buffers.iter_mut().enumerate().take(hyper.buffers()) {
                // a slot this configuration uses and the state lacks starts afresh
                // (a slot in use with state that fits is kept as it is)
                if hyper.uses(k, shape) && (b.is_empty() || !hyper.fits(k, shape, b.len())) {
                    if let Some(s) = hyper.buffer_shape(k, shape) {
                        *b = start(hyper.init(k), &s, p);
                    }
                }
            }
            st.codes.resize(st.codes.len().max(hyper.codes()), Vec::new());
            for (k, c) in st.codes.iter_mut().enumerate().take(hyper.codes()) {
                if let Some(s) = hyper.code_shape(k, shape) {
                    c.resize(s.iter().product(), 0);
                }
            }
        }
        let Optimizer { groups, state, .. } = self;
        let mut steps: Vec<GroupStep<'_, K, T>> = groups
            .iter_mut()
            .map(|g| GroupStep { hyper: &g.hyper, values: &mut g.values, tensors: Vec::new() })
            .collect();
        for (i, ((p, g), st)) in params.iter_mut().zip(grads).zip(state.iter_mut()).enumerate() {
            let (Some(g), Some(st)) = (g, st) else { continue };
            let step = &mut steps[owners[i]];
            let nb = step.hyper.buffers();
            let mut buffers: [&mut [T]; MAX_BUFFERS] = Default::default();
            for (k, (slot, b)) in buffers.iter_mut().zip(st.buffers.iter_mut()).enumerate().take(nb) {
                if step.hyper.uses(k, shapes[i]) {
                    *slot = &mut b[..];
                }
            }
            let mut codes: [&mut [u8]; MAX_CODES] = Default::default();
            for (k, (slot, c)) in codes.iter_mut().zip(st.codes.iter_mut()).enumerate() {
                if step.hyper.code_shape(k, shapes[i]).is_some() {
                    *slot = &mut c[..];
                }
            }
            let scalars = &mut st.scalars;
            let tensor = ParamTensor { param: p, grad: g, shape: shapes[i], scalars, buffers, codes, fresh: fresh[i] };
            step.tensors.push(tensor);
        }
        K::step(&mut steps);
        // each parameter's shape, for the next steps and the state dict (copied where
        // it is new: a given one, or a slice's first)
        let known = |i: usize, s: &[usize]| self.shapes.get(i).and_then(Option::as_deref) == Some(s);
        let new: Vec<(usize, Vec<usize>)> =
            (shapes.iter().enumerate()).filter(|&(i, s)| !known(i, s)).map(|(i, s)| (i, s.to_vec())).collect();
        for (i, shape) in new {
            self.set_shape(i, &shape);
        }
        Ok(())
    }
}

/// A new buffer of `shape` for parameter `p`, started as `init` says.
fn start<T: Element>(init: Init, shape: &[usize], p: &[T]) -> Vec<T> {
    match init {
        Init::Zeros => vec![T::zero(); shape.iter().product()],
        Init::Param => p.to_vec(),
        Init::ParamSliced { .. } if p.iter().all(|x| x.is_zero()) => vec![T::zero()],
        Init::ParamSliced { step } => p.iter().step_by(step).copied().collect(),
    }
}

/// The group of each of `n` parameters, by index, in order (an open group holds all
/// of them).
fn per_param<K: Rule>(groups: &[Group<K>], n: usize) -> impl Iterator<Item = usize> + '_ {
    (groups.iter().enumerate()).flat_map(move |(k, g)| std::iter::repeat_n(k, g.params.unwrap_or(n)))
}

/// A scheduler drives the optimizer's groups: `scheduler.step(&mut opt)`.
impl<K: Rule + Scheduled, T: Element> ParamGroups for Optimizer<K, T> {
    fn param_groups(&self) -> Vec<ParamGroup> {
        let view =
            |g: &Group<K>| ParamGroup { lr: g.hyper.lr(), initial_lr: g.initial_lr, momentum: g.hyper.momentum() };
        self.groups.iter().map(view).collect()
    }

    fn set_param_groups(&mut self, groups: &[ParamGroup]) {
        for (g, v) in self.groups.iter_mut().zip(groups) {
            g.hyper.set_lr(v.lr);
            g.initial_lr = v.initial_lr;
            if let Some(m) = v.momentum {
                g.hyper.set_momentum(m);
            }
        }
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

    /// Two groups step as two optimizers, each with its own hyperparameters.
    #[test]
    fn param_groups_step_as_separate_optimizers() {
        let (ha, hb) = (AdamHyper { lr: 0.1, ..AdamHyper::adamw() }, AdamHyper { lr: 0.01, ..AdamHyper::adam() });
        let (mut a, mut b, mut c) = (vec![1.0f64; 5], vec![2.0f64; 3], vec![-1.0f64; 4]);
        let (mut a2, mut b2, mut c2) = (a.clone(), b.clone(), c.clone());
        let mut opt = Adam::with_params(ha, 2).unwrap();
        opt.add_param_group(hb, 1).unwrap();
        let (mut one, mut two) = (Adam::new(ha).unwrap(), Adam::new(hb).unwrap());
        for t in 0..5 {
            let g = |n: usize, k: f64| (0..n).map(|i| (i as f64 + k) * 0.1 - 0.2 * t as f64).collect::<Vec<_>>();
            let (ga, gb, gc) = (g(5, 1.0), g(3, 2.0), g(4, 3.0));
            opt.step(&mut [&mut a, &mut b, &mut c], &[&ga, &gb, &gc]).unwrap();
            one.step(&mut [&mut a2, &mut b2], &[&ga, &gb]).unwrap();
            two.step(&mut [&mut c2], &[&gc]).unwrap();
        }
        assert_eq!((a, b, c), (a2, b2, c2));
        assert_eq!(opt.state(2), two.state(0));
        assert_eq!(opt.groups().iter().map(Group::params).collect::<Vec<_>>(), [Some(2), Some(1)]);
    }

    #[test]
    fn refuses_groups_and_steps_that_do_not_fit() {
        let mut open = Sgd::<f32>::new(SgdHyper::default()).unwrap();
        assert_eq!(open.add_param_group(SgdHyper::default(), 1), Err(GroupError::Open));
        let mut opt = Sgd::<f32>::with_params(SgdHyper::default(), 1).unwrap();
        let bad = SgdHyper { lr: -1.0, ..SgdHyper::default() };
        assert!(matches!(opt.add_param_group(bad, 1), Err(GroupError::Hyper(_))));
        assert_eq!(opt.groups().len(), 1, "a refused group is not added");
        opt.add_param_group(SgdHyper::default(), 2).unwrap();
        let (mut a, mut b) = (vec![1.0f32; 2], vec![1.0f32; 2]);
        let err = opt.step(&mut [&mut a, &mut b], &[&[1.0; 2], &[1.0; 2]]).unwrap_err();
        assert_eq!(err, StepError::Groups { params: 2, expected: 3 });
        assert!(opt.state(0).is_none() && a == [1.0; 2]);
    }

    /// A scheduler drives the optimizer's groups: each group's LR, its initial_lr, and
    /// the momentum OneCycleLR cycles (SGD's momentum, Adam's betas.0).
    #[test]
    fn schedulers_drive_the_param_groups() {
        use crate::lr_scheduler::{LrScheduler, OneCycleLr, Schedule, StepLr};
        let mut opt = Sgd::<f64>::with_params(SgdHyper { lr: 0.1, momentum: 0.9, ..SgdHyper::default() }, 1).unwrap();
        opt.add_param_group(SgdHyper { lr: 0.4, ..SgdHyper::default() }, 1).unwrap();
        let mut sched: Box<dyn LrScheduler> =
            Box::new(Schedule::new(StepLr { step_size: 1, gamma: 0.5 }, &mut opt, -1).unwrap());
        assert_eq!(opt.groups().iter().map(|g| g.initial_lr).collect::<Vec<_>>(), [Some(0.1), Some(0.4)]);
        let (mut a, mut b) = (vec![1.0; 3], vec![1.0; 2]);
        for _ in 0..2 {
            opt.step(&mut [&mut a, &mut b], &[&[1.0; 3], &[1.0; 2]]).unwrap();
            sched.step(&mut opt);
        }
        assert_eq!(opt.groups().iter().map(|g| g.hyper.lr).collect::<Vec<_>>(), [0.025, 0.1]);
        assert_eq!(sched.last_lr(), [0.025, 0.1]);

        // OneCycleLR refuses an optimizer without momentum (Adagrad), setting nothing
        let mut adagrad = Adagrad::<f64>::new(AdagradHyper::default()).unwrap();
        assert!(Schedule::new(OneCycleLr::new(vec![1.0], 10), &mut adagrad, -1).is_err());
        assert_eq!(adagrad.groups()[0].initial_lr, None);
        let mut adam = Adam::<f64>::new(AdamHyper::adam()).unwrap();
        let mut cycle = Schedule::new(OneCycleLr::new(vec![1.0], 10), &mut adam, -1).unwrap();
        assert_eq!(adam.groups()[0].hyper.betas.0, 0.95);
        assert!((adam.groups()[0].hyper.lr - 1.0 / 25.0).abs() < 1e-15); // max_lr / div_factor
        cycle.step(&mut adam);
        let (lr, beta1) = (adam.groups()[0].hyper.lr, adam.groups()[0].hyper.betas.0);
        assert!(lr > 0.04 && beta1 < 0.95, "warming up: lr {lr}, beta1 {beta1}");
    }
}
