//! `_core.lr_rule`: the LR formulas of the Python schedulers, computed by the core
//! crate's [`Rule`]s (`ferroptim::lr_scheduler`), so that each formula is written
//! once.
//!
//! A Python scheduler keeps torch's attributes (its `state_dict`), its step counting
//! and its warnings; its `get_lr` (and `_get_closed_form_lr`) passes those attributes
//! and the groups' current LRs here, and gets the new LRs back. The rule is built
//! afresh from the attributes at every call, so a changed attribute (or a loaded
//! state) takes effect as it does in torch.

use std::sync::{Arc, Mutex};

use ferroptim::lr_scheduler::{
    ConstantLr, Context, CosineAnnealingLr, ExponentialLr, LambdaLr, LinearLr, LrLambda, MultiStepLr, MultiplicativeLr,
    ParamGroup, PolynomialLr, Rule, StepLr,
};
use pyo3::exceptions::{PyArithmeticError, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `hyper[key]`, as a `T`.
fn get<'py, T: FromPyObjectOwned<'py>>(hyper: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
    hyper
        .get_item(key)?
        .ok_or_else(|| PyKeyError::new_err(format!("lr_rule: no '{key}'")))?
        .extract::<T>()
        .map_err(Into::into)
}

/// The first error a Python `lr_lambda` raised; once one has, the others are not
/// called (as a list comprehension stops at its first exception).
type Raised = Arc<Mutex<Option<PyErr>>>;

/// Each Python callable of `hyper["lr_lambdas"]` as an [`LrLambda`] (NaN once one
/// has raised, the error kept in `raised`).
fn lambdas(hyper: &Bound<'_, PyDict>, raised: &Raised) -> PyResult<Vec<LrLambda>> {
    let fns: Vec<Py<PyAny>> = get(hyper, "lr_lambdas")?;
    Ok(fns
        .into_iter()
        .map(|f| {
            let raised = Arc::clone(raised);
            Box::new(move |epoch: i64| -> f64 {
                let mut slot = raised.lock().unwrap_or_else(|e| e.into_inner());
                if slot.is_some() {
                    return f64::NAN;
                }
                // The rule runs inside `lr_rule`, on the thread that holds the GIL.
                Python::attach(|py| match f.call1(py, (epoch,)).and_then(|v| v.extract::<f64>(py)) {
                    Ok(v) => v,
                    Err(e) => {
                        *slot = Some(e);
                        f64::NAN
                    }
                })
            }) as LrLambda
        })
        .collect())
}

/// The rule `kind` with the attributes in `hyper` (torch's names, as the Python class
/// keeps them).
fn rule(kind: &str, hyper: &Bound<'_, PyDict>, raised: &Raised) -> PyResult<Box<dyn Rule>> {
    Ok(match kind {
        "StepLR" => Box::new(StepLr { step_size: get(hyper, "step_size")?, gamma: get(hyper, "gamma")? }),
        "MultiStepLR" => Box::new(MultiStepLr { milestones: get(hyper, "milestones")?, gamma: get(hyper, "gamma")? }),
        "ConstantLR" => Box::new(ConstantLr { factor: get(hyper, "factor")?, total_iters: get(hyper, "total_iters")? }),
        "LinearLR" => Box::new(LinearLr {
            start_factor: get(hyper, "start_factor")?,
            end_factor: get(hyper, "end_factor")?,
            total_iters: get(hyper, "total_iters")?,
        }),
        "ExponentialLR" => Box::new(ExponentialLr { gamma: get(hyper, "gamma")? }),
        "PolynomialLR" => {
            Box::new(PolynomialLr { total_iters: get(hyper, "total_iters")?, power: get(hyper, "power")? })
        }
        "CosineAnnealingLR" => {
            Box::new(CosineAnnealingLr { t_max: get(hyper, "T_max")?, eta_min: get(hyper, "eta_min")? })
        }
        "LambdaLR" => Box::new(LambdaLr { lr_lambdas: lambdas(hyper, raised)? }),
        "MultiplicativeLR" => Box::new(MultiplicativeLr { lr_lambdas: lambdas(hyper, raised)? }),
        _ => return Err(PyValueError::new_err(format!("lr_rule: no rule '{kind}'"))),
    })
}

/// The new LR of each param group by the rule `kind` (a torch scheduler's class name)
/// with the attributes `hyper`: torch's `get_lr`, or with `closed_form` its
/// `_get_closed_form_lr` (None where the rule has none). `lrs` are the groups'
/// current LRs; `last_epoch`, `step_count` and `is_initial` the scheduler's
/// `last_epoch`, `_step_count` and `_is_initial`.
#[pyfunction]
#[pyo3(signature = (kind, hyper, last_epoch, step_count, is_initial, base_lrs, lrs, closed_form=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn lr_rule(
    kind: &str,
    hyper: &Bound<'_, PyDict>,
    last_epoch: i64,
    step_count: u64,
    is_initial: bool,
    base_lrs: Vec<f64>,
    lrs: Vec<f64>,
    closed_form: bool,
) -> PyResult<Option<Vec<f64>>> {
    let raised: Raised = Arc::default();
    let mut rule = rule(kind, hyper, &raised)?;
    let mut groups: Vec<ParamGroup> = lrs.iter().map(|&lr| ParamGroup::new(lr)).collect();
    // Not a fresh start (last_epoch -1 would set the groups' starting LRs): the
    // rule's own checks and per-group values only.
    rule.attach(&mut groups, 0).map_err(|e| PyValueError::new_err(e.0))?;
    let c = Context { last_epoch, step_count, is_initial, base_lrs: &base_lrs };
    let out = if closed_form { rule.closed_form(&c) } else { Some(rule.lrs(&c, &mut groups)) };
    let error = raised.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(new) = &out {
        finite(kind, &lrs, &base_lrs, new)?;
    }
    Ok(out)
}

/// Checks the attributes `hyper` of the rule `kind` for an optimizer of `groups` param
/// groups, as the scheduler's constructor does before it changes anything: a
/// `ValueError` with torch's message.
#[pyfunction]
pub(crate) fn lr_rule_check(kind: &str, hyper: &Bound<'_, PyDict>, groups: usize) -> PyResult<()> {
    let raised: Raised = Arc::default();
    let mut groups = vec![ParamGroup::new(0.0); groups];
    rule(kind, hyper, &raised)?.attach(&mut groups, 0).map_err(|e| PyValueError::new_err(e.0))
}

/// Refuses an LR that a schedule made infinite or NaN from finite LRs: where the rule
/// divides by zero or its power overflows (a `T_max` or `total_iters` of 0, a `factor`
/// of 0, `gamma^epoch` past the largest float), torch's Python arithmetic raises
/// `ZeroDivisionError` or `OverflowError`, both `ArithmeticError`s. A function of the
/// user's (`LambdaLR`, `MultiplicativeLR`) may return any factor, as in torch.
fn finite(kind: &str, lrs: &[f64], base_lrs: &[f64], new: &[f64]) -> PyResult<()> {
    let user_factor = matches!(kind, "LambdaLR" | "MultiplicativeLR");
    let inputs_finite = lrs.iter().chain(base_lrs).all(|x| x.is_finite());
    match new.iter().position(|x| !x.is_finite()) {
        Some(i) if inputs_finite && !user_factor => Err(PyArithmeticError::new_err(format!(
            "{kind}: the schedule gives param group {i} an LR of {} (a division by zero or an overflow in its formula)",
            new[i]
        ))),
        _ => Ok(()),
    }
}
