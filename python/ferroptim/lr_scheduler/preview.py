"""``preview``: a scheduler's LR (and momentum) table, without training."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, SupportsFloat, Union

import numpy as np

from ..optimizer import Optimizer
from .composite import ChainedScheduler, SequentialLR
from .plateau import ReduceLROnPlateau

__all__ = ["Schedule", "preview"]


@dataclass
class Schedule:
    """What ``preview`` returns: row ``k`` holds each param group's value after ``k``
    scheduler steps (row 0: as the scheduler stands now)."""

    #: shape (steps + 1, param groups)
    lr: np.ndarray
    #: the ``momentum`` (or ``betas[0]``) of each group, where the optimizer has one
    momentum: Optional[np.ndarray]

    def __str__(self) -> str:
        cols = self.lr.shape[1]
        head = ["step"] + [f"lr[{g}]" for g in range(cols)]
        if self.momentum is not None:
            head += [f"momentum[{g}]" for g in range(cols)]
        rows = ["  ".join(f"{h:>12}" for h in head)]
        for k in range(self.lr.shape[0]):
            values = list(self.lr[k]) + (list(self.momentum[k]) if self.momentum is not None else [])
            rows.append("  ".join([f"{k:>12}"] + [f"{v:>12.6g}" for v in values]))
        return "\n".join(rows)


def _shadow(optimizer: Optimizer) -> Optimizer:
    """An optimizer with no parameters and copies of ``optimizer``'s hyperparameters."""
    shadow = Optimizer.__new__(type(optimizer))
    shadow.defaults = copy.deepcopy(optimizer.defaults)
    shadow.param_groups = [
        {k: (copy.deepcopy(v) if k != "params" else []) for k, v in group.items()} for group in optimizer.param_groups
    ]
    shadow.state = {}  # type: ignore[assignment]

    def step(*args: Any, **kwargs: Any) -> None:
        """Stands for a training step: the scheduler sees it was called."""

    step._wrapped_by_lr_sched = True  # type: ignore[attr-defined]
    shadow.step = step  # type: ignore[method-assign]
    shadow._opt_called = True  # type: ignore[attr-defined]
    return shadow


def _momentum(group: Dict[str, Any]) -> Optional[float]:
    value = group["momentum"] if "momentum" in group else group["betas"][0] if "betas" in group else None
    return None if value is None else float(value)


def _takes_metrics(scheduler: Any) -> bool:
    if isinstance(scheduler, ReduceLROnPlateau):
        return True
    if isinstance(scheduler, (SequentialLR, ChainedScheduler)):
        return any(_takes_metrics(s) for s in scheduler._schedulers)
    return False


def preview(
    scheduler: Any,
    steps: int,
    metrics: Union[None, Sequence[SupportsFloat], Callable[[int], SupportsFloat]] = None,
) -> Schedule:
    """The LR (and momentum) of every param group over the next ``steps`` steps of
    ``scheduler``, computed on copies: the scheduler and its optimizer are left as they
    are.

    Args:
        scheduler: any scheduler of ``ferroptim.lr_scheduler`` (or a subclass).
        steps (int): how many ``scheduler.step()`` calls to look ahead.
        metrics: for a ``ReduceLROnPlateau`` (alone or inside ``SequentialLR`` /
            ``ChainedScheduler``), the metric of each step: a sequence, or a function
            of the step index.

    Example::

        opt = fo.SGD(params, lr=0.1, momentum=0.9)
        sched = fo.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=100)
        table = fo.lr_scheduler.preview(sched, 99)
        table.lr[:, 0]        # the LR of the first group, before each step
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    optimizer = scheduler.optimizer
    wants = _takes_metrics(scheduler)
    if wants and metrics is None:
        raise ValueError("this schedule holds a ReduceLROnPlateau: give preview the metrics of each step")
    if wants and not callable(metrics) and len(metrics) < steps:  # type: ignore[arg-type]
        raise ValueError(f"metrics has {len(metrics)} values for {steps} steps")  # type: ignore[arg-type]
    shadow = _shadow(optimizer)
    sched = copy.deepcopy(scheduler, memo={id(optimizer): shadow})
    lrs: List[List[float]] = []
    moms: List[List[Optional[float]]] = []

    def record() -> None:
        lrs.append([float(g["lr"]) for g in shadow.param_groups])
        moms.append([_momentum(g) for g in shadow.param_groups])

    record()
    for k in range(steps):
        if wants:
            sched.step(metrics(k) if callable(metrics) else metrics[k])  # type: ignore[index]
        else:
            sched.step()
        record()
    has_momentum = all(m is not None for row in moms for m in row)
    return Schedule(np.array(lrs, dtype=np.float64), np.array(moms, dtype=np.float64) if has_momentum else None)
