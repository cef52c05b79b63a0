"""``Adam``, as ``torch.optim.Adam``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _checks, _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["Adam"]


class Adam(ElementwiseOptimizer):
    r"""Adam (``torch.optim.Adam``), with AMSGrad and decoupled weight decay options.

    Update rule, per element, with ``t`` the parameter's step count after this step
    (kernel: ``ferroptim::kernels::adam``)::

        g ← ∇θ, negated if maximize
        if weight_decay ≠ 0:  θ ← θ·(1 − lr·weight_decay)   if decoupled_weight_decay
                              g ← g + weight_decay·θ          otherwise
        m ← β₁·m + (1 − β₁)·g          (computed as torch's lerp)
        v ← β₂·v + (1 − β₂)·g²
        v̂ ← max(v̂, v) if amsgrad, else v
        θ ← θ − lr/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + eps)

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 1e-3).
        betas (Tuple[float, float], optional): running-average coefficients of the
            gradient and its square (default: (0.9, 0.999)); both floats. As in torch
            2.15, only the first two entries of a longer sequence are kept.
        eps (float, optional): added to the denominator (default: 1e-8).
        weight_decay (float, optional): weight decay (default: 0).
        amsgrad (bool, optional): the AMSGrad variant (default: False).
        maximize (bool, optional): maximize the objective instead (default: False).
        decoupled_weight_decay (bool, optional): AdamW's decay (default: False).

    torch's device flags ``foreach``, ``capturable``, ``differentiable``, ``fused``:
    accepted and ignored.

    State per parameter: ``step`` (0-d float64 array), ``exp_avg``, ``exp_avg_sq``
    and, with amsgrad, ``max_exp_avg_sq``.
    """

    _kernel = _core.adam_step
    _scalar_state = ("step",)
    _buffer_state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=(betas[0], betas[1]),  # torch 2.15 checks and keeps the first two entries
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        _core.check_hyper("Adam", defaults)  # torch's checks, in the Rust crate
        _checks.float_betas(betas)
        super().__init__(params, defaults)
