"""``SparseGrad``: a gradient that lists rows of a dense parameter, as torch's sparse
gradients of ``nn.Embedding(sparse=True)`` do."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["SparseGrad"]


class SparseGrad:
    """The gradient of a dense parameter that only touches some of its rows (its
    first axis): ``values[k]`` is the gradient of row ``indices[k]``.

    This is torch's sparse COO gradient with one sparse dim, which an embedding
    lookup produces: the rows looked up, with their gradients. An index may be listed
    more than once; its rows add up (torch's ``coalesce``). Assign it to a
    parameter's ``.grad`` (or pass it in ``step(grads=...)``) for ``SparseAdam``,
    which updates the listed rows only.

    Examples:
        >>> emb = ferroptim.Parameter(np.zeros((1000, 16), np.float32))
        >>> emb.grad = SparseGrad([3, 17, 3], np.ones((3, 16)))  # rows 3 (twice) and 17

    Args:
        indices: 1-d integer array-like of row indices (stored as int64).
        values: array-like of shape ``(len(indices),) + row shape``, real numbers;
            cast to the parameter's dtype when assigned to one.
    """

    __slots__ = ("indices", "values")

    def __init__(self, indices: Any, values: Any) -> None:
        idx = np.asarray(indices)
        if idx.size == 0 and idx.dtype.kind == "f":
            idx = idx.astype(np.int64)  # np.asarray([]) is float64
        if idx.dtype.kind not in "iu":
            raise TypeError(f"SparseGrad indices must be integers, got dtype {idx.dtype}")
        if idx.ndim != 1:
            raise ValueError(f"SparseGrad indices must be 1-d, got shape {idx.shape}")
        vals = np.asarray(values)
        if vals.dtype.kind not in "fiu":
            raise TypeError(f"SparseGrad values must be real numbers, got dtype {vals.dtype}")
        if vals.ndim < 1 or vals.shape[0] != idx.shape[0]:
            raise ValueError(
                f"SparseGrad values must hold one row per index: {idx.shape[0]} indices, values of shape {vals.shape}"
            )
        if idx.dtype == np.uint64 and idx.size and idx.max() > np.iinfo(np.int64).max:
            raise IndexError(f"SparseGrad index {idx.max()} is out of range")
        self.indices: np.ndarray = np.ascontiguousarray(idx, dtype=np.int64)
        self.values: np.ndarray = vals

    @property
    def nnz(self) -> int:
        """How many rows are listed (duplicates included)."""
        return int(self.indices.shape[0])

    def fitted(self, data: np.ndarray) -> "SparseGrad":
        """This gradient checked against a parameter holding ``data`` (rows in range,
        row shape ``data.shape[1:]``), with its values cast to ``data``'s dtype."""
        if data.ndim == 0:
            raise ValueError("a SparseGrad lists rows, and a 0-d parameter has none")
        if self.values.shape[1:] != data.shape[1:]:
            raise ValueError(
                f"the SparseGrad's rows have shape {self.values.shape[1:]} "
                f"but the parameter's rows have shape {data.shape[1:]}"
            )
        self._check_rows(data.shape[0])
        if self.values.dtype == data.dtype:
            return self
        return SparseGrad(self.indices, self.values.astype(data.dtype))

    def _check_rows(self, rows: int) -> None:
        bad = self.indices[(self.indices < 0) | (self.indices >= rows)]
        if bad.size:
            raise IndexError(f"SparseGrad row index {bad[0]} is out of range for a parameter with {rows} rows")

    def to_dense(self, shape: Sequence[int]) -> np.ndarray:
        """The dense gradient of a parameter of ``shape``: listed rows summed, others 0."""
        dense = np.zeros(tuple(shape), dtype=np.result_type(self.values.dtype, np.float32))
        if dense.ndim == 0 or dense.shape[1:] != self.values.shape[1:]:
            raise ValueError(f"rows of shape {self.values.shape[1:]} do not fit a parameter of shape {dense.shape}")
        self._check_rows(dense.shape[0])
        np.add.at(dense, self.indices, self.values)
        return dense

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "a SparseGrad is a sparse gradient; only SparseAdam takes one "
            "(torch: 'does not support sparse gradients'); use .to_dense(shape) for other optimizers"
        )

    def __repr__(self) -> str:
        return f"SparseGrad(nnz={self.nnz}, row_shape={self.values.shape[1:]}, dtype={self.values.dtype})"
