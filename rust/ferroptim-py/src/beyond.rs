//! `_core.<name>_step` of the optimizers beyond torch.optim (Lion, LAMB, LARS, Adan,
//! ADOPT, AdEMAMix, the schedule-free three, Prodigy): one call per step with every
//! param group, through the same boundary as the elementwise steps (`step::step`
//! reads and checks every array and creates missing state, in Rust), each with its
//! own run of passes. Counters the implementations keep in their param groups
//! (`step`, `k`, `weight_sum`, Prodigy's `d`...) are read when the group's kernel is
//! made and written back once the step succeeded.
//!
//! Each function takes `(state, param_groups, scalar_keys, buffer_keys, grads=None)`,
//! as the elementwise steps (some a value of the optimizer's own before `grads`).

use ferroptim::kernels::grad_norm::{norms, NormType};
use ferroptim::{
    adan, ademamix, adopt, lamb, lamb_clip, lars, lion, prodigy, schedule_free, AdanHyper, AdemamixHyper, AdoptHyper,
    Element, LambHyper, LarsHyper, LionHyper, ProdigyGlobal, ProdigyHyper, ProdigyTensor, ScheduleFreeGroup,
    ScheduleFreeHyper, ScheduleFreeKind, ScheduleFreeStep, TensorSlices, MAX_BUFFERS,
};
use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::arrays::{scalar_array, type_name, Dtype};
use crate::held::{read_slice, slice, Work};
use crate::hyper::{FromGroup, Group};
use crate::plan::StepPlan;
use crate::step::{slots_key, step, Entry, Init, Layout, StateKeys, KERNEL_LOCK};

impl<'py> Group<'_, 'py> {
    /// A real number or None.
    pub(crate) fn optional(&self, key: &str) -> PyResult<Option<f64>> {
        if self.item(key)?.is_none() {
            Ok(None)
        } else {
            self.f64(key).map(Some)
        }
    }

    /// A triple of real numbers, such as Adan's `betas`.
    pub(crate) fn triple(&self, key: &str) -> PyResult<(f64, f64, f64)> {
        let v = self.item(key)?;
        v.extract::<(f64, f64, f64)>().map_err(|_| {
            PyTypeError::new_err(format!(
                "param_groups[{}]['{key}'] must be three real numbers, got {}",
                self.index,
                type_name(&v)
            ))
        })
    }

    /// The group's step count after this step: its `step` (absent before the first
    /// step) plus one.
    fn next_step(&self) -> PyResult<f64> {
        Ok(match self.dict.get_item("step")? {
            None => 1.0,
            Some(_) => self.f64("step")? + 1.0,
        })
    }

    /// `max_lr_snapshot` when corrected weight decay is on (`on`).
    fn max_lr(&self, on: bool) -> PyResult<Option<f64>> {
        if on {
            self.f64("max_lr_snapshot").map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The entries of one param group and element type.
pub(crate) struct Bucket<'a> {
    pub(crate) group: usize,
    pub(crate) dtype: Dtype,
    pub(crate) entries: Vec<&'a mut Entry>,
}

/// The entries by (group, element type), in order.
pub(crate) fn buckets(groups: usize, entries: &mut [Entry]) -> Vec<Bucket<'_>> {
    let mut out: Vec<Bucket<'_>> = (0..2 * groups)
        .map(|k| Bucket { group: k / 2, dtype: if k % 2 == 0 { Dtype::F32 } else { Dtype::F64 }, entries: Vec::new() })
        .collect();
    for e in entries.iter_mut() {
        let k = 2 * e.group as usize + usize::from(e.dtype == Dtype::F64);
        out[k].entries.push(e);
    }
    out.retain(|b| !b.entries.is_empty());
    out
}

/// Runs `f` with the GIL released and `KERNEL_LOCK` held.
pub(crate) fn detached<R: Send>(py: Python<'_>, entries: &mut [Entry], f: impl FnOnce(&mut [Entry]) -> R + Send) -> R {
    let work = Work(entries);
    py.detach(move || {
        let entries = work.into_inner();
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        f(entries)
    })
}

/// One bucket's tensors as kernel slices.
///
/// # Safety
/// The entries come from `step::step` (pointers into held, checked, non-overlapping
/// arrays of `T`, `lens[k]` elements in buffer k), and the bucket holds `T`.
unsafe fn slices<'a, T: Element>(entries: &'a [&mut Entry]) -> Vec<TensorSlices<'a, T>> {
    entries
        .iter()
        .map(|e| {
            // SAFETY: the caller's contract; the gradient is only read (and may be the
            // same memory as another parameter's gradient).
            unsafe {
                TensorSlices::new(
                    slice(e.param, e.len),
                    read_slice(e.grad, e.len),
                    (0..MAX_BUFFERS).map(|k| slice(e.buffers[k], e.lens[k])),
                )
            }
        })
        .collect()
}

/// Calls `$body` with `$t` the bucket's slices of its element type `$T`, inside
/// `unsafe` (the entries come from `step::step`: see [`slices`]).
macro_rules! with_slices {
    ($bucket:expr, |$t:ident: $T:ident| $body:expr) => {
        match $bucket.dtype {
            Dtype::F32 => {
                type $T = f32;
                // SAFETY: entries gathered and checked by `step::step`, of the bucket's dtype.
                #[allow(unused_mut)]
                let mut $t = unsafe { slices::<$T>(&$bucket.entries) };
                $body
            }
            Dtype::F64 => {
                type $T = f64;
                // SAFETY: as above.
                #[allow(unused_mut)]
                let mut $t = unsafe { slices::<$T>(&$bucket.entries) };
                $body
            }
        }
    };
}

/// The bucket's first scalar (a step count) of every entry.
fn steps(b: &Bucket<'_>) -> Vec<f64> {
    b.entries.iter().map(|e| e.scalars[0]).collect()
}

/// Whether each entry's state was created for this step.
fn fresh(b: &Bucket<'_>) -> Vec<bool> {
    b.entries.iter().map(|e| e.fresh).collect()
}

/// The common arguments of a step function.
pub(crate) struct Call<'a, 'py> {
    py: Python<'py>,
    state: &'a Bound<'py, PyDict>,
    groups: &'a Bound<'py, PyList>,
    keys: StateKeys<'py>,
    grads: Option<Bound<'py, PyList>>,
    plan: Option<Bound<'py, StepPlan>>,
}

impl<'a, 'py> Call<'a, 'py> {
    pub(crate) fn new(
        py: Python<'py>,
        state: &'a Bound<'py, PyDict>,
        groups: &'a Bound<'py, PyList>,
        scalar_keys: &Bound<'py, PyTuple>,
        buffer_keys: &Bound<'py, PyTuple>,
        grads: Option<Bound<'py, PyList>>,
        plan: Option<Bound<'py, StepPlan>>,
    ) -> PyResult<Self> {
        Ok(Call { py, state, groups, keys: StateKeys::new(scalar_keys, buffer_keys)?, grads, plan })
    }

    /// One step: gather and check, run `f` on each (group, dtype) bucket with the GIL
    /// released, store; returns the groups' kernels.
    pub(crate) fn each_bucket<K: FromGroup + Layout + Sync>(
        &self,
        f: impl Fn(&K, &mut Bucket<'_>) + Send + Sync,
    ) -> PyResult<Vec<K>> {
        self.run(|py, kernels: &[K], entries| {
            detached(py, entries, |entries| {
                for mut b in buckets(kernels.len(), entries) {
                    f(&kernels[b.group], &mut b);
                }
            })
        })
    }

    fn run<K: FromGroup + Layout>(&self, f: impl FnOnce(Python<'py>, &[K], &mut [Entry])) -> PyResult<Vec<K>> {
        self.run_with(K::from_group, f)
    }

    /// [`run`](Self::run) with the groups' kernels read by `make`.
    fn run_with<K: Layout>(
        &self,
        make: impl Fn(&Group<'_, 'py>) -> PyResult<K>,
        f: impl FnOnce(Python<'py>, &[K], &mut [Entry]),
    ) -> PyResult<Vec<K>> {
        let (grads, plan) = (self.grads.as_ref(), self.plan.as_ref());
        step::<K>(self.py, self.state, self.groups, &self.keys, grads, plan, make, false, |py, k, e, _| f(py, k, e))
    }

    /// Each group's dict.
    fn dicts(&self) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.groups.iter().map(|g| Ok(g.cast_into::<PyDict>()?)).collect()
    }
}

/// Defines a `#[pyfunction]` `$name(state, param_groups, scalar_keys, buffer_keys,
/// *extra, grads=None, plan=None)` whose body gets a [`Call`] named `$call` (also
/// used by Adafactor and Muon).
macro_rules! step_function {
    ($(#[$doc:meta])* $name:ident ($($extra:ident: $ty:ty),*) |$call:ident| $body:block) => {
        $(#[$doc])*
        #[::pyo3::pyfunction]
        #[pyo3(signature = (state, param_groups, scalar_keys, buffer_keys, $($extra,)* grads=None, plan=None))]
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name<'py>(
            py: ::pyo3::Python<'py>,
            state: &::pyo3::Bound<'py, ::pyo3::types::PyDict>,
            param_groups: &::pyo3::Bound<'py, ::pyo3::types::PyList>,
            scalar_keys: &::pyo3::Bound<'py, ::pyo3::types::PyTuple>,
            buffer_keys: &::pyo3::Bound<'py, ::pyo3::types::PyTuple>,
            $($extra: $ty,)*
            grads: Option<::pyo3::Bound<'py, ::pyo3::types::PyList>>,
            plan: Option<::pyo3::Bound<'py, $crate::plan::StepPlan>>,
        ) -> ::pyo3::PyResult<()> {
            let $call = $crate::beyond::Call::new(py, state, param_groups, scalar_keys, buffer_keys, grads, plan)?;
            $body
        }
    };
}
pub(crate) use step_function;

// ---------------------------------------------------------------- Lion, LARS

impl FromGroup for LionHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(LionHyper {
            lr: g.f64("lr")?,
            betas: g.pair("betas")?,
            weight_decay: g.f64("weight_decay")?,
            caution: g.flag("caution")?,
            max_lr: g.max_lr(g.flag("corrected_weight_decay")?)?,
            maximize: g.flag("maximize")?,
        })
    }
}

impl Layout for LionHyper {
    const SCALARS: usize = 0;
    fn buffers(&self) -> usize {
        1
    }
}

step_function! {
    /// One Lion step; state () + (exp_avg,).
    lion_step() |call| {
        call.each_bucket(|h: &LionHyper, b| with_slices!(b, |t: T| lion::<T>(h, &mut t)))?;
        Ok(())
    }
}

impl FromGroup for LarsHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
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
}

impl Layout for LarsHyper {
    const SCALARS: usize = 0;
    fn buffers(&self) -> usize {
        1
    }
    fn uses_buffer(&self, k: usize) -> bool {
        k == 0 && self.momentum != 0.0
    }
}

step_function! {
    /// One LARS step; state () + (momentum_buffer,), kept when momentum ≠ 0.
    lars_step() |call| {
        call.each_bucket(|h: &LarsHyper, b| {
            let f = fresh(b);
            with_slices!(b, |t: T| lars::<T>(h, &mut t, &f))
        })?;
        Ok(())
    }
}

// ---------------------------------------------------------------- ADOPT

impl FromGroup for AdoptHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
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
}

impl Layout for AdoptHyper {
    const SCALARS: usize = 1;
    fn buffers(&self) -> usize {
        2
    }
}

step_function! {
    /// One ADOPT step; state (step,) + (exp_avg, exp_avg_sq).
    adopt_step() |call| {
        call.each_bucket(|h: &AdoptHyper, b| {
            let (mut s, f) = (steps(b), fresh(b));
            with_slices!(b, |t: T| adopt::<T>(h, &mut t, &mut s, &f));
            b.entries.iter_mut().zip(s).for_each(|(e, s)| e.scalars[0] = s);
        })?;
        Ok(())
    }
}

// ------------------------------------------- counted per group: Adan, AdEMAMix, LAMB

/// A kernel with the group's step count after this step.
pub(crate) struct Counted<H> {
    pub(crate) h: H,
    step: f64,
}

/// Writes each group's step count back: an int (Adan, AdEMAMix), else a 0-d float64
/// array (LAMB, as timm's tensor).
fn store_steps<H>(call: &Call<'_, '_>, kernels: &[Counted<H>], as_int: bool) -> PyResult<()> {
    for (dict, k) in call.dicts()?.iter().zip(kernels) {
        if as_int {
            dict.set_item("step", k.step as i64)?;
        } else {
            dict.set_item("step", scalar_array(call.py, k.step)?)?;
        }
    }
    Ok(())
}

impl FromGroup for Counted<AdanHyper> {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        let h = AdanHyper {
            lr: g.f64("lr")?,
            betas: g.triple("betas")?,
            eps: g.f64("eps")?,
            weight_decay: g.f64("weight_decay")?,
            no_prox: g.flag("no_prox")?,
            caution: g.flag("caution")?,
        };
        Ok(Counted { h, step: g.next_step()? })
    }
}

impl Layout for Counted<AdanHyper> {
    const SCALARS: usize = 0;
    fn buffers(&self) -> usize {
        4
    }
}

step_function! {
    /// One Adan step; state () + (exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad);
    /// the groups' `step` (an int) advanced.
    adan_step() |call| {
        let kernels = call.each_bucket(|k: &Counted<AdanHyper>, b| {
            let f = fresh(b);
            with_slices!(b, |t: T| adan::<T>(&k.h, k.step, &mut t, &f))
        })?;
        store_steps(&call, &kernels, true)
    }
}

impl FromGroup for Counted<AdemamixHyper> {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        let h = AdemamixHyper {
            lr: g.f64("lr")?,
            betas: g.triple("betas")?,
            weight_decay: g.f64("weight_decay")?,
            weight_decouple: g.flag("weight_decouple")?,
            fixed_decay: g.flag("fixed_decay")?,
            alpha: g.f64("alpha")?,
            t_alpha_beta3: g.optional("t_alpha_beta3")?,
            eps: g.f64("eps")?,
            maximize: false, // the optimizer's, not a group option
        };
        Ok(Counted { h, step: g.next_step()? })
    }
}

impl Layout for Counted<AdemamixHyper> {
    const SCALARS: usize = 0;
    fn buffers(&self) -> usize {
        3
    }
}

step_function! {
    /// One AdEMAMix step; state () + (exp_avg, exp_avg_sq, exp_avg_slow); the groups'
    /// `step` (an int) advanced; `maximize` is the optimizer's attribute.
    ademamix_step(maximize: bool) |call| {
        let kernels = call.each_bucket(|k: &Counted<AdemamixHyper>, b| {
            let h = AdemamixHyper { maximize, ..k.h };
            with_slices!(b, |t: T| ademamix::<T>(&h, k.step, &mut t))
        })?;
        store_steps(&call, &kernels, true)
    }
}

impl FromGroup for Counted<LambHyper> {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        let decoupled_decay = g.flag("decoupled_decay")?;
        let h = LambHyper {
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
            max_grad_norm: None, // the optimizer's: lamb_step's argument
        };
        Ok(Counted { h, step: g.next_step()? })
    }
}

impl Layout for Counted<LambHyper> {
    const SCALARS: usize = 0;
    fn buffers(&self) -> usize {
        2
    }
}

step_function! {
    /// One LAMB step; state () + (exp_avg, exp_avg_sq); the groups' `step` (a 0-d
    /// float64 array) advanced. `max_grad_norm` is the optimizer's (timm reads it from
    /// its defaults): the global norm is over every gradient of every group.
    lamb_step(max_grad_norm: Option<f64>) |call| {
        let kernels = call.run(|py, kernels: &[Counted<LambHyper>], entries| {
            detached(py, entries, |entries| {
                let mut bs = buckets(kernels.len(), entries);
                let mut grad_norms = Vec::new();
                for b in bs.iter_mut() {
                    with_slices!(b, |t: T| {
                        let grads: Vec<&[T]> = t.iter().map(|s| s.grad).collect();
                        grad_norms.extend(norms(&grads, NormType::P(2.0)))
                    });
                }
                let clip = lamb_clip(max_grad_norm, &grad_norms);
                for b in bs.iter_mut() {
                    let k = &kernels[b.group];
                    with_slices!(b, |t: T| lamb::<T>(&k.h, k.step, clip, &mut t));
                }
            })
        })?;
        store_steps(&call, &kernels, false)
    }
}

// ---------------------------------------------------------------- schedule-free

/// A schedule-free group: hyperparameters, the group's running values after this
/// step and the step's constants. `KIND`: 0 SGD, 1 AdamW, 2 RAdam.
struct ScheduleFree<const KIND: u8> {
    values: ScheduleFreeGroup,
    step: ScheduleFreeStep,
}

impl<const KIND: u8> FromGroup for ScheduleFree<KIND> {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        let kind = match KIND {
            0 => ScheduleFreeKind::Sgd { momentum: g.f64("momentum")?, warmup_steps: g.f64("warmup_steps")? },
            1 => ScheduleFreeKind::AdamW {
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
        let h = ScheduleFreeHyper {
            kind,
            lr: g.f64("lr")?,
            weight_decay: g.f64("weight_decay")?,
            r: g.f64("r")?,
            weight_lr_power: g.f64("weight_lr_power")?,
        };
        let mut values = ScheduleFreeGroup {
            k: g.f64("k")?,
            weight_sum: g.f64("weight_sum")?,
            lr_max: g.f64("lr_max")?,
            scheduled_lr: g.f64("scheduled_lr")?,
        };
        let step = h.begin(&mut values);
        Ok(ScheduleFree { values, step })
    }
}

impl<const KIND: u8> Layout for ScheduleFree<KIND> {
    const SCALARS: usize = 0;
    fn buffers(&self) -> usize {
        if KIND == 0 {
            1
        } else {
            2
        }
    }
    fn init(&self, k: usize) -> Init {
        if k == 0 {
            Init::Param // z starts at the parameter
        } else {
            Init::Zeros
        }
    }
}

/// One schedule-free step; the groups' `k`, `weight_sum`, `lr_max`, `scheduled_lr`
/// written back.
fn schedule_free_step<const KIND: u8>(call: &Call<'_, '_>) -> PyResult<()> {
    let kernels =
        call.each_bucket(|k: &ScheduleFree<KIND>, b| with_slices!(b, |t: T| schedule_free::<T>(&k.step, &mut t)))?;
    for (dict, k) in call.dicts()?.iter().zip(&kernels) {
        dict.set_item("k", k.values.k as i64)?;
        dict.set_item("weight_sum", k.values.weight_sum)?;
        dict.set_item("lr_max", k.values.lr_max)?;
        dict.set_item("scheduled_lr", k.values.scheduled_lr)?;
    }
    Ok(())
}

step_function! {
    /// One `SGDScheduleFree` step; state () + (z,).
    schedule_free_sgd_step() |call| {
        schedule_free_step::<0>(&call)
    }
}

step_function! {
    /// One `AdamWScheduleFree` step; state () + (z, exp_avg_sq).
    schedule_free_adamw_step() |call| {
        schedule_free_step::<1>(&call)
    }
}

step_function! {
    /// One `RAdamScheduleFree` step; state () + (z, exp_avg_sq).
    schedule_free_radam_step() |call| {
        schedule_free_step::<2>(&call)
    }
}

// ---------------------------------------------------------------- Prodigy

impl FromGroup for ProdigyHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        let slice_p = g.item("slice_p")?;
        let slice_p = slice_p.extract::<usize>().ok().filter(|&s| s >= 1).ok_or_else(|| {
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
}

/// Prodigy's buffers: `s`, `p0` (flat, every `slice_p`-th element; `p0` a 0-d zero
/// for a parameter that was all zeros), `exp_avg_sq`, `exp_avg` (β₁ > 0).
impl Layout for ProdigyHyper {
    const SCALARS: usize = 1;
    fn buffers(&self) -> usize {
        4
    }
    fn layout_key(&self) -> Option<u64> {
        Some(slots_key(self) | (self.slice_p as u64) << 16) // and the sliced arrays' length
    }
    fn uses_buffer(&self, k: usize) -> bool {
        k < 3 || self.betas.0 > 0.0
    }
    fn buffer_shape(&self, k: usize, shape: &[usize], found: Option<&Bound<'_, PyAny>>) -> Vec<usize> {
        let zero_d = || found.and_then(|a| a.cast::<PyUntypedArray>().ok()).is_some_and(|a| a.ndim() == 0);
        match k {
            1 if zero_d() => Vec::new(),
            0 | 1 => vec![shape.iter().product::<usize>().div_ceil(self.slice_p)],
            _ => shape.to_vec(),
        }
    }
    fn init(&self, k: usize) -> Init {
        if k == 1 {
            Init::ParamSliced { step: self.slice_p }
        } else {
            Init::Zeros
        }
    }
}

/// Prodigy's view of one entry.
///
/// # Safety
/// As [`slices`].
unsafe fn prodigy_tensor<'a, T: Element>(e: &'a mut Entry) -> (usize, ProdigyTensor<'a, T>) {
    let (b, l) = (e.buffers, e.lens);
    // SAFETY: the caller's contract.
    let (s, p0, v, m) = unsafe { (slice(b[0], l[0]), slice(b[1], l[1]), slice(b[2], l[2]), slice(b[3], l[3])) };
    // SAFETY: the caller's contract.
    let (param, grad) = unsafe { (slice(e.param, e.len), read_slice(e.grad, e.len)) };
    let tensor = ProdigyTensor { param, grad, exp_avg: m, exp_avg_sq: v, s, p0, step: &mut e.scalars[0] };
    (e.group as usize, tensor)
}

step_function! {
    /// One Prodigy step over every group; state (step,) + (s, p0, exp_avg_sq,
    /// exp_avg). The D-adaptation values are read from group 0 and written to every
    /// group; `k` advances in each.
    prodigy_step() |call| {
        let dicts = call.dicts()?;
        // prodigyopt's rule, before anything changes: every group's lr the largest, or 0
        let lrs: Vec<f64> = dicts.iter().enumerate().map(|(index, dict)| Group { dict, index }.f64("lr")).collect::<PyResult<_>>()?;
        ferroptim::kernels::prodigy::check_lrs(lrs.iter().copied()).map_err(PyRuntimeError::new_err)?;
        let g0 = Group { dict: &dicts[0], index: 0 };
        // prodigyopt reads betas and beta3 from group 0 only, for every group
        let (betas, beta3) = (g0.pair("betas")?, g0.optional("beta3")?);
        let make = |g: &Group<'_, '_>| Ok(ProdigyHyper { betas, beta3, ..ProdigyHyper::from_group(g)? });
        let mut global = ProdigyGlobal {
            d: g0.f64("d")?,
            d_max: g0.f64("d_max")?,
            d_numerator: g0.f64("d_numerator")?,
            d_denom: 0.0,
            d_hat: 0.0,
            k: g0.f64("k")?,
        };
        let mut updated = false;
        call.run_with(make, |py, hs: &[ProdigyHyper], entries| {
            updated = detached(py, entries, |entries| {
                let (t32, t64): (Vec<_>, Vec<_>) = entries.iter_mut().partition(|e| e.dtype == Dtype::F32);
                // SAFETY: entries gathered and checked by `step::step`, of these dtypes.
                let mut t32: Vec<_> = t32.into_iter().map(|e| unsafe { prodigy_tensor::<f32>(e) }).collect();
                // SAFETY: as above.
                let mut t64: Vec<_> = t64.into_iter().map(|e| unsafe { prodigy_tensor::<f64>(e) }).collect();
                prodigy(hs, &mut global, &mut t32, &mut t64)
            });
        })?;
        if updated {
            for dict in &dicts {
                dict.set_item("d_numerator", global.d_numerator)?;
                dict.set_item("d_denom", global.d_denom)?;
                dict.set_item("d", global.d)?;
                dict.set_item("d_max", global.d_max)?;
                dict.set_item("d_hat", global.d_hat)?;
                let k = Group { dict, index: 0 }.f64("k")?;
                dict.set_item("k", k as i64 + 1)?;
            }
        }
        Ok(())
    }
}
