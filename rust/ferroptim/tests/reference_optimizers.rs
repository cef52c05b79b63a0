//! torch 2.15's recorded trajectories (`tests/reference/torch-2.15/`, see its
//! README) replayed through the crate's `Optimizer` (see `common`): every case of
//! the rules it holds.

mod common;

use common::{cases, replay, Hooks, Plain};
use ferroptim::{
    AdadeltaHyper, AdafactorHyper, AdagradHyper, AdamHyper, AdamaxHyper, AsgdHyper, Element, MuonHyper, NadamHyper,
    RadamHyper, RmspropHyper, RpropHyper, SgdHyper,
};

/// Muon: torch orthogonalizes in bfloat16, so the contract (issue 11, as the Python
/// replay's `MUON_RTOL`) is 1e-2 relative at every step.
struct Bf16;

impl<T: Element> Hooks<MuonHyper, T> for Bf16 {
    fn tolerance(&self, _recorded: f64) -> f64 {
        1e-2
    }
}

#[test]
fn every_case_replays_through_the_optimizer() {
    let mut replayed = 0;
    for case in &cases("torch-2.15") {
        let f32_ = case["dtype"] == "float32";
        macro_rules! run {
            ($base:expr) => {
                run!($base, &Plain)
            };
            ($base:expr, $hooks:expr) => {{
                if f32_ {
                    replay::<_, f32>("torch-2.15", case, $base, $hooks)
                } else {
                    replay::<_, f64>("torch-2.15", case, $base, $hooks)
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
            "Adafactor" => run!(AdafactorHyper::default()),
            "Muon" => run!(MuonHyper::default(), &Bf16),
            _ => {}
        }
    }
    assert_eq!(replayed, 179, "every case but L-BFGS's");
}
