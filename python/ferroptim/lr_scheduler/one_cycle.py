"""``OneCycleLR``: the 1cycle policy (up to ``max_lr``, then far below the start)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from .. import _core
from ..optimizer import Optimizer
from ._base import format_param
from ._momentum import MomentumCyclingScheduler, momentum_bounds, start_momentum

__all__ = ["OneCycleLR"]


class OneCycleLR(MomentumCyclingScheduler):
    r"""The 1cycle policy (step after every batch). Each group's LR goes from
    ``initial_lr = max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start``
    of ``total_steps``, then down to ``min_lr = initial_lr / final_div_factor``
    (``three_phase``: back to ``initial_lr`` symmetrically first, then down to
    ``min_lr``), annealing by cosine (``start + (end − start)·(1 − cos(π·pct))/2``)
    or linearly. With ``cycle_momentum``, the momentum (or Adam's ``betas[0]``) goes
    the other way between ``max_momentum`` and ``base_momentum``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        max_lr (float or list): the peak LR, per group or for all.
        total_steps (int): the steps of the cycle; or give epochs and steps_per_epoch.
        epochs (int), steps_per_epoch (int): total_steps = epochs · steps_per_epoch.
        pct_start (float): the fraction of steps going up. Default: 0.3.
        anneal_strategy (str): "cos" or "linear". Default: "cos".
        cycle_momentum (bool): cycle the momentum too. Default: True.
        base_momentum (float or list): the lower momentum. Default: 0.85.
        max_momentum (float or list): the upper momentum. Default: 0.95.
        div_factor (float): initial_lr = max_lr / div_factor. Default: 25.
        final_div_factor (float): min_lr = initial_lr / final_div_factor. Default: 1e4.
        three_phase (bool): the three-phase schedule of the paper. Default: False.
        last_epoch (int): the index of the last batch. Default: -1.
    """

    _rule = "OneCycleLR"

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: Union[float, List[float]],
        total_steps: Optional[int] = None,
        epochs: Optional[int] = None,
        steps_per_epoch: Optional[int] = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: Union[float, List[float]] = 0.85,
        max_momentum: Union[float, List[float]] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        # every check first (torch's, in Rust): a refused argument leaves the optimizer as it was
        args: Dict[str, Any] = {
            "max_lr": max_lr,
            "total_steps": total_steps,
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "pct_start": pct_start,
            "anneal_strategy": anneal_strategy,
            "cycle_momentum": cycle_momentum,
            "base_momentum": base_momentum,
            "max_momentum": max_momentum,
            "div_factor": div_factor,
            "final_div_factor": final_div_factor,
            "last_epoch": last_epoch,
        }
        _core.check_scheduler("OneCycleLR", args, optimizer)
        self.optimizer = optimizer
        self.total_steps = total_steps if total_steps is not None else epochs * steps_per_epoch  # type: ignore[operator]
        keys = ("end_step", "start_lr", "end_lr", "start_momentum", "end_momentum")
        phases = _core.one_cycle_phases(self.total_steps, pct_start, bool(three_phase))
        self._schedule_phases = [dict(zip(keys, p)) for p in phases]
        self._anneal_func_type = anneal_strategy
        max_lrs = format_param("max_lr", self.optimizer, max_lr)
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1, bases, tops = momentum_bounds(optimizer, base_momentum, max_momentum)
        # checked: now the groups change
        if last_epoch == -1:
            for group, top in zip(self.optimizer.param_groups, max_lrs):
                group["initial_lr"], group["min_lr"] = _core.one_cycle_lr_points(top, div_factor, final_div_factor)
                group["max_lr"] = top
            if cycle_momentum:
                start_momentum(optimizer, bases, tops, self.use_beta1)
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {
            "total_steps": self.total_steps,
            "phases": self._schedule_phases,
            "anneal_strategy": self._anneal_func_type,
            "groups": self.optimizer.param_groups,
            "cycle_momentum": self.cycle_momentum,
        }
