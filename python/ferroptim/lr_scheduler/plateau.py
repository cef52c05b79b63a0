"""``ReduceLROnPlateau``: lower the LR when a metric stops improving."""

from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Optional, SupportsFloat, Union

from .. import _core
from ..optimizer import Optimizer
from ._base import EPOCH_DEPRECATION_WARNING, LRScheduler

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(LRScheduler):
    r"""Multiplies each group's LR by ``factor`` (down to ``min_lr``) once the metric
    given to ``step(metrics)`` has not improved for more than ``patience`` epochs, then
    waits ``cooldown`` epochs before counting again.

    Improvement, for the best value so far ``best``: ``a < best·(1 − threshold)``
    (mode "min", threshold_mode "rel"), ``a < best − threshold`` ("min", "abs"),
    ``a > best·(1 + threshold)`` ("max", "rel"), ``a > best + threshold`` ("max", "abs").
    A reduction smaller than ``eps`` is skipped.

    Beyond torch, it may be one of the schedulers of ``SequentialLR`` or
    ``ChainedScheduler`` (their ``step(metrics)`` hands it the metric).

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        mode (str): "min" or "max". Default: "min".
        factor (float): the reduction factor, < 1. Default: 0.1.
        patience (int): epochs without improvement tolerated. Default: 10.
        threshold (float): what counts as an improvement. Default: 1e-4.
        threshold_mode (str): "rel" or "abs". Default: "rel".
        cooldown (int): epochs to wait after a reduction. Default: 0.
        min_lr (float or list): the lowest LR, per group or for all. Default: 0.
        eps (float): the smallest reduction applied. Default: 1e-8.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: Union[List[float], float] = 0,
        eps: float = 1e-8,
    ) -> None:
        args = dict(factor=factor, min_lr=min_lr, mode=mode, threshold_mode=threshold_mode)
        _core.check_scheduler("ReduceLROnPlateau", args, optimizer)
        self.factor = factor
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr: Optional[float] = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self) -> None:
        """Forgets the best value and the bad-epoch and cooldown counters."""
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _initial_step(self) -> None:
        """Nothing to set before the first metric (as the first of a ``SequentialLR``)."""
        self._step_count = 0
        self._last_lr = self._current_lrs()

    def _restart(self) -> None:
        """Starts over from each group's initial LR (when ``SequentialLR`` reaches it)."""
        for group in self.optimizer.param_groups:
            group["lr"] = group.get("initial_lr", group["lr"])
        self._reset()
        self.last_epoch = -1
        self._last_lr = self._current_lrs()

    def step(self, metrics: SupportsFloat, epoch: Optional[int] = None) -> None:  # type: ignore[override]
        """Records the metric of an epoch and reduces the LR if it has stalled."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr(epoch)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self, epoch: int) -> None:
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    "The number of param groups in the `optimizer` "
                    f"({len(self.optimizer.param_groups)}) differs "
                    f"from when `ReduceLROnPlateau` was initialized "
                    f"({len(self.min_lrs)}), usually due to a new "
                    "param group being added to the optimizer. Please "
                    "modify the `min_lrs` field to match the length "
                    "of the `optimizer` param groups."
                )
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for i, group in enumerate(self.optimizer.param_groups):
            old_lr = float(group["lr"])
            new_lr = _core.plateau_reduced(old_lr, self.factor, self.min_lrs[i], self.eps)
            if new_lr != old_lr:
                group["lr"] = new_lr

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        return _core.plateau_is_better(self.mode, self.threshold_mode, self.threshold, a, best)

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        """Sets the comparison (``mode`` and ``threshold_mode`` checked by the caller)."""
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads a state from :meth:`state_dict` (its modes checked first: a refused
        state changes nothing)."""
        modes = {k: state_dict.get(k, getattr(self, k)) for k in ("mode", "threshold_mode")}
        _core.check_scheduler("ReduceLROnPlateau", modes, self.optimizer)
        self.__dict__.update(state_dict)
        self._init_is_better(mode=self.mode, threshold=self.threshold, threshold_mode=self.threshold_mode)
