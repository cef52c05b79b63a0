//! An [`Optimizer`]'s state dict in the Python package's layout (torch's): `{"state":
//! {index: {name: value}}, "param_groups": [{hyperparameter: value, "params": [index,
//! ...]}]}`, written and read with [`crate::state_dict`] (`save` / `load` of the files
//! `ferroptim.save` writes).

use crate::checkpoint::Dtype;
use crate::element::Element;
use crate::state_dict::{Array, Value};
use crate::{
    AdadeltaHyper, AdagradHyper, AdamHyper, AdamaxHyper, AsgdHyper, NadamHyper, RadamHyper, RmspropHyper, RpropHyper,
    SgdHyper,
};

use super::{per_param, Group, Optimizer, ParamState, Rule};

/// torch's names of a rule's param-group entries and state: the layout of its state
/// dict in torch and in the Python package.
pub trait TorchLayout: Rule {
    /// The scalar state, in the kernel's order (Adam: `step`).
    const SCALAR_NAMES: &'static [&'static str];
    /// The state buffers, in the kernel's slot order (Adam: `exp_avg`, `exp_avg_sq`,
    /// `max_exp_avg_sq`).
    const BUFFER_NAMES: &'static [&'static str];
    /// The group's entries, as in torch's `param_groups[i]` (without `params`).
    fn group_entries(&self) -> Vec<(&'static str, Value)>;
    /// These hyperparameters with the entries of `group` (a group dict) in place of
    /// their own; Err names the entry that does not fit.
    fn with_group_entries(&self, group: &Value) -> Result<Self, String>;
    /// The names of the 8-bit buffers (codes), by slot: saved as uint8 arrays, read
    /// from uint8 arrays of these names (a float array of the same name is the buffer
    /// of the same slot).
    const CODE_NAMES: &'static [&'static str] = &[];
    /// Entries of a parameter's state that hold a constant of the rule, saved next to
    /// the 8-bit buffer of their slot and checked when loaded: (name, code slot,
    /// value) — the 8-bit rules' quantization maps.
    fn constants(&self) -> Vec<(&'static str, usize, Value)> {
        Vec::new()
    }
    /// The names of the entries of [`Rule::Global`], which the state dict keeps in the
    /// first parameter's state (L-BFGS's history, as torch keeps it).
    const GLOBAL_NAMES: &'static [&'static str] = &[];
    /// [`Rule::Global`] as entries of the first parameter's state.
    fn global_entries<T: Element>(global: &Self::Global<T>) -> Vec<(&'static str, Value)> {
        let _ = global;
        Vec::new()
    }
    /// [`Rule::Global`] read from those entries (none: the rule's new one).
    fn global_of<T: Element>(entries: &[(&str, &Value)]) -> Result<Self::Global<T>, String> {
        let _ = entries;
        Ok(Default::default())
    }
    /// The group's values as entries of its dict (see [`Rule::GroupState`]).
    fn group_state_entries(&self, values: &Self::GroupState) -> Vec<(&'static str, Value)> {
        let _ = values;
        Vec::new()
    }
    /// The group's values read from its dict (the rule's new values where it has none).
    fn group_state_of(&self, group: &Value) -> Result<Self::GroupState, String> {
        let _ = group;
        Ok(self.group_state())
    }
    /// Scalar `k` of a parameter's state as saved: a 0-d float64 array (torch's
    /// tensors), unless the rule keeps a Python number.
    fn scalar_value(&self, k: usize, v: f64) -> Value {
        let _ = k;
        Value::Array(Array::scalar(v))
    }
    /// The shape buffer `k` (of `len` elements) is saved in, for a parameter of `shape`.
    fn saved_shape(&self, k: usize, shape: &[usize], len: usize) -> Vec<usize> {
        match self.buffer_shape(k, shape) {
            Some(s) if s.iter().product::<usize>() == len => s,
            _ => vec![len],
        }
    }
}

/// A group entry as a [`Value`] and back: floats, booleans, pairs of floats.
pub(crate) trait Entry: Sized {
    fn to_value(&self) -> Value;
    fn from_value(v: &Value) -> Option<Self>;
}

impl Entry for f64 {
    fn to_value(&self) -> Value {
        Value::Float(*self)
    }
    fn from_value(v: &Value) -> Option<Self> {
        v.as_f64()
    }
}

impl Entry for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl Entry for (f64, f64) {
    fn to_value(&self) -> Value {
        Value::Tuple(vec![Value::Float(self.0), Value::Float(self.1)])
    }
    fn from_value(v: &Value) -> Option<Self> {
        match v.items()? {
            [a, b] => Some((a.as_f64()?, b.as_f64()?)),
            _ => None,
        }
    }
}

impl Entry for Option<f64> {
    fn to_value(&self) -> Value {
        self.map_or(Value::None, Value::Float)
    }
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::None => Some(None),
            v => v.as_f64().map(Some),
        }
    }
}

impl Entry for (f64, f64, f64) {
    fn to_value(&self) -> Value {
        Value::Tuple(vec![Value::Float(self.0), Value::Float(self.1), Value::Float(self.2)])
    }
    fn from_value(v: &Value) -> Option<Self> {
        match v.items()? {
            [a, b, c] => Some((a.as_f64()?, b.as_f64()?, c.as_f64()?)),
            _ => None,
        }
    }
}

impl Entry for usize {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => usize::try_from(*i).ok(),
            _ => None,
        }
    }
}

/// Reads each named field of `$h` from `$group` where present, as the macro does.
macro_rules! read_entries {
    ($h:ident, $group:expr, $($field:ident),+) => {
        $(
            if let Some(v) = $group.get(stringify!($field)) {
                $h.$field = Entry::from_value(v).ok_or_else(|| {
                    format!("'{}' of a param group is a {}, not what it should be", stringify!($field), v.type_name())
                })?;
            }
        )+
    };
}
pub(crate) use read_entries;

/// `TorchLayout` of hyperparameters whose group entries are their fields of the same
/// names: `Hyper: [scalar names] [buffer names] { fields }`, and `=> "name"` for a
/// group value that counts steps, kept as an int under that name from the first step
/// on (Adan's and AdEMAMix's `step`).
macro_rules! torch_layout {
    ($($hyper:ty: [$($s:literal),*] [$($b:literal),*] { $($field:ident),+ } $(=> $count:literal)?)+) => {$(
        impl TorchLayout for $hyper {
            const SCALAR_NAMES: &'static [&'static str] = &[$($s),*];
            const BUFFER_NAMES: &'static [&'static str] = &[$($b),*];
            fn group_entries(&self) -> Vec<(&'static str, Value)> {
                vec![$((stringify!($field), Entry::to_value(&self.$field))),+]
            }
            fn with_group_entries(&self, group: &Value) -> Result<Self, String> {
                let mut h = *self;
                read_entries!(h, group, $($field),+);
                Ok(h)
            }
            $(
                fn group_state_entries(&self, step: &f64) -> Vec<(&'static str, Value)> {
                    if *step == 0.0 {
                        return Vec::new(); // added at the first step
                    }
                    vec![count_entry($count, *step, false)]
                }
                fn group_state_of(&self, group: &Value) -> Result<f64, String> {
                    count_of(group, $count)
                }
            )?
        }
    )+};
}
pub(crate) use torch_layout;

/// A group count (`step`, `k`) as a group entry: an int, or a float (`as_float`, as
/// timm's LAMB keeps a tensor).
pub(crate) fn count_entry(name: &'static str, count: f64, as_float: bool) -> (&'static str, Value) {
    (name, if as_float { Value::Float(count) } else { Value::Int(count as i64) })
}

/// A group count read from its dict (0 where it has none, as before a first step).
pub(crate) fn count_of(group: &Value, name: &str) -> Result<f64, String> {
    match group.get(name) {
        None => Ok(0.0),
        Some(v) => v.as_f64().ok_or_else(|| format!("'{name}' of a param group is a {}", v.type_name())),
    }
}

torch_layout! {
    SgdHyper: [] ["momentum_buffer"] { lr, momentum, dampening, weight_decay, nesterov, maximize }
    RmspropHyper: ["step"] ["square_avg", "momentum_buffer", "grad_avg"]
        { lr, momentum, alpha, eps, centered, weight_decay, maximize }
    AdagradHyper: ["step"] ["sum"] { lr, lr_decay, eps, weight_decay, initial_accumulator_value, maximize }
    AdadeltaHyper: ["step"] ["square_avg", "acc_delta"] { lr, rho, eps, weight_decay, maximize }
    AdamHyper: ["step"] ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        { lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay }
    AdamaxHyper: ["step"] ["exp_avg", "exp_inf"] { lr, betas, eps, weight_decay, maximize }
    NadamHyper: ["step", "mu_product"] ["exp_avg", "exp_avg_sq"]
        { lr, betas, eps, weight_decay, momentum_decay, decoupled_weight_decay, maximize }
    RadamHyper: ["step"] ["exp_avg", "exp_avg_sq"] { lr, betas, eps, weight_decay, maximize, decoupled_weight_decay }
    RpropHyper: ["step"] ["prev", "step_size"] { lr, etas, step_sizes, maximize }
    AsgdHyper: ["step", "eta", "mu"] ["ax"] { lr, lambd, alpha, t0, weight_decay, maximize }
}

/// Why a state dict was refused; nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

fn refuse<X>(why: impl Into<String>) -> Result<X, LoadError> {
    Err(LoadError(why.into()))
}

impl<K: TorchLayout, T: Element> Optimizer<K, T> {
    /// The state dict, as the Python optimizer's `state_dict()`: each parameter's state
    /// under its index (buffers in the shape its last `step_ndarray` or loaded state
    /// gave it, else flat), and each group's hyperparameters with its parameters'
    /// indices.
    pub fn state_dict(&self) -> Value {
        let mut state = Vec::new();
        for ((i, st), g) in self.state.iter().enumerate().zip(per_param(&self.groups, self.state.len())) {
            let Some(st) = st else { continue };
            let hyper = &self.groups[g].hyper;
            let scalars = K::SCALAR_NAMES.iter().zip(&st.scalars).enumerate();
            let mut entries: Vec<(&str, Value)> = scalars.map(|(k, (n, &v))| (*n, hyper.scalar_value(k, v))).collect();
            for (k, (name, b)) in K::BUFFER_NAMES.iter().zip(&st.buffers).enumerate() {
                let shape = match self.shapes.get(i).and_then(Option::as_ref) {
                    Some(s) => s.clone(),
                    None => vec![b.len()],
                };
                if !b.is_empty() || hyper.buffer_shape(k, &shape).is_some_and(|s| s.iter().product::<usize>() == 0) {
                    entries.push((name, Value::Array(Array::of(hyper.saved_shape(k, &shape, b.len()), b))));
                }
            }
            for (k, (name, c)) in K::CODE_NAMES.iter().zip(&st.codes).enumerate() {
                if !c.is_empty() {
                    let shape = match (self.shapes.get(i).and_then(Option::as_ref), hyper) {
                        (Some(s), h) => h.code_shape(k, s).filter(|s| s.iter().product::<usize>() == c.len()),
                        _ => None,
                    };
                    let codes = Array { dtype: Dtype::U8, shape: shape.unwrap_or(vec![c.len()]), data: c.clone() };
                    entries.push((name, Value::Array(codes)));
                }
            }
            for (name, k, value) in hyper.constants() {
                if st.codes.get(k).is_some_and(|c| !c.is_empty()) {
                    entries.push((name, value));
                }
            }
            if i == 0 {
                entries.extend(K::global_entries(&self.global));
            }
            if !entries.is_empty() {
                // (a rule that keeps nothing for a parameter, as SGD without momentum, lists none)
                state.push((Value::Int(i as i64), Value::dict(entries)));
            }
        }
        let mut next = 0;
        let groups = self.groups.iter().map(|g| {
            let n = g.params.unwrap_or(self.state.len());
            let mut entries = g.hyper.group_entries();
            entries.extend(g.hyper.group_state_entries(&g.values));
            if let Some(lr) = g.initial_lr {
                entries.push(("initial_lr", Value::Float(lr)));
            }
            entries.push(("params", Value::List((next..next + n).map(|i| Value::Int(i as i64)).collect())));
            next += n;
            Value::dict(entries)
        });
        Value::dict([("state", Value::Dict(state)), ("param_groups", Value::List(groups.collect()))])
    }

    /// Loads a state dict of the same layout (one written by [`state_dict`](Self::state_dict)
    /// or by the Python optimizer of the same rule): the groups' hyperparameters and
    /// every parameter's state, the parameters matched by their position in the groups,
    /// as torch matches them. Everything is checked before anything changes.
    pub fn load_state_dict(&mut self, sd: &Value) -> Result<(), LoadError> {
        let Some(saved) = sd.get("param_groups").and_then(Value::items) else {
            return refuse("the state dict has no list 'param_groups'");
        };
        if saved.len() != self.groups.len() {
            return refuse("loaded state dict has a different number of parameter groups");
        }
        // each saved index → its position now
        let mut position = std::collections::HashMap::new();
        let mut owners = Vec::new();
        let mut groups = Vec::with_capacity(saved.len());
        for (g, (now, was)) in self.groups.iter().zip(saved).enumerate() {
            let Some(ids) = was.get("params").and_then(Value::items) else {
                return refuse(format!("param_groups[{g}] has no list 'params'"));
            };
            if now.params.is_some_and(|n| n != ids.len()) {
                return refuse(
                    "loaded state dict contains a parameter group that doesn't match the size of optimizer's group",
                );
            }
            for id in ids {
                let Value::Int(id) = id else {
                    return refuse(format!("param_groups[{g}]['params'] holds a {}, not an int", id.type_name()));
                };
                owners.push(g);
                if position.insert(*id, position.len()).is_some() {
                    return refuse(format!("parameter {id} appears in more than one parameter group"));
                }
            }
            let hyper = now.hyper.with_group_entries(was).map_err(LoadError)?;
            hyper.validate().map_err(|e| LoadError(e.message))?;
            let initial_lr = match was.get("initial_lr") {
                None => None,
                Some(v) => {
                    Some(v.as_f64().ok_or_else(|| LoadError("'initial_lr' of a param group is not a number".into()))?)
                }
            };
            let values = hyper.group_state_of(was).map_err(LoadError)?;
            groups.push(Group { hyper, values, initial_lr, params: now.params });
        }
        let Some(Value::Dict(saved_state)) = sd.get("state") else {
            return refuse("the state dict has no dict 'state'");
        };
        let mut state = vec![None; position.len()];
        let mut shapes = vec![None; position.len()];
        let mut global = K::Global::<T>::default();
        for (id, entries) in saved_state {
            let Some(&i) = (if let Value::Int(id) = id { position.get(id) } else { None }) else {
                return refuse(format!("the state of {id:?} belongs to no parameter of the param groups"));
            };
            let hyper = &groups[owners[i]].hyper;
            let entries = if i == 0 && !K::GLOBAL_NAMES.is_empty() {
                // the optimizer's own state, kept in the first parameter's
                let Value::Dict(all) = entries else {
                    return refuse(format!("the state of parameter {i} is a {}, not a dict", entries.type_name()));
                };
                fn named<'v>(names: &[&str], (k, v): &'v (Value, Value)) -> Option<(&'v str, &'v Value)> {
                    match k {
                        Value::Str(k) if names.contains(&k.as_str()) => Some((k.as_str(), v)),
                        _ => None,
                    }
                }
                let named = |e| named(K::GLOBAL_NAMES, e);
                let own: Vec<(&str, &Value)> = all.iter().filter_map(named).collect();
                global = K::global_of(&own).map_err(|e| LoadError(format!("loaded state of parameter 0: {e}")))?;
                &Value::Dict(all.iter().filter(|e| named(e).is_none()).cloned().collect())
            } else {
                entries
            };
            let (st, shape) = Self::param_state(hyper, entries, i)?;
            (state[i], shapes[i]) = (Some(st), shape);
        }
        self.groups = groups;
        self.state = state;
        self.global = global;
        self.shapes = shapes;
        Ok(())
    }

    /// One parameter's loaded state, and its shape where its buffers tell it.
    fn param_state(hyper: &K, entries: &Value, i: usize) -> Result<(ParamState<T>, Option<Vec<usize>>), LoadError> {
        let Value::Dict(entries) = entries else {
            return refuse(format!("the state of parameter {i} is a {}, not a dict", entries.type_name()));
        };
        let slots = K::BUFFER_NAMES.len();
        let mut st = ParamState { buffers: vec![Vec::new(); slots], ..ParamState::empty() };
        let (mut seen, mut shapes) = (0, vec![None::<Vec<usize>>; slots]);
        let mut code_shapes = vec![None::<Vec<usize>>; K::CODE_NAMES.len()];
        let constants = hyper.constants();
        for (key, value) in entries {
            let Value::Str(key) = key else {
                return refuse(format!("the state of parameter {i} has a key that is not a string"));
            };
            if let Some((_, _, constant)) = constants.iter().find(|(n, _, _)| n == key) {
                if value != constant {
                    return refuse(format!(
                        "loaded state of parameter {i}: '{key}' is not the rule's (only its own is kept)"
                    ));
                }
                continue;
            }
            if let (Some(k), Value::Array(a)) = (K::CODE_NAMES.iter().position(|n| n == key), value) {
                if a.dtype == Dtype::U8 {
                    code_shapes[k] = Some(a.shape.clone());
                    st.codes.resize(K::CODE_NAMES.len(), Vec::new());
                    st.codes[k] = a.data.clone();
                    continue;
                }
            }
            let array = match value {
                Value::Array(a) => a.clone(),
                v => Array::scalar(v.as_f64().ok_or_else(|| {
                    LoadError(format!("loaded state of parameter {i}: '{key}' is a {}", v.type_name()))
                })?),
            };
            let values: Vec<T> = array.to_vec().ok_or_else(|| {
                LoadError(format!("loaded state of parameter {i}: '{key}' holds {:?}, not floats", array.dtype))
            })?;
            if let Some(k) = K::SCALAR_NAMES.iter().position(|n| n == key) {
                if values.len() != 1 {
                    return refuse(format!("loaded state of parameter {i}: '{key}' must be a single number"));
                }
                st.scalars[k] = values[0].to_f64().unwrap_or(f64::NAN);
                seen += 1;
            } else if let Some(k) = K::BUFFER_NAMES.iter().position(|n| n == key) {
                shapes[k] = Some(array.shape.clone());
                st.buffers[k] = values;
            } else {
                return refuse(format!("loaded state of parameter {i}: unexpected entry '{key}'"));
            }
        }
        let shape = hyper.param_shape(&shapes, &code_shapes);
        if let Some(p) = &shape {
            for (k, s) in code_shapes.iter().enumerate() {
                let Some(s) = s else { continue };
                if hyper.code_shape(k, p).as_ref() != Some(s) {
                    let name = K::CODE_NAMES[k];
                    return refuse(format!("loaded state of parameter {i}: '{name}' of shape {s:?} does not fit"));
                }
            }
            // every buffer as the rule shapes it for that parameter
            for (k, s) in shapes.iter().enumerate() {
                let Some(s) = s else { continue };
                let len = st.buffers[k].len();
                let want = hyper.saved_shape(k, p, len);
                if *s != want || !hyper.fits(k, p, len) {
                    let name = K::BUFFER_NAMES[k];
                    return refuse(format!("loaded state of parameter {i}: '{name}' has shape {s:?}, not {want:?}"));
                }
            }
        }
        let has_buffers = shapes.iter().chain(&code_shapes).any(Option::is_some);
        if (seen != 0 || has_buffers) && seen != K::SCALAR_NAMES.len() {
            return refuse(format!("loaded state of parameter {i} lacks some of {:?}", K::SCALAR_NAMES));
        }
        Ok((st, shape))
    }
}

#[cfg(test)]
mod tests {
    use crate::state_dict::{from_bytes, to_bytes, Array, Value};
    use crate::{Adam, AdamHyper, Asgd, AsgdHyper, Sgd, SgdHyper};

    fn grads(t: usize, lens: &[usize]) -> Vec<Vec<f32>> {
        lens.iter().map(|&n| (0..n).map(|i| ((i * 7 + t * 3) % 11) as f32 * 0.1 - 0.5).collect()).collect()
    }

    fn step(opt: &mut Adam<f32>, params: &mut [Vec<f32>], t: usize) {
        let lens: Vec<usize> = params.iter().map(Vec::len).collect();
        let g = grads(t, &lens);
        let mut p: Vec<&mut [f32]> = params.iter_mut().map(|p| &mut p[..]).collect();
        let g: Vec<&[f32]> = g.iter().map(|g| &g[..]).collect();
        opt.step(&mut p, &g).unwrap();
    }

    fn two_groups() -> Adam<f32> {
        let mut opt = Adam::with_params(AdamHyper { lr: 0.01, amsgrad: true, ..AdamHyper::adamw() }, 2).unwrap();
        opt.add_param_group(AdamHyper { lr: 0.1, ..AdamHyper::adam() }, 1).unwrap();
        opt
    }

    /// A state dict saved and loaded into a new optimizer continues as the original.
    #[test]
    fn a_loaded_state_dict_continues_as_the_original() {
        let mut params = vec![vec![0.5f32; 6], vec![-1.0; 3], vec![2.0; 4]];
        let mut opt = two_groups();
        for t in 0..3 {
            step(&mut opt, &mut params, t);
        }
        let sd = opt.state_dict();
        let Some(Value::Dict(state)) = sd.get("state") else { panic!("a state dict") };
        assert_eq!(state.len(), 3);
        assert!(state[2].1.get("max_exp_avg_sq").is_none(), "the second group has no amsgrad");
        let mut resumed = two_groups();
        resumed.groups_mut()[1].hyper.lr = 0.5; // the loaded groups replace this
        resumed.load_state_dict(&from_bytes(&to_bytes(&sd).unwrap()).unwrap()).unwrap();
        assert_eq!(resumed.groups(), opt.groups());
        let mut copy = params.clone();
        for t in 3..6 {
            step(&mut opt, &mut params, t);
            step(&mut resumed, &mut copy, t);
        }
        assert_eq!(params, copy);
        assert_eq!(opt.state_dict(), resumed.state_dict());
    }

    /// Every refusal changes nothing.
    #[test]
    fn refuses_state_dicts_that_do_not_fit() {
        let mut params = vec![vec![0.5f32; 6], vec![-1.0; 3], vec![2.0; 4]];
        let mut opt = two_groups();
        step(&mut opt, &mut params, 0);
        let good = opt.state_dict();
        let edit = |f: &dyn Fn(&mut Value)| {
            let mut sd = good.clone();
            f(&mut sd);
            sd
        };
        fn groups(sd: &mut Value) -> &mut Vec<Value> {
            let Some(Value::List(g)) = sd.get_mut("param_groups") else { panic!("a list") };
            g
        }
        fn state(sd: &mut Value) -> &mut Vec<(Value, Value)> {
            let Some(Value::Dict(s)) = sd.get_mut("state") else { panic!("a dict") };
            s
        }
        let cases = [
            // one group fewer
            edit(&|sd| {
                groups(sd).pop();
            }),
            // a negative LR
            edit(&|sd| *groups(sd)[1].get_mut("lr").unwrap() = Value::Float(-1.0)),
            // an unknown state entry
            edit(&|sd| {
                let Value::Dict(e) = &mut state(sd)[0].1 else { panic!("a dict") };
                e.push((Value::Str("momentum".into()), Value::Float(0.0)));
            }),
            // the state of a parameter no group holds
            edit(&|sd| state(sd)[0].0 = Value::Int(9)),
            // a buffer of another shape than the others
            edit(&|sd| {
                let st = &mut state(sd)[0].1;
                *st.get_mut("exp_avg").unwrap() = Value::Array(Array::of(vec![5], &[0.0f32; 5]));
            }),
        ];
        let before = opt.state_dict();
        for (k, bad) in cases.iter().enumerate() {
            assert!(opt.load_state_dict(bad).is_err(), "case {k} is refused");
            assert_eq!(opt.state_dict(), before, "case {k} changed nothing");
        }
    }

    /// Rules with several scalars, and one that keeps no state for a parameter.
    #[test]
    fn scalars_and_empty_states_round_trip() {
        let mut a = vec![1.0f64; 3];
        let mut asgd = Asgd::new(AsgdHyper::default()).unwrap();
        asgd.step(&mut [&mut a], &[&[0.5; 3]]).unwrap();
        let sd = asgd.state_dict();
        let mut again = Asgd::<f64>::new(AsgdHyper::default()).unwrap();
        again.load_state_dict(&sd).unwrap();
        assert_eq!(again.state(0), asgd.state(0));
        let mut sgd = Sgd::<f64>::new(SgdHyper::default()).unwrap();
        sgd.step(&mut [&mut a], &[&[0.5; 3]]).unwrap();
        assert_eq!(sgd.state_dict().get("state"), Some(&Value::Dict(Vec::new())));
    }
}
