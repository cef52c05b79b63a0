//! `SequentialLR` and `ChainedScheduler`: several schedulers on the same groups.

use super::state::{self, int};
use super::{on_groups, require, LrScheduler, ParamGroup, ParamGroups, SchedulerError};
use crate::state_dict::Value;

/// A boxed scheduler of a composite.
pub type Boxed = Box<dyn LrScheduler + Send>;

fn step_one(s: &mut Boxed, metric: Option<f64>, groups: &mut [ParamGroup]) {
    match metric {
        Some(m) => s.step_with_groups(m, groups),
        None => s.step_groups(groups),
    }
}

/// Loads each of `schedulers` from the list `sd[key]`; if one refuses, those loaded
/// before it are put back as they were, so that nothing changes.
fn load_each(schedulers: &mut [Boxed], sd: &Value) -> Result<(), SchedulerError> {
    let saved = sd.get("_schedulers").and_then(Value::items).unwrap_or_default();
    require(saved.len() == schedulers.len(), || {
        format!("the state dict has {} schedulers, this composite {}", saved.len(), schedulers.len())
    })?;
    let before: Vec<Value> = schedulers.iter().map(|s| s.state_dict()).collect();
    for (k, (s, sd)) in schedulers.iter_mut().zip(saved).enumerate() {
        if let Err(e) = s.load_state_dict(sd) {
            for (s, was) in schedulers[..k].iter_mut().zip(&before) {
                s.load_state_dict(was).expect("a scheduler loads its own state dict");
            }
            return Err(e);
        }
    }
    Ok(())
}

fn states(schedulers: &[Boxed]) -> Value {
    Value::List(schedulers.iter().map(|s| s.state_dict()).collect())
}

/// Runs `schedulers[0]` until `milestones[0]`, then `schedulers[1]` from its start,
/// and so on (torch's `SequentialLR`; a `ReduceLrOnPlateau` may be one of them and
/// starts over from the groups' initial LR at its milestone).
pub struct SequentialLr {
    /// The schedulers, in the order they run.
    pub schedulers: Vec<Boxed>,
    /// The epochs at which the next scheduler takes over (one fewer than schedulers).
    pub milestones: Vec<i64>,
    /// The epochs stepped since the start.
    pub last_epoch: i64,
    last_lr: Vec<f64>,
}

impl SequentialLr {
    /// Takes schedulers already built on `groups` (each made its first step), puts the
    /// groups back to their initial LR and restarts the first scheduler.
    pub fn new<G: ParamGroups + ?Sized>(
        groups: &mut G,
        schedulers: Vec<Boxed>,
        milestones: Vec<i64>,
        last_epoch: i64,
    ) -> Result<Self, SchedulerError> {
        on_groups(groups, |groups| Self::on(groups, schedulers, milestones, last_epoch))
    }

    fn on(
        groups: &mut [ParamGroup],
        mut schedulers: Vec<Boxed>,
        milestones: Vec<i64>,
        last_epoch: i64,
    ) -> Result<Self, SchedulerError> {
        super::check_schedulers_given("SequentialLR", "scheduler", schedulers.len())?;
        super::check_milestones(schedulers.len(), milestones.len())?;
        for g in groups.iter_mut() {
            g.lr = *g.initial_lr.get_or_insert(g.lr);
        }
        for s in schedulers.iter_mut() {
            s.undo_epoch();
        }
        // the scheduler of step 0 (torch 2.15: the one after any milestone 0) starts
        let first = milestones.partition_point(|&m| m <= 0);
        schedulers[first].initial_step(groups);
        let last_lr = schedulers[first].last_lr().to_vec();
        Ok(SequentialLr { schedulers, milestones, last_epoch: last_epoch + 1, last_lr })
    }

    fn advance(&mut self, metric: Option<f64>, groups: &mut [ParamGroup]) {
        self.last_epoch += 1;
        let idx = self.milestones.partition_point(|&m| m <= self.last_epoch);
        let s = &mut self.schedulers[idx];
        if idx > 0 && self.milestones[idx - 1] == self.last_epoch {
            s.restart(groups);
            if s.needs_metric() {
                step_one(s, metric, groups);
            }
        } else {
            step_one(s, metric, groups);
        }
        self.last_lr = s.last_lr().to_vec();
    }
}

impl LrScheduler for SequentialLr {
    fn state_dict(&self) -> Value {
        Value::dict([
            ("_milestones", Value::List(self.milestones.iter().map(|&m| Value::Int(m)).collect())),
            ("last_epoch", Value::Int(self.last_epoch)),
            ("_last_lr", state::list(&self.last_lr)),
            ("_schedulers", states(&self.schedulers)),
        ])
    }

    fn load_state_dict(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let milestones: Option<Vec<i64>> = sd
            .get("_milestones")
            .and_then(Value::items)
            .and_then(|ms| ms.iter().map(|m| if let Value::Int(m) = m { Some(*m) } else { None }).collect());
        let milestones = milestones.ok_or_else(|| SchedulerError("the state dict has no list '_milestones'".into()))?;
        require(milestones.len() + 1 == self.schedulers.len(), || {
            "the state dict's milestones do not fit this SequentialLR's schedulers".into()
        })?;
        let (last_epoch, last_lr) = (int(sd, "last_epoch")?, state::floats(sd, "_last_lr", self.last_lr.len())?);
        load_each(&mut self.schedulers, sd)?;
        (self.milestones, self.last_epoch, self.last_lr) = (milestones, last_epoch, last_lr);
        Ok(())
    }

    fn step_groups(&mut self, groups: &mut [ParamGroup]) {
        self.advance(None, groups);
    }

    fn step_with_groups(&mut self, metric: f64, groups: &mut [ParamGroup]) {
        self.advance(Some(metric), groups);
    }

    fn needs_metric(&self) -> bool {
        self.schedulers.iter().any(|s| s.needs_metric())
    }

    fn last_lr(&self) -> &[f64] {
        &self.last_lr
    }

    fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    fn undo_epoch(&mut self) {
        self.schedulers.iter_mut().for_each(|s| s.undo_epoch());
    }

    fn restart(&mut self, groups: &mut [ParamGroup]) {
        self.schedulers[0].restart(groups);
    }

    fn initial_step(&mut self, groups: &mut [ParamGroup]) {
        self.schedulers[0].initial_step(groups);
    }
}

/// Steps every scheduler in order at each step: their factors multiply (torch's
/// `ChainedScheduler`; a `ReduceLrOnPlateau` may be one of them).
pub struct ChainedScheduler {
    /// The schedulers, each stepped in this order at every step.
    pub schedulers: Vec<Boxed>,
    last_lr: Vec<f64>,
}

impl ChainedScheduler {
    /// Takes schedulers already built on `groups`.
    pub fn new<G: ParamGroups + ?Sized>(groups: &G, schedulers: Vec<Boxed>) -> Result<Self, SchedulerError> {
        super::check_schedulers_given("ChainedScheduler", "scheduler to be chained", schedulers.len())?;
        Ok(ChainedScheduler { schedulers, last_lr: groups.param_groups().iter().map(|g| g.lr).collect() })
    }

    fn advance(&mut self, metric: Option<f64>, groups: &mut [ParamGroup]) {
        for s in self.schedulers.iter_mut() {
            step_one(s, metric, groups);
        }
        self.last_lr = groups.iter().map(|g| g.lr).collect();
    }
}

impl LrScheduler for ChainedScheduler {
    fn state_dict(&self) -> Value {
        Value::dict([("_last_lr", state::list(&self.last_lr)), ("_schedulers", states(&self.schedulers))])
    }

    fn load_state_dict(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let last_lr = state::floats(sd, "_last_lr", self.last_lr.len())?;
        load_each(&mut self.schedulers, sd)?;
        self.last_lr = last_lr;
        Ok(())
    }

    fn step_groups(&mut self, groups: &mut [ParamGroup]) {
        self.advance(None, groups);
    }

    fn step_with_groups(&mut self, metric: f64, groups: &mut [ParamGroup]) {
        self.advance(Some(metric), groups);
    }

    fn needs_metric(&self) -> bool {
        self.schedulers.iter().any(|s| s.needs_metric())
    }

    fn last_lr(&self) -> &[f64] {
        &self.last_lr
    }

    fn last_epoch(&self) -> i64 {
        self.schedulers.last().map_or(0, |s| s.last_epoch())
    }

    fn undo_epoch(&mut self) {
        self.schedulers.iter_mut().for_each(|s| s.undo_epoch());
    }

    fn restart(&mut self, groups: &mut [ParamGroup]) {
        self.schedulers.iter_mut().for_each(|s| s.restart(groups));
    }

    fn initial_step(&mut self, groups: &mut [ParamGroup]) {
        self.schedulers.iter_mut().for_each(|s| s.initial_step(groups));
    }
}
