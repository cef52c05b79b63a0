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


def betas(value: Tuple[float, float]) -> None:
    for i in (0, 1):
        if not 0.0 <= value[i] < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {value[i]}")
