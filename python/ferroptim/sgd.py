"""``SGD``: stochastic gradient descent, as ``torch.optim.SGD``."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["SGD"]


class SGD(ElementwiseOptimizer):
    r"""Stochastic gradient descent, optionally with momentum (``torch.optim.SGD``).

    Update rule, per element (kernel: ``ferroptim::kernels::sgd``)::

        g ← ∇θ, negated if maximize
        if weight_decay ≠ 0:  g ← g + weight_decay·θ
        if momentum ≠ 0:      b ← g                               (first step)
                              b ← momentum·b + (1 − dampening)·g   (afterwards)
                              g ← g + momentum·b if nesterov, else b
        θ ← θ − lr·g

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 1e-3).
        momentum (float, optional): momentum factor (default: 0).
        dampening (float, optional): dampening for momentum (default: 0).
        weight_decay (float, optional): L2 penalty (default: 0).
        nesterov (bool, optional): Nesterov momentum (default: False).
        maximize (bool, optional): maximize the objective instead (default: False).

    torch's device flags ``foreach``, ``differentiable``, ``fused``: accepted and ignored.

    State per parameter: ``momentum_buffer`` (only when momentum ≠ 0).
    """

    _kernel = _core.sgd_step
    _buffer_state = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        _core.check_hyper("SGD", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)
