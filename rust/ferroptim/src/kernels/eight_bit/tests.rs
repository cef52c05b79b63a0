//! The fused kernel against bitsandbytes' CPU path written as it is: dequantize the
//! whole buffer, torch's operations one tensor at a time, requantize the whole buffer.

use super::*;
use crate::kernels::blockwise::{SIGNED, UNSIGNED};
use crate::kernels::testing::{assert_same_bits, ops, Rng, LENGTHS, THREADS};
use crate::threads::{set_num_threads, tests::THREADS_LOCK};

/// bitsandbytes' `dequantize_blockwise`: `code[A[i]] * absmax[i / 256]`.
fn dequantize(map: &[f32; 256], codes: &[u8], absmax: &[f32]) -> Vec<f32> {
    codes.iter().enumerate().map(|(i, &c)| map[c as usize] * absmax[i / BLOCK]).collect()
}

/// bitsandbytes' `quantize_blockwise`, its nearest entry found by a search over the
/// midpoints (not through the table the kernel uses).
fn quantize(map: &[f32; 256], x: &[f32], codes: &mut [u8], absmax: &mut [f32]) {
    for (b, block) in x.chunks(BLOCK).enumerate() {
        let am = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        absmax[b] = am;
        for (i, &v) in block.iter().enumerate() {
            codes[b * BLOCK + i] = if am == 0.0 {
                0
            } else {
                let y = (v * (1.0 / am)).clamp(-1.0, 1.0);
                let bin = ((y + 1.0) * 0.5 * 65535.0 + 0.5) as u16;
                let centre = -1.0f32 + (2.0 * bin as f32) / 65535.0;
                (0..255).filter(|&k| 0.5 * (map[k] + map[k + 1]) < centre).count() as u8
            };
        }
    }
}

/// One state buffer of the reference: 8-bit (codes, absmax) or float32.
#[derive(Clone)]
enum Buf {
    Q { map: &'static [f32; 256], rows: usize, codes: Vec<u8>, absmax: Vec<f32> },
    F(Vec<f32>),
}

impl Buf {
    /// `rows` buffers of `n` elements one after the other (AdEMAMix's state1: 2).
    fn new(blockwise: bool, map: &'static [f32; 256], rows: usize, n: usize) -> Self {
        if blockwise {
            Buf::Q { map, rows, codes: vec![0; rows * n], absmax: vec![0.0; rows * blocks(n)] }
        } else {
            Buf::F(vec![0.0; rows * n])
        }
    }
    fn get(&self) -> Vec<f32> {
        match self {
            Buf::Q { map, rows, codes, absmax } => {
                let (n, nb) = (codes.len() / rows, absmax.len() / rows);
                (0..*rows).flat_map(|r| dequantize(map, &codes[r * n..][..n], &absmax[r * nb..][..nb])).collect()
            }
            Buf::F(v) => v.clone(),
        }
    }
    fn set(&mut self, x: &[f32]) {
        match self {
            Buf::Q { map, rows, codes, absmax } => {
                // each row quantized on its own, with its own absmax row
                let (n, nb) = (codes.len() / *rows, absmax.len() / *rows);
                for r in 0..*rows {
                    quantize(map, &x[r * n..][..n], &mut codes[r * n..][..n], &mut absmax[r * nb..][..nb]);
                }
            }
            Buf::F(v) => v.copy_from_slice(x),
        }
    }
}

/// `_optimizer_update_8bit_blockwise_cpu` (blockwise) / `_optimizer_update_32bit_cpu`.
fn reference(h: &EightBitHyper, step: f64, p: &mut [f32], g: &[f32], bufs: &mut [Buf]) {
    let blockwise = matches!(bufs[0], Buf::Q { .. });
    let (beta1, beta2) = h.betas;
    let c1 = 1.0 - beta1.powf(step);
    let c2 = (1.0 - beta2.powf(step)).sqrt();
    let (lr, wd) = (h.lr, h.weight_decay);
    let mut grad = g.to_vec();
    let mut s: Vec<Vec<f32>> = bufs.iter().map(Buf::get).collect();
    let decay = |p: &mut [f32]| {
        if wd > 0.0 {
            ops::mul(p, 1.0 - lr * wd);
        }
    };
    match h.rule {
        EightBitRule::Adam => {
            let (m, v) = s.split_at_mut(1);
            let (m, v) = (&mut m[0], &mut v[0]);
            ops::mul(m, beta1);
            ops::add_scaled(m, &grad, 1.0 - beta1);
            ops::mul(v, beta2);
            ops::addcmul(v, &grad, &grad, 1.0 - beta2);
            decay(p);
            if blockwise {
                let mut denom = ops::sqrt(v);
                ops::div(&mut denom, c2);
                ops::add(&mut denom, h.eps);
                ops::addcdiv(p, m, &denom, -lr / c1);
            } else {
                let mut denom = ops::sqrt(v);
                ops::add(&mut denom, h.eps * c2);
                let mut update = m.clone();
                ops::div_elementwise(&mut update, &denom);
                ops::add_scaled(p, &update, -lr * c2 / c1);
            }
        }
        EightBitRule::Ademamix => {
            let n = p.len();
            let (s1, v) = s.split_at_mut(1);
            let (m1, m2) = s1[0].split_at_mut(n);
            let v = &mut v[0];
            // bitsandbytes' schedules of α and β₃ (in Python floats), when either is set
            let (mut alpha, mut beta3) = (h.alpha, h.beta3);
            if h.t_alpha.is_some() || h.t_beta3.is_some() {
                if let Some(ta) = h.t_alpha {
                    alpha = (step * h.alpha / ta).min(h.alpha);
                }
                if let Some(tb) = h.t_beta3 {
                    let (ln1, ln3) = (beta1.ln(), h.beta3.ln());
                    let scale = step / tb;
                    beta3 = ((ln1 * ln3) / ((1.0 - scale) * ln3 + scale * ln1)).exp().min(h.beta3);
                }
            }
            ops::mul(m1, beta1);
            ops::add_scaled(m1, &grad, 1.0 - beta1);
            ops::mul(m2, beta3);
            ops::add_scaled(m2, &grad, 1.0 - beta3);
            ops::mul(v, beta2);
            ops::addcmul(v, &grad, &grad, 1.0 - beta2);
            let mut update: Vec<f32> = m1.to_vec();
            ops::div(&mut update, c1);
            let alpha = alpha as f32;
            update.iter_mut().zip(m2.iter()).for_each(|(u, &x)| *u += alpha * x);
            let mut denom = ops::sqrt(v);
            ops::div(&mut denom, c2);
            ops::add(&mut denom, h.eps);
            ops::div_elementwise(&mut update, &denom);
            decay(p);
            ops::add_scaled(p, &update, -lr);
        }
        EightBitRule::Momentum => {
            if blockwise || wd > 0.0 {
                ops::add_scaled(&mut grad, p, wd);
            }
            if step == 1.0 {
                s[0].copy_from_slice(&grad);
            } else {
                ops::mul(&mut s[0], beta1);
                ops::add_scaled(&mut s[0], &grad, 1.0);
            }
            ops::add_scaled(p, &s[0], -lr);
        }
        EightBitRule::Lion => {
            decay(p);
            let mut u = s[0].clone();
            ops::mul(&mut u, beta1);
            if blockwise {
                let mut gs = grad.clone();
                ops::mul(&mut gs, 1.0 - beta1);
                u.iter_mut().zip(&gs).for_each(|(a, &b)| *a += b);
            } else {
                ops::add_scaled(&mut u, &grad, 1.0 - beta1);
            }
            ops::sign(&mut u);
            ops::add_scaled(p, &u, -lr);
            ops::mul(&mut s[0], beta2);
            ops::add_scaled(&mut s[0], &grad, 1.0 - beta2);
        }
        EightBitRule::Rmsprop | EightBitRule::Adagrad => {
            if blockwise || wd > 0.0 {
                ops::add_scaled(&mut grad, p, wd);
            }
            if h.rule == EightBitRule::Rmsprop {
                ops::mul(&mut s[0], beta1);
                ops::addcmul(&mut s[0], &grad, &grad, 1.0 - beta1);
            } else {
                ops::addcmul(&mut s[0], &grad, &grad, 1.0);
            }
            let mut denom = ops::sqrt(&s[0]);
            ops::add(&mut denom, h.eps);
            if blockwise {
                ops::addcdiv(p, &grad, &denom, -lr);
            } else {
                ops::div_elementwise(&mut grad, &denom);
                ops::add_scaled(p, &grad, -lr);
            }
        }
    }
    for (b, x) in bufs.iter_mut().zip(&s) {
        b.set(x);
    }
}

fn configs() -> Vec<EightBitHyper> {
    let base = EightBitHyper::adam();
    vec![
        base,
        EightBitHyper { lr: 0.01, betas: (0.8, 0.99), weight_decay: 0.1, ..base },
        EightBitHyper { rule: EightBitRule::Ademamix, beta3: 0.9999, alpha: 5.0, weight_decay: 0.01, ..base },
        EightBitHyper {
            rule: EightBitRule::Ademamix,
            lr: 0.01,
            beta3: 0.999,
            alpha: 3.0,
            t_alpha: Some(3.0),
            t_beta3: Some(3.0),
            ..base
        },
        EightBitHyper { rule: EightBitRule::Momentum, lr: 0.05, betas: (0.9, 0.0), eps: 0.0, ..base },
        EightBitHyper { rule: EightBitRule::Momentum, lr: 0.05, betas: (0.8, 0.0), weight_decay: 0.01, ..base },
        EightBitHyper { rule: EightBitRule::Lion, lr: 1e-4, betas: (0.9, 0.99), eps: 0.0, ..base },
        EightBitHyper { rule: EightBitRule::Lion, lr: 1e-3, betas: (0.9, 0.99), weight_decay: 0.1, ..base },
        EightBitHyper { rule: EightBitRule::Rmsprop, lr: 1e-2, betas: (0.99, 0.0), weight_decay: 0.1, ..base },
        EightBitHyper { rule: EightBitRule::Adagrad, lr: 1e-2, betas: (0.0, 0.0), eps: 1e-10, ..base },
    ]
}

/// Every rule, 8-bit and float32 state, at every length (blocks cut short, a block
/// of zeros: the long tensor's second block never sees a gradient, and without weight
/// decay its state stays zero), 1 and 3 threads,
/// five steps: parameters, codes and absmax equal the reference's bit for bit.
#[test]
fn matches_the_reference_bit_for_bit() {
    let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for h in configs() {
        for blockwise in [true, false] {
            check(&h, blockwise);
        }
    }
}

/// Each thread count steps its own copy of the same tensors with the same gradients,
/// against one reference trajectory.
fn check(h: &EightBitHyper, blockwise: bool) {
    let mut rng = Rng::new(41);
    let pairs = h.rule.state1_moments();
    let new_bufs = |n: usize| -> Vec<Buf> {
        let mut b = vec![Buf::new(blockwise, &SIGNED, pairs, n)];
        if h.rule.states() == 2 {
            b.push(Buf::new(blockwise, &UNSIGNED, 1, n));
        }
        b
    };
    let mut params_ref: Vec<Vec<f32>> = LENGTHS.iter().map(|&n| rng.vec(n)).collect();
    let mut bufs_ref: Vec<Vec<Buf>> = LENGTHS.iter().map(|&n| new_bufs(n)).collect();
    let mut runs: Vec<_> = THREADS.iter().map(|&t| (t, params_ref.clone(), bufs_ref.clone())).collect();
    let (signed, unsigned) = (Quantizer::cached(&SIGNED), Quantizer::cached(&UNSIGNED));
    for step in 1..=5 {
        let grads: Vec<Vec<f32>> = LENGTHS
            .iter()
            .map(|&n| {
                let mut g: Vec<f32> = rng.vec(n);
                g.iter_mut().skip(BLOCK).take(BLOCK).for_each(|x| *x = 0.0);
                g
            })
            .collect();
        for (threads, params, bufs) in &mut runs {
            set_num_threads(*threads).unwrap();
            let tensors = params
                .iter_mut()
                .zip(&grads)
                .zip(bufs.iter_mut())
                .map(|((p, g), b)| {
                    let mut it = b.iter_mut();
                    let state = match (it.next(), it.next()) {
                        (Some(Buf::Q { codes, absmax, .. }), s2) => EightBitState::Blockwise {
                            state1: Quantized { codes, absmax, quantizer: &signed },
                            state2: s2.map(|b| match b {
                                Buf::Q { codes, absmax, .. } => Quantized { codes, absmax, quantizer: &unsigned },
                                Buf::F(_) => unreachable!(),
                            }),
                        },
                        (Some(Buf::F(s1)), s2) => EightBitState::Full {
                            state1: s1,
                            state2: match s2 {
                                Some(Buf::F(v)) => v,
                                _ => &mut [],
                            },
                        },
                        _ => unreachable!(),
                    };
                    EightBitTensor { param: p, grad: g, step: step as f64, state }
                })
                .collect();
            eight_bit(h, tensors);
        }
        for t in 0..LENGTHS.len() {
            reference(h, step as f64, &mut params_ref[t], &grads[t], &mut bufs_ref[t]);
        }
        for (threads, params, bufs) in &runs {
            for (t, &n) in LENGTHS.iter().enumerate() {
                let at = format!("{:?} blockwise={blockwise}, step {step}, {threads} threads, length {n}", h.rule);
                assert_same_bits(&format!("param ({at})"), &params[t], &params_ref[t]);
                for (k, (a, b)) in bufs[t].iter().zip(&bufs_ref[t]).enumerate() {
                    match (a, b) {
                        (Buf::Q { codes: c, absmax: a, .. }, Buf::Q { codes: d, absmax: b, .. }) => {
                            assert!(c == d, "codes of state {k} ({at})");
                            assert_same_bits(&format!("absmax of state {k} ({at})"), a, b);
                            if n > BLOCK && h.weight_decay == 0.0 {
                                let zero = if pairs == 2 && k == 0 { [1, blocks(n) + 1] } else { [1, 1] };
                                for z in zero {
                                    assert_eq!(a[z], 0.0, "a block of zeros keeps absmax 0 ({at})");
                                }
                            }
                        }
                        (Buf::F(x), Buf::F(y)) => assert_same_bits(&format!("state {k} ({at})"), x, y),
                        _ => unreachable!(),
                    }
                }
            }
        }
    }
}

#[test]
fn validates_like_bitsandbytes() {
    let bad = EightBitHyper { betas: (0.9, 1.0), ..EightBitHyper::adam() };
    assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid beta parameter at index 1: 1");
    assert!(EightBitHyper::adam().validate().is_ok());
    let bad = EightBitHyper { rule: EightBitRule::Ademamix, beta3: 1.0, ..EightBitHyper::adam() };
    assert_eq!(bad.validate().unwrap_err().to_string(), "Invalid beta parameter at index 2: 1");
}
