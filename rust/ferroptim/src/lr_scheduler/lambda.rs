//! `LambdaLR` and `MultiplicativeLR`: schedules given as functions of the epoch.

use super::{Context, ParamGroup, Rule, SchedulerError};
use crate::state_dict::Value;

/// A factor as a function of the epoch.
pub type LrLambda = Box<dyn FnMut(i64) -> f64 + Send>;

fn check_count(lambdas: &[LrLambda], groups: &[ParamGroup]) -> Result<(), SchedulerError> {
    match lambdas.len() {
        1 => Ok(()),
        n => super::check_lambda_count(n, groups.len()),
    }
}

/// The function of group `i` (one for all, or one per group).
fn lambda_of(lambdas: &mut [LrLambda], i: usize) -> &mut LrLambda {
    let k = if lambdas.len() == 1 { 0 } else { i };
    &mut lambdas[k]
}

/// What LambdaLR and MultiplicativeLR have alike: their lambdas (checked against the
/// groups), and no attributes of their own in a state dict (torch saves `None` for a
/// function, as the schedule does for each group).
macro_rules! lambda_rule {
    () => {
        fn has_lambdas(&self) -> bool {
            true
        }

        fn state_entries(&self) -> Vec<(&'static str, Value)> {
            Vec::new()
        }

        fn load_entries(&mut self, _: &Value) -> Result<(), SchedulerError> {
            Ok(())
        }

        fn attach(&mut self, groups: &mut [ParamGroup], _: i64) -> Result<(), SchedulerError> {
            check_count(&self.lr_lambdas, groups)
        }
    };
}

/// `lr = initial_lr · f(epoch)`.
pub struct LambdaLr {
    /// `f`: one for every group, or one per group.
    pub lr_lambdas: Vec<LrLambda>,
}

impl Rule for LambdaLr {
    lambda_rule!();

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        (0..groups.len()).map(|i| c.base_lrs[i] * lambda_of(&mut self.lr_lambdas, i)(c.last_epoch)).collect()
    }
}

/// `lr ← lr · f(epoch)` at every step after the first.
pub struct MultiplicativeLr {
    /// `f`: one for every group, or one per group.
    pub lr_lambdas: Vec<LrLambda>,
}

impl Rule for MultiplicativeLr {
    lambda_rule!();

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        if c.is_initial {
            return groups.iter().map(|g| g.lr).collect();
        }
        (0..groups.len()).map(|i| groups[i].lr * lambda_of(&mut self.lr_lambdas, i)(c.last_epoch)).collect()
    }
}
