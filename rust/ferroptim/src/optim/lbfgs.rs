//! torch's L-BFGS behind [`Optimizer`]: [`Optimizer::step_closure`], which
//! re-evaluates the objective through a closure as `torch.optim.LBFGS.step(closure)`
//! does. Its history is the optimizer's (torch keeps it in the first parameter's
//! state, and so does the state dict); it has one param group, as torch's.
//!
//! ```
//! use ferroptim::optim::lbfgs::Lbfgs;
//! use ferroptim::{LbfgsHyper, Optimizer};
//!
//! // minimize (x - 3)² + (y + 1)²
//! let (mut x, mut y) = (vec![0.0f64], vec![0.0f64]);
//! let mut opt: Lbfgs<f64> = Optimizer::new(LbfgsHyper::default()).unwrap();
//! let loss = opt
//!     .step_closure(&mut [&mut x, &mut y], |p, g| {
//!         g[0][0] = 2.0 * (p[0][0] - 3.0);
//!         g[1][0] = 2.0 * (p[1][0] + 1.0);
//!         (p[0][0] - 3.0).powi(2) + (p[1][0] + 1.0).powi(2)
//!     })
//!     .unwrap();
//! assert_eq!(loss, 10.0); // the loss at the start, as torch's step returns
//! assert!((x[0] - 3.0).abs() < 1e-6 && (y[0] + 1.0).abs() < 1e-6);
//! ```

use std::borrow::Cow;
use std::convert::Infallible;

use crate::element::Element;
use crate::kernels::vector::axpy;
use crate::state_dict::{Array, Value};
use crate::{lbfgs, LbfgsHyper, LbfgsState, Objective};

use super::state_dict::{read_entries, Entry, TorchLayout};
use super::{Group, GroupStep, Optimizer, ParamState, Rule, StepError};

/// torch's L-BFGS over parameters of type `T`.
pub type Lbfgs<T> = Optimizer<LbfgsHyper, T>;

/// torch's refusal of param groups.
const NO_GROUPS: &str = "LBFGS doesn't support per-parameter options (parameter groups)";

impl Rule for LbfgsHyper {
    type GroupState = ();
    /// The history: torch's state entries of the same names.
    type Global<T: Element> = LbfgsState<'static, T>;
    const SCALARS: usize = 0;
    fn group_state(&self) {}
    fn buffers(&self) -> usize {
        0
    }
    fn buffer_shape(&self, _k: usize, _shape: &[usize]) -> Option<Vec<usize>> {
        None
    }
    /// L-BFGS re-evaluates the objective: it steps through `step_closure` only.
    fn check_groups(_groups: &[Group<Self>]) -> Result<(), String> {
        Err("L-BFGS re-evaluates the objective: step it with Optimizer::step_closure".into())
    }
    fn step<T: Element>(_groups: &mut [GroupStep<'_, Self, T>]) {}
}

/// The objective of a step: the parameters, their gradients and the closure that
/// evaluates the loss and writes the gradients.
struct Closure<'p, 'q, T, F> {
    params: &'p mut [&'q mut [T]],
    grads: Vec<Vec<T>>,
    closure: F,
    first: Option<f64>,
}

impl<T: Element, F: FnMut(&[&[T]], &mut [Vec<T>]) -> f64> Objective<T> for Closure<'_, '_, T, F> {
    type Error = Infallible;

    fn evaluate(&mut self) -> Result<f64, Infallible> {
        self.grads.iter_mut().for_each(|g| g.fill(T::zero()));
        let params: Vec<&[T]> = self.params.iter().map(|p| &p[..]).collect();
        let loss = (self.closure)(&params, &mut self.grads);
        self.first.get_or_insert(loss);
        Ok(loss)
    }

    fn flat_grad(&mut self) -> Result<Vec<T>, Infallible> {
        Ok(self.grads.concat())
    }

    fn add(&mut self, t: f64, d: &[T]) -> Result<(), Infallible> {
        let mut offset = 0;
        for p in self.params.iter_mut() {
            axpy(p, t, &d[offset..offset + p.len()]);
            offset += p.len();
        }
        Ok(())
    }

    fn get(&mut self) -> Result<Vec<T>, Infallible> {
        Ok(self.params.concat())
    }

    fn set(&mut self, x: &[T]) -> Result<(), Infallible> {
        let mut offset = 0;
        for p in self.params.iter_mut() {
            p.copy_from_slice(&x[offset..offset + p.len()]);
            offset += p.len();
        }
        Ok(())
    }
}

impl<T: Element> Optimizer<LbfgsHyper, T> {
    /// torch's `step(closure)`: `closure(params, grads)` evaluates the loss at the
    /// parameters, writes each parameter's gradient into `grads` (zeros on entry:
    /// a gradient left alone is zero, as torch's missing `.grad`) and returns the
    /// loss. Returns the loss of the first evaluation. A refusal changes nothing.
    pub fn step_closure<F>(&mut self, params: &mut [&mut [T]], closure: F) -> Result<f64, StepError>
    where
        F: FnMut(&[&[T]], &mut [Vec<T>]) -> f64,
    {
        if self.groups.len() > 1 {
            return Err(StepError::Refused { message: NO_GROUPS.into() });
        }
        let n = params.len();
        self.check_count(n, n)?;
        let elements: usize = params.iter().map(|p| p.len()).sum();
        let g = &self.global;
        let vectors = g.d.iter().chain(&g.old_dirs).chain(&g.old_stps).chain(&g.prev_flat_grad);
        if let Some(v) = vectors.map(|v| v.len()).find(|&l| l != elements) {
            return Err(StepError::StateLength { index: 0, param: elements, state: v });
        }
        let hyper = self.groups[0].hyper;
        let grads = params.iter().map(|p| vec![T::zero(); p.len()]).collect();
        let mut objective = Closure { params, grads, closure, first: None };
        let Ok(_) = lbfgs(&hyper, &mut self.global, &mut objective);
        if n > 0 {
            // the history is the first parameter's state, as in torch
            if self.state.len() < n {
                self.state.resize(n, None);
            }
            self.state[0].get_or_insert_with(ParamState::empty);
        }
        Ok(objective.first.expect("the closure ran"))
    }

    /// The history kept between steps (torch's `state[params[0]]`).
    pub fn history(&self) -> &LbfgsState<'static, T> {
        &self.global
    }
}

/// A flat vector of the history as an array.
fn array<T: Element>(v: &[T]) -> Value {
    Value::Array(Array::of(vec![v.len()], v))
}

/// A number of the history as a 0-d array, as torch's tensors.
fn zero_d<T: Element>(v: T) -> Value {
    Value::Array(Array::of(Vec::new(), &[v]))
}

impl TorchLayout for LbfgsHyper {
    const SCALAR_NAMES: &'static [&'static str] = &[];
    const BUFFER_NAMES: &'static [&'static str] = &[];
    const GLOBAL_NAMES: &'static [&'static str] = &[
        "func_evals",
        "n_iter",
        "d",
        "t",
        "old_dirs",
        "old_stps",
        "ro",
        "H_diag",
        "prev_flat_grad",
        "prev_loss",
        "al",
    ];
    fn group_entries(&self) -> Vec<(&'static str, Value)> {
        let line_search = if self.strong_wolfe { Value::Str("strong_wolfe".into()) } else { Value::None };
        vec![
            ("lr", Value::Float(self.lr)),
            ("max_iter", Value::Int(self.max_iter as i64)),
            ("max_eval", Value::Int(self.max_eval as i64)),
            ("tolerance_grad", Value::Float(self.tolerance_grad)),
            ("tolerance_change", Value::Float(self.tolerance_change)),
            ("history_size", Value::Int(self.history_size as i64)),
            ("line_search_fn", line_search),
            ("maximize", Value::Bool(self.maximize)),
        ]
    }
    fn with_group_entries(&self, group: &Value) -> Result<Self, String> {
        let mut h = *self;
        let count = |key: &str, was: u64| match group.get(key) {
            None => Ok(was),
            Some(Value::Int(i)) if *i >= 0 => Ok(*i as u64),
            Some(v) => Err(format!("'{key}' of a param group is a {}, not a count", v.type_name())),
        };
        h.max_iter = count("max_iter", h.max_iter)?;
        // torch's default: max_iter · 5 / 4, where the group gives max_iter alone
        let eval_default = if group.get("max_iter").is_some() { h.max_iter * 5 / 4 } else { h.max_eval };
        h.max_eval = match group.get("max_eval") {
            Some(Value::None) => eval_default,
            _ => count("max_eval", eval_default)?,
        };
        h.history_size = count("history_size", h.history_size as u64)? as usize;
        read_entries!(h, group, lr, tolerance_grad, tolerance_change, maximize);
        h.strong_wolfe = match group.get("line_search_fn") {
            None => h.strong_wolfe,
            Some(Value::None) => false,
            Some(Value::Str(s)) if s == "strong_wolfe" => true,
            Some(v) => return Err(format!("only 'strong_wolfe' is supported, not {v:?}")),
        };
        Ok(h)
    }
    fn global_entries<T: Element>(g: &LbfgsState<'static, T>) -> Vec<(&'static str, Value)> {
        let mut e = vec![("func_evals", Value::Int(g.func_evals as i64)), ("n_iter", Value::Int(g.n_iter as i64))];
        if let Some(d) = &g.d {
            let list = |vs: &[Cow<'_, [T]>]| Value::List(vs.iter().map(|v| array(v)).collect());
            e.extend([
                ("d", array(d)),
                ("t", g.t.map_or(Value::None, Value::Float)),
                ("old_dirs", list(&g.old_dirs)),
                ("old_stps", list(&g.old_stps)),
                ("ro", Value::List(g.ro.iter().map(|&r| zero_d(r)).collect())),
                ("H_diag", g.h_diag.map_or(Value::Int(1), zero_d)),
                ("prev_flat_grad", g.prev_flat_grad.as_deref().map_or(Value::None, array)),
                ("prev_loss", g.prev_loss.map_or(Value::None, Value::Float)),
            ]);
        }
        if let Some(al) = &g.al {
            e.push(("al", Value::List(al.iter().map(|a| a.map_or(Value::None, zero_d)).collect())));
        }
        e
    }
    fn global_of<T: Element>(entries: &[(&str, &Value)]) -> Result<LbfgsState<'static, T>, String> {
        let get = |key: &str| entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).filter(|v| **v != Value::None);
        let number = |key: &str| get(key).map(|v| v.as_f64().ok_or(format!("'{key}' is not a number"))).transpose();
        let floats = |v: &Value, key: &str| -> Result<Vec<T>, String> {
            let a = match v {
                Value::Array(a) => a.clone(),
                v => Array::scalar(v.as_f64().ok_or(format!("'{key}' holds a {}", v.type_name()))?),
            };
            a.to_vec().ok_or(format!("'{key}' holds {:?}, not floats", a.dtype))
        };
        let vector = |key: &str| get(key).map(|v| floats(v, key).map(Cow::Owned)).transpose();
        let one = |v: &Value, key: &str| -> Result<T, String> {
            match floats(v, key)?[..] {
                [x] => Ok(x),
                _ => Err(format!("'{key}' holds more than one number")),
            }
        };
        let list = |key: &str| match get(key) {
            None => Ok(Vec::new()),
            Some(v) => v.items().ok_or(format!("'{key}' is not a list")).map(<[Value]>::to_vec),
        };
        let state = LbfgsState {
            func_evals: number("func_evals")?.unwrap_or(0.0) as u64,
            n_iter: number("n_iter")?.unwrap_or(0.0) as u64,
            d: vector("d")?,
            t: number("t")?,
            old_dirs: list("old_dirs")?
                .iter()
                .map(|v| floats(v, "old_dirs").map(Cow::Owned))
                .collect::<Result<_, _>>()?,
            old_stps: list("old_stps")?
                .iter()
                .map(|v| floats(v, "old_stps").map(Cow::Owned))
                .collect::<Result<_, _>>()?,
            ro: list("ro")?.iter().map(|v| one(v, "ro")).collect::<Result<_, _>>()?,
            h_diag: match get("H_diag") {
                None | Some(Value::Int(1)) => None,
                Some(v) => Some(one(v, "H_diag")?),
            },
            prev_flat_grad: vector("prev_flat_grad")?,
            prev_loss: number("prev_loss")?,
            al: match get("al") {
                None => None,
                Some(_) => Some(
                    list("al")?
                        .iter()
                        .map(|v| if *v == Value::None { Ok(None) } else { one(v, "al").map(Some) })
                        .collect::<Result<_, _>>()?,
                ),
            },
        };
        let n = state.d.as_ref().map(|d| d.len());
        let pairs = state.old_dirs.len();
        let fits = |v: &Cow<'_, [T]>| Some(v.len()) == n;
        if state.old_stps.len() != pairs
            || state.ro.len() != pairs
            || !state.old_dirs.iter().chain(&state.old_stps).chain(&state.prev_flat_grad).all(fits)
        {
            return Err("the L-BFGS history's vectors do not fit together".into());
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dict::{from_bytes, to_bytes};

    /// Rosenbrock's loss and gradient over two parameters.
    fn rosenbrock(p: &[&[f64]], g: &mut [Vec<f64>]) -> f64 {
        let (x, y) = (p[0][0], p[1][0]);
        g[0][0] = -2.0 * (1.0 - x) - 400.0 * x * (y - x * x);
        g[1][0] = 200.0 * (y - x * x);
        (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
    }

    fn step(opt: &mut Lbfgs<f64>, params: &mut [Vec<f64>]) -> f64 {
        let mut p: Vec<&mut [f64]> = params.iter_mut().map(|p| &mut p[..]).collect();
        opt.step_closure(&mut p, rosenbrock).unwrap()
    }

    /// The history saved after a step and loaded into a new optimizer continues as
    /// the original, bit for bit.
    #[test]
    fn a_loaded_history_continues_as_the_original() {
        let h = LbfgsHyper { max_iter: 3, history_size: 4, ..LbfgsHyper::default() };
        let mut params = vec![vec![-1.2], vec![1.0]];
        let mut opt = Lbfgs::new(h).unwrap();
        step(&mut opt, &mut params);
        let sd = from_bytes(&to_bytes(&opt.state_dict()).unwrap()).unwrap();
        let mut resumed = Lbfgs::new(LbfgsHyper::default()).unwrap();
        resumed.load_state_dict(&sd).unwrap();
        assert_eq!(resumed.groups()[0].hyper, h);
        assert_eq!(resumed.history(), opt.history());
        let mut copy = params.clone();
        for _ in 0..3 {
            assert_eq!(step(&mut opt, &mut params), step(&mut resumed, &mut copy));
        }
        assert_eq!(params, copy);
        assert_eq!(opt.state_dict(), resumed.state_dict());
    }

    /// The plain step, param groups and a history of other lengths are refused, and
    /// change nothing.
    #[test]
    fn refuses_what_torch_refuses() {
        let mut params = [vec![-1.2], vec![1.0]];
        let mut opt = Lbfgs::with_params(LbfgsHyper::default(), 1).unwrap();
        let mut p: Vec<&mut [f64]> = params.iter_mut().map(|p| &mut p[..]).collect();
        assert!(matches!(opt.step(&mut p[..1], &[&[1.0]]), Err(StepError::Refused { .. })));
        opt.add_param_group(LbfgsHyper::default(), 1).unwrap();
        let err = opt.step_closure(&mut p, rosenbrock).unwrap_err();
        assert_eq!(err.to_string(), NO_GROUPS);
        let mut one = Lbfgs::new(LbfgsHyper::default()).unwrap();
        one.step_closure(&mut p, rosenbrock).unwrap();
        let before = one.state_dict();
        let mut three = vec![vec![0.0; 3]];
        let mut p3: Vec<&mut [f64]> = three.iter_mut().map(|p| &mut p[..]).collect();
        let err = one.step_closure(&mut p3, |_, _| 0.0).unwrap_err();
        assert!(matches!(err, StepError::StateLength { param: 3, state: 2, .. }));
        assert_eq!(one.state_dict(), before);
        assert_eq!(three, [vec![0.0; 3]]);
    }
}
