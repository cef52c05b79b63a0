"""``CosineAnnealingLR`` and ``CosineAnnealingWarmRestarts`` (SGDR)."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

from ..optimizer import Optimizer
from ._base import ClosedFormRuleScheduler, LRScheduler, _Flag, warn_get_lr_called_within_step

__all__ = ["CosineAnnealingLR", "CosineAnnealingWarmRestarts"]


class CosineAnnealingLR(ClosedFormRuleScheduler):
    r"""Anneals each group's LR along a cosine from its initial LR to ``eta_min`` over
    ``T_max`` epochs (and back up, periodically, past ``T_max``), with torch's
    recursive form

    .. math::
        \eta_{t} = \eta_{min} + (\eta_{t-1} - \eta_{min})
            \frac{1 + \cos(\pi t / T_{max})}{1 + \cos(\pi (t-1) / T_{max})}

    whose closed form is :math:`\eta_t = \eta_{min} + \frac12(\eta_{max} - \eta_{min})(1 + \cos(\pi t / T_{max}))`.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        T_max (int): the half-period, in epochs.
        eta_min (float): the lowest LR. Default: 0.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "CosineAnnealingLR"

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR): the LR falls from the initial LR to
    ``eta_min`` over ``T_i`` epochs, then restarts with ``T_i ← T_i · T_mult``:

    .. math::
        \eta_t = \eta_{min} + \frac12(\eta_{max} - \eta_{min})(1 + \cos(\pi T_{cur} / T_i))

    ``step(epoch)`` takes fractional epochs (``epoch + i / iters`` within an epoch).

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        T_0 (int): the epochs until the first restart.
        T_mult (int): the growth of the period at each restart. Default: 1.
        eta_min (float): the lowest LR. Default: 0.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    def __init__(
        self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        warn_get_lr_called_within_step(self)
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
            for base_lr in self.base_lrs
        ]

    def step(self, epoch: Optional[float] = None) -> None:
        """Advances one epoch, or goes to ``epoch`` (which may be fractional)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** (n)
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        with _Flag(self, "_get_lr_called_within_step"):
            values = self.get_lr()
        self._set_lrs(values)
