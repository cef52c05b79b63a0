//! State dicts as the Python package writes them, and checkpoint files of them.
//!
//! A Python state dict is a tree of dicts, lists, tuples, numbers, strings, booleans,
//! None and arrays; [`Value`] is that tree in Rust. [`save`] and [`load`] write and
//! read it as the files `ferroptim.save` and `ferroptim.load` use (safetensors, see
//! [`crate::checkpoint`]), so a checkpoint moves between a Rust program and a Python
//! one: an [`Optimizer`](crate::Optimizer)'s `state_dict()` is the Python optimizer's,
//! key for key.
//!
//! ```
//! use ferroptim::state_dict::{from_bytes, to_bytes, Value};
//!
//! let sd = Value::dict([("epoch", Value::Int(3)), ("lr", Value::Float(1e-3))]);
//! assert_eq!(from_bytes(&to_bytes(&sd).unwrap()).unwrap(), sd);
//! ```
//!
//! The structure is stored as JSON beside the arrays: `{"tree": node, "arrays":
//! [[numpy dtype, shape], ...]}`, a node being `null`, `true`/`false`, a string, or
//! `{"int": "12"}`, `{"float": "1e-08"}`, `{"array": i}`, `{"scalar": node}` (a NumPy
//! scalar, read back as its 0-d array), `{"list": [..]}`, `{"tuple": [..]}`,
//! `{"dict": [[key, value], ..]}`.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value as Json};

use crate::checkpoint::{self, CheckpointError, Dtype, Entry};
use crate::element::Element;

/// One node of a state dict.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Python's None.
    None,
    /// A boolean.
    Bool(bool),
    /// An integer (Python's are unbounded; a file's beyond 64 bits is refused).
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A NumPy array.
    Array(Array),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict, its entries in order.
    Dict(Vec<(Value, Value)>),
}

/// An array: its dtype, shape and elements (little-endian bytes, C order).
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// The element type.
    pub dtype: Dtype,
    /// The dims, outermost first (empty: a 0-d array).
    pub shape: Vec<usize>,
    /// The elements, little-endian, C order.
    pub data: Vec<u8>,
}

/// The dtype of `T` (float32 or float64).
pub(crate) fn dtype_of<T: Element>() -> Dtype {
    if std::mem::size_of::<T>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

impl Array {
    /// A float array of `shape` holding `values`.
    ///
    /// # Panics
    /// If `values` are not as many as the shape holds.
    pub fn of<T: Element>(shape: Vec<usize>, values: &[T]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "the shape holds another count of elements");
        let data = match dtype_of::<T>() {
            Dtype::F32 => values.iter().flat_map(|v| (v.to_f64().unwrap_or(f64::NAN) as f32).to_le_bytes()).collect(),
            _ => values.iter().flat_map(|v| v.to_f64().unwrap_or(f64::NAN).to_le_bytes()).collect(),
        };
        Array { dtype: dtype_of::<T>(), shape, data }
    }

    /// A 0-d float64 array (how the Python package keeps scalar state such as `step`).
    pub fn scalar(value: f64) -> Self {
        Self::of(Vec::new(), &[value])
    }

    /// The elements as `T`, if the array holds floats (float32 or float64: converted
    /// as NumPy's `astype` converts them).
    pub fn to_vec<T: Element>(&self) -> Option<Vec<T>> {
        match self.dtype {
            Dtype::F32 => Some(
                self.data.chunks_exact(4).map(|b| T::of(f32::from_le_bytes(b.try_into().unwrap()) as f64)).collect(),
            ),
            Dtype::F64 => {
                Some(self.data.chunks_exact(8).map(|b| T::of(f64::from_le_bytes(b.try_into().unwrap()))).collect())
            }
            _ => None,
        }
    }
}

impl Value {
    /// A dict with string keys.
    pub fn dict<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        Value::Dict(entries.into_iter().map(|(k, v)| (Value::Str(k.to_string()), v)).collect())
    }

    /// The value under `key` in a dict (string keys), if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(d) => d.iter().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value under `key` in a dict (string keys), to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Dict(d) => d.iter_mut().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A number as a float (Python's `float(x)` of an int or a float).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(x) => Some(x),
            Value::Int(i) => Some(i as f64),
            _ => None,
        }
    }

    /// The items of a list or a tuple.
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// What Python calls this value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Array(_) => "ndarray",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
        }
    }
}

/// NumPy's name of a dtype (`dtype.str`, little-endian).
fn numpy_name(dtype: Dtype) -> Option<&'static str> {
    Some(match dtype {
        Dtype::BOOL => "|b1",
        Dtype::U8 => "|u1",
        Dtype::I8 => "|i1",
        Dtype::U16 => "<u2",
        Dtype::I16 => "<i2",
        Dtype::F16 => "<f2",
        Dtype::U32 => "<u4",
        Dtype::I32 => "<i4",
        Dtype::F32 => "<f4",
        Dtype::U64 => "<u8",
        Dtype::I64 => "<i8",
        Dtype::F64 => "<f8",
        _ => return None,
    })
}

/// The dtype NumPy's `dtype.str` names (either byte order: the stored bytes are
/// little-endian), if a checkpoint stores it as itself.
fn numpy_dtype(name: &str) -> Option<Dtype> {
    let plain = name.trim_start_matches(['<', '>', '|', '=']);
    [
        Dtype::BOOL,
        Dtype::U8,
        Dtype::I8,
        Dtype::U16,
        Dtype::I16,
        Dtype::F16,
        Dtype::U32,
        Dtype::I32,
        Dtype::F32,
        Dtype::U64,
        Dtype::I64,
        Dtype::F64,
    ]
    .into_iter()
    .find(|&d| numpy_name(d).is_some_and(|n| &n[1..] == plain))
}

fn bad(why: impl Into<String>) -> CheckpointError {
    CheckpointError(why.into())
}

fn encode<'a>(v: &'a Value, arrays: &mut Vec<&'a Array>) -> Result<Json, CheckpointError> {
    Ok(match v {
        Value::None => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Str(s) => json!(s),
        Value::Int(i) => json!({ "int": i.to_string() }),
        Value::Float(x) => json!({ "float": format!("{x:?}") }),
        Value::Array(a) => {
            if numpy_name(a.dtype).is_none() {
                return Err(bad(format!("arrays of dtype {:?} cannot be saved", a.dtype)));
            }
            arrays.push(a);
            json!({ "array": arrays.len() - 1 })
        }
        Value::List(items) => {
            json!({ "list": items.iter().map(|x| encode(x, arrays)).collect::<Result<Vec<_>, _>>()? })
        }
        Value::Tuple(items) => {
            json!({ "tuple": items.iter().map(|x| encode(x, arrays)).collect::<Result<Vec<_>, _>>()? })
        }
        Value::Dict(entries) => {
            let pairs = entries.iter().map(|(k, x)| Ok(json!([encode(k, arrays)?, encode(x, arrays)?])));
            json!({ "dict": pairs.collect::<Result<Vec<_>, CheckpointError>>()? })
        }
    })
}

fn decode(node: &Json, arrays: &mut [Option<Array>]) -> Result<Value, CheckpointError> {
    let malformed = || bad(format!("has a malformed entry in its header: {:.80}", node.to_string()));
    Ok(match node {
        Json::Null => Value::None,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::Str(s.clone()),
        Json::Object(o) if o.len() == 1 => {
            let (tag, value) = o.iter().next().expect("one entry");
            let list = |v: &Json, arrays: &mut [Option<Array>]| -> Result<Vec<Value>, CheckpointError> {
                v.as_array().ok_or_else(malformed)?.iter().map(|x| decode(x, arrays)).collect()
            };
            match tag.as_str() {
                "int" => Value::Int(value.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
                    bad(format!("holds an int this reader cannot hold in 64 bits: {:.40}", value.to_string()))
                })?),
                "float" => Value::Float(value.as_str().and_then(|s| s.parse().ok()).ok_or_else(malformed)?),
                "array" => {
                    let i = value.as_u64().ok_or_else(malformed)? as usize;
                    // each array is referenced once (Python's fo.save writes it so)
                    Value::Array(arrays.get_mut(i).and_then(Option::take).ok_or_else(malformed)?)
                }
                "scalar" => decode(value, arrays)?,
                "list" => Value::List(list(value, arrays)?),
                "tuple" => Value::Tuple(list(value, arrays)?),
                "dict" => {
                    let pairs = value.as_array().ok_or_else(malformed)?;
                    let entry = |p: &Json, arrays: &mut [Option<Array>]| match p.as_array().map(Vec::as_slice) {
                        Some([k, v]) => Ok((decode(k, arrays)?, decode(v, arrays)?)),
                        _ => Err(malformed()),
                    };
                    Value::Dict(pairs.iter().map(|p| entry(p, arrays)).collect::<Result<_, _>>()?)
                }
                _ => return Err(bad(format!("has an unknown entry {tag:?} in its header"))),
            }
        }
        _ => return Err(malformed()),
    })
}

/// The bytes of a checkpoint of `value` (what `ferroptim.dumps` writes).
///
/// # Errors
/// If an array's bytes do not fit its dtype and shape.
pub fn to_bytes(value: &Value) -> Result<Vec<u8>, CheckpointError> {
    let mut arrays = Vec::new();
    let tree = encode(value, &mut arrays)?;
    let table: Vec<Json> = arrays.iter().map(|a| json!([numpy_name(a.dtype), a.shape])).collect();
    let header = json!({ "tree": tree, "arrays": table }).to_string();
    let names: Vec<String> = (0..arrays.len()).map(|i| i.to_string()).collect();
    let entries: Vec<Entry<'_>> = (arrays.iter().zip(&names))
        .map(|(a, name)| Entry { name: name.clone(), dtype: a.dtype, shape: a.shape.clone(), data: &a.data })
        .collect();
    checkpoint::write(&entries, &header)
}

/// The value a checkpoint's bytes hold (what `ferroptim.loads` reads).
///
/// # Errors
/// If the bytes are not a complete, intact checkpoint, or hold what a [`Value`]
/// cannot (complex arrays, an int beyond 64 bits).
pub fn from_bytes(bytes: &[u8]) -> Result<Value, CheckpointError> {
    let (header, entries) = checkpoint::read(bytes)?;
    let header: Json = serde_json::from_str(&header).map_err(|e| bad(format!("has a malformed header: {e}")))?;
    let (Some(tree), Some(table)) = (header.get("tree"), header.get("arrays").and_then(Json::as_array)) else {
        return Err(bad("has a malformed header: no tree or arrays"));
    };
    let mut arrays = Vec::with_capacity(table.len());
    for (i, row) in table.iter().enumerate() {
        let (name, shape) = match row.as_array().map(Vec::as_slice) {
            Some([Json::String(name), Json::Array(shape)]) => (name, shape),
            _ => return Err(bad(format!("has a malformed header: array {i}"))),
        };
        let shape: Option<Vec<usize>> = shape.iter().map(|d| d.as_u64().map(|d| d as usize)).collect();
        let dtype = numpy_dtype(name)
            .ok_or_else(|| bad(format!("holds array {i} of dtype {name}, which this reader does not hold")))?;
        let found = entries.iter().find(|e| e.name == i.to_string());
        match (found, shape) {
            (Some(e), Some(shape)) if e.dtype == dtype && e.shape == shape => {
                arrays.push(Some(Array { dtype, shape, data: e.data.to_vec() }))
            }
            _ => return Err(bad(format!("has array {i} that is not the {name} its header says"))),
        }
    }
    decode(tree, &mut arrays)
}

/// Writes `value` to `path` as `ferroptim.save` does, atomically: `path` holds the old
/// file or the new one, never a part of either (a temporary file beside it, flushed
/// and synced, then renamed over it).
///
/// # Errors
/// As [`to_bytes`], or the file system's error.
pub fn save(value: &Value, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let bytes = to_bytes(value)?;
    let io = |e: std::io::Error| bad(format!("cannot be written: {e}"));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| bad("is not a file name"))?.to_string_lossy();
    let tmp = dir.join(format!(".ferroptim-{}-{}.tmp", name, std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // the rename is durable once the directory is synced (where it can be opened)
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// Reads what [`save`] (or `ferroptim.save`) wrote.
///
/// # Errors
/// As [`from_bytes`], or the file system's error.
pub fn load(path: impl AsRef<Path>) -> Result<Value, CheckpointError> {
    let bytes = fs::read(path.as_ref()).map_err(|e| bad(format!("cannot be read: {e}")))?;
    from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        Value::dict([
            ("state", Value::Dict(vec![(Value::Int(0), Value::dict([("step", Value::Array(Array::scalar(3.0)))]))])),
            ("w", Value::Array(Array::of(vec![2, 2], &[1.0f32, -2.5, 3.25, f32::INFINITY]))),
            ("betas", Value::Tuple(vec![Value::Float(0.9), Value::Float(0.999)])),
            ("eps", Value::Float(1e-8)),
            ("nan", Value::Float(f64::NAN)),
            ("big", Value::Int(i64::MIN)),
            ("flags", Value::List(vec![Value::Bool(true), Value::None, Value::Str("x".into())])),
        ])
    }

    #[test]
    fn round_trips_every_kind_of_value() {
        let v = sample();
        let back = from_bytes(&to_bytes(&v).unwrap()).unwrap();
        // NaN is not equal to itself: compare the rest, then its bits
        let Value::Float(nan) = back.get("nan").unwrap() else { panic!("a float") };
        assert!(nan.is_nan());
        let strip = |v: &Value| match v {
            Value::Dict(d) => Value::Dict(d.iter().filter(|(k, _)| *k != Value::Str("nan".into())).cloned().collect()),
            _ => unreachable!(),
        };
        assert_eq!(strip(&back), strip(&v));
        assert_eq!(
            back.get("w").and_then(|w| if let Value::Array(a) = w { a.to_vec::<f64>() } else { None }).unwrap(),
            [1.0, -2.5, 3.25, f64::INFINITY]
        );
    }

    #[test]
    fn saves_atomically_and_refuses_damaged_files() {
        let dir = std::env::temp_dir().join(format!("ferroptim-sd-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ckpt.fo");
        save(&sample(), &path).unwrap();
        save(&Value::Int(1), &path).unwrap();
        assert_eq!(load(&path).unwrap(), Value::Int(1));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 1);
        assert!(from_bytes(&bytes).is_err());
        assert!(load(dir.join("missing.fo")).unwrap_err().0.contains("cannot be read"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
