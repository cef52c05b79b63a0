//! Schedules that scale the LR by factors: `StepLR`, `MultiStepLR`, `ConstantLR`,
//! `LinearLR`, `ExponentialLR`, `PolynomialLR` (see the Python docstrings for the
//! formulas; each follows torch's `get_lr` and `_get_closed_form_lr`).

use super::state::{float, int};
use super::{require, Context, ParamGroup, Rule, SchedulerError};
use crate::state_dict::Value;

fn current(groups: &[ParamGroup]) -> Vec<f64> {
    groups.iter().map(|g| g.lr).collect()
}

fn scaled(groups: &[ParamGroup], f: f64) -> Vec<f64> {
    groups.iter().map(|g| g.lr * f).collect()
}

/// `lr = initial_lr · gamma^⌊epoch / step_size⌋`.
#[derive(Clone, Debug, PartialEq)]
pub struct StepLr {
    /// The period of the decay, in epochs.
    pub step_size: i64,
    /// The decay factor.
    pub gamma: f64,
}

impl Rule for StepLr {
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        vec![("step_size", Value::Int(self.step_size)), ("gamma", Value::Float(self.gamma))]
    }

    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let (step_size, gamma) = (int(sd, "step_size")?, float(sd, "gamma")?);
        require(step_size != 0, || "Expected nonzero integer step_size, but got 0".into())?;
        (self.step_size, self.gamma) = (step_size, gamma);
        Ok(())
    }

    /// Refuses a `step_size` of 0 (torch's `epoch % step_size` would divide by zero).
    fn attach(&mut self, _: &mut [ParamGroup], _: i64) -> Result<(), SchedulerError> {
        require(self.step_size != 0, || format!("Expected nonzero integer step_size, but got {}", self.step_size))
    }

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        if c.last_epoch == 0 || i128::from(c.last_epoch) % i128::from(self.step_size) != 0 {
            return current(groups);
        }
        scaled(groups, self.gamma)
    }

    fn closed_form(&self, c: &Context<'_>) -> Option<Vec<f64>> {
        // Python's floor division: rounded down whatever the signs
        let (e, s) = (i128::from(c.last_epoch), i128::from(self.step_size));
        let k = e.div_euclid(s) - i128::from(s < 0 && e.rem_euclid(s) != 0);
        Some(c.base_lrs.iter().map(|b| b * self.gamma.powf(k as f64)).collect())
    }
}

/// `lr = initial_lr · gamma^(milestones reached)`; a milestone listed twice counts twice.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLr {
    /// The epochs of the decays, increasing.
    pub milestones: Vec<i64>,
    /// The decay factor.
    pub gamma: f64,
}

impl Rule for MultiStepLr {
    /// torch keeps the milestones as a `Counter` (a dict of epoch to count).
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        let mut counts: Vec<(i64, i64)> = Vec::new();
        for &m in &self.milestones {
            match counts.iter_mut().find(|(e, _)| *e == m) {
                Some((_, c)) => *c += 1,
                None => counts.push((m, 1)),
            }
        }
        let counter = counts.into_iter().map(|(e, c)| (Value::Int(e), Value::Int(c))).collect();
        vec![("milestones", Value::Dict(counter)), ("gamma", Value::Float(self.gamma))]
    }

    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let Some(Value::Dict(counter)) = sd.get("milestones") else {
            return Err(SchedulerError("the state dict has no dict 'milestones'".into()));
        };
        let mut milestones = Vec::new();
        for (e, c) in counter {
            let (Value::Int(e), Value::Int(c)) = (e, c) else {
                return Err(SchedulerError("'milestones' of the state dict maps ints to counts".into()));
            };
            milestones.extend(std::iter::repeat_n(*e, (*c).max(0) as usize));
        }
        milestones.sort_unstable();
        (self.milestones, self.gamma) = (milestones, float(sd, "gamma")?);
        Ok(())
    }

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        let times = self.milestones.iter().filter(|&&m| m == c.last_epoch).count();
        if times == 0 {
            return current(groups);
        }
        scaled(groups, self.gamma.powf(times as f64))
    }

    fn closed_form(&self, c: &Context<'_>) -> Option<Vec<f64>> {
        let passed = self.milestones.iter().filter(|&&m| m <= c.last_epoch).count();
        Some(c.base_lrs.iter().map(|b| b * self.gamma.powf(passed as f64)).collect())
    }
}

/// `lr = initial_lr · (factor until total_iters, then 1)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstantLr {
    /// The factor, in [0, 1].
    pub factor: f64,
    /// The scaled epochs.
    pub total_iters: i64,
}

impl Default for ConstantLr {
    fn default() -> Self {
        ConstantLr { factor: 1.0 / 3.0, total_iters: 5 }
    }
}

impl Rule for ConstantLr {
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        vec![("factor", Value::Float(self.factor)), ("total_iters", Value::Int(self.total_iters))]
    }

    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        (self.factor, self.total_iters) = (float(sd, "factor")?, int(sd, "total_iters")?);
        Ok(())
    }

    fn attach(&mut self, _: &mut [ParamGroup], _: i64) -> Result<(), SchedulerError> {
        // torch's test, which lets NaN through
        require(!(self.factor > 1.0 || self.factor < 0.0), || {
            "Constant multiplicative factor expected to be between 0 and 1.".into()
        })
    }

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        if c.last_epoch == 0 {
            return scaled(groups, self.factor);
        }
        if c.last_epoch != self.total_iters {
            return current(groups);
        }
        scaled(groups, 1.0 / self.factor)
    }

    fn closed_form(&self, c: &Context<'_>) -> Option<Vec<f64>> {
        let done = if c.last_epoch >= self.total_iters { 1.0 } else { 0.0 };
        Some(c.base_lrs.iter().map(|b| b * (self.factor + done * (1.0 - self.factor))).collect())
    }
}

/// `lr = initial_lr · (start + (end − start) · min(epoch, total_iters) / total_iters)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearLr {
    /// The factor at epoch 0, in (0, 1].
    pub start_factor: f64,
    /// The factor from `total_iters` on, in [0, 1].
    pub end_factor: f64,
    /// The epochs of the ramp.
    pub total_iters: i64,
}

impl Default for LinearLr {
    fn default() -> Self {
        LinearLr { start_factor: 1.0 / 3.0, end_factor: 1.0, total_iters: 5 }
    }
}

impl Rule for LinearLr {
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("start_factor", Value::Float(self.start_factor)),
            ("end_factor", Value::Float(self.end_factor)),
            ("total_iters", Value::Int(self.total_iters)),
        ]
    }

    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let (start, end, total) = (float(sd, "start_factor")?, float(sd, "end_factor")?, int(sd, "total_iters")?);
        (self.start_factor, self.end_factor, self.total_iters) = (start, end, total);
        Ok(())
    }

    fn attach(&mut self, _: &mut [ParamGroup], _: i64) -> Result<(), SchedulerError> {
        // torch's tests, which let NaN through
        require(!(self.start_factor > 1.0 || self.start_factor <= 0.0), || {
            "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.".into()
        })?;
        require(!(self.end_factor > 1.0 || self.end_factor < 0.0), || {
            "Ending multiplicative factor expected to be between 0 and 1.".into()
        })
    }

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        if c.last_epoch == 0 {
            return scaled(groups, self.start_factor);
        }
        if c.is_initial || c.last_epoch > self.total_iters {
            return current(groups);
        }
        let delta = self.end_factor - self.start_factor;
        let f = 1.0 + delta / (self.total_iters as f64 * self.start_factor + (c.last_epoch - 1) as f64 * delta);
        scaled(groups, f)
    }

    fn closed_form(&self, c: &Context<'_>) -> Option<Vec<f64>> {
        let delta = self.end_factor - self.start_factor;
        let t = self.total_iters.min(c.last_epoch) as f64;
        Some(c.base_lrs.iter().map(|b| b * (self.start_factor + delta * t / self.total_iters as f64)).collect())
    }
}

/// `lr = initial_lr · gamma^epoch`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialLr {
    /// The decay factor per epoch.
    pub gamma: f64,
}

impl Rule for ExponentialLr {
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        vec![("gamma", Value::Float(self.gamma))]
    }

    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        self.gamma = float(sd, "gamma")?;
        Ok(())
    }

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        if c.is_initial {
            return current(groups);
        }
        scaled(groups, self.gamma)
    }

    fn closed_form(&self, c: &Context<'_>) -> Option<Vec<f64>> {
        Some(c.base_lrs.iter().map(|b| b * self.gamma.powf(c.last_epoch as f64)).collect())
    }
}

/// `lr = initial_lr · (1 − min(epoch, total_iters) / total_iters)^power`.
#[derive(Clone, Debug, PartialEq)]
pub struct PolynomialLr {
    /// The decaying epochs.
    pub total_iters: i64,
    /// The power of the polynomial.
    pub power: f64,
}

impl Default for PolynomialLr {
    fn default() -> Self {
        PolynomialLr { total_iters: 5, power: 1.0 }
    }
}

impl Rule for PolynomialLr {
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        vec![("total_iters", Value::Int(self.total_iters)), ("power", Value::Float(self.power))]
    }

    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        (self.total_iters, self.power) = (int(sd, "total_iters")?, float(sd, "power")?);
        Ok(())
    }

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        if c.is_initial || c.last_epoch > self.total_iters {
            return current(groups);
        }
        let n = self.total_iters as f64;
        let e = c.last_epoch as f64;
        let decay = ((1.0 - e / n) / (1.0 - (e - 1.0) / n)).powf(self.power);
        scaled(groups, decay)
    }

    fn closed_form(&self, c: &Context<'_>) -> Option<Vec<f64>> {
        let t = self.total_iters.min(c.last_epoch) as f64;
        Some(c.base_lrs.iter().map(|b| b * (1.0 - t / self.total_iters as f64).powf(self.power)).collect())
    }
}
