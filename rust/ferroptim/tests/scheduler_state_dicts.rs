//! Schedulers' state dicts against torch's (`tests/data/scheduler_state_dicts.fo`,
//! recorded by `scripts/record_scheduler_state_dicts.py` with torch 2.15): each
//! scheduler, built as the recording built it on an SGD optimizer of two param groups
//! and stepped as often, has torch's state dict (every entry, ints as ints), and one
//! built anew that loads torch's state dict steps on with torch's LRs.

use ferroptim::lr_scheduler::{
    Anneal, ConstantLr, CosineAnnealingLr, CosineAnnealingWarmRestarts, CyclicLr, CyclicMode, ExponentialLr, LambdaLr,
    LinearLr, LrScheduler, MultiStepLr, MultiplicativeLr, OneCycleLr, PolynomialLr, ReduceLrOnPlateau, Schedule,
    StepLr, SwaLr,
};
use ferroptim::state_dict::{load, Value};
use ferroptim::{Sgd, SgdHyper};

type Boxed = Box<dyn LrScheduler + Send>;

fn optimizer() -> Sgd<f64> {
    let mut opt = Sgd::with_params(SgdHyper { lr: 0.1, momentum: 0.9, ..SgdHyper::default() }, 1).unwrap();
    opt.add_param_group(SgdHyper { lr: 0.01, momentum: 0.9, ..SgdHyper::default() }, 1).unwrap();
    opt
}

fn f(kw: &Value, key: &str) -> f64 {
    kw.get(key).and_then(Value::as_f64).unwrap_or_else(|| panic!("a number {key}"))
}

fn i(kw: &Value, key: &str) -> i64 {
    match kw.get(key) {
        Some(Value::Int(v)) => *v,
        other => panic!("an int {key}: {other:?}"),
    }
}

/// `[x]` or the list given.
fn fs(kw: &Value, key: &str) -> Vec<f64> {
    kw.get(key)
        .and_then(Value::items)
        .map_or_else(|| vec![f(kw, key)], |xs| xs.iter().map(|x| x.as_f64().unwrap()).collect())
}

/// The recording's scheduler `name` with `kw`, built on `opt`.
fn build(name: &str, kw: &Value, opt: &mut Sgd<f64>) -> Boxed {
    let lambda = || -> ferroptim::lr_scheduler::LrLambda {
        match kw.get("lr_lambda") {
            Some(Value::Str(e)) if e == "0.95 ** epoch" => Box::new(|e| 0.95f64.powf(e as f64)),
            Some(Value::Str(e)) if e == "0.9" => Box::new(|_| 0.9),
            other => panic!("no lambda {other:?}"),
        }
    };
    macro_rules! schedule {
        ($rule:expr) => {
            Box::new(Schedule::new($rule, opt, -1).unwrap())
        };
    }
    match name {
        "StepLR" => schedule!(StepLr { step_size: i(kw, "step_size"), gamma: f(kw, "gamma") }),
        "MultiStepLR" => {
            let milestones = kw.get("milestones").and_then(Value::items).unwrap();
            let milestones = milestones.iter().map(|m| m.as_f64().unwrap() as i64).collect();
            schedule!(MultiStepLr { milestones, gamma: f(kw, "gamma") })
        }
        "ConstantLR" => schedule!(ConstantLr { factor: f(kw, "factor"), total_iters: i(kw, "total_iters") }),
        "LinearLR" => schedule!(LinearLr {
            start_factor: f(kw, "start_factor"),
            end_factor: f(kw, "end_factor"),
            total_iters: i(kw, "total_iters")
        }),
        "ExponentialLR" => schedule!(ExponentialLr { gamma: f(kw, "gamma") }),
        "PolynomialLR" => schedule!(PolynomialLr { total_iters: i(kw, "total_iters"), power: f(kw, "power") }),
        "CosineAnnealingLR" => schedule!(CosineAnnealingLr { t_max: i(kw, "T_max"), eta_min: f(kw, "eta_min") }),
        "LambdaLR" => schedule!(LambdaLr { lr_lambdas: vec![lambda()] }),
        "MultiplicativeLR" => schedule!(MultiplicativeLr { lr_lambdas: vec![lambda()] }),
        "CyclicLR" => {
            let mut rule = CyclicLr::new(fs(kw, "base_lr"), fs(kw, "max_lr"));
            rule.step_size_up = f(kw, "step_size_up");
            rule.step_size_down = kw.get("step_size_down").and_then(Value::as_f64);
            if kw.get("mode") == Some(&Value::Str("exp_range".into())) {
                rule.mode = CyclicMode::ExpRange { gamma: f(kw, "gamma") };
            }
            schedule!(rule)
        }
        "OneCycleLR" => {
            let mut rule = OneCycleLr::new(fs(kw, "max_lr"), i(kw, "total_steps"));
            rule.three_phase = kw.get("three_phase") == Some(&Value::Bool(true));
            if kw.get("anneal_strategy") == Some(&Value::Str("linear".into())) {
                rule.anneal = Anneal::Linear;
            }
            schedule!(rule)
        }
        "SWALR" => schedule!(SwaLr::new(fs(kw, "swa_lr"), i(kw, "anneal_epochs"), true)),
        "CosineAnnealingWarmRestarts" => {
            Box::new(CosineAnnealingWarmRestarts::new(opt, i(kw, "T_0"), i(kw, "T_mult"), f(kw, "eta_min")).unwrap())
        }
        "ReduceLROnPlateau" => {
            let mut s = ReduceLrOnPlateau::new(opt, f(kw, "factor"), i(kw, "patience") as u64, &[0.0]).unwrap();
            s.cooldown = i(kw, "cooldown") as u64;
            Box::new(s)
        }
        other => panic!("no scheduler {other}"),
    }
}

fn step(s: &mut Boxed, opt: &mut Sgd<f64>, metrics: &[Value], t: usize) {
    if s.needs_metric() {
        s.step_with(metrics[t].as_f64().unwrap(), opt);
    } else {
        s.step(opt);
    }
}

/// Whether `ours` is torch's value: ints as ints, other numbers to 1e-12 relative,
/// lists and dicts entry by entry.
fn same(ours: &Value, torch: &Value) -> bool {
    match (ours, torch) {
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Int(_), _) => false,
        (Value::Float(a), t) | (t, Value::Float(a)) if t.as_f64().is_some() => {
            let b = t.as_f64().unwrap();
            a == &b || (a - b).abs() <= 1e-12 * b.abs()
        }
        (a, b) if a.items().is_some() && b.items().is_some() => {
            let (a, b) = (a.items().unwrap(), b.items().unwrap());
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Dict(a), Value::Dict(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|((k, x), (l, y))| same(k, l) && same(x, y))
        }
        (a, b) => a == b,
    }
}

#[test]
fn state_dicts_are_torchs_and_resume_torchs_schedules() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/scheduler_state_dicts.fo");
    let recorded = load(path).unwrap();
    let cases = recorded.get("cases").and_then(Value::items).unwrap();
    assert_eq!(cases.len(), 16);
    for case in cases {
        let Some(Value::Str(name)) = case.get("name") else { panic!("a name") };
        let (kw, metrics) = (case.get("kwargs").unwrap(), case.get("metrics").and_then(Value::items).unwrap());
        let (torch, steps) = (case.get("state_dict").unwrap(), i(case, "steps") as usize);
        let mut opt = optimizer();
        let mut s = build(name, kw, &mut opt);
        for t in 0..steps {
            step(&mut s, &mut opt, metrics, t);
        }
        let ours = s.state_dict();
        let Value::Dict(torch_entries) = torch else { panic!("a dict") };
        let Value::Dict(our_entries) = &ours else { panic!("a dict") };
        for (key, value) in torch_entries {
            let Value::Str(key) = key else { panic!("str keys") };
            if key == "use_beta1" {
                continue; // which of momentum and betas.0 the optimizer has: not a Rust scheduler's concern
            }
            let mine = ours.get(key).unwrap_or_else(|| panic!("{name}: no '{key}'"));
            assert!(same(mine, value), "{name}: '{key}' is {mine:?}, torch's {value:?}");
        }
        for (key, _) in our_entries {
            let Value::Str(key) = key else { panic!("str keys") };
            assert!(torch.get(key).is_some(), "{name}: '{key}' is not torch's");
        }

        // a scheduler built anew resumes from torch's state dict
        let mut opt = optimizer();
        let mut resumed = build(name, kw, &mut opt);
        resumed.load_state_dict(torch).unwrap_or_else(|e| panic!("{name}: {e}"));
        let last: Vec<f64> =
            torch.get("_last_lr").and_then(Value::items).unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        for (g, lr) in opt.groups_mut().iter_mut().zip(last) {
            g.hyper.lr = lr; // the optimizer's state dict would bring the groups' LRs back
        }
        for (k, lrs) in case.get("lrs").and_then(Value::items).unwrap().iter().enumerate() {
            step(&mut resumed, &mut opt, metrics, steps + k);
            for (g, want) in opt.groups().iter().zip(lrs.items().unwrap()) {
                let want = want.as_f64().unwrap();
                assert!(
                    (g.hyper.lr - want).abs() <= 1e-12 * want.abs(),
                    "{name}: step {} after loading: lr {}, torch's {want}",
                    steps + k + 1,
                    g.hyper.lr
                );
            }
        }
        // a state dict of another scheduler is refused, changing nothing
        let before = resumed.state_dict();
        assert!(resumed.load_state_dict(&Value::dict([("last_epoch", Value::Int(3))])).is_err(), "{name}");
        assert_eq!(resumed.state_dict(), before, "{name}: a refused state dict changes nothing");
    }
}
