//! The constructor checks of the schedulers torch checks argument by argument
//! (`CyclicLR`, `OneCycleLR`, `CosineAnnealingWarmRestarts`, `ReduceLROnPlateau`,
//! `SWALR`; the counts of `LambdaLR`'s functions and of the composites' schedulers;
//! every scheduler's resumption), with torch's messages. The Rust schedulers make them, and the Python
//! package's classes ask for them (`_core.check_scheduler`): each is written once.
//!
//! torch refuses a value of the wrong type (a float `T_0`, an int `pct_start`) with the
//! message of an out-of-range one; a [`Given`] says which type a caller gave.

use std::fmt;
use std::str::FromStr;

use super::{require, Anneal, CyclicMode, PlateauMode, SchedulerError, ThresholdMode};

/// The message of a division by zero in a schedule's formula, as Python's
/// `ZeroDivisionError` gives it: torch refuses a CyclicLR whose cycle has no length,
/// and a OneCycleLR whose `div_factor` or `final_div_factor` is 0, when it is built.
pub const DIVISION_BY_ZERO: &str = "float division by zero";

/// An argument as its caller gave it: an `i64` or an `f64` in Rust, or a value of
/// another language's, which may be neither (a Python `str`, or a NumPy scalar, which
/// torch's `isinstance` checks refuse). Displayed as that caller spells it.
pub trait Given: fmt::Display {
    /// Its value if it is an integer (a Python `int`, `bool` included).
    fn int(&self) -> Option<i64>;
    /// Its value if it is a float (a Python `float`).
    fn float(&self) -> Option<f64>;
    /// How the caller names its type, for the messages that quote it.
    fn type_name(&self) -> String;
}

impl Given for i64 {
    fn int(&self) -> Option<i64> {
        Some(*self)
    }

    fn float(&self) -> Option<f64> {
        None
    }

    fn type_name(&self) -> String {
        "i64".into()
    }
}

impl Given for f64 {
    fn int(&self) -> Option<i64> {
        None
    }

    fn float(&self) -> Option<f64> {
        Some(*self)
    }

    fn type_name(&self) -> String {
        "f64".into()
    }
}

/// A scheduler resumed (built with `last_epoch` other than -1) on param groups of
/// which `has_initial_lr` says whether each has an `initial_lr`: every one needs it
/// (torch raises this message as a `KeyError`).
pub fn check_initial_lrs(has_initial_lr: impl IntoIterator<Item = bool>) -> Result<(), SchedulerError> {
    match has_initial_lr.into_iter().position(|has| !has) {
        None => Ok(()),
        Some(i) => Err(SchedulerError(format!(
            "param 'initial_lr' is not specified in param_groups[{i}] when resuming scheduler with last_epoch >= 0.\n\
             This typically happens when:\n\
             1. You're trying to resume training from a checkpoint but haven't properly loaded the optimizer state\n\
             2. You're using last_epoch >= 0 for a fresh training run (not recommended)"
        ))),
    }
}

/// LambdaLR's and MultiplicativeLR's `lr_lambda` given as a list of `given`
/// functions for `groups` param groups: one per group.
pub fn check_lambda_count(given: usize, groups: usize) -> Result<(), SchedulerError> {
    require(given == groups, || format!("Expected {groups} lr_lambdas, but got {given}"))
}

/// A composite scheduler (its class named `name`: SequentialLR, with `what`
/// "scheduler", or ChainedScheduler, "scheduler to be chained") of `schedulers`
/// schedulers: at least one.
pub fn check_schedulers_given(name: &str, what: &str, schedulers: usize) -> Result<(), SchedulerError> {
    require(schedulers >= 1, || format!("{name} expects at least one {what}, but got no scheduler."))
}

/// SequentialLR's milestones: one fewer than its schedulers.
pub fn check_milestones(schedulers: usize, milestones: usize) -> Result<(), SchedulerError> {
    require(milestones + 1 == schedulers, || {
        format!(
            "Sequential Schedulers expects number of schedulers provided to be one more than the number of \
             milestone points, but got number of schedulers {schedulers} and the number of milestones to be equal \
             to {milestones}"
        )
    })
}

/// torch's `_format_param`: a list of `given` values named `name` for `groups` param
/// groups must have one per group.
pub fn check_group_count(name: &str, given: usize, groups: usize) -> Result<(), SchedulerError> {
    require(given == groups, || {
        format!(
            "{name} must have the same length as optimizer.param_groups. {name} has {given} values, param_groups has {groups}."
        )
    })
}

/// An integer above 0 (OneCycleLR's `total_steps`, `epochs` and `steps_per_epoch`,
/// CosineAnnealingWarmRestarts' `T_0`).
pub fn positive_int(name: &str, v: &impl Given) -> Result<i64, SchedulerError> {
    match v.int() {
        Some(n) if n > 0 => Ok(n),
        _ => Err(SchedulerError(format!("Expected positive integer {name}, but got {v}"))),
    }
}

/// OneCycleLR's length: `total_steps`, or else `epochs · steps_per_epoch`.
pub fn one_cycle_total_steps<G: Given>(
    total_steps: Option<&G>,
    epochs: Option<&G>,
    steps_per_epoch: Option<&G>,
) -> Result<i64, SchedulerError> {
    match (total_steps, epochs, steps_per_epoch) {
        (Some(total), _, _) => positive_int("total_steps", total),
        (None, Some(epochs), Some(per_epoch)) => {
            let epochs = positive_int("epochs", epochs)?;
            Ok(epochs.saturating_mul(positive_int("steps_per_epoch", per_epoch)?))
        }
        _ => Err(SchedulerError("You must define either total_steps OR (epochs AND steps_per_epoch)".into())),
    }
}

/// OneCycleLR's `pct_start`: a float in [0, 1] (NaN passes torch's comparisons).
pub fn one_cycle_pct_start(v: &impl Given) -> Result<f64, SchedulerError> {
    match v.float() {
        Some(x) if x.is_nan() || (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(SchedulerError(format!("Expected float between 0 and 1 pct_start, but got {v}"))),
    }
}

/// OneCycleLR's (`initial_lr`, `min_lr`) of a group peaking at `max_lr`, refused
/// (with [`DIVISION_BY_ZERO`]) where a divisor is 0.
pub fn one_cycle_lr_points_checked(
    max_lr: f64,
    div_factor: f64,
    final_div_factor: f64,
) -> Result<(f64, f64), SchedulerError> {
    require(div_factor != 0.0 && final_div_factor != 0.0, || DIVISION_BY_ZERO.into())?;
    Ok(super::one_cycle_lr_points(max_lr, div_factor, final_div_factor))
}

/// CyclicLR's (`total_size`, `step_ratio`), refused (with [`DIVISION_BY_ZERO`]) for
/// a cycle of no length.
pub fn cyclic_size_checked(step_size_up: f64, step_size_down: Option<f64>) -> Result<(f64, f64), SchedulerError> {
    require(step_size_up + step_size_down.unwrap_or(step_size_up) != 0.0, || DIVISION_BY_ZERO.into())?;
    Ok(super::cyclic_size(step_size_up, step_size_down))
}

/// A CyclicLR cycle of `total_size` iterations rising for the fraction `step_ratio`,
/// refused where torch's first step fails (its constructor's, after the other
/// checks): one that never rises divides by zero ([`DIVISION_BY_ZERO`]); one of NaN
/// length has no cycle number (Python's `math.floor(nan)`).
pub fn check_cycle(total_size: f64, step_ratio: f64) -> Result<(), SchedulerError> {
    require(!total_size.is_nan(), || "cannot convert float NaN to integer".into())?;
    require(step_ratio != 0.0, || DIVISION_BY_ZERO.into())
}

/// CyclicLR's built-in `mode` by torch's name (without a `scale_fn`); `gamma` is
/// read for "exp_range" only.
pub fn cyclic_mode<E: From<SchedulerError>>(
    name: &str,
    gamma: impl FnOnce() -> Result<f64, E>,
) -> Result<CyclicMode, E> {
    Ok(match name {
        "triangular" => CyclicMode::Triangular,
        "triangular2" => CyclicMode::Triangular2,
        "exp_range" => CyclicMode::ExpRange { gamma: gamma()? },
        _ => return Err(SchedulerError("mode is invalid and scale_fn is None".into()).into()),
    })
}

/// CyclicLR and OneCycleLR with `cycle_momentum` need an optimizer with a momentum
/// (or Adam's `betas`) to cycle.
pub fn check_momentum(has_momentum: bool) -> Result<(), SchedulerError> {
    require(has_momentum, || "optimizer must support momentum or beta1 with `cycle_momentum` option enabled".into())
}

/// CosineAnnealingWarmRestarts' (`T_0`, `T_mult`): integers, above 0 and at least 1.
pub fn warm_restarts_periods(t_0: &impl Given, t_mult: &impl Given) -> Result<(i64, i64), SchedulerError> {
    let t_0 = positive_int("T_0", t_0)?;
    match t_mult.int() {
        Some(m) if m >= 1 => Ok((t_0, m)),
        _ => Err(SchedulerError(format!("Expected integer T_mult >= 1, but got {t_mult}"))),
    }
}

/// CosineAnnealingWarmRestarts' `eta_min`: a float or an int.
pub fn warm_restarts_eta_min(v: &impl Given) -> Result<f64, SchedulerError> {
    match (v.float(), v.int()) {
        (Some(x), _) => Ok(x),
        (None, Some(n)) => Ok(n as f64),
        _ => Err(SchedulerError(format!("Expected float or int eta_min, but got {v} of type {}", v.type_name()))),
    }
}

/// ReduceLROnPlateau's `factor`: below 1 (NaN passes torch's comparison).
pub fn plateau_factor(factor: f64) -> Result<(), SchedulerError> {
    require(factor < 1.0 || factor.is_nan(), || "Factor should be < 1.0.".into())
}

/// ReduceLROnPlateau's `min_lr` given as a list of `given` values: one per group.
pub fn plateau_min_lr_count(given: usize, groups: usize) -> Result<(), SchedulerError> {
    require(given == groups, || format!("expected {groups} min_lrs, got {given}"))
}

/// SWALR's `anneal_epochs`: an integer, 0 or more.
pub fn swa_anneal_epochs(v: &impl Given) -> Result<i64, SchedulerError> {
    match v.int() {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(SchedulerError(format!("anneal_epochs must be equal or greater than 0, got {v}"))),
    }
}

/// `FromStr` by torch's names, refusing any other with torch's message (`$s` the
/// name given), and `name()`, the variant's torch name.
macro_rules! torch_names {
    ($t:ty, $what:literal { $($v:ident => $n:literal),+ }, |$s:ident| $message:expr) => {
        impl FromStr for $t {
            type Err = SchedulerError;

            #[doc = concat!("From torch's names of ", $what, ": ", $("\"", $n, "\" "),+)]
            fn from_str($s: &str) -> Result<Self, SchedulerError> {
                match $s {
                    $($n => Ok(Self::$v),)+
                    _ => Err(SchedulerError($message)),
                }
            }
        }

        impl $t {
            #[doc = concat!("torch's name of ", $what, ".")]
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$v => $n),+
                }
            }
        }
    };
}

torch_names!(PlateauMode, "ReduceLROnPlateau's `mode`" { Min => "min", Max => "max" }, |s| format!(
    "mode {s} is unknown!"
));
torch_names!(ThresholdMode, "ReduceLROnPlateau's `threshold_mode`" { Rel => "rel", Abs => "abs" }, |s| format!(
    "threshold mode {s} is unknown!"
));
torch_names!(Anneal, "OneCycleLR's and SWALR's `anneal_strategy`" { Cos => "cos", Linear => "linear" }, |s| format!(
    "anneal_strategy must be one of 'cos' or 'linear', instead got {s}"
));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_refuse_with_torchs_messages() {
        let message = |r: Result<i64, SchedulerError>| r.unwrap_err().0;
        assert_eq!(message(positive_int("T_0", &0)), "Expected positive integer T_0, but got 0");
        assert_eq!(message(positive_int("T_0", &2.0)), "Expected positive integer T_0, but got 2");
        assert_eq!(
            message(one_cycle_total_steps::<i64>(None, Some(&2), None)),
            "You must define either total_steps OR (epochs AND steps_per_epoch)"
        );
        assert_eq!(message(one_cycle_total_steps(None, Some(&2), Some(&-1))), {
            "Expected positive integer steps_per_epoch, but got -1"
        });
        assert_eq!(one_cycle_total_steps(Some(&9), Some(&-1), None), Ok(9));
        assert_eq!(one_cycle_total_steps(None, Some(&2), Some(&3)), Ok(6));
        assert!(one_cycle_pct_start(&f64::NAN).is_ok());
        assert!(one_cycle_pct_start(&1.0).is_ok() && one_cycle_pct_start(&1.5).is_err());
        assert!(one_cycle_pct_start(&1).is_err(), "an int is refused, as torch refuses it");
        assert_eq!(warm_restarts_periods(&3, &1), Ok((3, 1)));
        assert_eq!(warm_restarts_periods(&3, &0).unwrap_err().0, "Expected integer T_mult >= 1, but got 0");
        assert_eq!(warm_restarts_eta_min(&2), Ok(2.0));
        assert!(plateau_factor(f64::NAN).is_ok() && plateau_factor(1.0).is_err());
        assert_eq!(swa_anneal_epochs(&-1).unwrap_err().0, "anneal_epochs must be equal or greater than 0, got -1");
        assert_eq!(cyclic_size_checked(0.0, None).unwrap_err().0, DIVISION_BY_ZERO);
        assert_eq!(cyclic_size_checked(2.0, Some(-2.0)).unwrap_err().0, DIVISION_BY_ZERO);
        assert_eq!(cyclic_size_checked(2.0, Some(6.0)), Ok((8.0, 0.25)));
        let cycle = |up: f64, down: f64| cyclic_size_checked(up, Some(down)).and_then(|(t, r)| check_cycle(t, r));
        assert_eq!(cycle(0.0, 5.0).unwrap_err().0, DIVISION_BY_ZERO);
        assert_eq!(cycle(2.0, f64::INFINITY).unwrap_err().0, DIVISION_BY_ZERO);
        assert_eq!(cycle(f64::NAN, 1.0).unwrap_err().0, "cannot convert float NaN to integer");
        assert_eq!(cycle(2.0, 0.0), Ok(()));
        assert_eq!(one_cycle_lr_points_checked(0.1, 25.0, 0.0).unwrap_err().0, DIVISION_BY_ZERO);
        let gamma = |g: f64| move || Ok::<f64, SchedulerError>(g);
        assert!(cyclic_mode("sawtooth", gamma(1.0)).is_err());
        assert!(matches!(cyclic_mode("exp_range", gamma(0.5)), Ok(CyclicMode::ExpRange { gamma }) if gamma == 0.5));
        assert_eq!("x".parse::<ThresholdMode>().unwrap_err().0, "threshold mode x is unknown!");
        assert_eq!("avg".parse::<PlateauMode>().unwrap_err().0, "mode avg is unknown!");
        assert_eq!("linear".parse::<Anneal>(), Ok(Anneal::Linear));
        assert_eq!(check_group_count("base_lr", 1, 2).unwrap_err().0, {
            "base_lr must have the same length as optimizer.param_groups. base_lr has 1 values, param_groups has 2."
        });
    }
}
