"""``CosineAnnealingLR`` and ``CosineAnnealingWarmRestarts`` (SGDR)."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

from ..optimizer import Optimizer
from .. import _core
from ._base import ClosedFormRuleScheduler, RuleScheduler, _Flag

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


class CosineAnnealingWarmRestarts(RuleScheduler):
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

    _rule = "CosineAnnealingWarmRestarts"

    def __init__(
        self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        _core.check_scheduler("CosineAnnealingWarmRestarts", dict(T_0=T_0, T_mult=T_mult, eta_min=eta_min), optimizer)
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"eta_min": self.eta_min, "T_cur": self.T_cur, "T_i": self.T_i}

    def step(self, epoch: Optional[float] = None) -> None:
        """Advances one epoch, or goes to ``epoch`` (which may be fractional)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        self.T_cur, self.T_i = _core.warm_restarts_position(self.T_0, self.T_mult, self.T_i, self.T_cur, epoch)
        self.last_epoch = self.last_epoch + 1 if epoch is None else math.floor(epoch)
        with _Flag(self, "_get_lr_called_within_step"):
            values = self.get_lr()
        self._set_lrs(values)
