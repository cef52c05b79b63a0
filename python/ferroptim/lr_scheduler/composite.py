"""``SequentialLR`` and ``ChainedScheduler``: several schedulers on one optimizer."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Dict, List, Optional, Sequence, SupportsFloat

from .. import _core
from ..optimizer import Optimizer
from ._base import LRScheduler
from .plateau import ReduceLROnPlateau

__all__ = ["SequentialLR", "ChainedScheduler"]


def _step_one(owner: Any, scheduler: Any, metrics: Optional[SupportsFloat]) -> None:
    """Steps one scheduler of a composite: a ``ReduceLROnPlateau`` with the metric."""
    if isinstance(scheduler, ReduceLROnPlateau):
        if metrics is None:
            raise TypeError(f"{type(owner).__name__} holds a ReduceLROnPlateau: call step(metrics)")
        scheduler.step(metrics)
    else:
        scheduler.step()


class _Composite(LRScheduler):
    """The ``state_dict`` of a scheduler made of schedulers: theirs, nested."""

    _schedulers: List[Any]

    def state_dict(self) -> Dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "_schedulers"})
        for s, saved in zip(self._schedulers, state_dict["_schedulers"]):
            s.load_state_dict(saved)


class SequentialLR(_Composite):
    r"""Runs ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` from its
    start, and so on (e.g. a warm-up, then a cosine decay).

    Beyond torch, a scheduler may be a ``ReduceLROnPlateau``: ``step(metrics)`` hands it
    the metric, and when its milestone comes it starts over from each group's initial
    LR.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        schedulers (list): the schedulers, all on ``optimizer``.
        milestones (list): the epochs at which the next scheduler takes over.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, schedulers: List[Any], milestones: List[int], last_epoch: int = -1) -> None:
        args = {"name": type(self).__name__, "schedulers": schedulers, "milestones": milestones}
        _core.check_scheduler("SequentialLR", args, optimizer)
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in self.optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"])
        self.recursive_undo()
        # the scheduler of step 0 (after any milestone 0) makes the first step, as in torch
        first = bisect_right(self._milestones, 0)
        self._schedulers[first]._initial_step()
        self._last_lr = schedulers[first].get_last_lr()

    def recursive_undo(self, sched: Any = None) -> None:
        """Undoes the first step each scheduler made when it was built."""
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self.recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self, metrics: Optional[SupportsFloat] = None) -> None:
        """Advances one epoch; ``metrics`` goes to a ``ReduceLROnPlateau``."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler._restart()
                _step_one(self, scheduler, metrics)
            else:
                scheduler._update_lr(0)
        else:
            _step_one(self, scheduler, metrics)
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    r"""Steps every scheduler, in order, at each ``step()``: their chainable forms
    multiply (e.g. a ``ConstantLR`` warm-up under an ``ExponentialLR`` decay).

    Beyond torch, a scheduler may be a ``ReduceLROnPlateau``: ``step(metrics)`` hands it
    the metric.

    Args:
        schedulers (sequence): the schedulers, all on one optimizer.
        optimizer (Optimizer, optional): that optimizer. Default: the first's.
    """

    def __init__(self, schedulers: Sequence[Any], optimizer: Optional[Optimizer] = None) -> None:
        _core.check_scheduler("ChainedScheduler", {"name": type(self).__name__, "schedulers": schedulers}, optimizer)
        optimizer = optimizer or schedulers[0].optimizer
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = [group["lr"] for group in self._schedulers[-1].optimizer.param_groups]

    def step(self, metrics: Optional[SupportsFloat] = None) -> None:
        """Steps every scheduler; ``metrics`` goes to a ``ReduceLROnPlateau``."""
        for scheduler in self._schedulers:
            _step_one(self, scheduler, metrics)
        self._last_lr = [group["lr"] for group in self._schedulers[-1].optimizer.param_groups]
