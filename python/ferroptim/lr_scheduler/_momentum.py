"""Momentum cycling shared by ``CyclicLR`` and ``OneCycleLR``: an optimizer's
``momentum``, or Adam's ``betas[0]``."""

from __future__ import annotations

from typing import Any, Dict, List

from ..optimizer import Optimizer
from ._base import format_param

__all__ = ["setup_momentum", "set_momentum"]


def setup_momentum(sched: Any, optimizer: Optimizer, base: Any, top: Any, fresh: bool) -> List[List[Any]]:
    """Checks the optimizer cycles momentum (``momentum`` or ``betas``), records which
    in ``sched.use_beta1``, and on a fresh start sets each group's momentum to its
    maximum and records ``max_momentum`` / ``base_momentum`` in the groups. Returns
    the (base, max) lists, one value per group."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
    sched.use_beta1 = "betas" in optimizer.defaults
    bases = format_param("base_momentum", optimizer, base)
    tops = format_param("max_momentum", optimizer, top)
    if fresh:
        for m, b, group in zip(tops, bases, optimizer.param_groups):
            set_momentum(group, m, sched.use_beta1)
            group["max_momentum"] = m
            group["base_momentum"] = b
    return [bases, tops]


def set_momentum(group: Dict[str, Any], momentum: float, use_beta1: bool) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum
