//! `_core.bucket_pack`, `_core.bucket_unpack_`: the gradient buckets of
//! `ferroptim.distributed` (see `ferroptim::kernels::bucket`), one call per bucket.

use ferroptim::kernels::bucket::{pack, unpack};
use ferroptim::Element;
use numpy::PyUntypedArrayMethods;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::arrays::{param_operand, read_operand, Dtype};
use crate::held::slice;
use crate::held::Held;
use crate::step::KERNEL_LOCK;

/// The bucket and the parts, checked (one dtype; the written ones writeable and
/// apart from every other) and held: (held, dtype, bucket pointer and length, parts'
/// pointers and lengths).
struct Bucket {
    held: Held,
    dtype: Dtype,
    bucket: (usize, usize),
    parts: Vec<(usize, usize)>,
}

// SAFETY: the pointers point into arrays `held` keeps alive until the copy is done,
// and `KERNEL_LOCK` keeps other Rust code off them while the GIL is released.
unsafe impl Send for Bucket {}

fn gather(py: Python<'_>, bucket: Bound<'_, PyAny>, parts: Vec<Bound<'_, PyAny>>, pack: bool) -> PyResult<Bucket> {
    let mut held = Held::default();
    let n = parts.len() as u32;
    let name = if pack { "out" } else { "buffer" };
    let (op, dtype) =
        if pack { param_operand(bucket, &|| name.to_string())? } else { read_operand(bucket, &|| name.to_string())? };
    let len = op.array.len();
    let bucket = (held.hold(op, pack, n) as usize, len);
    let mut out = Vec::with_capacity(parts.len());
    for (i, a) in parts.into_iter().enumerate() {
        let what = || format!("parts[{i}]");
        let (op, d) = if pack { read_operand(a, &what)? } else { param_operand(a, &what)? };
        if d != dtype {
            return Err(PyTypeError::new_err(format!("{}: its dtype is not the {name}'s", what())));
        }
        let len = op.array.len();
        out.push((held.hold(op, !pack, i as u32) as usize, len));
    }
    let total: usize = out.iter().map(|p| p.1).sum();
    if total != len {
        return Err(PyValueError::new_err(format!("the {name} has {len} elements, the parts {total}")));
    }
    if let Some((a, b)) = held.find_overlap(py)? {
        let label = |w: u32| if w == n { name.to_string() } else { format!("parts[{w}]") };
        return Err(PyValueError::new_err(format!("{} and {} share memory", label(a), label(b))));
    }
    Ok(Bucket { held, dtype, bucket, parts: out })
}

fn run<T: Element>(b: &Bucket, pack_it: bool, divisor: f64) {
    // SAFETY: every pointer is the data of an array `b.held` keeps alive, of `T` (one
    // dtype, checked), C-contiguous and aligned (the operands), the written ones
    // overlapping nothing else (checked); `KERNEL_LOCK` keeps other Rust code off.
    unsafe {
        let bucket = slice::<T>(b.bucket.0 as *mut u8, b.bucket.1);
        let mut parts: Vec<&mut [T]> = b.parts.iter().map(|&(p, l)| slice::<T>(p as *mut u8, l)).collect();
        if pack_it {
            let parts: Vec<&[T]> = parts.iter().map(|p| &**p).collect();
            pack(&parts, bucket);
        } else {
            unpack(bucket, &mut parts, T::of(divisor));
        }
    }
}

fn copy(py: Python<'_>, b: Bucket, pack_it: bool, divisor: f64) -> PyResult<()> {
    let b = py.detach(move || {
        let _exclusive = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        match b.dtype {
            Dtype::F32 => run::<f32>(&b, pack_it, divisor),
            Dtype::F64 => run::<f64>(&b, pack_it, divisor),
        }
        b
    });
    b.held.copy_back(py)
}

/// `out ← concat(parts)`: one dtype, `out` writeable and as long as the parts together.
#[pyfunction]
pub(crate) fn bucket_pack(py: Python<'_>, parts: Vec<Bound<'_, PyAny>>, out: Bound<'_, PyAny>) -> PyResult<()> {
    let b = gather(py, out, parts, true)?;
    copy(py, b, true, 1.0)
}

/// `parts[i] ← buffer[offsetᵢ ..] / divisor` (1: a copy), the parts in order.
#[pyfunction]
pub(crate) fn bucket_unpack_(
    py: Python<'_>,
    buffer: Bound<'_, PyAny>,
    parts: Vec<Bound<'_, PyAny>>,
    divisor: f64,
) -> PyResult<()> {
    let b = gather(py, buffer, parts, false)?;
    copy(py, b, false, divisor)
}
