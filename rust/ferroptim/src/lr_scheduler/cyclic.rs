//! `CyclicLR` and `OneCycleLR`: the LR (and, inversely, the momentum) follows a cycle,
//! stepped after every batch.

use std::f64::consts::PI;

use super::check::{
    check_cycle, check_momentum, cyclic_size_checked, one_cycle_lr_points_checked, one_cycle_pct_start, positive_int,
};
use super::state::{boolean, int, list, string};
use super::{per_group, require, Context, ParamGroup, Rule, SchedulerError};
use crate::state_dict::Value;

/// The amplitude policy of [`CyclicLr`].
pub enum CyclicMode {
    /// Constant amplitude.
    Triangular,
    /// The amplitude halves every cycle.
    Triangular2,
    /// The amplitude is `gamma^iteration`.
    ExpRange {
        /// The amplitude's factor per iteration.
        gamma: f64,
    },
    /// A custom factor of the cycle or iteration number (see [`ScaleMode`]).
    Custom(Box<dyn FnMut(f64) -> f64 + Send>, ScaleMode),
}

/// Whether a custom scale function gets the cycle number or the iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMode {
    /// The cycle number, from 1.
    Cycle,
    /// The iterations since the start.
    Iterations,
}

/// Cycles each group's LR between `base_lr` and `max_lr` (torch's `CyclicLR`; see the
/// Python docstring for the formula). With `cycle_momentum`, each group's momentum
/// cycles from `max_momentum` down to `base_momentum` as the LR rises.
pub struct CyclicLr {
    /// One value, or one per group.
    pub base_lr: Vec<f64>,
    /// The upper bound of the cycle: one value, or one per group.
    pub max_lr: Vec<f64>,
    /// The iterations of the rising half of a cycle.
    pub step_size_up: f64,
    /// `None`: as `step_size_up`.
    pub step_size_down: Option<f64>,
    /// The amplitude policy.
    pub mode: CyclicMode,
    /// Whether the groups' momentum cycles too (inversely to the LR).
    pub cycle_momentum: bool,
    /// The momentum at the LR's peak: one value, or one per group.
    pub base_momentum: Vec<f64>,
    /// The momentum at the LR's base: one value, or one per group.
    pub max_momentum: Vec<f64>,
    bounds: Vec<[f64; 4]>,
}

impl CyclicLr {
    /// torch's defaults (2000 iterations up, triangular, momentum 0.8 to 0.9).
    pub fn new(base_lr: Vec<f64>, max_lr: Vec<f64>) -> Self {
        CyclicLr {
            base_lr,
            max_lr,
            step_size_up: 2000.0,
            step_size_down: None,
            mode: CyclicMode::Triangular,
            cycle_momentum: true,
            base_momentum: vec![0.8],
            max_momentum: vec![0.9],
            bounds: Vec::new(),
        }
    }
}

impl CyclicMode {
    /// The amplitude factor at cycle `cycle` (from 1) and iteration `iteration`
    /// (torch's `scale_fn`, given the one its `scale_mode` names).
    pub fn scale(&mut self, cycle: f64, iteration: f64) -> f64 {
        match self {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
            CyclicMode::ExpRange { gamma } => gamma.powf(iteration),
            CyclicMode::Custom(f, ScaleMode::Cycle) => f(cycle),
            CyclicMode::Custom(f, ScaleMode::Iterations) => f(iteration),
        }
    }
}

/// A CyclicLR cycle of `step_size_up` iterations up and `step_size_down` (None: as
/// many) down: (`total_size`, `step_ratio`), the iterations of a cycle and the fraction
/// of them going up, as torch keeps them.
pub fn cyclic_size(step_size_up: f64, step_size_down: Option<f64>) -> (f64, f64) {
    let total = step_size_up + step_size_down.unwrap_or(step_size_up);
    (total, step_size_up / total)
}

/// The starting and final LR of a OneCycleLR group peaking at `max_lr`:
/// (`initial_lr`, `min_lr`), as torch sets them in the group.
pub fn one_cycle_lr_points(max_lr: f64, div_factor: f64, final_div_factor: f64) -> (f64, f64) {
    let initial = max_lr / div_factor;
    (initial, initial / final_div_factor)
}

/// torch's `CyclicLR.get_lr` from its attributes: at iteration `last_epoch` of
/// cycles of `total_size` iterations rising for the fraction `step_ratio`, each
/// group's LR between its `base_lrs` and `max_lrs` entries and, with `momentum`
/// (each group's base and max momentum), its momentum, which goes the other way. The
/// scale factor is asked of `mode` once per value, as torch asks its `scale_fn`.
pub fn cyclic_lrs(
    last_epoch: i64,
    total_size: f64,
    step_ratio: f64,
    mode: &mut CyclicMode,
    base_lrs: &[f64],
    max_lrs: &[f64],
    momentum: Option<(&[f64], &[f64])>,
) -> (Vec<f64>, Option<Vec<f64>>) {
    let e = last_epoch as f64;
    let cycle = (1.0 + e / total_size).floor();
    let x = 1.0 + e / total_size - cycle;
    let scale_factor = if x <= step_ratio { x / step_ratio } else { (x - 1.0) / (step_ratio - 1.0) };
    let lrs = base_lrs.iter().zip(max_lrs).map(|(&b, &m)| b + (m - b) * scale_factor * mode.scale(cycle, e)).collect();
    let momenta = momentum.map(|(base, max)| {
        base.iter().zip(max).map(|(&b, &m)| m - (m - b) * scale_factor * mode.scale(cycle, e)).collect()
    });
    (lrs, momenta)
}

impl Rule for CyclicLr {
    /// The bounds are the ones this scheduler was built with (torch keeps them in its
    /// attributes too, and its state dict restores them; here a state dict of other
    /// bounds or another cycle is refused: build the same scheduler, then load).
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        let (total, ratio) = cyclic_size(self.step_size_up, self.step_size_down);
        let column = |k: usize| list(&self.bounds.iter().map(|b| b[k]).collect::<Vec<_>>());
        let (mode, gamma) = match &self.mode {
            CyclicMode::Triangular => (Value::Str("triangular".into()), 1.0),
            CyclicMode::Triangular2 => (Value::Str("triangular2".into()), 1.0),
            CyclicMode::ExpRange { gamma } => (Value::Str("exp_range".into()), *gamma),
            CyclicMode::Custom(..) => (Value::None, 1.0),
        };
        let scale_mode = match &self.mode {
            CyclicMode::Custom(_, ScaleMode::Iterations) | CyclicMode::ExpRange { .. } => "iterations",
            _ => "cycle",
        };
        let mut entries = vec![("max_lrs", column(1)), ("cycle_momentum", Value::Bool(self.cycle_momentum))];
        if self.cycle_momentum {
            entries.extend([("base_momentums", column(2)), ("max_momentums", column(3))]);
        }
        entries.extend([
            ("total_size", Value::Float(total)),
            ("step_ratio", Value::Float(ratio)),
            ("mode", mode),
            ("gamma", Value::Float(gamma)),
            ("scale_mode", Value::Str(scale_mode.into())),
            ("_scale_fn_custom", Value::None),
        ]);
        entries
    }

    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let mine = self.state_entries();
        for (key, want) in &mine {
            if *key == "_scale_fn_custom" || (*key == "mode" && *want == Value::None) {
                continue;
            }
            let same = match (sd.get(key), want) {
                (Some(got), Value::List(_)) => {
                    got.items().map(|g| g.iter().map(Value::as_f64).collect::<Vec<_>>())
                        == want.items().map(|w| w.iter().map(Value::as_f64).collect())
                }
                (Some(got), Value::Float(w)) => got.as_f64() == Some(*w),
                (got, want) => got == Some(want),
            };
            require(same, || {
                format!("the state dict's '{key}' is not this CyclicLR's: build the same scheduler, then load")
            })?;
        }
        Ok(())
    }

    fn attach(&mut self, groups: &mut [ParamGroup], last_epoch: i64) -> Result<(), SchedulerError> {
        let n = groups.len();
        let base = per_group("base_lr", &self.base_lr, n)?;
        let max = per_group("max_lr", &self.max_lr, n)?;
        let (total, ratio) = cyclic_size_checked(self.step_size_up, self.step_size_down)?;
        let (base_m, max_m) = if self.cycle_momentum {
            check_momentum(groups.iter().all(|g| g.momentum.is_some()))?;
            (per_group("base_momentum", &self.base_momentum, n)?, per_group("max_momentum", &self.max_momentum, n)?)
        } else {
            (vec![0.0; n], vec![0.0; n])
        };
        check_cycle(total, ratio)?;
        self.bounds = (0..n).map(|i| [base[i], max[i], base_m[i], max_m[i]]).collect();
        if last_epoch == -1 {
            for (g, b) in groups.iter_mut().zip(&self.bounds) {
                g.lr = b[0];
                if self.cycle_momentum {
                    g.momentum = Some(b[3]);
                }
            }
        }
        Ok(())
    }

    fn base_lrs(&self) -> Option<Vec<f64>> {
        Some(self.bounds.iter().map(|b| b[0]).collect())
    }

    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        let (total, ratio) = cyclic_size(self.step_size_up, self.step_size_down);
        let max: Vec<f64> = self.bounds.iter().map(|b| b[1]).collect();
        let (base_m, max_m): (Vec<f64>, Vec<f64>) = self.bounds.iter().map(|b| (b[2], b[3])).unzip();
        let momentum = self.cycle_momentum.then_some((&base_m[..], &max_m[..]));
        // `base_lrs` are the groups' `initial_lr` in the construction step (as in
        // torch), the cycle's `base_lr` afterwards
        let (lrs, momenta) = cyclic_lrs(c.last_epoch, total, ratio, &mut self.mode, c.base_lrs, &max, momentum);
        for (g, m) in groups.iter_mut().zip(momenta.iter().flatten()) {
            g.momentum = Some(*m);
        }
        lrs
    }
}

/// How [`OneCycleLr`] anneals within a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    /// Along a cosine.
    Cos,
    /// Along a straight line.
    Linear,
}

/// The 1cycle policy (torch's `OneCycleLR`; see the Python docstring): up from
/// `max_lr / div_factor` to `max_lr`, then down to `initial_lr / final_div_factor`.
#[derive(Clone, Debug, PartialEq)]
pub struct OneCycleLr {
    /// One value, or one per group.
    pub max_lr: Vec<f64>,
    /// The steps of the whole cycle.
    pub total_steps: i64,
    /// The fraction of the steps spent rising.
    pub pct_start: f64,
    /// How each phase anneals.
    pub anneal: Anneal,
    /// Whether the groups' momentum cycles too (inversely to the LR).
    pub cycle_momentum: bool,
    /// The momentum at the LR's peak: one value, or one per group.
    pub base_momentum: Vec<f64>,
    /// The momentum at the start and the end: one value, or one per group.
    pub max_momentum: Vec<f64>,
    /// The starting LR is `max_lr / div_factor`.
    pub div_factor: f64,
    /// The final LR is the starting LR `/ final_div_factor`.
    pub final_div_factor: f64,
    /// A third phase that anneals to the final LR (else the second does).
    pub three_phase: bool,
    /// Per group: initial, max and min LR, max and base momentum.
    points: Vec<OneCyclePoints>,
}

/// A phase of [`OneCycleLr`]: its last step, and where it starts and ends, as
/// (LR, momentum) indices into a group's [`OneCyclePoints`].
pub type Phase = (f64, (usize, usize), (usize, usize));

/// The values a group's [`OneCycleLr`] phases run between, in this order (torch keeps
/// them in the group under these names): `initial_lr`, `max_lr`, `min_lr`,
/// `max_momentum`, `base_momentum`.
pub type OneCyclePoints = [f64; 5];

/// The names of the [`OneCyclePoints`], in their order.
pub const ONE_CYCLE_POINTS: [&str; 5] = ["initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"];

/// torch's `OneCycleLR` phases for `total_steps` steps rising for the fraction
/// `pct_start` of them: (end step, start point, end point), points indexing a group's
/// [`OneCyclePoints`] as (LR index, momentum index).
pub fn one_cycle_phases(total_steps: i64, pct_start: f64, three_phase: bool) -> Vec<Phase> {
    let n = total_steps as f64;
    let (initial, max, min, max_m, base_m) = (0, 1, 2, 3, 4);
    if three_phase {
        vec![
            (pct_start * n - 1.0, (initial, max_m), (max, base_m)),
            (2.0 * pct_start * n - 2.0, (max, base_m), (initial, max_m)),
            (n - 1.0, (initial, max_m), (min, max_m)),
        ]
    } else {
        vec![(pct_start * n - 1.0, (initial, max_m), (max, base_m)), (n - 1.0, (max, base_m), (min, max_m))]
    }
}

/// torch's `OneCycleLR.get_lr` from its attributes: each group's LR (and, with
/// `cycle_momentum`, momentum) at `step` of `total_steps`, along `phases` between the
/// group's `points`, annealed by `anneal`. Stepping past `total_steps` is refused with
/// torch's message.
pub fn one_cycle_lrs(
    step: i64,
    total_steps: i64,
    phases: &[Phase],
    anneal: Anneal,
    points: &[OneCyclePoints],
    cycle_momentum: bool,
) -> Result<(Vec<f64>, Option<Vec<f64>>), SchedulerError> {
    require(step <= total_steps, || {
        format!("Tried to step {step} times. The specified number of total steps is {total_steps}")
    })?;
    let (mut lrs, mut momenta) = (Vec::with_capacity(points.len()), Vec::with_capacity(points.len()));
    for p in points {
        let mut start_step = 0.0;
        for (i, &(end_step, from, to)) in phases.iter().enumerate() {
            if step as f64 <= end_step || i == phases.len() - 1 {
                let pct = (step as f64 - start_step) / (end_step - start_step);
                lrs.push(anneal.at(p[from.0], p[to.0], pct));
                momenta.push(anneal.at(p[from.1], p[to.1], pct));
                break;
            }
            start_step = end_step;
        }
    }
    Ok((lrs, cycle_momentum.then_some(momenta)))
}

impl Anneal {
    /// The value `pct` of the way from `start` to `end`.
    pub fn at(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

impl OneCycleLr {
    /// torch's defaults for `max_lr` over `total_steps`.
    pub fn new(max_lr: Vec<f64>, total_steps: i64) -> Self {
        OneCycleLr {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: vec![0.85],
            max_momentum: vec![0.95],
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            points: Vec::new(),
        }
    }
}

impl Rule for OneCycleLr {
    fn state_entries(&self) -> Vec<(&'static str, Value)> {
        let phases = one_cycle_phases(self.total_steps, self.pct_start, self.three_phase);
        let last = phases.len() - 1;
        let names = |(lr, m): (usize, usize)| (ONE_CYCLE_POINTS[lr], ONE_CYCLE_POINTS[m]);
        let phase = |(k, &(end, from, to)): (usize, &Phase)| {
            let ((start_lr, start_m), (end_lr, end_m)) = (names(from), names(to));
            // torch's last end step is an int
            let end = if k == last { Value::Int(end as i64) } else { Value::Float(end) };
            Value::dict([
                ("end_step", end),
                ("start_lr", Value::Str(start_lr.into())),
                ("end_lr", Value::Str(end_lr.into())),
                ("start_momentum", Value::Str(start_m.into())),
                ("end_momentum", Value::Str(end_m.into())),
            ])
        };
        let anneal = self.anneal.name();
        vec![
            ("total_steps", Value::Int(self.total_steps)),
            ("_schedule_phases", Value::List(phases.iter().enumerate().map(phase).collect())),
            ("_anneal_func_type", Value::Str(anneal.into())),
            ("cycle_momentum", Value::Bool(self.cycle_momentum)),
        ]
    }

    /// Takes the annealing and the schedule's length; the phases must be this
    /// scheduler's for that length (its `pct_start` and `three_phase`), and its
    /// momentum cycling the same, or the state dict is refused.
    fn load_entries(&mut self, sd: &Value) -> Result<(), SchedulerError> {
        let total_steps = positive_int("total_steps", &int(sd, "total_steps")?)?;
        let anneal = string(sd, "_anneal_func_type")?.parse::<Anneal>()?;
        require(boolean(sd, "cycle_momentum")? == self.cycle_momentum, || {
            "the state dict's cycle_momentum is not this OneCycleLR's: build the same scheduler, then load".into()
        })?;
        let mine = OneCycleLr {
            total_steps,
            anneal,
            max_lr: Vec::new(),
            base_momentum: Vec::new(),
            max_momentum: Vec::new(),
            points: Vec::new(),
            ..*self
        };
        let ends = |v: &Value| -> Option<Vec<f64>> {
            v.items()?.iter().map(|p| p.get("end_step").and_then(Value::as_f64)).collect()
        };
        let want = mine.state_entries();
        require(sd.get("_schedule_phases").and_then(ends) == ends(&want[1].1), || {
            "the state dict's phases are not this OneCycleLR's: build the same scheduler, then load".into()
        })?;
        (self.total_steps, self.anneal) = (total_steps, anneal);
        Ok(())
    }

    fn attach(&mut self, groups: &mut [ParamGroup], last_epoch: i64) -> Result<(), SchedulerError> {
        let n = groups.len();
        positive_int("total_steps", &self.total_steps)?;
        one_cycle_pct_start(&self.pct_start)?;
        let max = per_group("max_lr", &self.max_lr, n)?;
        let lr_points = max
            .iter()
            .map(|&m| one_cycle_lr_points_checked(m, self.div_factor, self.final_div_factor))
            .collect::<Result<Vec<_>, _>>()?;
        let (max_m, base_m) = if self.cycle_momentum {
            check_momentum(groups.iter().all(|g| g.momentum.is_some()))?;
            (per_group("max_momentum", &self.max_momentum, n)?, per_group("base_momentum", &self.base_momentum, n)?)
        } else {
            (vec![0.0; n], vec![0.0; n])
        };
        self.points = (0..n)
            .map(|i| {
                let (initial, min) = lr_points[i];
                [initial, max[i], min, max_m[i], base_m[i]]
            })
            .collect();
        if last_epoch == -1 {
            for (g, p) in groups.iter_mut().zip(&self.points) {
                g.initial_lr = Some(p[0]);
                if self.cycle_momentum {
                    g.momentum = Some(p[3]);
                }
            }
        }
        Ok(())
    }

    /// # Panics
    /// Stepping past `total_steps`, with torch's message.
    fn lrs(&mut self, c: &Context<'_>, groups: &mut [ParamGroup]) -> Vec<f64> {
        let phases = one_cycle_phases(self.total_steps, self.pct_start, self.three_phase);
        let (lrs, momenta) =
            one_cycle_lrs(c.last_epoch, self.total_steps, &phases, self.anneal, &self.points, self.cycle_momentum)
                .unwrap_or_else(|e| panic!("{e}"));
        for (g, m) in groups.iter_mut().zip(momenta.iter().flatten()) {
            g.momentum = Some(*m);
        }
        lrs
    }
}
