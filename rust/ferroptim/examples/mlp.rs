//! Trains a small multilayer perceptron in pure Rust: two interleaved half-moons,
//! classified by a 2-32-32-1 network (tanh, then a logistic output) with ferroptim's
//! AdamW and a cosine learning-rate schedule with linear warm-up.
//!
//! Run with `cargo run --release --example mlp`.

use ferroptim::lr_scheduler::{CosineAnnealingLr, LinearLr, LrScheduler, Schedule, SequentialLr};
use ferroptim::{Adam, AdamHyper};

/// A deterministic generator of uniform numbers in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// `n` points of two interleaved half-moons, with noise: (x, y, label).
fn moons(n: usize, rng: &mut Lcg) -> Vec<([f32; 2], f32)> {
    (0..n)
        .map(|i| {
            let t = std::f32::consts::PI * rng.next();
            let noise = [0.1 * (rng.next() - 0.5), 0.1 * (rng.next() - 0.5)];
            if i % 2 == 0 {
                ([t.cos() + noise[0], t.sin() + noise[1]], 0.0)
            } else {
                ([1.0 - t.cos() + noise[0], 0.5 - t.sin() + noise[1]], 1.0)
            }
        })
        .collect()
}

/// A dense layer `y = W x + b`, `W` of `outputs × inputs` in row-major order.
struct Dense {
    inputs: usize,
    outputs: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Dense {
    fn new(inputs: usize, outputs: usize, rng: &mut Lcg) -> Self {
        let scale = (6.0 / (inputs + outputs) as f32).sqrt(); // Glorot
        let w = (0..inputs * outputs).map(|_| scale * (2.0 * rng.next() - 1.0)).collect();
        Dense { inputs, outputs, w, b: vec![0.0; outputs] }
    }

    fn forward(&self, x: &[f32]) -> Vec<f32> {
        (0..self.outputs)
            .map(|o| {
                self.b[o] + self.w[o * self.inputs..][..self.inputs].iter().zip(x).map(|(w, x)| w * x).sum::<f32>()
            })
            .collect()
    }

    /// Adds the gradients of `dy` at input `x` to `gw`, `gb`; returns the input's gradient.
    fn backward(&self, x: &[f32], dy: &[f32], gw: &mut [f32], gb: &mut [f32]) -> Vec<f32> {
        let mut dx = vec![0.0; self.inputs];
        for o in 0..self.outputs {
            gb[o] += dy[o];
            for i in 0..self.inputs {
                gw[o * self.inputs + i] += dy[o] * x[i];
                dx[i] += dy[o] * self.w[o * self.inputs + i];
            }
        }
        dx
    }
}

fn main() {
    let mut rng = Lcg(7);
    let train = moons(400, &mut rng);
    let test = moons(400, &mut rng);
    let mut layers = [Dense::new(2, 32, &mut rng), Dense::new(32, 32, &mut rng), Dense::new(32, 1, &mut rng)];

    // The probability of label 1 at `x`, with each layer's input and output.
    let forward = |layers: &[Dense; 3], x: &[f32; 2]| {
        let mut acts = vec![x.to_vec()];
        for (k, layer) in layers.iter().enumerate() {
            let z = layer.forward(acts.last().expect("the input"));
            acts.push(if k < 2 { z.iter().map(|z| z.tanh()).collect() } else { z });
        }
        let p = 1.0 / (1.0 + (-acts[3][0]).exp());
        (p, acts)
    };
    let accuracy = |layers: &[Dense; 3], data: &[([f32; 2], f32)]| {
        data.iter().filter(|(x, y)| (forward(layers, x).0 > 0.5) == (*y > 0.5)).count() as f32 / data.len() as f32
    };

    let epochs = 300;
    let mut opt = Adam::new(AdamHyper { lr: 0.02, ..AdamHyper::adamw() }).expect("valid hyperparameters");
    // 20 epochs of linear warm-up, then a cosine down to 1e-4
    let warmup = Schedule::new(LinearLr { start_factor: 0.05, end_factor: 1.0, total_iters: 20 }, &mut opt, -1);
    let cosine = Schedule::new(CosineAnnealingLr { t_max: epochs - 20, eta_min: 1e-4 }, &mut opt, -1);
    let mut sched = SequentialLr::new(
        &mut opt,
        vec![Box::new(warmup.expect("valid schedule")), Box::new(cosine.expect("valid schedule"))],
        vec![20],
        -1,
    )
    .expect("one milestone for two schedules");

    for epoch in 1..=epochs {
        // full-batch binary cross-entropy and its gradients
        let mut grads: Vec<(Vec<f32>, Vec<f32>)> =
            layers.iter().map(|l| (vec![0.0; l.w.len()], vec![0.0; l.b.len()])).collect();
        let mut loss = 0.0;
        let n = train.len() as f32;
        for (x, y) in &train {
            let (p, acts) = forward(&layers, x);
            loss -= (y * p.max(1e-7).ln() + (1.0 - y) * (1.0 - p).max(1e-7).ln()) / n;
            let mut dy = vec![(p - y) / n];
            for k in (0..3).rev() {
                let (gw, gb) = &mut grads[k];
                let dx = layers[k].backward(&acts[k], &dy, gw, gb);
                // through the tanh of the layer below
                dy = dx.iter().zip(&acts[k]).map(|(d, a)| d * (1.0 - a * a)).collect();
            }
        }
        let [l0, l1, l2] = &mut layers;
        let mut params = [&mut l0.w[..], &mut l0.b[..], &mut l1.w[..], &mut l1.b[..], &mut l2.w[..], &mut l2.b[..]];
        let g: Vec<&[f32]> = grads.iter().flat_map(|(w, b)| [&w[..], &b[..]]).collect();
        opt.step(&mut params, &g).expect("one gradient per parameter");
        sched.step(&mut opt);
        if epoch % 50 == 0 {
            println!(
                "epoch {epoch:3}  lr {:.5}  loss {loss:.4}  train accuracy {:.3}",
                opt.groups()[0].hyper.lr,
                accuracy(&layers, &train)
            );
        }
    }
    let acc = accuracy(&layers, &test);
    println!("test accuracy {acc:.3}");
    assert!(acc > 0.95, "the network separates the moons: {acc}");
}
