//! The recorded trajectories of the optimizers beyond torch.optim
//! (`tests/reference/beyond/`: timm's Lion, Lamb, Lars, Adan and Adopt,
//! pytorch-optimizer's AdEMAMix, schedulefree's three, prodigyopt's Prodigy)
//! replayed through the crate's `Optimizer` (see `common`), their state and param
//! groups compared in the implementations' own layout; the Schedule-Free cases step
//! in train mode and end with `eval()`, compared with the recording's `eval/<i>`.

mod common;

use std::fs::File;

use common::{cases, close, read, replay, Hooks, Plain};
use ferroptim::optim::beyond::ScheduleFree;
use ferroptim::{
    AdanHyper, AdemamixHyper, AdoptHyper, Element, LambHyper, LarsHyper, LionHyper, ProdigyHyper, ScheduleFreeHyper,
};
use ndarray_npy::NpzReader;

/// Schedule-Free: `train()` before the first step, `eval()` at the end.
struct TrainThenEval;

impl<T: Element> Hooks<ScheduleFreeHyper, T> for TrainThenEval {
    fn start(&self, opt: &mut ScheduleFree<T>, params: &mut [&mut [T]]) {
        opt.train(params).unwrap();
    }

    fn finish(&self, opt: &mut ScheduleFree<T>, params: &mut [&mut [T]], npz: &mut NpzReader<File>, order: &[usize]) {
        opt.eval(params).unwrap();
        let tol = if std::mem::size_of::<T>() == 4 { 2e-5 } else { 1e-9 };
        for (p, &i) in params.iter().zip(order) {
            let want = read(npz, &format!("eval/{i}"));
            for (j, (got, want)) in p.iter().zip(want.iter()).enumerate() {
                let got = got.to_f64().unwrap();
                assert!(close(got, *want, tol), "param {i}[{j}] after eval(): {got:e}, recorded {want:e}");
            }
        }
        assert!(opt.step(params, &vec![&[][..]; params.len()]).is_err(), "no step in eval mode");
    }
}

#[test]
fn every_case_beyond_torch_replays_through_the_optimizer() {
    let mut replayed = 0;
    for case in &cases("beyond") {
        let f32_ = case["dtype"] == "float32";
        macro_rules! run {
            ($base:expr, $hooks:expr) => {{
                if f32_ {
                    replay::<_, f32>("beyond", case, $base, $hooks)
                } else {
                    replay::<_, f64>("beyond", case, $base, $hooks)
                }
                replayed += 1;
            }};
        }
        match case["optimizer"].as_str().unwrap() {
            "Lion" => run!(LionHyper::timm(), &Plain),
            "LARS" => run!(LarsHyper::timm(), &Plain),
            "ADOPT" => run!(AdoptHyper::timm(), &Plain),
            "Adan" => run!(AdanHyper::timm(), &Plain),
            "AdEMAMix" => run!(AdemamixHyper::pytorch_optimizer(), &Plain),
            "LAMB" => run!(LambHyper::timm(), &Plain),
            "ScheduleFreeSGD" => run!(ScheduleFreeHyper::sgd(), &TrainThenEval),
            "ScheduleFreeAdamW" => run!(ScheduleFreeHyper::adamw(), &TrainThenEval),
            "ScheduleFreeRAdam" => run!(ScheduleFreeHyper::radam(), &TrainThenEval),
            "Prodigy" => run!(ProdigyHyper::prodigyopt(), &Plain),
            other => panic!("a case of {other}"),
        }
    }
    assert_eq!(replayed, 82, "every case beyond torch");
}
