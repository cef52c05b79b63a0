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
//! θ ← θ − lr·r·X   with r = √max(1, A/B) ("original"), 0.2·√max(A, B) ("match_rms_adamw")
//!                  or √(A/B) ("spectral_unclamped", torch 2.15)
//! ```
//!
//! torch orthogonalizes in bfloat16 (8 significant bits), and so does this kernel, at
//! the same points as torch's CPU kernels round: the update is cast to bfloat16
//! (through float32, as torch casts a float64 tensor), its norm and the division by it
//! are rounded to bfloat16, and each matrix product — `X·Xᵀ`, `b·G + c·G·G`,
//! `a·X + (…)·X`, each one `addmm` in torch — accumulates in float32
//! (`matrixmultiply`'s sgemm) and is rounded to bfloat16 once. Checked against torch
//! 2.15 on random matrices, every single product and `addmm` agrees bit for bit; what
//! remains is the order of the float32 sums inside torch's (oneDNN's) products, which
//! now and then moves a result across a bfloat16 rounding boundary, by one bfloat16
//! unit (2⁻⁸ relative). Each tensor runs on one thread; several tensors share the pool.

use crate::element::{lerp, Element, Lerp};
use crate::exec::map_jobs;
use crate::kernels::{check, check_arg};
use crate::{HyperError, Validate};

/// How Muon scales the learning rate by the shape A × B of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AdjustLr {
    /// `√max(1, A/B)` (Keller Jordan's; torch's default, `None` or `"original"`).
    #[default]
    Original,
    /// `0.2·√max(A, B)`, matching AdamW's update RMS (`"match_rms_adamw"`).
    MatchRmsAdamw,
    /// `√(A/B)` with no clamp (`"spectral_unclamped"`, torch 2.15).
    SpectralUnclamped,
}

/// The hyperparameters of Muon, with torch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MuonHyper {
    /// Learning rate.
    pub lr: f64,
    /// Decoupled weight decay: `θ ← θ·(1 − lr·weight_decay)`.
    pub weight_decay: f64,
    /// Momentum factor: `b ← lerp(b, g, 1 − momentum)`.
    pub momentum: f64,
    /// Nesterov momentum: orthogonalize `lerp(g, b, momentum)` rather than `b`.
    pub nesterov: bool,
    /// The coefficients (a, b, c) of the quintic Newton–Schulz iteration.
    pub ns_coefficients: (f64, f64, f64),
    /// The floor of the Frobenius norm the update is divided by before the iteration.
    pub eps: f64,
    /// Newton–Schulz iterations.
    pub ns_steps: usize,
    /// How the learning rate is scaled by the matrix's shape.
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
        let (lr, m, wd) = (self.lr, self.momentum, self.weight_decay);
        check_arg(lr >= 0.0, "lr", None, lr, || format!("Learning rate should be >= 0 but is: {lr}"))?;
        check_arg(m >= 0.0, "momentum", None, m, || format!("momentum should be >= 0 but is: {m}"))?;
        check_arg(wd >= 0.0, "weight_decay", None, wd, || format!("weight decay should be >= 0 but is: {wd}"))?;
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
            AdjustLr::SpectralUnclamped => (a / b).sqrt(),
        };
        self.lr * ratio
    }
}

/// One 2-D parameter of a Muon step (row-major `rows × cols`).
pub struct MuonTensor<'a, T> {
    /// The parameter, updated in place.
    pub param: &'a mut [T],
    /// Its gradient.
    pub grad: &'a [T],
    /// Its `momentum_buffer`, updated in place.
    pub momentum_buffer: &'a mut [T],
    /// Rows of the matrix the parameter is seen as (A).
    pub rows: usize,
    /// Columns of the matrix the parameter is seen as (B).
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
        *p = step.mul_add(T::of(o as f64), *p); // param.add_(update, alpha=−lr·r): one fma
    }
}

/// `x` rounded to bfloat16 (to nearest, ties to even), as an f32: torch's
/// `c10::BFloat16(float)`. NaN stays NaN.
pub fn bf16(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) & 0xFFFF_0000;
    f32::from_bits(rounded)
}

/// `torch.addmm(beta_c·c, a, b, beta=beta, alpha=alpha)` on bfloat16 tensors:
/// `alpha·a·b + beta·c` (row-major `a` m × k, `b` k × n, or `b`ᵀ when `b_transposed`,
/// then `b` is n × k) accumulated in f32 and rounded to bfloat16 once. `c` is the
/// m × n addend (ignored when `beta` is 0).
#[allow(clippy::too_many_arguments)]
fn matmul_bf16(
    a: &[f32],
    b: &[f32],
    b_transposed: bool,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    beta: f32,
    c: Option<&[f32]>,
) -> Vec<f32> {
    assert!(a.len() == m * k && b.len() == k * n, "matrix sizes do not match");
    let mut c = match c {
        Some(c) if beta != 0.0 => {
            assert_eq!(c.len(), m * n, "the addend does not match");
            c.to_vec()
        }
        _ => vec![0.0f32; m * n],
    };
    let (rsb, csb) = if b_transposed { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: `a` holds m·k, `b` k·n and `c` m·n elements (checked above), and the
    // strides address exactly those row-major (or transposed) layouts; `c` is an
    // owned, initialized vector written through its own exclusive borrow.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    c.iter_mut().for_each(|v| *v = bf16(*v));
    c
}

/// torch's `_zeropower_via_newtonschulz`, in bfloat16 as torch's CPU kernels compute
/// it (see the module docs): the orthogonalized update, row-major `rows × cols`, each
/// entry a bfloat16 value held in an f32.
fn newton_schulz<T: Element>(h: &MuonHyper, update: &[T], rows: usize, cols: usize) -> Vec<f32> {
    let (a, b, c) = (h.ns_coefficients.0 as f32, h.ns_coefficients.1 as f32, h.ns_coefficients.2 as f32);
    let f = |x: T| bf16(x.to_f32().unwrap()); // grad.to(torch.bfloat16): through float, as c10 does
                                              // Work on the wide orientation: m ≤ n.
    let transposed = rows > cols;
    let (m, n) = if transposed { (cols, rows) } else { (rows, cols) };
    let mut x: Vec<f32> = if transposed {
        (0..m * n).map(|k| f(update[(k % n) * cols + k / n])).collect()
    } else {
        update.iter().map(|&u| f(u)).collect()
    };
    // ortho_grad.div_(ortho_grad.norm().clamp(min=eps)): the norm (accumulated wider)
    // and the clamp in bfloat16, each quotient computed in float and rounded
    let norm = bf16(x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt() as f32);
    let floor = bf16(h.eps as f32);
    let denom = if norm.is_nan() { norm } else { norm.max(floor) };
    x.iter_mut().for_each(|v| *v = bf16(*v / denom));
    for _ in 0..h.ns_steps {
        let gram = matmul_bf16(&x, &x, true, m, n, m, 1.0, 0.0, None); // X·Xᵀ
        let gram_update = matmul_bf16(&gram, &gram, false, m, m, m, c, b, Some(&gram)); // addmm(G, G, G, beta=b, alpha=c)
        x = matmul_bf16(&gram_update, &x, false, m, m, n, 1.0, a, Some(&x)); // addmm(X, U, X, beta=a)
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

    /// torch's algorithm with plain loops: the momentum in `T` (fused lerps), the
    /// orthogonalization rounded to bfloat16 where torch rounds, each product summed
    /// in f32 in plain order.
    fn reference(h: &MuonHyper, p: &mut [f64], g: &[f64], buf: &mut [f64], rows: usize, cols: usize) {
        for (b, &g) in buf.iter_mut().zip(g) {
            *b = (1.0 - h.momentum).mul_add(g - *b, *b); // torch 2.15 lerp_: one fma
        }
        let u: Vec<f64> = if h.nesterov {
            g.iter().zip(buf.iter()).map(|(&g, &b)| (g - b).mul_add(1.0 - h.momentum, b)).collect()
        } else {
            buf.to_vec()
        };
        let t = rows > cols;
        let (m, n) = if t { (cols, rows) } else { (rows, cols) };
        let mut x: Vec<f32> =
            (0..m * n).map(|k| bf16((if t { u[(k % n) * cols + k / n] } else { u[k] }) as f32)).collect();
        let norm = bf16(x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32).max(bf16(h.eps as f32));
        x.iter_mut().for_each(|v| *v = bf16(*v / norm));
        // alpha·a·b + beta·c, summed in f32, rounded to bfloat16
        let addmm = |a: &[f32], b: &[f32], bt: bool, m: usize, k: usize, n: usize, alpha: f32, beta: f32, c: &[f32]| {
            (0..m * n)
                .map(|ij| {
                    let sum: f32 = (0..k)
                        .map(|l| a[ij / n * k + l] * if bt { b[ij % n * k + l] } else { b[l * n + ij % n] })
                        .sum();
                    bf16(alpha * sum + if beta != 0.0 { beta * c[ij] } else { 0.0 })
                })
                .collect::<Vec<f32>>()
        };
        let (a, b, c) = (h.ns_coefficients.0 as f32, h.ns_coefficients.1 as f32, h.ns_coefficients.2 as f32);
        for _ in 0..h.ns_steps {
            let gram = addmm(&x, &x, true, m, n, m, 1.0, 0.0, &[]);
            let gu = addmm(&gram, &gram, false, m, m, m, c, b, &gram);
            x = addmm(&gu, &x, false, m, m, n, 1.0, a, &x);
        }
        let lr = h.adjusted_lr(rows, cols);
        for k in 0..rows * cols {
            let o = if t { x[(k % cols) * n + k / cols] } else { x[k] } as f64;
            p[k] = (-lr).mul_add(o, p[k] * (1.0 - h.lr * h.weight_decay));
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16(1.0), 1.0);
        assert_eq!(bf16(1.0 + 2f32.powi(-8)), 1.0); // a tie: to the even neighbour
        assert_eq!(bf16(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6)); // a tie: up to even
        assert_eq!(bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-20)), 1.0 + 2f32.powi(-7)); // past the tie
        assert_eq!(bf16(-(1.0 + 2f32.powi(-7) + 2f32.powi(-9))), -(1.0 + 2f32.powi(-7))); // below the tie
        assert!(bf16(f32::NAN).is_nan());
        assert_eq!(bf16(f32::INFINITY), f32::INFINITY);
    }

    const SHAPES: [(usize, usize); 6] = [(1, 1), (7, 3), (3, 7), (33, 5), (5, 33), (64, 96)];

    /// Against the plain-loop reference: the kernel's products sum in sgemm's blocked
    /// order, the reference's in plain order, so a bfloat16 rounding now and then goes
    /// the other way (as between torch and this kernel). Almost every entry of the
    /// update agrees bit for bit, and none by more than a few bfloat16 units.
    #[test]
    fn matches_the_bf16_reference() {
        let _guard = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = Rng::new(3);
        let (mut same, mut total) = (0usize, 0usize);
        for h in [
            MuonHyper::default(),
            MuonHyper { nesterov: false, adjust_lr_fn: AdjustLr::MatchRmsAdamw, lr: 0.02, ..Default::default() },
            MuonHyper { adjust_lr_fn: AdjustLr::SpectralUnclamped, ..Default::default() },
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
                    let off = (p[k] - p_ref[k]) / lr;
                    assert!(off.abs() < 0.05, "{rows}×{cols} [{k}]: update off by {off:e} (relative to lr)");
                    same += usize::from(p[k] == p_ref[k]);
                    total += 1;
                }
            }
        }
        // measured: 88 % (one early flip spreads through the later iterations of a big matrix)
        assert!(same as f64 >= 0.8 * total as f64, "only {same} of {total} entries bit for bit");
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
