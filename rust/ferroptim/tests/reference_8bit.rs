//! bitsandbytes 0.50.2's recorded 8-bit steps (`tests/reference/bnb-8bit/`)
//! replayed through the crate's `Optimizer` (`optim::eight_bit`), to the contract
//! of the Python replay (`tests/test_reference_8bit.py`): after every step all but
//! 0.5% of the parameter elements within 2e-5 relative of bitsandbytes (a value on
//! a boundary between two codes takes the other after a last-bit difference); at
//! the end, through `state_dict()`, every state entry of bitsandbytes' with its dtype
//! and shape, at least 99.5% of the uint8 codes identical, absmax to 1e-5 relative,
//! the maps and the step counts identical.

mod common;

use common::{arrays, cases, read, value};
use ferroptim::checkpoint::Dtype;
use ferroptim::optim::eight_bit::{EightBit, EightBitOptimizer};
use ferroptim::state_dict::Value;
use ferroptim::{EightBitHyper, EightBitRule, Optimizer, TorchLayout};
use serde_json::Value as Json;

const RTOL: f64 = 2e-5;
const ABSMAX_RTOL: f64 = 1e-5;
const SLACK: f64 = 0.005;

/// A case's optimizer: bitsandbytes' class and keyword arguments, read as the Python
/// package's param group (SGD8bit's `momentum` and RMSprop8bit's `alpha` go to
/// `betas`), `min_8bit_size` 1 unless given (as recorded).
fn optimizer(case: &Json) -> EightBitOptimizer<f32> {
    let kwargs = case["kwargs"].as_object().unwrap();
    let get = |k: &str| kwargs.get(k).and_then(Json::as_f64);
    let hyper = match case["optimizer"].as_str().unwrap() {
        "Adam8bit" => EightBitHyper::adam(),
        "AdamW8bit" => EightBitHyper::adamw(),
        "Lion8bit" => EightBitHyper::lion(),
        "SGD8bit" => EightBitHyper::sgd(get("lr").unwrap(), get("momentum").unwrap()),
        "RMSprop8bit" => EightBitHyper { betas: (get("alpha").unwrap_or(0.99), 0.0), ..EightBitHyper::rmsprop() },
        "Adagrad8bit" => EightBitHyper::adagrad(),
        "AdEMAMix8bit" => EightBitHyper::ademamix(),
        other => panic!("a case of {other}"),
    };
    let min_8bit_size = kwargs.get("min_8bit_size").and_then(Json::as_u64).unwrap_or(1) as usize;
    // the arguments read above: SGD8bit's momentum, RMSprop8bit's alpha, min_8bit_size
    let read =
        |k: &str| k == "momentum" || k == "min_8bit_size" || (k == "alpha" && hyper.rule == EightBitRule::Rmsprop);
    let entries: Vec<(String, Value)> =
        kwargs.iter().filter(|(k, _)| !read(k)).map(|(k, v)| (k.clone(), value(v))).collect();
    let group = Value::Dict(entries.into_iter().map(|(k, v)| (Value::Str(k), v)).collect());
    let rule = EightBit { hyper, min_8bit_size }.with_group_entries(&group).unwrap();
    Optimizer::new(rule).unwrap()
}

fn close(got: f64, want: f64, rtol: f64) -> bool {
    (got - want).abs() <= rtol * want.abs() + 1e-30
}

#[test]
fn every_8bit_case_replays_through_the_optimizer() {
    let mut replayed = 0;
    for case in &cases("bnb-8bit") {
        let id = case["id"].as_str().unwrap();
        let mut npz = arrays("bnb-8bit", case);
        let shapes: Vec<Vec<usize>> = serde_json::from_value(case["shapes"].clone()).unwrap();
        let mut opt = optimizer(case);
        for (i, s) in shapes.iter().enumerate() {
            opt.set_shape(i, s);
        }
        let mut params: Vec<Vec<f32>> = (0..shapes.len())
            .map(|i| read(&mut npz, &format!("init/{i}")).iter().map(|&v| v as f32).collect())
            .collect();
        for t in 0..case["steps"].as_u64().unwrap() as usize {
            let grads: Vec<Vec<f32>> = (0..shapes.len())
                .map(|i| read(&mut npz, &format!("grad/{t}/{i}")).iter().map(|&v| v as f32).collect())
                .collect();
            let mut p: Vec<&mut [f32]> = params.iter_mut().map(|p| &mut p[..]).collect();
            opt.step(&mut p, &grads.iter().map(|g| &g[..]).collect::<Vec<_>>()).unwrap();
            for (i, p) in params.iter().enumerate() {
                let traj = read(&mut npz, &format!("traj/{i}"));
                let row = traj.index_axis(ndarray::Axis(0), t + 1);
                let off = p.iter().zip(row.iter()).filter(|(g, w)| !close(**g as f64, **w, RTOL)).count();
                assert!(off as f64 <= SLACK * p.len() as f64, "{id}: step {}, param {i}: {off} differ", t + 1);
            }
        }
        let sd = opt.state_dict();
        let Some(Value::Dict(states)) = sd.get("state") else { panic!("{id}: a state dict") };
        let (mut same, mut codes) = (0, 0);
        for (i, want) in case["state"].as_object().unwrap() {
            let key = Value::Int(i.parse().unwrap());
            let st = &states.iter().find(|(k, _)| *k == key).unwrap_or_else(|| panic!("{id}: no state {i}")).1;
            let Value::Dict(entries) = st else { panic!("{id}: a dict") };
            let mut names: Vec<&str> =
                entries.iter().map(|(k, _)| if let Value::Str(k) = k { &k[..] } else { "?" }).collect();
            let mut torch: Vec<&str> = want.as_object().unwrap().keys().map(|k| &k[..]).collect();
            names.sort_unstable();
            torch.sort_unstable();
            assert_eq!(names, torch, "{id}: the state of param {i}");
            for (name, meta) in want.as_object().unwrap() {
                let got = st.get(name).unwrap();
                if let Some(v) = meta.get("value") {
                    assert_eq!(got, &Value::Int(v.as_i64().unwrap()), "{id}: {name} of param {i}");
                    continue;
                }
                let Value::Array(a) = got else { panic!("{id}: {name} of param {i} is {got:?}") };
                let shape: Vec<usize> = serde_json::from_value(meta["shape"].clone()).unwrap();
                let dtype = if meta["dtype"] == "uint8" { Dtype::U8 } else { Dtype::F32 };
                assert_eq!((a.dtype, &a.shape), (dtype, &shape), "{id}: {name} of param {i}");
                let torch = read(&mut npz, &format!("state/{i}/{name}"));
                if dtype == Dtype::U8 {
                    same += a.data.iter().zip(torch.iter()).filter(|(g, w)| **g as f64 == **w).count();
                    codes += a.data.len();
                    continue;
                }
                let got: Vec<f64> = a.to_vec().unwrap();
                let pairs = got.iter().zip(torch.iter());
                if name.starts_with("absmax") {
                    assert!(pairs.clone().all(|(g, w)| close(*g, *w, ABSMAX_RTOL)), "{id}: {name} of param {i}");
                } else if name.starts_with("qmap") {
                    assert!(pairs.clone().all(|(g, w)| g == w), "{id}: {name} of param {i}");
                } else {
                    let off = pairs.filter(|(g, w)| !close(**g, **w, RTOL)).count();
                    assert!(off as f64 <= SLACK * got.len() as f64, "{id}: {name} of param {i}: {off} differ");
                }
            }
        }
        assert!(same as f64 >= (1.0 - SLACK) * codes as f64, "{id}: {same} of {codes} codes identical");
        replayed += 1;
    }
    assert_eq!(replayed, 13, "every 8-bit case");
}
