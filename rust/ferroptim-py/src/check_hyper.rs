//! `_core.check_hyper`: the constructor checks of the Python classes, which are the
//! Rust crate's (`Validate`), with the messages of the implementations they follow,
//! each value spelled as Python spells it, and the TypeError of a value that is no
//! number raised as those constructors' comparisons raise it.

use ferroptim::{
    AdadeltaHyper, AdagradHyper, AdamHyper, AdamaxHyper, AsgdHyper, HyperError, NadamHyper, RadamHyper, RmspropHyper,
    RpropHyper, SgdHyper, Validate,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyTuple};

use crate::hyper::{FromGroup, Group};

/// `_core.check_hyper(kind, values)`: torch's argument checks of optimizer `kind`
/// (its class name: SGD, Adam, AdamW, Adagrad, Adadelta, Adamax, NAdam, RAdam,
/// RMSprop, Rprop, ASGD, and those of [`COMPARED`]) on `values`, its defaults by the
/// names of the implementation it follows: the checks of the Rust crate (`Validate`),
/// in that implementation's order, raising its ValueError with each value it quotes
/// spelled as Python spells it (`-1`, `-1.0`, `1e-08`).
#[pyfunction]
pub(crate) fn check_hyper(kind: &str, values: &Bound<'_, PyDict>) -> PyResult<()> {
    // a value that is no number fails as the constructor's comparison with it fails
    if kind == "AdEMAMix" {
        // pytorch-optimizer reads its three betas before comparing any
        if let Some(betas) = values.get_item("betas")? {
            (0..3).try_for_each(|i| betas.get_item(i).map(drop))?;
        }
    }
    let compared = COMPARED.iter().find(|(k, _)| *k == kind).map(|&(_, args)| args);
    match compared {
        Some(args) => compare(values, args)?,
        None => compare_all(kind, values)?,
    }
    let g = Group { dict: values, index: 0 };
    let checked = match kind {
        "SGD" => SgdHyper::from_group(&g)?.validate(),
        "Adam" | "AdamW" => AdamHyper::from_group(&g)?.validate(),
        "Adagrad" => AdagradHyper::from_group(&g)?.validate(),
        "Adadelta" => AdadeltaHyper::from_group(&g)?.validate(),
        "Adamax" => AdamaxHyper::from_group(&g)?.validate(),
        "NAdam" => NadamHyper::from_group(&g)?.validate(),
        "RAdam" => RadamHyper::from_group(&g)?.validate(),
        "RMSprop" => RmspropHyper::from_group(&g)?.validate(),
        "Rprop" => RpropHyper::from_group(&g)?.validate(),
        "ASGD" => AsgdHyper::from_group(&g)?.validate(),
        _ if compared.is_some() => compared_hyper(kind, &g)?,
        _ => return Err(PyValueError::new_err(format!("check_hyper: no optimizer {kind:?}"))),
    };
    checked.map_err(|e| PyValueError::new_err(spelled(&e, values)))
}

/// A value's entries: those of a pair (betas, etas) as a tuple or a list, else itself.
fn entries<'py>(v: &Bound<'py, PyAny>) -> Vec<Bound<'py, PyAny>> {
    match (v.cast::<PyTuple>(), v.cast::<PyList>()) {
        (Ok(t), _) => t.iter().collect(),
        (_, Ok(l)) => l.iter().collect(),
        _ => vec![v.clone()],
    }
}

/// torch's elementwise optimizers: every value (each entry of a pair) compared as
/// torch compares its `lr` (`lr < 0.0` for SGD, `not 0.0 <= lr` for the others).
fn compare_all(kind: &str, values: &Bound<'_, PyDict>) -> PyResult<()> {
    let zero = 0.0f64.into_pyobject(values.py())?;
    for (_, v) in values.iter() {
        for e in entries(&v) {
            if e.is_none() || e.is_instance_of::<PyBool>() || e.extract::<f64>().is_ok() {
                continue;
            }
            if kind == "SGD" {
                e.lt(&zero)?;
            } else {
                zero.le(&e)?;
            }
        }
    }
    Ok(())
}

/// How a constructor compares an argument with a number (`0.0` unless said):
/// `x < 0.0`, `0.0 <= x`, `0.0 < x`, `0.0 >= x`; `LeNoneFirst`: `0.0 <= x` of a pair
/// whose first entry may be None (Adafactor's `eps`); `LtOrNone`: `x is not None and
/// x < 0.0`; `Float`: timm's `float(x) < 0.0`; `LeIntZero`: `x <= 0`.
#[derive(Clone, Copy, PartialEq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    LeNoneFirst,
    LtOrNone,
    Float,
    LeIntZero,
}

/// The numeric arguments of the kinds whose comparisons differ by argument, each
/// with its constructor's comparison, in the order it checks them.
const COMPARED: &[(&str, &[(&str, Cmp)])] = &[
    (
        "Adafactor",
        &[
            ("lr", Cmp::Le),
            ("beta2_decay", Cmp::Ge),
            ("eps", Cmp::LeNoneFirst),
            ("d", Cmp::Le),
            ("weight_decay", Cmp::Le),
        ],
    ),
    ("Muon", &[("lr", Cmp::Le), ("momentum", Cmp::Le), ("weight_decay", Cmp::Le)]),
    ("LBFGS", &[("lr", Cmp::Le)]),
    ("SparseAdam", &[("lr", Cmp::Gt), ("eps", Cmp::Gt), ("betas", Cmp::Le)]),
    ("Adan", &[("lr", Cmp::Le), ("eps", Cmp::Le), ("betas", Cmp::Le)]),
    ("Prodigy", &[("d0", Cmp::Gt), ("lr", Cmp::Gt), ("eps", Cmp::Gt), ("betas", Cmp::Le)]),
    ("LARS", &[("lr", Cmp::Lt), ("momentum", Cmp::Lt), ("weight_decay", Cmp::Lt)]),
    // schedulefree's SGDScheduleFree: `lr < 0.0`, `weight_decay < 0.0`, `momentum <= 0`
    ("ScheduleFreeSGD", &[("lr", Cmp::Lt), ("weight_decay", Cmp::Lt), ("momentum", Cmp::LeIntZero)]),
    ("Lion", &[("lr", Cmp::Float), ("betas", Cmp::Le)]),
    ("ADOPT", &[("lr", Cmp::Le), ("eps", Cmp::Le), ("betas", Cmp::Le), ("weight_decay", Cmp::Le)]),
    ("LAMB", &[("lr", Cmp::Float), ("eps", Cmp::Float), ("weight_decay", Cmp::Float)]),
    (
        "AdEMAMix",
        &[
            ("lr", Cmp::LtOrNone),
            ("betas", Cmp::Le),
            ("alpha", Cmp::LtOrNone),
            ("t_alpha_beta3", Cmp::LtOrNone),
            ("weight_decay", Cmp::LtOrNone),
            ("eps", Cmp::LtOrNone),
        ],
    ),
    // bitsandbytes' `Optimizer1State` / `Optimizer2State` checks (every 8-bit class)
    ("EightBit", &[("lr", Cmp::Le), ("eps", Cmp::Le), ("betas", Cmp::Le), ("weight_decay", Cmp::Le)]),
    // and Adagrad8bit's own, before those
    ("Adagrad8bit", &[("lr", Cmp::Le), ("weight_decay", Cmp::Le), ("eps", Cmp::Le)]),
];

/// The checks of a kind of [`COMPARED`]: its hyperparameters built from the checked
/// arguments alone (the others the defaults: they are checked where they are used,
/// as in the implementation followed), a pair's entries read by index (a short pair
/// raises Python's IndexError, a longer one passes).
fn compared_hyper(kind: &str, g: &Group<'_, '_>) -> PyResult<Result<(), HyperError>> {
    use ferroptim::{
        AdafactorHyper, AdanHyper, AdemamixHyper, AdoptHyper, EightBitHyper, EightBitRule, LambHyper, LarsHyper,
        LbfgsHyper, LionHyper, MuonHyper, ProdigyHyper, SparseAdamHyper,
    };
    let f = |key: &str| g.f64(key);
    let at = |key: &str, i: usize| -> PyResult<Option<f64>> {
        let v = g.item(key)?.get_item(i)?;
        if v.is_none() {
            Ok(None)
        } else {
            g.real(key, &v).map(Some)
        }
    };
    let real_at = |key: &str, i: usize| at(key, i).map(|v| v.unwrap_or(f64::NAN));
    // a number or None (NaN: no check refuses it)
    let or_none = |key: &str| -> PyResult<f64> {
        let v = g.item(key)?;
        if v.is_none() {
            Ok(f64::NAN)
        } else {
            g.real(key, &v)
        }
    };
    let as_float = |key: &str| float(&g.item(key)?);
    // timm's corrected weight decay: its `max_lr_snapshot`, the LR as a float
    let max_lr = |lr: f64| -> PyResult<Option<f64>> { Ok(g.flag("corrected_weight_decay")?.then_some(lr)) };
    Ok(match kind {
        "Adafactor" => AdafactorHyper {
            lr: f("lr")?,
            beta2_decay: f("beta2_decay")?,
            eps: (at("eps", 0)?, real_at("eps", 1)?),
            d: f("d")?,
            weight_decay: f("weight_decay")?,
            ..AdafactorHyper::default()
        }
        .validate(),
        "Muon" => {
            let h = MuonHyper {
                lr: f("lr")?,
                momentum: f("momentum")?,
                weight_decay: f("weight_decay")?,
                ..MuonHyper::default()
            };
            let adjust = crate::muon::adjust_lr_fn(&g.item("adjust_lr_fn")?)?;
            h.validate().and_then(|()| adjust.map(|_| ()).map_err(HyperError::new))
        }
        "LBFGS" => LbfgsHyper { lr: f("lr")?, ..LbfgsHyper::default() }.validate(),
        "SparseAdam" => SparseAdamHyper {
            lr: f("lr")?,
            eps: f("eps")?,
            betas: (real_at("betas", 0)?, real_at("betas", 1)?),
            ..SparseAdamHyper::default()
        }
        .validate(),
        "Adan" => AdanHyper {
            lr: f("lr")?,
            eps: f("eps")?,
            betas: (real_at("betas", 0)?, real_at("betas", 1)?, real_at("betas", 2)?),
            ..AdanHyper::timm()
        }
        .validate(),
        "Prodigy" => ProdigyHyper {
            d0: f("d0")?,
            lr: f("lr")?,
            eps: f("eps")?,
            betas: (real_at("betas", 0)?, real_at("betas", 1)?),
            ..ProdigyHyper::prodigyopt()
        }
        .validate(),
        "ScheduleFreeSGD" => ferroptim::ScheduleFreeHyper {
            kind: ferroptim::ScheduleFreeKind::Sgd { momentum: f("momentum")?, warmup_steps: 0.0 },
            lr: f("lr")?,
            weight_decay: f("weight_decay")?,
            ..ferroptim::ScheduleFreeHyper::sgd()
        }
        .validate(),
        "LARS" => {
            let nesterov = g.flag("nesterov")?;
            // timm's `dampening != 0`, read only with nesterov: anything but a zero
            let dampening = if nesterov { g.item("dampening")?.extract::<f64>().unwrap_or(f64::NAN) } else { 0.0 };
            let (lr, momentum, weight_decay) = (f("lr")?, f("momentum")?, f("weight_decay")?);
            LarsHyper { lr, momentum, weight_decay, nesterov, dampening, ..LarsHyper::timm() }.validate()
        }
        "Lion" => {
            let lr = as_float("lr")?;
            let betas = (real_at("betas", 0)?, real_at("betas", 1)?);
            LionHyper { lr, betas, max_lr: max_lr(lr)?, ..LionHyper::timm() }.validate()
        }
        "ADOPT" => {
            let lr = f("lr")?;
            let (eps, weight_decay, betas) =
                (f("eps")?, f("weight_decay")?, (real_at("betas", 0)?, real_at("betas", 1)?));
            let h = AdoptHyper { lr, eps, weight_decay, betas, ..AdoptHyper::timm() };
            // the peak LR of corrected weight decay, checked after the others: timm's
            // `max_lr_snapshot`, `float(lr)`, written into the defaults for the message
            match h.validate() {
                Ok(()) => {
                    g.dict.set_item("max_lr_snapshot", lr)?;
                    AdoptHyper { max_lr: max_lr(lr)?, ..h }.validate()
                }
                refused => refused,
            }
        }
        "LAMB" => {
            let (lr, eps, weight_decay) = (as_float("lr")?, as_float("eps")?, as_float("weight_decay")?);
            LambHyper { lr, eps, weight_decay, max_lr: max_lr(lr)?, ..LambHyper::timm() }.validate()
        }
        "AdEMAMix" => {
            let t = g.item("t_alpha_beta3")?;
            AdemamixHyper {
                lr: or_none("lr")?,
                betas: (real_at("betas", 0)?, real_at("betas", 1)?, real_at("betas", 2)?),
                alpha: or_none("alpha")?,
                t_alpha_beta3: if t.is_none() { None } else { Some(g.real("t_alpha_beta3", &t)?) },
                weight_decay: or_none("weight_decay")?,
                eps: or_none("eps")?,
                ..AdemamixHyper::pytorch_optimizer()
            }
            .validate()
        }
        "EightBit" => {
            // (β₁, β₂) or AdEMAMix8bit's (β₁, β₂, β₃): each checked
            let betas = g.item("betas")?;
            let n = betas.len()?;
            let b = |i: usize| if i < n { real_at("betas", i) } else { Ok(0.0) };
            let rule = if n > 2 { EightBitRule::Ademamix } else { EightBitRule::Adam };
            let (lr, eps, weight_decay) = (f("lr")?, f("eps")?, f("weight_decay")?);
            EightBitHyper { rule, lr, eps, weight_decay, betas: (b(0)?, b(1)?), beta3: b(2)?, ..EightBitHyper::adam() }
                .validate()
        }
        "Adagrad8bit" => {
            let (lr, eps, weight_decay) = (f("lr")?, f("eps")?, f("weight_decay")?);
            EightBitHyper { lr, eps, weight_decay, ..EightBitHyper::adagrad() }.validate()
        }
        _ => unreachable!("a kind of COMPARED"),
    })
}

/// Raises the TypeError of the first argument of `args` (or entry of a pair) that is
/// no number, as the constructor's comparison with it raises it.
fn compare(values: &Bound<'_, PyDict>, args: &[(&str, Cmp)]) -> PyResult<()> {
    let zero = 0.0f64.into_pyobject(values.py())?;
    for &(name, cmp) in args {
        let Some(v) = values.get_item(name)? else { continue };
        let entries = entries(&v);
        let optional = |k: usize, e: &Bound<'_, PyAny>| {
            e.is_none() && ((k == 0 && cmp == Cmp::LeNoneFirst) || cmp == Cmp::LtOrNone)
        };
        let number = |e: &Bound<'_, PyAny>| e.is_instance_of::<PyBool>() || e.extract::<f64>().is_ok();
        for (_, e) in entries.iter().enumerate().filter(|(k, e)| !(optional(*k, e) || number(e))) {
            match cmp {
                Cmp::Lt | Cmp::LtOrNone => e.lt(&zero)?,
                Cmp::Float => float(e).map(|_| false)?,
                Cmp::LeIntZero => e.le(0)?,
                Cmp::Le | Cmp::LeNoneFirst => zero.le(e)?,
                Cmp::Gt => zero.lt(e)?,
                Cmp::Ge => zero.ge(e)?,
            };
        }
    }
    Ok(())
}

/// Python's `float(v)`.
pub(crate) fn float(v: &Bound<'_, PyAny>) -> PyResult<f64> {
    v.py().get_type::<pyo3::types::PyFloat>().call1((v,))?.extract()
}

/// `e`'s message with each value it quotes spelled as Python spells the one given.
fn spelled(e: &HyperError, values: &Bound<'_, PyDict>) -> String {
    let mut message = e.message.clone();
    // from the last, so that the earlier ranges stay where they are
    for q in e.quoted.iter().rev() {
        let value = values.get_item(q.name).ok().flatten();
        let value = match (value, q.index) {
            (Some(v), Some(i)) => v.get_item(i).ok(),
            (v, None) => v,
            (None, _) => None,
        };
        if let Some(s) = value.and_then(|v| v.str().ok()) {
            message.replace_range(q.at.clone(), &s.to_string_lossy());
        }
    }
    message
}
