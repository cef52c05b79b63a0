//! Fits a line to noisy points with ferroptim's Adam, in pure Rust.
//!
//! Run with `cargo run --release --example fit_line`.

use ferroptim::{Adam, AdamHyper};

fn main() {
    // 200 points on y = 3x − 2, with deterministic noise in [-0.1, 0.1).
    let mut seed = 42u64;
    let mut noise = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2
    };
    let xs: Vec<f64> = (0..200).map(|i| i as f64 / 100.0 - 1.0).collect();
    let ys: Vec<f64> = xs.iter().map(|x| 3.0 * x - 2.0 + noise()).collect();

    // Two parameters, each its own slice: the slope and the intercept.
    let mut slope = vec![0.0f64];
    let mut intercept = vec![0.0f64];
    let mut opt = Adam::new(AdamHyper { lr: 0.05, ..AdamHyper::adam() }).expect("valid hyperparameters");

    for step in 1..=500 {
        // Gradients of the mean squared error.
        let n = xs.len() as f64;
        let (mut g_slope, mut g_intercept, mut loss) = (0.0, 0.0, 0.0);
        for (x, y) in xs.iter().zip(&ys) {
            let r = slope[0] * x + intercept[0] - y;
            loss += r * r / n;
            g_slope += 2.0 * r * x / n;
            g_intercept += 2.0 * r / n;
        }
        opt.step(&mut [&mut slope, &mut intercept], &[&[g_slope], &[g_intercept]]).expect("one gradient per parameter");
        if step % 100 == 0 {
            println!("step {step:4}  loss {loss:.5}  y = {:.3}x + {:.3}", slope[0], intercept[0]);
        }
    }
    assert!((slope[0] - 3.0).abs() < 0.05 && (intercept[0] + 2.0).abs() < 0.05);
    println!("fitted y = {:.3}x + {:.3} (true: y = 3x − 2)", slope[0], intercept[0]);
}
