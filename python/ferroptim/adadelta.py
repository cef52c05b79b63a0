"""``Adadelta``, as ``torch.optim.Adadelta``."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["Adadelta"]


class Adadelta(ElementwiseOptimizer):
    r"""Adadelta (``torch.optim.Adadelta``).

    Update rule, per element (kernel: ``ferroptim::kernels::adadelta``)::

        g ← ∇θ, negated if maximize
        if weight_decay ≠ 0:  g ← g + weight_decay·θ
        v ← rho·v + (1 − rho)·g²
        δ ← √(u + eps) / √(v + eps) · g
        u ← rho·u + (1 − rho)·δ²
        θ ← θ − lr·δ

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): coefficient that scales delta (default: 1.0).
        rho (float, optional): running-average coefficient (default: 0.9).
        eps (float, optional): added for numerical stability (default: 1e-6).
        weight_decay (float, optional): L2 penalty (default: 0).
        maximize (bool, optional): maximize the objective instead (default: False).

    torch's device flags ``foreach``, ``capturable``, ``differentiable``: accepted and
    ignored.

    State per parameter: ``step`` (0-d float64 array), ``square_avg`` (v) and
    ``acc_delta`` (u).
    """

    _kernel = _core.adadelta_step
    _scalar_state = ("step",)
    _buffer_state = ("square_avg", "acc_delta")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: Optional[bool] = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        _core.check_hyper("Adadelta", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)
