//! `_core.lr_rule` and its companions: the arithmetic of the Python schedulers,
//! computed by the core crate's [`Rule`]s and scheduler functions
//! (`ferroptim::lr_scheduler`, which the Rust schedulers use too), so that each
//! formula is written once.
//!
//! A Python scheduler keeps torch's attributes (its `state_dict`), its step counting
//! and its warnings; its `get_lr` (and `_get_closed_form_lr`) passes those attributes
//! and the groups' current LRs here, and gets the new LRs back. The rule is built
//! afresh from the attributes at every call, so a changed attribute (or a loaded
//! state) takes effect as it does in torch.

use std::sync::{Arc, Mutex};

use ferroptim::lr_scheduler::{
    cyclic_lrs, one_cycle_lrs, warm_restarts_lrs, Anneal, ConstantLr, Context, CosineAnnealingLr, CyclicMode,
    ExponentialLr, LambdaLr, LinearLr, LrLambda, MultiStepLr, MultiplicativeLr, OneCyclePoints, ParamGroup,
    PlateauMode, PolynomialLr, Rule, ScaleMode, StepLr, SwaLr, ThresholdMode, ONE_CYCLE_POINTS,
};
use pyo3::exceptions::{PyArithmeticError, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyTuple};

use crate::check_scheduler::{refused, PyRefusal};

/// `hyper[key]`, as a `T`.
fn get<'py, T: FromPyObjectOwned<'py>>(hyper: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
    hyper
        .get_item(key)?
        .ok_or_else(|| PyKeyError::new_err(format!("lr_rule: no '{key}'")))?
        .extract::<T>()
        .map_err(Into::into)
}

/// `hyper[key]`, a whole number: an int, or a float without a fraction (an epoch
/// count computed as `epochs / 10`), which torch's arithmetic treats as the int.
fn whole(hyper: &Bound<'_, PyDict>, key: &str) -> PyResult<i64> {
    whole_of(&get::<Bound<'_, PyAny>>(hyper, key)?)
}

/// Each entry of the list `hyper[key]` as a whole number (see [`whole`]).
fn wholes(hyper: &Bound<'_, PyDict>, key: &str) -> PyResult<Vec<i64>> {
    get::<Vec<Bound<'_, PyAny>>>(hyper, key)?.iter().map(whole_of).collect()
}

fn whole_of(v: &Bound<'_, PyAny>) -> PyResult<i64> {
    v.extract::<i64>().or_else(|not_int| match v.extract::<f64>() {
        Ok(x) if x.fract() == 0.0 && x.abs() < 2f64.powi(63) => Ok(x as i64),
        _ => Err(not_int),
    })
}

/// The first error a Python function of the schedule (an `lr_lambda`, a `scale_fn`)
/// raised; once one has, no other is called (as torch's list comprehensions stop at
/// their first exception).
type Raised = Arc<Mutex<Option<PyErr>>>;

/// The Python function `f` of one int (an epoch, a cycle number) as a Rust function
/// of `x` (a whole number): NaN once `raised` holds an error, which a failed call
/// puts there.
fn py_function(f: Py<PyAny>, raised: &Raised) -> impl FnMut(f64) -> f64 + Send + 'static {
    let raised = Arc::clone(raised);
    move |x: f64| -> f64 {
        let mut slot = raised.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return f64::NAN;
        }
        // The rule runs inside `lr_rule`, on the thread that holds the GIL.
        Python::attach(|py| match f.call1(py, (x as i64,)).and_then(|v| v.extract::<f64>(py)) {
            Ok(v) => v,
            Err(e) => {
                *slot = Some(e);
                f64::NAN
            }
        })
    }
}

/// Each Python callable of `hyper["lr_lambdas"]` as an [`LrLambda`].
fn lambdas(hyper: &Bound<'_, PyDict>, raised: &Raised) -> PyResult<Vec<LrLambda>> {
    let fns: Vec<Py<PyAny>> = get(hyper, "lr_lambdas")?;
    Ok(fns
        .into_iter()
        .map(|f| {
            let mut f = py_function(f, raised);
            Box::new(move |epoch: i64| f(epoch as f64)) as LrLambda
        })
        .collect())
}

/// The rule `kind` with the attributes in `hyper` (torch's names, as the Python class
/// keeps them).
fn rule(kind: &str, hyper: &Bound<'_, PyDict>, raised: &Raised) -> PyResult<Box<dyn Rule>> {
    Ok(match kind {
        "StepLR" => Box::new(StepLr { step_size: whole(hyper, "step_size")?, gamma: get(hyper, "gamma")? }),
        "MultiStepLR" => {
            Box::new(MultiStepLr { milestones: wholes(hyper, "milestones")?, gamma: get(hyper, "gamma")? })
        }
        "ConstantLR" => {
            Box::new(ConstantLr { factor: get(hyper, "factor")?, total_iters: whole(hyper, "total_iters")? })
        }
        "LinearLR" => Box::new(LinearLr {
            start_factor: get(hyper, "start_factor")?,
            end_factor: get(hyper, "end_factor")?,
            total_iters: whole(hyper, "total_iters")?,
        }),
        "ExponentialLR" => Box::new(ExponentialLr { gamma: get(hyper, "gamma")? }),
        "PolynomialLR" => {
            Box::new(PolynomialLr { total_iters: whole(hyper, "total_iters")?, power: get(hyper, "power")? })
        }
        "CosineAnnealingLR" => {
            Box::new(CosineAnnealingLr { t_max: whole(hyper, "T_max")?, eta_min: get(hyper, "eta_min")? })
        }
        "LambdaLR" => Box::new(LambdaLr { lr_lambdas: lambdas(hyper, raised)? }),
        "MultiplicativeLR" => Box::new(MultiplicativeLr { lr_lambdas: lambdas(hyper, raised)? }),
        "SWALR" => Box::new(SwaLr::new(
            get(hyper, "swa_lrs")?,
            get(hyper, "anneal_epochs")?,
            get::<String>(hyper, "anneal_strategy")? == "cos",
        )),
        _ => return Err(PyValueError::new_err(format!("lr_rule: no rule '{kind}'"))),
    })
}

/// CyclicLR's amplitude policy: `hyper["scale_fn"]` (a Python callable, given the
/// cycle or the iteration as `hyper["scale_mode"]` says), or with None the built-in
/// `hyper["mode"]`.
fn cyclic_mode(hyper: &Bound<'_, PyDict>, raised: &Raised) -> PyResult<CyclicMode> {
    if let Some(f) = get::<Option<Py<PyAny>>>(hyper, "scale_fn")? {
        let mode = match get::<String>(hyper, "scale_mode")?.as_str() {
            "cycle" => ScaleMode::Cycle,
            _ => ScaleMode::Iterations,
        };
        return Ok(CyclicMode::Custom(Box::new(py_function(f, raised)), mode));
    }
    builtin_mode(&get::<String>(hyper, "mode")?, || get(hyper, "gamma"))
}

/// CyclicLR's built-in `mode`, its `gamma` asked for "exp_range" only.
fn builtin_mode(mode: &str, gamma: impl FnOnce() -> PyResult<f64>) -> PyResult<CyclicMode> {
    ferroptim::lr_scheduler::cyclic_mode(mode, || gamma().map_err(PyRefusal)).map_err(|e| e.0)
}

/// CyclicLR's `scale_fn(x)` for its built-in `mode` (x the cycle number, or the
/// iteration for "exp_range").
#[pyfunction]
pub(crate) fn cyclic_scale(mode: &str, gamma: f64, x: f64) -> PyResult<f64> {
    Ok(builtin_mode(mode, || Ok(gamma))?.scale(x, x))
}

/// CyclicLR's (`total_size`, `step_ratio`) for `step_size_up` iterations up and
/// `step_size_down` (None: as many) down.
#[pyfunction]
#[pyo3(signature = (step_size_up, step_size_down=None))]
pub(crate) fn cyclic_size(step_size_up: f64, step_size_down: Option<f64>) -> (f64, f64) {
    ferroptim::lr_scheduler::cyclic_size(step_size_up, step_size_down)
}

/// OneCycleLR's (`initial_lr`, `min_lr`) of a group peaking at `max_lr`.
#[pyfunction]
pub(crate) fn one_cycle_lr_points(max_lr: f64, div_factor: f64, final_div_factor: f64) -> (f64, f64) {
    ferroptim::lr_scheduler::one_cycle_lr_points(max_lr, div_factor, final_div_factor)
}

/// torch's `CyclicLR.get_lr` from the class's attributes in `hyper`.
fn cyclic(hyper: &Bound<'_, PyDict>, last_epoch: i64, base_lrs: &[f64], raised: &Raised) -> PyResult<Lrs> {
    let mut mode = cyclic_mode(hyper, raised)?;
    let max_lrs: Vec<f64> = get(hyper, "max_lrs")?;
    let momentum: Option<(Vec<f64>, Vec<f64>)> = get(hyper, "momentum")?;
    let momentum = momentum.as_ref().map(|(b, m)| (&b[..], &m[..]));
    let (total, ratio) = (get(hyper, "total_size")?, get(hyper, "step_ratio")?);
    Ok(cyclic_lrs(last_epoch, total, ratio, &mut mode, base_lrs, &max_lrs, momentum))
}

/// The index of a [`OneCyclePoints`] name.
fn point(name: &str) -> PyResult<usize> {
    ONE_CYCLE_POINTS
        .iter()
        .position(|&n| n == name)
        .ok_or_else(|| PyValueError::new_err(format!("OneCycleLR: no point '{name}'")))
}

/// torch's `OneCycleLR.get_lr` from the class's attributes in `hyper` (its
/// `_schedule_phases`, and the points read from its optimizer's param groups).
fn one_cycle(hyper: &Bound<'_, PyDict>, last_epoch: i64) -> PyResult<Lrs> {
    // Python's truth, as torch's `if self.cycle_momentum`
    let cycle_momentum = get::<Bound<'_, PyAny>>(hyper, "cycle_momentum")?.is_truthy()?;
    let mut phases = Vec::new();
    for p in get::<Vec<Bound<'_, PyDict>>>(hyper, "phases")? {
        let name = |key: &str| get::<String>(&p, key).and_then(|n| point(&n));
        phases.push((
            get(&p, "end_step")?,
            (name("start_lr")?, name("start_momentum")?),
            (name("end_lr")?, name("end_momentum")?),
        ));
    }
    let mut points = Vec::new();
    for g in get::<Vec<Bound<'_, PyDict>>>(hyper, "groups")? {
        let mut p: OneCyclePoints = [0.0; 5];
        // the momentum points are in the groups only when the momentum cycles
        let used = if cycle_momentum { 5 } else { 3 };
        for (value, key) in p.iter_mut().zip(ONE_CYCLE_POINTS).take(used) {
            *value = get(&g, key)?;
        }
        points.push(p);
    }
    // torch's `_anneal_func` of its `_anneal_func_type`
    let anneal = get::<String>(hyper, "anneal_strategy")?;
    let anneal =
        anneal.parse::<Anneal>().map_err(|_| PyValueError::new_err(format!("Unknown _anneal_func_type: {anneal}")))?;
    one_cycle_lrs(last_epoch, get(hyper, "total_steps")?, &phases, anneal, &points, cycle_momentum)
        .map_err(|e| PyValueError::new_err(e.0))
}

/// OneCycleLR's `_schedule_phases` for `total_steps` steps rising for the fraction
/// `pct_start`: (end step, start LR, end LR, start momentum, end momentum), the last
/// four naming values in the param groups. The last phase ends at the int
/// `total_steps - 1`, the others at floats, as in torch's state dict.
#[pyfunction]
pub(crate) fn one_cycle_phases<'py>(
    py: Python<'py>,
    total_steps: i64,
    pct_start: f64,
    three_phase: bool,
) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    let phases = ferroptim::lr_scheduler::one_cycle_phases(total_steps, pct_start, three_phase);
    let last = phases.len() - 1;
    let n = |i: usize| ONE_CYCLE_POINTS[i];
    phases
        .into_iter()
        .enumerate()
        .map(|(i, (end, from, to))| {
            let end = if i == last {
                (total_steps - 1).into_pyobject(py)?.into_any()
            } else {
                end.into_pyobject(py)?.into_any()
            };
            PyTuple::new(
                py,
                [
                    end,
                    n(from.0).into_pyobject(py)?.into_any(),
                    n(to.0).into_pyobject(py)?.into_any(),
                    n(from.1).into_pyobject(py)?.into_any(),
                    n(to.1).into_pyobject(py)?.into_any(),
                ],
            )
        })
        .collect()
}

/// Where CosineAnnealingWarmRestarts stands after one more epoch (`epoch` None) or
/// at `epoch`: its new (`T_cur`, `T_i`). `T_cur` stays a Python int where torch's
/// arithmetic keeps it one (whole epochs, or an int epoch within the first period or
/// with `T_mult` 1), else a float. A negative epoch is a `ValueError`.
#[pyfunction]
#[pyo3(signature = (t_0, t_mult, t_i, t_cur, epoch=None))]
pub(crate) fn warm_restarts_position<'py>(
    py: Python<'py>,
    t_0: i64,
    t_mult: i64,
    t_i: f64,
    t_cur: &Bound<'py, PyAny>,
    epoch: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, i64)> {
    let e: Option<f64> = epoch.map(|e| e.extract()).transpose()?;
    if let (Some(epoch), Some(e)) = (epoch, e) {
        if e < 0.0 {
            return Err(PyValueError::new_err(format!("Expected non-negative epoch, but got {}", epoch.str()?)));
        }
    }
    let (cur, period) = ferroptim::lr_scheduler::warm_restarts_position(t_0, t_mult, t_i, t_cur.extract()?, e)
        .map_err(|e| PyValueError::new_err(e.0))?;
    let stays_int = match (epoch, e) {
        (Some(epoch), Some(e)) => epoch.is_instance_of::<PyInt>() && (e < t_0 as f64 || t_mult == 1),
        _ => t_cur.is_instance_of::<PyInt>(),
    };
    let cur = if stays_int { (cur as i64).into_pyobject(py)?.into_any() } else { cur.into_pyobject(py)?.into_any() };
    Ok((cur, period as i64))
}

/// SWALR's `anneal_func(t)` for `strategy` "cos" (else linear).
#[pyfunction]
pub(crate) fn swa_alpha(strategy: &str, t: f64) -> f64 {
    ferroptim::lr_scheduler::swa_alpha(strategy == "cos", t)
}

/// ReduceLROnPlateau's `is_better(a, best)`.
#[pyfunction]
pub(crate) fn plateau_is_better(mode: &str, threshold_mode: &str, threshold: f64, a: f64, best: f64) -> PyResult<bool> {
    let mode = mode.parse::<PlateauMode>().map_err(refused)?;
    let threshold_mode = threshold_mode.parse::<ThresholdMode>().map_err(refused)?;
    Ok(ferroptim::lr_scheduler::plateau_is_better(mode, threshold_mode, threshold, a, best))
}

/// The LR ReduceLROnPlateau's reduction gives a group at `lr` (`lr` itself when the
/// change would be `eps` or less).
#[pyfunction]
pub(crate) fn plateau_reduced(lr: f64, factor: f64, min_lr: f64, eps: f64) -> f64 {
    ferroptim::lr_scheduler::plateau_reduced(lr, factor, min_lr, eps)
}

/// New LRs and momenta (None: the rule sets none).
type Lrs = (Vec<f64>, Option<Vec<f64>>);

/// What [`lr_rule`] returns: the LRs (None: the rule has no closed form) and momenta.
type RuleOut = (Option<Vec<f64>>, Option<Vec<f64>>);

/// The new LR of each param group by the rule `kind` (a torch scheduler's class name)
/// with the attributes `hyper`: torch's `get_lr`, or with `closed_form` its
/// `_get_closed_form_lr`; and the momentum of each group, for the rules that cycle it
/// (CyclicLR, OneCycleLR). None where the rule has no closed form, or sets no
/// momentum. `lrs` are the groups' current LRs; `last_epoch`, `step_count` and
/// `is_initial` the scheduler's `last_epoch`, `_step_count` and `_is_initial`.
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
) -> PyResult<RuleOut> {
    let raised: Raised = Arc::default();
    let out = match kind {
        "CyclicLR" | "OneCycleLR" if closed_form => (None, None),
        "CyclicLR" => {
            let (new, momenta) = cyclic(hyper, last_epoch, &base_lrs, &raised)?;
            (Some(new), momenta)
        }
        "OneCycleLR" => {
            let (new, momenta) = one_cycle(hyper, last_epoch)?;
            (Some(new), momenta)
        }
        "CosineAnnealingWarmRestarts" if closed_form => (None, None),
        "CosineAnnealingWarmRestarts" => {
            let (eta_min, t_cur, t_i) = (get(hyper, "eta_min")?, get(hyper, "T_cur")?, get(hyper, "T_i")?);
            (Some(warm_restarts_lrs(eta_min, t_cur, t_i, &base_lrs)), None)
        }
        _ => {
            let mut rule = rule(kind, hyper, &raised)?;
            let mut groups: Vec<ParamGroup> = lrs.iter().map(|&lr| ParamGroup::new(lr)).collect();
            // Not a fresh start (last_epoch -1 would set the groups' starting LRs):
            // the rule's own checks and per-group values only.
            rule.attach(&mut groups, 0).map_err(|e| PyValueError::new_err(e.0))?;
            let c = Context { last_epoch, step_count, is_initial, base_lrs: &base_lrs };
            (if closed_form { rule.closed_form(&c) } else { Some(rule.lrs(&c, &mut groups)) }, None)
        }
    };
    let error = raised.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(new) = &out.0 {
        let inputs_finite = lrs.iter().chain(&base_lrs).all(|x| x.is_finite()) && all_finite(hyper.as_any(), 4);
        finite(kind, inputs_finite, new)?;
    }
    Ok(out)
}

/// Checks the attributes `hyper` of the rule `kind` for an optimizer of `groups` param
/// groups, as the scheduler's constructor does before it changes anything: a
/// `ValueError` with torch's message.
#[pyfunction]
pub(crate) fn lr_rule_check(kind: &str, hyper: &Bound<'_, PyDict>, groups: usize) -> PyResult<()> {
    if matches!(kind, "CyclicLR" | "OneCycleLR" | "CosineAnnealingWarmRestarts") {
        // their arguments (per-group lists, the optimizer's momentum, ints) are the
        // Python class's to check, before it sets the groups' starting values
        return Ok(());
    }
    let raised: Raised = Arc::default();
    let mut groups = vec![ParamGroup::new(0.0); groups];
    rule(kind, hyper, &raised)?.attach(&mut groups, 0).map_err(|e| PyValueError::new_err(e.0))
}

/// Refuses an LR that a schedule made infinite or NaN from finite LRs and attributes
/// (`inputs_finite`): where the rule divides by zero or its power overflows (a `T_max`
/// or `total_iters` of 0, a `factor` of 0, `gamma^epoch` past the largest float),
/// torch's Python arithmetic raises `ZeroDivisionError` or `OverflowError`, both
/// `ArithmeticError`s; from a NaN or an infinite attribute (an `eta_min` of NaN) it
/// gives a NaN or infinite LR, as here. A function of the user's (`LambdaLR`,
/// `MultiplicativeLR`, CyclicLR's `scale_fn`) may return any factor, as in torch.
fn finite(kind: &str, inputs_finite: bool, new: &[f64]) -> PyResult<()> {
    let user_factor = matches!(kind, "LambdaLR" | "MultiplicativeLR" | "CyclicLR");
    match new.iter().position(|x| !x.is_finite()) {
        Some(i) if inputs_finite && !user_factor => Err(PyArithmeticError::new_err(format!(
            "{kind}: the schedule gives param group {i} an LR of {} (a division by zero or an overflow in its formula)",
            new[i]
        ))),
        _ => Ok(()),
    }
}

/// Whether every float of `v` (a float, or a list, tuple or dict of them, nested to
/// `depth`) is finite; other values (ints, strings, arrays) count as finite.
fn all_finite(v: &Bound<'_, PyAny>, depth: usize) -> bool {
    if let Ok(x) = v.cast::<PyFloat>() {
        return x.value().is_finite();
    }
    if depth == 0 {
        return true;
    }
    if let Ok(d) = v.cast::<PyDict>() {
        return d.values().iter().all(|x| all_finite(&x, depth - 1));
    }
    match v.try_iter() {
        Ok(items) if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() => {
            items.flatten().all(|x| all_finite(&x, depth - 1))
        }
        _ => true,
    }
}
