"""``save`` / ``load``: checkpoint files for optimizer and scheduler state, without pickle.

A state dict — nested dicts, lists and tuples of arrays, numbers, strings, booleans and
None — is written as a safetensors file (the ecosystem's pickle-free format, written
and parsed in Rust by the ``safetensors`` crate: ``ferroptim::checkpoint``). Its
tensors are the arrays, named ``"0"``, ``"1"``, ...; its metadata holds::

    "ferroptim.format"   "2"
    "ferroptim.tree"     the structure, as JSON, each array as {"array": i}, with a
                         table of the arrays' own dtypes and shapes
    "ferroptim.sha256"   SHA-256 of the tree and every tensor

so ``safetensors.numpy.load_file(path)`` (or any safetensors reader) opens it and sees
the arrays. Complex arrays are stored as their real and imaginary parts (a last axis
of 2), big-endian ones in little-endian order; loading gives back each array's own
dtype. Files of the first format (``FERROPT\x01`` ...) still load.

Loading parses JSON and copies bytes into new arrays of the recorded dtype and shape:
no code runs, whatever the file holds. The checksum is verified first, so a truncated
or corrupted file is a clear ``CheckpointError``, never a half-read state.

Writes are atomic: the file is written to a temporary file in the same directory,
flushed and fsynced, renamed over the target (``os.replace``) and the directory is
fsynced, so ``path`` always holds either the previous checkpoint or the new one, even if
the process is killed mid-write.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
from typing import Any, List, Tuple, Union

import numpy as np

from . import _core

__all__ = ["CheckpointError", "load", "save"]

MAGIC = b"FERROPT\x01"
_LEN = struct.Struct("<Q")
_DIGEST = 32
# dtypes a checkpoint may hold: booleans, integers, floats, complex (no objects)
_KINDS = set("biufc")

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(ValueError):
    """A file that is not a complete, intact ferroptim checkpoint."""


# --------------------------------------------------------------------- encoding
def _encode(obj: Any, arrays: List[np.ndarray], where: str) -> Any:
    """The JSON form of ``obj``; arrays are appended to ``arrays`` and referenced."""
    if isinstance(obj, np.generic):  # before int / float: np.float64 is a float
        if obj.dtype.kind not in _KINDS:
            raise TypeError(f"{where}: scalars of dtype {obj.dtype} cannot be saved (no pickle)")
        return {"scalar": _encode(np.asarray(obj), arrays, where)}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return {"int": str(obj)}  # any size, exactly
    if isinstance(obj, float):
        return {"float": repr(float(obj))}  # nan, inf and every bit of the value
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _KINDS:
            raise TypeError(f"{where}: arrays of dtype {obj.dtype} cannot be saved (no pickle)")
        arrays.append(obj if obj.flags.c_contiguous else obj.copy(order="C"))  # (ascontiguousarray makes 0-d 1-d)
        return {"array": len(arrays) - 1}
    if isinstance(obj, dict):
        return {"dict": [[_encode(k, arrays, f"{where} key"), _encode(v, arrays, f"{where}[{k!r}]")] for k, v in obj.items()]}
    if isinstance(obj, list):
        return {"list": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(
        f"{where}: {type(obj).__module__}.{type(obj).__qualname__} cannot be saved; a checkpoint holds dicts, "
        "lists, tuples, arrays, numbers, strings, booleans and None"
    )


def _decode(node: Any, arrays: List[np.ndarray]) -> Any:
    if node is None or isinstance(node, (bool, str)):
        return node
    if not isinstance(node, dict) or len(node) != 1:
        raise CheckpointError(f"malformed entry in the checkpoint's header: {node!r:.80}")
    (tag, value), = node.items()
    if tag == "int":
        return int(value)
    if tag == "float":
        return float(value)
    if tag == "array":
        return arrays[value]
    if tag == "scalar":
        return _decode(value, arrays)[()]
    if tag == "dict":
        return {_decode(k, arrays): _decode(v, arrays) for k, v in value}
    if tag == "list":
        return [_decode(v, arrays) for v in value]
    if tag == "tuple":
        return tuple(_decode(v, arrays) for v in value)
    raise CheckpointError(f"unknown entry {tag!r} in the checkpoint's header")


#: numpy dtype (kind, itemsize) -> safetensors dtype of the stored bytes
_SAFETENSORS = {
    ("b", 1): "BOOL", ("u", 1): "U8", ("i", 1): "I8", ("u", 2): "U16", ("i", 2): "I16", ("f", 2): "F16",
    ("u", 4): "U32", ("i", 4): "I32", ("f", 4): "F32", ("u", 8): "U64", ("i", 8): "I64", ("f", 8): "F64",
    ("c", 8): "F32", ("c", 16): "F64",
}


def _layout(dtype: np.dtype, shape: Tuple[int, ...]) -> Tuple[str, np.dtype, Tuple[int, ...]]:
    """How an array of ``dtype`` and ``shape`` is stored: its safetensors dtype, the
    little-endian numpy dtype of the stored bytes and their shape (complex: float
    pairs on a last axis of 2)."""
    key = (dtype.kind, dtype.itemsize)
    if key not in _SAFETENSORS:
        raise TypeError(f"arrays of dtype {dtype} cannot be saved in a safetensors checkpoint")
    if dtype.kind == "c":
        return _SAFETENSORS[key], np.dtype(f"<f{dtype.itemsize // 2}"), shape + (2,)
    return _SAFETENSORS[key], dtype.newbyteorder("<"), shape


def _stored(a: np.ndarray) -> Tuple[str, np.ndarray]:
    """The safetensors dtype and the little-endian array ``a`` is stored as."""
    name, dtype, shape = _layout(a.dtype, a.shape)
    little = a.astype(a.dtype.newbyteorder("<"), copy=False).view(dtype).reshape(shape)
    return name, little if little.flags.c_contiguous else little.copy(order="C")  # (0-d stays 0-d)


def dumps(obj: Any) -> bytes:
    """The bytes of a checkpoint of ``obj``: a safetensors file (see the module
    docstring)."""
    arrays: List[np.ndarray] = []
    tree = _encode(obj, arrays, "the saved object")
    entries = []
    for i, a in enumerate(arrays):
        dtype, stored = _stored(a)
        entries.append((str(i), dtype, list(stored.shape), stored.tobytes()))
    table = [[a.dtype.str, list(a.shape)] for a in arrays]
    header = json.dumps({"tree": tree, "arrays": table}, separators=(",", ":"))
    return bytes(_core.checkpoint_dumps(entries, header))  # (the entries fit their dtypes and shapes)


def _loads_v2(data: bytes, what: str) -> Any:
    try:
        header_json, entries = _core.checkpoint_loads(data)
    except ValueError as e:
        raise CheckpointError(f"{what} {e}") from None
    try:
        header = json.loads(header_json)
        found = {name: (dtype, tuple(shape), start, end) for name, dtype, shape, start, end in entries}
        view = memoryview(data)
        arrays = []
        for i, (dtype, shape) in enumerate(header["arrays"]):
            dt = np.dtype(dtype)
            if dt.kind not in _KINDS:
                raise CheckpointError(f"{what}: bad array entry {dtype} {shape}")
            want, stored_dtype, stored_shape = _layout(dt, tuple(shape))
            got = found.get(str(i))
            if got is None or got[0] != want or got[1] != stored_shape:
                raise CheckpointError(f"{what}: array {i} is not the {dtype} {shape} its header says")
            raw = np.frombuffer(view[got[2] : got[3]], dtype=stored_dtype).reshape(stored_shape)
            if dt.kind == "c":
                raw = raw.view(dt.newbyteorder("<")).reshape(tuple(shape))
            arrays.append(raw.astype(dt, copy=True))
        return _decode(header["tree"], arrays)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise CheckpointError(f"{what} has a malformed header: {e}") from None


def loads(data: bytes, what: str = "checkpoint") -> Any:
    """The object a checkpoint's bytes hold (either format); ``CheckpointError`` if
    they are not a complete, intact checkpoint."""
    if not data.startswith(MAGIC[:7]):
        return _loads_v2(bytes(data), what)
    if len(data) < len(MAGIC) + _LEN.size + _DIGEST:
        raise CheckpointError(f"{what} is not a ferroptim checkpoint (or is truncated: {len(data)} bytes)")
    if data[: len(MAGIC)] != MAGIC:
        raise CheckpointError(f"{what} has checkpoint format version {data[7]}, this ferroptim reads {MAGIC[7]}")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"{what} is corrupted or truncated: its checksum does not match")
    (n,) = _LEN.unpack_from(body, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    try:
        header = json.loads(body[start : start + n].decode("utf-8"))
        payload = memoryview(body)[start + n :]
        arrays = []
        for dtype, shape, offset, nbytes in header["arrays"]:
            dt = np.dtype(dtype)
            if dt.kind not in _KINDS or offset < 0 or offset + nbytes > len(payload):
                raise CheckpointError(f"{what}: bad array entry {dtype} {shape}")
            if nbytes != dt.itemsize * math.prod(shape):
                raise CheckpointError(f"{what}: array of {nbytes} bytes for shape {shape} of {dtype}")
            arrays.append(np.frombuffer(payload[offset : offset + nbytes], dtype=dt).reshape(tuple(shape)).copy())
        return _decode(header["tree"], arrays)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise CheckpointError(f"{what} has a malformed header: {e}") from None


# ------------------------------------------------------------------------ files
def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not every platform opens directories (Windows): the rename is what matters
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(obj: Any, path: PathLike) -> None:
    """Writes ``obj`` (a state dict, or any nesting of dicts, lists and tuples of
    arrays, numbers, strings, booleans and None) to ``path``, atomically: ``path`` holds
    the old file or the new one, never a part of either.

    Example::

        fo.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, "ckpt.fo")
        ckpt = fo.load("ckpt.fo")
        opt.load_state_dict(ckpt["optimizer"])
    """
    data = dumps(obj)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ferroptim-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def load(path: PathLike) -> Any:
    """Reads what :func:`save` wrote: new arrays, no code run. A file that is not a
    complete, intact checkpoint raises ``CheckpointError`` naming the problem."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return loads(data, what=repr(path))

