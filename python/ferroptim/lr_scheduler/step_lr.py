"""``StepLR`` and ``MultiStepLR``: decay by ``gamma`` at fixed epochs."""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, Iterable

from ..optimizer import Optimizer
from ._base import ClosedFormRuleScheduler

__all__ = ["StepLR", "MultiStepLR"]


class StepLR(ClosedFormRuleScheduler):
    r"""Multiplies each group's LR by ``gamma`` every ``step_size`` epochs:
    ``lr = initial_lr · gamma^⌊epoch / step_size⌋``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        step_size (int): the period of the decay.
        gamma (float): the decay factor. Default: 0.1.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "StepLR"

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}


class MultiStepLR(ClosedFormRuleScheduler):
    r"""Multiplies each group's LR by ``gamma`` at each milestone (twice at a milestone
    listed twice): ``lr = initial_lr · gamma^(milestones passed)``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        milestones (list): epoch indices, increasing.
        gamma (float): the decay factor. Default: 0.1.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "MultiStepLR"

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"milestones": list(self.milestones.elements()), "gamma": self.gamma}
