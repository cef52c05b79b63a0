"""``ExponentialLR`` and ``PolynomialLR``: smooth decay every epoch."""

from __future__ import annotations

from typing import List

from ..optimizer import Optimizer
from ._base import LRScheduler, warn_get_lr_called_within_step

__all__ = ["ExponentialLR", "PolynomialLR"]


class ExponentialLR(LRScheduler):
    r"""Multiplies each group's LR by ``gamma`` every epoch: ``lr = initial_lr · gamma^epoch``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        gamma (float): the decay factor.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        warn_get_lr_called_within_step(self)
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> List[float]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""Decays each group's LR polynomially to 0 over ``total_iters`` epochs:
    ``lr = initial_lr · (1 − min(epoch, total_iters) / total_iters)^power``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        total_iters (int): the number of decaying epochs. Default: 5.
        power (float): the power of the polynomial. Default: 1.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        warn_get_lr_called_within_step(self)
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        decay = ((1.0 - self.last_epoch / self.total_iters) / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [lr * decay for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> List[float]:
        return [
            base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
            for base_lr in self.base_lrs
        ]
