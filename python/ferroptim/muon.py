"""``Muon``, as ``torch.optim.Muon``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

import numpy as np

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["Muon"]


class Muon(ElementwiseOptimizer):
    r"""Muon (``torch.optim.Muon``): momentum orthogonalized by Newton–Schulz, for
    2-D parameters (hidden-layer weight matrices).

    Update rule, per parameter θ of shape A × B (kernel: ``ferroptim::kernels::muon``)::

        b ← momentum·b + (1 − momentum)·g                   (momentum_buffer)
        u ← g + momentum·(b − g) if nesterov, else b
        X ← bfloat16(u) (transposed if A > B);   X ← X / max(‖X‖_F, eps)
        ns_steps times:  G ← X·Xᵀ;   X ← a·X + (b·G + c·G·G)·X
        θ ← θ·(1 − lr·weight_decay) − lr·r·X
        r = √max(1, A/B) ("original", the default), 0.2·√max(A, B) ("match_rms_adamw")
            or √(A/B) ("spectral_unclamped")

    As in torch, the orthogonalization runs in bfloat16, rounded where torch's CPU
    kernels round (each matrix product accumulated in float32 and rounded once); the
    summation order inside torch's products is oneDNN's, so an entry now and then
    differs by one bfloat16 unit, and parameters agree with torch to about 1e-2
    relative over a run.

    Args:
        params (iterable): 2-D parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 1e-3).
        weight_decay (float, optional): decoupled weight decay (default: 0.1).
        momentum (float, optional): momentum factor (default: 0.95).
        nesterov (bool, optional): Nesterov momentum (default: True).
        ns_coefficients (tuple of three floats, optional): (a, b, c) of the
            Newton–Schulz polynomial (default: (3.4445, -4.775, 2.0315)).
        eps (float, optional): floor of the norm (default: 1e-7).
        ns_steps (int, optional): Newton–Schulz iterations (default: 5).
        adjust_lr_fn (str, optional): "original", "match_rms_adamw" or
            "spectral_unclamped" (default: None, meaning "original").

    State per parameter: ``momentum_buffer``.
    """

    _kernel = _core.muon_step
    _buffer_state = ("momentum_buffer",)
    _flat_merge = False  # the update orthogonalizes each matrix

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: Tuple[float, float, float] = (3.4445, -4.775, 2.0315),
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: Optional[str] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=ns_coefficients,
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )
        _core.check_hyper("Muon", defaults)  # the Rust crate's checks, with the messages they follow
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if np.ndim(p.data) != 2:
                    raise ValueError(
                        f"Muon only supports 2D parameters whereas we found a parameter with size: {p.data.shape}"
                    )
