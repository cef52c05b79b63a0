"""``LARS``, as ``timm.optim.Lars``."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["LARS"]


class LARS(ElementwiseOptimizer):
    r"""LARS / LARC ("Large Batch Training of Convolutional Networks", You et al. 2017,
    arXiv:1708.03888), as ``timm.optim.Lars`` (kernel: ``ferroptim::kernels::lars``)::

        if weight_decay ≠ 0 or always_adapt:   (per tensor)
            r ← trust_coeff·‖θ‖ / (‖g‖ + weight_decay·‖θ‖ + eps)   (1 if a norm is 0)
            r ← min(r/lr, 1) if trust_clip;      g ← (g + weight_decay·θ)·r
        b ← g (first step) or momentum·b + (1 − dampening)·g;   g ← g + momentum·b (nesterov) or b
        θ ← θ − lr·g

    Args (timm's): lr (1.0), momentum (0), dampening (0), weight_decay (0), nesterov
    (False), trust_coeff (0.001), eps (1e-8), trust_clip (False), always_adapt (False),
    foreach (accepted, ignored).

    State per parameter: ``momentum_buffer`` when momentum ≠ 0.
    """

    _kernel = _core.lars_step
    _flat_merge = False  # per-tensor trust ratio
    _scalar_state = ()
    _buffer_state = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        trust_coeff: float = 0.001,
        eps: float = 1e-8,
        trust_clip: bool = False,
        always_adapt: bool = False,
        foreach: Optional[bool] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            trust_coeff=trust_coeff,
            eps=eps,
            trust_clip=trust_clip,
            always_adapt=always_adapt,
        )
        _core.check_hyper("LARS", defaults)  # the Rust crate's checks, with the messages they follow
        super().__init__(params, defaults)
