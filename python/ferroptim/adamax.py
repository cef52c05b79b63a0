"""``Adamax``, as ``torch.optim.Adamax``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["Adamax"]


class Adamax(ElementwiseOptimizer):
    r"""Adamax (``torch.optim.Adamax``), Adam with the infinity norm.

    Update rule, per element, with ``t`` the parameter's step count after this step
    (kernel: ``ferroptim::kernels::adamax``)::

        g ← ∇θ, negated if maximize
        if weight_decay ≠ 0:  g ← g + weight_decay·θ
        m ← β₁·m + (1 − β₁)·g          (computed as torch's lerp)
        u ← max(β₂·u, |g| + eps)
        θ ← θ − lr/(1 − β₁ᵗ) · m / u

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 2e-3).
        betas (Tuple[float, float], optional): coefficients of the running average
            and of the infinity norm (default: (0.9, 0.999)).
        eps (float, optional): added to the denominator (default: 1e-8).
        weight_decay (float, optional): L2 penalty (default: 0).
        maximize (bool, optional): maximize the objective instead (default: False).

    torch's device flags ``foreach``, ``differentiable``, ``capturable``: accepted and
    ignored.

    State per parameter: ``step`` (0-d float64 array), ``exp_avg`` (m), ``exp_inf`` (u).
    """

    _kernel = _core.adamax_step
    _scalar_state = ("step",)
    _buffer_state = ("exp_avg", "exp_inf")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
        _core.check_hyper("Adamax", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)
