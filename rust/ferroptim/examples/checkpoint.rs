//! Checkpoints in pure Rust, in the Python package's format.
//!
//! `cargo run --example checkpoint` trains with AdamW in two param groups, saves the
//! optimizer's state dict beside the epoch (as `fo.save({"optimizer":
//! opt.state_dict(), "epoch": epoch}, path)` does), loads it into a new optimizer and
//! checks that training resumes exactly where it stopped.
//!
//! `cargo run --example checkpoint -- IN OUT` continues a Python program's AdamW
//! training with a cosine schedule (`tests/test_rust_checkpoint.py` runs it): IN,
//! written by `fo.save`, holds `{"optimizer": state_dict, "scheduler": state_dict of a
//! CosineAnnealingLR, "params": [arrays], "grads": [[arrays] per step]}`; the program
//! loads both state dicts, takes the steps (each an optimizer step, then a scheduler
//! step) and writes `{"optimizer": ..., "scheduler": ..., "params": [arrays]}` to OUT,
//! for Python to load.

use ferroptim::lr_scheduler::{CosineAnnealingLr, LrScheduler, Schedule};
use ferroptim::state_dict::{load, save, Array, Value};
use ferroptim::{Adam, AdamHyper};

/// The arrays of a list, as float32 elements and shapes.
fn arrays(v: &Value) -> Vec<(Vec<f32>, Vec<usize>)> {
    let items = v.items().expect("a list of arrays");
    items
        .iter()
        .map(|a| match a {
            Value::Array(a) => (a.to_vec().expect("float arrays"), a.shape.clone()),
            other => panic!("an array, not a {}", other.type_name()),
        })
        .collect()
}

/// An AdamW optimizer with the param groups of a state dict (sizes only: loading it
/// sets their hyperparameters).
fn optimizer_for(sd: &Value) -> Adam<f32> {
    let groups = sd.get("param_groups").and_then(Value::items).expect("param groups");
    let size = |g: &Value| g.get("params").and_then(Value::items).expect("params").len();
    let mut opt = Adam::with_params(AdamHyper::adamw(), size(&groups[0])).expect("valid hyperparameters");
    for g in &groups[1..] {
        opt.add_param_group(AdamHyper::adamw(), size(g)).expect("valid hyperparameters");
    }
    opt
}

fn step(opt: &mut Adam<f32>, params: &mut [Vec<f32>], grads: &[Vec<f32>]) {
    let mut p: Vec<&mut [f32]> = params.iter_mut().map(|p| &mut p[..]).collect();
    let g: Vec<&[f32]> = grads.iter().map(|g| &g[..]).collect();
    opt.step(&mut p, &g).expect("one gradient per parameter");
}

/// Continues the Python program's training (see the module docs).
fn continue_python(input: &str, output: &str) {
    let ckpt = load(input).expect("a checkpoint");
    let sd = ckpt.get("optimizer").expect("an optimizer state dict");
    let sched_sd = ckpt.get("scheduler").expect("a scheduler state dict");
    // as in torch: build the optimizer and the scheduler, then load both
    let mut opt = optimizer_for(sd);
    let (Some(Value::Int(t_max)), Some(eta_min)) = (sched_sd.get("T_max"), sched_sd.get("eta_min")) else {
        panic!("a CosineAnnealingLR's state dict");
    };
    let cosine = CosineAnnealingLr { t_max: *t_max, eta_min: eta_min.as_f64().expect("a number") };
    let mut sched = Schedule::new(cosine, &mut opt, -1).expect("a valid schedule");
    opt.load_state_dict(sd).expect("a state dict of AdamW");
    sched.load_state_dict(sched_sd).expect("a state dict of CosineAnnealingLR");
    let (mut params, shapes): (Vec<Vec<f32>>, Vec<Vec<usize>>) =
        arrays(ckpt.get("params").expect("params")).into_iter().unzip();
    for grads in ckpt.get("grads").and_then(Value::items).expect("grads") {
        let grads: Vec<Vec<f32>> = arrays(grads).into_iter().map(|(g, _)| g).collect();
        step(&mut opt, &mut params, &grads);
        sched.step(&mut opt);
    }
    let params = params.iter().zip(shapes).map(|(p, s)| Value::Array(Array::of(s, p))).collect();
    let out = [("optimizer", opt.state_dict()), ("scheduler", sched.state_dict()), ("params", Value::List(params))];
    save(&Value::dict(out), output).expect("a writable path");
}

/// Trains, saves, loads into a new optimizer and resumes (see the module docs).
fn demo() {
    let grad = |t: usize, n: usize| (0..n).map(|i| ((i + 3 * t) % 7) as f32 * 0.1 - 0.3).collect::<Vec<f32>>();
    let mut opt = Adam::with_params(AdamHyper { lr: 0.01, ..AdamHyper::adamw() }, 1).expect("valid");
    opt.add_param_group(AdamHyper { lr: 0.01, weight_decay: 0.0, ..AdamHyper::adamw() }, 1).expect("valid");
    let mut params = vec![vec![0.5f32; 8], vec![0.0f32; 2]];
    for t in 0..10 {
        step(&mut opt, &mut params, &[grad(t, 8), grad(t, 2)]);
    }
    let path = std::env::temp_dir().join(format!("ferroptim-example-{}.fo", std::process::id()));
    save(&Value::dict([("optimizer", opt.state_dict()), ("epoch", Value::Int(10))]), &path).expect("writable");

    let ckpt = load(&path).expect("the checkpoint just written");
    std::fs::remove_file(&path).expect("removable");
    let mut resumed = optimizer_for(ckpt.get("optimizer").expect("saved"));
    resumed.load_state_dict(ckpt.get("optimizer").expect("saved")).expect("its own state dict");
    let Some(Value::Int(epoch)) = ckpt.get("epoch") else { panic!("an epoch") };
    let mut copy = params.clone();
    for t in *epoch as usize..20 {
        step(&mut opt, &mut params, &[grad(t, 8), grad(t, 2)]);
        step(&mut resumed, &mut copy, &[grad(t, 8), grad(t, 2)]);
    }
    assert_eq!(params, copy, "the resumed optimizer steps as the original");
    println!("resumed from epoch {epoch}: the same parameters after epoch 20 ({:?}...)", &params[0][..2]);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [input, output] => continue_python(input, output),
        [] => demo(),
        _ => panic!("usage: checkpoint [IN OUT]"),
    }
}
