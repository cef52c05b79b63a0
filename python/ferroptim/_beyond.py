"""What the optimizers beyond torch.optim (Lion, LAMB, ADOPT) share besides the
elementwise boundary: timm's snapshot of the peak LR."""

from __future__ import annotations

from typing import Any


def max_lr_snapshot(lr: Any) -> float:
    """timm's ``_max_lr_snapshot``: the constructor's lr as a float, the peak of corrected
    weight decay (its check, a positive peak, is the Rust crate's)."""
    return float(lr)
