//! Reading a param group's hyperparameters from its Python dict, by torch's names.

use ferroptim::{
    AdadeltaHyper, AdagradHyper, AdamHyper, AdamaxHyper, AsgdHyper, NadamHyper, RadamHyper, RmspropHyper, RpropHyper,
    SgdHyper,
};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

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

    pub(crate) fn real(&self, key: &str, value: &Bound<'py, PyAny>) -> PyResult<f64> {
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
