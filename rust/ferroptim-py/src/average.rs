//! `_core.average_`: the in-place weight averaging of `swa_utils` (see
//! `ferroptim::Average`) over lists of arrays, in one call.

use ferroptim::Average;
use numpy::PyUntypedArrayMethods;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{grad_operand, param_operand};
use crate::held::Held;
use crate::step::{run_entries, Entry, Sizes};

/// `averaged[i] ← averaged[i] + (current[i] − averaged[i]) / value` (`how="mean"`) or
/// `lerp(averaged[i], current[i], value)` (`how="lerp"`), for every i, in place.
/// `averaged` holds float32 / float64 arrays; each `current[i]` has the shape of
/// `averaged[i]` (and is cast to its dtype).
#[pyfunction]
pub(crate) fn average_(
    py: Python<'_>,
    averaged: Vec<Bound<'_, PyAny>>,
    current: Vec<Bound<'_, PyAny>>,
    how: &str,
    value: f64,
) -> PyResult<()> {
    if averaged.len() != current.len() {
        return Err(PyValueError::new_err(format!(
            "{} averaged arrays but {} current ones",
            averaged.len(),
            current.len()
        )));
    }
    let kernel = match how {
        "mean" => Average::Mean { count: value },
        "lerp" => Average::Lerp { weight: value },
        _ => return Err(PyValueError::new_err(format!("how must be 'mean' or 'lerp', got {how:?}"))),
    };
    let mut held = Held::default();
    let mut entries = Vec::with_capacity(averaged.len());
    for (i, (a, c)) in averaged.into_iter().zip(current).enumerate() {
        let (avg, dtype) = param_operand(a, &|| format!("averaged[{i}]"))?;
        let shape = avg.array.shape().to_vec();
        let cur = grad_operand(c, &shape, dtype, &|| format!("current[{i}]"))?;
        let len = avg.array.len();
        let param = held.hold(avg, true, (2 * i) as u32);
        let grad = held.hold(cur, false, (2 * i + 1) as u32);
        entries.push(Entry::plain(i, dtype, len, param, grad));
    }
    if let Some((a, b)) = held.find_overlap(py)? {
        let name = |w: u32| format!("{}[{}]", if w.is_multiple_of(2) { "averaged" } else { "current" }, w / 2);
        return Err(PyValueError::new_err(format!("{} and {} share memory", name(a), name(b))));
    }
    let sizes = Sizes::of(&entries);
    // SAFETY: every pointer comes from an operand checked above (dtype, shape,
    // writeability; a scratch copy where the array could not be used in place), no
    // written array overlaps another, and `held` keeps them all alive until the
    // kernels are done.
    unsafe { run_entries(py, &[kernel], &mut entries, sizes.into()) };
    held.copy_back(py)
}
