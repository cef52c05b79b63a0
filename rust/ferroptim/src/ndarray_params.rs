//! Parameters and gradients as `ndarray` arrays (the `ndarray` cargo feature):
//! [`Optimizer::step_ndarray`].
//!
//! ```
//! use ferroptim::{Adam, AdamHyper};
//! use ndarray::Array2;
//!
//! let mut w = Array2::<f32>::zeros((3, 4));
//! let mut opt = Adam::new(AdamHyper { lr: 0.1, ..AdamHyper::adam() }).unwrap();
//! for _ in 0..200 {
//!     let grad = w.mapv(|x| 2.0 * (x - 1.0)); // d/dw (w - 1)²
//!     opt.step_ndarray(&mut [w.view_mut()], &[grad.view()]).unwrap();
//! }
//! assert!(w.iter().all(|x| (x - 1.0).abs() < 0.05));
//! ```

use ndarray::{ArrayView, ArrayViewMut, Dimension};

use crate::element::Element;
use crate::optim::{Optimizer, Rule, StepError};

impl<K: Rule, T: Element> Optimizer<K, T> {
    /// One step over parameters held as `ndarray` arrays of any dimension, each with
    /// its gradient: [`Optimizer::step`] over their elements. Every array must be in
    /// standard layout (C order, contiguous) and every gradient of its parameter's
    /// shape; otherwise nothing changes. The arrays' shapes are the parameters' (see
    /// [`Optimizer::set_shape`]).
    pub fn step_ndarray<D: Dimension>(
        &mut self,
        params: &mut [ArrayViewMut<'_, T, D>],
        grads: &[ArrayView<'_, T, D>],
    ) -> Result<(), StepError> {
        if params.len() != grads.len() {
            return Err(StepError::Count { params: params.len(), grads: grads.len() });
        }
        for (index, (p, g)) in params.iter().zip(grads).enumerate() {
            if p.shape() != g.shape() {
                return Err(StepError::GradShape { index, param: p.shape().to_vec(), grad: g.shape().to_vec() });
            }
            if !p.is_standard_layout() || !g.is_standard_layout() {
                return Err(StepError::Layout { index });
            }
        }
        let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.shape().to_vec()).collect();
        let mut slices: Vec<&mut [T]> =
            params.iter_mut().map(|p| p.as_slice_mut().expect("standard layout, checked above")).collect();
        let grads: Vec<Option<&[T]>> =
            grads.iter().map(|g| Some(g.as_slice().expect("standard layout, checked above"))).collect();
        let shape_of: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        self.step_shaped(&mut slices, &grads, Some(&shape_of))
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2, Ix2};

    use crate::{Adam, AdamHyper, StepError};

    fn adam() -> Adam<f64> {
        Adam::new(AdamHyper { lr: 0.1, weight_decay: 0.01, ..AdamHyper::adam() }).unwrap()
    }

    #[test]
    fn steps_as_the_slices_of_the_same_elements() {
        let (mut a, mut b) = (Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f64 * 0.1), Array2::ones((2, 2)));
        let (mut flat_a, mut flat_b) = (a.as_slice().unwrap().to_vec(), b.as_slice().unwrap().to_vec());
        let (mut by_arrays, mut by_slices) = (adam(), adam());
        for step in 0..4 {
            let ga = a.mapv(|x| x * x - step as f64);
            let gb = b.mapv(|x| x + 1.0);
            let (ga_flat, gb_flat) = (ga.as_slice().unwrap().to_vec(), gb.as_slice().unwrap().to_vec());
            by_arrays.step_ndarray(&mut [a.view_mut(), b.view_mut()], &[ga.view(), gb.view()]).unwrap();
            by_slices.step(&mut [&mut flat_a, &mut flat_b], &[&ga_flat, &gb_flat]).unwrap();
            assert_eq!(a.as_slice().unwrap(), &flat_a[..]);
            assert_eq!(b.as_slice().unwrap(), &flat_b[..]);
        }
    }

    #[test]
    fn refuses_other_layouts_and_shapes_and_changes_nothing() {
        let mut opt = adam();
        let mut w = Array2::<f64>::ones((3, 4));
        let g = Array2::<f64>::ones((3, 4));
        let before = w.clone();
        // a transposed view is not one C-ordered slice
        let mut t = w.view_mut().reversed_axes();
        let gt = Array2::<f64>::ones((4, 3));
        assert_eq!(opt.step_ndarray(&mut [t.view_mut()], &[gt.view()]), Err(StepError::Layout { index: 0 }));
        let wrong = Array2::<f64>::ones((4, 3));
        let err = opt.step_ndarray::<Ix2>(&mut [w.view_mut()], &[wrong.view()]).unwrap_err();
        assert_eq!(err, StepError::GradShape { index: 0, param: vec![3, 4], grad: vec![4, 3] });
        assert_eq!(err.to_string(), "parameter 0 has shape [3, 4] but its gradient [4, 3]");
        let err = opt.step_ndarray(&mut [w.view_mut()], &[g.view(), g.view()]).unwrap_err();
        assert_eq!(err, StepError::Count { params: 1, grads: 2 });
        assert_eq!(w, before);
        assert!(opt.state(0).is_none());
        // and a vector works as any other dimension
        let mut v = Array1::<f64>::zeros(5);
        opt.step_ndarray(&mut [v.view_mut()], &[Array1::ones(5).view()]).unwrap();
        assert!(v.iter().all(|&x| x < 0.0));
    }
}
