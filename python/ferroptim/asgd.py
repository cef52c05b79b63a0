"""``ASGD``, as ``torch.optim.ASGD``."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["ASGD"]


class ASGD(ElementwiseOptimizer):
    r"""Averaged SGD (``torch.optim.ASGD``).

    Update rule, per element, with ``t`` the parameter's step count after this step
    and η, μ their values from before it (kernel: ``ferroptim::kernels::asgd``)::

        g ← ∇θ, negated if maximize
        if weight_decay ≠ 0:  g ← g + weight_decay·θ
        θ ← θ·(1 − lambd·η) − η·g
        ā ← ā + μ·(θ − ā)          (ā ← θ while μ = 1)
        then, per parameter:  η ← lr / (1 + lambd·lr·t)^alpha,   μ ← 1 / max(1, t − t0)

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 1e-2).
        lambd (float, optional): decay term (default: 1e-4).
        alpha (float, optional): power for the η update (default: 0.75).
        t0 (float, optional): the step at which averaging starts (default: 1e6).
        weight_decay (float, optional): L2 penalty (default: 0).
        maximize (bool, optional): maximize the objective instead (default: False).

    torch's device flags ``foreach``, ``differentiable``, ``capturable``: accepted and
    ignored.

    State per parameter: ``step``, ``eta`` and ``mu`` (0-d float64 arrays) and ``ax``
    (ā, the averaged parameter).
    """

    _kernel = _core.asgd_step
    _scalar_state = ("step", "eta", "mu")
    _buffer_state = ("ax",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
        _core.check_hyper("ASGD", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)
