"""``SkipNonFinite``: skip the optimizer steps whose gradients hold NaN or Inf (opt-in;
without it a step propagates them, as torch's does)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional

import numpy as np

from . import _core
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .sparse_grad import SparseGrad

__all__ = ["SkipNonFinite"]

_KERNEL = (np.dtype(np.float32), np.dtype(np.float64))


class SkipNonFinite:
    """Wraps an optimizer: ``step()`` first checks every gradient (one pass in Rust)
    and, if any element is NaN or ±Inf, skips the update — parameters and state stay
    exactly as they were — and counts it, as optax's ``apply_if_finite`` and torch's
    ``GradScaler`` do. Everything else (``zero_grad``, ``param_groups``,
    ``state_dict``, …) is the wrapped optimizer's; schedulers take the wrapped one.

    Example::

        opt = fo.Adam(params, lr=1e-3)
        guarded = fo.SkipNonFinite(opt)
        sched = fo.lr_scheduler.StepLR(opt, 10)
        ...
        guarded.step()              # skipped if a gradient overflowed
        guarded.skipped_steps       # how many were skipped so far

    Attributes:
        optimizer: the wrapped optimizer.
        skipped_steps (int): steps skipped since the wrapper was made.
        consecutive_skips (int): steps skipped since the last one taken.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if isinstance(optimizer, LBFGS):
            raise TypeError(
                "SkipNonFinite checks the gradients before a step; L-BFGS evaluates its closure again and "
                "again within one step, so there is no single gradient to check"
            )
        self.optimizer = optimizer
        self.skipped_steps = 0
        self.consecutive_skips = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)

    def __repr__(self) -> str:
        return f"SkipNonFinite({self.optimizer!r}, skipped_steps={self.skipped_steps})"

    def finite(self) -> bool:
        """Whether every gradient of every param group is finite."""
        fast: List[np.ndarray] = []
        given = self.optimizer._step_grad_list()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        for k, p in enumerate(params):
            g = p.grad if given is None else given[k]
            if g is None:
                continue
            g = g.values if isinstance(g, SparseGrad) else np.asarray(g)
            if g.dtype in _KERNEL:
                fast.append(g)
            elif not np.isfinite(g).all():
                return False
        # the ∞-norm is NaN if an element is NaN and inf if one is ±inf
        return all(np.isfinite(n) for n in _core.grad_norms(fast, float("inf"))) if fast else True

    def step(self, closure: Optional[Callable[[], Any]] = None, *, grads: Optional[Iterable[Any]] = None) -> Any:
        """Runs ``closure`` (if given) and assigns ``grads`` (if given), then steps the
        optimizer only if every gradient is finite; returns the closure's loss."""
        try:
            loss = self.optimizer._prepare_step(closure, grads)
            if self.finite():
                self.consecutive_skips = 0
                self.optimizer.step()
            else:
                self.skipped_steps += 1
                self.consecutive_skips += 1
        finally:
            self.optimizer.__dict__.pop("_step_grads", None)
        return loss
