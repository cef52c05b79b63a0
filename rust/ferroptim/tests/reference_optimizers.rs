//! torch 2.15's recorded trajectories (`tests/reference/torch-2.15/`, see its
//! README) replayed through the crate's `Optimizer` (see `common`): every case of
//! the rules it holds.

mod common;

use common::{cases, replay, Plain};
use ferroptim::{
    AdadeltaHyper, AdagradHyper, AdamHyper, AdamaxHyper, AsgdHyper, NadamHyper, RadamHyper, RmspropHyper, RpropHyper,
    SgdHyper,
};

#[test]
fn every_elementwise_case_replays_through_the_optimizer() {
    let mut replayed = 0;
    for case in &cases("torch-2.15") {
        let f32_ = case["dtype"] == "float32";
        macro_rules! run {
            ($base:expr) => {{
                if f32_ {
                    replay::<_, f32>("torch-2.15", case, $base, &Plain)
                } else {
                    replay::<_, f64>("torch-2.15", case, $base, &Plain)
                }
                replayed += 1;
            }};
        }
        match case["optimizer"].as_str().unwrap() {
            "SGD" => run!(SgdHyper::default()),
            "Adam" => run!(AdamHyper::adam()),
            "AdamW" => run!(AdamHyper::adamw()),
            "Adamax" => run!(AdamaxHyper::default()),
            "NAdam" => run!(NadamHyper::default()),
            "RAdam" => run!(RadamHyper::default()),
            "Adagrad" => run!(AdagradHyper::default()),
            "Adadelta" => run!(AdadeltaHyper::default()),
            "RMSprop" => run!(RmspropHyper::default()),
            "Rprop" => run!(RpropHyper::default()),
            "ASGD" => run!(AsgdHyper::default()),
            _ => {}
        }
    }
    assert_eq!(replayed, 151, "every case of the elementwise rules");
}
