"""``Lion``, as ``timm.optim.Lion``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer
from ._beyond import max_lr_snapshot

__all__ = ["Lion"]


class Lion(ElementwiseOptimizer):
    r"""Lion ("Symbolic Discovery of Optimization Algorithms", Chen et al. 2023,
    arXiv:2302.06675), as ``timm.optim.Lion`` (kernel: ``ferroptim::kernels::lion``)::

        g ← ∇θ (negated if maximize);   θ ← θ·(1 − s·weight_decay)   (s = lr, or lr²/max_lr)
        u ← sign(β₁·m + (1 − β₁)·g)      (cautious mask if caution)
        θ ← θ − lr·u;   m ← β₂·m + (1 − β₂)·g

    Args (timm's): lr (1e-4), betas ((0.9, 0.99)), weight_decay (0.0), caution (False:
    the "Cautious Optimizers" mask, arXiv:2411.16085), corrected_weight_decay (False:
    decay scaled by lr²/max_lr, max_lr the constructor's lr), maximize (False),
    foreach (accepted, ignored).

    State per parameter: ``exp_avg``. Param groups also hold ``max_lr_snapshot``.
    """

    _kernel = _core.lion_step
    _flat_blockers = ("caution",)  # its mask is scaled by its mean over the tensor
    _scalar_state = ()
    _buffer_state = ("exp_avg",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: Tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        caution: bool = False,
        corrected_weight_decay: bool = False,
        maximize: bool = False,
        foreach: Optional[bool] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            weight_decay=weight_decay,
            caution=caution,
            corrected_weight_decay=corrected_weight_decay,
            max_lr_snapshot=max_lr_snapshot(lr),
            maximize=maximize,
        )
        _core.check_hyper("Lion", defaults)  # timm's checks, in the Rust crate
        super().__init__(params, defaults)
