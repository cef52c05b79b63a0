//! [`Rule`]: what an [`Optimizer`](super::Optimizer) needs of an update rule — the
//! state it keeps per parameter and per param group, how that state starts, and one
//! step over every group at once.
//!
//! The elementwise rules (SGD, Adam, ...) implement it through [`Batch`], which
//! runs every group's tensors in one batch on the thread pool; the rules beyond
//! torch.optim ([`super::beyond`]) and the matrix rules ([`super::matrix`]) through
//! their kernels' group functions, as the Python package runs them.

use std::fmt;

use crate::element::Element;
use crate::exec::{Batch, Elementwise, TensorSlices, MAX_BUFFERS, MAX_SCALARS};
use crate::{
    AdadeltaHyper, AdagradHyper, AdamHyper, AdamaxHyper, AsgdHyper, NadamHyper, RadamHyper, RmspropHyper, RpropHyper,
    SgdHyper, Validate,
};

use super::{Group, StepError};

/// How a state buffer starts, when a parameter's first step creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// All zeros (most buffers: `exp_avg`, `momentum_buffer`, ...).
    Zeros,
    /// A copy of the parameter (Schedule-Free's `z`).
    Param,
    /// Every `step`-th element of the parameter, or one zero if the parameter is all
    /// zeros (Prodigy's `p0`, as prodigyopt keeps it).
    ParamSliced {
        /// The stride.
        step: usize,
    },
}

/// One parameter of a step, as a [`Rule`] sees it: the parameter, its gradient, its
/// shape and its state (scalars, and buffers of the slots the group's rule uses;
/// the other slots empty).
pub struct ParamTensor<'a, T> {
    /// The parameter, updated in place.
    pub param: &'a mut [T],
    /// Its gradient, as long as the parameter.
    pub grad: &'a [T],
    /// Its shape (its length alone, for a parameter given as a slice of unknown shape).
    pub shape: &'a [usize],
    /// Its scalar state, in the rule's order.
    pub scalars: &'a mut [f64; MAX_SCALARS],
    /// Its state buffers by slot, each of the length
    /// [`Rule::buffer_shape`] gives; the unused slots empty.
    pub buffers: [&'a mut [T]; MAX_BUFFERS],
    /// Its 8-bit state by slot (the 8-bit rules' `state1`, `state2` codes); the
    /// unused slots empty.
    pub codes: [&'a mut [u8]; MAX_CODES],
    /// Whether its state was created for this step.
    pub fresh: bool,
}

/// The most 8-bit buffers a parameter's state has.
pub const MAX_CODES: usize = 2;

impl<'a, T> ParamTensor<'a, T> {
    /// The parameter, gradient and buffers as the slices of an elementwise kernel.
    ///
    /// # Panics
    /// If a used buffer is not as long as the parameter.
    pub fn slices(&mut self) -> TensorSlices<'_, T> {
        TensorSlices::new(self.param, self.grad, self.buffers.iter_mut().map(|b| &mut b[..]))
    }
}

/// One param group of a step: its hyperparameters, its values (see
/// [`Rule::GroupState`]) and its parameters that have gradients, in order.
pub struct GroupStep<'a, K: Rule, T> {
    /// The group's hyperparameters.
    pub hyper: &'a K,
    /// The group's values, advanced by the step.
    pub values: &'a mut K::GroupState,
    /// Its parameters that have a gradient this step.
    pub tensors: Vec<ParamTensor<'a, T>>,
}

/// An update rule an [`Optimizer`](super::Optimizer) runs: implemented by the
/// hyperparameters of each optimizer (one value per param group).
pub trait Rule: Validate + Clone + fmt::Debug + Sync {
    /// What the rule keeps per param group besides its hyperparameters, advanced by
    /// every step (torch's implementations keep these in `param_groups`): a group's
    /// step count (Adan, AdEMAMix, LAMB), Schedule-Free's running weights, Prodigy's
    /// D-adaptation values. `()` for most rules.
    type GroupState: Clone + fmt::Debug + PartialEq + Send;

    /// What the rule keeps for the whole optimizer, of the parameters' element type:
    /// L-BFGS's history (which torch keeps in the first parameter's state); `()` for
    /// the others.
    type Global<T: Element>: Clone + fmt::Debug + Default + Send;

    /// How many scalars each parameter's state has (e.g. 1 for Adam's `step`).
    const SCALARS: usize;

    /// The values of a new group with these hyperparameters.
    fn group_state(&self) -> Self::GroupState;

    /// The values of a group added after the first (`add_param_group`), the first
    /// group's being `first`: by default a new group's (timm's groups take the
    /// constructor's `max_lr_snapshot`, the first group's).
    fn group_state_after(&self, first: &Self::GroupState) -> Self::GroupState {
        let _ = first;
        self.group_state()
    }

    /// How many buffer slots this configuration spans.
    fn buffers(&self) -> usize;

    /// The shape of buffer `k` of a parameter of `shape` (None: this configuration,
    /// or this shape, does not use the slot).
    fn buffer_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>>;

    /// How many 8-bit buffer slots (codes, starting at zero) this configuration spans.
    fn codes(&self) -> usize {
        0
    }

    /// The shape of 8-bit buffer `k` of a parameter of `shape` (None: unused).
    fn code_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
        let _ = (k, shape);
        None
    }

    /// Whether a parameter of `shape` uses slot `k` ([`buffer_shape`](Self::buffer_shape)
    /// is Some; a rule may say so without building the shape).
    fn uses(&self, k: usize, shape: &[usize]) -> bool {
        self.buffer_shape(k, shape).is_some()
    }

    /// How buffer `k` starts.
    fn init(&self, k: usize) -> Init {
        let _ = k;
        Init::Zeros
    }

    /// Whether a buffer of `len` elements in slot `k` fits a parameter of `shape`
    /// (by default: it has the elements of [`buffer_shape`](Self::buffer_shape)).
    fn fits(&self, k: usize, shape: &[usize], len: usize) -> bool {
        self.buffer_shape(k, shape).is_some_and(|s| s.iter().product::<usize>() == len)
    }

    /// The parameter's shape told by the shapes of its buffers and 8-bit buffers (a
    /// loaded state's), if they tell it: by default the shape of the first buffer
    /// whose slot is shaped as the parameter.
    fn param_shape(&self, buffers: &[Option<Vec<usize>>], codes: &[Option<Vec<usize>>]) -> Option<Vec<usize>> {
        let _ = codes;
        let mut found = buffers.iter().enumerate().filter_map(|(k, s)| Some((k, s.as_ref()?)));
        found.find(|(k, s)| self.buffer_shape(*k, s).as_deref() == Some(&s[..])).map(|(_, s)| s.clone())
    }

    /// Refuses a parameter the rule cannot step (Muon: one that is not a matrix),
    /// before anything changes.
    fn check_param(&self, index: usize, shape: &[usize]) -> Result<(), String> {
        let _ = (index, shape);
        Ok(())
    }

    /// Refuses a step of these groups (Prodigy: groups of different nonzero LRs;
    /// Schedule-Free: not in train mode), before anything changes.
    fn check_groups(groups: &[Group<Self>]) -> Result<(), String> {
        let _ = groups;
        Ok(())
    }

    /// One step of every group (each group's tensors checked and their state
    /// created as the methods above say).
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]);
}

/// The items of a [`Rule`] that keeps nothing per group and nothing for the whole
/// optimizer (most rules).
macro_rules! no_group_values {
    () => {
        type GroupState = ();
        type Global<T: Element> = ();
        fn group_state(&self) {}
    };
}
pub(crate) use no_group_values;

/// The ten elementwise rules of torch.optim: no group values, buffers shaped as the
/// parameter, every group's tensors in one [`Batch`].
macro_rules! elementwise_rules {
    ($($hyper:ty),+) => {$(
        impl Rule for $hyper {
            no_group_values!();
            const SCALARS: usize = <$hyper as Elementwise>::SCALARS;
            fn buffers(&self) -> usize {
                Elementwise::buffers(self)
            }
            fn buffer_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
                self.uses_buffer(k).then(|| shape.to_vec())
            }
            fn uses(&self, k: usize, _shape: &[usize]) -> bool {
                self.uses_buffer(k)
            }
            fn fits(&self, k: usize, shape: &[usize], len: usize) -> bool {
                self.uses_buffer(k) && shape.iter().product::<usize>() == len
            }
            fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
                step_elementwise(groups)
            }
        }
    )+};
}

elementwise_rules!(
    SgdHyper,
    AdamHyper,
    AdagradHyper,
    AdadeltaHyper,
    AdamaxHyper,
    NadamHyper,
    RadamHyper,
    RmspropHyper,
    RpropHyper,
    AsgdHyper
);

/// Every group's tensors in one [`Batch`].
fn step_elementwise<K: Rule + Elementwise + Validate, T: Element>(groups: &mut [GroupStep<'_, K, T>]) {
    let elements = groups.iter().flat_map(|g| &g.tensors).map(|t| t.param.len()).sum();
    let mut batch = Batch::with_size(elements);
    for g in groups.iter_mut() {
        for t in g.tensors.iter_mut() {
            let slices = TensorSlices::new(t.param, t.grad, t.buffers.iter_mut().map(|b| &mut b[..]));
            batch.push(g.hyper, &mut t.scalars[..<K as Elementwise>::SCALARS], t.fresh, slices);
        }
    }
    batch.run();
}

/// The error of a rule's refusal.
pub(crate) fn refused(message: String) -> StepError {
    StepError::Refused { message }
}
