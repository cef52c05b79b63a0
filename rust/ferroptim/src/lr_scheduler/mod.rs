//! Learning-rate schedulers, as `torch.optim.lr_scheduler`, with the same numbers as
//! the Python package (and torch): the same recursive ("chainable") forms, in the
//! same order of floating-point operations, and the closed forms where torch has them.
//!
//! A scheduler sets the LR of each param group of one optimizer: an [`Optimizer`]'s
//! (`scheduler.step(&mut opt)`), or [`ParamGroup`]s a program keeps and copies into
//! its own optimizers (any [`ParamGroups`]). Several schedulers may drive the same
//! groups, as in torch, and their factors multiply.
//!
//! [`Optimizer`]: crate::Optimizer
//!
//! ```
//! use ferroptim::lr_scheduler::{ParamGroup, Schedule, StepLr, LrScheduler};
//!
//! let mut groups = [ParamGroup::new(0.1)];
//! let mut sched = Schedule::new(StepLr { step_size: 2, gamma: 0.5 }, &mut groups, -1).unwrap();
//! let mut seen = vec![groups[0].lr];
//! for _ in 0..4 {
//!     // ... an optimizer step with lr = groups[0].lr ...
//!     sched.step(&mut groups);
//!     seen.push(groups[0].lr);
//! }
//! assert_eq!(seen, [0.1, 0.1, 0.05, 0.05, 0.025]);
//! ```

mod check;
mod composite;
mod cosine;
mod cyclic;
mod factor;
mod lambda;
mod plateau;
mod state;
mod swa;

pub use check::{
    check_cycle, check_group_count, check_initial_lrs, check_lambda_count, check_milestones, check_momentum,
    check_schedulers_given, cyclic_mode, cyclic_size_checked, one_cycle_lr_points_checked, one_cycle_pct_start,
    one_cycle_total_steps, plateau_factor, plateau_min_lr_count, positive_int, swa_anneal_epochs,
    warm_restarts_eta_min, warm_restarts_periods, Given, DIVISION_BY_ZERO,
};
pub use composite::{ChainedScheduler, SequentialLr};
pub use cosine::{warm_restarts_lrs, warm_restarts_position, CosineAnnealingLr, CosineAnnealingWarmRestarts};
pub use cyclic::{
    cyclic_lrs, cyclic_size, one_cycle_lr_points, one_cycle_lrs, one_cycle_phases, Anneal, CyclicLr, CyclicMode,
    OneCycleLr, OneCyclePoints, Phase, ScaleMode, ONE_CYCLE_POINTS,
};
pub use factor::{ConstantLr, ExponentialLr, LinearLr, MultiStepLr, PolynomialLr, StepLr};
pub use lambda::{LambdaLr, LrLambda, MultiplicativeLr};
pub use plateau::{plateau_is_better, plateau_reduced, PlateauMode, ReduceLrOnPlateau, ThresholdMode};
pub use swa::{swa_alpha, SwaLr};

use std::fmt;

use crate::state_dict::Value;

/// What a scheduler reads and sets in one param group of an optimizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamGroup {
    /// The learning rate the optimizer steps with.
    pub lr: f64,
    /// torch's `initial_lr`: set by the first scheduler built on the group.
    pub initial_lr: Option<f64>,
    /// The momentum `CyclicLr` / `OneCycleLr` cycle: `momentum` (SGD, RMSprop) or
    /// Adam's `betas.0`; `None` if the optimizer has none.
    pub momentum: Option<f64>,
}

impl ParamGroup {
    /// A group with this LR and no momentum.
    pub fn new(lr: f64) -> Self {
        ParamGroup { lr, initial_lr: None, momentum: None }
    }

    /// A group with this LR and momentum.
    pub fn with_momentum(lr: f64, momentum: f64) -> Self {
        ParamGroup { lr, initial_lr: None, momentum: Some(momentum) }
    }
}

/// An argument torch refuses, with torch's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerError(pub String);

impl fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchedulerError {}

pub(crate) fn require(ok: bool, message: impl FnOnce() -> String) -> Result<(), SchedulerError> {
    if ok {
        Ok(())
    } else {
        Err(SchedulerError(message()))
    }
}

/// One value per group: `values` as given (one per group) or its single value repeated.
pub(crate) fn per_group(name: &str, values: &[f64], groups: usize) -> Result<Vec<f64>, SchedulerError> {
    if values.len() == 1 {
        return Ok(vec![values[0]; groups]);
    }
    check_group_count(name, values.len(), groups)?;
    Ok(values.to_vec())
}

/// The param groups a scheduler drives: an optimizer's ([`crate::Optimizer`]), or
/// [`ParamGroup`]s a program keeps itself (a slice, an array or a `Vec` of them).
pub trait ParamGroups {
    /// Each group as a scheduler sees it.
    fn param_groups(&self) -> Vec<ParamGroup>;
    /// Sets each group's LR, `initial_lr` and momentum to those of `groups` (one per
    /// group, as [`param_groups`](Self::param_groups) gave them).
    fn set_param_groups(&mut self, groups: &[ParamGroup]);
}

impl ParamGroups for [ParamGroup] {
    fn param_groups(&self) -> Vec<ParamGroup> {
        self.to_vec()
    }

    fn set_param_groups(&mut self, groups: &[ParamGroup]) {
        self.copy_from_slice(groups);
    }
}

impl<const N: usize> ParamGroups for [ParamGroup; N] {
    fn param_groups(&self) -> Vec<ParamGroup> {
        self.to_vec()
    }

    fn set_param_groups(&mut self, groups: &[ParamGroup]) {
        self.copy_from_slice(groups);
    }
}

impl ParamGroups for Vec<ParamGroup> {
    fn param_groups(&self) -> Vec<ParamGroup> {
        self.clone()
    }

    fn set_param_groups(&mut self, groups: &[ParamGroup]) {
        self.copy_from_slice(groups);
    }
}

/// `f` over the groups' scheduling view; what it changed is set in `groups` if it
/// succeeds (a refused construction changes nothing).
pub(crate) fn on_groups<G: ParamGroups + ?Sized, R, E>(
    groups: &mut G,
    f: impl FnOnce(&mut [ParamGroup]) -> Result<R, E>,
) -> Result<R, E> {
    let mut view = groups.param_groups();
    let r = f(&mut view)?;
    groups.set_param_groups(&view);
    Ok(r)
}

/// `f` over the groups' scheduling view, and what it changed set in `groups`.
pub(crate) fn with_groups<G: ParamGroups + ?Sized, R>(groups: &mut G, f: impl FnOnce(&mut [ParamGroup]) -> R) -> R {
    match on_groups(groups, |g| Ok::<R, std::convert::Infallible>(f(g))) {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// A scheduler driving the LRs of some param groups: `scheduler.step(&mut optimizer)`
/// (or `&mut groups`, [`ParamGroup`]s a program keeps), as torch's `scheduler.step()`.
pub trait LrScheduler {
    /// Advances one epoch (torch's `scheduler.step()`) and sets each group's LR.
    fn step<G: ParamGroups + ?Sized>(&mut self, groups: &mut G)
    where
        Self: Sized,
    {
        with_groups(groups, |g| self.step_groups(g));
    }
    /// Advances one epoch with a metric: [`ReduceLrOnPlateau`] (alone or inside a
    /// composite) uses it, every other scheduler ignores it.
    fn step_with<G: ParamGroups + ?Sized>(&mut self, metric: f64, groups: &mut G)
    where
        Self: Sized,
    {
        with_groups(groups, |g| self.step_with_groups(metric, g));
    }
    /// [`step`](Self::step) on the groups' scheduling view (callable on a `dyn
    /// LrScheduler`).
    fn step_groups(&mut self, groups: &mut [ParamGroup]);
    /// [`step_with`](Self::step_with) on the groups' scheduling view.
    fn step_with_groups(&mut self, metric: f64, groups: &mut [ParamGroup]) {
        let _ = metric;
        self.step_groups(groups);
    }
    /// The LRs the last step set.
    fn last_lr(&self) -> &[f64];
    /// The epochs stepped since the start (0 right after construction).
    fn last_epoch(&self) -> i64;
    /// Whether [`LrScheduler::step_with`] must be used.
    fn needs_metric(&self) -> bool {
        false
    }
    /// Goes back one epoch without touching the groups (what `SequentialLR` does to
    /// the schedulers it is given, which each stepped once when built).
    fn undo_epoch(&mut self);
    /// Starts the schedule over, as `SequentialLR` does at a milestone: epoch 0 by the
    /// closed form (or the chainable form where there is none).
    fn restart(&mut self, groups: &mut [ParamGroup]);
    /// The first step again (what `SequentialLR` does to its first scheduler).
    fn initial_step(&mut self, groups: &mut [ParamGroup]);
    /// The state dict, as the Python scheduler's `state_dict()`: its attributes under
    /// torch's names (see `state`: the schedule's position, not its LR lambdas).
    fn state_dict(&self) -> Value;
    /// Loads a state dict of the same scheduler (from [`state_dict`](Self::state_dict)
    /// or the Python scheduler's), checked before anything changes.
    fn load_state_dict(&mut self, sd: &Value) -> Result<(), SchedulerError>;
}

/// A boxed scheduler is one: `Box<dyn LrScheduler>` has `step(&mut optimizer)` too.
impl<S: LrScheduler + ?Sized> LrScheduler for Box<S> {
    fn step_groups(&mut self, groups: &mut [ParamGroup]) {
        (**self).step_groups(groups);
    }
    fn step_with_groups(&mut self, metric: f64, groups: &mut [ParamGroup]) {
        (**self).step_with_groups(metric, groups);
    }
    fn last_lr(&self) -> &[f64] {
        (**self).last_lr()
    }
    fn last_epoch(&self) -> i64 {
        (**self).last_epoch()
    }
    fn needs_metric(&self) -> bool {
        (**self).needs_metric()
    }
    fn undo_epoch(&mut self) {
        (**self).undo_epoch();
    }
    fn restart(&mut self, groups: &mut [ParamGroup]) {
        (**self).restart(groups);
    }
    fn initial_step(&mut self, groups: &mut [ParamGroup]) {
        (**self).initial_step(groups);
    }
    fn state_dict(&self) -> Value {
        (**self).state_dict()
    }
    fn load_state_dict(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        (**self).load_state_dict(sd)
    }
}

/// What a rule sees when it computes the LRs of a step.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The epoch being set.
    pub last_epoch: i64,
    /// `step` calls so far, this one included (torch's `_step_count`).
    pub step_count: u64,
    /// The construction step (torch's `_is_initial`).
    pub is_initial: bool,
    /// Each group's `initial_lr`.
    pub base_lrs: &'a [f64],
}

/// The LR formula of a scheduler that works as torch's `LRScheduler` base class does.
pub trait Rule {
    /// The new LR of each group from the current ones (torch's `get_lr`); may also
    /// set the groups' momentum.
    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64>;
    /// The LR of each group at `c.last_epoch` from `c.base_lrs` (torch's
    /// `_get_closed_form_lr`), where torch has one.
    fn closed_form(&self, c: &Context<'_>) -> Option<Vec<f64>> {
        let _ = c;
        None
    }
    /// Called once by [`Schedule::new`] before the first step (to set the groups'
    /// starting LR or momentum); may refuse the groups.
    fn attach(&mut self, groups: &mut [ParamGroup], last_epoch: i64) -> Result<(), SchedulerError> {
        let _ = (groups, last_epoch);
        Ok(())
    }
    /// Replaces `base_lrs` after construction (CyclicLR's `base_lr`).
    fn base_lrs(&self) -> Option<Vec<f64>> {
        None
    }
    /// Whether the rule has LR lambdas (LambdaLR, MultiplicativeLR).
    fn has_lambdas(&self) -> bool {
        false
    }
    /// The rule's attributes in torch's state dict, under torch's names.
    fn state_entries(&self) -> Vec<(&'static str, Value)>;
    /// Takes them back from a state dict `sd`, checking every one before it changes
    /// any.
    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError>;
}

/// A scheduler built from a [`Rule`]: torch's `LRScheduler` (`initial_lr`,
/// `base_lrs`, `last_epoch`, the construction step, `step`, `step(epoch)`).
#[derive(Clone, Debug)]
pub struct Schedule<R> {
    /// The LR formula.
    pub rule: R,
    /// Each group's `initial_lr` (or the rule's own bases, as CyclicLR's `base_lr`).
    pub base_lrs: Vec<f64>,
    /// The epochs stepped since the start (0 right after construction).
    pub last_epoch: i64,
    step_count: u64,
    last_lr: Vec<f64>,
}

impl<R: Rule> Schedule<R> {
    /// Builds the scheduler on `groups` and makes its first step. `last_epoch = -1`
    /// starts (recording each group's `initial_lr` if unset); another value resumes
    /// and needs `initial_lr` in every group.
    pub fn new<G: ParamGroups + ?Sized>(rule: R, groups: &mut G, last_epoch: i64) -> Result<Self, SchedulerError> {
        on_groups(groups, |groups| Self::attached(rule, groups, last_epoch))
    }

    fn attached(mut rule: R, groups: &mut [ParamGroup], last_epoch: i64) -> Result<Self, SchedulerError> {
        rule.attach(groups, last_epoch)?;
        if last_epoch == -1 {
            for g in groups.iter_mut() {
                g.initial_lr.get_or_insert(g.lr);
            }
        } else {
            check_initial_lrs(groups.iter().map(|g| g.initial_lr.is_some()))?;
        }
        let base_lrs = groups.iter().map(|g| g.initial_lr.expect("set above")).collect();
        let mut s = Schedule { rule, base_lrs, last_epoch, step_count: 0, last_lr: Vec::new() };
        s.initial_step(groups);
        if let Some(b) = s.rule.base_lrs() {
            s.base_lrs = b;
        }
        Ok(s)
    }

    /// torch's `step` (which counts the step, then updates) or, with `counted` false,
    /// its `_update_lr` alone.
    fn run(&mut self, groups: &mut [ParamGroup], is_initial: bool, epoch: Option<i64>, counted: bool) {
        if counted {
            self.step_count += 1;
        }
        let closed = match epoch {
            None => {
                self.last_epoch += 1;
                None
            }
            Some(e) => {
                self.last_epoch = e;
                self.rule.closed_form(&self.context(false))
            }
        };
        let lrs = match closed {
            Some(lrs) => lrs,
            None => {
                let base = self.base_lrs.clone();
                let c = Context { base_lrs: &base, ..self.context(is_initial) };
                self.rule.lrs(&c, groups)
            }
        };
        for (g, lr) in groups.iter_mut().zip(&lrs) {
            g.lr = *lr;
        }
        self.last_lr = groups.iter().map(|g| g.lr).collect();
    }

    fn context(&self, is_initial: bool) -> Context<'_> {
        Context { last_epoch: self.last_epoch, step_count: self.step_count, is_initial, base_lrs: &self.base_lrs }
    }

    /// Goes to `epoch` by the closed form, where the rule has one (torch's deprecated
    /// `step(epoch)`).
    pub fn step_to<G: ParamGroups + ?Sized>(&mut self, epoch: i64, groups: &mut G) {
        with_groups(groups, |groups| self.run(groups, false, Some(epoch), true));
    }
}

impl<R: Rule> LrScheduler for Schedule<R> {
    fn step_groups(&mut self, groups: &mut [ParamGroup]) {
        self.run(groups, false, None, true);
    }

    fn last_lr(&self) -> &[f64] {
        &self.last_lr
    }

    fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    fn undo_epoch(&mut self) {
        self.last_epoch -= 1;
    }

    fn restart(&mut self, groups: &mut [ParamGroup]) {
        self.run(groups, false, Some(0), false);
    }

    fn initial_step(&mut self, groups: &mut [ParamGroup]) {
        self.step_count = 0;
        self.run(groups, true, None, true);
    }

    fn state_dict(&self) -> Value {
        let mut entries = self.rule.state_entries();
        entries.extend(state::base(&self.base_lrs, self.last_epoch, self.step_count, &self.last_lr));
        if self.rule.has_lambdas() {
            // a Rust closure has no attributes to save: torch's entry for a function,
            // one per group
            entries.push(("lr_lambdas", Value::List(vec![Value::None; self.base_lrs.len()])));
        }
        Value::dict(entries)
    }

    fn load_state_dict(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let n = self.base_lrs.len();
        let base_lrs = state::floats(sd, "base_lrs", n)?;
        let last_lr = state::floats(sd, "_last_lr", n)?;
        let (last_epoch, step_count) = (state::int(sd, "last_epoch")?, state::int(sd, "_step_count")?);
        if self.rule.has_lambdas() {
            let saved = sd.get("lr_lambdas").and_then(Value::items).map_or(0, <[Value]>::len);
            require(saved == n, || format!("expected {n} lr_lambdas in the state dict, got {saved}"))?;
        }
        self.rule.load_entries(sd)?;
        (self.base_lrs, self.last_lr, self.last_epoch) = (base_lrs, last_lr, last_epoch);
        self.step_count = step_count.max(0) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod reference;
