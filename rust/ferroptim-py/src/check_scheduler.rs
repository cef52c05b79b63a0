//! `_core.check_scheduler`: the constructor checks of the Python schedulers (those
//! that check their arguments one by one: CyclicLR, OneCycleLR,
//! CosineAnnealingWarmRestarts, ReduceLROnPlateau, SWALR; LambdaLR's and
//! MultiplicativeLR's functions; the composites' schedulers; every scheduler's
//! optimizer and resumption), which are the core crate's (`ferroptim::lr_scheduler`'s
//! `check` functions), made on the Python values as given, in torch's order, each
//! refusal torch's exception: where torch compares a value before its `isinstance`
//! check, a value that is no number raises the TypeError of that comparison.

use std::fmt;

use ferroptim::lr_scheduler::{self as ls, Given, SchedulerError};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError, PyZeroDivisionError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::check_hyper::float as python_float;

/// A core check's refusal as the exception torch raises: Python's
/// `ZeroDivisionError` for a division by zero, else a `ValueError`.
pub(crate) fn refused(e: SchedulerError) -> PyErr {
    PyRefusal::from(e).0
}

/// A Python exception, for the core's functions that take a fallible closure and
/// refuse with a [`SchedulerError`] (see [`refused`]).
pub(crate) struct PyRefusal(pub PyErr);

impl From<SchedulerError> for PyRefusal {
    fn from(e: SchedulerError) -> Self {
        PyRefusal(if e.0 == ls::DIVISION_BY_ZERO {
            PyZeroDivisionError::new_err(e.0)
        } else {
            PyValueError::new_err(e.0)
        })
    }
}

/// A Python value as a [`Given`]: an `int` (an int beyond 64 bits held at the nearest
/// bound) or a `float` (their subclasses included, as `isinstance` sees them), spelled
/// as Python's `str` spells it.
struct Arg<'py>(Bound<'py, PyAny>);

impl fmt::Display for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.str() {
            Ok(s) => f.write_str(&s.to_string_lossy()),
            Err(_) => f.write_str("?"),
        }
    }
}

impl Given for Arg<'_> {
    fn int(&self) -> Option<i64> {
        if !self.0.is_instance_of::<PyInt>() {
            return None;
        }
        Some(match self.0.extract::<i64>() {
            Ok(n) => n,
            Err(_) if self.0.gt(0).unwrap_or(false) => i64::MAX,
            Err(_) => i64::MIN,
        })
    }

    fn float(&self) -> Option<f64> {
        self.0.is_instance_of::<PyFloat>().then(|| self.0.extract().ok()).flatten()
    }

    fn type_name(&self) -> String {
        self.0.get_type().str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// The arguments of one constructor call, by torch's names.
struct Args<'a, 'py>(&'a Bound<'py, PyDict>);

impl<'py> Args<'_, 'py> {
    /// The argument `name`, if the call gives it.
    fn get(&self, name: &str) -> PyResult<Option<Arg<'py>>> {
        Ok(self.0.get_item(name)?.map(Arg))
    }

    /// The argument `name`, None when given as None.
    fn given(&self, name: &str) -> PyResult<Option<Arg<'py>>> {
        Ok(self.get(name)?.filter(|a| !a.0.is_none()))
    }

    /// Python's truth of the argument `name` (false when not given).
    fn truthy(&self, name: &str) -> PyResult<bool> {
        self.get(name)?.map_or(Ok(false), |a| a.0.is_truthy())
    }

    /// The argument `name` as a float, as Python's `float(x)` converts it.
    fn float(&self, name: &str) -> PyResult<Option<f64>> {
        self.given(name)?.map(|a| python_float(&a.0)).transpose()
    }
}

/// torch's `_format_param(name, ...)`: a list or tuple needs one value per group.
fn group_count(a: &Arg<'_>, name: &str, groups: usize) -> PyResult<()> {
    if a.0.is_instance_of::<PyList>() || a.0.is_instance_of::<PyTuple>() {
        ls::check_group_count(name, a.0.len()?, groups).map_err(refused)?;
    }
    Ok(())
}

/// The values per group of the arguments `names` (each a number, or a list or tuple
/// of them) are numbers: torch's first step computes with them, raising a TypeError
/// for any other value after its constructor has changed the groups; here before.
fn numbers(a: &Args<'_, '_>, names: &[&str]) -> PyResult<()> {
    for name in names {
        let Some(v) = a.get(name)? else { continue };
        if v.0.is_instance_of::<PyList>() || v.0.is_instance_of::<PyTuple>() {
            for e in v.0.try_iter()? {
                e?.extract::<f64>()?;
            }
        } else {
            v.0.extract::<f64>()?;
        }
    }
    Ok(())
}

/// An argument that must be one of a few names (torch's `x not in [...]`), parsed by
/// the core crate as Python spells it.
fn named<T: std::str::FromStr<Err = SchedulerError>>(a: &Arg<'_>) -> PyResult<T> {
    a.to_string().parse::<T>().map_err(refused)
}

/// torch's `isinstance(optimizer, Optimizer)`, with its TypeError.
fn check_optimizer(optimizer: &Bound<'_, PyAny>) -> PyResult<()> {
    let class = optimizer.py().import("ferroptim.optimizer")?.getattr("Optimizer")?;
    if optimizer.is_instance(&class)? {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!("{} is not an Optimizer", optimizer.get_type().name()?)))
}

/// The optimizer's number of param groups, and whether it has a momentum to cycle.
fn optimizer_groups(optimizer: &Bound<'_, PyAny>) -> PyResult<(usize, bool)> {
    let groups = optimizer.getattr("param_groups")?.len()?;
    let defaults = optimizer.getattr("defaults")?;
    let momentum = defaults.contains("momentum")? || defaults.contains("betas")?;
    Ok((groups, momentum))
}

/// `_core.check_scheduler(kind, args, optimizer)`: the checks torch's constructor of
/// scheduler `kind` makes on `args` (its arguments by torch's names, as given; one
/// left out is not checked) and `optimizer`, in torch's order, raising torch's
/// exceptions. Changes nothing. `kind` "LRScheduler" makes the checks of every
/// scheduler's base: `optimizer` is one, and with `args["last_epoch"]` other than -1
/// (a resumed scheduler), each of its groups has an `initial_lr` (a `KeyError`).
#[pyfunction]
pub(crate) fn check_scheduler(kind: &str, args: &Bound<'_, PyDict>, optimizer: &Bound<'_, PyAny>) -> PyResult<()> {
    let a = Args(args);
    match kind {
        "LRScheduler" => resumed(&a, optimizer),
        "CyclicLR" => cyclic(&a, optimizer),
        "OneCycleLR" => one_cycle(&a, optimizer),
        "CosineAnnealingWarmRestarts" => warm_restarts(&a),
        "ReduceLROnPlateau" => plateau(&a, optimizer),
        "SWALR" => swa(&a, optimizer),
        "LambdaLR" | "MultiplicativeLR" => lambdas(&a, optimizer, kind == "MultiplicativeLR"),
        "SequentialLR" => composite(&a, optimizer, "scheduler"),
        "ChainedScheduler" => composite(&a, optimizer, "scheduler to be chained"),
        _ => Err(PyValueError::new_err(format!("check_scheduler: no scheduler {kind:?}"))),
    }
}

fn resumed(a: &Args<'_, '_>, optimizer: &Bound<'_, PyAny>) -> PyResult<()> {
    check_optimizer(optimizer)?;
    if a.get("last_epoch")?.map_or(Ok(false), |e| e.0.ne(-1))? {
        let groups = optimizer.getattr("param_groups")?;
        let has = groups.try_iter()?.map(|g| g?.contains("initial_lr")).collect::<PyResult<Vec<bool>>>()?;
        ls::check_initial_lrs(has).map_err(|e| PyKeyError::new_err(e.0))?;
    }
    Ok(())
}

fn cyclic(a: &Args<'_, '_>, optimizer: &Bound<'_, PyAny>) -> PyResult<()> {
    check_optimizer(optimizer)?;
    let (groups, has_momentum) = optimizer_groups(optimizer)?;
    for name in ["base_lr", "max_lr"] {
        a.get(name)?.map(|v| group_count(&v, name, groups)).transpose()?;
    }
    // torch's `float(step_size_up)`, `float(step_size_down)` (None: as up), then its cycle
    let up = a.get("step_size_up")?.map_or(Ok(2000.0), |v| python_float(&v.0))?;
    let (total, ratio) = ls::cyclic_size_checked(up, a.float("step_size_down")?).map_err(refused)?;
    let mut used = vec!["base_lr", "max_lr"];
    if a.given("scale_fn")?.is_none() {
        if let Some(mode) = a.get("mode")? {
            let is_str = mode.0.is_instance_of::<PyString>();
            let name = if is_str { mode.0.extract::<String>()? } else { String::new() };
            ls::cyclic_mode(&name, || {
                used.push("gamma");
                Ok::<_, SchedulerError>(1.0)
            })
            .map_err(refused)?;
        }
    }
    if a.truthy("cycle_momentum")? {
        ls::check_momentum(has_momentum).map_err(refused)?;
        for name in ["base_momentum", "max_momentum"] {
            a.get(name)?.map(|v| group_count(&v, name, groups)).transpose()?;
        }
        used.extend(["base_momentum", "max_momentum"]);
    }
    ls::check_cycle(total, ratio).map_err(refused)?;
    numbers(a, &used)
}

fn one_cycle(a: &Args<'_, '_>, optimizer: &Bound<'_, PyAny>) -> PyResult<()> {
    check_optimizer(optimizer)?;
    let (groups, has_momentum) = optimizer_groups(optimizer)?;
    let total = a.given("total_steps")?;
    if let Some(t) = &total {
        t.0.le(0)?; // torch compares before its isinstance check
    }
    let total_steps =
        ls::one_cycle_total_steps(total.as_ref(), a.given("epochs")?.as_ref(), a.given("steps_per_epoch")?.as_ref())
            .map_err(refused)?;
    if let Some(pct) = a.get("pct_start")? {
        // torch's phases first (`float(pct_start * total_steps)`), then its comparisons
        python_float(&pct.0.mul(total_steps)?)?;
        pct.0.lt(0)?;
        pct.0.gt(1)?;
        ls::one_cycle_pct_start(&pct).map_err(refused)?;
    }
    if let Some(anneal) = a.get("anneal_strategy")? {
        named::<ls::Anneal>(&anneal)?;
    }
    let max_lr = a.get("max_lr")?;
    if let Some(max_lr) = &max_lr {
        group_count(max_lr, "max_lr", groups)?;
    }
    if a.get("last_epoch")?.map_or(Ok(true), |e| e.0.eq(-1))? {
        // torch's `max_lr / div_factor / final_div_factor` (no number: a TypeError)
        let number =
            |name: &str, default: f64| -> PyResult<f64> { a.get(name)?.map_or(Ok(default), |v| v.0.extract::<f64>()) };
        let (div, final_div) = (number("div_factor", 25.0)?, number("final_div_factor", 1e4)?);
        let tops = match &max_lr {
            Some(m) if m.0.is_instance_of::<PyList>() || m.0.is_instance_of::<PyTuple>() => m.0.try_iter()?.collect(),
            Some(m) => vec![Ok(m.0.clone())],
            None => Vec::new(),
        };
        for top in tops {
            ls::one_cycle_lr_points_checked(top?.extract()?, div, final_div).map_err(refused)?;
        }
    }
    if a.truthy("cycle_momentum")? {
        ls::check_momentum(has_momentum).map_err(refused)?;
        for name in ["max_momentum", "base_momentum"] {
            a.get(name)?.map(|v| group_count(&v, name, groups)).transpose()?;
        }
        numbers(a, &["max_momentum", "base_momentum"])?;
    }
    Ok(())
}

fn warm_restarts(a: &Args<'_, '_>) -> PyResult<()> {
    let (t_0, t_mult) = (a.get("T_0")?, a.get("T_mult")?);
    if let Some(t) = &t_0 {
        t.0.le(0)?; // torch compares before its isinstance checks
    }
    if let Some(t) = &t_mult {
        t.0.lt(1)?;
    }
    if let (Some(t_0), Some(t_mult)) = (t_0, t_mult) {
        ls::warm_restarts_periods(&t_0, &t_mult).map_err(refused)?;
    }
    if let Some(eta_min) = a.get("eta_min")? {
        ls::warm_restarts_eta_min(&eta_min).map_err(refused)?;
    }
    Ok(())
}

fn plateau(a: &Args<'_, '_>, optimizer: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Some(factor) = a.get("factor")? {
        factor.0.ge(1.0)?; // torch's comparison: no number is its TypeError
        ls::plateau_factor(factor.0.extract().unwrap_or(f64::NAN)).map_err(refused)?;
    }
    check_optimizer(optimizer)?;
    if let Some(min_lr) = a.get("min_lr")? {
        if min_lr.0.is_instance_of::<PyList>() || min_lr.0.is_instance_of::<PyTuple>() {
            let groups = optimizer.getattr("param_groups")?.len()?;
            ls::plateau_min_lr_count(min_lr.0.len()?, groups).map_err(refused)?;
        }
    }
    for (name, prefix) in [("mode", "mode "), ("threshold_mode", "threshold mode ")] {
        if let Some(v) = a.get(name)? {
            if !v.0.is_instance_of::<PyString>() {
                // torch's `v not in {...}` hashes v, then its message `"mode " + v`
                // raises the TypeError of a str plus another type
                v.0.hash()?;
                PyString::new(v.0.py(), prefix).add(&v.0)?;
            }
            if name == "mode" {
                named::<ls::PlateauMode>(&v)?;
            } else {
                named::<ls::ThresholdMode>(&v)?;
            }
        }
    }
    Ok(())
}

fn swa(a: &Args<'_, '_>, optimizer: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Some(swa_lr) = a.get("swa_lr")? {
        group_count(&swa_lr, "swa_lr", optimizer.getattr("param_groups")?.len()?)?;
    }
    if let Some(anneal) = a.get("anneal_strategy")? {
        named::<ls::Anneal>(&anneal)?;
    }
    if let Some(epochs) = a.get("anneal_epochs")? {
        ls::swa_anneal_epochs(&epochs).map_err(refused)?;
    }
    numbers(a, &["swa_lr"])
}

/// LambdaLR's and MultiplicativeLR's `lr_lambda`: a list or tuple has one function per
/// group; MultiplicativeLR (`callables`) also refuses what is not callable.
fn lambdas(a: &Args<'_, '_>, optimizer: &Bound<'_, PyAny>, callables: bool) -> PyResult<()> {
    let Some(given) = a.get("lr_lambda")? else { return Ok(()) };
    let each = given.0.is_instance_of::<PyList>() || given.0.is_instance_of::<PyTuple>();
    if each {
        ls::check_lambda_count(given.0.len()?, optimizer.getattr("param_groups")?.len()?).map_err(refused)?;
    }
    let fns: Vec<Bound<'_, PyAny>> = if each { given.0.try_iter()?.collect::<PyResult<_>>()? } else { vec![given.0] };
    match fns.iter().find(|f| !f.is_callable()) {
        Some(f) if callables => {
            Err(PyTypeError::new_err(format!("lr_lambda should be a function, but got {}", f.get_type().name()?)))
        }
        _ => Ok(()),
    }
}

/// SequentialLR's and ChainedScheduler's `schedulers` (their class's name in
/// `args["name"]`, `what` the scheduler as its message names it): at least one, each
/// with an `optimizer`, the same one (`optimizer`; for a ChainedScheduler given None,
/// the first scheduler's); and SequentialLR's `milestones`, one fewer.
fn composite(a: &Args<'_, '_>, optimizer: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    let name = a.get("name")?.map_or(Ok(String::new()), |n| n.0.extract::<String>())?;
    let Some(schedulers) = a.get("schedulers")? else { return Ok(()) };
    let schedulers: Vec<Bound<'_, PyAny>> = schedulers.0.try_iter()?.collect::<PyResult<_>>()?;
    ls::check_schedulers_given(&name, what, schedulers.len()).map_err(refused)?;
    // torch's `optimizer or schedulers[0].optimizer`
    let optimizer = if optimizer.is_truthy()? { optimizer.clone() } else { schedulers[0].getattr("optimizer")? };
    for (i, s) in schedulers.iter().enumerate() {
        if !s.hasattr("optimizer")? {
            let message = format!("{name} at index {i} should have `optimizer` as its attribute.");
            return Err(PyTypeError::new_err(message));
        }
        let own = s.getattr("optimizer")?;
        if optimizer.ne(&own)? {
            return Err(PyValueError::new_err(format!(
                "{name} expects all schedulers to belong to the same optimizer, but got scheduler {} at index {i} \
                 has {}, which is different from {}.",
                s.get_type().name()?,
                own.str()?,
                optimizer.get_type().name()?
            )));
        }
    }
    if let Some(milestones) = a.get("milestones")? {
        ls::check_milestones(schedulers.len(), milestones.0.len()?).map_err(refused)?;
    }
    Ok(())
}
