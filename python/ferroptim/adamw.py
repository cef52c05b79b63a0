"""``AdamW``, as ``torch.optim.AdamW``: Adam with decoupled weight decay."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from .adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    r"""AdamW (``torch.optim.AdamW``): ``Adam`` with ``decoupled_weight_decay=True``
    and a default weight decay of 1e-2.

    Update rule, per element, with ``t`` the parameter's step count after this step::

        θ ← θ·(1 − lr·weight_decay)
        m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²;   v̂ ← max(v̂, v) if amsgrad
        θ ← θ − lr/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + eps)

    Args: as ``Adam``, without ``decoupled_weight_decay`` (always True; a loaded
    state dict cannot turn it off, as in torch).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True
        )

    def _fix_group(self, group: Dict[str, Any]) -> None:
        super()._fix_group(group)
        group["decoupled_weight_decay"] = True
