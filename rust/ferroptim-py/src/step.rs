//! One optimizer step called from Python: every param group in one call.
//!
//! 1. Read each group's hyperparameters and, for each parameter with a gradient, its
//!    arrays and its state (`optimizer.state[p]`); check everything (see `arrays`).
//! 2. Refuse arrays that share memory where one is written.
//! 3. Advance the scalar state, release the GIL and run the kernels on the pool (a
//!    replay whose gradients only the GIL keeps alive keeps it: [`Dispatch`]).
//! 4. Store: scalar state, state created by this step, scratch copies written back.
//!
//! Nothing is changed before step 3, so a step that raises leaves every parameter
//! and every state entry as it was.
//!
//! Given the optimizer's `StepPlan`, steps 1 and 2 first try the last step's
//! verified plan (`plan`): every array found to be the one checked then, unchanged,
//! is used without checking it again; gradients are checked as always. Anything
//! else runs the full checks, which record a new plan.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard, TryLockError};

use ferroptim::crew;
use ferroptim::exec::{parallel, piece_size, shared};
use ferroptim::{Batch, Element, Elementwise, TensorSlices, MAX_BUFFERS, MAX_SCALARS};
use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::arrays::{
    buffer_operand, grad_operand, param_operand, scalar_array, scalar_slot, type_name, zeros, Dtype, Elem, Operand,
};
use crate::held::{read_slice, slice, Held, Work};
use crate::hyper::Group;
use crate::plan::{state_of, StepPlan, StepView};

/// What a step needs to know of a kernel's per-parameter state: its scalars and its
/// buffer slots, their shapes and how a new buffer starts. Every elementwise kernel
/// has buffers shaped like its parameter that start at zero; the optimizers beyond
/// torch.optim implement it themselves (a copy of the parameter, Prodigy's flat
/// sliced arrays).
pub(crate) trait Layout {
    /// How many scalar state values each parameter has.
    const SCALARS: usize;
    /// How many buffer slots this configuration spans.
    fn buffers(&self) -> usize;
    /// Whether its kernels run through a `Batch`, which shares a big enough step's
    /// work with the pool's threads (`exec::parallel`): the elementwise kernels.
    const SHARES: bool = false;
    /// Whether this configuration uses buffer slot `k`.
    fn uses_buffer(&self, k: usize) -> bool {
        k < self.buffers()
    }
    /// A key of everything in this configuration that decides its parameters' slots
    /// given their shape, dtype and found state: configurations with equal keys lay
    /// state out alike, so a step's verified plan can be replayed (`plan`) while only
    /// the hyperparameters changed. None: no such key (every step is checked in
    /// full). The default covers layouts whose slots follow from `uses_buffer` and
    /// the parameter's shape (which a replayed plan compares) alone; a layout whose
    /// slots depend on anything else (a group value, the state found) overrides it.
    fn layout_key(&self) -> Option<u64>
    where
        Self: Sized,
    {
        Some(slots_key(self))
    }
    /// The shape buffer `k` has for a parameter of `shape`; `found`: the array the
    /// state holds, if any.
    fn buffer_shape(&self, _k: usize, shape: &[usize], _found: Option<&Bound<'_, PyAny>>) -> Vec<usize> {
        shape.to_vec()
    }
    /// How a new buffer `k` starts.
    fn init(&self, _k: usize) -> Init {
        Init::Zeros
    }
    /// Buffer slot `k` of a parameter of `shape` and `dtype`: None if this parameter
    /// does not use it. `found`: the array the state holds for it, `first` the one
    /// for slot 0 (a layout may differ between parameters by their first buffer: the
    /// 8-bit optimizers keep float32 state for small parameters). By default the
    /// configuration's slots, of the parameter's dtype, written. `what` names the
    /// parameter in errors.
    fn slot(
        &self,
        k: usize,
        shape: &[usize],
        dtype: Dtype,
        found: Option<&Bound<'_, PyAny>>,
        _first: Option<&Bound<'_, PyAny>>,
        _what: &dyn Fn() -> String,
    ) -> PyResult<Option<Slot>> {
        Ok(Some(Slot {
            shape: self.buffer_shape(k, shape, found),
            elem: dtype.into(),
            init: self.init(k),
            write: true,
        }))
    }
}

/// How one parameter keeps one buffer slot.
pub(crate) struct Slot {
    pub(crate) shape: Vec<usize>,
    pub(crate) elem: Elem,
    pub(crate) init: Init,
    /// Whether the kernels write it (else it is only read, and may be shared).
    pub(crate) write: bool,
}

/// The slots a configuration uses and spans, as bits: the default layout key.
pub(crate) fn slots_key<K: Layout>(k: &K) -> u64 {
    let uses = (0..SLOTS).filter(|&s| k.uses_buffer(s)).fold(0u64, |bits, s| bits | 1 << s);
    uses | (k.buffers() as u64) << SLOTS
}

/// How a new state buffer starts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Init {
    Zeros,
    /// A copy of the parameter (schedule-free's `z`).
    Param,
    /// Every `step`-th element of the flattened parameter, or a 0-d zero if the
    /// parameter is all zeros (Prodigy's `p0`).
    ParamSliced {
        step: usize,
    },
    /// bitsandbytes' dynamic quantization map (float32, 256 entries), signed or not;
    /// one array shared by the parameters whose state a step creates.
    DynamicMap {
        signed: bool,
    },
}

/// The layout of elementwise kernels: their own scalars and buffer slots.
macro_rules! elementwise_layout {
    ($($k:ty),*) => {$(
        impl Layout for $k {
            const SCALARS: usize = <$k as Elementwise>::SCALARS;
            const SHARES: bool = true;
            fn buffers(&self) -> usize {
                Elementwise::buffers(self)
            }
            fn uses_buffer(&self, k: usize) -> bool {
                Elementwise::uses_buffer(self, k)
            }
        }
    )*};
}

elementwise_layout!(
    ferroptim::SgdHyper,
    ferroptim::AdamHyper,
    ferroptim::AdagradHyper,
    ferroptim::AdadeltaHyper,
    ferroptim::AdamaxHyper,
    ferroptim::NadamHyper,
    ferroptim::RadamHyper,
    ferroptim::RmspropHyper,
    ferroptim::RpropHyper,
    ferroptim::AsgdHyper
);

/// Kernels from different Python threads never run at the same time: two steps over
/// the same arrays (two optimizers sharing a parameter, stepped from two threads)
/// would otherwise write the same memory at once.
pub(crate) static KERNEL_LOCK: Mutex<()> = Mutex::new(());

/// The names the optimizer's Python class gives its state, in kernel order.
pub(crate) struct StateKeys<'py> {
    pub(crate) scalars: Vec<Bound<'py, PyString>>,
    pub(crate) buffers: Vec<Bound<'py, PyString>>,
}

impl<'py> StateKeys<'py> {
    pub(crate) fn new(scalars: &Bound<'py, PyTuple>, buffers: &Bound<'py, PyTuple>) -> PyResult<Self> {
        let strings = |t: &Bound<'py, PyTuple>| -> PyResult<Vec<Bound<'py, PyString>>> {
            t.iter().map(|k| Ok(k.cast_into::<PyString>()?)).collect()
        };
        Ok(StateKeys { scalars: strings(scalars)?, buffers: strings(buffers)? })
    }
}

pub(crate) const NONE: u32 = u32::MAX;

/// The most buffer slots a parameter's state has: the elementwise kernels' buffers,
/// or the 8-bit optimizers' state1, state2, absmax1, absmax2, qmap1, qmap2.
pub(crate) const SLOTS: usize = 6;
const _: () = assert!(SLOTS >= MAX_BUFFERS && 2 + SLOTS <= 8, "slot labels are entry × 8 + role");

/// One parameter with a gradient, ready for its kernel.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) group: u32,
    pub(crate) index: u32,
    pub(crate) dtype: Dtype,
    pub(crate) fresh: bool,
    pub(crate) len: usize,
    /// The parameter's last two dims (rows, columns), for the kernels that see it
    /// as a batch of matrices (Adafactor, Muon); (1, len) for fewer than two dims.
    pub(crate) matrix: [usize; 2],
    pub(crate) param: *mut u8,
    pub(crate) grad: *mut u8,
    pub(crate) buffers: [*mut u8; SLOTS],
    /// Each buffer's element count (the parameter's, but for Prodigy's sliced arrays
    /// and the 8-bit state's absmax and maps).
    pub(crate) lens: [usize; SLOTS],
    pub(crate) scalars: [f64; MAX_SCALARS],
    /// Where each scalar is written back in place; null: stored as a new 0-d array.
    pub(crate) homes: [*mut f64; MAX_SCALARS],
    /// Index into `Plan::targets` when this step adds state entries, else `NONE`.
    pub(crate) target: u32,
}

impl Entry {
    /// An entry with no state: a kernel writing `param` and reading `grad` (the
    /// probe, weight averaging).
    pub(crate) fn plain(index: usize, dtype: Dtype, len: usize, param: *mut u8, grad: *mut u8) -> Self {
        Entry {
            group: 0,
            index: index as u32,
            dtype,
            fresh: false,
            len,
            matrix: [1, len],
            param,
            grad,
            buffers: [std::ptr::null_mut(); SLOTS],
            lens: [len; SLOTS],
            scalars: [0.0; MAX_SCALARS],
            homes: [std::ptr::null_mut(); MAX_SCALARS],
            target: NONE,
        }
    }
}

/// State entries a step adds for one parameter.
struct Target<'py> {
    key: Bound<'py, PyAny>,
    dict: Bound<'py, PyDict>,
    is_new: bool,
    /// The parameter has no hash (a mygrad tensor, a `@dataclass`): its state goes
    /// through the state mapping's own methods (`ParamState` keys it by identity).
    by_identity: bool,
    new_buffers: [Option<Bound<'py, PyUntypedArray>>; SLOTS],
}

/// What a label in the overlap check stands for: entry index × 8 + role, the role
/// being 0 for the parameter, 1 for its gradient, 2 + k for its state buffer k.
fn who(entry: usize, role: usize) -> u32 {
    (entry * 8 + role) as u32
}

/// The per-parameter lists of a step, reused from one step to the next on each
/// thread: a step over 2000 small parameters would otherwise allocate and free about
/// a megabyte each time, which glibc returns to the system at the end of the step
/// and faults back in at the start of the next (measured: +60% on such a step).
#[derive(Default)]
struct Scratch {
    entries: Vec<Entry>,
    /// Every array a pointer points into, kept alive until the kernels are done.
    held: Held,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Lends the thread's scratch lists to one step and takes them back, emptied, when
/// the step ends (however it ends). A step re-entered from Python code it calls
/// (a `.grad` property that steps) gets fresh lists.
struct Lease(Scratch);

impl Lease {
    fn take() -> Self {
        Lease(SCRATCH.take())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut s = std::mem::take(&mut self.0);
        s.entries.clear();
        s.held.clear(); // the GIL is held: every step runs in a call from Python
        SCRATCH.set(s);
    }
}

struct Plan<'py, K> {
    kernels: Vec<K>,
    targets: Vec<Target<'py>>,
    s: Lease,
    /// The dynamic maps this step created (signed, unsigned), shared by new states.
    maps: [Option<Bound<'py, PyUntypedArray>>; 2],
}

/// `param_groups[g]['params'][i]`, with its name when the group has `param_names`.
pub(crate) fn param_label(group: &Bound<'_, PyDict>, g: usize, i: usize) -> String {
    let name = group
        .get_item("param_names")
        .ok()
        .flatten()
        .and_then(|names| names.get_item(i).ok())
        .map(|n| format!(" ('{n}')"))
        .unwrap_or_default();
    format!("param_groups[{g}]['params'][{i}]{name}")
}

/// Runs one step of kernel `K` over every group; see the module docs. `make` reads
/// a group's kernel from its dict (usually `K::from_group`). `run(py, kernels,
/// entries, dispatch)` runs the kernels (`kernels[e.group]` for entry `e`): it gets
/// only entries gathered here, whose pointers satisfy the contract of [`slices`]
/// (`lens[k]` elements in buffer k). `attach`: whether `run` honours the
/// [`Dispatch`] it is handed (the entries' sizes, from the plan when the step
/// replayed one, and whether the kernels keep the GIL), as [`run_entries`] does;
/// else a replay's kernels always release the GIL.
/// `verified`: the optimizer's plan (see the module docs).
/// Returns each group's kernel (the optimizers beyond torch.optim write group-level
/// counters from them once the step succeeded).
#[allow(clippy::too_many_arguments)]
pub(crate) fn step<'py, K: Layout>(
    py: Python<'py>,
    state: &Bound<'py, PyDict>,
    groups: &Bound<'py, PyList>,
    keys: &StateKeys<'py>,
    grads: Option<&Bound<'py, PyList>>,
    verified: Option<&Bound<'py, StepPlan>>,
    make: impl Fn(&Group<'_, 'py>) -> PyResult<K>,
    attach: bool,
    run: impl FnOnce(Python<'py>, &[K], &mut [Entry], Dispatch<'_>),
) -> PyResult<Vec<K>> {
    // The last step's verified plan, unless another step is using it (a step
    // re-entered from Python code it calls, or one from another thread).
    let mut verified = verified.and_then(|v| v.try_borrow_mut().ok());
    // A replay whose kernels will share their work with the pool's threads wakes
    // them first, to be awake when the kernels run (a stale plan only wastes their
    // wait).
    let _crew = verified.as_ref().filter(|v| K::SHARES && parallel(v.sizes().elements())).map(|_| crew::wake_ahead());
    let dicts: Vec<Bound<'py, PyDict>> =
        groups.iter().map(|g| Ok(g.cast_into::<PyDict>()?)).collect::<PyResult<_>>()?;
    let mut kernels = Vec::with_capacity(dicts.len());
    let mut lists = Vec::with_capacity(dicts.len());
    for (index, dict) in dicts.iter().enumerate() {
        let group = Group { dict, index };
        let kernel = make(&group)?;
        if keys.scalars.len() != K::SCALARS || keys.buffers.len() < kernel.buffers() {
            return Err(PyValueError::new_err("the optimizer's state names do not fit its kernel"));
        }
        kernels.push(kernel);
        let params = group.item("params")?;
        lists.push(params.cast_into::<PyList>().map_err(|e| {
            let params = e.into_inner();
            PyTypeError::new_err(format!("param_groups[{index}]['params'] must be a list, got {}", type_name(&params)))
        })?);
    }
    if let Some(grads) = grads {
        let n: usize = lists.iter().map(|l| l.len()).sum();
        if grads.len() != n {
            return Err(PyValueError::new_err(format!("{} gradients given for {n} parameters", grads.len())));
        }
    }
    let layouts: Vec<Option<u64>> = kernels.iter().map(Layout::layout_key).collect();
    let mut plan = Plan { kernels, targets: Vec::new(), s: Lease::take(), maps: [None, None] };
    let s = StepView {
        kernel: std::any::type_name::<K>(),
        state,
        groups,
        dicts: &dicts,
        lists: &lists,
        layouts: &layouts,
        keys,
        grads,
    };
    let scratch = &mut plan.s.0;
    let replayed = verified.as_ref().is_some_and(|v| v.replay(&s, &mut scratch.entries, &mut scratch.held));
    if !replayed {
        scratch.entries.clear();
        scratch.held.clear();
        if let Some(v) = verified.as_mut() {
            v.clear(); // stale: released now, recorded anew below
        }
        let mut flat = 0;
        for (g, (dict, list)) in dicts.iter().zip(&lists).enumerate() {
            for (i, p) in list.iter().enumerate() {
                let grad = match grads {
                    Some(grads) => grads.get_item(flat)?,
                    None => p.getattr(intern!(py, "grad"))?,
                };
                flat += 1;
                plan.gather(py, state, keys, dict, g, i, p, grad)?;
            }
        }
        if let Some((a, b)) = plan.s.0.held.find_overlap(py)? {
            return Err(PyValueError::new_err(format!(
                "{} and {} share memory; every parameter, gradient and state array needs its own",
                plan.describe(&dicts, a),
                plan.describe(&dicts, b)
            )));
        }
        if let Some(v) = verified.as_mut() {
            v.record(&s, &plan.s.0.entries);
        }
    }
    let Scratch { entries, held } = &mut plan.s.0;
    let sizes = match &verified {
        Some(v) if replayed => v.sizes(),
        _ => Sizes::of(entries),
    };
    // A replay that read its gradients without taking references to them (see
    // `plan::shared`) runs its kernels with the GIL kept, unless they take long (a
    // step of `SERIAL_BELOW` elements or more: milliseconds, in which other threads
    // must run) or another thread's kernels are running (it would wait for them
    // holding the GIL): then it takes the references and releases the GIL, as every
    // other step does.
    let attached = match held.unheld.is_empty() || !shared(sizes.elements()) {
        true => None,
        false => attach.then(kernel_lock_now).flatten(),
    };
    if attached.is_none() {
        held.hold_unheld(py);
    } else if let Some(v) = &verified {
        v.count_attached();
    }
    // every entry was gathered from checked, non-overlapping arrays that `keep`
    // holds alive until the plan is dropped (or, with the GIL kept, their objects)
    run(py, &plan.kernels, entries, Dispatch { sizes, attached });
    plan.store(py, state, keys, sizes.homes && attach)
}

impl<'py, K: Layout> Plan<'py, K> {
    fn describe(&self, dicts: &[Bound<'py, PyDict>], who: u32) -> String {
        let (entry, role) = (who as usize / 8, who as usize % 8);
        let e = &self.s.0.entries[entry];
        let label = param_label(&dicts[e.group as usize], e.group as usize, e.index as usize);
        match role {
            0 => label,
            1 => format!("the gradient of {label}"),
            k => format!("state buffer {} of {label}", k - 2),
        }
    }

    fn hold(&mut self, op: Operand<'py>, write: bool, who: u32) -> *mut u8 {
        self.s.0.held.hold(op, write, who)
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
        grad: Bound<'py, PyAny>,
    ) -> PyResult<()> {
        if grad.is_none() {
            return Ok(());
        }
        let what = || param_label(group, g, i);
        let (param, dtype) = param_operand(p.getattr(intern!(py, "data"))?, &what)?;
        let array = param.array.clone();
        let shape = array.shape();
        let grad_what = || format!("the gradient of {}", what());
        let grad = grad_operand(grad, shape, dtype, &grad_what)?;
        let e = self.s.0.entries.len();
        let mut entry = Entry {
            group: g as u32,
            index: i as u32,
            dtype,
            fresh: false,
            len: array.len(),
            matrix: match *shape {
                [.., rows, cols] => [rows, cols],
                _ => [1, array.len()],
            },
            param: self.hold(param, true, who(e, 0)),
            grad: self.hold(grad, false, who(e, 1)),
            buffers: [std::ptr::null_mut(); SLOTS],
            lens: [array.len(); SLOTS],
            scalars: [0.0; MAX_SCALARS],
            homes: [std::ptr::null_mut(); MAX_SCALARS],
            target: NONE,
        };
        let kernel = &self.kernels[g];
        let uses: [bool; SLOTS] = std::array::from_fn(|k| kernel.uses_buffer(k));
        if uses.contains(&true) || K::SCALARS > 0 {
            self.gather_state(py, state, keys, g, &p, shape, uses, &mut entry, &what)?;
        }
        self.s.0.entries.push(entry);
        Ok(())
    }

    /// Reads (or prepares) the state of one parameter into `entry`.
    #[allow(clippy::too_many_arguments)]
    fn gather_state(
        &mut self,
        py: Python<'py>,
        state: &Bound<'py, PyDict>,
        keys: &StateKeys<'py>,
        g: usize,
        p: &Bound<'py, PyAny>,
        shape: &[usize],
        uses: [bool; SLOTS],
        entry: &mut Entry,
        what: &dyn Fn() -> String,
    ) -> PyResult<()> {
        let (found, by_identity) = state_of(state, p)?;
        let (dict, is_new) = match found {
            Some(d) => {
                let d = d.cast_into::<PyDict>().map_err(|e| {
                    let d = e.into_inner();
                    PyTypeError::new_err(format!("optimizer.state of {} must be a dict, got {}", what(), type_name(&d)))
                })?;
                (d, false)
            }
            None => (PyDict::new(py), true),
        };
        let entry_what = |key: &Bound<'py, PyString>| format!("optimizer.state[{}]['{key}']", what());
        let mut needs_target = is_new;
        for (k, key) in keys.scalars.iter().enumerate() {
            match dict.get_item(key)? {
                None => needs_target = true,
                Some(v) => match scalar_slot(&v) {
                    Some((array, ptr)) => {
                        self.s.0.held.keep.push(array.unbind());
                        // SAFETY: `scalar_slot` checked a 0-d, aligned float64 array, kept alive above.
                        entry.scalars[k] = unsafe { *ptr };
                        entry.homes[k] = ptr;
                    }
                    None => {
                        entry.scalars[k] = v.extract::<f64>().map_err(|_| {
                            PyTypeError::new_err(format!("{} must be a number, got {}", entry_what(key), type_name(&v)))
                        })?;
                        needs_target = true;
                    }
                },
            }
        }
        let mut new_buffers: [Option<Bound<'py, PyUntypedArray>>; SLOTS] = Default::default();
        let e = self.s.0.entries.len();
        let mut first = None;
        for (k, key) in keys.buffers.iter().enumerate().take(SLOTS) {
            if !uses[k] {
                continue; // a slot this configuration leaves empty
            }
            let found = dict.get_item(key)?;
            let kernel = &self.kernels[g];
            let Some(slot) = kernel.slot(k, shape, entry.dtype, found.as_ref(), first.as_ref(), what)? else {
                continue; // a slot this parameter leaves empty
            };
            if k == 0 {
                first = found.clone();
            }
            entry.buffers[k] = match found {
                None => {
                    let z = match (slot.init, &self.maps) {
                        (Init::DynamicMap { signed }, maps) if maps[usize::from(!signed)].is_some() => {
                            maps[usize::from(!signed)].clone().unwrap()
                        }
                        _ => {
                            // SAFETY: `entry.param` was held by `gather` above: checked dtype and length.
                            let z = unsafe { new_buffer(py, slot.init, &slot.shape, slot.elem, entry)? };
                            if let Init::DynamicMap { signed } = slot.init {
                                self.maps[usize::from(!signed)] = Some(z.clone());
                            }
                            z
                        }
                    };
                    entry.lens[k] = z.len();
                    new_buffers[k] = Some(z.clone());
                    entry.fresh |= k == 0;
                    needs_target = true;
                    self.hold(Operand::fresh(z), slot.write, who(e, 2 + k))
                }
                Some(v) => {
                    let op = if slot.write {
                        buffer_operand(v, &slot.shape, slot.elem, &|| entry_what(key))?
                    } else {
                        let Elem::Float(dtype) = slot.elem else { unreachable!("read-only slots are float") };
                        grad_operand(v, &slot.shape, dtype, &|| entry_what(key))?
                    };
                    entry.lens[k] = op.array.len();
                    self.hold(op, slot.write, who(e, 2 + k))
                }
            };
        }
        if needs_target {
            entry.target = self.targets.len() as u32;
            self.targets.push(Target { key: p.clone(), dict, is_new, by_identity, new_buffers });
        }
        Ok(())
    }

    /// Writes back what the step changed outside the arrays the kernels wrote.
    /// `homes`: the kernels wrote the scalar state back to its homes.
    fn store(
        self,
        py: Python<'py>,
        state: &Bound<'py, PyDict>,
        keys: &StateKeys<'py>,
        homes: bool,
    ) -> PyResult<Vec<K>> {
        let entries = &self.s.0.entries;
        if homes && self.targets.is_empty() {
            self.s.0.held.copy_back(py)?;
            return Ok(self.kernels);
        }
        for e in entries {
            for k in 0..K::SCALARS {
                if !e.homes[k].is_null() {
                    // SAFETY: the 0-d array is alive (in `keep`) and was checked
                    // writeable, aligned and float64; the GIL is held, no kernel runs.
                    unsafe { *e.homes[k] = e.scalars[k] };
                }
            }
            if e.target == NONE {
                continue;
            }
            let t = &self.targets[e.target as usize];
            for k in 0..K::SCALARS {
                if e.homes[k].is_null() {
                    t.dict.set_item(&keys.scalars[k], scalar_array(py, e.scalars[k])?)?;
                }
            }
            for (key, array) in keys.buffers.iter().zip(&t.new_buffers) {
                if let Some(array) = array {
                    t.dict.set_item(key, array)?;
                }
            }
            if t.is_new && t.by_identity {
                state.as_any().set_item(&t.key, &t.dict)?; // the mapping's __setitem__
            } else if t.is_new {
                state.set_item(&t.key, &t.dict)?;
            }
        }
        self.s.0.held.copy_back(py)?;
        Ok(self.kernels)
    }
}

/// A new state buffer of `shape` for `entry`'s parameter, started as `init` says.
///
/// # Safety
/// `entry.param` points to `entry.len` checked elements of `entry.dtype` (the
/// parameter was held by this step's gather).
unsafe fn new_buffer<'py>(
    py: Python<'py>,
    init: Init,
    shape: &[usize],
    elem: Elem,
    entry: &Entry,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    /// # Safety
    /// `param` points to `n` > 0 elements of T, `out` to the `m` elements of a fresh
    /// C-contiguous array of T nobody else sees.
    unsafe fn fill<T: Element>(init: Init, param: *const u8, n: usize, out: *mut u8, m: usize) {
        // SAFETY: the contract above.
        let (p, o) = unsafe {
            (std::slice::from_raw_parts(param.cast::<T>(), n), std::slice::from_raw_parts_mut(out.cast::<T>(), m))
        };
        match init {
            Init::Zeros | Init::DynamicMap { .. } => {}
            Init::Param => o.copy_from_slice(p),
            Init::ParamSliced { step } => o.iter_mut().zip(p.iter().step_by(step)).for_each(|(a, &b)| *a = b),
        }
    }
    if let Init::DynamicMap { signed } = init {
        let map =
            if signed { &ferroptim::kernels::blockwise::SIGNED } else { &ferroptim::kernels::blockwise::UNSIGNED };
        let z = zeros(py, &[map.len()], Dtype::F32)?;
        let out = Operand::fresh(z.clone()).ptr;
        // SAFETY: a fresh C-contiguous float32 array of 256 elements nobody else sees.
        unsafe { std::slice::from_raw_parts_mut(out.cast::<f32>(), map.len()) }.copy_from_slice(map);
        return Ok(z);
    }
    // SAFETY: this function's contract.
    let all_zero = matches!(init, Init::ParamSliced { .. }) && !unsafe { any_nonzero(entry) };
    let z = zeros(py, if all_zero { &[] } else { shape }, elem)?;
    if init != Init::Zeros && !all_zero && entry.len > 0 {
        let out = Operand::fresh(z.clone()).ptr;
        // SAFETY: the parameter's elements (this function's contract) and the fresh
        // array `zeros` just made, of the same dtype.
        unsafe {
            match entry.dtype {
                Dtype::F32 => fill::<f32>(init, entry.param, entry.len, out, z.len()),
                Dtype::F64 => fill::<f64>(init, entry.param, entry.len, out, z.len()),
            }
        }
    }
    Ok(z)
}

/// Whether the entry's parameter has a nonzero element (`p.any()`).
///
/// # Safety
/// As [`new_buffer`].
unsafe fn any_nonzero(entry: &Entry) -> bool {
    /// # Safety
    /// `param` points to `n` > 0 elements of T.
    unsafe fn any<T: Element>(param: *const u8, n: usize) -> bool {
        // SAFETY: the contract above.
        let p = unsafe { std::slice::from_raw_parts(param.cast::<T>(), n) };
        p.iter().any(|&x| x != T::zero())
    }
    // SAFETY: this function's contract.
    entry.len > 0
        && unsafe {
            match entry.dtype {
                Dtype::F32 => any::<f32>(entry.param, entry.len),
                Dtype::F64 => any::<f64>(entry.param, entry.len),
            }
        }
}

/// The work of a step's entries, known without reading them: a replayed step's
/// entries were built by other threads, and reading them back to split the work
/// would miss the cache once for each.
#[derive(Clone, Copy, Default)]
pub(crate) struct Sizes<'a> {
    /// Their float32 elements.
    pub(crate) n32: usize,
    /// Their float64 elements.
    pub(crate) n64: usize,
    /// Each entry's length, in order; None: read from the entries.
    pub(crate) lens: Option<&'a [usize]>,
    /// Whether the kernels write each entry's scalar state back to its homes, as soon
    /// as it has advanced (on the thread that runs the entry, while its entry is in
    /// cache): a replay's, when no two homes are the same memory and none is in an
    /// array the kernels write (see `plan`). Else [`Plan::store`] does, afterwards.
    pub(crate) homes: bool,
}

impl Sizes<'_> {
    /// The sizes of `entries`, read from them.
    pub(crate) fn of(entries: &[Entry]) -> Self {
        let (mut n32, mut n64) = (0, 0);
        for e in entries {
            *match e.dtype {
                Dtype::F32 => &mut n32,
                Dtype::F64 => &mut n64,
            } += e.len;
        }
        Sizes { n32, n64, lens: None, homes: false }
    }

    pub(crate) fn elements(&self) -> usize {
        self.n32 + self.n64
    }
}

/// How [`run_entries`] runs a step's kernels.
pub(crate) struct Dispatch<'a> {
    pub(crate) sizes: Sizes<'a>,
    /// `KERNEL_LOCK`, taken by a step whose kernels keep the GIL: a replay that
    /// read its gradients without taking references to them (`plan::shared`), which
    /// only the GIL keeps alive. Its kernels run for under a millisecond (fewer than
    /// `exec::SERIAL_BELOW` elements, shared between the threads), a fraction of
    /// Python's switch interval, while references to its thousands of gradients
    /// would cost a fifth of the step. None: the kernels release the GIL.
    pub(crate) attached: Option<MutexGuard<'static, ()>>,
}

impl<'a> From<Sizes<'a>> for Dispatch<'a> {
    fn from(sizes: Sizes<'a>) -> Self {
        Dispatch { sizes, attached: None }
    }
}

/// `KERNEL_LOCK` if no other step holds it.
fn kernel_lock_now() -> Option<MutexGuard<'static, ()>> {
    match KERNEL_LOCK.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Advances the entries' scalar state and runs their kernels (`kernels[e.group]`),
/// float32 and float64 each in its own batch, with `KERNEL_LOCK` held and the GIL
/// released (or kept, as `dispatch` says). The sizes decide how the work is split
/// between threads; with [`Sizes::homes`], the kernels also store the scalar state.
///
/// # Safety
/// Every entry satisfies the contract of [`slices`]; with `homes`, its homes that of
/// [`update_entries`].
pub(crate) unsafe fn run_entries<K: Elementwise>(
    py: Python<'_>,
    kernels: &[K],
    entries: &mut [Entry],
    dispatch: Dispatch<'_>,
) {
    let Dispatch { sizes, attached } = dispatch;
    if let Some(_exclusive) = attached {
        // SAFETY: this function's contract.
        return unsafe { update_shared(kernels, entries, sizes) };
    }
    let work = Work(entries);
    py.detach(move || {
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: this function's contract.
        unsafe { update_shared(kernels, work.into_inner(), sizes) }
    });
}

/// The updates of `entries`, shared with the pool's threads when big enough.
///
/// # Safety
/// As [`run_entries`], with `KERNEL_LOCK` held.
unsafe fn update_shared<K: Elementwise>(kernels: &[K], entries: &mut [Entry], sizes: Sizes<'_>) {
    let Sizes { n32, n64, lens, homes } = sizes;
    let size = piece_size(n32 + n64);
    let len = |k: usize| lens.map_or_else(|| entries[k].len, |lens| lens[k]);
    if !parallel(n32 + n64) || (0..entries.len()).any(|k| len(k) > size) {
        // SAFETY: this function's contract.
        unsafe { update_entries(kernels, entries, n32, n64, homes) };
        return;
    }
    // Shared with a crew, in pieces of whole entries: each thread builds its own
    // entries' slices, and each entry's scalar state advances on one thread.
    let mut pieces = Vec::new();
    let (mut rest, mut at) = (entries, 0);
    while !rest.is_empty() {
        let (mut k, mut elements) = (0, 0);
        while k < rest.len() && elements < size {
            elements += lens.map_or(rest[k].len, |lens| lens[at + k]);
            k += 1;
        }
        let (piece, tail) = rest.split_at_mut(k);
        pieces.push(Mutex::new(Some(Work(piece))));
        (rest, at) = (tail, at + k);
    }
    crew::woken().share(pieces.len(), &|i| {
        if let Some(piece) = pieces[i].lock().unwrap_or_else(|e| e.into_inner()).take() {
            // SAFETY: this function's contract; the pieces are disjoint.
            unsafe { update_entries(kernels, piece.into_inner(), 0, 0, homes) };
        }
    });
}

/// The updates of `entries`, float32 and float64 each in its own batch for about
/// `n32` and `n64` elements ([`Batch::with_size`]); with `homes`, each entry's
/// advanced scalar state is written to its homes.
///
/// # Safety
/// Every entry satisfies the contract of [`slices`]; with `homes`, each non-null home
/// is a float64 that nothing else reads or writes meanwhile ([`Sizes::homes`]).
unsafe fn update_entries<K: Elementwise>(kernels: &[K], entries: &mut [Entry], n32: usize, n64: usize, homes: bool) {
    let mut b32 = Batch::<K, f32>::with_size(n32);
    let mut b64 = Batch::<K, f64>::with_size(n64);
    for e in entries.iter_mut() {
        let kernel = &kernels[e.group as usize];
        let scalars = &mut e.scalars[..K::SCALARS];
        let nb = kernel.buffers();
        match e.dtype {
            // SAFETY: this function's contract.
            Dtype::F32 => {
                b32.push(kernel, scalars, e.fresh, unsafe { slices(e.len, e.param, e.grad, &e.buffers[..nb]) })
            }
            Dtype::F64 => {
                b64.push(kernel, scalars, e.fresh, unsafe { slices(e.len, e.param, e.grad, &e.buffers[..nb]) })
            }
        }
        if homes {
            for k in 0..K::SCALARS {
                if !e.homes[k].is_null() {
                    // SAFETY: this function's contract.
                    unsafe { *e.homes[k] = e.scalars[k] };
                }
            }
        }
    }
    b32.run();
    b64.run();
}

/// Slices over an entry's arrays; a null buffer pointer (a slot the configuration
/// does not use) gives an empty slice. Every slice is `len` long or empty, as
/// `TensorSlices::new` asks, so they are put together without its checks.
///
/// # Safety
/// Every non-null pointer points to `len` elements of `T` in an array kept alive by the plan:
/// checked to hold that dtype, C-contiguous and aligned (or a fresh scratch copy).
/// No two of the arrays overlap where one is written (`Overlaps`), and no other Rust
/// code uses them meanwhile (`KERNEL_LOCK`). As with every extension that releases the
/// GIL over NumPy memory, Python code writing the same arrays from another thread
/// during the step races with it; that is the caller's to avoid.
#[inline]
unsafe fn slices<'a, T: Element>(
    len: usize,
    param: *mut u8,
    grad: *mut u8,
    buffers: &[*mut u8],
) -> TensorSlices<'a, T> {
    assert!(buffers.len() <= MAX_BUFFERS, "more than {MAX_BUFFERS} state buffers");
    let mut slots: [&'a mut [T]; MAX_BUFFERS] = Default::default();
    for (slot, &b) in slots.iter_mut().zip(buffers) {
        // SAFETY: the caller's contract.
        *slot = unsafe { slice(b, len) };
    }
    // SAFETY: the caller's contract; the gradient is only read (and may be the same
    // memory as another parameter's gradient).
    unsafe { TensorSlices { param: slice(param, len), grad: read_slice(grad, len), buffers: slots } }
}
