//! The boundary of SparseAdam, whose gradients are (indices, values) pairs: the Python
//! class hands over the arrays of every param group as lists, and
//! every array is checked here, with the GIL held, before any kernel runs; the same
//! checks as for elementwise steps (dtype, shape, writeable, overlap; scratch copies
//! for odd layouts, written back afterwards). Adafactor and Muon go through `step`.

use numpy::PyUntypedArrayMethods;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{buffer_operand, grad_operand, param_operand, scalar_slot, type_name, Dtype};
use crate::held::{Held, Work};
use crate::hyper::Group;
use crate::step::{param_label, KERNEL_LOCK};

/// One parameter of a tensor-wise step, checked: pointers into held arrays.
pub(crate) struct Tensor {
    /// Its position in the lists of the step.
    pub(crate) position: usize,
    /// Its param group and its position in the group's `params`.
    pub(crate) group: usize,
    pub(crate) index: usize,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) len: usize,
    pub(crate) param: *mut u8,
    pub(crate) grad: *mut u8,
    /// Each state array's elements and length, in the order given.
    pub(crate) state: Vec<(*mut u8, usize)>,
    /// The `step` count's 0-d float64 array, if the optimizer keeps one.
    pub(crate) step: Option<*mut f64>,
}

/// The checked arrays of one step.
pub(crate) struct Gathered {
    pub(crate) tensors: Vec<Tensor>,
    pub(crate) held: Held,
}

/// What the Python class hands over for one parameter with a gradient.
pub(crate) struct Given<'py> {
    /// Its param group and its position in the group's `params`.
    pub(crate) group: usize,
    pub(crate) index: usize,
    pub(crate) data: Bound<'py, PyAny>,
    /// The gradient as an array (SparseAdam: its values).
    pub(crate) grad: Bound<'py, PyAny>,
    /// `(key, array)` of each state array the kernel uses.
    pub(crate) state: Vec<(String, Bound<'py, PyAny>)>,
    /// The `step` entry, when the optimizer keeps one.
    pub(crate) step: Option<Bound<'py, PyAny>>,
}

/// Checks every array of a step; nothing is changed. `grad_shape` (from the position
/// in the lists and the parameter's shape) and `state_shape` (from the parameter's
/// shape and the key) give the shape each must have.
pub(crate) fn gather<'py>(
    py: Python<'py>,
    groups: &[Bound<'py, PyDict>],
    given: Vec<Given<'py>>,
    grad_shape: &dyn Fn(usize, &[usize]) -> Vec<usize>,
    state_shape: &dyn Fn(&[usize], &str) -> Vec<usize>,
) -> PyResult<Gathered> {
    let mut held = Held::default();
    let mut tensors = Vec::with_capacity(given.len());
    let mut labels = Vec::with_capacity(given.len());
    for (e, item) in given.into_iter().enumerate() {
        let group = groups.get(item.group).ok_or_else(|| PyValueError::new_err("no such param group"))?;
        let what = || param_label(group, item.group, item.index);
        let (param, dtype) = param_operand(item.data, &what)?;
        let shape = param.array.shape().to_vec();
        let len = param.array.len();
        let grad_what = || format!("the gradient of {}", what());
        let grad = grad_operand(item.grad, &grad_shape(e, &shape), dtype, &grad_what)?;
        let who = |role: usize| (e * 8 + role) as u32;
        let mut t = Tensor {
            position: e,
            group: item.group,
            index: item.index,
            dtype,
            len,
            param: held.hold(param, true, who(0)),
            grad: held.hold(grad, false, who(1)),
            state: Vec::with_capacity(item.state.len()),
            step: None,
            shape,
        };
        for (k, (key, value)) in item.state.into_iter().enumerate() {
            let key_what = || format!("optimizer.state[{}]['{key}']", what());
            let op = buffer_operand(value, &state_shape(&t.shape, &key), dtype, &key_what)?;
            let n = op.array.len();
            t.state.push((held.hold(op, true, who(2 + k)), n));
        }
        if let Some(step) = item.step {
            let (array, ptr) = scalar_slot(&step).ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "optimizer.state[{}]['step'] must be a writeable 0-d float64 array, got {}",
                    what(),
                    type_name(&step)
                ))
            })?;
            held.keep.push(array.unbind());
            t.step = Some(ptr);
        }
        labels.push(what());
        tensors.push(t);
    }
    if let Some((a, b)) = held.find_overlap(py)? {
        let describe = |who: u32| {
            let (e, role) = (who as usize / 8, who as usize % 8);
            match role {
                0 => labels[e].clone(),
                1 => format!("the gradient of {}", labels[e]),
                k => format!("state array {} of {}", k - 2, labels[e]),
            }
        };
        return Err(PyValueError::new_err(format!(
            "{} and {} share memory; every parameter, gradient and state array needs its own",
            describe(a),
            describe(b)
        )));
    }
    Ok(Gathered { tensors, held })
}

/// Reads every group's hyperparameters with `hyper`.
pub(crate) fn hypers<H>(
    groups: &[Bound<'_, PyDict>],
    hyper: impl Fn(&Group<'_, '_>) -> PyResult<H>,
) -> PyResult<Vec<H>> {
    groups.iter().enumerate().map(|(index, dict)| hyper(&Group { dict, index })).collect()
}

/// Runs `kernel(hyper, float32 tensors, float64 tensors)` for each param group, with
/// the GIL released and `KERNEL_LOCK` held, then writes the scratch copies back.
pub(crate) fn run_by_group<H: Sync>(
    py: Python<'_>,
    hypers: &[H],
    gathered: &mut Gathered,
    kernel: impl Fn(&H, Vec<&mut Tensor>, Vec<&mut Tensor>) + Send + Sync,
) -> PyResult<()> {
    let work = Work(&mut gathered.tensors);
    py.detach(move || {
        let tensors = work.into_inner();
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for (g, h) in hypers.iter().enumerate() {
            let (t32, t64) = tensors.iter_mut().filter(|t| t.group == g).partition(|t| t.dtype == Dtype::F32);
            kernel(h, t32, t64);
        }
    });
    gathered.held.copy_back(py)
}

/// `given` from the Python lists of one call: (group, index) pairs, data, grads,
/// states, steps.
pub(crate) fn zip_given<'py>(
    indices: Vec<(usize, usize)>,
    data: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    states: Vec<Vec<(String, Bound<'py, PyAny>)>>,
    steps: Option<Vec<Bound<'py, PyAny>>>,
) -> PyResult<Vec<Given<'py>>> {
    let n = indices.len();
    if data.len() != n || grads.len() != n || states.len() != n || steps.as_ref().is_some_and(|s| s.len() != n) {
        return Err(PyValueError::new_err("the lists of a step differ in length"));
    }
    let mut steps = steps.map(Vec::into_iter);
    Ok(indices
        .into_iter()
        .zip(data)
        .zip(grads)
        .zip(states)
        .map(|((((group, index), data), grad), state)| Given {
            group,
            index,
            data,
            grad,
            state,
            step: steps.as_mut().and_then(Iterator::next),
        })
        .collect())
}
