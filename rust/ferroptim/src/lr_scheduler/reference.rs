//! The torch 2.15 scheduler tables (`tests/reference/torch-2.15/schedulers.json`)
//! replayed on the Rust schedulers: the LR and momentum of both groups after every
//! step, to 1e-12 relative.

use serde_json::Value;

use super::*;

const TABLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/reference/torch-2.15/schedulers.json");

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn list(v: Option<&Value>, default: f64) -> Vec<f64> {
    match v {
        None => vec![default],
        Some(Value::Array(a)) => a.iter().map(f).collect(),
        Some(x) => vec![f(x)],
    }
}

fn int(kw: &Value, key: &str) -> i64 {
    kw[key].as_i64().unwrap_or_else(|| panic!("{key}: {kw}"))
}

/// The expressions of the reference's lambdas.
fn lambda(expr: &str) -> lambda::LrLambda {
    match expr {
        "0.95 ** epoch" => Box::new(|e| 0.95f64.powf(e as f64)),
        "0.97" => Box::new(|_| 0.97),
        other => panic!("unknown lambda {other}"),
    }
}

fn build(name: &str, kw: &Value, groups: &mut [ParamGroup]) -> composite::Boxed {
    let num = |key: &str, default: f64| kw.get(key).map_or(default, f);
    match name {
        "StepLR" => Box::new(
            Schedule::new(StepLr { step_size: int(kw, "step_size"), gamma: num("gamma", 0.1) }, groups, -1).unwrap(),
        ),
        "MultiStepLR" => {
            let milestones = kw["milestones"].as_array().unwrap().iter().map(|m| m.as_i64().unwrap()).collect();
            Box::new(Schedule::new(MultiStepLr { milestones, gamma: num("gamma", 0.1) }, groups, -1).unwrap())
        }
        "ConstantLR" => {
            let rule = ConstantLr { factor: num("factor", 1.0 / 3.0), total_iters: int(kw, "total_iters") };
            Box::new(Schedule::new(rule, groups, -1).unwrap())
        }
        "LinearLR" => {
            let rule = LinearLr {
                start_factor: num("start_factor", 1.0 / 3.0),
                end_factor: num("end_factor", 1.0),
                total_iters: int(kw, "total_iters"),
            };
            Box::new(Schedule::new(rule, groups, -1).unwrap())
        }
        "ExponentialLR" => Box::new(Schedule::new(ExponentialLr { gamma: num("gamma", 0.0) }, groups, -1).unwrap()),
        "PolynomialLR" => {
            let rule = PolynomialLr { total_iters: int(kw, "total_iters"), power: num("power", 1.0) };
            Box::new(Schedule::new(rule, groups, -1).unwrap())
        }
        "CosineAnnealingLR" => {
            let rule = CosineAnnealingLr { t_max: int(kw, "T_max"), eta_min: num("eta_min", 0.0) };
            Box::new(Schedule::new(rule, groups, -1).unwrap())
        }
        "CosineAnnealingWarmRestarts" => Box::new(
            CosineAnnealingWarmRestarts::new(groups, int(kw, "T_0"), int(kw, "T_mult"), num("eta_min", 0.0)).unwrap(),
        ),
        "LambdaLR" => {
            let rule = LambdaLr { lr_lambdas: vec![lambda(kw["lr_lambda"].as_str().unwrap())] };
            Box::new(Schedule::new(rule, groups, -1).unwrap())
        }
        "MultiplicativeLR" => {
            let rule = MultiplicativeLr { lr_lambdas: vec![lambda(kw["lr_lambda"].as_str().unwrap())] };
            Box::new(Schedule::new(rule, groups, -1).unwrap())
        }
        "CyclicLR" => {
            let mut rule = CyclicLr::new(list(kw.get("base_lr"), 0.0), list(kw.get("max_lr"), 0.0));
            rule.step_size_up = num("step_size_up", 2000.0);
            rule.step_size_down = kw.get("step_size_down").map(f);
            rule.mode =
                cyclic_mode(kw["mode"].as_str().unwrap(), || Ok::<_, SchedulerError>(num("gamma", 1.0))).unwrap();
            Box::new(Schedule::new(rule, groups, -1).unwrap())
        }
        "OneCycleLR" => {
            let mut rule = OneCycleLr::new(list(kw.get("max_lr"), 0.0), int(kw, "total_steps"));
            if let Some(anneal) = kw.get("anneal_strategy").and_then(Value::as_str) {
                rule.anneal = anneal.parse().unwrap();
            }
            rule.three_phase = kw.get("three_phase").and_then(Value::as_bool).unwrap_or(false);
            Box::new(Schedule::new(rule, groups, -1).unwrap())
        }
        "ReduceLROnPlateau" => {
            let mut s =
                ReduceLrOnPlateau::new(groups, num("factor", 0.1), int(kw, "patience") as u64, &[num("min_lr", 0.0)])
                    .unwrap();
            s.cooldown = int(kw, "cooldown") as u64;
            Box::new(s)
        }
        other => panic!("no scheduler {other}"),
    }
}

#[test]
fn replays_the_torch_tables() {
    let text = std::fs::read_to_string(TABLES).expect("the reference tables");
    let tables: Value = serde_json::from_str(&text).unwrap();
    let cases = tables["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 17);
    for case in cases {
        let name = case["scheduler"].as_str().unwrap();
        let momentum = case["optimizer_kwargs"].get("momentum").map_or(0.0, f);
        let mut groups = [ParamGroup::with_momentum(0.1, momentum), ParamGroup::with_momentum(0.01, momentum)];
        let mut sched: composite::Boxed = match case["sub"].as_array() {
            Some(sub) => {
                let subs = sub.iter().map(|s| build(s[0].as_str().unwrap(), &s[1], &mut groups)).collect();
                if name == "SequentialLR" {
                    let milestones = case["kwargs"]["milestones"].as_array().unwrap();
                    let milestones = milestones.iter().map(|m| m.as_i64().unwrap()).collect();
                    Box::new(SequentialLr::new(&mut groups, subs, milestones, -1).unwrap())
                } else {
                    Box::new(ChainedScheduler::new(&groups, subs).unwrap())
                }
            }
            None => build(name, &case["kwargs"], &mut groups),
        };
        let expected_lr = case["expected_lr"].as_array().unwrap();
        let expected_m = case.get("expected_momentum").and_then(Value::as_array);
        let metrics = case["metrics"].as_array();
        for (k, row) in expected_lr.iter().enumerate() {
            if k > 0 {
                match metrics {
                    Some(m) if name == "ReduceLROnPlateau" => sched.step_with(f(&m[k - 1]), &mut groups),
                    _ => sched.step(&mut groups),
                }
                assert_eq!(sched.last_lr(), [groups[0].lr, groups[1].lr]);
            }
            for (i, g) in groups.iter().enumerate() {
                let want = f(&row[i]);
                assert!(
                    (g.lr - want).abs() <= 1e-12 * want.abs(),
                    "{name}: step {k}, group {i}: lr {} vs {want}",
                    g.lr
                );
                if let Some(m) = expected_m {
                    let want = f(&m[k][i]);
                    let got = g.momentum.unwrap();
                    assert!((got - want).abs() <= 1e-12 * want.abs(), "{name}: step {k}: momentum {got} vs {want}");
                }
            }
        }
    }
}

#[test]
fn closed_forms_agree_with_the_chainable_forms() {
    fn check<R: Rule>(rule: R) {
        let mut groups = [ParamGroup::new(0.1), ParamGroup::new(0.01)];
        let mut s = Schedule::new(rule, &mut groups, -1).unwrap();
        for epoch in 1..15 {
            s.step(&mut groups);
            let chained: Vec<f64> = groups.iter().map(|g| g.lr).collect();
            s.step_to(epoch, &mut groups);
            for (g, c) in groups.iter().zip(&chained) {
                assert!((g.lr - c).abs() <= 1e-12 * c.abs(), "epoch {epoch}: {} vs {c}", g.lr);
            }
        }
    }
    check(StepLr { step_size: 3, gamma: 0.5 });
    check(MultiStepLr { milestones: vec![2, 5, 5], gamma: 0.5 });
    check(ConstantLr { factor: 0.5, total_iters: 4 });
    check(LinearLr { start_factor: 0.25, end_factor: 1.0, total_iters: 6 });
    check(ExponentialLr { gamma: 0.9 });
    check(PolynomialLr { total_iters: 8, power: 1.5 });
    check(CosineAnnealingLr { t_max: 7, eta_min: 0.001 });
}

#[test]
fn refuses_what_torch_refuses() {
    let mut groups = [ParamGroup::new(0.1)];
    let err = |r: Result<Schedule<ConstantLr>, SchedulerError>| r.err().map(|e| e.0);
    assert_eq!(
        err(Schedule::new(ConstantLr { factor: 2.0, total_iters: 3 }, &mut groups, -1)),
        Some("Constant multiplicative factor expected to be between 0 and 1.".into())
    );
    let e = Schedule::new(ExponentialLr { gamma: 0.9 }, &mut [ParamGroup::new(0.1)], 3).err().unwrap();
    assert!(e.0.starts_with("param 'initial_lr' is not specified in param_groups[0] when resuming scheduler with"));
    let e = Schedule::new(CyclicLr::new(vec![0.1], vec![1.0]), &mut [ParamGroup::new(0.1)], -1).err().unwrap();
    assert!(e.0.starts_with("optimizer must support momentum"));
    assert!(CosineAnnealingWarmRestarts::new(&mut groups, 0, 1, 0.0).is_err());
    assert!(ReduceLrOnPlateau::new(&groups, 1.0, 2, &[0.0]).is_err());
    // where torch's formula would divide by zero at a later step
    let e = Schedule::new(StepLr { step_size: 0, gamma: 0.5 }, &mut groups, -1).err().unwrap();
    assert_eq!(e.0, "Expected nonzero integer step_size, but got 0");
    let e = Schedule::new(CosineAnnealingLr { t_max: 0, eta_min: 0.0 }, &mut groups, -1).err().unwrap();
    assert_eq!(e.0, "Expected nonzero integer T_max, but got 0");
    // where torch's constructor divides by zero: a cycle that never rises, a divisor of 0
    let mut momentum = [ParamGroup::with_momentum(0.1, 0.9)];
    let mut cyclic = CyclicLr::new(vec![0.1], vec![1.0]);
    (cyclic.step_size_up, cyclic.step_size_down) = (0.0, Some(4.0));
    assert_eq!(Schedule::new(cyclic, &mut momentum, -1).err().unwrap().0, DIVISION_BY_ZERO);
    let mut one_cycle = OneCycleLr::new(vec![1.0], 10);
    one_cycle.div_factor = 0.0;
    assert_eq!(Schedule::new(one_cycle, &mut momentum, -1).err().unwrap().0, DIVISION_BY_ZERO);
    assert_eq!(momentum[0], ParamGroup::with_momentum(0.1, 0.9), "a refused scheduler changes nothing");
    let mut one_cycle = OneCycleLr::new(vec![1.0], 10);
    one_cycle.pct_start = 1.5;
    assert_eq!(
        Schedule::new(one_cycle, &mut momentum, -1).err().unwrap().0,
        "Expected float between 0 and 1 pct_start, but got 1.5"
    );
}

#[test]
fn step_lr_jumps_by_pythons_floor_division() {
    // torch's closed form is `gamma ** (epoch // step_size)`, rounded down whatever
    // the signs; (epoch, step_size, epoch // step_size)
    for (epoch, step_size, k) in [(7, 3, 2), (6, 3, 2), (4, -3, -2), (3, -3, -1), (0, -3, 0), (5, 1, 5)] {
        let mut groups = [ParamGroup::new(1.0)];
        let mut s = Schedule::new(StepLr { step_size, gamma: 0.5 }, &mut groups, -1).unwrap();
        s.step_to(epoch, &mut groups);
        assert_eq!(groups[0].lr, 0.5f64.powf(k as f64), "epoch {epoch}, step_size {step_size}");
    }
}

#[test]
fn swa_lr_anneals_to_the_swa_lr() {
    for cos in [true, false] {
        for anneal_epochs in [0, 1, 4] {
            let mut groups = [ParamGroup::new(0.1), ParamGroup::new(0.02)];
            let mut s = Schedule::new(SwaLr::new(vec![0.05, 0.01], anneal_epochs, cos), &mut groups, -1).unwrap();
            for k in 0..8i64 {
                let step = if anneal_epochs == 0 { k.max(1) } else { k };
                let t = f64::min(1.0, step as f64 / anneal_epochs.max(1) as f64);
                let a = if cos { (1.0 - (std::f64::consts::PI * t).cos()) / 2.0 } else { t };
                for (g, (swa, lr0)) in groups.iter().zip([(0.05, 0.1), (0.01, 0.02)]) {
                    let want = swa * a + lr0 * (1.0 - a);
                    assert!((g.lr - want).abs() <= 1e-12 * want, "cos {cos}, {anneal_epochs} epochs, step {k}");
                }
                s.step(&mut groups);
            }
        }
    }
}

#[test]
fn sequential_lr_starts_with_the_scheduler_of_step_0() {
    // milestone 0: the ExponentialLR after it makes the first step (torch 2.15's
    // `bisect_right(milestones, 0)`); torch's LRs: 1.0, 0.9, 0.81, 0.729
    let mut groups = [ParamGroup::new(1.0)];
    let warmup: composite::Boxed =
        Box::new(Schedule::new(ConstantLr { factor: 0.5, total_iters: 2 }, &mut groups, -1).unwrap());
    let decay: composite::Boxed = Box::new(Schedule::new(ExponentialLr { gamma: 0.9 }, &mut groups, -1).unwrap());
    let mut s = SequentialLr::new(&mut groups, vec![warmup, decay], vec![0], -1).unwrap();
    let mut seen = vec![groups[0].lr];
    for _ in 0..3 {
        s.step(&mut groups);
        seen.push(groups[0].lr);
    }
    let want = [1.0, 0.9, 0.9 * 0.9, 0.9 * 0.9 * 0.9];
    assert!(seen.iter().zip(want).all(|(a, b)| (a - b).abs() <= 1e-15), "{seen:?}");
}
