"""``ExponentialLR`` and ``PolynomialLR``: smooth decay every epoch."""

from __future__ import annotations

from typing import Any, Dict

from ..optimizer import Optimizer
from ._base import ClosedFormRuleScheduler

__all__ = ["ExponentialLR", "PolynomialLR"]


class ExponentialLR(ClosedFormRuleScheduler):
    r"""Multiplies each group's LR by ``gamma`` every epoch: ``lr = initial_lr · gamma^epoch``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        gamma (float): the decay factor.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "ExponentialLR"

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"gamma": self.gamma}


class PolynomialLR(ClosedFormRuleScheduler):
    r"""Decays each group's LR polynomially to 0 over ``total_iters`` epochs:
    ``lr = initial_lr · (1 − min(epoch, total_iters) / total_iters)^power``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        total_iters (int): the number of decaying epochs. Default: 5.
        power (float): the power of the polynomial. Default: 1.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "PolynomialLR"

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"total_iters": self.total_iters, "power": self.power}
