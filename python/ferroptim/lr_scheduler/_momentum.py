"""Momentum cycling shared by ``CyclicLR`` and ``OneCycleLR``: an optimizer's
``momentum``, or Adam's ``betas[0]``."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..optimizer import Optimizer
from ._base import RuleScheduler, format_param

__all__ = ["momentum_bounds", "start_momentum", "set_momentum", "MomentumCyclingScheduler"]


def momentum_bounds(optimizer: Optimizer, base: Any, top: Any) -> Tuple[bool, List[Any], List[Any]]:
    """Whether the optimizer's momentum to cycle is ``betas[0]`` (else ``momentum``;
    that it has one is checked by ``_core.check_scheduler``), and the base and the max
    momentum of each group. Changes nothing."""
    bases = format_param("base_momentum", optimizer, base)
    tops = format_param("max_momentum", optimizer, top)
    return "betas" in optimizer.defaults, bases, tops


def start_momentum(optimizer: Optimizer, bases: List[Any], tops: List[Any], use_beta1: bool) -> None:
    """A fresh start: each group's momentum at its maximum, with ``max_momentum`` and
    ``base_momentum`` recorded in the group."""
    for m, b, group in zip(tops, bases, optimizer.param_groups):
        set_momentum(group, m, use_beta1)
        group["max_momentum"] = m
        group["base_momentum"] = b


def set_momentum(group: Dict[str, Any], momentum: float, use_beta1: bool) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


class MomentumCyclingScheduler(RuleScheduler):
    """A :class:`RuleScheduler` whose rule also cycles each group's momentum (or
    ``betas[0]``, with ``use_beta1``): ``CyclicLR``, ``OneCycleLR``."""

    use_beta1: bool

    def _set_momenta(self, momenta: List[float]) -> None:
        for group, m in zip(self.optimizer.param_groups, momenta):
            set_momentum(group, m, self.use_beta1)
