"""``AdEMAMix``, as ``pytorch_optimizer.AdEMAMix``."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["AdEMAMix"]

_STATE = ("exp_avg", "exp_avg_sq", "exp_avg_slow")


class AdEMAMix(ElementwiseOptimizer):
    r"""AdEMAMix ("The AdEMAMix Optimizer: Better, Faster, Older", Pagliardini et al.
    2024, arXiv:2409.03137), as ``pytorch_optimizer.AdEMAMix`` (kernel:
    ``ferroptim::kernels::ademamix``), with t the group's step::

        m₁ ← lerp(m₁, g, 1 − β₁);  v ← β₂·v + (1 − β₂)·g²;  m₂ ← lerp(m₂, g, 1 − β₃(t))
        θ ← θ − lr·(m₁/(1 − β₁ᵗ) + α(t)·m₂) / (√v/√(1 − β₂ᵗ) + eps)

    α(t) and β₃(t) warm up over ``t_alpha_beta3`` steps (None: constant).

    Args (pytorch-optimizer's): lr (1e-3), betas ((0.9, 0.999, 0.9999)), weight_decay
    (0.0), weight_decouple (False), fixed_decay (False), alpha (5.0), t_alpha_beta3
    (None), eps (1e-8), maximize (False), foreach (accepted, ignored).

    State per parameter: ``exp_avg``, ``exp_avg_sq``, ``exp_avg_slow``; each param group
    counts its ``step`` (an int). The gradients are not modified (pytorch-optimizer
    negates and decays ``p.grad`` in place).
    """

    _kernel = _core.ademamix_step
    _scalar_state = ()
    _buffer_state = _STATE

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float, float] = (0.9, 0.999, 0.9999),
        weight_decay: float = 0.0,
        weight_decouple: bool = False,
        fixed_decay: bool = False,
        alpha: float = 5.0,
        t_alpha_beta3: Optional[float] = None,
        eps: float = 1e-8,
        maximize: bool = False,
        foreach: Optional[bool] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            weight_decay=weight_decay,
            weight_decouple=weight_decouple,
            fixed_decay=fixed_decay,
            alpha=alpha,
            t_alpha_beta3=t_alpha_beta3,
            eps=eps,
        )
        _core.check_hyper("AdEMAMix", defaults)  # pytorch-optimizer's checks, in the Rust crate
        self.maximize = maximize  # an attribute, not a group option, as in pytorch-optimizer
        super().__init__(params, defaults)

    def _kernel_args(self) -> Tuple[Any, ...]:
        return (bool(self.maximize),)

    def __getstate__(self) -> Dict[str, Any]:
        return {**super().__getstate__(), "maximize": self.maximize}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        state.setdefault("maximize", False)
        super().__setstate__(state)
