"""``RMSprop``, as ``torch.optim.RMSprop``."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["RMSprop"]


class RMSprop(ElementwiseOptimizer):
    r"""RMSprop (``torch.optim.RMSprop``), with momentum and the centered variant.

    Update rule, per element (kernel: ``ferroptim::kernels::rmsprop``)::

        g ← ∇θ, negated if maximize
        if weight_decay ≠ 0:  g ← g + weight_decay·θ
        v ← alpha·v + (1 − alpha)·g²
        if centered:  ḡ ← alpha·ḡ + (1 − alpha)·g;   a ← √(v − ḡ²) + eps
        else:         a ← √v + eps
        if momentum > 0:  b ← momentum·b + g/a;   θ ← θ − lr·b
        else:             θ ← θ − lr·g/a

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 1e-2).
        alpha (float, optional): smoothing constant (default: 0.99).
        eps (float, optional): added to the denominator (default: 1e-8).
        weight_decay (float, optional): L2 penalty (default: 0).
        momentum (float, optional): momentum factor (default: 0).
        centered (bool, optional): normalize by the estimated variance of the
            gradient (default: False).
        maximize (bool, optional): maximize the objective instead (default: False).

    torch's device flags ``capturable``, ``foreach``, ``differentiable``: accepted and
    ignored.

    State per parameter: ``step`` (0-d float64 array), ``square_avg`` (v),
    ``momentum_buffer`` (b, with momentum) and ``grad_avg`` (ḡ, when centered).
    """

    _kernel = _core.rmsprop_step
    _scalar_state = ("step",)
    _buffer_state = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            maximize=maximize,
        )
        _core.check_hyper("RMSprop", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)
