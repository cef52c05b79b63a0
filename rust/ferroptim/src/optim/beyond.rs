//! The rules beyond torch.optim behind [`Optimizer`]: Lion, LARS, ADOPT (timm), Adan
//! (timm), AdEMAMix (pytorch-optimizer), LAMB (timm), the three Schedule-Free rules
//! (schedulefree) and Prodigy (prodigyopt), with the state and group values those
//! implementations keep, in their layout (see [`TorchLayout`]).
//!
//! ```
//! use ferroptim::optim::beyond::ScheduleFree;
//! use ferroptim::{LionHyper, Optimizer, ScheduleFreeHyper};
//!
//! let mut w = vec![1.0f32; 8];
//! let mut lion = Optimizer::new(LionHyper { lr: 0.01, ..LionHyper::timm() }).unwrap();
//! lion.step(&mut [&mut w], &[&[0.5; 8]]).unwrap();
//! assert!(w.iter().all(|&x| x < 1.0));
//!
//! // Schedule-Free starts in eval mode, as schedulefree: train() before stepping,
//! // eval() before evaluating (the parameters move to the averaged point x)
//! let mut sf: ScheduleFree<f32> = Optimizer::new(ScheduleFreeHyper::adamw()).unwrap();
//! assert!(sf.step(&mut [&mut w], &[&[0.5; 8]]).is_err());
//! sf.train(&mut [&mut w]).unwrap();
//! sf.step(&mut [&mut w], &[&[0.5; 8]]).unwrap();
//! sf.eval(&mut [&mut w]).unwrap();
//! ```

use crate::element::Element;
use crate::exec::{Batch, TensorSlices};
use crate::kernels::grad_norm::{norms, NormType};
use crate::state_dict::Value;
use crate::{
    adan, ademamix, adopt, kernels::prodigy::check_lrs, lamb, lamb_clip, lars, lion, prodigy, schedule_free, AdanHyper,
    AdemamixHyper, AdoptHyper, Average, LambHyper, LarsHyper, LionHyper, ProdigyGlobal, ProdigyHyper, ProdigyTensor,
    ScheduleFreeGroup, ScheduleFreeHyper, ScheduleFreeKind,
};

use super::rule::no_group_values;
use super::state_dict::{count_entry, count_of, read_entries, torch_layout, Entry, TorchLayout};
use super::{per_param, Group, GroupStep, Init, Optimizer, ParamTensor, Rule, StepError};

/// Lion (timm's `Lion`) over parameters of type `T`.
pub type Lion<T> = Optimizer<LionHyper, T>;
/// LARS (timm's `Lars`) over parameters of type `T`.
pub type Lars<T> = Optimizer<LarsHyper, T>;
/// ADOPT (timm's `Adopt`) over parameters of type `T`.
pub type Adopt<T> = Optimizer<AdoptHyper, T>;
/// Adan (timm's `Adan`) over parameters of type `T`.
pub type Adan<T> = Optimizer<AdanHyper, T>;
/// AdEMAMix (pytorch-optimizer's `AdEMAMix`) over parameters of type `T`.
pub type Ademamix<T> = Optimizer<AdemamixHyper, T>;
/// LAMB (timm's `Lamb`) over parameters of type `T`.
pub type Lamb<T> = Optimizer<LambHyper, T>;
/// The Schedule-Free rules (schedulefree's `SGDScheduleFree`, `AdamWScheduleFree`,
/// `RAdamScheduleFree`, as [`ScheduleFreeHyper::kind`] says) over parameters of type `T`.
pub type ScheduleFree<T> = Optimizer<ScheduleFreeHyper, T>;
/// Prodigy (prodigyopt's `Prodigy`) over parameters of type `T`.
pub type Prodigy<T> = Optimizer<ProdigyHyper, T>;

/// Each tensor as an elementwise kernel's slices.
fn slices<'b, T>(tensors: &'b mut [ParamTensor<'_, T>]) -> Vec<TensorSlices<'b, T>> {
    tensors.iter_mut().map(ParamTensor::slices).collect()
}

/// Whether each tensor's state was created for this step.
fn fresh<T>(tensors: &[ParamTensor<'_, T>]) -> Vec<bool> {
    tensors.iter().map(|t| t.fresh).collect()
}

/// The parts of a [`Rule`] impl of a rule whose buffers are shaped as the parameter.
macro_rules! shaped_as_param {
    ($buffers:expr, |$h:ident, $k:ident| $uses:expr) => {
        fn buffers(&self) -> usize {
            $buffers
        }
        fn buffer_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
            self.uses(k, shape).then(|| shape.to_vec())
        }
        fn uses(&self, k: usize, _shape: &[usize]) -> bool {
            let ($h, $k) = (self, k);
            k < $buffers && $uses
        }
    };
}

/// The group value of the rules with timm's corrected weight decay: its
/// `max_lr_snapshot`, the constructor's LR (the `max_lr` of the hyperparameters
/// when corrected weight decay is on, which the kernels read).
macro_rules! snapshot_of_max_lr {
    () => {
        fn group_state_after(&self, first: &Self::GroupState) -> Self::GroupState {
            *first
        }
    };
}

impl Rule for LionHyper {
    /// `max_lr_snapshot`.
    type GroupState = f64;
    type Global<T: Element> = ();
    const SCALARS: usize = 0;
    fn group_state(&self) -> f64 {
        self.max_lr.unwrap_or(self.lr)
    }
    snapshot_of_max_lr!();
    shaped_as_param!(1, |_h, _k| true);
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
        for g in groups {
            lion(g.hyper, &mut slices(&mut g.tensors));
        }
    }
}

impl Rule for LarsHyper {
    no_group_values!();
    const SCALARS: usize = 0;
    shaped_as_param!(1, |h, _k| h.momentum != 0.0);
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
        for g in groups {
            let f = fresh(&g.tensors);
            lars(g.hyper, &mut slices(&mut g.tensors), &f);
        }
    }
}

impl Rule for AdoptHyper {
    /// `max_lr_snapshot`.
    type GroupState = f64;
    type Global<T: Element> = ();
    const SCALARS: usize = 1;
    fn group_state(&self) -> f64 {
        self.max_lr.unwrap_or(self.lr)
    }
    snapshot_of_max_lr!();
    shaped_as_param!(2, |_h, _k| true);
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
        for g in groups {
            let (mut steps, f): (Vec<f64>, Vec<bool>) = g.tensors.iter().map(|t| (t.scalars[0], t.fresh)).unzip();
            adopt(g.hyper, &mut slices(&mut g.tensors), &mut steps, &f);
            g.tensors.iter_mut().zip(steps).for_each(|(t, s)| t.scalars[0] = s);
        }
    }
}

/// The rules that count steps per group (timm's Adan and LAMB, AdEMAMix): the group
/// value is its `step`, advanced by every step whether or not a parameter of the
/// group has a gradient, as those implementations advance it.
macro_rules! counted_per_group {
    ($hyper:ty, $buffers:expr, |$h:ident, $step:ident, $tensors:ident| $body:expr) => {
        impl Rule for $hyper {
            /// The group's step count.
            type GroupState = f64;
            type Global<T: Element> = ();
            const SCALARS: usize = 0;
            fn group_state(&self) -> f64 {
                0.0
            }
            shaped_as_param!($buffers, |_h, _k| true);
            fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
                for g in groups {
                    *g.values += 1.0;
                    let ($h, $step, $tensors) = (g.hyper, *g.values, &mut g.tensors);
                    $body
                }
            }
        }
    };
}

counted_per_group!(AdanHyper, 4, |h, step, tensors| {
    let f = fresh(tensors);
    adan(h, step, &mut slices(tensors), &f)
});

counted_per_group!(AdemamixHyper, 3, |h, step, tensors| ademamix(h, step, &mut slices(tensors)));

/// A LAMB group's values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LambValues {
    /// The group's step count.
    pub step: f64,
    /// `max_lr_snapshot` (see [`LambHyper::max_lr`]).
    pub max_lr_snapshot: f64,
}

impl Rule for LambHyper {
    type GroupState = LambValues;
    type Global<T: Element> = ();
    const SCALARS: usize = 0;
    fn group_state(&self) -> LambValues {
        LambValues { step: 0.0, max_lr_snapshot: self.max_lr.unwrap_or(self.lr) }
    }
    fn group_state_after(&self, first: &LambValues) -> LambValues {
        LambValues { step: 0.0, max_lr_snapshot: first.max_lr_snapshot }
    }
    shaped_as_param!(2, |_h, _k| true);
    /// timm's step: the gradients clipped by their global norm over every group (the
    /// first group's `max_grad_norm`), then each group's update.
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
        let grads: Vec<&[T]> = groups.iter().flat_map(|g| g.tensors.iter().map(|t| t.grad)).collect();
        let clip = lamb_clip(groups[0].hyper.max_grad_norm, &norms(&grads, NormType::P(2.0)));
        for g in groups {
            g.values.step += 1.0;
            lamb(g.hyper, g.values.step, clip, &mut slices(&mut g.tensors));
        }
    }
}

// ---------------------------------------------------------------- Schedule-Free

/// A Schedule-Free group's values: the running values schedulefree keeps in the
/// group, and whether the parameters are at y (train mode) or x (eval mode).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleFreeValues {
    /// `k`, `weight_sum`, `lr_max`, `scheduled_lr`.
    pub running: ScheduleFreeGroup,
    /// schedulefree's `train_mode` (false for a new group, as schedulefree).
    pub train_mode: bool,
}

/// schedulefree's refusal of a step in eval mode.
const NOT_TRAINING: &str = "Optimizer was not in train mode when step is called. Please insert .train() and .eval() \
                            calls on the optimizer. See documentation for details.";

impl Rule for ScheduleFreeHyper {
    type GroupState = ScheduleFreeValues;
    type Global<T: Element> = ();
    const SCALARS: usize = 0;
    fn group_state(&self) -> ScheduleFreeValues {
        ScheduleFreeValues { running: ScheduleFreeGroup::default(), train_mode: false }
    }
    fn buffers(&self) -> usize {
        match self.kind {
            ScheduleFreeKind::Sgd { .. } => 1,
            _ => 2,
        }
    }
    fn buffer_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
        (k < self.buffers()).then(|| shape.to_vec())
    }
    /// `z` starts at the parameter.
    fn init(&self, k: usize) -> Init {
        if k == 0 {
            Init::Param
        } else {
            Init::Zeros
        }
    }
    /// schedulefree steps in train mode only (its first group's).
    fn check_groups(groups: &[Group<Self>]) -> Result<(), String> {
        match groups.first() {
            Some(g) if !g.values.train_mode => Err(NOT_TRAINING.into()),
            _ => Ok(()),
        }
    }
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
        for g in groups {
            let step = g.hyper.begin(&mut g.values.running);
            schedule_free(&step, &mut slices(&mut g.tensors));
        }
    }
}

impl<T: Element> Optimizer<ScheduleFreeHyper, T> {
    /// schedulefree's `eval()`: each parameter moves to x, the point to evaluate
    /// (`θ ← lerp(θ, z, 1 − 1/β)`), in the groups in train mode.
    pub fn eval(&mut self, params: &mut [&mut [T]]) -> Result<(), StepError> {
        self.switch(params, false)
    }

    /// schedulefree's `train()`: each parameter moves back to y (`θ ← lerp(θ, z,
    /// 1 − β)`), in the groups in eval mode.
    pub fn train(&mut self, params: &mut [&mut [T]]) -> Result<(), StepError> {
        self.switch(params, true)
    }

    fn switch(&mut self, params: &mut [&mut [T]], to_train: bool) -> Result<(), StepError> {
        let n = params.len();
        self.check_count(n, n)?;
        for (index, p) in params.iter().enumerate() {
            if let Some(Some(st)) = self.state.get(index) {
                if st.buffers.first().is_some_and(|z| z.len() != p.len()) {
                    return Err(StepError::StateLength { index, param: p.len(), state: st.buffers[0].len() });
                }
            }
        }
        let weights: Vec<Option<f64>> = (self.groups.iter())
            .map(|g| (g.values.train_mode != to_train).then(|| 1.0 - beta_power(g.hyper.beta(), to_train)))
            .collect();
        let owners: Vec<usize> = per_param(&self.groups, n).collect();
        let mut batch = Batch::with_size(params.iter().map(|p| p.len()).sum());
        let averages: Vec<Option<Average>> = weights.iter().map(|w| w.map(|weight| Average::Lerp { weight })).collect();
        for (i, p) in params.iter_mut().enumerate() {
            let (Some(avg), Some(Some(st))) = (&averages[owners[i]], self.state.get(i)) else { continue };
            let Some(z) = st.buffers.first().filter(|z| !z.is_empty()) else { continue };
            batch.push(avg, &mut [], false, TensorSlices::new(p, z, []));
        }
        batch.run();
        for (g, w) in self.groups.iter_mut().zip(weights) {
            if w.is_some() {
                g.values.train_mode = to_train;
            }
        }
        Ok(())
    }
}

/// β to train, 1/β to eval.
fn beta_power(beta: f64, to_train: bool) -> f64 {
    if to_train {
        beta
    } else {
        1.0 / beta
    }
}

// ---------------------------------------------------------------- Prodigy

impl Rule for ProdigyHyper {
    /// prodigyopt keeps its D-adaptation values in every group and reads the first
    /// group's.
    type GroupState = ProdigyGlobal;
    type Global<T: Element> = ();
    const SCALARS: usize = 1;
    fn group_state(&self) -> ProdigyGlobal {
        ProdigyGlobal::new(self.d0)
    }
    fn buffers(&self) -> usize {
        4
    }
    /// `s`, `p0` (every `slice_p`-th element, flat), `exp_avg_sq`, `exp_avg` (β₁ > 0).
    fn buffer_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
        match k {
            0 | 1 => Some(vec![shape.iter().product::<usize>().div_ceil(self.slice_p)]),
            2 => Some(shape.to_vec()),
            3 => (self.betas.0 > 0.0).then(|| shape.to_vec()),
            _ => None,
        }
    }
    fn init(&self, k: usize) -> Init {
        if k == 1 {
            Init::ParamSliced { step: self.slice_p }
        } else {
            Init::Zeros
        }
    }
    /// `p0` is one zero for a parameter that was all zeros.
    fn fits(&self, k: usize, shape: &[usize], len: usize) -> bool {
        (k == 1 && len == 1) || self.buffer_shape(k, shape).is_some_and(|s| s.iter().product::<usize>() == len)
    }
    fn param_shape(&self, buffers: &[Option<Vec<usize>>], _codes: &[Option<Vec<usize>>]) -> Option<Vec<usize>> {
        buffers.get(2).cloned().flatten()
    }
    /// prodigyopt's rule: every group's LR the largest, or 0.
    fn check_groups(groups: &[Group<Self>]) -> Result<(), String> {
        check_lrs(groups.iter().map(|g| g.hyper.lr)).map_err(String::from)
    }
    /// One step over every group; the D-adaptation values read from the first group
    /// and, when the step updated the parameters, written to every group (each
    /// group's `k` advanced).
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
        // prodigyopt reads betas and beta3 from the first group only
        let (betas, beta3) = (groups[0].hyper.betas, groups[0].hyper.beta3);
        let hypers: Vec<ProdigyHyper> = groups.iter().map(|g| ProdigyHyper { betas, beta3, ..*g.hyper }).collect();
        let mut global = *groups[0].values;
        let mut tensors: Vec<(usize, ProdigyTensor<'_, T>)> = Vec::new();
        for (k, g) in groups.iter_mut().enumerate() {
            for t in g.tensors.iter_mut() {
                let [s, p0, v, m] = &mut t.buffers;
                let tensor = ProdigyTensor {
                    param: &mut t.param[..],
                    grad: t.grad,
                    exp_avg: &mut m[..],
                    exp_avg_sq: &mut v[..],
                    s: &mut s[..],
                    p0: &p0[..],
                    step: &mut t.scalars[0],
                };
                tensors.push((k, tensor));
            }
        }
        let none: &mut [(usize, ProdigyTensor<'_, f32>)] = &mut [];
        if prodigy(&hypers, &mut global, &mut tensors, none) {
            drop(tensors);
            for g in groups.iter_mut() {
                *g.values = ProdigyGlobal { k: g.values.k + 1.0, ..global };
            }
        }
    }
}

// ---------------------------------------------------------------- their layouts

/// The entries of timm's corrected weight decay: `corrected_weight_decay` and
/// `max_lr_snapshot` (the `max_lr` when corrected, else the group's snapshot).
fn corrected_entries(max_lr: Option<f64>, snapshot: f64) -> [(&'static str, Value); 2] {
    [
        ("corrected_weight_decay", Value::Bool(max_lr.is_some())),
        ("max_lr_snapshot", Value::Float(max_lr.unwrap_or(snapshot))),
    ]
}

/// `max_lr` from a group's `corrected_weight_decay` and `max_lr_snapshot`.
fn corrected_of(group: &Value, was: Option<f64>) -> Result<Option<f64>, String> {
    let on = match group.get("corrected_weight_decay") {
        None => return Ok(was),
        Some(v) => bool::from_value(v).ok_or("'corrected_weight_decay' of a param group is not a bool")?,
    };
    match (on, snapshot_of(group)?) {
        (false, _) => Ok(None),
        (true, Some(s)) => Ok(Some(s)),
        (true, None) => Err("a param group with corrected_weight_decay has no number 'max_lr_snapshot'".into()),
    }
}

/// A group's `max_lr_snapshot`, if it has one.
fn snapshot_of(group: &Value) -> Result<Option<f64>, String> {
    match group.get("max_lr_snapshot") {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| "'max_lr_snapshot' of a param group is not a number".into()),
    }
}

/// The layout of a rule with corrected weight decay (timm's `max_lr`).
macro_rules! layout_with_max_lr {
    ($hyper:ty: [$($s:literal),*] [$($b:literal),*] { $($field:ident),+ }) => {
        impl TorchLayout for $hyper {
            const SCALAR_NAMES: &'static [&'static str] = &[$($s),*];
            const BUFFER_NAMES: &'static [&'static str] = &[$($b),*];
            fn group_entries(&self) -> Vec<(&'static str, Value)> {
                vec![$((stringify!($field), Entry::to_value(&self.$field))),+]
            }
            fn with_group_entries(&self, group: &Value) -> Result<Self, String> {
                let mut h = *self;
                read_entries!(h, group, $($field),+);
                h.max_lr = corrected_of(group, h.max_lr)?;
                Ok(h)
            }
            fn group_state_entries(&self, snapshot: &f64) -> Vec<(&'static str, Value)> {
                corrected_entries(self.max_lr, *snapshot).into()
            }
            fn group_state_of(&self, group: &Value) -> Result<f64, String> {
                Ok(snapshot_of(group)?.unwrap_or_else(|| self.group_state()))
            }
        }
    };
}

layout_with_max_lr!(LionHyper: [] ["exp_avg"] { lr, betas, weight_decay, caution, maximize });
layout_with_max_lr!(AdoptHyper: ["step"] ["exp_avg", "exp_avg_sq"]
    { lr, betas, eps, weight_decay, clip_exp, decoupled, caution, maximize });

impl TorchLayout for LambHyper {
    const SCALAR_NAMES: &'static [&'static str] = &[];
    const BUFFER_NAMES: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
    fn group_entries(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("lr", self.lr.to_value()),
            ("bias_correction", self.bias_correction.to_value()),
            ("betas", self.betas.to_value()),
            ("eps", self.eps.to_value()),
            ("weight_decay", self.weight_decay.to_value()),
            ("grad_averaging", self.grad_averaging.to_value()),
            ("max_grad_norm", self.max_grad_norm.to_value()),
            ("trust_clip", self.trust_clip.to_value()),
            ("always_adapt", self.always_adapt.to_value()),
            ("caution", self.caution.to_value()),
            ("decoupled_decay", self.decoupled_decay.to_value()),
        ]
    }
    fn with_group_entries(&self, group: &Value) -> Result<Self, String> {
        let mut h = *self;
        read_entries!(
            h,
            group,
            lr,
            bias_correction,
            betas,
            eps,
            weight_decay,
            grad_averaging,
            max_grad_norm,
            trust_clip,
            always_adapt,
            caution,
            decoupled_decay
        );
        h.max_lr = corrected_of(group, h.max_lr)?.filter(|_| h.decoupled_decay);
        Ok(h)
    }
    fn group_state_entries(&self, v: &LambValues) -> Vec<(&'static str, Value)> {
        let mut e: Vec<_> = corrected_entries(self.max_lr, v.max_lr_snapshot).into();
        if v.step > 0.0 {
            e.push(count_entry("step", v.step, true)); // timm adds `step` at the first step
        }
        e
    }
    fn group_state_of(&self, group: &Value) -> Result<LambValues, String> {
        let snapshot = snapshot_of(group)?.unwrap_or(self.max_lr.unwrap_or(self.lr));
        Ok(LambValues { step: count_of(group, "step")?, max_lr_snapshot: snapshot })
    }
}

torch_layout! {
    LarsHyper: [] ["momentum_buffer"]
        { lr, momentum, dampening, weight_decay, nesterov, trust_coeff, eps, trust_clip, always_adapt }
    AdanHyper: [] ["exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad"]
        { lr, betas, eps, weight_decay, no_prox, caution } => "step"
    AdemamixHyper: [] ["exp_avg", "exp_avg_sq", "exp_avg_slow"]
        { lr, betas, weight_decay, weight_decouple, fixed_decay, alpha, t_alpha_beta3, eps } => "step"
}

impl TorchLayout for ScheduleFreeHyper {
    const SCALAR_NAMES: &'static [&'static str] = &[];
    const BUFFER_NAMES: &'static [&'static str] = &["z", "exp_avg_sq"];
    fn group_entries(&self) -> Vec<(&'static str, Value)> {
        let mut e = vec![("lr", self.lr.to_value())];
        match self.kind {
            ScheduleFreeKind::Sgd { momentum, warmup_steps } => {
                e.extend([("momentum", momentum.to_value()), ("warmup_steps", warmup_steps.to_value())])
            }
            ScheduleFreeKind::AdamW { betas, eps, warmup_steps } => e.extend([
                ("betas", betas.to_value()),
                ("eps", eps.to_value()),
                ("warmup_steps", warmup_steps.to_value()),
            ]),
            ScheduleFreeKind::RAdam { betas, eps, silent_sgd_phase } => e.extend([
                ("betas", betas.to_value()),
                ("eps", eps.to_value()),
                ("silent_sgd_phase", silent_sgd_phase.to_value()),
            ]),
        }
        e.extend([
            ("r", self.r.to_value()),
            ("weight_lr_power", self.weight_lr_power.to_value()),
            ("weight_decay", self.weight_decay.to_value()),
        ]);
        e
    }
    fn with_group_entries(&self, group: &Value) -> Result<Self, String> {
        let mut h = *self;
        read_entries!(h, group, lr, r, weight_lr_power, weight_decay);
        let mut kind = KindEntries::of(h.kind);
        read_entries!(kind, group, momentum, warmup_steps, betas, eps, silent_sgd_phase);
        h.kind = kind.into_kind(h.kind);
        Ok(h)
    }
    fn group_state_entries(&self, v: &ScheduleFreeValues) -> Vec<(&'static str, Value)> {
        vec![
            count_entry("k", v.running.k, false),
            ("train_mode", Value::Bool(v.train_mode)),
            ("weight_sum", v.running.weight_sum.to_value()),
            ("lr_max", v.running.lr_max.to_value()),
            ("scheduled_lr", v.running.scheduled_lr.to_value()),
        ]
    }
    fn group_state_of(&self, group: &Value) -> Result<ScheduleFreeValues, String> {
        let mut v = self.group_state();
        let mut r = v.running;
        read_entries!(r, group, weight_sum, lr_max, scheduled_lr);
        r.k = count_of(group, "k")?;
        v.running = r;
        if let Some(t) = group.get("train_mode") {
            v.train_mode = bool::from_value(t).ok_or("'train_mode' of a param group is not a bool")?;
        }
        Ok(v)
    }
}

/// The entries of the three Schedule-Free kinds, read as fields.
struct KindEntries {
    momentum: f64,
    warmup_steps: f64,
    betas: (f64, f64),
    eps: f64,
    silent_sgd_phase: bool,
}

impl KindEntries {
    fn of(kind: ScheduleFreeKind) -> Self {
        let mut e =
            KindEntries { momentum: 0.0, warmup_steps: 0.0, betas: (0.0, 0.0), eps: 0.0, silent_sgd_phase: true };
        match kind {
            ScheduleFreeKind::Sgd { momentum, warmup_steps } => (e.momentum, e.warmup_steps) = (momentum, warmup_steps),
            ScheduleFreeKind::AdamW { betas, eps, warmup_steps } => {
                (e.betas, e.eps, e.warmup_steps) = (betas, eps, warmup_steps)
            }
            ScheduleFreeKind::RAdam { betas, eps, silent_sgd_phase } => {
                (e.betas, e.eps, e.silent_sgd_phase) = (betas, eps, silent_sgd_phase)
            }
        }
        e
    }

    fn into_kind(self, like: ScheduleFreeKind) -> ScheduleFreeKind {
        let KindEntries { momentum, warmup_steps, betas, eps, silent_sgd_phase } = self;
        match like {
            ScheduleFreeKind::Sgd { .. } => ScheduleFreeKind::Sgd { momentum, warmup_steps },
            ScheduleFreeKind::AdamW { .. } => ScheduleFreeKind::AdamW { betas, eps, warmup_steps },
            ScheduleFreeKind::RAdam { .. } => ScheduleFreeKind::RAdam { betas, eps, silent_sgd_phase },
        }
    }
}

impl TorchLayout for ProdigyHyper {
    const SCALAR_NAMES: &'static [&'static str] = &["step"];
    const BUFFER_NAMES: &'static [&'static str] = &["s", "p0", "exp_avg_sq", "exp_avg"];
    fn group_entries(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("lr", self.lr.to_value()),
            ("betas", self.betas.to_value()),
            ("beta3", self.beta3.to_value()),
            ("eps", self.eps.to_value()),
            ("weight_decay", self.weight_decay.to_value()),
            ("d0", self.d0.to_value()),
            ("d_coef", self.d_coef.to_value()),
            ("growth_rate", self.growth_rate.to_value()),
            ("use_bias_correction", self.use_bias_correction.to_value()),
            ("decouple", self.decouple.to_value()),
            ("safeguard_warmup", self.safeguard_warmup.to_value()),
            ("fsdp_in_use", Value::Bool(false)),
            ("slice_p", self.slice_p.to_value()),
        ]
    }
    fn with_group_entries(&self, group: &Value) -> Result<Self, String> {
        let mut h = *self;
        read_entries!(
            h,
            group,
            lr,
            betas,
            beta3,
            eps,
            weight_decay,
            d0,
            d_coef,
            growth_rate,
            use_bias_correction,
            decouple,
            safeguard_warmup,
            slice_p
        );
        if h.slice_p == 0 {
            return Err("'slice_p' of a param group must be a positive int".into());
        }
        Ok(h)
    }
    fn group_state_entries(&self, v: &ProdigyGlobal) -> Vec<(&'static str, Value)> {
        let mut e = vec![
            ("d", v.d.to_value()),
            ("d_max", v.d_max.to_value()),
            ("d_numerator", v.d_numerator.to_value()),
            count_entry("k", v.k, false),
        ];
        if v.k > 0.0 {
            e.extend([("d_denom", v.d_denom.to_value()), ("d_hat", v.d_hat.to_value())]);
        }
        e
    }
    fn group_state_of(&self, group: &Value) -> Result<ProdigyGlobal, String> {
        let mut v = self.group_state();
        read_entries!(v, group, d, d_max, d_numerator, d_denom, d_hat);
        v.k = count_of(group, "k")?;
        Ok(v)
    }
    /// prodigyopt's `step` is an int.
    fn scalar_value(&self, _k: usize, v: f64) -> Value {
        Value::Int(v as i64)
    }
    /// A 0-d `p0`: one zero for a parameter that was all zeros.
    fn saved_shape(&self, k: usize, shape: &[usize], len: usize) -> Vec<usize> {
        match self.buffer_shape(k, shape) {
            Some(s) if s.iter().product::<usize>() == len => s,
            _ if k == 1 && len == 1 => Vec::new(),
            _ => vec![len],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dict::{from_bytes, to_bytes, Value};
    use crate::TorchLayout;

    fn steps<K: TorchLayout>(opt: &mut Optimizer<K, f32>, params: &mut [Vec<f32>], from: usize, to: usize) {
        for t in from..to {
            let grads: Vec<Vec<f32>> = (params.iter())
                .map(|p| p.iter().enumerate().map(|(i, x)| x * 0.5 + ((i + t) % 5) as f32 * 0.1 - 0.2).collect())
                .collect();
            let mut p: Vec<&mut [f32]> = params.iter_mut().map(|p| &mut p[..]).collect();
            let g: Vec<&[f32]> = grads.iter().map(|g| &g[..]).collect();
            opt.step(&mut p, &g).unwrap();
        }
    }

    /// Saved after three steps and loaded into a new optimizer, each rule continues as
    /// the original, bit for bit: its group values, its state (Prodigy's 0-d `p0` of
    /// a parameter that was all zeros) and its mode (Schedule-Free).
    #[test]
    fn loaded_state_dicts_continue_as_the_originals() {
        fn check<K: TorchLayout + Copy + PartialEq>(mut make: impl FnMut() -> Optimizer<K, f32>, train: bool) {
            let mut params = vec![vec![0.0f32; 6], vec![0.5, -1.0, 2.0]];
            let mut opt = make();
            if train {
                // (Schedule-Free: train mode is a group value, saved and loaded)
                let sd = {
                    let mut sd = opt.state_dict();
                    let Some(Value::List(g)) = sd.get_mut("param_groups") else { panic!("groups") };
                    for g in g {
                        *g.get_mut("train_mode").unwrap() = Value::Bool(true);
                    }
                    sd
                };
                opt.load_state_dict(&sd).unwrap();
            }
            steps(&mut opt, &mut params, 0, 3);
            let sd = from_bytes(&to_bytes(&opt.state_dict()).unwrap()).unwrap();
            let mut resumed = make();
            resumed.load_state_dict(&sd).unwrap();
            assert_eq!(resumed.groups(), opt.groups());
            let mut copy = params.clone();
            steps(&mut opt, &mut params, 3, 6);
            steps(&mut resumed, &mut copy, 3, 6);
            assert_eq!(params, copy);
            assert_eq!(opt.state_dict(), resumed.state_dict());
        }
        fn two<K: TorchLayout + Copy + PartialEq>(h: K) -> impl FnMut() -> Optimizer<K, f32> {
            move || {
                let mut opt = Optimizer::with_params(h, 1).unwrap();
                opt.add_param_group(h, 1).unwrap();
                opt
            }
        }
        check(two(ProdigyHyper { slice_p: 2, ..ProdigyHyper::prodigyopt() }), false);
        check(two(LambHyper { lr: 0.01, ..LambHyper::timm() }), false);
        check(two(AdanHyper::timm()), false);
        check(two(LionHyper { max_lr: Some(1e-3), ..LionHyper::timm() }), false);
        check(two(ScheduleFreeHyper::adamw()), true);
        let sd = {
            let mut p = Prodigy::<f32>::new(ProdigyHyper::prodigyopt()).unwrap();
            p.step(&mut [&mut [0.0f32; 4]], &[&[1.0; 4]]).unwrap();
            p.state_dict()
        };
        let p0 = sd.get("state").and_then(|s| if let Value::Dict(d) = s { d[0].1.get("p0").cloned() } else { None });
        assert!(matches!(p0, Some(Value::Array(a)) if a.shape.is_empty()), "a 0-d p0");
    }

    /// Prodigy's groups of different nonzero LRs, and Schedule-Free in eval mode, are
    /// refused with their implementations' messages, and nothing changes.
    #[test]
    fn refusals_change_nothing() {
        let mut opt = Prodigy::<f64>::with_params(ProdigyHyper::prodigyopt(), 1).unwrap();
        opt.add_param_group(ProdigyHyper { lr: 0.5, ..ProdigyHyper::prodigyopt() }, 1).unwrap();
        let (mut a, mut b) = (vec![1.0; 3], vec![2.0; 2]);
        let err = opt.step(&mut [&mut a, &mut b], &[&[1.0; 3], &[1.0; 2]]).unwrap_err();
        assert!(err.to_string().starts_with("Setting different lr values"), "{err}");
        assert!(opt.state(0).is_none() && a == [1.0; 3]);
        opt.groups_mut()[1].hyper.lr = 0.0; // an LR of 0 is allowed
        opt.step(&mut [&mut a, &mut b], &[&[1.0; 3], &[1.0; 2]]).unwrap();
        assert_eq!(opt.groups()[1].values.k, 1.0);

        let mut sf = ScheduleFree::<f64>::new(ScheduleFreeHyper::sgd()).unwrap();
        let err = sf.step(&mut [&mut a], &[&[1.0; 3]]).unwrap_err();
        assert_eq!(err.to_string(), NOT_TRAINING);
        assert!(sf.state(0).is_none() && sf.groups()[0].values.running.k == 0.0);
    }
}
