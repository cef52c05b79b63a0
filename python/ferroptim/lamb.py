"""``LAMB``, as ``timm.optim.Lamb``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer
from ._beyond import max_lr_snapshot

__all__ = ["LAMB"]


class LAMB(ElementwiseOptimizer):
    r"""LAMB ("Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes", You et al. 2019, arXiv:1904.00962), as ``timm.optim.Lamb`` (NVIDIA's
    NvLamb; kernel: ``ferroptim::kernels::lamb``), with t the group's step::

        c ← max(‖all gradients‖ / max_grad_norm, 1);   g ← g / c      (over every group)
        m ← lerp(m, g, 1 − β₁) (β₁·m + g without grad_averaging);  v ← β₂·v + (1 − β₂)·g²
        u ← (m/(1 − β₁ᵗ)) / (√v/√(1 − β₂ᵗ) + eps)     (no bias correction: t → ∞)
        weight_decay: θ ← θ − lr·wd·θ (decoupled_decay) or u ← u + wd·θ
        if weight_decay ≠ 0 or always_adapt: u ← u·‖θ‖/‖u‖  (1 if a norm is 0; ≤ 1 with trust_clip)
        θ ← θ − lr·u

    Args (timm's): lr (1e-3), bias_correction (True), betas ((0.9, 0.999)), eps (1e-6),
    weight_decay (0.01), grad_averaging (True), max_grad_norm (1.0; None: no clipping;
    timm reads the constructor's value), trust_clip (False), always_adapt (False),
    caution (False), decoupled_decay (False), corrected_weight_decay (False), foreach
    (accepted, ignored).

    State per parameter: ``exp_avg``, ``exp_avg_sq``; each param group counts its
    ``step`` (a 0-d float64 array, as timm's tensor).
    """

    _kernel = _core.lamb_step
    _flat_merge = False  # per-tensor trust ratio
    _scalar_state = ()
    _buffer_state = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        bias_correction: bool = True,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        grad_averaging: bool = True,
        max_grad_norm: Optional[float] = 1.0,
        trust_clip: bool = False,
        always_adapt: bool = False,
        caution: bool = False,
        decoupled_decay: bool = False,
        corrected_weight_decay: bool = False,
        foreach: Optional[bool] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            bias_correction=bias_correction,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            grad_averaging=grad_averaging,
            max_grad_norm=max_grad_norm,
            trust_clip=trust_clip,
            always_adapt=always_adapt,
            caution=caution,
            decoupled_decay=decoupled_decay,
            corrected_weight_decay=corrected_weight_decay,
            max_lr_snapshot=max_lr_snapshot(lr),
        )
        _core.check_hyper("LAMB", defaults)  # timm's checks, in the Rust crate
        super().__init__(params, defaults)

    def _kernel_args(self) -> Tuple[Any, ...]:
        m = self.defaults["max_grad_norm"]
        return (None if m is None else float(m),)
