//! bitsandbytes' 8-bit optimizers (`bnb.optim.Adam8bit`, `AdamW8bit`, `Lion8bit`,
//! `SGD8bit`, `RMSprop8bit`, `Adagrad8bit`, `AdEMAMix8bit`; Dettmers et al., "8-bit
//! Optimizers via Block-wise Quantization", ICLR 2022), as bitsandbytes' CPU path
//! computes them, in one fused pass: each block of [`BLOCK`] elements is dequantized
//! into registers, updated in float32 and requantized (see [`blockwise`](super::blockwise)).
//!
//! Update rules, per element, with `t` the parameter's step count after this step,
//! `c₁ = 1 − β₁ᵗ`, `c₂ = √(1 − β₂ᵗ)`, and decay `θ ← θ·(1 − lr·wd)` where marked:
//!
//! ```text
//! Adam (Adam8bit, AdamW8bit):  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  decay;
//!                              θ ← θ − (lr/c₁)·m / (√v/c₂ + ε)
//! AdEMAMix:                    m₁ ← β₁m₁ + (1 − β₁)g;  m₂ ← β₃m₂ + (1 − β₃)g;  v as Adam;  decay;
//!                              θ ← θ − lr·(m₁/c₁ + α·m₂) / (√v/c₂ + ε)
//!                              (α and β₃ warmed up over t_alpha / t_beta3 steps)
//! Momentum (SGD8bit):          g ← g + wd·θ;  m ← g on the first step, else β₁m + g;  θ ← θ − lr·m
//! Lion:                        decay;  θ ← θ − lr·sign(β₁m + (1 − β₁)g);  m ← β₂m + (1 − β₂)g
//! RMSprop:                     g ← g + wd·θ;  s ← αs + (1 − α)g²;  θ ← θ − lr·g / (√s + ε)
//! Adagrad:                     g ← g + wd·θ;  s ← s + g²;  θ ← θ − lr·g / (√s + ε)
//! ```
//!
//! The update runs in float32 whatever the parameter's type: a float64 parameter and
//! its gradient are rounded to float32 first and the result widened back, as
//! bitsandbytes computes `p.float()` and copies the result into `p`.
//!
//! Parameters smaller than `min_8bit_size` keep float32 state ([`EightBitState::Full`])
//! and take bitsandbytes' 32-bit CPU update, which writes some of these formulas in
//! another order (Adam: `θ ← θ − (lr·c₂/c₁)·m / (√v + ε·c₂)`); both are reproduced.

use crate::element::Element;
use crate::exec::{map_jobs, CHUNK};
use crate::kernels::blockwise::{blocks, dequantized, Quantizer, BLOCK, MAP_SIZE, SIGNED};
use crate::kernels::div_by::DivBy;
use crate::kernels::passes::sign;
use crate::kernels::{check_arg, simd_targets};
use crate::{HyperError, Validate};

/// Which of bitsandbytes' update rules (its `optimizer_name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EightBitRule {
    /// `"adam"`: Adam8bit and AdamW8bit (decoupled weight decay in both).
    Adam = 0,
    /// `"ademamix"`: AdEMAMix8bit; state1 holds the fast and the slow EMA.
    Ademamix = 1,
    /// `"momentum"`: SGD8bit.
    Momentum = 2,
    /// `"lion"`: Lion8bit.
    Lion = 3,
    /// `"rmsprop"`: RMSprop8bit.
    Rmsprop = 4,
    /// `"adagrad"`: Adagrad8bit.
    Adagrad = 5,
}

impl EightBitRule {
    /// How many state buffers the rule keeps (bitsandbytes' 1-state or 2-state class).
    pub fn states(self) -> usize {
        match self {
            EightBitRule::Adam | EightBitRule::Ademamix => 2,
            _ => 1,
        }
    }

    /// How many moments state1 holds: AdEMAMix's two EMAs, else one.
    pub fn state1_moments(self) -> usize {
        if self == EightBitRule::Ademamix {
            2
        } else {
            1
        }
    }
}

/// The hyperparameters of one param group, with bitsandbytes' names: `betas` is
/// (β₁, β₂) for Adam, Lion and AdEMAMix (its β₃ apart), (momentum, dampening) for
/// SGD8bit, (alpha, momentum) for RMSprop8bit (the second value unused).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EightBitHyper {
    /// Which optimizer's update.
    pub rule: EightBitRule,
    /// Learning rate.
    pub lr: f64,
    /// (β₁, β₂), as the rule uses them (RMSprop's smoothing constant is `alpha`).
    pub betas: (f64, f64),
    /// AdEMAMix's β₃, of the slow average.
    pub beta3: f64,
    /// AdEMAMix's weight of the slow average; RMSprop's smoothing constant.
    pub alpha: f64,
    /// AdEMAMix's warm-up lengths; `None` (or 0): none.
    pub t_alpha: Option<f64>,
    /// AdEMAMix's warm-up length of β₃; `None` (or 0): none.
    pub t_beta3: Option<f64>,
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Weight decay, decoupled or added to the gradient as the rule says (see the module docs).
    pub weight_decay: f64,
}

impl EightBitHyper {
    /// `Adam8bit`'s defaults (AdamW8bit: `weight_decay` 1e-2).
    pub const fn adam() -> Self {
        EightBitHyper {
            rule: EightBitRule::Adam,
            lr: 1e-3,
            betas: (0.9, 0.999),
            beta3: 0.0,
            alpha: 0.0,
            t_alpha: None,
            t_beta3: None,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// `AdamW8bit`'s defaults.
    pub const fn adamw() -> Self {
        EightBitHyper { weight_decay: 1e-2, ..Self::adam() }
    }

    /// `Lion8bit`'s defaults.
    pub const fn lion() -> Self {
        EightBitHyper { rule: EightBitRule::Lion, lr: 1e-4, betas: (0.9, 0.99), eps: 0.0, ..Self::adam() }
    }

    /// `SGD8bit(lr, momentum)` (bitsandbytes requires a momentum; `betas` holds
    /// (momentum, dampening), the dampening 0).
    pub const fn sgd(lr: f64, momentum: f64) -> Self {
        EightBitHyper { rule: EightBitRule::Momentum, lr, betas: (momentum, 0.0), eps: 0.0, ..Self::adam() }
    }

    /// `RMSprop8bit`'s defaults (`betas` holds (alpha, momentum)).
    pub const fn rmsprop() -> Self {
        EightBitHyper { rule: EightBitRule::Rmsprop, lr: 1e-2, betas: (0.99, 0.0), ..Self::adam() }
    }

    /// `Adagrad8bit`'s defaults.
    pub const fn adagrad() -> Self {
        EightBitHyper { rule: EightBitRule::Adagrad, lr: 1e-2, betas: (0.0, 0.0), eps: 1e-10, ..Self::adam() }
    }

    /// `AdEMAMix8bit`'s defaults.
    pub const fn ademamix() -> Self {
        EightBitHyper { rule: EightBitRule::Ademamix, beta3: 0.9999, alpha: 5.0, weight_decay: 1e-2, ..Self::adam() }
    }

    /// The constants of step `t` of one tensor, rounded to float32 where torch rounds them.
    fn at_step(&self, t: f64) -> Coef {
        let (beta1, beta2) = self.betas;
        let c1 = 1.0 - beta1.powf(t);
        let c2 = (1.0 - beta2.powf(t)).sqrt();
        let warm = |len: Option<f64>| len.filter(|&l| l != 0.0);
        // AdEMAMix's schedules (applied only when one of them is set, as bitsandbytes)
        let (alpha, beta3) = if warm(self.t_alpha).is_some() || warm(self.t_beta3).is_some() {
            let alpha = warm(self.t_alpha).map_or(self.alpha, |ta| (t * self.alpha / ta).min(self.alpha));
            let beta3 = warm(self.t_beta3).map_or(self.beta3, |tb| {
                let (ln1, ln3) = (beta1.ln(), self.beta3.ln());
                let s = t / tb;
                ((ln1 * ln3) / ((1.0 - s) * ln3 + s * ln1)).exp().min(self.beta3)
            });
            (alpha, beta3)
        } else {
            (self.alpha, self.beta3)
        };
        let lr = self.lr;
        Coef {
            beta1: beta1 as f32,
            one_minus_beta1: (1.0 - beta1) as f32,
            beta2: beta2 as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            beta3: beta3 as f32,
            one_minus_beta3: (1.0 - beta3) as f32,
            alpha: alpha as f32,
            c1: DivBy::new(c1 as f32),
            c2: DivBy::new(c2 as f32),
            eps: self.eps as f32,
            eps_c2: (self.eps * c2) as f32,
            weight_decay: self.weight_decay as f32,
            decays: self.weight_decay > 0.0,
            decay: (1.0 - lr * self.weight_decay) as f32,
            neg_lr: -lr as f32,
            neg_step_size: (-lr / c1) as f32,
            neg_step_size_c2: (-lr * c2 / c1) as f32,
            first: t == 1.0,
        }
    }
}

impl Validate for EightBitHyper {
    /// bitsandbytes' checks, with its messages: `Optimizer1State`'s and
    /// `Optimizer2State`'s (`lr`, `eps`, the betas, `weight_decay`), after
    /// `Adagrad8bit`'s own (`lr`, `weight_decay`, `eps`).
    fn validate(&self) -> Result<(), HyperError> {
        let (lr, eps, wd) = (self.lr, self.eps, self.weight_decay);
        let lr_ok = || check_arg(lr >= 0.0, "lr", None, lr, || format!("Invalid learning rate: {lr}"));
        let eps_ok = || check_arg(eps >= 0.0, "eps", None, eps, || format!("Invalid epsilon value: {eps}"));
        let wd_ok = || check_arg(wd >= 0.0, "weight_decay", None, wd, || format!("Invalid weight_decay value: {wd}"));
        if self.rule == EightBitRule::Adagrad {
            lr_ok()?;
            wd_ok()?;
            eps_ok()?;
        }
        lr_ok()?;
        eps_ok()?;
        let third = (self.rule == EightBitRule::Ademamix).then_some(self.beta3);
        for (i, b) in [self.betas.0, self.betas.1].into_iter().chain(third).enumerate() {
            check_arg((0.0..1.0).contains(&b), "betas", Some(i), b, || {
                format!("Invalid beta parameter at index {i}: {b}")
            })?;
        }
        wd_ok()
    }
}

/// One state buffer in 8 bits: a code per element, an absmax per block, the map.
pub struct Quantized<'a> {
    /// One 8-bit code per element.
    pub codes: &'a mut [u8],
    /// The scale of each block of `BLOCK` elements.
    pub absmax: &'a mut [f32],
    /// The code book the codes index (signed or unsigned dynamic map).
    pub quantizer: &'a Quantizer,
}

impl<'a> Quantized<'a> {
    /// The first `mid` elements (a multiple of [`BLOCK`]) and the rest.
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (c0, c1) = self.codes.split_at_mut(mid);
        let (a0, a1) = self.absmax.split_at_mut(mid / BLOCK);
        let q = self.quantizer;
        (Quantized { codes: c0, absmax: a0, quantizer: q }, Quantized { codes: c1, absmax: a1, quantizer: q })
    }
}

/// A parameter's optimizer state, as bitsandbytes keeps it.
pub enum EightBitState<'a> {
    /// `state1` / `state2` as codes and absmax (AdEMAMix's state1: its two EMAs one
    /// after the other, codes `2n`, absmax `2 × blocks`); `state2` for 2-state rules.
    Blockwise {
        /// The first state (signed map).
        state1: Quantized<'a>,
        /// The second state (unsigned map), for the rules that keep two.
        state2: Option<Quantized<'a>>,
    },
    /// float32 `state1` / `state2` (AdEMAMix's state1 `2n`); `state2` empty for 1-state rules.
    Full {
        /// The first state.
        state1: &'a mut [f32],
        /// The second state, or empty.
        state2: &'a mut [f32],
    },
}

/// One parameter (float32, or float64 updated in float32): its slices, its state and
/// its step count after this step.
pub struct EightBitTensor<'a, P> {
    /// The parameter, updated in place.
    pub param: &'a mut [P],
    /// Its gradient.
    pub grad: &'a [P],
    /// Its step count after this step.
    pub step: f64,
    /// Its optimizer state, 8-bit or float32.
    pub state: EightBitState<'a>,
}

/// One step of bitsandbytes' rule `h.rule` over every tensor, on the pool (in chunks
/// of whole blocks: the result does not depend on the thread count).
///
/// # Panics
/// If a tensor's slices do not fit its parameter's length (codes and float32 state:
/// `n`, or `2n` for AdEMAMix's state1; absmax: one per block), or `state2` is
/// missing for a 2-state rule.
pub fn eight_bit<P: Element>(h: &EightBitHyper, tensors: Vec<EightBitTensor<'_, P>>) {
    let elements: usize = tensors.iter().map(|t| t.param.len()).sum();
    let mut jobs = Vec::with_capacity(tensors.len() + elements / CHUNK);
    for t in tensors {
        let mut rest = Piece::of(h.rule, t);
        while rest.param.len() > CHUNK {
            let (head, tail) = rest.split_at(CHUNK);
            jobs.push(head);
            rest = tail;
        }
        jobs.push(rest);
    }
    map_jobs(elements, jobs, |piece| piece.run(h));
}

/// The moments of a rule in slot order: [m (or m₁), m₂, v].
const SLOTS: usize = 3;

/// A tensor (or a chunk of it) with its moments apart.
struct Piece<'a, P> {
    param: &'a mut [P],
    grad: &'a [P],
    step: f64,
    moments: Moments<'a>,
}

enum Moments<'a> {
    Blockwise([Option<Quantized<'a>>; SLOTS]),
    Full([&'a mut [f32]; SLOTS]),
}

impl<'a, P: Element> Piece<'a, P> {
    fn of(rule: EightBitRule, t: EightBitTensor<'a, P>) -> Self {
        let n = t.param.len();
        assert_eq!(t.grad.len(), n, "the gradient has {} elements, the parameter {n}", t.grad.len());
        let two = rule.states() == 2;
        let pairs = rule.state1_moments();
        let moments = match t.state {
            EightBitState::Blockwise { state1, state2 } => {
                let fits = |q: &Quantized<'_>, k: usize| q.codes.len() == k * n && q.absmax.len() == k * blocks(n);
                assert!(fits(&state1, pairs), "state1 does not fit a parameter of {n} elements");
                let mut slots: [Option<Quantized<'a>>; SLOTS] = [None, None, None];
                if pairs == 2 {
                    // state1 of shape (2, *shape), absmax1 of shape (2, blocks)
                    let Quantized { codes, absmax, quantizer } = state1;
                    let (c1, c2) = codes.split_at_mut(n);
                    let (a1, a2) = absmax.split_at_mut(blocks(n));
                    slots[0] = Some(Quantized { codes: c1, absmax: a1, quantizer });
                    slots[1] = Some(Quantized { codes: c2, absmax: a2, quantizer });
                } else {
                    slots[0] = Some(state1);
                }
                if two {
                    let s2 = state2.expect("a 2-state rule needs state2");
                    assert!(fits(&s2, 1), "state2 does not fit a parameter of {n} elements");
                    slots[2] = Some(s2);
                }
                Moments::Blockwise(slots)
            }
            EightBitState::Full { state1, state2 } => {
                assert_eq!(state1.len(), pairs * n, "state1 does not fit a parameter of {n} elements");
                assert_eq!(state2.len(), if two { n } else { 0 }, "state2 does not fit a parameter of {n} elements");
                let (m1, m2) = state1.split_at_mut(if pairs == 2 { n } else { state1.len() });
                Moments::Full([m1, m2, state2])
            }
        };
        Piece { param: t.param, grad: t.grad, step: t.step, moments }
    }

    /// The first `mid` elements (a multiple of [`BLOCK`]) and the rest.
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (p0, p1) = self.param.split_at_mut(mid);
        let (g0, g1) = self.grad.split_at(mid);
        let (m0, m1) = match self.moments {
            Moments::Blockwise(slots) => {
                let mut a: [Option<Quantized<'a>>; SLOTS] = [None, None, None];
                let mut b: [Option<Quantized<'a>>; SLOTS] = [None, None, None];
                for (k, q) in slots.into_iter().enumerate() {
                    if let Some(q) = q {
                        let (x, y) = q.split_at(mid);
                        a[k] = Some(x);
                        b[k] = Some(y);
                    }
                }
                (Moments::Blockwise(a), Moments::Blockwise(b))
            }
            Moments::Full(slots) => {
                let mut a: [&'a mut [f32]; SLOTS] = Default::default();
                let mut b: [&'a mut [f32]; SLOTS] = Default::default();
                for (k, s) in slots.into_iter().enumerate() {
                    if !s.is_empty() {
                        let (x, y) = s.split_at_mut(mid);
                        a[k] = x;
                        b[k] = y;
                    }
                }
                (Moments::Full(a), Moments::Full(b))
            }
        };
        let step = self.step;
        (Piece { param: p0, grad: g0, step, moments: m0 }, Piece { param: p1, grad: g1, step, moments: m1 })
    }

    fn run(self, h: &EightBitHyper) {
        let c = h.at_step(self.step);
        macro_rules! dispatch {
            ($f:ident, $P:ty, $($args:expr),*) => {
                match h.rule {
                    EightBitRule::Adam => $f::<$P, { EightBitRule::Adam as u8 }>($($args),*),
                    EightBitRule::Ademamix => $f::<$P, { EightBitRule::Ademamix as u8 }>($($args),*),
                    EightBitRule::Momentum => $f::<$P, { EightBitRule::Momentum as u8 }>($($args),*),
                    EightBitRule::Lion => $f::<$P, { EightBitRule::Lion as u8 }>($($args),*),
                    EightBitRule::Rmsprop => $f::<$P, { EightBitRule::Rmsprop as u8 }>($($args),*),
                    EightBitRule::Adagrad => $f::<$P, { EightBitRule::Adagrad as u8 }>($($args),*),
                }
            };
        }
        match self.moments {
            Moments::Blockwise(slots) => dispatch!(blockwise_loop, P, &c, self.param, self.grad, slots),
            Moments::Full([a, b, v]) => dispatch!(full_loop, P, &c, self.param, self.grad, a, b, v),
        }
    }
}

/// The hyperparameters and step constants in float32.
#[derive(Clone, Copy)]
struct Coef {
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    beta3: f32,
    one_minus_beta3: f32,
    alpha: f32,
    /// The bias corrections as divisors: in (0, 1], where the float64 reciprocal
    /// divides to the same bits as the division instruction ([`DivBy::fast`]; NaN
    /// hyperparameters give NaN either way).
    c1: DivBy<f32>,
    c2: DivBy<f32>,
    eps: f32,
    eps_c2: f32,
    weight_decay: f32,
    decays: bool,
    decay: f32,
    neg_lr: f32,
    neg_step_size: f32,
    neg_step_size_c2: f32,
    first: bool,
}

const ADAM: u8 = EightBitRule::Adam as u8;
const ADEMAMIX: u8 = EightBitRule::Ademamix as u8;
const MOMENTUM: u8 = EightBitRule::Momentum as u8;
const LION: u8 = EightBitRule::Lion as u8;
const RMSPROP: u8 = EightBitRule::Rmsprop as u8;
const ADAGRAD: u8 = EightBitRule::Adagrad as u8;

/// The update of one element: parameter `p`, gradient `g`, moments `s` = [m, m₂, v]
/// (the ones the rule keeps). `BLOCKWISE`: bitsandbytes' 8-bit CPU formulas, else its
/// 32-bit ones. torch's operations: `mul_` a product, `add_(x, alpha=a)` fma(a, x, ·),
/// `addcmul_` fma(value·a, b, ·), `addcdiv_` `· + value·a/b`.
#[inline(always)]
fn element<const R: u8, const BLOCKWISE: bool>(c: &Coef, p: f32, g: f32, s: &mut [f32; SLOTS]) -> f32 {
    match R {
        ADAM => {
            s[0] = c.one_minus_beta1.mul_add(g, s[0] * c.beta1);
            s[2] = (c.one_minus_beta2 * g).mul_add(g, s[2] * c.beta2);
            let p = if c.decays { p * c.decay } else { p };
            if BLOCKWISE {
                p + c.neg_step_size * s[0] / (c.c2.fast(s[2].sqrt()) + c.eps)
            } else {
                (s[0] / (s[2].sqrt() + c.eps_c2)).mul_add(c.neg_step_size_c2, p)
            }
        }
        ADEMAMIX => {
            s[0] = c.one_minus_beta1.mul_add(g, s[0] * c.beta1);
            s[1] = c.one_minus_beta3.mul_add(g, s[1] * c.beta3);
            s[2] = (c.one_minus_beta2 * g).mul_add(g, s[2] * c.beta2);
            let update = (c.c1.fast(s[0]) + c.alpha * s[1]) / (c.c2.fast(s[2].sqrt()) + c.eps);
            let p = if c.decays { p * c.decay } else { p };
            update.mul_add(c.neg_lr, p)
        }
        MOMENTUM => {
            let g = if BLOCKWISE || c.decays { c.weight_decay.mul_add(p, g) } else { g };
            s[0] = if c.first { g } else { s[0] * c.beta1 + g };
            c.neg_lr.mul_add(s[0], p)
        }
        LION => {
            let p = if c.decays { p * c.decay } else { p };
            let u = if BLOCKWISE {
                s[0] * c.beta1 + g * c.one_minus_beta1
            } else {
                c.one_minus_beta1.mul_add(g, s[0] * c.beta1)
            };
            s[0] = c.one_minus_beta2.mul_add(g, s[0] * c.beta2);
            c.neg_lr.mul_add(sign(u), p)
        }
        RMSPROP | ADAGRAD => {
            let g = if BLOCKWISE || c.decays { c.weight_decay.mul_add(p, g) } else { g };
            s[0] = if R == RMSPROP { (c.one_minus_beta1 * g).mul_add(g, s[0] * c.beta1) } else { g.mul_add(g, s[0]) };
            if BLOCKWISE {
                p + c.neg_lr * g / (s[0].sqrt() + c.eps)
            } else {
                (g / (s[0].sqrt() + c.eps)).mul_add(c.neg_lr, p)
            }
        }
        _ => unreachable!("no rule {R}"),
    }
}

/// Whether rule `R` keeps moment slot `k`.
const fn uses(r: u8, k: usize) -> bool {
    match k {
        0 => true,
        1 => r == ADEMAMIX,
        _ => r == ADAM || r == ADEMAMIX,
    }
}

simd_targets! {
fn blockwise_loop<P: Element, const R: u8>(c: &Coef, param: &mut [P], grad: &[P], mut slots: [Option<Quantized<'_>>; SLOTS]) {
    let mut values = [[0.0f32; BLOCK]; SLOTS];
    for (b, start) in (0..param.len()).step_by(BLOCK).enumerate() {
        let len = (param.len() - start).min(BLOCK);
        let (p, g) = (&mut param[start..start + len], &grad[start..start + len]);
        // a whole block with its length known at compile time: no scalar remainder
        if len == BLOCK {
            block::<P, R>(c, &mut p[..BLOCK], &g[..BLOCK], &mut slots, &mut values, b, start);
        } else {
            block::<P, R>(c, p, g, &mut slots, &mut values, b, start);
        }
    }
}
}

/// One block `b`, starting at element `start`: dequantize and update in one loop,
/// then requantize.
#[inline(always)]
fn block<P: Element, const R: u8>(
    c: &Coef,
    p: &mut [P],
    g: &[P],
    slots: &mut [Option<Quantized<'_>>; SLOTS],
    values: &mut [[f32; BLOCK]; SLOTS],
    b: usize,
    start: usize,
) {
    let len = p.len();
    let end = start + len;
    // each kept moment's codes, map and absmax (the others: no codes, never read)
    let mut codes: [&[u8]; SLOTS] = [&[]; SLOTS];
    let mut maps: [&[f32; MAP_SIZE]; SLOTS] = [&SIGNED; SLOTS];
    let mut absmax = [0.0f32; SLOTS];
    for (k, q) in slots.iter().enumerate() {
        if let (true, Some(q)) = (uses(R, k), q) {
            codes[k] = &q.codes[start..end];
            maps[k] = q.quantizer.map();
            absmax[k] = q.absmax[b];
        }
    }
    let [m, m2, v] = codes;
    update::<P, R>(c, p, g, m, m2, v, maps, absmax, values);
    for (k, q) in slots.iter_mut().enumerate() {
        if let (true, Some(q)) = (uses(R, k), q) {
            q.absmax[b] = q.quantizer.quantize(&values[k][..len], &mut q.codes[start..end]);
        }
    }
}

/// The update of one block, its moments dequantized as they are read
/// (`map[code] · absmax`) and written to `values` in float32. Each array is an
/// argument of its own: the compiler knows them apart (see [`simd_targets`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn update<P: Element, const R: u8>(
    c: &Coef,
    p: &mut [P],
    g: &[P],
    m: &[u8],
    m2: &[u8],
    v: &[u8],
    maps: [&[f32; MAP_SIZE]; SLOTS],
    absmax: [f32; SLOTS],
    values: &mut [[f32; BLOCK]; SLOTS],
) {
    let n = p.len();
    let g = &g[..n];
    let m = &m[..n];
    let m2 = if uses(R, 1) { &m2[..n] } else { m2 };
    let v = if uses(R, 2) { &v[..n] } else { v };
    let [map, map2, map_v] = maps;
    for i in 0..n {
        let mut s = [
            dequantized(map, m[i], absmax[0]),
            if uses(R, 1) { dequantized(map2, m2[i], absmax[1]) } else { 0.0 },
            if uses(R, 2) { dequantized(map_v, v[i], absmax[2]) } else { 0.0 },
        ];
        p[i] = P::widen(element::<R, true>(c, p[i].narrow(), g[i].narrow(), &mut s));
        for k in 0..SLOTS {
            if uses(R, k) {
                values[k][i] = s[k];
            }
        }
    }
}

simd_targets! {
fn full_loop<P: Element, const R: u8>(c: &Coef, param: &mut [P], grad: &[P], m: &mut [f32], m2: &mut [f32], v: &mut [f32]) {
    let n = param.len();
    let grad = &grad[..n];
    let m = &mut m[..n];
    let m2 = if uses(R, 1) { &mut m2[..n] } else { m2 };
    let v = if uses(R, 2) { &mut v[..n] } else { v };
    for i in 0..n {
        let mut s = [m[i], if uses(R, 1) { m2[i] } else { 0.0 }, if uses(R, 2) { v[i] } else { 0.0 }];
        param[i] = P::widen(element::<R, false>(c, param[i].narrow(), grad[i].narrow(), &mut s));
        m[i] = s[0];
        if uses(R, 1) {
            m2[i] = s[1];
        }
        if uses(R, 2) {
            v[i] = s[2];
        }
    }
}
}

#[cfg(test)]
mod tests;
