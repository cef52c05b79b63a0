//! Checkpoint files as safetensors, the ecosystem's pickle-free format: any
//! safetensors reader opens them, and Rust programs read and write the same files as
//! `ferroptim.save` / `ferroptim.load` in Python.
//!
//! A file is a safetensors file (written and parsed by the `safetensors` crate) whose
//! tensors are the checkpoint's arrays and whose metadata (`__metadata__`) holds:
//!
//! ```text
//! "ferroptim.format"   "2"
//! "ferroptim.tree"     the structure around the arrays, as JSON (Python's fo.save: dicts,
//!                      lists, numbers, strings; each array referenced by its tensor name)
//! "ferroptim.sha256"   SHA-256 of the tree and of every tensor in name order
//!                      (its name, a 0 byte, its dtype, its shape, its bytes), in hex
//! ```
//!
//! [`read`] verifies the checksum before returning anything, so a corrupted or
//! truncated file is an error, never a half-read state.

use std::collections::HashMap;
use std::fmt;

use safetensors::tensor::TensorView;
pub use safetensors::Dtype;
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

/// The format version this module writes and reads.
pub const FORMAT: &str = "2";
const KEY_FORMAT: &str = "ferroptim.format";
const KEY_TREE: &str = "ferroptim.tree";
const KEY_SHA: &str = "ferroptim.sha256";

/// One array of a checkpoint: its name, dtype, shape and bytes (little-endian, C order).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<'a> {
    /// The name the array is stored under (its path in the state tree).
    pub name: String,
    /// The element type.
    pub dtype: Dtype,
    /// The dims, outermost first (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// The elements, little-endian, C order: as many bytes as the shape and dtype say.
    pub data: &'a [u8],
}

/// A file that is not a complete, intact ferroptim checkpoint, or arrays that cannot
/// be written as one. The message continues a sentence about the file ("is corrupted
/// or truncated: ...").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointError(pub String);

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckpointError {}

/// The dtypes a checkpoint stores, with their names as safetensors' header spells
/// them (fixed here: the checksum covers them).
const DTYPE_NAMES: [(Dtype, &str); 13] = [
    (Dtype::BOOL, "BOOL"),
    (Dtype::U8, "U8"),
    (Dtype::I8, "I8"),
    (Dtype::U16, "U16"),
    (Dtype::I16, "I16"),
    (Dtype::F16, "F16"),
    (Dtype::BF16, "BF16"),
    (Dtype::U32, "U32"),
    (Dtype::I32, "I32"),
    (Dtype::F32, "F32"),
    (Dtype::U64, "U64"),
    (Dtype::I64, "I64"),
    (Dtype::F64, "F64"),
];

/// A dtype's name as safetensors' header spells it.
pub fn dtype_name(dtype: Dtype) -> String {
    DTYPE_NAMES.iter().find(|(d, _)| *d == dtype).map_or_else(|| format!("{dtype:?}"), |(_, n)| n.to_string())
}

/// The dtype [`dtype_name`] names `name`, if a checkpoint stores it.
pub fn dtype_named(name: &str) -> Option<Dtype> {
    DTYPE_NAMES.iter().find(|(_, n)| *n == name).map(|(d, _)| *d)
}

/// The checksum of a tree and its entries (in name order, whatever order given).
fn checksum(tree: &str, entries: &[Entry<'_>]) -> String {
    let mut sorted: Vec<&Entry<'_>> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    h.update(tree.as_bytes());
    for e in sorted {
        h.update(e.name.as_bytes());
        h.update([0u8]);
        let shape: Vec<String> = e.shape.iter().map(|d| d.to_string()).collect();
        h.update(format!("{}[{}]", dtype_name(e.dtype), shape.join(",")).as_bytes());
        h.update(e.data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a checkpoint of `entries` around `tree`.
///
/// # Errors
/// If an entry's bytes do not fit its dtype and shape, or two share a name.
pub fn write(entries: &[Entry<'_>], tree: &str) -> Result<Vec<u8>, CheckpointError> {
    let mut views = Vec::with_capacity(entries.len());
    for e in entries {
        let view = TensorView::new(e.dtype, e.shape.clone(), e.data)
            .map_err(|err| CheckpointError(format!("array {:?}: {err}", e.name)))?;
        views.push((e.name.clone(), view));
    }
    let names: std::collections::HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    if names.len() != entries.len() {
        return Err(CheckpointError("two arrays share a name".into()));
    }
    let metadata = HashMap::from([
        (KEY_FORMAT.to_string(), FORMAT.to_string()),
        (KEY_TREE.to_string(), tree.to_string()),
        (KEY_SHA.to_string(), checksum(tree, entries)),
    ]);
    safetensors::serialize(views, Some(metadata)).map_err(|err| CheckpointError(err.to_string()))
}

/// The tree and the entries (borrowing `bytes`) of a checkpoint, its checksum verified.
///
/// # Errors
/// If `bytes` are not a safetensors file, not a ferroptim checkpoint of this format,
/// or do not match their checksum (corrupted or truncated).
pub fn read(bytes: &[u8]) -> Result<(String, Vec<Entry<'_>>), CheckpointError> {
    let bad = |why: String| CheckpointError(why);
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("is not a ferroptim checkpoint (not a safetensors file, or truncated: {e})")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    match metadata.get(KEY_FORMAT).map(String::as_str) {
        Some(FORMAT) => {}
        Some(other) => return Err(bad(format!("has checkpoint format {other}, this ferroptim reads {FORMAT}"))),
        None => return Err(bad("is not a ferroptim checkpoint (a safetensors file without ferroptim.format)".into())),
    }
    let (Some(tree), Some(sha)) = (metadata.get(KEY_TREE), metadata.get(KEY_SHA)) else {
        return Err(bad("is not a ferroptim checkpoint (no ferroptim.tree or ferroptim.sha256)".into()));
    };
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("is malformed or truncated ({e})")))?;
    let entries: Vec<Entry<'_>> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| Entry { name, dtype: view.dtype(), shape: view.shape().to_vec(), data: view.data() })
        .collect();
    if &checksum(tree, &entries) != sha {
        return Err(bad("is corrupted or truncated: its checksum does not match".into()));
    }
    Ok((tree.clone(), entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<u8>) {
        ((0..24u8).collect(), 1.5f64.to_le_bytes().to_vec())
    }

    #[test]
    fn round_trips_and_any_safetensors_reader_sees_the_arrays() {
        let (a, s) = sample();
        let entries = vec![
            Entry { name: "0".into(), dtype: Dtype::F32, shape: vec![2, 3], data: &a },
            Entry { name: "1".into(), dtype: Dtype::F64, shape: vec![], data: &s },
            Entry { name: "2".into(), dtype: Dtype::U8, shape: vec![0, 4], data: &[] },
        ];
        let bytes = write(&entries, r#"{"list":[{"array":"0"}]}"#).unwrap();
        let (tree, back) = read(&bytes).unwrap();
        assert_eq!(tree, r#"{"list":[{"array":"0"}]}"#);
        let mut back = back;
        back.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(back, entries);
        let plain = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(plain.tensor("0").unwrap().data(), &a[..]);
    }

    #[test]
    fn corruption_truncation_and_foreign_files_are_errors() {
        let (a, _) = sample();
        let entries = vec![Entry { name: "w".into(), dtype: Dtype::F32, shape: vec![6], data: &a }];
        let bytes = write(&entries, "{}").unwrap();
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(read(&flipped).unwrap_err().0.contains("checksum"));
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
        assert!(read(&bytes[..5]).is_err());
        let foreign = safetensors::serialize(
            vec![("w", TensorView::new(Dtype::F32, vec![6], &a).unwrap())],
            None::<HashMap<String, String>>,
        )
        .unwrap();
        assert!(read(&foreign).unwrap_err().0.contains("not a ferroptim checkpoint"));
        let wrong = vec![Entry { name: "w".into(), dtype: Dtype::F32, shape: vec![5], data: &a }];
        assert!(write(&wrong, "{}").is_err());
    }
}
