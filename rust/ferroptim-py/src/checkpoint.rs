//! `_core.checkpoint_dumps`, `_core.checkpoint_loads`: `ferroptim.save` / `load`'s
//! files, written and read by `ferroptim::checkpoint` (safetensors, with the
//! structure and a checksum in its metadata).

use ferroptim::checkpoint::{dtype_name, dtype_named, read, write, Dtype, Entry};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fn dtype_of(name: &str) -> PyResult<Dtype> {
    dtype_named(name).ok_or_else(|| PyValueError::new_err(format!("no safetensors dtype {name:?}")))
}

/// The bytes of a checkpoint: `entries` as (name, safetensors dtype, shape, bytes).
#[pyfunction]
pub(crate) fn checkpoint_dumps<'py>(
    py: Python<'py>,
    entries: Vec<(String, String, Vec<usize>, Bound<'py, PyBytes>)>,
    tree: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut list = Vec::with_capacity(entries.len());
    for (name, dtype, shape, data) in &entries {
        list.push(Entry { name: name.clone(), dtype: dtype_of(dtype)?, shape: shape.clone(), data: data.as_bytes() });
    }
    let bytes = write(&list, tree).map_err(|e| PyValueError::new_err(e.0))?;
    Ok(PyBytes::new(py, &bytes))
}

/// The tree and the entries of a checkpoint's bytes, each entry as (name, dtype,
/// shape, start, end): its bytes are `data[start:end]`.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub(crate) fn checkpoint_loads(
    data: &Bound<'_, PyBytes>,
) -> PyResult<(String, Vec<(String, String, Vec<usize>, usize, usize)>)> {
    let bytes = data.as_bytes();
    let (tree, entries) = read(bytes).map_err(|e| PyValueError::new_err(e.0))?;
    let base = bytes.as_ptr() as usize;
    let out = entries
        .into_iter()
        .map(|e| {
            // the entries borrow `bytes`: each one's offset in it (an empty one: 0)
            let start = if e.data.is_empty() { 0 } else { e.data.as_ptr() as usize - base };
            (e.name, dtype_name(e.dtype), e.shape, start, start + e.data.len())
        })
        .collect();
    Ok((tree, out))
}
