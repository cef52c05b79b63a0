"""``ADOPT``, as ``timm.optim.Adopt``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer
from ._beyond import max_lr_snapshot

__all__ = ["ADOPT"]


class ADOPT(ElementwiseOptimizer):
    r"""ADOPT ("ADOPT: Modified Adam Can Converge with Any β₂ with the Optimal Rate",
    Taniguchi et al., NeurIPS 2024, arXiv:2411.02853), as ``timm.optim.Adopt``
    (kernel: ``ferroptim::kernels::adopt``), with t the parameter's step::

        g ← ∇θ (negated if maximize) + weight_decay·θ unless decoupled
        first step: v ← g²; nothing else
        θ ← θ − lr·weight_decay·θ if decoupled
        m ← lerp(m, clamp(g / max(√v, eps), ±(t − 1)^clip_exp), 1 − β₁)
        θ ← θ − lr·m;   v ← β₂·v + (1 − β₂)·g²

    Args (timm's): lr (1e-3), betas ((0.9, 0.9999)), eps (1e-6), clip_exp (0.333; None:
    no clipping), weight_decay (0.0), decoupled (False), corrected_weight_decay (False);
    keyword-only caution (False), maximize (False); foreach, capturable, differentiable
    (accepted, ignored).

    State per parameter: ``step`` (0-d float64 array), ``exp_avg``, ``exp_avg_sq``.
    """

    _kernel = _core.adopt_step
    _flat_blockers = ("caution",)  # its mask is scaled by its mean over the tensor
    _scalar_state = ("step",)
    _buffer_state = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.9999),
        eps: float = 1e-6,
        clip_exp: Optional[float] = 0.333,
        weight_decay: float = 0.0,
        decoupled: bool = False,
        corrected_weight_decay: bool = False,
        *,
        caution: bool = False,
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
            clip_exp=clip_exp,
            decoupled=decoupled,
            corrected_weight_decay=corrected_weight_decay,
            max_lr_snapshot=None,  # (set below, after the checks, as timm takes it)
            caution=caution,
            maximize=maximize,
        )
        _core.check_hyper("ADOPT", defaults)  # timm's checks, in the Rust crate
        defaults["max_lr_snapshot"] = max_lr_snapshot(lr)
        super().__init__(params, defaults)
