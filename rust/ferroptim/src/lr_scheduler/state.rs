//! Schedulers' state dicts in torch's layout (the Python package's): each scheduler's
//! attributes under torch's names, so that a Rust program and a Python one resume
//! each other's schedules (with `crate::state_dict::{save, load}`).
//!
//! As in torch, a state dict holds the schedule's position, not what the optimizer's
//! param groups hold (CyclicLR's and OneCycleLR's bounds, SWALR's `swa_lr`) nor the
//! LR lambdas: a program resumes by building the same scheduler, then loading it.

use super::SchedulerError;
use crate::state_dict::Value;

fn missing(key: &str, what: &str, v: Option<&Value>) -> SchedulerError {
    match v {
        None => SchedulerError(format!("the scheduler's state dict has no '{key}'")),
        Some(v) => SchedulerError(format!("'{key}' of the scheduler's state dict is a {}, not {what}", v.type_name())),
    }
}

/// `sd[key]`, an int.
pub(crate) fn int(sd: &Value, key: &str) -> Result<i64, SchedulerError> {
    match sd.get(key) {
        Some(Value::Int(i)) => Ok(*i),
        v => Err(missing(key, "an int", v)),
    }
}

/// `sd[key]`, a number.
pub(crate) fn float(sd: &Value, key: &str) -> Result<f64, SchedulerError> {
    sd.get(key).and_then(Value::as_f64).ok_or_else(|| missing(key, "a number", sd.get(key)))
}

/// `sd[key]`, a boolean.
pub(crate) fn boolean(sd: &Value, key: &str) -> Result<bool, SchedulerError> {
    match sd.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        v => Err(missing(key, "a bool", v)),
    }
}

/// `sd[key]`, a string.
pub(crate) fn string<'a>(sd: &'a Value, key: &str) -> Result<&'a str, SchedulerError> {
    match sd.get(key) {
        Some(Value::Str(s)) => Ok(s),
        v => Err(missing(key, "a str", v)),
    }
}

/// `sd[key]`, a list of `len` numbers (one per group).
pub(crate) fn floats(sd: &Value, key: &str, len: usize) -> Result<Vec<f64>, SchedulerError> {
    let v = sd.get(key);
    let values: Option<Vec<f64>> = v.and_then(Value::items).and_then(|xs| xs.iter().map(Value::as_f64).collect());
    match values {
        Some(xs) if xs.len() == len => Ok(xs),
        Some(xs) => Err(SchedulerError(format!(
            "'{key}' of the scheduler's state dict has {} values, the scheduler's groups {len}",
            xs.len()
        ))),
        None => Err(missing(key, "a list of numbers", v)),
    }
}

/// A list of floats.
pub(crate) fn list(xs: &[f64]) -> Value {
    Value::List(xs.iter().map(|&x| Value::Float(x)).collect())
}

/// The entries torch's `LRScheduler` base class keeps.
pub(crate) fn base(base_lrs: &[f64], last_epoch: i64, step_count: u64, last_lr: &[f64]) -> Vec<(&'static str, Value)> {
    vec![
        ("base_lrs", list(base_lrs)),
        ("last_epoch", Value::Int(last_epoch)),
        ("_step_count", Value::Int(step_count as i64)),
        ("_is_initial", Value::Bool(false)),
        ("_get_lr_called_within_step", Value::Bool(false)),
        ("_last_lr", list(last_lr)),
    ]
}
