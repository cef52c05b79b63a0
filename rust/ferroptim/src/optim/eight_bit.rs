//! bitsandbytes' 8-bit optimizers behind [`Optimizer`]: [`EightBit`] holds the
//! kernel's hyperparameters ([`EightBitHyper`]: Adam8bit, AdamW8bit, Lion8bit,
//! SGD8bit, RMSprop8bit, Adagrad8bit, AdEMAMix8bit) and the size from which a
//! parameter's state is 8-bit (`min_8bit_size`). A parameter's state is
//! bitsandbytes' own: `step`, `state1` and `state2` as uint8 codes with a float32
//! `absmax1` / `absmax2` per block of 256 elements and the dynamic maps `qmap1` /
//! `qmap2`; or, for a parameter smaller than `min_8bit_size`, float32 `state1` /
//! `state2`.
//!
//! ```
//! use ferroptim::optim::eight_bit::{EightBit, EightBitOptimizer};
//! use ferroptim::{EightBitHyper, Optimizer};
//!
//! let (mut w, mut b) = (vec![0.5f32; 5000], vec![0.0f32; 10]);
//! let mut opt: EightBitOptimizer<f32> = Optimizer::new(EightBit::new(EightBitHyper::adamw())).unwrap();
//! opt.step(&mut [&mut w, &mut b], &[&vec![0.1; 5000], &[0.1; 10]]).unwrap();
//! assert_eq!(opt.state(0).unwrap().codes[0].len(), 5000); // state1: one code per element
//! assert_eq!(opt.state(1).unwrap().buffers[0].len(), 10); // below 4096 elements: float32
//! ```

use crate::element::Element;
use crate::kernels::blockwise::{blocks, Quantizer, SIGNED, UNSIGNED};
use crate::state_dict::{Array, Value};
use crate::{eight_bit, EightBitHyper, EightBitRule, EightBitState, EightBitTensor, HyperError, Quantized, Validate};

use super::rule::no_group_values;
use super::state_dict::{read_entries, Entry, TorchLayout};
use super::{GroupStep, Optimizer, ParamTensor, Rule, Scheduled};

/// An 8-bit optimizer over parameters of type `T` (float32 in bitsandbytes; a float64
/// parameter is updated in float32, as the kernels say).
pub type EightBitOptimizer<T> = Optimizer<EightBit, T>;

/// One param group of an 8-bit optimizer: the kernel's hyperparameters, and the size
/// from which a parameter's state is 8-bit (bitsandbytes' `min_8bit_size`, the
/// optimizer's: 4096 by default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EightBit {
    /// The rule and its hyperparameters.
    pub hyper: EightBitHyper,
    /// Parameters of fewer elements keep float32 state.
    pub min_8bit_size: usize,
}

impl EightBit {
    /// `hyper` with bitsandbytes' `min_8bit_size` of 4096.
    pub fn new(hyper: EightBitHyper) -> Self {
        EightBit { hyper, min_8bit_size: 4096 }
    }

    /// Whether a parameter of `shape` gets 8-bit state.
    fn blockwise(&self, shape: &[usize]) -> bool {
        shape.iter().product::<usize>() >= self.min_8bit_size
    }

    /// `inner` with AdEMAMix's two EMAs in front (`[2, *inner]`).
    fn rows(&self, inner: &[usize]) -> Vec<usize> {
        let pairs = self.hyper.rule.state1_moments();
        (pairs == 2).then_some(2).into_iter().chain(inner.iter().copied()).collect()
    }
}

impl Validate for EightBit {
    fn validate(&self) -> Result<(), HyperError> {
        self.hyper.validate()
    }
}

impl Rule for EightBit {
    no_group_values!();
    /// `step`.
    const SCALARS: usize = 1;
    fn buffers(&self) -> usize {
        4
    }
    /// Float32 `state1` (slot 0) and `state2` (slot 1) below `min_8bit_size`; else
    /// `absmax1` (slot 2) and `absmax2` (slot 3), one per block.
    fn buffer_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
        let two = self.hyper.rule.states() == 2;
        let n = shape.iter().product::<usize>();
        match (k, self.blockwise(shape)) {
            (0, false) => Some(self.rows(shape)),
            (1, false) if two => Some(shape.to_vec()),
            (2, true) => Some(self.rows(&[blocks(n)])),
            (3, true) if two => Some(vec![blocks(n)]),
            _ => None,
        }
    }
    fn codes(&self) -> usize {
        2
    }
    /// The uint8 `state1` and `state2` from `min_8bit_size` on.
    fn code_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
        match (k, self.blockwise(shape)) {
            (0, true) => Some(self.rows(shape)),
            (1, true) if self.hyper.rule.states() == 2 => Some(shape.to_vec()),
            _ => None,
        }
    }
    /// `state2` has the parameter's shape, `state1` too but for AdEMAMix's leading 2
    /// (8-bit or float32 alike).
    fn param_shape(&self, buffers: &[Option<Vec<usize>>], codes: &[Option<Vec<usize>>]) -> Option<Vec<usize>> {
        let [state1, state2] = [0, 1].map(|k| codes.get(k).cloned().flatten().or(buffers.get(k).cloned().flatten()));
        state2.or(match state1 {
            Some(s) if self.hyper.rule.state1_moments() == 2 => s.get(1..).map(<[usize]>::to_vec),
            s => s,
        })
    }
    fn step<T: Element>(groups: &mut [GroupStep<'_, Self, T>]) {
        let (signed, unsigned) = (Quantizer::cached(&SIGNED), Quantizer::cached(&UNSIGNED));
        for g in groups {
            if std::mem::size_of::<T>() == 4 {
                let tensors = g.tensors.iter_mut().map(|t| tensor(t, &signed, &unsigned)).collect();
                eight_bit(&g.hyper.hyper, tensors);
            } else {
                // float32 state next to parameters of another type: copied in and out
                let mut copies: Vec<[Vec<f32>; 4]> = (g.tensors.iter())
                    .map(|t| t.buffers.each_ref().map(|b| b.iter().map(|x| x.narrow()).collect()))
                    .collect();
                let tensors = (g.tensors.iter_mut().zip(copies.iter_mut()))
                    .map(|(t, c)| {
                        let ParamTensor { param, grad, scalars, codes, .. } = t;
                        let codes = codes.each_mut().map(|c| &mut c[..]);
                        let parts = Parts { param, grad, step: &mut scalars[0], codes };
                        tensor_with(parts, c.each_mut().map(|b| &mut b[..]), &signed, &unsigned)
                    })
                    .collect();
                eight_bit(&g.hyper.hyper, tensors);
                for (t, c) in g.tensors.iter_mut().zip(&copies) {
                    for (b, c) in t.buffers.iter_mut().zip(c) {
                        b.iter_mut().zip(c).for_each(|(b, &c)| *b = T::widen(c));
                    }
                }
            }
        }
    }
}

/// One tensor of `T` = float32 as the kernel's: its buffers are its float32 state.
fn tensor<'a, T: Element>(
    t: &'a mut ParamTensor<'_, T>,
    signed: &'a Quantizer,
    unsigned: &'a Quantizer,
) -> EightBitTensor<'a, T> {
    let ParamTensor { param, grad, scalars, buffers, codes, .. } = t;
    let f = buffers.each_mut().map(|b| T::as_f32_mut(b).expect("float32 parameters"));
    let codes = codes.each_mut().map(|c| &mut c[..]);
    tensor_with(Parts { param, grad, step: &mut scalars[0], codes }, f, signed, unsigned)
}

/// What the kernel's tensor takes of a [`ParamTensor`] besides its float32 state.
struct Parts<'a, T> {
    param: &'a mut [T],
    grad: &'a [T],
    step: &'a mut f64,
    codes: [&'a mut [u8]; 2],
}

/// One tensor as the kernel's, with its float32 state `f` (slots 0–3), its step
/// count advanced.
fn tensor_with<'a, T: Element>(
    t: Parts<'a, T>,
    f: [&'a mut [f32]; 4],
    signed: &'a Quantizer,
    unsigned: &'a Quantizer,
) -> EightBitTensor<'a, T> {
    *t.step += 1.0;
    let [state1, state2, absmax1, absmax2] = f;
    let [codes1, codes2] = t.codes;
    let state = if codes1.is_empty() {
        EightBitState::Full { state1, state2 }
    } else {
        let state2 = (!codes2.is_empty()).then_some(Quantized { codes: codes2, absmax: absmax2, quantizer: unsigned });
        EightBitState::Blockwise { state1: Quantized { codes: codes1, absmax: absmax1, quantizer: signed }, state2 }
    };
    EightBitTensor { param: t.param, grad: t.grad, step: *t.step, state }
}

impl TorchLayout for EightBit {
    const SCALAR_NAMES: &'static [&'static str] = &["step"];
    const BUFFER_NAMES: &'static [&'static str] = &["state1", "state2", "absmax1", "absmax2"];
    const CODE_NAMES: &'static [&'static str] = &["state1", "state2"];
    /// The Python package's groups: `lr`, `betas` (AdEMAMix's three: β₁, β₂, β₃),
    /// `eps`, `weight_decay`, and AdEMAMix's `alpha`, `t_alpha`, `t_beta3`.
    fn group_entries(&self) -> Vec<(&'static str, Value)> {
        let h = &self.hyper;
        let ademamix = h.rule == EightBitRule::Ademamix;
        let betas = if ademamix { (h.betas.0, h.betas.1, h.beta3).to_value() } else { h.betas.to_value() };
        let mut e = vec![("lr", h.lr.to_value()), ("betas", betas), ("eps", h.eps.to_value())];
        e.push(("weight_decay", h.weight_decay.to_value()));
        if ademamix {
            e.extend([
                ("alpha", h.alpha.to_value()),
                ("t_alpha", h.t_alpha.to_value()),
                ("t_beta3", h.t_beta3.to_value()),
            ]);
        }
        e
    }
    fn with_group_entries(&self, group: &Value) -> Result<Self, String> {
        let mut e = *self;
        let h = &mut e.hyper;
        read_entries!(h, group, lr, eps, weight_decay);
        if let Some(v) = group.get("betas") {
            let bad = || format!("'betas' of a param group is a {}, not what it should be", v.type_name());
            if h.rule == EightBitRule::Ademamix {
                let (b1, b2, b3) = <(f64, f64, f64)>::from_value(v).ok_or_else(bad)?;
                (h.betas, h.beta3) = ((b1, b2), b3);
            } else {
                h.betas = <(f64, f64)>::from_value(v).ok_or_else(bad)?;
            }
        }
        if h.rule == EightBitRule::Ademamix {
            read_entries!(h, group, alpha, t_alpha, t_beta3);
        }
        Ok(e)
    }
    /// bitsandbytes' `step` is an int.
    fn scalar_value(&self, _k: usize, v: f64) -> Value {
        Value::Int(v as i64)
    }
    /// `qmap1` next to 8-bit `state1`, `qmap2` next to 8-bit `state2`: bitsandbytes'
    /// signed and unsigned dynamic maps.
    fn constants(&self) -> Vec<(&'static str, usize, Value)> {
        let map = |m: &[f32]| Value::Array(Array::of(vec![m.len()], m));
        vec![("qmap1", 0, map(&SIGNED)), ("qmap2", 1, map(&UNSIGNED))]
    }
}

/// The LR, and the momentum CyclicLR and OneCycleLR cycle: β₁ (SGD8bit's momentum,
/// RMSprop8bit's alpha, as the Python package keeps them in `betas`).
impl Scheduled for EightBit {
    fn lr(&self) -> f64 {
        self.hyper.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.hyper.lr = lr;
    }
    fn momentum(&self) -> Option<f64> {
        Some(self.hyper.betas.0)
    }
    fn set_momentum(&mut self, momentum: f64) {
        self.hyper.betas.0 = momentum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dict::{from_bytes, to_bytes};

    fn steps<T: Element>(opt: &mut EightBitOptimizer<T>, params: &mut [Vec<T>], from: usize, to: usize) {
        for t in from..to {
            let grads: Vec<Vec<T>> = (params.iter())
                .map(|p| p.iter().enumerate().map(|(i, _)| T::of(((i * 7 + t * 3) % 11) as f64 * 0.1 - 0.5)).collect())
                .collect();
            let mut p: Vec<&mut [T]> = params.iter_mut().map(|p| &mut p[..]).collect();
            opt.step(&mut p, &grads.iter().map(|g| &g[..]).collect::<Vec<_>>()).unwrap();
        }
    }

    /// Saved and loaded into a new optimizer, 8-bit state (codes, absmax, maps) and
    /// float32 state (below `min_8bit_size`) continue bit for bit.
    #[test]
    fn a_loaded_state_dict_continues_as_the_original() {
        for hyper in [EightBitHyper::adamw(), EightBitHyper::ademamix(), EightBitHyper::lion()] {
            let rule = EightBit { hyper, min_8bit_size: 600 };
            let mut params = vec![vec![0.5f32; 700], vec![-1.0; 30]];
            let mut opt = EightBitOptimizer::new(rule).unwrap();
            opt.set_shape(0, &[7, 100]);
            steps(&mut opt, &mut params, 0, 3);
            assert!(!opt.state(0).unwrap().codes[0].is_empty() && opt.state(1).unwrap().codes[0].is_empty());
            let sd = from_bytes(&to_bytes(&opt.state_dict()).unwrap()).unwrap();
            let mut resumed = EightBitOptimizer::new(rule).unwrap();
            resumed.load_state_dict(&sd).unwrap();
            let mut copy = params.clone();
            steps(&mut opt, &mut params, 3, 6);
            steps(&mut resumed, &mut copy, 3, 6);
            assert_eq!(params, copy, "{:?}", hyper.rule);
            assert_eq!(opt.state_dict(), resumed.state_dict());

            // a map that is not bitsandbytes' is refused, and nothing changes
            let mut bad = sd.clone();
            let Some(Value::Dict(states)) = bad.get_mut("state") else { panic!("states") };
            let Value::Dict(first) = &mut states[0].1 else { panic!("a dict") };
            let map = first.iter_mut().find(|(k, _)| *k == Value::Str("qmap1".into())).unwrap();
            map.1 = Value::Array(Array::of(vec![256], &[0.5f32; 256]));
            let before = resumed.state_dict();
            assert!(resumed.load_state_dict(&bad).is_err());
            assert_eq!(resumed.state_dict(), before);
        }
    }

    /// float64 parameters step as float32 ones do (bitsandbytes updates in float32).
    #[test]
    fn float64_parameters_step_as_float32_ones() {
        let rule = EightBit { hyper: EightBitHyper::adam(), min_8bit_size: 100 };
        let (mut p32, mut p64) = (vec![vec![0.25f32; 300], vec![1.0; 10]], vec![vec![0.25f64; 300], vec![1.0; 10]]);
        let (mut a, mut b) = (EightBitOptimizer::new(rule).unwrap(), EightBitOptimizer::new(rule).unwrap());
        steps(&mut a, &mut p32, 0, 4);
        steps(&mut b, &mut p64, 0, 4);
        for (x, y) in p32.iter().flatten().zip(p64.iter().flatten()) {
            assert_eq!(*x as f64, *y);
        }
        assert_eq!(a.state(0).unwrap().codes, b.state(0).unwrap().codes);
    }
}
