//! Replaying the recorded trajectories (`tests/reference/`, see its README) through
//! the crate's `Optimizer`: a case's constructor arguments read as a param group's
//! entries (`TorchLayout`), its param groups, gradients that are None at some steps,
//! and the objective mode's gradients computed here; each parameter compared with
//! the recording after every step, and the final state and param groups through
//! `state_dict()` (float64 to 1e-9 relative, float32 to 2e-5).

#![allow(dead_code)] // each test file uses its part

use std::fs::File;
use std::path::PathBuf;

use ferroptim::state_dict::{Array, Value};
use ferroptim::{Element, Optimizer, TorchLayout};
use ndarray::ArrayD;
use ndarray_npy::NpzReader;
use serde_json::Value as Json;

/// A directory of the reference data (`torch-2.15`, `beyond`, `bnb-8bit`).
pub fn reference(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference").join(dir)
}

/// The cases of a directory's `optimizers.json`.
pub fn cases(dir: &str) -> Vec<Json> {
    let text = std::fs::read_to_string(reference(dir).join("optimizers.json")).unwrap();
    python_json(&text)["cases"].as_array().unwrap().clone()
}

/// A case's arrays.
pub fn arrays(dir: &str, case: &Json) -> NpzReader<File> {
    let id = case["id"].as_str().unwrap();
    NpzReader::new(File::open(reference(dir).join("optimizers").join(format!("{id}.npz"))).unwrap()).unwrap()
}

/// A JSON value of the case as a state-dict value (lists stand for tuples).
pub fn value(j: &Json) -> Value {
    match j {
        Json::Null => Value::None,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap()), Value::Int),
        Json::String(s) => match s.as_str() {
            "@NaN" => Value::Float(f64::NAN),
            "@Infinity" => Value::Float(f64::INFINITY),
            "@-Infinity" => Value::Float(f64::NEG_INFINITY),
            _ => Value::Str(s.clone()),
        },
        Json::Array(a) => Value::Tuple(a.iter().map(value).collect()),
        Json::Object(o) => Value::Dict(o.iter().map(|(k, v)| (Value::Str(k.clone()), value(v))).collect()),
    }
}

/// torch's keyword arguments that only choose among its implementations.
pub const DEVICE_FLAGS: [&str; 4] = ["foreach", "fused", "capturable", "differentiable"];

/// The hyperparameters of `entries` (torch keyword arguments) over `base`, refusing
/// any entry the rule does not know.
pub fn hyper_of<K: TorchLayout + Copy>(base: K, entries: &Json, case: &str) -> K {
    let mut known: Vec<&str> = base.group_entries().iter().map(|(k, _)| *k).collect();
    known.extend(DEVICE_FLAGS);
    known.push("params");
    for k in entries.as_object().unwrap().keys() {
        assert!(known.contains(&k.as_str()), "{case}: the rule has no argument {k:?}");
    }
    base.with_group_entries(&value(entries)).unwrap_or_else(|e| panic!("{case}: {e}"))
}

/// JSON as Python's `json` writes it: `NaN`, `Infinity` and `-Infinity` outside
/// strings become the strings `@NaN`, `@Infinity`, `@-Infinity` for serde_json,
/// which [`value`] reads as the floats.
pub fn python_json(text: &str) -> Json {
    let (mut out, mut in_string, mut escaped) = (String::with_capacity(text.len()), false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_string {
            if let Some(token) = ["-Infinity", "Infinity", "NaN"].into_iter().find(|t| rest.starts_with(t)) {
                out.push_str(&format!("\"@{token}\""));
                rest = &rest[token.len()..];
                continue;
            }
        }
        match c {
            '"' if !escaped => in_string = !in_string,
            _ => {}
        }
        escaped = in_string && c == '\\' && !escaped;
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    serde_json::from_str(&out).unwrap()
}

pub fn read(npz: &mut NpzReader<File>, name: &str) -> ArrayD<f64> {
    npz.by_name::<ndarray::OwnedRepr<f64>, ndarray::IxDyn>(name)
        .or_else(|_| npz.by_name::<ndarray::OwnedRepr<f32>, ndarray::IxDyn>(name).map(|a| a.mapv(|x| x as f64)))
        .or_else(|_| npz.by_name::<ndarray::OwnedRepr<u8>, ndarray::IxDyn>(name).map(|a| a.mapv(f64::from)))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The objective's gradient of one parameter (see the reference's README).
pub fn objective_grad<T: Element>(x: &[T]) -> Vec<T> {
    let x: Vec<f64> = x.iter().map(|v| v.to_f64().unwrap()).collect();
    let mut g: Vec<f64> = x.iter().map(|v| -2.0 * (1.0 - v)).collect();
    for i in 1..x.len() {
        let d = x[i] - x[i - 1] * x[i - 1];
        g[i] += 20.0 * d;
        g[i - 1] += -40.0 * d * x[i - 1];
    }
    g.into_iter().map(T::of).collect()
}

pub fn close(got: f64, want: f64, tol: f64) -> bool {
    got == want || (got - want).abs() <= tol * want.abs().max(1e-6) || (got.is_nan() && want.is_nan())
}

/// Hooks of a replay: before the first step (Schedule-Free's `train()`), and after
/// the comparisons of the last step (its `eval()`).
pub trait Hooks<K: TorchLayout, T: Element> {
    /// The relative tolerance of every comparison (`recorded`: float64 1e-9, float32
    /// 2e-5).
    fn tolerance(&self, recorded: f64) -> f64 {
        recorded
    }
    /// Before the first step.
    fn start(&self, opt: &mut Optimizer<K, T>, params: &mut [&mut [T]]) {
        let _ = (opt, params);
    }
    /// After the last comparison, with the case's arrays and the parameters' indices.
    fn finish(&self, opt: &mut Optimizer<K, T>, params: &mut [&mut [T]], npz: &mut NpzReader<File>, order: &[usize]) {
        let _ = (opt, params, npz, order);
    }
}

/// No hooks.
pub struct Plain;
impl<K: TorchLayout, T: Element> Hooks<K, T> for Plain {}

/// Replays one case of `dir` through an `Optimizer` of `base`'s rule.
pub fn replay<K, T>(dir: &str, case: &Json, base: K, hooks: &dyn Hooks<K, T>)
where
    K: TorchLayout + Copy,
    T: Element,
{
    let id = case["id"].as_str().unwrap();
    let tol = hooks.tolerance(if std::mem::size_of::<T>() == 4 { 2e-5 } else { 1e-9 });
    let mut npz = arrays(dir, case);
    let shapes: Vec<Vec<usize>> = serde_json::from_value(case["shapes"].clone()).unwrap();
    let kwargs = hyper_of(base, &case["kwargs"], id);
    // torch's groups; the crate's hold consecutive parameters, so `order` lists
    // torch's parameter indices group by group
    let groups: Vec<(K, Vec<usize>)> = match case.get("groups") {
        None => vec![(kwargs, (0..shapes.len()).collect())],
        Some(gs) => gs
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (hyper_of(kwargs, g, id), serde_json::from_value(g["params"].clone()).unwrap()))
            .collect(),
    };
    let order: Vec<usize> = groups.iter().flat_map(|(_, ps)| ps.clone()).collect();
    let mut opt = Optimizer::<K, T>::with_params(groups[0].0, groups[0].1.len()).unwrap();
    for (h, ps) in &groups[1..] {
        opt.add_param_group(*h, ps.len()).unwrap();
    }
    for (k, &i) in order.iter().enumerate() {
        opt.set_shape(k, &shapes[i]);
    }
    let mut params: Vec<Vec<T>> =
        order.iter().map(|&i| read(&mut npz, &format!("init/{i}")).iter().map(|&v| T::of(v)).collect()).collect();
    let trajectories: Vec<ArrayD<f64>> = order.iter().map(|&i| read(&mut npz, &format!("traj/{i}"))).collect();
    let none: Vec<(usize, usize)> =
        serde_json::from_value(case.get("none_grads").cloned().unwrap_or(Json::Null)).unwrap_or_default();
    let objective = case["mode"] == "objective";
    hooks.start(&mut opt, &mut params.iter_mut().map(|p| &mut p[..]).collect::<Vec<_>>());
    for t in 0..case["steps"].as_u64().unwrap() as usize {
        let grads: Vec<Option<Vec<T>>> = (order.iter().zip(&params))
            .map(|(&i, p)| match () {
                _ if objective => Some(objective_grad(p)),
                _ if none.contains(&(t, i)) => None,
                _ => Some(read(&mut npz, &format!("grad/{t}/{i}")).iter().map(|&v| T::of(v)).collect()),
            })
            .collect();
        let mut p: Vec<&mut [T]> = params.iter_mut().map(|p| &mut p[..]).collect();
        let g: Vec<Option<&[T]>> = grads.iter().map(|g| g.as_deref()).collect();
        opt.step_some(&mut p, &g).unwrap();
        for (k, (&i, p)) in order.iter().zip(&params).enumerate() {
            let row = trajectories[k].index_axis(ndarray::Axis(0), t + 1);
            for (j, (got, want)) in p.iter().zip(row.iter()).enumerate() {
                let got = got.to_f64().unwrap();
                assert!(close(got, *want, tol), "{id}: param {i}[{j}] after step {}: {got:e}, torch {want:e}", t + 1);
            }
        }
    }
    // the final state and groups, through the state dict
    let sd = opt.state_dict();
    let Some(Value::Dict(state)) = sd.get("state") else { panic!("{id}: a state dict") };
    let want = case["state"].as_object().unwrap();
    for (key, entries) in state {
        // torch's state dict numbers the parameters group by group, as the crate's
        let Value::Int(i) = key else { panic!("{id}: int keys") };
        let Value::Dict(entries) = entries else { panic!("{id}: dicts") };
        let names: Vec<&str> = entries.iter().map(|(n, _)| if let Value::Str(n) = n { &n[..] } else { "?" }).collect();
        let mut torch_names: Vec<&str> = want[&i.to_string()].as_object().unwrap().keys().map(|s| &s[..]).collect();
        let mut ours = names.clone();
        ours.sort_unstable();
        torch_names.sort_unstable();
        assert_eq!(ours, torch_names, "{id}: the state names of param {i}");
        for (name, v) in names.iter().zip(entries.iter().map(|(_, v)| v)) {
            let recorded = &want[&i.to_string()][*name];
            if recorded["kind"] == "scalar" {
                // a Python number (prodigyopt's `step`): a number here too
                let (got, value) = (v.as_f64(), recorded["value"].as_f64());
                assert!(!matches!(v, Value::Array(_)) && got == value, "{id}: {name} of param {i} is {v:?}");
                continue;
            }
            let Value::Array(Array { shape, .. }) = v else { panic!("{id}: arrays") };
            let got: Vec<f64> = if let Value::Array(a) = v { a.to_vec().unwrap() } else { unreachable!() };
            let torch = read(&mut npz, &format!("state/{i}/{name}"));
            assert_eq!(shape.iter().product::<usize>(), torch.len(), "{id}: {name} of param {i}");
            for (j, (g, w)) in got.iter().zip(torch.iter()).enumerate() {
                assert!(close(*g, *w, tol), "{id}: state {name}[{j}] of param {i}: {g:e}, torch {w:e}");
            }
        }
    }
    let kept = want.values().filter(|s| !s.as_object().unwrap().is_empty()).count();
    assert_eq!(state.len(), kept, "{id}: the parameters with state");
    let ours = sd.get("param_groups").and_then(Value::items).unwrap();
    for (g, torch) in ours.iter().zip(case["param_groups"].as_array().unwrap()) {
        for (key, v) in torch.as_object().unwrap() {
            if key == "params" || DEVICE_FLAGS.contains(&key.as_str()) {
                continue;
            }
            let mine = g.get(key).unwrap_or_else(|| panic!("{id}: no group entry {key}"));
            let same = match (mine, value(v)) {
                (Value::Tuple(a), Value::Tuple(b)) => a.iter().zip(&b).all(|(x, y)| x.as_f64() == y.as_f64()),
                // a value computed by the steps (Prodigy's `d`, Schedule-Free's
                // `weight_sum`) to the tolerance, a count or setting exactly
                (a, b) if a.as_f64().is_some() => close(a.as_f64().unwrap(), b.as_f64().unwrap_or(f64::NAN), tol),
                (a, b) => *a == b,
            };
            assert!(same, "{id}: group entry {key} is {mine:?}, torch {v}");
        }
    }
    let mut p: Vec<&mut [T]> = params.iter_mut().map(|p| &mut p[..]).collect();
    hooks.finish(&mut opt, &mut p, &mut npz, &order);
}
