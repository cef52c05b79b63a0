"""Checks of the state entries ``load_state_dict`` reads, shared by the optimizer bases:
each entry is checked against its parameter and copied in the form the kernels use."""

from __future__ import annotations

from typing import Any, Iterable, Tuple

import numpy as np


def scalar(value: Any, key: str, where: str) -> np.ndarray:
    """A single number (``step`` and the like) as a fresh 0-d float64 array."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"loaded state of {where}: '{key}' must be a number, got {type(value).__name__}") from None
    if a.size != 1:
        raise ValueError(f"loaded state of {where}: '{key}' must be a single number, got shape {a.shape}")
    return np.array(a.reshape(()), dtype=np.float64)


def array(value: Any, key: str, shape: Tuple[int, ...], dtype: np.dtype, where: str) -> np.ndarray:
    """An array of ``shape`` as a fresh C-contiguous copy in ``dtype``."""
    a = np.asarray(value)
    if a.shape != shape:
        raise ValueError(f"loaded state of {where}: '{key}' has shape {a.shape} but should have shape {shape}")
    if a.dtype.kind not in "fiu":
        raise TypeError(f"loaded state of {where}: '{key}' has dtype {a.dtype}, not a real number type")
    return np.array(a, dtype=dtype, order="C", copy=True)


def unknown_key(key: Any, where: str, optimizer: str, known: Iterable[str]) -> ValueError:
    return ValueError(
        f"loaded state of {where} has the unknown key {key!r}; {optimizer} keeps {', '.join(known)} "
        "(was the state dict saved by another optimizer?)"
    )
