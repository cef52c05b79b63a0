"""``NAdam``, as ``torch.optim.NAdam``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["NAdam"]


class NAdam(ElementwiseOptimizer):
    r"""NAdam (``torch.optim.NAdam``), Adam with Nesterov momentum.

    Update rule, per element, with ``t`` the parameter's step count after this step
    (kernel: ``ferroptim::kernels::nadam``)::

        g ← ∇θ, negated if maximize
        if weight_decay ≠ 0:  θ ← θ·(1 − lr·weight_decay)   if decoupled_weight_decay
                              g ← g + weight_decay·θ          otherwise
        μₜ ← β₁·(1 − ½·0.96^(t·momentum_decay)),  μₜ₊₁ likewise with t + 1
        Π ← Π·μₜ                                  (mu_product)
        m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²
        d ← √(v / (1 − β₂ᵗ)) + eps
        θ ← θ − lr·(1 − μₜ)/(1 − Π) · g/d − lr·μₜ₊₁/(1 − Π·μₜ₊₁) · m/d

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 2e-3).
        betas (Tuple[float, float], optional): running-average coefficients
            (default: (0.9, 0.999)).
        eps (float, optional): added to the denominator (default: 1e-8).
        weight_decay (float, optional): weight decay (default: 0).
        momentum_decay (float, optional): momentum decay ψ (default: 4e-3).
        decoupled_weight_decay (bool, optional): AdamW-style decay (default: False).
        maximize (bool, optional): maximize the objective instead (default: False).

    torch's device flags ``foreach``, ``capturable``, ``differentiable``: accepted and
    ignored.

    State per parameter: ``step`` and ``mu_product`` (0-d float64 arrays),
    ``exp_avg`` (m) and ``exp_avg_sq`` (v).
    """

    _kernel = _core.nadam_step
    _scalar_state = ("step", "mu_product")
    _buffer_state = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        _core.check_hyper("NAdam", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)
