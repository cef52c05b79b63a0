//! `CosineAnnealingLR` and `CosineAnnealingWarmRestarts` (SGDR).

use std::f64::consts::PI;

use super::state::{self, float, int};
use super::{on_groups, require, with_groups, Context, LrScheduler, ParamGroup, ParamGroups, Rule, SchedulerError};
use crate::state_dict::Value;

/// Cosine annealing from the initial LR to `eta_min` over `t_max` epochs, in torch's
/// recursive form (closed form: `η_min + (η₀ − η_min)(1 + cos(π·epoch/T_max))/2`).
#[derive(Clone, Debug, PartialEq)]
pub struct CosineAnnealingLr {
    /// The half-period, in epochs.
    pub t_max: i64,
    /// The lowest LR.
    pub eta_min: f64,
}

impl Rule for CosineAnnealingLr {
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        vec![("T_max", Value::Int(self.t_max)), ("eta_min", Value::Float(self.eta_min))]
    }

    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let (t_max, eta_min) = (int(sd, "T_max")?, float(sd, "eta_min")?);
        require(t_max != 0, || "Expected nonzero integer T_max, but got 0".into())?;
        (self.t_max, self.eta_min) = (t_max, eta_min);
        Ok(())
    }

    /// Refuses a `t_max` of 0 (torch's formula would divide by zero).
    fn attach(&mut self, _: &mut [ParamGroup], _: i64) -> Result<(), SchedulerError> {
        require(self.t_max != 0, || format!("Expected nonzero integer T_max, but got {}", self.t_max))
    }

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        let (e, t_max, eta_min) = (c.last_epoch as f64, self.t_max as f64, self.eta_min);
        if c.is_initial {
            return groups.iter().map(|g| g.lr).collect();
        }
        if c.step_count == 1 && c.last_epoch > 0 {
            return c.base_lrs.iter().map(|b| eta_min + (b - eta_min) * (1.0 + (e * PI / t_max).cos()) / 2.0).collect();
        }
        let (epoch, half) = (i128::from(c.last_epoch), i128::from(self.t_max));
        if (epoch - 1 - half) % (2 * half) == 0 {
            return groups
                .iter()
                .zip(c.base_lrs)
                .map(|(g, b)| g.lr + (b - eta_min) * (1.0 - (PI / t_max).cos()) / 2.0)
                .collect();
        }
        groups
            .iter()
            .map(|g| {
                (1.0 + (PI * e / t_max).cos()) / (1.0 + (PI * (e - 1.0) / t_max).cos()) * (g.lr - eta_min) + eta_min
            })
            .collect()
    }

    fn closed_form(&self, c: &Context<'_>) -> Option<Vec<f64>> {
        let (e, t_max, eta_min) = (c.last_epoch as f64, self.t_max as f64, self.eta_min);
        Some(c.base_lrs.iter().map(|b| eta_min + (b - eta_min) * (1.0 + (PI * e / t_max).cos()) / 2.0).collect())
    }
}

/// Cosine annealing with warm restarts: `η_min + (η₀ − η_min)(1 + cos(π·T_cur/T_i))/2`,
/// the period `T_i` growing by `t_mult` at each restart; [`Self::step_to`] takes
/// fractional epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct CosineAnnealingWarmRestarts {
    /// The epochs until the first restart.
    pub t_0: i64,
    /// The current period, in epochs.
    pub t_i: f64,
    /// The growth of the period at each restart.
    pub t_mult: i64,
    /// The lowest LR.
    pub eta_min: f64,
    /// The epochs since the last restart (fractional after a fractional `step_to`).
    pub t_cur: f64,
    /// Each group's `initial_lr`.
    pub base_lrs: Vec<f64>,
    /// The epochs stepped since the start (the floor of the last `step_to` epoch).
    pub last_epoch: i64,
    last_lr: Vec<f64>,
}

impl CosineAnnealingWarmRestarts {
    /// Builds the scheduler on `groups` (recording their `initial_lr`) and sets epoch 0.
    pub fn new<G: ParamGroups + ?Sized>(
        groups: &mut G,
        t_0: i64,
        t_mult: i64,
        eta_min: f64,
    ) -> Result<Self, SchedulerError> {
        on_groups(groups, |groups| Self::on(groups, t_0, t_mult, eta_min))
    }

    fn on(groups: &mut [ParamGroup], t_0: i64, t_mult: i64, eta_min: f64) -> Result<Self, SchedulerError> {
        super::warm_restarts_periods(&t_0, &t_mult)?;
        for g in groups.iter_mut() {
            g.initial_lr.get_or_insert(g.lr);
        }
        let base_lrs = groups.iter().map(|g| g.initial_lr.expect("set above")).collect();
        let mut s = CosineAnnealingWarmRestarts {
            t_0,
            t_i: t_0 as f64,
            t_mult,
            eta_min,
            t_cur: -1.0,
            base_lrs,
            last_epoch: -1,
            last_lr: Vec::new(),
        };
        s.initial_step(groups);
        Ok(s)
    }

    /// Goes to `epoch` (fractional epochs allowed: `epoch + i / iters` within one);
    /// a negative one is refused with torch's message, changing nothing.
    pub fn step_to<G: ParamGroups + ?Sized>(&mut self, epoch: f64, groups: &mut G) -> Result<(), SchedulerError> {
        (self.t_cur, self.t_i) = warm_restarts_position(self.t_0, self.t_mult, self.t_i, self.t_cur, Some(epoch))?;
        with_groups(groups, |groups| self.set(epoch.floor() as i64, groups));
        Ok(())
    }

    fn set(&mut self, last_epoch: i64, groups: &mut [ParamGroup]) {
        self.last_epoch = last_epoch;
        for (g, lr) in groups.iter_mut().zip(warm_restarts_lrs(self.eta_min, self.t_cur, self.t_i, &self.base_lrs)) {
            g.lr = lr;
        }
        self.last_lr = groups.iter().map(|g| g.lr).collect();
    }
}

/// Where SGDR stands after one more epoch (`epoch` None) or at `epoch` (fractional
/// epochs allowed), from `t_cur` epochs into a period of `t_i`: the new (`T_cur`,
/// `T_i`), as torch's `CosineAnnealingWarmRestarts.step` computes them. A negative
/// epoch is refused with torch's message.
pub fn warm_restarts_position(
    t_0: i64,
    t_mult: i64,
    t_i: f64,
    t_cur: f64,
    epoch: Option<f64>,
) -> Result<(f64, f64), SchedulerError> {
    let Some(epoch) = epoch else {
        let t_cur = t_cur + 1.0;
        return Ok(if t_cur >= t_i { (t_cur % t_i, t_i * t_mult as f64) } else { (t_cur, t_i) });
    };
    require(epoch >= 0.0, || format!("Expected non-negative epoch, but got {epoch}"))?;
    let (t_0, m) = (t_0 as f64, t_mult as f64);
    Ok(if epoch < t_0 {
        (epoch, t_0)
    } else if t_mult == 1 {
        (epoch % t_0, t_i)
    } else {
        let n = ((epoch / t_0 * (m - 1.0) + 1.0).ln() / m.ln()) as i64;
        (epoch - t_0 * (m.powf(n as f64) - 1.0) / (m - 1.0), t_0 * m.powf(n as f64))
    })
}

/// SGDR's LRs `T_cur` epochs into a period of `T_i`: `η_min + (b − η_min)(1 +
/// cos(π·T_cur/T_i))/2` for each `b` of `base_lrs`.
pub fn warm_restarts_lrs(eta_min: f64, t_cur: f64, t_i: f64, base_lrs: &[f64]) -> Vec<f64> {
    let cos = (PI * t_cur / t_i).cos();
    base_lrs.iter().map(|b| eta_min + (b - eta_min) * (1.0 + cos) / 2.0).collect()
}

impl LrScheduler for CosineAnnealingWarmRestarts {
    /// `T_cur` is saved as an int when it is one (torch's stays an int over whole
    /// epochs); `_step_count` is 0, as torch never counts this scheduler's steps.
    fn state_dict(&self) -> Value {
        let t_cur = if self.t_cur.fract() == 0.0 { Value::Int(self.t_cur as i64) } else { Value::Float(self.t_cur) };
        let mut entries = vec![
            ("T_0", Value::Int(self.t_0)),
            ("T_i", Value::Int(self.t_i as i64)),
            ("T_mult", Value::Int(self.t_mult)),
            ("eta_min", Value::Float(self.eta_min)),
            ("T_cur", t_cur),
        ];
        entries.extend(state::base(&self.base_lrs, self.last_epoch, 0, &self.last_lr));
        Value::dict(entries)
    }

    fn load_state_dict(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let n = self.base_lrs.len();
        let (t_0, t_i, t_mult) = (int(sd, "T_0")?, float(sd, "T_i")?, int(sd, "T_mult")?);
        super::warm_restarts_periods(&t_0, &t_mult)?;
        let (eta_min, t_cur, last_epoch) = (float(sd, "eta_min")?, float(sd, "T_cur")?, int(sd, "last_epoch")?);
        let (base_lrs, last_lr) = (state::floats(sd, "base_lrs", n)?, state::floats(sd, "_last_lr", n)?);
        (self.t_0, self.t_i, self.t_mult, self.eta_min, self.t_cur) = (t_0, t_i, t_mult, eta_min, t_cur);
        (self.base_lrs, self.last_lr, self.last_epoch) = (base_lrs, last_lr, last_epoch);
        Ok(())
    }

    fn step_groups(&mut self, groups: &mut [ParamGroup]) {
        if self.last_epoch < 0 {
            return self.step_to(0.0, groups).expect("epoch 0 is not negative");
        }
        (self.t_cur, self.t_i) = warm_restarts_position(self.t_0, self.t_mult, self.t_i, self.t_cur, None)
            .expect("only an epoch given can be negative");
        self.set(self.last_epoch + 1, groups);
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
        // torch's `_update_lr(0)` on this scheduler: the chainable form at epoch 0
        self.last_epoch = 0;
        self.set(0, groups);
    }

    fn initial_step(&mut self, groups: &mut [ParamGroup]) {
        self.step(groups);
    }
}
