//! `ferroptim._core`: the Python bindings of the `ferroptim` crate.
//!
//! The Python package calls one function per optimizer step, with every param group
//! of the optimizer, its `state` dict and the names its class gives the state. See
//! `step` for what happens in that call and `arrays` for what an array must be.

mod adafactor;
mod arrays;
mod average;
mod beyond;
mod bucket;
mod check_hyper;
mod check_scheduler;
mod checkpoint;
mod dict_version;
mod eight_bit;
mod grad_utils;
mod held;
mod hyper;
mod lbfgs;
mod list_items;
mod lr_rule;
mod muon;
mod plan;
mod probe;
mod slots;
mod sparse_adam;
mod step;
mod tensorwise;

use ferroptim::{
    AdadeltaHyper, AdagradHyper, AdamHyper, AdamaxHyper, AsgdHyper, NadamHyper, RadamHyper, RmspropHyper, RpropHyper,
    SgdHyper,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::hyper::FromGroup;
use crate::plan::StepPlan;
use crate::step::{run_entries, step, StateKeys};

/// Defines `_core.<name>(state, param_groups, scalar_keys, buffer_keys, grads=None,
/// plan=None)`: one step of an elementwise optimizer over every param group (see
/// `step`); `grads`, when given, holds each parameter's gradient in param-group order,
/// used in place of its `.grad` (for parameters whose `.grad` cannot be assigned);
/// `plan`, the optimizer's `StepPlan` (the last step's verified plan, see `plan`).
macro_rules! step_function {
    ($name:ident, $hyper:ty, $doc:literal) => {
        #[doc = $doc]
        #[pyfunction]
        #[pyo3(signature = (state, param_groups, scalar_keys, buffer_keys, grads=None, plan=None))]
        fn $name<'py>(
            py: Python<'py>,
            state: &Bound<'py, PyDict>,
            param_groups: &Bound<'py, PyList>,
            scalar_keys: &Bound<'py, PyTuple>,
            buffer_keys: &Bound<'py, PyTuple>,
            grads: Option<Bound<'py, PyList>>,
            plan: Option<Bound<'py, StepPlan>>,
        ) -> PyResult<()> {
            let keys = StateKeys::new(scalar_keys, buffer_keys)?;
            let (grads, plan) = (grads.as_ref(), plan.as_ref());
            // SAFETY: `step` hands `run` only the entries it gathered and checked.
            let make = <$hyper>::from_group;
            step::<$hyper>(py, state, param_groups, &keys, grads, plan, make, true, |py, k, e, d| unsafe {
                run_entries(py, k, e, d)
            })?;
            Ok(())
        }
    };
}

step_function!(sgd_step, SgdHyper, "One SGD step; state () + (momentum_buffer,).");
step_function!(adam_step, AdamHyper, "One Adam / AdamW step; state (step,) + (exp_avg, exp_avg_sq, max_exp_avg_sq).");
step_function!(adagrad_step, AdagradHyper, "One Adagrad step; state (step,) + (sum,).");
step_function!(adadelta_step, AdadeltaHyper, "One Adadelta step; state (step,) + (square_avg, acc_delta).");
step_function!(adamax_step, AdamaxHyper, "One Adamax step; state (step,) + (exp_avg, exp_inf).");
step_function!(nadam_step, NadamHyper, "One NAdam step; state (step, mu_product) + (exp_avg, exp_avg_sq).");
step_function!(radam_step, RadamHyper, "One RAdam step; state (step,) + (exp_avg, exp_avg_sq).");
step_function!(
    rmsprop_step,
    RmspropHyper,
    "One RMSprop step; state (step,) + (square_avg, momentum_buffer, grad_avg)."
);
step_function!(rprop_step, RpropHyper, "One Rprop step; state (step,) + (prev, step_size).");
step_function!(asgd_step, AsgdHyper, "One ASGD step; state (step, eta, mu) + (ax,).");

/// Sets the number of threads steps run on.
#[pyfunction]
fn set_num_threads(threads: usize) -> PyResult<()> {
    ferroptim::set_num_threads(threads).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The number of threads steps run on.
#[pyfunction]
fn get_num_threads() -> usize {
    ferroptim::get_num_threads()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sgd_step, m)?)?;
    m.add_function(wrap_pyfunction!(check_hyper::check_hyper, m)?)?;
    m.add_function(wrap_pyfunction!(check_scheduler::check_scheduler, m)?)?;
    for f in [
        wrap_pyfunction!(adam_step, m)?,
        wrap_pyfunction!(adagrad_step, m)?,
        wrap_pyfunction!(adadelta_step, m)?,
        wrap_pyfunction!(adamax_step, m)?,
        wrap_pyfunction!(nadam_step, m)?,
        wrap_pyfunction!(radam_step, m)?,
        wrap_pyfunction!(rmsprop_step, m)?,
        wrap_pyfunction!(rprop_step, m)?,
        wrap_pyfunction!(asgd_step, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add_function(wrap_pyfunction!(adafactor::adafactor_step, m)?)?;
    m.add_function(wrap_pyfunction!(muon::muon_step, m)?)?;
    m.add_function(wrap_pyfunction!(lbfgs::lbfgs_step, m)?)?;
    m.add_function(wrap_pyfunction!(bucket::bucket_pack, m)?)?;
    m.add_function(wrap_pyfunction!(bucket::bucket_unpack_, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint::checkpoint_dumps, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint::checkpoint_loads, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_adam::sparse_adam_step, m)?)?;
    for f in [
        wrap_pyfunction!(beyond::lion_step, m)?,
        wrap_pyfunction!(beyond::lars_step, m)?,
        wrap_pyfunction!(beyond::lamb_step, m)?,
        wrap_pyfunction!(beyond::adan_step, m)?,
        wrap_pyfunction!(beyond::adopt_step, m)?,
        wrap_pyfunction!(beyond::ademamix_step, m)?,
        wrap_pyfunction!(beyond::schedule_free_sgd_step, m)?,
        wrap_pyfunction!(beyond::schedule_free_adamw_step, m)?,
        wrap_pyfunction!(beyond::schedule_free_radam_step, m)?,
        wrap_pyfunction!(beyond::prodigy_step, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add_function(wrap_pyfunction!(eight_bit::eight_bit_step, m)?)?;
    m.add_function(wrap_pyfunction!(average::average_, m)?)?;
    m.add_function(wrap_pyfunction!(grad_utils::grad_norms, m)?)?;
    m.add_function(wrap_pyfunction!(grad_utils::grad_scale_, m)?)?;
    m.add_function(wrap_pyfunction!(grad_utils::grad_clamp_, m)?)?;
    m.add_class::<StepPlan>()?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(probe::stream, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::lr_rule, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::lr_rule_check, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::cyclic_scale, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::cyclic_size, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::one_cycle_lr_points, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::one_cycle_phases, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::warm_restarts_position, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::plateau_is_better, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::plateau_reduced, m)?)?;
    m.add_function(wrap_pyfunction!(lr_rule::swa_alpha, m)?)?;
    m.add("NUM_THREADS_ENV", ferroptim::threads::NUM_THREADS_ENV)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
