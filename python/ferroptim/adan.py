"""``Adan``, as ``timm.optim.Adan``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["Adan"]

_STATE = ("exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad")


class Adan(ElementwiseOptimizer):
    r"""Adan ("Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
    Models", Xie et al. 2022, arXiv:2208.06677), as ``timm.optim.Adan`` (kernel:
    ``ferroptim::kernels::adan``), with t the group's step::

        d ← g − g_prev (0 on the first step);   m ← lerp(m, g, 1 − β₁)
        Δ ← β₂·Δ + (1 − β₂)·d;   n ← β₂·d + g;   v ← β₃·v + (1 − β₃)·n²
        u ← (lr/(1 − β₁ᵗ)·m + lr·β₂/(1 − β₂ᵗ)·Δ) / (√v/√(1 − β₃ᵗ) + eps)
        θ ← θ·(1 − lr·wd) − u  if no_prox,  else (θ − u)/(1 + lr·wd)

    Args (timm's): lr (1e-3), betas ((0.98, 0.92, 0.99)), eps (1e-8), weight_decay
    (0.0), no_prox (False), caution (False), foreach (accepted, ignored).

    State per parameter: ``exp_avg``, ``exp_avg_sq``, ``exp_avg_diff``, ``neg_pre_grad``;
    each param group counts its ``step`` (an int).
    """

    _kernel = _core.adan_step
    _flat_blockers = ("caution",)  # its mask is scaled by its mean over the tensor
    _scalar_state = ()
    _buffer_state = _STATE

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float, float] = (0.98, 0.92, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        no_prox: bool = False,
        caution: bool = False,
        foreach: Optional[bool] = None,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, no_prox=no_prox, caution=caution)
        _core.check_hyper("Adan", defaults)  # the Rust crate's checks, with the messages they follow
        super().__init__(params, defaults)
