"""``ConstantLR`` and ``LinearLR``: a scaled LR for the first epochs (warm-up)."""

from __future__ import annotations

from typing import List

from ..optimizer import Optimizer
from ._base import LRScheduler, warn_get_lr_called_within_step

__all__ = ["ConstantLR", "LinearLR"]


class ConstantLR(LRScheduler):
    r"""Multiplies each group's LR by ``factor`` until epoch ``total_iters``:
    ``lr = initial_lr · (factor if epoch < total_iters else 1)``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        factor (float): in [0, 1]. Default: 1/3.
        total_iters (int): the number of scaled epochs. Default: 5.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        warn_get_lr_called_within_step(self)
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> List[float]:
        return [
            base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
            for base_lr in self.base_lrs
        ]


class LinearLR(LRScheduler):
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

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        warn_get_lr_called_within_step(self)
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        delta = self.end_factor - self.start_factor
        factor = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)
        return [lr * factor for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> List[float]:
        delta = self.end_factor - self.start_factor
        return [
            base_lr * (self.start_factor + delta * min(self.total_iters, self.last_epoch) / self.total_iters)
            for base_lr in self.base_lrs
        ]
