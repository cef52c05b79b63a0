//! `SWALR`: anneal the LR to a fixed SWA LR (`torch.optim.swa_utils.SWALR`).

use std::f64::consts::PI;

use super::state::{int, string};
use super::{per_group, Context, ParamGroup, Rule, SchedulerError};
use crate::state_dict::Value;

/// Anneals each group's LR to `swa_lr` over `anneal_epochs` epochs, then keeps it:
/// `lr = swa_lr·α + lr₀·(1 − α)`, `α = (1 − cos(π t))/2` (cosine) or `t` (linear),
/// `t = min(1, step / max(1, anneal_epochs))`.
#[derive(Clone, Debug, PartialEq)]
pub struct SwaLr {
    /// One value, or one per group.
    pub swa_lr: Vec<f64>,
    /// The epochs of the annealing (0: the SWA LR at once).
    pub anneal_epochs: i64,
    /// Cosine annealing (else linear).
    pub cos: bool,
    swa_lrs: Vec<f64>,
}

impl SwaLr {
    /// Anneals to `swa_lr` (one value, or one per group) over `anneal_epochs`, along a
    /// cosine if `cos`, else linearly.
    pub fn new(swa_lr: Vec<f64>, anneal_epochs: i64, cos: bool) -> Self {
        SwaLr { swa_lr, anneal_epochs, cos, swa_lrs: Vec::new() }
    }

    fn alpha(&self, t: f64) -> f64 {
        swa_alpha(self.cos, t)
    }
}

/// SWALR's share of the SWA LR at annealing progress `t` in [0, 1]: `(1 − cos(π t))/2`
/// with `cos`, else `t` (torch's `anneal_func`).
pub fn swa_alpha(cos: bool, t: f64) -> f64 {
    if cos {
        (1.0 - (PI * t).cos()) / 2.0
    } else {
        t
    }
}

impl Rule for SwaLr {
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        let strategy = if self.cos { super::Anneal::Cos } else { super::Anneal::Linear }.name();
        vec![("_anneal_strategy", Value::Str(strategy.into())), ("anneal_epochs", Value::Int(self.anneal_epochs))]
    }

    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let cos = string(sd, "_anneal_strategy")?.parse::<super::Anneal>()? == super::Anneal::Cos;
        (self.cos, self.anneal_epochs) = (cos, int(sd, "anneal_epochs")?);
        Ok(())
    }

    fn attach(&mut self, groups: &mut [ParamGroup], _: i64) -> Result<(), SchedulerError> {
        self.swa_lrs = per_group("swa_lr", &self.swa_lr, groups.len())?;
        super::swa_anneal_epochs(&self.anneal_epochs).map(drop)
    }

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        let mut step = c.step_count as i64 - 1;
        if self.anneal_epochs == 0 {
            step = step.max(1);
        }
        let span = self.anneal_epochs.max(1) as f64;
        let prev_alpha = self.alpha(((step - 1) as f64 / span).clamp(0.0, 1.0));
        let alpha = self.alpha((step as f64 / span).clamp(0.0, 1.0));
        groups
            .iter()
            .zip(&self.swa_lrs)
            .map(|(g, &swa)| {
                let lr0 = if prev_alpha == 1.0 { swa } else { (g.lr - prev_alpha * swa) / (1.0 - prev_alpha) };
                swa * alpha + lr0 * (1.0 - alpha)
            })
            .collect()
    }
}
