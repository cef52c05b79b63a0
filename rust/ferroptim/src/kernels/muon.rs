//! Muon, as `torch.optim.Muon`: momentum, then Newton–Schulz orthogonalization of
//! each 2-D update.
//!
//! Update rule, per parameter θ of shape A × B (torch's `_single_tensor_muon`):
//!
//! ```text
//! b ← lerp(b, g, 1 − momentum)                        (momentum_buffer)
//! u ← lerp(g, b, momentum) if nesterov, else b
//! X ← u, transposed if A > B;   X ← X / max(‖X‖_F, eps)
//! ns_steps times:  G ← X·Xᵀ;   X ← a·X + (b·G + c·G·G)·X     (a, b, c = ns_coefficients)
//! θ ← θ·(1 − lr·weight_decay)
//! θ ← θ − lr·r·X   with r = √max(1, A/B) ("original") or 0.2·√max(A, B) ("match_rms_adamw")
//! ```
//!
//! torch orthogonalizes in bfloat16 (8 significant bits), which adds rounding noise
//! of a few percent to each entry of the update. That noise cannot be reproduced
//! bit for bit (it depends on the summation order inside torch's matrix products),
//! and an emulation that rounds to bfloat16 at the same points adds noise of its own:
//! measured on the torch reference data, such an emulation's first update differs
//! from torch's by up to 0.086 (per entry, for updates of size ~1), while the
//! float32 orthogonalization used here differs by at most 0.045 (0.007 RMS), which
//! is torch's bfloat16 noise alone. So ferroptim runs Newton–Schulz in float32 (the
//! products by `matrixmultiply`'s sgemm), closer to torch than any bfloat16 copy and
//! deterministic. Each tensor runs on one thread; several tensors share the pool.

use crate::element::{lerp, Element, Lerp};
use crate::exec::map_jobs;
use crate::kernels::check;
use crate::{HyperError, Validate};

/// How Muon scales the learning rate by the shape A × B of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AdjustLr {
    /// `√max(1, A/B)` (Keller Jordan's; torch's default, `None` or `"original"`).
    #[default]
    Original,
    /// `0.2·√max(A, B)`, matching AdamW's update RMS (`"match_rms_adamw"`).
    MatchRmsAdamw,
}

/// The hyperparameters of Muon, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MuonHyper {
    pub lr: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub ns_coefficients: (f64, f64, f64),
    pub eps: f64,
    pub ns_steps: usize,
    pub adjust_lr_fn: AdjustLr,
}

impl Default for MuonHyper {
    fn default() -> Self {
        MuonHyper {
            lr: 1e-3,
            weight_decay: 0.1,
            momentum: 0.95,
            nesterov: true,
            ns_coefficients: (3.4445, -4.7750, 2.0315),
            eps: 1e-7,
            ns_steps: 5,
            adjust_lr_fn: AdjustLr::Original,
        }
    }
}

impl Validate for MuonHyper {
    fn validate(&self) -> Result<(), HyperError> {
        check(self.lr >= 0.0, || format!("Learning rate should be >= 0 but is: {}", self.lr))?;
        check(self.momentum >= 0.0, || format!("momentum should be >= 0 but is: {}", self.momentum))?;
        check(self.weight_decay >= 0.0, || format!("weight decay should be >= 0 but is: {}", self.weight_decay))?;
        check(self.ns_steps < 100, || "Number of steps must be less than 100 for computational efficiency".into())
    }
}

impl MuonHyper {
    /// The learning rate for a parameter of shape `rows × cols`.
    pub fn adjusted_lr(&self, rows: usize, cols: usize) -> f64 {
        let (a, b) = (rows as f64, cols as f64);
        let ratio = match self.adjust_lr_fn {
            AdjustLr::Original => f64::max(1.0, a / b).sqrt(),
            AdjustLr::MatchRmsAdamw => 0.2 * f64::max(a, b).sqrt(),
        };
        self.lr * ratio
    }
}

/// One 2-D parameter of a Muon step (row-major `rows × cols`).
pub struct MuonTensor<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub momentum_buffer: &'a mut [T],
    pub rows: usize,
    pub cols: usize,
}

/// One Muon step over every tensor (each on one thread, the tensors shared by the pool).
///
/// # Panics
/// If a tensor's slices are not `rows × cols` long.
pub fn muon<T: Element>(h: &MuonHyper, tensors: Vec<MuonTensor<'_, T>>) {
    for t in &tensors {
        let n = t.rows * t.cols;
        assert!(t.param.len() == n && t.grad.len() == n && t.momentum_buffer.len() == n, "a tensor is not rows × cols");
    }
    // An orthogonalization costs about ns_steps·6·n·min(rows, cols) flops: weigh it
    // like that many elements of an elementwise step when deciding on the pool.
    let work = tensors.iter().map(|t| t.rows * t.cols * t.rows.min(t.cols).max(1)).sum();
    map_jobs(work, tensors, |t| one_tensor(h, t));
}

fn one_tensor<T: Element>(h: &MuonHyper, t: MuonTensor<'_, T>) {
    let MuonTensor { param, grad, momentum_buffer: buf, rows, cols } = t;
    let w = Lerp::new(1.0 - h.momentum);
    buf.iter_mut().zip(grad).for_each(|(b, &g)| *b = lerp(*b, g, w));
    let update: Vec<T> = if h.nesterov {
        let w = Lerp::new(h.momentum);
        grad.iter().zip(buf.iter()).map(|(&g, &b)| lerp(g, b, w)).collect()
    } else {
        buf.to_vec()
    };
    let ortho = newton_schulz(h, &update, rows, cols);
    let decay = T::of(1.0 - h.lr * h.weight_decay);
    let step = T::of(-h.adjusted_lr(rows, cols));
    for (p, &o) in param.iter_mut().zip(&ortho) {
        *p = *p * decay;
        *p = *p + step * T::of(o as f64);
    }
}

/// `c ← a·b` for row-major `a` (m × k) and `b` (k × n), or `b`ᵀ when `b_transposed`
/// (then `b` is n × k), in f32.
fn matmul(a: &[f32], b: &[f32], b_transposed: bool, m: usize, k: usize, n: usize) -> Vec<f32> {
    assert!(a.len() == m * k && b.len() == k * n, "matrix sizes do not match");
    let mut c = vec![0.0f32; m * n];
    let (rsb, csb) = if b_transposed { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: `a` holds m·k, `b` k·n and `c` m·n elements (checked above), and the
    // strides address exactly those row-major (or transposed) layouts; `c` is
    // written through its own exclusive borrow, and beta = 0 never reads it.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    c
}

/// torch's `_zeropower_via_newtonschulz`, in f32: the orthogonalized update,
/// row-major `rows × cols`.
fn newton_schulz<T: Element>(h: &MuonHyper, update: &[T], rows: usize, cols: usize) -> Vec<f32> {
    let (a, b, c) = (h.ns_coefficients.0 as f32, h.ns_coefficients.1 as f32, h.ns_coefficients.2 as f32);
    let f = |x: T| x.to_f32().unwrap();
    // Work on the wide orientation: m ≤ n.
    let transposed = rows > cols;
    let (m, n) = if transposed { (cols, rows) } else { (rows, cols) };
    let mut x: Vec<f32> = if transposed {
        (0..m * n).map(|k| f(update[(k % n) * cols + k / n])).collect()
    } else {
        update.iter().map(|&u| f(u)).collect()
    };
    let norm = x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt() as f32;
    let denom = norm.max(h.eps as f32);
    x.iter_mut().for_each(|v| *v /= denom);
    for _ in 0..h.ns_steps {
        let gram = matmul(&x, &x, true, m, n, m); // X·Xᵀ
        let square = matmul(&gram, &gram, false, m, m, m); // G·G
        let gram_update: Vec<f32> = gram.iter().zip(&square).map(|(&g, &s)| b * g + c * s).collect();
        let product = matmul(&gram_update, &x, false, m, m, n);
        x = x.iter().zip(&product).map(|(&v, &p)| a * v + p).collect();
    }
    if transposed {
        (0..rows * cols).map(|k| x[(k % cols) * n + k / cols]).collect()
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::Rng;
    use crate::threads::{set_num_threads, tests::THREADS_LOCK};

    /// torch's algorithm in f64 with plain loops.
    fn reference(h: &MuonHyper, p: &mut [f64], g: &[f64], buf: &mut [f64], rows: usize, cols: usize) {
        for (b, &g) in buf.iter_mut().zip(g) {
            *b += (g - *b) * (1.0 - h.momentum);
        }
        let u: Vec<f64> = if h.nesterov {
            g.iter().zip(buf.iter()).map(|(&g, &b)| g + (b - g) * h.momentum).collect()
        } else {
            buf.to_vec()
        };
        let t = rows > cols;
        let (m, n) = if t { (cols, rows) } else { (rows, cols) };
        let mut x: Vec<f64> = (0..m * n).map(|k| if t { u[(k % n) * cols + k / n] } else { u[k] }).collect();
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt().max(h.eps);
        x.iter_mut().for_each(|v| *v /= norm);
        let mm = |a: &[f64], b: &[f64], bt: bool, m: usize, k: usize, n: usize| -> Vec<f64> {
            (0..m * n)
                .map(|ij| {
                    (0..k).map(|l| a[ij / n * k + l] * if bt { b[ij % n * k + l] } else { b[l * n + ij % n] }).sum()
                })
                .collect()
        };
        let (a, b, c) = h.ns_coefficients;
        for _ in 0..h.ns_steps {
            let gram = mm(&x, &x, true, m, n, m);
            let sq = mm(&gram, &gram, false, m, m, m);
            let gu: Vec<f64> = gram.iter().zip(&sq).map(|(g, s)| b * g + c * s).collect();
            let prod = mm(&gu, &x, false, m, m, n);
            x = x.iter().zip(&prod).map(|(v, p)| a * v + p).collect();
        }
        let lr = h.adjusted_lr(rows, cols);
        for k in 0..rows * cols {
            let o = if t { x[(k % cols) * n + k / cols] } else { x[k] };
            p[k] = p[k] * (1.0 - h.lr * h.weight_decay) - lr * o;
        }
    }

    const SHAPES: [(usize, usize); 6] = [(1, 1), (7, 3), (3, 7), (33, 5), (5, 33), (64, 96)];

    /// Against the f64 reference, to float32 precision (the update's entries are of
    /// order 1; five iterations of the quintic amplify roundings a little).
    #[test]
    fn matches_the_f64_algorithm() {
        let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = Rng::new(3);
        for h in [
            MuonHyper::default(),
            MuonHyper { nesterov: false, adjust_lr_fn: AdjustLr::MatchRmsAdamw, lr: 0.02, ..Default::default() },
        ] {
            for (rows, cols) in SHAPES {
                let n = rows * cols;
                let (mut p, g, mut buf) = (rng.vec::<f64>(n), rng.vec::<f64>(n), rng.vec::<f64>(n));
                let (mut p_ref, mut buf_ref) = (p.clone(), buf.clone());
                muon(&h, vec![MuonTensor { param: &mut p, grad: &g, momentum_buffer: &mut buf, rows, cols }]);
                reference(&h, &mut p_ref, &g, &mut buf_ref, rows, cols);
                assert_eq!(buf, buf_ref, "momentum buffer ({rows}×{cols})");
                let lr = h.adjusted_lr(rows, cols);
                for k in 0..n {
                    // the update's entries are O(1) times lr: compare them on that scale
                    let (got, want) = ((p[k] - p_ref[k]) / lr, 0.0);
                    assert!((got - want).abs() < 1e-4, "{rows}×{cols} [{k}]: update off by {got:e} (relative to lr)");
                }
            }
        }
    }

    #[test]
    fn gives_the_same_bits_whatever_the_thread_count() {
        let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let h = MuonHyper::default();
        let run = |threads: usize| {
            set_num_threads(threads).unwrap();
            let mut rng = Rng::new(9);
            let mut ps: Vec<Vec<f32>> = SHAPES.iter().map(|&(r, c)| rng.vec(r * c)).collect();
            let gs: Vec<Vec<f32>> = SHAPES.iter().map(|&(r, c)| rng.vec(r * c)).collect();
            let mut bufs: Vec<Vec<f32>> = SHAPES.iter().map(|&(r, c)| vec![0.0; r * c]).collect();
            let tensors = ps
                .iter_mut()
                .zip(&gs)
                .zip(bufs.iter_mut())
                .zip(SHAPES)
                .map(|(((p, g), b), (rows, cols))| MuonTensor { param: p, grad: g, momentum_buffer: b, rows, cols })
                .collect();
            muon(&h, tensors);
            ps
        };
        assert_eq!(run(1), run(3));
    }
}
