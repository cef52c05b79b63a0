"""``ScheduleFreeSGD``, ``ScheduleFreeAdamW`` and ``ScheduleFreeRAdam``, as the
``schedulefree`` package's ``SGDScheduleFree``, ``AdamWScheduleFree`` and
``RAdamScheduleFree``."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["ScheduleFreeSGD", "ScheduleFreeAdamW", "ScheduleFreeRAdam"]

_NOT_TRAINING = (
    "Optimizer was not in train mode when step is called. "
    "Please insert .train() and .eval() calls on the "
    "optimizer. See documentation for details."
)


class _ScheduleFree(ElementwiseOptimizer):
    r"""Schedule-Free learning ("The Road Less Scheduled", Defazio et al. 2024,
    arXiv:2405.15682; kernel: ``ferroptim::kernels::schedule_free``). The parameters
    hold y (where gradients are taken) while training; ``eval()`` moves them to x,
    ``train()`` back, as the package does; ``step()`` outside train mode is the
    package's error. Per step, with c = w/Σw the averaging weight of the step::

        y ← lerp(y, z, c) + lr·(β·(1 − c) − 1)·g';   z ← z − lr·g'

    (g' the gradient, normalized by the second moment for AdamW / RAdam, plus
    weight_decay·y). Param groups hold the package's ``k``, ``train_mode``,
    ``weight_sum``, ``lr_max`` and ``scheduled_lr``. State per parameter: ``z`` (and
    ``exp_avg_sq``).
    """

    _buffer_state: Tuple[str, ...] = ("z", "exp_avg_sq")

    def _beta(self, group: Dict[str, Any]) -> float:
        return float(group["betas"][0])

    def step(self, closure: Optional[Callable[[], Any]] = None, *, grads: Optional[Iterable[Any]] = None) -> Any:
        """Performs a single optimization step (in train mode only, as the package)."""
        if not self.param_groups[0]["train_mode"]:
            raise Exception(_NOT_TRAINING)
        return super().step(closure, grads=grads)

    def _switch(self, to_train: bool) -> None:
        for group in self.param_groups:
            if bool(group["train_mode"]) == to_train:
                continue
            beta = self._beta(group)
            pairs = [(p, self.state[p]["z"]) for p in group["params"] if "z" in self.state.get(p, {})]
            if pairs:
                weight = 1 - beta if to_train else 1 - 1 / beta
                _core.average_([p.data for p, _ in pairs], [z for _, z in pairs], "lerp", weight)
            group["train_mode"] = to_train

    def eval(self) -> None:
        """Sets the parameters to x, the point to evaluate: ``θ ← lerp(θ, z, 1 − 1/β)``."""
        self._switch(False)

    def train(self) -> None:
        """Sets the parameters back to y: ``θ ← lerp(θ, z, 1 − β)``."""
        self._switch(True)


def _group_counters() -> Dict[str, Any]:
    return dict(k=0, train_mode=False, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0)


class ScheduleFreeAdamW(_ScheduleFree):
    __doc__ = (_ScheduleFree.__doc__ or "") + r"""
    As ``schedulefree.AdamWScheduleFree``: lr (0.0025), betas ((0.9, 0.999)), eps (1e-8),
    weight_decay (0), warmup_steps (0), r (0.0), weight_lr_power (2.0), foreach
    (accepted, ignored).
    """

    _kernel = _core.schedule_free_adamw_step

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.0025,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: Optional[bool] = True,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r, **_group_counters(), warmup_steps=warmup_steps,
                        weight_lr_power=weight_lr_power, weight_decay=weight_decay)
        super().__init__(params, defaults)


class ScheduleFreeRAdam(_ScheduleFree):
    __doc__ = (_ScheduleFree.__doc__ or "") + r"""
    As ``schedulefree.RAdamScheduleFree``: the lr rectified as RAdam's; lr (0.0025),
    betas ((0.9, 0.999)), eps (1e-8), weight_decay (0), r (0.0), weight_lr_power (2.0),
    silent_sgd_phase (True: no step before the rectification applies), foreach
    (accepted, ignored).
    """

    _kernel = _core.schedule_free_radam_step

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.0025,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: Optional[bool] = True,
        silent_sgd_phase: bool = True,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r, **_group_counters(), weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay, silent_sgd_phase=silent_sgd_phase)
        super().__init__(params, defaults)


class ScheduleFreeSGD(_ScheduleFree):
    __doc__ = (_ScheduleFree.__doc__ or "") + r"""
    As ``schedulefree.SGDScheduleFree``: lr (1.0), momentum (0.9), weight_decay (0),
    warmup_steps (0), r (0.0), weight_lr_power (2), foreach (accepted, ignored). State:
    ``z``.
    """

    _kernel = _core.schedule_free_sgd_step
    _buffer_state = ("z",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2,
        foreach: Optional[bool] = True,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, r=r, **_group_counters(), warmup_steps=warmup_steps,
                        weight_lr_power=weight_lr_power, weight_decay=weight_decay)
        _core.check_hyper("ScheduleFreeSGD", defaults)  # schedulefree's checks, in the Rust crate
        super().__init__(params, defaults)

    def _beta(self, group: Dict[str, Any]) -> float:
        return float(group["momentum"])
