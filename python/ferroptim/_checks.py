"""torch's argument checks, with torch's messages (``not 0.0 <= x`` so NaN fails too)."""

from __future__ import annotations

from typing import Any, Tuple


def at_least_zero(value: Any, what: str) -> None:
    """``ValueError("Invalid {what}: {value}")`` unless ``0 <= value``."""
    if not 0.0 <= value:
        raise ValueError(f"Invalid {what}: {value}")


def lr(value: Any) -> None:
    at_least_zero(value, "learning rate")


def eps(value: Any) -> None:
    at_least_zero(value, "epsilon value")


def weight_decay(value: Any) -> None:
    at_least_zero(value, "weight_decay value")


def float_betas(value: Tuple[Any, ...]) -> None:
    """Adam's and AdamW's rule: both betas Python floats (``np.float64`` is one)."""
    if not (isinstance(value[0], float) and isinstance(value[1], float)):
        raise ValueError("betas must be either both floats or both Tensors")


def betas(value: Tuple[float, float]) -> None:
    for i in (0, 1):
        if not 0.0 <= value[i] < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {value[i]}")
