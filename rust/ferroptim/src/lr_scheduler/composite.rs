//! `SequentialLR` and `ChainedScheduler`: several schedulers on the same groups.

use super::{on_groups, require, LrScheduler, ParamGroup, ParamGroups, SchedulerError};

/// A boxed scheduler of a composite.
pub type Boxed = Box<dyn LrScheduler + Send>;

fn step_one(s: &mut Boxed, metric: Option<f64>, groups: &mut [ParamGroup]) {
    match metric {
        Some(m) => s.step_with_groups(m, groups),
        None => s.step_groups(groups),
    }
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
        require(!schedulers.is_empty(), || {
            "SequentialLR expects at least one scheduler, but got no scheduler.".into()
        })?;
        require(milestones.len() + 1 == schedulers.len(), || {
            format!(
                "Sequential Schedulers expects number of schedulers provided to be one more than the number of \
                 milestone points, but got number of schedulers {} and the number of milestones to be equal to {}",
                schedulers.len(),
                milestones.len()
            )
        })?;
        for g in groups.iter_mut() {
            g.lr = *g.initial_lr.get_or_insert(g.lr);
        }
        for s in schedulers.iter_mut() {
            s.undo_epoch();
        }
        schedulers[0].initial_step(groups);
        let last_lr = schedulers[0].last_lr().to_vec();
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
        require(!schedulers.is_empty(), || {
            "ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.".into()
        })?;
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
