//! `_core.<name>_step` of the optimizers beyond torch.optim (Lion, LAMB, LARS, Adan,
//! ADOPT, AdEMAMix, the schedule-free three, Prodigy): one call per step with every
//! param group, through the tensor-wise boundary (`tensorwise::gather` checks every
//! array first), the group-level counters of each implementation (`step`, `k`,
//! `weight_sum`, Prodigy's `d`...) read from and written back to the param-group dicts
//! once the kernels have run.
//!
//! Each function takes `(param_groups, indices, data, grads, states, fresh, steps)`:
//! per parameter with a gradient its (group, index), `.data`, gradient, `(key, array)`
//! state list in kernel order, whether its state was created for this step, and (ADOPT,
//! Prodigy) its `step` 0-d float64 array.

use ferroptim::{
    adan, ademamix, adopt, lamb, lamb_clip, lamb_grad_sum_sq, lars, lion, prodigy, schedule_free, AdanHyper,
    AdemamixHyper, AdoptHyper, Element, LambHyper, LarsHyper, LionHyper, ProdigyGlobal, ProdigyHyper, ProdigyTensor,
    ScheduleFreeGroup, ScheduleFreeHyper, ScheduleFreeKind, Slices, MAX_STATE,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{scalar_array, type_name, Dtype};
use crate::held::Work;
use crate::hyper::Group;
use crate::step::KERNEL_LOCK;
use crate::tensorwise::{gather, hypers, slice, zip_given, Gathered, Tensor};

impl<'py> Group<'_, 'py> {
    /// A real number or None.
    fn optional(&self, key: &str) -> PyResult<Option<f64>> {
        let v = self.item(key)?;
        if v.is_none() {
            Ok(None)
        } else {
            self.f64(key).map(Some)
        }
    }

    /// A triple of real numbers, such as Adan's `betas`.
    fn triple(&self, key: &str) -> PyResult<(f64, f64, f64)> {
        let v = self.item(key)?;
        v.extract::<(f64, f64, f64)>().map_err(|_| {
            PyTypeError::new_err(format!(
                "param_groups[{}]['{key}'] must be three real numbers, got {}",
                self.index,
                type_name(&v)
            ))
        })
    }

    /// A value the implementation keeps in the group, absent before the first step.
    fn counter(&self, key: &str, missing: f64) -> PyResult<f64> {
        match self.dict.get_item(key)? {
            None => Ok(missing),
            Some(_) => self.f64(key),
        }
    }

    /// `max_lr_snapshot` when corrected weight decay is on (`flag` the condition).
    fn max_lr(&self, flag: bool) -> PyResult<Option<f64>> {
        if flag {
            self.f64("max_lr_snapshot").map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The lists of one call.
type Lists<'py> = (
    Vec<Bound<'py, PyDict>>,
    Vec<(usize, usize)>,
    Vec<Bound<'py, PyAny>>,
    Vec<Bound<'py, PyAny>>,
    Vec<Vec<(String, Bound<'py, PyAny>)>>,
);

/// Checks every array; every state array is shaped like its parameter.
fn gather_all<'py>(py: Python<'py>, lists: Lists<'py>, steps: Option<Vec<Bound<'py, PyAny>>>) -> PyResult<Gathered> {
    let (groups, indices, data, grads, states) = lists;
    if states.iter().any(|s| s.len() > MAX_STATE) {
        return Err(PyValueError::new_err(format!("at most {MAX_STATE} state arrays per parameter")));
    }
    let given = zip_given(indices, data, grads, states, steps)?;
    gather(py, &groups, given, &|_, s| s.to_vec(), &|_, s, _| s.to_vec())
}

/// A group's tensors of one element type as kernel slices, with their step counts and
/// fresh flags.
///
/// # Safety
/// The tensors come from `gather` and their arrays are still held (`tensorwise::slice`).
unsafe fn slices<'a, T: Element>(
    ts: &'a mut [&mut Tensor],
    fresh: &[bool],
) -> (Vec<Slices<'a, T>>, Vec<f64>, Vec<bool>) {
    let steps = ts.iter().map(|t| t.step.map_or(0.0, |p| unsafe { *p })).collect();
    let flags = ts.iter().map(|t| fresh[t.position]).collect();
    let out = ts
        .iter_mut()
        .map(|t| {
            let len = t.len;
            // SAFETY: the caller's contract.
            unsafe {
                Slices::new(slice(t.param, len), slice(t.grad, len), t.state.iter().map(|&(p, n)| slice::<T>(p, n)))
            }
        })
        .collect();
    (out, steps, flags)
}

/// Writes the advanced step counts back into their 0-d arrays.
///
/// # Safety
/// As [`slices`]; no kernel runs.
unsafe fn store_steps(ts: &[&mut Tensor], steps: &[f64]) {
    for (t, s) in ts.iter().zip(steps) {
        if let Some(p) = t.step {
            // SAFETY: a writeable, aligned 0-d float64 array `gather` checked and holds.
            unsafe { *p = *s };
        }
    }
}

/// Runs `kernel(group, f32 tensors, f64 tensors)` for each group with the GIL
/// released and `KERNEL_LOCK` held, then writes the scratch copies back.
fn run<F>(py: Python<'_>, groups: usize, gathered: &mut Gathered, kernel: F) -> PyResult<()>
where
    F: Fn(usize, &mut [&mut Tensor], &mut [&mut Tensor]) + Send + Sync,
{
    let work = Work(&mut gathered.tensors);
    py.detach(move || {
        let tensors = work.into_inner();
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for g in 0..groups {
            let (mut t32, mut t64): (Vec<_>, Vec<_>) =
                tensors.iter_mut().filter(|t| t.group == g).partition(|t| t.dtype == Dtype::F32);
            kernel(g, &mut t32, &mut t64);
        }
    });
    gathered.held.copy_back(py)
}

/// Calls `$body` with `$s`, `$steps`, `$fresh` for the f32 and then the f64 tensors,
/// storing the step counts afterwards.
macro_rules! both_dtypes {
    ($t32:expr, $t64:expr, $fresh:expr, |$s:ident, $steps:ident, $flags:ident| $body:expr) => {{
        // SAFETY: every tensor was checked by `gather`, which holds its arrays.
        unsafe {
            {
                let (mut $s, mut $steps, $flags) = slices::<f32>($t32, $fresh);
                $body;
                store_steps($t32, &$steps);
            }
            {
                let (mut $s, mut $steps, $flags) = slices::<f64>($t64, $fresh);
                $body;
                store_steps($t64, &$steps);
            }
        }
    }};
}

fn lion_hyper(g: &Group<'_, '_>) -> PyResult<LionHyper> {
    Ok(LionHyper {
        lr: g.f64("lr")?,
        betas: g.pair("betas")?,
        weight_decay: g.f64("weight_decay")?,
        caution: g.flag("caution")?,
        max_lr: g.max_lr(g.flag("corrected_weight_decay")?)?,
        maximize: g.flag("maximize")?,
    })
}

/// One Lion step; state `(exp_avg,)`.
#[pyfunction]
pub(crate) fn lion_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    fresh: Vec<bool>,
) -> PyResult<()> {
    let hs = hypers(&groups, lion_hyper)?;
    let mut gathered = gather_all(py, (groups, indices, data, grads, states), None)?;
    run(py, hs.len(), &mut gathered, |g, t32, t64| both_dtypes!(t32, t64, &fresh, |s, _steps, _f| lion(&hs[g], &mut s)))
}

fn lars_hyper(g: &Group<'_, '_>) -> PyResult<LarsHyper> {
    Ok(LarsHyper {
        lr: g.f64("lr")?,
        momentum: g.f64("momentum")?,
        dampening: g.f64("dampening")?,
        weight_decay: g.f64("weight_decay")?,
        nesterov: g.flag("nesterov")?,
        trust_coeff: g.f64("trust_coeff")?,
        eps: g.f64("eps")?,
        trust_clip: g.flag("trust_clip")?,
        always_adapt: g.flag("always_adapt")?,
    })
}

/// One LARS step; state `(momentum_buffer,)` with momentum, else none.
#[pyfunction]
pub(crate) fn lars_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    fresh: Vec<bool>,
) -> PyResult<()> {
    let hs = hypers(&groups, lars_hyper)?;
    for (i, (g, _)) in indices.iter().enumerate() {
        let want = usize::from(hs.get(*g).is_some_and(|h| h.momentum != 0.0));
        if states[i].len() != want {
            return Err(PyValueError::new_err("LARS keeps momentum_buffer exactly when momentum is not 0"));
        }
    }
    let mut gathered = gather_all(py, (groups, indices, data, grads, states), None)?;
    run(py, hs.len(), &mut gathered, |g, t32, t64| {
        both_dtypes!(t32, t64, &fresh, |s, _steps, f| lars(&hs[g], &mut s, &f))
    })
}

fn adopt_hyper(g: &Group<'_, '_>) -> PyResult<AdoptHyper> {
    Ok(AdoptHyper {
        lr: g.f64("lr")?,
        betas: g.pair("betas")?,
        eps: g.f64("eps")?,
        clip_exp: g.optional("clip_exp")?,
        weight_decay: g.f64("weight_decay")?,
        decoupled: g.flag("decoupled")?,
        max_lr: g.max_lr(g.flag("corrected_weight_decay")?)?,
        caution: g.flag("caution")?,
        maximize: g.flag("maximize")?,
    })
}

/// One ADOPT step; state `step` + `(exp_avg, exp_avg_sq)`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn adopt_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    fresh: Vec<bool>,
    steps: Vec<Bound<'py, PyAny>>,
) -> PyResult<()> {
    let hs = hypers(&groups, adopt_hyper)?;
    let mut gathered = gather_all(py, (groups, indices, data, grads, states), Some(steps))?;
    run(py, hs.len(), &mut gathered, |g, t32, t64| {
        both_dtypes!(t32, t64, &fresh, |s, steps, f| adopt(&hs[g], &mut s, &mut steps, &f))
    })
}

/// Reads each group's `step` counter (absent: 0), returns it advanced by one.
fn group_steps(groups: &[Bound<'_, PyDict>]) -> PyResult<Vec<f64>> {
    groups.iter().enumerate().map(|(index, dict)| Ok(Group { dict, index }.counter("step", 0.0)? + 1.0)).collect()
}

/// Writes each group's `step` back, as a Python int (Adan, AdEMAMix).
fn store_int_steps(groups: &[Bound<'_, PyDict>], steps: &[f64]) -> PyResult<()> {
    for (dict, s) in groups.iter().zip(steps) {
        dict.set_item("step", *s as i64)?;
    }
    Ok(())
}

fn adan_hyper(g: &Group<'_, '_>) -> PyResult<AdanHyper> {
    Ok(AdanHyper {
        lr: g.f64("lr")?,
        betas: g.triple("betas")?,
        eps: g.f64("eps")?,
        weight_decay: g.f64("weight_decay")?,
        no_prox: g.flag("no_prox")?,
        caution: g.flag("caution")?,
    })
}

/// One Adan step; state `(exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad)`; the
/// group's `step` (an int) advanced.
#[pyfunction]
pub(crate) fn adan_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    fresh: Vec<bool>,
) -> PyResult<()> {
    let hs = hypers(&groups, adan_hyper)?;
    let steps = group_steps(&groups)?;
    let dicts = groups.clone();
    let mut gathered = gather_all(py, (groups, indices, data, grads, states), None)?;
    run(py, hs.len(), &mut gathered, |g, t32, t64| {
        both_dtypes!(t32, t64, &fresh, |s, _steps, f| adan(&hs[g], steps[g], &mut s, &f))
    })?;
    store_int_steps(&dicts, &steps)
}

fn ademamix_hyper(g: &Group<'_, '_>) -> PyResult<AdemamixHyper> {
    Ok(AdemamixHyper {
        lr: g.f64("lr")?,
        betas: g.triple("betas")?,
        weight_decay: g.f64("weight_decay")?,
        weight_decouple: g.flag("weight_decouple")?,
        fixed_decay: g.flag("fixed_decay")?,
        alpha: g.f64("alpha")?,
        t_alpha_beta3: g.optional("t_alpha_beta3")?,
        eps: g.f64("eps")?,
        maximize: false,
    })
}

/// One AdEMAMix step; state `(exp_avg, exp_avg_sq, exp_avg_slow)`; the group's
/// `step` (an int) advanced; `maximize` is the optimizer's (not a group option).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn ademamix_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    fresh: Vec<bool>,
    maximize: bool,
) -> PyResult<()> {
    let hs: Vec<AdemamixHyper> =
        hypers(&groups, ademamix_hyper)?.into_iter().map(|h| AdemamixHyper { maximize, ..h }).collect();
    let steps = group_steps(&groups)?;
    let dicts = groups.clone();
    let mut gathered = gather_all(py, (groups, indices, data, grads, states), None)?;
    run(py, hs.len(), &mut gathered, |g, t32, t64| {
        both_dtypes!(t32, t64, &fresh, |s, _steps, _f| ademamix(&hs[g], steps[g], &mut s))
    })?;
    store_int_steps(&dicts, &steps)
}

fn lamb_hyper(g: &Group<'_, '_>) -> PyResult<LambHyper> {
    let decoupled_decay = g.flag("decoupled_decay")?;
    Ok(LambHyper {
        lr: g.f64("lr")?,
        bias_correction: g.flag("bias_correction")?,
        betas: g.pair("betas")?,
        eps: g.f64("eps")?,
        weight_decay: g.f64("weight_decay")?,
        grad_averaging: g.flag("grad_averaging")?,
        trust_clip: g.flag("trust_clip")?,
        always_adapt: g.flag("always_adapt")?,
        caution: g.flag("caution")?,
        decoupled_decay,
        max_lr: g.max_lr(decoupled_decay && g.flag("corrected_weight_decay")?)?,
    })
}

/// One LAMB step; state `(exp_avg, exp_avg_sq)`; the group's `step` (a 0-d float64
/// array) advanced; `max_grad_norm` is the optimizer's (timm reads it from its defaults).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn lamb_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    fresh: Vec<bool>,
    max_grad_norm: Option<f64>,
) -> PyResult<()> {
    let hs = hypers(&groups, lamb_hyper)?;
    let steps = group_steps(&groups)?;
    let dicts = groups.clone();
    let mut gathered = gather_all(py, (groups, indices, data, grads, states), None)?;
    // the global gradient norm, over every group, before any update
    let work = Work(&mut gathered.tensors);
    let flags = &fresh;
    let sums = py.detach(move || {
        let tensors = work.into_inner();
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (mut t32, mut t64): (Vec<_>, Vec<_>) = tensors.iter_mut().partition(|t| t.dtype == Dtype::F32);
        let mut sums = Vec::new();
        both_dtypes!(&mut t32, &mut t64, flags, |s, _steps, _f| sums.extend(lamb_grad_sum_sq(&mut s)));
        sums
    });
    let clip = lamb_clip(max_grad_norm, &sums);
    run(py, hs.len(), &mut gathered, |g, t32, t64| {
        both_dtypes!(t32, t64, &fresh, |s, _steps, _f| lamb(&hs[g], steps[g], clip, &mut s))
    })?;
    for (dict, s) in dicts.iter().zip(&steps) {
        dict.set_item("step", scalar_array(py, *s)?)?;
    }
    Ok(())
}

fn schedule_free_hyper(kind: &str) -> impl Fn(&Group<'_, '_>) -> PyResult<ScheduleFreeHyper> + '_ {
    move |g| {
        let kind = match kind {
            "sgd" => ScheduleFreeKind::Sgd { momentum: g.f64("momentum")?, warmup_steps: g.f64("warmup_steps")? },
            "adamw" => ScheduleFreeKind::AdamW {
                betas: g.pair("betas")?,
                eps: g.f64("eps")?,
                warmup_steps: g.f64("warmup_steps")?,
            },
            _ => ScheduleFreeKind::RAdam {
                betas: g.pair("betas")?,
                eps: g.f64("eps")?,
                silent_sgd_phase: g.flag("silent_sgd_phase")?,
            },
        };
        Ok(ScheduleFreeHyper {
            kind,
            lr: g.f64("lr")?,
            weight_decay: g.f64("weight_decay")?,
            r: g.f64("r")?,
            weight_lr_power: g.f64("weight_lr_power")?,
        })
    }
}

/// One step of `SGDScheduleFree` (`kind` "sgd"), `AdamWScheduleFree` ("adamw") or
/// `RAdamScheduleFree` ("radam"); state `(z,)` or `(z, exp_avg_sq)`; the groups' `k`,
/// `weight_sum`, `lr_max` and `scheduled_lr` advanced.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn schedule_free_step<'py>(
    py: Python<'py>,
    kind: &str,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    fresh: Vec<bool>,
) -> PyResult<()> {
    if !matches!(kind, "sgd" | "adamw" | "radam") {
        return Err(PyValueError::new_err(format!("kind must be 'sgd', 'adamw' or 'radam', got {kind:?}")));
    }
    let hs = hypers(&groups, schedule_free_hyper(kind))?;
    let mut values = Vec::with_capacity(hs.len());
    for (index, dict) in groups.iter().enumerate() {
        let g = Group { dict, index };
        let mut v = ScheduleFreeGroup {
            k: g.f64("k")?,
            weight_sum: g.f64("weight_sum")?,
            lr_max: g.f64("lr_max")?,
            scheduled_lr: g.f64("scheduled_lr")?,
        };
        let step = hs[index].begin(&mut v);
        values.push((v, step));
    }
    let dicts = groups.clone();
    let mut gathered = gather_all(py, (groups, indices, data, grads, states), None)?;
    run(py, hs.len(), &mut gathered, |g, t32, t64| {
        both_dtypes!(t32, t64, &fresh, |s, _steps, _f| schedule_free(&values[g].1, &mut s))
    })?;
    for (dict, (v, _)) in dicts.iter().zip(&values) {
        dict.set_item("k", v.k as i64)?;
        dict.set_item("weight_sum", v.weight_sum)?;
        dict.set_item("lr_max", v.lr_max)?;
        dict.set_item("scheduled_lr", v.scheduled_lr)?;
    }
    Ok(())
}

fn prodigy_hyper(g: &Group<'_, '_>) -> PyResult<ProdigyHyper> {
    let slice_p = g.item("slice_p")?;
    let slice_p: usize = slice_p.extract().ok().filter(|&s: &usize| s >= 1).ok_or_else(|| {
        PyValueError::new_err(format!("param_groups[{}]['slice_p'] must be a positive int, got {slice_p}", g.index))
    })?;
    Ok(ProdigyHyper {
        lr: g.f64("lr")?,
        betas: g.pair("betas")?,
        beta3: g.optional("beta3")?,
        eps: g.f64("eps")?,
        weight_decay: g.f64("weight_decay")?,
        decouple: g.flag("decouple")?,
        use_bias_correction: g.flag("use_bias_correction")?,
        safeguard_warmup: g.flag("safeguard_warmup")?,
        d0: g.f64("d0")?,
        d_coef: g.f64("d_coef")?,
        growth_rate: g.f64("growth_rate")?,
        slice_p,
    })
}

/// Prodigy's view of one checked tensor: state `(s, p0, exp_avg_sq[, exp_avg])`.
///
/// # Safety
/// As [`slices`].
unsafe fn prodigy_tensor<'a, T: Element>(t: &'a mut Tensor) -> (usize, ProdigyTensor<'a, T>) {
    let step = t.step.expect("Prodigy keeps a step");
    // SAFETY: the caller's contract.
    unsafe {
        let [(s, ns), (p0, np0), (v, nv), rest @ ..] = &t.state[..] else { unreachable!("checked by prodigy_step") };
        let m: &mut [T] = match rest {
            [(m, nm)] => slice(*m, *nm),
            _ => &mut [],
        };
        let tensor = ProdigyTensor {
            param: slice(t.param, t.len),
            grad: slice(t.grad, t.len),
            exp_avg: m,
            exp_avg_sq: slice(*v, *nv),
            s: slice(*s, *ns),
            p0: slice(*p0, *np0),
            step: &mut *step,
        };
        (t.group, tensor)
    }
}

/// One Prodigy step over every group; state `step` + `(s, p0, exp_avg_sq[, exp_avg])`
/// (`s` and `p0` flat, every `slice_p`-th element; `p0` of an all-zero parameter is
/// passed as `p0:scalar`, one element). The D-adaptation values are read from group 0
/// and written to every group.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn prodigy_step<'py>(
    py: Python<'py>,
    groups: Vec<Bound<'py, PyDict>>,
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    steps: Vec<Bound<'py, PyAny>>,
) -> PyResult<()> {
    let hs = hypers(&groups, prodigy_hyper)?;
    let lr = hs.iter().map(|h| h.lr).fold(f64::NEG_INFINITY, f64::max);
    if hs.iter().any(|h| h.lr != lr && h.lr != 0.0) {
        return Err(PyRuntimeError::new_err(
            "Setting different lr values in different parameter groups is only supported for values of 0",
        ));
    }
    for (i, (g, _)) in indices.iter().enumerate() {
        let keys: Vec<&str> = states[i].iter().map(|(k, _)| k.as_str()).collect();
        let momentum = hs.get(*g).is_some_and(|h| h.betas.0 > 0.0);
        let p0 = keys.get(1).copied().unwrap_or("");
        let ok = keys.len() == 3 + usize::from(momentum)
            && keys[0] == "s"
            && (p0 == "p0" || p0 == "p0:scalar")
            && keys[2] == "exp_avg_sq"
            && (!momentum || keys[3] == "exp_avg");
        if !ok {
            return Err(PyValueError::new_err(format!(
                "Prodigy keeps s, p0, exp_avg_sq and (β₁ > 0) exp_avg; got {keys:?}"
            )));
        }
    }
    let g0 = Group { dict: &groups[0], index: 0 };
    let mut global = ProdigyGlobal {
        d: g0.f64("d")?,
        d_max: g0.f64("d_max")?,
        d_numerator: g0.f64("d_numerator")?,
        d_denom: g0.counter("d_denom", 0.0)?,
        d_hat: g0.counter("d_hat", 0.0)?,
        k: g0.f64("k")?,
    };
    let slice_ps: Vec<usize> = indices.iter().map(|(g, _)| hs.get(*g).map_or(1, |h| h.slice_p)).collect();
    let dicts = groups.clone();
    let given = zip_given(indices, data, grads, states, Some(steps))?;
    let mut gathered = gather(py, &groups, given, &|_, s| s.to_vec(), &|e, s, key| {
        let sliced = s.iter().product::<usize>().div_ceil(slice_ps[e]);
        match key {
            "s" | "p0" => vec![sliced],
            "p0:scalar" => vec![1],
            _ => s.to_vec(),
        }
    })?;
    let work = Work(&mut gathered.tensors);
    let updated = py.detach(move || {
        let tensors = work.into_inner();
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (t32, t64): (Vec<_>, Vec<_>) = tensors.iter_mut().partition(|t| t.dtype == Dtype::F32);
        // SAFETY: every tensor was checked by `gather`, which holds its arrays.
        let mut t32: Vec<_> = t32.into_iter().map(|t| unsafe { prodigy_tensor::<f32>(t) }).collect();
        let mut t64: Vec<_> = t64.into_iter().map(|t| unsafe { prodigy_tensor::<f64>(t) }).collect();
        let updated = prodigy(&hs, &mut global, &mut t32, &mut t64);
        (updated, global)
    });
    gathered.held.copy_back(py)?;
    let (updated, global) = updated;
    if updated {
        for dict in &dicts {
            dict.set_item("d_numerator", global.d_numerator)?;
            dict.set_item("d_denom", global.d_denom)?;
            dict.set_item("d", global.d)?;
            dict.set_item("d_max", global.d_max)?;
            dict.set_item("d_hat", global.d_hat)?;
            let k = dict.get_item("k")?.map(|k| k.extract::<i64>()).transpose()?.unwrap_or(0);
            dict.set_item("k", k + 1)?;
        }
    }
    Ok(())
}
