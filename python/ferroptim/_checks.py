"""The argument checks still written in Python, with torch's messages: Adam's rule
on the betas' Python types, and Lion's betas check. The checks of torch's optimizers
and most beyond it are the Rust crate's (``_core.check_hyper``)."""

from __future__ import annotations

from typing import Any, Tuple


def float_betas(value: Tuple[Any, ...]) -> None:
    """Adam's and AdamW's rule: both betas Python floats (``np.float64`` is one)."""
    if not (isinstance(value[0], float) and isinstance(value[1], float)):
        raise ValueError("betas must be either both floats or both Tensors")


def betas(value: Tuple[float, float]) -> None:
    for i in (0, 1):
        if not 0.0 <= value[i] < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {value[i]}")
