"""``CyclicLR``: the LR cycles between two bounds (Smith's cyclical learning rates)."""

from __future__ import annotations

import types
from typing import Any, Callable, Dict, List, Optional, Union

from .. import _core
from ..optimizer import Optimizer
from ._base import format_param
from ._momentum import MomentumCyclingScheduler, momentum_bounds, start_momentum

__all__ = ["CyclicLR"]


class CyclicLR(MomentumCyclingScheduler):
    r"""Cycles each group's LR between ``base_lr`` and ``max_lr`` (step after every
    batch). With ``cycle = ⌊1 + t / (up + down)⌋`` and ``x`` the position in the cycle::

        scale = x / r           on the way up (r = up / (up + down)),
                (x − 1)/(r − 1)  on the way down
        lr = base_lr + (max_lr − base_lr) · scale · f(cycle or t)

    with ``f`` = 1 ("triangular"), 1/2^(cycle−1) ("triangular2"), gamma^t ("exp_range")
    or a custom ``scale_fn`` (of the cycle, or of t with ``scale_mode="iterations"``).
    With ``cycle_momentum``, the momentum (or Adam's ``betas[0]``) cycles the other way,
    from ``max_momentum`` to ``base_momentum``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        base_lr (float or list): the lower bound, per group or for all.
        max_lr (float or list): the upper bound.
        step_size_up (int): iterations going up. Default: 2000.
        step_size_down (int): iterations going down; None: as up. Default: None.
        mode (str): "triangular", "triangular2" or "exp_range". Default: "triangular".
        gamma (float): the base of "exp_range". Default: 1.
        scale_fn (function): a custom f, overriding mode. Default: None.
        scale_mode (str): "cycle" or "iterations", for scale_fn. Default: "cycle".
        cycle_momentum (bool): cycle the momentum too. Default: True.
        base_momentum (float or list): the lower momentum. Default: 0.8.
        max_momentum (float or list): the upper momentum. Default: 0.9.
        last_epoch (int): the index of the last batch. Default: -1.
    """

    _rule = "CyclicLR"

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: Union[float, List[float]],
        max_lr: Union[float, List[float]],
        step_size_up: int = 2000,
        step_size_down: Optional[int] = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Optional[Callable[[float], float]] = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: Union[float, List[float]] = 0.8,
        max_momentum: Union[float, List[float]] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        # every check first (torch's, in Rust): a refused argument leaves the optimizer as it was
        args: Dict[str, Any] = {
            "base_lr": base_lr,
            "max_lr": max_lr,
            "step_size_up": step_size_up,
            "step_size_down": step_size_down,
            "mode": mode,
            "scale_fn": scale_fn,
            "cycle_momentum": cycle_momentum,
            "base_momentum": base_momentum,
            "max_momentum": max_momentum,
        }
        _core.check_scheduler("CyclicLR", args, optimizer)
        self.optimizer = optimizer
        base_lrs = format_param("base_lr", optimizer, base_lr)
        self.max_lrs = format_param("max_lr", optimizer, max_lr)
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1, self.base_momentums, self.max_momentums = momentum_bounds(
                optimizer, base_momentum, max_momentum
            )
        self.total_size, self.step_ratio = _core.cyclic_size(step_size_up, step_size_down)
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
            if cycle_momentum:
                start_momentum(optimizer, self.base_momentums, self.max_momentums, self.use_beta1)
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_fn(self) -> None:
        if self._scale_fn_custom is None:
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x: float) -> float:
        """The amplitude factor f of cycle (or iteration) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        return _core.cyclic_scale(self.mode, self.gamma, x)

    def _hyper(self) -> Dict[str, Any]:
        # the built-in mode in Rust, unless scale_fn is a custom function or overridden
        custom = self._scale_fn_custom is not None or type(self).scale_fn is not CyclicLR.scale_fn
        return {
            "max_lrs": self.max_lrs,
            "total_size": self.total_size,
            "step_ratio": self.step_ratio,
            "mode": self.mode,
            "gamma": self.gamma,
            "scale_fn": self.scale_fn if custom else None,
            "scale_mode": self.scale_mode,
            "momentum": (self.base_momentums, self.max_momentums) if self.cycle_momentum else None,
        }

    def state_dict(self) -> Dict[str, Any]:
        """The scheduler's state; a custom ``scale_fn`` that is a function or lambda is
        left out (None) and a callable object keeps its ``__dict__``, as in torch."""
        state = super().state_dict()
        fn = state.pop("_scale_fn_custom")
        state["_scale_fn_custom"] = None
        if fn is not None and not isinstance(fn, types.FunctionType):
            state["_scale_fn_custom"] = fn.__dict__.copy()
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads a state from :meth:`state_dict` (keeping this scheduler's ``scale_fn``)."""
        state = dict(state_dict)
        fn = state.pop("_scale_fn_custom", None)
        super().load_state_dict(state)
        if fn is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(fn)
        self._init_scale_fn()
