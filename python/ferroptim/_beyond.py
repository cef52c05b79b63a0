"""What the optimizers beyond torch.optim (Lion, LAMB, LARS, Adan, ADOPT, AdEMAMix,
Schedule-Free, Prodigy) share besides the elementwise boundary: timm's argument
helpers."""

from __future__ import annotations

from typing import Any


def max_lr_snapshot(lr: Any, corrected_weight_decay: bool = False) -> float:
    """timm's ``_max_lr_snapshot``: the constructor's lr, the peak of corrected weight decay."""
    max_lr = float(lr)
    if corrected_weight_decay and max_lr <= 0:
        raise ValueError(
            f"Corrected weight decay requires a positive max lr, got {max_lr}. Construct the optimizer with the peak lr."
        )
    return max_lr


def validate_scalar(name: str, value: Any, min_value: float = 0.0) -> None:
    """timm's ``_validate_scalar``."""
    if float(value) < min_value:
        raise ValueError(f"Invalid {name}: {value}")
