"""``StepLR`` and ``MultiStepLR``: decay by ``gamma`` at fixed epochs."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from typing import Iterable, List

from ..optimizer import Optimizer
from ._base import LRScheduler, warn_get_lr_called_within_step

__all__ = ["StepLR", "MultiStepLR"]


class StepLR(LRScheduler):
    r"""Multiplies each group's LR by ``gamma`` every ``step_size`` epochs:
    ``lr = initial_lr · gamma^⌊epoch / step_size⌋``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        step_size (int): the period of the decay.
        gamma (float): the decay factor. Default: 0.1.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        warn_get_lr_called_within_step(self)
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> List[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Multiplies each group's LR by ``gamma`` at each milestone (twice at a milestone
    listed twice): ``lr = initial_lr · gamma^(milestones passed)``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        milestones (list): epoch indices, increasing.
        gamma (float): the decay factor. Default: 0.1.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        warn_get_lr_called_within_step(self)
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> List[float]:
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]
