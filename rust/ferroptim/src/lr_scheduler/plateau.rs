//! `ReduceLROnPlateau`: lower the LR when a metric stops improving.

use super::state::{self, float, int, string};
use super::{require, LrScheduler, ParamGroup, ParamGroups, SchedulerError};
use crate::state_dict::Value;

/// Whether lower or higher metrics are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// Whether the threshold is relative or absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Better by a fraction `threshold` of the best.
    Rel,
    /// Better by `threshold`.
    Abs,
}

/// torch's `ReduceLROnPlateau` (see the Python docstring): `step_with(metric, groups)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceLrOnPlateau {
    /// Whether lower or higher metrics are better.
    pub mode: PlateauMode,
    /// The factor of each reduction, below 1.
    pub factor: f64,
    /// The epochs without improvement tolerated before a reduction.
    pub patience: u64,
    /// How much better than the best a metric must be to count.
    pub threshold: f64,
    /// Whether `threshold` is relative or absolute.
    pub threshold_mode: ThresholdMode,
    /// The epochs after a reduction during which bad epochs are not counted.
    pub cooldown: u64,
    /// Each group's lowest LR.
    pub min_lrs: Vec<f64>,
    /// A reduction smaller than this is not made.
    pub eps: f64,
    /// The best metric so far.
    pub best: f64,
    /// The epochs since the last improvement (outside cooldowns).
    pub num_bad_epochs: u64,
    /// The cooldown epochs left.
    pub cooldown_counter: u64,
    /// The epochs stepped since the start.
    pub last_epoch: i64,
    last_lr: Vec<f64>,
}

impl ReduceLrOnPlateau {
    /// torch's defaults (mode min, factor 0.1, patience 10, threshold 1e-4 relative,
    /// no cooldown, min_lr 0, eps 1e-8), with `min_lr` one value or one per group.
    pub fn new<G: ParamGroups + ?Sized>(
        groups: &G,
        factor: f64,
        patience: u64,
        min_lr: &[f64],
    ) -> Result<Self, SchedulerError> {
        let groups = &groups.param_groups()[..];
        super::plateau_factor(factor)?;
        let min_lrs = match min_lr {
            [one] => vec![*one; groups.len()],
            each => super::plateau_min_lr_count(each.len(), groups.len()).map(|()| each.to_vec())?,
        };
        let mut s = ReduceLrOnPlateau {
            mode: PlateauMode::Min,
            factor,
            patience,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lrs,
            eps: 1e-8,
            best: f64::INFINITY,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
            last_lr: groups.iter().map(|g| g.lr).collect(),
        };
        s.reset();
        Ok(s)
    }

    /// Forgets the best value and the counters.
    pub fn reset(&mut self) {
        self.best = match self.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        self.cooldown_counter = 0;
        self.num_bad_epochs = 0;
    }
}

/// Whether metric `a` improves on `best` by more than `threshold` (torch's
/// `ReduceLROnPlateau.is_better`).
pub fn plateau_is_better(mode: PlateauMode, threshold_mode: ThresholdMode, threshold: f64, a: f64, best: f64) -> bool {
    match (mode, threshold_mode) {
        (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - threshold),
        (PlateauMode::Min, ThresholdMode::Abs) => a < best - threshold,
        (PlateauMode::Max, ThresholdMode::Rel) => a > best * (threshold + 1.0),
        (PlateauMode::Max, ThresholdMode::Abs) => a > best + threshold,
    }
}

/// The LR a reduction gives a group at `lr`: `max(lr·factor, min_lr)`, unless that
/// changes it by `eps` or less (torch's `_reduce_lr`).
pub fn plateau_reduced(lr: f64, factor: f64, min_lr: f64, eps: f64) -> f64 {
    let new_lr = f64::max(lr * factor, min_lr);
    if lr - new_lr > eps {
        new_lr
    } else {
        lr
    }
}

impl LrScheduler for ReduceLrOnPlateau {
    fn state_dict(&self) -> Value {
        let (mode, threshold_mode) = (self.mode.name(), self.threshold_mode.name());
        let worse = match self.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        // torch's `default_min_lr`: the `min_lr` given as one number (here: all alike)
        let default = match self.min_lrs.split_first() {
            Some((&first, rest)) if rest.iter().all(|&m| m == first) => Value::Float(first),
            _ => Value::None,
        };
        Value::dict([
            ("factor", Value::Float(self.factor)),
            ("default_min_lr", default),
            ("min_lrs", state::list(&self.min_lrs)),
            ("patience", Value::Int(self.patience as i64)),
            ("cooldown", Value::Int(self.cooldown as i64)),
            ("eps", Value::Float(self.eps)),
            ("last_epoch", Value::Int(self.last_epoch)),
            ("_last_lr", state::list(&self.last_lr)),
            ("mode_worse", Value::Float(worse)),
            ("mode", Value::Str(mode.into())),
            ("threshold", Value::Float(self.threshold)),
            ("threshold_mode", Value::Str(threshold_mode.into())),
            ("best", Value::Float(self.best)),
            ("cooldown_counter", Value::Int(self.cooldown_counter as i64)),
            ("num_bad_epochs", Value::Int(self.num_bad_epochs as i64)),
        ])
    }

    fn load_state_dict(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let n = self.min_lrs.len();
        let count = |key: &str| -> Result<u64, SchedulerError> {
            let v = int(sd, key)?;
            require(v >= 0, || format!("'{key}' of the state dict is negative: {v}"))?;
            Ok(v as u64)
        };
        let (mode, threshold_mode) = (string(sd, "mode")?.parse()?, string(sd, "threshold_mode")?.parse()?);
        let (factor, eps, threshold, best) =
            (float(sd, "factor")?, float(sd, "eps")?, float(sd, "threshold")?, float(sd, "best")?);
        let (min_lrs, last_lr) = (state::floats(sd, "min_lrs", n)?, state::floats(sd, "_last_lr", n)?);
        let (patience, cooldown, cooldown_counter) =
            (count("patience")?, count("cooldown")?, count("cooldown_counter")?);
        let (num_bad_epochs, last_epoch) = (count("num_bad_epochs")?, int(sd, "last_epoch")?);
        *self = ReduceLrOnPlateau {
            mode,
            factor,
            patience,
            threshold,
            threshold_mode,
            cooldown,
            min_lrs,
            eps,
            best,
            num_bad_epochs,
            cooldown_counter,
            last_epoch,
            last_lr,
        };
        Ok(())
    }

    /// A plateau scheduler needs a metric: without one, nothing happens.
    fn step_groups(&mut self, _groups: &mut [ParamGroup]) {}

    fn step_with_groups(&mut self, metric: f64, groups: &mut [ParamGroup]) {
        self.last_epoch += 1;
        if plateau_is_better(self.mode, self.threshold_mode, self.threshold, metric, self.best) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.patience {
            for (g, &min_lr) in groups.iter_mut().zip(&self.min_lrs) {
                g.lr = plateau_reduced(g.lr, self.factor, min_lr, self.eps);
            }
            self.cooldown_counter = self.cooldown;
            self.num_bad_epochs = 0;
        }
        self.last_lr = groups.iter().map(|g| g.lr).collect();
    }

    fn needs_metric(&self) -> bool {
        true
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

    /// Starts over from each group's initial LR (when `SequentialLr` reaches it).
    fn restart(&mut self, groups: &mut [ParamGroup]) {
        for g in groups.iter_mut() {
            g.lr = g.initial_lr.unwrap_or(g.lr);
        }
        self.reset();
        self.last_epoch = -1;
        self.last_lr = groups.iter().map(|g| g.lr).collect();
    }

    fn initial_step(&mut self, groups: &mut [ParamGroup]) {
        self.last_lr = groups.iter().map(|g| g.lr).collect();
    }
}
