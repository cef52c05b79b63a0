//! torch's SparseAdam behind [`Optimizer`]: [`Optimizer::step_sparse`], whose
//! gradients are sparse rows ([`SparseRows`]: an embedding's gradient lists the rows
//! it touches). A parameter's rows are its first dim (see [`Optimizer::set_shape`];
//! a slice of unknown shape is a vector: each element a row).
//!
//! ```
//! use ferroptim::optim::sparse::SparseAdam;
//! use ferroptim::{Optimizer, SparseAdamHyper, SparseRows};
//!
//! let mut table = vec![1.0f32; 4 * 3]; // 4 rows of 3
//! let mut opt: SparseAdam<f32> = Optimizer::new(SparseAdamHyper { lr: 0.1, ..Default::default() }).unwrap();
//! opt.set_shape(0, &[4, 3]);
//! let grad = SparseRows { indices: &[2], values: &[0.5, 0.5, 0.5] };
//! opt.step_sparse(&mut [&mut table], &[Some(grad)]).unwrap();
//! assert!(table[6..9].iter().all(|&x| x < 1.0) && table[..6].iter().all(|&x| x == 1.0));
//! ```

use crate::element::Element;
use crate::state_dict::Value;
use crate::{sparse_adam, SparseAdamHyper, SparseAdamTensor, SparseRows};

use super::rule::no_group_values;
use super::state_dict::{read_entries, torch_layout, Entry, TorchLayout};
use super::{per_param, Group, GroupStep, Optimizer, ParamState, Rule, StepError};

/// torch's SparseAdam over parameters of type `T`.
pub type SparseAdam<T> = Optimizer<SparseAdamHyper, T>;

/// torch's refusal of a dense gradient.
const DENSE: &str = "SparseAdam does not support dense gradients, please consider Adam instead";

impl Rule for SparseAdamHyper {
    no_group_values!();
    /// `step`.
    const SCALARS: usize = 1;
    fn buffers(&self) -> usize {
        2
    }
    /// `exp_avg`, `exp_avg_sq`, shaped as the parameter.
    fn buffer_shape(&self, k: usize, shape: &[usize]) -> Option<Vec<usize>> {
        (k < 2).then(|| shape.to_vec())
    }
    /// SparseAdam steps sparse gradients only (`step_sparse`).
    fn check_groups(_groups: &[Group<Self>]) -> Result<(), String> {
        Err(DENSE.into())
    }
    fn step<T: Element>(_groups: &mut [GroupStep<'_, Self, T>]) {}
}

impl<T: Element> Optimizer<SparseAdamHyper, T> {
    /// One step with sparse gradients (None: the parameter is skipped, as a `.grad`
    /// of None in torch). A gradient that lists no rows still counts a step, as in
    /// torch. A refusal (an index out of range, values that are not one row per
    /// index) changes nothing.
    pub fn step_sparse(
        &mut self,
        params: &mut [&mut [T]],
        grads: &[Option<SparseRows<'_, T>>],
    ) -> Result<(), StepError> {
        let n = params.len();
        self.check_count(n, grads.len())?;
        let rows: Vec<usize> = (params.iter().enumerate())
            .map(|(i, p)| match self.shapes.get(i).and_then(|s| s.as_deref()) {
                Some(s) if s.iter().product::<usize>() == p.len() => s.first().copied().unwrap_or(1),
                _ => p.len(),
            })
            .collect();
        for (index, p) in params.iter().enumerate() {
            if let Some(Some(st)) = self.state.get(index) {
                if let Some(b) = st.buffers.iter().find(|b| b.len() != p.len()) {
                    return Err(StepError::StateLength { index, param: p.len(), state: b.len() });
                }
            }
        }
        // new state apart until the kernel has accepted every gradient
        let mut fresh: Vec<Option<ParamState<T>>> = (params.iter().zip(grads).enumerate())
            .map(|(i, (p, g))| {
                let missing = !matches!(self.state.get(i), Some(Some(_)));
                (g.is_some() && missing)
                    .then(|| ParamState { buffers: vec![vec![T::zero(); p.len()]; 2], ..ParamState::empty() })
            })
            .collect();
        let owners: Vec<usize> = per_param(&self.groups, n).collect();
        let mut by_group: Vec<Vec<SparseAdamTensor<'_, T>>> = self.groups.iter().map(|_| Vec::new()).collect();
        let kept = self.state.iter_mut().map(Option::as_mut).chain(std::iter::repeat_with(|| None));
        for (i, ((p, g), (new, kept))) in params.iter_mut().zip(grads).zip(fresh.iter_mut().zip(kept)).enumerate() {
            let Some(grad) = g else { continue };
            let st = new.as_mut().or(kept).expect("a gradient's parameter has state");
            let [exp_avg, exp_avg_sq, ..] = &mut st.buffers[..] else { unreachable!("two buffers") };
            let (param, rows, grad) = (&mut p[..], rows[i], *grad);
            let tensor = SparseAdamTensor { step: &mut st.scalars[0], param, exp_avg, exp_avg_sq, rows, grad };
            // every gradient checked before anything changes (the kernel checks those
            // of one call, and each group is a call)
            tensor.check(i).map_err(|e| StepError::Refused { message: e.to_string() })?;
            by_group[owners[i]].push(tensor);
        }
        for (g, tensors) in by_group.into_iter().enumerate() {
            sparse_adam(&self.groups[g].hyper, tensors).expect("checked above");
        }
        if self.state.len() < n {
            self.state.resize(n, None);
        }
        for (slot, new) in self.state.iter_mut().zip(fresh) {
            if new.is_some() {
                *slot = new;
            }
        }
        Ok(())
    }
}

torch_layout! {
    SparseAdamHyper: ["step"] ["exp_avg", "exp_avg_sq"] { lr, betas, eps, maximize }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dict::{from_bytes, to_bytes};

    /// torch's `_functional.sparse_adam` of one step from fresh state, in float64,
    /// on the rows `grad` lists (duplicates summed).
    fn reference(h: &SparseAdamHyper, param: &mut [f64], row_len: usize, indices: &[i64], values: &[f64]) {
        let mut rows: Vec<(usize, Vec<f64>)> = Vec::new();
        for (k, &r) in indices.iter().enumerate() {
            let v = &values[k * row_len..(k + 1) * row_len];
            match rows.iter_mut().find(|(row, _)| *row == r as usize) {
                Some((_, sum)) => sum.iter_mut().zip(v).for_each(|(s, x)| *s += x),
                None => rows.push((r as usize, v.to_vec())),
            }
        }
        let (b1, b2) = h.betas;
        let step_size = h.lr * (1.0 - b2).sqrt() / (1.0 - b1);
        for (r, g) in rows {
            for (j, g) in g.into_iter().enumerate() {
                let (dm, dv) = (g * (1.0 - b1), g * g * (1.0 - b2));
                param[r * row_len + j] -= step_size * (dm / (dv.sqrt() + h.eps));
            }
        }
    }

    #[test]
    fn steps_the_listed_rows_as_torch() {
        let h = SparseAdamHyper { lr: 0.1, ..Default::default() };
        let mut table: Vec<f64> = (0..15).map(|i| i as f64 * 0.1).collect();
        let mut want = table.clone();
        let mut opt = SparseAdam::new(h).unwrap();
        opt.set_shape(0, &[5, 3]);
        let (indices, values) = ([3i64, 0, 3], [0.5, -0.5, 1.0, 2.0, 0.0, -1.0, 0.25, 0.25, 0.25]);
        opt.step_sparse(&mut [&mut table], &[Some(SparseRows { indices: &indices, values: &values })]).unwrap();
        reference(&h, &mut want, 3, &indices, &values);
        for (g, w) in table.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
        }
        assert_eq!(table[3..9], want[3..9], "rows not listed keep their values");
        // a gradient of no rows counts a step
        opt.step_sparse(&mut [&mut table], &[Some(SparseRows { indices: &[], values: &[] })]).unwrap();
        assert_eq!(opt.state(0).unwrap().scalars[0], 2.0);
    }

    /// The plain step, and a bad gradient in a later group, are refused and change
    /// nothing; a state dict saved and loaded continues bit for bit.
    #[test]
    fn refuses_without_changing_anything_and_resumes() {
        let mut opt = SparseAdam::<f32>::with_params(SparseAdamHyper::default(), 1).unwrap();
        opt.add_param_group(SparseAdamHyper { lr: 0.01, ..Default::default() }, 1).unwrap();
        let (mut a, mut b) = (vec![1.0f32; 6], vec![2.0f32; 4]);
        let err = opt.step(&mut [&mut a, &mut b], &[&[1.0; 6], &[1.0; 4]]).unwrap_err();
        assert_eq!(err.to_string(), DENSE);
        let good = SparseRows { indices: &[1], values: &[1.0f32; 1] };
        let out_of_range = SparseRows { indices: &[7], values: &[1.0f32; 1] };
        let err = opt.step_sparse(&mut [&mut a, &mut b], &[Some(good), Some(out_of_range)]).unwrap_err();
        assert_eq!(err.to_string(), "tensor 1: row index 7 is out of range for 4 rows");
        assert!(a == [1.0; 6] && opt.state(0).is_none() && opt.state(1).is_none());
        for _ in 0..2 {
            opt.step_sparse(&mut [&mut a, &mut b], &[Some(good), None]).unwrap();
        }
        let sd = from_bytes(&to_bytes(&opt.state_dict()).unwrap()).unwrap();
        let mut resumed = SparseAdam::<f32>::with_params(SparseAdamHyper::default(), 1).unwrap();
        resumed.add_param_group(SparseAdamHyper::default(), 1).unwrap();
        resumed.load_state_dict(&sd).unwrap();
        let (mut a2, mut b2) = (a.clone(), b.clone());
        let g = [Some(good), Some(SparseRows { indices: &[0, 3], values: &[0.5f32, -0.5] })];
        opt.step_sparse(&mut [&mut a, &mut b], &g).unwrap();
        resumed.step_sparse(&mut [&mut a2, &mut b2], &g).unwrap();
        assert_eq!((a, b), (a2, b2));
        assert_eq!(opt.state_dict(), resumed.state_dict());
    }
}
