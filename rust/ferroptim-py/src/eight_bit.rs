//! `_core.eight_bit_step`: bitsandbytes' 8-bit optimizers (`Adam8bit` ... `AdEMAMix8bit`),
//! one call per step with every param group, through `step::step` (which reads,
//! checks and creates every state array in Rust), then `ferroptim::eight_bit` per group.
//!
//! A parameter's state is bitsandbytes' own: `step`, and in slots 0–5 `state1`,
//! `state2` (uint8 codes; float32 for parameters smaller than `min_8bit_size`),
//! `absmax1`, `absmax2` (float32, one per block of 256), `qmap1`, `qmap2` (the float32
//! dynamic maps, only read, shared by the parameters of a step that creates them).
//! Which of the two a parameter has is decided by its `state1` once it exists.

use std::sync::Arc;

use ferroptim::kernels::blockwise::{blocks, MAP_SIZE};
use ferroptim::{eight_bit, EightBitHyper, EightBitRule, EightBitState, EightBitTensor, Element, Quantized, Quantizer};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::arrays::{is_uint8, Dtype, Elem};
use crate::beyond::{buckets, detached};
use crate::held::{read_slice, slice};
use crate::hyper::Group;
use crate::plan::StepPlan;
use crate::step::{step, Entry, Init, Layout, Slot, StateKeys, SLOTS};

/// One param group's rule and hyperparameters, and the size from which state is 8-bit.
struct EightBit {
    h: EightBitHyper,
    min_8bit_size: usize,
}

impl EightBit {
    fn from_group(g: &Group<'_, '_>, rule: EightBitRule, min_8bit_size: usize) -> PyResult<Self> {
        let (betas, beta3) = if rule == EightBitRule::Ademamix {
            let (b1, b2, b3) = g.triple("betas")?;
            ((b1, b2), b3)
        } else {
            (g.pair("betas")?, 0.0)
        };
        let get = |key: &str| -> PyResult<Option<f64>> {
            if g.dict.contains(key)? {
                g.optional(key)
            } else {
                Ok(None)
            }
        };
        let h = EightBitHyper {
            rule,
            lr: g.f64("lr")?,
            betas,
            beta3,
            alpha: get("alpha")?.unwrap_or(0.0),
            t_alpha: get("t_alpha")?,
            t_beta3: get("t_beta3")?,
            eps: g.f64("eps")?,
            weight_decay: g.f64("weight_decay")?,
        };
        Ok(EightBit { h, min_8bit_size })
    }
}

impl Layout for EightBit {
    /// `step`
    const SCALARS: usize = 1;

    fn buffers(&self) -> usize {
        SLOTS
    }

    /// None: whether a parameter's state is 8-bit follows from what the state holds,
    /// and the maps are shared read-only arrays; every step is checked in full.
    fn layout_key(&self) -> Option<u64> {
        None
    }

    fn slot(
        &self,
        k: usize,
        shape: &[usize],
        _dtype: Dtype,
        found: Option<&Bound<'_, PyAny>>,
        first: Option<&Bound<'_, PyAny>>,
        what: &dyn Fn() -> String,
    ) -> PyResult<Option<Slot>> {
        let n: usize = shape.iter().product();
        let state1 = if k == 0 { found } else { first };
        let blockwise = match state1 {
            Some(s) => is_uint8(s),
            None => n >= self.min_8bit_size,
        };
        let rule = self.h.rule;
        let two = rule.states() == 2;
        let pairs = rule.state1_moments();
        let rows = |inner: &[usize]| -> Vec<usize> {
            if pairs == 2 {
                std::iter::once(2).chain(inner.iter().copied()).collect()
            } else {
                inner.to_vec()
            }
        };
        if !blockwise && k >= 2 && found.is_some() {
            return Err(PyTypeError::new_err(format!(
                "optimizer.state[{}]['state1'] has dtype float32 next to 8-bit absmax and qmap entries: \
                 8-bit state1 has dtype uint8 (float32 state has no absmax or qmap)",
                what()
            )));
        }
        let elem = if blockwise { Elem::U8 } else { Elem::Float(Dtype::F32) };
        let f32 = Elem::Float(Dtype::F32);
        let written = |shape: Vec<usize>, elem: Elem| Some(Slot { shape, elem, init: Init::Zeros, write: true });
        let map = |signed: bool| {
            Some(Slot { shape: vec![MAP_SIZE], elem: f32, init: Init::DynamicMap { signed }, write: false })
        };
        Ok(match k {
            0 => written(rows(shape), elem),
            1 if two => written(shape.to_vec(), elem),
            2 if blockwise => written(rows(&[blocks(n)]), f32),
            3 if blockwise && two => written(vec![blocks(n)], f32),
            4 if blockwise => map(true),
            5 if blockwise && two => map(false),
            _ => None,
        })
    }
}

/// `rule`: bitsandbytes' optimizer name.
fn rule_of(name: &str) -> PyResult<EightBitRule> {
    Ok(match name {
        "adam" => EightBitRule::Adam,
        "ademamix" => EightBitRule::Ademamix,
        "momentum" => EightBitRule::Momentum,
        "lion" => EightBitRule::Lion,
        "rmsprop" => EightBitRule::Rmsprop,
        "adagrad" => EightBitRule::Adagrad,
        _ => return Err(PyValueError::new_err(format!("no 8-bit optimizer '{name}'"))),
    })
}

/// One step of bitsandbytes' 8-bit optimizer `rule` ("adam", "ademamix", "momentum",
/// "lion", "rmsprop", "adagrad"); state ("step",) + (state1, state2, absmax1, absmax2,
/// qmap1, qmap2).
#[pyfunction]
#[pyo3(signature = (state, param_groups, scalar_keys, buffer_keys, rule, min_8bit_size, grads=None, plan=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn eight_bit_step<'py>(
    py: Python<'py>,
    state: &Bound<'py, PyDict>,
    param_groups: &Bound<'py, PyList>,
    scalar_keys: &Bound<'py, PyTuple>,
    buffer_keys: &Bound<'py, PyTuple>,
    rule: &str,
    min_8bit_size: usize,
    grads: Option<Bound<'py, PyList>>,
    plan: Option<Bound<'py, StepPlan>>,
) -> PyResult<()> {
    let rule = rule_of(rule)?;
    let keys = StateKeys::new(scalar_keys, buffer_keys)?;
    let make = |g: &Group<'_, 'py>| EightBit::from_group(g, rule, min_8bit_size);
    let (grads, plan) = (grads.as_ref(), plan.as_ref());
    step(py, state, param_groups, &keys, grads, plan, make, false, |py, kernels: &[EightBit], entries, _| {
        detached(py, entries, |entries| {
            for b in buckets(kernels.len(), entries) {
                let h = &kernels[b.group].h;
                match b.dtype {
                    Dtype::F32 => run_bucket::<f32>(h, b.entries),
                    Dtype::F64 => run_bucket::<f64>(h, b.entries),
                }
            }
        })
    })?;
    Ok(())
}

/// Advances the step counts of one bucket's entries (one group, parameters of type
/// `P`) and runs its kernel.
fn run_bucket<P: Element>(h: &EightBitHyper, entries: Vec<&mut Entry>) {
    // Each distinct map is looked up once (the parameters of a step usually share
    // their two maps): the same array at the same address cannot differ within a step.
    let mut found: Vec<(*mut u8, Arc<Quantizer>)> = Vec::new();
    let mut quantizer = |ptr: *mut u8, len: usize| -> Option<Arc<Quantizer>> {
        if let Some((_, q)) = found.iter().find(|(p, _)| *p == ptr) {
            return Some(q.clone());
        }
        // SAFETY: slots 4 and 5 hold checked float32 maps of MAP_SIZE entries (or null).
        let q = Quantizer::cached(unsafe { map_at(ptr, len) }?);
        found.push((ptr, q.clone()));
        Some(q)
    };
    let quantizers: Vec<[Option<Arc<Quantizer>>; 2]> =
        entries.iter().map(|e| [quantizer(e.buffers[4], e.lens[4]), quantizer(e.buffers[5], e.lens[5])]).collect();
    let tensors = entries
        .into_iter()
        .zip(&quantizers)
        .map(|(e, q)| {
            e.scalars[0] += 1.0;
            // SAFETY: the entry comes from `step::step`: its pointers point into held,
            // checked, non-overlapping arrays of the slot's type and `lens[k]` elements.
            unsafe { tensor::<P>(e, q) }
        })
        .collect();
    eight_bit(h, tensors);
}

/// The map a slot points to, if any.
///
/// # Safety
/// `ptr` is null or points to `len` float32 values alive for `'a`.
unsafe fn map_at<'a>(ptr: *mut u8, len: usize) -> Option<&'a [f32; MAP_SIZE]> {
    if ptr.is_null() || len != MAP_SIZE {
        return None;
    }
    // SAFETY: this function's contract.
    unsafe { std::slice::from_raw_parts(ptr.cast::<f32>(), len) }.try_into().ok()
}

/// One entry as a kernel tensor.
///
/// # Safety
/// As in [`run_bucket`], the parameter of type `P`; `q` holds the entry's quantizers
/// when its state is 8-bit.
unsafe fn tensor<'a, P: Element>(e: &'a mut Entry, q: &'a [Option<Arc<Quantizer>>; 2]) -> EightBitTensor<'a, P> {
    let b = e.buffers;
    let l = e.lens;
    // SAFETY: the contract of this function, slot by slot (codes u8, the rest f32).
    unsafe {
        let state = if b[2].is_null() {
            EightBitState::Full { state1: slice(b[0], l[0]), state2: slice(b[1], l[1]) }
        } else {
            let quantized = |j: usize, codes: usize, absmax: usize| {
                q[j].as_deref().map(|quantizer| Quantized {
                    codes: slice(b[codes], l[codes]),
                    absmax: slice(b[absmax], l[absmax]),
                    quantizer,
                })
            };
            EightBitState::Blockwise {
                state1: quantized(0, 0, 2).expect("8-bit state has qmap1"),
                state2: if b[1].is_null() { None } else { quantized(1, 1, 3) },
            }
        };
        EightBitTensor { param: slice(e.param, e.len), grad: read_slice::<P>(e.grad, e.len), step: e.scalars[0], state }
    }
}
