"""``Parameter``: a NumPy array an optimizer updates in place, with its gradient."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

from .sparse_grad import SparseGrad

__all__ = ["Parameter", "checked_grad"]


def _check_data(value: Any) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"Parameter.data must be a numpy.ndarray (the array the optimizer updates in place), "
            f"got {type(value).__name__}; make a writable NumPy copy with np.array(...) first "
            "(np.asarray of a jax or read-only array gives a read-only view, which optimizers cannot update)"
        )
    return value


def checked_grad(data: np.ndarray, grad: Any) -> Any:
    """``grad`` as an array for a parameter holding ``data``: same shape, real numbers,
    cast to ``data``'s dtype when it differs (without a copy otherwise); None stays
    None, and a ``SparseGrad`` is checked to fit ``data``'s rows."""
    if grad is None:
        return None
    if isinstance(grad, SparseGrad):
        return grad.fitted(data)
    g = np.asarray(grad)
    if g.dtype.kind not in "fiu":
        raise TypeError(f"a gradient must hold real numbers, got dtype {g.dtype}")
    if g.shape != data.shape:
        raise ValueError(f"the gradient has shape {g.shape} but the parameter has shape {data.shape}")
    if g.dtype != data.dtype:
        g = g.astype(data.dtype)
    return g


class Parameter:
    """A trainable array, as ``torch.nn.Parameter`` is a trainable tensor.

    ``data`` is the caller's ndarray itself (no copy): optimizers update it in place,
    so every other reference to that array sees the new values. ``grad`` is its
    gradient, ``None`` until one is assigned; any array-like of the same shape may be
    assigned and is cast to ``data``'s dtype when it differs.

    Examples:
        >>> w = Parameter(np.zeros(3, np.float32))
        >>> w.grad = np.ones(3)          # float64 in, stored as float32
        >>> w.grad.dtype
        dtype('float32')
    """

    __slots__ = ("data", "grad", "__weakref__")

    def __init__(self, data: np.ndarray, grad: Any = None) -> None:
        self.data = data
        self.grad = grad

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "data":
            value = _check_data(value)
        elif name == "grad":
            value = checked_grad(self.data, value)
        object.__setattr__(self, name, value)

    def __getstate__(self) -> Dict[str, Any]:
        return {"data": self.data, "grad": self.grad}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.data = state["data"]
        self.grad = state["grad"]

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        grad = "None" if self.grad is None else "set"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}, grad={grad})"
