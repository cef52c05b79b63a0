"""``ConstantLR`` and ``LinearLR``: a scaled LR for the first epochs (warm-up)."""

from __future__ import annotations

from typing import Any, Dict

from ..optimizer import Optimizer
from ._base import ClosedFormRuleScheduler

__all__ = ["ConstantLR", "LinearLR"]


class ConstantLR(ClosedFormRuleScheduler):
    r"""Multiplies each group's LR by ``factor`` until epoch ``total_iters``:
    ``lr = initial_lr · (factor if epoch < total_iters else 1)``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        factor (float): in [0, 1]. Default: 1/3.
        total_iters (int): the number of scaled epochs. Default: 5.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "ConstantLR"

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1) -> None:
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"factor": self.factor, "total_iters": self.total_iters}


class LinearLR(ClosedFormRuleScheduler):
    r"""Scales each group's LR by a factor going linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` epochs:
    ``lr = initial_lr · (start + (end − start) · min(epoch, total_iters) / total_iters)``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        start_factor (float): in (0, 1]. Default: 1/3.
        end_factor (float): in [0, 1]. Default: 1.
        total_iters (int): the number of epochs of the ramp. Default: 5.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "LinearLR"

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"start_factor": self.start_factor, "end_factor": self.end_factor, "total_iters": self.total_iters}
