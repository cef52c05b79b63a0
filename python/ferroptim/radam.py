"""``RAdam``, as ``torch.optim.RAdam``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["RAdam"]


class RAdam(ElementwiseOptimizer):
    r"""RAdam (``torch.optim.RAdam``), Adam with a rectified adaptive learning rate.

    Update rule, per element, with ``t`` the parameter's step count after this step
    (kernel: ``ferroptim::kernels::radam``)::

        g ← ∇θ, negated if maximize
        if weight_decay ≠ 0:  θ ← θ·(1 − lr·weight_decay)   if decoupled_weight_decay
                              g ← g + weight_decay·θ          otherwise
        m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²
        ρ∞ ← 2/(1 − β₂) − 1;     ρₜ ← ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
        if ρₜ > 5:   r ← √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))
                     θ ← θ − lr · m/(1 − β₁ᵗ) · √(1 − β₂ᵗ)/(√v + eps) · r
        else:        θ ← θ − lr · m/(1 − β₁ᵗ)

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 1e-3).
        betas (Tuple[float, float], optional): running-average coefficients
            (default: (0.9, 0.999)).
        eps (float, optional): added to the denominator (default: 1e-8).
        weight_decay (float, optional): weight decay (default: 0).
        decoupled_weight_decay (bool, optional): AdamW-style decay (default: False).
        maximize (bool, optional): maximize the objective instead (default: False).

    torch's device flags ``foreach``, ``capturable``, ``differentiable``: accepted and
    ignored.

    State per parameter: ``step`` (0-d float64 array), ``exp_avg`` (m), ``exp_avg_sq`` (v).
    """

    _kernel = _core.radam_step
    _scalar_state = ("step",)
    _buffer_state = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
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
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        _core.check_hyper("RAdam", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)
