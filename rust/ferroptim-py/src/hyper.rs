//! Reading a param group's hyperparameters from its Python dict, by torch's names.

use ferroptim::{
    AdadeltaHyper, AdagradHyper, AdamHyper, AdamaxHyper, AsgdHyper, HyperError, NadamHyper, RadamHyper, RmspropHyper,
    RpropHyper, SgdHyper, Validate,
};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyTuple};

use crate::arrays::type_name;

/// One param group's dict, with its position for error messages.
pub(crate) struct Group<'a, 'py> {
    pub dict: &'a Bound<'py, PyDict>,
    pub index: usize,
}

impl<'py> Group<'_, 'py> {
    pub(crate) fn item(&self, key: &str) -> PyResult<Bound<'py, PyAny>> {
        self.dict
            .get_item(key)?
            .ok_or_else(|| PyKeyError::new_err(format!("param_groups[{}] has no '{key}'", self.index)))
    }

    fn real(&self, key: &str, value: &Bound<'py, PyAny>) -> PyResult<f64> {
        value.extract::<f64>().map_err(|_| {
            PyTypeError::new_err(format!(
                "param_groups[{}]['{key}'] must be a real number, got {}",
                self.index,
                type_name(value)
            ))
        })
    }

    /// A real-number hyperparameter.
    pub(crate) fn f64(&self, key: &str) -> PyResult<f64> {
        self.real(key, &self.item(key)?)
    }

    /// A pair of real numbers, such as `betas`.
    pub(crate) fn pair(&self, key: &str) -> PyResult<(f64, f64)> {
        let v = self.item(key)?;
        let bad = || {
            PyTypeError::new_err(format!(
                "param_groups[{}]['{key}'] must be a pair of real numbers, got {}",
                self.index,
                type_name(&v)
            ))
        };
        if v.len().map_err(|_| bad())? != 2 {
            return Err(bad());
        }
        Ok((self.real(key, &v.get_item(0)?)?, self.real(key, &v.get_item(1)?)?))
    }

    /// A flag, read by truth value as torch reads it (`if group["maximize"]:`).
    pub(crate) fn flag(&self, key: &str) -> PyResult<bool> {
        self.item(key)?.is_truthy()
    }
}

/// A kernel whose hyperparameters come from a param group.
pub(crate) trait FromGroup: Sized {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self>;
}

impl FromGroup for SgdHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(SgdHyper {
            lr: g.f64("lr")?,
            momentum: g.f64("momentum")?,
            dampening: g.f64("dampening")?,
            weight_decay: g.f64("weight_decay")?,
            nesterov: g.flag("nesterov")?,
            maximize: g.flag("maximize")?,
        })
    }
}

impl FromGroup for AdamHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(AdamHyper {
            lr: g.f64("lr")?,
            betas: g.pair("betas")?,
            eps: g.f64("eps")?,
            weight_decay: g.f64("weight_decay")?,
            amsgrad: g.flag("amsgrad")?,
            maximize: g.flag("maximize")?,
            decoupled_weight_decay: g.flag("decoupled_weight_decay")?,
        })
    }
}

impl FromGroup for AdagradHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(AdagradHyper {
            lr: g.f64("lr")?,
            lr_decay: g.f64("lr_decay")?,
            weight_decay: g.f64("weight_decay")?,
            initial_accumulator_value: g.f64("initial_accumulator_value")?,
            eps: g.f64("eps")?,
            maximize: g.flag("maximize")?,
        })
    }
}

impl FromGroup for AdadeltaHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(AdadeltaHyper {
            lr: g.f64("lr")?,
            rho: g.f64("rho")?,
            eps: g.f64("eps")?,
            weight_decay: g.f64("weight_decay")?,
            maximize: g.flag("maximize")?,
        })
    }
}

impl FromGroup for AdamaxHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(AdamaxHyper {
            lr: g.f64("lr")?,
            betas: g.pair("betas")?,
            eps: g.f64("eps")?,
            weight_decay: g.f64("weight_decay")?,
            maximize: g.flag("maximize")?,
        })
    }
}

impl FromGroup for NadamHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(NadamHyper {
            lr: g.f64("lr")?,
            betas: g.pair("betas")?,
            eps: g.f64("eps")?,
            weight_decay: g.f64("weight_decay")?,
            momentum_decay: g.f64("momentum_decay")?,
            decoupled_weight_decay: g.flag("decoupled_weight_decay")?,
            maximize: g.flag("maximize")?,
        })
    }
}

impl FromGroup for RadamHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(RadamHyper {
            lr: g.f64("lr")?,
            betas: g.pair("betas")?,
            eps: g.f64("eps")?,
            weight_decay: g.f64("weight_decay")?,
            decoupled_weight_decay: g.flag("decoupled_weight_decay")?,
            maximize: g.flag("maximize")?,
        })
    }
}

impl FromGroup for RmspropHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(RmspropHyper {
            lr: g.f64("lr")?,
            alpha: g.f64("alpha")?,
            eps: g.f64("eps")?,
            weight_decay: g.f64("weight_decay")?,
            momentum: g.f64("momentum")?,
            centered: g.flag("centered")?,
            maximize: g.flag("maximize")?,
        })
    }
}

impl FromGroup for RpropHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(RpropHyper {
            lr: g.f64("lr")?,
            etas: g.pair("etas")?,
            step_sizes: g.pair("step_sizes")?,
            maximize: g.flag("maximize")?,
        })
    }
}

impl FromGroup for AsgdHyper {
    fn from_group(g: &Group<'_, '_>) -> PyResult<Self> {
        Ok(AsgdHyper {
            lr: g.f64("lr")?,
            lambd: g.f64("lambd")?,
            alpha: g.f64("alpha")?,
            t0: g.f64("t0")?,
            weight_decay: g.f64("weight_decay")?,
            maximize: g.flag("maximize")?,
        })
    }
}

/// `_core.check_hyper(kind, values)`: torch's argument checks of optimizer `kind`
/// (its class name: SGD, Adam, AdamW, Adagrad, Adadelta, Adamax, NAdam, RAdam,
/// RMSprop, Rprop, ASGD, ADOPT, ScheduleFreeSGD) on `values`, its defaults by torch's
/// names: the checks of the Rust crate (`Validate`), in torch's order, raising torch's
/// ValueError with each value it quotes spelled as Python spells it (`-1`, `-1.0`,
/// `1e-08`).
#[pyfunction]
pub(crate) fn check_hyper(kind: &str, values: &Bound<'_, PyDict>) -> PyResult<()> {
    // a value that is no number fails as torch's comparison with it fails
    let py = values.py();
    for (_, v) in values.iter() {
        // a pair (betas, etas) as a tuple or a list: its entries
        let entries: Vec<Bound<'_, PyAny>> = match (v.cast::<PyTuple>(), v.cast::<PyList>()) {
            (Ok(t), _) => t.iter().collect(),
            (_, Ok(l)) => l.iter().collect(),
            _ => vec![v.clone()],
        };
        for e in entries {
            if e.is_none() || e.is_instance_of::<PyBool>() || e.extract::<f64>().is_ok() {
                continue;
            }
            let zero = 0.0f64.into_pyobject(py)?;
            if kind == "SGD" || kind == "ScheduleFreeSGD" {
                e.lt(zero)?; // torch's SGD, schedulefree's: `if lr < 0.0`
            } else {
                zero.le(e)?; // the others: `if not 0.0 <= lr`
            }
        }
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
        "ADOPT" => ferroptim::AdoptHyper::from_group(&g)?.validate(),
        "ScheduleFreeSGD" => ferroptim::ScheduleFreeHyper {
            kind: ferroptim::ScheduleFreeKind::Sgd { momentum: g.f64("momentum")?, warmup_steps: 0.0 },
            lr: g.f64("lr")?,
            weight_decay: g.f64("weight_decay")?,
            ..ferroptim::ScheduleFreeHyper::sgd()
        }
        .validate(),
        _ => return Err(PyValueError::new_err(format!("check_hyper: no optimizer {kind:?}"))),
    };
    checked.map_err(|e| PyValueError::new_err(spelled(&e, values)))
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
