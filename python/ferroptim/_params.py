"""What counts as a parameter, and the checks a param group gets when it is added."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .parameter import Parameter

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def typename(obj: Any) -> str:
    """``torch.typename``'s spelling: ``numpy.ndarray``, ``builtins.list``..."""
    t = type(obj)
    module = "ferroptim" if t is Parameter else t.__module__
    return f"{module}.{t.__qualname__}"


def is_duck_param(obj: Any) -> bool:
    """An object with an ndarray ``.data`` and a ``.grad`` attribute (mygrad, autograd
    wrappers, user classes)."""
    return isinstance(getattr(obj, "data", None), np.ndarray) and hasattr(obj, "grad")


def is_single_param(obj: Any) -> bool:
    """A single parameter where an iterable of them was expected."""
    return isinstance(obj, (np.ndarray, Parameter)) or (not isinstance(obj, dict) and is_duck_param(obj))


def label(group_index: int, index: int, names: Optional[Sequence[str]] = None) -> str:
    """``param_groups[g]['params'][i]``, with the parameter's name when it has one."""
    name = f" ('{names[index]}')" if names is not None and index < len(names) else ""
    return f"param_groups[{group_index}]['params'][{index}]{name}"


def _byte_range(a: np.ndarray) -> Tuple[int, int]:
    lo = hi = a.__array_interface__["data"][0]
    for dim, stride in zip(a.shape, a.strides):
        span = (dim - 1) * stride
        if span < 0:
            lo += span
        else:
            hi += span
    return lo, hi + a.itemsize


def find_shared_memory(entries: Iterable[Tuple[str, np.ndarray]]) -> Optional[Tuple[str, str]]:
    """The labels of two arrays that share memory, if any (``np.shares_memory``
    decides, after a sort by address finds the candidates)."""
    spans = sorted(
        ((*_byte_range(a), name, a) for name, a in entries if a.size > 0),
        key=lambda s: s[0],
    )
    active: List[Tuple[Any, ...]] = []
    for lo, hi, name, a in spans:
        active = [s for s in active if s[1] > lo]
        for s in active:
            if np.shares_memory(s[3], a):
                return s[2], name
        active.append((lo, hi, name, a))
    return None


def check_array(p: Any, where: str, dtypes: Optional[Sequence[np.dtype]]) -> None:
    """A parameter's ``.data`` must be a writeable ndarray of a supported dtype."""
    data = p.data
    if dtypes is not None and data.dtype.newbyteorder("=") not in dtypes:
        names = " and ".join(str(d) for d in dtypes)
        raise TypeError(f"{where}: unsupported dtype {data.dtype}; ferroptim optimizes {names} arrays")
    if not data.flags.writeable:
        raise ValueError(f"{where}: the array is read-only, and optimizers update parameters in place")
