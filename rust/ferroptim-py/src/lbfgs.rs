//! `_core.lbfgs_step`: one L-BFGS step, calling the Python closure for the loss.
//!
//! The history lives in the Python state dict between steps (as torch keeps it in
//! the state of the first parameter). A step borrows its arrays (read-only, no copy),
//! and writes the new state back only when it succeeds: the arrays it kept as they
//! are, the new ones made from Rust vectors without a copy. If the closure (or anything else) raises, the
//! parameters are put back as they were and the state is left alone.

use ferroptim::{lbfgs, Element, LbfgsHyper, LbfgsState, Objective};
use std::borrow::Cow;

use numpy::{Element as NpElement, PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::arrays::type_name;
use crate::hyper::Group;

pub(crate) fn hyper(g: &Group<'_, '_>) -> PyResult<LbfgsHyper> {
    let int = |key: &str| -> PyResult<u64> {
        g.item(key)?
            .extract::<u64>()
            .map_err(|_| PyTypeError::new_err(format!("param_groups[{}]['{key}'] must be a non-negative int", g.index)))
    };
    let strong_wolfe = match g.item("line_search_fn")?.extract::<Option<String>>()?.as_deref() {
        None => false,
        Some("strong_wolfe") => true,
        Some(_) => return Err(PyRuntimeError::new_err("only 'strong_wolfe' is supported")),
    };
    Ok(LbfgsHyper {
        lr: g.f64("lr")?,
        max_iter: int("max_iter")?,
        max_eval: int("max_eval")?,
        tolerance_grad: g.f64("tolerance_grad")?,
        tolerance_change: g.f64("tolerance_change")?,
        history_size: int("history_size")? as usize,
        strong_wolfe,
        maximize: match g.dict.get_item("maximize")? {
            None => false, // a group from before torch 2.15
            Some(v) => v.is_truthy()?,
        },
    })
}

/// The parameters and closure of one step, seen as a function of the flat θ.
struct Closure<'py> {
    py: Python<'py>,
    params: Vec<Bound<'py, PyAny>>,
    shapes: Vec<Vec<usize>>,
    closure: Bound<'py, PyAny>,
    /// What the first call of the closure returned (what `step` returns).
    first: Option<Bound<'py, PyAny>>,
}

/// Appends the elements of `a`, in C order.
fn extend<T: Element + NpElement>(flat: &mut Vec<T>, a: &Bound<'_, PyArrayDyn<T>>) {
    let ro = a.readonly();
    match ro.as_slice() {
        Ok(s) => flat.extend_from_slice(s),
        Err(_) => flat.extend(ro.as_array().iter().copied()),
    }
}

impl<'py> Closure<'py> {
    /// The number of elements of all the parameters.
    fn len(&self) -> usize {
        self.shapes.iter().map(|s| s.iter().product::<usize>()).sum()
    }

    fn data<T: Element + NpElement>(&self, i: usize) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
        let data = self.params[i].getattr("data")?;
        let array = data.cast_into::<PyArrayDyn<T>>().map_err(|e| {
            PyTypeError::new_err(format!(
                "params[{i}].data must stay a {} array of its shape, got {}",
                T::get_dtype(self.py),
                type_name(&e.into_inner())
            ))
        })?;
        if array.shape() != self.shapes[i].as_slice() {
            return Err(PyValueError::new_err(format!("params[{i}] changed shape during the step")));
        }
        Ok(array)
    }

    /// Applies `f` to each parameter's elements (in C order) with its slice of `flat`.
    fn each<T: Element + NpElement>(&self, flat: &[T], f: impl Fn(&mut T, T)) -> PyResult<()> {
        let mut offset = 0;
        for i in 0..self.params.len() {
            let array = self.data::<T>(i)?;
            let mut rw = array.try_readwrite().map_err(|e| PyValueError::new_err(format!("params[{i}]: {e}")))?;
            let mut view = rw.as_array_mut();
            let n = view.len();
            let part = &flat[offset..offset + n];
            match view.as_slice_mut() {
                Some(s) => s.iter_mut().zip(part).for_each(|(p, &x)| f(p, x)),
                None => view.iter_mut().zip(part).for_each(|(p, &x)| f(p, x)),
            }
            offset += n;
        }
        Ok(())
    }
}

impl<'py, T: Element + NpElement> Objective<T> for Closure<'py> {
    type Error = PyErr;

    fn evaluate(&mut self) -> PyResult<f64> {
        let out = self.closure.call0()?;
        let loss = out.extract::<f64>().map_err(|_| {
            PyTypeError::new_err(format!("the closure must return the loss as a number, got {}", type_name(&out)))
        })?;
        self.first.get_or_insert(out);
        Ok(loss)
    }

    fn flat_grad(&mut self) -> PyResult<Vec<T>> {
        let numpy = self.py.import("numpy")?;
        let mut flat = Vec::with_capacity(self.len());
        for (i, (p, shape)) in self.params.iter().zip(&self.shapes).enumerate() {
            let grad = p.getattr("grad")?;
            if grad.is_none() {
                flat.extend(std::iter::repeat_n(T::zero(), shape.iter().product()));
                continue;
            }
            let a = numpy.call_method1("asarray", (grad, T::get_dtype(self.py)))?.cast_into::<PyArrayDyn<T>>()?;
            if a.shape() != shape.as_slice() {
                return Err(PyValueError::new_err(format!(
                    "the gradient of params[{i}] has shape {:?} but the parameter {:?}",
                    a.shape(),
                    shape
                )));
            }
            extend(&mut flat, &a);
        }
        Ok(flat)
    }

    fn add(&mut self, t: f64, d: &[T]) -> PyResult<()> {
        let t = T::of(t);
        self.each(d, |p, x| *p = t.mul_add(x, *p)) // torch 2.15's p.add_(d, alpha=t): one fma
    }

    fn get(&mut self) -> PyResult<Vec<T>> {
        let mut flat = Vec::with_capacity(self.len());
        for i in 0..self.params.len() {
            extend(&mut flat, &self.data::<T>(i)?);
        }
        Ok(flat)
    }

    fn set(&mut self, x: &[T]) -> PyResult<()> {
        self.each(x, |p, v| *p = v)
    }
}

/// A vector of the loaded history: the state dict's own array, borrowed for the step
/// when it is a C-contiguous array of the step's dtype (no copy), else a converted copy.
enum Lent<'py, T: NpElement> {
    Array(Bound<'py, PyAny>, PyReadonlyArrayDyn<'py, T>),
    Converted(Vec<T>),
}

impl<'py, T: Element + NpElement> Lent<'py, T> {
    fn new(v: Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        let held = match v.cast::<PyArrayDyn<T>>() {
            Ok(a) if a.is_c_contiguous() => {
                let ro = a.try_readonly().map_err(|e| PyValueError::new_err(format!("L-BFGS state '{what}': {e}")))?;
                Lent::Array(v.clone(), ro)
            }
            _ => {
                let numpy = v.py().import("numpy")?;
                let a = numpy.call_method1("asarray", (&v, T::get_dtype(v.py())))?.cast_into::<PyArrayDyn<T>>()?;
                Lent::Converted(a.readonly().as_array().iter().copied().collect())
            }
        };
        if held.slice().is_empty() && v.getattr("ndim")?.extract::<usize>()? > 0 {
            return Err(PyValueError::new_err(format!("loaded L-BFGS state '{what}' is empty")));
        }
        Ok(held)
    }

    fn slice(&self) -> &[T] {
        match self {
            Lent::Array(_, ro) => ro.as_slice().expect("checked C-contiguous"),
            Lent::Converted(v) => v,
        }
    }
}

fn scalar<T: Element + NpElement>(v: &Bound<'_, PyAny>) -> PyResult<T> {
    Ok(T::of(v.extract::<f64>()?))
}

/// The history as the Python state dict holds it, its vectors borrowed.
struct Loaded<'py, T: NpElement + Clone + 'static> {
    d: Option<Lent<'py, T>>,
    old_dirs: Vec<Lent<'py, T>>,
    old_stps: Vec<Lent<'py, T>>,
    prev_flat_grad: Option<Lent<'py, T>>,
    /// the rest, with no vectors
    scalars: LbfgsState<'static, T>,
}

impl<'py, T: Element + NpElement> Loaded<'py, T> {
    fn read(state: &Bound<'py, PyDict>, n: usize) -> PyResult<Self> {
        let get = |key: &str| state.get_item(key).map(|v| v.filter(|v| !v.is_none()));
        let list = |key: &str| -> PyResult<Vec<Lent<'py, T>>> {
            match get(key)? {
                None => Ok(Vec::new()),
                Some(l) => l.try_iter()?.map(|v| Lent::new(v?, key)).collect(),
            }
        };
        let loaded = Loaded {
            d: get("d")?.map(|v| Lent::new(v, "d")).transpose()?,
            old_dirs: list("old_dirs")?,
            old_stps: list("old_stps")?,
            prev_flat_grad: get("prev_flat_grad")?.map(|v| Lent::new(v, "prev_flat_grad")).transpose()?,
            scalars: LbfgsState {
                func_evals: get("func_evals")?.map(|v| v.extract()).transpose()?.unwrap_or(0),
                n_iter: get("n_iter")?.map(|v| v.extract()).transpose()?.unwrap_or(0),
                t: get("t")?.map(|v| v.extract()).transpose()?,
                ro: match get("ro")? {
                    None => Vec::new(),
                    Some(l) => l.try_iter()?.map(|v| scalar::<T>(&v?)).collect::<PyResult<_>>()?,
                },
                h_diag: get("H_diag")?.map(|v| scalar::<T>(&v)).transpose()?,
                prev_loss: get("prev_loss")?.map(|v| v.extract()).transpose()?,
                al: match get("al")? {
                    None => None,
                    Some(l) => Some(
                        l.try_iter()?
                            .map(|v| {
                                let v = v?;
                                if v.is_none() {
                                    Ok(None)
                                } else {
                                    scalar::<T>(&v).map(Some)
                                }
                            })
                            .collect::<PyResult<_>>()?,
                    ),
                },
                ..LbfgsState::default()
            },
        };
        let len = |h: &Option<Lent<'py, T>>| h.as_ref().map(|h| h.slice().len());
        let bad = len(&loaded.d).is_some_and(|l| l != n)
            || len(&loaded.prev_flat_grad).is_some_and(|l| l != n)
            || loaded.old_dirs.iter().chain(&loaded.old_stps).any(|v| v.slice().len() != n)
            || loaded.old_dirs.len() != loaded.old_stps.len()
            || loaded.old_dirs.len() != loaded.scalars.ro.len();
        if bad {
            return Err(PyValueError::new_err(format!("loaded L-BFGS state does not fit parameters of {n} elements")));
        }
        Ok(loaded)
    }

    /// The kernel's state, lending the loaded vectors.
    fn state(&self) -> LbfgsState<'_, T> {
        fn lend<'a, T: Element + NpElement>(h: &'a Lent<'_, T>) -> Cow<'a, [T]> {
            Cow::Borrowed(h.slice())
        }
        LbfgsState {
            d: self.d.as_ref().map(lend),
            old_dirs: self.old_dirs.iter().map(lend).collect(),
            old_stps: self.old_stps.iter().map(lend).collect(),
            prev_flat_grad: self.prev_flat_grad.as_ref().map(lend),
            ..self.scalars.clone()
        }
    }

    /// A vector of the new state as a NumPy array: a new one made without a copy, a
    /// loaded one as the very array it was lent from.
    fn array(&self, py: Python<'py>, v: Cow<'_, [T]>) -> Bound<'py, PyAny> {
        match v {
            Cow::Owned(v) => PyArray1::from_vec(py, v).into_any(),
            Cow::Borrowed(s) => {
                let lent = self.d.iter().chain(&self.old_dirs).chain(&self.old_stps).chain(&self.prev_flat_grad);
                let same = |h: &&Lent<'py, T>| h.slice().as_ptr() == s.as_ptr() && h.slice().len() == s.len();
                match lent.into_iter().find(same) {
                    Some(Lent::Array(obj, _)) => obj.clone(),
                    _ => PyArray1::from_slice(py, s).into_any(),
                }
            }
        }
    }

    /// Writes the state after a successful step into the state dict.
    fn write(&self, py: Python<'py>, state: &Bound<'py, PyDict>, s: LbfgsState<'_, T>) -> PyResult<()> {
        let zero_d = |x: T| -> PyResult<Bound<'py, PyAny>> {
            Ok(PyArray1::from_vec(py, vec![x]).reshape(Vec::<usize>::new())?.into_any())
        };
        state.set_item("func_evals", s.func_evals)?;
        state.set_item("n_iter", s.n_iter)?;
        if let Some(d) = s.d {
            state.set_item("d", self.array(py, d))?;
            state.set_item("t", s.t)?;
            state.set_item("old_dirs", PyList::new(py, s.old_dirs.into_iter().map(|v| self.array(py, v)))?)?;
            state.set_item("old_stps", PyList::new(py, s.old_stps.into_iter().map(|v| self.array(py, v)))?)?;
            state.set_item("ro", PyList::new(py, s.ro.into_iter().map(zero_d).collect::<PyResult<Vec<_>>>()?)?)?;
            match s.h_diag {
                Some(h) => state.set_item("H_diag", zero_d(h)?)?,
                None => state.set_item("H_diag", 1)?,
            }
            state.set_item("prev_flat_grad", s.prev_flat_grad.map(|v| self.array(py, v)))?;
            state.set_item("prev_loss", s.prev_loss)?;
        }
        if let Some(al) = s.al {
            let items = al.into_iter().map(|a| a.map(zero_d).transpose()).collect::<PyResult<Vec<_>>>()?;
            state.set_item("al", PyList::new(py, items)?)?;
        }
        Ok(())
    }
}

fn run<'py, T: Element + NpElement>(
    py: Python<'py>,
    h: &LbfgsHyper,
    mut closure: Closure<'py>,
    state: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let n = closure.len();
    let loaded = Loaded::<T>::read(state, n)?;
    let mut s = loaded.state();
    let start = Objective::<T>::get(&mut closure)?;
    match lbfgs::<T, _>(h, &mut s, &mut closure) {
        Ok(_) => {
            loaded.write(py, state, s)?;
            Ok(closure.first.take().expect("the closure ran"))
        }
        Err(e) => {
            // Nothing half-done: the parameters go back to where the step started.
            Objective::<T>::set(&mut closure, &start)?;
            Err(e)
        }
    }
}

/// One L-BFGS step over the single param group `group`, whose state is `state`;
/// returns what the first call of `closure` returned.
#[pyfunction]
pub(crate) fn lbfgs_step<'py>(
    py: Python<'py>,
    group: &Bound<'py, PyDict>,
    state: &Bound<'py, PyDict>,
    closure: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let h = hyper(&Group { dict: group, index: 0 })?;
    let params: Vec<Bound<'py, PyAny>> =
        group.get_item("params")?.expect("a group has params").try_iter()?.collect::<PyResult<_>>()?;
    let mut shapes = Vec::with_capacity(params.len());
    let mut dtype = None;
    for (i, p) in params.iter().enumerate() {
        let data = p.getattr("data")?.cast_into::<numpy::PyUntypedArray>().map_err(|e| {
            PyTypeError::new_err(format!(
                "param_groups[0]['params'][{i}].data must be a numpy.ndarray, got {}",
                type_name(&e.into_inner())
            ))
        })?;
        let dt = data.dtype().str()?.to_string();
        if *dtype.get_or_insert_with(|| dt.clone()) != dt {
            return Err(PyTypeError::new_err(format!(
                "param_groups[0]['params'][{i}] has dtype {dt}; L-BFGS needs every parameter in one dtype"
            )));
        }
        shapes.push(data.shape().to_vec());
    }
    let closure = Closure { py, params, shapes, closure, first: None };
    match dtype.as_deref() {
        Some("float32") => run::<f32>(py, &h, closure, state),
        Some("float64") | None => run::<f64>(py, &h, closure, state),
        Some(other) => {
            Err(PyTypeError::new_err(format!("L-BFGS optimizes float32 and float64 parameters, not {other}")))
        }
    }
}
