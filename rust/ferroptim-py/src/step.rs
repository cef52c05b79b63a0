//! One optimizer step called from Python: every param group in one call.
//!
//! 1. Read each group's hyperparameters and, for each parameter with a gradient, its
//!    arrays and its state (`optimizer.state[p]`); check everything (see `arrays`).
//! 2. Refuse arrays that share memory where one is written.
//! 3. Advance the scalar state, release the GIL and run the kernels on the pool.
//! 4. Store: scalar state, state created by this step, scratch copies written back.
//!
//! Nothing is changed before step 3, so a step that raises leaves every parameter
//! and every state entry as it was.

use std::sync::Mutex;

use ferroptim::{Batch, Element, Elementwise, TensorSlices, MAX_BUFFERS, MAX_SCALARS};
use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::arrays::{
    buffer_operand, copy_back, grad_operand, param_operand, scalar_array, scalar_slot, type_name, zeros, Dtype, Operand,
    Overlaps,
};
use crate::hyper::{FromGroup, Group};

/// Kernels from different Python threads never run at the same time: two steps over
/// the same arrays (two optimizers sharing a parameter, stepped from two threads)
/// would otherwise write the same memory at once.
static KERNEL_LOCK: Mutex<()> = Mutex::new(());

/// The names the optimizer's Python class gives its state, in kernel order.
pub(crate) struct StateKeys<'py> {
    scalars: Vec<Bound<'py, PyString>>,
    buffers: Vec<Bound<'py, PyString>>,
}

impl<'py> StateKeys<'py> {
    pub(crate) fn new(scalars: &Bound<'py, PyTuple>, buffers: &Bound<'py, PyTuple>) -> PyResult<Self> {
        let strings = |t: &Bound<'py, PyTuple>| -> PyResult<Vec<Bound<'py, PyString>>> {
            t.iter().map(|k| Ok(k.cast_into::<PyString>()?)).collect()
        };
        Ok(StateKeys { scalars: strings(scalars)?, buffers: strings(buffers)? })
    }
}

/// Where a scalar state value goes after the step.
enum ScalarHome {
    /// An existing 0-d float64 array, written in place.
    InPlace(*mut f64),
    /// A new 0-d array stored under the key.
    New,
}

/// One parameter with a gradient, ready for its kernel.
struct Entry<'py> {
    group: usize,
    dtype: Dtype,
    len: usize,
    param: *mut u8,
    grad: *mut u8,
    buffers: [*mut u8; MAX_BUFFERS],
    scalars: [f64; MAX_SCALARS],
    homes: [Option<ScalarHome>; MAX_SCALARS],
    fresh: bool,
    /// The parameter's state dict, whether it is new, and the buffers this step creates.
    state: Option<StateTarget<'py>>,
}

struct StateTarget<'py> {
    key: Bound<'py, PyAny>,
    dict: Bound<'py, PyDict>,
    is_new: bool,
    new_buffers: Vec<(usize, Bound<'py, PyUntypedArray>)>,
}

/// What a label in the overlap check stands for.
#[derive(Clone, Copy)]
enum Role {
    Data,
    Grad,
    Buffer(usize),
}

struct Plan<'py, K> {
    kernels: Vec<K>,
    entries: Vec<Entry<'py>>,
    /// Every array a pointer points into, kept alive until the kernels are done.
    keep: Vec<Bound<'py, PyUntypedArray>>,
    /// Scratch copies to write back into the caller's arrays.
    copy_backs: Vec<(Bound<'py, PyAny>, Bound<'py, PyUntypedArray>)>,
    overlaps: Overlaps<'py>,
    roles: Vec<(usize, usize, Role)>,
}

/// `param_groups[g]['params'][i]`, with its name when the group has `param_names`.
fn param_label(group: &Bound<'_, PyDict>, g: usize, i: usize) -> String {
    let name = group
        .get_item("param_names")
        .ok()
        .flatten()
        .and_then(|names| names.get_item(i).ok())
        .map(|n| format!(" ('{n}')"))
        .unwrap_or_default();
    format!("param_groups[{g}]['params'][{i}]{name}")
}

/// Runs one step of kernel `K` over every group; see the module docs.
pub(crate) fn step<'py, K: FromGroup>(
    py: Python<'py>,
    state: &Bound<'py, PyDict>,
    groups: &Bound<'py, PyList>,
    keys: &StateKeys<'py>,
) -> PyResult<()> {
    let mut plan = Plan::<K> {
        kernels: Vec::with_capacity(groups.len()),
        entries: Vec::new(),
        keep: Vec::new(),
        copy_backs: Vec::new(),
        overlaps: Overlaps::default(),
        roles: Vec::new(),
    };
    let dicts: Vec<Bound<'py, PyDict>> = groups.iter().map(|g| Ok(g.cast_into::<PyDict>()?)).collect::<PyResult<_>>()?;
    for (index, dict) in dicts.iter().enumerate() {
        let kernel = K::from_group(&Group { dict, index })?;
        if keys.scalars.len() != K::SCALARS || keys.buffers.len() < kernel.buffers() {
            return Err(PyValueError::new_err("the optimizer's state names do not fit its kernel"));
        }
        plan.kernels.push(kernel);
    }
    for (g, dict) in dicts.iter().enumerate() {
        let params = Group { dict, index: g }.item("params")?;
        let params = params.cast::<PyList>().map_err(|_| {
            PyTypeError::new_err(format!("param_groups[{g}]['params'] must be a list, got {}", type_name(&params)))
        })?;
        for (i, p) in params.iter().enumerate() {
            plan.gather(py, state, keys, dict, g, i, p)?;
        }
    }
    if let Some((a, b)) = plan.overlaps.find()? {
        return Err(PyValueError::new_err(format!(
            "{} and {} share memory; every parameter, gradient and state array needs its own",
            plan.describe(&dicts, a),
            plan.describe(&dicts, b)
        )));
    }
    plan.run(py);
    plan.store(py, state, keys)
}

impl<'py, K: Elementwise> Plan<'py, K> {
    fn describe(&self, dicts: &[Bound<'py, PyDict>], who: usize) -> String {
        let (g, i, role) = self.roles[who];
        let label = param_label(&dicts[g], g, i);
        match role {
            Role::Data => label,
            Role::Grad => format!("the gradient of {label}"),
            Role::Buffer(k) => format!("a state buffer (#{k}) of {label}"),
        }
    }

    /// Keeps `op` alive for the kernels and records the caller's array for the overlap check.
    fn track(&mut self, op: &Operand<'py>, original: &Bound<'py, PyAny>, write: bool, g: usize, i: usize, role: Role) {
        self.roles.push((g, i, role));
        self.overlaps.add(original, write, self.roles.len() - 1);
        self.keep.push(op.array.clone());
    }

    /// Checks one parameter and queues it if it has a gradient; changes nothing.
    #[allow(clippy::too_many_arguments)]
    fn gather(
        &mut self,
        py: Python<'py>,
        state: &Bound<'py, PyDict>,
        keys: &StateKeys<'py>,
        group: &Bound<'py, PyDict>,
        g: usize,
        i: usize,
        p: Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let what = || param_label(group, g, i);
        let grad = p.getattr(intern!(py, "grad"))?;
        if grad.is_none() {
            return Ok(());
        }
        let data = p.getattr(intern!(py, "data"))?;
        let (param, dtype) = param_operand(&data, &what)?;
        let shape: Vec<usize> = param.array.shape().to_vec();
        let grad_what = || format!("the gradient of {}", what());
        let grad_op = grad_operand(&grad, &shape, dtype, &grad_what)?;
        self.track(&param, &data, true, g, i, Role::Data);
        self.track(&grad_op, &grad, false, g, i, Role::Grad);
        let kernel = &self.kernels[g];
        let nb = kernel.buffers();
        let mut entry = Entry {
            group: g,
            dtype,
            len: param.array.len(),
            param: param.ptr,
            grad: grad_op.ptr,
            buffers: [std::ptr::null_mut(); MAX_BUFFERS],
            scalars: [0.0; MAX_SCALARS],
            homes: [const { None }; MAX_SCALARS],
            fresh: false,
            state: None,
        };
        if let Some(original) = param.original.clone() {
            self.copy_backs.push((original, param.array.clone()));
        }
        if nb > 0 || K::SCALARS > 0 {
            self.gather_state(py, state, keys, &p, &shape, dtype, nb, &mut entry, g, i, &what)?;
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Reads (or prepares) the state of one parameter into `entry`.
    #[allow(clippy::too_many_arguments)]
    fn gather_state(
        &mut self,
        py: Python<'py>,
        state: &Bound<'py, PyDict>,
        keys: &StateKeys<'py>,
        p: &Bound<'py, PyAny>,
        shape: &[usize],
        dtype: Dtype,
        nb: usize,
        entry: &mut Entry<'py>,
        g: usize,
        i: usize,
        what: &dyn Fn() -> String,
    ) -> PyResult<()> {
        let (dict, is_new) = match state.get_item(p)? {
            Some(d) => {
                let d = d.cast_into::<PyDict>().map_err(|e| {
                    PyTypeError::new_err(format!("optimizer.state of {} must be a dict, got {}", what(), type_name(e.into_inner().as_any())))
                })?;
                (d, false)
            }
            None => (PyDict::new(py), true),
        };
        let entry_what = |key: &Bound<'py, PyString>| format!("optimizer.state[{}]['{key}']", what());
        for (k, key) in keys.scalars.iter().enumerate() {
            let (value, home) = match dict.get_item(key)? {
                None => (0.0, ScalarHome::New),
                Some(v) => match scalar_slot(&v) {
                    Some(ptr) => {
                        self.keep.push(v.cast_into::<PyUntypedArray>()?);
                        // SAFETY: `scalar_slot` checked a 0-d, aligned float64 array, kept alive above.
                        (unsafe { *ptr }, ScalarHome::InPlace(ptr))
                    }
                    None => {
                        let x = v.extract::<f64>().map_err(|_| {
                            PyTypeError::new_err(format!("{} must be a number, got {}", entry_what(key), type_name(&v)))
                        })?;
                        (x, ScalarHome::New)
                    }
                },
            };
            entry.scalars[k] = value;
            entry.homes[k] = Some(home);
        }
        let mut new_buffers = Vec::new();
        for (k, key) in keys.buffers.iter().take(nb).enumerate() {
            let op = match dict.get_item(key)? {
                None => {
                    let z = zeros(py, shape, dtype)?;
                    new_buffers.push((k, z.clone()));
                    entry.fresh |= k == 0;
                    self.keep.push(z.clone());
                    Operand::new(z)
                }
                Some(v) => {
                    let bwhat = || entry_what(key);
                    let op = buffer_operand(&v, shape, dtype, &bwhat)?;
                    self.track(&op, &v, true, g, i, Role::Buffer(k));
                    if let Some(original) = op.original.clone() {
                        self.copy_backs.push((original, op.array.clone()));
                    }
                    op
                }
            };
            entry.buffers[k] = op.ptr;
        }
        entry.state = Some(StateTarget { key: p.clone(), dict, is_new, new_buffers });
        Ok(())
    }

    /// Advances the scalar state and runs the kernels, without the GIL.
    fn run(&mut self, py: Python<'_>) {
        let kernels = &self.kernels;
        let mut b32 = Batch::<K, f32>::new();
        let mut b64 = Batch::<K, f64>::new();
        for e in self.entries.iter_mut() {
            let kernel = &kernels[e.group];
            let scalars = &mut e.scalars[..K::SCALARS];
            match e.dtype {
                // SAFETY: see `slices`.
                Dtype::F32 => b32.push(kernel, scalars, e.fresh, unsafe { slices(e.len, e.param, e.grad, &e.buffers, kernel.buffers()) }),
                Dtype::F64 => b64.push(kernel, scalars, e.fresh, unsafe { slices(e.len, e.param, e.grad, &e.buffers, kernel.buffers()) }),
            }
        }
        py.detach(move || {
            let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            b32.run();
            b64.run();
        });
    }

    /// Writes back what the step changed outside the arrays the kernels wrote.
    fn store(self, py: Python<'py>, state: &Bound<'py, PyDict>, keys: &StateKeys<'py>) -> PyResult<()> {
        for e in self.entries {
            let Some(target) = e.state else { continue };
            let StateTarget { key, dict, is_new, new_buffers } = target;
            for (k, home) in e.homes.iter().enumerate().take(K::SCALARS) {
                match home {
                    // SAFETY: the array is alive (in `keep`) and was checked writeable,
                    // aligned and float64; the GIL is held, no kernel runs.
                    Some(ScalarHome::InPlace(ptr)) => unsafe { **ptr = e.scalars[k] },
                    _ => dict.set_item(&keys.scalars[k], scalar_array(py, e.scalars[k])?)?,
                }
            }
            for (k, array) in new_buffers {
                dict.set_item(&keys.buffers[k], array)?;
            }
            if is_new {
                state.set_item(key, dict)?;
            }
        }
        for (original, scratch) in &self.copy_backs {
            copy_back(original, scratch)?;
        }
        drop(self.keep);
        Ok(())
    }
}

/// Slices over an entry's arrays.
///
/// # Safety
/// Every pointer points to `len` elements of `T` in an array kept alive by the plan:
/// checked to hold that dtype, C-contiguous and aligned (or a fresh scratch copy).
/// No two of the arrays overlap where one is written (`Overlaps`), and no other Rust
/// code uses them meanwhile (`KERNEL_LOCK`). As with every extension that releases the
/// GIL over NumPy memory, Python code writing the same arrays from another thread
/// during the step races with it; that is the caller's to avoid.
unsafe fn slices<'a, T: Element>(
    len: usize,
    param: *mut u8,
    grad: *mut u8,
    buffers: &[*mut u8; MAX_BUFFERS],
    nb: usize,
) -> TensorSlices<'a, T> {
    let mk = |ptr: *mut u8| -> &'a mut [T] {
        if len == 0 {
            &mut []
        } else {
            // SAFETY: the caller's contract.
            unsafe { std::slice::from_raw_parts_mut(ptr.cast::<T>(), len) }
        }
    };
    let grad: &'a [T] = mk(grad);
    TensorSlices::new(mk(param), grad, buffers[..nb].iter().map(|&b| mk(b)))
}
